//! The per-connection loop, independent of the transport: reads frames,
//! applies flood control, runs the ping and registration timers, drains the
//! session's outbound queue, its session queue and its pending confirms,
//! and ends the session cleanly whatever the reason.

use bus::settle::Settle;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bus::schema::{BusMessage, DirectBody, IntentBody, MemberChange};
use bus::shutdown::Shutdown;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::Consumer;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::client::{Client, OutQueue};
use super::commands::{self, monitor};
use super::line::{parse, Message, ParseError};
use super::transport::{Frame, LineSource};
use super::{auth, history, labeled, reservation};
use crate::bus_link::next_delivery;
use crate::gateway::Gateway;
use crate::metrics;
use crate::sessions::{Kill, Outbound};

/// How long the QUIT intents of an ending session may take to be confirmed.
const QUIT_CONFIRM_WAIT: Duration = Duration::from_secs(5);
/// Flood control: unprocessed input worth this long disconnects.
const MAX_LAG_SECS: f64 = 10.0;
/// Input bytes read ahead of processing; beyond it we stop reading and let
/// TCP push back on the client.
const MAX_PENDING_BYTES: usize = 64 * 1024;
/// Lines handled before the loop looks at its other sources again: a
/// client sending fast (flood control off, or a burst) must not keep its
/// own deliveries waiting until its inbox overflows.
const LINES_PER_TURN: usize = 32;
/// Deliveries handled at once when the inbox has several.
const INBOX_PER_TURN: usize = 4 * LINES_PER_TURN;

