//! Tinode's JSON messages: what clients send, how server messages are
//! written, and timestamps as the SDK parses them.
//!
//! A client frame is one JSON object with exactly one of the known keys;
//! its payload is read leniently (unknown fields ignored, missing ones
//! defaulted), as Tinode does. Server frames carry exactly one of `ctrl`,
//! `data`, `meta`, `pres`, `info`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// What a client sent.
#[derive(Debug, Clone)]
pub enum ClientMsg {
    Hi(Hi),
    Acc(Acc),
    Login(Login),
    Sub(Sub),
    Leave(Leave),
    Pub(Pub),
    Get(Get),
    Set(Set),
    Del(Del),
    Note(Note),
}

/// Why a frame is not a client message: Tinode answers both with 400
/// `malformed`, with the id when one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub id: Option<String>,
}

const KINDS: [&str; 10] = [
    "hi", "acc", "login", "sub", "leave", "pub", "get", "set", "del", "note",
];

impl ClientMsg {
    pub fn parse(text: &str) -> Result<ClientMsg, Malformed> {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
            return Err(Malformed { id: None });
        };
        let Some((kind, body)) = obj.iter().find(|(k, _)| KINDS.contains(&k.as_str())) else {
            return Err(Malformed { id: None });
        };
        let id = body.get("id").and_then(id_string);
        let bad = || Malformed { id: id.clone() };
        let body = body.clone();
        fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
            serde_json::from_value(v).ok()
        }
        let msg = match kind.as_str() {
            "hi" => typed(body).map(ClientMsg::Hi),
            "acc" => typed(body).map(ClientMsg::Acc),
            "login" => typed(body).map(ClientMsg::Login),
            "sub" => typed(body).map(ClientMsg::Sub),
            "leave" => typed(body).map(ClientMsg::Leave),
            "pub" => typed(body).map(ClientMsg::Pub),
            "get" => typed(body).map(ClientMsg::Get),
            "set" => typed(body).map(ClientMsg::Set),
            "del" => typed(body).map(ClientMsg::Del),
            // A note is never answered: a bad one is dropped (as `what: ""`).
            _ => Some(ClientMsg::Note(typed(body).unwrap_or_default())),
        };
        msg.ok_or_else(bad)
    }

    /// The request id, echoed in the answer.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientMsg::Hi(m) => m.id.as_deref(),
            ClientMsg::Acc(m) => m.id.as_deref(),
            ClientMsg::Login(m) => m.id.as_deref(),
            ClientMsg::Sub(m) => m.id.as_deref(),
            ClientMsg::Leave(m) => m.id.as_deref(),
            ClientMsg::Pub(m) => m.id.as_deref(),
            ClientMsg::Get(m) => m.id.as_deref(),
            ClientMsg::Set(m) => m.id.as_deref(),
            ClientMsg::Del(m) => m.id.as_deref(),
            ClientMsg::Note(_) => None,
        }
    }
}

