//! PRIVMSG, NOTICE and TAGMSG, to channels (an intent to the router) and to
//! nicks (straight to the target's session queue, resolved in NATS).
//!
//! PRIVMSG and NOTICE to a nick are also kept in history: once the live
//! delivery is confirmed, a copy ([`DirectLog`]) goes to the history
//! service, and only once that is confirmed is the sender's echo sent. A
//! nick nobody holds may be an account's: the auth service is asked, and
//! if it is, the message is kept (only) in history, for delivery when the
//! account next logs in.
//!
//! NOTICE never triggers an automatic error reply, as RFC 2812 requires.

use bus::history::{DirectLog, Peer};
use bus::names::fold;
use bus::schema::BOT_TAG;
use bus::schema::{
    AuthReplyBody, AuthRequestBody, ClientTags, Direct, DirectBody, IntentBody, MessageKind,
    SCHEMA_VERSION,
};
use bus::{new_id, now_ms};

use super::split_list;
use crate::bus_link::Outcome;
use crate::irc::auth::{self, Lookup, Purpose};
use crate::irc::caps::Cap;
use crate::irc::client::{Client, Pending};
use crate::irc::line::{truncated, Message, MAX_BODY_BYTES};
use crate::irc::numeric::*;
use crate::irc::render::{self, chat_line, with_account};
use crate::irc::reservation::could_be_account;
use crate::irc::validate::{is_channel, room_of, valid_channel, valid_nick, MAXTARGETS};
use crate::typing;

/// Client-only tags relayed per message, in bytes (the IRCv3 limit).
const CLIENT_TAGS_MAX: usize = 4094;
/// Messages to one offline nick that may wait for its account lookup.
const OFFLINE_QUEUE_MAX: usize = 16;
pub const ERR_TARGETTOOFAST: u16 = 439;

