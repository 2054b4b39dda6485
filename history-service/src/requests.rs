//! The `history.requests` consumer: history queries from gateways.
//!
//! Like the auth service's worker: requests are worked on concurrently (up
//! to the prefetch), each answer is published to the request's `reply_to`
//! (default exchange) on a confirm channel, and the request is acked only
//! once the broker confirmed the answer. A request without `reply_to`, or
//! that cannot be decoded, is rejected without requeue (answered
//! `malformed` first when it at least names an id and a reply queue).
//!
//! A broker restart is ridden out: when the connection is lost the consumer
//! ends, and the worker consumes again on the next connection of the
//! [`Link`]. Requests in flight at that moment cannot publish their answer
//! or their ack; the broker redelivers them and they are answered again
//! (every query is a read, except `ack_pending`, which is idempotent).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::history::{
    HistoryError, HistoryQuery, HistoryReply, HistoryReplyBody, HistoryRequest, HistoryTarget,
};
use bus::recovery::{Link, Live};
use bus::schema::{BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::{confirm_channel, message_properties, BusError, HISTORY_REQUESTS_QUEUE};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::task::JoinSet;

use crate::access::{AccessError, Membership};
use crate::store::{Store, StoreError};

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RequestsError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the requests consumer (channel or connection closed)")]
    Ended,
}

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Answers history queries.
pub struct Handler {
    store: Store,
    access: Membership,
    max_page: u32,
}

impl Handler {
    pub fn new(store: Store, access: Membership, max_page: u32) -> Self {
        Self {
            store,
            access,
            max_page,
        }
    }

    /// The request kind, for metrics and logs.
    pub fn kind(query: &HistoryQuery) -> &'static str {
        match query {
            HistoryQuery::Fetch {
                target: HistoryTarget::Room { .. },
                ..
            } => "fetch_room",
            HistoryQuery::Fetch {
                target: HistoryTarget::Direct { .. },
                ..
            } => "fetch_direct",
            HistoryQuery::Targets { .. } => "targets",
            HistoryQuery::Pending { .. } => "pending",
            HistoryQuery::AckPending { .. } => "ack_pending",
        }
    }

    /// The answer to one request (failures become `Failure{Internal}`).
    pub async fn handle(&self, request: &HistoryRequest) -> HistoryReplyBody {
        match self.answer(request).await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(
                    id = %request.id,
                    kind = Self::kind(&request.body),
                    %error,
                    "history request failed"
                );
                HistoryReplyBody::Failure {
                    code: HistoryError::Internal,
                }
            }
        }
    }

    async fn answer(&self, request: &HistoryRequest) -> Result<HistoryReplyBody, Failed> {
        let who = &request.requester;
        let invalid = HistoryReplyBody::Failure {
            code: HistoryError::InvalidTarget,
        };
        Ok(match &request.body {
            HistoryQuery::Fetch {
                target,
                selector,
                limit,
                events,
            } => {
                let (conversation, name) = match target {
                    HistoryTarget::Room { room } => {
                        // Membership first: a stranger learns nothing, not
                        // even whether the room has history.
                        let Some(name) = self.access.check(room, &who.sid).await? else {
                            return Ok(invalid);
                        };
                        let id = self.store.room_conversation(room).await?.map(|c| c.id);
                        (id, name)
                    }
                    HistoryTarget::Direct { peer } => {
                        match self
                            .store
                            .direct_conversation(&who.participant_key(), peer)
                            .await?
                        {
                            Some(c) => (Some(c.id), c.name),
                            None => return Ok(invalid),
                        }
                    }
                };
                let items = match conversation {
                    Some(id) => {
                        let limit = (*limit).min(self.max_page);
                        self.store.fetch(id, selector, limit, *events).await?
                    }
                    None => Vec::new(),
                };
                HistoryReplyBody::Messages {
                    target: target.clone(),
                    name,
                    items,
                }
            }
            HistoryQuery::Targets {
                from,
                to,
                limit,
                rooms,
            } => HistoryReplyBody::Targets {
                items: self
                    .store
                    .targets(
                        &who.participant_key(),
                        rooms,
                        *from,
                        *to,
                        (*limit).min(self.max_page),
                    )
                    .await?,
            },
            HistoryQuery::Pending { limit } => HistoryReplyBody::Pending {
                items: match &who.account {
                    Some(account) => {
                        self.store
                            .pending(account, (*limit).min(self.max_page))
                            .await?
                    }
                    None => Vec::new(),
                },
            },
            HistoryQuery::AckPending { ids } => HistoryReplyBody::Acked {
                count: match &who.account {
                    Some(account) => self.store.ack_pending(account, ids).await?,
                    None => 0,
                },
            },
        })
    }
}

