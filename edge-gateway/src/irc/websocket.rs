//! IRC over WebSocket (the IRCv3 `websocket` specification) at `/irc` on
//! the gateway's HTTP port, for browser clients such as Kiwi IRC.
//!
//! Only the transport differs from TCP: a WebSocket message is one IRC
//! line, without its CR LF. [`WsLines`] turns messages into the core's
//! [`Frame`]s and [`spawn_ws_writer`] drains the same bounded line channel
//! as the TCP writer, one message per line; both then go through
//! [`super::serve_client`], so admission, the IRC core (registration, caps,
//! SASL, everything), ping timeouts, SendQ, shutdown and drain are the TCP
//! connection's.
//!
//! Subprotocols (RFC 6455 `Sec-WebSocket-Protocol`):
//!
//! * `binary.ircv3.net`: binary messages both ways; `text.ircv3.net`: text
//!   messages (UTF-8). The first of the client's list that we know wins:
//!   the specification has the server respect the client's order.
//! * No subprotocol, or only unknown ones: the specification lets the
//!   server go on without answering one and leaves the legacy fallback to
//!   the implementation. We accept the connection (refusing it would lock
//!   out the clients that predate the specification, and a browser whose
//!   offer we decline fails the connection itself anyway), send text
//!   messages (what every such client expects, and safe in a browser) and
//!   read both kinds.
//!
//! What a client sends is read in both modes as bytes: the core's parser
//! refuses bytes that are not UTF-8 with `FAIL … INVALID_UTF8`, as on TCP
//! (text messages are valid UTF-8 already; the WebSocket layer closes a
//! connection whose text message is not).
//!
//! The client address is the TCP peer's: the gateway has no trusted-proxy
//! setting, so an `X-Forwarded-For` header proves nothing and is ignored.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bus::shutdown::Shutdown;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::line::MAX_LINE_BYTES;
use super::transport::{Frame, LineSource};
use super::{serve_client, validate};
use crate::gateway::Gateway;

/// The route's path on the HTTP listener.
pub const PATH: &str = "/irc";
/// Subprotocol: every message is a text message (UTF-8).
pub const TEXT: &str = "text.ircv3.net";
/// Subprotocol: every message is a binary message.
pub const BINARY: &str = "binary.ircv3.net";

/// The largest WebSocket message (and frame) read at all. A message up to
/// this size is read whole, so that one longer than any IRC line
/// ([`MAX_LINE_BYTES`]) gets the core's usual 417 and the connection goes
/// on, exactly as an over-long TCP line does; beyond it the WebSocket layer
/// stops reading and the connection is closed (status 1009). 64 KiB is
/// several times the longest valid line (tags included), so no honest
/// client comes near it, and it bounds what one connection makes us buffer.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The most queued lines sent before one flush: batching like the TCP
/// writer, without holding a slow client's lines back for long.
const BATCH_LINES: usize = 256;

/// Which kind of WebSocket message carries the lines we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Binary,
}

impl Mode {
    /// The subprotocol that names this mode.
    fn subprotocol(self) -> &'static str {
        match self {
            Mode::Text => TEXT,
            Mode::Binary => BINARY,
        }
    }
}

/// The subprotocol to answer: the first one the client offers (its order is
/// its preference) that we implement; `None` if it offers neither.
pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Mode> {
    offered.into_iter().find_map(|p| match p.trim() {
        TEXT => Some(Mode::Text),
        BINARY => Some(Mode::Binary),
        _ => None,
    })
}

#[derive(Clone)]
struct Shared {
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    /// Held by every connection so that shutdown can wait for them, as the
    /// TCP listener's connections do.
    drain: mpsc::Sender<()>,
}

/// The `/irc` route, for the gateway's HTTP listener.
pub fn routes(gw: Arc<Gateway>, shutdown: Shutdown, drain: mpsc::Sender<()>) -> Router {
    Router::new().route(PATH, get(upgrade)).with_state(Shared {
        gw,
        shutdown,
        drain,
    })
}

/// The subprotocols a client offers, in its order. Read from the headers
/// themselves: axum's `requested_protocols` comes sorted, which loses the
/// client's preference the specification tells us to respect.
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
}

