//! SCRAM (RFC 5802) with SHA-1 and SHA-256 (RFC 7677), server side.
//!
//! Pure functions only: parsing the client's messages, deriving stored
//! credentials and checking a proof. The exchange's state between the two
//! steps is sealed by [`crate::scram_state`], so any replica can finish it.
//! Channel binding is not offered (`p=` is refused); passwords are used as
//! their UTF-8 bytes (no SASLprep normalisation).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bus::schema::ScramMechanism;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("the authorization identity differs from the user")]
    Authzid,
    #[error("the nonce does not match")]
    Nonce,
    #[error("the client proof is wrong")]
    Proof,
}

/// What the server keeps per account and mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac(mech: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mech {
        ScramMechanism::Sha1 => {
            let mut m = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha256 => {
            let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mech: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mech {
        ScramMechanism::Sha1 => Sha1::digest(data).to_vec(),
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Derives StoredKey and ServerKey from a password (PBKDF2, `iterations`).
pub fn derive(mech: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> Credentials {
    let salted = match mech {
        ScramMechanism::Sha1 => {
            pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password.as_bytes(), salt, iterations).to_vec()
        }
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations).to_vec()
        }
    };
    let client_key = hmac(mech, &salted, b"Client Key");
    Credentials {
        salt: salt.to_vec(),
        iterations,
        stored_key: hash(mech, &client_key),
        server_key: hmac(mech, &salted, b"Server Key"),
    }
}

/// A parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `y,,` or `n,a=…,` exactly as sent (what `c=` must encode).
    pub gs2_header: String,
    /// The message after the GS2 header, verbatim (part of AuthMessage).
    pub bare: String,
    /// The decoded user name.
    pub user: String,
    pub client_nonce: String,
}

/// Decodes a `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos..pos + 3).ok_or(ScramError::Malformed)?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return Err(ScramError::Malformed),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed);
    }
    Ok(out)
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Parses `gs2-header client-first-message-bare`.
pub fn parse_client_first(msg: &str) -> Result<ClientFirst, ScramError> {
    let (flag, rest) = msg.split_once(',').ok_or(ScramError::Malformed)?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or(ScramError::Malformed)?,
        )?),
    };
    let gs2_header = msg[..msg.len() - bare.len()].to_string();
    let mut parts = bare.split(',');
    let user = parts
        .next()
        .and_then(|p| p.strip_prefix("n="))
        .ok_or(ScramError::Malformed)?;
    let user = decode_saslname(user)?;
    let client_nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(ScramError::Malformed)?;
    if let Some(a) = authzid {
        // Account names are case-insensitive.
        if !a.eq_ignore_ascii_case(&user) {
            return Err(ScramError::Authzid);
        }
    }
    Ok(ClientFirst {
        gs2_header,
        bare: bare.to_string(),
        user,
        client_nonce: client_nonce.to_string(),
    })
}

/// The server-first-message: `r=<cnonce><snonce>,s=<salt>,i=<iterations>`.
pub fn server_first(
    client_nonce: &str,
    server_nonce: &str,
    salt: &[u8],
    iterations: u32,
) -> String {
    format!(
        "r={client_nonce}{server_nonce},s={},i={iterations}",
        B64.encode(salt)
    )
}

/// A fresh server nonce (printable, no commas).
pub fn new_server_nonce() -> String {
    let bytes: [u8; 18] = rand::random();
    B64.encode(bytes)
}

