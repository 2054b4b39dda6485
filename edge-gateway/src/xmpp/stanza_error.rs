//! Stanza errors (RFC 6120 §8.3): the error answer to one stanza; the
//! stream goes on.

use super::framing::NS_STANZAS;
use super::xml::Element;

/// The conditions used so far, with the error type RFC 6120 §8.3.3 gives
/// each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanzaCondition {
    BadRequest,
    ServiceUnavailable,
    NotAllowed,
}

impl StanzaCondition {
    pub fn name(self) -> &'static str {
        match self {
            StanzaCondition::BadRequest => "bad-request",
            StanzaCondition::ServiceUnavailable => "service-unavailable",
            StanzaCondition::NotAllowed => "not-allowed",
        }
    }

    pub fn error_type(self) -> &'static str {
        match self {
            StanzaCondition::BadRequest => "modify",
            StanzaCondition::ServiceUnavailable | StanzaCondition::NotAllowed => "cancel",
        }
    }
}

/// The error reply to `stanza`: same element name and id, `to`/`from`
/// swapped (the sender's own address when it gave none), `type="error"`.
pub fn reply(
    stanza: &Element,
    condition: StanzaCondition,
    from: &str,
    to: Option<&str>,
) -> Element {
    let from = stanza.get_attr("to").unwrap_or(from);
    Element::new(&stanza.name, &stanza.ns)
        .attr("type", "error")
        .attr_opt("id", stanza.get_attr("id"))
        .attr("from", from)
        .attr_opt("to", to)
        .child(
            Element::new("error", &stanza.ns)
                .attr("type", condition.error_type())
                .child(Element::new(condition.name(), NS_STANZAS)),
        )
}
