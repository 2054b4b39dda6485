//! After SASL: resource binding (RFC 6120 §7, which starts the platform
//! session), the legacy session iq (RFC 3921 §3, answered with an empty
//! result), XEP-0199 ping, and the routing of every other stanza: iqs to
//! disco, MAM, the roster, carbons, vCards and registration, `message` to
//! rooms or people, `presence` to rooms, people or the session's own
//! state. Any other iq gets `service-unavailable`.

use super::carbons::NS_CARBONS;
use super::conn::{Conn, End};
use super::framing::{NS_BIND, NS_PING, NS_SESSION};
use super::jid::{self, Jid};
use super::register::NS_REGISTER;
use super::roster::NS_ROSTER;
use super::stanza_error::{self, StanzaCondition};
use super::stream_error::Condition;
use super::vcard::NS_VCARD;
use super::xml::{Element, NS_CLIENT};
use super::{
    carbons, chat, disco, history, mam, muc, muc_admin, presence, register, roster, session, vcard,
};

/// The longest resource accepted (RFC 7622 §3.4).
const MAX_RESOURCE_BYTES: usize = 1023;

/// A client-chosen resource, if acceptable: not empty, not too long, no
/// control characters.
fn valid_resource(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_RESOURCE_BYTES && !r.chars().any(char::is_control)
}

/// A stanza in the `jabber:client` namespace on the restarted stream.
pub async fn on_stanza(c: &mut Conn, e: &Element) -> Result<(), End> {
    if e.ns != NS_CLIENT {
        return Err(End::Error(Condition::UnsupportedStanzaType));
    }
    match e.name.as_str() {
        "iq" => on_iq(c, e).await,
        // Before binding there is no address to route from (RFC 6120 §7.1).
        "message" | "presence" if c.session.is_none() => Err(End::Error(Condition::NotAuthorized)),
        "message" => {
            on_message(c, e).await;
            Ok(())
        }
        "presence" => {
            presence::on_presence(c, e).await;
            Ok(())
        }
        _ => Err(End::Error(Condition::UnsupportedStanzaType)),
    }
}

/// A message: `groupchat` to a room, anything else to a person; errors
/// are dropped (answering an error with an error loops).
async fn on_message(c: &mut Conn, e: &Element) {
    let kind = e.get_attr("type").unwrap_or("normal");
    if kind == "error" {
        return;
    }
    let Some(to) = e.get_attr("to").and_then(Jid::parse) else {
        error(c, e, StanzaCondition::JidMalformed);
        return;
    };
    let muc_domain = jid::muc_domain(&c.xmpp.domain);
    match kind {
        "groupchat" if to.domain == muc_domain && to.resource.is_none() => {
            muc::on_groupchat(c, e, &to).await
        }
        "groupchat" => error(c, e, StanzaCondition::BadRequest),
        _ if to.domain == muc_domain && to.resource.is_none() => {
            // A `chat` to a room itself: nobody to deliver it to.
            error(c, e, StanzaCondition::BadRequest)
        }
        _ => chat::on_message(c, e, &to).await,
    }
}

async fn on_iq(c: &mut Conn, iq: &Element) -> Result<(), End> {
    let kind = iq.get_attr("type").unwrap_or("");
    if matches!(kind, "result" | "error") {
        // We send no requests yet: nothing waits for these.
        return Ok(());
    }
    let payloads: Vec<&Element> = iq.elements().collect();
    let valid = iq.get_attr("id").is_some() && matches!(kind, "get" | "set") && payloads.len() == 1;
    if !valid {
        tracing::debug!(iq = %iq, "xmpp: malformed iq");
        error(c, iq, StanzaCondition::BadRequest);
        return Ok(());
    }
    let payload = payloads[0];
    match (kind, payload.name.as_str(), payload.ns.as_str()) {
        ("set", "bind", NS_BIND) => bind(c, iq, payload).await,
        ("set", "session", NS_SESSION) => {
            result(c, iq, None);
            Ok(())
        }
        ("get", "ping", NS_PING) => {
            result(c, iq, None);
            Ok(())
        }
        _ if c.session.is_none() => Err(End::Error(Condition::NotAuthorized)),
        ("get", "query", disco::NS_INFO) => {
            disco::info(c, iq, payload).await;
            Ok(())
        }
        ("get", "query", disco::NS_ITEMS) => {
            disco::items(c, iq, payload).await;
            Ok(())
        }
        ("get", "query", mam::NS_MAM) => {
            mam::form(c, iq);
            Ok(())
        }
        ("set", "query", mam::NS_MAM) => {
            mam::query(c, iq, payload).await;
            Ok(())
        }
        ("get", "query", NS_ROSTER) => {
            roster::on_get(c, iq).await;
            Ok(())
        }
        ("set", "query", NS_ROSTER) => {
            roster::on_set(c, iq, payload).await;
            Ok(())
        }
        ("set", "enable" | "disable", NS_CARBONS) => {
            carbons::on_iq(c, iq, payload);
            Ok(())
        }
        ("get", "vCard", NS_VCARD) => {
            vcard::on_get(c, iq).await;
            Ok(())
        }
        ("set", "vCard", NS_VCARD) => {
            vcard::on_set(c, iq, payload).await;
            Ok(())
        }
        (_, "query", muc_admin::NS_MUC_ADMIN) => {
            muc_admin::on_iq(c, iq, payload).await;
            Ok(())
        }
        (_, "query", NS_REGISTER) => {
            register::after_auth(c, iq);
            Ok(())
        }
        _ => {
            error(c, iq, StanzaCondition::ServiceUnavailable);
            Ok(())
        }
    }
}

