//! Reading history: finding a conversation, pages by selector, items by
//! message number, targets and pending deliveries.
//!
//! Every page query walks an index in the direction it needs and stops after
//! `limit` rows (`ORDER BY … DESC LIMIT n`, then reversed), so a page costs
//! the same in a conversation of ten items and of ten million. Anchors by
//! seq or message id walk the primary key `(conversation, seq)`; anchors by
//! time walk `(conversation, at, seq)`; message numbers walk the unique
//! index `(conversation, mseq)`.
//!
//! Every query that builds items selects `seq, msgid, at, item, mseq`, in
//! that order ([`item_from_row`]), and skips redacted messages
//! (`redacted_at IS NOT NULL`): a deleted message is gone from every
//! answer, while its seq and message number stay taken. A redacted
//! message's id still works as an anchor (it names a point in the
//! conversation, as a time does).

use bus::history::{Anchor, HistoryItem, HistoryTarget, Selector, SeqRange, TargetSummary};
use bus::names::fold;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::items::{ms_to_time, room_key, StoredItem, MESSAGE_KINDS};

/// A point of a conversation that a page starts or ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Seq(i64),
    Time(DateTime<Utc>),
}

impl Point {
    fn column(self) -> &'static str {
        match self {
            Point::Seq(_) => "seq",
            Point::Time(_) => "at",
        }
    }

    /// The ORDER BY of a walk that starts from this kind of point.
    fn order(self, desc: bool) -> &'static str {
        match (self, desc) {
            (Point::Seq(_), false) => "seq",
            (Point::Seq(_), true) => "seq DESC",
            (Point::Time(_), false) => "at, seq",
            (Point::Time(_), true) => "at DESC, seq DESC",
        }
    }
}

/// One index walk: `lower`/`upper` bounds (with whether they are
/// inclusive), the direction, and how many rows.
#[derive(Debug, Clone, Copy)]
struct Walk {
    lower: Option<(Point, bool)>,
    upper: Option<(Point, bool)>,
    /// Which index to walk (and so the order of ties).
    by: Point,
    desc: bool,
    limit: i64,
}

/// A conversation found for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: i64,
    /// Rooms: the stored display name. Direct: the peer's latest nick.
    pub name: String,
}

/// At most this many ranges (after merging) in one `Numbered` query: each
/// is an index walk of its own.
pub const MAX_RANGES: usize = 64;

/// The item of a row selected as `seq, msgid, at, item, mseq`.
fn item_from_row(row: &Row) -> Result<HistoryItem, StoreError> {
    let seq: i64 = row.get(0);
    let msgid: String = row.get(1);
    let at: DateTime<Utc> = row.get(2);
    let item: serde_json::Value = row.get(3);
    let mseq: Option<i64> = row.get(4);
    match serde_json::from_value::<StoredItem>(item) {
        Ok(stored) => Ok(stored.into_history(seq, mseq, msgid, at)),
        Err(error) => Err(StoreError::Item { msgid, error }),
    }
}

fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Message-number ranges as disjoint `[low, end)` pairs of the database's
/// type, sorted, merged where they overlap or touch, empty ones dropped.
pub fn merge_ranges(ranges: &[SeqRange]) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = ranges
        .iter()
        .map(|r| (seq_value(r.low), seq_value(r.end())))
        .filter(|(low, end)| low < end)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (low, end) in spans {
        match merged.last_mut() {
            Some(last) if low <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((low, end)),
        }
    }
    merged
}

impl Store {
    /// A room's conversation, if anything of it was ever stored.
    pub async fn room_conversation(&self, room: &str) -> Result<Option<Conversation>, StoreError> {
        let conn = self.pool.get().await?;
        let stmt = conn
            .prepare_cached("SELECT id, name FROM conversations WHERE key = $1")
            .await?;
        Ok(conn
            .query_opt(&stmt, &[&room_key(room)])
            .await?
            .map(|r| Conversation {
                id: r.get(0),
                name: r.get(1),
            }))
    }

    /// The direct conversation of `me` (a participant key) with `peer`: an
    /// account name (other participant `a:<fold(peer)>`) or, for a guest
    /// peer, the nick it last used there. The account match wins, then the
    /// most recent conversation.
    pub async fn direct_conversation(
        &self,
        me: &str,
        peer: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let folded = fold(peer);
        let account = format!("a:{folded}");
        let conn = self.pool.get().await?;
        // translate() folds ASCII only, exactly like bus::names::fold
        // (lower() would also fold non-ASCII letters, by locale).
        let stmt = conn
            .prepare_cached(
                "SELECT id, CASE WHEN peer_a = $1 THEN nick_b ELSE nick_a END, \
                        (CASE WHEN peer_a = $1 THEN peer_b ELSE peer_a END) = $2 AS by_account \
                 FROM conversations \
                 WHERE kind = 'dm' AND ( \
                   (peer_a = $1 AND (peer_b = $2 OR translate(nick_b, $4, $5) = $3)) OR \
                   (peer_b = $1 AND (peer_a = $2 OR translate(nick_a, $4, $5) = $3))) \
                 ORDER BY by_account DESC, last_at DESC NULLS LAST LIMIT 1",
            )
            .await?;
        Ok(conn
            .query_opt(&stmt, &[&me, &account, &folded, &UPPER, &LOWER])
            .await?
            .map(|r| Conversation {
                id: r.get(0),
                name: r.get::<_, Option<String>>(1).unwrap_or_default(),
            }))
    }

