//! Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE.
//!
//! Everything about a room's state is the router's: these build intents
//! (after the checks a gateway can make alone: name syntax, CHANLIMIT,
//! lengths) and the router's events and replies come back through the
//! dispatcher. LIST reads the rooms bucket; INVITE resolves the target in
//! the sessions bucket.

use bus::names::fold;
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

/// A LIST filter (ELIST=U: user count bounds).
#[derive(Debug, Default, PartialEq)]
struct ListFilter {
    rooms: Vec<String>,
    min_users: Option<usize>,
    max_users: Option<usize>,
}

fn parse_list_filter(arg: Option<&String>) -> ListFilter {
    let mut f = ListFilter::default();
    for item in arg
        .map(|a| a.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if let Some(n) = item.strip_prefix('>').and_then(|n| n.parse().ok()) {
            f.min_users = Some(n);
        } else if let Some(n) = item.strip_prefix('<').and_then(|n| n.parse().ok()) {
            f.max_users = Some(n);
        } else if valid_channel(item) {
            f.rooms.push(fold(room_of(item)));
        }
    }
    f
}

impl ListFilter {
    fn accepts(&self, users: usize) -> bool {
        self.min_users.is_none_or(|min| users > min) && self.max_users.is_none_or(|max| users < max)
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
        if !filter.accepts(r.members.len()) {
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

    #[test]
    fn list_filters() {
        let f = parse_list_filter(Some(&"#A,>2,<10,junk".to_string()));
        assert_eq!(f.rooms, vec!["a"]);
        assert!(f.accepts(3) && !f.accepts(2) && !f.accepts(10));
        assert!(parse_list_filter(None).accepts(0));
    }
}
