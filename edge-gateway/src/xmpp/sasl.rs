//! SASL (RFC 6120 §6) over the stream: PLAIN, SCRAM-SHA-1 and
//! SCRAM-SHA-256, every decision the auth service's.
//!
//! The gateway only frames the exchange (base64 in `<auth>`, `<challenge>`,
//! `<response>`, `<success>`); the SCRAM state between the steps is the
//! service's sealed `state` string, as for IRC, so any auth replica can
//! answer any step. One request is in flight at a time: the client waits
//! for each answer anyway.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody, ScramMechanism};
use tokio::time::Instant;

use super::conn::{Conn, End};
use super::framing::NS_SASL;
use super::xml::Element;

/// Offered in this order (strongest first, as clients pick the first they
/// support).
pub const MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

/// The most decoded bytes one SASL message may carry: SCRAM messages are
/// short, PLAIN carries a name and a password.
const MAX_SASL_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-1" => Some(Mechanism::Scram(ScramMechanism::Sha1)),
            "SCRAM-SHA-256" => Some(Mechanism::Scram(ScramMechanism::Sha256)),
            _ => None,
        }
    }
}

/// Where an exchange stands.
#[derive(Debug, Default)]
pub enum Sasl {
    #[default]
    Idle,
    /// `<auth>` came without an initial response; we sent an empty
    /// `<challenge/>` and wait for the `<response>` carrying it.
    AwaitInitial(Mechanism),
    /// A request is with the auth service.
    Waiting { id: String, deadline: Instant },
    /// The SCRAM server-first went out; the next `<response>` is the
    /// client-final.
    AwaitFinal { state: String },
}

/// The SASL failure conditions (RFC 6120 §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslFailure {
    Aborted,
    AccountDisabled,
    IncorrectEncoding,
    InvalidMechanism,
    MalformedRequest,
    NotAuthorized,
    TemporaryAuthFailure,
}

