//! The alerts exchange: the public door through which any internal system
//! posts into a room with a stock AMQP client.
//!
//! The contract (README "Alerts" is the user-facing copy):
//!
//! * Publish to [`ALERTS_EXCHANGE`] (`chat.alerts`, topic, durable) with the
//!   room as routing key, written as IRC users write it without the `#`
//!   (`ops` for `#ops`, `eu.prod` for `#eu.prod`; case does not matter).
//!   The router's queue [`ALERTS_QUEUE`] is bound with `#`, so every key
//!   routes; a `.` in a room name only matters to someone binding a queue
//!   of their own with wildcards.
//! * The body is plain UTF-8 text, or a JSON object
//!   `{"text": …, "severity": …, "source": …, "link": …}` (only `text` is
//!   required). Which one is decided by [`Format::of`]: the content type
//!   says it when set, otherwise a body that starts with `{` and parses as
//!   a JSON object is JSON.
//! * The bot that speaks is named after the source ([`bot_nick`]): the
//!   JSON `source`, else the AMQP `app-id` property, else
//!   [`DEFAULT_SOURCE`].
//!
//! Parsing is here, in the shared crate, because the router (which turns
//! alerts into intents), `chatctl alert` (which checks its arguments
//! before publishing) and the tests must agree on it exactly.

use lapin::options::{
    BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde::{Deserialize, Serialize};

use crate::schema::Actor;
use crate::topology::BusError;

/// Where internal systems publish alerts (topic, durable).
pub const ALERTS_EXCHANGE: &str = "chat.alerts";
/// The router's queue of alerts: durable, single active consumer (one
/// router at a time forwards them, in the order they were published).
pub const ALERTS_QUEUE: &str = "router.alerts";
/// The binding of [`ALERTS_QUEUE`]: every routing key.
pub const ALERTS_BINDING: &str = "#";

/// The source (and bot nick) of an alert that names none.
pub const DEFAULT_SOURCE: &str = "alerts";
/// The user name every alert bot shows (`grafana!bot@alerts.`).
pub const BOT_USER: &str = "bot";
/// The host every alert bot shows: like ChanServ's `services.`, a name no
/// client connection can have, so IRC users can tell a bot from a person
/// who took its nick.
pub const BOT_HOST: &str = "alerts.";

/// Largest body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest text accepted (after trimming), in bytes: about ten IRC lines.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest `source` accepted, in bytes (before sanitising).
pub const MAX_SOURCE_BYTES: usize = 64;
/// Largest `severity` accepted, in bytes.
pub const MAX_SEVERITY_BYTES: usize = 16;
/// Largest `link` accepted, in bytes.
pub const MAX_LINK_BYTES: usize = 2048;
/// Longest bot nick (the IRC gateway's NICKLEN).
pub const MAX_NICK_BYTES: usize = 30;
/// Longest room name (the IRC gateway's CHANNELLEN, less the `#`).
pub const MAX_ROOM_BYTES: usize = 49;

/// Why an alert was refused. Each is a label of the router's
/// `router_alerts_rejected_total` ([`AlertError::reason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("the routing key {0:?} is not a room name (1-{MAX_ROOM_BYTES} bytes, no space, comma, colon or control character)")]
    BadRoom(String),
    #[error("the body is {0} bytes, more than {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("content encoding {0:?} is not supported (send the text itself, UTF-8)")]
    Encoding(String),
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body is not a JSON object: {0}")]
    Json(String),
    #[error("the alert has no text")]
    NoText,
    #[error("the text is {0} bytes, more than {MAX_TEXT_BYTES}")]
    TextTooLong(usize),
    #[error("the text contains a NUL character")]
    Nul,
    #[error("the source {0:?} makes no nick (it needs a letter, at most {MAX_SOURCE_BYTES} bytes, and no service name)")]
    BadSource(String),
    #[error(
        "the severity {0:?} is not a word of 1-{MAX_SEVERITY_BYTES} letters, digits, '_' or '-'"
    )]
    BadSeverity(String),
    #[error(
        "the link {0:?} is not an http(s) URL of at most {MAX_LINK_BYTES} bytes without spaces"
    )]
    BadLink(String),
}

