//! PostgreSQL: the durable copy of registered rooms (tables
//! `chanserv_rooms`, `chanserv_bans`, `chanserv_access`; see
//! `migrations/`).
//!
//! The database is shared with the auth and history services (default
//! `chat`), so these migrations keep their own refinery table,
//! `router_schema_history`, and their own advisory lock key: routers
//! starting together migrate in turn, never racing another service.
//!
//! Every write is guarded by the state's revision
//! ([`bus::schema::Registration::rev`]): an upsert only replaces an older
//! state and a delete only removes one that is not newer, so a router that
//! lost its partition and writes late changes nothing.

use std::collections::HashMap;

use bus::pg::{PgConfig, PgError};
use bus::schema::{AccessLevel, BanEntry, Registration, RoomModes, TopicInfo};
use deadpool_postgres::Pool;

use crate::registered::{Durable, Persist};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The refinery history table of these migrations.
pub const MIGRATION_TABLE: &str = "router_schema_history";

/// `pg_advisory_lock` key of the router's migrations ("routmigr").
const MIGRATION_LOCK: i64 = 0x726f_7574_6d69_6772;

const LOAD_ROOMS: &str = "\
SELECT room, name, founder, (extract(epoch FROM registered_at) * 1000)::bigint, topic_lock, \
       topic, topic_set_by, (extract(epoch FROM topic_set_at) * 1000)::bigint, \
       invite_only, moderated, no_external, secret, topic_ops, key, user_limit, rev \
FROM chanserv_rooms";

const LOAD_BANS: &str = "\
SELECT room, mask, set_by, (extract(epoch FROM set_at) * 1000)::bigint \
FROM chanserv_bans ORDER BY room, position";

const LOAD_ACCESS: &str = "SELECT room, account, level FROM chanserv_access";

const UPSERT_ROOM: &str = "\
INSERT INTO chanserv_rooms (room, name, founder, registered_at, topic_lock, topic, topic_set_by, \
    topic_set_at, invite_only, moderated, no_external, secret, topic_ops, key, user_limit, rev) \
VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0), $5, $6, $7, \
    to_timestamp($8::bigint / 1000.0), $9, $10, $11, $12, $13, $14, $15, $16) \
ON CONFLICT (room) DO UPDATE SET name = EXCLUDED.name, founder = EXCLUDED.founder, \
    registered_at = EXCLUDED.registered_at, topic_lock = EXCLUDED.topic_lock, \
    topic = EXCLUDED.topic, topic_set_by = EXCLUDED.topic_set_by, \
    topic_set_at = EXCLUDED.topic_set_at, invite_only = EXCLUDED.invite_only, \
    moderated = EXCLUDED.moderated, no_external = EXCLUDED.no_external, \
    secret = EXCLUDED.secret, topic_ops = EXCLUDED.topic_ops, key = EXCLUDED.key, \
    user_limit = EXCLUDED.user_limit, rev = EXCLUDED.rev, updated_at = now() \
WHERE chanserv_rooms.rev < EXCLUDED.rev \
RETURNING room";

const INSERT_BANS: &str = "\
INSERT INTO chanserv_bans (room, position, mask, set_by, set_at) \
SELECT $1, p, m, s, to_timestamp(t / 1000.0) \
FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[]) AS b(p, m, s, t)";

const INSERT_ACCESS: &str = "\
INSERT INTO chanserv_access (room, account, level) \
SELECT $1, a, l FROM unnest($2::text[], $3::text[]) AS x(a, l)";

/// The router's database handle.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// The database already held a newer (or the same) revision.
    Stale,
}

