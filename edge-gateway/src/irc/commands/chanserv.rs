//! The ChanServ pseudo-user: channel registration for IRC clients.
//!
//! `PRIVMSG ChanServ :<command> …` never reaches the bus as chat. The
//! gateway only parses the command (syntax, channel name); whether it is
//! allowed is the router's decision, because the router owns the room and
//! its registration: the command travels as an [`IntentBody::ChanServ`] to
//! the room's partition, and the router's [`ChanServAnswer`] comes back as
//! NOTICEs from `ChanServ!ChanServ@services.` (spelled like NickServ's
//! source). OP and the like are answered by the MODE itself.

use bus::schema::{
    AccessEntry, AccessLevel, ChanServAnswer, ChanServCommand, ChanServRefusal, IntentBody,
    CHANSERV_NICK,
};

use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::render::View;
use crate::irc::validate::{channel_of, room_of, valid_channel};

/// `nick!user@host` of ChanServ's notices and modes (the router's
/// [`bus::schema::chanserv_actor`]).
pub const SOURCE: &str = "ChanServ!ChanServ@services.";

/// Whether `target` names the pseudo-user (case-insensitive).
pub fn is_chanserv(target: &str) -> bool {
    target.eq_ignore_ascii_case(CHANSERV_NICK)
}

/// One command and how it is written.
const USAGE: &[(&str, &str)] = &[
    ("REGISTER", "REGISTER <#channel>"),
    ("DROP", "DROP <#channel>"),
    ("OP", "OP <#channel> [nick]"),
    ("DEOP", "DEOP <#channel> [nick]"),
    ("VOICE", "VOICE <#channel> [nick]"),
    ("DEVOICE", "DEVOICE <#channel> [nick]"),
    (
        "ACCESS",
        "ACCESS <#channel> ADD <account> <OP|VOICE> | DEL <account> | LIST",
    ),
    ("SET", "SET <#channel> TOPICLOCK <ON|OFF>"),
    ("INFO", "INFO <#channel>"),
    ("HELP", "HELP"),
];

const HELP: [&str; 14] = [
    "ChanServ keeps registered channels (topic, modes, bans, founder, access list)",
    "across restarts and when everybody left. You need an account (NickServ).",
    "  REGISTER <#channel>           - register a channel you are an operator of",
    "  DROP <#channel>               - forget the registration (founder)",
    "  OP|DEOP <#channel> [nick]     - give or take +o (OP access)",
    "  VOICE|DEVOICE <#channel> [nick] - give or take +v (VOICE access)",
    "  ACCESS <#channel> ADD <account> <OP|VOICE> - automatic +o/+v on join (founder)",
    "  ACCESS <#channel> DEL <account>             - (founder)",
    "  ACCESS <#channel> LIST                      - (OP access)",
    "  SET <#channel> TOPICLOCK ON|OFF - only OP access may change the topic (founder)",
    "  INFO <#channel>               - founder, registration time, settings",
    "  HELP                          - this list",
    "Accounts are not checked: ACCESS ADD takes any well-formed account name.",
    "The founder and OP accounts pass +i, +k, +l and bans of their channel.",
];

/// What a line to ChanServ asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Command {
        chan: String,
        command: ChanServCommand,
    },
}

/// Why a line to ChanServ is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Unknown(String),
    /// The command's usage line.
    Syntax(&'static str),
    BadChannel(String),
}

