//! `AUTHENTICATE`: IRCv3 SASL 3.1/3.2 with PLAIN, SCRAM-SHA-256 and
//! EXTERNAL (a TLS client certificate added with NickServ CERT).
//!
//! The gateway only frames the exchange (base64, 400-byte chunks, the
//! numerics); every decision about credentials is the auth service's. SCRAM
//! state between the two steps is the service's sealed `state` string, so
//! whichever replica answers the second step can finish the exchange.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody, ScramMechanism};

use crate::irc::auth::{self, Purpose};
use crate::irc::caps::SASL_MECHANISMS;
use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::sasl::parse_plain;

pub const RPL_SASLSUCCESS: u16 = 903;
pub const ERR_SASLFAIL: u16 = 904;
pub const ERR_SASLTOOLONG: u16 = 905;
pub const ERR_SASLABORTED: u16 = 906;
pub const ERR_SASLALREADY: u16 = 907;
pub const RPL_SASLMECHS: u16 = 908;

/// A client line carries at most this much base64; exactly this much means
/// more follows.
pub const CHUNK: usize = 400;
/// The most base64 one client message may total (reassembled).
pub const MAX_MESSAGE: usize = 8 * 1024;

/// Where a SASL exchange stands.
#[derive(Debug, Default)]
pub enum Sasl {
    #[default]
    Idle,
    /// Collecting the PLAIN response.
    Plain(Reassembly),
    /// Collecting the EXTERNAL response (an authorization identity, or
    /// nothing): the credential is the TLS client certificate.
    External(Reassembly),
    /// Collecting the SCRAM client-first-message.
    ScramFirst(Reassembly),
    /// Collecting the SCRAM client-final-message.
    ScramFinal { state: String, data: Reassembly },
    /// Server-final sent; the client's `AUTHENTICATE +` completes the login.
    ScramAck { account: String },
    /// A request is with the auth service.
    Waiting,
}

/// Reassembles one client message from `AUTHENTICATE` chunks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reassembly {
    buf: String,
    failed: bool,
}

/// What one chunk did to a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// More chunks follow.
    More,
    /// The message is complete (decoded; empty for a lone `+`).
    Done(Vec<u8>),
    /// A chunk over 400 bytes, or the message over [`MAX_MESSAGE`] (905).
    TooLong,
    /// Not base64 (904).
    Invalid,
}

impl Reassembly {
    pub fn push(&mut self, chunk: &str) -> Chunk {
        if chunk.len() > CHUNK {
            return Chunk::TooLong;
        }
        if chunk != "+" {
            self.buf.push_str(chunk);
            if self.buf.len() > MAX_MESSAGE {
                return Chunk::TooLong;
            }
            if chunk.len() == CHUNK {
                return Chunk::More;
            }
        }
        match B64.decode(std::mem::take(&mut self.buf)) {
            Ok(bytes) => Chunk::Done(bytes),
            Err(_) => Chunk::Invalid,
        }
    }
}

/// A server message as `AUTHENTICATE` arguments: base64 in 400-byte
/// chunks, with a final `+` when the last chunk is full (or it is empty).
pub fn server_chunks(data: &[u8]) -> Vec<String> {
    let b64 = B64.encode(data);
    let mut out: Vec<String> = b64
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if out.last().is_none_or(|c| c.len() == CHUNK) {
        out.push("+".into());
    }
    out
}

fn send_data(c: &Client, data: &[u8]) {
    for chunk in server_chunks(data) {
        c.send(Message::new("AUTHENTICATE").param(chunk));
    }
}

fn fail(c: &mut Client) {
    c.sasl = Sasl::Idle;
    c.send(c.num().n(ERR_SASLFAIL).text("SASL authentication failed"));
}

