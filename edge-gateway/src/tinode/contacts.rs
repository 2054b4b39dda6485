//! `{pres}` on `me`: the user's one-to-one contacts coming online and
//! going offline, on any protocol.
//!
//! The contacts are the account peers of the last `me` listing. For each,
//! the session listens to its presence subject ([`bus::presence`]); a
//! signal makes it ask the registry whether the account is online now,
//! and a change is told as `{pres topic:"me" src:<usr…> what:"on"|"off"}`.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conn::Conn;
use super::ids;

/// Contacts followed per session.
pub const MAX_CONTACTS: usize = 100;
/// Signals buffered before the oldest are dropped.
const BUFFER: usize = 64;

struct Followed {
    task: JoinHandle<()>,
    online: bool,
}

pub struct Contacts {
    tx: mpsc::Sender<String>,
    rx: mpsc::Receiver<String>,
    followed: HashMap<String, Followed>,
}

impl Default for Contacts {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        Self {
            tx,
            rx,
            followed: HashMap::new(),
        }
    }
}

impl Contacts {
    /// Follows `account` (folded), known to be `online` now.
    pub fn follow(&mut self, nats: &async_nats::Client, prefix: &str, account: &str, online: bool) {
        if let Some(f) = self.followed.get_mut(account) {
            f.online = online;
            return;
        }
        if self.followed.len() >= MAX_CONTACTS {
            return;
        }
        let name = account.to_string();
        // Only "look again": what the signal says is asked of the registry.
        let subject = bus::presence::subject(prefix, account);
        let task =
            crate::signals::forward(nats, subject, self.tx.clone(), move |_| Some(name.clone()));
        self.followed
            .insert(account.to_string(), Followed { task, online });
    }

    pub fn clear(&mut self) {
        for (_, f) in self.followed.drain() {
            f.task.abort();
        }
    }

    /// The next contact to look at again.
    pub async fn next(&mut self) -> Option<String> {
        self.rx.recv().await
    }
}

impl Drop for Contacts {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A contact signalled: tell `me` if it came or went.
pub async fn on_signal(c: &mut Conn, account: String) {
    let online = c.gw.registry.account_online(&account).await;
    let Some(f) = c.contacts.followed.get_mut(&account) else {
        return;
    };
    if f.online == online {
        return;
    }
    f.online = online;
    if c.me {
        let what = if online { "on" } else { "off" };
        c.send(super::wire::pres("me", &ids::account_uid(&account), what));
    }
}
