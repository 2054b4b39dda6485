//! The roster (RFC 6121 §2): get (with versioning), set and remove, and
//! the pushes that follow every change to every session of the account.
//! The auth service keeps the rosters; this stream keeps a copy of its
//! account's (loaded on the first roster get or the first presence, kept
//! current by the pushes), which presence broadcast and probes read.

use std::collections::BTreeMap;

use bus::names::fold;
use bus::schema::{
    AuthError, AuthReplyBody, AuthRequestBody, Direct, DirectBody, Notice, RosterItem, RosterPush,
    SubscriptionAction, SCHEMA_VERSION,
};

use super::bind::{error, result};
use super::conn::Conn;
use super::jid::{self, Jid};
use super::presence;
use super::requests::{self, Purpose};
use super::stanza_error::StanzaCondition;
use super::xml::{Element, NS_CLIENT};
use crate::irc::reservation::could_be_account;

pub const NS_ROSTER: &str = "jabber:iq:roster";
/// The stream feature announcing roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTER_VER: &str = "urn:xmpp:features:rosterver";

/// This stream's copy of its account's roster.
#[derive(Debug, Default)]
pub struct Roster {
    pub ver: i64,
    /// Contact account → item.
    pub items: BTreeMap<String, RosterItem>,
    /// Accounts whose subscription requests await an answer.
    pub pending_in: Vec<String>,
}

impl Roster {
    /// Accounts that receive this account's presence.
    pub fn subscribers(&self) -> impl Iterator<Item = &str> {
        self.items
            .values()
            .filter(|i| i.subscription.from())
            .map(|i| i.contact.as_str())
    }

    /// Accounts whose presence this account receives.
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.items
            .values()
            .filter(|i| i.subscription.to())
            .map(|i| i.contact.as_str())
    }

    pub fn lets_see(&self, contact: &str) -> bool {
        self.items
            .get(contact)
            .is_some_and(|i| i.subscription.from())
    }
}

/// The account a JID of this server names (`bob@<domain>`, any resource),
/// if it could be one.
pub fn account_of(c: &Conn, j: &Jid) -> Option<String> {
    if j.domain != c.xmpp.domain {
        return None;
    }
    let name = fold(&jid::unescape_local(j.local.as_deref()?));
    could_be_account(&name).then_some(name)
}

pub fn bare_jid(account: &str, domain: &str) -> String {
    format!("{}@{domain}", jid::escape_local(account))
}

/// `<item/>` as RFC 6121 §2.1 writes it.
fn item_element(item: &RosterItem, removed: bool, domain: &str) -> Element {
    let mut e = Element::new("item", NS_ROSTER)
        .attr("jid", bare_jid(&item.contact, domain))
        .attr(
            "subscription",
            if removed {
                "remove"
            } else {
                item.subscription.as_str()
            },
        );
    if removed {
        return e;
    }
    if let Some(name) = &item.name {
        e = e.attr("name", name.as_str());
    }
    if item.ask {
        e = e.attr("ask", "subscribe");
    }
    for g in &item.groups {
        e = e.child(Element::new("group", NS_ROSTER).text(g.as_str()));
    }
    e
}

/// `<iq type="get"><query xmlns="jabber:iq:roster" [ver]/></iq>`.
pub async fn on_get(c: &mut Conn, iq: &Element) {
    if iq.get_attr("to").is_some_and(|to| !own_bare(c, to)) {
        error(c, iq, StanzaCondition::Forbidden);
        return;
    }
    let Some(account) = c.account.clone() else {
        return;
    };
    let purpose = Purpose::RosterGet {
        iq: Some(iq.clone()),
    };
    requests::ask(c, AuthRequestBody::RosterGet { account }, purpose).await;
}

fn own_bare(c: &Conn, to: &str) -> bool {
    let own = c.jid.as_deref().map(|j| j.split('/').next().unwrap_or(j));
    Jid::parse(to).is_some_and(|j| Some(j.bare().as_str()) == own)
}

