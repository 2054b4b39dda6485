//! The `cert_fingerprints` table: client certificates that log in (SASL
//! EXTERNAL), added and removed with NickServ CERT.

use super::{Db, DbError};

/// What adding a fingerprint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertAdded {
    Added,
    /// The account already had it.
    Already,
    /// Another account has it.
    Taken,
}

impl Db {
    /// The account a fingerprint logs in as.
    pub async fn cert_account(&self, fingerprint: &str) -> Result<Option<String>, DbError> {
        let conn = self.pool.get().await?;
        Ok(conn
            .query_opt(
                "SELECT account FROM cert_fingerprints WHERE fingerprint = $1",
                &[&fingerprint],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub async fn add_cert(&self, account: &str, fingerprint: &str) -> Result<CertAdded, DbError> {
        let conn = self.pool.get().await?;
        let inserted = conn
            .execute(
                "INSERT INTO cert_fingerprints (fingerprint, account) VALUES ($1, $2) \
                 ON CONFLICT (fingerprint) DO NOTHING",
                &[&fingerprint, &account],
            )
            .await?;
        if inserted == 1 {
            return Ok(CertAdded::Added);
        }
        Ok(match self.cert_account(fingerprint).await? {
            Some(owner) if owner == account => CertAdded::Already,
            _ => CertAdded::Taken,
        })
    }

    /// Removes one of the account's fingerprints; whether it had it.
    pub async fn remove_cert(&self, account: &str, fingerprint: &str) -> Result<bool, DbError> {
        let conn = self.pool.get().await?;
        let n = conn
            .execute(
                "DELETE FROM cert_fingerprints WHERE fingerprint = $1 AND account = $2",
                &[&fingerprint, &account],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn certs(&self, account: &str) -> Result<Vec<String>, DbError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT fingerprint FROM cert_fingerprints WHERE account = $1 ORDER BY added_at",
                &[&account],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