    /// A page of a conversation, oldest first. `limit` is already capped.
    /// Without `events` only messages, notices and actions are returned.
    pub async fn fetch(
        &self,
        conversation: i64,
        selector: &Selector,
        limit: u32,
        events: bool,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit);
        let conn = self.pool.get().await?;
        let q = Query {
            conn: &conn,
            conversation,
            events,
        };
        match selector {
            Selector::Latest { after } => {
                let lower = match after {
                    None => None,
                    Some(a) => match q.resolve(a).await? {
                        Some(p) => Some((p, false)),
                        None => return Ok(Vec::new()),
                    },
                };
                let by = lower.map_or(Point::Seq(0), |l| l.0);
                q.walk(Walk {
                    lower,
                    upper: None,
                    by,
                    desc: true,
                    limit,
                })
                .await
            }
            Selector::Before { anchor } => {
                let Some(p) = q.resolve(anchor).await? else {
                    return Ok(Vec::new());
                };
                q.walk(Walk {
                    lower: None,
                    upper: Some((p, false)),
                    by: p,
                    desc: true,
                    limit,
                })
                .await
            }
            Selector::After { anchor } => {
                let Some(p) = q.resolve(anchor).await? else {
                    return Ok(Vec::new());
                };
                q.walk(Walk {
                    lower: Some((p, false)),
                    upper: None,
                    by: p,
                    desc: false,
                    limit,
                })
                .await
            }
            Selector::Around { anchor } => {
                let Some(p) = q.resolve(anchor).await? else {
                    return Ok(Vec::new());
                };
                q.around(p, limit).await
            }
            Selector::Between { start, end } => {
                let (Some(s), Some(e)) = (q.resolve(start).await?, q.resolve(end).await?) else {
                    return Ok(Vec::new());
                };
                let forward = q.older(s, e).await?;
                let walk = if forward {
                    Walk {
                        lower: Some((s, false)),
                        upper: Some((e, false)),
                        by: s,
                        desc: false,
                        limit,
                    }
                } else {
                    Walk {
                        lower: Some((e, false)),
                        upper: Some((s, false)),
                        by: s,
                        desc: true,
                        limit,
                    }
                };
                q.walk(walk).await
            }
        }
    }

    /// The items of a conversation whose message number lies in `ranges`
    /// (already merged: see [`merge_ranges`]): the newest `limit` of them
    /// (`limit` already capped), oldest first. Each range is one walk of
    /// `(conversation, mseq)` from its top, stopping after `limit` rows, so
    /// the cost does not grow with the size of the conversation.
    pub async fn numbered(
        &self,
        conversation: i64,
        ranges: &[(i64, i64)],
        limit: u32,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        if limit == 0 || ranges.is_empty() {
            return Ok(Vec::new());
        }
        let lows: Vec<i64> = ranges.iter().map(|r| r.0).collect();
        let ends: Vec<i64> = ranges.iter().map(|r| r.1).collect();
        let conn = self.pool.get().await?;
        let stmt = conn
            .prepare_cached(
                "SELECT m.seq, m.msgid, m.at, m.item, m.mseq \
                 FROM unnest($2::bigint[], $3::bigint[]) AS r(low, hi) \
                 CROSS JOIN LATERAL ( \
                   SELECT seq, msgid, at, item, mseq FROM messages \
                   WHERE conversation = $1 AND mseq IS NOT NULL AND mseq >= r.low AND mseq < r.hi \
                     AND redacted_at IS NULL \
                   ORDER BY mseq DESC LIMIT $4) m \
                 ORDER BY m.mseq DESC LIMIT $4",
            )
            .await?;
        let rows = conn
            .query(&stmt, &[&conversation, &lows, &ends, &i64::from(limit)])
            .await?;
        let mut items = rows
            .iter()
            .map(item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(items)
    }

    /// The requester's direct conversations (`me`) and the given rooms
    /// (folded names) whose newest item is within `[from, to]` (ms, in
    /// either order), ordered by that time ascending. At most `limit`: the
    /// ones nearest `from`.
    pub async fn targets(
        &self,
        me: &str,
        rooms: &[String],
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<TargetSummary>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (lo, hi) = (ms_to_time(from.min(to)), ms_to_time(from.max(to)));
        let room_keys: Vec<String> = rooms.iter().map(|r| room_key(r)).collect();
        let conn = self.pool.get().await?;
        let order = if from <= to { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT kind, key, name, peer_a, peer_b, nick_a, nick_b, last_at, last_seq FROM conversations \
             WHERE last_at >= $1 AND last_at <= $2 \
               AND ((kind = 'dm' AND (peer_a = $3 OR peer_b = $3)) OR key = ANY($4)) \
             ORDER BY last_at {order}, id LIMIT $5"
        );
        let stmt = conn.prepare_cached(&sql).await?;
        let rows = conn
            .query(&stmt, &[&lo, &hi, &me, &room_keys, &i64::from(limit)])
            .await?;
        let mut out: Vec<TargetSummary> = rows
            .iter()
            .map(|r| {
                let kind: &str = r.get(0);
                let key: &str = r.get(1);
                let last_at: DateTime<Utc> = r.get(7);
                let mut guest = false;
                let (target, name) = if kind == "room" {
                    let room = key.strip_prefix("room:").unwrap_or(key).to_string();
                    (HistoryTarget::Room { room }, r.get::<_, String>(2))
                } else {
                    let (other, nick) = if r.get::<_, Option<&str>>(3) == Some(me) {
                        (r.get::<_, Option<String>>(4), r.get::<_, Option<String>>(6))
                    } else {
                        (r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(5))
                    };
                    let nick = nick.unwrap_or_default();
                    let peer = match other.as_deref().and_then(|o| o.strip_prefix("a:")) {
                        Some(account) => account.to_string(),
                        None => {
                            guest = true;
                            nick.clone()
                        }
                    };
                    (HistoryTarget::Direct { peer }, nick)
                };
                TargetSummary {
                    target,
                    name,
                    latest_at: last_at.timestamp_millis(),
                    latest_seq: r.get::<_, i64>(8).max(0) as u64,
                    guest,
                }
            })
            .collect();
        out.sort_by_key(|t| t.latest_at);
        Ok(out)
    }

    /// Direct messages waiting for `account` (any case), oldest first.
    pub async fn pending(&self, account: &str, limit: u32) -> Result<Vec<HistoryItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.pool.get().await?;
        let stmt = conn
            .prepare_cached(
                "SELECT m.seq, m.msgid, m.at, m.item, m.mseq FROM pending_deliveries p \
                 JOIN messages m ON m.conversation = p.conversation AND m.seq = p.seq \
                 WHERE p.account = $1 AND m.redacted_at IS NULL \
                 ORDER BY m.at, m.conversation, m.seq LIMIT $2",
            )
            .await?;
        conn.query(&stmt, &[&fold(account), &i64::from(limit)])
            .await?
            .iter()
            .map(item_from_row)
            .collect()
    }

    /// Forgets the pending deliveries `ids` of `account`; returns how many.
    pub async fn ack_pending(&self, account: &str, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let conn = self.pool.get().await?;
        let stmt = conn
            .prepare_cached("DELETE FROM pending_deliveries WHERE account = $1 AND msgid = ANY($2)")
            .await?;
        Ok(conn.execute(&stmt, &[&fold(account), &ids]).await?)
    }
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

