//! Bus → IRC: room events, router replies and direct deliveries rendered as
//! the lines one particular client should see, given its capabilities.
//!
//! Pure functions of (message, [`View`]), so every capability combination
//! is unit-tested without a socket. Cross-room de-duplication (one QUIT
//! shown once however many rooms are shared) is the connection's job; it
//! happens before rendering.

use bus::history::HistoryItem;
use bus::names::fold;
use bus::schema::{
    Actor, ClientTags, Direct, DirectBody, ErrorCode, EventBody, MemberInfo, MessageKind, Reply,
    RoomEvent, TopicInfo, BOT_TAG,
};
use chrono::{DateTime, SecondsFormat};

use super::caps::{Cap, CapSet};
use super::line::{Message, MAX_BODY_BYTES};
use super::modestr::format_changes;
use super::numeric::*;
use super::validate::channel_of;

/// Who the lines are for.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub server: &'a str,
    pub sid: &'a str,
    pub nick: &'a str,
    pub caps: CapSet,
}

impl View<'_> {
    pub(crate) fn n(&self, code: u16) -> Message {
        numeric(self.server, code, self.nick)
    }
}

/// IRCv3 `server-time`: RFC 3339, UTC, milliseconds.
pub fn server_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Seconds since the epoch from a bus timestamp. The bus speaks
/// milliseconds; a value that can only be seconds is taken as is.
pub fn epoch_secs(t: i64) -> i64 {
    if t > 100_000_000_000 {
        t / 1000
    } else {
        t
    }
}

/// Adds `time`, `msgid` and client-only tags as the client's caps allow.
pub fn tagged(
    mut m: Message,
    v: &View,
    at: i64,
    id: &str,
    client_tags: Option<&ClientTags>,
) -> Message {
    if v.caps.has(Cap::ServerTime) {
        m = m.tag("time", server_time(at));
    }
    if v.caps.has(Cap::MessageTags) {
        if !id.is_empty() {
            m = m.tag("msgid", id);
        }
        // Only client tags (`+…`): other keys carry another protocol's
        // data (Tinode content) that IRC has no use for.
        for (k, val) in client_tags
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with('+'))
        {
            m = m.tag(k.as_str(), val.as_str());
        }
        // IRCv3 bot mode: the sender was `+B` (a server-set key).
        if client_tags.is_some_and(|t| t.contains_key(BOT_TAG)) {
            m = m.tag(BOT_TAG, "");
        }
    }
    m
}

/// IRCv3 `account-tag`: who sent it, if logged in and the client asked.
pub fn with_account(m: Message, v: &View, account: Option<&str>) -> Message {
    match account {
        Some(a) if v.caps.has(Cap::AccountTag) => m.tag("account", a),
        _ => m,
    }
}

fn command_of(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Privmsg => "PRIVMSG",
        MessageKind::Notice => "NOTICE",
        MessageKind::Tagmsg => "TAGMSG",
    }
}

/// The PRIVMSG/NOTICE/TAGMSG lines from `source` to `target`: one per
/// line of `text` (a Tinode or XMPP text may hold newlines and any length;
/// IRC carries neither), the `msgid` on the first; nothing for a TAGMSG
/// the client cannot receive.
#[allow(clippy::too_many_arguments)]
pub fn chat_line(
    source: &str,
    target: &str,
    kind: MessageKind,
    text: &str,
    tags: &ClientTags,
    id: &str,
    at: i64,
    v: &View,
) -> Vec<Message> {
    let base = Message::new(command_of(kind))
        .with_source(source)
        .param(target);
    match kind {
        MessageKind::Tagmsg if !v.caps.has(Cap::MessageTags) => Vec::new(),
        MessageKind::Tagmsg => vec![tagged(base, v, at, id, Some(tags))],
        _ => {
            let mut lines = crate::text::split_lines(text, crate::text::MAX_LINE_BYTES);
            if lines.is_empty() {
                lines.push(text);
            }
            lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    let id = if i == 0 { id } else { "" };
                    tagged(base.clone().text(line), v, at, id, Some(tags))
                })
                .collect()
        }
    }
}

/// The lines a room event shows this client, with `account=` for clients
/// with `account-tag`.
pub fn event(ev: &RoomEvent, v: &View) -> Vec<Message> {
    with_actor_account(event_lines(&live(ev), v, Mode::Live), v, &ev.actor)
}

fn live(ev: &RoomEvent) -> EventRef<'_> {
    EventRef {
        name: &ev.name,
        id: &ev.id,
        at: ev.at,
        actor: &ev.actor,
        body: &ev.body,
    }
}

fn with_actor_account(lines: Vec<Message>, v: &View, actor: &Actor) -> Vec<Message> {
    let account = actor.account.as_deref();
    lines
        .into_iter()
        .map(|m| with_account(m, v, account))
        .collect()
}

/// The parts of a room event rendering needs: a live [`RoomEvent`] and a
/// stored [`HistoryItem`] both provide them.
struct EventRef<'a> {
    /// The room's display name.
    name: &'a str,
    id: &'a str,
    at: i64,
    actor: &'a Actor,
    body: &'a EventBody,
}

/// Live traffic, or history played back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    /// From history: what the viewer itself did is shown like anyone
    /// else's (it is not being told of it for the first time), and with
    /// `stamp` message texts start with their date and time.
    Playback {
        stamp: bool,
    },
}

