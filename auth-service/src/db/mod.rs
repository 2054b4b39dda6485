//! PostgreSQL: the connection pool, first-start set-up (create the database,
//! run the migrations) and the queries, shared by the service and `chatctl`
//! so that the SQL exists once. The generic parts live in [`bus::pg`].

mod accounts;
mod certs;
mod limits;
mod roster;
mod topics;

use deadpool_postgres::Pool;

pub use accounts::{Account, AccountSummary, Inserted, NewAccount};
pub use certs::CertAdded;
pub use limits::Limits;
pub use roster::{Changed, Roster};
pub use topics::found;

use crate::config::PgConfig;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A fixed key for `pg_advisory_lock`, so that replicas starting together
/// run the migrations one after the other instead of racing.
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772; // "authmigr"

/// The database errors: those of the shared plumbing.
pub type DbError = bus::pg::PgError;

/// The database handle: a pool plus the queries.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Creates the database if asked to and missing, builds the pool and
    /// runs the migrations (under an advisory lock). The accounts tables
    /// keep refinery's default history table (`refinery_schema_history`).
    pub async fn open(cfg: &PgConfig) -> Result<Self, DbError> {
        let pool = bus::pg::open_pool(cfg).await?;
        bus::pg::migrate(&pool, embedded::migrations::runner(), MIGRATION_LOCK).await?;
        Ok(Self { pool })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> bool {
        bus::pg::ping(&self.pool).await
    }
}