/// `<iq type="set">` with one `<item/>`: add, update, or remove a contact.
pub async fn on_set(c: &mut Conn, iq: &Element, q: &Element) {
    if iq.get_attr("to").is_some_and(|to| !own_bare(c, to)) {
        error(c, iq, StanzaCondition::Forbidden);
        return;
    }
    let items: Vec<&Element> = q.elements().filter(|e| e.is("item", NS_ROSTER)).collect();
    // RFC 6121 §2.3.3: exactly one item per set.
    let [item] = items.as_slice() else {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    };
    let Some(target) = item.get_attr("jid").and_then(Jid::parse) else {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    };
    if target.resource.is_some() {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    }
    if target.domain != c.xmpp.domain {
        // No server-to-server: other domains cannot be subscribed to.
        error(c, iq, StanzaCondition::RemoteServerNotFound);
        return;
    }
    let (Some(contact), Some(account)) = (account_of(c, &target), c.account.clone()) else {
        error(c, iq, StanzaCondition::ItemNotFound);
        return;
    };
    let body = if item.get_attr("subscription") == Some("remove") {
        AuthRequestBody::RosterRemove { account, contact }
    } else {
        let groups: Vec<String> = item
            .elements()
            .filter(|g| g.is("group", NS_ROSTER))
            .map(|g| g.text_content())
            .collect();
        if groups.iter().any(|g| g.trim().is_empty()) {
            // §2.3.3: an empty group name is not acceptable.
            error(c, iq, StanzaCondition::NotAcceptable);
            return;
        }
        let mut unique = groups.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != groups.len() {
            error(c, iq, StanzaCondition::BadRequest);
            return;
        }
        AuthRequestBody::RosterSet {
            account,
            contact,
            name: item
                .get_attr("name")
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            groups,
        }
    };
    let purpose = Purpose::RosterChange { iq: iq.clone() };
    requests::ask(c, body, purpose).await;
}

/// The roster arrived: for an iq get (answered, and the stream now gets
/// pushes) and/or for presence (which was waiting for it).
pub async fn on_roster(c: &mut Conn, iq: Option<Element>, body: AuthReplyBody) {
    let AuthReplyBody::Roster {
        ver,
        items,
        pending_in,
    } = body
    else {
        if let Some(iq) = iq {
            error(c, &iq, StanzaCondition::InternalServerError);
        }
        return;
    };
    c.roster = Some(Roster {
        ver,
        items: items
            .iter()
            .map(|i| (i.contact.clone(), i.clone()))
            .collect(),
        pending_in,
    });
    if let Some(iq) = iq {
        c.roster_interested = true;
        let asked = iq
            .elements()
            .next()
            .and_then(|q| q.get_attr("ver"))
            .map(str::to_string);
        if asked.as_deref() == Some(ver.to_string().as_str()) {
            // §2.6.3: the client's copy is current; nothing to send.
            result(c, &iq, None);
        } else {
            let domain = c.xmpp.domain.clone();
            let mut q = Element::new("query", NS_ROSTER).attr("ver", ver.to_string());
            for item in &items {
                q = q.child(item_element(item, false, &domain));
            }
            result(c, &iq, Some(q));
        }
    }
    presence::roster_loaded(c).await;
}

/// A roster set or remove was stored: tell everyone concerned, answer.
pub async fn on_changed(c: &mut Conn, iq: Option<Element>, body: AuthReplyBody) {
    match body {
        AuthReplyBody::RosterChanged { pushes, notices } => {
            publish(c, pushes, notices).await;
            if let Some(iq) = iq {
                result(c, &iq, None);
            }
        }
        AuthReplyBody::Failure { code, .. } => {
            if let Some(iq) = iq {
                let condition = match code {
                    AuthError::NotFound => StanzaCondition::ItemNotFound,
                    AuthError::Malformed => StanzaCondition::NotAcceptable,
                    _ => StanzaCondition::InternalServerError,
                };
                error(c, &iq, condition);
            }
        }
        _ => {
            if let Some(iq) = iq {
                error(c, &iq, StanzaCondition::InternalServerError);
            }
        }
    }
}

