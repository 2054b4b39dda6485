//! In-band registration (XEP-0077), before authentication: the form asks
//! for a username and a password, and the account is created by the auth
//! service exactly as IRC `REGISTER` creates one; the client then
//! authenticates with SASL as usual. `[xmpp] registration = false` turns
//! it off (no stream feature, `service-unavailable`).
//!
//! After authentication the query only says the account is registered:
//! changing the password and cancelling the account are not offered here.

use bus::names::fold;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody};

use super::bind::{error, result};
use super::conn::Conn;
use super::requests::{self, Purpose};
use super::stanza_error::StanzaCondition;
use super::xml::Element;

pub const NS_REGISTER: &str = "jabber:iq:register";
/// The stream feature (XEP-0077 §4).
pub const NS_REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";

fn form() -> Element {
    Element::new("query", NS_REGISTER)
        .child(Element::new("instructions", NS_REGISTER).text(
            "Choose a username (2-32 lowercase letters, digits, '-' or '_', starting with a letter) and a password.",
        ))
        .child(Element::new("username", NS_REGISTER))
        .child(Element::new("password", NS_REGISTER))
}

/// A registration iq on a stream that has not authenticated.
pub async fn before_auth(c: &mut Conn, iq: &Element, q: &Element) {
    if !c.xmpp.registration {
        error(c, iq, StanzaCondition::ServiceUnavailable);
        return;
    }
    match iq.get_attr("type") {
        Some("get") => result(c, iq, Some(form())),
        Some("set") => {
            let field = |name: &str| q.find(name, NS_REGISTER).map(|e| e.text_content());
            if q.find("remove", NS_REGISTER).is_some() {
                // Nothing to cancel before logging in.
                error(c, iq, StanzaCondition::RegistrationRequired);
                return;
            }
            let (Some(username), Some(password)) = (field("username"), field("password")) else {
                error(c, iq, StanzaCondition::NotAcceptable);
                return;
            };
            let body = AuthRequestBody::Register {
                account: fold(username.trim()),
                password,
                email: field("email").filter(|e| !e.trim().is_empty()),
            };
            requests::ask(c, body, Purpose::Register { iq: iq.clone() }).await;
        }
        _ => error(c, iq, StanzaCondition::BadRequest),
    }
}

/// A registration iq after authentication.
pub fn after_auth(c: &mut Conn, iq: &Element) {
    match iq.get_attr("type") {
        Some("get") => {
            let name = c.account.clone().unwrap_or_default();
            let q = Element::new("query", NS_REGISTER)
                .child(Element::new("registered", NS_REGISTER))
                .child(Element::new("username", NS_REGISTER).text(name));
            result(c, iq, Some(q));
        }
        _ => error(c, iq, StanzaCondition::NotAllowed),
    }
}

pub fn on_reply(c: &mut Conn, iq: &Element, body: AuthReplyBody) {
    let condition = match body {
        AuthReplyBody::Registered { account } => {
            tracing::info!(%account, "xmpp: account registered in-band");
            result(c, iq, None);
            return;
        }
        AuthReplyBody::Failure { code, .. } => match code {
            AuthError::AccountExists => StanzaCondition::Conflict,
            AuthError::BadAccountName => StanzaCondition::JidMalformed,
            AuthError::WeakPassword => StanzaCondition::NotAcceptable,
            AuthError::RateLimited => StanzaCondition::ResourceConstraint,
            _ => StanzaCondition::InternalServerError,
        },
        _ => StanzaCondition::InternalServerError,
    };
    error(c, iq, condition);
}
