//! Following core NATS subjects: signals are hints (typing, read markers,
//! presence), never messages, so a listener that does not keep up loses
//! some rather than slowing anyone.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Follows `subject`: each message `parse`s into an item for `tx`, dropped
/// when the receiver does not keep up. The task ends when aborted.
pub fn forward<T: Send + 'static>(
    client: &async_nats::Client,
    subject: String,
    tx: mpsc::Sender<T>,
    parse: impl Fn(&[u8]) -> Option<T> + Send + 'static,
) -> JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let mut sub = match client.subscribe(subject.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "subscribing to signals failed");
                return;
            }
        };
        while let Some(msg) = sub.next().await {
            if let Some(item) = parse(&msg.payload) {
                let _ = tx.try_send(item);
            }
        }
    })
}
