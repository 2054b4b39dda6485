//! Presence (RFC 6121 §4) that is not for a room.
//!
//! * Broadcast presence (no `to`) is the session's availability: the first
//!   one makes the session available — it is sent to the account's
//!   subscribers and its other sessions, probes go to the contacts it is
//!   subscribed to, and subscription requests that waited are shown —
//!   and later ones are sent on. `<show>away|xa|dnd</show>` (with its
//!   `<status>`) is also the session's away state, which IRC users see as
//!   AWAY in every shared room. Unavailable presence, or the end of the
//!   stream, tells the same people the session is gone.
//! * Directed presence (`to` a person) goes to that account's sessions.
//! * Subscription presence (`subscribe`, `subscribed`, `unsubscribe`,
//!   `unsubscribed`) changes the stored subscription states through the
//!   auth service (see [`super::roster`]).
//!
//! Presence travels between sessions as [`DirectBody::Presence`] on
//! `chat.direct`: to `account.<name>` for everyone of an account, to
//! `session.<sid>` for the answer to a probe.

use std::collections::BTreeSet;

use bus::schema::{Actor, AuthRequestBody, Direct, DirectBody, SubscriptionAction, SCHEMA_VERSION};

use super::bind::error;
use super::conn::Conn;
use super::jid::{self, Jid};
use super::muc;
use super::requests::{self, Purpose};
use super::roster::{self, bare_jid};
use super::session;
use super::stanza_error::StanzaCondition;
use super::xml::{self, Element, Limits, Parsed, NS_CLIENT};
use crate::irc::validate::AWAYLEN;

/// Where this stream stands in presence terms.
#[derive(Debug, Default)]
pub struct PresenceState {
    /// The last broadcast presence the client sent while available
    /// (`None`: not available, RFC 6121 §4.2: no presence is delivered).
    pub current: Option<Element>,
    /// Whether the subscribers were told and the contacts probed since the
    /// session became available (it waits for the roster).
    pub announced: bool,
    /// Accounts sent directed presence, told when the session goes.
    pub directed: BTreeSet<String>,
}

/// The away message an available presence stands for, if any.
pub fn away_of(e: &Element) -> Option<String> {
    let show = e.find("show", NS_CLIENT).map(|s| s.text_content());
    match show.as_deref().map(str::trim) {
        Some("away" | "xa" | "dnd") => {
            let status = e
                .find("status", NS_CLIENT)
                .map(|s| s.text_content())
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "Away".to_string());
            Some(status.chars().take(AWAYLEN).collect())
        }
        _ => None,
    }
}

pub async fn on_presence(c: &mut Conn, e: &Element) {
    let to = match e.get_attr("to") {
        None => None,
        Some(raw) => match Jid::parse(raw) {
            Some(j) => Some(j),
            None => return error(c, e, StanzaCondition::JidMalformed),
        },
    };
    let kind = e.get_attr("type");
    match to {
        Some(to) if to.domain == jid::muc_domain(&c.xmpp.domain) => {
            muc::on_presence(c, e, &to).await
        }
        None => on_broadcast(c, e, kind).await,
        Some(to) => {
            let own = c.account.clone();
            match roster::account_of(c, &to) {
                // To our own bare JID: the same as a broadcast.
                Some(acct) if Some(&acct) == own.as_ref() && to.resource.is_none() => {
                    on_broadcast(c, e, kind).await
                }
                Some(acct) => on_directed(c, e, kind, acct).await,
                None if to.domain != c.xmpp.domain => {
                    error(c, e, StanzaCondition::RemoteServerNotFound)
                }
                None => {}
            }
        }
    }
}

async fn on_broadcast(c: &mut Conn, e: &Element, kind: Option<&str>) {
    match kind {
        None => {
            session::set_away(c, away_of(e)).await;
            c.presence.current = Some(outgoing(c, e, None));
            if c.roster.is_none() {
                load_roster(c).await;
                return;
            }
            announce(c).await;
        }
        Some("unavailable") => unavailable(c).await,
        // Probes and errors from clients mean nothing here.
        _ => {}
    }
}