/// A subscription presence was applied. One to a name that is no account
/// is answered as refused (`unsubscribed` from it), which clients show.
pub async fn on_subscription(
    c: &mut Conn,
    contact: &str,
    action: SubscriptionAction,
    body: AuthReplyBody,
) {
    match body {
        AuthReplyBody::RosterChanged { pushes, notices } => publish(c, pushes, notices).await,
        AuthReplyBody::Failure {
            code: AuthError::NotFound,
            ..
        } if action == SubscriptionAction::Subscribe => {
            let from = bare_jid(contact, &c.xmpp.domain);
            let to = c.jid.clone().unwrap_or_default();
            c.push(
                Element::new("presence", NS_CLIENT)
                    .attr("type", "unsubscribed")
                    .attr("from", from)
                    .attr("to", to),
            );
        }
        other => tracing::debug!(?other, "xmpp: a subscription presence was not applied"),
    }
}

/// Publishes the pushes to their accounts' sessions (this one included:
/// it learns of its own change the same way as the others) and the
/// subscription notices to their recipients.
async fn publish(c: &mut Conn, pushes: Vec<RosterPush>, notices: Vec<Notice>) {
    let Some(actor) = c.session.as_ref().map(|s| s.actor.clone()) else {
        return;
    };
    for push in pushes {
        let account = push.account.clone();
        let direct = Direct {
            v: SCHEMA_VERSION,
            id: bus::new_id(),
            at: bus::now_ms(),
            from: actor.clone(),
            body: DirectBody::Roster { push },
        };
        if let Err(e) = c.gw.link.publish_account(&account, direct).await {
            tracing::warn!(error = %e, "xmpp: publishing a roster push failed");
        }
    }
    let domain = c.xmpp.domain.clone();
    for n in notices {
        let stanza = Element::new("presence", NS_CLIENT)
            .attr("type", n.action.as_str())
            .attr("from", bare_jid(&n.from, &domain));
        presence::send_to_account(c, &n.to, stanza).await;
    }
}

/// A push for this account's roster (from any session's change): the
/// copy is updated, the client told if it asked for the roster, and the
/// presence it owes or no longer owes the contact sent.
pub async fn on_push(c: &mut Conn, push: RosterPush) {
    if Some(push.account.as_str()) != c.account.as_deref() {
        return;
    }
    let contact = push.item.contact.clone();
    let was_from = c.roster.as_ref().is_some_and(|r| r.lets_see(&contact));
    let now_from = !push.removed && push.item.subscription.from();
    if let Some(r) = c.roster.as_mut() {
        r.ver = r.ver.max(push.ver);
        if now_from || push.removed {
            r.pending_in.retain(|p| p != &contact);
        }
        if push.removed {
            r.items.remove(&contact);
        } else {
            r.items.insert(contact.clone(), push.item.clone());
        }
    }
    if c.roster_interested {
        let domain = c.xmpp.domain.clone();
        let to = c.jid.clone().unwrap_or_default();
        c.push(
            Element::new("iq", NS_CLIENT)
                .attr("type", "set")
                .attr("id", format!("push-{}", bus::new_id()))
                .attr("to", to)
                .child(
                    Element::new("query", NS_ROSTER)
                        .attr("ver", push.ver.to_string())
                        .child(item_element(&push.item, push.removed, &domain)),
                ),
        );
    }
    if c.roster.is_some() && was_from != now_from {
        presence::subscriber_changed(c, &contact, now_from).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::Subscription;

    #[test]
    fn items_are_written_as_rfc_6121_has_them() {
        let item = RosterItem {
            contact: "bob".into(),
            name: Some("Bob".into()),
            groups: vec!["Friends".into()],
            subscription: Subscription::To,
            ask: true,
        };
        let e = item_element(&item, false, "localhost").to_string();
        assert!(e.contains(r#"jid="bob@localhost""#), "{e}");
        assert!(e.contains(r#"subscription="to""#), "{e}");
        assert!(e.contains(r#"ask="subscribe""#), "{e}");
        assert!(e.contains("<group>Friends</group>"), "{e}");
        let gone = item_element(&item, true, "localhost").to_string();
        assert!(gone.contains(r#"subscription="remove""#), "{gone}");
        assert!(!gone.contains("group"), "{gone}");
    }
}
