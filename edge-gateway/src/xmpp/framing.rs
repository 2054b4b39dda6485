//! RFC 7395 framing: `<open/>` and `<close/>` instead of a stream header,
//! and the stream features offered after each `<open/>`.

use super::xml::Element;

pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_PING: &str = "urn:xmpp:ping";

/// The server's `<open/>` answering the client's.
pub fn open(domain: &str, stream_id: &str) -> Element {
    Element::new("open", NS_FRAMING)
        .attr("from", domain)
        .attr("id", stream_id)
        .attr("version", "1.0")
        .attr("xml:lang", "en")
}

pub fn close() -> Element {
    Element::new("close", NS_FRAMING)
}

/// Features before authentication: the SASL mechanisms, strongest first,
/// and in-band registration when it is on.
pub fn features_before_auth(mechanisms: &[&str], registration: bool) -> Element {
    let mut list = Element::new("mechanisms", NS_SASL);
    for m in mechanisms {
        list = list.child(Element::new("mechanism", NS_SASL).text(*m));
    }
    let f = features().child(list);
    if registration {
        f.child(Element::new(
            "register",
            super::register::NS_REGISTER_FEATURE,
        ))
    } else {
        f
    }
}

/// Features of the restarted stream: resource binding, the legacy
/// session, marked optional (RFC 3921 clients still ask for it), and
/// roster versioning.
pub fn features_after_auth() -> Element {
    features()
        .child(Element::new("bind", NS_BIND))
        .child(Element::new("session", NS_SESSION).child(Element::new("optional", NS_SESSION)))
        .child(Element::new("ver", super::roster::NS_ROSTER_VER))
}

fn features() -> Element {
    Element::new("stream:features", "").attr("xmlns:stream", NS_STREAM)
}
