//! `{set}`: what of a topic's metadata the platform can change.
//!
//! * `fnd`: `desc.public` is the search query ([`super::fnd`]).
//! * A group: `desc.public.note` is the room's topic, so it is IRC's TOPIC
//!   (with IRC's rules: `+t` rooms need an operator); the reply waits for
//!   the room's event. A group's name (`public.fn`) is the IRC channel
//!   name, which cannot change.
//! * Anything else (profiles, tags, access modes) has no home in the
//!   platform yet: 501.

use bus::schema::IntentBody;
use serde_json::Value;

use super::conn::{Conn, Wait};
use super::fnd;
use super::wire::{self, code, Set};

/// A `{set}` waiting for the room's event (or the router's refusal).
#[derive(Debug)]
pub struct Setting {
    pub id: Option<String>,
    pub topic: String,
}

pub async fn on_set(c: &mut Conn, set: Set) {
    let id = set.id.as_deref();
    let topic = set.topic.as_str();
    let public = set.desc.as_ref().and_then(|d| d.get("public"));
    if topic == "fnd" {
        match public {
            Some(p) => fnd::set_query(c, id, p),
            None => c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED).topic(topic)),
        }
        return;
    }
    let Some(att) = c.topics.get(topic) else {
        let answer = if topic == "me" || c.peers.contains_key(topic) {
            code::NOT_IMPLEMENTED
        } else {
            code::MUST_ATTACH
        };
        c.reply(wire::ctrl(id, answer).topic(topic));
        return;
    };
    let note = public.and_then(|p| p.get("note")).and_then(Value::as_str);
    let (Some(note), None, None) = (note, &set.sub, &set.tags) else {
        c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED).topic(topic));
        return;
    };
    let body = IntentBody::Topic {
        room: att.name.clone(),
        topic: Some(note.to_string()),
    };
    let wait = Wait::Set(Setting {
        id: set.id.clone(),
        topic: topic.to_string(),
    });
    if c.intent(body, Some(wait)).await.is_none() {
        c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(topic));
    }
}

/// The room's topic event for our `{set}`.
pub fn on_topic_event(c: &mut Conn, intent: &str) {
    if !matches!(c.waiting(intent), Some(Wait::Set(_))) {
        return;
    }
    if let Some(Wait::Set(s)) = c.take_wait(intent) {
        c.reply(wire::ctrl(s.id.as_deref(), code::OK).topic(&s.topic));
    }
}
