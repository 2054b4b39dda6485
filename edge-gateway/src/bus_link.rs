//! The gateway's AMQP side: one connection, split into channels by job.
//!
//! * `publisher` (confirm mode): intents, direct messages, auth and history
//!   requests, direct-message logs. Shared by all
//!   connections; each publish returns its own pending confirm, so clients
//!   never queue behind one another's confirm waits.
//! * `control`: queue declarations and deletions. A failed declaration
//!   closes the channel it ran on, so this one is kept apart from the
//!   others and reopened when that happens.
//! * `sessions`: the consumers of every `session.<sid>` queue (per-consumer
//!   prefetch). Thousands of consumers fit on one channel; thousands of
//!   channels would not fit under the broker's channel limit.
//! * the gateway queue gets a channel of its own in [`BusLink::consume_gateway_queue`].
//!
//! The connection is a [`Link`]: after a broker restart it is re-established
//! (the topology declared again, new `publisher` and `sessions` channels
//! opened) while client connections stay up. Publishes in between fail
//! and are refused to the client as usual. [`next_delivery`] carries the
//! gateway queue's and every session queue's consumer over to the new
//! connection (the queues are durable), and skips redeliveries of what this
//! process already handed out.

use bus::config::BusConfig;
use bus::names::{fold, partition_of};
use bus::schema::{AuthRequest, BusMessage, Direct, DirectLog, HistoryRequest, Intent};
use bus::settle::Settle;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bus::recovery::{Current, Link, Live};
use bus::topology::{self, BusError};
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicPublishOptions, BasicQosOptions};
use lapin::{Channel, Consumer, PublisherConfirm};
use tokio::sync::Mutex;

/// Prefetch of the gateway queue: room traffic for every local session.
const GATEWAY_PREFETCH: u16 = 1000;
/// Prefetch of each session queue: private messages for one client.
const SESSION_PREFETCH: u16 = 100;
/// Per-message TTL of an auth request, in ms. The gateway gives up on an
/// answer after 10 s; a request still queued by then (no auth service
/// running) is dropped by the broker rather than acted on too late (a
/// REGISTER the client was already told failed).
const AUTH_REQUEST_TTL_MS: &str = "10000";
/// Per-message TTL of a history request, in ms: the gateway stops waiting
/// for the answer after 10 s, and a query nobody took by then is not worth
/// answering.
const HISTORY_REQUEST_TTL_MS: &str = "10000";

pub struct BusLink {
    link: Link,
    /// The current connection's publishing channel (replaced on each new
    /// connection; reads as a `Channel`).
    publisher: Arc<Current<Channel>>,
    control: Mutex<Channel>,
    /// The current connection's sessions channel, with that connection.
    sessions: Arc<Current<(Live, Channel)>>,
    /// Consumers carried over to new connections by [`next_delivery`].
    consumers: Arc<consumers::Registry>,
    partitions: u16,
    session_expires_secs: u64,
    session_max_len: u32,
}

impl BusLink {
    /// Connects, declares the shared topology and opens the channels, and
    /// does it all again on every new connection after a loss.
    pub async fn connect(url: &str, gateway_id: &str, bus: &BusConfig) -> Result<Self, BusError> {
        let publisher: Arc<Current<Channel>> = Arc::new(Current::empty());
        let sessions: Arc<Current<(Live, Channel)>> = Arc::new(Current::empty());
        let setup = {
            let (publisher, sessions, partitions) =
                (publisher.clone(), sessions.clone(), bus.partitions);
            move |live: Live| {
                let (publisher, sessions) = (publisher.clone(), sessions.clone());
                async move { set_up(live, partitions, &publisher, &sessions).await }
            }
        };
        let name = format!("edge-gateway {gateway_id}");
        let link = Link::connect(url, &name, setup).await?;
        let live = link.live().ok_or_else(disconnected)?;
        let control = live.conn.create_channel().await?;
        let consumers = Arc::new(consumers::Registry::new(
            link.clone(),
            sessions.clone(),
            gateway_id,
            bus,
        ));
        consumers::install(consumers.clone());
        Ok(Self {
            link,
            publisher,
            control: Mutex::new(control),
            sessions,
            consumers,
            partitions: bus.partitions,
            session_expires_secs: bus.session_queue_expires_secs,
            session_max_len: bus.session_queue_max_len,
        })
    }