impl SaslFailure {
    fn name(self) -> &'static str {
        match self {
            SaslFailure::Aborted => "aborted",
            SaslFailure::AccountDisabled => "account-disabled",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

fn failure_element(failure: SaslFailure, text: Option<String>) -> Element {
    let mut e = Element::new("failure", NS_SASL).child(Element::new(failure.name(), NS_SASL));
    if let Some(text) = text {
        e = e.child(
            Element::new("text", NS_SASL)
                .attr("xml:lang", "en")
                .text(text),
        );
    }
    e
}

fn fail(c: &mut Conn, failure: SaslFailure) {
    c.sasl = Sasl::Idle;
    c.push(failure_element(failure, None));
}

/// Decodes a SASL payload: empty text is "no data", `=` is empty data
/// (RFC 6120 §6.4.2). `None` is bad base64 or too much.
fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text == "=" {
        return Some(Vec::new());
    }
    let bytes = B64.decode(text).ok()?;
    (bytes.len() <= MAX_SASL_BYTES).then_some(bytes)
}

/// `<auth mechanism="…">[initial response]</auth>`.
pub async fn on_auth(c: &mut Conn, e: &Element) -> Result<(), End> {
    if matches!(c.sasl, Sasl::Waiting { .. }) {
        // A new exchange replaces the one in flight; its answer is dropped.
        c.sasl = Sasl::Idle;
    }
    let Some(mechanism) = e.get_attr("mechanism").and_then(Mechanism::parse) else {
        fail(c, SaslFailure::InvalidMechanism);
        return Ok(());
    };
    let text = e.text_content();
    if text.trim().is_empty() {
        c.sasl = Sasl::AwaitInitial(mechanism);
        c.push(Element::new("challenge", NS_SASL));
        return Ok(());
    }
    match decode(&text) {
        Some(bytes) => start(c, mechanism, bytes).await,
        None => fail(c, SaslFailure::IncorrectEncoding),
    }
    Ok(())
}

/// `<response>`: the initial response we asked for, or the SCRAM
/// client-final.
pub async fn on_response(c: &mut Conn, e: &Element) -> Result<(), End> {
    // An empty `<response/>` is empty data (base64 of nothing), like `=`.
    let Some(bytes) = decode(&e.text_content()) else {
        fail(c, SaslFailure::IncorrectEncoding);
        return Ok(());
    };
    match std::mem::take(&mut c.sasl) {
        Sasl::AwaitInitial(mechanism) => start(c, mechanism, bytes).await,
        Sasl::AwaitFinal { state } => match String::from_utf8(bytes) {
            Ok(client_final) => {
                ask(
                    c,
                    AuthRequestBody::ScramFinish {
                        state,
                        client_final,
                    },
                )
                .await
            }
            Err(_) => fail(c, SaslFailure::MalformedRequest),
        },
        // A response nobody asked for (or while the service decides).
        Sasl::Idle | Sasl::Waiting { .. } => fail(c, SaslFailure::MalformedRequest),
    }
    Ok(())
}

/// `<abort/>`: the exchange ends; an answer still coming is dropped.
pub fn on_abort(c: &mut Conn) {
    fail(c, SaslFailure::Aborted);
}

async fn start(c: &mut Conn, mechanism: Mechanism, bytes: Vec<u8>) {
    let body = match mechanism {
        Mechanism::Plain => match parse_plain(&bytes, &c.xmpp.domain) {
            Some((authzid, account, password)) => AuthRequestBody::Plain {
                authzid,
                account,
                password,
            },
            None => return fail(c, SaslFailure::MalformedRequest),
        },
        Mechanism::Scram(mechanism) => match String::from_utf8(bytes) {
            Ok(client_first) => AuthRequestBody::ScramStart {
                mechanism,
                client_first,
            },
            Err(_) => return fail(c, SaslFailure::MalformedRequest),
        },
    };
    ask(c, body).await;
}

/// A PLAIN message (see [`crate::sasl::parse_plain`]). An XMPP authzid is
/// a JID: the account's own bare JID is the same as none; anything else is
/// passed on for the auth service to refuse.
pub fn parse_plain(bytes: &[u8], domain: &str) -> Option<(Option<String>, String, String)> {
    let (authzid, authcid, password) = crate::sasl::parse_plain(bytes)?;
    let own = format!("{authcid}@{domain}");
    let authzid = authzid.filter(|a| !a.eq_ignore_ascii_case(&own));
    Some((authzid, authcid, password))
}

async fn ask(c: &mut Conn, body: AuthRequestBody) {
    match c.request_auth(body).await {
        Some((id, deadline)) => c.sasl = Sasl::Waiting { id, deadline },
        None => fail(c, SaslFailure::TemporaryAuthFailure),
    }
}

/// When the request in flight times out, if one is.
pub fn deadline(c: &Conn) -> Option<Instant> {
    match &c.sasl {
        Sasl::Waiting { deadline, .. } => Some(*deadline),
        _ => None,
    }
}

/// The auth service did not answer in time.
pub fn on_timeout(c: &mut Conn) {
    tracing::debug!("xmpp: auth request timed out");
    fail(c, SaslFailure::TemporaryAuthFailure);
}

/// The auth service's answer to request `id`; one nobody waits for any
/// more (aborted, replaced, timed out) is dropped.
pub fn on_reply(c: &mut Conn, id: &str, body: AuthReplyBody) {
    if !matches!(&c.sasl, Sasl::Waiting { id: waiting, .. } if waiting == id) {
        tracing::debug!(id, "xmpp: dropping an auth reply nobody waits for");
        return;
    }
    c.sasl = Sasl::Idle;
    match body {
        AuthReplyBody::ScramContinue {
            server_first,
            state,
        } => {
            c.sasl = Sasl::AwaitFinal { state };
            c.push(Element::new("challenge", NS_SASL).text(B64.encode(server_first)));
        }
        AuthReplyBody::Success {
            account,
            server_final,
            ..
        } => {
            let mut success = Element::new("success", NS_SASL);
            if let Some(data) = server_final {
                success = success.text(B64.encode(data));
            }
            c.push(success);
            c.logged_in(account);
        }
        AuthReplyBody::Failure {
            code: AuthError::RateLimited,
            retry_after_secs,
        } => {
            let wait = retry_after_secs.unwrap_or(60);
            c.push(failure_element(
                SaslFailure::TemporaryAuthFailure,
                Some(format!(
                    "Too many authentication attempts, wait {wait} seconds"
                )),
            ));
        }
        AuthReplyBody::Failure { code, .. } => {
            let failure = match code {
                AuthError::InvalidCredentials | AuthError::NotFound | AuthError::BadToken => {
                    SaslFailure::NotAuthorized
                }
                AuthError::Disabled => SaslFailure::AccountDisabled,
                AuthError::Malformed
                | AuthError::BadAccountName
                | AuthError::WeakPassword
                | AuthError::AccountExists
                | AuthError::Taken => SaslFailure::MalformedRequest,
                AuthError::RateLimited | AuthError::Internal => SaslFailure::TemporaryAuthFailure,
            };
            fail(c, failure);
        }
        other => {
            tracing::warn!(reply = ?other, "xmpp: unexpected auth reply to a SASL step");
            fail(c, SaslFailure::TemporaryAuthFailure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_maps_the_own_jid_to_no_authzid() {
        assert_eq!(
            parse_plain(b"\0alice\0pw", "localhost"),
            Some((None, "alice".into(), "pw".into()))
        );
        assert_eq!(
            parse_plain(b"alice@localhost\0alice\0pw", "localhost"),
            Some((None, "alice".into(), "pw".into()))
        );
        assert_eq!(
            parse_plain(b"bob@localhost\0alice\0pw", "localhost"),
            Some((Some("bob@localhost".into()), "alice".into(), "pw".into()))
        );
        assert_eq!(parse_plain(b"alice\0pw", "localhost"), None);
        assert_eq!(parse_plain(b"\0\0pw", "localhost"), None);
    }

    #[test]
    fn payloads_decode_per_rfc_6120() {
        assert_eq!(decode("="), Some(Vec::new()));
        assert_eq!(decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode("!!"), None);
        assert_eq!(decode(&B64.encode(vec![0u8; MAX_SASL_BYTES + 1])), None);
        assert!(MECHANISMS.iter().all(|m| Mechanism::parse(m).is_some()));
        assert_eq!(Mechanism::parse("DIGEST-MD5"), None);
    }
}