async fn upgrade(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mut ws: WebSocketUpgrade,
) -> Response {
    let negotiated = negotiate(offered(&headers));
    if let Some(mode) = negotiated {
        ws.set_selected_protocol(HeaderValue::from_static(mode.subprotocol()));
    }
    let mode = negotiated.unwrap_or(Mode::Text);
    // Admission happens after the upgrade, as on TCP, so that a client
    // turned away reads the usual `ERROR :Closing Link … (Too many
    // connections)` instead of a bare HTTP status its library may hide.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _drain = shared.drain;
            let gw = shared.gw;
            let host = validate::host_of(peer.ip());
            let (sink, stream) = socket.split();
            let (tx, rx) = mpsc::channel(gw.irc.sendq_lines.max(1));
            let too_big = Arc::new(AtomicBool::new(false));
            let writer = spawn_ws_writer(sink, rx, mode, too_big.clone());
            let source = WsLines::new(stream, too_big);
            serve_client(
                gw,
                source,
                tx,
                writer,
                host,
                Default::default(),
                shared.shutdown,
            )
            .await;
        })
}

/// The inbound half: WebSocket messages as the core's frames.
pub struct WsLines<S> {
    inner: S,
    /// Set when a message over [`MAX_MESSAGE_BYTES`] ended the connection,
    /// so the writer closes with 1009 ("message too big").
    too_big: Arc<AtomicBool>,
}

impl<S> WsLines<S> {
    pub fn new(inner: S, too_big: Arc<AtomicBool>) -> Self {
        Self { inner, too_big }
    }
}

impl<S> LineSource for WsLines<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            // Cancel-safe: a message is either returned by `next` or still
            // in the stream.
            let frame = match self.inner.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Text(t))) => frame_of(t.as_bytes()),
                Some(Ok(Message::Binary(b))) => frame_of(&b),
                // The WebSocket layer answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(e)) => return read_error(e, &self.too_big),
            };
            return Ok(Some(frame));
        }
    }
}

/// One message as a frame. The specification forbids a trailing CR LF, but
/// clients written for TCP send one, and it is harmless: it is dropped
/// (`\r\n`, `\n` or `\r`). A line break anywhere else means the message is
/// not one line, and it is refused whole ([`Frame::NotOneLine`]).
fn frame_of(message: &[u8]) -> Frame {
    let line = message.strip_suffix(b"\n").unwrap_or(message);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE_BYTES {
        Frame::TooLong
    } else if line.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        Frame::NotOneLine
    } else {
        Frame::Line(line.to_vec())
    }
}

