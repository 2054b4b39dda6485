//! Keeps this gateway's sessions alive in NATS.
//!
//! The sessions and nicks buckets expire entries after `session_ttl_secs`
//! (NATS 2.9 has no per-key TTL), so every third of that we re-put each
//! local session's record and refresh its nick claim. If a claim turns out
//! to be someone else's, that client is disconnected. When a gateway dies,
//! its entries simply age out and the routers sweep its users.

use std::sync::Arc;
use std::time::Duration;

use bus::shutdown::Shutdown;
use futures::StreamExt;

use crate::gateway::Gateway;
use crate::registry::RegistryError;
use crate::sessions::{KillCause, SessionShared};

/// Sessions refreshed concurrently.
const CONCURRENCY: usize = 32;

pub async fn run(gw: Arc<Gateway>, mut shutdown: Shutdown) {
    let period = Duration::from_secs((gw.bus.session_ttl_secs / 3).max(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        futures::stream::iter(gw.sessions.all())
            .for_each_concurrent(CONCURRENCY, |s| refresh(&gw, s))
            .await;
    }
}

async fn refresh(gw: &Gateway, s: Arc<SessionShared>) {
    let mut st = s.state.lock().await;
    if st.closed || s.kill.reason().is_some() {
        return;
    }
    if let Err(e) = gw.registry.put_session(&st.record).await {
        tracing::warn!(sid = %s.sid, error = %e, "heartbeat: session record");
    }
    match gw
        .registry
        .refresh_nick(&st.record.actor.nick, &s.sid, st.nick_rev)
        .await
    {
        Ok(rev) => st.nick_rev = rev,
        Err(RegistryError::NickLost) => {
            tracing::warn!(sid = %s.sid, nick = %st.record.actor.nick, "heartbeat: nick claim lost");
            s.kill.kill(KillCause::Replaced, "Nick collision");
        }
        Err(e) => tracing::warn!(sid = %s.sid, error = %e, "heartbeat: nick claim"),
    }
}
