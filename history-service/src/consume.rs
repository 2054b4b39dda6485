//! The two stored queues: `history.events` (every room event; replicas
//! compete) and `history.direct` (direct messages; single active consumer,
//! because their seqs are allocated in consumption order).
//!
//! A batch is up to `batch_max` deliveries, or what arrived within
//! `batch_wait` of the first. It is written in one transaction; only after
//! the commit is it acknowledged, with one `multiple` ack of its last
//! delivery. A delivery that cannot be decoded (or has an unknown schema
//! version) is rejected without requeue at once; a database error nacks the
//! batch with requeue after a backoff that grows while the errors last,
//! and marks PostgreSQL not ready.
//!
//! A broker restart is ridden out: when the consumer, an ack or a nack
//! fails and the [`Link`] says the connection is gone, the consumption
//! subscribes again on the next connection. Nothing needs to be carried
//! over: a batch in hand was not acknowledged, so it is simply dropped and
//! the broker delivers it again; a batch committed whose ack did not go
//! out is delivered again too, and its rewrite inserts nothing (rows are
//! keyed by `(conversation, seq)` and `(conversation, msgid)`).

use bus::settle::Settle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bus::history::DirectLog;
use bus::recovery::{Link, Live};
use bus::schema::{BusMessage, RoomEvent};
use bus::shutdown::Shutdown;
use bus::topology::{HISTORY_DIRECT_QUEUE, HISTORY_EVENTS_QUEUE};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Consumer};
use tokio::time::Instant;

use crate::items::{direct_key, direct_row};
use crate::metrics::{self, Source};
use crate::store::write::{self, DirectWrite};
use crate::store::{Store, StoreError};

