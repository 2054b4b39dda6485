//! History plumbing of one connection: asking the history service, matching
//! its answers (from the session queue) to the questions, timing them out,
//! and the history a connection is shown without asking: the latest lines
//! of a room after JOIN (clients without `draft/chathistory`) and the
//! direct messages kept while its account had no session.
//!
//! Nothing here waits for an answer: a request is published (its confirm
//! joins the connection's pending confirms) and the answer arrives later
//! through [`on_reply`], like an auth answer. So a slow or absent history
//! service never holds up the connection loop.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bus::history::{
    Anchor, HistoryError, HistoryItem, HistoryQuery, HistoryReply, HistoryReplyBody,
    HistoryRequest, HistoryTarget, Requester, Selector,
};
use bus::names::fold;
use bus::new_id;
use bus::schema::SCHEMA_VERSION;
use tokio::time::Instant;

use super::caps::Cap;
use super::client::{Client, Pending};
use super::commands::{chathistory, redact};
use super::line::Message;
use super::render::{self, Playback};
use super::validate::channel_of;
use crate::metrics;

/// How long the history service may take to answer.
pub const HISTORY_TIMEOUT: Duration = Duration::from_secs(10);
/// CHATHISTORY commands one connection may have in flight.
pub const MAX_CLIENT_REQUESTS: usize = 8;
/// The server's own requests (JOIN replays, pending delivery) in flight:
/// more than a client's, since a JOIN of many channels asks for each.
pub const MAX_SERVER_REQUESTS: usize = 64;
/// Pending direct messages fetched per page.
pub const PENDING_PAGE: u32 = 100;

/// Who asked, so the answer is shown the right way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// `CHATHISTORY <subcommand> <target> …` (not TARGETS); `target` as the
    /// client wrote it.
    Chathistory { subcommand: String, target: String },
    /// `CHATHISTORY TARGETS …`.
    Targets,
    /// The latest lines of `channel`, shown after the client's JOIN.
    JoinReplay { channel: String },
    /// A page of the direct messages kept for the account.
    Pending,
    /// Those shown were acknowledged; `more`: the page was full, ask again.
    AckPending { more: bool },
    /// `REDACT`: finding the message to delete (its author and number).
    Redact(redact::Redacting),
}

impl Purpose {
    /// Whether the client asked (and counts against its bound).
    fn asked_by_client(&self) -> bool {
        matches!(
            self,
            Purpose::Chathistory { .. } | Purpose::Targets | Purpose::Redact(_)
        )
    }

    fn label(&self) -> &'static str {
        match self {
            Purpose::Chathistory { .. } => "chathistory",
            Purpose::Targets => "targets",
            Purpose::JoinReplay { .. } => "join_replay",
            Purpose::Pending => "pending",
            Purpose::AckPending { .. } => "ack_pending",
            Purpose::Redact(_) => "redact",
        }
    }
}

/// A request in flight.
#[derive(Debug)]
pub struct HistoryPending {
    pub id: String,
    pub purpose: Purpose,
    pub deadline: Instant,
}

/// A connection's history state.
#[derive(Debug, Default)]
pub struct HistoryState {
    inflight: Vec<HistoryPending>,
    /// Batch references handed out (they only need to be unique per
    /// connection).
    batches: u64,
    /// The time of the client's own JOIN per room (folded), until the
    /// names reply that follows it: the replay shows what came before it.
    joins: HashMap<String, i64>,
    /// Pending direct messages are being fetched and shown.
    delivering: bool,
    /// Folded nicks already told they are offline (once per connection).
    offline_noticed: HashSet<String>,
}

impl HistoryState {
    /// Remembers that `nick` was told about; true the first time.
    pub fn first_offline_notice(&mut self, nick: &str) -> bool {
        self.offline_noticed.insert(fold(nick))
    }
}

/// Why a request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Too many in flight.
    Busy,
    /// The bus did not take it.
    Unavailable,
}

