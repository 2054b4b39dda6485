//! The local sessions: sid → handle. The dispatcher and the heartbeat reach
//! connections only through this map.
//!
//! Each session has a bounded outbound queue (`irc.sendq_lines`). Delivery
//! never waits: a full queue means the client is not keeping up, and it is
//! disconnected ("SendQ exceeded") rather than slowing everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bus::schema::{RoomEvent, SessionRecord, SessionReply};
use tokio::sync::{mpsc, Notify};

use crate::metrics;

/// What the dispatcher hands a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<RoomEvent>),
    Reply(Arc<SessionReply>),
}

/// Why a connection is ended from outside, for protocols that say it in
/// their own words (XMPP picks its stream error by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillCause {
    /// Someone else took the session's place: NickServ GHOST, an operator
    /// KILL, a nick claim lost to another session.
    Replaced,
    /// The client did not keep up with its deliveries.
    SendQ,
    /// The platform could not serve the session (NATS or the broker away).
    Unavailable,
}

/// A request to end a connection from outside its task (SendQ exceeded,
/// nick claim lost). The first reason given wins.
#[derive(Debug, Default)]
pub struct Kill {
    reason: Mutex<Option<(KillCause, String)>>,
    notify: Notify,
}

impl Kill {
    pub fn kill(&self, cause: KillCause, reason: &str) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some((cause, reason.to_string()));
        }
        drop(r);
        self.notify.notify_one();
    }

    fn get(&self) -> Option<(KillCause, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The reason, as the client is told it.
    pub fn reason(&self) -> Option<String> {
        self.get().map(|(_, r)| r)
    }

    /// Resolves with the cause and reason once [`Kill::kill`] was called.
    pub async fn wait(&self) -> (KillCause, String) {
        loop {
            if let Some(r) = self.get() {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// The part of a session's state the heartbeat needs: its record and the
/// revision of its nick claim. Guarded by an async mutex so a nick change
/// and a heartbeat never interleave (the heartbeat would otherwise refresh
/// a claim that was just released and think the nick stolen).
#[derive(Debug)]
pub struct LiveState {
    pub record: SessionRecord,
    pub nick_rev: u64,
    /// Set when the session ended and its entries were deleted: the
    /// heartbeat must not write them back.
    pub closed: bool,
}

#[derive(Debug)]
pub struct SessionShared {
    pub sid: String,
    pub state: tokio::sync::Mutex<LiveState>,
    pub kill: Arc<Kill>,
}

#[derive(Clone)]
pub struct SessionHandle {
    pub tx: mpsc::Sender<Outbound>,
    pub shared: Arc<SessionShared>,
    /// `irc`, `xmpp` or `tinode`: the metrics' label.
    pub protocol: &'static str,
}

#[derive(Default)]
pub struct Sessions {
    map: RwLock<HashMap<String, SessionHandle>>,
    /// Sessions per protocol, kept with `map` (changed under its write
    /// lock) so the gauge needs no walk over every session.
    by_protocol: Mutex<HashMap<&'static str, usize>>,
    /// The gateway's id, for the metrics' `gateway` label.
    gateway: String,
}

impl Sessions {
    pub fn new(gateway: &str) -> Self {
        Self {
            gateway: gateway.to_string(),
            ..Self::default()
        }
    }

    pub fn insert(&self, handle: SessionHandle) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let protocol = handle.protocol;
        let replaced = map.insert(handle.shared.sid.clone(), handle);
        if let Some(old) = replaced {
            self.count(map.len(), old.protocol, -1);
        }
        self.count(map.len(), protocol, 1);
    }

    pub fn remove(&self, sid: &str) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.remove(sid) {
            self.count(map.len(), h.protocol, -1);
        }
    }

    /// Adds `delta` to `protocol`'s count and reports it with the total.
    fn count(&self, total: usize, protocol: &'static str, delta: isize) {
        let mut counts = self.by_protocol.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(protocol).or_default();
        *n = n.saturating_add_signed(delta);
        metrics::sessions(total, protocol, *n, &self.gateway);
    }

    /// The protocol of local session `sid`, if it is one.
    pub fn protocol_of(&self, sid: &str) -> Option<&'static str> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(sid).map(|h| h.protocol)
    }

    pub fn contains(&self, sid: &str) -> bool {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(sid)
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Hands `item` to a session without waiting. Returns false if there is
    /// no such local session (any more).
    pub fn deliver(&self, sid: &str, item: Outbound) -> bool {
        let is_message = matches!(&item, Outbound::Event(ev) if ev.body.is_message());
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = map.get(sid) else {
            return false;
        };
        match handle.tx.try_send(item) {
            Ok(()) => {
                let waiting = handle.tx.max_capacity() - handle.tx.capacity();
                metrics::session_queue_depth(waiting);
                if is_message {
                    metrics::message_out(handle.protocol);
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if handle.shared.kill.reason().is_none() {
                    metrics::sendq_kill();
                }
                handle.shared.kill.kill(KillCause::SendQ, "SendQ exceeded");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Every local session, for the heartbeat and shutdown.
    pub fn all(&self) -> Vec<Arc<SessionShared>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.values().map(|h| h.shared.clone()).collect()
    }
}

/// A session just registered on this gateway: what its connection keeps.
pub struct Started {
    pub shared: Arc<SessionShared>,
    /// Room events and router replies for the session.
    pub inbox: mpsc::Receiver<Outbound>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the nick is in use")]
    NickInUse,
    #[error("the session registry is unavailable: {0}")]
    Registry(crate::registry::RegistryError),
}

/// Registers a session for any protocol: claims `actor.nick` in NATS,
/// writes the session record and makes the session reachable by the
/// dispatcher (an inbox of `queue_len` items). The session queue is the
/// connection's own business.
pub async fn start(
    gw: &crate::gateway::Gateway,
    actor: bus::schema::Actor,
    protocol: &'static str,
    kill: Arc<Kill>,
    queue_len: usize,
) -> Result<Started, StartError> {
    use crate::registry::RegistryError;
    let sid = actor.sid.clone();
    let nick_rev = match gw.registry.claim_nick(&actor.nick, &sid).await {
        Ok(rev) => rev,
        Err(RegistryError::NickInUse) => return Err(StartError::NickInUse),
        Err(e) => return Err(StartError::Registry(e)),
    };
    let record = SessionRecord {
        actor,
        signon: bus::now_ms() / 1000,
        away: None,
        rooms: Vec::new(),
        protocol: protocol.into(),
        tls: false,
        certfp: None,
        bot: false,
        oper: false,
    };
    if let Err(e) = gw.registry.put_session(&record).await {
        let _ = gw.registry.release_nick(&record.actor.nick, nick_rev).await;
        return Err(StartError::Registry(e));
    }
    let account = record.actor.account.clone();
    let who = crate::snotice::who(&record.actor);
    let shared = Arc::new(SessionShared {
        sid,
        state: tokio::sync::Mutex::new(LiveState {
            record,
            nick_rev,
            closed: false,
        }),
        kill,
    });
    let (tx, inbox) = mpsc::channel(queue_len.max(1));
    gw.sessions.insert(SessionHandle {
        tx,
        shared: shared.clone(),
        protocol,
    });
    gw.note_sessions();
    let text = format!("Client connecting: {who} [{protocol}] on {}", gw.id);
    crate::snotice::publish(gw, text).await;
    if let Some(account) = &account {
        gw.registry
            .signal_presence(account, &shared.sid, true)
            .await;
    }
    Ok(Started { shared, inbox })
}

/// Ends a session for any protocol: unreachable for the dispatcher, its
/// nick released and its record deleted (both age out if NATS is away).
/// Its QUIT intents, if any, were published before.
pub async fn end(gw: &crate::gateway::Gateway, shared: &SessionShared, reason: &str) {
    let sid = &shared.sid;
    gw.sessions.remove(sid);
    let mut st = shared.state.lock().await;
    st.closed = true;
    if let Err(e) = gw
        .registry
        .release_nick(&st.record.actor.nick, st.nick_rev)
        .await
    {
        tracing::warn!(%sid, error = %e, "releasing the nick failed (it will age out)");
    }
    if let Err(e) = gw.registry.delete_session(sid).await {
        tracing::warn!(%sid, error = %e, "deleting the session record failed (it will age out)");
    }
    if let Some(account) = &st.record.actor.account {
        gw.registry.signal_presence(account, sid, false).await;
    }
    remember(gw, &st.record.actor).await;
    let text = format!(
        "Client exiting: {} [{reason}] on {}",
        crate::snotice::who(&st.record.actor),
        gw.id
    );
    crate::snotice::publish(gw, text).await;
}

/// Records for WHOWAS that `actor` stops using its nick (it quits, or
/// changes nick).
pub async fn remember(gw: &crate::gateway::Gateway, actor: &bus::schema::Actor) {
    let entry = bus::kv::WhowasEntry {
        nick: actor.nick.clone(),
        user: actor.user.clone(),
        host: actor.host.clone(),
        realname: actor.realname.clone(),
        account: actor.account.clone(),
        server: gw.irc.server_name.clone(),
        at: bus::now_ms(),
    };
    if let Err(e) = gw.registry.record_whowas(entry).await {
        tracing::debug!(error = %e, "recording WHOWAS failed");
    }
}

/// Nick candidates tried for one account's session: `alice`, `alice|2` …
/// `alice|9`.
pub const NICK_CANDIDATES: u32 = 9;

/// The nick for candidate `n` (1-based) of an account. `|` is a nick
/// character that no account name contains, so `alice|2` never takes
/// another person's name.
pub fn nick_candidate(account: &str, n: u32) -> String {
    use crate::irc::validate::NICKLEN;
    let base: String = account.chars().take(NICKLEN - 2).collect();
    if n == 1 {
        account.chars().take(NICKLEN).collect()
    } else {
        format!("{base}|{n}")
    }
}

/// Why an account's session could not start.
#[derive(Debug, thiserror::Error)]
pub enum AccountStartError {
    #[error("every nick for the account is in use")]
    NoNick,
    #[error(transparent)]
    Start(StartError),
}

/// Starts a session for a logged-in account on a protocol whose users
/// have no nick of their own (XMPP, Tinode): the nick is the account name,
/// or the first free `name|n`. Returns the actor it started with.
pub async fn start_account(
    gw: &crate::gateway::Gateway,
    sid: &str,
    account: &str,
    host: &str,
    realname: &str,
    protocol: &'static str,
    kill: Arc<Kill>,
) -> Result<(bus::schema::Actor, Started), AccountStartError> {
    for n in 1..=NICK_CANDIDATES {
        let actor = bus::schema::Actor {
            sid: sid.to_string(),
            gateway: gw.id.clone(),
            nick: nick_candidate(account, n),
            user: account
                .chars()
                .take(crate::irc::validate::USERLEN)
                .collect(),
            host: host.to_string(),
            realname: realname.to_string(),
            account: Some(account.to_string()),
        };
        match start(
            gw,
            actor.clone(),
            protocol,
            kill.clone(),
            gw.irc.sendq_lines,
        )
        .await
        {
            Ok(started) => return Ok((actor, started)),
            Err(StartError::NickInUse) => continue,
            Err(e) => return Err(AccountStartError::Start(e)),
        }
    }
    Err(AccountStartError::NoNick)
}

/// Publishes an intent of `actor` and waits for the broker's confirm.
/// Returns its id if the broker took it.
pub async fn publish_intent(
    gw: &crate::gateway::Gateway,
    actor: &bus::schema::Actor,
    body: bus::schema::IntentBody,
) -> Option<String> {
    use crate::bus_link::{confirmed, Outcome};
    let id = bus::new_id();
    let intent = bus::schema::Intent {
        v: bus::schema::SCHEMA_VERSION,
        id: id.clone(),
        at: bus::now_ms(),
        actor: actor.clone(),
        body,
        done: false,
    };
    let message = crate::irc::client::is_room_message(&intent.body);
    let outcome = match gw.link.publish_intent(intent).await {
        Ok(pending) => {
            metrics::intent();
            if message {
                let protocol = gw.sessions.protocol_of(&actor.sid).unwrap_or("other");
                metrics::message_in(protocol);
            }
            confirmed(pending).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing an intent failed");
            Outcome::Failed
        }
    };
    (outcome == Outcome::Confirmed).then_some(id)
}

/// Publishes one member change to each of `rooms`, all with one event id
/// (a member who shares several rooms sees it once).
pub async fn member_change_everywhere(
    gw: &crate::gateway::Gateway,
    actor: &bus::schema::Actor,
    rooms: Vec<String>,
    change: bus::schema::MemberChange,
) {
    let event = bus::new_id();
    for room in rooms {
        let body = bus::schema::IntentBody::Member {
            room,
            event: event.clone(),
            change: change.clone(),
        };
        publish_intent(gw, actor, body).await;
    }
}

/// Ends the session `sid` wherever it is (NickServ GHOST, KILL): a `Kill`
/// to its session queue, which its gateway turns into `Killed (<reason>)`.
/// Whether the broker took it.
pub async fn kill_remote(
    gw: &crate::gateway::Gateway,
    from: &bus::schema::Actor,
    sid: &str,
    reason: String,
) -> bool {
    direct_to(gw, from, sid, bus::schema::DirectBody::Kill { reason }).await
}

/// Delivers `body` from `from` to session `sid`'s queue, on whichever
/// gateway holds it; true once the broker took it.
pub async fn direct_to(
    gw: &crate::gateway::Gateway,
    from: &bus::schema::Actor,
    sid: &str,
    body: bus::schema::DirectBody,
) -> bool {
    let direct = bus::schema::Direct {
        v: bus::schema::SCHEMA_VERSION,
        id: bus::new_id(),
        at: bus::now_ms(),
        from: from.clone(),
        body,
    };
    match gw.link.publish_direct(sid, direct).await {
        Ok(pending) => {
            crate::bus_link::confirmed(pending).await == crate::bus_link::Outcome::Confirmed
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_candidates_fit_and_never_look_like_accounts() {
        assert_eq!(nick_candidate("alice", 1), "alice");
        assert_eq!(nick_candidate("alice", 2), "alice|2");
        let long = "a".repeat(32);
        assert_eq!(
            nick_candidate(&long, 1).len(),
            crate::irc::validate::NICKLEN
        );
        assert_eq!(
            nick_candidate(&long, 9).len(),
            crate::irc::validate::NICKLEN
        );
        assert!(crate::irc::validate::valid_nick(&nick_candidate(
            "alice", 9
        )));
    }
}
