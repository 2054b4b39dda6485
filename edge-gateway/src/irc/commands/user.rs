//! Changes to the user itself after registration: NICK, AWAY and SETNAME
//! (IRCv3 `setname`). All are member changes: one `Member` intent per room
//! the session is in, all sharing one event id so that someone sharing
//! several of those rooms is shown the change once.

use bus::names::fold;
use bus::new_id;
use bus::schema::{IntentBody, MemberChange};

use crate::irc::caps::Cap;
use crate::irc::client::Client;
use crate::irc::line::{truncated, Message};
use crate::irc::numeric::*;
use crate::irc::validate::{valid_nick, AWAYLEN, REALNAMELEN};
use crate::registry::RegistryError;

/// Publishes `change` to every room the session is in.
pub(super) async fn announce(c: &mut Client, change: MemberChange) {
    let event = new_id();
    let rooms: Vec<String> = c.rooms().cloned().collect();
    for room in rooms {
        c.intent(IntentBody::Member {
            room,
            event: event.clone(),
            change: change.clone(),
        })
        .await;
    }
}

/// NICK after registration: claim the new nick, update the record,
/// release the old claim, tell the client, then the rooms.
pub async fn nick(c: &mut Client, m: &Message) {
    let Some(new) = m.params.first().filter(|n| !n.is_empty()).cloned() else {
        c.send(c.num().n(ERR_NONICKNAMEGIVEN).text("No nickname given"));
        return;
    };
    if !valid_nick(&new) || super::nickserv::is_nickserv(&new) || super::chanserv::is_chanserv(&new)
    {
        c.send(c.num().erroneous_nick(&new));
        return;
    }
    let old = c.nick().to_string();
    if new == old {
        return;
    }
    let Some(session) = &c.session else {
        return;
    };
    let (sid, shared) = (session.sid.clone(), session.shared.clone());
    let gw = c.gw.clone();
    {
        let mut st = shared.state.lock().await;
        if fold(&new) == fold(&old) {
            // Same claim, other case: rewrite it with the new spelling.
            match gw.registry.refresh_nick(&new, &sid, st.nick_rev).await {
                Ok(rev) => st.nick_rev = rev,
                Err(e) => {
                    tracing::warn!(error = %e, "re-spelling a nick claim failed");
                    drop(st);
                    c.bus_trouble();
                    return;
                }
            }
        } else {
            match gw.registry.claim_nick(&new, &sid).await {
                Ok(rev) => {
                    let old_rev = std::mem::replace(&mut st.nick_rev, rev);
                    if let Err(e) = gw.registry.release_nick(&old, old_rev).await {
                        tracing::warn!(error = %e, "releasing the old nick failed (it will age out)");
                    }
                }
                Err(RegistryError::NickInUse) => {
                    drop(st);
                    c.send(c.num().nick_in_use(&new));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a nick failed");
                    drop(st);
                    c.bus_trouble();
                    return;
                }
            }
        }
        if fold(&new) != fold(&old) {
            crate::sessions::remember(&gw, &st.record.actor).await;
        }
        st.record.actor.nick = new.clone();
        if let Err(e) = gw.registry.put_session(&st.record).await {
            tracing::warn!(error = %e, "updating the session record failed");
        }
    }
    c.send(
        Message::new("NICK")
            .with_source(c.source())
            .param(new.as_str()),
    );
    // The intents still carry the old identity: the router shows `old NICK new`.
    announce(c, MemberChange::Nick { new: new.clone() }).await;
    c.nick = Some(new);
    crate::irc::reservation::check(c).await;
}

/// `AWAY :message` sets, `AWAY` clears.
pub async fn away(c: &mut Client, m: &Message) {
    let message = m
        .params
        .first()
        .filter(|t| !t.is_empty())
        .map(|t| truncated(t, AWAYLEN));
    let stored = message.clone();
    c.update_record(|r| r.away = stored).await;
    match &message {
        Some(_) => c.send(
            c.num()
                .n(RPL_NOWAWAY)
                .text("You have been marked as being away"),
        ),
        None => c.send(
            c.num()
                .n(RPL_UNAWAY)
                .text("You are no longer marked as being away"),
        ),
    }
    announce(c, MemberChange::Away { message }).await;
}

/// After the session's own JOIN: the join intent carries neither the away
/// state nor bot mode (the router's new member starts "here", not a bot),
/// so the gateway restates them to that one room. The router records them
/// (WHO, NAMES) and, for away, every gateway's members with `away-notify`
/// see the AWAY right after the JOIN, as that spec asks.
pub async fn restate_after_join(c: &mut Client, room: &str) {
    let Some(session) = &c.session else {
        return;
    };
    let (away, bot) = {
        let st = session.shared.state.lock().await;
        (st.record.away.clone(), st.record.bot)
    };
    let mut changes = Vec::new();
    if away.is_some() {
        changes.push(MemberChange::Away { message: away });
    }
    if bot {
        changes.push(MemberChange::Bot { bot });
    }
    for change in changes {
        c.intent(IntentBody::Member {
            room: room.to_string(),
            event: new_id(),
            change,
        })
        .await;
    }
}

/// An operator changed the host this client is shown with (`CHGHOST`,
/// delivered to the session queue): 396 and, with `chghost`, its own
/// CHGHOST to the client; the session record; then the rooms.
pub async fn change_host(c: &mut Client, host: &str) {
    if c.host == host {
        return;
    }
    let before = c.source();
    c.host = host.to_string();
    let shown = host.to_string();
    c.update_record(|r| r.actor.host = shown).await;
    c.send(
        c.num()
            .n(RPL_HOSTHIDDEN)
            .param(host)
            .text("is now your displayed host"),
    );
    if c.caps.has(Cap::Chghost) {
        c.send(
            Message::new("CHGHOST")
                .with_source(before)
                .param(c.user())
                .param(host),
        );
    }
    let change = MemberChange::Host {
        user: c.user().to_string(),
        host: host.to_string(),
    };
    announce(c, change).await;
}

/// `SETNAME :<realname>` (IRCv3 `setname`): changes the realname shown in
/// WHOIS (311), WHO and extended-join. The client itself is told with its
/// own `SETNAME` (if it negotiated the cap), its channels by the router's
/// realname event. A realname that is empty or longer than `REALNAMELEN`
/// is refused, not truncated: the client asked for that exact text.
pub async fn setname(c: &mut Client, m: &Message) {
    let Some(realname) = m.params.first().cloned() else {
        c.send(c.num().need_more_params("SETNAME"));
        return;
    };
    if realname.trim().is_empty() || realname.len() > REALNAMELEN {
        c.fail("SETNAME", "INVALID_REALNAME", &[], "Realname is not valid");
        return;
    }
    c.realname = realname.clone();
    let stored = realname.clone();
    c.update_record(|r| r.actor.realname = stored).await;
    if c.caps.has(Cap::Setname) {
        c.send(
            Message::new("SETNAME")
                .with_source(c.source())
                .text(realname.as_str()),
        );
    }
    announce(c, MemberChange::Realname { realname }).await;
}
