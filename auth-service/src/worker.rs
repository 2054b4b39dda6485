//! The `auth.requests` consumer.
//!
//! Requests are worked on concurrently (up to the prefetch). Each one is
//! answered to its `reply_to` queue, and only once the broker confirmed the
//! answer is the request acknowledged: a replica that dies mid-request
//! leaves it unacknowledged, RabbitMQ hands it to another replica, and the
//! caller still gets exactly the answer it is waiting for (registration
//! recognises its own redelivery by request id).
//!
//! A broker restart is ridden out: when the connection is lost the consumer
//! ends, and the worker consumes again on the next connection of the
//! [`Link`]. Requests in flight at that moment cannot publish their answer
//! or their ack; the broker redelivers them and they are answered again,
//! which every operation tolerates.

use std::sync::Arc;
use std::time::Duration;

use bus::recovery::{Link, Live};
use bus::schema::{AuthReply, BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::{confirm_channel, message_properties, BusError, AUTH_QUEUE};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::task::JoinSet;

use crate::service::Service;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer (channel or connection closed)")]
    Ended,
}

/// Consumes until `shutdown` fires (then drains) or the channel fails for
/// a reason other than the loss of the connection (after which it consumes
/// again on the next one). The queue is declared by the link's setup.
pub async fn run(
    link: &Link,
    service: Arc<Service>,
    prefetch: u16,
    tag: &str,
    mut shutdown: Shutdown,
) -> Result<(), WorkerError> {
    let mut inflight = JoinSet::new();
    let mut lost_epoch = 0;
    loop {
        let Some(live) = link.up_after(lost_epoch, Some(&mut shutdown)).await else {
            // Shutting down while the broker is away: nothing in flight can
            // be answered or acknowledged now, and the broker has put it
            // back in the queue for the other replicas.
            inflight.abort_all();
            return Ok(());
        };
        let (ch, mut consumer) = match subscribe(&live, prefetch, tag).await {
            Ok(subscribed) => subscribed,
            Err(_) if link.failed_with_connection(&live).await => {
                lost_epoch = live.epoch;
                continue;
            }
            Err(error) => return Err(error),
        };
        tracing::info!(
            queue = AUTH_QUEUE,
            prefetch,
            epoch = live.epoch,
            "consuming auth requests"
        );
        let failure = loop {
            tokio::select! {
                _ = shutdown.wait() => break None,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        inflight.spawn(answer(ch.clone(), service.clone(), delivery));
                    }
                    Some(Err(error)) => break Some(WorkerError::from(error)),
                    None => break Some(WorkerError::Ended),
                },
                Some(done) = inflight.join_next(), if !inflight.is_empty() => log_task(done),
            }
        };
        match failure {
            None => return drain(ch, consumer, inflight, service, tag).await,
            Some(error) if link.failed_with_connection(&live).await => {
                tracing::warn!(%error, "AMQP connection lost; requests in flight will be redelivered");
                lost_epoch = live.epoch;
            }
            Some(error) => return Err(error),
        }
    }
}

/// Opens the worker's channel on `live` and consumes the request queue.
async fn subscribe(
    live: &Live,
    prefetch: u16,
    tag: &str,
) -> Result<(Channel, Consumer), WorkerError> {
    let ch = confirm_channel(&live.conn).await?;
    ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let consumer = ch
        .basic_consume(
            AUTH_QUEUE.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

/// Shutdown: stops new deliveries, finishes what this replica holds.
async fn drain(
    ch: Channel,
    mut consumer: Consumer,
    mut inflight: JoinSet<Result<(), lapin::Error>>,
    service: Arc<Service>,
    tag: &str,
) -> Result<(), WorkerError> {
    if !ch.status().connected() {
        // The connection is gone: nothing in flight can be answered or
        // acknowledged, and the broker has requeued it already.
        inflight.abort_all();
        return Ok(());
    }
    // Stop new deliveries, then finish what this replica already holds
    // (including deliveries already on their way to the stream).
    if let Err(error) = ch
        .basic_cancel(tag.into(), BasicCancelOptions::default())
        .await
    {
        // The stream would not end: do not wait for it.
        tracing::warn!(%error, "cancelling the consumer");
        inflight.abort_all();
        return Ok(());
    }
    let drain = async {
        while let Some(Ok(delivery)) = consumer.next().await {
            inflight.spawn(answer(ch.clone(), service.clone(), delivery));
        }
        while let Some(done) = inflight.join_next().await {
            log_task(done);
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("in-flight auth requests did not finish in time; they will be redelivered");
    }
    let _ = ch.close(200, "shutting down".into()).await;
    Ok(())
}

fn log_task(done: Result<Result<(), lapin::Error>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "answering an auth request"),
        Err(error) => tracing::error!(%error, "an auth request task died"),
    }
}

/// Handles one delivery: answer, wait for the confirm, then ack.
async fn answer(
    ch: Channel,
    service: Arc<Service>,
    delivery: Delivery,
) -> Result<(), lapin::Error> {
    let reply_to = delivery
        .properties
        .reply_to()
        .as_ref()
        .map(|q| q.as_str().to_string())
        .filter(|q| !q.is_empty());
    let request = match (BusMessage::from_json(&delivery.data), reply_to) {
        (Ok(BusMessage::AuthRequest(request)), Some(reply_to)) => (request, reply_to),
        (decoded, reply_to) => {
            tracing::warn!(
                reply_to = reply_to.is_some(),
                decoded = decoded.is_ok(),
                "rejecting a malformed auth request"
            );
            return delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await
                .map(drop);
        }
    };
    let (request, reply_to) = request;
    if delivery.redelivered {
        // Another replica took it and died (or its channel closed) before acking.
        tracing::info!(id = %request.id, op = request.body.op(), "answering a redelivered request");
    }
    let correlation = delivery
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| request.id.clone());
    let body = service.handle(&request).await;
    let reply = BusMessage::AuthReply(AuthReply {
        v: SCHEMA_VERSION,
        id: request.id.clone(),
        body,
    });
    let confirm = ch
        .basic_publish(
            "".into(),
            reply_to.as_str().into(),
            BasicPublishOptions::default(),
            &reply.to_json(),
            message_properties().with_correlation_id(correlation.as_str().into()),
        )
        .await?
        .await?;
    if confirm.is_nack() {
        // The broker could not take the answer: let the request be retried.
        tracing::warn!(id = %request.id, "the broker refused an auth reply; requeueing");
        return delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map(drop);
    }
    if !delivery.acker.ack(BasicAckOptions::default()).await? {
        // The channel is gone (the connection was lost): the broker
        // redelivers the request and it is answered again.
        tracing::debug!(id = %request.id, "ack not sent (channel closed); the request will be redelivered");
    }
    Ok(())
}