/// Sends `body` to the history service; the answer comes to [`on_reply`].
pub async fn request(
    c: &mut Client,
    body: HistoryQuery,
    purpose: Purpose,
) -> Result<(), RequestError> {
    // The client's requests and the server's own are bounded apart, so a
    // busy client never stops its JOIN replays and the other way round.
    let by_client = purpose.asked_by_client();
    let count = c
        .history
        .inflight
        .iter()
        .filter(|p| p.purpose.asked_by_client() == by_client)
        .count();
    let limit = if by_client {
        MAX_CLIENT_REQUESTS
    } else {
        MAX_SERVER_REQUESTS
    };
    if count >= limit {
        return Err(RequestError::Busy);
    }
    if !c.ensure_session_queue().await {
        return Err(RequestError::Unavailable);
    }
    let id = new_id();
    let req = HistoryRequest {
        v: SCHEMA_VERSION,
        id: id.clone(),
        requester: Requester {
            sid: c.pending_sid.clone(),
            nick: c.nick().to_string(),
            account: c.account.clone(),
        },
        body,
    };
    let sid = c.pending_sid.clone();
    match c.gw.link.publish_history_request(&sid, req).await {
        Ok(pending) => {
            metrics::history_request(purpose.label());
            c.queue_confirm(Pending::History { id: id.clone() }, pending, None);
            c.labels.wait_for(&id);
            c.history.inflight.push(HistoryPending {
                id,
                purpose,
                deadline: Instant::now() + HISTORY_TIMEOUT,
            });
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing a history request failed");
            Err(RequestError::Unavailable)
        }
    }
}

/// The broker refused request `id` (no queue, nacked): fail it now,
/// through the timeout path.
pub fn refused(c: &mut Client, id: &str) {
    if let Some(p) = c.history.inflight.iter_mut().find(|p| p.id == id) {
        p.deadline = Instant::now();
    }
}

/// When the first request in flight times out, if there is one.
pub fn deadline(c: &Client) -> Option<Instant> {
    c.history.inflight.iter().map(|p| p.deadline).min()
}

/// Requests that got no answer in time fail.
pub async fn on_timeout(c: &mut Client) {
    let now = Instant::now();
    let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut c.history.inflight)
        .into_iter()
        .partition(|p| p.deadline <= now);
    c.history.inflight = live;
    for p in expired {
        tracing::debug!(id = %p.id, purpose = p.purpose.label(), "history request timed out");
        metrics::history_failure("timeout");
        let entered = c.labels.enter(&p.id);
        failed(c, p.purpose, None);
        c.labels.leave(&p.id, entered, true, &c.out);
    }
}

/// An answer from the session queue. One nobody waits for any more (timed
/// out) is dropped.
pub async fn on_reply(c: &mut Client, reply: HistoryReply) {
    let Some(pos) = c.history.inflight.iter().position(|p| p.id == reply.id) else {
        tracing::debug!(id = %reply.id, "dropping a history reply nobody waits for");
        return;
    };
    let purpose = c.history.inflight.swap_remove(pos).purpose;
    // Part of the labeled response that waits for it, if one does.
    let entered = c.labels.enter(&reply.id);
    answer(c, purpose, reply.body).await;
    c.labels.leave(&reply.id, entered, true, &c.out);
}

async fn answer(c: &mut Client, purpose: Purpose, body: HistoryReplyBody) {
    match (purpose, body) {
        (
            Purpose::Chathistory { target, .. },
            HistoryReplyBody::Messages {
                target: conversation,
                name,
                items,
            },
        ) => chathistory::show_messages(c, &target, &conversation, &name, &items),
        (Purpose::Targets, HistoryReplyBody::Targets { items }) => {
            chathistory::show_targets(c, &items)
        }
        (Purpose::JoinReplay { channel }, HistoryReplyBody::Messages { items, .. }) => {
            show_replay(c, &channel, &items)
        }
        (Purpose::Redact(r), HistoryReplyBody::Messages { items, .. }) => {
            redact::found(c, r, &items).await
        }
        (Purpose::Pending, HistoryReplyBody::Pending { items }) => {
            show_pending(c, items).await;
        }
        (Purpose::AckPending { more }, HistoryReplyBody::Acked { .. }) => {
            if more {
                fetch_pending(c).await;
            } else {
                c.history.delivering = false;
            }
        }
        (purpose, HistoryReplyBody::Failure { code }) => {
            metrics::history_failure(match code {
                HistoryError::InvalidTarget => "invalid_target",
                HistoryError::Malformed => "malformed",
                HistoryError::Internal => "internal",
            });
            failed(c, purpose, Some(code));
        }
        (purpose, _) => {
            tracing::warn!(purpose = purpose.label(), "history reply of the wrong kind");
            failed(c, purpose, Some(HistoryError::Internal));
        }
    }
}

