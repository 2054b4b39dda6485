//! Session tokens: `v1.<account>.<issued_ms>.<expires_ms>.<base64url MAC>`.
//!
//! Self-contained and signed with the shared secret, so any replica checks
//! them without a lookup table; revocation is by time (a password change
//! moves `credentials_changed_at` past every older token's `issued_ms`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use crate::seal::Sealer;

const DOMAIN: &str = "token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub account: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

impl Token {
    pub fn issue(sealer: &Sealer, account: &str, now_ms: i64, ttl_secs: u64) -> (String, i64) {
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires = now_ms.saturating_add(ttl_ms);
        let body = format!("v1.{account}.{now_ms}.{expires}");
        let tag = sealer.mac(DOMAIN, body.as_bytes());
        (format!("{body}.{}", B64URL.encode(tag)), expires)
    }

    /// Checks the MAC (constant time) and the expiry. The account's state
    /// (exists, enabled, credentials unchanged) is the caller's to check.
    pub fn check(sealer: &Sealer, token: &str, now_ms: i64) -> Option<Token> {
        let (body, tag) = token.rsplit_once('.')?;
        let tag = B64URL.decode(tag).ok()?;
        if !sealer.verify(DOMAIN, body.as_bytes(), &tag) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("v1"), Some(account), Some(issued), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let token = Token {
            account: account.to_string(),
            issued_ms: issued.parse().ok()?,
            expires_ms: expires.parse().ok()?,
        };
        (token.expires_ms > now_ms).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_check() {
        let s = Sealer::new("k");
        let (t, exp) = Token::issue(&s, "alice", 1000, 10);
        assert_eq!(exp, 11_000);
        assert!(t.starts_with("v1.alice.1000.11000."));
        let got = Token::check(&s, &t, 5000).unwrap();
        assert_eq!(got.account, "alice");
        assert_eq!(got.issued_ms, 1000);
        assert!(Token::check(&s, &t, 11_000).is_none(), "expired");
        assert!(
            Token::check(&Sealer::new("x"), &t, 0).is_none(),
            "other secret"
        );
        let forged = t.replace("alice", "bobby");
        assert!(Token::check(&s, &forged, 0).is_none(), "forged");
        assert!(Token::check(&s, "v1.a.b", 0).is_none());
    }
}
