//! Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE.
//!
//! Everything about a room's state is the router's: these build intents
//! (after the checks a gateway can make alone: name syntax, CHANLIMIT,
//! lengths) and the router's events and replies come back through the
//! dispatcher. LIST reads the rooms bucket; INVITE resolves the target in
//! the sessions bucket.

use bus::names::{fold, glob_matches};
use bus::schema::{IntentBody, RoomRecord};

use super::split_list;
use crate::irc::client::Client;
use crate::irc::line::{truncated, Message};
use crate::irc::numeric::*;
use crate::irc::validate::{
    channel_of, room_of, valid_channel, valid_nick, CHANLIMIT, KICKLEN, MAXTARGETS, REASONLEN,
    TOPICLEN,
};

/// Most rooms LIST reads and shows.
const LIST_MAX: usize = 5000;

/// `JOIN #a,#b key1,key2` or `JOIN 0`.
pub async fn join(c: &mut Client, m: &Message) {
    let Some(targets) = m.params.first() else {
        c.send(c.num().need_more_params("JOIN"));
        return;
    };
    if targets == "0" {
        let rooms: Vec<String> = c.rooms().cloned().collect();
        for room in rooms {
            c.intent(IntentBody::Part { room, reason: None }).await;
        }
        return;
    }
    let keys: Vec<&str> = m
        .params
        .get(1)
        .map(|k| k.split(',').collect())
        .unwrap_or_default();
    let mut joined = c.rooms().count();
    for (i, chan) in targets.split(',').enumerate() {
        if !valid_channel(chan) {
            c.send(c.num().no_such_channel(chan));
            continue;
        }
        // Not skipped when we think the client is a member already: a PART
        // just sent may not have come back yet. The router ignores re-joins.
        if joined >= CHANLIMIT && !c.in_room(room_of(chan)) {
            c.send(c.num().too_many_channels(chan));
            continue;
        }
        joined += 1;
        let key = keys.get(i).filter(|k| !k.is_empty()).map(|k| k.to_string());
        c.intent(IntentBody::Join {
            room: room_of(chan).to_string(),
            key,
        })
        .await;
    }
}

/// `PART #a,#b [:reason]`.
pub async fn part(c: &mut Client, m: &Message) {
    let Some(targets) = m.params.first() else {
        c.send(c.num().need_more_params("PART"));
        return;
    };
    let reason = m
        .params
        .get(1)
        .filter(|r| !r.is_empty())
        .map(|r| truncated(r, REASONLEN));
    for chan in split_list(targets) {
        if !valid_channel(chan) {
            c.send(c.num().no_such_channel(chan));
            continue;
        }
        c.intent(IntentBody::Part {
            room: room_of(chan).to_string(),
            reason: reason.clone(),
        })
        .await;
    }
}

/// `TOPIC #c` (query) or `TOPIC #c :text` (set; empty clears).
pub async fn topic(c: &mut Client, m: &Message) {
    let Some(chan) = m.params.first() else {
        c.send(c.num().need_more_params("TOPIC"));
        return;
    };
    if !valid_channel(chan) {
        c.send(c.num().no_such_channel(chan));
        return;
    }
    let topic = m.params.get(1).map(|t| truncated(t, TOPICLEN));
    c.intent(IntentBody::Topic {
        room: room_of(chan).to_string(),
        topic,
    })
    .await;
}

/// `NAMES #c` (TARGMAX NAMES:1: only the first is answered).
pub async fn names(c: &mut Client, m: &Message) {
    let Some(chan) = m.params.first().and_then(|t| split_list(t).next()) else {
        c.send(
            c.num()
                .n(RPL_ENDOFNAMES)
                .param("*")
                .text("End of /NAMES list"),
        );
        return;
    };
    if !valid_channel(chan) {
        c.send(
            c.num()
                .n(RPL_ENDOFNAMES)
                .param(chan)
                .text("End of /NAMES list"),
        );
        return;
    }
    c.intent(IntentBody::Names {
        room: room_of(chan).to_string(),
    })
    .await;
}

/// A LIST filter, ELIST=CMNTU: user counts (`>n`, `<n`), channel masks
/// (`*ops*`) and negated masks (`!*test*`), creation time and topic time in
/// minutes ago (`C<n` created less than n minutes ago, `C>n` more; `T<n`,
/// `T>n` for the topic), or plain channel names.
#[derive(Debug, Default, PartialEq)]
struct ListFilter {
    rooms: Vec<String>,
    min_users: Option<usize>,
    max_users: Option<usize>,
    masks: Vec<String>,
    not_masks: Vec<String>,
    /// Minutes ago: (younger than, older than).
    created: (Option<i64>, Option<i64>),
    topic_set: (Option<i64>, Option<i64>),
}

