//! `CHATHISTORY` (IRCv3 `draft/chathistory`, with `draft/event-playback`):
//! parsing the subcommands into a protocol-neutral history query, and
//! showing the history service's answer as a `chathistory` (or
//! `draft/chathistory-targets`) batch.
//!
//! ```text
//! CHATHISTORY LATEST  <target> <* | msgref> <limit>
//! CHATHISTORY BEFORE  <target> <msgref> <limit>
//! CHATHISTORY AFTER   <target> <msgref> <limit>
//! CHATHISTORY AROUND  <target> <msgref> <limit>
//! CHATHISTORY BETWEEN <target> <msgref> <msgref> <limit>
//! CHATHISTORY TARGETS <timestamp> <timestamp> <limit>
//! msgref = timestamp=YYYY-MM-DDThh:mm:ss[.sss]Z | msgid=<id>
//! ```
//!
//! Who may read what is the history service's decision (room members,
//! the two sides of a direct conversation). The gateway also refuses a
//! room the client is not in by the events it has shown it: the service
//! reads the router's room record, which is written a moment after the
//! events, so right after a PART it could still list the leaver.

use bus::history::{
    Anchor, HistoryError, HistoryItem, HistoryQuery, HistoryTarget, Selector, TargetSummary,
};
use chrono::{NaiveDate, NaiveTime};

use crate::irc::caps::Cap;
use crate::irc::client::Client;
use crate::irc::history::{self, batch_lines, Purpose, RequestError, Show};
use crate::irc::line::Message;
use crate::irc::render;
use crate::irc::validate::{channel_of, is_channel, room_of, valid_channel, valid_nick};

/// A subcommand that returns messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Latest,
    Before,
    After,
    Around,
    Between,
}

impl Sub {
    pub fn name(self) -> &'static str {
        match self {
            Sub::Latest => "LATEST",
            Sub::Before => "BEFORE",
            Sub::After => "AFTER",
            Sub::Around => "AROUND",
            Sub::Between => "BETWEEN",
        }
    }
}

/// A well-formed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Fetch {
        sub: Sub,
        /// As the client wrote it.
        target: String,
        selector: Selector,
        limit: u32,
    },
    Targets {
        /// The earlier instant (ms).
        from: i64,
        /// The later instant (ms).
        to: i64,
        limit: u32,
    },
}

/// A malformed command: the `FAIL CHATHISTORY` it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `NEED_MORE_PARAMS <subcommand or *>`.
    NeedMoreParams { sub: String },
    /// `UNKNOWN_COMMAND <subcommand>`.
    UnknownCommand { sub: String },
    /// `INVALID_PARAMS <subcommand> [<the parameter>] :<text>`.
    InvalidParams {
        sub: String,
        param: Option<String>,
        text: &'static str,
    },
}

/// Parses the parameters of `CHATHISTORY` (subcommand first). Limits are
/// clamped to `max` (0: no maximum); a limit of 0 asks for the maximum.
pub fn parse(params: &[String], max: u32) -> Result<Request, ParseError> {
    let Some(sub_word) = params.first() else {
        return Err(ParseError::NeedMoreParams { sub: "*".into() });
    };
    let upper = sub_word.to_ascii_uppercase();
    let sub = match upper.as_str() {
        "LATEST" => Sub::Latest,
        "BEFORE" => Sub::Before,
        "AFTER" => Sub::After,
        "AROUND" => Sub::Around,
        "BETWEEN" => Sub::Between,
        "TARGETS" => return parse_targets(&params[1..], max),
        _ => return Err(ParseError::UnknownCommand { sub: upper }),
    };
    let args = &params[1..];
    let needed = if sub == Sub::Between { 4 } else { 3 };
    if args.len() < needed {
        return Err(ParseError::NeedMoreParams { sub: upper });
    }
    if args.len() > needed {
        return Err(invalid(sub.name(), None, "Too many parameters"));
    }
    let target = args[0].clone();
    let limit = parse_limit(sub.name(), &args[needed - 1], max)?;
    let anchor = |i: usize| parse_msgref(sub.name(), &args[i]);
    let selector = match sub {
        Sub::Latest if args[1] == "*" => Selector::Latest { after: None },
        Sub::Latest => Selector::Latest {
            after: Some(anchor(1)?),
        },
        // `BEFORE *` is how some clients (Kiwi) ask for the latest lines.
        Sub::Before if args[1] == "*" => Selector::Latest { after: None },
        Sub::Before => Selector::Before { anchor: anchor(1)? },
        Sub::After => Selector::After { anchor: anchor(1)? },
        Sub::Around => Selector::Around { anchor: anchor(1)? },
        Sub::Between => Selector::Between {
            start: anchor(1)?,
            end: anchor(2)?,
        },
    };
    Ok(Request::Fetch {
        sub,
        target,
        selector,
        limit,
    })
}

