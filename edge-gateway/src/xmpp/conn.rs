//! One XMPP stream over one WebSocket: the loop that reads messages,
//! session-queue deliveries (auth answers) and timers, and the stream
//! states (before `<open/>`, SASL, restarted stream, bound).

use bus::settle::Settle;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bus::schema::{AuthRequest, AuthRequestBody, BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use lapin::options::BasicAckOptions;
use lapin::Consumer;
use tokio::time::Instant;

use super::framing::{self, NS_FRAMING, NS_SASL};
use super::presence::PresenceState;
use super::requests::Requests;
use super::roster::Roster;
use super::sasl::{self, Sasl};
use super::session::Session;
use super::stream_error::{self, Condition};
use super::xml::{self, Element, Limits, Parsed};
use super::{
    bind, carbons, chat, history, muc, presence, register, requests, roster, session, Resources,
};
use crate::bus_link::{confirmed, next_delivery, Outcome};
use crate::config::XmppConfig;
use crate::gateway::Gateway;
use crate::sessions::{Kill, KillCause, Outbound};

/// How long the auth service may take to answer a SASL step.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Send this stream error, then `<close/>`.
    Error(Condition),
    /// The client sent `<close/>`: answer it and close.
    Closed,
    /// The WebSocket is gone; nothing more can be sent.
    Gone,
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `<open/>` (the first, or the restart after SASL).
    AwaitOpen,
    Open,
}

pub struct Conn {
    pub gw: Arc<Gateway>,
    pub xmpp: Arc<XmppConfig>,
    pub resources: Arc<Resources>,
    /// The client's address, for per-address login limits.
    pub addr: String,
    /// Names this connection's session queue (auth answers arrive there).
    pub sid: String,
    pub sasl: Sasl,
    /// The account, once SASL succeeded.
    pub account: Option<String>,
    /// The full JID, once a resource is bound.
    pub jid: Option<String>,
    /// The platform session, from binding on.
    pub session: Option<Session>,
    /// Ends the stream from outside (SendQ exceeded, nick lost, a kill).
    pub kill: Arc<Kill>,
    /// History requests in flight.
    pub history: Vec<history::Inflight>,
    /// Account lookups for messages to absent names.
    pub lookups: Vec<chat::Lookup>,
    /// Roster, subscription, vCard and registration requests in flight.
    pub requests: Requests,
    /// The account's roster, once loaded.
    pub roster: Option<Roster>,
    /// The client asked for the roster, so it gets roster pushes.
    pub roster_interested: bool,
    pub presence: PresenceState,
    /// Whether the client enabled carbons (XEP-0280).
    pub carbons: bool,
    queue: Option<Consumer>,
    phase: Phase,
    /// Whether an `<open/>` of ours went out on this stream (a stream error
    /// must follow one).
    opened: bool,
    out: Vec<Element>,
}

impl Conn {
    pub fn new(
        gw: Arc<Gateway>,
        xmpp: Arc<XmppConfig>,
        resources: Arc<Resources>,
        addr: String,
    ) -> Self {
        Self {
            gw,
            xmpp,
            resources,
            addr,
            sid: bus::new_id(),
            sasl: Sasl::Idle,
            account: None,
            jid: None,
            session: None,
            kill: Arc::new(Kill::default()),
            history: Vec::new(),
            lookups: Vec::new(),
            requests: Requests::default(),
            roster: None,
            roster_interested: false,
            presence: PresenceState::default(),
            carbons: false,
            queue: None,
            phase: Phase::AwaitOpen,
            opened: false,
            out: Vec::new(),
        }
    }

    /// Queues an element; it is sent (one per WebSocket message) when the
    /// current input is handled.
    pub fn push(&mut self, e: Element) {
        self.out.push(e);
    }

    /// SASL succeeded: the client must now restart the stream.
    pub fn logged_in(&mut self, account: String) {
        tracing::info!(account = %account, "xmpp: authenticated");
        self.account = Some(account);
        self.phase = Phase::AwaitOpen;
    }

