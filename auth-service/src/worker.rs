//! The `auth.requests` consumer.
//!
//! Requests are worked on concurrently (up to the prefetch). Each one is
//! answered to its `reply_to` queue, and only once the broker confirmed the
//! answer is the request acknowledged: a replica that dies mid-request
//! leaves it unacknowledged, RabbitMQ hands it to another replica, and the
//! caller still gets exactly the answer it is waiting for (registration
//! recognises its own redelivery by request id).

use std::sync::Arc;
use std::time::Duration;

use bus::schema::{AuthReply, BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::{
    confirm_channel, declare_auth_queue, message_properties, BusError, AUTH_QUEUE,
};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
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

/// Consumes until `shutdown` fires (then drains) or the channel fails.
pub async fn run(
    conn: &Connection,
    service: Arc<Service>,
    prefetch: u16,
    tag: &str,
    mut shutdown: Shutdown,
) -> Result<(), WorkerError> {
    let ch = confirm_channel(conn).await?;
    declare_auth_queue(&ch).await?;
    ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let mut consumer = ch
        .basic_consume(
            AUTH_QUEUE.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = AUTH_QUEUE, prefetch, "consuming auth requests");
    let mut inflight = JoinSet::new();
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
    if let Some(error) = failure {
        return Err(error);
    }
    // Stop new deliveries, then finish what this replica already holds
    // (including deliveries already on their way to the stream).
    if let Err(error) = ch
        .basic_cancel(tag.into(), BasicCancelOptions::default())
        .await
    {
        tracing::warn!(%error, "cancelling the consumer");
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
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map(drop)
}
