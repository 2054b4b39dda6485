//! The SCRAM exchange's state between `ScramStart` and `ScramFinish`,
//! sealed with the shared secret and handed to the gateway: replicas keep
//! nothing in memory, so any of them can finish an exchange another began.
//!
//! Format: `base64url(JSON) "." base64url(HMAC-SHA256)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bus::schema::ScramMechanism;
use serde::{Deserialize, Serialize};

use crate::seal::Sealer;

const DOMAIN: &str = "scram-state";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramState {
    pub mech: ScramMechanism,
    /// The folded account name.
    pub account: String,
    pub client_first_bare: String,
    pub server_first: String,
    pub gs2_header: String,
    /// ms since the epoch.
    pub expires: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the SCRAM state is malformed or forged")]
    Invalid,
    #[error("the SCRAM state has expired")]
    Expired,
}

impl ScramState {
    pub fn seal(&self, sealer: &Sealer) -> String {
        let json = serde_json::to_vec(self).expect("the state always serialises");
        let payload = B64URL.encode(json);
        let tag = sealer.mac(DOMAIN, payload.as_bytes());
        format!("{payload}.{}", B64URL.encode(tag))
    }

    /// Checks the MAC (constant time) and the expiry, then decodes.
    pub fn open(sealed: &str, sealer: &Sealer, now_ms: i64) -> Result<Self, StateError> {
        let (payload, tag) = sealed.split_once('.').ok_or(StateError::Invalid)?;
        let tag = B64URL.decode(tag).map_err(|_| StateError::Invalid)?;
        if !sealer.verify(DOMAIN, payload.as_bytes(), &tag) {
            return Err(StateError::Invalid);
        }
        let json = B64URL.decode(payload).map_err(|_| StateError::Invalid)?;
        let state: ScramState = serde_json::from_slice(&json).map_err(|_| StateError::Invalid)?;
        if state.expires < now_ms {
            return Err(StateError::Expired);
        }
        Ok(state)
    }
}

/// The salt shown for an account that does not exist: stable per account
/// (a second attempt sees the same salt) and unguessable without the secret.
pub fn fake_salt(sealer: &Sealer, mech: ScramMechanism, account: &str) -> Vec<u8> {
    let domain = match mech {
        ScramMechanism::Sha1 => "scram-salt-sha1",
        ScramMechanism::Sha256 => "scram-salt-sha256",
    };
    sealer.mac(domain, account.as_bytes())[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ScramState {
        ScramState {
            mech: ScramMechanism::Sha256,
            account: "alice".into(),
            client_first_bare: "n=alice,r=x".into(),
            server_first: "r=xy,s=AAAA,i=4096".into(),
            gs2_header: "n,,".into(),
            expires: 1000,
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let s = Sealer::new("k");
        let sealed = state().seal(&s);
        assert_eq!(ScramState::open(&sealed, &s, 999).unwrap(), state());
        assert_eq!(
            ScramState::open(&sealed, &s, 1001),
            Err(StateError::Expired)
        );
        assert_eq!(
            ScramState::open(&sealed, &Sealer::new("other"), 0),
            Err(StateError::Invalid)
        );
        let mut forged = state();
        forged.account = "bob".into();
        let (_, tag) = sealed.split_once('.').unwrap();
        let (payload, _) = forged
            .seal(&s)
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        assert_eq!(
            ScramState::open(&format!("{payload}.{tag}"), &s, 0),
            Err(StateError::Invalid)
        );
        assert_eq!(ScramState::open("garbage", &s, 0), Err(StateError::Invalid));
    }

    #[test]
    fn fake_salts_are_stable() {
        let s = Sealer::new("k");
        let a = fake_salt(&s, ScramMechanism::Sha1, "ghost");
        assert_eq!(a.len(), 16);
        assert_eq!(a, fake_salt(&s, ScramMechanism::Sha1, "ghost"));
        assert_ne!(a, fake_salt(&s, ScramMechanism::Sha256, "ghost"));
    }
}
