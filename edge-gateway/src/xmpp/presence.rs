//! Presence (RFC 6121 §4) that is not for a room: the session's own
//! availability. `<show>away|xa|dnd</show>` (with its `<status>`) is the
//! session's away state, which IRC users see as AWAY in every shared room;
//! plain available presence clears it.
//!
//! Subscriptions and the roster are not kept yet, so presence addressed to
//! a person is not relayed.

use super::conn::Conn;
use super::jid::{self, Jid};
use super::muc;
use super::session;
use super::stanza_error::StanzaCondition;
use super::xml::{Element, NS_CLIENT};
use crate::irc::validate::AWAYLEN;

/// The away message an available presence stands for, if any.
pub fn away_of(e: &Element) -> Option<String> {
    let show = e.find("show", NS_CLIENT).map(|s| s.text_content());
    match show.as_deref().map(str::trim) {
        Some("away" | "xa" | "dnd") => {
            let status = e
                .find("status", NS_CLIENT)
                .map(|s| s.text_content())
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "Away".to_string());
            Some(status.chars().take(AWAYLEN).collect())
        }
        _ => None,
    }
}

pub async fn on_presence(c: &mut Conn, e: &Element) {
    let to = match e.get_attr("to") {
        None => None,
        Some(raw) => match Jid::parse(raw) {
            Some(j) => Some(j),
            None => {
                let from = c.xmpp.domain.clone();
                let me = c.jid.clone();
                let reply = super::stanza_error::reply(
                    e,
                    StanzaCondition::JidMalformed,
                    &from,
                    me.as_deref(),
                );
                c.push(reply);
                return;
            }
        },
    };
    match to {
        Some(to) if to.domain == jid::muc_domain(&c.xmpp.domain) => {
            muc::on_presence(c, e, &to).await
        }
        // Broadcast presence (no `to`, or to our own bare JID).
        None => {
            if e.get_attr("type").is_none() {
                session::set_away(c, away_of(e)).await;
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_maps_to_away() {
        let p = |show: &str, status: &str| {
            let mut e = Element::new("presence", NS_CLIENT);
            if !show.is_empty() {
                e = e.child(Element::new("show", NS_CLIENT).text(show));
            }
            if !status.is_empty() {
                e = e.child(Element::new("status", NS_CLIENT).text(status));
            }
            e
        };
        assert_eq!(away_of(&p("", "")), None);
        assert_eq!(away_of(&p("chat", "x")), None);
        assert_eq!(away_of(&p("away", "")).as_deref(), Some("Away"));
        assert_eq!(
            away_of(&p("dnd", "in a meeting")).as_deref(),
            Some("in a meeting")
        );
    }
}
