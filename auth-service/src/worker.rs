//! The `auth.requests` consumer: the auth service's [`Responder`] for the
//! shared request/answer worker ([`bus::rpc`]), which does the delivery
//! (answer to `reply_to`, ack after the confirm, drain, broker restarts).
//!
//! A request can be answered twice (a replica dies after answering, before
//! its ack lands): every operation tolerates it, and registration
//! recognises its own redelivery by request id.

use std::sync::Arc;
use std::time::Duration;

use bus::recovery::Link;
use bus::rpc::{self, Answer, Reply, Request, Responder, RpcError, Settings};
use bus::schema::{AuthError, AuthReply, AuthReplyBody, BusMessage, SCHEMA_VERSION};
use bus::shutdown::Shutdown;
use bus::topology::AUTH_QUEUE;

use crate::service::Service;

/// How long in-flight requests get to finish after SIGTERM: long enough
/// for an argon2 verification queued behind the others on a busy replica.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers `auth.requests` with `service` until `shutdown` fires (then
/// drains) or RabbitMQ fails for a reason other than a lost connection.
/// The queue is declared by the link's setup.
pub async fn run(
    link: &Link,
    service: Arc<Service>,
    prefetch: u16,
    tag: &str,
    shutdown: Shutdown,
) -> Result<(), RpcError> {
    let settings = Settings {
        queue: AUTH_QUEUE.to_string(),
        prefetch,
        tag: tag.to_string(),
        drain_timeout: DRAIN_TIMEOUT,
    };
    rpc::serve(link, &settings, Arc::new(Auth { service }), shutdown).await
}

/// Decodes [`bus::schema::AuthRequest`]s and encodes the service's answers.
struct Auth {
    service: Arc<Service>,
}

impl Responder for Auth {
    async fn answer(&self, request: Request<'_>) -> Answer {
        let auth = match BusMessage::from_json(request.data) {
            Ok(BusMessage::AuthRequest(auth)) => auth,
            decoded => {
                // Never log the body: it may hold a password.
                let why = match decoded {
                    Err(error) => error.to_string(),
                    Ok(_) => "not an auth request".to_string(),
                };
                tracing::warn!(error = %why, "rejecting a malformed auth request");
                return Answer::malformed(request.data, |id| {
                    encode(
                        id,
                        AuthReplyBody::Failure {
                            code: AuthError::Malformed,
                            retry_after_secs: None,
                        },
                    )
                });
            }
        };
        if request.redelivered {
            // Another replica took it and died (or its channel closed)
            // before acking.
            tracing::info!(id = %auth.id, op = auth.body.op(), "answering a redelivered request");
        }
        let body = self.service.handle(&auth).await;
        Answer::Reply(Reply {
            body: encode(&auth.id, body),
            id: auth.id,
        })
    }
}

fn encode(id: &str, body: AuthReplyBody) -> Vec<u8> {
    BusMessage::AuthReply(AuthReply {
        v: SCHEMA_VERSION,
        id: id.to_string(),
        body,
    })
    .to_json()
}