fn parse_list_filter(arg: Option<&String>) -> ListFilter {
    let mut f = ListFilter::default();
    for item in arg
        .map(|a| a.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let minutes = |rest: &str| rest.parse::<i64>().ok();
        if let Some(n) = item.strip_prefix('>').and_then(|n| n.parse().ok()) {
            f.min_users = Some(n);
        } else if let Some(n) = item.strip_prefix('<').and_then(|n| n.parse().ok()) {
            f.max_users = Some(n);
        } else if let Some(n) = item.strip_prefix("C<").and_then(minutes) {
            f.created.0 = Some(n);
        } else if let Some(n) = item.strip_prefix("C>").and_then(minutes) {
            f.created.1 = Some(n);
        } else if let Some(n) = item.strip_prefix("T<").and_then(minutes) {
            f.topic_set.0 = Some(n);
        } else if let Some(n) = item.strip_prefix("T>").and_then(minutes) {
            f.topic_set.1 = Some(n);
        } else if let Some(mask) = item.strip_prefix('!').filter(|m| !m.is_empty()) {
            f.not_masks.push(mask.to_string());
        } else if item.contains(['*', '?']) {
            f.masks.push(item.to_string());
        } else if valid_channel(item) {
            f.rooms.push(fold(room_of(item)));
        }
    }
    f
}

impl ListFilter {
    fn accepts(&self, r: &RoomRecord, now_ms: i64) -> bool {
        let users = r.members.len();
        let name = channel_of(&r.name);
        let ago = |at_ms: i64| (now_ms - at_ms) / 60_000;
        let within = |(younger, older): (Option<i64>, Option<i64>), at_ms: Option<i64>| {
            if younger.is_none() && older.is_none() {
                return true;
            }
            let Some(at) = at_ms else { return false };
            younger.is_none_or(|n| ago(at) < n) && older.is_none_or(|n| ago(at) > n)
        };
        self.min_users.is_none_or(|min| users > min)
            && self.max_users.is_none_or(|max| users < max)
            && (self.masks.is_empty() || self.masks.iter().any(|m| glob_matches(m, &name)))
            && !self.not_masks.iter().any(|m| glob_matches(m, &name))
            && within(self.created, Some(r.created_at))
            && within(self.topic_set, r.topic.as_ref().map(|t| t.set_at))
    }
}

/// `[+modes] topic` as LIST shows it (the key's value is never shown).
fn list_topic(r: &RoomRecord) -> String {
    let m = &r.modes;
    let mut modes = String::from("+");
    for (on, letter) in [
        (m.invite_only, 'i'),
        (m.key.is_some(), 'k'),
        (m.limit.is_some(), 'l'),
        (m.moderated, 'm'),
        (m.no_external, 'n'),
        (m.secret, 's'),
        (m.topic_ops, 't'),
    ] {
        if on {
            modes.push(letter);
        }
    }
    let topic = r.topic.as_ref().map(|t| t.text.as_str()).unwrap_or("");
    if modes.len() > 1 {
        format!("[{modes}] {topic}")
    } else {
        topic.to_string()
    }
}

/// `LIST [#a,#b | >n | <n]`, from the rooms bucket.
pub async fn list(c: &mut Client, m: &Message) {
    let filter = parse_list_filter(m.params.first());
    let records = if filter.rooms.is_empty() {
        c.gw.registry.rooms(LIST_MAX).await
    } else {
        Ok(c.gw.registry.rooms_named(filter.rooms.clone()).await)
    };
    let mut records = match records {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "listing rooms failed");
            Vec::new()
        }
    };
    records.sort_by(|a, b| a.room.cmp(&b.room));
    let now = bus::now_ms();
    c.send(
        c.num()
            .n(RPL_LISTSTART)
            .param("Channel")
            .text("Users  Name"),
    );
    for r in records.iter().filter(|r| !r.members.is_empty()) {
        if r.modes.secret && !c.in_room(&r.room) {
            continue;
        }
        if !filter.accepts(r, now) {
            continue;
        }
        let line = c
            .num()
            .n(RPL_LIST)
            .param(channel_of(&r.name))
            .param(r.members.len().to_string())
            .text(list_topic(r));
        c.send(line);
    }
    c.send(c.num().n(RPL_LISTEND).text("End of /LIST"));
}

