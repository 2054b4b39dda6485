//! The gateway's Prometheus metrics, named in one place.

pub fn connections(n: usize) {
    metrics::gauge!("gateway_connections").set(n as f64);
}

/// Sessions on this gateway: all, and of `protocol` (`of_protocol`).
pub fn sessions(n: usize, protocol: &'static str, of_protocol: usize, gateway: &str) {
    metrics::gauge!("gateway_sessions").set(n as f64);
    metrics::gauge!("gateway_sessions_by_protocol", "protocol" => protocol, "gateway" => gateway.to_string())
        .set(of_protocol as f64);
}

/// A chat message (PRIVMSG, NOTICE, a groupchat or Tinode `{pub}`, to a
/// room or a person) a client of `protocol` sent.
pub fn message_in(protocol: &'static str) {
    metrics::counter!("gateway_messages_in_total", "protocol" => protocol).increment(1);
}

/// A room message handed to a local session of `protocol`.
pub fn message_out(protocol: &'static str) {
    metrics::counter!("gateway_messages_out_total", "protocol" => protocol).increment(1);
}

/// How many deliveries wait in a session's inbox right after one more was
/// put there (the SendQ fills from here).
pub fn session_queue_depth(waiting: usize) {
    metrics::histogram!("gateway_session_queue_depth").record(waiting as f64);
}

/// From a message's intent reaching its sender's gateway to its delivery
/// reaching this gateway's sessions (the platform's end-to-end latency
/// but for the last hop to the client).
pub fn delivery_latency(ms: i64) {
    metrics::histogram!("gateway_delivery_seconds").record(ms.max(0) as f64 / 1000.0);
}

pub fn line_in() {
    metrics::counter!("gateway_lines_in_total").increment(1);
}

pub fn line_out() {
    metrics::counter!("gateway_lines_out_total").increment(1);
}

pub fn intent() {
    metrics::counter!("gateway_intents_total").increment(1);
}

pub fn room_event() {
    metrics::counter!("gateway_room_events_total").increment(1);
}

/// A typing notification signalled on NATS by a local session.
pub fn typing_signal() {
    metrics::counter!("gateway_typing_signals_total", "dir" => "out").increment(1);
}

/// A typing notification from NATS shown to local members.
pub fn typing_shown() {
    metrics::counter!("gateway_typing_signals_total", "dir" => "in").increment(1);
}

/// A TLS client that did not finish its handshake.
pub fn tls_handshake_failed() {
    metrics::counter!("gateway_tls_handshake_failures_total").increment(1);
}

/// A failed gateway-side authentication (`what`: oper).
pub fn auth_failure(what: &'static str) {
    metrics::counter!("gateway_auth_failures_total", "what" => what).increment(1);
}

/// A connection turned away (`why`: full, per_address).
pub fn connection_refused(why: &'static str) {
    metrics::counter!("gateway_connections_refused_total", "why" => why).increment(1);
}

pub fn sendq_kill() {
    metrics::counter!("gateway_sendq_kills_total").increment(1);
}

/// A request to the history service (`purpose`: chathistory, targets,
/// join_replay, pending, ack_pending).
pub fn history_request(purpose: &'static str) {
    metrics::counter!("gateway_history_requests_total", "purpose" => purpose).increment(1);
}

/// A history request that failed (`reason`: timeout, invalid_target,
/// malformed, internal).
pub fn history_failure(reason: &'static str) {
    metrics::counter!("gateway_history_failures_total", "reason" => reason).increment(1);
}

/// Direct messages kept while their recipient was offline, now shown.
pub fn pending_delivered(n: usize) {
    metrics::counter!("gateway_pending_delivered_total").increment(n as u64);
}

/// A direct message copied to the history service (`offline`: kept for a
/// recipient with no session) and whether the broker took it.
pub fn direct_log(offline: bool, ok: bool) {
    let kind = if offline { "offline" } else { "live" };
    let outcome = if ok { "confirmed" } else { "refused" };
    metrics::counter!("gateway_direct_logs_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// Registers every metric at zero so `/metrics` lists them from the start.
pub fn describe() {
    connections(0);
    metrics::gauge!("gateway_sessions").set(0.0);
    metrics::counter!("gateway_lines_in_total").absolute(0);
    metrics::counter!("gateway_lines_out_total").absolute(0);
    metrics::counter!("gateway_intents_total").absolute(0);
    metrics::counter!("gateway_room_events_total").absolute(0);
    metrics::counter!("gateway_sendq_kills_total").absolute(0);
    metrics::counter!("gateway_pending_delivered_total").absolute(0);
}
