//! Auth plumbing of one connection: asking the auth service, matching its
//! answer (from the session queue) to the request, timing requests out, and
//! what logging in changes (the actor's account, the record, the rooms).
//!
//! A connection has at most one request in flight: SASL, REGISTER and
//! NickServ are all request/answer dialogues with the client waiting, so
//! one slot keeps the matching trivial and stops a client from queueing
//! work on the auth service. The server's own background question (is this
//! nick registered? for nick reservation) has a second slot, so it never
//! makes a client's login fail as "busy". Lookups on behalf of messages
//! (is this offline nick an account? for offline direct messages) have a
//! small bounded set of their own, so several such messages in a row work.

use std::time::Duration;

use bus::schema::{
    AuthError, AuthReply, AuthReplyBody, AuthRequest, AuthRequestBody, IntentBody, MemberChange,
    SCHEMA_VERSION,
};
use bus::{names::fold, new_id};
use tokio::time::Instant;

use super::client::{Client, Pending};
use super::commands::messaging::{self, OfflineMessage};
use super::commands::{account, nickserv, registration, sasl};
use super::numeric::Numerics;
use super::{history, reservation};

/// How long the auth service may take to answer; then the request fails
/// (904 / `TEMPORARILY_UNAVAILABLE`).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

pub const RPL_LOGGEDIN: u16 = 900;
/// Account lookups for offline direct messages one connection may have in
/// flight.
pub const MAX_LOOKUPS: usize = 8;

/// Who asked, so the answer goes back to the right dialogue.
#[derive(Debug)]
pub enum Purpose {
    /// A SASL step; [`sasl::on_reply`] knows which from the SASL state.
    Sasl,
    /// Create an account, then log in with the same password.
    Register {
        via: Via,
        account: String,
        password: String,
    },
    /// Log in: after a registration (`registered`) or NickServ IDENTIFY.
    Login { via: Via, registered: bool },
    /// NickServ INFO.
    Info { account: String },
    /// NickServ CERT ADD / DEL / LIST (`what`, and the fingerprint).
    Cert { what: CertOp, fingerprint: String },
    /// Is the session's nick a registered account? (nick reservation)
    Reserve { account: String },
    /// Is the offline nick `account` (folded) an account? `messages` wait
    /// for the answer to be kept for it (offline direct messages).
    OfflineDm {
        account: String,
        messages: Vec<OfflineMessage>,
    },
}

/// Which NickServ CERT command an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertOp {
    Add,
    Del,
    List,
}

/// The face a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The `REGISTER` command (draft/account-registration).
    Command,
    NickServ,
}

/// The request in flight.
#[derive(Debug)]
pub struct AuthPending {
    pub id: String,
    pub purpose: Purpose,
    pub deadline: Instant,
}

/// Sends `body` to the auth service. Returns false (and sends nothing) if
/// another request is in flight or the bus could not take it; the caller
/// tells the client.
pub async fn request(c: &mut Client, body: AuthRequestBody, purpose: Purpose) -> bool {
    // A background check replaces an older one (only the current nick
    // matters; the older answer will find no one waiting).
    let background = matches!(purpose, Purpose::Reserve { .. });
    let busy = !background && c.auth.is_some();
    if busy {
        return false;
    }
    let Some(pending) = send(c, body, purpose).await else {
        return false;
    };
    if background {
        c.auth_background = Some(pending);
    } else {
        c.auth = Some(pending);
    }
    true
}

/// How a lookup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Sent,
    /// [`MAX_LOOKUPS`] are in flight already.
    Full,
    /// The bus did not take it.
    Failed,
}

/// Sends a lookup on behalf of messages (see [`Purpose::OfflineDm`]),
/// beside the interactive and background slots.
pub async fn lookup(c: &mut Client, body: AuthRequestBody, purpose: Purpose) -> Lookup {
    if c.auth_lookups.len() >= MAX_LOOKUPS {
        return Lookup::Full;
    }
    match send(c, body, purpose).await {
        Some(pending) => {
            c.auth_lookups.push(pending);
            Lookup::Sent
        }
        None => Lookup::Failed,
    }
}

