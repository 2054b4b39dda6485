//! One Tinode session, whatever carries it (a WebSocket or a series of
//! long polls): the loop that reads client messages, session-queue
//! deliveries (auth and history answers), room events and router replies,
//! note signals and timers.
//!
//! The transport hands client frames in as [`Input`] and takes server
//! frames out of a bounded queue; a client that does not take them fast
//! enough is ended ("SendQ exceeded"), as an IRC or XMPP client would be.

use bus::settle::Settle;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bus::history::{HistoryQuery, HistoryRequest, Requester};
use bus::schema::{AuthRequest, AuthRequestBody, BusMessage, MemberChange, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use lapin::options::BasicAckOptions;
use lapin::Consumer;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::topics::Attached;
use super::wire::{self, code, ClientMsg};
use super::{auth, contacts, data, del, fnd, marks, me, notes, p2p, set, topics};
use crate::bus_link::{confirmed, next_delivery, Outcome};
use crate::config::TinodeConfig;
use crate::gateway::Gateway;
use crate::metrics;
use crate::sessions::{self, Kill, KillCause, Outbound, SessionShared};

/// How long an auth or history answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the router may take to answer a join or a message.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the transport hands the session.
#[derive(Debug)]
pub enum Input {
    Text(String),
    /// A frame over `max_message_bytes` (not read).
    TooLarge,
}

/// Which transport carries the session (a few answers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    LongPoll,
}

/// What the session is waiting for, by bus request id or intent id.
#[derive(Debug)]
pub enum Wait {
    /// `{acc}`: the account is being created.
    Register(auth::Registering),
    /// `{login}`, or the login after `{acc login:true}`.
    Login(auth::LoggingIn),
    /// `{sub}` of a group: the router's `joined`.
    Join(topics::Joining),
    /// `{pub}`: the room's event for it.
    Pub(data::Publishing),
    /// `{get what:"data"}`: the history service's answer.
    Data(data::Fetching),
    /// `{sub usr<account>}`: whether the account exists.
    PeerLookup(p2p::Attaching),
    /// `{sub usr…}`: the conversation's newest message number.
    PeerSeq(p2p::Attaching),
    /// The account's topic state, or a write of it (see [`marks`]).
    Marks,
    /// The two halves of a `me` listing (see [`me`]).
    ListTopics,
    ListTargets,
    /// `{get fnd what:"sub"}`: the accounts found.
    Search(fnd::Searching),
    /// `{set}` of a group's description: the room's event.
    Set(set::Setting),
    /// A hard `{del what:"msg"}`: which messages (history), then each
    /// redaction's event (by the key of [`Conn::deletions`]).
    DelLookup(del::Deleting),
    Redact(String),
}

/// The logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub account: String,
    pub uid: String,
}

/// The platform session behind a logged-in Tinode session.
pub struct Platform {
    pub actor: bus::schema::Actor,
    pub shared: Arc<SessionShared>,
    pub inbox: mpsc::Receiver<Outbound>,
}

