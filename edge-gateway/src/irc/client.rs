//! The protocol state of one IRC connection and the helpers commands use:
//! sending lines, publishing intents (pipelined confirms), keeping the
//! session record in NATS current, and reacting to what the bus delivers.

use std::collections::HashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bus::schema::{
    Actor, Direct, DirectBody, DirectLog, EventBody, IntentBody, MessageKind, Reply, RoomEvent,
    SessionRecord, SCHEMA_VERSION,
};
use bus::{names::fold, new_id, now_ms};
use futures::stream::FuturesOrdered;
use lapin::Consumer;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

use super::auth::AuthPending;
use super::caps::{Cap, CapSet};
use super::commands::messaging;
use super::commands::mode::UserModes;
use super::commands::monitor::Monitor;
use super::commands::redact::{self, Redacting};
use super::commands::sasl::Sasl;
use super::commands::user;
use super::history::{self, HistoryState};
use super::labeled::Labels;
use super::line::Message;
use super::numeric::Numerics;
use super::render::{self, View};
use super::reservation::Guard;
use crate::bus_link::{confirmed, Outcome};
use crate::gateway::Gateway;
use crate::metrics;
use crate::sessions::{Kill, KillCause, Outbound, SessionShared};

/// Recent cross-room event ids remembered per connection.
const RECENT_EVENTS: usize = 128;
/// Recent NOTICE intent ids, whose errors are not shown (NOTICE never
/// triggers automatic replies).
const RECENT_NOTICES: usize = 64;
/// Recent REDACT intents, whose refusals are shown as `FAIL REDACT`.
const RECENT_REDACTIONS: usize = 16;

/// The bounded line queue to the transport's writer. Never waits: if the
/// client does not read fast enough, it is disconnected.
pub struct OutQueue {
    tx: mpsc::Sender<String>,
    kill: Arc<Kill>,
}

impl OutQueue {
    pub fn new(tx: mpsc::Sender<String>, kill: Arc<Kill>) -> Self {
        Self { tx, kill }
    }

