//! The gateway's view of the NATS buckets: nick claims, session records,
//! lookups (WHOIS, ISON, WHO of a nick, private message targets) and the
//! room listing (LIST); LUSERS counts are in [`crate::census`].
//!
//! Nothing here is authoritative about rooms; it is the cluster-wide,
//! expiring "who is online" directory every gateway shares.

use async_nats::jetstream::kv::{CreateErrorKind, Store, UpdateErrorKind};
use bus::kv::{self, Buckets};
use bus::names::fold;
use bus::schema::{NickClaim, RoomRecord, SessionRecord};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::census::Census;
use crate::nickwatch::{NickChange, NickWatch};

/// Parallel lookups when fetching many records (LIST, WHOIS channels).
const FETCH_CONCURRENCY: usize = 32;
/// WHOWAS entries kept per nick.
pub const WHOWAS_PER_NICK: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the nick is already claimed")]
    NickInUse,
    /// Our claim was replaced by someone else's.
    #[error("the nick claim was lost")]
    NickLost,
    #[error("NATS key-value {op}: {detail}")]
    Kv { op: &'static str, detail: String },
}

fn kv_err(op: &'static str) -> impl FnOnce(String) -> RegistryError {
    move |detail| RegistryError::Kv { op, detail }
}

pub struct Registry {
    buckets: Buckets,
    pub census: Census,
    nick_watch: NickWatch,
}

impl Registry {
    pub fn new(buckets: Buckets) -> Self {
        Self {
            census: Census::new(&buckets),
            buckets,
            nick_watch: NickWatch::default(),
        }
    }

    /// The NATS connection, for signals that are not key-value state.
    pub fn nats(&self) -> &async_nats::Client {
        &self.buckets.client
    }

    /// Every nick claim and release from now on (IRC MONITOR).
    pub fn watch_nicks(&self) -> tokio::sync::broadcast::Receiver<NickChange> {
        self.nick_watch.subscribe(&self.buckets.nicks)
    }

    /// The deployment's NATS prefix (of its buckets and signal subjects).
    pub fn prefix(&self) -> &str {
        &self.buckets.prefix
    }

    /// Remembers that `entry.nick` was used as described (IRC WHOWAS): the
    /// newest [`WHOWAS_PER_NICK`] per nick, updated with compare-and-set
    /// so that two gateways recording at once both land.
    pub async fn record_whowas(&self, entry: kv::WhowasEntry) -> Result<(), RegistryError> {
        let key = kv::whowas_key(&entry.nick);
        let store = &self.buckets.whowas;
        for _ in 0..5 {
            let current = store
                .entry(key.as_str())
                .await
                .map_err(|e| kv_err("get whowas")(e.to_string()))?;
            let (mut list, revision) = match &current {
                Some(e) if e.operation == async_nats::jetstream::kv::Operation::Put => (
                    serde_json::from_slice::<Vec<kv::WhowasEntry>>(&e.value).unwrap_or_default(),
                    Some(e.revision),
                ),
                Some(e) => (Vec::new(), Some(e.revision)),
                None => (Vec::new(), None),
            };
            list.insert(0, entry.clone());
            list.truncate(WHOWAS_PER_NICK);
            let value = serde_json::to_vec(&list).unwrap_or_default();
            let written = match revision {
                Some(rev) => store.update(key.as_str(), value.into(), rev).await.is_ok(),
                None => store.create(key.as_str(), value.into()).await.is_ok(),
            };
            if written {
                return Ok(());
            }
        }
        Err(kv_err("put whowas")("kept changing under us".into()))
    }

    /// Who used `nick` lately, newest first.
    pub async fn whowas(&self, nick: &str) -> Result<Vec<kv::WhowasEntry>, RegistryError> {
        Ok(
            get_json(&self.buckets.whowas, kv::whowas_key(nick), "get whowas")
                .await?
                .unwrap_or_default(),
        )
    }