/// Token bucket with fake lag: a line costs one token; without tokens the
/// line waits (reading continues up to a bound), and a client whose
/// backlog needs more than [`MAX_LAG_SECS`] to drain is disconnected.
#[derive(Debug)]
struct Flood {
    burst: f64,
    /// Tokens per second; 0 disables flood control.
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Flood {
    fn new(burst: u32, rate: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            rate: f64::from(rate),
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token if one is available.
    fn try_take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be available.
    fn ready_at(&self) -> Instant {
        if self.rate == 0.0 || self.tokens >= 1.0 {
            return self.last;
        }
        self.last + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }

    /// Whether a backlog of `pending` lines is more lag than we tolerate.
    fn excessive(&self, pending: usize) -> bool {
        self.rate > 0.0 && pending as f64 > self.tokens.max(0.0) + self.rate * MAX_LAG_SECS
    }
}

/// A configured timer length, kept between 1 second and a year so that
/// adding it to an `Instant` can never overflow.
fn secs(n: u64) -> Duration {
    Duration::from_secs(n.clamp(1, 365 * 24 * 3600))
}

/// What the transport knows of the connection's security.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Carried over TLS.
    pub tls: bool,
    /// The SHA-256 fingerprint of the client's certificate, if it sent one.
    pub certfp: Option<String>,
}

/// Serves one client until it quits, fails or the gateway shuts down.
pub async fn run<S: LineSource>(
    gw: Arc<Gateway>,
    mut source: S,
    out: mpsc::Sender<String>,
    host: String,
    security: Security,
    mut shutdown: Shutdown,
) {
    let kill = Arc::new(Kill::default());
    let mut c = Client::new(
        gw.clone(),
        OutQueue::new(out, kill.clone()),
        kill.clone(),
        host,
    );
    c.security = security;
    let irc = &gw.irc;
    let connected = Instant::now();
    let registration_deadline = connected + secs(irc.registration_timeout_secs);
    let ping_interval = secs(irc.ping_interval_secs);
    let ping_timeout = secs(irc.ping_timeout_secs);
    let mut flood = Flood::new(irc.flood_burst, irc.flood_rate, connected);
    let mut pending: VecDeque<Frame> = VecDeque::new();
    let mut pending_bytes = 0usize;
    let mut last_input = connected;
    let mut ping_sent: Option<Instant> = None;
    let mut inbox: Option<mpsc::Receiver<Outbound>> = None;
    let mut directs: Option<Consumer> = None;

    let reason: String = loop {
        // Process what the flood budget allows, a turn's worth at a time.
        let mut turn = 0;
        while !pending.is_empty() && turn < LINES_PER_TURN && flood.try_take(Instant::now()) {
            turn += 1;
            if let Some(frame) = pending.pop_front() {
                if let Frame::Line(l) = &frame {
                    pending_bytes = pending_bytes.saturating_sub(l.len());
                }
                handle_frame(&mut c, frame).await;
            }
            if c.quit.is_some() || kill.reason().is_some() {
                break;
            }
        }
        if let Some(q) = &c.quit {
            break q.clone();
        }
        if let Some(r) = kill.reason() {
            break r;
        }
        if inbox.is_none() {
            inbox = c.inbox.take();
        }
        if directs.is_none() {
            directs = c.directs.take();
        }
        let mut timer = match ping_sent {
            Some(sent) => sent + ping_timeout,
            None => last_input + ping_interval,
        };
        if c.session.is_none() {
            timer = timer.min(registration_deadline);
        }
        let can_read = pending_bytes < MAX_PENDING_BYTES;
        let auth_deadline = auth::deadline(&c);
        let guard_deadline = reservation::deadline(&c);
        let history_deadline = history::deadline(&c);
        let labels_deadline = c.labels.deadline();
        tokio::select! {
            (_, r) = kill.wait() => break r,
            _ = shutdown.wait() => {
                // Said before the ERROR line, which some clients do not show.
                c.send(
                    Message::new("NOTICE")
                        .with_source(c.server())
                        .param(c.nick())
                        .text("*** Server shutting down, please reconnect"),
                );
                break "Server shutting down".to_string();
            }
            frame = source.next_frame(), if can_read => match frame {
                Ok(Some(f)) => {
                    last_input = Instant::now();
                    ping_sent = None;
                    if let Frame::Line(l) = &f {
                        pending_bytes += l.len();
                    }
                    pending.push_back(f);
                    if flood.excessive(pending.len()) {
                        break "Excess Flood".to_string();
                    }
                }
                Ok(None) => break "Remote host closed the connection".to_string(),
                Err(e) => break format!("Read error: {e}"),
            },
            _ = sleep_until(flood.ready_at()), if !pending.is_empty() => {}
            Some(item) = recv_outbound(&mut inbox) => {
                c.on_outbound(item).await;
                // What else is waiting, up to a turn's worth: the inbox
                // must drain at least as fast as the client's own lines
                // (each echoed back as an event) fill it.
                for _ in 0..INBOX_PER_TURN {
                    match inbox.as_mut().map(|rx| rx.try_recv()) {
                        Some(Ok(item)) => c.on_outbound(item).await,
                        _ => break,
                    }
                }
            }
            d = next_direct(&mut directs) => match d {
                Some(d) => on_direct(&mut c, d).await,
                None => {
                    directs = None;
                    break "Session queue lost".to_string();
                }
            },
            change = monitor::next_change(&mut c.monitor.rx) => monitor::on_change(&mut c, change).await,
            notice = crate::snotice::next(&mut c.snotices) => c.on_snotice(notice),
            Some(confirmed) = c.confirms.next(), if !c.confirms.is_empty() => {
                c.on_confirm(confirmed).await;
            }
            _ = sleep_until(labels_deadline.unwrap_or(timer)), if labels_deadline.is_some() => {
                c.labels.expire(&c.out);
            }
            _ = sleep_until(auth_deadline.unwrap_or(timer)), if auth_deadline.is_some() => {
                auth::on_timeout(&mut c).await;
            }
            _ = sleep_until(guard_deadline.unwrap_or(timer)), if guard_deadline.is_some() => {
                reservation::enforce(&mut c).await;
            }
            _ = sleep_until(history_deadline.unwrap_or(timer)), if history_deadline.is_some() => {
                history::on_timeout(&mut c).await;
            }
            _ = sleep_until(timer) => {
                let now = Instant::now();
                if c.session.is_none() && now >= registration_deadline {
                    break "Registration timed out".to_string();
                }
                match ping_sent {
                    Some(_) => {
                        let idle = now.saturating_duration_since(last_input).as_secs();
                        break format!("Ping timeout: {idle} seconds");
                    }
                    None if now >= last_input + ping_interval => {
                        c.send(Message::new("PING").text(c.server()));
                        ping_sent = Some(now);
                    }
                    None => {}
                }
            }
        }
    };
    teardown(c, reason, inbox, directs).await;
}

async fn recv_outbound(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_direct(consumer: &mut Option<Consumer>) -> Option<Delivery> {
    match consumer {
        Some(c) => next_delivery(c).await,
        None => std::future::pending().await,
    }
}

/// Renders a session-queue delivery (or routes an auth or history answer),
/// then acks it.
async fn on_direct(c: &mut Client, d: Delivery) {
    match BusMessage::from_json(&d.data) {
        Ok(BusMessage::Direct(direct)) => {
            match &direct.body {
                DirectBody::ChangeHost { host } => commands::user::change_host(c, host).await,
                _ => c.on_direct(&direct),
            }
            if let Err(e) = d.acker.ack_within(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "ack on a session queue failed");
            }
        }
        Ok(BusMessage::AuthReply(reply)) => {
            // Acked first: an answer is only useful to this connection now.
            if let Err(e) = d.acker.ack_within(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "ack on a session queue failed");
            }
            auth::on_reply(c, reply).await;
        }
        Ok(BusMessage::HistoryReply(reply)) => {
            // Likewise: nobody else could use it.
            if let Err(e) = d.acker.ack_within(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "ack on a session queue failed");
            }
            history::on_reply(c, reply).await;
        }
        Ok(_) | Err(_) => {
            tracing::warn!("rejecting an unexpected message on a session queue");
            let _ = d
                .acker
                .reject_within(BasicRejectOptions { requeue: false })
                .await;
        }
    }
}

