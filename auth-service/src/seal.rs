//! HMAC-SHA256 with the shared `auth.secret`: what lets any replica trust a
//! SCRAM state or a token that another replica issued.
//!
//! Every use names its own domain (`token`, `scram-state`, `scram-salt`), so
//! a MAC made for one purpose is never valid for another.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Sealer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
        }
    }

    /// HMAC-SHA256(secret, domain || 0 || data).
    pub fn mac(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `data`, compared in constant time.
    pub fn verify(&self, domain: &str, data: &[u8], tag: &[u8]) -> bool {
        let expected = self.mac(domain, data);
        expected.as_slice().ct_eq(tag).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_separate() {
        let s = Sealer::new("k");
        let tag = s.mac("a", b"x");
        assert!(s.verify("a", b"x", &tag));
        assert!(!s.verify("b", b"x", &tag));
        assert!(!s.verify("a", b"y", &tag));
        assert!(!Sealer::new("other").verify("a", b"x", &tag));
        assert!(!s.verify("a", b"x", &tag[..31]));
    }
}
