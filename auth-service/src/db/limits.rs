//! The `login_failures` table: failed-login counters shared by every
//! replica, keyed `acct:<name>` and `addr:<address>`.

use super::{Db, DbError};

/// The limits of one key kind.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub window_secs: u64,
    pub lockout_secs: u64,
}

impl Db {
    /// If any of `keys` is locked: the seconds until the last lock ends
    /// (at least 1).
    pub async fn locked_for(&self, keys: &[String]) -> Result<Option<u64>, DbError> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_one(
                "SELECT ceil(extract(epoch FROM max(locked_until) - clock_timestamp()))::bigint \
                 FROM login_failures WHERE key = ANY($1) AND locked_until > clock_timestamp()",
                &[&keys],
            )
            .await?;
        let secs: Option<i64> = row.try_get(0)?;
        Ok(secs.map(|s| u64::try_from(s).unwrap_or(0).max(1)))
    }

    /// Counts one failure for `key` (one transaction). Reaching the limit
    /// within the window locks the key and starts a fresh count, so that
    /// after the lockout the caller has a full allowance again.
    pub async fn record_failure(&self, key: &str, limits: Limits) -> Result<(), DbError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let window = limits.window_secs as f64;
        let row = tx
            .query_one(
                "INSERT INTO login_failures AS f (key, failures, window_started) \
                 VALUES ($1, 1, clock_timestamp()) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN f.window_started <= clock_timestamp() - make_interval(secs => $2) \
                                   THEN 1 ELSE f.failures + 1 END, \
                   window_started = CASE WHEN f.window_started <= clock_timestamp() - make_interval(secs => $2) \
                                   THEN clock_timestamp() ELSE f.window_started END \
                 RETURNING failures",
                &[&key, &window],
            )
            .await?;
        let failures: i32 = row.try_get(0)?;
        if i64::from(failures) >= i64::from(limits.max_failures) {
            let lockout = limits.lockout_secs as f64;
            tx.execute(
                "UPDATE login_failures SET failures = 0, window_started = clock_timestamp(), \
                   locked_until = clock_timestamp() + make_interval(secs => $2) WHERE key = $1",
                &[&key, &lockout],
            )
            .await?;
            tracing::info!(key, "too many failed logins: locked");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes counters that no longer matter (window over, not locked),
    /// so that names tried once do not accumulate forever.
    pub async fn prune_failures(&self, window_secs: u64) -> Result<u64, DbError> {
        let conn = self.pool.get().await?;
        let window = window_secs as f64;
        Ok(conn
            .execute(
                "DELETE FROM login_failures \
                 WHERE (locked_until IS NULL OR locked_until < clock_timestamp()) \
                   AND window_started < clock_timestamp() - make_interval(secs => $1)",
                &[&window],
            )
            .await?)
    }

    /// Forgets the failures of `key` (after a successful login).
    pub async fn clear_failures(&self, key: &str) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }
}
