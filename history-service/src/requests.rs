//! The `history.requests` consumer: history queries from gateways.
//!
//! [`Handler`] answers the queries; it is the history service's
//! [`Responder`] for the shared request/answer worker ([`bus::rpc`]), which
//! does the delivery: answer to `reply_to`, ack only after the broker
//! confirmed the answer, reject what has no `reply_to`, drain on SIGTERM,
//! consume again after a broker restart. A request that cannot be decoded
//! is rejected too, answered `malformed` first when it names an id.
//!
//! Requests in flight when the connection is lost are redelivered and
//! answered again: every query is a read, except `ack_pending`, which is
//! idempotent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::history::{
    HistoryError, HistoryQuery, HistoryReply, HistoryReplyBody, HistoryRequest, HistoryTarget,
};
use bus::recovery::Link;
use bus::rpc::{self, Answer, Reply, Request, Responder, RpcError, Settings};
use bus::schema::{BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::HISTORY_REQUESTS_QUEUE;

use crate::access::{AccessError, Membership};
use crate::store::query::{merge_ranges, MAX_RANGES};
use crate::store::{Store, StoreError};

/// How long in-flight requests get to finish after SIGTERM (within the
/// service's overall drain time): queries are short reads.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The metrics label of this queue.
const QUEUE_LABEL: &str = "requests";

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
            HistoryQuery::Numbered { .. } => "numbered",
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
            HistoryQuery::Numbered {
                target,
                ranges,
                limit,
            } => {
                let ranges = merge_ranges(ranges);
                if ranges.len() > MAX_RANGES {
                    return Ok(HistoryReplyBody::Failure {
                        code: HistoryError::Malformed,
                    });
                }
                let Some((conversation, name)) = self.readable(request, target).await? else {
                    return Ok(invalid);
                };
                let items = match conversation {
                    Some(id) => {
                        let limit = (*limit).min(self.max_page);
                        self.store.numbered(id, &ranges, limit).await?
                    }
                    None => Vec::new(),
                };
                HistoryReplyBody::Messages {
                    target: target.clone(),
                    name,
                    items,
                }
            }
            HistoryQuery::Fetch {
                target,
                selector,
                limit,
                events,
            } => {
                let Some((conversation, name)) = self.readable(request, target).await? else {
                    return Ok(invalid);
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

impl Handler {
    /// The conversation `target` names, if the requester may read it: its
    /// id (`None`: a room with nothing stored yet) and the name to answer
    /// with. `None` if it may not, or no such conversation exists (the two
    /// are not told apart). Rooms: the requester must be a current member
    /// (the router's record; a husk has no members). Direct: the requester
    /// must be one of the two participants.
    async fn readable(
        &self,
        request: &HistoryRequest,
        target: &HistoryTarget,
    ) -> Result<Option<(Option<i64>, String)>, Failed> {
        let who = &request.requester;
        Ok(match target {
            HistoryTarget::Room { room } => {
                // Membership first: a stranger learns nothing, not even
                // whether the room has history.
                let Some(name) = self.access.check(room, &who.sid).await? else {
                    return Ok(None);
                };
                let id = self.store.room_conversation(room).await?.map(|c| c.id);
                Some((id, name))
            }
            HistoryTarget::Direct { peer } => self
                .store
                .direct_conversation(&who.participant_key(), peer)
                .await?
                .map(|c| (Some(c.id), c.name)),
        })
    }
}

/// Answers `history.requests` with `handler` until `shutdown` fires (then
/// drains) or RabbitMQ fails for a reason other than a lost connection.
/// The queue is declared by the link's setup.
pub async fn run(
    link: &Link,
    handler: Arc<Handler>,
    prefetch: u16,
    tag: &str,
    shutdown: Shutdown,
) -> Result<(), RpcError> {
    let settings = Settings {
        queue: HISTORY_REQUESTS_QUEUE.to_string(),
        prefetch,
        tag: tag.to_string(),
        drain_timeout: DRAIN_TIMEOUT,
    };
    rpc::serve(link, &settings, handler, shutdown).await
}

impl Responder for Handler {
    async fn answer(&self, request: Request<'_>) -> Answer {
        let started = Instant::now();
        let query = match BusMessage::from_json(request.data) {
            Ok(BusMessage::HistoryRequest(query)) => query,
            decoded => {
                let why = match decoded {
                    Err(error) => error.to_string(),
                    Ok(_) => "not a history request".to_string(),
                };
                tracing::warn!(error = %why, "rejecting a malformed history request");
                crate::metrics::rejected(QUEUE_LABEL);
                return Answer::malformed(request.data, |id| {
                    encode(
                        id,
                        HistoryReplyBody::Failure {
                            code: HistoryError::Malformed,
                        },
                    )
                });
            }
        };
        let kind = Handler::kind(&query.body);
        if request.redelivered {
            // Another replica took it and died (or lost its connection)
            // before acking.
            tracing::info!(id = %query.id, kind, "answering a redelivered request");
        }
        let body = self.handle(&query).await;
        let outcome = match &body {
            HistoryReplyBody::Failure { code } => match code {
                HistoryError::InvalidTarget => "invalid_target",
                HistoryError::Malformed => "malformed",
                HistoryError::Internal => "internal",
            },
            _ => "ok",
        };
        crate::metrics::request(kind, outcome, started.elapsed());
        Answer::Reply(Reply {
            body: encode(&query.id, body),
            id: query.id,
        })
    }

    fn unanswerable(&self) {
        crate::metrics::rejected(QUEUE_LABEL);
    }

    fn resubscribing(&self) {
        crate::metrics::resubscribed(QUEUE_LABEL);
    }
}

fn encode(id: &str, body: HistoryReplyBody) -> Vec<u8> {
    BusMessage::HistoryReply(HistoryReply {
        v: SCHEMA_VERSION,
        id: id.to_string(),
        body,
    })
    .to_json()
}
