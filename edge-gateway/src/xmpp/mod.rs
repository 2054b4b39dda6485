//! XMPP over WebSocket (RFC 7395) on the gateway's HTTP port: `/xmpp`.
//!
//! The stream layer (framing, limits, stream errors), SASL through the
//! auth service, resource binding (which starts a platform session, like
//! an IRC registration), then MUC rooms that are the router's rooms,
//! one-to-one messages with anyone on any protocol, MAM from the history
//! service, disco, and the person's own things: roster and presence
//! subscriptions (stored by the auth service), presence broadcast and
//! probes between sessions, carbons, vCards and in-band registration.

mod bind;
mod carbons;
mod chat;
mod conn;
mod disco;
mod framing;
mod history;
mod jid;
mod mam;
mod muc;
mod muc_admin;
mod presence;
mod register;
mod requests;
mod retract;
mod roster;
mod sasl;
mod session;
mod stanza_error;
mod stream_error;
mod vcard;
mod xml;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bus::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::config::XmppConfig;
use crate::gateway::Gateway;

/// The WebSocket subprotocol RFC 7395 requires.
const SUBPROTOCOL: &str = "xmpp";

/// Full JIDs bound on this gateway, so that two streams never share one.
#[derive(Debug, Default)]
pub struct Resources {
    bound: Mutex<HashSet<String>>,
}

impl Resources {
    /// Takes `jid` if free.
    pub fn claim(&self, jid: &str) -> bool {
        self.bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jid.to_string())
    }

    pub fn release(&self, jid: &str) {
        self.bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(jid);
    }
}

#[derive(Clone)]
struct Shared {
    gw: Arc<Gateway>,
    xmpp: Arc<XmppConfig>,
    resources: Arc<Resources>,
    shutdown: Shutdown,
    /// Held by every stream so that shutdown can wait for them.
    drain: mpsc::Sender<()>,
}

/// The XMPP route, for the gateway's HTTP listener.
pub fn routes(
    gw: Arc<Gateway>,
    xmpp: XmppConfig,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) -> Router {
    let shared = Shared {
        gw,
        xmpp: Arc::new(xmpp),
        resources: Arc::new(Resources::default()),
        shutdown,
        drain,
    };
    Router::new()
        .route("/xmpp", get(upgrade))
        .with_state(shared)
}

async fn upgrade(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let offered = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol `xmpp` is required (RFC 7395)\n",
        )
            .into_response();
    }
    let guard = match shared.gw.admit(&crate::irc::validate::host_of(peer.ip())) {
        Ok(guard) => guard,
        Err(refused) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}\n", refused.reason()),
            )
                .into_response()
        }
    };
    // Up to `max_websocket_bytes` a message is read whole, so that one over
    // the stanza limit can be refused with `policy-violation` and a clean
    // close; beyond it the WebSocket layer stops reading (and the stream
    // still tries to say `policy-violation`, see `conn::too_big`).
    let limit = shared
        .xmpp
        .max_websocket_bytes
        .max(shared.xmpp.max_stanza_bytes);
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            let _drain = shared.drain.clone();
            let conn = conn::Conn::new(
                shared.gw.clone(),
                shared.xmpp.clone(),
                shared.resources.clone(),
                peer.ip().to_string(),
            );
            conn.run(socket, shared.shutdown.clone()).await;
            drop(guard);
        })
}
