//! vCards (XEP-0054, with the avatar hash of XEP-0153 carried by the
//! clients' own presence): each account has one, stored by the auth
//! service. Anyone may read an account's vCard; only its owner may set it.

use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody};

use super::bind::{error, result};
use super::conn::Conn;
use super::jid::Jid;
use super::requests::{self, Purpose};
use super::roster::account_of;
use super::stanza_error::StanzaCondition;
use super::xml::{self, Element, Limits, Parsed};

pub const NS_VCARD: &str = "vcard-temp";

/// Whose vCard an iq is about: its `to` (a bare account JID), or the
/// sender's own.
fn target(c: &Conn, iq: &Element) -> Result<String, StanzaCondition> {
    match iq.get_attr("to") {
        None => c.account.clone().ok_or(StanzaCondition::NotAuthorized),
        Some(to) => {
            let j = Jid::parse(to).ok_or(StanzaCondition::JidMalformed)?;
            if j.domain == super::jid::muc_domain(&c.xmpp.domain) {
                // Rooms and occupants have no vCards here.
                return Err(StanzaCondition::ServiceUnavailable);
            }
            if j.domain != c.xmpp.domain {
                return Err(StanzaCondition::RemoteServerNotFound);
            }
            if j.local.is_none() {
                // The server's own vCard: it has none.
                return Err(StanzaCondition::ItemNotFound);
            }
            account_of(c, &j).ok_or(StanzaCondition::ItemNotFound)
        }
    }
}

pub async fn on_get(c: &mut Conn, iq: &Element) {
    match target(c, iq) {
        Ok(account) => {
            let purpose = Purpose::VcardGet { iq: iq.clone() };
            requests::ask(c, AuthRequestBody::VcardGet { account }, purpose).await
        }
        Err(condition) => error(c, iq, condition),
    }
}

pub async fn on_set(c: &mut Conn, iq: &Element, card: &Element) {
    match target(c, iq) {
        Ok(account) if Some(&account) == c.account.as_ref() => {
            let body = AuthRequestBody::VcardSet {
                account,
                vcard: card.to_string(),
            };
            requests::ask(c, body, Purpose::VcardSet { iq: iq.clone() }).await
        }
        Ok(_) => error(c, iq, StanzaCondition::Forbidden),
        Err(condition) => error(c, iq, condition),
    }
}

/// The stored vCard. An account that never set one has an empty one when
/// it asks for its own (XEP-0054 §3.1) and none when others ask (§3.3,
/// `item-not-found`, as for a name that is no account).
pub fn on_get_reply(c: &mut Conn, iq: &Element, body: AuthReplyBody) {
    let own = match iq.get_attr("to") {
        None => true,
        Some(to) => Jid::parse(to)
            .and_then(|j| account_of(c, &j))
            .is_some_and(|a| Some(&a) == c.account.as_ref()),
    };
    let stored = match body {
        AuthReplyBody::Vcard { vcard } => vcard,
        AuthReplyBody::Failure {
            code: AuthError::NotFound,
            ..
        } => return error(c, iq, StanzaCondition::ItemNotFound),
        _ => return error(c, iq, StanzaCondition::InternalServerError),
    };
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: c.xmpp.max_depth,
        max_attributes: c.xmpp.max_attributes,
    };
    let card = stored.and_then(|v| match xml::parse(&v, &limits) {
        Ok(Parsed::Element(e)) => Some(e),
        _ => None,
    });
    match card {
        Some(card) => result(c, iq, Some(card)),
        None if own => result(c, iq, Some(Element::new("vCard", NS_VCARD))),
        None => error(c, iq, StanzaCondition::ItemNotFound),
    }
}

pub fn on_set_reply(c: &mut Conn, iq: &Element, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Stored => result(c, iq, None),
        AuthReplyBody::Failure {
            code: AuthError::Malformed,
            ..
        } => error(c, iq, StanzaCondition::NotAcceptable),
        _ => error(c, iq, StanzaCondition::InternalServerError),
    }
}
