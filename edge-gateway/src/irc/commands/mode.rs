//! MODE: channel modes go to the router; user modes (+i, +w, +B) are the
//! connection's own. Bot mode (`+B`, IRCv3 bot mode) is also told to the
//! session record (WHOIS 335) and the rooms (WHO flag `B`), and marks the
//! session's messages with the `bot` tag.

use bus::names::fold;
use bus::schema::{IntentBody, MemberChange};

use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::modestr::parse_channel_modes;
use crate::irc::numeric::*;
use crate::irc::validate::{is_channel, room_of, valid_channel};

pub async fn mode(c: &mut Client, m: &Message) {
    let Some(target) = m.params.first() else {
        c.send(c.num().need_more_params("MODE"));
        return;
    };
    if is_channel(target) {
        channel_mode(c, target, m).await;
    } else {
        user_mode(c, target, m.params.get(1).map(String::as_str)).await;
    }
}

async fn channel_mode(c: &mut Client, chan: &str, m: &Message) {
    if !valid_channel(chan) {
        c.send(c.num().no_such_channel(chan));
        return;
    }
    let changes = match m.params.get(1) {
        Some(modestr) => parse_channel_modes(modestr, &m.params[2..]),
        None => Vec::new(),
    };
    if m.params.len() > 1 && changes.is_empty() {
        // `MODE #c +` and the like: nothing to do.
        return;
    }
    c.intent(IntentBody::Mode {
        room: room_of(chan).to_string(),
        changes,
    })
    .await;
}

/// The user modes a connection has.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UserModes {
    pub invisible: bool,
    pub wallops: bool,
    /// `+B`: the client is a bot (ISUPPORT `BOT=B`).
    pub bot: bool,
    /// `+o`: an IRC operator (set by OPER only; `-o` gives it up).
    pub oper: bool,
    /// `+s`: an operator who gets server notices (set by OPER; operators
    /// may set and clear it, others cannot set it).
    pub snotice: bool,
}

impl UserModes {
    /// `+iwoB` as set, for 221.
    fn letters(self) -> String {
        let mut modes = String::from("+");
        for (on, letter) in [
            (self.invisible, 'i'),
            (self.wallops, 'w'),
            (self.oper, 'o'),
            (self.snotice, 's'),
            (self.bot, 'B'),
        ] {
            if on {
                modes.push(letter);
            }
        }
        modes
    }
}

/// The result of applying a user mode string.
#[derive(Debug, Default, PartialEq)]
struct UserModeResult {
    /// Applied changes, e.g. `+i-w`.
    applied: String,
    unknown: bool,
}

/// Applies a user mode string. `+o` cannot be set by a user (OPER does)
/// and is ignored, `-o` gives operator status up; unknown letters are
/// reported once.
fn apply_user_modes(modestr: &str, modes: &mut UserModes) -> UserModeResult {
    let mut res = UserModeResult::default();
    let mut add = true;
    let mut last_sign = None;
    for ch in modestr.chars() {
        let flag = match ch {
            '+' => {
                add = true;
                continue;
            }
            '-' => {
                add = false;
                continue;
            }
            'i' => &mut modes.invisible,
            'w' => &mut modes.wallops,
            'B' => &mut modes.bot,
            'o' if !add => &mut modes.oper,
            'o' => continue,
            's' if !add || modes.oper => &mut modes.snotice,
            's' => continue,
            _ => {
                res.unknown = true;
                continue;
            }
        };
        if *flag != add {
            *flag = add;
            if last_sign != Some(add) {
                res.applied.push(if add { '+' } else { '-' });
                last_sign = Some(add);
            }
            res.applied.push(ch);
        }
    }
    // Server notices are for operators: giving up `+o` ends `+s` too.
    if !modes.oper && modes.snotice {
        modes.snotice = false;
        if last_sign != Some(false) {
            res.applied.push('-');
        }
        res.applied.push('s');
    }
    res
}

async fn user_mode(c: &mut Client, target: &str, modestr: Option<&str>) {
    if fold(target) != fold(c.nick()) {
        c.send(
            c.num()
                .n(ERR_USERSDONTMATCH)
                .text("Can't change mode for other users"),
        );
        return;
    }
    let Some(modestr) = modestr else {
        c.send(c.num().n(RPL_UMODEIS).param(c.umodes.letters()));
        return;
    };
    let was_bot = c.umodes.bot;
    let res = apply_user_modes(modestr, &mut c.umodes);
    if res.unknown {
        c.send(c.num().n(ERR_UMODEUNKNOWNFLAG).text("Unknown MODE flag"));
    }
    if !res.applied.is_empty() {
        let nick = c.nick().to_string();
        c.send(
            Message::new("MODE")
                .with_source(c.source())
                .param(nick)
                .text(res.applied),
        );
    }
    if !c.umodes.oper && c.oper.take().is_some() {
        c.update_record(|r| r.oper = false).await;
    }
    c.follow_snotices();
    let bot = c.umodes.bot;
    if bot != was_bot {
        c.update_record(|r| r.bot = bot).await;
        super::user::announce(c, MemberChange::Bot { bot }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_modes() {
        let mut m = UserModes::default();
        let r = apply_user_modes("+iwB", &mut m);
        assert_eq!(
            r,
            UserModeResult {
                applied: "+iwB".into(),
                unknown: false
            }
        );
        assert!(m.invisible && m.wallops && m.bot);
        assert_eq!(m.letters(), "+iwB");
        let r = apply_user_modes("-iB+wZo", &mut m);
        assert_eq!(
            r,
            UserModeResult {
                applied: "-iB".into(),
                unknown: true
            }
        );
        assert!(!m.invisible && m.wallops && !m.bot);
    }
}