/// Parses the text of a PRIVMSG to ChanServ (commands and keywords are
/// case-insensitive; channel, nick and account names are passed on as
/// written).
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(first) = words.first() else {
        return Err(ParseError::Empty);
    };
    let cmd = first.to_ascii_uppercase();
    if cmd == "HELP" {
        return Ok(Parsed::Help);
    }
    let Some(usage) = USAGE.iter().find(|(c, _)| *c == cmd).map(|(_, u)| *u) else {
        return Err(ParseError::Unknown(cmd));
    };
    let syntax = || ParseError::Syntax(usage);
    let (chan, rest) = match &words[1..] {
        [chan, rest @ ..] => (*chan, rest),
        [] => return Err(syntax()),
    };
    let nick = |rest: &[&str]| match rest {
        [] => Ok(None),
        [nick] => Ok(Some(nick.to_string())),
        _ => Err(syntax()),
    };
    let upper: Vec<String> = rest.iter().map(|w| w.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let command = match (cmd.as_str(), &upper[..]) {
        ("REGISTER", []) => ChanServCommand::Register,
        ("DROP", []) => ChanServCommand::Drop,
        ("INFO", []) => ChanServCommand::Info,
        ("OP", _) => ChanServCommand::Op { nick: nick(rest)? },
        ("DEOP", _) => ChanServCommand::Deop { nick: nick(rest)? },
        ("VOICE", _) => ChanServCommand::Voice { nick: nick(rest)? },
        ("DEVOICE", _) => ChanServCommand::Devoice { nick: nick(rest)? },
        ("ACCESS", ["ADD", _, level]) => {
            let level = match *level {
                "OP" => AccessLevel::Op,
                "VOICE" => AccessLevel::Voice,
                _ => return Err(syntax()),
            };
            ChanServCommand::AccessAdd {
                account: rest[1].to_string(),
                level,
            }
        }
        ("ACCESS", ["DEL", _]) => ChanServCommand::AccessDel {
            account: rest[1].to_string(),
        },
        ("ACCESS", ["LIST"]) => ChanServCommand::AccessList,
        ("SET", ["TOPICLOCK", "ON"]) => ChanServCommand::SetTopicLock { on: true },
        ("SET", ["TOPICLOCK", "OFF"]) => ChanServCommand::SetTopicLock { on: false },
        _ => return Err(syntax()),
    };
    if !valid_channel(chan) {
        return Err(ParseError::BadChannel(chan.to_string()));
    }
    Ok(Parsed::Command {
        chan: chan.to_string(),
        command,
    })
}

fn notice(to: &str, text: impl Into<String>) -> Message {
    Message::new("NOTICE")
        .with_source(SOURCE)
        .param(to)
        .text(text)
}

fn say(c: &Client, text: impl Into<String>) {
    c.send(notice(c.nick(), text));
}

/// A PRIVMSG to ChanServ.
pub async fn command(c: &mut Client, text: &str) {
    match parse(text) {
        Ok(Parsed::Help) => {
            for line in HELP {
                say(c, line);
            }
        }
        Ok(Parsed::Command { chan, command }) => {
            let body = IntentBody::ChanServ {
                room: room_of(&chan).to_string(),
                command,
            };
            // The answer comes back as a reply (see `answer`); a failure
            // to publish is told by `intent` itself.
            c.intent(body).await;
        }
        Err(ParseError::Empty) => say(c, "Send HELP for the ChanServ commands."),
        Err(ParseError::Unknown(cmd)) => say(
            c,
            format!("Unknown command {cmd}. Send HELP for the ChanServ commands."),
        ),
        Err(ParseError::Syntax(usage)) => say(c, format!("Syntax: {usage}")),
        Err(ParseError::BadChannel(chan)) => say(c, format!("{chan} is not a valid channel name.")),
    }
}

/// The router's answer, as NOTICEs to the client (`name`: the room).
pub fn answer(name: &str, answer: &ChanServAnswer, v: &View) -> Vec<Message> {
    answer_lines(&channel_of(name), answer)
        .into_iter()
        .map(|line| notice(v.nick, line))
        .collect()
}

