//! PostgreSQL plumbing shared by every service that keeps data there (auth,
//! history): the `[postgres]` configuration, creating the database on first
//! start, the connection pool, and running migrations under an advisory lock.
//!
//! Services share one database (default `chat`), each with its own tables
//! and its own refinery history table, so each passes its own
//! [`refinery::Runner`] and lock key to [`migrate`].

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::{Deserialize, Serialize};
use tokio_postgres::NoTls;

use crate::config::PostgresConfig;

/// `[postgres]`: the shared fields plus whether to create the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PgConfig {
    /// A libpq-style URL: `postgres://user@host:port/database`.
    pub url: String,
    /// Connection pool size.
    pub pool_size: usize,
    /// Connect to the server's `postgres` database first and create the
    /// configured database if it does not exist (a fresh deployment, a test run).
    pub create_database: bool,
}

impl Default for PgConfig {
    fn default() -> Self {
        let shared = PostgresConfig::default();
        Self {
            url: shared.url,
            pool_size: shared.pool_size,
            create_database: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("bad PostgreSQL URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("PostgreSQL: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("building the PostgreSQL pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("migrations: {0}")]
    Migrate(#[from] refinery::Error),
}

/// Creates the database if asked to and missing, then builds the pool.
/// Connections are made lazily, so this succeeds against a server that only
/// comes up later unless `create_database` needs it now.
pub async fn open_pool(cfg: &PgConfig) -> Result<Pool, PgError> {
    let pg = tokio_postgres::Config::from_str(&cfg.url).map_err(PgError::Url)?;
    if cfg.create_database {
        create_database(&pg).await?;
    }
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(cfg.pool_size.max(1))
        .build()?)
}

/// Runs `runner`'s migrations while holding `pg_advisory_lock(lock_key)`, so
/// that replicas starting together apply them one after the other instead
/// of racing on an empty database.
pub async fn migrate(pool: &Pool, runner: refinery::Runner, lock_key: i64) -> Result<(), PgError> {
    let mut conn = pool.get().await?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let result = runner.run_async(client).await;
    conn.execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await?;
    let report = result?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(())
}

/// A cheap round trip, for readiness.
pub async fn ping(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(conn) => conn.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

/// Connects to the server's `postgres` database and creates the configured
/// one unless it exists. A concurrent creator winning the race is fine.
async fn create_database(pg: &tokio_postgres::Config) -> Result<(), PgError> {
    let Some(name) = pg.get_dbname().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = pg.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "set-up connection ended");
        }
    });
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => tracing::info!(database = %name, "created the database"),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// `duplicate_database`, or the unique index on `pg_database` when two
/// creators race.
fn is_duplicate(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::DUPLICATE_DATABASE || *c == SqlState::UNIQUE_VIOLATION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_creates_the_shared_database() {
        let c = PgConfig::default();
        assert_eq!(c.url, "postgres://postgres@127.0.0.1:5432/chat");
        assert!(c.create_database);
        assert_eq!(c.pool_size, 8);
    }

    #[tokio::test]
    async fn a_bad_url_is_a_typed_error() {
        let cfg = PgConfig {
            url: "postgres://a b c:notaport/x".into(),
            ..PgConfig::default()
        };
        assert!(matches!(open_pool(&cfg).await, Err(PgError::Url(_))));
    }
}