fn event_lines(ev: &EventRef, v: &View, mode: Mode) -> Vec<Message> {
    let chan = channel_of(ev.name);
    let src = ev.actor.hostmask();
    let mine = mode == Mode::Live && ev.actor.sid == v.sid;
    let base = |cmd: &str| Message::new(cmd).with_source(src.as_str());
    let m = match ev.body {
        // extended-join: the account (or `*`) and the realname.
        EventBody::Join if v.caps.has(Cap::ExtendedJoin) => base("JOIN")
            .param(chan.as_str())
            .param(ev.actor.account.as_deref().unwrap_or("*"))
            .text(ev.actor.realname.as_str()),
        EventBody::Join => base("JOIN").param(chan.as_str()),
        EventBody::Part { reason: Some(r) } => base("PART").param(chan.as_str()).text(r.as_str()),
        EventBody::Part { reason: None } => base("PART").param(chan.as_str()),
        EventBody::Kick {
            target_nick,
            reason,
            ..
        } => base("KICK")
            .param(chan.as_str())
            .param(target_nick.as_str())
            .text(reason.as_deref().unwrap_or(&ev.actor.nick)),
        // Our own QUIT can only come from the router dropping us (our
        // registry entry expired): tell the client it left the room.
        EventBody::Quit { reason, .. } if mine => {
            base("PART").param(chan.as_str()).text(reason.as_str())
        }
        EventBody::Quit { reason, .. } => base("QUIT").text(reason.as_str()),
        // We told our own client directly when it changed nick.
        EventBody::Nick { .. } if mine => return Vec::new(),
        EventBody::Nick { new, .. } => base("NICK").param(new.as_str()),
        // away-notify, realname (setname) and invite-notify describe a state
        // or a notice at a moment: history does not replay them. The actor
        // was answered directly (305/306, its own SETNAME; 341 for INVITE).
        EventBody::Away { .. } | EventBody::Realname { .. } | EventBody::Invite { .. }
            if mode != Mode::Live || mine =>
        {
            return Vec::new()
        }
        EventBody::Away { .. } if !v.caps.has(Cap::AwayNotify) => return Vec::new(),
        EventBody::Away {
            message: Some(m), ..
        } => base("AWAY").text(m.as_str()),
        EventBody::Away { message: None, .. } => base("AWAY"),
        // chghost: the member's new user@host. The actor itself was told
        // directly (396 and its own CHGHOST).
        EventBody::Host { .. } if mode != Mode::Live || mine => return Vec::new(),
        EventBody::Host { user, host, .. } if v.caps.has(Cap::Chghost) => {
            base("CHGHOST").param(user.as_str()).param(host.as_str())
        }
        // Without the capability the member is shown leaving and coming
        // back as who it now is (as the specification suggests).
        EventBody::Host { .. } => {
            let mut lines = vec![tagged(
                base("QUIT").text("Changing host"),
                v,
                ev.at,
                ev.id,
                None,
            )];
            lines.extend(host_rejoin_lines(ev, v));
            return lines;
        }
        EventBody::Realname { .. } if !v.caps.has(Cap::Setname) => return Vec::new(),
        EventBody::Realname { realname, .. } => base("SETNAME").text(realname.as_str()),
        EventBody::Invite { .. } if !v.caps.has(Cap::InviteNotify) => return Vec::new(),
        EventBody::Invite { target_nick, .. } => base("INVITE")
            .param(target_nick.as_str())
            .param(chan.as_str()),
        // History does not replay account changes: they describe a state
        // at a moment, not something said or done in the room.
        EventBody::Account { .. } if mode != Mode::Live => return Vec::new(),
        // account-notify; the actor itself was told with 900.
        EventBody::Account { .. } if mine || !v.caps.has(Cap::AccountNotify) => return Vec::new(),
        EventBody::Account { account, .. } => {
            base("ACCOUNT").param(account.as_deref().unwrap_or("*"))
        }
        EventBody::Message { .. } if mine && !v.caps.has(Cap::EchoMessage) => return Vec::new(),
        EventBody::Message { kind, text, tags } => {
            let text = stamped(text, ev.at, mode);
            return chat_line(&src, &chan, *kind, &text, tags, ev.id, ev.at, v);
        }
        EventBody::Topic { topic } => base("TOPIC").param(chan.as_str()).text(topic.as_str()),
        EventBody::Mode { changes } => {
            let mut m = base("MODE").param(chan.as_str());
            for p in format_changes(changes) {
                m = m.param(p);
            }
            m
        }
        // draft/message-redaction: only clients that negotiated it are
        // told; the others keep showing the message (no fallback notice,
        // which the spec leaves to the server: it would only be noise).
        EventBody::Redact { .. } if !v.caps.has(Cap::MessageRedaction) => return Vec::new(),
        EventBody::Redact {
            msgid,
            reason: Some(r),
            ..
        } => base("REDACT")
            .param(chan.as_str())
            .param(msgid.as_str())
            .text(r.as_str()),
        EventBody::Redact { msgid, .. } => {
            base("REDACT").param(chan.as_str()).param(msgid.as_str())
        }
    };
    vec![tagged(m, v, ev.at, ev.id, None)]
}

/// For a client without `chghost`: the JOIN (and the status MODE) that
/// show a member whose host changed coming back into one room. (Its QUIT
/// is shown once for all rooms, like any QUIT.)
pub fn host_rejoin(ev: &RoomEvent, v: &View) -> Vec<Message> {
    match ev.body {
        EventBody::Host { .. } if ev.actor.sid != v.sid && !v.caps.has(Cap::Chghost) => {
            host_rejoin_lines(&live(ev), v)
        }
        _ => Vec::new(),
    }
}

fn host_rejoin_lines(ev: &EventRef, v: &View) -> Vec<Message> {
    let EventBody::Host {
        user,
        host,
        op,
        voice,
        ..
    } = ev.body
    else {
        return Vec::new();
    };
    let mut now = ev.actor.clone();
    now.user = user.clone();
    now.host = host.clone();
    let join = EventRef {
        body: &EventBody::Join,
        actor: &now,
        ..*ev
    };
    let mut lines = event_lines(&join, v, Mode::Live);
    let modes: String = [(*op, 'o'), (*voice, 'v')]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, m)| *m)
        .collect();
    if !modes.is_empty() {
        let mut m = Message::new("MODE")
            .with_source(v.server)
            .param(channel_of(ev.name))
            .param(format!("+{modes}"));
        for _ in modes.chars() {
            m = m.param(now.nick.as_str());
        }
        lines.push(tagged(m, v, ev.at, ev.id, None));
    }
    lines
}

/// `[YYYY-MM-DD HH:MM:SS] ` (UTC) before a replayed text, for clients that
/// cannot be given the time as a tag; the text itself otherwise.
fn stamped(text: &str, at: i64, mode: Mode) -> std::borrow::Cow<'_, str> {
    match mode {
        Mode::Playback { stamp: true } => {
            let when = DateTime::from_timestamp_millis(at)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S");
            format!("[{when}] {text}").into()
        }
        _ => text.into(),
    }
}

