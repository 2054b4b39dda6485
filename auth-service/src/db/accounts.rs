//! The `accounts` table.

use bus::schema::ScramMechanism;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Db, DbError};
use crate::credentials::StoredCredentials;
use crate::scram::Credentials;

/// An account as the service needs it to authenticate.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    pub email: Option<String>,
    pub argon2: String,
    pub sha1: Credentials,
    pub sha256: Credentials,
    pub credentials_changed_at: DateTime<Utc>,
}

impl Account {
    pub fn scram(&self, mech: ScramMechanism) -> &Credentials {
        match mech {
            ScramMechanism::Sha1 => &self.sha1,
            ScramMechanism::Sha256 => &self.sha256,
        }
    }
}

/// A line of `chatctl account list`.
#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    pub email: Option<String>,
}

/// What registering needs.
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub credentials: &'a StoredCredentials,
    /// The registering request's id (redeliveries recognise their own row).
    pub request_id: Option<&'a str>,
}

/// The result of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The name was taken, by the request with this id (if any).
    Exists {
        created_by: Option<String>,
    },
}

fn scram_from(row: &Row, prefix: &str) -> Result<Credentials, tokio_postgres::Error> {
    let iterations: i32 = row.try_get(format!("{prefix}_iterations").as_str())?;
    Ok(Credentials {
        salt: row.try_get(format!("{prefix}_salt").as_str())?,
        iterations: u32::try_from(iterations).unwrap_or(0),
        stored_key: row.try_get(format!("{prefix}_stored_key").as_str())?,
        server_key: row.try_get(format!("{prefix}_server_key").as_str())?,
    })
}

fn iterations(c: &Credentials) -> i32 {
    i32::try_from(c.iterations).unwrap_or(i32::MAX)
}

impl Db {
    pub async fn insert_account(&self, new: &NewAccount<'_>) -> Result<Inserted, DbError> {
        let conn = self.pool.get().await?;
        let c = new.credentials;
        let n = conn
            .execute(
                "INSERT INTO accounts (name, email, argon2, \
                   scram_sha1_salt, scram_sha1_iterations, scram_sha1_stored_key, scram_sha1_server_key, \
                   scram_sha256_salt, scram_sha256_iterations, scram_sha256_stored_key, scram_sha256_server_key, \
                   created_by_request) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &new.name,
                    &new.email,
                    &c.argon2,
                    &c.sha1.salt,
                    &iterations(&c.sha1),
                    &c.sha1.stored_key,
                    &c.sha1.server_key,
                    &c.sha256.salt,
                    &iterations(&c.sha256),
                    &c.sha256.stored_key,
                    &c.sha256.server_key,
                    &new.request_id,
                ],
            )
            .await?;
        if n == 1 {
            return Ok(Inserted::Created);
        }
        let created_by = conn
            .query_opt(
                "SELECT created_by_request FROM accounts WHERE name = $1",
                &[&new.name],
            )
            .await?
            .and_then(|row| row.get::<_, Option<String>>(0));
        Ok(Inserted::Exists { created_by })
    }

    pub async fn account(&self, name: &str) -> Result<Option<Account>, DbError> {
        let conn = self.pool.get().await?;
        let Some(row) = conn
            .query_opt("SELECT * FROM accounts WHERE name = $1", &[&name])
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Account {
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            disabled: row.try_get("disabled")?,
            email: row.try_get("email")?,
            argon2: row.try_get("argon2")?,
            sha1: scram_from(&row, "scram_sha1")?,
            sha256: scram_from(&row, "scram_sha256")?,
            credentials_changed_at: row.try_get("credentials_changed_at")?,
        }))
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountSummary>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT name, created_at, disabled, email FROM accounts ORDER BY name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AccountSummary {
                    name: row.try_get(0)?,
                    created_at: row.try_get(1)?,
                    disabled: row.try_get(2)?,
                    email: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Returns whether the account exists.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, DbError> {
        let conn = self.pool.get().await?;
        let n = conn
            .execute(
                "UPDATE accounts SET disabled = $2 WHERE name = $1",
                &[&name, &disabled],
            )
            .await?;
        Ok(n == 1)
    }

    /// Returns whether the account existed.
    pub async fn delete_account(&self, name: &str) -> Result<bool, DbError> {
        let conn = self.pool.get().await?;
        let n = conn
            .execute("DELETE FROM accounts WHERE name = $1", &[&name])
            .await?;
        Ok(n == 1)
    }

    /// Replaces every credential and moves `credentials_changed_at` to now,
    /// which revokes the tokens issued before. Returns whether it exists.
    pub async fn set_credentials(
        &self,
        name: &str,
        c: &StoredCredentials,
    ) -> Result<bool, DbError> {
        let conn = self.pool.get().await?;
        let n = conn
            .execute(
                "UPDATE accounts SET argon2 = $2, \
                   scram_sha1_salt = $3, scram_sha1_iterations = $4, \
                   scram_sha1_stored_key = $5, scram_sha1_server_key = $6, \
                   scram_sha256_salt = $7, scram_sha256_iterations = $8, \
                   scram_sha256_stored_key = $9, scram_sha256_server_key = $10, \
                   credentials_changed_at = date_trunc('milliseconds', clock_timestamp()) \
                 WHERE name = $1",
                &[
                    &name,
                    &c.argon2,
                    &c.sha1.salt,
                    &iterations(&c.sha1),
                    &c.sha1.stored_key,
                    &c.sha1.server_key,
                    &c.sha256.salt,
                    &iterations(&c.sha256),
                    &c.sha256.stored_key,
                    &c.sha256.server_key,
                ],
            )
            .await?;
        Ok(n == 1)
    }
}
