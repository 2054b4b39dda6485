//! The Tinode protocol on the gateway's HTTP port: `/v0/channels`
//! (WebSocket) and `/v0/channels/lp` (long polling), one JSON message per
//! frame or request.
//!
//! Both transports feed the same session loop ([`conn::Conn`]): frames in
//! as [`conn::Input`], server messages out through a bounded queue. A
//! WebSocket pumps both directions; a long-polling session lives in
//! [`LpSessions`] between requests, each POST either one client message or
//! a poll that takes one server message, and ends after
//! `tinode.lp_idle_secs` without a request.

mod auth;
mod conn;
mod contacts;
mod data;
mod del;
mod fnd;
mod ids;
mod marks;
mod me;
mod notes;
mod p2p;
mod set;
mod topics;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use bus::shutdown::Shutdown;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::conn::{Conn, Input, Transport};
use crate::config::TinodeConfig;
use crate::gateway::Gateway;

/// Frames larger than this are not read at all: the WebSocket is closed
/// (smaller ones over `max_message_bytes` get a 413 and the session goes on).
const HARD_LIMIT: usize = 16 * 1024 * 1024;
/// Client frames buffered before the transport waits for the session.
const INPUT_QUEUE: usize = 64;

#[derive(Clone)]
struct Shared {
    gw: Arc<Gateway>,
    cfg: Arc<TinodeConfig>,
    nats_prefix: Arc<str>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
    lp: Arc<LpSessions>,
}

/// The Tinode routes, for the gateway's HTTP listener.
pub fn routes(
    gw: Arc<Gateway>,
    cfg: TinodeConfig,
    nats_prefix: &str,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) -> Router {
    let shared = Shared {
        gw,
        cfg: Arc::new(cfg),
        nats_prefix: nats_prefix.into(),
        shutdown,
        drain,
        lp: Arc::new(LpSessions::default()),
    };
    Router::new()
        .route("/v0/channels", get(upgrade))
        .route("/v0/channels/lp", any(long_poll))
        .layer(DefaultBodyLimit::max(HARD_LIMIT))
        .with_state(shared)
}

fn error_body(code: u16, text: &str) -> String {
    wire::Ctrl::new(None, code, text).build().to_string()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    apikey: Option<String>,
    sid: Option<String>,
}

/// The API key: header, then query, then cookie (Tinode's order).
fn api_key(headers: &HeaderMap, params: &Params) -> Option<String> {
    if let Some(k) = headers.get("x-tinode-apikey").and_then(|v| v.to_str().ok()) {
        return Some(k.to_string());
    }
    if let Some(k) = &params.apikey {
        return Some(k.clone());
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("apikey=").map(str::to_string))
}

fn key_ok(cfg: &TinodeConfig, headers: &HeaderMap, params: &Params) -> bool {
    api_key(headers, params).is_some_and(|k| cfg.api_keys.contains(&k))
}

fn forbidden() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        error_body(403, "valid API key required"),
    )
}

async fn upgrade(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !key_ok(&shared.cfg, &headers, &params) {
        return forbidden();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let guard = match shared.gw.admit(&crate::irc::validate::host_of(peer.ip())) {
        Ok(guard) => guard,
        Err(refused) => return too_many(refused),
    };
    ws.max_message_size(HARD_LIMIT)
        .max_frame_size(HARD_LIMIT)
        .on_upgrade(move |socket| async move {
            let _drain = shared.drain.clone();
            pump(socket, &shared, peer.ip().to_string()).await;
            drop(guard);
        })
}

/// Runs one WebSocket session: frames to the session, its messages back.
async fn pump(mut ws: WebSocket, shared: &Shared, addr: String) {
    let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel(shared.gw.irc.sendq_lines.max(1));
    let conn = Conn::new(
        shared.gw.clone(),
        shared.cfg.clone(),
        &shared.nats_prefix,
        Transport::WebSocket,
        addr,
        out_tx,
    );
    let session = tokio::spawn(conn.run(in_rx, shared.shutdown.clone()));
    let max = shared.cfg.max_message_bytes;
    loop {
        tokio::select! {
            msg = ws.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t,
                        Err(_) => "\u{0}".to_string(),
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                };
                // The network probe, answered here: it is not a message.
                if text == "1" {
                    if ws.send(Message::text("0")).await.is_err() { break; }
                    continue;
                }
                let input = if text.len() > max { Input::TooLarge } else { Input::Text(text) };
                if in_tx.send(input).await.is_err() { break; }
            }
            out = out_rx.recv() => match out {
                Some(text) => if ws.send(Message::text(text)).await.is_err() { break; },
                // The session ended (and said why): close.
                None => { let _ = ws.send(Message::Close(None)).await; break; }
            }
        }
    }
    drop(in_tx);
    let _ = session.await;
}

/// A long-polling session between requests.
struct LpSession {
    input: mpsc::Sender<Input>,
    output: tokio::sync::Mutex<mpsc::Receiver<String>>,
    /// When the last request began or ended, and how many are running.
    seen: Mutex<(Instant, usize)>,
}