    /// The current publishing channel (of the current connection).
    fn publisher(&self) -> Result<Arc<Channel>, BusError> {
        self.publisher.get().ok_or_else(disconnected)
    }

    /// Keeps `ready` (the `amqp` readiness check) true exactly while the
    /// connection is up.
    pub fn report_to(&self, ready: Arc<AtomicBool>) {
        self.link.report_to(ready);
    }

    /// Declares `gateway.<id>` and starts consuming it with manual acks
    /// (on a channel of its own; carried over to new connections by
    /// [`next_delivery`]).
    pub async fn consume_gateway_queue(&self) -> Result<Consumer, BusError> {
        let live = self.link.live().ok_or_else(disconnected)?;
        self.consumers.open_gateway(&live).await
    }

    /// Publishes an intent to its room's partition, persistent. Await the
    /// returned confirm (with [`confirmed`]) before treating it as sent.
    pub async fn publish_intent(&self, intent: Intent) -> Result<PublisherConfirm, BusError> {
        let key = partition_of(&fold(intent.body.room()), self.partitions).to_string();
        let msg = BusMessage::Intent(intent);
        topology::publish(
            &*self.publisher()?,
            topology::INTENTS_EXCHANGE,
            &key,
            &msg,
            false,
        )
        .await
    }

    /// Publishes a direct delivery to `session.<sid>`, mandatory: if no such
    /// queue exists (or it is full) the confirm says so.
    pub async fn publish_direct(
        &self,
        sid: &str,
        direct: Direct,
    ) -> Result<PublisherConfirm, BusError> {
        let msg = BusMessage::Direct(direct);
        let key = topology::session_key(sid);
        topology::publish(
            &*self.publisher()?,
            topology::DIRECT_EXCHANGE,
            &key,
            &msg,
            true,
        )
        .await
    }

    /// Publishes a delivery to every XMPP session of `account`
    /// (`account.<name>` on `chat.direct`). Not mandatory: an account with
    /// no session bound is simply not told (presence and pushes are of the
    /// moment; what must survive is stored by the auth service).
    pub async fn publish_account(
        &self,
        account: &str,
        direct: Direct,
    ) -> Result<PublisherConfirm, BusError> {
        let msg = BusMessage::Direct(direct);
        topology::publish(
            &*self.publisher()?,
            topology::DIRECT_EXCHANGE,
            &bus::roster::account_key(account),
            &msg,
            false,
        )
        .await
    }

    /// Publishes an auth request to `auth.requests`, answered into
    /// `session.<reply_sid>` (see [`BusLink::publish_request`]).
    pub async fn publish_auth(
        &self,
        reply_sid: &str,
        req: AuthRequest,
    ) -> Result<PublisherConfirm, BusError> {
        let id = req.id.clone();
        let msg = BusMessage::AuthRequest(req);
        self.publish_request(
            topology::AUTH_QUEUE,
            reply_sid,
            &id,
            &msg,
            AUTH_REQUEST_TTL_MS,
        )
        .await
    }

    /// Publishes a history query to `history.requests`, answered into
    /// `session.<reply_sid>` (see [`BusLink::publish_request`]).
    pub async fn publish_history_request(
        &self,
        reply_sid: &str,
        req: HistoryRequest,
    ) -> Result<PublisherConfirm, BusError> {
        let id = req.id.clone();
        let msg = BusMessage::HistoryRequest(req);
        self.publish_request(
            topology::HISTORY_REQUESTS_QUEUE,
            reply_sid,
            &id,
            &msg,
            HISTORY_REQUEST_TTL_MS,
        )
        .await
    }

