//! Stanza errors (RFC 6120 §8.3): the error answer to one stanza; the
//! stream goes on.

use super::framing::NS_STANZAS;
use super::xml::Element;

/// The conditions this gateway sends, with the error type RFC 6120 §8.3.3
/// gives each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanzaCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
}

impl StanzaCondition {
    pub fn name(self) -> &'static str {
        match self {
            StanzaCondition::BadRequest => "bad-request",
            StanzaCondition::Conflict => "conflict",
            StanzaCondition::FeatureNotImplemented => "feature-not-implemented",
            StanzaCondition::Forbidden => "forbidden",
            StanzaCondition::InternalServerError => "internal-server-error",
            StanzaCondition::ItemNotFound => "item-not-found",
            StanzaCondition::JidMalformed => "jid-malformed",
            StanzaCondition::NotAcceptable => "not-acceptable",
            StanzaCondition::NotAllowed => "not-allowed",
            StanzaCondition::NotAuthorized => "not-authorized",
            StanzaCondition::PolicyViolation => "policy-violation",
            StanzaCondition::RegistrationRequired => "registration-required",
            StanzaCondition::RemoteServerNotFound => "remote-server-not-found",
            StanzaCondition::RemoteServerTimeout => "remote-server-timeout",
            StanzaCondition::ResourceConstraint => "resource-constraint",
            StanzaCondition::ServiceUnavailable => "service-unavailable",
        }
    }

    pub fn error_type(self) -> &'static str {
        use StanzaCondition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation => "modify",
            Forbidden | NotAuthorized | RegistrationRequired => "auth",
            InternalServerError | RemoteServerTimeout | ResourceConstraint => "wait",
            Conflict
            | FeatureNotImplemented
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable => "cancel",
        }
    }

    /// The condition for a router refusal.
    pub fn of(code: bus::schema::ErrorCode) -> Self {
        use bus::schema::ErrorCode as E;
        match code {
            E::NoSuchNick | E::NoSuchChannel | E::UserNotInChannel => StanzaCondition::ItemNotFound,
            E::CannotSendToChan | E::BannedFromChan | E::ChanOpPrivsNeeded => {
                StanzaCondition::Forbidden
            }
            E::TooManyChannels => StanzaCondition::PolicyViolation,
            E::NotOnChannel => StanzaCondition::NotAcceptable,
            E::UserOnChannel => StanzaCondition::Conflict,
            E::NeedMoreParams | E::UnknownMode => StanzaCondition::BadRequest,
            E::ChannelIsFull => StanzaCondition::ServiceUnavailable,
            E::InviteOnlyChan => StanzaCondition::RegistrationRequired,
            E::BadChannelKey => StanzaCondition::NotAuthorized,
            E::BadChanMask => StanzaCondition::JidMalformed,
        }
    }
}

/// An `<error>` element (in the stanza's namespace) with an optional text.
pub fn error_element(ns: &str, condition: StanzaCondition, text: Option<&str>) -> Element {
    let mut e = Element::new("error", ns)
        .attr("type", condition.error_type())
        .child(Element::new(condition.name(), NS_STANZAS));
    if let Some(text) = text {
        e = e.child(
            Element::new("text", NS_STANZAS)
                .attr("xml:lang", "en")
                .text(text),
        );
    }
    e
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
        .child(error_element(&stanza.ns, condition, None))
}