fn parse_targets(args: &[String], max: u32) -> Result<Request, ParseError> {
    const SUB: &str = "TARGETS";
    if args.len() < 3 {
        return Err(ParseError::NeedMoreParams { sub: SUB.into() });
    }
    if args.len() > 3 {
        return Err(invalid(SUB, None, "Too many parameters"));
    }
    let time = |p: &String| match parse_msgref(SUB, p)? {
        Anchor::Time(ms) => Ok(ms),
        _ => Err(invalid(SUB, Some(p), "TARGETS needs timestamps")),
    };
    let (a, b) = (time(&args[0])?, time(&args[1])?);
    let limit = parse_limit(SUB, &args[2], max)?;
    Ok(Request::Targets {
        from: a.min(b),
        to: a.max(b),
        limit,
    })
}

fn invalid(sub: &str, param: Option<&String>, text: &'static str) -> ParseError {
    ParseError::InvalidParams {
        sub: sub.into(),
        param: param.cloned(),
        text,
    }
}

/// A decimal limit, clamped to `max` (0 asks for the maximum).
fn parse_limit(sub: &str, word: &String, max: u32) -> Result<u32, ParseError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(sub, Some(word), "Invalid limit"));
    }
    // All digits: too large to parse is simply more than the maximum.
    let asked = word.parse::<u64>().unwrap_or(u64::MAX);
    let max = if max == 0 { u32::MAX } else { max };
    Ok(match asked {
        0 => max,
        n => n.min(u64::from(max)) as u32,
    })
}

/// `timestamp=…` or `msgid=…` (keys in any case).
fn parse_msgref(sub: &str, word: &String) -> Result<Anchor, ParseError> {
    let Some((key, value)) = word.split_once('=') else {
        return Err(invalid(sub, Some(word), "Invalid message reference"));
    };
    if key.eq_ignore_ascii_case("timestamp") {
        parse_timestamp(value)
            .map(Anchor::Time)
            .ok_or_else(|| invalid(sub, Some(word), "Invalid timestamp"))
    } else if key.eq_ignore_ascii_case("msgid") && !value.is_empty() {
        Ok(Anchor::Id(value.to_string()))
    } else {
        Err(invalid(sub, Some(word), "Invalid message reference"))
    }
}

/// `YYYY-MM-DDThh:mm:ss[.fraction]Z` (UTC, as `server-time` writes it)
/// to milliseconds since the epoch. The fraction may have 1 to 9 digits;
/// anything below a millisecond is dropped.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let num = |part: &str, len: usize| -> Option<u32> {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let mut t = hms.split(':');
    let (h, mi, se) = (num(t.next()?, 2)?, num(t.next()?, 2)?, num(t.next()?, 2)?);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let mut padded = f.to_string();
            padded.truncate(3);
            while padded.len() < 3 {
                padded.push('0');
            }
            padded.parse().ok()?
        }
        Some(_) => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, da)?;
    let time = NaiveTime::from_hms_milli_opt(h, mi, se, millis)?;
    Some(date.and_time(time).and_utc().timestamp_millis())
}

