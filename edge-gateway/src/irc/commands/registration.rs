//! Connection registration: CAP, NICK (before registration), USER, PASS,
//! PING, PONG, QUIT, and what happens when registration completes (nick
//! claim, session record, session queue, welcome burst).

use super::{chanserv, nickserv, query};
use crate::irc::caps::{self, Cap};
use crate::irc::client::{Client, Registered};
use crate::irc::isupport;
use crate::irc::line::{truncated, Message};
use crate::irc::numeric::*;
use crate::irc::validate::{username, valid_nick, REALNAMELEN, REASONLEN};
use crate::sessions::{self, KillCause, StartError};

/// `CAP LS [302] | LIST | REQ :caps | END`.
pub async fn cap(c: &mut Client, m: &Message) {
    let sub = m
        .params
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let reply = |c: &Client, sub: &str| {
        Message::new("CAP")
            .with_source(c.server())
            .param(c.nick())
            .param(sub)
    };
    match sub.as_str() {
        "LS" => {
            let version = m
                .params
                .get(1)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(301);
            c.cap_version = c.cap_version.max(version);
            if c.cap_version >= 302 {
                // cap-notify is implied for 302 clients.
                c.caps.set(Cap::CapNotify, true);
            }
            if c.session.is_none() {
                c.cap_negotiating = true;
            }
            c.send(reply(c, "LS").text(caps::ls_list(version >= 302)));
        }
        "LIST" => c.send(reply(c, "LIST").text(c.caps.names())),
        "REQ" => {
            if c.session.is_none() {
                c.cap_negotiating = true;
            }
            let arg = m.params.get(1).map(|s| s.trim()).unwrap_or("");
            match caps::parse_req(arg, c.cap_version >= 302) {
                Some(changes) => {
                    for (cap, on) in changes {
                        c.caps.set(cap, on);
                    }
                    c.send(reply(c, "ACK").text(arg));
                }
                None => c.send(reply(c, "NAK").text(arg)),
            }
        }
        "END" => {
            if c.session.is_none() && c.cap_negotiating {
                c.cap_negotiating = false;
                complete(c).await;
            }
        }
        _ => {
            let shown = m.params.first().map(String::as_str).unwrap_or("*");
            c.send(
                c.num()
                    .n(ERR_INVALIDCAPCMD)
                    .param(shown)
                    .text("Invalid CAP command"),
            );
        }
    }
}

/// NICK before registration: remember it; it is claimed on completion.
pub async fn nick(c: &mut Client, m: &Message) {
    let Some(nick) = m.params.first().filter(|n| !n.is_empty()) else {
        c.send(c.num().n(ERR_NONICKNAMEGIVEN).text("No nickname given"));
        return;
    };
    if !valid_nick(nick) || nickserv::is_nickserv(nick) || chanserv::is_chanserv(nick) {
        c.send(c.num().erroneous_nick(nick));
        return;
    }
    c.nick = Some(nick.clone());
    complete(c).await;
}

/// `USER <ident> <mode> <unused> :<realname>`.
pub async fn user(c: &mut Client, m: &Message) {
    if c.session.is_some() {
        c.send(c.num().already_registered());
        return;
    }
    if m.params.len() < 4 || m.params[0].is_empty() {
        c.send(c.num().need_more_params("USER"));
        return;
    }
    c.user = Some(username(&m.params[0]));
    c.realname = truncated(&m.params[3], REALNAMELEN);
    complete(c).await;
}

/// PASS: accepted and ignored until accounts exist.
pub fn pass(c: &mut Client, m: &Message) {
    if c.session.is_some() {
        c.send(c.num().already_registered());
    } else if m.params.is_empty() {
        c.send(c.num().need_more_params("PASS"));
    }
}

pub fn ping(c: &mut Client, m: &Message) {
    match m.params.first() {
        Some(token) => {
            let pong = Message::new("PONG")
                .with_source(c.server())
                .param(c.server())
                .text(token.as_str());
            c.send(pong);
        }
        None => c.send(c.num().n(ERR_NOORIGIN).text("No origin specified")),
    }
}

/// QUIT: the connection loop ends the session with this reason.
pub fn quit(c: &mut Client, m: &Message) {
    let reason = match m.params.first().filter(|r| !r.is_empty()) {
        Some(msg) => format!("Quit: {}", truncated(msg, REASONLEN)),
        None => "Client Quit".to_string(),
    };
    c.quit = Some(reason);
}

/// Completes registration once NICK and USER are in and CAP negotiation
/// (if started) has ended.
pub async fn complete(c: &mut Client) {
    // An auth request in flight (SASL, REGISTER) finishes first, so the
    // session starts with its account; its answer calls us again.
    if c.session.is_some() || c.cap_negotiating || c.user.is_none() || c.auth.is_some() {
        return;
    }
    let Some(nick) = c.nick.clone() else {
        return;
    };
    let gw = c.gw.clone();
    let sid = c.pending_sid.clone();
    // `c.actor()` names the session's sid and nick only once `session`
    // exists.
    let mut actor = c.actor();
    actor.sid = sid.clone();
    actor.nick = nick.clone();
    let started = match sessions::start(&gw, actor, "irc", c.kill.clone(), gw.irc.sendq_lines).await
    {
        Ok(started) => started,
        Err(StartError::NickInUse) => {
            c.send(c.num().nick_in_use(&nick));
            c.nick = None;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "starting a session failed");
            c.kill
                .kill(KillCause::Unavailable, "Service temporarily unavailable");
            return;
        }
    };
    c.session = Some(Registered {
        sid: sid.clone(),
        shared: started.shared,
        rooms: Default::default(),
    });
    c.inbox = Some(started.inbox);
    if !c.ensure_session_queue().await {
        c.kill
            .kill(KillCause::Unavailable, "Service temporarily unavailable");
        return;
    }
    if c.security.tls {
        let certfp = c.security.certfp.clone();
        c.update_record(|r| {
            r.tls = true;
            r.certfp = certfp;
        })
        .await;
    }
    tracing::debug!(%sid, %nick, host = %c.host, tls = c.security.tls, "registered");
    welcome(c).await;
    crate::irc::reservation::check(c).await;
    // Logged in before registration (SASL): what was kept for the account
    // while it had no session follows the welcome burst.
    crate::irc::history::deliver_pending(c).await;
}

/// 001–005, LUSERS and MOTD.
async fn welcome(c: &mut Client) {
    let gw = c.gw.clone();
    let irc = &gw.irc;
    let n = c.num();
    let created = gw.started.format("%a %b %d %Y at %H:%M:%S UTC");
    c.send(n.n(RPL_WELCOME).text(format!(
        "Welcome to the {} Network, {}",
        irc.network,
        c.source()
    )));
    c.send(n.n(RPL_YOURHOST).text(format!(
        "Your host is {}, running version {}",
        irc.server_name,
        crate::gateway::VERSION
    )));
    c.send(
        n.n(RPL_CREATED)
            .text(format!("This server was created {created}")),
    );
    c.send(
        n.n(RPL_MYINFO)
            .param(irc.server_name.as_str())
            .param(crate::gateway::VERSION)
            .param("Biosw")
            .param("bklimnostv"),
    );
    c.send_all(isupport::lines(
        &irc.server_name,
        c.nick(),
        &irc.network,
        irc.chathistory_max,
    ));
    query::lusers(c);
    query::motd(c);
}
