//! Registered rooms: the durable part of a room's state.
//!
//! NATS holds the live state of every room (members, modes, topic…), and
//! loses nothing a client relies on while the platform runs. A room
//! registered with ChanServ must also survive everybody leaving it and the
//! loss of its NATS record, so its durable part — name, registration
//! (founder, access list, topic lock), topic, modes and bans — is also
//! written through to PostgreSQL ([`crate::pgstore`]). This module is the
//! pure half: what that durable part is, and how the router tracks its
//! changes so that each one gets a higher [`Registration::rev`].

use bus::schema::{BanEntry, Registration, RoomModes, TopicInfo};

use crate::room::Room;

/// Access-list entries per room, at most (founder not counted): bounds what
/// one founder can make the router keep and write.
pub const MAX_ACCESS: usize = 100;

/// What PostgreSQL keeps of a registered room, and what a room created
/// again under its name starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Durable {
    /// Folded name.
    pub room: String,
    /// Display name.
    pub name: String,
    pub registration: Registration,
    pub topic: Option<TopicInfo>,
    pub modes: RoomModes,
    pub bans: Vec<BanEntry>,
}

impl Durable {
    /// The durable part of a live room, if it is registered.
    pub fn of(room: &Room) -> Option<Self> {
        let registration = room.registration.clone()?;
        Some(Self {
            room: room.room.clone(),
            name: room.name.clone(),
            registration,
            topic: room.topic.clone(),
            modes: room.modes.clone(),
            bans: room.bans.clone(),
        })
    }

    pub fn rev(&self) -> u64 {
        self.registration.rev
    }

    /// Equal in everything but the revision.
    pub fn same_state(&self, other: &Self) -> bool {
        let mut a = self.registration.clone();
        a.rev = other.registration.rev;
        a == other.registration
            && self.room == other.room
            && self.name == other.name
            && self.topic == other.topic
            && self.modes == other.modes
            && self.bans == other.bans
    }
}

/// What the end of a batch must write to PostgreSQL for one room.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// Insert or update (only over an older revision).
    Upsert(Box<Durable>),
    /// The registration was dropped at revision `rev`: delete it (only if
    /// what is stored is not newer).
    Delete { room: String, rev: u64 },
}

impl Persist {
    pub fn room(&self) -> &str {
        match self {
            Persist::Upsert(d) => &d.room,
            Persist::Delete { room, .. } => room,
        }
    }
}

/// The change between the durable state of a room before and after an
/// intent, with the revision it must be stored at (written back into
/// `after`). `None`: nothing durable changed.
pub fn change(before: Option<&Durable>, after: Option<&mut Durable>) -> Option<Persist> {
    match (before, after) {
        (None, None) => None,
        (Some(b), Some(a)) if b.same_state(a) => {
            a.registration.rev = b.rev();
            None
        }
        (b, Some(a)) => {
            a.registration.rev = b.map(Durable::rev).unwrap_or(0) + 1;
            Some(Persist::Upsert(Box::new(a.clone())))
        }
        (Some(b), None) => Some(Persist::Delete {
            room: b.room.clone(),
            rev: b.rev() + 1,
        }),
    }
}

/// Whether `name` can be an account (the auth service's rule: 2–32 of
/// `a-z 0-9 _ -`, starting with a letter, case-insensitive). The router
/// has no cheap way to ask the auth service whether it exists, so ACCESS
/// ADD accepts any well-formed name.
pub fn valid_account(name: &str) -> bool {
    (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durable(topic: &str, rev: u64) -> Durable {
        Durable {
            room: "ops".into(),
            name: "Ops".into(),
            registration: Registration {
                founder: "alice".into(),
                registered_at: 1,
                topic_lock: false,
                access: Default::default(),
                rev,
            },
            topic: Some(TopicInfo {
                text: topic.into(),
                set_by: "alice".into(),
                set_at: 2,
            }),
            modes: RoomModes::default(),
            bans: Vec::new(),
        }
    }

    #[test]
    fn every_change_raises_the_revision_once() {
        let before = durable("a", 4);
        let mut same = durable("a", 0);
        assert_eq!(change(Some(&before), Some(&mut same)), None);
        assert_eq!(same.rev(), 4, "an unchanged state keeps its revision");
        let mut after = durable("b", 4);
        match change(Some(&before), Some(&mut after)) {
            Some(Persist::Upsert(d)) => assert_eq!((d.rev(), after.rev()), (5, 5)),
            other => panic!("{other:?}"),
        }
        let mut new = durable("a", 0);
        assert!(matches!(
            change(None, Some(&mut new)),
            Some(Persist::Upsert(_))
        ));
        assert_eq!(new.rev(), 1);
        assert_eq!(
            change(Some(&before), None),
            Some(Persist::Delete {
                room: "ops".into(),
                rev: 5
            })
        );
        assert_eq!(change(None, None), None);
    }

    #[test]
    fn account_names() {
        for ok in ["bob", "a1", "x_y-z", "Bob"] {
            assert!(valid_account(ok), "{ok}");
        }
        for bad in ["", "b", "1bob", "bob!", "b b", &"a".repeat(33), "_x"] {
            assert!(!valid_account(bad), "{bad:?}");
        }
    }
}
