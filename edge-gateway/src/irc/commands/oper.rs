//! IRC operators: `OPER` with names and argon2 password hashes from
//! `[irc.opers]` (made with `chatctl oper hash`), `KILL` and `CHGHOST`.
//!
//! Operator status belongs to the connection (as on every IRC server); it
//! grants KILL. A kill travels like NickServ GHOST: a `Kill` delivered to
//! the target's session queue on whichever gateway holds it, so the
//! target sees `ERROR :Closing Link: … (Killed (…))` and everyone else its
//! QUIT with that reason.

use bus::schema::DirectBody;

use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::numeric::*;
use crate::irc::validate::{valid_nick, HOSTLEN};
use crate::snotice;

/// `OPER <name> <password>`.
pub async fn oper(c: &mut Client, m: &Message) {
    let [name, password, ..] = m.params.as_slice() else {
        c.send(c.num().need_more_params("OPER"));
        return;
    };
    let Some(phc) = c.gw.irc.opers.get(&name.to_ascii_lowercase()).cloned() else {
        c.send(c.num().n(ERR_NOOPERHOST).text("No O-lines for your host"));
        return;
    };
    let password = password.clone();
    // argon2 is deliberately slow: off the connection's task.
    let matches = tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .unwrap_or(false);
    if !matches {
        crate::metrics::auth_failure("oper");
        c.send(c.num().n(ERR_PASSWDMISMATCH).text("Password incorrect"));
        let text = format!("Failed OPER attempt as {name} by {}", who(c));
        snotice::publish(&c.gw, text).await;
        return;
    }
    c.oper = Some(name.to_ascii_lowercase());
    c.umodes.oper = true;
    c.umodes.snotice = true;
    c.update_record(|r| r.oper = true).await;
    tracing::info!(oper = %name, nick = %c.nick(), host = %c.host, "OPER");
    let text = format!("{} is now an operator ({name})", who(c));
    snotice::publish(&c.gw, text).await;
    c.send(c.num().n(RPL_YOUREOPER).text("You are now an IRC operator"));
    c.send(
        Message::new("MODE")
            .with_source(c.source())
            .param(c.nick())
            .text("+os"),
    );
    c.follow_snotices();
}

/// The client as notices name it.
fn who(c: &Client) -> String {
    snotice::who(&c.actor())
}

fn verify(password: &str, phc: &str) -> bool {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `KILL <nick> [:<reason>]`.
pub async fn kill(c: &mut Client, m: &Message) {
    let Some(target) = m.params.first().filter(|t| !t.is_empty()).cloned() else {
        c.send(c.num().need_more_params("KILL"));
        return;
    };
    let Some(oper) = c.oper.clone() else {
        c.send(
            c.num()
                .n(ERR_NOPRIVILEGES)
                .text("Permission Denied - You're not an IRC operator"),
        );
        return;
    };
    let reason = m
        .params
        .get(1)
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| "No reason given".into());
    let rec = if valid_nick(&target) {
        c.gw.registry.session_by_nick(&target).await
    } else {
        Ok(None)
    };
    let rec = match rec {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            c.send(c.num().no_such_nick(&target));
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "KILL lookup failed");
            c.bus_trouble();
            return;
        }
    };
    let reason_for = format!("{}: {reason}", c.nick());
    if !crate::sessions::kill_remote(&c.gw, &c.actor(), &rec.actor.sid, reason_for).await {
        c.bus_trouble();
        return;
    }
    tracing::info!(%oper, killer = %c.nick(), target = %rec.actor.nick, %reason, "KILL");
    let text = format!(
        "Received KILL message for {} from {} ({reason})",
        snotice::who(&rec.actor),
        c.nick()
    );
    snotice::publish(&c.gw, text).await;
    c.send(
        Message::new("NOTICE")
            .with_source(c.server())
            .param(c.nick())
            .text(format!("*** Killed {} ({reason})", rec.actor.nick)),
    );
}

/// Whether `host` may be shown as a host: letters, digits and `.-:/_`,
/// not starting with `:` or `-` (that would break the line or look like
/// an option), at most [`HOSTLEN`] bytes.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= HOSTLEN
        && !host.starts_with([':', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:/_".contains(&b))
}

/// `CHGHOST <nick> <host>`: an operator changes the host someone is shown
/// with (a cloak, a vhost). Like KILL it travels to the target's session
/// queue; the target's gateway tells the client and its rooms (IRCv3
/// `chghost`).
pub async fn chghost(c: &mut Client, m: &Message) {
    let [target, host, ..] = m.params.as_slice() else {
        c.send(c.num().need_more_params("CHGHOST"));
        return;
    };
    if c.oper.is_none() {
        c.send(
            c.num()
                .n(ERR_NOPRIVILEGES)
                .text("Permission Denied - You're not an IRC operator"),
        );
        return;
    }
    if !valid_host(host) {
        c.fail("CHGHOST", "INVALID_HOST", &[host], "Invalid host");
        return;
    }
    let rec = if valid_nick(target) {
        c.gw.registry.session_by_nick(target).await
    } else {
        Ok(None)
    };
    let rec = match rec {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            c.send(c.num().no_such_nick(target));
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "CHGHOST lookup failed");
            c.bus_trouble();
            return;
        }
    };
    let body = DirectBody::ChangeHost { host: host.clone() };
    if !crate::sessions::direct_to(&c.gw, &c.actor(), &rec.actor.sid, body).await {
        c.bus_trouble();
        return;
    }
    tracing::info!(oper = ?c.oper, target = %rec.actor.nick, %host, "CHGHOST");
    let text = format!(
        "{} changed the host of {} to {host}",
        c.nick(),
        snotice::who(&rec.actor)
    );
    snotice::publish(&c.gw, text).await;
    c.send(
        Message::new("NOTICE")
            .with_source(c.server())
            .param(c.nick())
            .text(format!(
                "*** Changed the host of {} to {host}",
                rec.actor.nick
            )),
    );
}

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn hosts_that_can_be_shown() {
        assert!(valid_host("staff.example.org"));
        assert!(valid_host("user/alice"));
        assert!(valid_host("2001:db8::1"));
        assert!(!valid_host(""));
        assert!(!valid_host(":evil"));
        assert!(!valid_host("-x"));
        assert!(!valid_host("a b"));
        assert!(!valid_host("a@b"));
        assert!(!valid_host("a!b"));
        assert!(valid_host(&"h".repeat(64)));
        assert!(!valid_host(&"h".repeat(65)));
    }
}
