//! Message redaction, the part every protocol shares: IRC `REDACT`
//! (IRCv3 `draft/message-redaction`) and XMPP message retraction
//! (XEP-0424) both name a room message by its id and become the same
//! [`IntentBody::Redact`].
//!
//! The router keeps no messages, so before publishing the intent the
//! gateway asks history for the message: that tells whether it exists (in
//! that room, not already deleted), who wrote it (so whether the actor may
//! delete it without being an operator) and its message number. The
//! question is an `Around` page anchored on the id with a limit of one:
//! it returns the anchor's own item when that is a visible message, and
//! otherwise some neighbour (or nothing), which [`target`] tells apart by
//! its id.

use bus::history::{Anchor, HistoryItem, HistoryQuery, HistoryTarget, Selector};
use bus::names::fold;
use bus::schema::{Actor, EventBody, IntentBody, MessageKind};

/// The longest message id looked up. Ids are the router's (32 hex digits);
/// anything much longer cannot be one and is refused without asking.
pub const MAX_MSGID_BYTES: usize = 128;

/// Whether `msgid` could name a stored message at all: not empty, not
/// absurdly long, no spaces or control characters (which no id has).
pub fn plausible_msgid(msgid: &str) -> bool {
    !msgid.is_empty()
        && msgid.len() <= MAX_MSGID_BYTES
        && !msgid
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
}

/// The history question that finds message `msgid` of `room`.
pub fn lookup(room: &str, msgid: &str) -> HistoryQuery {
    HistoryQuery::Fetch {
        target: HistoryTarget::Room {
            room: room.to_string(),
        },
        selector: Selector::Around {
            anchor: Anchor::Id(msgid.to_string()),
        },
        limit: 1,
        events: false,
    }
}

/// The message `msgid` in the answer to [`lookup`], if it is there and is
/// a PRIVMSG or NOTICE (history keeps no TAGMSG, and events cannot be
/// deleted).
pub fn target<'a>(items: &'a [HistoryItem], msgid: &str) -> Option<&'a HistoryItem> {
    items.iter().find(|i| {
        i.id == msgid
            && matches!(
                i.body,
                EventBody::Message {
                    kind: MessageKind::Privmsg | MessageKind::Notice,
                    ..
                }
            )
    })
}

/// Whether the session `sid` (logged in as `account`, if any) wrote a
/// message sent by `from`: the same account, or the very same session
/// (a guest's messages are its session's; an account's session is also
/// the author of what it sent before logging in or after logging out).
pub fn is_author(from: &Actor, sid: &str, account: Option<&str>) -> bool {
    if !sid.is_empty() && from.sid == sid {
        return true;
    }
    match (account, from.account.as_deref()) {
        (Some(mine), Some(theirs)) => fold(mine) == fold(theirs),
        _ => false,
    }
}

/// The intent that deletes `item` from `room`, on behalf of the session
/// `sid`/`account`.
pub fn intent(
    room: &str,
    item: &HistoryItem,
    sid: &str,
    account: Option<&str>,
    reason: Option<String>,
) -> IntentBody {
    IntentBody::Redact {
        room: room.to_string(),
        msgid: item.id.clone(),
        mseq: item.mseq,
        own: is_author(&item.from, sid, account),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(sid: &str, account: Option<&str>) -> Actor {
        Actor {
            sid: sid.into(),
            gateway: "g".into(),
            nick: "n".into(),
            user: "u".into(),
            host: "h".into(),
            realname: "r".into(),
            account: account.map(String::from),
        }
    }

    fn item(id: &str, body: EventBody) -> HistoryItem {
        HistoryItem {
            seq: 5,
            mseq: Some(2),
            id: id.into(),
            at: 0,
            from: actor("s1", Some("Alice")),
            to: None,
            room: Some("Ops".into()),
            body,
        }
    }

    fn text(kind: MessageKind) -> EventBody {
        EventBody::Message {
            kind,
            text: "hi".into(),
            tags: Default::default(),
        }
    }

    #[test]
    fn authors_are_accounts_or_sessions() {
        let guest = actor("s1", None);
        assert!(is_author(&guest, "s1", None));
        assert!(is_author(&guest, "s1", Some("bob")), "same session");
        assert!(!is_author(&guest, "s2", None), "another guest");
        let alice = actor("s1", Some("Alice"));
        assert!(is_author(&alice, "s9", Some("alice")), "another session");
        assert!(!is_author(&alice, "s9", Some("bob")));
        assert!(!is_author(&alice, "s9", None));
        assert!(!is_author(&actor("", None), "", None), "no session");
    }

    #[test]
    fn only_the_named_message_is_the_target() {
        let items = vec![item("m2", text(MessageKind::Privmsg))];
        assert!(target(&items, "m2").is_some());
        assert!(target(&items, "m1").is_none(), "a neighbour is not it");
        let notice = vec![item("m3", text(MessageKind::Notice))];
        assert!(target(&notice, "m3").is_some());
        let events = vec![item("j1", EventBody::Join)];
        assert!(target(&events, "j1").is_none());
        let intent = intent("Ops", &items[0], "s7", Some("ALICE"), None);
        assert_eq!(
            intent,
            IntentBody::Redact {
                room: "Ops".into(),
                msgid: "m2".into(),
                mseq: Some(2),
                own: true,
                reason: None
            }
        );
    }

    #[test]
    fn implausible_ids_are_not_looked_up() {
        assert!(plausible_msgid(&bus::new_id()));
        assert!(!plausible_msgid(""));
        assert!(!plausible_msgid("a b"));
        assert!(!plausible_msgid("a\u{1}"));
        assert!(!plausible_msgid(&"x".repeat(MAX_MSGID_BYTES + 1)));
    }
}
