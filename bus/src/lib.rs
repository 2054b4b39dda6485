//! The shared library of the chat platform.
//!
//! Every process (edge gateway, router, history, auth) links this crate so
//! that they agree, byte for byte, on:
//!
//! * the wire schema of everything that travels over RabbitMQ ([`schema`],
//!   with the history contract in [`history`]),
//! * the names of exchanges, queues and routing keys and how they are
//!   declared ([`topology`]),
//! * how a room or nick name is folded, escaped and partitioned ([`names`]),
//! * the NATS key-value buckets that hold ephemeral cluster state ([`kv`]),
//!   and the signals of accounts coming and going ([`presence`]),
//! * configuration loading, logging, metrics, the admin HTTP port and
//!   graceful shutdown ([`config`], [`telemetry`], [`admin`], [`shutdown`]),
//!   put together in the same order by every binary ([`process`]),
//! * the contract of the alerts exchange, where any internal system posts
//!   into a room ([`alerts`]),
//! * how a service answers requests on a queue, acknowledging each only once
//!   its answer is confirmed ([`rpc`]).

pub mod admin;
pub mod alerts;
pub mod config;
pub mod history;
pub mod kv;
pub mod names;
pub mod pg;
pub mod presence;
pub mod process;
pub mod recovery;
pub mod roster;
pub mod rpc;
pub mod schema;
pub mod settle;
pub mod shutdown;
pub mod telemetry;
pub mod topology;

/// Milliseconds since the Unix epoch: the one timestamp unit used on the bus.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh random identifier (32 lowercase hex digits) for sessions, intents
/// and message ids. Safe as an AMQP routing-key word, a NATS KV key and an
/// IRCv3 tag value.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