/// The text of an answer about channel `chan`.
pub fn answer_lines(chan: &str, answer: &ChanServAnswer) -> Vec<String> {
    match answer {
        ChanServAnswer::Registered { founder } => {
            vec![format!("{chan} is now registered to {founder}.")]
        }
        ChanServAnswer::Dropped => vec![format!("{chan} has been dropped.")],
        ChanServAnswer::Info {
            founder,
            registered_at,
            topic_lock,
            modes,
            access,
        } => {
            let when = chrono::DateTime::from_timestamp_millis(*registered_at)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "unknown".into());
            vec![
                format!("Information on {chan}:"),
                format!("Founder    : {founder}"),
                format!("Registered : {when}"),
                format!("Modes      : {modes}"),
                format!("Topic lock : {}", on_off(*topic_lock)),
                format!("Access     : {access} entries"),
            ]
        }
        ChanServAnswer::Unchanged { nick, mode, add } => {
            let what = if *mode == 'o' { "opped" } else { "voiced" };
            let state = if *add { "already" } else { "not" };
            vec![format!("{nick} is {state} {what} on {chan}.")]
        }
        ChanServAnswer::AccessAdded { account, level } => vec![format!(
            "{account} is now on the access list of {chan} as {}.",
            level.as_str()
        )],
        ChanServAnswer::AccessRemoved { account } => {
            vec![format!(
                "{account} has been removed from the access list of {chan}."
            )]
        }
        ChanServAnswer::AccessList { founder, entries } => access_list(chan, founder, entries),
        ChanServAnswer::TopicLock { on } => {
            vec![format!("Topic lock for {chan} is now {}.", on_off(*on))]
        }
        ChanServAnswer::Refused { why, arg } => vec![refusal(chan, *why, arg)],
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

fn access_list(chan: &str, founder: &str, entries: &[AccessEntry]) -> Vec<String> {
    let mut out = vec![
        format!("Access list of {chan}:"),
        format!("  FOUNDER {founder}"),
    ];
    out.extend(
        entries
            .iter()
            .map(|e| format!("  {:<7} {}", e.level.as_str(), e.account)),
    );
    out.push(format!("End of the access list of {chan}."));
    out
}

fn refusal(chan: &str, why: ChanServRefusal, arg: &str) -> String {
    match why {
        ChanServRefusal::NotIdentified => {
            "You are not logged in to an account (/msg NickServ HELP).".to_string()
        }
        ChanServRefusal::NoSuchChannel => format!("{chan} does not exist (nobody is in it)."),
        ChanServRefusal::NotOnChannel => format!("You are not on {chan}."),
        ChanServRefusal::NotOp => {
            format!("You must be a channel operator of {chan} to register it.")
        }
        ChanServRefusal::NotRegistered => format!("{chan} is not registered."),
        ChanServRefusal::AlreadyRegistered => format!("{chan} is already registered."),
        ChanServRefusal::NotFounder => format!("You are not the founder of {chan}."),
        ChanServRefusal::NoAccess => format!("You do not have enough access on {chan}."),
        ChanServRefusal::NoSuchNick => format!("{arg} is not on {chan}."),
        ChanServRefusal::BadAccount => format!("{arg} is not a valid account name."),
        ChanServRefusal::IsFounder => format!("{arg} is the founder of {chan}."),
        ChanServRefusal::NotOnAccessList => format!("{arg} is not on the access list of {chan}."),
        ChanServRefusal::AccessListFull => format!("The access list of {chan} is full."),
        ChanServRefusal::Unavailable => {
            "ChanServ is temporarily unavailable, try again later.".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(text: &str) -> ChanServCommand {
        match parse(text) {
            Ok(Parsed::Command { chan, command }) => {
                assert_eq!(chan, "#Ops");
                command
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn commands_parse_case_insensitively() {
        assert_eq!(cmd("register #Ops"), ChanServCommand::Register);
        assert_eq!(cmd("DROP #Ops"), ChanServCommand::Drop);
        assert_eq!(cmd("Info   #Ops"), ChanServCommand::Info);
        assert_eq!(cmd("op #Ops"), ChanServCommand::Op { nick: None });
        assert_eq!(
            cmd("DEOP #Ops Bob"),
            ChanServCommand::Deop {
                nick: Some("Bob".into())
            }
        );
        assert_eq!(
            cmd("voice #Ops bob"),
            ChanServCommand::Voice {
                nick: Some("bob".into())
            }
        );
        assert_eq!(cmd("devoice #Ops"), ChanServCommand::Devoice { nick: None });
        assert_eq!(
            cmd("access #Ops add Bob op"),
            ChanServCommand::AccessAdd {
                account: "Bob".into(),
                level: AccessLevel::Op
            }
        );
        assert_eq!(
            cmd("ACCESS #Ops ADD carol VOICE"),
            ChanServCommand::AccessAdd {
                account: "carol".into(),
                level: AccessLevel::Voice
            }
        );
        assert_eq!(
            cmd("access #Ops del bob"),
            ChanServCommand::AccessDel {
                account: "bob".into()
            }
        );
        assert_eq!(cmd("access #Ops list"), ChanServCommand::AccessList);
        assert_eq!(
            cmd("set #Ops topiclock on"),
            ChanServCommand::SetTopicLock { on: true }
        );
        assert_eq!(
            cmd("SET #Ops TOPICLOCK Off"),
            ChanServCommand::SetTopicLock { on: false }
        );
        assert_eq!(parse("help"), Ok(Parsed::Help));
        assert_eq!(parse("HELP register"), Ok(Parsed::Help));
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("   "), Err(ParseError::Empty));
        assert_eq!(
            parse("frobnicate #a"),
            Err(ParseError::Unknown("FROBNICATE".into()))
        );
        let syntax = |text: &str| match parse(text) {
            Err(ParseError::Syntax(usage)) => usage,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(syntax("REGISTER"), "REGISTER <#channel>");
        assert_eq!(syntax("register #a extra"), "REGISTER <#channel>");
        assert_eq!(syntax("OP #a b c"), "OP <#channel> [nick]");
        for bad in [
            "ACCESS #a",
            "ACCESS #a ADD bob",
            "ACCESS #a ADD bob ADMIN",
            "ACCESS #a DEL",
            "ACCESS #a LIST x",
            "ACCESS #a WIPE",
        ] {
            assert!(syntax(bad).starts_with("ACCESS"), "{bad}");
        }
        assert_eq!(syntax("SET #a TOPICLOCK"), USAGE[7].1);
        assert_eq!(syntax("SET #a TOPICLOCK maybe"), USAGE[7].1);
        assert_eq!(syntax("SET #a GUARD ON"), USAGE[7].1);
        assert_eq!(
            parse("REGISTER ops"),
            Err(ParseError::BadChannel("ops".into()))
        );
        assert_eq!(
            parse("INFO #a:b"),
            Err(ParseError::BadChannel("#a:b".into()))
        );
    }

    #[test]
    fn every_refusal_names_its_subject() {
        let all = [
            ChanServRefusal::NotIdentified,
            ChanServRefusal::NoSuchChannel,
            ChanServRefusal::NotOnChannel,
            ChanServRefusal::NotOp,
            ChanServRefusal::NotRegistered,
            ChanServRefusal::AlreadyRegistered,
            ChanServRefusal::NotFounder,
            ChanServRefusal::NoAccess,
            ChanServRefusal::NoSuchNick,
            ChanServRefusal::BadAccount,
            ChanServRefusal::IsFounder,
            ChanServRefusal::NotOnAccessList,
            ChanServRefusal::AccessListFull,
            ChanServRefusal::Unavailable,
        ];
        let mut seen = std::collections::HashSet::new();
        for why in all {
            let text = refusal("#ops", why, "bob");
            assert!(seen.insert(text.clone()), "{why:?} says what another says");
            let about_arg = matches!(
                why,
                ChanServRefusal::NoSuchNick
                    | ChanServRefusal::BadAccount
                    | ChanServRefusal::IsFounder
                    | ChanServRefusal::NotOnAccessList
            );
            if about_arg {
                assert!(text.contains("bob"), "{why:?}: {text}");
            }
        }
        let info = answer_lines(
            "#ops",
            &ChanServAnswer::Info {
                founder: "alice".into(),
                registered_at: 0,
                topic_lock: true,
                modes: "+nt".into(),
                access: 2,
            },
        );
        assert_eq!(info[1], "Founder    : alice");
        assert_eq!(info[2], "Registered : 1970-01-01 00:00:00 UTC");
        assert_eq!(info[4], "Topic lock : ON");
    }
}
