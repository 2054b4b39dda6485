//! Surviving a broker restart: one AMQP connection that is re-established
//! whenever it is lost ([`Link`]), and the pieces its users need to carry
//! on across the gap.
//!
//! # Why not lapin's automatic recovery
//!
//! lapin 4.12 has one (`ConnectionProperties::enable_auto_recover`): it
//! reconnects, reopens the channels under the same `Channel` values and
//! re-registers their consumers. Tried against RabbitMQ 3.10 restarts it
//! recovered most connections, but a connection that had frames in flight
//! when the broker went away (a busy gateway, a publishing load) could stay
//! "reconnecting" for ever: its IO loop keeps waiting for events on the dead
//! socket instead of reconnecting (1 connection in 4 in the platform test;
//! 5 in 6 under a publishing load with lapin's trace logging slowing its
//! IO loop; lapin issue #450 reports recovery never completing too). A
//! connection without automatic recovery, on the other hand, fails
//! promptly and completely when the broker goes away, and that is what
//! [`Link`] builds on.
//!
//! # What a user of a [`Link`] sees when the broker goes away
//!
//! (lapin 4.12.3 without automatic recovery, RabbitMQ 3.10 stopped with
//! `rabbitmqctl stop`; observed.)
//!
//! * The connection fails at once (`CONNECTION_FORCED` or a reset), and so
//!   does every channel of it: a consumer stream yields one error and then
//!   ends; pending publisher confirms fail; `basic_publish` fails at once;
//!   an `Acker` of an earlier delivery returns `Ok(false)` and sends nothing.
//! * Nothing is recovered: the user opens new channels and consumers on the
//!   next connection ([`Link::up_after`]). The [`Link`] re-runs its setup
//!   (the topology declarations) on every new connection before handing it
//!   out, so the queues are there even if the broker lost them.
//! * Durable queues, their bindings and persistent messages survive the
//!   restart; whatever was delivered but not acknowledged is delivered
//!   again (`redelivered = true`), which [`RedeliveryFilter`] recognises
//!   when the same process already handled it.
//! * A publish whose confirm failed may or may not have reached the
//!   broker: it must be treated as not sent (and redone, or reported), and
//!   what it produced must be idempotent.

use crate::settle::Settle;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::{Connection, ConnectionProperties, Consumer};
use tokio::sync::watch;

use crate::shutdown::Shutdown;
use crate::topology::BusError;

/// First pause between reconnection attempts.
pub const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(200);
/// Longest pause between reconnection attempts: a broker that is back is
/// found within about this long.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);
/// How long one attempt (connect, then the setup) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the current connection's state is looked at.
const POLL: Duration = Duration::from_millis(100);
/// While disconnected, a reminder is logged this often.
const REMIND_EVERY: Duration = Duration::from_secs(30);
/// How long a failure on a connection that still looks up may take to
/// turn out to be its loss ([`Link::failed_with_connection`]).
pub const LOSS_GRACE: Duration = Duration::from_secs(1);
/// How long closing the connection at shutdown may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The properties of every connection: named, so that `rabbitmqctl
/// list_connections` tells which process holds it; no automatic recovery
/// (see the module documentation) and no connection retries of lapin's
/// own ([`Link`] retries).
pub fn connection_properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(name.to_string().into())
}

