//! Queries: WHO, WHOIS, ISON, USERHOST (the sessions and nicks buckets, or
//! the router for a channel's WHO), and LUSERS, MOTD, VERSION, TIME
//! (answered locally).

use bus::names::fold;
use bus::schema::{IntentBody, RoomRecord, SessionRecord};
use futures::StreamExt;

use crate::gateway::VERSION;
use crate::irc::caps::Cap;
use crate::irc::client::Client;
use crate::irc::isupport;
use crate::irc::line::MAX_BODY_BYTES;
use crate::irc::numeric::*;
use crate::irc::render::who_reply;
use crate::irc::validate::{channel_of, is_channel, room_of, valid_channel, valid_nick};
use crate::irc::whox;

/// Most nicks one ISON answers about.
const ISON_MAX: usize = 64;
/// Most nicks one USERHOST answers about.
const USERHOST_MAX: usize = 5;

pub async fn who(c: &mut Client, m: &crate::irc::line::Message) {
    let Some(mask) = m.params.first().cloned() else {
        c.send(c.num().n(RPL_ENDOFWHO).param("*").text("End of WHO list"));
        return;
    };
    let whox = m.params.get(1).and_then(|a| whox::parse(a));
    if is_channel(&mask) && valid_channel(&mask) {
        let id = c
            .intent(IntentBody::Who {
                room: room_of(&mask).to_string(),
            })
            .await;
        if let (Some(id), Some(q)) = (id, whox) {
            c.whox.insert(id, q);
        }
        return;
    }
    if valid_nick(&mask) {
        match c.gw.registry.session_by_nick(&mask).await {
            Ok(Some(rec)) => {
                let flags = format!(
                    "{}{}",
                    if rec.away.is_some() { "G" } else { "H" },
                    if rec.bot { "B" } else { "" }
                );
                let a = &rec.actor;
                let line = match &whox {
                    Some(q) => whox::line(
                        q,
                        &whox::Who {
                            chan: "*",
                            user: &a.user,
                            host: &a.host,
                            nick: &a.nick,
                            flags: &flags,
                            account: a.account.as_deref(),
                            realname: &a.realname,
                        },
                        &c.view(),
                    ),
                    None => who_reply(
                        "*",
                        &a.user,
                        &a.host,
                        &a.nick,
                        &flags,
                        &a.realname,
                        &c.view(),
                    ),
                };
                c.send(line);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "WHO lookup failed"),
        }
    }
    c.send(c.num().n(RPL_ENDOFWHO).param(mask).text("End of WHO list"));
}

/// A channel's WHOX answer: one 354 per member, then 315.
pub fn who_lines(
    c: &Client,
    q: &whox::Query,
    name: &str,
    members: &[bus::schema::MemberInfo],
) -> Vec<crate::irc::line::Message> {
    let v = c.view();
    let chan = crate::irc::validate::channel_of(name);
    let mut out: Vec<_> = members
        .iter()
        .map(|m| {
            let flags = crate::irc::render::who_flags(m, &v);
            let who = whox::Who {
                chan: &chan,
                user: &m.user,
                host: &m.host,
                nick: &m.nick,
                flags: &flags,
                account: m.account.as_deref(),
                realname: &m.realname,
            };
            whox::line(q, &who, &v)
        })
        .collect();
    out.push(
        c.num()
            .n(RPL_ENDOFWHO)
            .param(chan.as_str())
            .text("End of WHO list"),
    );
    out
}

/// The `@`/`+` prefix of `sid` in a room, per multi-prefix.
fn prefix_in(room: &RoomRecord, sid: &str, multi: bool) -> &'static str {
    match room.members.iter().find(|m| m.actor.sid == sid) {
        Some(m) if m.op && m.voice && multi => "@+",
        Some(m) if m.op => "@",
        Some(m) if m.voice => "+",
        _ => "",
    }
}

/// The channels WHOIS shows: the target's rooms minus secret ones the
/// asker is not in, with the target's prefixes.
async fn whois_channels(c: &Client, rec: &SessionRecord) -> Vec<String> {
    let folded: Vec<String> = rec.rooms.iter().map(|r| fold(r)).collect();
    let records = c.gw.registry.rooms_named(folded).await;
    let multi = c.caps.has(Cap::MultiPrefix);
    let mut out = Vec::new();
    for name in &rec.rooms {
        let record = records.iter().find(|r| r.room == fold(name));
        let secret = record.is_some_and(|r| r.modes.secret);
        if secret && !c.in_room(name) {
            continue;
        }
        let prefix = record
            .map(|r| prefix_in(r, &rec.actor.sid, multi))
            .unwrap_or("");
        out.push(format!("{prefix}{}", channel_of(name)));
    }
    out
}

