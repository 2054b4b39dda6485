//! Binding and unbinding gateway queues to rooms, on a channel of its own.
//!
//! A bind to a queue that no longer exists (its gateway died and the queue
//! expired) fails with 404, and AMQP closes the channel on which that
//! happens. Doing it on a separate channel keeps the partition's publishing
//! channel (and its pending confirms) alive; this channel is simply
//! recreated on next use, on the current connection of the [`Link`] (after
//! a broker restart, the new one).

use bus::names::room_routing_key;
use bus::recovery::Link;
use bus::topology::{gateway_queue, ROOMS_EXCHANGE};
use lapin::options::QueueBindOptions;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The gateway's queue does not exist (any more).
    #[error("queue {0} does not exist")]
    QueueGone(String),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the AMQP connection is down")]
    Disconnected,
}

pub struct Binder {
    link: Link,
    channel: Option<Channel>,
}

impl Binder {
    pub fn new(link: Link) -> Self {
        Self {
            link,
            channel: None,
        }
    }

    async fn channel(&mut self) -> Result<Channel, BindError> {
        match &self.channel {
            Some(channel) if channel.status().connected() => Ok(channel.clone()),
            _ => {
                let live = self.link.live().ok_or(BindError::Disconnected)?;
                let channel = live.conn.create_channel().await?;
                self.channel = Some(channel.clone());
                Ok(channel)
            }
        }
    }

    /// Binds `gateway.<gateway>` to the room's key and waits for `bind-ok`.
    pub async fn bind(&mut self, gateway: &str, room: &str) -> Result<(), BindError> {
        let queue = gateway_queue(gateway);
        let key = room_routing_key(room);
        let result = self
            .channel()
            .await?
            .queue_bind(
                queue.as_str().into(),
                ROOMS_EXCHANGE.into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        self.classify(result, queue)
    }

    /// Removes the binding. A queue that is already gone took its bindings
    /// with it, so that counts as done.
    pub async fn unbind(&mut self, gateway: &str, room: &str) -> Result<(), BindError> {
        let queue = gateway_queue(gateway);
        let key = room_routing_key(room);
        let result = self
            .channel()
            .await?
            .queue_unbind(
                queue.as_str().into(),
                ROOMS_EXCHANGE.into(),
                key.as_str().into(),
                FieldTable::default(),
            )
            .await;
        match self.classify(result, queue) {
            Err(BindError::QueueGone(_)) => Ok(()),
            other => other,
        }
    }

    /// Closes the channel, so that it is not still closing (on drop) when
    /// the connection closes.
    pub async fn close(&mut self) {
        if let Some(channel) = self.channel.take() {
            if channel.status().connected() {
                let _ = channel.close(200, "shutting down".into()).await;
            }
        }
    }

    fn classify(&mut self, result: lapin::Result<()>, queue: String) -> Result<(), BindError> {
        let Err(error) = result else { return Ok(()) };
        // Any channel error closes the channel: start afresh next time.
        self.channel = None;
        if is_not_found(&error) {
            Err(BindError::QueueGone(queue))
        } else {
            Err(BindError::Amqp(error))
        }
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(e) if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}
