//! PostgreSQL: the pool, the schema (migrations), and the queries in
//! [`write`] (batches from the queues), [`query`] (history requests) and
//! [`retention`].
//!
//! The database is shared with the auth service (default `chat`), so the
//! history migrations keep their own refinery table,
//! `history_schema_history`, next to auth's default one.

pub mod query;
pub mod retention;
pub mod write;

use bus::pg::{PgConfig, PgError};
use deadpool_postgres::Pool;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The refinery history table of these migrations.
pub const MIGRATION_TABLE: &str = "history_schema_history";

/// `pg_advisory_lock` key: replicas starting together migrate in turn.
const MIGRATION_LOCK: i64 = 0x6869_7374_6d69_6772; // "histmigr"

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("stored item of {msgid} is unreadable: {error}")]
    Item {
        msgid: String,
        error: serde_json::Error,
    },
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Pg(PgError::Pg(e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Pg(PgError::Pool(e))
    }
}

/// The history database: a pool and the queries.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Creates the database if asked to and missing, builds the pool and
    /// brings the schema up to date.
    pub async fn open(cfg: &PgConfig) -> Result<Self, StoreError> {
        let pool = bus::pg::open_pool(cfg).await?;
        let mut runner = embedded::migrations::runner();
        runner.set_migration_table_name(MIGRATION_TABLE);
        bus::pg::migrate(&pool, runner, MIGRATION_LOCK).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> bool {
        bus::pg::ping(&self.pool).await
    }
}

/// A throw-away database for the tests of this module's submodules: created
/// on the shared server, migrated, and dropped (with its connections) on
/// [`TestDb::drop_now`].
#[cfg(test)]
pub(crate) mod testdb {
    use super::*;

    pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

    pub struct TestDb {
        pub name: String,
        pub store: Store,
        /// Still to be dropped (by [`Drop`] if a failing test never reached
        /// [`TestDb::drop_now`]).
        armed: bool,
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            if self.armed {
                // A test failed: no runtime to rely on, so ask psql.
                let _ = std::process::Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                    .arg(format!(
                        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                        self.name
                    ))
                    .output();
            }
        }
    }

    impl TestDb {
        pub async fn new() -> TestDb {
            let name = format!("hist_ut_{:016x}", rand::random::<u64>());
            let cfg = PgConfig {
                url: format!("{SERVER}/{name}"),
                pool_size: 4,
                create_database: true,
            };
            let store = Store::open(&cfg).await.expect("test database");
            TestDb {
                name,
                store,
                armed: true,
            }
        }

        pub async fn drop_now(mut self) {
            self.armed = false;
            self.store.pool.close();
            let name = self.name.clone();
            let (client, conn) =
                tokio_postgres::connect(&format!("{SERVER}/postgres"), tokio_postgres::NoTls)
                    .await
                    .expect("admin connection");
            let driver = tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .expect("dropping the test database");
            drop(client);
            let _ = driver.await;
        }
    }

    #[tokio::test]
    async fn migrations_use_their_own_table_and_rerun_cleanly() {
        let db = TestDb::new().await;
        let conn = db.store.pool().get().await.unwrap();
        let n: i64 = conn
            .query_one(&format!("SELECT count(*) FROM {MIGRATION_TABLE}"), &[])
            .await
            .unwrap()
            .get(0);
        let embedded = embedded::migrations::runner().get_migrations().len();
        assert_eq!(n, embedded as i64);
        assert!(embedded >= 2);
        let default_table: Option<String> = conn
            .query_one("SELECT to_regclass('refinery_schema_history')::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(default_table, None, "auth's table is left to auth");
        drop(conn);
        // A second start (another replica) finds nothing to do.
        let cfg = PgConfig {
            url: format!("{SERVER}/{}", db.name),
            pool_size: 1,
            create_database: true,
        };
        let again = Store::open(&cfg).await.unwrap();
        assert!(again.ping().await);
        again.pool.close();
        db.drop_now().await;
    }
}

#[cfg(test)]
mod tests;
