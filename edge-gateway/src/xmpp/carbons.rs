//! Message carbons (XEP-0280): a session that enabled them gets a copy of
//! each one-to-one message its account's other sessions send (`<sent/>`)
//! or receive (`<received/>`), so a conversation reads the same on every
//! device. Copies travel as [`DirectBody::Carbon`] to `account.<name>`;
//! the session the message belongs to skips its own.

use bus::schema::{Direct, DirectBody, SCHEMA_VERSION};

use super::conn::Conn;
use super::xml::{self, Element, Limits, Parsed, NS_CLIENT};

pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_HINTS: &str = "urn:xmpp:hints";

/// `<enable/>` or `<disable/>`.
pub fn on_iq(c: &mut Conn, iq: &Element, payload: &Element) {
    c.carbons = payload.name == "enable";
    super::bind::result(c, iq, None);
}

/// Whether a message asks not to be copied (`<private/>`, `<no-copy/>`).
pub fn is_private(e: &Element) -> bool {
    e.find("private", NS_CARBONS).is_some() || e.find("no-copy", NS_HINTS).is_some()
}

/// Sends a copy of `message` (as sent or as received by this session) to
/// the account's other sessions. Only chat messages with a body are
/// copied (XEP-0280 §6).
pub async fn copy(c: &mut Conn, message: &Element, sent: bool) {
    if is_private(message) || message.find("body", NS_CLIENT).is_none() {
        return;
    }
    let (Some(account), Some(actor)) = (
        c.account.clone(),
        c.session.as_ref().map(|s| s.actor.clone()),
    ) else {
        return;
    };
    let direct = Direct {
        v: SCHEMA_VERSION,
        id: bus::new_id(),
        at: bus::now_ms(),
        from: actor,
        body: DirectBody::Carbon {
            sent,
            stanza: message.to_string(),
            except: c.sid.clone(),
        },
    };
    if let Err(e) = c.gw.link.publish_account(&account, direct).await {
        tracing::debug!(error = %e, "xmpp: publishing a carbon failed");
    }
}

/// A copy from another session of the account, wrapped for this client
/// if it enabled carbons.
pub fn on_direct(c: &mut Conn, sent: bool, stanza: &str, except: &str) {
    if !c.carbons || except == c.sid {
        return;
    }
    let limits = Limits {
        max_bytes: stanza.len().max(c.xmpp.max_stanza_bytes),
        max_depth: c.xmpp.max_depth,
        max_attributes: c.xmpp.max_attributes,
    };
    let Ok(Parsed::Element(inner)) = xml::parse(stanza, &limits) else {
        return;
    };
    let me = c.jid.clone().unwrap_or_default();
    let bare = me.split('/').next().unwrap_or_default().to_string();
    let kind = if sent { "sent" } else { "received" };
    c.push(
        Element::new("message", NS_CLIENT)
            .attr("from", bare)
            .attr("to", me)
            .attr("type", inner.get_attr("type").unwrap_or("chat").to_string())
            .child(
                Element::new(kind, NS_CARBONS)
                    .child(Element::new("forwarded", NS_FORWARD).child(inner)),
            ),
    );
}
