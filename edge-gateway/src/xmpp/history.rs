//! Requests to the history service from an XMPP stream, and their answers:
//! the history sent on a MUC join, MAM queries, and the messages kept for
//! the account while it had no session (sent after binding, then
//! acknowledged so they are delivered once).
//!
//! Answers arrive in the session queue; each request has a deadline, after
//! which what waits for it goes on without (a join burst ends with its
//! subject, a MAM query gets `internal-server-error`).

use std::time::Duration;

use bus::history::{HistoryQuery, HistoryReply, HistoryReplyBody, HistoryRequest, Requester};
use bus::schema::SCHEMA_VERSION;
use tokio::time::Instant;

use super::conn::Conn;
use super::{chat, mam, muc, retract};
use crate::bus_link::{confirmed, Outcome};
use crate::metrics;

/// How long the history service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Messages kept for an offline account fetched at login, at most.
const PENDING_LIMIT: u32 = 500;

/// What an answer is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    JoinHistory {
        room: String,
    },
    Mam(mam::Query),
    Pending,
    AckPending,
    /// A room message retraction: finding the message (author, number).
    Retract(retract::Retracting),
}

impl Purpose {
    fn label(&self) -> &'static str {
        match self {
            Purpose::JoinHistory { .. } => "xmpp_join",
            Purpose::Mam(_) => "xmpp_mam",
            Purpose::Pending => "xmpp_pending",
            Purpose::AckPending => "xmpp_ack_pending",
            Purpose::Retract(_) => "xmpp_retract",
        }
    }
}

#[derive(Debug)]
pub struct Inflight {
    id: String,
    purpose: Purpose,
    deadline: Instant,
}

/// Publishes a history query answered into this stream's session queue.
/// False if the broker did not take it (the caller goes on without).
pub async fn request(c: &mut Conn, body: HistoryQuery, purpose: Purpose) -> bool {
    let Some(s) = &c.session else {
        return false;
    };
    let id = bus::new_id();
    let req = HistoryRequest {
        v: SCHEMA_VERSION,
        id: id.clone(),
        requester: Requester {
            sid: c.sid.clone(),
            nick: s.actor.nick.clone(),
            account: c.account.clone(),
        },
        body,
    };
    let outcome = match c.gw.link.publish_history_request(&c.sid, req).await {
        Ok(pending) => confirmed(pending).await,
        Err(e) => {
            tracing::warn!(error = %e, "xmpp: publishing a history request failed");
            Outcome::Failed
        }
    };
    if outcome != Outcome::Confirmed {
        return false;
    }
    metrics::history_request(purpose.label());
    c.history.push(Inflight {
        id,
        purpose,
        deadline: Instant::now() + TIMEOUT,
    });
    true
}

/// The earliest deadline of the requests in flight.
pub fn deadline(c: &Conn) -> Option<Instant> {
    c.history.iter().map(|p| p.deadline).min()
}

/// Fails the requests whose deadline passed.
pub async fn on_timeout(c: &mut Conn) {
    let now = Instant::now();
    let (late, waiting): (Vec<Inflight>, Vec<Inflight>) = std::mem::take(&mut c.history)
        .into_iter()
        .partition(|p| p.deadline <= now);
    c.history = waiting;
    for p in late {
        tracing::debug!(
            purpose = p.purpose.label(),
            "xmpp: history request timed out"
        );
        failed(c, p.purpose);
    }
}

fn failed(c: &mut Conn, purpose: Purpose) {
    match purpose {
        Purpose::JoinHistory { room } => muc::history_done(c, &room, &[]),
        Purpose::Mam(q) => mam::failed(c, &q, None),
        Purpose::Retract(r) => retract::lookup_failed(c, &r, None),
        Purpose::Pending | Purpose::AckPending => {}
    }
}

/// An answer from the history service.
pub async fn on_reply(c: &mut Conn, reply: HistoryReply) {
    let Some(pos) = c.history.iter().position(|p| p.id == reply.id) else {
        tracing::debug!(id = %reply.id, "xmpp: dropping a history answer nobody waits for");
        return;
    };
    let purpose = c.history.remove(pos).purpose;
    match (purpose, reply.body) {
        (Purpose::JoinHistory { room }, HistoryReplyBody::Messages { items, .. }) => {
            muc::history_done(c, &room, &items)
        }
        (Purpose::Mam(q), HistoryReplyBody::Messages { items, .. }) => mam::answer(c, &q, items),
        (Purpose::Mam(q), HistoryReplyBody::Failure { code }) => mam::failed(c, &q, Some(code)),
        (Purpose::Pending, HistoryReplyBody::Pending { items }) => {
            let ids = chat::show_pending(c, &items);
            if !ids.is_empty() {
                request(c, HistoryQuery::AckPending { ids }, Purpose::AckPending).await;
            }
        }
        (Purpose::Retract(r), HistoryReplyBody::Messages { items, .. }) => {
            retract::found(c, r, &items).await
        }
        (Purpose::Retract(r), HistoryReplyBody::Failure { code }) => {
            retract::lookup_failed(c, &r, Some(code))
        }
        (Purpose::AckPending, _) => {}
        (purpose, _) => failed(c, purpose),
    }
}

/// After binding: what was kept for the account while it had no session.
pub async fn fetch_pending(c: &mut Conn) {
    let query = HistoryQuery::Pending {
        limit: PENDING_LIMIT,
    };
    request(c, query, Purpose::Pending).await;
}
