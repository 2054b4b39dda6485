//! The `roster`, `roster_versions` and `vcards` tables.

use bus::schema::{Notice, RosterItem, RosterPush};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row as PgRow;

use super::{Db, DbError};
use crate::roster::{self, Change, Row};

/// An account's roster as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub ver: i64,
    pub items: Vec<RosterItem>,
    pub pending_in: Vec<String>,
}

/// What a change must be told: pushes for both rosters, notices to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changed {
    pub pushes: Vec<RosterPush>,
    pub notices: Vec<Notice>,
}

fn row_of(r: &PgRow) -> Result<Row, tokio_postgres::Error> {
    Ok(Row {
        in_roster: r.try_get("in_roster")?,
        name: r.try_get("name")?,
        groups: r.try_get("groups")?,
        sub_to: r.try_get("sub_to")?,
        sub_from: r.try_get("sub_from")?,
        ask_out: r.try_get("ask_out")?,
        pending_in: r.try_get("pending_in")?,
    })
}

async fn store(
    tx: &impl GenericClient,
    account: &str,
    contact: &str,
    row: &Row,
) -> Result<(), DbError> {
    if row.is_empty() {
        tx.execute(
            "DELETE FROM roster WHERE account = $1 AND contact = $2",
            &[&account, &contact],
        )
        .await?;
    } else {
        tx.execute(
            "UPDATE roster SET in_roster = $3, name = $4, groups = $5, sub_to = $6, \
               sub_from = $7, ask_out = $8, pending_in = $9 \
             WHERE account = $1 AND contact = $2",
            &[
                &account,
                &contact,
                &row.in_roster,
                &row.name,
                &row.groups,
                &row.sub_to,
                &row.sub_from,
                &row.ask_out,
                &row.pending_in,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn bump(tx: &impl GenericClient, account: &str) -> Result<i64, DbError> {
    let row = tx
        .query_one(
            "INSERT INTO roster_versions AS v (account, ver) VALUES ($1, 1) \
             ON CONFLICT (account) DO UPDATE SET ver = v.ver + 1 RETURNING ver",
            &[&account],
        )
        .await?;
    Ok(row.try_get(0)?)
}

impl Db {
    pub async fn roster(&self, account: &str) -> Result<Roster, DbError> {
        let conn = self.pool.get().await?;
        let ver: i64 = conn
            .query_opt(
                "SELECT ver FROM roster_versions WHERE account = $1",
                &[&account],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let mut items = Vec::new();
        let mut pending_in = Vec::new();
        for r in conn
            .query(
                "SELECT * FROM roster WHERE account = $1 ORDER BY contact",
                &[&account],
            )
            .await?
        {
            let contact: String = r.try_get("contact")?;
            let row = row_of(&r)?;
            if row.pending_in && !row.sub_from {
                pending_in.push(contact.clone());
            }
            if row.in_roster {
                items.push(row.item(&contact));
            }
        }
        Ok(Roster {
            ver,
            items,
            pending_in,
        })
    }

    /// Applies `change` to the pair (`account`, `contact`) in one
    /// transaction, both rows locked. `None` if `contact` is no account.
    pub async fn change_roster(
        &self,
        account: &str,
        contact: &str,
        change: Change,
    ) -> Result<Option<Changed>, DbError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM accounts WHERE name = $1 FOR KEY SHARE",
                &[&contact],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        // Both rows exist before they are locked, always in the same order,
        // so two requests about one pair wait for each other, never deadlock.
        tx.execute(
            "INSERT INTO roster (account, contact) VALUES ($1, $2), ($2, $1) \
             ON CONFLICT DO NOTHING",
            &[&account, &contact],
        )
        .await?;
        let mut owner = Row::default();
        let mut other = Row::default();
        for r in tx
            .query(
                "SELECT * FROM roster WHERE (account = $1 AND contact = $2) \
                   OR (account = $2 AND contact = $1) \
                 ORDER BY account, contact FOR UPDATE",
                &[&account, &contact],
            )
            .await?
        {
            let who: String = r.try_get("account")?;
            if who == account {
                owner = row_of(&r)?;
            } else {
                other = row_of(&r)?;
            }
        }
        let (owner_before, other_before) = (owner.clone(), other.clone());
        let notices = roster::apply(change, &mut owner, &mut other);
        store(&tx, account, contact, &owner).await?;
        store(&tx, contact, account, &other).await?;
        let mut changed = Changed::default();
        for (who, whom, row, before) in [
            (account, contact, &owner, &owner_before),
            (contact, account, &other, &other_before),
        ] {
            if row.shows_change_from(before) {
                changed.pushes.push(RosterPush {
                    account: who.to_string(),
                    ver: bump(&tx, who).await?,
                    item: row.item(whom),
                    removed: !row.in_roster,
                });
            }
        }
        tx.commit().await?;
        changed.notices = notices
            .into_iter()
            .map(|(from, action)| {
                let (from, to) = match from {
                    roster::From::Owner => (account, contact),
                    roster::From::Contact => (contact, account),
                };
                Notice {
                    from: from.to_string(),
                    to: to.to_string(),
                    action,
                }
            })
            .collect();
        Ok(Some(changed))
    }

    pub async fn vcard(&self, account: &str) -> Result<Option<String>, DbError> {
        let conn = self.pool.get().await?;
        Ok(conn
            .query_opt("SELECT vcard FROM vcards WHERE account = $1", &[&account])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub async fn set_vcard(&self, account: &str, vcard: &str) -> Result<(), DbError> {
        let conn = self.pool.get().await?;
        conn.execute(
            "INSERT INTO vcards (account, vcard) VALUES ($1, $2) \
             ON CONFLICT (account) DO UPDATE SET vcard = $2, updated_at = now()",
            &[&account, &vcard],
        )
        .await?;
        Ok(())
    }
}