/// A failed read: the end of the connection, whatever it was. One over the
/// size limit is remembered for the close status.
fn read_error(e: axum::Error, too_big: &AtomicBool) -> io::Result<Option<Frame>> {
    match e.into_inner().downcast::<tungstenite::Error>().map(|b| *b) {
        Ok(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => Ok(None),
        Ok(tungstenite::Error::Capacity(_)) => {
            too_big.store(true, Ordering::SeqCst);
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("WebSocket message over {MAX_MESSAGE_BYTES} bytes"),
            ))
        }
        Ok(e) => Err(io::Error::other(e.to_string())),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// One queued line as a message. The channel carries lines without CR LF
/// (the TCP writer appends it); a line ending is stripped anyway, since
/// the specification forbids it in a message. Lines are `String`s, so a
/// text message is valid UTF-8 by construction: nothing that is not UTF-8
/// reaches the channel (the parser refuses such input; the other protocols
/// carry UTF-8), which is what the specification asks of text messages.
fn message(mode: Mode, mut line: String) -> Message {
    let kept = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(kept);
    match mode {
        Mode::Text => Message::text(line),
        Mode::Binary => Message::binary(line.into_bytes()),
    }
}

/// Sends queued lines, one message each, flushing after whatever was queued
/// (up to [`BATCH_LINES`]). Ends when the sender is dropped (after sending
/// everything queued) or on a send error, then closes the WebSocket: 1000,
/// or 1009 when a message over the limit ended the connection.
pub fn spawn_ws_writer<K>(
    mut sink: K,
    mut rx: mpsc::Receiver<String>,
    mode: Mode,
    too_big: Arc<AtomicBool>,
) -> JoinHandle<()>
where
    K: Sink<Message, Error = axum::Error> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        'lines: while let Some(line) = rx.recv().await {
            if sink.feed(message(mode, line)).await.is_err() {
                break;
            }
            for _ in 1..BATCH_LINES {
                let Ok(line) = rx.try_recv() else { break };
                if sink.feed(message(mode, line)).await.is_err() {
                    break 'lines;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let frame = if too_big.load(Ordering::SeqCst) {
            CloseFrame {
                code: close_code::SIZE,
                reason: Utf8Bytes::from_static("message too big"),
            }
        } else {
            CloseFrame {
                code: close_code::NORMAL,
                reason: Utf8Bytes::default(),
            }
        };
        // Fails when the client closed first; closing the sink still
        // flushes the WebSocket layer's answer to the client's close.
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_order_wins() {
        assert_eq!(negotiate([BINARY, TEXT]), Some(Mode::Binary));
        assert_eq!(negotiate([TEXT, BINARY]), Some(Mode::Text));
        assert_eq!(negotiate(["chat", " binary.ircv3.net"]), Some(Mode::Binary));
        assert_eq!(negotiate(["chat", "xmpp"]), None);
        assert_eq!(negotiate([]), None);
    }

    #[test]
    fn offers_are_read_in_header_order() {
        let mut h = HeaderMap::new();
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("text.ircv3.net, binary.ircv3.net"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("x"),
        );
        let got: Vec<&str> = offered(&h).map(str::trim).collect();
        assert_eq!(got, ["text.ircv3.net", "binary.ircv3.net", "x"]);
        assert_eq!(negotiate(offered(&h)), Some(Mode::Text));
    }

    #[test]
    fn a_message_is_one_line_with_an_optional_line_ending() {
        assert_eq!(frame_of(b"NICK a"), Frame::Line(b"NICK a".to_vec()));
        assert_eq!(frame_of(b"NICK a\r\n"), Frame::Line(b"NICK a".to_vec()));
        assert_eq!(frame_of(b"NICK a\n"), Frame::Line(b"NICK a".to_vec()));
        assert_eq!(frame_of(b"NICK a\r"), Frame::Line(b"NICK a".to_vec()));
        assert_eq!(frame_of(b""), Frame::Line(Vec::new()));
        assert_eq!(frame_of(b"NICK a\r\nUSER b 0 * :c"), Frame::NotOneLine);
        assert_eq!(frame_of(b"PRIVMSG #a :x\ry"), Frame::NotOneLine);
        assert_eq!(frame_of(b"NICK a\r\n\r\n"), Frame::NotOneLine);
    }

    #[test]
    fn over_long_messages_are_too_long() {
        let mut line = vec![b'x'; MAX_LINE_BYTES];
        assert_eq!(frame_of(&line), Frame::Line(line.clone()));
        line.extend_from_slice(b"\r\n");
        assert!(
            matches!(frame_of(&line), Frame::Line(_)),
            "CR LF not counted"
        );
        line.insert(0, b'x');
        assert_eq!(frame_of(&line), Frame::TooLong);
    }

    #[tokio::test]
    async fn messages_become_frames_until_close() {
        let input = futures::stream::iter(vec![
            Ok(Message::text("NICK a\r\n")),
            Ok(Message::Ping(Default::default())),
            Ok(Message::binary(b"USER a 0 * :\xff".to_vec())),
            Ok(Message::Close(None)),
            Ok(Message::text("never read")),
        ]);
        let mut lines = WsLines::new(input, Arc::default());
        let mut got = Vec::new();
        while let Some(f) = lines.next_frame().await.unwrap() {
            got.push(f);
        }
        assert_eq!(
            got,
            vec![
                Frame::Line(b"NICK a".to_vec()),
                Frame::Line(b"USER a 0 * :\xff".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn writer_sends_one_message_per_line_then_closes() {
        for (mode, expect) in [
            (Mode::Text, Message::text("A")),
            (Mode::Binary, Message::binary(b"A".to_vec())),
        ] {
            let (sink, mut out) = futures::channel::mpsc::unbounded::<Message>();
            let sink = sink.sink_map_err(axum::Error::new);
            let (tx, rx) = mpsc::channel(8);
            let task = spawn_ws_writer(sink, rx, mode, Arc::default());
            tx.send("A".into()).await.unwrap();
            tx.send("A\r\n".into()).await.unwrap();
            drop(tx);
            task.await.unwrap();
            let mut got = Vec::new();
            while let Some(m) = out.next().await {
                got.push(m);
            }
            assert_eq!(got.len(), 3, "{got:?}");
            assert_eq!(got[0], expect);
            assert_eq!(got[1], expect, "the line ending is not sent");
            assert!(
                matches!(&got[2], Message::Close(Some(f)) if f.code == close_code::NORMAL),
                "{got:?}"
            );
        }
    }
}
