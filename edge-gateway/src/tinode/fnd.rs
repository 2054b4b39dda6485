//! The `fnd` topic: finding people and groups.
//!
//! The query is set with `{set topic:"fnd" desc:{public:"…"}}` (what the
//! SDK's `TopicFnd.setMeta` sends) and answered by `{get topic:"fnd"
//! what:"sub"}`. Its terms are separated by spaces or commas; a term is
//! a tag as Tinode writes them. Accounts carry the tags `basic:<name>`
//! and `email:<address>` (plain names and addresses match too), looked
//! up by the auth service; rooms are found by name (`#ops`, `ops`),
//! except secret (`+s`) ones, as IRC's LIST hides them.

use bus::names::fold;
use bus::schema::{AuthReplyBody, AuthRequestBody};
use serde_json::{json, Value};

use super::conn::{Conn, Wait};
use super::ids;
use super::wire::{self, code};

/// Terms kept from one query, and the most results.
const MAX_TERMS: usize = 16;
const MAX_RESULTS: u32 = 50;

/// A search waiting for the auth service.
#[derive(Debug)]
pub struct Searching {
    pub id: Option<String>,
    /// Rooms already found.
    rooms: Vec<Value>,
}

/// The terms of a query (`public` of `{set fnd desc}`).
pub fn terms(public: &Value) -> Vec<String> {
    let text = match public {
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    text.split(|ch: char| ch == ',' || ch.is_whitespace())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .take(MAX_TERMS)
        .map(str::to_string)
        .collect()
}

/// `{set topic:"fnd" desc:{public}}`.
pub fn set_query(c: &mut Conn, id: Option<&str>, public: &Value) {
    c.fnd_query = terms(public);
    c.reply(wire::ctrl(id, code::OK).topic("fnd"));
}

/// `{get topic:"fnd" what:"sub"}`.
pub async fn search(c: &mut Conn, id: Option<&str>) {
    if c.fnd_query.is_empty() {
        c.reply(
            wire::ctrl(id, code::NO_CONTENT)
                .topic("fnd")
                .param("what", "sub"),
        );
        return;
    }
    let mut names: Vec<String> = c
        .fnd_query
        .iter()
        .filter(|t| !t.contains(':') || t.starts_with('#'))
        .map(|t| fold(t.trim_start_matches('#')))
        .filter(|t| !t.is_empty())
        .collect();
    names.dedup();
    let rooms = c
        .gw
        .registry
        .rooms_named(names)
        .await
        .into_iter()
        .filter(|r| !r.members.is_empty() && !r.modes.secret)
        .map(|r| {
            json!({
                "topic": ids::group_topic(&r.room),
                "updated": wire::ts(r.created_at),
                "public": {"fn": format!("#{}", r.name)},
                "private": {"comment": r.topic.as_ref().map(|t| t.text.clone()).unwrap_or_default()},
            })
        })
        .collect();
    let body = AuthRequestBody::Search {
        terms: c.fnd_query.clone(),
        limit: MAX_RESULTS,
    };
    let searching = Searching {
        id: id.map(str::to_string),
        rooms,
    };
    if c.ask_auth(body, Wait::Search(searching)).await.is_none() {
        c.reply(wire::ctrl(id, code::UNAVAILABLE).topic("fnd"));
    }
}

/// The accounts found.
pub fn on_found(c: &mut Conn, s: Searching, body: AuthReplyBody) {
    let id = s.id.as_deref();
    let accounts = match body {
        AuthReplyBody::Found { accounts } => accounts,
        other => {
            tracing::debug!(?other, "tinode: search failed");
            c.reply(wire::ctrl(id, code::INTERNAL).topic("fnd"));
            return;
        }
    };
    let me = c.uid().to_string();
    let mut subs = s.rooms;
    subs.extend(
        accounts
            .into_iter()
            .filter(|a| ids::account_uid(&a.account) != me)
            .map(|a| {
                json!({
                    "user": ids::account_uid(&a.account),
                    "updated": wire::ts(a.registered_at),
                    "acs": {"mode": "JRWPA"},
                    "public": {"fn": a.account},
                    "private": [a.matched],
                })
            }),
    );
    c.send(wire::subs(id, "fnd", subs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_terms() {
        assert_eq!(
            terms(&json!("alice, basic:bob  #ops")),
            vec!["alice", "basic:bob", "#ops"]
        );
        assert!(terms(&json!({"x": 1})).is_empty());
        assert!(terms(&json!(" , ")).is_empty());
    }
}
