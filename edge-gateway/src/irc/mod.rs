//! The IRC front end: the TCP and TLS listeners, the WebSocket route and
//! the protocol modules.
//!
//! The core ([`conn`], [`client`], [`commands`], [`render`]) works on lines;
//! [`transport`] adapts a byte stream to lines, [`websocket`] WebSocket
//! messages (IRCv3 `websocket`, at `/irc` on the HTTP port). Both end in
//! [`serve_client`], so admission, the core and the close are the same.

pub mod auth;
pub mod caps;
pub mod client;
pub mod commands;
pub mod conn;
pub mod history;
pub mod isupport;
pub mod labeled;
pub mod line;
pub mod modestr;
pub mod numeric;
pub mod render;
pub mod reservation;
pub mod tls;
pub mod transport;
pub mod validate;
pub mod websocket;
pub mod whox;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus::shutdown::Shutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use transport::{spawn_writer, LineReader, LineSource};

/// How long a closing connection's writer may take to flush its last lines.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// Accepts clients until shutdown. Each connection holds a clone of
/// `drain`: when every clone is dropped, every connection has finished.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) {
    let stop = shutdown.clone();
    accept_loop(listener, stop, |stream, peer| {
        spawn_connection(stream, peer, gw.clone(), shutdown.clone(), drain.clone())
    })
    .await
}

/// Accepts connections until shutdown, handing each to `on_accept` (which
/// must not wait: it spawns). The TCP and TLS listeners share it.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    mut shutdown: Shutdown,
    mut on_accept: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => on_accept(stream, peer),
                Err(e) => {
                    // Usually out of file descriptors: back off a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
    let link = Link {
        peer,
        tls: false,
        certfp: None,
    };
    tokio::spawn(serve_stream(stream, link, gw, shutdown, drain));
}

/// Where a byte-stream client comes from.
pub struct Link {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The client certificate's fingerprint (TLS only).
    pub certfp: Option<String>,
}

/// Serves one client on a byte stream (TCP, or TLS over TCP) until it
/// ends; holds `drain` meanwhile.
pub async fn serve_stream<S>(
    stream: S,
    link: Link,
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let _drain = drain;
    let host = validate::host_of(link.peer.ip());
    let (read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(gw.irc.sendq_lines.max(1));
    let writer = spawn_writer(write, rx);
    let security = conn::Security {
        tls: link.tls,
        certfp: link.certfp,
    };
    serve_client(
        gw,
        LineReader::new(read),
        tx,
        writer,
        host,
        security,
        shutdown,
    )
    .await;
}

/// Serves one client once its transport's two ends exist: `source` (lines
/// in) and `tx`, drained by `writer` (lines out). The client is admitted
/// against `irc.max_connections` (or told the gateway is full), served by
/// the IRC core until it ends, and then its writer gets [`WRITER_GRACE`]
/// to deliver the last lines (the `ERROR`) before it is cut off. Every
/// transport comes through here so that they count, end and drain alike.
pub(crate) async fn serve_client<S: LineSource>(
    gw: Arc<Gateway>,
    source: S,
    tx: mpsc::Sender<String>,
    writer: JoinHandle<()>,
    host: String,
    security: conn::Security,
    shutdown: Shutdown,
) {
    match gw.admit(&host) {
        Ok(guard) => {
            conn::run(gw.clone(), source, tx, host, security, shutdown).await;
            drop(guard);
        }
        Err(refused) => {
            let _ = tx
                .send(format!(
                    "ERROR :Closing Link: {host} ({})",
                    refused.reason()
                ))
                .await;
            drop(tx);
        }
    }
    let abort = writer.abort_handle();
    if tokio::time::timeout(WRITER_GRACE, writer).await.is_err() {
        abort.abort();
    }
}