/// The longest pause between retries of a batch while PostgreSQL fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub prefetch: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer of {0} (channel or connection closed)")]
    Ended(&'static str),
    /// An ack or nack was not sent because its channel is gone; the broker
    /// delivers the batch again.
    #[error("the channel of {0} closed before the batch was settled")]
    Unsettled(&'static str),
}

/// The decoded deliveries of a batch.
enum Decoded {
    Events(Vec<RoomEvent>),
    Direct(Vec<DirectLog>),
}

impl Decoded {
    fn ats(&self) -> Vec<i64> {
        match self {
            Decoded::Events(v) => v.iter().map(|e| e.at).collect(),
            Decoded::Direct(v) => v.iter().map(|d| d.at).collect(),
        }
    }
}

/// Where committed direct messages are announced with their numbers (see
/// [`bus::history::DirectNumbered`]).
#[derive(Clone)]
pub struct Signals {
    pub nats: async_nats::Client,
    pub prefix: String,
}

impl Signals {
    /// Tells both participants of each message its number. Best effort: a
    /// signal that does not go out leaves a live message unnumbered (its
    /// gateway gives up waiting), never unstored.
    async fn numbered(&self, messages: &[write::Numbered]) {
        for m in messages {
            let signal = bus::history::DirectNumbered {
                v: bus::schema::SCHEMA_VERSION,
                id: m.id.clone(),
                seq: u64::try_from(m.seq).unwrap_or(0),
            };
            let Ok(payload) = serde_json::to_vec(&signal) else {
                continue;
            };
            for peer in &m.peers {
                let subject = bus::history::numbered_subject(&self.prefix, peer);
                if let Err(e) = self.nats.publish(subject, payload.clone().into()).await {
                    tracing::debug!(error = %e, "publishing a numbered signal failed");
                }
            }
        }
    }
}

pub struct Consumption {
    source: Source,
    store: Store,
    settings: Settings,
    pg_ready: Arc<AtomicBool>,
    signals: Option<Signals>,
    /// Consecutive failed writes (for the backoff).
    failures: u32,
}

impl Consumption {
    pub fn new(
        source: Source,
        store: Store,
        settings: Settings,
        pg_ready: Arc<AtomicBool>,
        signals: Option<Signals>,
    ) -> Self {
        Self {
            source,
            store,
            settings,
            pg_ready,
            signals,
            failures: 0,
        }
    }

    fn queue(&self) -> &'static str {
        match self.source {
            Source::Events => HISTORY_EVENTS_QUEUE,
            Source::Direct => HISTORY_DIRECT_QUEUE,
        }
    }

    /// The prefetch: enough for a whole batch.
    fn prefetch(&self) -> u16 {
        self.settings
            .prefetch
            .max(u16::try_from(self.settings.batch_max).unwrap_or(u16::MAX))
    }

    /// Consumes until `shutdown` (then finishes the batch in hand and closes
    /// the channel, which returns whatever is unacknowledged to the queue).
    /// When the connection is lost it subscribes again on the next one (see
    /// the module documentation); any other failure of the channel ends it
    /// with an error. The queue is declared by the link's setup.
    pub async fn run(
        mut self,
        link: &Link,
        tag: &str,
        mut shutdown: Shutdown,
    ) -> Result<(), ConsumeError> {
        let mut lost_epoch = 0;
        loop {
            let Some(live) = link.up_after(lost_epoch, Some(&mut shutdown)).await else {
                // Stopping while the broker is away: this replica holds
                // nothing, the broker requeued what it had not acknowledged.
                return Ok(());
            };
            let (ch, mut consumer) = match self.subscribe(&live, tag).await {
                Ok(subscribed) => subscribed,
                // Lost again already: wait for the next connection.
                Err(_) if link.failed_with_connection(&live).await => {
                    lost_epoch = live.epoch;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let result = self.serve(&mut consumer, shutdown.clone()).await;
            if let Err(error) = &result {
                if link.failed_with_connection(&live).await {
                    // The link warns about the loss once; this is per queue.
                    tracing::info!(
                        queue = self.queue(),
                        %error,
                        "AMQP connection lost; consuming again once it is back \
                         (unacknowledged deliveries will be redelivered)"
                    );
                    metrics::resubscribed(self.source.label());
                    lost_epoch = live.epoch;
                    continue;
                }
            }
            // Close rather than cancel first (see router-service): the close
            // requeues every unacknowledged delivery in one step, in order.
            let closed = bus::recovery::close_channel(&ch).await;
            drop(consumer);
            result?;
            closed?;
            return Ok(());
        }
    }

    /// Opens the consumption's channel on `live` and subscribes.
    async fn subscribe(&self, live: &Live, tag: &str) -> Result<(Channel, Consumer), ConsumeError> {
        let ch = live.conn.create_channel().await?;
        let prefetch = self.prefetch();
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let consumer = ch
            .basic_consume(
                self.queue().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(
            queue = self.queue(),
            prefetch,
            epoch = live.epoch,
            "consuming"
        );
        Ok((ch, consumer))
    }

    async fn serve(
        &mut self,
        consumer: &mut Consumer,
        mut shutdown: Shutdown,
    ) -> Result<(), ConsumeError> {
        let max = self.settings.batch_max.max(1);
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                next = consumer.next() => next,
            };
            let mut batch = vec![self.delivery(first)?];
            let deadline = Instant::now() + self.settings.batch_wait;
            while batch.len() < max {
                tokio::select! {
                    biased;
                    // Stop filling; the batch in hand is still written.
                    _ = shutdown.wait() => break,
                    next = tokio::time::timeout_at(deadline, consumer.next()) => match next {
                        Ok(next) => batch.push(self.delivery(next)?),
                        Err(_) => break,
                    },
                }
            }
            self.batch(batch, &mut shutdown).await?;
        }
    }

    fn delivery(
        &self,
        next: Option<Result<Delivery, lapin::Error>>,
    ) -> Result<Delivery, ConsumeError> {
        match next {
            Some(d) => Ok(d?),
            None => Err(ConsumeError::Ended(self.queue())),
        }
    }

    /// Decodes, rejects the poison, writes the rest and settles the batch.
    async fn batch(
        &mut self,
        deliveries: Vec<Delivery>,
        shutdown: &mut Shutdown,
    ) -> Result<(), ConsumeError> {
        let count = deliveries.len();
        let mut last: Option<Acker> = None;
        let mut decoded = match self.source {
            Source::Events => Decoded::Events(Vec::with_capacity(count)),
            Source::Direct => Decoded::Direct(Vec::with_capacity(count)),
        };
        for delivery in deliveries {
            let message = BusMessage::from_json(&delivery.data);
            let accepted = match (&mut decoded, message) {
                (Decoded::Events(v), Ok(BusMessage::Event(e))) => {
                    v.push(e);
                    Ok(())
                }
                (Decoded::Direct(v), Ok(BusMessage::DirectLog(d))) => {
                    if direct_key(&d).is_some() {
                        v.push(d);
                        Ok(())
                    } else {
                        Err(
                            "a direct log naming neither account nor session of its recipient"
                                .to_string(),
                        )
                    }
                }
                (_, Ok(other)) => Err(format!("unexpected message {}", kind_name(&other))),
                (_, Err(e)) => Err(e.to_string()),
            };
            match accepted {
                Ok(()) => last = Some(delivery.acker),
                Err(why) => {
                    tracing::warn!(queue = self.queue(), error = %why, "rejecting a delivery");
                    metrics::rejected(self.source.label());
                    delivery
                        .acker
                        .reject_within(BasicRejectOptions { requeue: false })
                        .await?;
                }
            }
        }
        let Some(last) = last else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        match self.write(&decoded).await {
            Ok((rows, numbered)) => {
                // Never before the commit: a crash here redelivers the
                // batch, and the rows' keys make the rewrite a no-op.
                let acked = last.ack_within(BasicAckOptions { multiple: true }).await?;
                self.failures = 0;
                self.pg_ready.store(true, Ordering::SeqCst);
                metrics::batch_committed(self.source, count, rows, started.elapsed());
                for at in decoded.ats() {
                    metrics::write_lag(self.source, at);
                }
                if let Some(signals) = &self.signals {
                    signals.numbered(&numbered).await;
                }
                if !acked {
                    // The channel is gone: the batch comes again and its
                    // rewrite inserts nothing.
                    tracing::debug!(
                        queue = self.queue(),
                        deliveries = count,
                        "a committed batch was not acknowledged (channel closed); it will be redelivered"
                    );
                    return Err(ConsumeError::Unsettled(self.queue()));
                }
                Ok(())
            }
            Err(error) => {
                self.failures += 1;
                self.pg_ready.store(false, Ordering::SeqCst);
                metrics::batch_failed(self.source);
                let pause = backoff(self.failures);
                tracing::warn!(
                    queue = self.queue(),
                    %error,
                    failures = self.failures,
                    retry_in_ms = pause.as_millis() as u64,
                    "writing a batch failed; it will be redelivered"
                );
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait() => {}
                }
                let nacked = last
                    .nack_within(BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    })
                    .await?;
                if !nacked {
                    // The channel is gone, which requeues the batch as well.
                    return Err(ConsumeError::Unsettled(self.queue()));
                }
                Ok(())
            }
        }
    }

    /// Writes a batch: how many rows were new, and the new direct messages
    /// with their numbers.
    async fn write(&self, decoded: &Decoded) -> Result<(u64, Vec<write::Numbered>), StoreError> {
        match decoded {
            Decoded::Events(events) => {
                Ok((write::room_events(&self.store, events).await?, Vec::new()))
            }
            Decoded::Direct(logs) => {
                let writes: Vec<DirectWrite<'_>> = logs
                    .iter()
                    .filter_map(|log| {
                        Some(DirectWrite {
                            log,
                            key: direct_key(log)?,
                            row: direct_row(log)?,
                        })
                    })
                    .collect();
                let numbered = write::direct_logs_numbered(&self.store, &writes).await?;
                Ok((numbered.len() as u64, numbered))
            }
        }
    }
}

/// The pause before the `failures`-th retry: doubling from 200 ms to 5 s.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(8);
    (FIRST_BACKOFF * factor).min(MAX_BACKOFF)
}

fn kind_name(m: &BusMessage) -> &'static str {
    match m {
        BusMessage::Intent(_) => "intent",
        BusMessage::Event(_) => "event",
        BusMessage::Reply(_) => "reply",
        BusMessage::Direct(_) => "direct",
        BusMessage::AuthRequest(_) => "auth_request",
        BusMessage::AuthReply(_) => "auth_reply",
        BusMessage::DirectLog(_) => "direct_log",
        BusMessage::HistoryRequest(_) => "history_request",
        BusMessage::HistoryReply(_) => "history_reply",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