impl LpSession {
    /// Counts a request as running until the returned guard is dropped,
    /// whether the request finishes or is abandoned: a client that goes
    /// away mid-poll makes the server drop the request's future, and its
    /// session must still start counting as idle (and so end).
    fn begin(self: &Arc<Self>) -> Running {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *s = (Instant::now(), s.1 + 1);
        Running(self.clone())
    }

    fn end(&self) {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *s = (Instant::now(), s.1.saturating_sub(1));
    }

    fn idle_for(&self) -> Option<Duration> {
        let s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        (s.1 == 0).then(|| s.0.elapsed())
    }
}

/// A request of a long-polling session in progress (see [`LpSession::begin`]).
struct Running(Arc<LpSession>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[derive(Default)]
struct LpSessions {
    map: Mutex<HashMap<String, Arc<LpSession>>>,
}

impl LpSessions {
    fn get(&self, sid: &str) -> Option<Arc<LpSession>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sid)
            .cloned()
    }

    fn insert(&self, sid: String, s: Arc<LpSession>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sid, s);
    }

    fn remove(&self, sid: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }
}

async fn long_poll(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !key_ok(&shared.cfg, &headers, &params) {
        return forbidden();
    }
    let Some(sid) = params.sid.clone().filter(|s| !s.is_empty()) else {
        return lp_create(&shared, crate::irc::validate::host_of(peer.ip())).await;
    };
    let Some(session) = shared.lp.get(&sid) else {
        return json_response(
            StatusCode::FORBIDDEN,
            error_body(403, "invalid or expired session"),
        );
    };
    let _running = session.begin();
    let response = if body.is_empty() {
        lp_poll(&shared, &sid, &session).await
    } else {
        let text = String::from_utf8_lossy(&body).into_owned();
        let input = if text.len() > shared.cfg.max_message_bytes {
            Input::TooLarge
        } else {
            Input::Text(text)
        };
        if session.input.send(input).await.is_err() {
            shared.lp.remove(&sid);
            json_response(
                StatusCode::FORBIDDEN,
                error_body(403, "invalid or expired session"),
            )
        } else {
            StatusCode::OK.into_response()
        }
    };
    response
}

/// A poll: one queued server message, or an empty 200 after the wait.
async fn lp_poll(shared: &Shared, sid: &str, session: &LpSession) -> Response {
    let wait = Duration::from_secs(shared.cfg.lp_poll_secs.max(1));
    let mut output = session.output.lock().await;
    match tokio::time::timeout(wait, output.recv()).await {
        Ok(Some(text)) => json_response(StatusCode::OK, text),
        Ok(None) => {
            shared.lp.remove(sid);
            json_response(
                StatusCode::FORBIDDEN,
                error_body(403, "invalid or expired session"),
            )
        }
        Err(_) => StatusCode::OK.into_response(),
    }
}

/// A connection the gateway turned away: Tinode's 503.
fn too_many(refused: crate::gateway::Refused) -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        error_body(503, &refused.reason().to_ascii_lowercase()),
    )
}

async fn lp_create(shared: &Shared, addr: String) -> Response {
    let guard = match shared.gw.admit(&addr) {
        Ok(guard) => guard,
        Err(refused) => return too_many(refused),
    };
    let lp_sid = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
    let (out_tx, out_rx) = mpsc::channel(shared.gw.irc.sendq_lines.max(1));
    let conn = Conn::new(
        shared.gw.clone(),
        shared.cfg.clone(),
        &shared.nats_prefix,
        Transport::LongPoll,
        addr,
        out_tx,
    );
    let session = Arc::new(LpSession {
        input: in_tx,
        output: tokio::sync::Mutex::new(out_rx),
        seen: Mutex::new((Instant::now(), 0)),
    });
    shared.lp.insert(lp_sid.clone(), session.clone());
    // The session runs on its own; it ends when its input closes (idle
    // timeout below), or by itself (kill, shutdown).
    let drain = shared.drain.clone();
    let run = tokio::spawn(conn.run(in_rx, shared.shutdown.clone()));
    let table = shared.lp.clone();
    let idle = Duration::from_secs(shared.cfg.lp_idle_secs.max(1));
    let reaper_sid = lp_sid.clone();
    tokio::spawn(async move {
        let _drain = drain;
        let _guard = guard;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let weak = Arc::downgrade(&session);
        drop(session);
        loop {
            tick.tick().await;
            if run.is_finished() {
                break;
            }
            let Some(s) = weak.upgrade() else { break };
            if s.idle_for().is_some_and(|d| d >= idle) {
                tracing::debug!(sid = %reaper_sid, "tinode: long-polling session idle, ending it");
                table.remove(&reaper_sid);
                drop(s);
                break;
            }
        }
        table.remove(&reaper_sid);
        // With the table's reference gone the input closes and the
        // session ends; wait for its clean-up.
        let _ = run.await;
    });
    let body = wire::ctrl(None, wire::code::CREATED)
        .param("sid", lp_sid)
        .build()
        .to_string();
    json_response(StatusCode::CREATED, body)
}