/// The pause after `delay` between two reconnection attempts: doubling,
/// from [`RECONNECT_MIN_DELAY`] up to [`RECONNECT_MAX_DELAY`].
pub fn next_delay(delay: Duration) -> Duration {
    (delay * 2).clamp(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
}

/// One established connection and its number: the first connection is
/// epoch 1, each re-established one the next. Channels and consumers
/// belong to one epoch; after a loss they are opened again on the next.
#[derive(Clone)]
pub struct Live {
    pub conn: Arc<Connection>,
    pub epoch: u64,
}

impl Live {
    /// Whether this connection is still up.
    pub fn is_up(&self) -> bool {
        self.conn.status().connected()
    }
}

#[derive(Clone)]
enum State {
    Up(Live),
    /// Lost; the epoch of the connection that was lost.
    Down(u64),
    Closed,
}

type SetupFuture = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send>>;
type SetupFn = dyn Fn(Live) -> SetupFuture + Send + Sync;

struct Shared {
    url: String,
    name: String,
    setup: Box<SetupFn>,
    state: watch::Sender<State>,
    /// The readiness check kept in step with the connection, once given.
    ready: Mutex<Option<Arc<AtomicBool>>>,
}

impl Shared {
    fn set_ready(&self, up: bool) {
        if let Some(ready) = &*self.ready.lock().unwrap_or_else(|p| p.into_inner()) {
            ready.store(up, Ordering::SeqCst);
        }
    }

    fn closed(&self) -> bool {
        matches!(*self.state.borrow(), State::Closed)
    }
}

/// An AMQP connection that is re-established, for as long as it takes,
/// whenever it is lost, with its topology declared again on each new
/// connection before anyone gets it. It logs the loss (warn), a reminder
/// every 30 s while the broker stays away, and the recovery (info), and
/// keeps a readiness check in step ([`Link::report_to`]).
///
/// Users hold channels and consumers of one [`Live`] connection; when an
/// operation fails, [`Link::lost`] tells whether the connection went away
/// (then they wait for [`Link::up_after`] and start over on the new one)
/// or something else is wrong.
#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
}

impl Link {
    /// Connects (once: bound it with a timeout; a broker that is not there
    /// at start-up is an error), runs `setup` on the connection (declare
    /// the topology the process needs, open the channels it shares; it
    /// runs again on every new connection, before the connection is handed
    /// to anyone), and from then on keeps the connection up.
    pub async fn connect<F, Fut>(url: &str, name: &str, setup: F) -> Result<Self, BusError>
    where
        F: Fn(Live) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BusError>> + Send + 'static,
    {
        let setup: Box<SetupFn> = Box::new(move |live| Box::pin(setup(live)));
        let conn = Arc::new(Connection::connect(url, connection_properties(name)).await?);
        let live = Live { conn, epoch: 1 };
        setup(live.clone()).await?;
        let (state, _) = watch::channel(State::Up(live.clone()));
        let shared = Arc::new(Shared {
            url: url.to_string(),
            name: name.to_string(),
            setup,
            state,
            ready: Mutex::new(None),
        });
        tokio::spawn(supervise(shared.clone(), live));
        Ok(Self { shared })
    }

    /// The connection, if it is up right now.
    pub fn live(&self) -> Option<Live> {
        match &*self.shared.state.borrow() {
            State::Up(live) if live.is_up() => Some(live.clone()),
            _ => None,
        }
    }

    /// The epoch of the current (or last lost) connection.
    pub fn epoch(&self) -> u64 {
        match &*self.shared.state.borrow() {
            State::Up(live) => live.epoch,
            State::Down(epoch) => *epoch,
            State::Closed => u64::MAX,
        }
    }

    /// Whether `live` is gone: down, or already replaced by a newer one.
    /// Work on its channels that failed then failed because of that.
    pub fn lost(&self, live: &Live) -> bool {
        !live.is_up() || self.epoch() != live.epoch
    }

    pub fn is_up(&self) -> bool {
        self.live().is_some()
    }

