//! MUC moderation from XMPP (XEP-0045 §8–9, `muc#admin`), mapped onto the
//! router's channel modes and kicks, so it is the same act an IRC operator
//! performs and every member sees it in their protocol's words:
//!
//! | XMPP item                        | router intent            |
//! |----------------------------------|--------------------------|
//! | `nick` + `role="none"`           | KICK                     |
//! | `nick` + `role="moderator"`      | `+o nick`                |
//! | `nick` + `role="participant"`    | `-o` / `+v` as needed    |
//! | `nick` + `role="visitor"`        | `-o` / `-v` as needed    |
//! | `jid` + `affiliation="outcast"`  | `+b $a:<account>`, KICK  |
//! | `jid` + `affiliation="none"`     | `-b $a:<account>`        |
//!
//! Affiliations other than outcast have no lasting IRC form (no channel
//! registration yet), so setting them is `feature-not-implemented`. The
//! outcast list is read from the ban list (account bans only: other masks
//! are no JID). One item per request: the iq is answered when the router
//! has applied it (the room's event) or refused it (its error).

use bus::names::fold;
use bus::schema::{IntentBody, ModeChange, Reply};

use super::bind::{error, result};
use super::conn::Conn;
use super::jid::{self, Jid};
use super::muc;
use super::roster::{account_of, bare_jid};
use super::session::{self, Op};
use super::stanza_error::StanzaCondition;
use super::xml::Element;

pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const ACCOUNT_BAN: &str = "$a:";

fn mode(add: bool, mode: char, arg: &str) -> ModeChange {
    ModeChange {
        add,
        mode,
        arg: Some(arg.to_string()),
    }
}

/// The room an admin iq is for (`room@conference.<domain>`, no resource).
fn room_of(c: &Conn, iq: &Element) -> Option<String> {
    let to = Jid::parse(iq.get_attr("to")?)?;
    if to.domain != jid::muc_domain(&c.xmpp.domain) || to.resource.is_some() {
        return None;
    }
    Some(jid::unescape_local(to.local.as_deref()?))
}

pub async fn on_iq(c: &mut Conn, iq: &Element, q: &Element) {
    let Some(room) = room_of(c, iq) else {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    };
    if !session::in_room(c, &room) {
        // Only occupants moderate (XEP-0045 §8: a moderator is an occupant).
        error(c, iq, StanzaCondition::NotAcceptable);
        return;
    }
    let items: Vec<&Element> = q
        .elements()
        .filter(|e| e.is("item", NS_MUC_ADMIN))
        .collect();
    let [item] = items.as_slice() else {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    };
    match iq.get_attr("type") {
        Some("get") => get(c, iq, &room, item).await,
        _ => set(c, iq, &room, item).await,
    }
}