/// Consumes until `shutdown` fires (then drains) or the channel fails for a
/// reason other than the loss of the connection (after which it consumes
/// again on the next one). The queue is declared by the link's setup.
pub async fn run(
    link: &Link,
    handler: Arc<Handler>,
    prefetch: u16,
    tag: &str,
    mut shutdown: Shutdown,
) -> Result<(), RequestsError> {
    let mut inflight = JoinSet::new();
    let mut lost_epoch = 0;
    loop {
        let Some(live) = link.up_after(lost_epoch, Some(&mut shutdown)).await else {
            // Stopping while the broker is away: nothing in flight can be
            // answered or acknowledged now, and the broker has put it back
            // in the queue for the other replicas.
            inflight.abort_all();
            return Ok(());
        };
        let (ch, mut consumer) = match subscribe(&live, prefetch, tag).await {
            Ok(subscribed) => subscribed,
            // Lost again already: wait for the next connection.
            Err(_) if link.failed_with_connection(&live).await => {
                lost_epoch = live.epoch;
                continue;
            }
            Err(error) => return Err(error),
        };
        tracing::info!(
            queue = HISTORY_REQUESTS_QUEUE,
            prefetch,
            epoch = live.epoch,
            "consuming history requests"
        );
        let failure = loop {
            tokio::select! {
                _ = shutdown.wait() => break None,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        inflight.spawn(answer(ch.clone(), handler.clone(), delivery));
                    }
                    Some(Err(error)) => break Some(RequestsError::from(error)),
                    None => break Some(RequestsError::Ended),
                },
                Some(done) = inflight.join_next(), if !inflight.is_empty() => log_task(done),
            }
        };
        match failure {
            None => return drain(ch, consumer, inflight, handler, tag).await,
            Some(error) if link.failed_with_connection(&live).await => {
                tracing::info!(
                    queue = HISTORY_REQUESTS_QUEUE,
                    %error,
                    "AMQP connection lost; consuming again once it is back \
                     (requests in flight will be redelivered)"
                );
                crate::metrics::resubscribed("requests");
                lost_epoch = live.epoch;
            }
            Some(error) => return Err(error),
        }
    }
}

/// Opens the worker's confirm channel on `live` and consumes the queue.
async fn subscribe(
    live: &Live,
    prefetch: u16,
    tag: &str,
) -> Result<(Channel, Consumer), RequestsError> {
    let ch = confirm_channel(&live.conn).await?;
    ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let consumer = ch
        .basic_consume(
            HISTORY_REQUESTS_QUEUE.into(),
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
    handler: Arc<Handler>,
    tag: &str,
) -> Result<(), RequestsError> {
    if !ch.status().connected() {
        // The connection is gone: nothing in flight can be answered or
        // acknowledged, and the broker has requeued it already.
        inflight.abort_all();
        return Ok(());
    }
    if let Err(error) = ch
        .basic_cancel(tag.into(), BasicCancelOptions::default())
        .await
    {
        // The stream would not end: do not wait for it.
        tracing::warn!(%error, "cancelling the requests consumer");
        inflight.abort_all();
        return Ok(());
    }
    let drain = async {
        while let Some(Ok(delivery)) = consumer.next().await {
            inflight.spawn(answer(ch.clone(), handler.clone(), delivery));
        }
        while let Some(done) = inflight.join_next().await {
            log_task(done);
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(
            "in-flight history requests did not finish in time; they will be redelivered"
        );
    }
    let _ = ch.close(200, "shutting down".into()).await;
    Ok(())
}

fn log_task(done: Result<Result<(), lapin::Error>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "answering a history request"),
        Err(error) => tracing::error!(%error, "a history request task died"),
    }
}

/// The id of an undecodable request, if its JSON names one.
fn salvage_id(data: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(value.get("id")?.as_str()?.to_string())
}

/// Handles one delivery: answer, wait for the confirm, then ack.
async fn answer(
    ch: Channel,
    handler: Arc<Handler>,
    delivery: Delivery,
) -> Result<(), lapin::Error> {
    let started = Instant::now();
    let reply_to = delivery
        .properties
        .reply_to()
        .as_ref()
        .map(|q| q.as_str().to_string())
        .filter(|q| !q.is_empty());
    let correlation = delivery
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.as_str().to_string());
    let decoded = BusMessage::from_json(&delivery.data);
    let (request, reply_to) = match (decoded, reply_to) {
        (Ok(BusMessage::HistoryRequest(request)), Some(reply_to)) => (request, reply_to),
        (decoded, reply_to) => {
            let why = match &decoded {
                Err(e) => e.to_string(),
                Ok(_) if reply_to.is_none() => "no reply_to".to_string(),
                Ok(_) => "not a history request".to_string(),
            };
            tracing::warn!(error = %why, "rejecting a malformed history request");
            crate::metrics::rejected("requests");
            if let (Some(reply_to), Some(id)) = (reply_to, salvage_id(&delivery.data)) {
                let body = HistoryReplyBody::Failure {
                    code: HistoryError::Malformed,
                };
                let correlation = correlation.unwrap_or_else(|| id.clone());
                // Best effort: the request is dropped whatever happens.
                let _ = publish(&ch, &reply_to, &correlation, id, body).await;
            }
            return delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await
                .map(drop);
        }
    };
    let kind = Handler::kind(&request.body);
    let body = handler.handle(&request).await;
    let outcome = match &body {
        HistoryReplyBody::Failure { code } => match code {
            HistoryError::InvalidTarget => "invalid_target",
            HistoryError::Malformed => "malformed",
            HistoryError::Internal => "internal",
        },
        _ => "ok",
    };
    let correlation = correlation.unwrap_or_else(|| request.id.clone());
    let confirm = publish(&ch, &reply_to, &correlation, request.id.clone(), body).await?;
    crate::metrics::request(kind, outcome, started.elapsed());
    if confirm.is_nack() {
        tracing::warn!(id = %request.id, "the broker refused a history reply; requeueing");
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

async fn publish(
    ch: &Channel,
    reply_to: &str,
    correlation: &str,
    id: String,
    body: HistoryReplyBody,
) -> Result<lapin::Confirmation, lapin::Error> {
    let reply = BusMessage::HistoryReply(HistoryReply {
        v: SCHEMA_VERSION,
        id,
        body,
    });
    ch.basic_publish(
        "".into(),
        reply_to.into(),
        BasicPublishOptions::default(),
        &reply.to_json(),
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
            salvage_id(br#"{"t":"history_request","v":1,"id":"q9","body":{}}"#).as_deref(),
            Some("q9")
        );
        assert_eq!(salvage_id(b"not json"), None);
        assert_eq!(salvage_id(br#"{"id":5}"#), None);
    }
}
