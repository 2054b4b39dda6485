//! One-to-one messages (RFC 6121 §5) between an XMPP session and anyone:
//! `bob@<domain>` is whoever holds the nick `bob` — an IRC user, or an
//! XMPP session of account `bob` — and a private message inside a room
//! (`room@conference.<domain>/bob`) goes to the same person.
//!
//! Like IRC private messages, each goes to the recipient's session queue
//! (mandatory: no queue, no delivery), then a copy to the history service;
//! a nick nobody holds that names an account gets the copy alone, marked
//! offline, and it is delivered when the account next logs in. A name that
//! is neither answers `service-unavailable` (RFC 6121 §8.5.2).

use std::time::Duration;

use bus::history::{DirectLog, HistoryItem, Peer};
use bus::names::fold;
use bus::schema::{
    AuthReplyBody, AuthRequestBody, ClientTags, Direct, DirectBody, EventBody, MessageKind,
    SCHEMA_VERSION,
};
use bus::{new_id, now_ms};
use tokio::time::Instant;

use super::carbons;
use super::conn::Conn;
use super::jid::{self, Jid};
use super::muc::{body_of, chatstate_of, lines_of, stamp, typing_of, NS_DELAY, NS_SID};
use super::stanza_error::{error_element, StanzaCondition};
use super::xml::{Element, NS_CLIENT};
use crate::bus_link::{confirmed, Outcome};
use crate::irc::reservation::could_be_account;
use crate::irc::validate::valid_nick;
use crate::metrics;

/// How long the auth service may take to say whether a name is an account.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most lines one message may become.
const MAX_LINES: usize = 20;

/// Messages to an absent name, waiting for the auth service to say whether
/// it is an account's.
#[derive(Debug)]
pub struct Lookup {
    pub id: String,
    deadline: Instant,
    account: String,
    /// (the stanza as the client addressed it, the lines, its id)
    messages: Vec<(String, Vec<String>, Option<String>)>,
}

fn error_reply(c: &Conn, to: &str, id: Option<&str>, condition: StanzaCondition) -> Element {
    Element::new("message", NS_CLIENT)
        .attr("type", "error")
        .attr_opt("id", id)
        .attr("from", to)
        .attr_opt("to", c.jid.as_deref())
        .child(error_element(NS_CLIENT, condition, None))
}

/// The nick a one-to-one address names: `nick@domain`, or
/// `room@conference.domain/nick` (a private message in a room).
fn nick_of(c: &Conn, to: &Jid) -> Option<String> {
    let nick = if to.domain == c.xmpp.domain {
        jid::unescape_local(to.local.as_deref()?)
    } else if to.domain == jid::muc_domain(&c.xmpp.domain) && to.local.is_some() {
        to.resource.clone()?
    } else {
        return None;
    };
    valid_nick(&nick).then_some(nick)
}