/// Asks for the roster, once, so the first presence can be announced.
async fn load_roster(c: &mut Conn) {
    if c.requests.loading_roster() {
        return;
    }
    let Some(account) = c.account.clone() else {
        return;
    };
    requests::ask(
        c,
        AuthRequestBody::RosterGet { account },
        Purpose::RosterGet { iq: None },
    )
    .await;
}

/// The roster is known: a presence waiting for it is announced.
pub async fn roster_loaded(c: &mut Conn) {
    if c.presence.current.is_some() && !c.presence.announced {
        announce(c).await;
    }
}

/// Sends the current presence to the subscribers and the account's other
/// sessions; the first time, probes the contacts too.
async fn announce(c: &mut Conn) {
    let Some(current) = c.presence.current.clone() else {
        return;
    };
    let Some(account) = c.account.clone() else {
        return;
    };
    let (mut to, probed): (Vec<String>, Vec<String>) = match &c.roster {
        Some(r) => (
            r.subscribers().map(str::to_string).collect(),
            r.subscriptions().map(str::to_string).collect(),
        ),
        None => return,
    };
    to.push(account.clone());
    // The client's own resource gets its presence back too (RFC 6121
    // §4.2.2); the other sessions of the account get it via the account key.
    let mut own = current.clone();
    own.attrs
        .push(("to".into(), c.jid.clone().unwrap_or_default()));
    c.push(own);
    for target in &to {
        send_to_account(c, target, current.clone()).await;
    }
    if c.presence.announced {
        return;
    }
    c.presence.announced = true;
    let probe = outgoing(c, &Element::new("presence", NS_CLIENT), Some("probe"));
    for target in probed.iter().chain(std::iter::once(&account)) {
        send_to_account(c, target, probe.clone()).await;
    }
    // Requests that waited while the account was away (RFC 6121 §3.1.3).
    let domain = c.xmpp.domain.clone();
    let me = c.jid.clone().unwrap_or_default();
    let pending = c
        .roster
        .as_ref()
        .map(|r| r.pending_in.clone())
        .unwrap_or_default();
    for from in pending {
        c.push(
            Element::new("presence", NS_CLIENT)
                .attr("type", "subscribe")
                .attr("from", bare_jid(&from, &domain))
                .attr("to", me.as_str()),
        );
    }
}

/// The session is no longer available: everyone who had its presence is
/// told (subscribers, its own account, those it sent directed presence).
pub async fn unavailable(c: &mut Conn) {
    let was_available = c.presence.current.take().is_some();
    let announced = std::mem::take(&mut c.presence.announced);
    let directed = std::mem::take(&mut c.presence.directed);
    let mut targets: BTreeSet<String> = directed;
    if was_available && announced {
        if let Some(r) = &c.roster {
            targets.extend(r.subscribers().map(str::to_string));
        }
        targets.extend(c.account.clone());
    }
    let gone = outgoing(c, &Element::new("presence", NS_CLIENT), Some("unavailable"));
    for target in targets {
        send_to_account(c, &target, gone.clone()).await;
    }
}

/// A contact gained (or lost) this account's presence: it gets the
/// current presence (or unavailable) of this session.
pub async fn subscriber_changed(c: &mut Conn, contact: &str, now_subscribed: bool) {
    if !c.presence.announced {
        return;
    }
    let stanza = if now_subscribed {
        match c.presence.current.clone() {
            Some(p) => p,
            None => return,
        }
    } else {
        outgoing(c, &Element::new("presence", NS_CLIENT), Some("unavailable"))
    };
    send_to_account(c, contact, stanza).await;
}

/// Presence to one person: subscription states, or directed presence.
async fn on_directed(c: &mut Conn, e: &Element, kind: Option<&str>, contact: String) {
    if let Some(action) = kind.and_then(SubscriptionAction::parse) {
        let Some(account) = c.account.clone() else {
            return;
        };
        let body = AuthRequestBody::Subscription {
            account,
            contact: contact.clone(),
            action,
        };
        requests::ask(c, body, Purpose::Subscription { contact, action }).await;
        return;
    }
    match kind {
        None => {
            c.presence.directed.insert(contact.clone());
        }
        Some("unavailable") => {
            c.presence.directed.remove(&contact);
        }
        // A client's probe or error is not relayed (the server probes).
        _ => return,
    }
    let stanza = outgoing(c, e, kind);
    send_to_account(c, &contact, stanza).await;
}