/// A request failed (`None`: no answer in time): the client is told if it
/// asked; the server's own requests give up quietly.
fn failed(c: &mut Client, purpose: Purpose, code: Option<HistoryError>) {
    match purpose {
        Purpose::Chathistory { subcommand, target } => {
            chathistory::on_failure(c, &subcommand, &target, code)
        }
        Purpose::Targets => chathistory::on_failure(c, "TARGETS", "*", code),
        Purpose::Redact(r) => redact::lookup_failed(c, &r, code),
        Purpose::JoinReplay { channel } => {
            tracing::debug!(%channel, ?code, "no history replay after JOIN");
        }
        Purpose::Pending | Purpose::AckPending { .. } => {
            tracing::warn!(?code, "delivering pending direct messages failed");
            c.history.delivering = false;
        }
    }
}

/// A fresh batch reference.
fn batch_ref(c: &mut Client) -> String {
    c.history.batches += 1;
    format!("h{}", c.history.batches)
}

/// What a batch of history shows, beyond what the client's caps decide.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show<'a> {
    /// Events besides messages (`draft/event-playback`).
    pub events: bool,
    /// Date and time before each text (replays to clients without
    /// `server-time`).
    pub stamp: bool,
    /// The direct conversation's other side as the client named it.
    pub peer: Option<&'a str>,
}

/// The lines of `items` as one `chathistory` batch about `param`, or bare
/// lines for a client without `batch`.
pub fn batch_lines<'a>(
    c: &mut Client,
    param: &str,
    items: impl IntoIterator<Item = &'a HistoryItem>,
    show: Show,
) -> Vec<Message> {
    let account = c.account.clone();
    batched(c, "chathistory", Some(param), |v, batch| {
        let p = Playback {
            batch,
            events: show.events,
            stamp: show.stamp,
            account: account.as_deref(),
            peer: show.peer,
        };
        items
            .into_iter()
            .flat_map(|item| render::history_item(item, &p, v))
            .collect()
    })
}

/// The lines `body` makes (given the batch reference, if any) wrapped in
/// `BATCH +ref <kind> [param]` … `BATCH -ref` when the client has `batch`;
/// bare otherwise.
pub fn batched(
    c: &mut Client,
    kind: &str,
    param: Option<&str>,
    body: impl FnOnce(&render::View, Option<&str>) -> Vec<Message>,
) -> Vec<Message> {
    let batch = c.caps.has(Cap::Batch).then(|| batch_ref(c));
    let v = c.view();
    let inner = body(&v, batch.as_deref());
    match &batch {
        Some(b) => std::iter::once(render::batch_start(&v, b, kind, param))
            .chain(inner)
            .chain(std::iter::once(render::batch_end(&v, b)))
            .collect(),
        None => inner,
    }
}

/// How the server's own replays are shown: without `server-time` the texts
/// carry their date, so old lines are recognisable.
fn replay_show(c: &Client) -> Show<'static> {
    Show {
        events: false,
        stamp: !c.caps.has(Cap::ServerTime),
        peer: None,
    }
}

// ---------------------------------------------------------------------------
// JOIN replay
// ---------------------------------------------------------------------------

/// The client's own JOIN of `room` (folded) arrived, accepted by the
/// router at `at`: remember it for the replay after the names reply.
pub fn note_own_join(c: &mut Client, room: &str, at: i64) {
    if c.gw.irc.join_replay_lines == 0 || c.caps.has(Cap::Chathistory) {
        return;
    }
    c.history.joins.insert(room.to_string(), at);
}

/// The names reply for `room` was shown: ask for the lines before the JOIN.
///
/// The JOIN is named by its time, not its seq: the router numbers a room
/// that emptied and was created again from 1, so its seq does not name a
/// point in the room's whole history (and its id may not be stored yet).
pub async fn replay_after_join(c: &mut Client, room: &str, name: &str) {
    let Some(at) = c.history.joins.remove(room) else {
        return;
    };
    let body = HistoryQuery::Fetch {
        target: HistoryTarget::Room {
            room: name.to_string(),
        },
        selector: Selector::Before {
            anchor: Anchor::Time(at),
        },
        limit: c.gw.irc.join_replay_lines,
        events: false,
    };
    let purpose = Purpose::JoinReplay {
        channel: channel_of(name),
    };
    if let Err(e) = request(c, body, purpose).await {
        tracing::debug!(?e, %room, "no history replay after JOIN");
    }
}

