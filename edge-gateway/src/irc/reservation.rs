//! Nick reservation (`irc.reserve_registered_nicks`): a nick that is a
//! registered account's name belongs to that account. A session using it
//! without being logged in to it is warned, and renamed to `Guest<digits>`
//! after `irc.nick_grace_secs` unless it logs in meanwhile.
//!
//! Whether the nick is registered is asked of the auth service (an `Info`
//! request) after registration and after every nick change.

use std::time::Duration;

use bus::names::fold;
use bus::schema::{AuthReplyBody, AuthRequestBody};
use tokio::time::Instant;

use super::auth::{self, Purpose};
use super::client::Client;
use super::commands::{nickserv, user};
use super::line::Message;

/// How many `Guest<digits>` nicks are tried before giving up (each may be taken).
const GUEST_TRIES: usize = 3;

/// A pending rename: the account whose nick the session holds.
#[derive(Debug)]
pub struct Guard {
    pub account: String,
    pub deadline: Instant,
}

/// Whether `name` could be an account name (2..=32 of `[a-z0-9_-]`,
/// starting with a letter); others need no question to the service.
pub fn could_be_account(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == b'_' || ch == b'-')
}

/// The account the session would need for its nick, if the reservation
/// applies to it at all.
fn needed(c: &Client) -> Option<String> {
    if !c.gw.irc.reserve_registered_nicks || c.session.is_none() {
        return None;
    }
    let acct = fold(c.nick.as_deref()?);
    (could_be_account(&acct) && c.account.as_deref() != Some(acct.as_str())).then_some(acct)
}

/// Asks whether the current nick is a registered account (after
/// registration or a nick change). It uses the background slot, so it
/// neither waits for nor blocks the client's own auth dialogue, and a newer
/// check replaces an older one.
pub async fn check(c: &mut Client) {
    c.guard = None;
    let Some(account) = needed(c) else {
        return;
    };
    let body = AuthRequestBody::Info {
        account: account.clone(),
    };
    auth::request(c, body, Purpose::Reserve { account }).await;
}

/// The answer: a registered nick starts the grace period.
pub fn on_info(c: &mut Client, account: String, body: AuthReplyBody) {
    if !matches!(body, AuthReplyBody::Info { .. }) || needed(c).as_deref() != Some(&account) {
        return;
    }
    let grace = c.gw.irc.nick_grace_secs.clamp(1, 24 * 3600);
    nickserv::say(
        c,
        format!(
            "This nickname is registered. Log in to {account} within {grace} seconds \
             (/msg NickServ IDENTIFY <password>) or your nick will be changed."
        ),
    );
    c.guard = Some(Guard {
        account,
        deadline: Instant::now() + Duration::from_secs(grace),
    });
}

/// When the grace period ends, if one runs.
pub fn deadline(c: &Client) -> Option<Instant> {
    c.guard.as_ref().map(|g| g.deadline)
}

/// The grace period ended: rename unless the session logged in or moved on.
pub async fn enforce(c: &mut Client) {
    let Some(guard) = c.guard.take() else {
        return;
    };
    if needed(c).as_deref() != Some(guard.account.as_str()) {
        return;
    }
    for _ in 0..GUEST_TRIES {
        let guest = format!("Guest{}", rand::random_range(10_000..100_000u32));
        user::nick(c, &Message::new("NICK").param(guest)).await;
        if c.nick.as_deref().map(fold).as_deref() != Some(guard.account.as_str()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_shaped_names() {
        assert!(could_be_account("alice"));
        assert!(could_be_account("a-b_9"));
        assert!(!could_be_account("a"));
        assert!(!could_be_account("9lives"));
        assert!(!could_be_account("al[ce]"));
        assert!(!could_be_account(&"a".repeat(33)));
    }
}
