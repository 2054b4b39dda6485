//! Room semantics as pure functions: room state + intent → effects.
//!
//! Nothing here does I/O. A handler mutates the room (or creates or empties
//! it through the `Option` slot) and returns an [`Outcome`]: the ordered
//! effects the partition loop must carry out (bind, publish an event, a
//! reply, a direct delivery) and the gateways that lost their last member
//! here (candidates for an unbind at the end of the batch). Keeping the I/O
//! out makes every rule testable without a broker, and makes replays
//! deterministic: the same state and intent give the same events.

mod alert;
mod chanserv;
mod expire;
mod invite;
mod join;
mod kick;
mod member;
mod message;
mod mode;
mod names;
mod part;
mod redact;
mod topic;

#[cfg(test)]
pub mod testing;

pub use expire::{expired, expiry_intent};

use bus::schema::{
    Direct, ErrorCode, EventBody, Intent, IntentBody, Reply, RoomEvent, SessionReply,
    SCHEMA_VERSION,
};

use crate::registered::Durable;
use crate::room::{Husk, Room};

/// One thing the partition loop must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Bind `gateway.<gateway>` to the room's key, and wait for it, before
    /// anything after it is published. If the gateway queue no longer
    /// exists, the loop undoes the intent (the joiner's gateway is gone).
    Bind { gateway: String },
    /// Publish a room event to `chat.rooms`.
    Event(RoomEvent),
    /// Publish a reply to the gateway queue of the session it answers.
    Reply {
        gateway: String,
        reply: SessionReply,
    },
    /// Publish a direct delivery to one session's queue.
    Direct { sid: String, direct: Direct },
}

/// What applying one intent (or one expiry sweep) produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    /// Gateways whose member count in the room went to zero.
    pub emptied: Vec<String>,
    /// The room emptied (its slot is now `None`): what remains of it, which
    /// the router keeps and stores as the room's husk.
    pub ended: Option<Box<Husk>>,
    /// Why an intent that answers nobody produced nothing (an alert
    /// dropped: no such room, banned…), for the partition's metrics and
    /// log. `None` when it did something, or answered why not.
    pub dropped: Option<&'static str>,
}

impl Outcome {
    fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn event(&mut self, event: RoomEvent) {
        self.effects.push(Effect::Event(event));
    }

    /// An answer to the intent's sender.
    fn reply(&mut self, intent: &Intent, body: Reply) {
        self.effects.push(Effect::Reply {
            gateway: intent.actor.gateway.clone(),
            reply: SessionReply {
                v: SCHEMA_VERSION,
                sid: intent.actor.sid.clone(),
                intent: intent.id.clone(),
                body,
            },
        });
    }

    /// A refusal with an empty detail.
    fn error(&mut self, intent: &Intent, code: ErrorCode, target: &str) {
        self.error_detail(intent, code, target, "");
    }

    fn error_detail(&mut self, intent: &Intent, code: ErrorCode, target: &str, detail: &str) {
        let body = Reply::Error {
            code,
            target: target.to_string(),
            detail: detail.to_string(),
        };
        self.reply(intent, body);
    }

    /// The events this outcome publishes.
    #[cfg(test)]
    pub fn events(&self) -> impl Iterator<Item = &RoomEvent> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Event(ev) => Some(ev),
            _ => None,
        })
    }
}

/// The metric label of an intent's operation.
pub fn op_name(body: &IntentBody) -> &'static str {
    match body {
        IntentBody::Join { .. } => "join",
        IntentBody::Part { .. } => "part",
        IntentBody::Message { .. } => "message",
        IntentBody::Topic { .. } => "topic",
        IntentBody::Names { .. } => "names",
        IntentBody::Who { .. } => "who",
        IntentBody::Mode { .. } => "mode",
        IntentBody::Kick { .. } => "kick",
        IntentBody::Invite { .. } => "invite",
        IntentBody::Member { .. } => "member",
        IntentBody::Redact { .. } => "redact",
        IntentBody::ChanServ { .. } => "chanserv",
        IntentBody::Alert { .. } => "alert",
    }
}

/// Whether applying `intent` may change the durable state of a registered
/// room (registration, topic, modes, bans): the rooms compare that state
/// before and after such intents only (see [`crate::registered::change`]).
pub fn may_change_durable(intent: &Intent) -> bool {
    matches!(
        intent.body,
        IntentBody::Topic { topic: Some(_), .. }
            | IntentBody::Mode { .. }
            | IntentBody::ChanServ { .. }
    )
}

/// What a handler may need besides the room's live state.
pub struct Context<'a> {
    /// What an earlier room of that name left, if the slot is empty: a room
    /// created now continues its counters.
    pub husk: Option<&'a Husk>,
    /// The room's durable state if it is registered, also while it has no
    /// live state: a room created now starts from it, and ChanServ works on
    /// it (INFO, ACCESS, DROP of a room nobody is in).
    pub durable: &'a mut Option<Durable>,
    /// Whether the partition's registrations are known (loaded from
    /// PostgreSQL). Until they are, ChanServ answers that it is unavailable
    /// rather than deciding on a partial view.
    pub registry: bool,
}

