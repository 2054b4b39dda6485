//! The platform session behind a bound XMPP stream.
//!
//! Binding a resource starts a session like an IRC registration does: a
//! nick claimed in NATS, a session record, a place in the dispatcher's map
//! (room events and router replies arrive in `inbox`) and the session queue
//! (direct messages, auth and history answers). The nick is the account
//! name, so the person is `<account>@<domain>` on XMPP and `<account>` on
//! IRC; a second session of the same account (another resource, or the
//! same person on IRC) gets `<account>|2`, `|3`… — `|` is a nick character
//! that no account name contains, so these never take someone's name.
//!
//! Intents are published and confirmed one at a time (a client waits for
//! the reflection anyway); the stanza each came from is remembered by
//! intent id, so that the router's answer — the event, or an error — can be
//! rendered as the answer to that stanza.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bus::names::fold;
use bus::schema::{Actor, IntentBody, MemberChange};
use tokio::sync::mpsc;

use super::conn::Conn;
use super::muc::Occupancy;
use crate::sessions::{self, Outbound, SessionShared};

/// Stanzas remembered while their intents are with the router.
const PENDING_MAX: usize = 256;

/// What an intent was published for, to render the router's answer.
#[derive(Debug, Clone)]
pub enum Op {
    /// A MUC join presence (`to` as the client wrote it).
    Join { room: String, to: String },
    /// A groupchat message or subject change, with the client's stanza id.
    Message { to: String, id: Option<String> },
    /// Anything else about a room (leave, kick, role changes).
    Other { room: String },
    /// A `muc#admin` iq, answered by the room's event or the router's reply.
    Admin { iq: super::xml::Element },
}

pub struct Session {
    /// The session's identity; `actor.nick` is its nick in every room.
    pub actor: Actor,
    pub shared: Arc<SessionShared>,
    pub inbox: mpsc::Receiver<Outbound>,
    /// Rooms joined or being joined (folded name → state).
    pub rooms: BTreeMap<String, Occupancy>,
    /// Intent id → the stanza it came from.
    pending: HashMap<String, Op>,
    order: VecDeque<String>,
    /// The away message last published (XMPP `<show>`/`<status>`).
    pub away: Option<String>,
}

impl Session {
    pub fn remember(&mut self, intent: String, op: Op) {
        if self.order.len() == PENDING_MAX {
            if let Some(old) = self.order.pop_front() {
                self.pending.remove(&old);
            }
        }
        self.order.push_back(intent.clone());
        self.pending.insert(intent, op);
    }

    /// The stanza intent `id` came from, forgotten once answered.
    pub fn answered(&mut self, id: &str) -> Option<Op> {
        let op = self.pending.remove(id)?;
        self.order.retain(|i| i != id);
        Some(op)
    }
}

/// Why a session could not start.
pub type SessionError = sessions::AccountStartError;

/// Starts the platform session for the bound stream `c.jid`.
pub async fn start(c: &mut Conn) -> Result<(), SessionError> {
    let (Some(account), Some(jid)) = (c.account.clone(), c.jid.clone()) else {
        return Err(SessionError::NoNick);
    };
    let bare = jid.split('/').next().unwrap_or(&jid).to_string();
    let (actor, started) = sessions::start_account(
        &c.gw,
        &c.sid,
        &account,
        &c.addr,
        &bare,
        "xmpp",
        c.kill.clone(),
    )
    .await?;
    tracing::debug!(sid = %c.sid, nick = %actor.nick, %jid, "xmpp: session started");
    c.session = Some(Session {
        actor,
        shared: started.shared,
        inbox: started.inbox,
        rooms: BTreeMap::new(),
        pending: HashMap::new(),
        order: VecDeque::new(),
        away: None,
    });
    Ok(())
}

/// Publishes an intent and waits for the broker's confirm. Returns its id
/// if the broker took it.
pub async fn intent(c: &mut Conn, body: IntentBody) -> Option<String> {
    let s = c.session.as_ref()?;
    sessions::publish_intent(&c.gw, &s.actor, body).await
}

/// Sets or clears the session's away message in every room it is in (IRC
/// AWAY), when it changed.
pub async fn set_away(c: &mut Conn, message: Option<String>) {
    let Some(s) = c.session.as_mut() else {
        return;
    };
    if s.away == message {
        return;
    }
    s.away = message.clone();
    let rooms: Vec<String> = s.rooms.keys().cloned().collect();
    let shared = s.shared.clone();
    {
        let mut st = shared.state.lock().await;
        st.record.away = message.clone();
        if let Err(e) = c.gw.registry.put_session(&st.record).await {
            tracing::warn!(error = %e, "xmpp: updating the session record failed");
        }
    }
    everywhere(c, rooms, MemberChange::Away { message }).await;
}

async fn everywhere(c: &mut Conn, rooms: Vec<String>, change: MemberChange) {
    if let Some(s) = &c.session {
        sessions::member_change_everywhere(&c.gw, &s.actor, rooms, change).await;
    }
}

/// Keeps the NATS record's room list in step with the joined rooms.
pub async fn note_rooms(c: &Conn) {
    let Some(s) = &c.session else {
        return;
    };
    let names: Vec<String> = s
        .rooms
        .values()
        .filter(|o| o.joined)
        .map(|o| o.name.clone())
        .collect();
    let mut st = s.shared.state.lock().await;
    st.record.rooms = names;
    if let Err(e) = c.gw.registry.put_session(&st.record).await {
        tracing::warn!(error = %e, "xmpp: updating the session record failed");
    }
}

/// Ends the session: QUIT in every room (confirmed), then the nick and the
/// record go.
pub async fn end(c: &mut Conn, reason: &str) {
    let Some(rooms) = c
        .session
        .as_ref()
        .map(|s| s.rooms.keys().cloned().collect::<Vec<_>>())
    else {
        return;
    };
    let change = MemberChange::Quit {
        reason: reason.to_string(),
    };
    everywhere(c, rooms, change).await;
    if let Some(s) = c.session.take() {
        drop(s.inbox);
        sessions::end(&c.gw, &s.shared, reason).await;
    }
}

/// Whether the session is in (or joining) `room`.
pub fn in_room(c: &Conn, room: &str) -> bool {
    c.session
        .as_ref()
        .is_some_and(|s| s.rooms.contains_key(&fold(room)))
}
