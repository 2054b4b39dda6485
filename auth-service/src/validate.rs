//! Account-name and password rules.
//!
//! An account name must also be a valid IRC nick, XMPP localpart and Tinode
//! login, hence the narrow alphabet.

/// Folds a name as every protocol compares it (ASCII lowercase).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Whether a folded name is acceptable: 2..=32 of `[a-z0-9_-]`, starting
/// with a letter.
pub fn valid_account(folded: &str) -> bool {
    let bytes = folded.as_bytes();
    (2..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// Whether a password is acceptable: 8..=256 bytes (it is UTF-8 already).
pub fn valid_password(password: &str) -> bool {
    (8..=256).contains(&password.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_account("al"));
        assert!(valid_account("alice_b-2"));
        assert!(valid_account(&"a".repeat(32)));
        assert!(!valid_account(&"a".repeat(33)));
        assert!(!valid_account("a"));
        assert!(!valid_account("2bob"));
        assert!(!valid_account("_bob"));
        assert!(!valid_account("bob.x"));
        assert!(!valid_account("Bob"), "names are folded before the check");
        assert_eq!(fold("AliCe"), "alice");
    }

    #[test]
    fn passwords() {
        assert!(!valid_password("short"));
        assert!(valid_password("12345678"));
        assert!(valid_password(&"é".repeat(128)));
        assert!(!valid_password(&"é".repeat(129)));
    }
}
