//! The roster contract (RFC 6121 §2–3): contact lists and presence
//! subscriptions, kept by the auth service in PostgreSQL next to the
//! accounts they belong to, and asked for with the roster variants of
//! [`crate::schema::AuthRequestBody`].
//!
//! A subscription is two one-way facts between two accounts of this
//! server: whether the owner receives the contact's presence (`to`) and
//! whether the contact receives the owner's (`from`), plus the two pending
//! requests. The service changes both sides of a pair in one transaction,
//! so the owner's `to` and the contact's `from` never disagree, and
//! answers with what each side must be told: roster pushes, to every
//! session of an account (routing key [`account_key`] on `chat.direct`),
//! and subscription notices, the presence stanzas RFC 6121 has the server
//! deliver.

use serde::{Deserialize, Serialize};

/// The routing key, on `chat.direct`, of every XMPP session of an account:
/// roster pushes, presence, probes and carbons use it.
pub fn account_key(account: &str) -> String {
    format!("account.{account}")
}

/// The `subscription` attribute of a roster item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subscription {
    #[default]
    None,
    /// The owner receives the contact's presence.
    To,
    /// The contact receives the owner's presence.
    From,
    Both,
}

impl Subscription {
    pub fn of(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }

    /// Whether the owner receives the contact's presence.
    pub fn to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// Whether the contact receives the owner's presence.
    pub fn from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }
}

/// One contact in an account's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterItem {
    /// The contact's account name (case-folded).
    pub contact: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// The owner asked for the contact's presence and awaits the answer
    /// (`ask="subscribe"`).
    #[serde(default)]
    pub ask: bool,
}

/// A change to one account's roster, for every session of that account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterPush {
    /// Whose roster changed.
    pub account: String,
    /// The roster's version after the change.
    pub ver: i64,
    pub item: RosterItem,
    /// The item left the roster (`subscription="remove"`).
    #[serde(default)]
    pub removed: bool,
}

/// What a subscription presence asks (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionAction {
    /// The owner asks for the contact's presence.
    Subscribe,
    /// The owner lets the contact have its presence.
    Subscribed,
    /// The owner no longer wants the contact's presence.
    Unsubscribe,
    /// The owner withdraws (or refuses) the contact's access to its presence.
    Unsubscribed,
}

impl SubscriptionAction {
    /// The presence `type` it is sent as.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionAction::Subscribe => "subscribe",
            SubscriptionAction::Subscribed => "subscribed",
            SubscriptionAction::Unsubscribe => "unsubscribe",
            SubscriptionAction::Unsubscribed => "unsubscribed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "subscribe" => SubscriptionAction::Subscribe,
            "subscribed" => SubscriptionAction::Subscribed,
            "unsubscribe" => SubscriptionAction::Unsubscribe,
            "unsubscribed" => SubscriptionAction::Unsubscribed,
            _ => return None,
        })
    }
}

/// A subscription presence to deliver: `from` tells `to` `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub from: String,
    pub to: String,
    pub action: SubscriptionAction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_states_round_trip() {
        for (to, from) in [(false, false), (true, false), (false, true), (true, true)] {
            let s = Subscription::of(to, from);
            assert_eq!((s.to(), s.from()), (to, from));
        }
        assert_eq!(Subscription::of(true, true).as_str(), "both");
        for a in ["subscribe", "subscribed", "unsubscribe", "unsubscribed"] {
            assert_eq!(SubscriptionAction::parse(a).unwrap().as_str(), a);
        }
        assert_eq!(SubscriptionAction::parse("probe"), None);
    }
}
