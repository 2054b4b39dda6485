//! Server notices for operators: what happens on the whole network
//! (clients connecting and exiting on any gateway and protocol, OPER,
//! KILL, CHGHOST), as `*** Notice -- …` NOTICEs to IRC operators with user
//! mode `+s`.
//!
//! Every gateway publishes on one core NATS subject, `<prefix>.snotice`;
//! an operator's connection follows it while it has `+s` (set by OPER).
//! Notices are hints for people watching, not records: one an operator's
//! connection cannot keep up with is dropped.

use crate::gateway::Gateway;
use crate::signals::Followers;
use serde::{Deserialize, Serialize};

/// Notices buffered per operator connection before the newest are dropped.
const BUFFER: usize = 256;

/// One notice as signalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The gateway it happened on.
    pub gateway: String,
    pub text: String,
}

/// `<prefix>.snotice`.
pub fn subject(prefix: &str) -> String {
    format!("{prefix}.snotice")
}

/// Tells every operator watching (best effort).
pub async fn publish(gw: &Gateway, text: String) {
    let notice = Notice {
        gateway: gw.id.clone(),
        text,
    };
    let payload = serde_json::to_vec(&notice).unwrap_or_default();
    let subject = subject(gw.registry.prefix());
    if let Err(e) = gw.registry.nats().publish(subject, payload.into()).await {
        tracing::debug!(error = %e, "publishing a server notice failed");
    }
}

/// An operator connection's subscription: dropped, it ends.
pub struct Follow(Followers<Notice>);

impl Follow {
    pub fn start(gw: &Gateway) -> Self {
        let mut f = Followers::new(gw.registry.nats().clone(), BUFFER);
        f.follow("", subject(gw.registry.prefix()), |payload| {
            serde_json::from_slice::<Notice>(payload).ok()
        });
        Self(f)
    }
}

/// The next notice, or never without a subscription.
pub async fn next(follow: &mut Option<Follow>) -> Notice {
    match follow {
        Some(Follow(f)) => match f.next().await {
            Some(n) => n,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// `nick (user@host)`, as notices name people.
pub fn who(actor: &bus::schema::Actor) -> String {
    format!("{} ({}@{})", actor.nick, actor.user, actor.host)
}
