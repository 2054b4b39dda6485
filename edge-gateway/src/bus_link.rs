//! The gateway's AMQP side: one connection, split into channels by job.
//!
//! * `publisher` (confirm mode): intents and direct messages. Shared by all
//!   connections; each publish returns its own pending confirm, so clients
//!   never queue behind one another's confirm waits.
//! * `control`: queue declarations and deletions. A failed declaration
//!   closes the channel it ran on, so this one is kept apart from the
//!   others and reopened when that happens.
//! * `sessions`: the consumers of every `session.<sid>` queue (per-consumer
//!   prefetch). Thousands of consumers fit on one channel; thousands of
//!   channels would not fit under the broker's channel limit.
//! * the gateway queue gets a channel of its own in [`BusLink::consume_gateway_queue`].

use bus::config::BusConfig;
use bus::names::{fold, partition_of};
use bus::schema::{AuthRequest, BusMessage, Direct, Intent};
use bus::topology::{self, BusError};
use futures::{Stream, StreamExt};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer, PublisherConfirm};
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

pub struct BusLink {
    conn: Connection,
    publisher: Channel,
    control: Mutex<Channel>,
    sessions: Channel,
    gateway_id: String,
    partitions: u16,
    session_expires_secs: u64,
    session_max_len: u32,
    gateway_expires_secs: u64,
}

impl BusLink {
    /// Connects, opens the channels and declares the shared topology.
    pub async fn connect(url: &str, gateway_id: &str, bus: &BusConfig) -> Result<Self, BusError> {
        let conn = topology::connect(url, &format!("edge-gateway {gateway_id}")).await?;
        let publisher = topology::confirm_channel(&conn).await?;
        let control = conn.create_channel().await?;
        topology::declare_core(&control, bus.partitions).await?;
        // Declared here too so that start order does not matter: requests
        // wait (up to their TTL) for an auth service that is starting. On
        // a channel of its own and not fatal: accounts are optional, chat
        // without them must still start.
        let auth_ch = conn.create_channel().await?;
        match topology::declare_auth_queue(&auth_ch).await {
            Ok(()) => {
                let _ = auth_ch.close(200, "declared".into()).await;
            }
            Err(e) => tracing::warn!(error = %e, "declaring the auth request queue failed"),
        }
        let sessions = conn.create_channel().await?;
        sessions
            .basic_qos(SESSION_PREFETCH, BasicQosOptions { global: false })
            .await?;
        Ok(Self {
            conn,
            publisher,
            control: Mutex::new(control),
            sessions,
            gateway_id: gateway_id.to_string(),
            partitions: bus.partitions,
            session_expires_secs: bus.session_queue_expires_secs,
            session_max_len: bus.session_queue_max_len,
            gateway_expires_secs: bus.gateway_queue_expires_secs,
        })
    }

    /// Connection-level events (errors); the caller stops the gateway on one.
    pub fn events(&self) -> impl Stream<Item = lapin::Event> + Send + '_ {
        self.conn.events_listener()
    }

    /// Declares `gateway.<id>` and starts consuming it with manual acks.
    pub async fn consume_gateway_queue(&self) -> Result<Consumer, BusError> {
        let ch = self.conn.create_channel().await?;
        ch.basic_qos(GATEWAY_PREFETCH, BasicQosOptions { global: false })
            .await?;
        let queue =
            topology::declare_gateway_queue(&ch, &self.gateway_id, self.gateway_expires_secs)
                .await?;
        Ok(ch
            .basic_consume(
                queue.as_str().into(),
                format!("dispatch-{}", self.gateway_id).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// Publishes an intent to its room's partition, persistent. Await the
    /// returned confirm (with [`confirmed`]) before treating it as sent.
    pub async fn publish_intent(&self, intent: Intent) -> Result<PublisherConfirm, BusError> {
        let key = partition_of(&fold(intent.body.room()), self.partitions).to_string();
        let msg = BusMessage::Intent(intent);
        topology::publish(
            &self.publisher,
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
        topology::publish(&self.publisher, topology::DIRECT_EXCHANGE, &key, &msg, true).await
    }

    /// Publishes an auth request to `auth.requests` (default exchange,
    /// mandatory), answered into `session.<reply_sid>`: `reply_to` names that
    /// queue and `correlation_id` is the request id, per the contract.
    pub async fn publish_auth(
        &self,
        reply_sid: &str,
        req: AuthRequest,
    ) -> Result<PublisherConfirm, BusError> {
        let props = topology::message_properties()
            .with_reply_to(topology::session_queue(reply_sid).as_str().into())
            .with_correlation_id(req.id.as_str().into())
            .with_expiration(AUTH_REQUEST_TTL_MS.into());
        let body = BusMessage::AuthRequest(req).to_json();
        Ok(self
            .publisher
            .basic_publish(
                "".into(),
                topology::AUTH_QUEUE.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                props,
            )
            .await?)
    }

    /// Runs `op` on the control channel, reopening it first if an earlier
    /// error closed it.
    async fn control(&self) -> Result<tokio::sync::MutexGuard<'_, Channel>, BusError> {
        let mut ch = self.control.lock().await;
        if !ch.status().connected() {
            *ch = self.conn.create_channel().await?;
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
        Ok(self
            .sessions
            .basic_consume(
                topology::session_queue(sid).as_str().into(),
                sid.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// Stops consuming `session.<sid>` and deletes it: the session is over.
    pub async fn close_session_queue(&self, sid: &str) -> Result<(), BusError> {
        self.sessions
            .basic_cancel(sid.into(), BasicCancelOptions::default())
            .await?;
        let ch = self.control().await?;
        topology::delete_session_queue(&ch, sid).await
    }

    /// Closes the connection (shutdown).
    pub async fn close(&self) {
        if let Err(e) = self.conn.close(200, "gateway shutting down".into()).await {
            tracing::debug!(error = %e, "closing the AMQP connection");
        }
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

/// The next delivery of a consumer; `None` once it ended or failed (logged).
pub async fn next_delivery(consumer: &mut Consumer) -> Option<lapin::message::Delivery> {
    match consumer.next().await? {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "consumer failed");
            None
        }
    }
}
