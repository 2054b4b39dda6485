//! What makes a nick, a channel name, a username and a host acceptable.
//!
//! The limits here are the ones advertised in ISUPPORT (NICKLEN, CHANNELLEN,
//! USERLEN, HOSTLEN): whatever we advertise, we enforce.

use std::net::IpAddr;

pub const NICKLEN: usize = 30;
pub const CHANNELLEN: usize = 50;
pub const USERLEN: usize = 18;
/// Longest host shown (an operator's CHGHOST is held to it).
pub const HOSTLEN: usize = 64;
pub const TOPICLEN: usize = 390;
pub const KICKLEN: usize = 390;
pub const AWAYLEN: usize = 390;
/// Longest QUIT or PART reason we relay.
pub const REASONLEN: usize = 390;
pub const REALNAMELEN: usize = 200;
pub const CHANLIMIT: usize = 50;
pub const MAXTARGETS: usize = 4;
/// Mode changes with a parameter per MODE command.
pub const MODES: usize = 12;

fn is_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

/// 1..=NICKLEN characters; first a letter or special, then letters,
/// digits, specials or `-`.
pub fn valid_nick(nick: &str) -> bool {
    let mut chars = nick.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    nick.len() <= NICKLEN
        && (first.is_ascii_alphabetic() || is_special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || is_special(c) || c == '-')
}

/// `#` then 1.. bytes, CHANNELLEN bytes in all, none of space, comma, BEL,
/// NUL, CR, LF or `:`.
pub fn valid_channel(name: &str) -> bool {
    name.starts_with('#')
        && (2..=CHANNELLEN).contains(&name.len())
        && !name
            .bytes()
            .any(|b| matches!(b, b' ' | b',' | 0x07 | 0 | b'\r' | b'\n' | b':'))
}

/// Whether a target names a channel (rather than a nick).
pub fn is_channel(target: &str) -> bool {
    target.starts_with('#')
}

/// The room of a channel name: the name without its `#`.
pub fn room_of(channel: &str) -> &str {
    channel.strip_prefix('#').unwrap_or(channel)
}

/// The IRC channel name of a room display name.
pub fn channel_of(room: &str) -> String {
    format!("#{room}")
}

/// The username shown in hostmasks: the client's ident, reduced to safe
/// characters, prefixed with `~` (no ident lookup is done) and cut to
/// USERLEN.
pub fn username(ident: &str) -> String {
    let clean: String = ident
        .chars()
        .filter(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '_' | '.' | '[' | ']' | '{' | '}' | '`' | '^' | '|' | '\\'
                )
        })
        .take(USERLEN - 1)
        .collect();
    if clean.is_empty() {
        "~user".into()
    } else {
        format!("~{clean}")
    }
}

/// The host shown for a client: its IP (IPv4-mapped IPv6 as IPv4). An IPv6
/// text starting with `:` gets a leading `0` so it can be a middle
/// parameter (`::1` → `0::1`), as other servers do.
pub fn host_of(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let s = ip.to_string();
    if s.starts_with(':') {
        format!("0{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        for ok in ["a", "alice", "[bot]", "x-1", "`_^{|}\\", &"n".repeat(30)] {
            assert!(valid_nick(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "a b",
            "a!b",
            "a@b",
            "a#",
            "é",
            &"n".repeat(31),
            "a,b",
            "a:b",
        ] {
            assert!(!valid_nick(bad), "{bad}");
        }
    }

    #[test]
    fn channels() {
        for ok in [
            "#a",
            "#ops",
            "#a.b-c",
            "#ünï",
            &format!("#{}", "c".repeat(49)),
        ] {
            assert!(valid_channel(ok), "{ok}");
        }
        for bad in [
            "#",
            "ops",
            "&a",
            "#a b",
            "#a,b",
            "#a\x07",
            "#a:b",
            &format!("#{}", "c".repeat(50)),
        ] {
            assert!(!valid_channel(bad), "{bad}");
        }
        assert_eq!(room_of("#Ops"), "Ops");
        assert_eq!(channel_of("Ops"), "#Ops");
    }

    #[test]
    fn usernames_and_hosts() {
        assert_eq!(username("alice"), "~alice");
        assert_eq!(username("a@b!c d"), "~abcd");
        assert_eq!(username("@@@"), "~user");
        assert_eq!(username(&"x".repeat(40)).len(), USERLEN);
        assert_eq!(host_of("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(host_of("::1".parse().unwrap()), "0::1");
        assert_eq!(host_of("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
