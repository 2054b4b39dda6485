//! Stream errors (RFC 6120 §4.9): unrecoverable; each ends only the stream
//! it is sent on.

use super::framing::{NS_STREAM, NS_STREAM_ERRORS};
use super::xml::Element;

/// The conditions this gateway sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Conflict,
    HostUnknown,
    InternalServerError,
    InvalidNamespace,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RestrictedXml,
    ConnectionTimeout,
    SystemShutdown,
    UnsupportedStanzaType,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Conflict => "conflict",
            Condition::HostUnknown => "host-unknown",
            Condition::InternalServerError => "internal-server-error",
            Condition::InvalidNamespace => "invalid-namespace",
            Condition::NotAuthorized => "not-authorized",
            Condition::NotWellFormed => "not-well-formed",
            Condition::PolicyViolation => "policy-violation",
            Condition::RestrictedXml => "restricted-xml",
            Condition::ConnectionTimeout => "connection-timeout",
            Condition::SystemShutdown => "system-shutdown",
            Condition::UnsupportedStanzaType => "unsupported-stanza-type",
        }
    }
}

/// `<stream:error xmlns:stream=…><cond xmlns=…streams/></stream:error>`
/// (RFC 7395 §3.6: the prefix is declared on the element itself).
pub fn element(condition: Condition) -> Element {
    Element::new("stream:error", "")
        .attr("xmlns:stream", NS_STREAM)
        .child(Element::new(condition.name(), NS_STREAM_ERRORS))
}