    /// Publishes an auth request answered into this connection's session
    /// queue (opened on first use). Returns the request id and deadline,
    /// or `None` if the bus did not take it.
    pub async fn request_auth(&mut self, body: AuthRequestBody) -> Option<(String, Instant)> {
        if self.queue.is_none() {
            match self.gw.link.open_session_queue(&self.sid).await {
                Ok(consumer) => self.queue = Some(consumer),
                Err(e) => {
                    tracing::warn!(error = %e, "xmpp: opening the session queue failed");
                    return None;
                }
            }
        }
        let id = bus::new_id();
        let req = AuthRequest {
            v: SCHEMA_VERSION,
            id: id.clone(),
            sid: self.sid.clone(),
            client_addr: self.addr.clone(),
            body,
        };
        match self.gw.link.publish_auth(&self.sid, req).await {
            Ok(pending) => match confirmed(pending).await {
                Outcome::Confirmed => Some((id, Instant::now() + AUTH_TIMEOUT)),
                outcome => {
                    tracing::warn!(?outcome, "xmpp: the broker did not take an auth request");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "xmpp: publishing an auth request failed");
                None
            }
        }
    }

    fn on_open(&mut self, open: &Element) -> Result<(), End> {
        if self.phase == Phase::Open {
            // A second `<open/>` without SASL success in between.
            return Err(End::Error(Condition::NotWellFormed));
        }
        let stream_id = format!("{:016x}", rand::random::<u64>());
        self.push(framing::open(&self.xmpp.domain, &stream_id));
        self.opened = true;
        let to = open.get_attr("to").unwrap_or("");
        if !to.eq_ignore_ascii_case(&self.xmpp.domain) {
            return Err(End::Error(Condition::HostUnknown));
        }
        self.phase = Phase::Open;
        let features = if self.account.is_some() {
            framing::features_after_auth()
        } else {
            framing::features_before_auth(&sasl::MECHANISMS, self.xmpp.registration)
        };
        self.push(features);
        Ok(())
    }

    async fn on_element(&mut self, e: Element) -> Result<(), End> {
        if e.ns == NS_FRAMING {
            return match e.name.as_str() {
                "open" => self.on_open(&e),
                "close" => Err(End::Closed),
                _ => Err(End::Error(Condition::NotWellFormed)),
            };
        }
        if self.phase != Phase::Open {
            // Framing first (RFC 7395 §3.3); after SASL success only the
            // restart is expected.
            return Err(End::Error(if self.account.is_some() {
                Condition::NotAuthorized
            } else {
                Condition::NotWellFormed
            }));
        }
        if self.account.is_none() {
            return match (e.ns.as_str(), e.name.as_str()) {
                (NS_SASL, "auth") => sasl::on_auth(self, &e).await,
                (NS_SASL, "response") => sasl::on_response(self, &e).await,
                (NS_SASL, "abort") => {
                    sasl::on_abort(self);
                    Ok(())
                }
                (super::xml::NS_CLIENT, "iq") => match registration_query(&e) {
                    Some(q) => {
                        let q = q.clone();
                        register::before_auth(self, &e, &q).await;
                        Ok(())
                    }
                    None => Err(End::Error(Condition::NotAuthorized)),
                },
                _ => Err(End::Error(Condition::NotAuthorized)),
            };
        }
        bind::on_stanza(self, &e).await
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        let limits = Limits {
            max_bytes: self.xmpp.max_stanza_bytes,
            max_depth: self.xmpp.max_depth,
            max_attributes: self.xmpp.max_attributes,
        };
        match xml::parse(text, &limits) {
            Ok(Parsed::Whitespace) => Ok(()),
            Ok(Parsed::Element(e)) => self.on_element(e).await,
            Err(condition) => Err(End::Error(condition)),
        }
    }