    /// Publishes a request to a service's queue (default exchange,
    /// mandatory, expiring after `ttl_ms`), per the request contract:
    /// `reply_to` names the caller's session queue, where the answer
    /// arrives, and `correlation_id` is the request id.
    async fn publish_request(
        &self,
        queue: &str,
        reply_sid: &str,
        id: &str,
        msg: &BusMessage,
        ttl_ms: &str,
    ) -> Result<PublisherConfirm, BusError> {
        let props = topology::message_properties()
            .with_reply_to(topology::session_queue(reply_sid).as_str().into())
            .with_correlation_id(id.into())
            .with_expiration(ttl_ms.into());
        Ok(self
            .publisher()?
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &msg.to_json(),
                props,
            )
            .await?)
    }

    /// Publishes a direct message's copy for the history service to
    /// `history.direct` (default exchange, mandatory, persistent). Await the
    /// confirm before telling the sender the message was sent.
    pub async fn publish_direct_log(&self, log: DirectLog) -> Result<PublisherConfirm, BusError> {
        let msg = BusMessage::DirectLog(log);
        topology::publish(
            &*self.publisher()?,
            "",
            topology::HISTORY_DIRECT_QUEUE,
            &msg,
            true,
        )
        .await
    }

    /// The control channel, reopened first (on the current connection) if
    /// an earlier error, or the loss of its connection, closed it.
    async fn control(&self) -> Result<tokio::sync::MutexGuard<'_, Channel>, BusError> {
        let mut ch = self.control.lock().await;
        if !ch.status().connected() {
            let live = self.link.live().ok_or_else(disconnected)?;
            *ch = live.conn.create_channel().await?;
        }
        Ok(ch)
    }

    /// Declares and binds `session.<sid>`, then consumes it (manual acks).
    pub async fn open_session_queue(&self, sid: &str) -> Result<Consumer, BusError> {
        {
            let ch = self.control().await?;
            topology::declare_session_queue(
                &ch,
                sid,
                self.session_expires_secs,
                self.session_max_len,
            )
            .await?;
        }
        self.consumers.open_session(sid).await
    }

    /// Binds `session.<sid>` to `account.<name>` as well, so the session
    /// receives what is addressed to every session of its account. The
    /// binding goes with the queue.
    pub async fn bind_account(&self, sid: &str, account: &str) -> Result<(), BusError> {
        let ch = self.control().await?;
        topology::bind_session_to_account(&ch, sid, account).await
    }

    /// Stops consuming `session.<sid>` and deletes it: the session is over.
    /// A consumer whose connection was lost is gone already; while the
    /// broker is away the queue cannot be deleted (it expires by itself).
    pub async fn close_session_queue(&self, sid: &str) -> Result<(), BusError> {
        let consumed_on = self.consumers.forget(sid);
        if let Some(current) = self.sessions.get() {
            let (live, sessions) = &*current;
            if consumed_on == Some(live.epoch) && live.is_up() {
                sessions
                    .basic_cancel(sid.into(), BasicCancelOptions::default())
                    .await?;
            }
        }
        let ch = self.control().await?;
        topology::delete_session_queue(&ch, sid).await
    }

    /// Closes the connection and stops reconnecting (shutdown).
    pub async fn close(&self) {
        self.link.close().await;
    }
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker took responsibility for it.
    Confirmed,
    /// Nacked, or returned as unroutable (mandatory publishes).
    Refused,
    /// The channel or connection failed before the broker answered.
    Failed,
}

/// Awaits a publisher confirm and classifies it.
pub async fn confirmed(pending: PublisherConfirm) -> Outcome {
    match pending.await {
        Ok(c) if c.is_nack() => Outcome::Refused,
        Ok(c) => {
            if c.take_message().is_some() {
                Outcome::Refused
            } else {
                Outcome::Confirmed
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "publisher confirm failed");
            Outcome::Failed
        }
    }
}

