//! PRIVMSG, NOTICE and TAGMSG, to channels (an intent to the router) and to
//! nicks (straight to the target's session queue, resolved in NATS).
//!
//! NOTICE never triggers an automatic error reply, as RFC 2812 requires.

use bus::schema::{ClientTags, Direct, DirectBody, IntentBody, MessageKind, SCHEMA_VERSION};
use bus::{new_id, now_ms};

use super::split_list;
use crate::bus_link::confirmed;
use crate::irc::caps::Cap;
use crate::irc::client::{Client, Pending};
use crate::irc::line::{truncated, Message, MAX_BODY_BYTES};
use crate::irc::numeric::*;
use crate::irc::render::{chat_line, with_account};
use crate::irc::validate::{is_channel, room_of, valid_channel, valid_nick, MAXTARGETS};

/// Client-only tags relayed per message, in bytes (the IRCv3 limit).
const CLIENT_TAGS_MAX: usize = 4094;

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
    let tags = client_tags(m);
    if kind == MessageKind::Tagmsg && tags.is_empty() {
        return;
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
        let text = truncated(text, text_budget(&source, &m.command, target));
        if is_channel(target) {
            if !valid_channel(target) {
                if !quiet {
                    c.send(c.num().no_such_channel(target));
                }
                continue;
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

/// A message to one nick: resolve, publish to its session queue
/// (mandatory), and answer 401 if it cannot be delivered.
async fn private(c: &mut Client, target: &str, kind: MessageKind, text: String, tags: ClientTags) {
    let quiet = kind == MessageKind::Notice;
    let gw = c.gw.clone();
    let found = if !valid_nick(target) {
        Ok(None)
    } else if kind == MessageKind::Privmsg {
        // The record too: its away message is shown to the sender.
        gw.registry
            .session_by_nick(target)
            .await
            .map(|r| r.map(|r| (r.actor.sid, r.actor.nick, r.away)))
    } else {
        gw.registry
            .nick_claim(target)
            .await
            .map(|c| c.map(|c| (c.sid, c.nick, None)))
    };
    let (sid, nick, away) = match found {
        Ok(Some(found)) => found,
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
    if let Some(away) = away {
        c.send(c.num().n(RPL_AWAY).param(nick.as_str()).text(away));
    }
    let id = new_id();
    let at = now_ms();
    let echo = if c.caps.has(Cap::EchoMessage) {
        chat_line(&c.source(), &nick, kind, &text, &tags, &id, at, &c.view())
            .map(|m| with_account(m, &c.view(), c.account.as_deref()))
    } else {
        None
    };
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
            };
            c.confirms
                .push(Box::pin(async move { (p, confirmed(pending).await) }));
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing a direct message failed");
            c.bus_trouble();
        }
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
