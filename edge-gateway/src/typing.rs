//! Typing notifications in rooms ride core NATS, not the router.
//!
//! "Alice is typing" matters for a few seconds and to whoever is in the
//! room right now: it needs no room seq, no order against the messages, no
//! history and no broker persistence. So a room `TAGMSG` whose only client
//! tags are typing tags (IRC `+typing`, Tinode `{note kp}`, XMPP chat
//! states in a room) is signalled on `<prefix>.typing.<escaped room>` and
//! every gateway with local members in the room listens on that subject:
//! the dispatcher subscribes when a room gets its first local member and
//! unsubscribes when its last one leaves, as it does with its room index.
//!
//! The sender's gateway checks that the sender is in the room. The router's
//! other rules (+m, bans) are not applied to typing: a muted member's
//! typing notice is shown. The sender itself is not sent its own signal
//! back; an IRC client with echo-message gets its echo from its gateway at
//! once.

use bus::names::{escape, fold};
use bus::schema::{Actor, ClientTags, EventBody, MessageKind, RoomEvent, BOT_TAG, SCHEMA_VERSION};

use crate::gateway::Gateway;
use crate::metrics;
use crate::signals::Followers;

/// The client tags that make a typing notification (`+draft/typing` is
/// what clients sent before the spec was ratified).
pub const TYPING_TAGS: [&str; 2] = ["+typing", "+draft/typing"];
/// Signals buffered for the dispatcher before the oldest are dropped.
const BUFFER: usize = 1024;

/// Whether `tags` make a room TAGMSG a typing notification only (the
/// server's `bot` tag may ride along).
pub fn only_typing(tags: &ClientTags) -> bool {
    tags.keys().any(|k| TYPING_TAGS.contains(&k.as_str()))
        && tags
            .keys()
            .all(|k| TYPING_TAGS.contains(&k.as_str()) || k == BOT_TAG)
}

/// `<prefix>.typing.<escaped folded room>`.
pub fn subject(prefix: &str, room: &str) -> String {
    format!("{prefix}.typing.{}", escape(&fold(room)))
}

/// The event a typing signal is shown as: a TAGMSG outside the room's
/// sequence (seq 0, never stored).
pub fn event(actor: &Actor, name: &str, tags: ClientTags) -> RoomEvent {
    RoomEvent {
        v: SCHEMA_VERSION,
        room: fold(name),
        name: name.to_string(),
        seq: 0,
        mseq: None,
        id: bus::new_id(),
        at: bus::now_ms(),
        actor: actor.clone(),
        body: EventBody::Message {
            kind: MessageKind::Tagmsg,
            text: String::new(),
            tags,
        },
        intent_at: None,
    }
}

/// Signals `actor` typing in room `name` (best effort) and returns the
/// event as the others see it.
pub async fn signal(gw: &Gateway, actor: &Actor, name: &str, tags: ClientTags) -> RoomEvent {
    let ev = event(actor, name, tags);
    let payload = serde_json::to_vec(&ev).unwrap_or_default();
    let nats = gw.registry.nats();
    match nats
        .publish(subject(gw.registry.prefix(), name), payload.into())
        .await
    {
        Ok(()) => metrics::typing_signal(),
        Err(e) => tracing::debug!(error = %e, "publishing a typing signal failed"),
    }
    ev
}

/// The dispatcher's subscriptions: one per room with local members.
pub struct Watch {
    prefix: String,
    rooms: Followers<RoomEvent>,
}

impl Watch {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            rooms: Followers::new(client, BUFFER),
        }
    }

    /// Listens on `room` (folded) while `wanted`, not otherwise.
    pub fn set(&mut self, room: &str, wanted: bool) {
        match (wanted, self.rooms.follows(room)) {
            (true, false) => {
                let expected = room.to_string();
                self.rooms
                    .follow(room, subject(&self.prefix, room), move |payload| {
                        serde_json::from_slice::<RoomEvent>(payload)
                            .ok()
                            .filter(|ev| ev.room == expected && is_typing(ev))
                    });
            }
            (false, true) => self.rooms.unfollow(room),
            _ => {}
        }
    }

    pub async fn next(&mut self) -> Option<RoomEvent> {
        self.rooms.next().await
    }
}

/// What arrives is only shown if it is what a typing signal may be (a
/// TAGMSG of typing tags): the subject is not a way into the rooms.
fn is_typing(ev: &RoomEvent) -> bool {
    matches!(&ev.body, EventBody::Message { kind: MessageKind::Tagmsg, tags, .. } if only_typing(tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> ClientTags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_typing_tags_make_a_typing_signal() {
        assert!(only_typing(&tags(&[("+typing", "active")])));
        assert!(only_typing(&tags(&[("+draft/typing", "paused")])));
        assert!(only_typing(&tags(&[("+typing", "done"), (BOT_TAG, "")])));
        assert!(!only_typing(&tags(&[])));
        assert!(!only_typing(&tags(&[(BOT_TAG, "")])));
        assert!(!only_typing(&tags(&[
            ("+typing", "active"),
            ("+draft/react", "👍")
        ])));
        assert!(!only_typing(&tags(&[("+draft/reply", "abc")])));
    }

    #[test]
    fn one_subject_per_room_whatever_the_case() {
        assert_eq!(subject("chat", "Ops"), "chat.typing.ops");
        assert_eq!(subject("t1", "A.b"), subject("t1", "a.B"));
    }

    #[test]
    fn a_signal_is_a_tagmsg_outside_the_sequence() {
        let actor = Actor {
            sid: "s".into(),
            gateway: "g".into(),
            nick: "n".into(),
            user: "u".into(),
            host: "h".into(),
            realname: "r".into(),
            account: None,
        };
        let ev = event(&actor, "Ops", tags(&[("+typing", "active")]));
        assert_eq!((ev.room.as_str(), ev.seq, ev.mseq), ("ops", 0, None));
        assert!(is_typing(&ev));
        let mut forged = ev.clone();
        forged.body = EventBody::Message {
            kind: MessageKind::Privmsg,
            text: "hi".into(),
            tags: tags(&[("+typing", "active")]),
        };
        assert!(!is_typing(&forged));
    }
}
