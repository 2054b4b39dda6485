//! The admin HTTP port every process serves: `/healthz` (the process is up),
//! `/readyz` (its dependencies are reachable) and `/metrics` (Prometheus).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::shutdown::Shutdown;

/// Named readiness conditions (`amqp`, `nats`, …). `/readyz` answers 200
/// only while every registered condition is true, and 503 during shutdown.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, Arc<AtomicBool>>>>,
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// Registers a condition (initially false) and returns its flag.
    pub fn register(&self, name: &'static str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.checks
            .lock()
            .expect("readiness lock")
            .insert(name, flag.clone());
        flag
    }

    /// Marks the process as draining: `/readyz` fails from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether every condition holds, and a one-line report.
    pub fn report(&self) -> (bool, String) {
        let checks = self.checks.lock().expect("readiness lock");
        let mut ok = !self.draining.load(Ordering::SeqCst);
        let mut parts = Vec::new();
        if !ok {
            parts.push("draining".to_string());
        }
        for (name, flag) in checks.iter() {
            let up = flag.load(Ordering::SeqCst);
            ok &= up;
            parts.push(format!("{name}={}", if up { "up" } else { "down" }));
        }
        (ok, parts.join(" "))
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// Binds the admin listener and serves it until `shutdown` fires.
/// Binding happens before this returns, so a bad address fails start-up.
pub async fn serve(
    listen: &str,
    readiness: Readiness,
    metrics: PrometheusHandle,
    mut shutdown: Shutdown,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "admin port listening");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { readiness, metrics });
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin server failed");
        }
    }))
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    let (ok, report) = state.readiness.report();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{report}\n"))
}

async fn metrics_text(State(state): State<AdminState>) -> String {
    state.metrics.render()
}