/// The services answering as pseudo-users: (nick, what it does).
fn service(nick: &str) -> Option<(&'static str, &'static str)> {
    if super::chanserv::is_chanserv(nick) {
        Some((bus::schema::CHANSERV_NICK, "Channel Services"))
    } else if super::nickserv::is_nickserv(nick) {
        Some((super::nickserv::NICK, "Nickname Services"))
    } else {
        None
    }
}

/// WHOIS of NickServ or ChanServ: not sessions, so nothing in NATS; they
/// answer from every gateway, as `<nick>!<nick>@services.`.
fn whois_service(c: &Client, name: &str, what: &str) {
    let n = c.num();
    c.send(
        n.n(RPL_WHOISUSER)
            .param(name)
            .param(name)
            .param("services.")
            .param("*")
            .text(what),
    );
    c.send(
        n.n(RPL_WHOISSERVER)
            .param(name)
            .param(c.server())
            .text(format!("{what}: /msg {name} HELP")),
    );
    c.send(n.n(RPL_ENDOFWHOIS).param(name).text("End of /WHOIS list"));
}

/// `WHOIS [server] nick`.
pub async fn whois(c: &mut Client, m: &crate::irc::line::Message) {
    let arg = match m.params.len() {
        0 => {
            c.send(c.num().n(ERR_NONICKNAMEGIVEN).text("No nickname given"));
            return;
        }
        1 => &m.params[0],
        _ => &m.params[1],
    };
    let nick = arg.split(',').next().unwrap_or("").to_string();
    if let Some((name, what)) = service(&nick) {
        whois_service(c, name, what);
        return;
    }
    let rec = if valid_nick(&nick) {
        c.gw.registry.session_by_nick(&nick).await
    } else {
        Ok(None)
    };
    let rec = match rec {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            c.send(c.num().no_such_nick(&nick));
            c.send(
                c.num()
                    .n(RPL_ENDOFWHOIS)
                    .param(nick)
                    .text("End of /WHOIS list"),
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "WHOIS lookup failed");
            c.bus_trouble();
            return;
        }
    };
    let a = &rec.actor;
    let n = c.num();
    c.send(
        n.n(RPL_WHOISUSER)
            .param(a.nick.as_str())
            .param(a.user.as_str())
            .param(a.host.as_str())
            .param("*")
            .text(a.realname.as_str()),
    );
    let channels = whois_channels(c, &rec).await;
    let head = n
        .n(RPL_WHOISCHANNELS)
        .param(a.nick.as_str())
        .text("")
        .to_wire()
        .len();
    let budget = MAX_BODY_BYTES - 2 - head;
    let mut line = String::new();
    for ch in channels {
        if !line.is_empty() && line.len() + 1 + ch.len() > budget {
            c.send(
                n.n(RPL_WHOISCHANNELS)
                    .param(a.nick.as_str())
                    .text(std::mem::take(&mut line)),
            );
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&ch);
    }
    if !line.is_empty() {
        c.send(n.n(RPL_WHOISCHANNELS).param(a.nick.as_str()).text(line));
    }
    let network = c.gw.irc.network.clone();
    c.send(
        n.n(RPL_WHOISSERVER)
            .param(a.nick.as_str())
            .param(c.server())
            .text(network),
    );
    if let Some(away) = &rec.away {
        c.send(n.n(RPL_AWAY).param(a.nick.as_str()).text(away.as_str()));
    }
    if rec.bot {
        c.send(n.n(RPL_WHOISBOT).param(a.nick.as_str()).text("is a bot"));
    }
    if let Some(account) = &a.account {
        c.send(
            n.n(RPL_WHOISACCOUNT)
                .param(a.nick.as_str())
                .param(account.as_str())
                .text("is logged in as"),
        );
    }
    if rec.oper {
        c.send(
            n.n(RPL_WHOISOPERATOR)
                .param(a.nick.as_str())
                .text("is an IRC operator"),
        );
    }
    if rec.tls {
        c.send(
            n.n(RPL_WHOISSECURE)
                .param(a.nick.as_str())
                .text("is using a secure connection"),
        );
    }
    // A fingerprint identifies its owner: shown to the session itself only.
    if let (Some(fp), true) = (&rec.certfp, c.sid() == a.sid) {
        c.send(
            n.n(RPL_WHOISCERTFP)
                .param(a.nick.as_str())
                .text(format!("has client certificate fingerprint {fp}")),
        );
    }
    c.send(
        n.n(RPL_WHOISIDLE)
            .param(a.nick.as_str())
            .param("0")
            .param(rec.signon.to_string())
            .text("seconds idle, signon time"),
    );
    c.send(
        n.n(RPL_ENDOFWHOIS)
            .param(a.nick.as_str())
            .text("End of /WHOIS list"),
    );
}