    pub fn send(&self, line: String) {
        match self.tx.try_send(line) {
            Ok(()) => metrics::line_out(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.kill.reason().is_none() {
                    metrics::sendq_kill();
                }
                self.kill.kill(KillCause::SendQ, "SendQ exceeded");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Sends even when the queue is full (one last line, e.g. `ERROR`),
    /// waiting at most a moment for room.
    pub async fn send_last(&self, line: String) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.tx.send(line)).await;
    }
}

/// A PRIVMSG or NOTICE to a room (the messages the metrics count).
pub fn is_room_message(body: &IntentBody) -> bool {
    matches!(
        body,
        IntentBody::Message {
            kind: MessageKind::Privmsg | MessageKind::Notice,
            ..
        }
    )
}

/// What a pending publisher confirm was for.
pub enum Pending {
    Intent {
        id: String,
    },
    /// A private message: on refusal the sender gets 401 (unless NOTICE);
    /// on success its copy `log` goes to the history service (PRIVMSG and
    /// NOTICE), and then, or at once for TAGMSG, the sender gets its echo
    /// if it asked for echo-message.
    Direct {
        target: String,
        kind: MessageKind,
        echo: Option<Message>,
        log: Option<Box<DirectLog>>,
    },
    /// A private message's copy for the history service (`offline`: the
    /// only copy, kept for a recipient without a session).
    DirectLog {
        target: String,
        kind: MessageKind,
        echo: Option<Message>,
        offline: bool,
    },
    /// An auth request: if the broker refuses it, the request fails now
    /// instead of at its timeout.
    Auth {
        id: String,
    },
    /// A history request: likewise.
    History {
        id: String,
    },
}

/// A confirm as the connection loop gets it: what it was for, how it went,
/// and the labeled response that waits for it (the hold's key), if any.
pub type Confirmed = (Pending, Outcome, Option<String>);

/// `Sync` too, so that `&Client` may be held across an await in a spawned task.
pub type ConfirmFuture = Pin<Box<dyn Future<Output = Confirmed> + Send + Sync>>;

/// State that exists once registration completed.
pub struct Registered {
    pub sid: String,
    pub shared: Arc<SessionShared>,
    /// Rooms the session is in (folded → display name), from the events.
    pub rooms: BTreeMap<String, String>,
}

pub struct Client {
    pub gw: Arc<Gateway>,
    pub out: OutQueue,
    pub kill: Arc<Kill>,
    /// The host shown in the client's mask (an operator may change it).
    pub host: String,
    /// The client's address: what connection limits, auth throttling and
    /// the closing line go by, whatever host is shown.
    pub addr: String,
    /// TLS, and the client certificate's fingerprint.
    pub security: super::conn::Security,
    pub nick: Option<String>,
    /// Username as shown (`~ident`), once USER was given.
    pub user: Option<String>,
    pub realname: String,
    pub caps: CapSet,
    /// Labeled responses being assembled (IRCv3 labeled-response).
    pub labels: Labels,
    /// 0 until `CAP LS`; then 301 or the version given (302).
    pub cap_version: u32,
    /// CAP negotiation started before registration and not ended yet.
    pub cap_negotiating: bool,
    pub session: Option<Registered>,
    pub umodes: UserModes,
    pub monitor: Monitor,
    /// The `[irc.opers]` name this connection OPERed as.
    pub oper: Option<String>,
    /// Server notices followed while user mode `+s` is set.
    pub snotices: Option<crate::snotice::Follow>,
    /// Channel WHOX requests waiting for the router's member list, by intent.
    pub whox: HashMap<String, crate::irc::whox::Query>,
    /// Set by QUIT: the reason others see.
    pub quit: Option<String>,
    /// The connection is being closed (ERROR sent): no more notices.
    pub closing: bool,
    /// Pending publisher confirms, handled in publish order: everything is
    /// published on one confirm channel, whose confirms come in that order
    /// anyway, and what follows a confirm (echoes, a private message's copy
    /// for history) must keep the order the client sent things in.
    pub confirms: FuturesOrdered<ConfirmFuture>,
    /// Set at registration, taken by the connection loop to poll.
    pub inbox: Option<mpsc::Receiver<Outbound>>,
    pub directs: Option<Consumer>,
    /// The session id, chosen at connection time: the session queue may be
    /// needed (for auth answers) before registration completes.
    pub pending_sid: String,
    /// `session.<pending_sid>` was declared and is being consumed.
    pub queue_open: bool,
    /// The logged-in account (canonical, case-folded), if any.
    pub account: Option<String>,
    /// The auth request in flight (one at a time per connection).
    pub auth: Option<AuthPending>,
    /// The server's own background request in flight (nick reservation).
    pub auth_background: Option<AuthPending>,
    /// Account lookups for offline direct messages in flight.
    pub auth_lookups: Vec<AuthPending>,
    /// History requests in flight and what history was shown.
    pub history: HistoryState,
    /// Where a SASL exchange stands.
    pub sasl: Sasl,
    /// A pending rename for holding a registered nick (nick reservation).
    pub guard: Option<Guard>,
    recent_events: VecDeque<String>,
    notice_intents: VecDeque<String>,
    /// REDACT intents with the router (intent id, what was asked): a
    /// refusal of one is a standard reply, not a numeric.
    redactions: VecDeque<(String, Redacting)>,
}

impl Client {
    pub fn new(gw: Arc<Gateway>, out: OutQueue, kill: Arc<Kill>, host: String) -> Self {
        Self {
            labels: Labels::new(&gw.irc.server_name),
            gw,
            out,
            kill,
            addr: host.clone(),
            host,
            security: Default::default(),
            nick: None,
            user: None,
            realname: String::new(),
            caps: CapSet::default(),
            cap_version: 0,
            cap_negotiating: false,
            session: None,
            umodes: UserModes::default(),
            monitor: Monitor::default(),
            oper: None,
            snotices: None,
            whox: HashMap::new(),
            quit: None,
            closing: false,
            confirms: FuturesOrdered::new(),
            inbox: None,
            directs: None,
            pending_sid: new_id(),
            queue_open: false,
            account: None,
            auth: None,
            auth_background: None,
            auth_lookups: Vec::new(),
            history: HistoryState::default(),
            sasl: Sasl::default(),
            guard: None,
            recent_events: VecDeque::new(),
            notice_intents: VecDeque::new(),
            redactions: VecDeque::new(),
        }
    }

    pub fn server(&self) -> &str {
        &self.gw.irc.server_name
    }

    /// The nick for numerics and prefixes: `*` until registration completed
    /// (a requested nick is not the client's until it is claimed).
    pub fn nick(&self) -> &str {
        match (&self.session, &self.nick) {
            (Some(_), Some(n)) => n,
            _ => "*",
        }
    }