/// `AUTHENTICATE <mechanism> | <base64 chunk> | + | *`.
pub async fn authenticate(c: &mut Client, m: &Message) {
    let Some(arg) = m.params.first().filter(|a| !a.is_empty()).cloned() else {
        c.send(c.num().need_more_params("AUTHENTICATE"));
        return;
    };
    if arg == "*" {
        if matches!(c.sasl, Sasl::Waiting) {
            // Its answer will find no one waiting and be dropped.
            c.auth = None;
        }
        c.sasl = Sasl::Idle;
        c.send(
            c.num()
                .n(ERR_SASLABORTED)
                .text("SASL authentication aborted"),
        );
        return;
    }
    match std::mem::take(&mut c.sasl) {
        Sasl::Idle => start(c, &arg),
        Sasl::Plain(mut data) => {
            if let Some(bytes) = collect(c, &mut data, &arg) {
                plain(c, &bytes).await;
            } else if !failed(&data) {
                c.sasl = Sasl::Plain(data);
            }
        }
        Sasl::External(mut data) => {
            if let Some(bytes) = collect(c, &mut data, &arg) {
                external(c, bytes).await;
            } else if !failed(&data) {
                c.sasl = Sasl::External(data);
            }
        }
        Sasl::ScramFirst(mut data) => {
            if let Some(bytes) = collect(c, &mut data, &arg) {
                scram_first(c, bytes).await;
            } else if !failed(&data) {
                c.sasl = Sasl::ScramFirst(data);
            }
        }
        Sasl::ScramFinal { state, mut data } => {
            if let Some(bytes) = collect(c, &mut data, &arg) {
                scram_final(c, state, bytes).await;
            } else if !failed(&data) {
                c.sasl = Sasl::ScramFinal { state, data };
            }
        }
        Sasl::ScramAck { account } if arg == "+" => {
            auth::log_in(c, &account).await;
            success(c);
        }
        Sasl::ScramAck { .. } => fail(c),
        Sasl::Waiting => {
            // Data while the service decides: a confused client.
            c.auth = None;
            fail(c);
        }
    }
}

/// Whether `collect` ended the exchange with an error (it poisons the
/// reassembly so the state is dropped, the client having been told).
fn failed(data: &Reassembly) -> bool {
    data.failed
}

/// Adds a chunk; `Some` with the decoded message once complete. On error
/// the client gets 904/905 and `data` is marked failed.
fn collect(c: &mut Client, data: &mut Reassembly, chunk: &str) -> Option<Vec<u8>> {
    let (code, text) = match data.push(chunk) {
        Chunk::More => return None,
        Chunk::Done(bytes) => return Some(bytes),
        Chunk::TooLong => (ERR_SASLTOOLONG, "SASL message too long"),
        Chunk::Invalid => (ERR_SASLFAIL, "SASL authentication failed"),
    };
    data.failed = true;
    c.send(c.num().n(code).text(text));
    None
}

fn start(c: &mut Client, mechanism: &str) {
    if c.account.is_some() {
        c.send(
            c.num()
                .n(ERR_SASLALREADY)
                .text("You have already authenticated using SASL"),
        );
        return;
    }
    c.sasl = match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => Sasl::Plain(Reassembly::default()),
        "SCRAM-SHA-256" => Sasl::ScramFirst(Reassembly::default()),
        // Without a client certificate there is nothing to offer.
        "EXTERNAL" if c.security.certfp.is_none() => {
            fail(c);
            return;
        }
        "EXTERNAL" => Sasl::External(Reassembly::default()),
        _ => {
            c.send(
                c.num()
                    .n(RPL_SASLMECHS)
                    .param(SASL_MECHANISMS)
                    .text("are available SASL mechanisms"),
            );
            fail(c);
            return;
        }
    };
    c.send(Message::new("AUTHENTICATE").param("+"));
}

async fn ask(c: &mut Client, body: AuthRequestBody) {
    if auth::request(c, body, Purpose::Sasl).await {
        c.sasl = Sasl::Waiting;
    } else {
        fail(c);
    }
}

async fn plain(c: &mut Client, bytes: &[u8]) {
    let Some((authzid, account, password)) = parse_plain(bytes) else {
        fail(c);
        return;
    };
    let body = AuthRequestBody::Plain {
        authzid,
        account,
        password,
    };
    ask(c, body).await;
}

async fn external(c: &mut Client, bytes: Vec<u8>) {
    let (Ok(authzid), Some(fingerprint)) = (String::from_utf8(bytes), c.security.certfp.clone())
    else {
        fail(c);
        return;
    };
    let body = AuthRequestBody::External {
        fingerprint,
        authzid: (!authzid.is_empty()).then_some(authzid),
    };
    ask(c, body).await;
}

