//! RPL_ISUPPORT (005): what this server supports, as tokens. Every token
//! is enforced somewhere (see `validate` for the limits).

use super::commands::monitor::MONITOR_MAX;
use super::line::Message;
use super::numeric::{numeric, RPL_ISUPPORT};
use super::validate::{
    AWAYLEN, CHANLIMIT, CHANNELLEN, HOSTLEN, KICKLEN, MAXTARGETS, MODES, NICKLEN, TOPICLEN, USERLEN,
};

/// Tokens per 005 line (the line also carries the nick and the final text).
const TOKENS_PER_LINE: usize = 13;

/// The message references CHATHISTORY accepts, most preferred first.
pub const MSGREFTYPES: &str = "timestamp,msgid";

/// The tokens. `chathistory_max` is the most items one CHATHISTORY command
/// returns (`CHATHISTORY=<max>`).
pub fn tokens(network: &str, chathistory_max: u32) -> Vec<String> {
    let mut t = vec![
        format!("AWAYLEN={AWAYLEN}"),
        // IRCv3 bot mode: the user mode letter.
        "BOT=B".into(),
        "CASEMAPPING=ascii".into(),
        format!("CHANLIMIT=#:{CHANLIMIT}"),
        "CHANMODES=b,k,l,imnst".into(),
        format!("CHANNELLEN={CHANNELLEN}"),
        "CHANTYPES=#".into(),
        format!("CHATHISTORY={chathistory_max}"),
        "ELIST=CMNTU".into(),
        "WHOX".into(),
        "EXTBAN=$,a".into(),
        format!("HOSTLEN={HOSTLEN}"),
        format!("KICKLEN={KICKLEN}"),
        "MAXLIST=b:100".into(),
        format!("MAXTARGETS={MAXTARGETS}"),
        format!("MODES={MODES}"),
        format!("MONITOR={MONITOR_MAX}"),
        format!("MSGREFTYPES={MSGREFTYPES}"),
        format!("NETWORK={network}"),
        format!("NICKLEN={NICKLEN}"),
        "PREFIX=(ov)@+".into(),
        format!("TARGMAX=JOIN:,KICK:{MAXTARGETS},NAMES:1,NOTICE:{MAXTARGETS},PART:,PRIVMSG:{MAXTARGETS},WHOIS:1"),
        format!("TOPICLEN={TOPICLEN}"),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".into(),
    ];
    t.sort();
    t
}

/// The 005 lines for `nick` (welcome burst and VERSION).
pub fn lines(server: &str, nick: &str, network: &str, chathistory_max: u32) -> Vec<Message> {
    tokens(network, chathistory_max)
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
    fn sorted_lines_of_at_most_13_tokens() {
        let lines = lines("s", "me", "Net", 50);
        assert_eq!(lines.len(), 2);
        let first = lines[0].to_wire();
        assert!(
            first.starts_with(":s 005 me AWAYLEN=390 BOT=B CASEMAPPING=ascii "),
            "{first}"
        );
        assert!(first.ends_with(" :are supported by this server"));
        assert_eq!(lines[0].params.len(), 1 + 13 + 1);
        let all: Vec<String> = lines
            .iter()
            .flat_map(|l| l.params[1..l.params.len() - 1].to_vec())
            .collect();
        for t in [
            "CHATHISTORY=50",
            "MSGREFTYPES=timestamp,msgid",
            "NICKLEN=30",
            "UTF8ONLY",
            "BOT=B",
            "MONITOR=100",
        ] {
            assert!(all.contains(&t.to_string()), "{t} missing from {all:?}");
        }
        assert!(!all.iter().any(|t| t.starts_with("STATUSMSG")));
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        assert!(lines.iter().all(|l| l.to_wire().len() < 510));
    }
}
