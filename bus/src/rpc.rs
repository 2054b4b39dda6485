//! One request/answer worker for every service that answers requests over
//! the bus (the auth service on `auth.requests`, the history service on
//! `history.requests`, and whatever comes next).
//!
//! The protocol is the same for all of them: a caller publishes a request
//! to a durable queue through the default exchange with `reply_to` (its
//! session queue) and a `correlation_id`; any replica consumes it and
//! publishes the answer to `reply_to` through the default exchange with the
//! same correlation id. What differs is only how a request body becomes an
//! answer, and that is the service's [`Responder`]. Everything about
//! delivery lives here, once:
//!
//! * Requests are worked on concurrently, up to the prefetch.
//! * A request is acknowledged only once the broker **confirmed** its
//!   answer: a replica that dies mid-request leaves it unacknowledged,
//!   RabbitMQ hands it to another replica, and the caller still gets the
//!   answer it is waiting for. Responders must therefore tolerate answering
//!   the same request twice ([`Request::redelivered`] says when it may be
//!   the second time).
//! * An answer the broker refuses (nack) requeues the request, to be tried
//!   again, rather than dropping it.
//! * A request without `reply_to` cannot be answered: it is rejected
//!   without requeue before the responder sees it (so nothing is carried
//!   out for nobody). A request the responder cannot read is rejected too,
//!   answered first if the responder can still tell whom to answer
//!   ([`Answer::malformed`]), so the caller fails fast instead of timing
//!   out.
//! * SIGTERM drains: the consumer is cancelled, deliveries already on their
//!   way are still answered, and what is in flight gets a bounded time to
//!   finish; what does not finish is redelivered to another replica.
//! * A broker restart is ridden out through the [`Link`]: when the
//!   connection is lost the consumer ends, and the worker consumes again on
//!   the next connection. Requests in flight at that moment can publish
//!   neither their answer nor their ack (an ack then returns `Ok(false)`
//!   without being sent); the broker redelivers them.
//! * Shutting down while the broker is away aborts the work in flight: it
//!   can be neither answered nor acknowledged any more, and the broker has
//!   already put it back in the queue for the other replicas.

use crate::settle::Settle;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::task::JoinSet;

use crate::recovery::{Link, Live};
use crate::shutdown::Shutdown;
use crate::topology::{confirm_channel, message_properties, BusError};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer (channel or connection closed)")]
    Ended,
}

/// Where and how a worker consumes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The durable request queue (declared by the link's setup, not here).
    pub queue: String,
    /// How many requests one replica works on at once (at least 1).
    pub prefetch: u16,
    /// The consumer tag: names the replica in `rabbitmqctl list_consumers`
    /// and is what the drain cancels.
    pub tag: String,
    /// How long in-flight requests get to finish after SIGTERM.
    pub drain_timeout: Duration,
}

/// One request as the responder sees it. Only requests with a `reply_to`
/// get this far.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The delivery's body.
    pub data: &'a [u8],
    /// The request's `correlation_id`, if the caller set one.
    pub correlation_id: Option<&'a str>,
    /// The broker delivered it before, to this replica or another, which
    /// did not acknowledge it (died, or lost its connection).
    pub redelivered: bool,
}

/// An encoded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The id of the request it answers: its correlation id when the
    /// request carried none.
    pub id: String,
    /// The message published to the request's `reply_to`.
    pub body: Vec<u8>,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Publish the reply, wait for the broker's confirm, then acknowledge.
    Reply(Reply),
    /// Reject without requeue (it would fail the same way anywhere),
    /// after publishing `reply` if there is one. That reply is best effort:
    /// the request is dropped whatever becomes of it.
    Reject { reply: Option<Reply> },
}

impl Answer {
    /// The answer to a request that cannot be read: rejected, and answered
    /// `encode(id)` first when its JSON at least names its `id` (every bus
    /// request does), because the caller is waiting for that id.
    pub fn malformed(data: &[u8], encode: impl FnOnce(&str) -> Vec<u8>) -> Self {
        let reply = request_id(data).map(|id| Reply {
            body: encode(&id),
            id,
        });
        Answer::Reject { reply }
    }
}

