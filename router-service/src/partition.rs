//! One partition: its consumer, its batch loop and its ownership.
//!
//! Each partition queue has one active consumer cluster-wide (single active
//! consumer), so the loop here is the only writer of its rooms. A batch is:
//! take what is available (up to `batch_max`), make sure the in-memory rooms
//! are current (ownership), apply intents in order while publishing what
//! they produce (binding before a JOIN that needs it), wait for every
//! publisher confirm, unbind gateways that left, write the touched room
//! records, and only then ack the batch. A crash anywhere before the ack
//! leaves the intents queued for a replay (see `docs/architecture.md`).
//!
//! A broker restart is ridden out: when the connection is lost (a consumer,
//! publish, confirm or ack fails and the [`Link`] says the connection is
//! gone), whatever the batch in progress did may be half applied (some
//! events published, some records written), so the partition forgets its
//! in-memory rooms, subscribes again on the next connection and reloads the
//! rooms from the records before its next batch, as a takeover does. The
//! broker redelivers the unacknowledged intents, which are replayed
//! idempotently (same seqs, same ids; skipped if their room's record lists
//! them as applied).
//!
//! Registered rooms (ChanServ) are loaded from PostgreSQL with the records
//! at takeover; if the database cannot be read then, the partition serves
//! on (ChanServ answers that it is unavailable) and tries again before
//! later batches, at most every [`REGISTRY_RETRY`]. Their changes are
//! handed to the [`Writer`] at the end of each batch, after the records.

use bus::settle::Settle;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::names::room_routing_key;
use bus::recovery::{Link, Live};
use bus::schema::{BusMessage, Intent, Reply, RoomRecord, SessionReply, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::{
    gateway_queue, intent_queue, publish, session_key, BusError, DIRECT_EXCHANGE, INTENTS_EXCHANGE,
    ROOMS_EXCHANGE,
};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Consumer, PublisherConfirm};
use tokio::sync::mpsc;

use crate::bindings::{BindError, Binder};
use crate::handlers::{self, Effect};
use crate::pgstore::PgStore;
use crate::registered::Durable;
use crate::rooms::{Rooms, Step, Write};
use crate::store::{Store, StoreError};
use crate::writeback::Writer;

/// A member who joined less than this before the live-session listing
/// started is never expired by it (it may not have been listed yet).
const JOIN_GRACE_MS: i64 = 2000;

/// How long an expiry intent is trusted to be on its way before a later
/// sweep may publish it again.
const EXPIRY_RETRY: Duration = Duration::from_secs(60);

/// How long loading the registered rooms may take, and how long a
/// partition waits before trying again after a failure.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);
const REGISTRY_RETRY: Duration = Duration::from_secs(2);

/// The PostgreSQL side of a partition: where registered rooms are read
/// from, and where their changes go.
#[derive(Clone)]
pub struct Durables {
    pub store: PgStore,
    pub writer: Writer,
}

/// Settings every partition task shares.
#[derive(Debug)]
pub struct Settings {
    /// This process's instance id (router id + per-start suffix): the value
    /// of `owner.<p>` while it owns a partition.
    pub instance: String,
    pub partitions: u16,
    pub batch_max: u16,
    pub quit_reason_expired: String,
}

/// One round of the sweeper: the sids alive when the listing `started`.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub live: Arc<HashSet<String>>,
    pub started: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the broker refused (nacked) a publish; the batch is not acknowledged")]
    Nacked,
    #[error("the broker cancelled the consumer")]
    ConsumerEnded,
    /// The batch's ack was not sent: its channel is gone.
    #[error("the channel closed before the batch was acknowledged")]
    Unacknowledged,
}

pub struct Partition {
    partition: u16,
    settings: Arc<Settings>,
    rooms: Rooms,
    link: Link,
    /// The connection the channel and consumer belong to.
    live: Live,
    channel: Channel,
    binder: Binder,
    store: Store,
    durables: Durables,
    /// When the registered rooms may be read again after a failure.
    registry_retry: Option<Instant>,
    /// Reload the rooms before the next batch whatever the owner key says
    /// (first batch after subscribing).
    fresh: bool,
    /// Has processed a batch since subscribing and owns the partition: the
    /// active consumer. Only then may it sweep.
    active: bool,
    /// Expiry intents published recently, by (room, sid).
    expiring: HashMap<(String, String), Instant>,
    rooms_reported: usize,
}

