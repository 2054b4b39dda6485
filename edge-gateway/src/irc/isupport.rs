//! RPL_ISUPPORT (005): what this server supports, as tokens. Every token
//! is enforced somewhere (see `validate` for the limits).

use super::line::Message;
use super::numeric::{numeric, RPL_ISUPPORT};
use super::validate::{
    AWAYLEN, CHANLIMIT, CHANNELLEN, KICKLEN, MAXTARGETS, MODES, NICKLEN, TOPICLEN, USERLEN,
};

/// Tokens per 005 line (the line also carries the nick and the final text).
const TOKENS_PER_LINE: usize = 13;

pub fn tokens(network: &str) -> Vec<String> {
    vec![
        format!("AWAYLEN={AWAYLEN}"),
        "CASEMAPPING=ascii".into(),
        format!("CHANLIMIT=#:{CHANLIMIT}"),
        "CHANMODES=b,k,l,imnst".into(),
        format!("CHANNELLEN={CHANNELLEN}"),
        "CHANTYPES=#".into(),
        "ELIST=U".into(),
        "HOSTLEN=64".into(),
        format!("KICKLEN={KICKLEN}"),
        "MAXLIST=b:100".into(),
        format!("MAXTARGETS={MAXTARGETS}"),
        format!("MODES={MODES}"),
        format!("NETWORK={network}"),
        format!("NICKLEN={NICKLEN}"),
        "PREFIX=(ov)@+".into(),
        format!("TARGMAX=JOIN:,KICK:{MAXTARGETS},NAMES:1,NOTICE:{MAXTARGETS},PART:,PRIVMSG:{MAXTARGETS},WHOIS:1"),
        format!("TOPICLEN={TOPICLEN}"),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".into(),
    ]
}

/// The 005 lines for `nick`.
pub fn lines(server: &str, nick: &str, network: &str) -> Vec<Message> {
    tokens(network)
        .chunks(TOKENS_PER_LINE)
        .map(|chunk| {
            let mut m = numeric(server, RPL_ISUPPORT, nick);
            for t in chunk {
                m = m.param(t.as_str());
            }
            m.text("are supported by this server")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_into_lines_of_at_most_13_tokens() {
        let lines = lines("s", "me", "Net");
        assert_eq!(lines.len(), 2);
        let first = lines[0].to_wire();
        assert!(
            first.starts_with(":s 005 me AWAYLEN=390 CASEMAPPING=ascii "),
            "{first}"
        );
        assert!(first.ends_with(" :are supported by this server"));
        assert_eq!(lines[0].params.len(), 1 + 13 + 1);
        let second = lines[1].to_wire();
        assert!(
            second.contains("NICKLEN=30") && second.contains("UTF8ONLY"),
            "{second}"
        );
        assert!(!first.contains("STATUSMSG") && !second.contains("STATUSMSG"));
        assert!(first.len() < 510 && second.len() < 510);
    }
}
