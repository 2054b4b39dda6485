//! The RabbitMQ topology: names, declarations and publishing helpers.
//!
//! ```text
//!  gateway ──intent──▶ chat.intents (direct, key = partition "0".."N-1")
//!                        └──▶ router.intent.<p>   (durable, single active consumer)
//!  router ──event───▶ chat.rooms (topic, key = room.<escaped room>)
//!                        └──▶ gateway.<id>   bound per room while the gateway
//!                                            has members there (JOIN/PART = bind/unbind)
//!  router ──reply───▶ "" (default exchange, key = gateway.<id>)  same queue, same order
//!  anyone ──direct──▶ chat.direct (direct, key = session.<sid>)
//!                        └──▶ session.<sid>  (durable, x-expires, x-max-length)
//!                             XMPP sessions also bound by account.<name>
//!  chat.rooms ──(room.*)──▶ history.events   (durable: every room event, kept)
//!  gateway ──DirectLog──▶ "" / history.direct (durable, single active consumer)
//!  gateway ──HistoryRequest──▶ "" / history.requests (durable), answered to reply_to
//!  anyone ──alert──▶ chat.alerts (topic, key = room name)
//!                        └──▶ router.alerts (durable, single active consumer),
//!                             forwarded as intents (see crate::alerts)
//! ```
//!
//! All queues are durable with `x-expires` where they belong to something
//! that can vanish (RabbitMQ 4 deprecates transient non-exclusive queues).

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::schema::BusMessage;

/// Client intents, routed by partition number.
pub const INTENTS_EXCHANGE: &str = "chat.intents";
/// Room events, routed by `room.<escaped room>`.
pub const ROOMS_EXCHANGE: &str = "chat.rooms";
/// Deliveries to one session (`session.<sid>`).
pub const DIRECT_EXCHANGE: &str = "chat.direct";

/// The queue every auth-service replica consumes (default exchange).
pub const AUTH_QUEUE: &str = "auth.requests";

/// Every room event, for the history service: bound to [`ROOMS_EXCHANGE`]
/// with [`HISTORY_EVENTS_BINDING`]. Replicas compete for it (room events
/// carry their seq, so the order of consumption does not matter).
pub const HISTORY_EVENTS_QUEUE: &str = "history.events";
/// The binding key of [`HISTORY_EVENTS_QUEUE`]: every `room.<escaped>` key
/// (escaped names contain no dot, so one word matches them all).
pub const HISTORY_EVENTS_BINDING: &str = "room.*";
/// Direct messages for the history service (default exchange). Single
/// active consumer: the service numbers each direct conversation in the
/// order it consumes, so one replica at a time does it.
pub const HISTORY_DIRECT_QUEUE: &str = "history.direct";
/// History queries (default exchange), shared by every replica.
pub const HISTORY_REQUESTS_QUEUE: &str = "history.requests";

pub fn intent_queue(partition: u16) -> String {
    format!("router.intent.{partition}")
}

pub fn gateway_queue(gateway_id: &str) -> String {
    format!("gateway.{gateway_id}")
}

pub fn session_queue(sid: &str) -> String {
    format!("session.{sid}")
}

/// The routing key of a session on [`DIRECT_EXCHANGE`].
pub fn session_key(sid: &str) -> String {
    format!("session.{sid}")
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("AMQP: {0}")]
    Amqp(lapin::Error),
    #[error("publish of {what} was not confirmed by the broker")]
    Nacked { what: String },
}

impl From<lapin::Error> for BusError {
    fn from(e: lapin::Error) -> Self {
        BusError::Amqp(e)
    }
}

/// Opens an AMQP connection, named so that `rabbitmqctl list_connections`
/// tells which process holds it.
pub async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let props = ConnectionProperties::default().with_connection_name(name.to_string().into());
    Ok(Connection::connect(url, props).await?)
}

/// Opens a channel with publisher confirms enabled.
pub async fn confirm_channel(conn: &Connection) -> Result<Channel, BusError> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