/// Checks a client-final-message against the exchange and the stored
/// credentials; on success returns the server-final-message (`v=…`).
pub fn verify_final(
    mech: ScramMechanism,
    creds: &Credentials,
    client_first_bare: &str,
    server_first: &str,
    gs2_header: &str,
    client_final: &str,
) -> Result<String, ScramError> {
    let (without_proof, proof) = client_final
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed)?;
    let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
    let mut parts = without_proof.split(',');
    let binding = parts
        .next()
        .and_then(|p| p.strip_prefix("c="))
        .ok_or(ScramError::Malformed)?;
    let binding = B64.decode(binding).map_err(|_| ScramError::Malformed)?;
    if binding != gs2_header.as_bytes() {
        return Err(ScramError::Malformed);
    }
    let nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .ok_or(ScramError::Malformed)?;
    let expected_nonce = server_first
        .split(',')
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .ok_or(ScramError::Malformed)?;
    if nonce != expected_nonce {
        return Err(ScramError::Nonce);
    }
    if proof.len() != creds.stored_key.len() {
        return Err(ScramError::Proof);
    }
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hmac(mech, &creds.stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let ok: bool = hash(mech, &client_key).ct_eq(&creds.stored_key).into();
    if !ok {
        return Err(ScramError::Proof);
    }
    let server_signature = hmac(mech, &creds.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one RFC example through parse, derive and verify.
    fn rfc_example(
        mech: ScramMechanism,
        client_first: &str,
        server_nonce: &str,
        salt_b64: &str,
        client_final: &str,
        server_final: &str,
    ) {
        let cf = parse_client_first(client_first).unwrap();
        assert_eq!(cf.user, "user");
        assert_eq!(cf.gs2_header, "n,,");
        let salt = B64.decode(salt_b64).unwrap();
        let creds = derive(mech, "pencil", &salt, 4096);
        let sf = server_first(&cf.client_nonce, server_nonce, &salt, 4096);
        let got = verify_final(mech, &creds, &cf.bare, &sf, &cf.gs2_header, client_final).unwrap();
        assert_eq!(got, server_final);
        let wrong = derive(mech, "pencil2", &salt, 4096);
        assert_eq!(
            verify_final(mech, &wrong, &cf.bare, &sf, &cf.gs2_header, client_final),
            Err(ScramError::Proof)
        );
    }

    #[test]
    fn rfc7677_sha256() {
        rfc_example(
            ScramMechanism::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn rfc5802_sha1() {
        rfc_example(
            ScramMechanism::Sha1,
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "QSXCR+Q6sek8bf92",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn client_first_parsing() {
        let cf = parse_client_first("y,a=bob,n=bob,r=abc").unwrap();
        assert_eq!(cf.gs2_header, "y,a=bob,");
        assert_eq!(cf.bare, "n=bob,r=abc");
        assert_eq!(
            parse_client_first("n,,n=a=2Cb=3Dc,r=x").unwrap().user,
            "a,b=c"
        );
        assert_eq!(
            parse_client_first("p=tls-unique,,n=bob,r=abc"),
            Err(ScramError::ChannelBinding)
        );
        assert_eq!(
            parse_client_first("n,a=eve,n=bob,r=abc"),
            Err(ScramError::Authzid)
        );
        for bad in [
            "",
            "n",
            "x,,n=bob,r=a",
            "n,,r=a",
            "n,,n=bob",
            "n,,n=b=2Xob,r=a",
            "n,,n=bob,r=",
            "n,,m=ext,n=bob,r=a",
            "n,,n=,r=a",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn final_checks_binding_and_nonce() {
        let salt = b"0123456789abcdef";
        let mech = ScramMechanism::Sha256;
        let creds = derive(mech, "pencil", salt, 16);
        let sf = server_first("cn", "sn", salt, 16);
        let bad_nonce = "c=biws,r=cnXX,p=AAAA";
        assert_eq!(
            verify_final(mech, &creds, "n=u,r=cn", &sf, "n,,", bad_nonce),
            Err(ScramError::Nonce)
        );
        let bad_binding = "c=eSws,r=cnsn,p=AAAA";
        assert_eq!(
            verify_final(mech, &creds, "n=u,r=cn", &sf, "n,,", bad_binding),
            Err(ScramError::Malformed)
        );
        assert_eq!(
            verify_final(mech, &creds, "n=u,r=cn", &sf, "n,,", "c=biws,r=cnsn"),
            Err(ScramError::Malformed)
        );
    }
}
