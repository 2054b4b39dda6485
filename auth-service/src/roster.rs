//! The subscription state machine of RFC 6121 §3, on one pair of rows:
//! the owner's facts about a contact and the contact's about the owner.
//! Both live on this server, so each request updates both sides at once
//! (the owner's `to` always equals the contact's `from`) and yields the
//! notices the contact's or the owner's sessions must be shown.
//!
//! Pure: [`crate::db`] loads and stores the rows in one transaction and
//! turns the differences into roster pushes.

use bus::schema::{RosterItem, Subscription, SubscriptionAction};

/// What one account knows about one contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub in_roster: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The owner receives the contact's presence.
    pub sub_to: bool,
    /// The contact receives the owner's presence.
    pub sub_from: bool,
    /// The owner asked for the contact's presence.
    pub ask_out: bool,
    /// The contact asked for the owner's presence.
    pub pending_in: bool,
}

impl Row {
    pub fn item(&self, contact: &str) -> RosterItem {
        RosterItem {
            contact: contact.to_string(),
            name: self.name.clone(),
            groups: self.groups.clone(),
            subscription: Subscription::of(self.sub_to, self.sub_from),
            ask: self.ask_out,
        }
    }

    /// Whether the row says nothing and can be deleted.
    pub fn is_empty(&self) -> bool {
        !self.in_roster && !self.sub_to && !self.sub_from && !self.ask_out && !self.pending_in
    }

    /// Whether a roster push is owed to the owner after `before` became
    /// `self`: something the owner's roster shows changed.
    pub fn shows_change_from(&self, before: &Row) -> bool {
        (self.in_roster || before.in_roster)
            && (self.in_roster != before.in_roster
                || self.name != before.name
                || self.groups != before.groups
                || self.sub_to != before.sub_to
                || self.sub_from != before.sub_from
                || self.ask_out != before.ask_out)
    }
}

/// A request about one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Roster set: list the contact with this name and these groups.
    Set {
        name: Option<String>,
        groups: Vec<String>,
    },
    /// Roster remove: unlist the contact and cancel both directions.
    Remove,
    /// A subscription presence from the owner to the contact.
    Presence(SubscriptionAction),
}

/// Who a notice is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Owner,
    Contact,
}

