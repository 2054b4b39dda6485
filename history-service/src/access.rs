//! Who may read a room's history: its current members, as listed in the
//! router's room record in NATS (`<prefix>_rooms`, key `room.<escaped>`).
//!
//! The router writes the record after it published a batch's events, so a
//! gateway that asks right after it saw its client's own JOIN can be ahead
//! of the record. A refusal is therefore only given after re-reading the
//! record for `membership_retry`.
//!
//! A room that emptied keeps a record with no members (its husk: the router
//! keeps its seq and message number there), which is "no such room" here
//! as everywhere: nobody is a member of it.

use std::time::Duration;

use async_nats::jetstream::kv;
use bus::kv::room_key;
use bus::names::fold;
use bus::schema::RoomRecord;
use tokio::time::Instant;

/// How often the record is re-read while waiting for a member to appear.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
#[error("reading room record {key}: {detail}")]
pub struct AccessError {
    key: String,
    detail: String,
}

/// The room display name if `sid` is a member of `record`.
pub fn member_of(record: &RoomRecord, sid: &str) -> Option<String> {
    record
        .members
        .iter()
        .any(|m| m.actor.sid == sid)
        .then(|| record.name.clone())
}

#[derive(Clone)]
pub struct Membership {
    rooms: kv::Store,
    retry: Duration,
}

impl Membership {
    pub fn new(rooms: kv::Store, retry: Duration) -> Self {
        Self { rooms, retry }
    }

    /// The room's display name if `sid` is a member of `room` (any case),
    /// `None` if it is not (or there is no such room) after the retry window.
    pub async fn check(&self, room: &str, sid: &str) -> Result<Option<String>, AccessError> {
        let key = room_key(&fold(room));
        let deadline = Instant::now() + self.retry;
        loop {
            if let Some(name) = self.read(&key).await?.and_then(|r| member_of(&r, sid)) {
                return Ok(Some(name));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }

    async fn read(&self, key: &str) -> Result<Option<RoomRecord>, AccessError> {
        let entry = self.rooms.get(key).await.map_err(|e| AccessError {
            key: key.to_string(),
            detail: e.to_string(),
        })?;
        let Some(bytes) = entry else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(error) => {
                tracing::warn!(%key, %error, "unreadable room record: nobody is a member");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::{MemberRecord, RoomModes};

    #[test]
    fn only_listed_sessions_are_members() {
        let actor = crate::items::tests::actor("alice", "s1", None);
        let record = RoomRecord {
            room: "ops".into(),
            name: "Ops".into(),
            created_at: 0,
            seq: 3,
            mseq: 0,
            topic: None,
            modes: RoomModes::default(),
            bans: vec![],
            invited: vec!["s2".into()],
            members: vec![MemberRecord {
                actor,
                op: true,
                voice: false,
                away: None,
                bot: false,
                joined_at: 0,
            }],
            applied: vec![],
            registration: None,
        };
        assert_eq!(member_of(&record, "s1").as_deref(), Some("Ops"));
        assert_eq!(member_of(&record, "s2"), None, "invited is not a member");
        let husk = RoomRecord {
            members: vec![],
            invited: vec![],
            ..record
        };
        assert_eq!(member_of(&husk, "s1"), None, "nobody reads through a husk");
    }
}
