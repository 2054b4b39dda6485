//! After SASL: resource binding (RFC 6120 §7), the legacy session iq
//! (RFC 3921 §3, answered with an empty result), XEP-0199 ping, and the
//! stanza-error answer to every other iq.
//!
//! `message` and `presence` stanzas are accepted and dropped silently for
//! now: IM, presence and MUC are the next parts of issue 5 and will route
//! them; refusing them here would break clients that send initial presence
//! right after binding.

use super::conn::{Conn, End};
use super::framing::{NS_BIND, NS_PING, NS_SESSION};
use super::stanza_error::{self, StanzaCondition};
use super::stream_error::Condition;
use super::xml::{Element, NS_CLIENT};

/// The longest resource accepted (RFC 7622 §3.4).
const MAX_RESOURCE_BYTES: usize = 1023;

/// A client-chosen resource, if acceptable: not empty, not too long, no
/// control characters.
fn valid_resource(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_RESOURCE_BYTES && !r.chars().any(char::is_control)
}

/// A stanza in the `jabber:client` namespace on the restarted stream.
pub fn on_stanza(c: &mut Conn, e: &Element) -> Result<(), End> {
    if e.ns != NS_CLIENT {
        return Err(End::Error(Condition::UnsupportedStanzaType));
    }
    match e.name.as_str() {
        "iq" => on_iq(c, e),
        // Before binding there is no address to route from (RFC 6120 §7.1).
        "message" | "presence" if c.jid.is_none() => Err(End::Error(Condition::NotAuthorized)),
        "message" | "presence" => Ok(()),
        _ => Err(End::Error(Condition::UnsupportedStanzaType)),
    }
}

fn on_iq(c: &mut Conn, iq: &Element) -> Result<(), End> {
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
        ("set", "bind", NS_BIND) => bind(c, iq, payload),
        ("set", "session", NS_SESSION) => {
            result(c, iq, None);
            Ok(())
        }
        ("get", "ping", NS_PING) => {
            result(c, iq, None);
            Ok(())
        }
        _ if c.jid.is_none() => Err(End::Error(Condition::NotAuthorized)),
        _ => {
            error(c, iq, StanzaCondition::ServiceUnavailable);
            Ok(())
        }
    }
}

fn bind(c: &mut Conn, iq: &Element, payload: &Element) -> Result<(), End> {
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
    tracing::info!(jid = %jid, "xmpp: resource bound");
    c.jid = Some(jid.clone());
    let answer = Element::new("bind", NS_BIND).child(Element::new("jid", NS_BIND).text(jid));
    result(c, iq, Some(answer));
    Ok(())
}

fn generated_resource() -> String {
    format!("chat-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// `<iq type="result">` for `iq`, with an optional payload.
fn result(c: &mut Conn, iq: &Element, payload: Option<Element>) {
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

fn error(c: &mut Conn, iq: &Element, condition: StanzaCondition) {
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
