//! The alerts forwarder: `router.alerts` → an `alert` intent in the room's
//! partition.
//!
//! Alerts arrive by room name on the alerts exchange, but a room's events
//! are decided in its partition, in one order. So the router reads the
//! alerts queue, checks each alert ([`bus::alerts::parse`]), and publishes
//! it as an [`IntentBody::Alert`] to `chat.intents` with the room's
//! partition key, where it is numbered (seq, mseq, msgid), shown and kept
//! in history like any message. The alert is acknowledged only once the
//! broker confirmed the intent, so an alert the broker accepted is never
//! lost, whichever router dies; a router that dies between the confirm and
//! the ack makes the next one forward the alert again (at least once: it
//! may then be shown twice).
//!
//! The queue has a single active consumer: one router at a time forwards,
//! on one channel, so alerts for a room reach its partition in the order
//! they were published. Invalid alerts are rejected without requeue,
//! counted (`router_alerts_rejected_total{reason}`) and logged; they never
//! stop the forwarder. Like a partition it rides out a broker restart by
//! subscribing again on the next connection, and it stops by closing its
//! channel, which hands the unacknowledged alerts back in order.

use bus::alerts::{parse, Alert, Envelope, ALERTS_QUEUE};
use bus::names::{fold, partition_of};
use bus::recovery::{Link, Live};
use bus::schema::{BusMessage, Intent, IntentBody, SCHEMA_VERSION};
use bus::settle::Settle;
use bus::shutdown::Shutdown;
use bus::topology::{publish, BusError, INTENTS_EXCHANGE};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Consumer};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the broker refused (nacked) an alert's intent; the alerts are not acknowledged")]
    Nacked,
    #[error("the broker cancelled the alerts consumer")]
    ConsumerEnded,
    #[error("the channel closed before the alerts were acknowledged")]
    Unacknowledged,
}

pub struct Forwarder {
    link: Link,
    live: Live,
    channel: Channel,
    /// This process's instance id, for the consumer tag.
    instance: String,
    partitions: u16,
    /// Prefetch, and the most alerts forwarded per confirm round.
    batch_max: u16,
}

impl Forwarder {
    /// Opens the forwarder's channel on `live` and subscribes to the
    /// alerts queue (declared by the link's setup).
    pub async fn subscribe(
        link: &Link,
        live: Live,
        instance: &str,
        partitions: u16,
        batch_max: u16,
    ) -> Result<(Self, Consumer), ForwardError> {
        let (channel, consumer) = open(&live, instance, batch_max).await?;
        let forwarder = Self {
            link: link.clone(),
            live,
            channel,
            instance: instance.to_string(),
            partitions,
            batch_max,
        };
        Ok((forwarder, consumer))
    }

    /// Forwards until shutdown; subscribes again after a lost connection.
    /// Any other failure ends it with an error (the process exits; the
    /// unacknowledged alerts wait in the queue).
    pub async fn run(
        mut self,
        mut consumer: Consumer,
        mut shutdown: Shutdown,
    ) -> Result<(), ForwardError> {
        let result = loop {
            match self.serve(&mut consumer, shutdown.clone()).await {
                Err(error) if self.link.failed_with_connection(&self.live).await => {
                    tracing::info!(%error, "AMQP connection lost; the alerts forwarder will subscribe again");
                    match self.resubscribe(&mut shutdown).await {
                        Ok(Some(next)) => consumer = next,
                        Ok(None) => break Ok(()),
                        Err(error) => break Err(error),
                    }
                }
                other => break other,
            }
        };
        // Close before the consumer is dropped (which would cancel it
        // first): the broker then requeues the unacknowledged alerts in
        // one step, ahead of anything the next forwarder receives.
        let closed = bus::recovery::close_channel(&self.channel).await;
        drop(consumer);
        result?;
        closed?;
        Ok(())
    }