/// `CHATHISTORY …`: answered later, when the history service replies.
pub async fn chathistory(c: &mut Client, m: &Message) {
    let request = match parse(&m.params, c.gw.irc.chathistory_max) {
        Ok(r) => r,
        Err(e) => return refuse(c, e),
    };
    match request {
        Request::Fetch {
            sub,
            target,
            selector,
            limit,
        } => fetch(c, sub, target, selector, limit).await,
        Request::Targets { from, to, limit } => {
            let rooms = c
                .session
                .as_ref()
                .map(|s| s.rooms.keys().cloned().collect())
                .unwrap_or_default();
            let body = HistoryQuery::Targets {
                from,
                to,
                limit,
                rooms,
            };
            ask(c, body, Purpose::Targets, "TARGETS", "*").await;
        }
    }
}

async fn fetch(c: &mut Client, sub: Sub, target: String, selector: Selector, limit: u32) {
    let conversation = if is_channel(&target) {
        if !valid_channel(&target) || !c.in_room(room_of(&target)) {
            return invalid_target(c, sub.name(), &target);
        }
        HistoryTarget::Room {
            room: room_of(&target).to_string(),
        }
    } else {
        if !valid_nick(&target) {
            return invalid_target(c, sub.name(), &target);
        }
        HistoryTarget::Direct {
            peer: peer_of(c, &target).await,
        }
    };
    let body = HistoryQuery::Fetch {
        target: conversation,
        selector,
        limit,
        events: c.caps.has(Cap::EventPlayback),
    };
    let purpose = Purpose::Chathistory {
        subcommand: sub.name().into(),
        target: target.clone(),
    };
    ask(c, body, purpose, sub.name(), &target).await;
}

/// How the history service knows the other side of a direct conversation:
/// its account if the nick is online and logged in, else the nick (an
/// offline account's name, or a guest's nick).
async fn peer_of(c: &Client, nick: &str) -> String {
    match c.gw.registry.session_by_nick(nick).await {
        Ok(Some(rec)) => rec.actor.account.unwrap_or_else(|| nick.to_string()),
        Ok(None) => nick.to_string(),
        Err(e) => {
            tracing::debug!(error = %e, "nick lookup for CHATHISTORY failed");
            nick.to_string()
        }
    }
}

async fn ask(c: &mut Client, body: HistoryQuery, purpose: Purpose, sub: &str, target: &str) {
    match history::request(c, body, purpose).await {
        Ok(()) => {}
        Err(RequestError::Busy) => {
            message_error(c, sub, target, "Too many requests in flight");
        }
        Err(RequestError::Unavailable) => message_error(c, sub, target, "History is unavailable"),
    }
}

fn fail(c: &Client, code: &str, context: &[&str], text: &str) {
    c.fail("CHATHISTORY", code, context, text);
}

fn refuse(c: &Client, e: ParseError) {
    match e {
        ParseError::NeedMoreParams { sub } => {
            fail(c, "NEED_MORE_PARAMS", &[&sub], "Insufficient parameters")
        }
        ParseError::UnknownCommand { sub } => {
            fail(c, "UNKNOWN_COMMAND", &[&sub], "Unknown command")
        }
        ParseError::InvalidParams {
            sub,
            param: Some(p),
            text,
        } => fail(c, "INVALID_PARAMS", &[&sub, &p], text),
        ParseError::InvalidParams {
            sub,
            param: None,
            text,
        } => fail(c, "INVALID_PARAMS", &[&sub], text),
    }
}

fn invalid_target(c: &Client, sub: &str, target: &str) {
    fail(
        c,
        "INVALID_TARGET",
        &[sub, target],
        "Messages could not be retrieved",
    );
}

fn message_error(c: &Client, sub: &str, target: &str, text: &str) {
    fail(c, "MESSAGE_ERROR", &[sub, target], text);
}

/// The request failed: `None` when no answer came in time.
pub fn on_failure(c: &mut Client, sub: &str, target: &str, code: Option<HistoryError>) {
    match code {
        None => message_error(c, sub, target, "History is unavailable"),
        Some(HistoryError::InvalidTarget) => invalid_target(c, sub, target),
        Some(HistoryError::Malformed) => fail(c, "INVALID_PARAMS", &[sub], "Invalid parameters"),
        Some(HistoryError::Internal) => {
            message_error(c, sub, target, "Messages could not be retrieved")
        }
    }
}