/// Keeps the `+`-prefixed tags, as long as they fit the client tag budget.
pub fn client_tags(m: &Message) -> ClientTags {
    let mut out = ClientTags::new();
    let mut size = 0;
    for (k, v) in m
        .tags
        .iter()
        .filter(|(k, _)| k.starts_with('+') && k.len() > 1)
    {
        size += k.len() + v.len() * 2 + 2;
        if size > CLIENT_TAGS_MAX {
            break;
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The longest text that still lets `:<source> <CMD> <target> :<text>`
/// fit in one line when relayed.
fn text_budget(source: &str, cmd: &str, target: &str) -> usize {
    (MAX_BODY_BYTES - 2).saturating_sub(source.len() + cmd.len() + target.len() + 5)
}

pub async fn message(c: &mut Client, m: &Message) {
    let kind = match m.command.as_str() {
        "NOTICE" => MessageKind::Notice,
        "TAGMSG" => MessageKind::Tagmsg,
        _ => MessageKind::Privmsg,
    };
    let quiet = kind == MessageKind::Notice;
    if kind == MessageKind::Tagmsg && !c.caps.has(Cap::MessageTags) {
        // Only clients that negotiated message-tags may send TAGMSG.
        return;
    }
    let Some(targets) = m.params.first().filter(|t| !t.is_empty()) else {
        if !quiet {
            c.send(
                c.num()
                    .n(ERR_NORECIPIENT)
                    .text(format!("No recipient given ({})", m.command)),
            );
        }
        return;
    };
    let text = m.params.get(1).map(String::as_str).unwrap_or("");
    if kind != MessageKind::Tagmsg && text.is_empty() {
        if !quiet {
            c.send(c.num().n(ERR_NOTEXTTOSEND).text("No text to send"));
        }
        return;
    }
    let mut tags = client_tags(m);
    if kind == MessageKind::Tagmsg && tags.is_empty() {
        return;
    }
    if c.umodes.bot {
        tags.insert(BOT_TAG.into(), String::new());
    }
    let targets: Vec<&str> = split_list(targets).collect();
    if targets.len() > MAXTARGETS {
        if !quiet {
            c.send(c.num().too_many_targets(&m.params[0]));
        }
        return;
    }
    let source = c.source();
    for target in targets {
        if super::nickserv::is_nickserv(target) {
            if kind == MessageKind::Privmsg {
                super::nickserv::command(c, m.params.get(1).map(String::as_str).unwrap_or(""))
                    .await;
            }
            continue;
        }
        if super::chanserv::is_chanserv(target) {
            if kind == MessageKind::Privmsg {
                super::chanserv::command(c, text).await;
            }
            continue;
        }
        let text = truncated(text, text_budget(&source, &m.command, target));
        if is_channel(target) {
            if !valid_channel(target) {
                if !quiet {
                    c.send(c.num().no_such_channel(target));
                }
                continue;
            }
            if kind == MessageKind::Tagmsg && typing::only_typing(&tags) {
                if let Some(name) = joined_name(c, target) {
                    // Typing is a NATS signal, not a router event (see
                    // `typing`); the echo comes from here.
                    let ev = typing::signal(&c.gw, &c.actor(), &name, tags.clone()).await;
                    let lines = render::event(&ev, &c.view());
                    c.send_all(lines);
                    continue;
                }
            }
            let body = IntentBody::Message {
                room: room_of(target).to_string(),
                kind,
                text,
                tags: tags.clone(),
            };
            if quiet {
                c.notice_intent(body).await;
            } else {
                c.intent(body).await;
            }
        } else {
            private(c, target, kind, text, tags.clone()).await;
        }
    }
}

/// The display name of channel `target` if the client is in it.
fn joined_name(c: &Client, target: &str) -> Option<String> {
    let s = c.session.as_ref()?;
    s.rooms.get(&fold(room_of(target))).cloned()
}

/// A message to one nick: resolve, publish to its session queue
/// (mandatory), and answer 401 if it cannot be delivered. A nick nobody
/// holds may be an offline account ([`offline`]).
async fn private(c: &mut Client, target: &str, kind: MessageKind, text: String, tags: ClientTags) {
    if kind != MessageKind::Tagmsg {
        crate::metrics::message_in("irc");
    }
    let quiet = kind == MessageKind::Notice;
    let gw = c.gw.clone();
    let found = if !valid_nick(target) {
        Ok(None)
    } else if kind == MessageKind::Tagmsg {
        gw.registry
            .nick_claim(target)
            .await
            .map(|c| c.map(|c| (c.sid, c.nick, None, None)))
    } else {
        // The record: its away message is shown to the sender, its account
        // goes into the copy kept in history.
        gw.registry
            .session_by_nick(target)
            .await
            .map(|r| r.map(|r| (r.actor.sid, r.actor.nick, r.away, r.actor.account)))
    };
    let (sid, nick, away, account) = match found {
        Ok(Some(found)) => found,
        Ok(None) if kind != MessageKind::Tagmsg && valid_nick(target) => {
            offline(c, target, kind, text, tags).await;
            return;
        }
        Ok(None) => {
            if !quiet {
                c.send(c.num().no_such_nick(target));
            }
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "nick lookup failed");
            c.bus_trouble();
            return;
        }
    };
    if let Some(away) = away.filter(|_| kind == MessageKind::Privmsg) {
        c.send(c.num().n(RPL_AWAY).param(nick.as_str()).text(away));
    }
    let id = new_id();
    let at = now_ms();
    let echo = echo_line(c, &nick, kind, &text, &tags, &id, at);
    // TAGMSG (typing notifications and the like) is not history.
    let log = (kind != MessageKind::Tagmsg).then(|| {
        Box::new(DirectLog {
            v: SCHEMA_VERSION,
            id: id.clone(),
            at,
            from: c.actor(),
            to: Peer {
                nick: nick.clone(),
                account,
                sid: Some(sid.clone()),
            },
            kind,
            text: text.clone(),
            tags: tags.clone(),
            offline: false,
        })
    });
    let direct = Direct {
        v: SCHEMA_VERSION,
        id,
        at,
        from: c.actor(),
        body: DirectBody::Message { kind, text, tags },
    };
    match gw.link.publish_direct(&sid, direct).await {
        Ok(pending) => {
            let p = Pending::Direct {
                target: nick,
                kind,
                echo,
                log,
            };
            c.await_confirm(p, pending);
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing a direct message failed");
            c.bus_trouble();
        }
    }
}

/// The sender's own copy of a private message, if it asked for echo-message.
fn echo_line(
    c: &Client,
    to: &str,
    kind: MessageKind,
    text: &str,
    tags: &ClientTags,
    id: &str,
    at: i64,
) -> Option<Message> {
    if !c.caps.has(Cap::EchoMessage) {
        return None;
    }
    // An IRC client's own text is one line already.
    chat_line(&c.source(), to, kind, text, tags, id, at, &c.view())
        .into_iter()
        .next()
        .map(|m| with_account(m, &c.view(), c.account.as_deref()))
}

/// A message to a nick nobody holds, waiting for the auth service to say
/// whether the nick is an account's.
#[derive(Debug)]
pub struct OfflineMessage {
    /// The nick as the sender addressed it.
    pub nick: String,
    pub id: String,
    pub at: i64,
    pub kind: MessageKind,
    pub text: String,
    pub tags: ClientTags,
    pub echo: Option<Message>,
}

/// PRIVMSG/NOTICE to a nick nobody holds: if it names an account, keep the
/// message for it. Messages to the same name share one lookup (and so keep
/// their order).
async fn offline(c: &mut Client, target: &str, kind: MessageKind, text: String, tags: ClientTags) {
    let quiet = kind == MessageKind::Notice;
    let account = fold(target);
    if !could_be_account(&account) {
        if !quiet {
            c.send(c.num().no_such_nick(target));
        }
        return;
    }
    let id = new_id();
    let at = now_ms();
    let msg = OfflineMessage {
        nick: target.to_string(),
        echo: echo_line(c, target, kind, &text, &tags, &id, at),
        id,
        at,
        kind,
        text,
        tags,
    };
    let waiting = c
        .auth_lookups
        .iter_mut()
        .find_map(|p| match &mut p.purpose {
            Purpose::OfflineDm {
                account: a,
                messages,
            } if *a == account => Some(messages),
            _ => None,
        });
    let outcome = match waiting {
        Some(messages) if messages.len() < OFFLINE_QUEUE_MAX => {
            messages.push(msg);
            Lookup::Sent
        }
        Some(_) => Lookup::Full,
        None => {
            let body = AuthRequestBody::Info {
                account: account.clone(),
            };
            let purpose = Purpose::OfflineDm {
                account,
                messages: vec![msg],
            };
            auth::lookup(c, body, purpose).await
        }
    };
    match outcome {
        Lookup::Sent => {}
        _ if quiet => {}
        Lookup::Full => c.send(
            c.num()
                .n(ERR_TARGETTOOFAST)
                .param(target)
                .text("Target change too fast, please wait a moment"),
        ),
        Lookup::Failed => c.bus_trouble(),
    }
}

/// The auth service's answer about an offline nick: an enabled account gets
/// the messages kept for it; anything else is 401 (never for NOTICE).
pub async fn on_offline_info(c: &mut Client, messages: Vec<OfflineMessage>, body: AuthReplyBody) {
    let account = match body {
        AuthReplyBody::Info {
            account,
            disabled: false,
            ..
        } => account,
        _ => {
            for m in messages {
                if m.kind != MessageKind::Notice {
                    c.send(c.num().no_such_nick(&m.nick));
                }
            }
            return;
        }
    };
    for m in messages {
        let log = DirectLog {
            v: SCHEMA_VERSION,
            id: m.id,
            at: m.at,
            from: c.actor(),
            to: Peer {
                nick: m.nick.clone(),
                account: Some(account.clone()),
                sid: None,
            },
            kind: m.kind,
            text: m.text,
            tags: m.tags,
            offline: true,
        };
        log_direct(c, m.nick, m.kind, m.echo, log).await;
    }
}

/// Publishes a private message's copy for the history service (after its
/// live delivery was confirmed, or as the only copy for an offline
/// account); the echo waits for its confirm ([`on_logged`]).
pub async fn log_direct(
    c: &mut Client,
    target: String,
    kind: MessageKind,
    echo: Option<Message>,
    log: DirectLog,
) {
    let offline = log.offline;
    match c.gw.link.publish_direct_log(log).await {
        Ok(pending) => {
            let p = Pending::DirectLog {
                target,
                kind,
                echo,
                offline,
            };
            c.await_confirm(p, pending);
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing a direct message log failed");
            on_logged(c, &target, kind, echo, offline, Outcome::Failed);
        }
    }
}

/// The copy for the history service was confirmed (or not). A message
/// delivered live was sent either way (the sender gets its echo); one kept
/// only in history was not, and the sender is told.
pub fn on_logged(
    c: &mut Client,
    target: &str,
    kind: MessageKind,
    echo: Option<Message>,
    offline: bool,
    outcome: Outcome,
) {
    let ok = outcome == Outcome::Confirmed;
    crate::metrics::direct_log(offline, ok);
    if !ok && !offline {
        tracing::warn!("a private message was delivered but not kept in history");
    }
    if !ok && offline {
        if kind != MessageKind::Notice {
            c.bus_trouble();
        }
        return;
    }
    if let Some(m) = echo {
        c.send(m);
    }
    if offline && kind == MessageKind::Privmsg && c.history.first_offline_notice(target) {
        c.send(
            Message::new("NOTICE")
                .with_source(c.server())
                .param(c.nick())
                .text(format!(
                    "{target} is not connected; your message will be delivered when they next log in"
                )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irc::line::parse;

    #[test]
    fn keeps_only_client_tags() {
        let m = parse(b"@+typing=active;time=x;msgid=y;+=z PRIVMSG #c :hi").unwrap();
        let tags = client_tags(&m);
        assert_eq!(tags.len(), 1);
        assert_eq!(tags.get("+typing").map(String::as_str), Some("active"));
    }

    #[test]
    fn relayed_text_fits_one_line() {
        let source = "nick!~user@127.0.0.1";
        let budget = text_budget(source, "PRIVMSG", "#chan");
        let line = format!(":{source} PRIVMSG #chan :{}", "x".repeat(budget));
        assert_eq!(line.len(), 510);
    }
}