    /// Whether a failure seen on a channel of `live` means the connection
    /// was lost. lapin can report the failure (a write error, a rejected
    /// confirm) a moment before it marks the connection down, so a failure
    /// on a connection that still looks up is given [`LOSS_GRACE`] to turn
    /// out to be a loss.
    pub async fn failed_with_connection(&self, live: &Live) -> bool {
        let deadline = Instant::now() + LOSS_GRACE;
        loop {
            if self.lost(live) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resolves once `live` is lost (or the link closed). A consumer whose
    /// connection died of an I/O error is not always ended by lapin: racing
    /// its next delivery against this is how its reader finds out.
    pub async fn until_lost(&self, live: &Live) {
        let mut rx = self.shared.state.subscribe();
        loop {
            if self.lost(live) || self.shared.closed() {
                return;
            }
            // The supervisor publishes every loss and the close.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits for an up connection (at once if there is one). `None` once
    /// the link is closed or `shutdown` fires.
    pub async fn up(&self, shutdown: Option<&mut Shutdown>) -> Option<Live> {
        self.up_after(0, shutdown).await
    }

    /// After `live` was lost: waits for the next connection and `open`s
    /// what the caller consumes on it, trying again on the following one
    /// if that was lost too. `live` becomes the connection it succeeded
    /// on. `None` on shutdown; an error that is not a lost connection ends
    /// it.
    pub async fn reopen<T, E, F, Fut>(
        &self,
        live: &mut Live,
        shutdown: &mut Shutdown,
        mut open: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut(Live) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        loop {
            let Some(next) = self.up_after(live.epoch, Some(&mut *shutdown)).await else {
                return Ok(None);
            };
            *live = next.clone();
            match open(next).await {
                Ok(opened) => return Ok(Some(opened)),
                // Lost again already: wait for the next one.
                Err(_) if self.failed_with_connection(live).await => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Waits for an up connection newer than `epoch` (the one whose
    /// channels just failed). `None` once the link is closed or `shutdown`
    /// fires.
    pub async fn up_after(&self, epoch: u64, shutdown: Option<&mut Shutdown>) -> Option<Live> {
        let mut rx = self.shared.state.subscribe();
        let wait = async move {
            loop {
                let found = match &*rx.borrow_and_update() {
                    State::Closed => return None,
                    State::Up(live) if live.epoch > epoch && live.is_up() => Some(live.clone()),
                    _ => None,
                };
                if found.is_some() {
                    return found;
                }
                // The state changes on loss and on recovery; the poll
                // covers an Up whose connection died just now.
                let _ = tokio::time::timeout(POLL, rx.changed()).await;
            }
        };
        match shutdown {
            Some(shutdown) => tokio::select! {
                live = wait => live,
                _ = shutdown.wait() => None,
            },
            None => wait.await,
        }
    }

    /// From now on keeps `ready` (a readiness check) true exactly while the
    /// connection is up. Call it once the process is ready to serve.
    pub fn report_to(&self, ready: Arc<AtomicBool>) {
        ready.store(self.is_up(), Ordering::SeqCst);
        *self.shared.ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(ready);
    }

    /// Stops reconnecting and closes the connection (shutdown). Waiting
    /// users get `None`.
    pub async fn close(&self) {
        let previous = self.shared.state.send_replace(State::Closed);
        self.shared.set_ready(false);
        if let State::Up(live) = previous {
            if live.is_up() {
                let closing = live.conn.close(200, "shutting down".into());
                match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!(%error, "closing the AMQP connection"),
                    Err(_) => tracing::debug!("closing the AMQP connection timed out"),
                }
            }
        }
    }
}

/// Watches the live connection; when it is lost, reconnects (with the
/// setup) until it succeeds or the link is closed.
async fn supervise(shared: Arc<Shared>, mut live: Live) {
    loop {
        while live.is_up() {
            tokio::time::sleep(POLL).await;
            if shared.closed() {
                return;
            }
        }
        let lost_at = Instant::now();
        let recorded = shared.state.send_if_modified(|state| match state {
            State::Closed => false,
            _ => {
                *state = State::Down(live.epoch);
                true
            }
        });
        if !recorded {
            return;
        }
        shared.set_ready(false);
        tracing::warn!(epoch = live.epoch, "AMQP connection lost; reconnecting");
        drop(live.conn);

        let mut delay = RECONNECT_MIN_DELAY;
        let mut reminded = lost_at;
        let conn = loop {
            if shared.closed() {
                return;
            }
            match attempt(&shared, live.epoch + 1).await {
                Ok(conn) => break conn,
                Err(error) => {
                    tracing::debug!(%error, "reconnecting to RabbitMQ failed");
                    if reminded.elapsed() >= REMIND_EVERY {
                        reminded = Instant::now();
                        tracing::warn!(
                            down_secs = lost_at.elapsed().as_secs(),
                            %error,
                            "AMQP connection still down; reconnecting"
                        );
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = next_delay(delay);
        };
        live = Live {
            conn,
            epoch: live.epoch + 1,
        };
        let published = shared.state.send_if_modified(|state| match state {
            State::Closed => false,
            _ => {
                *state = State::Up(live.clone());
                true
            }
        });
        if !published {
            let _ = live.conn.close(200, "shutting down".into()).await;
            return;
        }
        shared.set_ready(true);
        tracing::info!(
            epoch = live.epoch,
            down_ms = lost_at.elapsed().as_millis() as u64,
            "AMQP connection recovered"
        );
    }
}

/// One reconnection attempt: connect, then the setup, within
/// [`ATTEMPT_TIMEOUT`].
async fn attempt(shared: &Shared, epoch: u64) -> Result<Arc<Connection>, BusError> {
    let timed_out = || {
        BusError::Amqp(
            lapin::ErrorKind::IOError(Arc::new(std::io::Error::from(std::io::ErrorKind::TimedOut)))
                .into(),
        )
    };
    let props = connection_properties(&shared.name);
    let conn = tokio::time::timeout(ATTEMPT_TIMEOUT, Connection::connect(&shared.url, props))
        .await
        .map_err(|_| timed_out())??;
    let conn = Arc::new(conn);
    let live = Live {
        conn: conn.clone(),
        epoch,
    };
    let setup = tokio::time::timeout(ATTEMPT_TIMEOUT, (shared.setup)(live))
        .await
        .map_err(|_| timed_out())
        .and_then(|r| r);
    if let Err(error) = setup {
        let _ = conn.close(200, "setup failed".into()).await;
        return Err(error);
    }
    Ok(conn)
}

/// A value that is replaced on every reconnection (a channel): readers
/// take the current one with [`Current::get`] and keep using that `Arc`
/// for the operation at hand, while the link's setup swaps in the next
/// one. Lock-free on the reader's side (`arc_swap`); a replaced value is
/// dropped once its last reader lets go of it.
///
/// It starts empty, to be filled by a [`Link`]'s setup (which runs before
/// [`Link::connect`] returns).
pub struct Current<T> {
    slot: arc_swap::ArcSwapOption<T>,
}

impl<T> Current<T> {
    pub fn new(value: T) -> Self {
        let current = Self::empty();
        current.set(value);
        current
    }

    pub fn empty() -> Self {
        Self {
            slot: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// Makes `value` the current one.
    pub fn set(&self, value: T) {
        self.slot.store(Some(Arc::new(value)));
    }

    /// The current value, if the setup ever stored one.
    pub fn get(&self) -> Option<Arc<T>> {
        self.slot.load_full()
    }
}

/// A digest of a message body, for recognising the same message again.
pub fn digest(body: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// Recognises redeliveries of messages this consumer already handed out.
///
/// After a reconnection the broker redelivers every message that was not
/// acknowledged on the old connection, including those the application had
/// already handled (their ack was in flight, or dropped with the
/// connection). Every message on this bus carries an id or a seq in its
/// body, so two deliveries with the same body are the same message: the
/// filter remembers the digests of the last `capacity` bodies handed out
/// and refuses a *redelivered* one it has seen. `capacity` must cover what
/// can be unacknowledged at once (twice the prefetch is plenty).
#[derive(Debug)]
pub struct RedeliveryFilter {
    order: VecDeque<u64>,
    seen: HashSet<u64>,
    capacity: usize,
}

impl RedeliveryFilter {
    pub fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            seen: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether a delivery of `body` (`redelivered` as the broker says)
    /// should be handled: false for a redelivery of a body handed out
    /// before. Remembers the body either way.
    pub fn admit(&mut self, body: &[u8], redelivered: bool) -> bool {
        let digest = digest(body);
        if self.seen.contains(&digest) {
            return !redelivered;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.order.push_back(digest);
        self.seen.insert(digest);
        true
    }
}

/// The next delivery to handle from `consumer`, or `None` once the
/// consumer ended or failed (logged; after a connection loss, open a new
/// consumer on the next connection). With a `filter`, redeliveries of
/// messages already handed out are acknowledged and skipped.
pub async fn next_delivery(
    consumer: &mut Consumer,
    mut filter: Option<&mut RedeliveryFilter>,
) -> Option<Delivery> {
    loop {
        let delivery = match consumer.next().await? {
            Ok(delivery) => delivery,
            Err(error) => {
                tracing::debug!(%error, queue = %consumer.queue(), "consumer failed");
                return None;
            }
        };
        if let Some(filter) = filter.as_deref_mut() {
            if !filter.admit(&delivery.data, delivery.redelivered) {
                tracing::debug!(queue = %consumer.queue(), "skipping the redelivery of a message already handled");
                let _ = delivery.acker.ack_within(BasicAckOptions::default()).await;
                continue;
            }
        }
        return Some(delivery);
    }
}

/// Stops consuming on `channel` by closing it, if its connection is still
/// there (a channel of a lost connection has nothing left to close).
/// Closing, never `basic.cancel` first: the broker then requeues every
/// unacknowledged delivery in one step and in order, so whoever consumes
/// next receives them before anything newer. Drop the consumer after this.
///
/// Bounded by [`CLOSE_TIMEOUT`]: a close that gets no answer (the broker
/// went away meanwhile) leaves the channel to die with its connection,
/// which requeues the same deliveries.
pub async fn close_channel(channel: &lapin::Channel) -> Result<(), lapin::Error> {
    if channel.status().connected() {
        match tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "shutting down".into())).await
        {
            Ok(closed) => closed?,
            Err(_) => tracing::warn!(
                channel = channel.id(),
                "closing a channel got no answer in time; leaving it to its connection"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut d = RECONNECT_MIN_DELAY;
        let mut seen = vec![d];
        for _ in 0..6 {
            d = next_delay(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(400));
        assert_eq!(seen[2], Duration::from_millis(800));
        assert_eq!(seen[3], Duration::from_millis(1600));
        assert!(seen[4..].iter().all(|d| *d == RECONNECT_MAX_DELAY));
    }

    #[test]
    fn current_hands_out_the_latest_and_keeps_old_values_alive_while_used() {
        assert!(Current::<String>::empty().get().is_none());
        let current = Current::new(String::from("one"));
        let old = current.get().unwrap();
        current.set(String::from("two"));
        assert_eq!(current.get().unwrap().as_str(), "two");
        assert_eq!(old.as_str(), "one", "a value taken before stays valid");
        assert_eq!(
            Arc::strong_count(&old),
            1,
            "and is freed with its last user"
        );
    }

    #[test]
    fn filter_skips_only_redeliveries_of_seen_bodies() {
        let mut f = RedeliveryFilter::new(3);
        assert!(f.admit(b"a", false));
        assert!(f.admit(b"b", false));
        assert!(!f.admit(b"a", true), "redelivery of a handled message");
        assert!(
            f.admit(b"c", true),
            "redelivery of a message never handed out"
        );
        assert!(
            f.admit(b"a", false),
            "not flagged as a redelivery: a new message with the same body is the broker's call"
        );
    }

    #[test]
    fn filter_forgets_beyond_its_capacity() {
        let mut f = RedeliveryFilter::new(2);
        assert!(f.admit(b"a", false));
        assert!(f.admit(b"b", false));
        assert!(f.admit(b"c", false)); // evicts a
        assert!(f.admit(b"a", true), "a was forgotten");
        assert!(!f.admit(b"c", true));
        assert_eq!(f.order.len(), 2);
        assert_eq!(f.seen.len(), 2);
    }

    #[test]
    fn connections_are_named_and_not_auto_recovering() {
        let shown = format!("{:?}", connection_properties("test"));
        assert!(shown.contains("auto_recover: false"), "{shown}");
        assert!(shown.contains("connection_name"), "{shown}");
    }
}
