//! `REDACT <#channel> <msgid> [:reason]` (IRCv3 `draft/message-redaction`).
//!
//! Three steps, none of which waits: the command asks history for the
//! message ([`crate::redaction::lookup`]); the answer ([`found`]) tells
//! whether it exists and who wrote it, and becomes the `redact` intent;
//! the router answers with the room's `REDACT` event (shown only to
//! clients with the capability, see `render`) or a refusal, which
//! [`refused`] shows as the spec's standard reply.
//!
//! Errors (`FAIL REDACT <code> …`): `INVALID_TARGET` for a target that is
//! not a channel the client is in (direct-message redaction is not
//! supported), `UNKNOWN_MSGID` for an id history does not have as a
//! message of that channel (or has deleted already), `REDACT_FORBIDDEN`
//! for someone else's message when the client is no channel operator.

use bus::history::{HistoryError, HistoryItem};
use bus::schema::ErrorCode;

use crate::irc::client::Client;
use crate::irc::history::{self, Purpose, RequestError};
use crate::irc::line::{truncated, Message};
use crate::irc::validate::{is_channel, room_of, valid_channel, REASONLEN};
use crate::redaction;

const COMMAND: &str = "REDACT";

/// A redaction on its way: what the answers are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacting {
    /// The channel as the client wrote it.
    pub channel: String,
    pub msgid: String,
    pub reason: Option<String>,
}

pub async fn redact(c: &mut Client, m: &Message) {
    let (Some(channel), Some(msgid)) = (m.params.first(), m.params.get(1)) else {
        c.send(c.num().need_more_params(COMMAND));
        return;
    };
    if !is_channel(channel) || !valid_channel(channel) || !c.in_room(room_of(channel)) {
        return invalid_target(c, channel);
    }
    let r = Redacting {
        channel: channel.clone(),
        msgid: msgid.clone(),
        reason: m
            .params
            .get(2)
            .filter(|r| !r.is_empty())
            .map(|r| truncated(r, REASONLEN)),
    };
    if !redaction::plausible_msgid(msgid) {
        return unknown_msgid(c, &r);
    }
    let query = redaction::lookup(room_of(channel), msgid);
    match history::request(c, query, Purpose::Redact(r.clone())).await {
        Ok(()) => {}
        Err(RequestError::Busy) => unavailable(c, &r, "Too many requests in flight"),
        Err(RequestError::Unavailable) => unavailable(c, &r, "History is unavailable"),
    }
}

/// History answered the lookup: publish the intent if the message is there.
pub async fn found(c: &mut Client, r: Redacting, items: &[HistoryItem]) {
    let Some(item) = redaction::target(items, &r.msgid) else {
        return unknown_msgid(c, &r);
    };
    let sid = c.sid().to_string();
    let body = redaction::intent(
        room_of(&r.channel),
        item,
        &sid,
        c.account.as_deref(),
        r.reason.clone(),
    );
    if let Some(id) = c.intent(body).await {
        c.remember_redaction(id, r);
    }
}

/// The lookup failed (`None`: no answer in time).
pub fn lookup_failed(c: &mut Client, r: &Redacting, code: Option<HistoryError>) {
    match code {
        // History tells a room the client may not read from one that does
        // not exist no more than the spec's errors do.
        Some(HistoryError::InvalidTarget) => invalid_target(c, &r.channel),
        Some(HistoryError::Malformed) => unknown_msgid(c, r),
        Some(HistoryError::Internal) | None => unavailable(c, r, "History is unavailable"),
    }
}

/// The router refused the intent.
pub fn refused(c: &Client, r: &Redacting, code: ErrorCode) {
    match code {
        ErrorCode::ChanOpPrivsNeeded => fail(
            c,
            "REDACT_FORBIDDEN",
            &[&r.channel, &r.msgid],
            "You are not authorised to delete this message",
        ),
        _ => invalid_target(c, &r.channel),
    }
}

/// A client's word as a middle parameter of a reply: `*` when it could not
/// be one (empty, a space, a leading `:`, or too long to echo), so a bad
/// argument never breaks the reply's framing.
fn shown(word: &str) -> &str {
    let fits = !word.is_empty()
        && !word.starts_with(':')
        && !word.contains(' ')
        && word.len() <= redaction::MAX_MSGID_BYTES;
    if fits {
        word
    } else {
        "*"
    }
}

fn fail(c: &Client, code: &str, context: &[&str], text: &str) {
    let shown: Vec<&str> = context.iter().map(|p| shown(p)).collect();
    c.fail(COMMAND, code, &shown, text);
}

fn invalid_target(c: &Client, target: &str) {
    let text = format!("You cannot delete messages from {}", shown(target));
    fail(c, "INVALID_TARGET", &[target], &text);
}

fn unknown_msgid(c: &Client, r: &Redacting) {
    fail(
        c,
        "UNKNOWN_MSGID",
        &[&r.channel, &r.msgid],
        "This message does not exist or is too old",
    );
}

fn unavailable(c: &Client, r: &Redacting, text: &str) {
    fail(c, "TEMPORARILY_UNAVAILABLE", &[&r.channel, &r.msgid], text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_words_are_not_echoed_as_parameters() {
        assert_eq!(shown("#ops"), "#ops");
        assert_eq!(shown(""), "*");
        assert_eq!(shown("a b"), "*");
        assert_eq!(shown(":x"), "*");
        assert_eq!(shown(&"x".repeat(500)), "*");
    }
}
