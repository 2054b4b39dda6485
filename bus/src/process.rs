//! The start-up and exit every process shares: logging, the metrics
//! recorder, signal handling, the admin port with its readiness checks, and
//! an exit code that reports the error with its causes.
//!
//! The order matters and is the same everywhere: tracing first (so every
//! later failure is logged), the metrics recorder before anything records,
//! the readiness checks registered before the admin port answers (so
//! `/readyz` never says ready with nothing checked).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::admin::Readiness;
use crate::config::{AdminConfig, LogConfig};
use crate::shutdown::{Shutdown, Trigger};

/// A started process: its shutdown signal, readiness and admin port.
pub struct Process {
    pub readiness: Readiness,
    pub trigger: Trigger,
    pub shutdown: Shutdown,
    /// The admin server task; it ends after shutdown fires.
    pub admin: JoinHandle<()>,
    checks: BTreeMap<&'static str, Arc<AtomicBool>>,
}

impl Process {
    /// Sets up logging, metrics, SIGTERM/SIGINT handling and the admin port
    /// with the named readiness `checks` (all initially down).
    pub async fn start(
        log: &LogConfig,
        admin: &AdminConfig,
        checks: &[&'static str],
    ) -> anyhow::Result<Self> {
        crate::telemetry::init_tracing(log);
        let metrics = crate::telemetry::init_metrics();
        let (trigger, shutdown) = crate::shutdown::channel();
        crate::shutdown::on_signals(trigger.clone());
        let readiness = Readiness::default();
        let checks = checks
            .iter()
            .map(|&name| (name, readiness.register(name)))
            .collect();
        let admin_task =
            crate::admin::serve(&admin.listen, readiness.clone(), metrics, shutdown.clone())
                .await
                .with_context(|| format!("binding the admin port {}", admin.listen))?;
        Ok(Self {
            readiness,
            trigger,
            shutdown,
            admin: admin_task,
            checks,
        })
    }

    /// The flag of a readiness check named at start.
    ///
    /// # Panics
    /// If `name` was not one of the checks given to [`Process::start`]: that
    /// is a programming error, not a runtime condition.
    pub fn check(&self, name: &str) -> Arc<AtomicBool> {
        self.checks
            .get(name)
            .unwrap_or_else(|| panic!("readiness check {name:?} was not registered at start"))
            .clone()
    }

    /// Marks a check up or down.
    pub fn set(&self, name: &str, up: bool) {
        self.check(name).store(up, Ordering::SeqCst);
    }

    /// Starts draining: `/readyz` fails from now on and every task sees the
    /// shutdown signal.
    pub fn drain(&self) {
        self.readiness.set_draining();
        self.trigger.fire();
    }
}

/// Ends the process: success, or the error with its causes on stderr and
/// in the log, and a failure exit code.
///
/// It exits from inside the runtime rather than returning from `main`:
/// dropping the runtime cancels the tasks client libraries still run in
/// the background, and lapin's I/O thread panics ("Task did not complete")
/// when the task it waits on is a reconnect cancelled that way — which is
/// what a SIGTERM during a broker outage would leave. By the time this is
/// called the process has drained: nothing is lost by not unwinding.
pub fn exit_code(name: &str, result: anyhow::Result<()>) -> ExitCode {
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{name} failed");
            eprintln!("{name}: {error:#}");
            1
        }
    };
    std::process::exit(code)
}
