//! WHOX: `WHO <mask> %<fields>[,<token>]` answered with 354 lines holding
//! just the fields asked for (IRCv3 `whox`, ISUPPORT `WHOX`). Clients such
//! as WeeChat and irssi use it to learn accounts (`%a`) for a channel.
//!
//! The fields come out in the fixed order the extension defines
//! (`t c u i h s n f d l a o r`), whatever order they were asked in.

use crate::irc::line::Message;
use crate::irc::render::View;

pub const RPL_WHOSPCRPL: u16 = 354;

/// The fields, in output order.
const ORDER: &str = "tcuihsnfdlaor";

/// A WHOX request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Requested field letters, in output order.
    fields: Vec<char>,
    /// Echoed as the first field when `t` is asked (1-3 digits).
    token: String,
}

/// The `%fields[,token]` argument, if it is one.
pub fn parse(arg: &str) -> Option<Query> {
    let spec = arg.strip_prefix('%')?;
    let (letters, token) = spec.split_once(',').unwrap_or((spec, ""));
    let token = if token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit()) {
        token.to_string()
    } else {
        String::new()
    };
    let fields = ORDER.chars().filter(|f| letters.contains(*f)).collect();
    Some(Query { fields, token })
}

/// What one WHO line knows about one user.
pub struct Who<'a> {
    pub chan: &'a str,
    pub user: &'a str,
    pub host: &'a str,
    pub nick: &'a str,
    pub flags: &'a str,
    pub account: Option<&'a str>,
    pub realname: &'a str,
}

/// The 354 line for `w`.
pub fn line(q: &Query, w: &Who<'_>, v: &View) -> Message {
    let mut m = v.n(RPL_WHOSPCRPL);
    for f in &q.fields {
        let value: String = match f {
            't' => {
                if q.token.is_empty() {
                    "0".into()
                } else {
                    q.token.clone()
                }
            }
            'c' => w.chan.into(),
            'u' => w.user.into(),
            // The host is the client's address already.
            'i' | 'h' => w.host.into(),
            's' => v.server.into(),
            'n' => w.nick.into(),
            'f' => w.flags.into(),
            'd' => "0".into(),
            'l' => "0".into(),
            'a' => w.account.unwrap_or("0").into(),
            'o' => "n/a".into(),
            'r' => {
                m = m.text(w.realname);
                continue;
            }
            _ => continue,
        };
        m = m.param(value);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_in_the_fixed_order_with_the_token() {
        let q = parse("%nat,42").unwrap();
        assert_eq!(q.fields, vec!['t', 'n', 'a']);
        assert_eq!(q.token, "42");
        assert_eq!(parse("%cuhsnfr").unwrap().fields.len(), 7);
        assert_eq!(parse("%n,1234").unwrap().token, "", "tokens are 1-3 digits");
        assert!(parse("o").is_none());
    }
}