/// The next delivery of a consumer; `None` once it ended or failed
/// (logged) for a reason other than the loss of the connection.
///
/// When the connection is lost, the gateway queue's and the session
/// queues' consumers end; this waits for the next connection and consumes
/// the same queue again there, replacing `consumer` (the client's session
/// and its socket are not disturbed). The broker then redelivers what was
/// not acknowledged: a redelivery of a message this process already handed
/// out (its ack was lost with the connection) is acknowledged and skipped,
/// so that no reply, private message or auth answer is shown twice (room
/// events are also dropped by seq in [`crate::dispatch`]).
pub async fn next_delivery(consumer: &mut Consumer) -> Option<lapin::message::Delivery> {
    let Some(registry) = consumers::installed() else {
        return bus::recovery::next_delivery(consumer, None).await;
    };
    loop {
        let tag = consumer.tag();
        match registry.step(tag.as_str()) {
            consumers::Step::Replace(next) => *consumer = next,
            consumers::Step::End => return None,
            consumers::Step::Wait(mut done) => {
                let _ = done.wait_for(|done| *done).await;
            }
            consumers::Step::Poll => match poll_or_lost(registry, tag.as_str(), consumer).await {
                Err(ConnectionLost) => {}
                Ok(None) if registry.lost(tag.as_str()).await => {}
                Ok(None) => {
                    tracing::warn!(consumer = %tag, queue = %consumer.queue(), "consumer ended");
                    return None;
                }
                Ok(Some(d)) => {
                    if registry.admit(tag.as_str(), &d) {
                        return Some(d);
                    }
                    tracing::debug!(consumer = %tag, "skipping the redelivery of a message already handled");
                    let _ = d.acker.ack_within(BasicAckOptions::default()).await;
                }
            },
        }
    }
}

/// The consumer's connection is gone (the next step resumes it).
struct ConnectionLost;

/// The consumer's next delivery, or word that its connection was lost:
/// after an I/O error (a reset rather than the broker's close) lapin may
/// leave the consumer's stream open for ever, so waiting on it alone would
/// never notice.
async fn poll_or_lost(
    registry: &consumers::Registry,
    tag: &str,
    consumer: &mut Consumer,
) -> Result<Option<lapin::message::Delivery>, ConnectionLost> {
    tokio::select! {
        d = bus::recovery::next_delivery(consumer, None) => Ok(d),
        _ = registry.until_lost(tag) => Err(ConnectionLost),
    }
}

/// Opens the shared channels on a new connection, after declaring the
/// topology. Runs on every connection, before anyone uses it.
async fn set_up(
    live: Live,
    partitions: u16,
    publisher: &Current<Channel>,
    sessions: &Current<(Live, Channel)>,
) -> Result<(), BusError> {
    let control = live.conn.create_channel().await?;
    topology::declare_core(&control, partitions).await?;
    let _ = control.close(200, "declared".into()).await;
    // Declared here too so that start order does not matter: requests
    // wait (up to their TTL) for an auth service that is starting. On
    // a channel of its own and not fatal: accounts are optional, chat
    // without them must still start.
    let auth_ch = live.conn.create_channel().await?;
    match topology::declare_auth_queue(&auth_ch).await {
        Ok(()) => {
            let _ = auth_ch.close(200, "declared".into()).await;
        }
        Err(e) => tracing::warn!(error = %e, "declaring the auth request queue failed"),
    }
    // The history queues likewise: declared so that direct-message logs
    // and history queries are routable (mandatory publishes) before the
    // history service first starts; without them chat still works.
    let history_ch = live.conn.create_channel().await?;
    match topology::declare_history_queues(&history_ch).await {
        Ok(()) => {
            let _ = history_ch.close(200, "declared".into()).await;
        }
        Err(e) => tracing::warn!(error = %e, "declaring the history queues failed"),
    }
    let new_publisher = topology::confirm_channel(&live.conn).await?;
    let new_sessions = live.conn.create_channel().await?;
    new_sessions
        .basic_qos(SESSION_PREFETCH, BasicQosOptions { global: false })
        .await?;
    publisher.set(new_publisher);
    sessions.set((live, new_sessions));
    Ok(())
}