async fn handle_frame(c: &mut Client, frame: Frame) {
    metrics::line_in();
    let bytes = match frame {
        Frame::TooLong => {
            c.send(c.num().input_too_long());
            return;
        }
        Frame::NotOneLine => {
            let fail = Message::new("FAIL")
                .with_source(c.server())
                .param("*")
                .param("INVALID_MESSAGE")
                .text("Message rejected, a WebSocket message must hold exactly one IRC line");
            c.send(fail);
            return;
        }
        Frame::Line(bytes) => bytes,
    };
    match parse(&bytes) {
        Ok(m) => {
            let label = labeled::label_of(&m, c.labels_enabled()).map(str::to_string);
            if let Some(l) = &label {
                c.labels.begin(l);
            }
            commands::dispatch(c, m).await;
            if label.is_some() {
                c.labels.end(&c.out);
            }
        }
        Err(ParseError::Empty | ParseError::Nul) => {}
        Err(ParseError::TooLong) => c.send(c.num().input_too_long()),
        Err(ParseError::InvalidUtf8 { command }) => {
            let fail = Message::new("FAIL")
                .with_source(c.server())
                .param(command.unwrap_or_else(|| "*".into()))
                .param("INVALID_UTF8")
                .text("Message rejected, your message contained invalid UTF-8");
            c.send(fail);
        }
    }
}

/// Ends the connection: tells the client, then (if it had a session)
/// publishes its QUIT to every room it was in, releases its nick, deletes
/// its record and its session queue.
async fn teardown(
    mut c: Client,
    reason: String,
    inbox: Option<mpsc::Receiver<Outbound>>,
    directs: Option<Consumer>,
) {
    let gw = c.gw.clone();
    c.closing = true;
    c.labels.flush(&c.out);
    c.out
        .send_last(format!("ERROR :Closing Link: {} ({reason})", c.addr))
        .await;
    let Some(session) = c.session.as_ref() else {
        // Never registered, but it may have asked the auth service.
        if c.queue_open {
            drop(directs);
            if let Err(e) = gw.link.close_session_queue(&c.pending_sid).await {
                tracing::debug!(error = %e, "deleting the session queue failed (it will expire)");
            }
        }
        return;
    };
    let (sid, shared) = (session.sid.clone(), session.shared.clone());
    tracing::debug!(%sid, %reason, "session ends");
    let event = bus::new_id();
    let rooms: Vec<String> = c.rooms().cloned().collect();
    for room in rooms {
        let change = MemberChange::Quit {
            reason: reason.clone(),
        };
        c.intent(IntentBody::Member {
            room,
            event: event.clone(),
            change,
        })
        .await;
    }
    // Handled, not just awaited: a private message confirmed now still
    // needs its copy for the history service published (a new confirm).
    let _ = tokio::time::timeout(QUIT_CONFIRM_WAIT, async {
        while let Some(confirmed) = c.confirms.next().await {
            c.on_confirm(confirmed).await;
        }
    })
    .await;
    drop(inbox);
    crate::sessions::end(&gw, &shared, &reason).await;
    drop(directs);
    if let Err(e) = gw.link.close_session_queue(&sid).await {
        tracing::debug!(%sid, error = %e, "deleting the session queue failed (it will expire)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_bucket_allows_a_burst_then_lags() {
        let t0 = Instant::now();
        let mut f = Flood::new(3, 2, t0);
        assert!(f.try_take(t0) && f.try_take(t0) && f.try_take(t0));
        assert!(!f.try_take(t0), "burst used up");
        let ready = f.ready_at();
        assert_eq!(ready.duration_since(t0), Duration::from_millis(500));
        assert!(f.try_take(ready));
        assert!(!f.excessive(20));
        assert!(f.excessive(21), "more than 10 seconds' worth");
    }

    #[test]
    fn zero_rate_disables_flood_control() {
        let t0 = Instant::now();
        let mut f = Flood::new(1, 0, t0);
        for _ in 0..1000 {
            assert!(f.try_take(t0));
        }
        assert!(!f.excessive(1_000_000));
    }
}