/// The queries of one page request, on one pooled connection.
struct Query<'a> {
    conn: &'a Object,
    conversation: i64,
    events: bool,
}

impl Query<'_> {
    /// Where an anchor is; `None` for a message id that is not stored.
    async fn resolve(&self, anchor: &Anchor) -> Result<Option<Point>, StoreError> {
        Ok(match anchor {
            Anchor::Seq(s) => Some(Point::Seq(seq_value(*s))),
            Anchor::Time(ms) => Some(Point::Time(ms_to_time(*ms))),
            Anchor::Id(id) => {
                let stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT seq FROM messages WHERE conversation = $1 AND msgid = $2",
                    )
                    .await?;
                self.conn
                    .query_opt(&stmt, &[&self.conversation, id])
                    .await?
                    .map(|r| Point::Seq(r.get(0)))
            }
        })
    }

    /// Whether `a` is older than `b` (BETWEEN's direction). A seq compared
    /// with a time stands for the time of the item at or before it.
    async fn older(&self, a: Point, b: Point) -> Result<bool, StoreError> {
        Ok(match (a, b) {
            (Point::Seq(x), Point::Seq(y)) => x < y,
            (Point::Time(x), Point::Time(y)) => x < y,
            (Point::Seq(x), Point::Time(y)) => self.time_of(x).await? < y,
            (Point::Time(x), Point::Seq(y)) => x < self.time_of(y).await?,
        })
    }

    async fn time_of(&self, seq: i64) -> Result<DateTime<Utc>, StoreError> {
        let stmt = self
            .conn
            .prepare_cached(
                "SELECT at FROM messages WHERE conversation = $1 AND seq <= $2 \
                 ORDER BY seq DESC LIMIT 1",
            )
            .await?;
        Ok(self
            .conn
            .query_opt(&stmt, &[&self.conversation, &seq])
            .await?
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |r| r.get(0)))
    }

    /// Up to `limit` items centred on `p`: the item at `p` (if any) counts
    /// with those after it; about half come from before, and a side that
    /// has too few leaves its share to the other.
    async fn around(&self, p: Point, limit: i64) -> Result<Vec<HistoryItem>, StoreError> {
        let before = self
            .walk(Walk {
                lower: None,
                upper: Some((p, false)),
                by: p,
                desc: true,
                limit,
            })
            .await?;
        let after = self
            .walk(Walk {
                lower: Some((p, true)),
                upper: None,
                by: p,
                desc: false,
                limit,
            })
            .await?;
        let (nb, na) = around_split(before.len(), after.len(), limit as usize);
        let mut out = before[before.len() - nb..].to_vec();
        out.extend_from_slice(&after[..na]);
        Ok(out)
    }

    /// Runs one walk and returns its rows oldest first.
    async fn walk(&self, w: Walk) -> Result<Vec<HistoryItem>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, msgid, at, item, mseq FROM messages \
             WHERE conversation = $1 AND redacted_at IS NULL",
        );
        let kinds: Vec<&str> = MESSAGE_KINDS.to_vec();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.conversation];
        let (lower_seq, lower_at, upper_seq, upper_at);
        if !self.events {
            params.push(&kinds);
            sql.push_str(&format!(" AND kind = ANY(${})", params.len()));
        }
        if let Some((point, inclusive)) = w.lower {
            let op = if inclusive { ">=" } else { ">" };
            match point {
                Point::Seq(s) => {
                    lower_seq = s;
                    params.push(&lower_seq);
                }
                Point::Time(t) => {
                    lower_at = t;
                    params.push(&lower_at);
                }
            }
            sql.push_str(&format!(" AND {} {op} ${}", point.column(), params.len()));
        }
        if let Some((point, inclusive)) = w.upper {
            let op = if inclusive { "<=" } else { "<" };
            match point {
                Point::Seq(s) => {
                    upper_seq = s;
                    params.push(&upper_seq);
                }
                Point::Time(t) => {
                    upper_at = t;
                    params.push(&upper_at);
                }
            }
            sql.push_str(&format!(" AND {} {op} ${}", point.column(), params.len()));
        }
        params.push(&w.limit);
        sql.push_str(&format!(
            " ORDER BY {} LIMIT ${}",
            w.by.order(w.desc),
            params.len()
        ));
        let stmt = self.conn.prepare_cached(&sql).await?;
        let rows = self.conn.query(&stmt, &params).await?;
        let mut items = rows
            .iter()
            .map(item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if w.desc {
            items.reverse();
        }
        Ok(items)
    }
}