    pub fn num(&self) -> Numerics<'_> {
        Numerics::new(self.server(), self.nick())
    }

    pub fn send(&self, m: Message) {
        self.labels.send(m, &self.out);
    }

    /// Queues the confirm of a publish: `pending` says what follows it. A
    /// labeled response being assembled waits for it.
    pub fn await_confirm(&mut self, pending: Pending, confirm: lapin::PublisherConfirm) {
        let hold = self.labels.hold();
        self.queue_confirm(pending, confirm, hold);
    }

    /// Queues the confirm of a publish whose labeled response, if any,
    /// waits for something else (`hold`: the key it waits under, if it
    /// waits for this confirm).
    pub fn queue_confirm(
        &mut self,
        pending: Pending,
        confirm: lapin::PublisherConfirm,
        hold: Option<String>,
    ) {
        self.confirms.push_back(Box::pin(async move {
            (pending, confirmed(confirm).await, hold)
        }));
    }

    /// Follows the server notices exactly while user mode `+s` is set.
    pub fn follow_snotices(&mut self) {
        match (self.umodes.snotice, self.snotices.is_some()) {
            (true, false) => self.snotices = Some(crate::snotice::Follow::start(&self.gw)),
            (false, true) => self.snotices = None,
            _ => {}
        }
    }

    /// A server notice for an operator with `+s`.
    pub fn on_snotice(&self, n: crate::snotice::Notice) {
        if self.closing || !self.umodes.snotice {
            return;
        }
        let m = Message::new("NOTICE")
            .with_source(self.server())
            .param(self.nick())
            .text(format!("*** Notice -- {}", n.text));
        self.send(m);
    }

    /// Whether `label` tags on this client's commands are honoured.
    pub fn labels_enabled(&self) -> bool {
        self.session.is_some() && self.caps.has(Cap::LabeledResponse) && self.caps.has(Cap::Batch)
    }

    /// An IRCv3 standard reply `FAIL <command> <code> [<context>…] :<text>`.
    pub fn fail(&self, command: &str, code: &str, context: &[&str], text: &str) {
        let mut m = Message::new("FAIL")
            .with_source(self.server())
            .param(command)
            .param(code);
        for p in context {
            m = m.param(*p);
        }
        self.send(m.text(text));
    }

    pub fn send_all(&self, msgs: impl IntoIterator<Item = Message>) {
        for m in msgs {
            self.send(m);
        }
    }

    pub fn sid(&self) -> &str {
        self.session.as_ref().map(|s| s.sid.as_str()).unwrap_or("")
    }

