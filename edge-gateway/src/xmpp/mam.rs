//! Message Archive Management (XEP-0313, `urn:xmpp:mam:2`) with Result Set
//! Management (XEP-0059), answered from the history service: a room's
//! archive at the room's JID, one-to-one archives at the user's own JID
//! with a `with` filter. Archive ids are the message ids (IRC `msgid`,
//! `<stanza-id>`), so paging by id works across protocols.
//!
//! RSM maps onto the history selectors: `<before/>` is the newest page,
//! `<before>id</before>` the page before it, `<after>id</after>` the page
//! after it, and no anchor pages forward from the start (or from `start`).
//! One more item than asked is fetched to tell whether the page is the
//! last (`complete`).

use bus::history::{Anchor, HistoryError, HistoryItem, HistoryQuery, HistoryTarget, Selector};
use bus::names::fold;
use bus::schema::{EventBody, MessageKind};

use super::conn::Conn;
use super::history::{self, Purpose};
use super::jid::{self, Jid};
use super::muc::{body_of, stamp, NS_DELAY};
use super::stanza_error::{self, error_element, StanzaCondition};
use super::xml::{Element, NS_CLIENT};

pub const NS_MAM: &str = "urn:xmpp:mam:2";
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_DATA: &str = "jabber:x:data";

/// Page size when the client gives no `<max>`, and the most it may ask.
const DEFAULT_MAX: u32 = 50;
const MAX_MAX: u32 = 250;

/// A query in flight.
#[derive(Debug, Clone)]
pub struct Query {
    iq_id: String,
    /// The iq's `to` (the archive's JID), echoed as `from`.
    archive: Option<String>,
    queryid: Option<String>,
    /// Rooms: the folded room name; direct archives: `None`.
    room: Option<String>,
    max: u32,
    /// The page ends at its anchor (`<before>`): an extra item is an
    /// older one.
    backwards: bool,
}

/// XEP-0082 date-time → ms since the epoch.
fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

fn field(form: Option<&Element>, var: &str) -> Option<String> {
    form?
        .elements()
        .find(|f| f.name == "field" && f.get_attr("var") == Some(var))?
        .find("value", NS_DATA)
        .map(|v| v.text_content())
        .filter(|v| !v.trim().is_empty())
}

fn iq_error(c: &mut Conn, iq: &Element, condition: StanzaCondition, text: Option<&str>) {
    let from = iq.get_attr("to").unwrap_or(&c.xmpp.domain).to_string();
    c.push(
        Element::new("iq", NS_CLIENT)
            .attr("type", "error")
            .attr_opt("id", iq.get_attr("id"))
            .attr("from", from)
            .attr_opt("to", c.jid.as_deref())
            .child(error_element(NS_CLIENT, condition, text)),
    );
}

/// `<iq type="get"><query xmlns="urn:xmpp:mam:2"/></iq>`: the search form.
pub fn form(c: &mut Conn, iq: &Element) {
    let fields = [
        ("FORM_TYPE", "hidden"),
        ("with", "jid-single"),
        ("start", "text-single"),
        ("end", "text-single"),
    ];
    let mut x = Element::new("x", NS_DATA).attr("type", "form");
    for (var, kind) in fields {
        let mut f = Element::new("field", NS_DATA)
            .attr("var", var)
            .attr("type", kind);
        if var == "FORM_TYPE" {
            f = f.child(Element::new("value", NS_DATA).text(NS_MAM));
        }
        x = x.child(f);
    }
    super::bind::result(c, iq, Some(Element::new("query", NS_MAM).child(x)));
}

/// `<iq type="set"><query xmlns="urn:xmpp:mam:2">`: a query.
pub async fn query(c: &mut Conn, iq: &Element, q: &Element) {
    let domain = c.xmpp.domain.clone();
    let form = q.find("x", NS_DATA);
    let rsm = q.find("set", NS_RSM);
    let max = rsm
        .and_then(|s| s.find("max", NS_RSM))
        .and_then(|m| m.text_content().trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_MAX)
        .min(MAX_MAX);
    let before = rsm
        .and_then(|s| s.find("before", NS_RSM))
        .map(|b| b.text_content());
    let after = rsm
        .and_then(|s| s.find("after", NS_RSM))
        .map(|b| b.text_content())
        .filter(|a| !a.trim().is_empty());
    let start = field(form, "start").map(|s| parse_time(&s));
    let end = field(form, "end").map(|s| parse_time(&s));
    if matches!(start, Some(None)) || matches!(end, Some(None)) {
        iq_error(
            c,
            iq,
            StanzaCondition::BadRequest,
            Some("start and end are XEP-0082 date-times"),
        );
        return;
    }
    let (start, end) = (start.flatten(), end.flatten());
    // The archive: a room's JID, or our own (absent `to`).
    let archive = iq.get_attr("to").map(str::to_string);
    let to = archive.as_deref().and_then(Jid::parse);
    let own = c.jid.as_deref().and_then(Jid::parse).map(|j| j.bare());
    let (target, room) = match &to {
        Some(j)
            if j.domain == jid::muc_domain(&domain)
                && j.local.is_some()
                && j.resource.is_none() =>
        {
            let name = jid::unescape_local(j.local.as_deref().unwrap_or_default());
            (
                HistoryTarget::Room { room: name.clone() },
                Some(fold(&name)),
            )
        }
        Some(j) if Some(j.bare()) != own || j.resource.is_some() => {
            iq_error(c, iq, StanzaCondition::ItemNotFound, None);
            return;
        }
        _ => {
            let with = field(form, "with").and_then(|w| Jid::parse(&w));
            let Some(peer) = with.filter(|w| w.domain == domain).and_then(|w| w.local) else {
                let text = Some("this archive is searched one conversation at a time: give `with`");
                iq_error(c, iq, StanzaCondition::FeatureNotImplemented, text);
                return;
            };
            (
                HistoryTarget::Direct {
                    peer: jid::unescape_local(&peer),
                },
                None,
            )
        }
    };
    let ms = |t: i64, d: i64| Anchor::Time(t + d);
    let (selector, backwards) = match (before, after) {
        (Some(b), _) if !b.trim().is_empty() => (
            Selector::Before {
                anchor: Anchor::Id(b.trim().into()),
            },
            true,
        ),
        (Some(_), _) => match end {
            Some(e) => (Selector::Before { anchor: ms(e, 1) }, true),
            None => (
                Selector::Latest {
                    after: start.map(|s| ms(s, -1)),
                },
                true,
            ),
        },
        (None, Some(a)) => (
            Selector::After {
                anchor: Anchor::Id(a.trim().into()),
            },
            false,
        ),
        (None, None) => match (start, end) {
            (Some(s), Some(e)) => (
                Selector::Between {
                    start: ms(s, -1),
                    end: ms(e, 1),
                },
                false,
            ),
            (Some(s), None) => (Selector::After { anchor: ms(s, -1) }, false),
            _ => (
                Selector::After {
                    anchor: Anchor::Seq(0),
                },
                false,
            ),
        },
    };
    let query = Query {
        iq_id: iq.get_attr("id").unwrap_or_default().to_string(),
        archive,
        queryid: q.get_attr("queryid").map(str::to_string),
        room,
        max,
        backwards,
    };
    let body = HistoryQuery::Fetch {
        target,
        selector,
        limit: max + 1,
        events: false,
    };
    if !history::request(c, body, Purpose::Mam(query.clone())).await {
        failed(c, &query, None);
    }
}