async fn bind(c: &mut Conn, iq: &Element, payload: &Element) -> Result<(), End> {
    if c.jid.is_some() {
        // One resource per stream (RFC 6120 §7.7.2.1 lets us refuse more).
        error(c, iq, StanzaCondition::NotAllowed);
        return Ok(());
    }
    let Some(account) = c.account.clone() else {
        return Err(End::Error(Condition::NotAuthorized));
    };
    let requested = payload
        .find("resource", NS_BIND)
        .map(|r| r.text_content().trim().to_string())
        .filter(|r| !r.is_empty());
    if requested.as_deref().is_some_and(|r| !valid_resource(r)) {
        error(c, iq, StanzaCondition::BadRequest);
        return Ok(());
    }
    let bare = format!("{account}@{}", c.xmpp.domain);
    // A resource in use on this gateway gets a generated one instead
    // (RFC 6120 §7.7.2.2 allows the server to override the request).
    let mut jid = requested
        .map(|r| format!("{bare}/{r}"))
        .filter(|jid| c.resources.claim(jid));
    while jid.is_none() {
        let candidate = format!("{bare}/{}", generated_resource());
        if c.resources.claim(&candidate) {
            jid = Some(candidate);
        }
    }
    let jid = jid.unwrap_or_default();
    c.jid = Some(jid.clone());
    if let Err(e) = session::start(c).await {
        tracing::warn!(error = %e, %jid, "xmpp: starting the session failed");
        c.resources.release(&jid);
        c.jid = None;
        error(c, iq, StanzaCondition::InternalServerError);
        return Ok(());
    }
    if let Err(e) = c.gw.link.bind_account(&c.sid, &account).await {
        // The session works without it, but hears no presence, pushes or
        // carbons of its account.
        tracing::warn!(error = %e, %jid, "xmpp: binding the session queue to its account failed");
    }
    tracing::info!(jid = %jid, "xmpp: resource bound");
    let answer = Element::new("bind", NS_BIND).child(Element::new("jid", NS_BIND).text(jid));
    result(c, iq, Some(answer));
    history::fetch_pending(c).await;
    Ok(())
}

fn generated_resource() -> String {
    format!("chat-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// `<iq type="result">` for `iq`, with an optional payload.
pub fn result(c: &mut Conn, iq: &Element, payload: Option<Element>) {
    let mut answer = Element::new("iq", NS_CLIENT)
        .attr("type", "result")
        .attr_opt("id", iq.get_attr("id"))
        .attr_opt("from", iq.get_attr("to"))
        .attr_opt("to", c.jid.as_deref());
    if let Some(p) = payload {
        answer = answer.child(p);
    }
    c.push(answer);
}

/// The stanza error answering `iq` (or any stanza).
pub fn error(c: &mut Conn, iq: &Element, condition: StanzaCondition) {
    let from = c.xmpp.domain.clone();
    let to = c.jid.clone();
    c.push(stanza_error::reply(iq, condition, &from, to.as_deref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_checked_and_generated_ones_differ() {
        assert!(valid_resource("laptop"));
        assert!(!valid_resource(""));
        assert!(!valid_resource("a\u{7}b"));
        assert!(!valid_resource(&"x".repeat(1024)));
        assert_ne!(generated_resource(), generated_resource());
    }
}
