//! The history service: keeps room events and direct messages in PostgreSQL
//! and answers history queries (IRC CHATHISTORY today; XMPP MAM and Tinode
//! later), per the contract in [`bus::history`].
//!
//! ```text
//!  chat.rooms ──(room.*)──▶ history.events ─┐  consume: batches, one
//!  "" ──────────────────▶ history.direct ───┤  transaction each, ack after commit
//!  "" ─────────────────▶ history.requests ──┘  requests: membership (NATS rooms
//!                                              bucket) + queries → reply_to
//! ```
//!
//! The library is shared by the service binary and `history-bench`, which
//! measures the very query functions the service answers with.

pub mod access;
pub mod config;
pub mod consume;
pub mod items;
pub mod metrics;
pub mod requests;
pub mod store;