impl Partition {
    /// Opens the partition's channel on `live` (publisher confirms,
    /// prefetch) and subscribes to its queue.
    pub async fn subscribe(
        link: &Link,
        live: Live,
        partition: u16,
        settings: Arc<Settings>,
        store: Store,
        durables: Durables,
    ) -> Result<(Self, Consumer), PartitionError> {
        let (channel, consumer) = open(&live, partition, &settings).await?;
        let rooms = Rooms::new(partition, settings.partitions);
        let partition = Self {
            partition,
            settings,
            rooms,
            link: link.clone(),
            live,
            channel,
            binder: Binder::new(link.clone()),
            store,
            durables,
            registry_retry: None,
            fresh: true,
            active: false,
            expiring: HashMap::new(),
            rooms_reported: 0,
        };
        Ok((partition, consumer))
    }

    /// After the connection was lost: waits for the next one, subscribes
    /// on it, and makes the next batch reload the rooms. `None` on
    /// shutdown.
    async fn resubscribe(
        &mut self,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Consumer>, PartitionError> {
        self.fresh = true;
        // A standby may become the active consumer meanwhile: sweep again
        // only after a batch proves this one is active.
        self.active = false;
        let (partition, settings) = (self.partition, &self.settings);
        let opened = self
            .link
            .reopen(&mut self.live, shutdown, |live| async move {
                open(&live, partition, settings).await
            })
            .await?;
        let Some((channel, consumer)) = opened else {
            return Ok(None);
        };
        tracing::info!(
            partition = self.partition,
            epoch = self.live.epoch,
            "partition subscribed again"
        );
        self.channel = channel;
        Ok(Some(consumer))
    }

    /// The loop: batches and sweeps until shutdown, then stops consuming.
    /// When the connection is lost it subscribes again on the next one
    /// (see the module documentation). Returns an error (and leaves the
    /// batch unacknowledged) on anything else that could lose or duplicate
    /// state; the process then exits.
    pub async fn run(
        mut self,
        mut consumer: Consumer,
        mut sweeps: mpsc::Receiver<Sweep>,
        mut shutdown: Shutdown,
    ) -> Result<(), PartitionError> {
        let result = loop {
            let result = self
                .serve(&mut consumer, &mut sweeps, shutdown.clone())
                .await;
            match result {
                Err(error) if self.link.failed_with_connection(&self.live).await => {
                    // The link warns about the loss once; this is per partition.
                    tracing::info!(
                        partition = self.partition,
                        %error,
                        "AMQP connection lost; the partition will subscribe again and reload its rooms"
                    );
                    metrics::counter!("router_connection_losses_total").increment(1);
                    match self.resubscribe(&mut shutdown).await {
                        Ok(Some(next)) => consumer = next,
                        Ok(None) => break Ok(()),
                        Err(error) => break Err(error),
                    }
                }
                other => break other,
            }
        };
        // Stop consuming by closing the channel, never with basic.cancel
        // (which dropping a lapin consumer sends, hence the drop after the
        // close). The close makes the broker drop the consumer and requeue
        // the unacknowledged deliveries in one step, so the standby router
        // receives them first and in order. After a separate cancel the
        // standby would become active at once and could get newer intents
        // ahead of the older ones this channel still holds, and replaying a
        // failed batch out of order would give its seqs to other events.
        let closed = bus::recovery::close_channel(&self.channel).await;
        drop(consumer);
        self.binder.close().await;
        result?;
        closed?;
        tracing::debug!(partition = self.partition, "stopped consuming");
        Ok(())
    }

    async fn serve(
        &mut self,
        consumer: &mut Consumer,
        sweeps: &mut mpsc::Receiver<Sweep>,
        mut shutdown: Shutdown,
    ) -> Result<(), PartitionError> {
        let max = usize::from(self.settings.batch_max.max(1));
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                next = consumer.next() => {
                    let Some(first) = next else { return Err(PartitionError::ConsumerEnded) };
                    let mut deliveries = vec![first?];
                    while deliveries.len() < max {
                        match consumer.next().now_or_never() {
                            Some(Some(delivery)) => deliveries.push(delivery?),
                            _ => break,
                        }
                    }
                    self.batch(deliveries).await?;
                }
                Some(sweep) = sweeps.recv() => self.sweep(sweep).await?,
            }
        }
    }

    async fn batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), PartitionError> {
        let started = Instant::now();
        metrics::histogram!("router_batch_size").record(deliveries.len() as f64);
        self.take_ownership().await?;
        if !self.rooms.registry_loaded()
            && self.registry_retry.is_none_or(|at| Instant::now() >= at)
        {
            self.load_registry().await;
        }
        let mut confirms = Vec::new();
        let mut last_intent: Option<Acker> = None;
        for delivery in deliveries {
            match BusMessage::from_json(&delivery.data) {
                Ok(BusMessage::Intent(intent)) => {
                    self.intent(&intent, &mut confirms).await?;
                    last_intent = Some(delivery.acker);
                }
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok(_) => "not an intent".to_string(),
                    };
                    tracing::warn!(partition = self.partition, error = %why, "rejecting a delivery");
                    delivery
                        .acker
                        .reject_within(BasicRejectOptions { requeue: false })
                        .await?;
                }
            }
        }
        self.finish(confirms).await?;
        if let Some(acker) = last_intent {
            // One ack for everything up to here (rejected ones are already
            // settled). `false`: the channel is gone and the ack was not
            // sent; the broker will deliver the batch again.
            if !acker.ack_within(BasicAckOptions { multiple: true }).await? {
                return Err(PartitionError::Unacknowledged);
            }
        }
        self.active = true;
        metrics::histogram!("router_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Makes sure the in-memory rooms are the latest: if another instance
    /// owned the partition since (or this is the first batch), reload them
    /// from the rooms bucket and claim the partition.
    async fn take_ownership(&mut self) -> Result<(), PartitionError> {
        let owner = self.store.owner(self.partition).await?;
        if !self.fresh && owner.as_deref() == Some(self.settings.instance.as_str()) {
            return Ok(());
        }
        let records = self
            .store
            .load_partition(self.partition, self.settings.partitions)
            .await?;
        tracing::info!(
            partition = self.partition,
            rooms = records.records.len() - records.husks(),
            husks = records.husks(),
            unreadable = records.unreadable.len(),
            previous = owner.as_deref().unwrap_or("-"),
            "taking over partition"
        );
        self.rooms.load(records);
        self.load_registry().await;
        self.expiring.clear();
        self.store
            .set_owner(self.partition, &self.settings.instance)
            .await?;
        self.fresh = false;
        self.report_rooms();
        Ok(())
    }

    /// Reads the registered rooms of the partition from PostgreSQL. A
    /// failure is logged and counted, and tried again later: the partition
    /// never waits for the database beyond [`REGISTRY_TIMEOUT`].
    async fn load_registry(&mut self) {
        let loaded = tokio::time::timeout(REGISTRY_TIMEOUT, self.durables.store.load()).await;
        let error = match loaded {
            Ok(Ok(all)) => {
                let mine: Vec<Durable> = all
                    .into_iter()
                    .filter(|d| self.rooms.owns(&d.room))
                    .collect();
                tracing::info!(
                    partition = self.partition,
                    registered = mine.len(),
                    "registered rooms loaded"
                );
                self.rooms.load_registry(mine);
                self.registry_retry = None;
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REGISTRY_TIMEOUT:?}"),
        };
        metrics::counter!("router_pg_failures_total", "op" => "load").increment(1);
        tracing::warn!(
            partition = self.partition,
            %error,
            retry_in = ?REGISTRY_RETRY,
            "cannot read the registered rooms from PostgreSQL; ChanServ is unavailable in this partition meanwhile"
        );
        self.registry_retry = Some(Instant::now() + REGISTRY_RETRY);
    }

    /// Applies one intent and carries out its effects in order.
    async fn intent(
        &mut self,
        intent: &Intent,
        confirms: &mut Vec<PublisherConfirm>,
    ) -> Result<(), PartitionError> {
        metrics::counter!("router_intents_total", "op" => handlers::op_name(&intent.body))
            .increment(1);
        let (room, outcome, mut snapshot) = match self.rooms.apply(intent, bus::now_ms()) {
            Step::Applied {
                room,
                outcome,
                snapshot,
            } => (room, outcome, snapshot),
            Step::Skipped => {
                tracing::debug!(partition = self.partition, id = %intent.id, "intent already applied, skipped");
                // A redelivery after a crash: the first Done may never
                // have been sent.
                return self.done(intent, confirms).await;
            }
            Step::Misrouted => {
                tracing::warn!(
                    partition = self.partition,
                    room = %intent.body.room(),
                    "intent for a room of another partition (bus.partitions mismatch?), dropped"
                );
                return Ok(());
            }
        };
        if let Some(reason) = outcome.dropped {
            let op = handlers::op_name(&intent.body);
            metrics::counter!("router_intents_dropped_total", "op" => op, "reason" => reason)
                .increment(1);
            tracing::info!(partition = self.partition, %room, op, reason, id = %intent.id, "intent dropped");
        }
        for effect in outcome.effects {
            match effect {
                Effect::Bind { gateway } => match self.binder.bind(&gateway, &room).await {
                    Ok(()) => {}
                    Err(BindError::QueueGone(queue)) => {
                        tracing::info!(%room, %queue, "joiner's gateway queue is gone, join dropped");
                        match snapshot.take() {
                            Some(before) => self.rooms.undo(&room, &intent.id, *before),
                            None => tracing::error!(%room, "no snapshot to undo a failed bind"),
                        }
                        break;
                    }
                    Err(e) => return Err(e.into()),
                },
                Effect::Event(mut event) => {
                    if event.id == intent.id {
                        event.intent_at = Some(intent.at);
                    }
                    let key = room_routing_key(&event.room);
                    let msg = BusMessage::Event(event);
                    confirms.push(publish(&self.channel, ROOMS_EXCHANGE, &key, &msg, false).await?);
                    metrics::counter!("router_events_total").increment(1);
                }
                Effect::Reply { gateway, reply } => {
                    let msg = BusMessage::Reply(reply);
                    confirms.push(
                        publish(&self.channel, "", &gateway_queue(&gateway), &msg, false).await?,
                    );
                }
                Effect::Direct { sid, direct } => {
                    let msg = BusMessage::Direct(direct);
                    confirms.push(
                        publish(
                            &self.channel,
                            DIRECT_EXCHANGE,
                            &session_key(&sid),
                            &msg,
                            false,
                        )
                        .await?,
                    );
                }
            }
        }
        self.done(intent, confirms).await
    }

    /// Tells the sender's gateway that everything `intent` caused has been
    /// published, if it asked ([`Intent::done`]). Published on the same
    /// channel as the events and replies, so it reaches the gateway queue
    /// after them.
    async fn done(
        &self,
        intent: &Intent,
        confirms: &mut Vec<PublisherConfirm>,
    ) -> Result<(), PartitionError> {
        if !intent.done {
            return Ok(());
        }
        let msg = BusMessage::Reply(SessionReply {
            v: SCHEMA_VERSION,
            sid: intent.actor.sid.clone(),
            intent: intent.id.clone(),
            body: Reply::Done,
        });
        let queue = gateway_queue(&intent.actor.gateway);
        confirms.push(publish(&self.channel, "", &queue, &msg, false).await?);
        Ok(())
    }

    /// The end of a batch: confirms, unbinds, record writes (a room that
    /// emptied is written as its husk, never deleted).
    async fn finish(&mut self, confirms: Vec<PublisherConfirm>) -> Result<(), PartitionError> {
        await_confirms(confirms).await?;
        let log = self.rooms.take_log();
        for (room, gateway) in self.rooms.unbinds(&log) {
            // A failed unbind only leaves extra traffic that the gateway drops.
            if let Err(error) = self.binder.unbind(&gateway, &room).await {
                tracing::warn!(%room, %gateway, %error, "unbind failed");
            }
        }
        let puts: Vec<(RoomRecord, u64)> = self
            .rooms
            .writes(&log)
            .into_iter()
            .map(|Write { record, revision }| (*record, revision))
            .collect();
        let revisions = self.store.put_rooms(&puts).await?;
        for ((record, _), revision) in puts.iter().zip(revisions) {
            self.rooms.mark_stored(record, revision);
        }
        // The live state is stored: now the durable copy (not awaited).
        for change in log.persists() {
            self.durables.writer.send(change);
        }
        self.report_rooms();
        Ok(())
    }

    /// Expires the members of dead sessions, by queueing a QUIT intent for
    /// each into this partition's own queue (see [`handlers::expiry_intent`]).
    /// Only the active consumer does it, and only while it still owns the
    /// partition: a standby router's rooms may be stale.
    async fn sweep(&mut self, sweep: Sweep) -> Result<(), PartitionError> {
        if !self.active {
            return Ok(());
        }
        match self.store.owner(self.partition).await {
            Ok(owner) if owner.as_deref() == Some(self.settings.instance.as_str()) => {}
            Ok(owner) => {
                tracing::warn!(
                    partition = self.partition,
                    ?owner,
                    "partition owned elsewhere, not sweeping"
                );
                self.active = false;
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(partition = self.partition, %error, "cannot check ownership, sweep skipped");
                return Ok(());
            }
        }
        let now = bus::now_ms();
        self.expiring.retain(|_, at| at.elapsed() < EXPIRY_RETRY);
        let mut confirms = Vec::new();
        let key = self.partition.to_string();
        for (room, actor) in self
            .rooms
            .expired(&sweep.live, sweep.started - JOIN_GRACE_MS)
        {
            let pending = (room.clone(), actor.sid.clone());
            if self.expiring.contains_key(&pending) {
                continue;
            }
            tracing::info!(%room, sid = %actor.sid, nick = %actor.nick, "session expired, member quits");
            let intent =
                handlers::expiry_intent(&room, actor, &self.settings.quit_reason_expired, now);
            let msg = BusMessage::Intent(intent);
            confirms.push(publish(&self.channel, INTENTS_EXCHANGE, &key, &msg, false).await?);
            self.expiring.insert(pending, Instant::now());
        }
        let count = confirms.len();
        await_confirms(confirms).await?;
        metrics::counter!("router_sweep_quits_total").increment(count as u64);
        Ok(())
    }

    /// Keeps the `router_rooms` gauge (summed over partitions) current.
    fn report_rooms(&mut self) {
        let now = self.rooms.len();
        let before = std::mem::replace(&mut self.rooms_reported, now);
        if now >= before {
            metrics::gauge!("router_rooms").increment((now - before) as f64);
        } else {
            metrics::gauge!("router_rooms").decrement((before - now) as f64);
        }
    }
}

/// Waits for every publisher confirm; any nack fails the batch.
async fn await_confirms(confirms: Vec<PublisherConfirm>) -> Result<(), PartitionError> {
    for confirm in confirms {
        if confirm.await?.is_nack() {
            return Err(PartitionError::Nacked);
        }
    }
    Ok(())
}

/// Opens a partition's channel on `live` (publisher confirms, prefetch)
/// and subscribes to its queue.
async fn open(
    live: &Live,
    partition: u16,
    settings: &Settings,
) -> Result<(Channel, Consumer), PartitionError> {
    let channel = bus::topology::confirm_channel(&live.conn).await?;
    channel
        .basic_qos(settings.batch_max, BasicQosOptions::default())
        .await?;
    let tag = format!("{}.{partition}", settings.instance);
    let consumer = channel
        .basic_consume(
            intent_queue(partition).as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}
