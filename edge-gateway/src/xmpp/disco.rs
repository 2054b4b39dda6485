//! Service discovery (XEP-0030) that tells the truth: what the server, the
//! MUC service, each room (from the router's record in NATS) and the
//! user's own account support.

use bus::names::fold;
use bus::schema::RoomRecord;

use super::bind::{error, result};
use super::carbons::NS_CARBONS;
use super::conn::Conn;
use super::jid::{self, Jid};
use super::mam::{NS_DATA, NS_MAM};
use super::muc::{NS_MUC, NS_SID};
use super::register::NS_REGISTER;
use super::retract::NS_RETRACT;
use super::stanza_error::StanzaCondition;
use super::vcard::NS_VCARD;
use super::xml::Element;

pub const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_PING: &str = "urn:xmpp:ping";

/// Rooms listed by the MUC service's items, at most.
const MAX_ROOMS: usize = 500;

fn identity(category: &str, kind: &str, name: &str) -> Element {
    Element::new("identity", NS_INFO)
        .attr("category", category)
        .attr("type", kind)
        .attr("name", name)
}

fn features(mut q: Element, list: &[&str]) -> Element {
    for f in list {
        q = q.child(Element::new("feature", NS_INFO).attr("var", *f));
    }
    q
}

/// Where a disco request is addressed.
enum Entity {
    Server,
    Account,
    MucService,
    Room(String),
    Unknown,
}

fn entity(c: &Conn, iq: &Element) -> Entity {
    let domain = &c.xmpp.domain;
    let Some(to) = iq.get_attr("to") else {
        // No `to`: the user's own account (RFC 6120 §10.3.3).
        return Entity::Account;
    };
    let Some(j) = Jid::parse(to) else {
        return Entity::Unknown;
    };
    let own = c.jid.as_deref().and_then(Jid::parse).map(|j| j.bare());
    match (&j.local, &j.resource) {
        (None, None) if j.domain == *domain => Entity::Server,
        (None, None) if j.domain == jid::muc_domain(domain) => Entity::MucService,
        (Some(local), None) if j.domain == jid::muc_domain(domain) => {
            Entity::Room(fold(&jid::unescape_local(local)))
        }
        (Some(_), None) if Some(j.bare()) == own => Entity::Account,
        _ => Entity::Unknown,
    }
}

/// The disco node asking for one's reserved nick in a room.
const NODE_RESERVED_NICK: &str = "x-roomuser-item";

pub async fn info(c: &mut Conn, iq: &Element, q: &Element) {
    if q.get_attr("node") == Some(NODE_RESERVED_NICK) && matches!(entity(c, iq), Entity::Room(_)) {
        // XEP-0045 §7.12: the nick this user gets in every room is its
        // session's nick, so that is the reserved one.
        let nick = c.session.as_ref().map(|s| s.actor.nick.clone());
        let mut answer = Element::new("query", NS_INFO).attr("node", NODE_RESERVED_NICK);
        if let Some(nick) = nick {
            answer = answer.child(identity("conference", "text", &nick));
        }
        result(c, iq, Some(answer));
        return;
    }
    if q.get_attr("node").is_some() {
        error(c, iq, StanzaCondition::ItemNotFound);
        return;
    }
    let answer = Element::new("query", NS_INFO);
    let answer = match entity(c, iq) {
        Entity::Server => {
            let mut list = vec![NS_INFO, NS_ITEMS, NS_PING, NS_CARBONS, NS_VCARD];
            if c.xmpp.registration {
                list.push(NS_REGISTER);
            }
            features(answer.child(identity("server", "im", "chat")), &list)
        }
        Entity::Account => features(
            answer.child(identity("account", "registered", "")),
            &[NS_INFO, NS_MAM, NS_VCARD],
        ),
        Entity::MucService => features(
            answer.child(identity("conference", "text", "Rooms")),
            &[NS_INFO, NS_ITEMS, NS_MUC],
        ),
        Entity::Room(room) => match c.gw.registry.live_room(&room).await {
            Ok(Some(rec)) => room_info(answer, &rec),
            Ok(None) => return error(c, iq, StanzaCondition::ItemNotFound),
            Err(e) => {
                tracing::warn!(error = %e, "xmpp: reading a room record failed");
                return error(c, iq, StanzaCondition::InternalServerError);
            }
        },
        Entity::Unknown => return error(c, iq, StanzaCondition::ItemNotFound),
    };
    result(c, iq, Some(answer));
}

/// A room's identity and features, from the channel modes.
fn room_info(q: Element, rec: &RoomRecord) -> Element {
    let m = &rec.modes;
    let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    let list = [
        NS_INFO,
        NS_MUC,
        NS_MAM,
        NS_SID,
        // Occupants may retract their messages, moderators anyone's.
        NS_RETRACT,
        pick(m.secret, "muc_hidden", "muc_public"),
        pick(m.invite_only, "muc_membersonly", "muc_open"),
        pick(m.moderated, "muc_moderated", "muc_unmoderated"),
        pick(m.key.is_some(), "muc_passwordprotected", "muc_unsecured"),
        "muc_semianonymous",
        // A room ends when its last member leaves, as on IRC.
        "muc_temporary",
    ];
    let field = |var: &str, value: String| {
        Element::new("field", NS_DATA)
            .attr("var", var)
            .child(Element::new("value", NS_DATA).text(value))
    };
    let form = Element::new("x", NS_DATA)
        .attr("type", "result")
        .child(
            Element::new("field", NS_DATA)
                .attr("var", "FORM_TYPE")
                .attr("type", "hidden")
                .child(
                    Element::new("value", NS_DATA).text("http://jabber.org/protocol/muc#roominfo"),
                ),
        )
        .child(field(
            "muc#roominfo_occupants",
            rec.members.len().to_string(),
        ))
        .child(field(
            "muc#roominfo_subject",
            rec.topic
                .as_ref()
                .map(|t| t.text.clone())
                .unwrap_or_default(),
        ));
    features(q.child(identity("conference", "text", &rec.name)), &list).child(form)
}

pub async fn items(c: &mut Conn, iq: &Element, q: &Element) {
    if q.get_attr("node").is_some() {
        error(c, iq, StanzaCondition::ItemNotFound);
        return;
    }
    let domain = c.xmpp.domain.clone();
    let mut answer = Element::new("query", NS_ITEMS);
    match entity(c, iq) {
        Entity::Server => {
            answer = answer.child(
                Element::new("item", NS_ITEMS)
                    .attr("jid", jid::muc_domain(&domain))
                    .attr("name", "Rooms"),
            );
        }
        Entity::MucService => {
            let rooms = match c.gw.registry.rooms(MAX_ROOMS).await {
                Ok(rooms) => rooms,
                Err(e) => {
                    tracing::warn!(error = %e, "xmpp: listing rooms failed");
                    return error(c, iq, StanzaCondition::InternalServerError);
                }
            };
            let mut rooms: Vec<RoomRecord> =
                rooms.into_iter().filter(|r| !r.modes.secret).collect();
            rooms.sort_by(|a, b| a.room.cmp(&b.room));
            for r in rooms {
                answer = answer.child(
                    Element::new("item", NS_ITEMS)
                        .attr("jid", jid::room_jid(&r.room, &domain))
                        .attr("name", r.name.as_str()),
                );
            }
        }
        // Occupants are not listed (XEP-0045 §6.5 allows an empty answer);
        // an account has no items.
        Entity::Room(_) | Entity::Account => {}
        Entity::Unknown => return error(c, iq, StanzaCondition::ItemNotFound),
    }
    result(c, iq, Some(answer));
}