/// How many of `before` and `after` (each already at most `limit`) an
/// AROUND page takes: half the limit (rounded down) before, the rest after,
/// and a side with too few leaves its share to the other.
pub fn around_split(before: usize, after: usize, limit: usize) -> (usize, usize) {
    let nb = before.min((limit / 2).max(limit.saturating_sub(after)));
    let na = after.min(limit - nb);
    (nb, na)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(low: u64, hi: Option<u64>) -> SeqRange {
        SeqRange { low, hi }
    }

    #[test]
    fn ranges_are_merged_sorted_and_clamped() {
        assert_eq!(merge_ranges(&[]), []);
        assert_eq!(merge_ranges(&[range(5, None)]), [(5, 6)]);
        assert_eq!(
            merge_ranges(&[range(10, Some(20)), range(1, Some(3)), range(3, None)]),
            [(1, 4), (10, 20)],
            "touching ranges merge"
        );
        assert_eq!(
            merge_ranges(&[range(1, Some(10)), range(4, Some(6)), range(8, Some(12))]),
            [(1, 12)]
        );
        assert_eq!(
            merge_ranges(&[range(7, Some(7)), range(9, Some(2))]),
            [],
            "empty ranges select nothing"
        );
        assert_eq!(
            merge_ranges(&[range(u64::MAX, None), range(2, Some(u64::MAX))]),
            [(2, i64::MAX)]
        );
    }

    #[test]
    fn around_shares_the_limit() {
        assert_eq!(around_split(10, 10, 5), (2, 3));
        assert_eq!(around_split(1, 10, 5), (1, 4));
        assert_eq!(around_split(10, 1, 5), (4, 1));
        assert_eq!(around_split(0, 0, 5), (0, 0));
        assert_eq!(around_split(10, 10, 1), (0, 1));
        assert_eq!(around_split(2, 2, 10), (2, 2));
    }
}
