//! PostgreSQL: the connection pool, first-start set-up (create the database,
//! run the migrations) and the queries, shared by the service and `chatctl`
//! so that the SQL exists once.

mod accounts;
mod limits;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use accounts::{Account, AccountSummary, Inserted, NewAccount};
pub use limits::Limits;

use crate::config::PgConfig;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A fixed key for `pg_advisory_lock`, so that replicas starting together
/// run the migrations one after the other instead of racing.
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772; // "authmigr"

#[derive(Debug, thiserror::Error)]
pub enum DbError {
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

/// The database handle: a pool plus the queries.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Creates the database if asked to and missing, builds the pool and
    /// runs the migrations (under an advisory lock).
    pub async fn open(cfg: &PgConfig) -> Result<Self, DbError> {
        let pg = tokio_postgres::Config::from_str(&cfg.url).map_err(DbError::Url)?;
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
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size.max(1))
            .build()?;
        let db = Self { pool };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.pool.get().await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let result = embedded::migrations::runner().run_async(client).await;
        conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = result?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "applied migration");
        }
        Ok(())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> bool {
        match self.pool.get().await {
            Ok(conn) => conn.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// Connects to the server's `postgres` database and creates the configured
/// one unless it exists. A concurrent creator winning the race is fine.
async fn create_database(pg: &tokio_postgres::Config) -> Result<(), DbError> {
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