/// Publishes a request (its confirm joins the connection's) and returns
/// what to wait for, or `None` if the bus did not take it.
async fn send(c: &mut Client, body: AuthRequestBody, purpose: Purpose) -> Option<AuthPending> {
    if !c.ensure_session_queue().await {
        return None;
    }
    let id = new_id();
    let req = AuthRequest {
        v: SCHEMA_VERSION,
        id: id.clone(),
        sid: c.pending_sid.clone(),
        client_addr: c.addr.clone(),
        body,
    };
    let sid = c.pending_sid.clone();
    match c.gw.link.publish_auth(&sid, req).await {
        Ok(pending) => {
            c.queue_confirm(Pending::Auth { id: id.clone() }, pending, None);
            // A labeled command's response waits for the answer (a
            // background check is nobody's response).
            if !matches!(purpose, Purpose::Reserve { .. }) {
                c.labels.wait_for(&id);
            }
            Some(AuthPending {
                id,
                purpose,
                deadline: Instant::now() + AUTH_TIMEOUT,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing an auth request failed");
            None
        }
    }
}

/// The broker refused request `id`: fail it now, through the timeout path.
pub fn refused(c: &mut Client, id: &str) {
    let slots = [c.auth.as_mut(), c.auth_background.as_mut()];
    for p in slots.into_iter().flatten().chain(c.auth_lookups.iter_mut()) {
        if p.id == id {
            p.deadline = Instant::now();
        }
    }
}

/// When the first request in flight times out, if there is one.
pub fn deadline(c: &Client) -> Option<Instant> {
    [&c.auth, &c.auth_background]
        .into_iter()
        .flatten()
        .chain(c.auth_lookups.iter())
        .map(|p| p.deadline)
        .min()
}

/// A request in flight got no answer in time.
pub async fn on_timeout(c: &mut Client) {
    let now = Instant::now();
    if c.auth_background
        .as_ref()
        .is_some_and(|p| p.deadline <= now)
    {
        // A background check: nothing to tell anyone.
        c.auth_background = None;
    }
    if let Some(p) = c.auth.take_if(|p| p.deadline <= now) {
        tracing::debug!(id = %p.id, "auth request timed out");
        let failure = AuthReplyBody::Failure {
            code: AuthError::Internal,
            retry_after_secs: None,
        };
        answer(c, p, failure).await;
    }
    let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut c.auth_lookups)
        .into_iter()
        .partition(|p| p.deadline <= now);
    c.auth_lookups = live;
    for p in expired {
        tracing::debug!(id = %p.id, "auth lookup timed out");
        let failure = AuthReplyBody::Failure {
            code: AuthError::Internal,
            retry_after_secs: None,
        };
        answer(c, p, failure).await;
    }
}

/// An answer from the session queue. One for a request we no longer wait
/// for (timed out, aborted) is dropped.
pub async fn on_reply(c: &mut Client, reply: AuthReply) {
    let pending = match c.auth.take_if(|p| p.id == reply.id) {
        Some(p) => Some(p),
        None => match c.auth_background.take_if(|p| p.id == reply.id) {
            Some(p) => Some(p),
            None => c
                .auth_lookups
                .iter()
                .position(|p| p.id == reply.id)
                .map(|i| c.auth_lookups.swap_remove(i)),
        },
    };
    match pending {
        Some(p) => answer(c, p, reply.body).await,
        None => tracing::debug!(id = %reply.id, "dropping an auth reply nobody waits for"),
    }
}

/// Handles the answer (or the failure) of request `p`, as part of the
/// labeled response that waits for it, if one does.
async fn answer(c: &mut Client, p: AuthPending, body: AuthReplyBody) {
    let entered = c.labels.enter(&p.id);
    handle(c, p.purpose, body).await;
    c.labels.leave(&p.id, entered, true, &c.out);
}

async fn handle(c: &mut Client, purpose: Purpose, body: AuthReplyBody) {
    match purpose {
        Purpose::Sasl => sasl::on_reply(c, body).await,
        Purpose::Register {
            via,
            account,
            password,
        } => account::on_registered(c, via, account, password, body).await,
        Purpose::Login { via, registered } => match via {
            Via::Command => account::on_login(c, registered, body).await,
            Via::NickServ => nickserv::on_login(c, registered, body).await,
        },
        Purpose::Info { account } => nickserv::on_info(c, &account, body),
        Purpose::Cert { what, fingerprint } => nickserv::on_cert(c, what, &fingerprint, body),
        Purpose::Reserve { account } => reservation::on_info(c, account, body),
        Purpose::OfflineDm { messages, .. } => messaging::on_offline_info(c, messages, body).await,
    }
    // Registration waits while a request is in flight (see `complete`).
    registration::complete(c).await;
}

/// Makes `account` the session's: 900 to the client, and once registered,
/// the session record and every room (account-notify) learn it.
pub async fn log_in(c: &mut Client, account: &str) {
    let account = fold(account);
    c.account = Some(account.clone());
    // The nick the client asked for, even before registration completed.
    let nick = c.nick.clone().unwrap_or_else(|| "*".into());
    let mask = format!("{nick}!{}@{}", c.user(), c.host);
    c.send(
        Numerics::new(c.server(), &nick)
            .n(RPL_LOGGEDIN)
            .param(mask)
            .param(account.as_str())
            .text(format!("You are now logged in as {account}")),
    );
    if c.session.is_none() {
        return;
    }
    let acct = Some(account.clone());
    c.update_record(|r| r.actor.account = acct).await;
    let event = new_id();
    let rooms: Vec<String> = c.rooms().cloned().collect();
    for room in rooms {
        let change = MemberChange::Account {
            account: Some(account.clone()),
        };
        c.intent(IntentBody::Member {
            room,
            event: event.clone(),
            change,
        })
        .await;
    }
    // Logged in after registration: what was kept for the account is shown
    // now (before registration, the welcome burst does it).
    history::deliver_pending(c).await;
}

/// A `FAIL <command> <code> <context> :<text>` standard reply.
pub fn fail(c: &Client, command: &str, code: &str, context: &str, text: &str) {
    c.fail(command, code, &[context], text);
}
