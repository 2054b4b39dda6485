//! The auth service: accounts, SASL (PLAIN, SCRAM-SHA-1, SCRAM-SHA-256),
//! registration and session tokens, answering [`bus::schema::AuthRequest`]s
//! from the `auth.requests` queue. The library is shared by the service
//! binary and the `chatctl` admin tool.

pub mod config;
pub mod credentials;
pub mod db;
pub mod passwords;
pub mod roster;
pub mod scram;
pub mod scram_state;
pub mod seal;
pub mod service;
pub mod tokens;
pub mod validate;
pub mod worker;