fn show_replay(c: &mut Client, channel: &str, items: &[HistoryItem]) {
    if items.is_empty() {
        return;
    }
    let show = replay_show(c);
    let lines = batch_lines(c, channel, items, show);
    c.send_all(lines);
}

// ---------------------------------------------------------------------------
// Direct messages kept while the account was offline
// ---------------------------------------------------------------------------

/// Starts delivering the direct messages kept for the session's account,
/// once it is both registered and logged in (whichever comes last calls
/// this). Does nothing while a delivery runs.
pub async fn deliver_pending(c: &mut Client) {
    if c.session.is_none() || c.account.is_none() || c.history.delivering {
        return;
    }
    c.history.delivering = true;
    fetch_pending(c).await;
}

async fn fetch_pending(c: &mut Client) {
    let body = HistoryQuery::Pending {
        limit: PENDING_PAGE,
    };
    if let Err(e) = request(c, body, Purpose::Pending).await {
        tracing::warn!(?e, "asking for pending direct messages failed");
        c.history.delivering = false;
    }
}

/// Shows a page of pending messages, one batch per sender, then
/// acknowledges what was shown.
async fn show_pending(c: &mut Client, items: Vec<HistoryItem>) {
    if items.is_empty() {
        c.history.delivering = false;
        return;
    }
    let show = replay_show(c);
    let mut lines = Vec::new();
    for (sender, group) in by_sender(&items) {
        lines.extend(batch_lines(c, sender, group, show));
    }
    c.send_all(lines);
    metrics::pending_delivered(items.len());
    let more = items.len() >= PENDING_PAGE as usize;
    let ids = items.into_iter().map(|i| i.id).collect();
    if let Err(e) = request(
        c,
        HistoryQuery::AckPending { ids },
        Purpose::AckPending { more },
    )
    .await
    {
        // Not acknowledged: shown again at the next login, not lost.
        tracing::warn!(?e, "acknowledging pending direct messages failed");
        c.history.delivering = false;
    }
}

/// Groups items by sender nick, in the order each sender first appears,
/// keeping each sender's items in order.
pub fn by_sender(items: &[HistoryItem]) -> Vec<(&str, Vec<&HistoryItem>)> {
    let mut groups: Vec<(&str, Vec<&HistoryItem>)> = Vec::new();
    for item in items {
        let nick = item.from.nick.as_str();
        match groups.iter_mut().find(|(n, _)| fold(n) == fold(nick)) {
            Some((_, g)) => g.push(item),
            None => groups.push((nick, vec![item])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::{Actor, EventBody, MessageKind};

    fn item(id: &str, nick: &str) -> HistoryItem {
        HistoryItem {
            seq: 1,
            mseq: None,
            id: id.into(),
            at: 0,
            from: Actor {
                sid: "s".into(),
                gateway: "g".into(),
                nick: nick.into(),
                user: "~u".into(),
                host: "h".into(),
                realname: "R".into(),
                account: None,
            },
            to: Some("bob".into()),
            room: None,
            body: EventBody::Message {
                kind: MessageKind::Privmsg,
                text: "x".into(),
                tags: Default::default(),
            },
        }
    }

    #[test]
    fn pending_items_are_grouped_by_sender_in_order() {
        let items = vec![
            item("1", "alice"),
            item("2", "carol"),
            item("3", "Alice"),
            item("4", "carol"),
        ];
        let groups = by_sender(&items);
        let shown: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(n, g)| (*n, g.iter().map(|i| i.id.as_str()).collect()))
            .collect();
        assert_eq!(
            shown,
            vec![("alice", vec!["1", "3"]), ("carol", vec!["2", "4"])]
        );
    }

    #[test]
    fn client_requests_are_told_apart_from_the_servers() {
        assert!(Purpose::Targets.asked_by_client());
        assert!(Purpose::Chathistory {
            subcommand: "LATEST".into(),
            target: "#a".into()
        }
        .asked_by_client());
        assert!(!Purpose::Pending.asked_by_client());
        assert!(!Purpose::JoinReplay {
            channel: "#a".into()
        }
        .asked_by_client());
    }
}