impl AlertError {
    /// The metric label of this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            AlertError::BadRoom(_) => "bad_room",
            AlertError::TooLarge(_) => "too_large",
            AlertError::Encoding(_) => "encoding",
            AlertError::NotUtf8 => "not_utf8",
            AlertError::Json(_) => "bad_json",
            AlertError::NoText => "no_text",
            AlertError::TextTooLong(_) => "text_too_long",
            AlertError::Nul => "nul",
            AlertError::BadSource(_) => "bad_source",
            AlertError::BadSeverity(_) => "bad_severity",
            AlertError::BadLink(_) => "bad_link",
        }
    }
}

/// An alert as received: what the AMQP delivery says, borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Envelope<'a> {
    pub routing_key: &'a str,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// The AMQP `app-id` property: the source of a plain-text alert.
    pub app_id: Option<&'a str>,
    pub body: &'a [u8],
}

/// A valid alert, ready to become a room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The room, as the routing key wrote it (not folded).
    pub room: String,
    /// Trimmed, line ends as `\n`.
    pub text: String,
    /// Lowercase.
    pub severity: Option<String>,
    /// The bot's nick ([`bot_nick`] of the source).
    pub source: String,
    pub link: Option<String>,
}

/// The JSON form of an alert's body. Unknown fields are ignored, so
/// publishers may send more than this version reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBody {
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// How a body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// The content type decides when it is set: `application/json` or any
    /// `…+json` is JSON, anything else plain text (parameters such as
    /// `; charset=utf-8` are ignored). Without one, a body that starts
    /// (after white space) with `{` and parses as a JSON object is JSON,
    /// so `curl`-style publishers need not set it; any other body, even
    /// one starting with `{`, is text.
    pub fn of(content_type: Option<&str>, body: &str) -> Format {
        if let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            return if mime == "application/json" || mime.ends_with("+json") {
                Format::Json
            } else {
                Format::Text
            };
        }
        let looks = body.trim_start().starts_with('{')
            && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body).is_ok();
        if looks {
            Format::Json
        } else {
            Format::Text
        }
    }
}

/// Reads and checks one alert.
pub fn parse(env: &Envelope<'_>) -> Result<Alert, AlertError> {
    let room = room_of(env.routing_key)?;
    if env.body.len() > MAX_BODY_BYTES {
        return Err(AlertError::TooLarge(env.body.len()));
    }
    if let Some(enc) = env
        .content_encoding
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if !matches!(
            enc.to_ascii_lowercase().as_str(),
            "identity" | "utf-8" | "utf8"
        ) {
            return Err(AlertError::Encoding(enc.to_string()));
        }
    }
    let body = std::str::from_utf8(env.body).map_err(|_| AlertError::NotUtf8)?;
    let fields = match Format::of(env.content_type, body) {
        Format::Json => {
            serde_json::from_str::<AlertBody>(body).map_err(|e| AlertError::Json(e.to_string()))?
        }
        Format::Text => AlertBody {
            text: Some(body.to_string()),
            ..AlertBody::default()
        },
    };
    let text = text_of(fields.text.as_deref().unwrap_or(""))?;
    let source = fields
        .source
        .as_deref()
        .or(env.app_id)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SOURCE);
    if source.len() > MAX_SOURCE_BYTES {
        return Err(AlertError::BadSource(source.to_string()));
    }
    let nick = bot_nick(source).ok_or_else(|| AlertError::BadSource(source.to_string()))?;
    let severity = match fields.severity.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(severity_of(s)?),
    };
    let link = match fields.link.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(l) => Some(link_of(l)?),
    };
    Ok(Alert {
        room,
        text,
        severity,
        source: nick,
        link,
    })
}

/// The room a routing key names: the key itself, checked against what an
/// IRC channel name may hold after its `#`.
fn room_of(key: &str) -> Result<String, AlertError> {
    let ok = (1..=MAX_ROOM_BYTES).contains(&key.len())
        && !key
            .chars()
            .any(|c| c == ' ' || c == ',' || c == ':' || c.is_control());
    if ok {
        Ok(key.to_string())
    } else {
        Err(AlertError::BadRoom(key.to_string()))
    }
}