/// Applies `change` to the owner's row `o` and the contact's row `c`.
/// Returns the subscription presences to deliver, in order.
pub fn apply(change: Change, o: &mut Row, c: &mut Row) -> Vec<(From, SubscriptionAction)> {
    use SubscriptionAction::*;
    let mut notices = Vec::new();
    match change {
        Change::Set { name, groups } => {
            o.in_roster = true;
            o.name = name;
            o.groups = groups;
        }
        Change::Remove => {
            if o.sub_to || o.ask_out {
                notices.extend(apply(Change::Presence(Unsubscribe), o, c));
            }
            if o.sub_from || o.pending_in {
                notices.extend(apply(Change::Presence(Unsubscribed), o, c));
            }
            *o = Row::default();
        }
        Change::Presence(Subscribe) => {
            // §3.1.2: the item is listed with ask=subscribe until answered.
            o.in_roster = true;
            if c.sub_from {
                // §3.1.3: the contact already lets the owner have its
                // presence; its server answers for it.
                o.sub_to = true;
                o.ask_out = false;
                notices.push((From::Contact, Subscribed));
            } else {
                o.ask_out = true;
                c.pending_in = true;
                notices.push((From::Owner, Subscribe));
            }
        }
        Change::Presence(Subscribed) => {
            // §3.1.5: approving a request that exists (no pre-approval).
            if o.pending_in && !o.sub_from {
                o.pending_in = false;
                o.sub_from = true;
                o.in_roster = true;
                c.ask_out = false;
                c.sub_to = true;
                c.in_roster = true;
                notices.push((From::Owner, Subscribed));
            } else {
                o.pending_in = false;
            }
        }
        Change::Presence(Unsubscribe) => {
            // §3.3: the owner stops receiving the contact's presence.
            if o.sub_to || o.ask_out {
                o.sub_to = false;
                o.ask_out = false;
                c.sub_from = false;
                c.pending_in = false;
                notices.push((From::Owner, Unsubscribe));
            }
        }
        Change::Presence(Unsubscribed) => {
            // §3.2: cancel the contact's subscription, or refuse its request.
            if o.sub_from || o.pending_in {
                o.sub_from = false;
                o.pending_in = false;
                c.sub_to = false;
                c.ask_out = false;
                notices.push((From::Owner, Unsubscribed));
            }
        }
    }
    notices
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionAction::*;

    fn p(a: SubscriptionAction) -> Change {
        Change::Presence(a)
    }

    #[test]
    fn a_request_then_its_approval_gives_to_and_from() {
        let (mut alice, mut bob) = (Row::default(), Row::default());
        // alice asks bob
        assert_eq!(
            apply(p(Subscribe), &mut alice, &mut bob),
            vec![(From::Owner, Subscribe)]
        );
        assert!(alice.in_roster && alice.ask_out && !alice.sub_to);
        assert!(bob.pending_in && !bob.in_roster);
        // bob approves (bob is the owner now)
        assert_eq!(
            apply(p(Subscribed), &mut bob, &mut alice),
            vec![(From::Owner, Subscribed)]
        );
        assert_eq!(alice.item("bob").subscription, Subscription::To);
        assert!(!alice.ask_out);
        assert_eq!(bob.item("alice").subscription, Subscription::From);
        assert!(bob.in_roster && !bob.pending_in);
        // bob asks back: alice is not yet letting bob have hers
        apply(p(Subscribe), &mut bob, &mut alice);
        apply(p(Subscribed), &mut alice, &mut bob);
        assert_eq!(alice.item("bob").subscription, Subscription::Both);
        assert_eq!(bob.item("alice").subscription, Subscription::Both);
    }

    #[test]
    fn a_second_request_to_a_subscriber_is_answered_by_the_server() {
        let mut alice = Row::default();
        let mut bob = Row {
            sub_from: true,
            in_roster: true,
            ..Row::default()
        };
        assert_eq!(
            apply(p(Subscribe), &mut alice, &mut bob),
            vec![(From::Contact, Subscribed)]
        );
        assert!(alice.sub_to && !alice.ask_out);
    }

    #[test]
    fn approval_without_a_request_changes_nothing() {
        let (mut alice, mut bob) = (Row::default(), Row::default());
        assert!(apply(p(Subscribed), &mut alice, &mut bob).is_empty());
        assert!(alice.is_empty() && bob.is_empty());
    }

    #[test]
    fn refusing_and_cancelling_clear_both_sides() {
        let (mut alice, mut bob) = (Row::default(), Row::default());
        apply(p(Subscribe), &mut alice, &mut bob);
        assert_eq!(
            apply(p(Unsubscribed), &mut bob, &mut alice),
            vec![(From::Owner, Unsubscribed)]
        );
        assert!(!alice.ask_out && !bob.pending_in);
        assert!(alice.in_roster, "the item stays listed, with none");
        // a repeated refusal is not delivered again
        assert!(apply(p(Unsubscribed), &mut bob, &mut alice).is_empty());
    }

    #[test]
    fn removal_cancels_both_directions() {
        let (mut alice, mut bob) = (Row::default(), Row::default());
        apply(p(Subscribe), &mut alice, &mut bob);
        apply(p(Subscribed), &mut bob, &mut alice);
        apply(p(Subscribe), &mut bob, &mut alice);
        apply(p(Subscribed), &mut alice, &mut bob);
        let before = alice.clone();
        assert_eq!(
            apply(Change::Remove, &mut alice, &mut bob),
            vec![(From::Owner, Unsubscribe), (From::Owner, Unsubscribed)]
        );
        assert!(alice.is_empty());
        assert!(alice.shows_change_from(&before));
        assert_eq!(bob.item("alice").subscription, Subscription::None);
        assert!(bob.in_roster);
    }

    #[test]
    fn pushes_are_owed_only_for_what_the_roster_shows() {
        let before = Row::default();
        let pending = Row {
            pending_in: true,
            ..Row::default()
        };
        assert!(!pending.shows_change_from(&before));
        let listed = Row {
            in_roster: true,
            ..Row::default()
        };
        assert!(listed.shows_change_from(&before));
        assert!(!listed.shows_change_from(&listed.clone()));
    }
}
