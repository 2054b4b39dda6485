//! The router's NATS state: room records, partition ownership, and the
//! list of live sessions the sweeper compares members against.
//!
//! A room that empties is not deleted: its record is overwritten by its
//! husk (no members, its seq and mseq kept; see [`crate::room::Husk`]).
//!
//! Room writes are compare-and-set on the revision the router last saw, so
//! a router that lost its partition without noticing (its AMQP connection
//! died in the middle of a batch) fails its late writes instead of
//! overwriting the newer records of the router that took over.

use std::collections::HashSet;

use async_nats::jetstream::kv;
use bus::kv::{owner_key, room_from_key, room_key};
use bus::names::partition_of;
use bus::schema::RoomRecord;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};

use crate::rooms::Stored;

/// How many room writes of one batch are in flight at once.
const WRITE_CONCURRENCY: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("reading {key} from NATS: {error}")]
    Read { key: String, error: kv::EntryError },
    #[error("writing {key} to NATS: {error}")]
    Put { key: String, error: kv::PutError },
    #[error("creating {key} in NATS (is another router writing this partition?): {error}")]
    Create { key: String, error: kv::CreateError },
    #[error("updating {key} at revision {revision} in NATS (is another router writing this partition?): {error}")]
    Update {
        key: String,
        revision: u64,
        error: kv::UpdateError,
    },
    #[error("listing the keys of bucket {bucket}: {detail}")]
    List {
        bucket: &'static str,
        detail: String,
    },
}

/// Handles on the buckets the router uses.
#[derive(Clone)]
pub struct Store {
    rooms: kv::Store,
    routers: kv::Store,
    sessions: kv::Store,
}

impl Store {
    pub fn new(rooms: &kv::Store, routers: &kv::Store, sessions: &kv::Store) -> Self {
        Self {
            rooms: rooms.clone(),
            routers: routers.clone(),
            sessions: sessions.clone(),
        }
    }

    /// The instance that last took the partition, if any.
    pub async fn owner(&self, partition: u16) -> Result<Option<String>, StoreError> {
        let key = owner_key(partition);
        let value = self
            .routers
            .get(key.clone())
            .await
            .map_err(|error| StoreError::Read { key, error })?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub async fn set_owner(&self, partition: u16, instance: &str) -> Result<(), StoreError> {
        let key = owner_key(partition);
        self.routers
            .put(key.clone(), instance.to_string().into())
            .await
            .map_err(|error| StoreError::Put { key, error })?;
        Ok(())
    }

    /// Every stored room record of one partition (live rooms and husks),
    /// with its revision. A record that does not decode is logged and
    /// reported as unreadable: one bad record must not stop the partition
    /// from starting.
    pub async fn load_partition(
        &self,
        partition: u16,
        partitions: u16,
    ) -> Result<Stored, StoreError> {
        let mut stored = Stored::default();
        for key in list_keys(&self.rooms, "rooms").await? {
            let Some(room) = room_from_key(&key) else {
                continue;
            };
            if partition_of(&room, partitions) != partition {
                continue;
            }
            let entry = self
                .rooms
                .entry(key.clone())
                .await
                .map_err(|error| StoreError::Read {
                    key: key.clone(),
                    error,
                })?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                continue; // deleted (by a router from before husks)
            };
            match serde_json::from_slice::<RoomRecord>(&entry.value) {
                Ok(record) if record.room == room => stored.records.push((record, entry.revision)),
                Ok(record) => {
                    tracing::warn!(%key, room = %record.room, "room record under the wrong key, ignored");
                    stored.unreadable.push((room, entry.revision));
                }
                Err(error) => {
                    tracing::warn!(%key, %error, "undecodable room record, ignored");
                    stored.unreadable.push((room, entry.revision));
                }
            }
        }
        Ok(stored)
    }

    /// Writes full room records, a few at a time, each compare-and-set on
    /// its revision (0: the key must hold no record). Returns the new
    /// revisions, in order.
    pub async fn put_rooms(&self, records: &[(RoomRecord, u64)]) -> Result<Vec<u64>, StoreError> {
        // Each write owns what it needs, so the futures are plain `Send`
        // values (no borrowed closures, which async fn `Send` checks trip on).
        let mut revisions = vec![0; records.len()];
        let mut pending = FuturesUnordered::new();
        for (index, (record, revision)) in records.iter().enumerate() {
            let store = self.rooms.clone();
            let key = room_key(&record.room);
            let body = serde_json::to_vec(record).expect("room records always serialise");
            let revision = *revision;
            pending.push(async move {
                let written = if revision == 0 {
                    store
                        .create(&key, body.into())
                        .await
                        .map_err(|error| StoreError::Create { key, error })
                } else {
                    store
                        .update(&key, body.into(), revision)
                        .await
                        .map_err(|error| StoreError::Update {
                            key,
                            revision,
                            error,
                        })
                };
                written.map(|new| (index, new))
            });
            if pending.len() >= WRITE_CONCURRENCY {
                if let Some(result) = pending.next().await {
                    let (index, new) = result?;
                    revisions[index] = new;
                }
            }
        }
        while let Some(result) = pending.next().await {
            let (index, new) = result?;
            revisions[index] = new;
        }
        Ok(revisions)
    }

    /// The sids of every live session (the keys of the sessions bucket).
    pub async fn live_sessions(&self) -> Result<HashSet<String>, StoreError> {
        Ok(list_keys(&self.sessions, "sessions")
            .await?
            .into_iter()
            .collect())
    }
}

/// The keys present in a bucket, from the stream's per-subject counts (one
/// request per 100 000 keys).
///
/// Not `kv::Store::keys`: that walks a consumer until it sees an entry with
/// nothing pending, which never happens while other tasks keep writing the
/// bucket (busy partitions writing rooms, gateways refreshing sessions), so
/// a takeover or a sweep could wait for a lull indefinitely. The subject
/// counts are a point-in-time answer. A deleted key still has its delete
/// marker until it ages out, so it is listed: callers treat a listed key as
/// "maybe present" (rooms are then read, sessions count as alive a little
/// longer, which is the safe side for the sweeper).
async fn list_keys(store: &kv::Store, bucket: &'static str) -> Result<Vec<String>, StoreError> {
    let list_error = |e: &dyn std::fmt::Display| StoreError::List {
        bucket,
        detail: e.to_string(),
    };
    let filter = format!("{}>", store.prefix);
    let subjects = store
        .stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| list_error(&e))?;
    let subjects: Vec<(String, usize)> =
        subjects.try_collect().await.map_err(|e| list_error(&e))?;
    Ok(subjects
        .into_iter()
        .filter_map(|(subject, _)| subject.strip_prefix(&store.prefix).map(str::to_string))
        .collect())
}