/// The archive's answer: one `<result>` per message, then the `<fin>`.
pub fn answer(c: &mut Conn, q: &Query, mut items: Vec<HistoryItem>) {
    let complete = items.len() <= q.max as usize;
    if !complete {
        if q.backwards {
            items.remove(0);
        } else {
            items.pop();
        }
    }
    let me = c.jid.clone().unwrap_or_default();
    let own = me.split('/').next().unwrap_or_default().to_string();
    for item in &items {
        let Some(inner) = archived(c, q, item, &own) else {
            continue;
        };
        let result = Element::new("result", NS_MAM)
            .attr_opt("queryid", q.queryid.as_deref())
            .attr("id", item.id.as_str())
            .child(
                Element::new("forwarded", NS_FORWARD)
                    .child(Element::new("delay", NS_DELAY).attr("stamp", stamp(item.at)))
                    .child(inner),
            );
        c.push(
            Element::new("message", NS_CLIENT)
                .attr_opt("from", q.archive.as_deref())
                .attr("to", me.as_str())
                .attr("id", bus::new_id())
                .child(result),
        );
    }
    let mut set = Element::new("set", NS_RSM);
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        set = set
            .child(Element::new("first", NS_RSM).text(first.id.as_str()))
            .child(Element::new("last", NS_RSM).text(last.id.as_str()));
    } else {
        set = set.child(Element::new("count", NS_RSM).text("0"));
    }
    let fin = Element::new("fin", NS_MAM)
        .attr_opt("queryid", q.queryid.as_deref())
        .attr("complete", if complete { "true" } else { "false" })
        .child(set);
    c.push(
        Element::new("iq", NS_CLIENT)
            .attr("type", "result")
            .attr("id", q.iq_id.as_str())
            .attr_opt("from", q.archive.as_deref())
            .attr("to", me)
            .child(fin),
    );
}

/// One archived message as it was sent.
fn archived(c: &Conn, q: &Query, item: &HistoryItem, own: &str) -> Option<Element> {
    let EventBody::Message { kind, text, .. } = &item.body else {
        return None;
    };
    if *kind == MessageKind::Tagmsg {
        return None;
    }
    let domain = &c.xmpp.domain;
    let m = match &q.room {
        Some(room) => Element::new("message", NS_CLIENT)
            .attr("type", "groupchat")
            .attr("from", jid::occupant_jid(room, &item.from.nick, domain)),
        None => {
            let mine = item.from.account.is_some() && item.from.account == c.account;
            let peer = item.to.clone().unwrap_or_default();
            let (from, to) = if mine {
                (own.to_string(), jid::user_jid(&peer, domain))
            } else {
                (jid::user_jid(&item.from.nick, domain), own.to_string())
            };
            Element::new("message", NS_CLIENT)
                .attr("type", "chat")
                .attr("from", from)
                .attr("to", to)
        }
    };
    Some(
        m.attr("id", item.id.as_str())
            .child(Element::new("body", NS_CLIENT).text(body_of(text))),
    )
}

/// The query failed: the iq's error.
pub fn failed(c: &mut Conn, q: &Query, code: Option<HistoryError>) {
    let condition = match code {
        Some(HistoryError::InvalidTarget) if q.room.is_some() => StanzaCondition::Forbidden,
        Some(HistoryError::InvalidTarget) => StanzaCondition::ItemNotFound,
        Some(HistoryError::Malformed) => StanzaCondition::BadRequest,
        _ => StanzaCondition::InternalServerError,
    };
    let iq = Element::new("iq", NS_CLIENT)
        .attr("id", q.iq_id.as_str())
        .attr_opt("to", q.archive.as_deref());
    let from = c.xmpp.domain.clone();
    let me = c.jid.clone();
    c.push(stanza_error::reply(&iq, condition, &from, me.as_deref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_xep_0082() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01.250+00:00"), Some(1250));
        assert_eq!(parse_time("yesterday"), None);
    }
}
