//! Ban masks: normalisation and case-insensitive glob matching.
//!
//! A ban is an IRC-style `nick!user@host` pattern where `*` matches any run
//! of characters and `?` exactly one. Matching folds ASCII case, like room
//! and nick names do (`CASEMAPPING=ascii`).

/// The account extban: `$a:<account glob>` matches sessions logged in to
/// a matching account, whatever their nick or host (how XMPP bans by JID).
pub const ACCOUNT_PREFIX: &str = "$a:";

/// Whether ban `mask` matches a session with this hostmask and account.
pub fn bans(mask: &str, hostmask: &str, account: Option<&str>) -> bool {
    match mask.strip_prefix(ACCOUNT_PREFIX) {
        Some(glob) => account.is_some_and(|a| matches(glob, a)),
        None => matches(mask, hostmask),
    }
}

/// Completes a partial mask the way IRC servers do, so that the stored ban
/// always has the `nick!user@host` shape it is matched against:
/// `nick` → `nick!*@*`, `nick!user` → `nick!user@*`, `user@host` →
/// `*!user@host`. Empty parts become `*`.
pub fn normalize(mask: &str) -> String {
    if let Some(account) = mask.strip_prefix(ACCOUNT_PREFIX) {
        // An account extban is kept as written (an empty one matches any
        // logged-in user).
        return format!(
            "{ACCOUNT_PREFIX}{}",
            if account.is_empty() { "*" } else { account }
        );
    }
    let or_star = |s: &str| {
        if s.is_empty() {
            "*".to_string()
        } else {
            s.to_string()
        }
    };
    let (nick, rest) = match mask.split_once('!') {
        Some((nick, rest)) => (or_star(nick), Some(rest)),
        None => (String::new(), None),
    };
    match rest {
        Some(rest) => match rest.split_once('@') {
            Some((user, host)) => format!("{nick}!{}@{}", or_star(user), or_star(host)),
            None => format!("{nick}!{}@*", or_star(rest)),
        },
        None => match mask.split_once('@') {
            Some((user, host)) => format!("*!{}@{}", or_star(user), or_star(host)),
            None => format!("{}!*@*", or_star(mask)),
        },
    }
}

/// Whether `subject` matches the glob `mask` (ASCII case-insensitive);
/// the matcher is shared with the gateway (LIST masks), see
/// [`bus::names::glob_matches`].
pub fn matches(mask: &str, subject: &str) -> bool {
    bus::names::glob_matches(mask, subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_partial_masks() {
        assert_eq!(normalize("bob"), "bob!*@*");
        assert_eq!(normalize("bob!u"), "bob!u@*");
        assert_eq!(normalize("u@h.example"), "*!u@h.example");
        assert_eq!(normalize("bob!u@h"), "bob!u@h");
        assert_eq!(normalize("!u@"), "*!u@*");
        assert_eq!(normalize("@h"), "*!*@h");
        assert_eq!(normalize("*"), "*!*@*");
    }

    #[test]
    fn globs_match_case_insensitively() {
        assert!(matches("bob!*@*", "Bob!bobby@10.0.0.1"));
        assert!(matches("*!*@10.0.0.?", "alice!al@10.0.0.7"));
        assert!(!matches("*!*@10.0.0.?", "alice!al@10.0.0.77"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "abca"));
        assert!(matches("*c", "abcabc"));
        assert!(!matches("", "x"));
        assert!(matches("", ""));
        assert!(!matches("bob!*@*", "bobby!u@h"));
        assert!(matches("?ob!*@*", "ROB!u@h"));
    }

    #[test]
    fn hostile_masks_stay_fast() {
        let subject = "a".repeat(500);
        let mask = format!("{}b", "*a".repeat(200));
        assert!(!matches(&mask, &subject));
    }

    #[test]
    fn account_extbans_match_the_account_only() {
        assert_eq!(normalize("$a:Alice"), "$a:Alice");
        assert_eq!(normalize("$a:"), "$a:*");
        assert!(bans("$a:alice", "anything!u@h", Some("alice")));
        assert!(!bans("$a:alice", "alice!alice@h", None));
        assert!(!bans("$a:alice", "x!y@z", Some("alicia")));
        assert!(bans("*!*@h", "x!y@h", None));
    }
}
