//! The client-facing HTTP listener: XMPP over WebSocket (`/xmpp`), Tinode
//! (`/v0/channels`, `/v0/channels/lp`) and IRC over WebSocket (`/irc`)
//! share one port.

use std::net::SocketAddr;

use axum::Router;
use bus::shutdown::Shutdown;
use tokio::net::TcpListener;

/// Serves `app` until shutdown.
pub async fn serve(listener: TcpListener, app: Router, shutdown: Shutdown) {
    let mut stop = shutdown;
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.wait().await })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the HTTP listener failed");
    }
}