/// The error of an operation attempted while the connection is down.
fn disconnected() -> BusError {
    BusError::Amqp(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into())
}

/// The consumers [`next_delivery`] carries over to new connections: the
/// gateway queue's and every open session queue's, by consumer tag, each
/// with the connection it consumes on and a [`RedeliveryFilter`]. Process
/// state (installed once) because [`next_delivery`] is handed only the
/// consumer.
///
/// Resuming a consumer runs in a task of its own, not in the caller's
/// future: a session's loop drops and recreates its [`next_delivery`]
/// future whenever anything else happens on the connection, and a
/// `basic.consume` cut off half-way would leave a consumer registered that
/// nobody reads, whose tag the next attempt could not reuse.
///
/// [`RedeliveryFilter`]: bus::recovery::RedeliveryFilter
mod consumers {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use bus::config::BusConfig;
    use bus::recovery::{Current, Link, Live, RedeliveryFilter};
    use bus::topology::{self, BusError};
    use lapin::message::Delivery;
    use lapin::options::{BasicConsumeOptions, BasicQosOptions};
    use lapin::types::FieldTable;
    use lapin::{Channel, Consumer};
    use tokio::sync::watch;

    use super::{GATEWAY_PREFETCH, SESSION_PREFETCH};

    static INSTALLED: OnceLock<Arc<Registry>> = OnceLock::new();

    /// Makes `registry` the one [`super::next_delivery`] uses (the first
    /// one wins: there is one bus link per process).
    pub fn install(registry: Arc<Registry>) {
        let _ = INSTALLED.set(registry);
    }

