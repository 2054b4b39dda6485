//! Auth-service requests made for a bound stream (roster, subscriptions,
//! vCards, in-band registration): what each was for, so its answer — or
//! its timeout — can be rendered as the answer to the right stanza.

use std::time::Duration;

use bus::schema::{AuthReplyBody, AuthRequestBody, SubscriptionAction};
use tokio::time::Instant;

use super::conn::Conn;
use super::stanza_error::StanzaCondition;
use super::xml::Element;
use super::{register, roster, vcard};

/// How long the auth service may take; then the stanza gets an error.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one stream may have in flight (a client that floods roster
/// sets waits for answers, it does not queue without bound).
const MAX_INFLIGHT: usize = 64;

/// What a request was made for.
#[derive(Debug)]
pub enum Purpose {
    /// The roster: for this iq get, or (none) for the first presence.
    RosterGet {
        iq: Option<Element>,
    },
    /// A roster set or remove, answered with an empty result.
    RosterChange {
        iq: Element,
    },
    /// A subscription presence the client sent to `contact`.
    Subscription {
        contact: String,
        action: SubscriptionAction,
    },
    VcardGet {
        iq: Element,
    },
    VcardSet {
        iq: Element,
    },
    /// XEP-0077 registration (before authentication).
    Register {
        iq: Element,
    },
}

#[derive(Debug)]
struct Inflight {
    id: String,
    deadline: Instant,
    purpose: Purpose,
}

#[derive(Debug, Default)]
pub struct Requests {
    inflight: Vec<Inflight>,
}

impl Requests {
    pub fn deadline(&self) -> Option<Instant> {
        self.inflight.iter().map(|r| r.deadline).min()
    }

    pub fn is_full(&self) -> bool {
        self.inflight.len() >= MAX_INFLIGHT
    }

    /// Whether a roster load is already under way.
    pub fn loading_roster(&self) -> bool {
        self.inflight
            .iter()
            .any(|r| matches!(r.purpose, Purpose::RosterGet { .. }))
    }
}

/// Sends `body` to the auth service for `purpose`. If the bus does not
/// take it (or too many are in flight), the stanza is answered at once.
pub async fn ask(c: &mut Conn, body: AuthRequestBody, purpose: Purpose) {
    if c.requests.is_full() {
        fail(c, purpose, StanzaCondition::ResourceConstraint);
        return;
    }
    match c.request_auth(body).await {
        Some((id, _)) => c.requests.inflight.push(Inflight {
            id,
            deadline: Instant::now() + TIMEOUT,
            purpose,
        }),
        None => fail(c, purpose, StanzaCondition::InternalServerError),
    }
}

/// What request `id` was made for, if it is one of ours (forgotten now).
pub fn take(c: &mut Conn, id: &str) -> Option<Purpose> {
    let pos = c.requests.inflight.iter().position(|r| r.id == id)?;
    Some(c.requests.inflight.remove(pos).purpose)
}

/// Renders the auth service's answer to a request made for `purpose`.
pub async fn on_reply(c: &mut Conn, purpose: Purpose, body: AuthReplyBody) {
    match purpose {
        Purpose::RosterGet { iq } => roster::on_roster(c, iq, body).await,
        Purpose::RosterChange { iq } => roster::on_changed(c, Some(iq), body).await,
        Purpose::Subscription { contact, action } => {
            roster::on_subscription(c, &contact, action, body).await
        }
        Purpose::VcardGet { iq } => vcard::on_get_reply(c, &iq, body),
        Purpose::VcardSet { iq } => vcard::on_set_reply(c, &iq, body),
        Purpose::Register { iq } => register::on_reply(c, &iq, body),
    }
}

/// Requests the auth service did not answer in time.
pub fn on_timeout(c: &mut Conn) {
    let now = Instant::now();
    let (late, waiting): (Vec<Inflight>, Vec<Inflight>) = std::mem::take(&mut c.requests.inflight)
        .into_iter()
        .partition(|r| r.deadline <= now);
    c.requests.inflight = waiting;
    for r in late {
        tracing::warn!(id = %r.id, "xmpp: the auth service did not answer in time");
        fail(c, r.purpose, StanzaCondition::RemoteServerTimeout);
    }
}

/// Answers the stanza behind `purpose` with `condition` (presences and
/// roster loads have no one to answer).
fn fail(c: &mut Conn, purpose: Purpose, condition: StanzaCondition) {
    match purpose {
        Purpose::RosterGet { iq: Some(iq) }
        | Purpose::RosterChange { iq }
        | Purpose::VcardGet { iq }
        | Purpose::VcardSet { iq }
        | Purpose::Register { iq } => super::bind::error(c, &iq, condition),
        Purpose::RosterGet { iq: None } | Purpose::Subscription { .. } => {}
    }
}
