//! `{del}`: what can be deleted, in the platform's terms.
//!
//! * `what:"sub"` with `user` on a group: an operator evicts that user,
//!   which is IRC's KICK of each of the user's sessions in the room.
//! * `what:"topic"`: a one-to-one topic is the user's own (its markers go
//!   and it is detached, as `{leave unsub:true}`; the conversation's
//!   history stays, as the peer's does). A group is a room other people
//!   share from IRC and XMPP, which nobody deletes: 403.
//! * `what:"msg"`: see [`super::data`].
//! * `what:"cred"` and `"user"` (accounts are managed with `chatctl`): 501.

use bus::schema::IntentBody;

use super::conn::Conn;
use super::wire::{self, code, Del};
use super::{data, marks};

pub async fn on_del(c: &mut Conn, del: Del) {
    let id = del.id.as_deref();
    let topic = del.topic.clone();
    match del.what.as_str() {
        "msg" => data::on_del(c, del).await,
        "sub" => evict(c, del).await,
        "topic" => {
            if let Some(peer) = c.peers.remove(&topic) {
                if let Some(key) = marks::peer_key(&peer.id) {
                    marks::unsubscribe(c, &key).await;
                }
                c.notes.unwatch(&topic);
                c.reply(wire::ctrl(id, code::OK).topic(&topic));
            } else if c.topics.contains_key(&topic) || topic == "me" || topic == "fnd" {
                c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(&topic));
            } else {
                c.reply(wire::ctrl(id, code::MUST_ATTACH).topic(&topic));
            }
        }
        "cred" | "user" => c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED).topic(&topic)),
        _ => c.reply(wire::ctrl(id, code::MALFORMED).topic(&topic)),
    }
}

/// `{del what:"sub" user}` on a group.
async fn evict(c: &mut Conn, del: Del) {
    let id = del.id.as_deref();
    let topic = del.topic.as_str();
    let Some(att) = c.topics.get(topic) else {
        let answer = if c.peers.contains_key(topic) {
            code::PERMISSION_DENIED
        } else {
            code::MUST_ATTACH
        };
        c.reply(wire::ctrl(id, answer).topic(topic));
        return;
    };
    let Some(user) = del.user.as_deref().filter(|u| !u.is_empty()) else {
        c.reply(wire::ctrl(id, code::MALFORMED).topic(topic));
        return;
    };
    if !att.is_op(&c.sid) {
        c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(topic));
        return;
    }
    let nicks: Vec<String> = att
        .members
        .values()
        .filter(|m| m.uid == user)
        .map(|m| m.nick.clone())
        .collect();
    if nicks.is_empty() {
        c.reply(wire::ctrl(id, code::NOT_FOUND).topic(topic));
        return;
    }
    let room = att.name.clone();
    for nick in nicks {
        let body = IntentBody::Kick {
            room: room.clone(),
            target: nick,
            reason: None,
        };
        if c.intent(body, None).await.is_none() {
            c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(topic));
            return;
        }
    }
    c.reply(wire::ctrl(id, code::OK).topic(topic));
}
