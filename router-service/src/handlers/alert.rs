//! Alerts from the alerts exchange, as room messages from a bot.
//!
//! The bot is not a member, and the rules that keep outsiders quiet do not
//! apply to it: a room's `+n` and `+m` are about people, and posting into
//! rooms is what the alerts exchange is for (only internal systems can
//! publish to it). Bans do apply, so a room's operators can silence a noisy
//! source with `+b grafana!*@*` (or all alerts with `+b *!bot@alerts.`).
//!
//! An alert for a room that does not exist (nobody in it) is dropped:
//! creating a room needs a member, and an alert kept for nobody would only
//! surprise the next joiner. The outcome says why it produced nothing, for
//! the partition's metrics and log.
//!
//! The message is a PRIVMSG, not a NOTICE: every client shows it as an
//! ordinary line (and Tinode numbers it), and the server-set `bot` tag
//! tells IRCv3 bots not to answer it, which is what NOTICE was for.

use bus::alerts::{bot_actor, bot_nick, render};
use bus::schema::{ClientTags, EventBody, Intent, MessageKind, BOT_TAG};

use super::Outcome;
use crate::room::Room;

/// An alert's fields, as the intent carries them.
pub(super) struct AlertFields<'a> {
    pub text: &'a str,
    pub severity: Option<&'a str>,
    pub source: &'a str,
    pub link: Option<&'a str>,
}

pub(super) fn alert(
    slot: &mut Option<Room>,
    intent: &Intent,
    a: AlertFields<'_>,
    now: i64,
    out: &mut Outcome,
) {
    // The identity follows from the source alone, whatever actor the
    // intent carries: nothing else may speak as an alert bot.
    let Some(nick) = bot_nick(a.source) else {
        out.dropped = Some("bad_source");
        return;
    };
    let Some(room) = slot.as_mut() else {
        out.dropped = Some("no_such_room");
        return;
    };
    let actor = bot_actor(&nick);
    if room.is_banned(&actor) {
        out.dropped = Some("banned");
        return;
    }
    let tags: ClientTags = [(BOT_TAG.to_string(), String::new())].into();
    let body = EventBody::Message {
        kind: MessageKind::Privmsg,
        text: render(a.text, a.severity, a.link),
        tags,
    };
    let event = room.event(&intent.id, &actor, body, now);
    out.event(event);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, BanEntry, EventBody, IntentBody, MessageKind, BOT_TAG};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn alert(slot: &mut Option<Room>, source: &str, severity: Option<&str>) -> Outcome {
        // The intent's actor is deliberately someone else: the handler
        // must not speak as it.
        let forger = actor("mallory", "gw9");
        run(
            slot,
            &forger,
            IntentBody::Alert {
                room: "OPS".into(),
                text: "Disk full on db1".into(),
                severity: severity.map(str::to_string),
                source: source.into(),
                link: Some("https://g.example/d/1".into()),
            },
        )
    }

    fn speaker(out: &Outcome) -> (&Actor, &str, bool) {
        let ev = out.events().next().expect("an event");
        let EventBody::Message { kind, text, tags } = &ev.body else {
            panic!("not a message: {ev:?}");
        };
        assert_eq!(*kind, MessageKind::Privmsg);
        (&ev.actor, text.as_str(), tags.contains_key(BOT_TAG))
    }

    #[test]
    fn an_alert_is_a_numbered_bot_message_despite_n_and_m() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let room = slot.as_mut().unwrap();
        assert!(room.modes.no_external);
        room.modes.moderated = true;
        let (seq, mseq) = (room.seq, room.mseq);
        let out = alert(&mut slot, "grafana", Some("critical"));
        assert!(out.dropped.is_none());
        let ev = out.events().next().unwrap();
        assert_eq!((ev.seq, ev.mseq), (seq + 1, Some(mseq + 1)));
        let (who, text, bot) = speaker(&out);
        assert_eq!(who.hostmask(), "grafana!bot@alerts.");
        assert!(who.gateway.is_empty());
        assert_eq!(text, "[CRITICAL] Disk full on db1 — https://g.example/d/1");
        assert!(bot, "the bot tag is set");
        // No reply to anyone: the bot has no session.
        assert!(replies(&out).is_empty());
        // The bot did not become a member.
        assert!(!slot.as_ref().unwrap().is_member("alerts.grafana"));
    }

    #[test]
    fn no_room_bad_source_and_bans_drop_it() {
        let mut none = None;
        let out = alert(&mut none, "grafana", None);
        assert_eq!(out.dropped, Some("no_such_room"));
        assert!(out.effects.is_empty() && none.is_none());

        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = alert(&mut slot, "1234", None);
        assert_eq!(out.dropped, Some("bad_source"));
        assert!(out.effects.is_empty());

        slot.as_mut().unwrap().bans.push(BanEntry {
            mask: "grafana!*@*".into(),
            set_by: "alice".into(),
            set_at: 0,
        });
        let seq = slot.as_ref().unwrap().seq;
        let out = alert(&mut slot, "grafana", None);
        assert_eq!(out.dropped, Some("banned"));
        assert_eq!(slot.as_ref().unwrap().seq, seq, "no seq taken");
        // Another source still gets through, its text without a prefix.
        let out = alert(&mut slot, "Jenkins", None);
        let (who, text, _) = speaker(&out);
        assert_eq!(who.nick, "jenkins");
        assert_eq!(text, "Disk full on db1 — https://g.example/d/1");
    }
}