/// Declares the exchanges and the router's partition queues. Idempotent;
/// every process calls it on start-up so that start order does not matter.
pub async fn declare_core(ch: &Channel, partitions: u16) -> Result<(), BusError> {
    let ex = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(
        INTENTS_EXCHANGE.into(),
        ExchangeKind::Direct,
        ex,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        ROOMS_EXCHANGE.into(),
        ExchangeKind::Topic,
        ex,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        DIRECT_EXCHANGE.into(),
        ExchangeKind::Direct,
        ex,
        FieldTable::default(),
    )
    .await?;
    for p in 0..partitions {
        let q = intent_queue(p);
        ch.queue_declare(
            q.as_str().into(),
            durable(),
            args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
        )
        .await?;
        ch.queue_bind(
            q.as_str().into(),
            INTENTS_EXCHANGE.into(),
            p.to_string().as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Declares the auth-service request queue (durable, shared by replicas).
pub async fn declare_auth_queue(ch: &Channel) -> Result<(), BusError> {
    ch.queue_declare(AUTH_QUEUE.into(), durable(), FieldTable::default())
        .await?;
    Ok(())
}

/// Declares the history service's three queues and binds the events queue
/// to every room. Idempotent. The router declares them too, so that room
/// events published before the history service first starts are kept, and
/// gateways do, so that their mandatory publishes are routable.
pub async fn declare_history_queues(ch: &Channel) -> Result<(), BusError> {
    ch.queue_declare(
        HISTORY_EVENTS_QUEUE.into(),
        durable(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        HISTORY_EVENTS_QUEUE.into(),
        ROOMS_EXCHANGE.into(),
        HISTORY_EVENTS_BINDING.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        HISTORY_DIRECT_QUEUE.into(),
        durable(),
        args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
    )
    .await?;
    ch.queue_declare(
        HISTORY_REQUESTS_QUEUE.into(),
        durable(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Declares a gateway's room-traffic queue. It outlives the gateway by
/// `expires_secs`, then RabbitMQ deletes it with all its room bindings.
pub async fn declare_gateway_queue(
    ch: &Channel,
    gateway_id: &str,
    expires_secs: u64,
) -> Result<String, BusError> {
    let q = gateway_queue(gateway_id);
    ch.queue_declare(
        q.as_str().into(),
        durable(),
        args(&[(
            "x-expires",
            AMQPValue::LongLongInt((expires_secs * 1000) as i64),
        )]),
    )
    .await?;
    Ok(q)
}

/// Declares a per-session queue (bounded, resumable for `expires_secs`, not
/// exclusive) and binds it to [`DIRECT_EXCHANGE`] by session id. When full,
/// the broker refuses further publishes to it (`reject-publish`), so the
/// sender learns of it instead of older messages being dropped silently.
pub async fn declare_session_queue(
    ch: &Channel,
    sid: &str,
    expires_secs: u64,
    max_len: u32,
) -> Result<String, BusError> {
    let q = session_queue(sid);
    ch.queue_declare(
        q.as_str().into(),
        durable(),
        args(&[
            (
                "x-expires",
                AMQPValue::LongLongInt((expires_secs * 1000) as i64),
            ),
            ("x-max-length", AMQPValue::LongLongInt(i64::from(max_len))),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
        ]),
    )
    .await?;
    ch.queue_bind(
        q.as_str().into(),
        DIRECT_EXCHANGE.into(),
        session_key(sid).as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(q)
}

/// Binds a session's queue to [`DIRECT_EXCHANGE`] by account as well
/// ([`crate::roster::account_key`]): deliveries for every session of the
/// account (roster pushes, presence, carbons).
pub async fn bind_session_to_account(
    ch: &Channel,
    sid: &str,
    account: &str,
) -> Result<(), BusError> {
    ch.queue_bind(
        session_queue(sid).as_str().into(),
        DIRECT_EXCHANGE.into(),
        crate::roster::account_key(account).as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Deletes a session's queue (an explicit QUIT needs no resume window).
pub async fn delete_session_queue(ch: &Channel, sid: &str) -> Result<(), BusError> {
    ch.queue_delete(
        session_queue(sid).as_str().into(),
        QueueDeleteOptions::default(),
    )
    .await?;
    Ok(())
}

/// Properties of every bus message: JSON, persistent.
pub fn message_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

/// Publishes `msg` and returns the pending confirm; `.await` it (or call
/// `wait_for_confirms` on the channel) before treating the message as sent.
/// `mandatory` makes an unroutable message come back instead of vanishing.
pub async fn publish(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    msg: &BusMessage,
    mandatory: bool,
) -> Result<lapin::PublisherConfirm, BusError> {
    Ok(ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory,
                ..BasicPublishOptions::default()
            },
            &msg.to_json(),
            message_properties(),
        )
        .await?)
}

/// Publishes and waits for the broker's confirm. Fails if the broker nacks
/// or (with `mandatory`) returns the message as unroutable.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    msg: &BusMessage,
    mandatory: bool,
) -> Result<(), BusError> {
    let confirm = publish(ch, exchange, routing_key, msg, mandatory)
        .await?
        .await?;
    if confirm.is_nack() || confirm.take_message().is_some() {
        return Err(BusError::Nacked {
            what: format!("{exchange}/{routing_key}"),
        });
    }
    Ok(())
}