    /// Tells listeners that a session of `account` started or ended (best
    /// effort: see [`bus::presence`]).
    pub async fn signal_presence(&self, account: &str, sid: &str, online: bool) {
        let signal = bus::presence::PresenceSignal {
            account: account.to_string(),
            sid: sid.to_string(),
            online,
        };
        let subject = bus::presence::subject(&self.buckets.prefix, account);
        let payload = serde_json::to_vec(&signal).unwrap_or_default();
        if let Err(e) = self.buckets.client.publish(subject, payload.into()).await {
            tracing::debug!(error = %e, "publishing a presence signal failed");
        }
    }

    /// Whether any session of `account` is live: one of its nicks
    /// (`alice`, `alice|2`…, see [`crate::sessions::nick_candidate`]) is
    /// claimed by a session logged in as it.
    pub async fn account_online(&self, account: &str) -> bool {
        let folded = bus::names::fold(account);
        for n in 1..=crate::sessions::NICK_CANDIDATES {
            let nick = crate::sessions::nick_candidate(account, n);
            match self.session_by_nick(&nick).await {
                Ok(Some(rec))
                    if rec
                        .actor
                        .account
                        .as_deref()
                        .is_some_and(|a| bus::names::fold(a) == folded) =>
                {
                    return true
                }
                Ok(Some(_)) => {}
                // Candidates are taken in order, so the first free one ends the search.
                Ok(None) => return false,
                Err(_) => return false,
            }
        }
        false
    }

    /// Claims `nick` for `sid`; fails with [`RegistryError::NickInUse`] if
    /// anyone (in any case) holds it. Returns the claim's revision.
    pub async fn claim_nick(&self, nick: &str, sid: &str) -> Result<u64, RegistryError> {
        let claim = NickClaim {
            sid: sid.to_string(),
            nick: nick.to_string(),
        };
        match self
            .buckets
            .nicks
            .create(kv::nick_key(nick), to_bytes(&claim))
            .await
        {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Err(RegistryError::NickInUse),
            Err(e) => Err(kv_err("create nick")(e.to_string())),
        }
    }