/// A `chat` (or `normal`) message to a person.
pub async fn on_message(c: &mut Conn, e: &Element, to: &Jid) {
    let raw_to = e.get_attr("to").unwrap_or_default().to_string();
    let id = e.get_attr("id").map(str::to_string);
    let Some(nick) = nick_of(c, to) else {
        let err = if to.domain == c.xmpp.domain || to.domain == jid::muc_domain(&c.xmpp.domain) {
            StanzaCondition::ItemNotFound
        } else {
            // No server-to-server: other domains are unreachable.
            StanzaCondition::ServiceUnavailable
        };
        c.push(error_reply(c, &raw_to, id.as_deref(), err));
        return;
    };
    let (kind, lines, tags) = match e.find("body", NS_CLIENT) {
        Some(body) => (
            MessageKind::Privmsg,
            lines_of(&body.text_content()),
            ClientTags::new(),
        ),
        None => match typing_of(e) {
            Some(t) => (
                MessageKind::Tagmsg,
                vec![String::new()],
                [("+typing".to_string(), t.to_string())].into(),
            ),
            None => return,
        },
    };
    if lines.is_empty() {
        return;
    }
    if lines.len() > MAX_LINES {
        c.push(error_reply(
            c,
            &raw_to,
            id.as_deref(),
            StanzaCondition::PolicyViolation,
        ));
        return;
    }
    let found = match c.gw.registry.session_by_nick(&nick).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "xmpp: nick lookup failed");
            c.push(error_reply(
                c,
                &raw_to,
                id.as_deref(),
                StanzaCondition::InternalServerError,
            ));
            return;
        }
    };
    if kind != MessageKind::Tagmsg {
        crate::metrics::message_in("xmpp");
    }
    let Some(rec) = found else {
        if kind == MessageKind::Privmsg {
            offline(c, nick, raw_to, lines, id).await;
        }
        return;
    };
    let Some(actor) = c.session.as_ref().map(|s| s.actor.clone()) else {
        return;
    };
    for text in lines {
        let msg_id = new_id();
        let at = now_ms();
        let direct = Direct {
            v: SCHEMA_VERSION,
            id: msg_id.clone(),
            at,
            from: actor.clone(),
            body: DirectBody::Message {
                kind,
                text: text.clone(),
                tags: tags.clone(),
            },
        };
        let outcome = match c.gw.link.publish_direct(&rec.actor.sid, direct).await {
            Ok(p) => confirmed(p).await,
            Err(_) => Outcome::Failed,
        };
        if outcome != Outcome::Confirmed {
            if kind != MessageKind::Tagmsg {
                let err = if outcome == Outcome::Refused {
                    StanzaCondition::ServiceUnavailable
                } else {
                    StanzaCondition::InternalServerError
                };
                c.push(error_reply(c, &raw_to, id.as_deref(), err));
            }
            return;
        }
        if kind == MessageKind::Tagmsg {
            continue;
        }
        let log = DirectLog {
            v: SCHEMA_VERSION,
            id: msg_id,
            at,
            from: actor.clone(),
            to: Peer {
                nick: rec.actor.nick.clone(),
                account: rec.actor.account.clone(),
                sid: Some(rec.actor.sid.clone()),
            },
            kind,
            text,
            tags: ClientTags::new(),
            offline: false,
        };
        let ok = log_copy(c, log).await;
        if !ok {
            tracing::warn!("xmpp: a private message was delivered but not kept in history");
        }
    }
    if kind == MessageKind::Privmsg {
        let mut sent = e.clone();
        sent.attrs.retain(|(k, _)| k != "from");
        sent.attrs
            .push(("from".into(), c.jid.clone().unwrap_or_default()));
        carbons::copy(c, &sent, true).await;
    }
}

/// Publishes a message's copy for the history service; true once confirmed.
async fn log_copy(c: &Conn, log: DirectLog) -> bool {
    let offline = log.offline;
    let ok = match c.gw.link.publish_direct_log(log).await {
        Ok(p) => confirmed(p).await == Outcome::Confirmed,
        Err(_) => false,
    };
    metrics::direct_log(offline, ok);
    ok
}

/// A message to a nick nobody holds: ask whether it is an account's.
async fn offline(c: &mut Conn, nick: String, to: String, lines: Vec<String>, id: Option<String>) {
    let account = fold(&nick);
    if !could_be_account(&account) {
        c.push(error_reply(
            c,
            &to,
            id.as_deref(),
            StanzaCondition::ServiceUnavailable,
        ));
        return;
    }
    if let Some(l) = c.lookups.iter_mut().find(|l| l.account == account) {
        l.messages.push((to, lines, id));
        return;
    }
    let body = AuthRequestBody::Info {
        account: account.clone(),
    };
    match c.request_auth(body).await {
        Some((rid, _)) => c.lookups.push(Lookup {
            id: rid,
            deadline: Instant::now() + LOOKUP_TIMEOUT,
            account,
            messages: vec![(to, lines, id)],
        }),
        None => c.push(error_reply(
            c,
            &to,
            id.as_deref(),
            StanzaCondition::InternalServerError,
        )),
    }
}

/// The auth service's answer about an absent name; false if `id` is not
/// one of ours.
pub async fn on_lookup(c: &mut Conn, id: &str, body: &AuthReplyBody) -> bool {
    let Some(pos) = c.lookups.iter().position(|l| l.id == id) else {
        return false;
    };
    let lookup = c.lookups.remove(pos);
    let account = match body {
        AuthReplyBody::Info {
            account,
            disabled: false,
            ..
        } => account.clone(),
        _ => {
            for (to, _, id) in &lookup.messages {
                c.push(error_reply(
                    c,
                    to,
                    id.as_deref(),
                    StanzaCondition::ServiceUnavailable,
                ));
            }
            return true;
        }
    };
    let Some(actor) = c.session.as_ref().map(|s| s.actor.clone()) else {
        return true;
    };
    for (to, lines, id) in lookup.messages {
        for text in lines {
            let log = DirectLog {
                v: SCHEMA_VERSION,
                id: new_id(),
                at: now_ms(),
                from: actor.clone(),
                to: Peer {
                    nick: account.clone(),
                    account: Some(account.clone()),
                    sid: None,
                },
                kind: MessageKind::Privmsg,
                text,
                tags: ClientTags::new(),
                offline: true,
            };
            if !log_copy(c, log).await {
                c.push(error_reply(
                    c,
                    &to,
                    id.as_deref(),
                    StanzaCondition::InternalServerError,
                ));
                break;
            }
        }
    }
    true
}