pub struct Conn {
    pub gw: Arc<Gateway>,
    pub cfg: Arc<TinodeConfig>,
    pub transport: Transport,
    /// Names the session queue (auth and history answers arrive there).
    pub sid: String,
    pub addr: String,
    pub kill: Arc<Kill>,
    /// Whether `{hi}` was received.
    pub greeted: bool,
    pub user: Option<User>,
    pub platform: Option<Platform>,
    /// Attached group topics, by the name the client uses.
    pub topics: HashMap<String, Attached>,
    /// Attached one-to-one topics, by the name the client uses.
    pub peers: HashMap<String, p2p::Peer>,
    /// The numbers of direct messages (see [`p2p`]).
    pub numbers: p2p::Numbers,
    /// Whether `me` / `fnd` are attached.
    pub me: bool,
    pub fnd: bool,
    pub notes: notes::Notes,
    /// The account's subscriptions and markers (see [`marks`]).
    pub marks: marks::Marks,
    /// A `me` subscriptions listing being put together.
    pub listing: Option<me::Listing>,
    /// The terms of the `fnd` query.
    pub fnd_query: Vec<String>,
    /// The contacts followed for `{pres}` on `me`.
    pub contacts: contacts::Contacts,
    /// Hard deletions waiting for their redactions (see [`del`]).
    pub deletions: HashMap<String, del::Deleting>,
    /// The NATS subject prefix (of the cluster's signals).
    pub nats_prefix: String,
    waits: HashMap<String, (Wait, Instant)>,
    queue: Option<Consumer>,
    out: mpsc::Sender<String>,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gw: Arc<Gateway>,
        cfg: Arc<TinodeConfig>,
        nats_prefix: &str,
        transport: Transport,
        addr: String,
        out: mpsc::Sender<String>,
    ) -> Self {
        let notes = notes::Notes::new(gw.registry.nats().clone(), nats_prefix);
        Self {
            gw,
            cfg,
            transport,
            sid: bus::new_id(),
            addr,
            kill: Arc::new(Kill::default()),
            greeted: false,
            user: None,
            platform: None,
            topics: HashMap::new(),
            peers: HashMap::new(),
            numbers: p2p::Numbers::default(),
            me: false,
            fnd: false,
            notes,
            marks: marks::Marks::default(),
            listing: None,
            fnd_query: Vec::new(),
            contacts: contacts::Contacts::default(),
            deletions: HashMap::new(),
            nats_prefix: nats_prefix.to_string(),
            waits: HashMap::new(),
            queue: None,
            out,
        }
    }

    /// Sends one server message. Never waits: a client that lets its queue
    /// fill up is ended.
    pub fn send(&mut self, msg: Value) {
        if self.out.try_send(msg.to_string()).is_err() && self.kill.reason().is_none() {
            metrics::sendq_kill();
            self.kill.kill(KillCause::SendQ, "SendQ exceeded");
        }
    }

    pub fn reply(&mut self, ctrl: wire::Ctrl) {
        self.send(ctrl.build());
    }

    pub fn wait(&mut self, key: String, w: Wait, timeout: Duration) {
        self.waits.insert(key, (w, Instant::now() + timeout));
    }

    pub fn take_wait(&mut self, key: &str) -> Option<Wait> {
        self.waits.remove(key).map(|(w, _)| w)
    }

    /// Whether a wait of this kind is keyed by `key`.
    pub fn waiting(&self, key: &str) -> Option<&Wait> {
        self.waits.get(key).map(|(w, _)| w)
    }

    /// The user id of the logged-in user ("" before login).
    pub fn uid(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.uid.as_str())
    }

    /// Publishes an auth request answered into this session's queue
    /// (opened on first use). Returns its id if the broker took it.
    pub async fn ask_auth(&mut self, body: AuthRequestBody, wait: Wait) -> Option<String> {
        if !self.open_queue().await {
            return None;
        }
        let id = bus::new_id();
        let req = AuthRequest {
            v: SCHEMA_VERSION,
            id: id.clone(),
            sid: self.sid.clone(),
            client_addr: self.addr.clone(),
            body,
        };
        let outcome = match self.gw.link.publish_auth(&self.sid, req).await {
            Ok(pending) => confirmed(pending).await,
            Err(e) => {
                tracing::warn!(error = %e, "tinode: publishing an auth request failed");
                Outcome::Failed
            }
        };
        if outcome != Outcome::Confirmed {
            return None;
        }
        self.wait(id.clone(), wait, ANSWER_TIMEOUT);
        Some(id)
    }

    /// Publishes a history query answered into this session's queue.
    pub async fn ask_history(&mut self, body: HistoryQuery, wait: Wait) -> Option<String> {
        if self.platform.is_none() || !self.open_queue().await {
            return None;
        }
        let p = self.platform.as_ref()?;
        let id = bus::new_id();
        let req = HistoryRequest {
            v: SCHEMA_VERSION,
            id: id.clone(),
            requester: Requester {
                sid: self.sid.clone(),
                nick: p.actor.nick.clone(),
                account: p.actor.account.clone(),
            },
            body,
        };
        let outcome = match self.gw.link.publish_history_request(&self.sid, req).await {
            Ok(pending) => confirmed(pending).await,
            Err(e) => {
                tracing::warn!(error = %e, "tinode: publishing a history request failed");
                Outcome::Failed
            }
        };
        if outcome != Outcome::Confirmed {
            return None;
        }
        metrics::history_request("tinode_data");
        self.wait(id.clone(), wait, ANSWER_TIMEOUT);
        Some(id)
    }

    /// Publishes an intent of the session; the router's answer is awaited
    /// as `wait` (if any). Returns the intent id if the broker took it.
    pub async fn intent(
        &mut self,
        body: bus::schema::IntentBody,
        wait: Option<Wait>,
    ) -> Option<String> {
        let actor = self.platform.as_ref()?.actor.clone();
        let id = sessions::publish_intent(&self.gw, &actor, body).await?;
        if let Some(w) = wait {
            self.wait(id.clone(), w, ROUTER_TIMEOUT);
        }
        Some(id)
    }

    async fn open_queue(&mut self) -> bool {
        if self.queue.is_some() {
            return true;
        }
        match self.gw.link.open_session_queue(&self.sid).await {
            Ok(consumer) => {
                self.queue = Some(consumer);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "tinode: opening the session queue failed");
                false
            }
        }
    }

    /// One client frame.
    async fn on_input(&mut self, input: Input) {
        let text = match input {
            Input::Text(text) => text,
            Input::TooLarge => {
                self.reply(wire::ctrl(None, code::TOO_LARGE));
                return;
            }
        };
        let msg = match ClientMsg::parse(&text) {
            Ok(m) => m,
            Err(bad) => {
                self.reply(wire::ctrl(bad.id.as_deref(), code::MALFORMED));
                return;
            }
        };
        let id = msg.id().map(str::to_string);
        let id = id.as_deref();
        if !self.greeted && !matches!(msg, ClientMsg::Hi(_)) {
            if !matches!(msg, ClientMsg::Note(_)) {
                self.reply(wire::ctrl(id, code::OUT_OF_SEQUENCE));
            }
            return;
        }
        match msg {
            ClientMsg::Hi(hi) => auth::on_hi(self, hi),
            ClientMsg::Acc(acc) => auth::on_acc(self, acc).await,
            ClientMsg::Login(login) => auth::on_login(self, login).await,
            ClientMsg::Note(note) => {
                if self.platform.is_some() {
                    data::on_note(self, note).await;
                }
            }
            _ if self.platform.is_none() => {
                self.reply(wire::ctrl(id, code::AUTH_REQUIRED));
            }
            ClientMsg::Sub(sub) => topics::on_sub(self, sub).await,
            ClientMsg::Leave(leave) => topics::on_leave(self, leave).await,
            ClientMsg::Get(get) => topics::on_get(self, get).await,
            ClientMsg::Pub(p) => data::on_pub(self, p).await,
            ClientMsg::Set(s) => set::on_set(self, s).await,
            ClientMsg::Del(d) => del::on_del(self, d).await,
        }
    }

    async fn on_delivery(&mut self, d: lapin::message::Delivery) {
        let msg = BusMessage::from_json(&d.data);
        let _ = d.acker.ack_within(BasicAckOptions::default()).await;
        match msg {
            Ok(BusMessage::AuthReply(reply)) => match self.take_wait(&reply.id) {
                Some(Wait::Register(r)) => auth::on_registered(self, r, reply.body).await,
                Some(Wait::Login(l)) => auth::on_logged_in(self, l, reply.body).await,
                Some(Wait::PeerLookup(a)) => p2p::on_lookup(self, a, reply.body).await,
                Some(Wait::Marks) => marks::on_answer(self, reply.body),
                Some(Wait::ListTopics) => me::on_topics(self, reply.body).await,
                Some(Wait::Search(s)) => fnd::on_found(self, s, reply.body),
                Some(other) => {
                    tracing::debug!(?other, "tinode: an auth answer for another request")
                }
                None => tracing::debug!(id = %reply.id, "tinode: a late auth answer"),
            },
            Ok(BusMessage::HistoryReply(reply)) => match self.take_wait(&reply.id) {
                Some(Wait::Data(f)) => data::on_history(self, f, reply.body),
                Some(Wait::PeerSeq(a)) => p2p::on_seq(self, a, reply.body).await,
                Some(Wait::ListTargets) => me::on_targets(self, reply.body).await,
                Some(Wait::DelLookup(d)) => del::on_lookup(self, d, reply.body).await,
                _ => tracing::debug!(id = %reply.id, "tinode: a late history answer"),
            },
            Ok(BusMessage::Direct(direct)) => match &direct.body {
                bus::schema::DirectBody::Kill { reason } => {
                    let reason = format!("Killed ({reason})");
                    self.kill.kill(KillCause::Replaced, &reason);
                }
                bus::schema::DirectBody::Message { .. } => p2p::on_direct(self, &direct),
                _ => {}
            },
            Ok(other) => {
                tracing::debug!(kind = ?std::mem::discriminant(&other), "tinode: ignoring a session-queue message")
            }
            Err(e) => tracing::warn!(error = %e, "tinode: undecodable session-queue message"),
        }
    }

    async fn on_timeouts(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .waits
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            if let Some(w) = self.take_wait(&key) {
                let (id, topic) = match &w {
                    // Best effort, or finished by the listing's own deadline.
                    Wait::Marks | Wait::ListTopics | Wait::ListTargets => continue,
                    Wait::Search(s) => (s.id.clone(), Some("fnd".to_string())),
                    Wait::Set(s) => (s.id.clone(), Some(s.topic.clone())),
                    Wait::DelLookup(d) => (d.id.clone(), Some(d.topic.clone())),
                    Wait::Redact(key) => {
                        del::failed(self, key, code::TIMEOUT);
                        continue;
                    }
                    Wait::Register(r) => (r.id.clone(), None),
                    Wait::Login(l) => (l.id.clone(), None),
                    Wait::Join(j) => (j.id.clone(), Some(j.topic.clone())),
                    Wait::Pub(p) => (p.id.clone(), Some(p.topic.clone())),
                    Wait::Data(f) => (f.id.clone(), Some(f.topic.clone())),
                    Wait::PeerLookup(a) | Wait::PeerSeq(a) => (a.id.clone(), Some(a.topic.clone())),
                };
                tracing::debug!(?w, "tinode: request timed out");
                let mut ctrl = wire::ctrl(id.as_deref(), code::TIMEOUT);
                if let Some(t) = topic {
                    ctrl = ctrl.topic(&t);
                }
                self.reply(ctrl);
            }
        }
        p2p::on_timeouts(self);
        me::on_deadline(self).await;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let waits = self.waits.values().map(|(_, at)| *at);
        let listing = self.listing.as_ref().map(|l| l.deadline);
        waits.chain(self.numbers.deadline()).chain(listing).min()
    }

    /// Runs the session until the transport closes, the session is killed
    /// or the gateway shuts down; then ends the platform session.
    pub async fn run(mut self, mut input: mpsc::Receiver<Input>, mut shutdown: Shutdown) {
        let login_deadline =
            Instant::now() + Duration::from_secs(self.cfg.login_timeout_secs.max(1));
        let reason = loop {
            let deadline = self.next_deadline();
            let kill = self.kill.clone();
            let logged_in = self.platform.is_some();
            tokio::select! {
                frame = input.recv() => match frame {
                    Some(frame) => self.on_input(frame).await,
                    None => break "Connection closed".to_string(),
                },
                d = recv_queue(&mut self.queue) => match d {
                    Some(d) => self.on_delivery(d).await,
                    None => self.queue = None,
                },
                item = recv_inbox(&mut self.platform) => match item {
                    Some(Outbound::Event(ev)) => topics::on_event(&mut self, &ev).await,
                    Some(Outbound::Reply(r)) => topics::on_reply(&mut self, &r).await,
                    None => {}
                },
                note = self.notes.next() => {
                    if let Some(note) = note { data::on_signal(&mut self, note); }
                }
                account = self.contacts.next() => {
                    if let Some(account) = account { contacts::on_signal(&mut self, account).await; }
                }
                n = self.numbers.next() => {
                    if let Some(n) = n { p2p::on_numbered(&mut self, n); }
                }
                (_, reason) = kill.wait() => {
                    self.reply(wire::Ctrl::new(None, 503, "session ended").param("reason", reason.clone()));
                    break reason;
                }
                _ = sleep_until_opt(deadline) => self.on_timeouts().await,
                _ = tokio::time::sleep_until(login_deadline), if !logged_in => {
                    self.reply(wire::ctrl(None, code::TIMEOUT));
                    break "Login timeout".to_string();
                }
                _ = shutdown.wait() => {
                    self.reply(wire::Ctrl::new(None, 503, "server shutting down"));
                    break "Server shutting down".to_string();
                }
            }
        };
        self.end(&reason).await;
    }

    /// QUIT in every room (confirmed), then the nick, the record and the
    /// session queue go.
    async fn end(&mut self, reason: &str) {
        self.notes.clear();
        self.contacts.clear();
        if let Some(p) = self.platform.take() {
            let rooms: Vec<String> = self.topics.values().map(|t| t.room.clone()).collect();
            let change = MemberChange::Quit {
                reason: reason.to_string(),
            };
            sessions::member_change_everywhere(&self.gw, &p.actor, rooms, change).await;
            drop(p.inbox);
            sessions::end(&self.gw, &p.shared, reason).await;
        }
        if self.queue.take().is_some() {
            if let Err(e) = self.gw.link.close_session_queue(&self.sid).await {
                tracing::debug!(error = %e, "tinode: deleting the session queue");
            }
        }
    }
}

async fn recv_inbox(platform: &mut Option<Platform>) -> Option<Outbound> {
    match platform {
        Some(p) => p.inbox.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_queue(queue: &mut Option<Consumer>) -> Option<lapin::message::Delivery> {
    match queue {
        Some(c) => next_delivery(c).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
