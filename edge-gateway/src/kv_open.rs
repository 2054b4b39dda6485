//! Opens the NATS buckets without `bus::kv::open`.
//!
//! Why: `bus::kv::open` uses async-nats' `create_or_update_key_value`, which
//! first asks the server for account info and requires fields
//! (`reserved_memory`, `reserved_storage`) that NATS 2.9 does not send, so it
//! fails against NATS 2.9 ("data did not match any variant of untagged enum
//! Response"). Here the bucket's stream is created or updated directly, with
//! the same settings async-nats would derive from the same `kv::Config`
//! (history 1, max age, file storage), then opened with `get_key_value`,
//! which needs only stream info. The result is the shared [`Buckets`] type,
//! so the rest of the gateway is unaffected; when the contract is fixed this
//! module can go.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bus::config::NatsConfig;
use bus::kv::Buckets;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("NATS connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("NATS stream for bucket {bucket}: {detail}")]
    Stream { bucket: String, detail: String },
    #[error("NATS key-value bucket {bucket}: {detail}")]
    Bucket { bucket: String, detail: String },
}

/// The stream behind a KV bucket, as async-nats builds it for a
/// `kv::Config { history: 1, max_age, storage: File, .. }`.
fn stream_config(bucket: &str, max_age: Duration) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(String::new()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..stream::Config::default()
    }
}

async fn open_bucket(
    js: &jetstream::Context,
    bucket: String,
    max_age: Duration,
) -> Result<kv::Store, OpenError> {
    js.create_or_update_stream(stream_config(&bucket, max_age))
        .await
        .map_err(|e| OpenError::Stream {
            bucket: bucket.clone(),
            detail: e.to_string(),
        })?;
    js.get_key_value(bucket.as_str())
        .await
        .map_err(|e| OpenError::Bucket {
            bucket,
            detail: e.to_string(),
        })
}

/// Connects to NATS and opens (creating or updating) the four buckets.
pub async fn open(cfg: &NatsConfig, session_ttl: Duration) -> Result<Buckets, OpenError> {
    let client = async_nats::ConnectOptions::new()
        .name("edge-gateway")
        .retry_on_initial_connect()
        .connect(&cfg.url)
        .await?;
    let js = jetstream::new(client.clone());
    let name = |n: &str| format!("{}_{}", cfg.prefix, n);
    Ok(Buckets {
        sessions: open_bucket(&js, name("sessions"), session_ttl).await?,
        nicks: open_bucket(&js, name("nicks"), session_ttl).await?,
        rooms: open_bucket(&js, name("rooms"), Duration::ZERO).await?,
        routers: open_bucket(&js, name("routers"), Duration::ZERO).await?,
        client,
    })
}