    /// Re-writes our claim (heartbeat, or a change of case) if it is still
    /// the one at `rev`. If the claim aged out meanwhile it is taken again;
    /// if someone else holds it now, [`RegistryError::NickLost`].
    pub async fn refresh_nick(
        &self,
        nick: &str,
        sid: &str,
        rev: u64,
    ) -> Result<u64, RegistryError> {
        let claim = NickClaim {
            sid: sid.to_string(),
            nick: nick.to_string(),
        };
        let key = kv::nick_key(nick);
        match self.buckets.nicks.update(&key, to_bytes(&claim), rev).await {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                match self.nick_claim(nick).await? {
                    Some(c) if c.sid != sid => Err(RegistryError::NickLost),
                    // Ours but at another revision (should not happen), or
                    // aged out: take it (again) unless someone beats us.
                    _ => match self.buckets.nicks.entry(&key).await {
                        Ok(Some(entry)) => self
                            .buckets
                            .nicks
                            .update(&key, to_bytes(&claim), entry.revision)
                            .await
                            .map_err(|_| RegistryError::NickLost),
                        Ok(None) => self.claim_nick(nick, sid).await.map_err(|e| match e {
                            RegistryError::NickInUse => RegistryError::NickLost,
                            other => other,
                        }),
                        Err(e) => Err(kv_err("nick entry")(e.to_string())),
                    },
                }
            }
            Err(e) => Err(kv_err("update nick")(e.to_string())),
        }
    }

    /// Releases our claim on `nick`, unless it changed hands since `rev`.
    pub async fn release_nick(&self, nick: &str, rev: u64) -> Result<(), RegistryError> {
        match self
            .buckets
            .nicks
            .delete_expect_revision(kv::nick_key(nick), Some(rev))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(kv_err("delete nick")(e.to_string())),
        }
    }

    pub async fn put_session(&self, rec: &SessionRecord) -> Result<(), RegistryError> {
        self.buckets
            .sessions
            .put(kv::session_key(&rec.actor.sid), to_bytes(rec))
            .await
            .map(|_| ())
            .map_err(|e| kv_err("put session")(e.to_string()))
    }

    pub async fn delete_session(&self, sid: &str) -> Result<(), RegistryError> {
        self.buckets
            .sessions
            .delete(kv::session_key(sid))
            .await
            .map_err(|e| kv_err("delete session")(e.to_string()))
    }

    /// Who holds `nick` (any case), if anyone.
    pub async fn nick_claim(&self, nick: &str) -> Result<Option<NickClaim>, RegistryError> {
        get_json(&self.buckets.nicks, kv::nick_key(nick), "get nick").await
    }

    pub async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, RegistryError> {
        get_json(&self.buckets.sessions, kv::session_key(sid), "get session").await
    }

    /// The live session using `nick`: the claim, then its record. A claim
    /// whose record is gone (or names another nick) counts as nobody.
    pub async fn session_by_nick(
        &self,
        nick: &str,
    ) -> Result<Option<SessionRecord>, RegistryError> {
        let Some(claim) = self.nick_claim(nick).await? else {
            return Ok(None);
        };
        Ok(self
            .session(&claim.sid)
            .await?
            .filter(|rec| fold(&rec.actor.nick) == fold(nick)))
    }

    /// A room's record (by folded name).
    pub async fn room(&self, folded: &str) -> Result<Option<RoomRecord>, RegistryError> {
        get_json(&self.buckets.rooms, kv::room_key(folded), "get room").await
    }

    /// A room's record (by folded name), if the room has members now: a
    /// member-less record is the husk of a room that emptied (the router
    /// keeps it so the next room of that name continues its numbers), and
    /// to IRC and XMPP that room does not exist.
    pub async fn live_room(&self, folded: &str) -> Result<Option<RoomRecord>, RegistryError> {
        Ok(self.room(folded).await?.filter(|r| !r.members.is_empty()))
    }

    /// Up to `limit` records of rooms that have members (husks skipped),
    /// in no particular order.
    pub async fn rooms(&self, limit: usize) -> Result<Vec<RoomRecord>, RegistryError> {
        let mut keys = subject_keys(&self.buckets.rooms).await?;
        keys.truncate(limit);
        let rooms: Vec<String> = keys.iter().filter_map(|k| kv::room_from_key(k)).collect();
        let mut records = self.rooms_named(rooms).await;
        records.retain(|r| !r.members.is_empty());
        Ok(records)
    }

    /// Fetches several rooms' records concurrently (missing ones skipped).
    pub async fn rooms_named(&self, folded: Vec<String>) -> Vec<RoomRecord> {
        futures::stream::iter(folded)
            .map(|room| async move { self.room(&room).await.ok().flatten() })
            .buffer_unordered(FETCH_CONCURRENCY)
            .filter_map(|r| async move { r })
            .collect()
            .await
    }
}

/// The keys of a bucket from its stream's per-subject listing: one
/// request, unlike `kv::Store::keys`, which can stall while the bucket is
/// being written. Deleted keys whose delete marker is still stored are
/// included; readers treat a listed key as "maybe present".
pub async fn subject_keys(store: &Store) -> Result<Vec<String>, RegistryError> {
    let filter = format!("{}>", store.prefix);
    let subjects = store
        .stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| kv_err("list keys")(e.to_string()))?;
    let subjects: Vec<(String, usize)> = subjects
        .try_collect()
        .await
        .map_err(|e| kv_err("list keys")(e.to_string()))?;
    Ok(subjects
        .into_iter()
        .filter_map(|(subject, _)| subject.strip_prefix(&store.prefix).map(str::to_string))
        .collect())
}

fn to_bytes<T: serde::Serialize>(value: &T) -> bytes::Bytes {
    // Our record types are plain data; serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default().into()
}

async fn get_json<T: DeserializeOwned>(
    store: &Store,
    key: String,
    op: &'static str,
) -> Result<Option<T>, RegistryError> {
    let Some(bytes) = store
        .get(key.as_str())
        .await
        .map_err(|e| kv_err(op)(e.to_string()))?
    else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(%key, error = %e, "ignoring an undecodable record");
            Ok(None)
        }
    }
}
