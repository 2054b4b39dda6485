//! Transports: how lines get in and out of a client connection.
//!
//! The IRC core ([`super::conn`]) only sees a [`LineSource`] (frames in) and
//! a bounded channel of lines (out, drained by a writer task). Plain TCP is
//! implemented here; the WebSocket transport ([`super::websocket`]) provides
//! the same two ends (one WebSocket message per line).

use std::future::Future;
use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::line::MAX_LINE_BYTES;

/// One unit of client input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line without its `\n` (a `\r` may remain; the parser drops it).
    Line(Vec<u8>),
    /// A line longer than any valid message; its bytes were discarded.
    TooLong,
    /// A message-based transport delivered one message holding a line
    /// break before its end: the IRCv3 WebSocket specification makes a
    /// message exactly one line, so the whole message is refused rather
    /// than split (splitting would run commands the client's library
    /// never meant as separate lines). A byte stream never yields this.
    NotOneLine,
}

/// The inbound half of a transport.
pub trait LineSource: Send {
    /// The next frame, or `None` at end of stream. Must be cancel-safe: the
    /// connection loop polls it inside `select!` and may drop the future.
    fn next_frame(&mut self) -> impl Future<Output = io::Result<Option<Frame>>> + Send;
}

/// Splits a byte stream into lines ending in `\n` (or `\r\n`), never
/// buffering more than about [`MAX_LINE_BYTES`]: an over-long line is
/// reported once as [`Frame::TooLong`] and skipped up to its end.
pub struct LineReader<R> {
    inner: R,
    buf: BytesMut,
    discarding: bool,
}

/// Read granularity; also the slack over [`MAX_LINE_BYTES`] the buffer may hold.
const READ_CHUNK: usize = 4096;

impl<R: AsyncRead + Unpin + Send> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            discarding: false,
        }
    }
}

impl<R: AsyncRead + Unpin + Send> LineSource for LineReader<R> {
    async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line = self.buf.split_to(pos + 1);
                line.truncate(pos);
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                // `+ 1`: the line may still carry its `\r`.
                if line.len() > MAX_LINE_BYTES + 1 {
                    return Ok(Some(Frame::TooLong));
                }
                return Ok(Some(Frame::Line(line.to_vec())));
            }
            if self.buf.len() > MAX_LINE_BYTES + 1 {
                self.buf.clear();
                if !self.discarding {
                    self.discarding = true;
                    return Ok(Some(Frame::TooLong));
                }
            }
            self.buf.reserve(READ_CHUNK);
            // Cancel-safe: bytes are either appended to `buf` or not read.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Writes queued lines (CRLF appended), batching whatever is queued into
/// one write. Ends when the sender is dropped (after writing everything
/// queued) or on a write error, then shuts the socket's write side.
pub fn spawn_writer<W>(mut writer: W, mut rx: mpsc::Receiver<String>) -> JoinHandle<()>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        while let Some(line) = rx.recv().await {
            buf.extend_from_slice(line.as_bytes());
            buf.extend_from_slice(b"\r\n");
            while buf.len() < 64 * 1024 {
                match rx.try_recv() {
                    Ok(line) => {
                        buf.extend_from_slice(line.as_bytes());
                        buf.extend_from_slice(b"\r\n");
                    }
                    Err(_) => break,
                }
            }
            if writer.write_all(&buf).await.is_err() {
                return;
            }
            buf.clear();
        }
        let _ = writer.flush().await;
        let _ = writer.shutdown().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn splits_on_lf_and_crlf() {
        let f = frames(b"NICK a\r\nUSER b\n\nPING x").await;
        assert_eq!(
            f,
            vec![
                Frame::Line(b"NICK a\r".to_vec()),
                Frame::Line(b"USER b".to_vec()),
                Frame::Line(Vec::new()),
            ],
            "an unterminated last line is dropped at EOF"
        );
    }

    #[tokio::test]
    async fn over_long_lines_are_reported_once_and_skipped() {
        let mut input = vec![b'x'; MAX_LINE_BYTES * 3];
        input.extend_from_slice(b"\r\nPING ok\r\n");
        let f = frames(&input).await;
        assert_eq!(f, vec![Frame::TooLong, Frame::Line(b"PING ok\r".to_vec())]);
    }

    #[tokio::test]
    async fn writer_appends_crlf() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        let task = spawn_writer(client, rx);
        tx.send("A".into()).await.unwrap();
        tx.send("B".into()).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let mut s = String::new();
        server.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "A\r\nB\r\n");
    }
}