/// The earliest lookup deadline.
pub fn deadline(c: &Conn) -> Option<Instant> {
    c.lookups.iter().map(|l| l.deadline).min()
}

/// Lookups the auth service did not answer in time fail.
pub fn on_timeout(c: &mut Conn) {
    let now = Instant::now();
    let (late, waiting): (Vec<Lookup>, Vec<Lookup>) = std::mem::take(&mut c.lookups)
        .into_iter()
        .partition(|l| l.deadline <= now);
    c.lookups = waiting;
    for l in late {
        for (to, _, id) in &l.messages {
            c.push(error_reply(
                c,
                to,
                id.as_deref(),
                StanzaCondition::InternalServerError,
            ));
        }
    }
}

/// A delivery from the session queue: a message, an invitation or a kill.
/// Returns the kill reason, if it is one. A message is copied to the
/// account's other sessions (carbons).
pub async fn on_direct(c: &mut Conn, d: &Direct) -> Option<String> {
    let domain = c.xmpp.domain.clone();
    let to = c.jid.clone().unwrap_or_default();
    let from = jid::user_jid(&d.from.nick, &domain);
    match &d.body {
        DirectBody::Kill { reason } => return Some(reason.clone()),
        // XMPP shows no host.
        DirectBody::ChangeHost { .. } => {}
        DirectBody::Invite { room, .. } => {
            c.push(
                Element::new("message", NS_CLIENT)
                    .attr("from", jid::room_jid(room, &domain))
                    .attr("to", to)
                    .attr("id", d.id.as_str())
                    .child(
                        Element::new("x", super::muc::NS_MUC_USER).child(
                            Element::new("invite", super::muc::NS_MUC_USER).attr("from", from),
                        ),
                    ),
            );
        }
        DirectBody::Message { kind, text, tags } => {
            let mut m = Element::new("message", NS_CLIENT)
                .attr("type", "chat")
                .attr("from", from)
                .attr("to", to.as_str())
                .attr("id", d.id.as_str());
            if *kind == MessageKind::Tagmsg {
                match tags.get("+typing").and_then(|t| chatstate_of(t)) {
                    Some(state) => m = m.child(state),
                    None => return None,
                }
            } else {
                let bare = to.split('/').next().unwrap_or_default().to_string();
                m = m
                    .child(Element::new("body", NS_CLIENT).text(body_of(text)))
                    .child(
                        Element::new("stanza-id", NS_SID)
                            .attr("id", d.id.as_str())
                            .attr("by", bare),
                    );
            }
            carbons::copy(c, &m, false).await;
            c.push(m);
        }
        // Account-wide deliveries are the connection's (see `Conn::on_direct`).
        DirectBody::Roster { .. } | DirectBody::Presence { .. } | DirectBody::Carbon { .. } => {}
    }
    None
}

/// Messages kept while the account had no session, as delayed chat
/// messages; returns their ids (to acknowledge).
pub fn show_pending(c: &mut Conn, items: &[HistoryItem]) -> Vec<String> {
    let domain = c.xmpp.domain.clone();
    let to = c.jid.clone().unwrap_or_default();
    let mut ids = Vec::new();
    for item in items {
        ids.push(item.id.clone());
        let EventBody::Message { text, .. } = &item.body else {
            continue;
        };
        c.push(
            Element::new("message", NS_CLIENT)
                .attr("type", "chat")
                .attr("from", jid::user_jid(&item.from.nick, &domain))
                .attr("to", to.as_str())
                .attr("id", item.id.as_str())
                .child(Element::new("body", NS_CLIENT).text(body_of(text)))
                .child(
                    Element::new("delay", NS_DELAY)
                        .attr("from", domain.as_str())
                        .attr("stamp", stamp(item.at))
                        .text("Offline storage"),
                ),
        );
    }
    if !ids.is_empty() {
        metrics::pending_delivered(ids.len());
    }
    ids
}
