//! Ephemeral cluster state in NATS JetStream key-value buckets.
//!
//! | bucket              | key                     | value                         | max age |
//! |---------------------|-------------------------|-------------------------------|---------|
//! | `<prefix>_sessions` | sid                     | [`SessionRecord`]             | session TTL |
//! | `<prefix>_nicks`    | `nick.<escaped folded>` | [`NickClaim`]                 | session TTL |
//! | `<prefix>_rooms`    | `room.<escaped folded>` | [`RoomRecord`]                | none    |
//! | `<prefix>_routers`  | `owner.<partition>`     | router instance id            | none    |
//!
//! NATS 2.9 has no per-key TTL, so the session and nick buckets carry a
//! bucket-wide max age and each gateway re-puts its entries on a heartbeat
//! (every third of the TTL). An entry whose gateway died ages out; routers
//! sweep room members whose session entry is gone and broadcast their QUIT.
//! Nick claims use `create`, which fails if the key exists: that is what
//! keeps nicks unique across every gateway.
//!
//! [`SessionRecord`]: crate::schema::SessionRecord
//! [`NickClaim`]: crate::schema::NickClaim
//! [`RoomRecord`]: crate::schema::RoomRecord

use std::time::Duration;

use async_nats::jetstream::{self, kv};

use crate::config::NatsConfig;
use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("NATS connect: {0}")]
    Connect(String),
    #[error("NATS key-value bucket {bucket}: {detail}")]
    Bucket { bucket: String, detail: String },
}

/// The buckets of one deployment (one prefix).
#[derive(Clone)]
pub struct Buckets {
    pub client: async_nats::Client,
    /// The deployment's prefix, which also starts its signal subjects.
    pub prefix: String,
    pub sessions: kv::Store,
    pub nicks: kv::Store,
    pub rooms: kv::Store,
    pub routers: kv::Store,
    /// Who used a nick lately (IRC WHOWAS), kept for [`WHOWAS_MAX_AGE`].
    pub whowas: kv::Store,
}

/// How long WHOWAS remembers a nick's last users.
pub const WHOWAS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The key of a nick's WHOWAS entries (case-insensitive).
pub fn whowas_key(nick: &str) -> String {
    format!("whowas.{}", names::escape(&names::fold(nick)))
}

/// One former user of a nick.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhowasEntry {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The gateway it was on, and when it left the nick (ms).
    pub server: String,
    pub at: i64,
}

/// The key of a session record: its sid.
pub fn session_key(sid: &str) -> String {
    sid.to_string()
}

/// The key of a nick claim (case-insensitive).
pub fn nick_key(nick: &str) -> String {
    format!("nick.{}", names::escape(&names::fold(nick)))
}

/// The key of a room record (takes the folded room name).
pub fn room_key(room: &str) -> String {
    format!("room.{}", names::escape(room))
}

/// The folded room name back from a room record key.
pub fn room_from_key(key: &str) -> Option<String> {
    names::unescape(key.strip_prefix("room.")?)
}

/// The key that records which router instance last owned a partition.
pub fn owner_key(partition: u16) -> String {
    format!("owner.{partition}")
}

/// The stream behind a key-value bucket with history 1, as JetStream's KV
/// layer defines it (`KV_<bucket>` on subjects `$KV.<bucket>.>`).
fn bucket_stream(bucket: &str, max_age: Duration) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// Connects to NATS and opens (creating or updating) the buckets.
///
/// The buckets' streams are created directly rather than with async-nats'
/// `create_key_value`: that first queries the JetStream account and insists
/// on fields (`reserved_memory`, `reserved_storage`) that NATS 2.9 does not
/// send, so it fails on Debian's NATS. Opening with `get_key_value` needs only
/// the stream's info.
pub async fn open(cfg: &NatsConfig, session_ttl: Duration) -> Result<Buckets, KvError> {
    // No retry on the initial connect: a process whose NATS is missing should
    // fail at start-up with a clear error, and its supervisor restart it.
    let client = async_nats::ConnectOptions::new()
        .name("chat")
        .connection_timeout(Duration::from_secs(5))
        .connect(&cfg.url)
        .await
        .map_err(|e| KvError::Connect(e.to_string()))?;
    let js = jetstream::new(client.clone());
    let open = |name: &str, max_age: Duration| {
        let js = js.clone();
        let bucket = format!("{}_{}", cfg.prefix, name);
        async move {
            let fail = |detail: String| KvError::Bucket {
                bucket: bucket.clone(),
                detail,
            };
            js.create_or_update_stream(bucket_stream(&bucket, max_age))
                .await
                .map_err(|e| fail(e.to_string()))?;
            js.get_key_value(bucket.as_str())
                .await
                .map_err(|e| fail(e.to_string()))
        }
    };
    Ok(Buckets {
        sessions: open("sessions", session_ttl).await?,
        nicks: open("nicks", session_ttl).await?,
        rooms: open("rooms", Duration::ZERO).await?,
        routers: open("routers", Duration::ZERO).await?,
        whowas: open("whowas", WHOWAS_MAX_AGE).await?,
        client,
        prefix: cfg.prefix.clone(),
    })
}