/// `KICK #c nick1,nick2 [:reason]` (or paired `#a,#b n1,n2`).
pub async fn kick(c: &mut Client, m: &Message) {
    if m.params.len() < 2 {
        c.send(c.num().need_more_params("KICK"));
        return;
    }
    let chans: Vec<&str> = split_list(&m.params[0]).collect();
    let nicks: Vec<&str> = split_list(&m.params[1]).collect();
    if nicks.len() > MAXTARGETS {
        c.send(c.num().too_many_targets(&m.params[1]));
        return;
    }
    let pairs: Vec<(&str, &str)> = match chans.len() {
        1 => nicks.iter().map(|n| (chans[0], *n)).collect(),
        n if n == nicks.len() => chans.iter().copied().zip(nicks.iter().copied()).collect(),
        _ => {
            c.send(c.num().need_more_params("KICK"));
            return;
        }
    };
    let reason = m
        .params
        .get(2)
        .filter(|r| !r.is_empty())
        .map(|r| truncated(r, KICKLEN));
    for (chan, nick) in pairs {
        if !valid_channel(chan) {
            c.send(c.num().no_such_channel(chan));
            continue;
        }
        let body = IntentBody::Kick {
            room: room_of(chan).to_string(),
            target: nick.to_string(),
            reason: reason.clone(),
        };
        c.intent(body).await;
    }
}

/// `INVITE nick #c`: resolve the nick, then let the router decide.
pub async fn invite(c: &mut Client, m: &Message) {
    if m.params.len() < 2 {
        c.send(c.num().need_more_params("INVITE"));
        return;
    }
    let (nick, chan) = (&m.params[0], &m.params[1]);
    if !valid_channel(chan) {
        c.send(c.num().no_such_channel(chan));
        return;
    }
    let target = if valid_nick(nick) {
        c.gw.registry.session_by_nick(nick).await
    } else {
        Ok(None)
    };
    match target {
        Ok(Some(rec)) => {
            c.intent(IntentBody::Invite {
                room: room_of(chan).to_string(),
                target: rec.actor,
            })
            .await;
        }
        Ok(None) => c.send(c.num().no_such_nick(nick)),
        Err(e) => {
            tracing::warn!(error = %e, "INVITE lookup failed");
            c.bus_trouble();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of room `name` with `users` members, created and topic set
    /// that many minutes before `NOW`.
    fn room(name: &str, users: usize, created_ago: i64, topic_ago: Option<i64>) -> RoomRecord {
        let member = |n: usize| {
            serde_json::json!({"actor": {"sid": format!("s{n}"), "gateway": "g", "nick": format!("n{n}"),
                "user": "u", "host": "h", "realname": "r"}, "op": false, "voice": false, "joined_at": 0})
        };
        let topic = topic_ago
            .map(|m| serde_json::json!({"text": "t", "set_by": "x", "set_at": NOW - m * 60_000}));
        serde_json::from_value(serde_json::json!({
            "room": name, "name": name, "created_at": NOW - created_ago * 60_000, "seq": 1,
            "topic": topic, "modes": {"invite_only": false, "moderated": false, "no_external": true,
                "secret": false, "topic_ops": true},
            "members": (0..users).map(member).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn list_filters() {
        let f = parse_list_filter(Some(&"#A,>2,<10,junk".to_string()));
        assert_eq!(f.rooms, vec!["a"]);
        assert!(f.accepts(&room("a", 3, 0, None), NOW));
        assert!(!f.accepts(&room("a", 2, 0, None), NOW));
        assert!(!f.accepts(&room("a", 10, 0, None), NOW));
        assert!(parse_list_filter(None).accepts(&room("a", 0, 0, None), NOW));

        let masks = parse_list_filter(Some(&"*ops*,!*test*".to_string()));
        assert!(masks.accepts(&room("devops", 1, 0, None), NOW));
        assert!(!masks.accepts(&room("opstest", 1, 0, None), NOW));
        assert!(!masks.accepts(&room("lobby", 1, 0, None), NOW));

        let times = parse_list_filter(Some(&"C<60,T>5".to_string()));
        assert!(times.accepts(&room("a", 1, 30, Some(10)), NOW));
        assert!(
            !times.accepts(&room("a", 1, 90, Some(10)), NOW),
            "created too long ago"
        );
        assert!(
            !times.accepts(&room("a", 1, 30, Some(1)), NOW),
            "topic too recent"
        );
        assert!(
            !times.accepts(&room("a", 1, 30, None), NOW),
            "no topic at all"
        );
    }
}
