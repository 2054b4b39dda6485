//! IRCv3 `labeled-response`: the answer to a command the client tagged
//! `label=…` comes back as one unit carrying that label — `ACK` when there
//! is nothing to say, the one line itself when there is one, a
//! `labeled-response` batch when there are more.
//!
//! A monolithic server knows a response is complete when its command
//! handler returns. Here much of a response arrives later, from elsewhere:
//! the router's events and replies for the intents the command published
//! (ended by [`Reply::Done`](bus::schema::Reply::Done), which the gateway
//! asks for with [`Intent::done`](bus::schema::Intent::done)), the auth and
//! history services' answers, publisher confirms that release an echo. So
//! a response is assembled: everything the command's handler sends, and
//! everything sent while handling something the response *waits for*,
//! goes into it. The response counts what it waits for ("holds", each
//! under a key: an intent id, a request id, a confirm's token) and is
//! complete when its handler has returned and no hold is left, or when
//! [`TIMEOUT`] passes (then what arrived is sent as it is).
//!
//! While a response is being assembled, other lines for the client wait
//! behind it, in order: otherwise a message in a channel could reach the
//! client before the labeled `JOIN` that put it there. Only clients that
//! label commands ever wait, and only for as long as their own requests
//! take.
//!
//! Labels are honoured for registered clients that enabled both
//! `labeled-response` and `batch` (as InspIRCd does): the spec's responses
//! of several lines are batches.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::client::OutQueue;
use super::line::Message;

/// How long a response may wait for what it holds.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest label honoured (the spec's limit for the tag value).
pub const MAX_LABEL: usize = 64;
/// Lines that may wait behind open responses; past that, the open ones
/// are sent as they are.
const MAX_WAITING: usize = 4096;

/// A connection's labeled responses. Interior mutability: lines are sent
/// through `&Client` everywhere.
pub struct Labels {
    server: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The response that lines sent now belong to.
    current: Option<u64>,
    open: HashMap<u64, Response>,
    /// Hold key → response.
    keys: HashMap<String, u64>,
    /// What waits to be written, in order: lines, and responses (written
    /// when complete).
    queue: VecDeque<Slot>,
    next: u64,
}

enum Slot {
    Line(String),
    Response(u64),
}

struct Response {
    label: String,
    lines: Vec<Message>,
    holds: usize,
    /// Its command's handler is still running.
    dispatching: bool,
    complete: bool,
    deadline: Instant,
}

/// What [`Labels::enter`] replaced, for [`Labels::leave`].
#[must_use]
pub struct Entered(Option<Option<u64>>);