/// The presence this session sends: `from` its full JID, the client's
/// children (show, status, priority, caps, vCard hash…), no `to`/`id`.
fn outgoing(c: &Conn, e: &Element, kind: Option<&str>) -> Element {
    let mut p = Element::new("presence", NS_CLIENT)
        .attr_opt("type", kind)
        .attr("from", c.jid.clone().unwrap_or_default());
    p.children = e.children.clone();
    p
}

/// Publishes a presence stanza to every session of `account`.
pub async fn send_to_account(c: &mut Conn, account: &str, stanza: Element) {
    let Some(direct) = direct(c, stanza) else {
        return;
    };
    if let Err(e) = c.gw.link.publish_account(account, direct).await {
        tracing::warn!(error = %e, "xmpp: publishing a presence failed");
    }
}

fn direct(c: &Conn, stanza: Element) -> Option<Direct> {
    let actor = c.session.as_ref()?.actor.clone();
    Some(Direct {
        v: SCHEMA_VERSION,
        id: bus::new_id(),
        at: bus::now_ms(),
        from: actor,
        body: DirectBody::Presence {
            stanza: stanza.to_string(),
        },
    })
}

/// A presence from another session. Probes are answered (to the prober's
/// own session, if it may see ours); subscription notices are shown to a
/// client that has asked for its roster or is available; availability only
/// to an available one (RFC 6121 §4.3.2, §4.4.2).
pub async fn on_direct(c: &mut Conn, from: &Actor, stanza: &str) {
    if from.sid == c.sid {
        return;
    }
    let limits = Limits {
        max_bytes: c.xmpp.max_stanza_bytes.max(stanza.len()),
        max_depth: c.xmpp.max_depth,
        max_attributes: c.xmpp.max_attributes,
    };
    let Ok(Parsed::Element(mut p)) = xml::parse(stanza, &limits) else {
        tracing::debug!("xmpp: an undecodable presence from another session");
        return;
    };
    let kind = p.get_attr("type").map(str::to_string);
    match kind.as_deref() {
        Some("probe") => {
            let Some(current) = c.presence.current.clone() else {
                return;
            };
            let allowed = from.account.is_some()
                && (from.account == c.account
                    || from
                        .account
                        .as_deref()
                        .is_some_and(|a| c.roster.as_ref().is_some_and(|r| r.lets_see(a))));
            if !allowed {
                return;
            }
            if let Some(answer) = direct(c, current) {
                if let Err(e) = c.gw.link.publish_direct(&from.sid, answer).await {
                    tracing::debug!(error = %e, "xmpp: answering a probe failed");
                }
            }
        }
        Some(k) if SubscriptionAction::parse(k).is_some() => {
            if c.roster_interested || c.presence.current.is_some() {
                p.attrs.retain(|(k, _)| k != "to");
                p.attrs
                    .push(("to".into(), c.jid.clone().unwrap_or_default()));
                c.push(p);
            }
        }
        _ => {
            if c.presence.current.is_some() {
                p.attrs.retain(|(k, _)| k != "to");
                p.attrs
                    .push(("to".into(), c.jid.clone().unwrap_or_default()));
                c.push(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_maps_to_away() {
        let p = |show: &str, status: &str| {
            let mut e = Element::new("presence", NS_CLIENT);
            if !show.is_empty() {
                e = e.child(Element::new("show", NS_CLIENT).text(show));
            }
            if !status.is_empty() {
                e = e.child(Element::new("status", NS_CLIENT).text(status));
            }
            e
        };
        assert_eq!(away_of(&p("", "")), None);
        assert_eq!(away_of(&p("chat", "x")), None);
        assert_eq!(away_of(&p("away", "")).as_deref(), Some("Away"));
        assert_eq!(
            away_of(&p("dnd", "in a meeting")).as_deref(),
            Some("in a meeting")
        );
    }
}