/// Whether applying `intent` may need a bind (a join by a gateway with no
/// member in the room yet). The loop keeps a copy of the room in that case
/// so it can undo the join if the gateway turns out to be gone.
pub fn may_bind(slot: &Option<Room>, intent: &Intent) -> bool {
    matches!(intent.body, IntentBody::Join { .. })
        && slot
            .as_ref()
            .is_none_or(|r| r.gateway_count(&intent.actor.gateway) == 0)
}

/// Applies one intent to its room (`slot` is `None` if the room does not
/// exist; a handler may create or empty it), with what else is known of it
/// (`ctx`). `now` is the router's clock.
pub fn apply(slot: &mut Option<Room>, ctx: Context<'_>, intent: &Intent, now: i64) -> Outcome {
    let mut out = Outcome::default();
    match &intent.body {
        IntentBody::Join { room, key } => {
            let known = join::Known {
                husk: ctx.husk,
                durable: ctx.durable.as_ref(),
            };
            join::join(slot, known, intent, room, key.as_deref(), now, &mut out)
        }
        IntentBody::Part { room, reason } => part::part(slot, intent, room, reason, now, &mut out),
        IntentBody::Message {
            room,
            kind,
            text,
            tags,
        } => message::message(slot, intent, room, *kind, text, tags, now, &mut out),
        IntentBody::Topic { room, topic } => {
            topic::topic(slot, intent, room, topic.as_deref(), now, &mut out)
        }
        IntentBody::Names { room } => names::names(slot, intent, room, &mut out),
        IntentBody::Who { room } => names::who(slot, intent, room, &mut out),
        IntentBody::Mode { room, changes } => {
            mode::mode(slot, intent, room, changes, now, &mut out)
        }
        IntentBody::Kick {
            room,
            target,
            reason,
        } => kick::kick(slot, intent, room, target, reason, now, &mut out),
        IntentBody::Invite { room, target } => {
            invite::invite(slot, intent, room, target, now, &mut out)
        }
        IntentBody::Member {
            room: _,
            event,
            change,
        } => member::member(slot, intent, event, change, now, &mut out),
        IntentBody::Redact {
            room,
            msgid,
            mseq,
            own,
            reason,
        } => {
            let r = redact::Redaction {
                msgid,
                mseq: *mseq,
                own: *own,
                reason,
            };
            redact::redact(slot, intent, room, r, now, &mut out)
        }
        IntentBody::ChanServ { room, command } => chanserv::chanserv(
            slot,
            ctx.durable,
            ctx.registry,
            intent,
            room,
            command,
            now,
            &mut out,
        ),
        IntentBody::Alert {
            room: _,
            text,
            severity,
            source,
            link,
        } => {
            let fields = alert::AlertFields {
                text,
                severity: severity.as_deref(),
                source,
                link: link.as_deref(),
            };
            alert::alert(slot, intent, fields, now, &mut out)
        }
    }
    out
}

/// Removes a member whose leave event was just emitted: notes its gateway
/// for an unbind if it was the last one there, and if the room is now
/// empty, takes it out of the slot and leaves its husk in the outcome.
fn remove_and_maybe_empty(slot: &mut Option<Room>, sid: &str, out: &mut Outcome) {
    let Some(room) = slot.as_mut() else { return };
    if let Some((member, emptied)) = room.remove_member(sid) {
        if emptied {
            out.emptied.push(member.actor.gateway);
        }
    }
    if room.is_empty() {
        out.ended = slot.take().map(|room| Box::new(room.into_husk()));
    }
}

/// The room an intent names, if it exists; otherwise answers NoSuchChannel.
fn existing<'a>(
    slot: &'a mut Option<Room>,
    intent: &Intent,
    name: &str,
    out: &mut Outcome,
) -> Option<&'a mut Room> {
    if slot.is_none() {
        out.error(intent, ErrorCode::NoSuchChannel, name);
    }
    slot.as_mut()
}

/// The room, if it exists and the actor is a member; otherwise the matching
/// refusal (NoSuchChannel, NotOnChannel) is answered.
fn as_member<'a>(
    slot: &'a mut Option<Room>,
    intent: &Intent,
    name: &str,
    out: &mut Outcome,
) -> Option<&'a mut Room> {
    let room = existing(slot, intent, name, out)?;
    if !room.is_member(&intent.actor.sid) {
        out.error(intent, ErrorCode::NotOnChannel, name);
        return None;
    }
    Some(room)
}

/// Like [`as_member`], and the actor must be an operator of the room
/// (ChanOpPrivsNeeded otherwise).
fn as_op<'a>(
    slot: &'a mut Option<Room>,
    intent: &Intent,
    name: &str,
    out: &mut Outcome,
) -> Option<&'a mut Room> {
    let room = as_member(slot, intent, name, out)?;
    if !room.is_op(&intent.actor.sid) {
        out.error(intent, ErrorCode::ChanOpPrivsNeeded, name);
        return None;
    }
    Some(room)
}

/// The event body used when a member leaves by quitting (also by expiry).
fn quit_body(reason: &str, event: &str) -> EventBody {
    EventBody::Quit {
        reason: reason.to_string(),
        event: event.to_string(),
    }
}
