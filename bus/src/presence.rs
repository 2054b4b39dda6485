//! Accounts coming and going: a signal on core NATS (not kept) each time a
//! logged-in session of any protocol starts or ends, on a subject of its
//! own per account, so whoever shows contacts online (Tinode's `me`
//! presence) listens to exactly the accounts it cares about.
//!
//! A signal only says "look again": a session that ends may leave others
//! of the same account, and a gateway that dies sends nothing (its
//! sessions age out of the registry). Listeners answer "is the account
//! online?" from the registry's nick claims.

use serde::{Deserialize, Serialize};

use crate::names;

/// One session of `account` started (`online`) or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceSignal {
    pub account: String,
    pub sid: String,
    pub online: bool,
}

/// `<prefix>.presence.<escaped folded account>`.
pub fn subject(prefix: &str, account: &str) -> String {
    format!("{prefix}.presence.{}", names::escape(&names::fold(account)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_subject_per_account_whatever_the_case() {
        assert_eq!(subject("chat", "Alice"), "chat.presence.alice");
        assert_eq!(subject("t1", "a.b"), subject("t1", "A.B"));
        assert!(!subject("t1", "a.b").ends_with("a.b"));
    }
}
