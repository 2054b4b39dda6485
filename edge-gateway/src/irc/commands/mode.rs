//! MODE: channel modes go to the router; user modes (+i, +w) are the
//! connection's own.

use bus::names::fold;
use bus::schema::IntentBody;

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
        user_mode(c, target, m.params.get(1).map(String::as_str));
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

/// The result of applying a user mode string.
#[derive(Debug, Default, PartialEq)]
struct UserModeResult {
    /// Applied changes, e.g. `+i-w`.
    applied: String,
    unknown: bool,
}

/// Applies a user mode string to `(invisible, wallops)`. `o` cannot be set
/// by a user and is ignored; unknown letters are reported once.
fn apply_user_modes(modestr: &str, invisible: &mut bool, wallops: &mut bool) -> UserModeResult {
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
            'i' => &mut *invisible,
            'w' => &mut *wallops,
            'o' => continue,
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
    res
}

fn user_mode(c: &mut Client, target: &str, modestr: Option<&str>) {
    if fold(target) != fold(c.nick()) {
        c.send(
            c.num()
                .n(ERR_USERSDONTMATCH)
                .text("Can't change mode for other users"),
        );
        return;
    }
    let Some(modestr) = modestr else {
        let mut modes = String::from("+");
        if c.umode_invisible {
            modes.push('i');
        }
        if c.umode_wallops {
            modes.push('w');
        }
        c.send(c.num().n(RPL_UMODEIS).param(modes));
        return;
    };
    let (mut i, mut w) = (c.umode_invisible, c.umode_wallops);
    let res = apply_user_modes(modestr, &mut i, &mut w);
    (c.umode_invisible, c.umode_wallops) = (i, w);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_modes() {
        let (mut i, mut w) = (false, false);
        let r = apply_user_modes("+iw", &mut i, &mut w);
        assert_eq!(
            r,
            UserModeResult {
                applied: "+iw".into(),
                unknown: false
            }
        );
        assert!(i && w);
        let r = apply_user_modes("-i+wZo", &mut i, &mut w);
        assert_eq!(
            r,
            UserModeResult {
                applied: "-i".into(),
                unknown: true
            }
        );
        assert!(!i && w);
    }
}