fn text_of(raw: &str) -> Result<String, AlertError> {
    let text = raw.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(AlertError::NoText);
    }
    if text.contains('\0') {
        return Err(AlertError::Nul);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(AlertError::TextTooLong(text.len()));
    }
    Ok(text.to_string())
}

fn severity_of(raw: &str) -> Result<String, AlertError> {
    let ok = raw.len() <= MAX_SEVERITY_BYTES
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(AlertError::BadSeverity(raw.to_string()))
    }
}

fn link_of(raw: &str) -> Result<String, AlertError> {
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty())
        && raw.len() <= MAX_LINK_BYTES
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(AlertError::BadLink(raw.to_string()))
    }
}

/// The bot nick of a source: lowercase ASCII letters, digits and `_`
/// kept; every run of other characters (spaces, dots, slashes, `-`,
/// anything not ASCII) becomes one `-`; it starts at the first letter and
/// is cut to [`MAX_NICK_BYTES`], without a trailing `-`. So `Grafana` is
/// `grafana`, `Prometheus Alertmanager` `prometheus-alertmanager`,
/// `ci/cd.main` `ci-cd-main`. `None` when nothing is left, or for the
/// services' nicks (an alert must not speak as ChanServ).
///
/// Lowercase so that one source is one bot however a publisher spells
/// it (nicks compare case-insensitively anyway).
pub fn bot_nick(source: &str) -> Option<String> {
    let mut nick = String::new();
    for c in source.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            nick.push(c);
        } else if !nick.is_empty() && !nick.ends_with('-') {
            nick.push('-');
        }
    }
    let start = nick.find(|c: char| c.is_ascii_lowercase())?;
    let mut nick = nick[start..].to_string();
    nick.truncate(MAX_NICK_BYTES);
    let nick = nick.trim_end_matches('-').to_string();
    let service = matches!(nick.as_str(), "chanserv" | "nickserv");
    (!nick.is_empty() && !service).then_some(nick)
}

/// The actor an alert bot speaks as. Not a session: its sid names no
/// queue and its gateway none (no gateway serves it), like ChanServ's.
pub fn bot_actor(nick: &str) -> Actor {
    Actor {
        sid: format!("alerts.{nick}"),
        gateway: String::new(),
        nick: nick.to_string(),
        user: BOT_USER.into(),
        host: BOT_HOST.into(),
        realname: format!("Alerts from {nick}"),
        account: None,
    }
}

/// Whether `actor` is an alert bot ([`bot_actor`]): no session has such a
/// sid, and the host is not one a client can be shown with.
pub fn is_bot(actor: &Actor) -> bool {
    actor.sid.starts_with("alerts.") && actor.user == BOT_USER && actor.host == BOT_HOST
}

