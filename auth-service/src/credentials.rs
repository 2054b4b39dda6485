//! Everything stored for a password: argon2id for PLAIN and SCRAM keys for
//! both hash functions, each with its own random salt.

use bus::schema::ScramMechanism;

use crate::passwords::{HashError, Hasher};
use crate::scram::{self, Credentials};

#[derive(Clone)]
pub struct StoredCredentials {
    pub argon2: String,
    pub sha1: Credentials,
    pub sha256: Credentials,
}

/// Derives all credentials. CPU-heavy: run it in `spawn_blocking`.
pub fn derive_all(
    hasher: &Hasher,
    password: &str,
    scram_iterations: u32,
) -> Result<StoredCredentials, HashError> {
    let salt1: [u8; 16] = rand::random();
    let salt256: [u8; 16] = rand::random();
    Ok(StoredCredentials {
        argon2: hasher.hash(password)?,
        sha1: scram::derive(ScramMechanism::Sha1, password, &salt1, scram_iterations),
        sha256: scram::derive(ScramMechanism::Sha256, password, &salt256, scram_iterations),
    })
}