/// How stored history is shown to one client.
#[derive(Debug, Clone, Copy)]
pub struct Playback<'a> {
    /// The reference of the batch the lines belong to, if any.
    pub batch: Option<&'a str>,
    /// Show joins, parts, kicks, quits, nick, topic and mode changes and
    /// TAGMSG (`draft/event-playback`); otherwise PRIVMSG and NOTICE only.
    pub events: bool,
    /// Start message texts with their date and time (replays to clients
    /// without `server-time`).
    pub stamp: bool,
    /// The viewer's account: with its session id (in [`View`]) it tells the
    /// viewer's own direct messages from those it received.
    pub account: Option<&'a str>,
    /// The other side of a direct conversation as the client named it: the
    /// target of the viewer's own messages in it.
    pub peer: Option<&'a str>,
}

impl Playback<'_> {
    fn mode(&self) -> Mode {
        Mode::Playback { stamp: self.stamp }
    }

    /// Whether `from` is the viewer (by account when it has one, else by
    /// session: a guest's messages belong to its session only).
    fn is_viewer(&self, from: &Actor, v: &View) -> bool {
        match (self.account, from.account.as_deref()) {
            (Some(mine), Some(theirs)) => fold(mine) == fold(theirs),
            (Some(_), None) | (None, Some(_)) => false,
            (None, None) => from.sid == v.sid,
        }
    }
}

/// The lines one stored item shows this client, exactly as the live event
/// or message was shown, in a batch when `p.batch` is given. Direct
/// messages are addressed as the client knows the conversation: those it
/// sent to `p.peer` (else the nick they were sent to), the others to its
/// current nick.
pub fn history_item(item: &HistoryItem, p: &Playback, v: &View) -> Vec<Message> {
    let is_message = matches!(
        item.body,
        EventBody::Message {
            kind: MessageKind::Privmsg | MessageKind::Notice,
            ..
        }
    );
    if !p.events && !is_message {
        return Vec::new();
    }
    let lines = match (&item.room, &item.body) {
        (Some(room), body) => {
            let e = EventRef {
                name: room,
                id: &item.id,
                at: item.at,
                actor: &item.from,
                body,
            };
            event_lines(&e, v, p.mode())
        }
        (None, EventBody::Message { kind, text, tags }) => {
            let target = if p.is_viewer(&item.from, v) {
                p.peer.or(item.to.as_deref()).unwrap_or(v.nick)
            } else {
                v.nick
            };
            let text = stamped(text, item.at, p.mode());
            let src = item.from.hostmask();
            chat_line(&src, target, *kind, &text, tags, &item.id, item.at, v)
        }
        // Direct conversations hold messages only.
        (None, _) => Vec::new(),
    };
    with_actor_account(lines, v, &item.from)
        .into_iter()
        .map(|m| in_batch(m, p.batch))
        .collect()
}

/// Adds the `batch` tag (first, where readers look for it).
pub fn in_batch(mut m: Message, batch: Option<&str>) -> Message {
    if let Some(reference) = batch {
        m.tags.insert(0, ("batch".into(), reference.into()));
    }
    m
}

/// `BATCH +<reference> <kind> [<param>]`.
pub fn batch_start(v: &View, reference: &str, kind: &str, param: Option<&str>) -> Message {
    let mut m = Message::new("BATCH")
        .with_source(v.server)
        .param(format!("+{reference}"))
        .param(kind);
    if let Some(p) = param {
        m = m.param(p);
    }
    m
}

/// `BATCH -<reference>`.
pub fn batch_end(v: &View, reference: &str) -> Message {
    Message::new("BATCH")
        .with_source(v.server)
        .param(format!("-{reference}"))
}

/// `CHATHISTORY TARGETS <name> <time>`: one conversation with activity.
pub fn history_target(v: &View, batch: Option<&str>, name: &str, latest_at: i64) -> Message {
    let m = Message::new("CHATHISTORY")
        .with_source(v.server)
        .param("TARGETS")
        .param(name)
        .param(server_time(latest_at));
    in_batch(m, batch)
}

/// The lines a direct delivery shows this client.
pub fn direct(d: &Direct, v: &View) -> Vec<Message> {
    let account = d.from.account.as_deref();
    direct_lines(d, v)
        .into_iter()
        .map(|m| with_account(m, v, account))
        .collect()
}

fn direct_lines(d: &Direct, v: &View) -> Vec<Message> {
    let src = d.from.hostmask();
    match &d.body {
        DirectBody::Message { kind, text, tags } => {
            chat_line(&src, v.nick, *kind, text, tags, &d.id, d.at, v)
        }
        DirectBody::Invite { name, .. } => {
            let m = Message::new("INVITE")
                .with_source(src)
                .param(v.nick)
                .param(channel_of(name));
            vec![tagged(m, v, d.at, &d.id, None)]
        }
        // Disconnecting is the connection's job, not a line to render; so
        // is changing the host.
        DirectBody::Kill { .. } | DirectBody::ChangeHost { .. } => Vec::new(),
        // XMPP's own: IRC sessions never bind account keys, so these do
        // not reach them.
        DirectBody::Roster { .. } | DirectBody::Presence { .. } | DirectBody::Carbon { .. } => {
            Vec::new()
        }
    }
}

fn member_prefix(m: &MemberInfo, multi: bool) -> &'static str {
    match (m.op, m.voice) {
        (true, true) if multi => "@+",
        (true, _) => "@",
        (false, true) => "+",
        (false, false) => "",
    }
}

fn topic_lines(chan: &str, topic: &TopicInfo, v: &View) -> Vec<Message> {
    vec![
        v.n(RPL_TOPIC).param(chan).text(topic.text.as_str()),
        v.n(RPL_TOPICWHOTIME)
            .param(chan)
            .param(topic.set_by.as_str())
            .param(epoch_secs(topic.set_at).to_string()),
    ]
}

/// 353 lines (each under the line limit) and the closing 366.
pub fn names_lines(chan: &str, members: &[MemberInfo], secret: bool, v: &View) -> Vec<Message> {
    let symbol = if secret { "@" } else { "=" };
    let multi = v.caps.has(Cap::MultiPrefix);
    let head = v.n(RPL_NAMREPLY).param(symbol).param(chan).text("");
    let budget = MAX_BODY_BYTES - 2 - head.to_wire().len();
    let mut out = Vec::new();
    let mut current = String::new();
    for m in members {
        let entry = format!("{}{}", member_prefix(m, multi), m.nick);
        if !current.is_empty() && current.len() + 1 + entry.len() > budget {
            out.push(
                v.n(RPL_NAMREPLY)
                    .param(symbol)
                    .param(chan)
                    .text(std::mem::take(&mut current)),
            );
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&entry);
    }
    if !current.is_empty() {
        out.push(v.n(RPL_NAMREPLY).param(symbol).param(chan).text(current));
    }
    out.push(v.n(RPL_ENDOFNAMES).param(chan).text("End of /NAMES list"));
    out
}