    /// A session-queue delivery; acked once shown (a direct message) or at
    /// once (answers only this connection could use).
    async fn on_delivery(&mut self, d: lapin::message::Delivery) {
        let msg = BusMessage::from_json(&d.data);
        if !matches!(msg, Ok(BusMessage::Direct(_))) {
            let _ = d.acker.ack_within(BasicAckOptions::default()).await;
        }
        match msg {
            Ok(BusMessage::Direct(direct)) => {
                self.on_direct(direct).await;
                let _ = d.acker.ack_within(BasicAckOptions::default()).await;
            }
            Ok(BusMessage::AuthReply(reply)) => {
                if chat::on_lookup(self, &reply.id, &reply.body).await {
                } else if let Some(purpose) = requests::take(self, &reply.id) {
                    requests::on_reply(self, purpose, reply.body).await;
                } else {
                    sasl::on_reply(self, &reply.id, reply.body);
                }
            }
            Ok(BusMessage::HistoryReply(reply)) => history::on_reply(self, reply).await,
            Ok(other) => {
                tracing::debug!(kind = ?std::mem::discriminant(&other), "xmpp: ignoring a session-queue message")
            }
            Err(e) => tracing::warn!(error = %e, "xmpp: undecodable session-queue message"),
        }
    }

    /// A delivery addressed to this session or to its account.
    async fn on_direct(&mut self, direct: bus::schema::Direct) {
        use bus::schema::DirectBody;
        match direct.body {
            DirectBody::Roster { push } => roster::on_push(self, push).await,
            DirectBody::Presence { stanza } => {
                presence::on_direct(self, &direct.from, &stanza).await
            }
            DirectBody::Carbon {
                sent,
                stanza,
                except,
            } => carbons::on_direct(self, sent, &stanza, &except),
            _ => {
                if let Some(reason) = chat::on_direct(self, &direct).await {
                    self.kill
                        .kill(KillCause::Replaced, &format!("Killed ({reason})"));
                }
            }
        }
    }

    async fn flush(&mut self, ws: &mut WebSocket) -> Result<(), End> {
        for e in std::mem::take(&mut self.out) {
            ws.send(Message::text(e.to_string()))
                .await
                .map_err(|_| End::Gone)?;
        }
        Ok(())
    }

    /// Runs the stream until it ends, then cleans up.
    pub async fn run(mut self, mut ws: WebSocket, mut shutdown: Shutdown) {
        let end = self.serve(&mut ws, &mut shutdown).await;
        let reason = match end {
            End::Closed => "Client closed the stream".to_string(),
            End::Gone => "Connection closed".to_string(),
            End::Error(Condition::SystemShutdown) => "Server shutting down".to_string(),
            End::Error(c) => self
                .kill
                .reason()
                .unwrap_or_else(|| format!("Stream error: {}", c.name())),
        };
        match end {
            End::Gone => {}
            End::Closed => {
                self.push(framing::close());
                let _ = self.flush(&mut ws).await;
                let _ = ws.send(Message::Close(None)).await;
            }
            End::Error(condition) => {
                tracing::debug!(condition = condition.name(), "xmpp: stream error");
                if !self.opened {
                    let stream_id = format!("{:016x}", rand::random::<u64>());
                    self.out
                        .insert(0, framing::open(&self.xmpp.domain, &stream_id));
                }
                self.push(stream_error::element(condition));
                self.push(framing::close());
                let _ = self.flush(&mut ws).await;
                let _ = ws.send(Message::Close(None)).await;
            }
        }
        presence::unavailable(&mut self).await;
        session::end(&mut self, &reason).await;
        if let Some(jid) = &self.jid {
            self.resources.release(jid);
        }
        if self.queue.take().is_some() {
            if let Err(e) = self.gw.link.close_session_queue(&self.sid).await {
                tracing::debug!(error = %e, "xmpp: deleting the session queue");
            }
        }
    }