/// A page of one conversation, asked for as `target`.
pub fn show_messages(
    c: &mut Client,
    target: &str,
    conversation: &HistoryTarget,
    name: &str,
    items: &[HistoryItem],
) {
    // The batch names the conversation as the spec wants it: a room by its
    // canonical name, a person as the client addressed them (its buffer).
    let (param, peer) = match conversation {
        HistoryTarget::Room { .. } => (channel_of(name), None),
        HistoryTarget::Direct { .. } => (target.to_string(), Some(target)),
    };
    let show = Show {
        events: c.caps.has(Cap::EventPlayback),
        stamp: false,
        peer,
    };
    let lines = batch_lines(c, &param, items, show);
    c.send_all(lines);
}

/// `CHATHISTORY TARGETS` answer: a `draft/chathistory-targets` batch.
pub fn show_targets(c: &mut Client, items: &[TargetSummary]) {
    let lines = history::batched(c, "draft/chathistory-targets", None, |v, batch| {
        items
            .iter()
            .map(|t| {
                let name = match &t.target {
                    HistoryTarget::Room { .. } => channel_of(&t.name),
                    HistoryTarget::Direct { .. } => t.name.clone(),
                };
                render::history_target(v, batch, &name, t.latest_at)
            })
            .collect()
    });
    c.send_all(lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Request, ParseError> {
        let params: Vec<String> = line.split(' ').map(String::from).collect();
        parse(&params, 100)
    }

    const T0: i64 = 1_546_612_406_123; // 2019-01-04T14:33:26.123Z

    #[test]
    fn timestamps_with_and_without_millis() {
        assert_eq!(parse_timestamp("2019-01-04T14:33:26.123Z"), Some(T0));
        assert_eq!(parse_timestamp("2019-01-04T14:33:26Z"), Some(T0 - 123));
        assert_eq!(parse_timestamp("2019-01-04T14:33:26.1Z"), Some(T0 - 23));
        assert_eq!(
            parse_timestamp("2019-01-04T14:33:26.123456789Z"),
            Some(T0),
            "below a millisecond is dropped"
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Some(0));
        for bad in [
            "2019-01-04T14:33:26.123",
            "2019-01-04 14:33:26Z",
            "2019-13-04T14:33:26Z",
            "2019-02-30T14:33:26Z",
            "2019-01-04T24:00:00Z",
            "2019-01-04T14:33:26.Z",
            "2019-01-04T14:33:26.1234567890Z",
            "19-01-04T14:33:26Z",
            "2019-01-04T14:33Z",
            "2019-01-04T14:33:26+01:00",
            "2019-01-04T14:33:2xZ",
            "",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        assert_eq!(
            render::server_time(parse_timestamp("2025-11-22T05:02:55.123Z").unwrap()),
            "2025-11-22T05:02:55.123Z"
        );
    }

    #[test]
    fn subcommands_and_selectors() {
        assert_eq!(
            p("LATEST #chan * 50"),
            Ok(Request::Fetch {
                sub: Sub::Latest,
                target: "#chan".into(),
                selector: Selector::Latest { after: None },
                limit: 50
            })
        );
        assert_eq!(
            p("latest bob msgid=abc 5"),
            Ok(Request::Fetch {
                sub: Sub::Latest,
                target: "bob".into(),
                selector: Selector::Latest {
                    after: Some(Anchor::Id("abc".into()))
                },
                limit: 5
            })
        );
        let fetch = |line| match p(line) {
            Ok(Request::Fetch { selector, .. }) => selector,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            fetch("BEFORE #c timestamp=2019-01-04T14:33:26.123Z 10"),
            Selector::Before {
                anchor: Anchor::Time(T0)
            }
        );
        assert_eq!(
            fetch("AFTER #c MSGID=m1 10"),
            Selector::After {
                anchor: Anchor::Id("m1".into())
            }
        );
        assert_eq!(
            fetch("AROUND #c msgid=m1 10"),
            Selector::Around {
                anchor: Anchor::Id("m1".into())
            }
        );
        assert_eq!(
            fetch("BETWEEN #c msgid=m1 timestamp=2019-01-04T14:33:26.123Z 10"),
            Selector::Between {
                start: Anchor::Id("m1".into()),
                end: Anchor::Time(T0)
            }
        );
        assert_eq!(fetch("BEFORE #c * 10"), Selector::Latest { after: None });
    }

    #[test]
    fn limits_are_clamped() {
        let limit = |line| match p(line) {
            Ok(Request::Fetch { limit, .. }) => limit,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(limit("LATEST #c * 1"), 1);
        assert_eq!(limit("LATEST #c * 100"), 100);
        assert_eq!(limit("LATEST #c * 101"), 100);
        assert_eq!(limit("LATEST #c * 0"), 100, "0 asks for the maximum");
        assert_eq!(limit("LATEST #c * 99999999999999999999999999"), 100);
        let params: Vec<String> = ["LATEST", "#c", "*", "5000"].map(String::from).into();
        assert!(matches!(
            parse(&params, 0),
            Ok(Request::Fetch { limit: 5000, .. })
        ));
    }

    #[test]
    fn targets_takes_timestamps_in_either_order() {
        assert_eq!(
            p("TARGETS timestamp=2019-01-04T14:33:26.123Z timestamp=1970-01-01T00:00:00Z 20"),
            Ok(Request::Targets {
                from: 0,
                to: T0,
                limit: 20
            })
        );
        assert!(matches!(
            p("TARGETS msgid=x timestamp=1970-01-01T00:00:00Z 20"),
            Err(ParseError::InvalidParams { .. })
        ));
    }

    #[test]
    fn malformed_commands() {
        let params: Vec<String> = Vec::new();
        assert_eq!(
            parse(&params, 100),
            Err(ParseError::NeedMoreParams { sub: "*".into() })
        );
        assert_eq!(
            p("LATEST #c *"),
            Err(ParseError::NeedMoreParams {
                sub: "LATEST".into()
            })
        );
        assert_eq!(
            p("BETWEEN #c msgid=a 10"),
            Err(ParseError::NeedMoreParams {
                sub: "BETWEEN".into()
            })
        );
        assert_eq!(
            p("TARGETS timestamp=2019-01-04T14:33:26Z 10"),
            Err(ParseError::NeedMoreParams {
                sub: "TARGETS".into()
            })
        );
        assert_eq!(
            p("SIDEWAYS #c * 10"),
            Err(ParseError::UnknownCommand {
                sub: "SIDEWAYS".into()
            })
        );
        assert_eq!(
            p("LATEST #c * ten"),
            Err(ParseError::InvalidParams {
                sub: "LATEST".into(),
                param: Some("ten".into()),
                text: "Invalid limit"
            })
        );
        assert!(matches!(
            p("LATEST #c * -5"),
            Err(ParseError::InvalidParams { .. })
        ));
        assert_eq!(
            p("BEFORE #c timestamp=yesterday 10"),
            Err(ParseError::InvalidParams {
                sub: "BEFORE".into(),
                param: Some("timestamp=yesterday".into()),
                text: "Invalid timestamp"
            })
        );
        assert!(matches!(
            p("AFTER #c m1 10"),
            Err(ParseError::InvalidParams {
                text: "Invalid message reference",
                ..
            })
        ));
        assert!(matches!(
            p("AFTER #c msgid= 10"),
            Err(ParseError::InvalidParams { .. })
        ));
        assert!(matches!(
            p("AROUND #c * 10"),
            Err(ParseError::InvalidParams { .. })
        ));
        assert!(matches!(
            p("LATEST #c * 10 extra"),
            Err(ParseError::InvalidParams {
                text: "Too many parameters",
                ..
            })
        ));
    }
}
