//! Tinode names for the platform's people and rooms.
//!
//! Tinode clients assume nothing of an id beyond its prefix (`usr`, `grp`)
//! and its alphabet (base64url), so the names are readable and need no
//! lookup table:
//!
//! * an account is `usr<account>` (`usralice`): account names are
//!   `[a-z0-9_-]` starting with a letter, already base64url;
//! * a guest (an IRC user not logged in) is `usrG<escaped folded nick>`:
//!   no account name starts with an uppercase letter;
//! * an alert bot is `usrA<escaped source>`: not the guest who may hold
//!   the same nick on IRC, whom Tinode clients would otherwise take for
//!   the same user;
//! * a room is `grp<escaped folded name>` (`#ops` is `grpops`).
//!
//! Escaping is [`bus::names::escape`] with `X` for its `=`: folded names
//! hold no uppercase letters, so an `X` followed by two uppercase hex
//! digits can only be an escape.

use bus::names::{escape, fold, unescape};

fn token(folded: &str) -> String {
    escape(folded).replace('=', "X")
}

fn untoken(t: &str) -> Option<String> {
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    // Only lowercase letters, digits, `_`, `-` and `X` escapes are ours.
    let escaped = t.replace('X', "=");
    let name = unescape(&escaped)?;
    (token(&name) == t).then_some(name)
}

/// The user id of an account.
pub fn account_uid(account: &str) -> String {
    format!("usr{}", fold(account))
}

/// The user id of a guest, by nick.
pub fn guest_uid(nick: &str) -> String {
    format!("usrG{}", token(&fold(nick)))
}

/// The user id of an alert bot, by its nick.
pub fn bot_uid(nick: &str) -> String {
    format!("usrA{}", token(&fold(nick)))
}

/// The user id of whoever `actor` is: its account, else an alert bot's or
/// a guest's by nick.
pub fn actor_uid(actor: &bus::schema::Actor) -> String {
    match &actor.account {
        Some(a) => account_uid(a),
        None if bus::alerts::is_bot(actor) => bot_uid(&actor.nick),
        None => guest_uid(&actor.nick),
    }
}

/// The user id of a room member as the router lists it.
pub fn member_uid(m: &bus::schema::MemberInfo) -> String {
    match &m.account {
        Some(a) => account_uid(a),
        None => guest_uid(&m.nick),
    }
}

/// Who a one-to-one topic (`usr…`) is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerId {
    /// An account (folded).
    Account(String),
    /// A guest, by folded nick.
    Guest(String),
}

impl PeerId {
    /// The user id (and one-to-one topic name) of this peer.
    pub fn uid(&self) -> String {
        match self {
            PeerId::Account(a) => account_uid(a),
            PeerId::Guest(nick) => guest_uid(nick),
        }
    }
}

/// The peer a `usr…` name stands for.
pub fn peer_of(topic: &str) -> Option<PeerId> {
    let rest = topic.strip_prefix("usr")?;
    match rest.strip_prefix('G') {
        Some(nick) => untoken(nick).map(PeerId::Guest),
        None => crate::irc::reservation::could_be_account(rest)
            .then(|| PeerId::Account(rest.to_string())),
    }
}

/// The group topic name of a room (folded or display name).
pub fn group_topic(room: &str) -> String {
    format!("grp{}", token(&fold(room.trim_start_matches('#'))))
}

/// The folded room a `grp…` name stands for.
pub fn room_of(topic: &str) -> Option<String> {
    untoken(topic.strip_prefix("grp")?)
}

/// A fresh room name for a group created from Tinode (`{sub topic:"new…"}`):
/// 11 lowercase letters and digits, so IRC users see `#k3j9x0a2mqp`.
pub fn new_room_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut name = String::with_capacity(11);
    // A letter first: some IRC clients treat `#1234` oddly.
    name.push(ALPHABET[rand::random_range(0..26)] as char);
    for _ in 1..11 {
        name.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_round_trip() {
        assert_eq!(group_topic("#Ops"), "grpops");
        assert_eq!(room_of("grpops").as_deref(), Some("ops"));
        let odd = group_topic("#a.b:c");
        assert_eq!(odd, "grpaX2EbX3Ac");
        assert_eq!(room_of(&odd).as_deref(), Some("a.b:c"));
        assert_eq!(room_of("grpAbc"), None, "uppercase is not ours");
        assert_eq!(room_of("grpaX2"), None, "a cut escape");
        assert_eq!(room_of("grp"), None);
        assert_eq!(room_of("grpa=b"), None);
        let n = new_room_name();
        assert_eq!(room_of(&group_topic(&n)).as_deref(), Some(n.as_str()));
    }

    #[test]
    fn users() {
        assert_eq!(account_uid("Alice"), "usralice");
        assert_eq!(peer_of("usralice"), Some(PeerId::Account("alice".into())));
        assert_eq!(peer_of("usrGbobX7C"), Some(PeerId::Guest("bob|".into())));
        assert_eq!(peer_of("usrAlice"), None, "not an account name");
        assert_eq!(peer_of("usr"), None);
        assert_eq!(peer_of("grpalice"), None);
    }

    #[test]
    fn an_alert_bot_is_not_the_guest_of_the_same_nick() {
        let bot = bus::alerts::bot_actor("grafana");
        assert_eq!(actor_uid(&bot), "usrAgrafana");
        let guest = bus::schema::Actor {
            sid: "s1".into(),
            host: "127.0.0.1".into(),
            user: "~g".into(),
            ..bot.clone()
        };
        assert_eq!(actor_uid(&guest), "usrGgrafana");
        assert_eq!(peer_of("usrAgrafana"), None, "nobody to talk to");
    }
}
