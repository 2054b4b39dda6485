//! The `topics` table (Tinode subscriptions and markers) and the account
//! search behind Tinode's `fnd`.

use bus::schema::{FoundAccount, TopicState};
use chrono::{DateTime, Utc};

use super::{Db, DbError};

/// The most topics one account's list returns.
const MAX_TOPICS: i64 = 1000;
/// The most hidden ranges kept per topic.
const MAX_HIDDEN: i64 = 1000;

impl Db {
    pub async fn topics(&self, account: &str) -> Result<Vec<TopicState>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT topic, subscribed, read_seq, recv_seq, created_at, updated_at, hidden \
                 FROM topics WHERE account = $1 ORDER BY topic LIMIT $2",
                &[&account, &MAX_TOPICS],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let created: DateTime<Utc> = r.try_get(4)?;
                let updated: DateTime<Utc> = r.try_get(5)?;
                let hidden: serde_json::Value = r.try_get(6)?;
                Ok(TopicState {
                    hidden: serde_json::from_value(hidden).unwrap_or_default(),
                    topic: r.try_get(0)?,
                    subscribed: r.try_get(1)?,
                    read: r.try_get::<_, i64>(2)?.max(0) as u64,
                    recv: r.try_get::<_, i64>(3)?.max(0) as u64,
                    created_at: created.timestamp_millis(),
                    updated_at: updated.timestamp_millis(),
                })
            })
            .collect()
    }

    /// Marks `topic` subscribed (creating the row). Unknown accounts are a
    /// foreign-key violation, reported as an error.
    pub async fn join_topic(&self, account: &str, topic: &str) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.execute(
            "INSERT INTO topics (account, topic, subscribed) VALUES ($1, $2, true) \
             ON CONFLICT (account, topic) DO UPDATE SET subscribed = true, updated_at = now() \
             WHERE NOT topics.subscribed",
            &[&account, &topic],
        )
        .await?;
        Ok(())
    }

    pub async fn leave_topic(&self, account: &str, topic: &str) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.execute(
            "DELETE FROM topics WHERE account = $1 AND topic = $2",
            &[&account, &topic],
        )
        .await?;
        Ok(())
    }

    /// Raises the markers (`read` raises `recv` too) and returns the stored
    /// pair. One statement, so concurrent marks from several sessions can
    /// only ever raise them.
    pub async fn mark_topic(
        &self,
        account: &str,
        topic: &str,
        read: u64,
        recv: u64,
    ) -> Result<(u64, u64), DbError> {
        let read = i64::try_from(read).unwrap_or(i64::MAX);
        let recv = i64::try_from(recv).unwrap_or(i64::MAX).max(read);
        let conn = self.pool.get().await?;
        let row = conn
            .query_one(
                "INSERT INTO topics (account, topic, read_seq, recv_seq) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account, topic) DO UPDATE SET \
                   read_seq = GREATEST(topics.read_seq, EXCLUDED.read_seq), \
                   recv_seq = GREATEST(topics.recv_seq, EXCLUDED.recv_seq), \
                   updated_at = now() \
                 RETURNING read_seq, recv_seq",
                &[&account, &topic, &read, &recv],
            )
            .await?;
        Ok((
            row.try_get::<_, i64>(0)?.max(0) as u64,
            row.try_get::<_, i64>(1)?.max(0) as u64,
        ))
    }

    /// Appends `ranges` to the topic's hidden numbers (at most
    /// [`MAX_HIDDEN`] ranges are kept: the oldest go).
    pub async fn hide_in_topic(
        &self,
        account: &str,
        topic: &str,
        ranges: &[(u64, u64)],
    ) -> Result<(), DbError> {
        let added = serde_json::to_value(ranges).unwrap_or_default();
        let conn = self.pool.get().await?;
        conn.execute(
            "INSERT INTO topics (account, topic, hidden) VALUES ($1, $2, $3) \
             ON CONFLICT (account, topic) DO UPDATE SET \
               hidden = (SELECT COALESCE(jsonb_agg(e ORDER BY n), '[]'::jsonb) FROM ( \
                   SELECT e, n FROM jsonb_array_elements(topics.hidden || EXCLUDED.hidden) \
                     WITH ORDINALITY AS t(e, n) ORDER BY n DESC LIMIT $4) AS kept), \
               updated_at = now()",
            &[&account, &topic, &added, &MAX_HIDDEN],
        )
        .await?;
        Ok(())
    }

    /// Accounts named (folded) `names` or with an e-mail address in
    /// `emails` (lower-cased), enabled ones only.
    pub async fn search_accounts(
        &self,
        names: &[String],
        emails: &[String],
        limit: u32,
    ) -> Result<Vec<(String, Option<String>, i64)>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT name, lower(email), created_at FROM accounts \
                 WHERE NOT disabled AND (name = ANY($1) OR lower(email) = ANY($2)) \
                 ORDER BY name LIMIT $3",
                &[&names, &emails, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let created: DateTime<Utc> = r.try_get(2)?;
                Ok((r.try_get(0)?, r.try_get(1)?, created.timestamp_millis()))
            })
            .collect()
    }
}

/// Turns found rows into answers, each naming the term it matched.
pub fn found(
    rows: Vec<(String, Option<String>, i64)>,
    terms: &[(String, String)],
) -> Vec<FoundAccount> {
    rows.into_iter()
        .map(|(account, email, registered_at)| {
            let matched = terms
                .iter()
                .find(|(_, key)| *key == account || Some(key) == email.as_ref())
                .map(|(asked, _)| asked.clone())
                .unwrap_or_else(|| account.clone());
            FoundAccount {
                account,
                registered_at,
                matched,
            }
        })
        .collect()
}