/// The `id` of a request body that may not decode as a whole (an unknown
/// version, a missing field), if its JSON names one.
pub fn request_id(data: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(value.get("id")?.as_str()?.to_string())
}

/// A service's side of the worker: turns requests into answers. The hooks
/// let a service count what the worker decides on its own.
pub trait Responder: Send + Sync + 'static {
    /// The answer to one request. Must tolerate being called again for the
    /// same request (redelivery).
    fn answer(&self, request: Request<'_>) -> impl Future<Output = Answer> + Send;

    /// A request without `reply_to` was rejected unseen.
    fn unanswerable(&self) {}

    /// The connection was lost; the worker consumes again once it is back.
    fn resubscribing(&self) {}
}

/// Consumes `settings.queue` and answers with `responder` until `shutdown`
/// fires (then drains) or the channel fails for a reason other than the
/// loss of the connection (after a loss it consumes again on the next
/// connection).
pub async fn serve<R: Responder>(
    link: &Link,
    settings: &Settings,
    responder: Arc<R>,
    mut shutdown: Shutdown,
) -> Result<(), RpcError> {
    let queue: Arc<str> = settings.queue.as_str().into();
    let mut inflight = JoinSet::new();
    let mut lost_epoch = 0;
    loop {
        let Some(live) = link.up_after(lost_epoch, Some(&mut shutdown)).await else {
            // Stopping while the broker is away: see the module docs.
            inflight.abort_all();
            return Ok(());
        };
        let (ch, mut consumer) = match subscribe(&live, settings).await {
            Ok(subscribed) => subscribed,
            // Lost again already: wait for the next connection.
            Err(_) if link.failed_with_connection(&live).await => {
                lost_epoch = live.epoch;
                continue;
            }
            Err(error) => return Err(error),
        };
        tracing::info!(
            %queue,
            prefetch = settings.prefetch,
            epoch = live.epoch,
            "consuming requests"
        );
        let failure = loop {
            tokio::select! {
                _ = shutdown.wait() => break None,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        inflight.spawn(handle(ch.clone(), responder.clone(), queue.clone(), delivery));
                    }
                    Some(Err(error)) => break Some(RpcError::from(error)),
                    None => break Some(RpcError::Ended),
                },
                Some(done) = inflight.join_next(), if !inflight.is_empty() => log_task(&queue, done),
            }
        };
        match failure {
            None => return drain(ch, consumer, inflight, responder, queue, settings).await,
            Some(error) if link.failed_with_connection(&live).await => {
                // The link itself warns about the loss.
                tracing::info!(
                    %queue,
                    %error,
                    "AMQP connection lost; consuming again once it is back \
                     (requests in flight will be redelivered)"
                );
                responder.resubscribing();
                lost_epoch = live.epoch;
            }
            Some(error) => return Err(error),
        }
    }
}

/// Opens the worker's confirm channel on `live` and consumes the queue.
async fn subscribe(live: &Live, settings: &Settings) -> Result<(Channel, Consumer), RpcError> {
    let ch = confirm_channel(&live.conn).await?;
    ch.basic_qos(settings.prefetch.max(1), BasicQosOptions::default())
        .await?;
    let consumer = ch
        .basic_consume(
            settings.queue.as_str().into(),
            settings.tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

/// Shutdown: stops new deliveries, finishes what this replica holds.
async fn drain<R: Responder>(
    ch: Channel,
    mut consumer: Consumer,
    mut inflight: JoinSet<Result<(), lapin::Error>>,
    responder: Arc<R>,
    queue: Arc<str>,
    settings: &Settings,
) -> Result<(), RpcError> {
    if !ch.status().connected() {
        // The connection is gone: nothing in flight can be answered or
        // acknowledged, and the broker has requeued it already.
        inflight.abort_all();
        return Ok(());
    }
    // Cancel rather than close: closing would requeue what is in flight,
    // and the answers being worked on would be computed for nothing.
    if let Err(error) = ch
        .basic_cancel(settings.tag.as_str().into(), BasicCancelOptions::default())
        .await
    {
        // The stream would not end: do not wait for it.
        tracing::warn!(%queue, %error, "cancelling the consumer");
        inflight.abort_all();
        return Ok(());
    }
    let drain = async {
        // Deliveries already on their way before the cancel took effect.
        while let Some(Ok(delivery)) = consumer.next().await {
            inflight.spawn(handle(
                ch.clone(),
                responder.clone(),
                queue.clone(),
                delivery,
            ));
        }
        while let Some(done) = inflight.join_next().await {
            log_task(&queue, done);
        }
    };
    if tokio::time::timeout(settings.drain_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            %queue,
            "requests in flight did not finish in time; they will be redelivered"
        );
    }
    let _ = ch.close(200, "shutting down".into()).await;
    Ok(())
}

fn log_task(queue: &str, done: Result<Result<(), lapin::Error>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(queue, %error, "answering a request"),
        Err(error) => tracing::error!(queue, %error, "a request task died"),
    }
}

