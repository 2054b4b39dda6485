//! Message retraction in rooms (XEP-0424, `urn:xmpp:message-retract:1`).
//!
//! A groupchat message to the room carrying `<retract id="…"/>` asks to
//! delete the room message whose stanza-id is `id` (the stanza-id is the
//! IRC `msgid`). Like IRC `REDACT`, it goes through history first
//! ([`crate::redaction::lookup`]: does the message exist, who wrote it)
//! and becomes the router's `redact` intent; deleting another occupant's
//! message takes a moderator (an IRC operator). The room's `Redact` event
//! comes back to every XMPP occupant as a groupchat message from the
//! actor's occupant JID with the `<retract/>`, a XEP-0428 fallback marker
//! and a short body for clients that know no retraction; the actor's own
//! copy is the reflection of its stanza (same id).
//!
//! Errors are stanza errors on the retraction: `bad-request` without an
//! id, `item-not-found` for an id that names no message of the room (or
//! one deleted already), `forbidden` for someone else's message without
//! moderator rights or a room whose history the client may not read.

use bus::history::{HistoryError, HistoryItem};
use bus::schema::{EventBody, RoomEvent};

use super::conn::Conn;
use super::history::{self, Purpose};
use super::jid;
use super::muc::{message_error, NS_SID};
use super::session::{self, Op};
use super::stanza_error::StanzaCondition;
use super::xml::{Element, NS_CLIENT};
use crate::redaction;

pub const NS_RETRACT: &str = "urn:xmpp:message-retract:1";
pub const NS_FALLBACK: &str = "urn:xmpp:fallback:0";

/// A retraction on its way through history.
#[derive(Debug, Clone)]
pub struct Retracting {
    /// The room (display name as the session knows it).
    pub room: String,
    /// The room JID as the client wrote it.
    pub to: String,
    /// The client's stanza id, for the reflection and for errors.
    pub id: Option<String>,
    /// The stanza-id of the message to delete.
    pub msgid: String,
}

/// A `<retract/>` in a groupchat message to `room` (which the session is in).
pub async fn on_retract(
    c: &mut Conn,
    room: String,
    to: String,
    id: Option<String>,
    retract: &Element,
) {
    let Some(msgid) = retract.get_attr("id").filter(|m| !m.is_empty()) else {
        let text = Some("a retraction names the message by its id");
        let err = StanzaCondition::BadRequest;
        c.push(message_error(c, &to, id.as_deref(), err, text));
        return;
    };
    let r = Retracting {
        room,
        to,
        id,
        msgid: msgid.to_string(),
    };
    if !redaction::plausible_msgid(&r.msgid) {
        return not_found(c, &r);
    }
    let query = redaction::lookup(&r.room, &r.msgid);
    if !history::request(c, query, Purpose::Retract(r.clone())).await {
        lookup_failed(c, &r, None);
    }
}

/// History answered: publish the intent if the message is there.
pub async fn found(c: &mut Conn, r: Retracting, items: &[HistoryItem]) {
    let Some(item) = redaction::target(items, &r.msgid) else {
        return not_found(c, &r);
    };
    let body = redaction::intent(&r.room, item, &c.sid, c.account.as_deref(), None);
    match session::intent(c, body).await {
        Some(intent) => {
            if let Some(s) = c.session.as_mut() {
                // Answered like a groupchat message: the event is the
                // reflection (with the client's id), a refusal an error.
                s.remember(intent, Op::Message { to: r.to, id: r.id });
            }
        }
        None => {
            let text = Some("the retraction could not be delivered, please try again");
            let err = StanzaCondition::InternalServerError;
            c.push(message_error(c, &r.to, r.id.as_deref(), err, text));
        }
    }
}

/// The lookup failed (`None`: no answer in time, or not sent).
pub fn lookup_failed(c: &mut Conn, r: &Retracting, code: Option<HistoryError>) {
    let condition = match code {
        Some(HistoryError::InvalidTarget) => StanzaCondition::Forbidden,
        Some(HistoryError::Malformed) => StanzaCondition::ItemNotFound,
        Some(HistoryError::Internal) | None => StanzaCondition::InternalServerError,
    };
    c.push(message_error(c, &r.to, r.id.as_deref(), condition, None));
}

fn not_found(c: &mut Conn, r: &Retracting) {
    let text = Some("no such message in this room");
    let err = StanzaCondition::ItemNotFound;
    c.push(message_error(c, &r.to, r.id.as_deref(), err, text));
}

/// The room's `Redact` event as the occupant `to` sees it: from the
/// actor's occupant JID, with `id` (the reflection's, or the event's id)
/// and the event's own stanza-id. `None` for any other event.
pub fn retraction(ev: &RoomEvent, domain: &str, to: &str, id: &str) -> Option<Element> {
    let EventBody::Redact { msgid, reason, .. } = &ev.body else {
        return None;
    };
    let nick = ev.actor.nick.as_str();
    let body = match reason {
        Some(r) => format!("{nick} retracted a message: {r}"),
        None => format!("{nick} retracted a message"),
    };
    Some(
        Element::new("message", NS_CLIENT)
            .attr("type", "groupchat")
            .attr("from", jid::occupant_jid(&ev.room, nick, domain))
            .attr("to", to)
            .attr("id", id)
            .child(Element::new("retract", NS_RETRACT).attr("id", msgid.as_str()))
            .child(Element::new("fallback", NS_FALLBACK).attr("for", NS_RETRACT))
            .child(Element::new("body", NS_CLIENT).text(body))
            .child(
                Element::new("stanza-id", NS_SID)
                    .attr("id", ev.id.as_str())
                    .attr("by", jid::room_jid(&ev.room, domain)),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::Actor;

    fn event(body: EventBody) -> RoomEvent {
        RoomEvent {
            v: 1,
            room: "ops".into(),
            name: "Ops".into(),
            seq: 9,
            mseq: None,
            id: "ev1".into(),
            at: 0,
            actor: Actor {
                sid: "s".into(),
                gateway: "g".into(),
                nick: "bob".into(),
                user: "u".into(),
                host: "h".into(),
                realname: "r".into(),
                account: None,
            },
            body,
            intent_at: None,
        }
    }

    #[test]
    fn a_retraction_carries_its_fallback() {
        let ev = event(EventBody::Redact {
            msgid: "m1".into(),
            mseq: None,
            reason: None,
        });
        let e = retraction(&ev, "localhost", "alice@localhost/r", "c1").unwrap();
        assert_eq!(e.get_attr("from"), Some("ops@conference.localhost/bob"));
        assert_eq!(e.get_attr("id"), Some("c1"));
        let r = e.find("retract", NS_RETRACT).unwrap();
        assert_eq!(r.get_attr("id"), Some("m1"));
        let f = e.find("fallback", NS_FALLBACK).unwrap();
        assert_eq!(f.get_attr("for"), Some(NS_RETRACT));
        assert_eq!(
            e.find("body", NS_CLIENT).unwrap().text_content(),
            "bob retracted a message"
        );
        assert_eq!(e.get_attr("type"), Some("groupchat"));
        let sid = e.find("stanza-id", NS_SID).unwrap();
        assert_eq!(sid.get_attr("id"), Some("ev1"));
        assert_eq!(sid.get_attr("by"), Some("ops@conference.localhost"));
        assert!(retraction(&event(EventBody::Join), "localhost", "a", "b").is_none());
    }
}