    async fn resubscribe(
        &mut self,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Consumer>, ForwardError> {
        let (instance, batch_max) = (&self.instance, self.batch_max);
        let opened = self
            .link
            .reopen(&mut self.live, shutdown, |live| async move {
                open(&live, instance, batch_max).await
            })
            .await?;
        let Some((channel, consumer)) = opened else {
            return Ok(None);
        };
        tracing::info!(epoch = self.live.epoch, "alerts forwarder subscribed again");
        self.channel = channel;
        Ok(Some(consumer))
    }

    async fn serve(
        &mut self,
        consumer: &mut Consumer,
        mut shutdown: Shutdown,
    ) -> Result<(), ForwardError> {
        let max = usize::from(self.batch_max.max(1));
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                next = consumer.next() => {
                    let Some(first) = next else { return Err(ForwardError::ConsumerEnded) };
                    let mut deliveries = vec![first?];
                    while deliveries.len() < max {
                        match consumer.next().now_or_never() {
                            Some(Some(delivery)) => deliveries.push(delivery?),
                            _ => break,
                        }
                    }
                    self.batch(deliveries).await?;
                }
            }
        }
    }

    /// Publishes the intents of the valid alerts, rejects the others,
    /// waits for every confirm, then acknowledges the valid ones at once.
    async fn batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), ForwardError> {
        let mut confirms = Vec::new();
        let mut last: Option<Acker> = None;
        for delivery in deliveries {
            match alert_of(&delivery) {
                Ok(alert) => {
                    let key = partition_of(&fold(&alert.room), self.partitions).to_string();
                    tracing::debug!(room = %alert.room, source = %alert.source, "forwarding an alert");
                    let msg = BusMessage::Intent(intent_of(alert, bus::now_ms()));
                    confirms
                        .push(publish(&self.channel, INTENTS_EXCHANGE, &key, &msg, false).await?);
                    last = Some(delivery.acker);
                }
                Err(error) => {
                    metrics::counter!("router_alerts_rejected_total", "reason" => error.reason())
                        .increment(1);
                    tracing::warn!(
                        routing_key = %delivery.routing_key,
                        bytes = delivery.data.len(),
                        %error,
                        "rejecting an alert"
                    );
                    delivery
                        .acker
                        .reject_within(BasicRejectOptions { requeue: false })
                        .await?;
                }
            }
        }
        let forwarded = confirms.len();
        for confirm in confirms {
            if confirm.await?.is_nack() {
                return Err(ForwardError::Nacked);
            }
        }
        if let Some(acker) = last {
            if !acker.ack_within(BasicAckOptions { multiple: true }).await? {
                return Err(ForwardError::Unacknowledged);
            }
        }
        metrics::counter!("router_alerts_forwarded_total").increment(forwarded as u64);
        Ok(())
    }
}

/// The alert a delivery holds, as its properties and body say.
fn alert_of(delivery: &Delivery) -> Result<Alert, bus::alerts::AlertError> {
    let props = &delivery.properties;
    parse(&Envelope {
        routing_key: delivery.routing_key.as_str(),
        content_type: props.content_type().as_ref().map(|s| s.as_str()),
        content_encoding: props.content_encoding().as_ref().map(|s| s.as_str()),
        app_id: props.app_id().as_ref().map(|s| s.as_str()),
        body: &delivery.data,
    })
}

/// The intent of a checked alert: a fresh id (its message id from then
/// on), the bot as actor.
fn intent_of(alert: Alert, now: i64) -> Intent {
    Intent {
        v: SCHEMA_VERSION,
        id: bus::new_id(),
        at: now,
        actor: bus::alerts::bot_actor(&alert.source),
        body: IntentBody::Alert {
            room: alert.room,
            text: alert.text,
            severity: alert.severity,
            source: alert.source,
            link: alert.link,
        },
        done: false,
    }
}

async fn open(
    live: &Live,
    instance: &str,
    batch_max: u16,
) -> Result<(Channel, Consumer), ForwardError> {
    let channel = bus::topology::confirm_channel(&live.conn).await?;
    channel
        .basic_qos(batch_max.max(1), BasicQosOptions::default())
        .await?;
    let tag = format!("{instance}.alerts");
    let consumer = channel
        .basic_consume(
            ALERTS_QUEUE.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_becomes_an_intent_of_its_room_from_its_bot() {
        let alert = Alert {
            room: "Ops".into(),
            text: "Disk full".into(),
            severity: Some("warning".into()),
            source: "grafana".into(),
            link: None,
        };
        let a = intent_of(alert.clone(), 7);
        let b = intent_of(alert, 7);
        assert_ne!(a.id, b.id, "every forwarded alert is a new message");
        assert_eq!(a.actor.hostmask(), "grafana!bot@alerts.");
        assert_eq!(a.body.room(), "Ops");
        assert!(!a.done);
        let json = BusMessage::Intent(a.clone()).to_json();
        assert_eq!(BusMessage::from_json(&json).unwrap(), BusMessage::Intent(a));
    }
}