async fn scram_first(c: &mut Client, bytes: Vec<u8>) {
    let Ok(client_first) = String::from_utf8(bytes) else {
        fail(c);
        return;
    };
    let body = AuthRequestBody::ScramStart {
        mechanism: ScramMechanism::Sha256,
        client_first,
    };
    ask(c, body).await;
}

async fn scram_final(c: &mut Client, state: String, bytes: Vec<u8>) {
    let Ok(client_final) = String::from_utf8(bytes) else {
        fail(c);
        return;
    };
    ask(
        c,
        AuthRequestBody::ScramFinish {
            state,
            client_final,
        },
    )
    .await;
}

fn success(c: &mut Client) {
    c.sasl = Sasl::Idle;
    c.send(
        c.num()
            .n(RPL_SASLSUCCESS)
            .text("SASL authentication successful"),
    );
}

/// The auth service's answer to a SASL step.
pub async fn on_reply(c: &mut Client, body: AuthReplyBody) {
    if !matches!(c.sasl, Sasl::Waiting) {
        // Aborted meanwhile.
        return;
    }
    match body {
        AuthReplyBody::ScramContinue {
            server_first,
            state,
        } => {
            c.sasl = Sasl::ScramFinal {
                state,
                data: Reassembly::default(),
            };
            send_data(c, server_first.as_bytes());
        }
        AuthReplyBody::Success {
            account,
            server_final: Some(server_final),
            ..
        } => {
            c.sasl = Sasl::ScramAck { account };
            send_data(c, server_final.as_bytes());
        }
        AuthReplyBody::Success { account, .. } => {
            auth::log_in(c, &account).await;
            success(c);
        }
        AuthReplyBody::Failure {
            code: AuthError::RateLimited,
            retry_after_secs,
        } => {
            let wait = retry_after_secs.unwrap_or(60);
            c.send(
                Message::new("NOTICE")
                    .with_source(c.server())
                    .param(c.nick())
                    .text(format!(
                        "*** Too many authentication attempts, wait {wait} seconds"
                    )),
            );
            fail(c);
        }
        _ => fail(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_chunk_completes_and_plus_ends_empty() {
        let mut r = Reassembly::default();
        assert_eq!(r.push("aGVsbG8="), Chunk::Done(b"hello".to_vec()));
        assert_eq!(r.push("+"), Chunk::Done(Vec::new()));
    }

    #[test]
    fn full_chunks_wait_for_more() {
        let data = vec![b'x'; 600]; // 800 base64 chars: two full chunks
        let b64 = B64.encode(&data);
        let mut r = Reassembly::default();
        assert_eq!(r.push(&b64[..400]), Chunk::More);
        assert_eq!(r.push(&b64[400..]), Chunk::More);
        assert_eq!(r.push("+"), Chunk::Done(data));
        let mut r = Reassembly::default();
        let data = vec![b'y'; 400];
        let b64 = B64.encode(&data);
        assert_eq!(r.push(&b64[..400]), Chunk::More);
        assert_eq!(r.push(&b64[400..]), Chunk::Done(data));
    }

    #[test]
    fn oversize_and_garbage_are_refused() {
        let mut r = Reassembly::default();
        assert_eq!(r.push(&"A".repeat(401)), Chunk::TooLong);
        let mut r = Reassembly::default();
        let full = "A".repeat(400);
        let mut last = Chunk::More;
        for _ in 0..21 {
            last = r.push(&full);
            if last != Chunk::More {
                break;
            }
        }
        assert_eq!(last, Chunk::TooLong);
        assert_eq!(Reassembly::default().push("!!!"), Chunk::Invalid);
    }

    #[test]
    fn server_data_is_chunked_with_a_closing_plus() {
        assert_eq!(server_chunks(b""), vec!["+"]);
        assert_eq!(server_chunks(b"hi"), vec!["aGk="]);
        let full = server_chunks(&[0u8; 300]); // exactly 400 base64 chars
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].len(), 400);
        assert_eq!(full[1], "+");
        let long = server_chunks(&[0u8; 500]);
        assert_eq!(long.len(), 2);
        assert!(long[1].len() < 400);
    }
}