/// The message text every protocol shows: `[CRITICAL] Disk full on db1 —
/// https://…`. The severity (upper case) in brackets first when there is
/// one, the link last; a plain alert is its text alone.
pub fn render(text: &str, severity: Option<&str>, link: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    if let Some(s) = severity {
        out.push('[');
        out.push_str(&s.to_ascii_uppercase());
        out.push_str("] ");
    }
    out.push_str(text);
    if let Some(l) = link {
        out.push_str(" — ");
        out.push_str(l);
    }
    out
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declares the alerts exchange and the router's queue, bound to every
/// key. Idempotent; the router declares it on every connection, and
/// `chatctl alert` before publishing, so that an alert published while no
/// router runs waits in the queue instead of being dropped.
pub async fn declare(ch: &Channel) -> Result<(), BusError> {
    ch.exchange_declare(
        ALERTS_EXCHANGE.into(),
        ExchangeKind::Topic,
        durable_exchange(),
        FieldTable::default(),
    )
    .await?;
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-single-active-consumer"),
        AMQPValue::Boolean(true),
    );
    ch.queue_declare(
        ALERTS_QUEUE.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await?;
    ch.queue_bind(
        ALERTS_QUEUE.into(),
        ALERTS_EXCHANGE.into(),
        ALERTS_BINDING.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Publishes an alert as JSON (mandatory, persistent) on a channel with
/// publisher confirms, and waits for the broker's confirm. `app_id` names
/// the publishing program (informational: the JSON `source` wins).
pub async fn publish(
    ch: &Channel,
    room: &str,
    body: &AlertBody,
    app_id: &str,
) -> Result<(), BusError> {
    let json = serde_json::to_vec(body).expect("an alert body always serialises");
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_app_id(app_id.into());
    let confirm = ch
        .basic_publish(
            ALERTS_EXCHANGE.into(),
            room.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &json,
            props,
        )
        .await?
        .await?;
    if confirm.is_nack() || confirm.take_message().is_some() {
        return Err(BusError::Nacked {
            what: format!("{ALERTS_EXCHANGE}/{room}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(key: &'a str, ct: Option<&'a str>, body: &'a [u8]) -> Envelope<'a> {
        Envelope {
            routing_key: key,
            content_type: ct,
            body,
            ..Envelope::default()
        }
    }

    #[test]
    fn plain_text_is_the_text_from_the_app_id_or_the_default_bot() {
        let a = parse(&env("ops", None, b"  Disk full on db1\r\n")).unwrap();
        assert_eq!(
            a,
            Alert {
                room: "ops".into(),
                text: "Disk full on db1".into(),
                severity: None,
                source: "alerts".into(),
                link: None,
            }
        );
        let e = Envelope {
            app_id: Some("Jenkins CI"),
            ..env(
                "Ops",
                Some("text/plain; charset=utf-8"),
                b"line 1\r\nline 2\rline 3",
            )
        };
        let a = parse(&e).unwrap();
        assert_eq!((a.room.as_str(), a.source.as_str()), ("Ops", "jenkins-ci"));
        assert_eq!(a.text, "line 1\nline 2\nline 3");
    }

    #[test]
    fn json_by_content_type_or_by_its_looks() {
        let body = br#"{"text":"Disk full","severity":"CRITICAL","source":"grafana","link":"https://g.example/d/1","extra":[1]}"#;
        for ct in [
            Some("application/json"),
            Some("application/vnd.x+json"),
            None,
        ] {
            let a = parse(&env("ops", ct, body)).unwrap();
            assert_eq!(a.text, "Disk full");
            assert_eq!(a.severity.as_deref(), Some("critical"));
            assert_eq!(a.source, "grafana");
            assert_eq!(a.link.as_deref(), Some("https://g.example/d/1"));
        }
        // Declared text stays text, braces and all.
        let a = parse(&env("ops", Some("text/plain"), body)).unwrap();
        assert_eq!(a.text.as_bytes(), body);
        // Unlabelled and not a JSON object: text.
        for text in [&b"{not json}"[..], b"[1,2]", b"{\"a\":1} trailing"] {
            let a = parse(&env("ops", None, text)).unwrap();
            assert_eq!(a.text.as_bytes(), text);
        }
        // The JSON source wins over the app id; nulls are absent.
        let e = Envelope {
            app_id: Some("chatctl"),
            ..env(
                "ops",
                None,
                br#"{"text":"x","source":"ci","severity":null,"link":""}"#,
            )
        };
        let a = parse(&e).unwrap();
        assert_eq!((a.source.as_str(), a.severity, a.link), ("ci", None, None));
    }

    #[test]
    fn refusals() {
        let long_room = "r".repeat(MAX_ROOM_BYTES + 1);
        let cases: Vec<(Envelope, &str)> = vec![
            (env("", None, b"x"), "bad_room"),
            (env("a b", None, b"x"), "bad_room"),
            (env("a,b", None, b"x"), "bad_room"),
            (env(&long_room, None, b"x"), "bad_room"),
            (env("ops", None, &[0xff, 0xfe, b'x']), "not_utf8"),
            (env("ops", None, b"   \n "), "no_text"),
            (
                env("ops", Some("application/json"), b"{\"severity\":\"info\"}"),
                "no_text",
            ),
            (env("ops", None, b"{\"text\":\"\"}"), "no_text"),
            (
                env("ops", Some("application/json"), b"not json"),
                "bad_json",
            ),
            (
                env("ops", Some("application/json"), b"{\"text\":3}"),
                "bad_json",
            ),
            (env("ops", None, b"a\0b"), "nul"),
            (
                env("ops", None, b"{\"text\":\"x\",\"source\":\"42\"}"),
                "bad_source",
            ),
            (
                env("ops", None, b"{\"text\":\"x\",\"source\":\"ChanServ\"}"),
                "bad_source",
            ),
            (
                env("ops", None, b"{\"text\":\"x\",\"severity\":\"very bad\"}"),
                "bad_severity",
            ),
            (
                env(
                    "ops",
                    None,
                    b"{\"text\":\"x\",\"link\":\"javascript:alert(1)\"}",
                ),
                "bad_link",
            ),
            (
                env("ops", None, b"{\"text\":\"x\",\"link\":\"https://a b\"}"),
                "bad_link",
            ),
        ];
        for (e, reason) in cases {
            let got = parse(&e).expect_err(reason);
            assert_eq!(got.reason(), reason, "{e:?}: {got}");
        }
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse(&env("ops", None, &big)),
            Err(AlertError::TooLarge(MAX_BODY_BYTES + 1))
        );
        let long = vec![b'a'; MAX_TEXT_BYTES + 1];
        assert_eq!(
            parse(&env("ops", None, &long)).unwrap_err().reason(),
            "text_too_long"
        );
        let gz = Envelope {
            content_encoding: Some("gzip"),
            ..env("ops", None, b"x")
        };
        assert_eq!(parse(&gz).unwrap_err().reason(), "encoding");
        let utf8 = Envelope {
            content_encoding: Some("UTF-8"),
            ..env("ops", None, b"x")
        };
        assert!(parse(&utf8).is_ok());
        let long_source = format!("{{\"text\":\"x\",\"source\":\"{}\"}}", "s".repeat(65));
        assert_eq!(
            parse(&env("ops", None, long_source.as_bytes()))
                .unwrap_err()
                .reason(),
            "bad_source"
        );
    }

    #[test]
    fn room_keys_with_dots_and_symbols_are_room_names() {
        for key in ["eu.prod", "#ops", "café", "a-b_c", "x*y"] {
            assert_eq!(parse(&env(key, None, b"hi")).unwrap().room, key);
        }
    }

    #[test]
    fn nicks_from_sources() {
        let cases = [
            ("grafana", Some("grafana")),
            ("Grafana", Some("grafana")),
            ("Prometheus Alertmanager", Some("prometheus-alertmanager")),
            ("ci/cd.main", Some("ci-cd-main")),
            ("  --db_backup--  ", Some("db_backup")),
            ("9lives", Some("lives")),
            ("zabbix ünïcode", Some("zabbix-n-code")),
            ("grafana-alerts", Some("grafana-alerts")),
            ("42", None),
            ("", None),
            ("---", None),
            ("NickServ", None),
            ("chanserv", None),
        ];
        for (source, nick) in cases {
            assert_eq!(bot_nick(source).as_deref(), nick, "{source:?}");
        }
        let long = bot_nick(&format!("{}-x", "a".repeat(29))).unwrap();
        assert_eq!(long, "a".repeat(29), "cut to 30, trailing '-' dropped");
        let nick = bot_nick(&"b".repeat(64)).unwrap();
        assert_eq!(nick.len(), MAX_NICK_BYTES);
    }

    #[test]
    fn bot_identity_and_rendering() {
        let a = bot_actor("grafana");
        assert_eq!(a.hostmask(), "grafana!bot@alerts.");
        assert!(a.gateway.is_empty() && a.account.is_none());
        assert_eq!(
            render(
                "Disk full on db1",
                Some("critical"),
                Some("https://g.example/d/1")
            ),
            "[CRITICAL] Disk full on db1 — https://g.example/d/1"
        );
        assert_eq!(render("plain", None, None), "plain");
    }

    #[test]
    fn the_json_body_round_trips_through_the_parser() {
        let body = AlertBody {
            text: Some("deploy done".into()),
            severity: Some("info".into()),
            source: Some("ci".into()),
            link: None,
        };
        let json = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"text":"deploy done","severity":"info","source":"ci"}"#
        );
        let a = parse(&env("ops", Some("application/json"), &json)).unwrap();
        assert_eq!(
            (a.text.as_str(), a.severity.as_deref(), a.source.as_str()),
            ("deploy done", Some("info"), "ci")
        );
    }
}