/// One 352 line.
pub fn who_line(chan: &str, m: &MemberInfo, v: &View) -> Message {
    let flags = who_flags(m, v);
    who_reply(chan, &m.user, &m.host, &m.nick, &flags, &m.realname, v)
}

/// A member's WHO flags: `H`/`G`, `B` for a bot, then its prefixes.
pub fn who_flags(m: &MemberInfo, v: &View) -> String {
    format!(
        "{}{}{}",
        if m.away { "G" } else { "H" },
        if m.bot { "B" } else { "" },
        member_prefix(m, v.caps.has(Cap::MultiPrefix))
    )
}

/// `352 <me> <chan> <user> <host> <server> <nick> <flags> :0 <realname>`.
pub fn who_reply(
    chan: &str,
    user: &str,
    host: &str,
    nick: &str,
    flags: &str,
    realname: &str,
    v: &View,
) -> Message {
    v.n(RPL_WHOREPLY)
        .param(chan)
        .param(user)
        .param(host)
        .param(v.server)
        .param(nick)
        .param(flags)
        .text(format!("0 {realname}"))
}

/// The lines a router reply shows this client.
pub fn reply(r: &Reply, v: &View) -> Vec<Message> {
    match r {
        // Nothing to show: it ends a labeled response (see `labeled`).
        Reply::Done => Vec::new(),
        Reply::Joined {
            name,
            topic,
            members,
            secret,
            ..
        } => {
            let chan = channel_of(name);
            let mut out = Vec::new();
            if let Some(t) = topic.as_ref().filter(|t| !t.text.is_empty()) {
                out.extend(topic_lines(&chan, t, v));
            }
            out.extend(names_lines(&chan, members, *secret, v));
            out
        }
        Reply::Names {
            name,
            members,
            secret,
            ..
        } => names_lines(&channel_of(name), members, *secret, v),
        Reply::Who { name, members, .. } => {
            let chan = channel_of(name);
            let mut out: Vec<Message> = members.iter().map(|m| who_line(&chan, m, v)).collect();
            out.push(
                v.n(RPL_ENDOFWHO)
                    .param(chan.as_str())
                    .text("End of WHO list"),
            );
            out
        }
        Reply::Topic { name, topic, .. } => {
            let chan = channel_of(name);
            match topic.as_ref().filter(|t| !t.text.is_empty()) {
                Some(t) => topic_lines(&chan, t, v),
                None => vec![v
                    .n(RPL_NOTOPIC)
                    .param(chan.as_str())
                    .text("No topic is set")],
            }
        }
        Reply::Modes {
            name,
            modes,
            args,
            created_at,
            ..
        } => {
            let chan = channel_of(name);
            let modes = if modes.is_empty() {
                "+"
            } else {
                modes.as_str()
            };
            let mut m = v.n(RPL_CHANNELMODEIS).param(chan.as_str()).param(modes);
            for a in args {
                m = m.param(a.as_str());
            }
            vec![
                m,
                v.n(RPL_CREATIONTIME)
                    .param(chan.as_str())
                    .param(epoch_secs(*created_at).to_string()),
            ]
        }
        Reply::BanList { name, bans, .. } => {
            let chan = channel_of(name);
            let mut out: Vec<Message> = bans
                .iter()
                .map(|b| {
                    v.n(RPL_BANLIST)
                        .param(chan.as_str())
                        .param(b.mask.as_str())
                        .param(b.set_by.as_str())
                        .param(epoch_secs(b.set_at).to_string())
                })
                .collect();
            out.push(
                v.n(RPL_ENDOFBANLIST)
                    .param(chan.as_str())
                    .text("End of channel ban list"),
            );
            out
        }
        Reply::Inviting { name, nick, .. } => {
            vec![v
                .n(RPL_INVITING)
                .param(nick.as_str())
                .param(channel_of(name))]
        }
        Reply::Error {
            code,
            target,
            detail,
        } => vec![error(*code, target, detail, v)],
        Reply::ChanServ { name, answer } => crate::irc::commands::chanserv::answer(name, answer, v),
    }
}