/// Ids are strings in Tinode; a number is accepted and echoed as a string.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn de_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .as_ref()
        .and_then(id_string))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Hi {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub ver: Option<String>,
    pub ua: Option<String>,
    pub lang: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Acc {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub user: Option<String>,
    pub scheme: Option<String>,
    pub secret: Option<String>,
    pub login: bool,
    pub tags: Vec<String>,
    pub desc: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Login {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub scheme: String,
    pub secret: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sub {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    pub set: Option<Value>,
    pub get: Option<GetQuery>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Leave {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    pub unsub: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pub {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    pub noecho: bool,
    pub head: Option<Map<String, Value>>,
    pub content: Value,
}

/// The query of a `{get}` (or the `get` of a `{sub}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GetQuery {
    /// Space-separated: `desc sub data del tags cred`.
    pub what: String,
    pub data: Option<DataQuery>,
    pub desc: Option<Value>,
    pub sub: Option<Value>,
}

impl GetQuery {
    /// Whether `what` lists `token` (any order; unknown tokens ignored).
    pub fn wants(&self, token: &str) -> bool {
        self.what.split_whitespace().any(|t| t == token)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DataQuery {
    pub since: Option<u64>,
    pub before: Option<u64>,
    pub limit: Option<u32>,
    pub ranges: Option<Vec<Range>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Range {
    pub low: u64,
    pub hi: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Get {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    #[serde(flatten)]
    pub query: GetQuery,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Set {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    pub desc: Option<Value>,
    pub sub: Option<Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Del {
    #[serde(deserialize_with = "de_id")]
    pub id: Option<String>,
    pub topic: String,
    pub what: String,
    pub delseq: Vec<Range>,
    pub hard: bool,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Note {
    pub topic: String,
    pub what: String,
    pub seq: Option<u64>,
}

/// A timestamp as Tinode writes it: RFC 3339, UTC, milliseconds, `Z` (the
/// SDK turns only 20–24 character strings into dates).
pub fn ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Builds a `{ctrl}`.
#[derive(Debug, Clone)]
pub struct Ctrl {
    id: Option<String>,
    topic: Option<String>,
    code: u16,
    text: String,
    params: Map<String, Value>,
}

impl Ctrl {
    pub fn new(id: Option<&str>, code: u16, text: &str) -> Self {
        Self {
            id: id.map(str::to_string),
            topic: None,
            code,
            text: text.to_string(),
            params: Map::new(),
        }
    }

    pub fn topic(mut self, topic: &str) -> Self {
        self.topic = Some(topic.to_string());
        self
    }

    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.params.insert(key.to_string(), value.into());
        self
    }

    pub fn build(self) -> Value {
        let mut ctrl = Map::new();
        if let Some(id) = self.id {
            ctrl.insert("id".into(), id.into());
        }
        if let Some(topic) = self.topic {
            ctrl.insert("topic".into(), topic.into());
        }
        ctrl.insert("code".into(), self.code.into());
        ctrl.insert("text".into(), self.text.into());
        if !self.params.is_empty() {
            ctrl.insert("params".into(), Value::Object(self.params));
        }
        ctrl.insert("ts".into(), ts(bus::now_ms()).into());
        json!({ "ctrl": ctrl })
    }
}

/// The usual texts of the codes this server sends.
pub mod code {
    pub const OK: (u16, &str) = (200, "ok");
    pub const CREATED: (u16, &str) = (201, "created");
    pub const ACCEPTED: (u16, &str) = (202, "accepted");
    pub const NO_CONTENT: (u16, &str) = (204, "no content");
    pub const EVICTED: (u16, &str) = (205, "evicted");
    pub const DELIVERED: (u16, &str) = (208, "delivered");
    pub const ALREADY_SUBSCRIBED: (u16, &str) = (304, "already subscribed");
    pub const NOT_JOINED: (u16, &str) = (304, "not joined");
    pub const MALFORMED: (u16, &str) = (400, "malformed");
    pub const AUTH_REQUIRED: (u16, &str) = (401, "authentication required");
    pub const AUTH_FAILED: (u16, &str) = (401, "authentication failed");
    pub const UNKNOWN_SCHEME: (u16, &str) = (401, "unknown authentication scheme");
    pub const PERMISSION_DENIED: (u16, &str) = (403, "permission denied");
    pub const NOT_FOUND: (u16, &str) = (404, "not found");
    pub const OUT_OF_SEQUENCE: (u16, &str) = (409, "command out of sequence");
    pub const ALREADY_AUTHENTICATED: (u16, &str) = (409, "already authenticated");
    pub const DUPLICATE_CREDENTIAL: (u16, &str) = (409, "duplicate credential");
    pub const MUST_ATTACH: (u16, &str) = (409, "must attach first");
    pub const TOO_LARGE: (u16, &str) = (413, "too large");
    pub const POLICY: (u16, &str) = (422, "policy violation");
    pub const TOO_MANY: (u16, &str) = (429, "too many requests");
    pub const INTERNAL: (u16, &str) = (500, "internal error");
    pub const NOT_IMPLEMENTED: (u16, &str) = (501, "not implemented");
    pub const UNAVAILABLE: (u16, &str) = (503, "service unavailable");
    pub const TIMEOUT: (u16, &str) = (504, "gateway timeout");
    pub const VERSION: (u16, &str) = (505, "version not supported");
}

/// A ctrl from one of [`code`]'s pairs.
pub fn ctrl(id: Option<&str>, (code, text): (u16, &str)) -> Ctrl {
    Ctrl::new(id, code, text)
}

/// A subscriptions answer: `{meta sub}`, or 204 when there are none.
pub fn subs(id: Option<&str>, topic: &str, subs: Vec<Value>) -> Value {
    if subs.is_empty() {
        ctrl(id, code::NO_CONTENT)
            .topic(topic)
            .param("what", "sub")
            .build()
    } else {
        meta(id, topic, "sub", Value::Array(subs))
    }
}

/// `{"meta": {...}}` with `id`, `topic` and `ts`.
pub fn meta(id: Option<&str>, topic: &str, key: &str, value: Value) -> Value {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), id.into());
    }
    m.insert("topic".into(), topic.into());
    m.insert(key.into(), value);
    m.insert("ts".into(), ts(bus::now_ms()).into());
    json!({ "meta": m })
}

/// `{"pres": {...}}` (no `ts`, as Tinode sends it).
pub fn pres(topic: &str, src: &str, what: &str) -> Value {
    json!({ "pres": { "topic": topic, "src": src, "what": what } })
}

/// `{"info": {...}}` (no `ts`).
pub fn info(topic: &str, from: &str, what: &str, seq: Option<u64>) -> Value {
    let mut m = Map::new();
    m.insert("topic".into(), topic.into());
    m.insert("from".into(), from.into());
    m.insert("what".into(), what.into());
    if let Some(seq) = seq {
        m.insert("seq".into(), seq.into());
    }
    json!({ "info": m })
}

/// Whether a `{hi}` version is one this server speaks (0.20 or later).
/// `None` when it cannot be read at all.
pub fn version_ok(ver: &str) -> Option<bool> {
    let mut parts = ver.trim().split(['.', '-', '+']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some(major > 0 || minor >= 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_leniently() {
        let m = ClientMsg::parse(r#"{"hi":{"id":"1","ver":"0.25.3","extra":1}}"#).unwrap();
        assert!(matches!(m, ClientMsg::Hi(ref h) if h.ver.as_deref() == Some("0.25.3")));
        assert_eq!(m.id(), Some("1"));
        let m =
            ClientMsg::parse(r#"{"pub":{"id":7,"topic":"grpx","content":{"txt":"hi"}}}"#).unwrap();
        assert_eq!(m.id(), Some("7"));
        let m = ClientMsg::parse(
            r#"{"get":{"id":"2","topic":"grpx","what":"data desc","data":{"since":3,"limit":5}}}"#,
        )
        .unwrap();
        let ClientMsg::Get(g) = m else { panic!() };
        assert!(g.query.wants("desc") && g.query.wants("data") && !g.query.wants("sub"));
        assert_eq!(g.query.data.unwrap().since, Some(3));
    }

    #[test]
    fn bad_frames_are_malformed_with_the_id_when_readable() {
        assert_eq!(
            ClientMsg::parse("{nope").unwrap_err(),
            Malformed { id: None }
        );
        assert_eq!(
            ClientMsg::parse(r#"{"what":{}}"#).unwrap_err(),
            Malformed { id: None }
        );
        assert_eq!(ClientMsg::parse("[1]").unwrap_err(), Malformed { id: None });
        assert_eq!(
            ClientMsg::parse(r#"{"sub":{"id":"9","topic":5}}"#).unwrap_err(),
            Malformed {
                id: Some("9".into())
            }
        );
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(ts(1_444_155_249_841), "2015-10-06T18:14:09.841Z");
        assert_eq!(ts(0).len(), 24);
    }

    #[test]
    fn versions() {
        assert_eq!(version_ok("0.25"), Some(true));
        assert_eq!(version_ok("0.15.8-rc2"), Some(false));
        assert_eq!(version_ok("0.25.3"), Some(true));
        assert_eq!(version_ok("1"), Some(true));
        assert_eq!(version_ok("x"), None);
    }
}
