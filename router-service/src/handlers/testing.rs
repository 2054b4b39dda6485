//! Helpers shared by the handler tests: actors, intents and outcome probes.

use bus::schema::{
    Actor, ErrorCode, Intent, IntentBody, MemberRecord, ModeChange, Reply, SCHEMA_VERSION,
};

use super::{apply, Context, Effect, Outcome};
use crate::room::Room;

/// An actor whose nick is its sid (so tests can name members by either).
pub fn actor(sid: &str, gateway: &str) -> Actor {
    Actor {
        sid: sid.into(),
        gateway: gateway.into(),
        nick: sid.into(),
        user: format!("u{sid}"),
        host: "10.0.0.1".into(),
        realname: format!("Real {sid}"),
        account: None,
    }
}

pub fn member(actor: Actor) -> MemberRecord {
    MemberRecord {
        actor,
        op: false,
        voice: false,
        away: None,
        bot: false,
        joined_at: 0,
    }
}

pub fn intent(id: &str, actor: &Actor, body: IntentBody) -> Intent {
    Intent {
        v: SCHEMA_VERSION,
        id: id.into(),
        at: 0,
        actor: actor.clone(),
        body,
        done: false,
    }
}

/// Applies an intent over `husk` (a room not registered, the registry
/// loaded).
pub fn apply_over(
    slot: &mut Option<Room>,
    husk: Option<&crate::room::Husk>,
    intent: &Intent,
    now: i64,
) -> Outcome {
    let ctx = Context {
        husk,
        durable: &mut None,
        registry: true,
    };
    apply(slot, ctx, intent, now)
}

/// Applies an intent at time 1000 with a fresh id.
pub fn run(slot: &mut Option<Room>, actor: &Actor, body: IntentBody) -> Outcome {
    let id = bus::new_id();
    let ctx = Context {
        husk: None,
        durable: &mut None,
        registry: true,
    };
    apply(slot, ctx, &intent(&id, actor, body), 1000)
}

pub fn join(slot: &mut Option<Room>, actor: &Actor, room: &str) -> Outcome {
    run(
        slot,
        actor,
        IntentBody::Join {
            room: room.into(),
            key: None,
        },
    )
}

pub fn mode(
    slot: &mut Option<Room>,
    actor: &Actor,
    room: &str,
    changes: &[(bool, char, Option<&str>)],
) -> Outcome {
    let changes = changes
        .iter()
        .map(|(add, mode, arg)| ModeChange {
            add: *add,
            mode: *mode,
            arg: arg.map(str::to_string),
        })
        .collect();
    run(
        slot,
        actor,
        IntentBody::Mode {
            room: room.into(),
            changes,
        },
    )
}

/// The replies of an outcome, in order.
pub fn replies(out: &Outcome) -> Vec<&Reply> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply { reply, .. } => Some(&reply.body),
            _ => None,
        })
        .collect()
}

/// The error codes of an outcome, in order.
pub fn errors(out: &Outcome) -> Vec<ErrorCode> {
    replies(out)
        .into_iter()
        .filter_map(|r| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

/// A room "ops" created by `op` (gateway gw1) and joined by `others` (gw1).
pub fn room_with(op: &Actor, others: &[&Actor]) -> Option<Room> {
    let mut slot = None;
    join(&mut slot, op, "Ops");
    for a in others {
        join(&mut slot, a, "Ops");
    }
    slot
}