async fn set(c: &mut Conn, iq: &Element, room: &str, item: &Element) {
    let reason = item
        .find("reason", NS_MUC_ADMIN)
        .map(|r| r.text_content())
        .filter(|r| !r.is_empty());
    let mut intents = Vec::new();
    if let (Some(nick), Some(role)) = (item.get_attr("nick"), item.get_attr("role")) {
        let Some((op, voice)) = muc::occupant_flags(c, room, nick) else {
            error(c, iq, StanzaCondition::ItemNotFound);
            return;
        };
        let mut changes = Vec::new();
        match role {
            "none" => intents.push(IntentBody::Kick {
                room: room.to_string(),
                target: nick.to_string(),
                reason,
            }),
            "moderator" if !op => changes.push(mode(true, 'o', nick)),
            "participant" | "visitor" => {
                if op {
                    changes.push(mode(false, 'o', nick));
                }
                if role == "participant" && !voice {
                    changes.push(mode(true, 'v', nick));
                }
                if role == "visitor" && voice {
                    changes.push(mode(false, 'v', nick));
                }
            }
            "moderator" => {}
            _ => return error(c, iq, StanzaCondition::BadRequest),
        }
        if !changes.is_empty() {
            intents.push(IntentBody::Mode {
                room: room.to_string(),
                changes,
            });
        }
    } else if let (Some(target), Some(affiliation)) = (
        item.get_attr("jid").and_then(Jid::parse),
        item.get_attr("affiliation"),
    ) {
        let Some(account) = account_of(c, &target) else {
            error(c, iq, StanzaCondition::ItemNotFound);
            return;
        };
        let mask = format!("{ACCOUNT_BAN}{account}");
        match affiliation {
            "outcast" => {
                intents.push(IntentBody::Mode {
                    room: room.to_string(),
                    changes: vec![mode(true, 'b', &mask)],
                });
                for nick in muc::nicks_of_account(c, room, &account) {
                    intents.push(IntentBody::Kick {
                        room: room.to_string(),
                        target: nick,
                        reason: reason.clone(),
                    });
                }
            }
            "none" => intents.push(IntentBody::Mode {
                room: room.to_string(),
                changes: vec![mode(false, 'b', &mask)],
            }),
            "member" | "admin" | "owner" => {
                return error(c, iq, StanzaCondition::FeatureNotImplemented)
            }
            _ => return error(c, iq, StanzaCondition::BadRequest),
        }
    } else {
        error(c, iq, StanzaCondition::BadRequest);
        return;
    }
    if intents.is_empty() {
        // Already so: nothing for the router to do.
        result(c, iq, None);
        return;
    }
    // The first intent answers the iq; the rest (kicks after a ban) follow.
    let folded = fold(room);
    for (n, body) in intents.into_iter().enumerate() {
        let Some(id) = session::intent(c, body).await else {
            if n == 0 {
                error(c, iq, StanzaCondition::InternalServerError);
            }
            return;
        };
        let op = if n == 0 {
            Op::Admin { iq: iq.clone() }
        } else {
            Op::Other {
                room: folded.clone(),
            }
        };
        if let Some(s) = c.session.as_mut() {
            s.remember(id, op);
        }
    }
}

/// Lists: outcasts from the ban list, moderators and participants from
/// the occupants.
async fn get(c: &mut Conn, iq: &Element, room: &str, item: &Element) {
    match (item.get_attr("affiliation"), item.get_attr("role")) {
        (Some("outcast"), _) => {
            let body = IntentBody::Mode {
                room: room.to_string(),
                changes: vec![ModeChange {
                    add: true,
                    mode: 'b',
                    arg: None,
                }],
            };
            match session::intent(c, body).await {
                Some(id) => {
                    if let Some(s) = c.session.as_mut() {
                        s.remember(id, Op::Admin { iq: iq.clone() });
                    }
                }
                None => error(c, iq, StanzaCondition::InternalServerError),
            }
        }
        (None, Some(role @ ("moderator" | "participant"))) => {
            let mut q = Element::new("query", NS_MUC_ADMIN);
            for (nick, op) in muc::occupant_roles(c, room) {
                if op == (role == "moderator") {
                    q = q.child(
                        Element::new("item", NS_MUC_ADMIN)
                            .attr("nick", nick)
                            .attr("role", role),
                    );
                }
            }
            result(c, iq, Some(q));
        }
        (Some("member" | "admin" | "owner"), _) => {
            // Nothing lasting to list without channel registration.
            result(c, iq, Some(Element::new("query", NS_MUC_ADMIN)));
        }
        _ => error(c, iq, StanzaCondition::BadRequest),
    }
}

/// The router's answer to an admin request.
pub fn on_reply(c: &mut Conn, iq: &Element, reply: &Reply) {
    match reply {
        Reply::Error { code, .. } => error(c, iq, StanzaCondition::of(*code)),
        Reply::BanList { bans, .. } => {
            let domain = c.xmpp.domain.clone();
            let mut q = Element::new("query", NS_MUC_ADMIN);
            for ban in bans {
                if let Some(account) = ban.mask.strip_prefix(ACCOUNT_BAN) {
                    if account.contains(['*', '?']) {
                        continue;
                    }
                    q = q.child(
                        Element::new("item", NS_MUC_ADMIN)
                            .attr("affiliation", "outcast")
                            .attr("jid", bare_jid(account, &domain)),
                    );
                }
            }
            result(c, iq, Some(q));
        }
        _ => result(c, iq, None),
    }
}