    pub fn installed() -> Option<&'static Arc<Registry>> {
        INSTALLED.get()
    }

    #[derive(Clone)]
    enum Queue {
        Gateway,
        Session(String),
    }

    /// Where a consumer's move to a new connection stands.
    enum Resume {
        /// Not moving: the consumer is on a live connection, or its loss
        /// was not noticed yet.
        Idle,
        /// A task is at it; the flag turns true when it is done.
        Running(watch::Receiver<bool>),
        /// The consumer on the new connection, for the caller to take.
        Ready(Consumer),
        /// It could not be resumed (logged): the consumer has ended.
        Failed,
    }

    struct Tracked {
        queue: Queue,
        /// The connection the current consumer was opened on.
        live: Live,
        filter: RedeliveryFilter,
        resume: Resume,
    }

    /// What [`super::next_delivery`] does next for a consumer.
    pub enum Step {
        /// Read the consumer.
        Poll,
        /// Wait until the resuming task is done, then look again.
        Wait(watch::Receiver<bool>),
        /// Use this consumer from now on.
        Replace(Consumer),
        /// The consumer has ended for good.
        End,
    }

    pub struct Registry {
        link: Link,
        sessions: Arc<Current<(Live, Channel)>>,
        gateway_id: String,
        gateway_expires_secs: u64,
        session_expires_secs: u64,
        session_max_len: u32,
        tracked: Mutex<HashMap<String, Tracked>>,
    }

    impl Registry {
        pub fn new(
            link: Link,
            sessions: Arc<Current<(Live, Channel)>>,
            gateway_id: &str,
            bus: &BusConfig,
        ) -> Self {
            Self {
                link,
                sessions,
                gateway_id: gateway_id.to_string(),
                gateway_expires_secs: bus.gateway_queue_expires_secs,
                session_expires_secs: bus.session_queue_expires_secs,
                session_max_len: bus.session_queue_max_len,
                tracked: Mutex::new(HashMap::new()),
            }
        }

        fn tracked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
            self.tracked.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Consumes the gateway queue on `live` (declaring it) and tracks it.
        pub async fn open_gateway(&self, live: &Live) -> Result<Consumer, BusError> {
            let tag = format!("dispatch-{}", self.gateway_id);
            let consumer = self.consume_gateway(live, &tag).await?;
            let capacity = 2 * usize::from(GATEWAY_PREFETCH);
            self.track(&tag, Queue::Gateway, live, capacity);
            Ok(consumer)
        }

        async fn consume_gateway(&self, live: &Live, tag: &str) -> Result<Consumer, BusError> {
            let ch = live.conn.create_channel().await?;
            ch.basic_qos(GATEWAY_PREFETCH, BasicQosOptions { global: false })
                .await?;
            let queue =
                topology::declare_gateway_queue(&ch, &self.gateway_id, self.gateway_expires_secs)
                    .await?;
            Ok(ch
                .basic_consume(
                    queue.as_str().into(),
                    tag.into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?)
        }

        /// Consumes `session.<sid>` (already declared) on the current
        /// sessions channel and tracks it.
        pub async fn open_session(&self, sid: &str) -> Result<Consumer, BusError> {
            let current = self.sessions.get().ok_or_else(super::disconnected)?;
            let (live, sessions) = &*current;
            let consumer = consume_session(sessions, sid).await?;
            let capacity = 2 * usize::from(SESSION_PREFETCH);
            self.track(sid, Queue::Session(sid.to_string()), live, capacity);
            Ok(consumer)
        }

        fn track(&self, tag: &str, queue: Queue, live: &Live, capacity: usize) {
            let mut tracked = self.tracked();
            match tracked.get_mut(tag) {
                // Opened again (a session queue reopened): keep its memory.
                Some(t) => {
                    t.queue = queue;
                    t.live = live.clone();
                    t.resume = Resume::Idle;
                }
                None => {
                    tracked.insert(
                        tag.to_string(),
                        Tracked {
                            queue,
                            live: live.clone(),
                            filter: RedeliveryFilter::new(capacity),
                            resume: Resume::Idle,
                        },
                    );
                }
            }
        }

        /// Stops tracking a session's consumer; returns the epoch of the
        /// connection it was consuming on.
        pub fn forget(&self, tag: &str) -> Option<u64> {
            self.tracked().remove(tag).map(|t| t.live.epoch)
        }

        /// Whether to hand `d` out (untracked consumers: always).
        pub fn admit(&self, tag: &str, d: &Delivery) -> bool {
            self.tracked()
                .get_mut(tag)
                .is_none_or(|t| t.filter.admit(&d.data, d.redelivered))
        }

        /// Resolves once the connection of consumer `tag` is lost (never
        /// for an untracked one).
        pub async fn until_lost(&self, tag: &str) {
            let live = self.tracked().get(tag).map(|t| t.live.clone());
            match live {
                Some(live) => self.link.until_lost(&live).await,
                None => std::future::pending().await,
            }
        }

        /// Whether the consumer `tag`, which just ended, ended because its
        /// connection was lost.
        pub async fn lost(&self, tag: &str) -> bool {
            let Some(live) = self.tracked().get(tag).map(|t| t.live.clone()) else {
                return false;
            };
            self.link.failed_with_connection(&live).await
        }

        /// The next thing to do for the consumer `tag`; starts moving it to
        /// the next connection once its own is gone.
        pub fn step(&'static self, tag: &str) -> Step {
            let mut tracked = self.tracked();
            let Some(t) = tracked.get_mut(tag) else {
                return Step::Poll;
            };
            match std::mem::replace(&mut t.resume, Resume::Idle) {
                Resume::Ready(consumer) => Step::Replace(consumer),
                Resume::Failed => {
                    t.resume = Resume::Failed;
                    Step::End
                }
                // The task died without saying (a panic): give up on it.
                Resume::Running(done) if done.has_changed().is_err() && !*done.borrow() => {
                    t.resume = Resume::Failed;
                    Step::End
                }
                Resume::Running(done) => {
                    t.resume = Resume::Running(done.clone());
                    Step::Wait(done)
                }
                Resume::Idle if !self.link.lost(&t.live) => Step::Poll,
                Resume::Idle => {
                    let (tx, rx) = watch::channel(false);
                    t.resume = Resume::Running(rx.clone());
                    // One line per session would flood the log: the link
                    // logs the loss, the gateway queue stands for the rest.
                    if matches!(t.queue, Queue::Gateway) {
                        tracing::info!(consumer = %tag, "the consumer will resume on the next connection");
                    } else {
                        tracing::debug!(consumer = %tag, "the consumer will resume on the next connection");
                    }
                    let (tag, queue, live) = (tag.to_string(), t.queue.clone(), t.live.clone());
                    tokio::spawn(async move {
                        let outcome = self.resume(&tag, queue, live).await;
                        self.resumed(&tag, outcome);
                        tx.send_replace(true);
                    });
                    Step::Wait(rx)
                }
            }
        }

        fn resumed(&self, tag: &str, outcome: Option<(Consumer, Live)>) {
            let mut tracked = self.tracked();
            // Forgotten meanwhile (the session ended): a resumed consumer is
            // dropped, which cancels it.
            let Some(t) = tracked.get_mut(tag) else {
                return;
            };
            t.resume = match outcome {
                Some((consumer, live)) => {
                    if matches!(t.queue, Queue::Gateway) {
                        tracing::info!(consumer = %tag, epoch = live.epoch, "consumer resumed");
                    } else {
                        tracing::debug!(consumer = %tag, epoch = live.epoch, "consumer resumed");
                    }
                    t.live = live;
                    Resume::Ready(consumer)
                }
                None => Resume::Failed,
            };
        }

        /// A consumer of `queue` on the first connection after `live`
        /// (waiting for the broker for as long as it takes). `None` if it
        /// failed for another reason than the connection (logged), the
        /// consumer is not tracked any more, or the link closed.
        async fn resume(
            &self,
            tag: &str,
            queue: Queue,
            mut live: Live,
        ) -> Option<(Consumer, Live)> {
            loop {
                let next = self.link.up_after(live.epoch, None).await?;
                if !self.tracked().contains_key(tag) {
                    return None;
                }
                let result = match &queue {
                    Queue::Gateway => self
                        .consume_gateway(&next, tag)
                        .await
                        .map(|c| (c, next.clone())),
                    Queue::Session(sid) => self.reopen_session(sid).await,
                };
                match result {
                    Ok(resumed) => return Some(resumed),
                    Err(error) if self.link.failed_with_connection(&next).await => {
                        tracing::debug!(consumer = %tag, %error, "connection lost again while resuming");
                        live = next;
                    }
                    Err(error) => {
                        tracing::warn!(consumer = %tag, %error, "resuming the consumer failed");
                        return None;
                    }
                }
            }
        }

        /// Declares `session.<sid>` again (it is durable, but the broker may
        /// have lost it) and consumes it on the current sessions channel.
        async fn reopen_session(&self, sid: &str) -> Result<(Consumer, Live), BusError> {
            let current = self.sessions.get().ok_or_else(super::disconnected)?;
            let (live, sessions) = &*current;
            let ch = live.conn.create_channel().await?;
            topology::declare_session_queue(
                &ch,
                sid,
                self.session_expires_secs,
                self.session_max_len,
            )
            .await?;
            let _ = ch.close(200, "declared".into()).await;
            Ok((consume_session(sessions, sid).await?, live.clone()))
        }
    }

    async fn consume_session(sessions: &Channel, sid: &str) -> Result<Consumer, BusError> {
        Ok(sessions
            .basic_consume(
                topology::session_queue(sid).as_str().into(),
                sid.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }
}