impl PgStore {
    /// Creates the database if asked to and missing, builds the pool and
    /// brings the router's tables up to date.
    pub async fn open(cfg: &PgConfig) -> Result<Self, PgError> {
        let pool = bus::pg::open_pool(cfg).await?;
        let mut runner = embedded::migrations::runner();
        runner.set_migration_table_name(MIGRATION_TABLE);
        bus::pg::migrate(&pool, runner, MIGRATION_LOCK).await?;
        Ok(Self { pool })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> bool {
        bus::pg::ping(&self.pool).await
    }

    /// Every registered room (the caller keeps its partition's).
    pub async fn load(&self) -> Result<Vec<Durable>, PgError> {
        let conn = self.pool.get().await?;
        let mut bans: HashMap<String, Vec<BanEntry>> = HashMap::new();
        for row in conn.query(LOAD_BANS, &[]).await? {
            bans.entry(row.get(0)).or_default().push(BanEntry {
                mask: row.get(1),
                set_by: row.get(2),
                set_at: row.get(3),
            });
        }
        let mut access: HashMap<String, Vec<(String, AccessLevel)>> = HashMap::new();
        for row in conn.query(LOAD_ACCESS, &[]).await? {
            let level: &str = row.get(2);
            let level = match level {
                "op" => AccessLevel::Op,
                _ => AccessLevel::Voice,
            };
            access
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), level));
        }
        let mut out = Vec::new();
        for row in conn.query(LOAD_ROOMS, &[]).await? {
            let room: String = row.get(0);
            let topic = row.get::<_, Option<String>>(5).map(|text| TopicInfo {
                text,
                set_by: row.get::<_, Option<String>>(6).unwrap_or_default(),
                set_at: row.get::<_, Option<i64>>(7).unwrap_or(0),
            });
            let limit: Option<i32> = row.get(14);
            let rev: i64 = row.get(15);
            out.push(Durable {
                name: row.get(1),
                registration: Registration {
                    founder: row.get(2),
                    registered_at: row.get(3),
                    topic_lock: row.get(4),
                    access: access
                        .remove(&room)
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    rev: u64::try_from(rev).unwrap_or(0),
                },
                topic,
                modes: RoomModes {
                    invite_only: row.get(8),
                    moderated: row.get(9),
                    no_external: row.get(10),
                    secret: row.get(11),
                    topic_ops: row.get(12),
                    key: row.get(13),
                    limit: limit.and_then(|l| u32::try_from(l).ok()),
                },
                bans: bans.remove(&room).unwrap_or_default(),
                room,
            });
        }
        Ok(out)
    }

    /// Writes one change, in one transaction.
    pub async fn write(&self, change: &Persist) -> Result<Written, PgError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let written = match change {
            Persist::Upsert(d) => {
                if upsert(&tx, d).await? {
                    Written::Stored
                } else {
                    Written::Stale
                }
            }
            Persist::Delete { room, rev } => {
                let rev = i64::try_from(*rev).unwrap_or(i64::MAX);
                let n = tx
                    .execute(
                        "DELETE FROM chanserv_rooms WHERE room = $1 AND rev < $2",
                        &[room, &rev],
                    )
                    .await?;
                if n > 0 {
                    Written::Stored
                } else {
                    Written::Stale
                }
            }
        };
        tx.commit().await?;
        Ok(written)
    }
}

/// The room row, then (if it was newer) its bans and access list replaced.
async fn upsert(tx: &deadpool_postgres::Transaction<'_>, d: &Durable) -> Result<bool, PgError> {
    let reg = &d.registration;
    let topic = d.topic.as_ref();
    let limit = d.modes.limit.and_then(|l| i32::try_from(l).ok());
    let rev = i64::try_from(reg.rev).unwrap_or(i64::MAX);
    let topic_text = topic.map(|t| t.text.clone());
    let topic_by = topic.map(|t| t.set_by.clone());
    let topic_at = topic.map(|t| t.set_at);
    let row = tx
        .query_opt(
            UPSERT_ROOM,
            &[
                &d.room,
                &d.name,
                &reg.founder,
                &reg.registered_at,
                &reg.topic_lock,
                &topic_text,
                &topic_by,
                &topic_at,
                &d.modes.invite_only,
                &d.modes.moderated,
                &d.modes.no_external,
                &d.modes.secret,
                &d.modes.topic_ops,
                &d.modes.key,
                &limit,
                &rev,
            ],
        )
        .await?;
    if row.is_none() {
        return Ok(false);
    }
    tx.execute("DELETE FROM chanserv_bans WHERE room = $1", &[&d.room])
        .await?;
    tx.execute("DELETE FROM chanserv_access WHERE room = $1", &[&d.room])
        .await?;
    if !d.bans.is_empty() {
        let positions: Vec<i32> = (0..d.bans.len() as i32).collect();
        let masks: Vec<&str> = d.bans.iter().map(|b| b.mask.as_str()).collect();
        let setters: Vec<&str> = d.bans.iter().map(|b| b.set_by.as_str()).collect();
        let times: Vec<i64> = d.bans.iter().map(|b| b.set_at).collect();
        tx.execute(
            INSERT_BANS,
            &[&d.room, &positions, &masks, &setters, &times],
        )
        .await?;
    }
    if !reg.access.is_empty() {
        let accounts: Vec<&str> = reg.access.keys().map(String::as_str).collect();
        let levels: Vec<&str> = reg
            .access
            .values()
            .map(|l| match l {
                AccessLevel::Op => "op",
                AccessLevel::Voice => "voice",
            })
            .collect();
        tx.execute(INSERT_ACCESS, &[&d.room, &accounts, &levels])
            .await?;
    }
    Ok(true)
}