impl Labels {
    pub fn new(server: &str) -> Self {
        Self {
            server: server.to_string(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A labeled command's handler starts: what it sends is the response.
    pub fn begin(&self, label: &str) {
        let mut g = self.lock();
        g.next += 1;
        let id = g.next;
        g.open.insert(
            id,
            Response {
                label: label.to_string(),
                lines: Vec::new(),
                holds: 0,
                dispatching: true,
                complete: false,
                deadline: Instant::now() + TIMEOUT,
            },
        );
        g.queue.push_back(Slot::Response(id));
        g.current = Some(id);
    }

    /// The handler returned: the response is complete unless it holds
    /// something.
    pub fn end(&self, out: &OutQueue) {
        let mut g = self.lock();
        let Some(id) = g.current.take() else {
            return;
        };
        if let Some(r) = g.open.get_mut(&id) {
            r.dispatching = false;
            r.complete = r.holds == 0;
        }
        g.drain(&self.server, out);
    }

    /// True while lines belong to a response (a labeled command is being
    /// handled, or something one waits for).
    pub fn active(&self) -> bool {
        self.lock().current.is_some()
    }

    /// The current response (if any) waits for `key`.
    pub fn wait_for(&self, key: &str) {
        let mut g = self.lock();
        let Some(id) = g.current else {
            return;
        };
        if g.keys.insert(key.to_string(), id).is_none() {
            if let Some(r) = g.open.get_mut(&id) {
                r.holds += 1;
            }
        }
    }

    /// The current response (if any) waits for something without a key of
    /// its own (a publisher confirm): the returned token is its key.
    pub fn hold(&self) -> Option<String> {
        let token = {
            let mut g = self.lock();
            g.current?;
            g.next += 1;
            format!("\u{0}{}", g.next)
        };
        self.wait_for(&token);
        Some(token)
    }

    /// Lines sent from now belong to the response waiting for `key`, if
    /// one does (until [`Labels::leave`]).
    pub fn enter(&self, key: &str) -> Entered {
        let mut g = self.lock();
        match g.keys.get(key).copied() {
            Some(id) => Entered(Some(g.current.replace(id))),
            None => Entered(None),
        }
    }

    /// Ends what [`Labels::enter`] began; `release`: the response no longer
    /// waits for `key`.
    pub fn leave(&self, key: &str, entered: Entered, release: bool, out: &OutQueue) {
        let mut g = self.lock();
        if let Entered(Some(previous)) = entered {
            g.current = previous;
        }
        if release {
            g.release(key);
            g.drain(&self.server, out);
        }
    }

    /// The response waiting for `key` (if any) no longer does.
    pub fn release(&self, key: &str, out: &OutQueue) {
        let mut g = self.lock();
        g.release(key);
        g.drain(&self.server, out);
    }

    /// Sends `m` to the client: into the current response, behind the
    /// responses being assembled, or straight out.
    pub fn send(&self, m: Message, out: &OutQueue) {
        let mut g = self.lock();
        if let Some(id) = g.current {
            if let Some(r) = g.open.get_mut(&id) {
                r.lines.push(m);
                return;
            }
        }
        if g.queue.is_empty() {
            drop(g);
            out.send(m.to_wire());
            return;
        }
        g.queue.push_back(Slot::Line(m.to_wire()));
        if g.queue.len() > MAX_WAITING {
            g.complete_all();
            g.drain(&self.server, out);
        }
    }

    /// When the first response being assembled gives up waiting.
    pub fn deadline(&self) -> Option<Instant> {
        let g = self.lock();
        g.open
            .values()
            .filter(|r| !r.complete && !r.dispatching)
            .map(|r| r.deadline)
            .min()
    }

    /// Responses past their deadline are sent as they are.
    pub fn expire(&self, out: &OutQueue) {
        let now = Instant::now();
        let mut g = self.lock();
        for r in g.open.values_mut() {
            if !r.dispatching && r.deadline <= now {
                r.complete = true;
            }
        }
        g.drain(&self.server, out);
    }

    /// The connection ends: everything waiting goes out now.
    pub fn flush(&self, out: &OutQueue) {
        let mut g = self.lock();
        g.current = None;
        g.complete_all();
        g.drain(&self.server, out);
    }
}

impl Inner {
    fn release(&mut self, key: &str) {
        let Some(id) = self.keys.remove(key) else {
            return;
        };
        if let Some(r) = self.open.get_mut(&id) {
            r.holds = r.holds.saturating_sub(1);
            if r.holds == 0 && !r.dispatching {
                r.complete = true;
            }
        }
    }

    fn complete_all(&mut self) {
        for r in self.open.values_mut() {
            r.complete = true;
            r.dispatching = false;
        }
    }

    /// Writes the front of the queue up to the first response still being
    /// assembled.
    fn drain(&mut self, server: &str, out: &OutQueue) {
        loop {
            match self.queue.front() {
                Some(Slot::Line(_)) => {
                    if let Some(Slot::Line(l)) = self.queue.pop_front() {
                        out.send(l);
                    }
                }
                Some(Slot::Response(id)) => {
                    let id = *id;
                    if !self.open.get(&id).is_none_or(|r| r.complete) {
                        return;
                    }
                    self.queue.pop_front();
                    if self.current == Some(id) {
                        self.current = None;
                    }
                    self.keys.retain(|_, r| *r != id);
                    if let Some(r) = self.open.remove(&id) {
                        for m in render(server, &r.label, r.lines, id) {
                            out.send(m.to_wire());
                        }
                    }
                }
                None => return,
            }
        }
    }
}

/// A complete response as the client sees it.
fn render(server: &str, label: &str, mut lines: Vec<Message>, id: u64) -> Vec<Message> {
    match lines.len() {
        0 => vec![Message::new("ACK").with_source(server).tag("label", label)],
        1 => {
            let mut m = lines.remove(0);
            m.tags.insert(0, ("label".to_string(), label.to_string()));
            vec![m]
        }
        _ => {
            let reference = format!("L{id}");
            let mut all = Vec::with_capacity(lines.len() + 2);
            all.push(
                Message::new("BATCH")
                    .with_source(server)
                    .param(format!("+{reference}"))
                    .param("labeled-response")
                    .tag("label", label),
            );
            for mut m in lines {
                // A line of a batch inside this one (a history replay)
                // belongs to that batch; only its BATCH lines are ours.
                if m.tag_value("batch").is_none() {
                    m.tags.insert(0, ("batch".to_string(), reference.clone()));
                }
                all.push(m);
            }
            all.push(
                Message::new("BATCH")
                    .with_source(server)
                    .param(format!("-{reference}")),
            );
            all
        }
    }
}

/// The label of `m` to honour, if any: the client must be registered and
/// have enabled `labeled-response` and `batch`; an empty or overlong label
/// is ignored.
pub fn label_of(m: &Message, labeled_caps: bool) -> Option<&str> {
    if !labeled_caps {
        return None;
    }
    m.tag_value("label")
        .filter(|l| !l.is_empty() && l.len() <= MAX_LABEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::Kill;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn out() -> (OutQueue, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(64);
        (OutQueue::new(tx, Arc::new(Kill::default())), rx)
    }

    fn drain(rx: &mut mpsc::Receiver<String>) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = rx.try_recv() {
            v.push(l);
        }
        v
    }

    fn line(text: &str) -> Message {
        Message::new("NOTICE").param("n").text(text)
    }

    #[test]
    fn nothing_to_say_is_an_ack() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("a1");
        l.end(&o);
        assert_eq!(drain(&mut rx), vec!["@label=a1 :srv ACK"]);
    }

    #[test]
    fn one_line_carries_the_label() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("x");
        l.send(line("hi"), &o);
        l.end(&o);
        assert_eq!(drain(&mut rx), vec!["@label=x NOTICE n :hi"]);
    }

    #[test]
    fn several_lines_are_a_batch_and_inner_batches_stay_theirs() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("x");
        l.send(line("1"), &o);
        l.send(Message::new("BATCH").param("+h1").param("chathistory"), &o);
        l.send(line("2").tag("batch", "h1"), &o);
        l.end(&o);
        assert_eq!(
            drain(&mut rx),
            vec![
                "@label=x :srv BATCH +L1 labeled-response",
                "@batch=L1 NOTICE n :1",
                "@batch=L1 BATCH +h1 chathistory",
                "@batch=h1 NOTICE n :2",
                ":srv BATCH -L1",
            ]
        );
    }