    pub fn view(&self) -> View<'_> {
        View {
            server: self.server(),
            sid: self.sid(),
            nick: self.nick(),
            caps: self.caps,
        }
    }

    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("~user")
    }

    /// `nick!user@host`.
    pub fn source(&self) -> String {
        format!("{}!{}@{}", self.nick(), self.user(), self.host)
    }

    /// The session's identity as the bus sees it.
    pub fn actor(&self) -> Actor {
        Actor {
            sid: self.sid().to_string(),
            gateway: self.gw.id.clone(),
            nick: self.nick().to_string(),
            user: self.user().to_string(),
            host: self.host.clone(),
            realname: self.realname.clone(),
            account: self.account.clone(),
        }
    }

    /// Declares and starts consuming `session.<sid>` unless already done:
    /// at the first auth request or at registration, whichever comes first,
    /// so connections that do neither cost the broker nothing.
    pub async fn ensure_session_queue(&mut self) -> bool {
        if self.queue_open {
            return true;
        }
        match self.gw.link.open_session_queue(&self.pending_sid).await {
            Ok(consumer) => {
                self.directs = Some(consumer);
                self.queue_open = true;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "opening the session queue failed");
                false
            }
        }
    }

    pub fn rooms(&self) -> impl Iterator<Item = &String> {
        self.session.iter().flat_map(|s| s.rooms.values())
    }

    pub fn in_room(&self, room: &str) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.rooms.contains_key(&fold(room)))
    }

    /// Publishes an intent and queues its confirm. Returns its id, or `None`
    /// if it could not even be handed to the broker (the client is told).
    pub async fn intent(&mut self, body: IntentBody) -> Option<String> {
        let id = new_id();
        // A labeled response waits for the router's Done.
        let done = self.labels.active();
        let intent = bus::schema::Intent {
            v: SCHEMA_VERSION,
            id: id.clone(),
            at: now_ms(),
            actor: self.actor(),
            body,
            done,
        };
        let message = is_room_message(&intent.body);
        match self.gw.link.publish_intent(intent).await {
            Ok(pending) => {
                metrics::intent();
                if message {
                    metrics::message_in("irc");
                }
                if done {
                    self.labels.wait_for(&id);
                }
                // (A labeled response waits for the router's Done.)
                self.queue_confirm(Pending::Intent { id: id.clone() }, pending, None);
                Some(id)
            }
            Err(e) => {
                tracing::warn!(error = %e, "publishing an intent failed");
                self.bus_trouble();
                None
            }
        }
    }

    /// Publishes a NOTICE-kind intent whose errors must not be answered.
    pub async fn notice_intent(&mut self, body: IntentBody) {
        if let Some(id) = self.intent(body).await {
            if self.notice_intents.len() == RECENT_NOTICES {
                self.notice_intents.pop_front();
            }
            self.notice_intents.push_back(id);
        }
    }

    /// Remembers a published REDACT intent until the router answers it
    /// (its event, or a refusal).
    pub fn remember_redaction(&mut self, intent: String, r: Redacting) {
        if self.redactions.len() == RECENT_REDACTIONS {
            self.redactions.pop_front();
        }
        self.redactions.push_back((intent, r));
    }

    /// The REDACT that intent `id` was, forgotten once answered.
    fn answered_redaction(&mut self, id: &str) -> Option<Redacting> {
        let pos = self.redactions.iter().position(|(i, _)| i == id)?;
        self.redactions.remove(pos).map(|(_, r)| r)
    }

    /// Tells the client its request did not reach the bus.
    pub fn bus_trouble(&self) {
        if self.closing {
            return;
        }
        let m = Message::new("NOTICE")
            .with_source(self.server())
            .param(self.nick())
            .text("*** Your request could not be delivered, please try again");
        self.send(m);
    }

    /// True if `id` was already shown (and remembers it otherwise).
    fn seen_event(&mut self, id: &str) -> bool {
        if self.recent_events.iter().any(|e| e == id) {
            return true;
        }
        if self.recent_events.len() == RECENT_EVENTS {
            self.recent_events.pop_front();
        }
        self.recent_events.push_back(id.to_string());
        false
    }

    /// Applies `change` to the session record and writes it to NATS.
    pub async fn update_record(&self, change: impl FnOnce(&mut SessionRecord)) {
        let Some(s) = &self.session else {
            return;
        };
        let mut st = s.shared.state.lock().await;
        change(&mut st.record);
        if let Err(e) = self.gw.registry.put_session(&st.record).await {
            tracing::warn!(sid = %s.sid, error = %e, "updating the session record failed");
        }
    }

    /// Something from the dispatcher.
    pub async fn on_outbound(&mut self, item: Outbound) {
        match item {
            Outbound::Event(ev) => {
                // The client's own intent's event belongs to the labeled
                // response that waits for that intent, if one does.
                let own = ev.actor.sid == self.sid();
                let entered = own.then(|| self.labels.enter(&ev.id));
                self.on_event(&ev).await;
                if let Some(e) = entered {
                    self.labels.leave(&ev.id, e, false, &self.out);
                }
            }
            Outbound::Reply(r) => {
                if matches!(r.body, Reply::Done) {
                    self.labels.release(&r.intent, &self.out);
                    return;
                }
                let entered = self.labels.enter(&r.intent);
                let intent = r.intent.clone();
                self.on_reply(&r).await;
                self.labels.leave(&intent, entered, false, &self.out);
            }
        }
    }

    /// A router reply to one of the client's intents.
    async fn on_reply(&mut self, r: &bus::schema::SessionReply) {
        if let Reply::Error { code, .. } = r.body {
            if self.notice_intents.contains(&r.intent) {
                return;
            }
            if let Some(redacting) = self.answered_redaction(&r.intent) {
                redact::refused(self, &redacting, code);
                return;
            }
        }
        if let (Reply::Who { name, members, .. }, Some(q)) = (&r.body, self.whox.remove(&r.intent))
        {
            let lines = crate::irc::commands::who_lines(self, &q, name, members);
            self.send_all(lines);
            return;
        }
        let lines = render::reply(&r.body, &self.view());
        self.send_all(lines);
        if let Reply::Joined { room, name, .. } = &r.body {
            history::replay_after_join(self, room, name).await;
        }
    }

    async fn on_event(&mut self, ev: &RoomEvent) {
        if matches!(ev.body, EventBody::Redact { .. }) && ev.actor.sid == self.sid() {
            self.answered_redaction(&ev.id);
        }
        let shared_id = match &ev.body {
            EventBody::Quit { event, .. }
            | EventBody::Nick { event, .. }
            | EventBody::Away { event, .. }
            | EventBody::Realname { event, .. }
            | EventBody::Host { event, .. }
            | EventBody::Account { event, .. } => Some(event),
            _ => None,
        };
        let duplicate = shared_id.is_some_and(|id| self.seen_event(id));
        if !duplicate {
            let lines = render::event(ev, &self.view());
            self.send_all(lines);
        } else {
            // A host change seen before in another room: no second QUIT,
            // but (without chghost) its JOIN into this room too.
            let lines = render::host_rejoin(ev, &self.view());
            self.send_all(lines);
        }
        self.track_membership(ev).await;
    }

    /// Keeps the session's room list (and its NATS record) in step with
    /// the events about itself.
    async fn track_membership(&mut self, ev: &RoomEvent) {
        if self.session.is_none() {
            return;
        }
        let mine = ev.actor.sid == self.sid();
        if mine && matches!(ev.body, EventBody::Join) {
            history::note_own_join(self, &ev.room, ev.at);
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let changed = match &ev.body {
            EventBody::Join if mine => s.rooms.insert(ev.room.clone(), ev.name.clone()).is_none(),
            EventBody::Part { .. } | EventBody::Quit { .. } if mine => {
                s.rooms.remove(&ev.room).is_some()
            }
            EventBody::Kick { target_sid, .. } if *target_sid == s.sid => {
                s.rooms.remove(&ev.room).is_some()
            }
            _ => false,
        };
        if changed {
            let names: Vec<String> = s.rooms.values().cloned().collect();
            self.update_record(|r| r.rooms = names).await;
        }
        if changed && mine && matches!(ev.body, EventBody::Join) {
            user::restate_after_join(self, &ev.room).await;
        }
    }

    /// A delivery from `session.<sid>`. A kill (NickServ GHOST) ends the
    /// connection with `Killed (<reason>)`.
    pub fn on_direct(&mut self, d: &Direct) {
        if let DirectBody::Kill { reason } = &d.body {
            self.kill
                .kill(KillCause::Replaced, &format!("Killed ({reason})"));
            return;
        }
        let lines = render::direct(d, &self.view());
        self.send_all(lines);
    }

    /// A publisher confirm completed.
    pub async fn on_confirm(&mut self, (pending, outcome, hold): Confirmed) {
        let entered = hold.as_deref().map(|k| self.labels.enter(k));
        self.confirmed(pending, outcome).await;
        if let (Some(k), Some(e)) = (hold, entered) {
            self.labels.leave(&k, e, true, &self.out);
        }
    }

    async fn confirmed(&mut self, pending: Pending, outcome: Outcome) {
        match (pending, outcome) {
            (Pending::Intent { .. }, Outcome::Confirmed) => {}
            (Pending::Intent { id }, _) => {
                // No Done will come for it.
                let entered = self.labels.enter(&id);
                self.bus_trouble();
                self.labels.leave(&id, entered, true, &self.out);
            }
            (Pending::Auth { .. } | Pending::History { .. }, Outcome::Confirmed) => {}
            (Pending::Auth { id }, _) => super::auth::refused(self, &id),
            (Pending::History { id }, _) => history::refused(self, &id),
            (
                Pending::Direct {
                    target,
                    kind,
                    echo,
                    log: Some(log),
                },
                Outcome::Confirmed,
            ) => messaging::log_direct(self, target, kind, echo, *log).await,
            (Pending::Direct { echo, .. }, Outcome::Confirmed) => {
                if let Some(m) = echo {
                    self.send(m);
                }
            }
            (
                Pending::Direct {
                    kind: MessageKind::Notice,
                    ..
                },
                _,
            ) => {}
            (Pending::Direct { target, .. }, _) => {
                let m = self.num().no_such_nick(&target);
                self.send(m);
            }
            (
                Pending::DirectLog {
                    target,
                    kind,
                    echo,
                    offline,
                },
                outcome,
            ) => messaging::on_logged(self, &target, kind, echo, offline, outcome),
        }
    }
}
