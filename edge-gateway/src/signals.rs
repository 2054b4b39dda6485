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

/// A changing set of followed subjects, each under a key, all feeding one
/// receiver: what a connection or the dispatcher listens to right now.
pub struct Followers<T> {
    client: async_nats::Client,
    tx: mpsc::Sender<T>,
    rx: mpsc::Receiver<T>,
    tasks: std::collections::HashMap<String, JoinHandle<()>>,
}

impl<T: Send + 'static> Followers<T> {
    /// Signals buffered before the newest are dropped: `buffer`.
    pub fn new(client: async_nats::Client, buffer: usize) -> Self {
        let (tx, rx) = mpsc::channel(buffer);
        Self {
            client,
            tx,
            rx,
            tasks: Default::default(),
        }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Follows `subject` under `key`, replacing what `key` followed.
    pub fn follow(
        &mut self,
        key: &str,
        subject: String,
        parse: impl Fn(&[u8]) -> Option<T> + Send + 'static,
    ) {
        let task = forward(&self.client, subject, self.tx.clone(), parse);
        if let Some(old) = self.tasks.insert(key.to_string(), task) {
            old.abort();
        }
    }

    pub fn unfollow(&mut self, key: &str) {
        if let Some(task) = self.tasks.remove(key) {
            task.abort();
        }
    }

    pub fn follows(&self, key: &str) -> bool {
        self.tasks.contains_key(key)
    }

    pub fn clear(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }

    pub async fn next(&mut self) -> Option<T> {
        self.rx.recv().await
    }
}

impl<T> Drop for Followers<T> {
    fn drop(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}