/// The IRC numeric for a router error.
pub fn error(code: ErrorCode, target: &str, detail: &str, v: &View) -> Message {
    let chan = channel_of(target);
    let chan = chan.as_str();
    match code {
        ErrorCode::NoSuchNick => v
            .n(ERR_NOSUCHNICK)
            .param(target)
            .text("No such nick/channel"),
        ErrorCode::NoSuchChannel => v.n(ERR_NOSUCHCHANNEL).param(chan).text("No such channel"),
        ErrorCode::CannotSendToChan => v
            .n(ERR_CANNOTSENDTOCHAN)
            .param(chan)
            .text("Cannot send to channel"),
        ErrorCode::TooManyChannels => v
            .n(ERR_TOOMANYCHANNELS)
            .param(chan)
            .text("You have joined too many channels"),
        ErrorCode::UserNotInChannel => v
            .n(ERR_USERNOTINCHANNEL)
            .param(target)
            .param(channel_of(detail))
            .text("They aren't on that channel"),
        ErrorCode::NotOnChannel => v
            .n(ERR_NOTONCHANNEL)
            .param(chan)
            .text("You're not on that channel"),
        ErrorCode::UserOnChannel => v
            .n(ERR_USERONCHANNEL)
            .param(target)
            .param(channel_of(detail))
            .text("is already on channel"),
        ErrorCode::NeedMoreParams => v
            .n(ERR_NEEDMOREPARAMS)
            .param(target)
            .text("Not enough parameters"),
        ErrorCode::ChannelIsFull => v
            .n(ERR_CHANNELISFULL)
            .param(chan)
            .text("Cannot join channel (+l)"),
        ErrorCode::UnknownMode => v
            .n(ERR_UNKNOWNMODE)
            .param(detail)
            .text("is unknown mode char to me"),
        ErrorCode::InviteOnlyChan => v
            .n(ERR_INVITEONLYCHAN)
            .param(chan)
            .text("Cannot join channel (+i)"),
        ErrorCode::BannedFromChan => v
            .n(ERR_BANNEDFROMCHAN)
            .param(chan)
            .text("Cannot join channel (+b)"),
        ErrorCode::BadChannelKey => v
            .n(ERR_BADCHANNELKEY)
            .param(chan)
            .text("Cannot join channel (+k)"),
        ErrorCode::BadChanMask => v.n(ERR_BADCHANMASK).param(chan).text("Bad Channel Mask"),
        ErrorCode::ChanOpPrivsNeeded => v
            .n(ERR_CHANOPRIVSNEEDED)
            .param(chan)
            .text("You're not channel operator"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::{BanEntry, ModeChange};

    fn actor(sid: &str, nick: &str) -> Actor {
        Actor {
            sid: sid.into(),
            gateway: "g".into(),
            nick: nick.into(),
            user: "~u".into(),
            host: "h".into(),
            realname: "Real Name".into(),
            account: None,
        }
    }

    fn ev(sid: &str, nick: &str, body: EventBody) -> RoomEvent {
        RoomEvent {
            v: 1,
            room: "ops".into(),
            name: "Ops".into(),
            seq: 1,
            mseq: None,
            id: "m1".into(),
            at: 1_763_787_775_123,
            actor: actor(sid, nick),
            body,
            intent_at: None,
        }
    }

    fn view(caps: &[Cap]) -> View<'static> {
        let mut set = CapSet::default();
        for c in caps {
            set.set(*c, true);
        }
        View {
            server: "srv",
            sid: "me",
            nick: "alice",
            caps: set,
        }
    }

    fn wire(msgs: Vec<Message>) -> Vec<String> {
        msgs.into_iter().map(|m| m.to_wire()).collect()
    }

    fn msg(kind: MessageKind, text: &str) -> EventBody {
        let mut tags = ClientTags::new();
        tags.insert("+draft/react".into(), "x y".into());
        EventBody::Message {
            kind,
            text: text.into(),
            tags,
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(server_time(1_763_787_775_123), "2025-11-22T05:02:55.123Z");
        assert_eq!(epoch_secs(1_763_787_775_123), 1_763_787_775);
        assert_eq!(epoch_secs(1_763_787_775), 1_763_787_775);
    }

    #[test]
    fn message_without_caps_is_bare() {
        let e = ev("bob", "bob", msg(MessageKind::Privmsg, "hi there"));
        assert_eq!(
            wire(event(&e, &view(&[]))),
            vec![":bob!~u@h PRIVMSG #Ops :hi there"]
        );
    }

    #[test]
    fn message_with_tags_caps() {
        let e = ev("bob", "bob", msg(MessageKind::Privmsg, "hi"));
        assert_eq!(
            wire(event(&e, &view(&[Cap::ServerTime, Cap::MessageTags]))),
            vec!["@time=2025-11-22T05:02:55.123Z;msgid=m1;+draft/react=x\\sy :bob!~u@h PRIVMSG #Ops :hi"]
        );
        assert_eq!(
            wire(event(&e, &view(&[Cap::ServerTime]))),
            vec!["@time=2025-11-22T05:02:55.123Z :bob!~u@h PRIVMSG #Ops :hi"]
        );
    }

    #[test]
    fn own_message_only_with_echo() {
        let e = ev("me", "alice", msg(MessageKind::Notice, "x"));
        assert!(event(&e, &view(&[])).is_empty());
        assert_eq!(
            wire(event(&e, &view(&[Cap::EchoMessage]))),
            vec![":alice!~u@h NOTICE #Ops :x"]
        );
    }

    #[test]
    fn tagmsg_needs_message_tags() {
        let e = ev("bob", "bob", msg(MessageKind::Tagmsg, ""));
        assert!(event(&e, &view(&[])).is_empty());
        assert_eq!(
            wire(event(&e, &view(&[Cap::MessageTags]))),
            vec!["@msgid=m1;+draft/react=x\\sy :bob!~u@h TAGMSG #Ops"]
        );
    }

    fn logged_in(mut e: RoomEvent) -> RoomEvent {
        e.actor.account = Some("bobacct".into());
        e
    }

    #[test]
    fn account_tag_only_for_logged_in_senders_and_the_cap() {
        let e = logged_in(ev("bob", "bob", msg(MessageKind::Privmsg, "hi")));
        assert_eq!(
            wire(event(&e, &view(&[Cap::AccountTag]))),
            vec!["@account=bobacct :bob!~u@h PRIVMSG #Ops :hi"]
        );
        assert_eq!(
            wire(event(&e, &view(&[]))),
            vec![":bob!~u@h PRIVMSG #Ops :hi"]
        );
        let anon = ev("bob", "bob", msg(MessageKind::Privmsg, "hi"));
        assert_eq!(
            wire(event(&anon, &view(&[Cap::AccountTag]))),
            vec![":bob!~u@h PRIVMSG #Ops :hi"]
        );
        let d = Direct {
            v: 1,
            id: "d1".into(),
            at: 0,
            from: e.actor.clone(),
            body: DirectBody::Invite {
                room: "ops".into(),
                name: "Ops".into(),
            },
        };
        assert_eq!(
            wire(direct(&d, &view(&[Cap::AccountTag]))),
            vec!["@account=bobacct :bob!~u@h INVITE alice #Ops"]
        );
    }

    #[test]
    fn extended_join_shows_account_and_realname() {
        let v = view(&[Cap::ExtendedJoin]);
        assert_eq!(
            wire(event(&logged_in(ev("bob", "bob", EventBody::Join)), &v)),
            vec![":bob!~u@h JOIN #Ops bobacct :Real Name"]
        );
        assert_eq!(
            wire(event(&ev("bob", "bob", EventBody::Join), &v)),
            vec![":bob!~u@h JOIN #Ops * :Real Name"]
        );
    }

    #[test]
    fn account_notify_for_others_with_the_cap() {
        let body = |a: Option<&str>| EventBody::Account {
            account: a.map(Into::into),
            event: "x".into(),
        };
        let v = view(&[Cap::AccountNotify]);
        assert_eq!(
            wire(event(&ev("bob", "bob", body(Some("bobacct"))), &v)),
            vec![":bob!~u@h ACCOUNT bobacct"]
        );
        assert_eq!(
            wire(event(&ev("bob", "bob", body(None)), &v)),
            vec![":bob!~u@h ACCOUNT *"]
        );
        assert!(event(&ev("bob", "bob", body(Some("b"))), &view(&[])).is_empty());
        assert!(event(&ev("me", "alice", body(Some("a"))), &v).is_empty());
    }

    #[test]
    fn membership_events() {
        let v = view(&[]);
        assert_eq!(
            wire(event(&ev("bob", "bob", EventBody::Join), &v)),
            vec![":bob!~u@h JOIN #Ops"]
        );
        assert_eq!(
            wire(event(
                &ev(
                    "bob",
                    "bob",
                    EventBody::Part {
                        reason: Some("bye now".into())
                    }
                ),
                &v
            )),
            vec![":bob!~u@h PART #Ops :bye now"]
        );
        assert_eq!(
            wire(event(
                &ev("bob", "bob", EventBody::Part { reason: None }),
                &v
            )),
            vec![":bob!~u@h PART #Ops"]
        );
        let kick = EventBody::Kick {
            target_sid: "me".into(),
            target_nick: "alice".into(),
            reason: None,
        };
        assert_eq!(
            wire(event(&ev("bob", "bob", kick), &v)),
            vec![":bob!~u@h KICK #Ops alice :bob"]
        );
        let quit = EventBody::Quit {
            reason: "Quit: later".into(),
            event: "e".into(),
        };
        assert_eq!(
            wire(event(&ev("bob", "bob", quit), &v)),
            vec![":bob!~u@h QUIT :Quit: later"]
        );
        let nick = EventBody::Nick {
            new: "robert".into(),
            event: "e".into(),
        };
        assert_eq!(
            wire(event(&ev("bob", "bob", nick.clone()), &v)),
            vec![":bob!~u@h NICK robert"]
        );
        assert!(
            event(&ev("me", "alice", nick), &v).is_empty(),
            "own nick change is sent directly"
        );
        let away = EventBody::Away {
            message: Some("x".into()),
            event: "e".into(),
        };
        assert!(event(&ev("bob", "bob", away.clone()), &v).is_empty());
    }

    #[test]
    fn away_setname_and_invite_notify_need_their_caps() {
        let v = view(&[Cap::AwayNotify, Cap::Setname, Cap::InviteNotify]);
        let away = EventBody::Away {
            message: Some("gone fishing".into()),
            event: "e".into(),
        };
        let back = EventBody::Away {
            message: None,
            event: "e".into(),
        };
        let realname = EventBody::Realname {
            realname: "Bob B".into(),
            event: "e".into(),
        };
        let invite = EventBody::Invite {
            target_sid: "s9".into(),
            target_nick: "carol".into(),
        };
        let all = [away, back, realname, invite];
        let shown: Vec<String> = all
            .iter()
            .flat_map(|b| wire(event(&ev("bob", "bob", b.clone()), &v)))
            .collect();
        assert_eq!(
            shown,
            vec![
                ":bob!~u@h AWAY :gone fishing",
                ":bob!~u@h AWAY",
                ":bob!~u@h SETNAME :Bob B",
                ":bob!~u@h INVITE carol #Ops",
            ]
        );
        for b in &all {
            assert!(event(&ev("bob", "bob", b.clone()), &view(&[])).is_empty());
            assert!(event(&ev("me", "alice", b.clone()), &v).is_empty(), "{b:?}");
        }
    }

    #[test]
    fn topic_and_mode_events() {
        let v = view(&[]);
        let topic = EventBody::Topic {
            topic: "new topic".into(),
        };
        assert_eq!(
            wire(event(&ev("bob", "bob", topic), &v)),
            vec![":bob!~u@h TOPIC #Ops :new topic"]
        );
        let changes = vec![
            ModeChange {
                add: true,
                mode: 'o',
                arg: Some("alice".into()),
            },
            ModeChange {
                add: false,
                mode: 'v',
                arg: Some("carol".into()),
            },
        ];
        assert_eq!(
            wire(event(&ev("bob", "bob", EventBody::Mode { changes }), &v)),
            vec![":bob!~u@h MODE #Ops +o-v alice carol"]
        );
    }

    #[test]
    fn redactions_only_reach_clients_with_the_cap() {
        let body = |reason: Option<&str>| EventBody::Redact {
            msgid: "abc".into(),
            mseq: Some(3),
            reason: reason.map(String::from),
        };
        assert!(event(&ev("bob", "bob", body(None)), &view(&[])).is_empty());
        let v = view(&[Cap::MessageRedaction]);
        assert_eq!(
            wire(event(&ev("bob", "bob", body(Some("spam here"))), &v)),
            vec![":bob!~u@h REDACT #Ops abc :spam here"]
        );
        // The redactor itself sees it too (the spec's examples echo it).
        let v = view(&[Cap::MessageRedaction, Cap::MessageTags]);
        assert_eq!(
            wire(event(&ev("me", "alice", body(None)), &v)),
            vec!["@msgid=m1 :alice!~u@h REDACT #Ops abc"]
        );
    }

    fn member(nick: &str, op: bool, voice: bool) -> MemberInfo {
        MemberInfo {
            nick: nick.into(),
            user: "~u".into(),
            host: "h".into(),
            realname: "R".into(),
            account: None,
            op,
            voice,
            away: nick == "away",
            bot: nick == "bot",
            gateway: "g".into(),
        }
    }

    #[test]
    fn joined_reply_with_and_without_multi_prefix() {
        let r = Reply::Joined {
            room: "ops".into(),
            name: "Ops".into(),
            topic: Some(TopicInfo {
                text: "t".into(),
                set_by: "bob".into(),
                set_at: 1_000_000_000_000,
            }),
            members: vec![
                member("alice", true, true),
                member("bob", false, true),
                member("carol", false, false),
            ],
            secret: false,
        };
        assert_eq!(
            wire(reply(&r, &view(&[]))),
            vec![
                ":srv 332 alice #Ops :t",
                ":srv 333 alice #Ops bob 1000000000",
                ":srv 353 alice = #Ops :@alice +bob carol",
                ":srv 366 alice #Ops :End of /NAMES list",
            ]
        );
        let lines = wire(reply(&r, &view(&[Cap::MultiPrefix])));
        assert_eq!(lines[2], ":srv 353 alice = #Ops :@+alice +bob carol");
    }

    #[test]
    fn names_split_under_the_limit_and_secret_symbol() {
        let members: Vec<MemberInfo> = (0..200)
            .map(|i| member(&format!("nick{i:03}"), false, false))
            .collect();
        let lines = names_lines("#Ops", &members, true, &view(&[]));
        assert!(lines.len() > 3);
        let mut count = 0;
        for l in &lines[..lines.len() - 1] {
            let w = l.to_wire();
            assert!(w.len() <= 510, "{}", w.len());
            assert!(w.starts_with(":srv 353 alice @ #Ops :"));
            count += w.rsplit(':').next().unwrap().split(' ').count();
        }
        assert_eq!(count, 200);
    }

    #[test]
    fn bot_tag_and_who_flag() {
        let tags: ClientTags = [(BOT_TAG.to_string(), String::new())].into();
        let e = ev(
            "bob",
            "bob",
            EventBody::Message {
                kind: MessageKind::Privmsg,
                text: "beep".into(),
                tags,
            },
        );
        assert_eq!(
            wire(event(&e, &view(&[Cap::MessageTags]))),
            vec!["@msgid=m1;bot :bob!~u@h PRIVMSG #Ops :beep"]
        );
        assert_eq!(
            wire(event(&e, &view(&[]))),
            vec![":bob!~u@h PRIVMSG #Ops :beep"]
        );
        assert_eq!(
            who_line("#Ops", &member("bot", true, false), &view(&[])).to_wire(),
            ":srv 352 alice #Ops ~u h srv bot HB@ :0 R"
        );
    }

    #[test]
    fn who_topic_modes_bans_inviting() {
        let v = view(&[]);
        let r = Reply::Who {
            room: "ops".into(),
            name: "Ops".into(),
            members: vec![member("away", true, true)],
        };
        assert_eq!(
            wire(reply(&r, &v)),
            vec![
                ":srv 352 alice #Ops ~u h srv away G@ :0 R",
                ":srv 315 alice #Ops :End of WHO list"
            ]
        );
        assert_eq!(
            wire(reply(&r, &view(&[Cap::MultiPrefix])))[0],
            ":srv 352 alice #Ops ~u h srv away G@+ :0 R"
        );
        let r = Reply::Topic {
            room: "ops".into(),
            name: "Ops".into(),
            topic: None,
        };
        assert_eq!(
            wire(reply(&r, &v)),
            vec![":srv 331 alice #Ops :No topic is set"]
        );
        let r = Reply::Modes {
            room: "ops".into(),
            name: "Ops".into(),
            modes: "+ntk".into(),
            args: vec!["key".into()],
            created_at: 1_700_000_000_000,
        };
        assert_eq!(
            wire(reply(&r, &v)),
            vec![
                ":srv 324 alice #Ops +ntk key",
                ":srv 329 alice #Ops 1700000000"
            ]
        );
        let r = Reply::BanList {
            room: "ops".into(),
            name: "Ops".into(),
            bans: vec![BanEntry {
                mask: "*!*@x".into(),
                set_by: "bob".into(),
                set_at: 5_000,
            }],
        };
        assert_eq!(
            wire(reply(&r, &v)),
            vec![
                ":srv 367 alice #Ops *!*@x bob 5000",
                ":srv 368 alice #Ops :End of channel ban list"
            ]
        );
        let r = Reply::Inviting {
            room: "ops".into(),
            name: "Ops".into(),
            nick: "bob".into(),
        };
        assert_eq!(wire(reply(&r, &v)), vec![":srv 341 alice bob #Ops"]);
    }

    #[test]
    fn errors_map_to_numerics() {
        let v = view(&[]);
        let e = |code, target: &str, detail: &str| error(code, target, detail, &v).to_wire();
        assert_eq!(
            e(ErrorCode::NoSuchNick, "bob", ""),
            ":srv 401 alice bob :No such nick/channel"
        );
        assert_eq!(
            e(ErrorCode::NoSuchChannel, "x", ""),
            ":srv 403 alice #x :No such channel"
        );
        assert_eq!(
            e(ErrorCode::UserNotInChannel, "bob", "Ops"),
            ":srv 441 alice bob #Ops :They aren't on that channel"
        );
        assert_eq!(
            e(ErrorCode::UserOnChannel, "bob", "Ops"),
            ":srv 443 alice bob #Ops :is already on channel"
        );
        assert_eq!(
            e(ErrorCode::UnknownMode, "Ops", "Z"),
            ":srv 472 alice Z :is unknown mode char to me"
        );
        assert_eq!(
            e(ErrorCode::BadChannelKey, "Ops", ""),
            ":srv 475 alice #Ops :Cannot join channel (+k)"
        );
        assert_eq!(
            e(ErrorCode::ChanOpPrivsNeeded, "Ops", ""),
            ":srv 482 alice #Ops :You're not channel operator"
        );
        assert_eq!(
            e(ErrorCode::NeedMoreParams, "MODE", ""),
            ":srv 461 alice MODE :Not enough parameters"
        );
    }

    #[test]
    fn directs() {
        let d = Direct {
            v: 1,
            id: "d1".into(),
            at: 0,
            from: actor("bob", "bob"),
            body: DirectBody::Message {
                kind: MessageKind::Privmsg,
                text: "psst".into(),
                tags: ClientTags::new(),
            },
        };
        assert_eq!(
            wire(direct(&d, &view(&[]))),
            vec![":bob!~u@h PRIVMSG alice :psst"]
        );
        assert_eq!(
            wire(direct(&d, &view(&[Cap::MessageTags]))),
            vec!["@msgid=d1 :bob!~u@h PRIVMSG alice :psst"]
        );
        let d = Direct {
            body: DirectBody::Invite {
                room: "ops".into(),
                name: "Ops".into(),
            },
            ..d
        };
        assert_eq!(
            wire(direct(&d, &view(&[]))),
            vec![":bob!~u@h INVITE alice #Ops"]
        );
    }

    fn stored(from: Actor, room: Option<&str>, to: Option<&str>, body: EventBody) -> HistoryItem {
        HistoryItem {
            seq: 7,
            mseq: None,
            id: "h1".into(),
            at: 1_763_787_775_123,
            from,
            to: to.map(Into::into),
            room: room.map(Into::into),
            body,
        }
    }

    fn playback(batch: Option<&'static str>, events: bool, stamp: bool) -> Playback<'static> {
        Playback {
            batch,
            events,
            stamp,
            account: None,
            peer: None,
        }
    }

    #[test]
    fn room_history_is_rendered_like_live_traffic_in_a_batch() {
        let item = stored(
            actor("bob", "bob"),
            Some("Ops"),
            None,
            msg(MessageKind::Privmsg, "hi"),
        );
        let v = view(&[Cap::ServerTime, Cap::MessageTags, Cap::Batch]);
        assert_eq!(
            wire(history_item(&item, &playback(Some("b1"), false, false), &v)),
            vec!["@batch=b1;time=2025-11-22T05:02:55.123Z;msgid=h1;+draft/react=x\\sy :bob!~u@h PRIVMSG #Ops :hi"]
        );
        // Without batch or tags: the bare line, as live.
        assert_eq!(
            wire(history_item(
                &item,
                &playback(None, false, false),
                &view(&[])
            )),
            vec![":bob!~u@h PRIVMSG #Ops :hi"]
        );
        let mut logged = item.clone();
        logged.from.account = Some("bobacct".into());
        assert_eq!(
            wire(history_item(
                &logged,
                &playback(Some("b1"), false, false),
                &view(&[Cap::AccountTag])
            )),
            vec!["@batch=b1;account=bobacct :bob!~u@h PRIVMSG #Ops :hi"]
        );
    }

    #[test]
    fn replays_without_server_time_carry_the_time_in_the_text() {
        let item = stored(
            actor("bob", "bob"),
            Some("Ops"),
            None,
            msg(MessageKind::Notice, "old news"),
        );
        assert_eq!(
            wire(history_item(
                &item,
                &playback(None, false, true),
                &view(&[])
            )),
            vec![":bob!~u@h NOTICE #Ops :[2025-11-22 05:02:55] old news"]
        );
    }

    #[test]
    fn own_lines_are_shown_in_history() {
        // Live, our own message needs echo-message and our QUIT reads as a
        // PART; in history they are shown as they happened.
        let own = stored(
            actor("me", "alice"),
            Some("Ops"),
            None,
            msg(MessageKind::Privmsg, "mine"),
        );
        assert_eq!(
            wire(history_item(
                &own,
                &playback(None, false, false),
                &view(&[])
            )),
            vec![":alice!~u@h PRIVMSG #Ops :mine"]
        );
        let quit = stored(
            actor("me", "alice"),
            Some("Ops"),
            None,
            EventBody::Quit {
                reason: "bye".into(),
                event: "e".into(),
            },
        );
        assert_eq!(
            wire(history_item(
                &quit,
                &playback(None, true, false),
                &view(&[])
            )),
            vec![":alice!~u@h QUIT :bye"]
        );
    }

    #[test]
    fn events_only_with_event_playback_and_never_away_or_account() {
        let v = view(&[Cap::AccountNotify, Cap::MessageTags]);
        let join = stored(actor("bob", "bob"), Some("Ops"), None, EventBody::Join);
        assert!(history_item(&join, &playback(None, false, false), &v).is_empty());
        assert_eq!(
            wire(history_item(&join, &playback(None, true, false), &v)),
            vec!["@msgid=h1 :bob!~u@h JOIN #Ops"]
        );
        let tagmsg = stored(
            actor("bob", "bob"),
            Some("Ops"),
            None,
            msg(MessageKind::Tagmsg, ""),
        );
        assert!(history_item(&tagmsg, &playback(None, false, false), &v).is_empty());
        assert_eq!(
            history_item(&tagmsg, &playback(None, true, false), &v).len(),
            1
        );
        for body in [
            EventBody::Away {
                message: Some("x".into()),
                event: "e".into(),
            },
            EventBody::Account {
                account: Some("bob".into()),
                event: "e".into(),
            },
        ] {
            let item = stored(actor("bob", "bob"), Some("Ops"), None, body);
            assert!(history_item(&item, &playback(None, true, false), &v).is_empty());
        }
        let topic = stored(
            actor("bob", "bob"),
            Some("Ops"),
            None,
            EventBody::Topic { topic: "t".into() },
        );
        assert_eq!(
            wire(history_item(
                &topic,
                &playback(None, true, false),
                &view(&[])
            )),
            vec![":bob!~u@h TOPIC #Ops :t"]
        );
    }

    #[test]
    fn direct_history_is_addressed_as_the_viewer_knows_the_conversation() {
        let v = view(&[]);
        let theirs = stored(
            actor("bob", "bob"),
            None,
            Some("alice_old"),
            msg(MessageKind::Privmsg, "hello"),
        );
        let mine = stored(
            actor("me", "alice"),
            None,
            Some("Bob"),
            msg(MessageKind::Privmsg, "hi bob"),
        );
        let p = Playback {
            peer: Some("bob"),
            ..playback(None, false, false)
        };
        assert_eq!(
            wire(history_item(&theirs, &p, &v)),
            vec![":bob!~u@h PRIVMSG alice :hello"],
            "to the viewer's current nick"
        );
        assert_eq!(
            wire(history_item(&mine, &p, &v)),
            vec![":alice!~u@h PRIVMSG bob :hi bob"],
            "to the peer as the client named it"
        );
        let no_peer = playback(None, false, false);
        assert_eq!(
            wire(history_item(&mine, &no_peer, &v)),
            vec![":alice!~u@h PRIVMSG Bob :hi bob"]
        );
        // Logged in: the viewer is recognised by account, in any session.
        let mut other_session = mine.clone();
        other_session.from.sid = "old-session".into();
        other_session.from.account = Some("Alice".into());
        let p = Playback {
            account: Some("alice"),
            ..p
        };
        assert_eq!(
            wire(history_item(&other_session, &p, &v)),
            vec![":alice!~u@h PRIVMSG bob :hi bob"]
        );
    }

    #[test]
    fn batch_and_targets_lines() {
        let v = view(&[]);
        assert_eq!(
            batch_start(&v, "r1", "chathistory", Some("#Ops")).to_wire(),
            ":srv BATCH +r1 chathistory #Ops"
        );
        assert_eq!(
            batch_start(&v, "r2", "draft/chathistory-targets", None).to_wire(),
            ":srv BATCH +r2 draft/chathistory-targets"
        );
        assert_eq!(batch_end(&v, "r1").to_wire(), ":srv BATCH -r1");
        assert_eq!(
            history_target(&v, Some("r2"), "#Ops", 1_763_787_775_123).to_wire(),
            "@batch=r2 :srv CHATHISTORY TARGETS #Ops 2025-11-22T05:02:55.123Z"
        );
    }
}
