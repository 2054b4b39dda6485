//! argon2id password hashes (PHC strings) for PLAIN logins.
//!
//! Hashing and verifying are CPU- and memory-heavy on purpose; callers run
//! them in `spawn_blocking`.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
}

/// argon2id with the configured cost.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a random 16-byte salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt_bytes: [u8; 16] = rand::random();
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| HashError::Argon2(e.to_string()))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Argon2(e.to_string()))
    }

    /// Whether `password` matches `phc` (argon2 compares in constant time).
    /// A corrupt stored hash counts as a mismatch.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "stored argon2 hash is unreadable");
                false
            }
        }
    }

    /// Spends the same effort as a real verification, for unknown accounts,
    /// so that response times do not reveal which accounts exist.
    pub fn dummy_verify(&self, password: &str) {
        static DUMMY: OnceLock<Option<String>> = OnceLock::new();
        let phc = DUMMY.get_or_init(|| self.hash("dummy password for timing").ok());
        if let Some(phc) = phc {
            let _ = self.verify(password, phc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = Hasher::new(1024, 1).unwrap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct"));
        assert!(h.verify("correct horse", &phc));
        assert!(!h.verify("wrong horse", &phc));
        assert!(!h.verify("x", "not a phc"));
        h.dummy_verify("anything");
    }
}
