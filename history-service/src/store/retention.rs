//! Retention: deleting items older than a number of days and items beyond
//! the newest N of each conversation, in bounded chunks so that no single
//! statement holds locks (or bloats WAL) for long while the consumers write.
//!
//! Only one replica trims at a time (`pg_try_advisory_lock`); the others skip
//! the round. Pending deliveries of deleted items go with them (foreign key
//! cascade).

use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Object;

use super::{Store, StoreError};

/// Rows deleted per statement.
pub const CHUNK: i64 = 5_000;

/// `pg_try_advisory_lock` key of a retention round.
const RETENTION_LOCK: i64 = 0x6869_7374_7472_696d; // "histtrim"

/// What a round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    pub by_age: u64,
    pub by_count: u64,
    /// Another replica was trimming; this one did nothing.
    pub skipped: bool,
}

/// The retention rules.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Keep items younger than this (`None`: forever).
    pub max_age: Option<Duration>,
    /// Keep at most this many newest items per conversation (`None`: all).
    pub max_per_conversation: Option<u32>,
}

impl Store {
    /// One retention round.
    pub async fn trim(&self, policy: Policy) -> Result<Trimmed, StoreError> {
        let mut out = Trimmed::default();
        if policy.max_age.is_none() && policy.max_per_conversation.is_none() {
            return Ok(out);
        }
        let conn = self.pool.get().await?;
        let locked: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RETENTION_LOCK])
            .await?
            .get(0);
        if !locked {
            out.skipped = true;
            return Ok(out);
        }
        let result = trim_locked(&conn, policy, &mut out).await;
        conn.execute("SELECT pg_advisory_unlock($1)", &[&RETENTION_LOCK])
            .await?;
        result.map(|()| out)
    }
}

/// The round itself, on the connection that holds the lock.
async fn trim_locked(conn: &Object, policy: Policy, out: &mut Trimmed) -> Result<(), StoreError> {
    if let Some(age) = policy.max_age {
        let cutoff = Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        let stmt = conn
            .prepare_cached(
                "DELETE FROM messages WHERE ctid = ANY(ARRAY( \
                       SELECT ctid FROM messages WHERE at < $1 LIMIT $2))",
            )
            .await?;
        loop {
            let n = conn.execute(&stmt, &[&cutoff, &CHUNK]).await?;
            out.by_age += n;
            if n < CHUNK as u64 {
                break;
            }
        }
    }
    if let Some(keep) = policy.max_per_conversation {
        let keep = i64::from(keep);
        // last_seq bounds a conversation's item count from above, so
        // only these can hold more than `keep`.
        let candidates: Vec<i64> = conn
            .query(
                "SELECT id FROM conversations WHERE last_seq > $1 ORDER BY id",
                &[&keep],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let cut = conn
            .prepare_cached(
                "SELECT seq FROM messages WHERE conversation = $1 \
                     ORDER BY seq DESC OFFSET $2 LIMIT 1",
            )
            .await?;
        let delete = conn
            .prepare_cached(
                "DELETE FROM messages WHERE conversation = $1 AND seq IN ( \
                       SELECT seq FROM messages WHERE conversation = $1 AND seq <= $2 \
                       ORDER BY seq LIMIT $3)",
            )
            .await?;
        for id in candidates {
            let Some(row) = conn.query_opt(&cut, &[&id, &keep]).await? else {
                continue;
            };
            let newest_dropped: i64 = row.get(0);
            loop {
                let n = conn
                    .execute(&delete, &[&id, &newest_dropped, &CHUNK])
                    .await?;
                out.by_count += n;
                if n < CHUNK as u64 {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Runs a retention round every `interval` until `shutdown`.
pub async fn run(
    store: Store,
    policy: Policy,
    interval: Duration,
    mut shutdown: bus::shutdown::Shutdown,
) {
    if policy.max_age.is_none() && policy.max_per_conversation.is_none() {
        return;
    }
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticker.tick() => {}
        }
        match store.trim(policy).await {
            Ok(t) if t.skipped => tracing::debug!("another replica is trimming"),
            Ok(t) => {
                crate::metrics::trimmed(t.by_age, t.by_count);
                if t.by_age + t.by_count > 0 {
                    tracing::info!(
                        by_age = t.by_age,
                        by_count = t.by_count,
                        "retention deleted items"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "retention round failed"),
        }
    }
}
