//! Acknowledging, negatively acknowledging and rejecting deliveries with a
//! bound on how long it may take.
//!
//! # Why not `Acker::ack` as it is
//!
//! lapin 4.12.3 hands an ack, nack or reject to its internal RPC loop
//! together with the resolver of the promise the caller awaits. When the
//! delivery's channel has been closed by the time the loop handles the
//! command — the broker went away, or the channel failed, a moment after
//! the caller checked that its acker was still usable — the loop drops the
//! command, resolver and all, without completing it, and the caller's
//! `await` never returns (`internal_rpc.rs`: `if !self.channel_ok(..) {
//! continue; }`). Seen in the platform's broker-restart test: the history
//! service's events consumer hung in an ack during the restart, so it
//! never subscribed again, and SIGTERM could not stop it either.
//!
//! So every settlement goes through [`Settle`]: the same operations, given
//! [`SETTLE_TIMEOUT`] to complete. One that does not complete in time is
//! reported like an acker whose channel is gone, `Ok(false)`: nothing is
//! known to have reached the broker, which redelivers whatever it did not
//! see settled once the channel is closed; the caller treats it as it
//! already treats a closed channel.

use std::future::Future;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::Acker;

/// How long one settlement may take. An ack on a live channel is written
/// in well under a millisecond (it has no reply); this only ends a wait
/// that would otherwise never end.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounded settlements of a delivery (see the module documentation). Each
/// returns what lapin's own operation returns — `Ok(true)` sent, `Ok(false)`
/// not sent (the acker was used already or its channel is gone), `Err` the
/// channel's failure — and `Ok(false)` after [`SETTLE_TIMEOUT`].
pub trait Settle {
    fn ack_within(
        &self,
        options: BasicAckOptions,
    ) -> impl Future<Output = lapin::Result<bool>> + Send;
    fn nack_within(
        &self,
        options: BasicNackOptions,
    ) -> impl Future<Output = lapin::Result<bool>> + Send;
    fn reject_within(
        &self,
        options: BasicRejectOptions,
    ) -> impl Future<Output = lapin::Result<bool>> + Send;
}

impl Settle for Acker {
    async fn ack_within(&self, options: BasicAckOptions) -> lapin::Result<bool> {
        bounded("ack", self.ack(options)).await
    }

    async fn nack_within(&self, options: BasicNackOptions) -> lapin::Result<bool> {
        bounded("nack", self.nack(options)).await
    }

    async fn reject_within(&self, options: BasicRejectOptions) -> lapin::Result<bool> {
        bounded("reject", self.reject(options)).await
    }
}

async fn bounded(
    what: &'static str,
    settlement: impl Future<Output = lapin::Result<bool>>,
) -> lapin::Result<bool> {
    match tokio::time::timeout(SETTLE_TIMEOUT, settlement).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                operation = what,
                timeout_ms = SETTLE_TIMEOUT.as_millis() as u64,
                "a delivery's settlement did not complete (its channel closed under it); \
                 taking it as not sent, the broker redelivers"
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_settlement_that_never_completes_is_not_sent() {
        // What lapin's dropped resolver amounts to: a promise never resolved.
        let hung = std::future::pending::<lapin::Result<bool>>();
        let started = tokio::time::Instant::now();
        assert!(!bounded("ack", hung).await.unwrap());
        assert_eq!(started.elapsed(), SETTLE_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_settlement_that_completes_is_passed_on() {
        assert!(bounded("ack", async { Ok(true) }).await.unwrap());
        assert!(!bounded("nack", async { Ok(false) }).await.unwrap());
        let failed = bounded("reject", async {
            Err(lapin::Error::from(lapin::ErrorKind::InvalidChannel(7)))
        })
        .await;
        assert!(failed.is_err());
    }
}