/// Handles one delivery: answer, wait for the confirm, then ack.
async fn handle<R: Responder>(
    ch: Channel,
    responder: Arc<R>,
    queue: Arc<str>,
    delivery: Delivery,
) -> Result<(), lapin::Error> {
    let reply_to = delivery
        .properties
        .reply_to()
        .as_ref()
        .map(|q| q.as_str().to_string())
        .filter(|q| !q.is_empty());
    let Some(reply_to) = reply_to else {
        tracing::warn!(%queue, "rejecting a request without reply_to");
        responder.unanswerable();
        return reject(&delivery).await;
    };
    let correlation_id = delivery
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.as_str().to_string());
    let request = Request {
        data: &delivery.data,
        correlation_id: correlation_id.as_deref(),
        redelivered: delivery.redelivered,
    };
    match responder.answer(request).await {
        Answer::Reply(reply) => {
            let confirm = publish(&ch, &reply_to, correlation_id.as_deref(), &reply).await?;
            if confirm.is_nack() {
                // The broker could not take the answer: let the request be
                // retried.
                tracing::warn!(%queue, id = %reply.id, "the broker refused a reply; requeueing");
                return delivery
                    .acker
                    .nack_within(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
                    .map(drop);
            }
            if !delivery
                .acker
                .ack_within(BasicAckOptions::default())
                .await?
            {
                // The channel is gone (the connection was lost): the broker
                // redelivers the request and it is answered again.
                tracing::debug!(%queue, id = %reply.id, "ack not sent (channel closed); the request will be redelivered");
            }
            Ok(())
        }
        Answer::Reject { reply } => {
            if let Some(reply) = reply {
                // Best effort: the request is dropped whatever happens.
                let _ = publish(&ch, &reply_to, correlation_id.as_deref(), &reply).await;
            }
            reject(&delivery).await
        }
    }
}

async fn reject(delivery: &Delivery) -> Result<(), lapin::Error> {
    delivery
        .acker
        .reject_within(BasicRejectOptions { requeue: false })
        .await
        .map(drop)
}

/// Publishes `reply` to `reply_to` through the default exchange, with the
/// request's correlation id (else its id), and waits for the confirm.
async fn publish(
    ch: &Channel,
    reply_to: &str,
    correlation_id: Option<&str>,
    reply: &Reply,
) -> Result<lapin::Confirmation, lapin::Error> {
    let correlation = correlation_id.unwrap_or(&reply.id);
    ch.basic_publish(
        "".into(),
        reply_to.into(),
        BasicPublishOptions::default(),
        &reply.body,
        message_properties().with_correlation_id(correlation.into()),
    )
    .await?
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_requests_keep_their_id_when_they_have_one() {
        assert_eq!(
            request_id(br#"{"t":"history_request","v":1,"id":"q9","body":{}}"#).as_deref(),
            Some("q9")
        );
        assert_eq!(request_id(b"not json"), None);
        assert_eq!(request_id(br#"{"id":5}"#), None);
    }

    #[test]
    fn a_malformed_request_is_answered_only_when_it_names_an_id() {
        let encode = |id: &str| format!("failed {id}").into_bytes();
        assert_eq!(
            Answer::malformed(br#"{"v":9,"id":"a1"}"#, encode),
            Answer::Reject {
                reply: Some(Reply {
                    id: "a1".into(),
                    body: b"failed a1".to_vec(),
                })
            }
        );
        assert_eq!(
            Answer::malformed(b"{", encode),
            Answer::Reject { reply: None }
        );
    }
}