/// `ISON n1 n2 …`: the online ones, as they spell themselves.
pub async fn ison(c: &mut Client, m: &crate::irc::line::Message) {
    if m.params.is_empty() {
        c.send(c.num().need_more_params("ISON"));
        return;
    }
    let nicks: Vec<String> = m
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter(|n| valid_nick(n))
        .take(ISON_MAX)
        .map(String::from)
        .collect();
    let registry = &c.gw.registry;
    let online: Vec<Option<String>> = futures::stream::iter(nicks)
        .map(|n| async move {
            registry
                .nick_claim(&n)
                .await
                .ok()
                .flatten()
                .map(|claim| claim.nick)
        })
        .buffered(16)
        .collect()
        .await;
    let text = online.into_iter().flatten().collect::<Vec<_>>().join(" ");
    c.send(c.num().n(RPL_ISON).text(text));
}

/// `USERHOST n1 … n5` → `nick=+user@host` (`-` when away).
pub async fn userhost(c: &mut Client, m: &crate::irc::line::Message) {
    if m.params.is_empty() {
        c.send(c.num().need_more_params("USERHOST"));
        return;
    }
    let mut replies = Vec::new();
    for nick in m
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter(|n| valid_nick(n))
        .take(USERHOST_MAX)
    {
        if let Ok(Some(rec)) = c.gw.registry.session_by_nick(nick).await {
            let sign = if rec.away.is_some() { '-' } else { '+' };
            replies.push(format!(
                "{}={sign}{}@{}",
                rec.actor.nick, rec.actor.user, rec.actor.host
            ));
        }
    }
    c.send(c.num().n(RPL_USERHOST).text(replies.join(" ")));
}

/// 251–266 from the cluster counts and this gateway's own.
pub fn lusers(c: &mut Client) {
    let gw = c.gw.clone();
    let counts = gw.registry.census.counts();
    let local = gw.sessions.len();
    let local_max = gw.note_sessions();
    let users = counts.users.max(local);
    let unknown = gw.connections().saturating_sub(local);
    let n = c.num();
    c.send(n.n(RPL_LUSERCLIENT).text(format!(
        "There are {users} users and 0 invisible on 1 servers"
    )));
    c.send(n.n(RPL_LUSEROP).param("0").text("operator(s) online"));
    if unknown > 0 {
        c.send(
            n.n(RPL_LUSERUNKNOWN)
                .param(unknown.to_string())
                .text("unknown connection(s)"),
        );
    }
    c.send(
        n.n(RPL_LUSERCHANNELS)
            .param(counts.rooms.to_string())
            .text("channels formed"),
    );
    c.send(
        n.n(RPL_LUSERME)
            .text(format!("I have {local} clients and 1 servers")),
    );
    c.send(
        n.n(RPL_LOCALUSERS)
            .param(local.to_string())
            .param(local_max.to_string())
            .text(format!("Current local users {local}, max {local_max}")),
    );
    let global_max = users.max(local_max);
    c.send(
        n.n(RPL_GLOBALUSERS)
            .param(users.to_string())
            .param(global_max.to_string())
            .text(format!("Current global users {users}, max {global_max}")),
    );
}

pub fn motd(c: &mut Client) {
    let n = c.num();
    let motd = c.gw.irc.motd.trim_end();
    if motd.is_empty() {
        c.send(n.n(ERR_NOMOTD).text("MOTD File is missing"));
        return;
    }
    c.send(
        n.n(RPL_MOTDSTART)
            .text(format!("- {} Message of the day - ", c.server())),
    );
    for line in motd.lines() {
        c.send(n.n(RPL_MOTD).text(format!("- {line}")));
    }
    c.send(n.n(RPL_ENDOFMOTD).text("End of /MOTD command."));
}

pub fn version(c: &mut Client) {
    let n = c.num();
    c.send(
        n.n(RPL_VERSION)
            .param(VERSION)
            .param(c.server())
            .text("IRC edge gateway"),
    );
    c.send_all(isupport::lines(
        c.server(),
        c.nick(),
        &c.gw.irc.network,
        c.gw.irc.chathistory_max,
    ));
}

pub fn time(c: &mut Client) {
    let now = chrono::Utc::now()
        .format("%A %B %d %Y -- %H:%M:%S +00:00")
        .to_string();
    c.send(c.num().n(RPL_TIME).param(c.server()).text(now));
}