    #[test]
    fn a_held_response_waits_and_others_wait_behind_it() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("j");
        l.wait_for("intent1");
        l.end(&o);
        assert!(l.deadline().is_some());
        // Somebody else's line waits behind the response.
        l.send(line("other"), &o);
        assert!(drain(&mut rx).is_empty());
        let e = l.enter("intent1");
        l.send(line("joined"), &o);
        l.leave("intent1", e, false, &o);
        assert!(drain(&mut rx).is_empty());
        l.release("intent1", &o);
        assert_eq!(
            drain(&mut rx),
            vec!["@label=j NOTICE n :joined", "NOTICE n :other"]
        );
        // Later lines go straight out again.
        l.send(line("later"), &o);
        assert_eq!(drain(&mut rx), vec!["NOTICE n :later"]);
    }

    #[test]
    fn responses_leave_in_command_order() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("first");
        l.wait_for("k");
        l.end(&o);
        l.begin("second");
        l.end(&o);
        assert!(drain(&mut rx).is_empty());
        l.release("k", &o);
        assert_eq!(
            drain(&mut rx),
            vec!["@label=first :srv ACK", "@label=second :srv ACK"]
        );
    }

    #[test]
    fn unknown_keys_change_nothing() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        let e = l.enter("nobody");
        l.send(line("plain"), &o);
        l.leave("nobody", e, true, &o);
        assert_eq!(drain(&mut rx), vec!["NOTICE n :plain"]);
        assert_eq!(l.hold(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_that_waits_too_long_is_sent_as_it_is() {
        let (o, mut rx) = out();
        let l = Labels::new("srv");
        l.begin("slow");
        let token = l.hold().expect("a response is current");
        l.send(line("part"), &o);
        l.end(&o);
        tokio::time::advance(TIMEOUT).await;
        l.expire(&o);
        assert_eq!(drain(&mut rx), vec!["@label=slow NOTICE n :part"]);
        // The late answer finds no response and goes out plainly.
        let e = l.enter(&token);
        l.send(line("late"), &o);
        l.leave(&token, e, true, &o);
        assert_eq!(drain(&mut rx), vec!["NOTICE n :late"]);
    }

    #[test]
    fn labels_need_the_caps_and_a_sane_value() {
        let m = Message::new("PING").tag("label", "abc");
        assert_eq!(label_of(&m, true), Some("abc"));
        assert_eq!(label_of(&m, false), None);
        let long = Message::new("PING").tag("label", "x".repeat(65));
        assert_eq!(label_of(&long, true), None);
        assert_eq!(label_of(&Message::new("PING"), true), None);
    }
}