    async fn serve(&mut self, ws: &mut WebSocket, shutdown: &mut Shutdown) -> End {
        let ping_interval = Duration::from_secs(self.xmpp.ping_interval_secs.max(1));
        let ping_timeout = Duration::from_secs(self.xmpp.ping_timeout_secs.max(1));
        let login_deadline =
            Instant::now() + Duration::from_secs(self.xmpp.login_timeout_secs.max(1));
        let mut last_input = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            let idle_at = match ping_sent {
                Some(at) => at + ping_timeout,
                None => last_input + ping_interval,
            };
            let auth_deadline = sasl::deadline(self);
            let lookup_deadline = chat::deadline(self);
            let history_deadline = history::deadline(self);
            let requests_deadline = self.requests.deadline();
            let logging_in = self.jid.is_none();
            let kill = self.kill.clone();
            let step: Result<(), End> = tokio::select! {
                msg = ws.recv() => {
                    last_input = Instant::now();
                    ping_sent = None;
                    match msg {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                        Some(Ok(Message::Binary(_))) => Err(End::Error(Condition::UnsupportedStanzaType)),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                        Some(Ok(Message::Close(_))) | None => Err(End::Gone),
                        Some(Err(e)) => Err(if too_big(e) { End::Error(Condition::PolicyViolation) } else { End::Gone }),
                    }
                }
                d = recv_queue(&mut self.queue) => {
                    match d {
                        Some(d) => { self.on_delivery(d).await; Ok(()) }
                        None => {
                            // The session queue's consumer ended for good:
                            // answers can no longer arrive.
                            self.queue = None;
                            if matches!(self.sasl, Sasl::Waiting { .. }) { sasl::on_timeout(self); }
                            Ok(())
                        }
                    }
                }
                item = recv_inbox(&mut self.session) => {
                    match item {
                        Some(Outbound::Event(ev)) => muc::on_event(self, ev).await,
                        Some(Outbound::Reply(r)) => muc::on_reply(self, &r).await,
                        None => {}
                    }
                    Ok(())
                }
                (cause, reason) = kill.wait() => {
                    tracing::debug!(%reason, "xmpp: stream killed");
                    Err(End::Error(match cause {
                        KillCause::Replaced => Condition::Conflict,
                        KillCause::SendQ => Condition::PolicyViolation,
                        KillCause::Unavailable => Condition::InternalServerError,
                    }))
                }
                _ = sleep_until_opt(auth_deadline) => { sasl::on_timeout(self); Ok(()) }
                _ = sleep_until_opt(lookup_deadline) => { chat::on_timeout(self); Ok(()) }
                _ = sleep_until_opt(history_deadline) => { history::on_timeout(self).await; Ok(()) }
                _ = sleep_until_opt(requests_deadline) => { requests::on_timeout(self); Ok(()) }
                _ = tokio::time::sleep_until(login_deadline), if logging_in => Err(End::Error(Condition::ConnectionTimeout)),
                _ = tokio::time::sleep_until(idle_at) => {
                    if ping_sent.is_some() {
                        Err(End::Error(Condition::ConnectionTimeout))
                    } else {
                        ping_sent = Some(Instant::now());
                        ws.send(Message::Ping(Default::default())).await.map_err(|_| End::Gone)
                    }
                }
                _ = shutdown.wait() => Err(End::Error(Condition::SystemShutdown)),
            };
            if let Err(end) = step {
                return end;
            }
            if let Err(end) = self.flush(ws).await {
                return end;
            }
        }
    }
}

/// The `jabber:iq:register` payload of a lone iq, if that is what it is
/// (the one stanza a stream may send before authenticating).
fn registration_query(iq: &Element) -> Option<&Element> {
    let mut payloads = iq.elements();
    let q = payloads.next()?;
    (payloads.next().is_none() && q.is("query", register::NS_REGISTER)).then_some(q)
}

/// Whether a WebSocket read failed because the message exceeded the
/// configured size (then the client hears `policy-violation`).
fn too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast::<tungstenite::Error>().map(|b| *b),
        Ok(tungstenite::Error::Capacity(_))
    )
}

async fn recv_inbox(session: &mut Option<Session>) -> Option<Outbound> {
    match session {
        Some(s) => s.inbox.recv().await,
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
