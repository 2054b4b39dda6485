//! Name folding, escaping and partitioning.
//!
//! Rooms and nicks are compared case-insensitively with ASCII case mapping
//! (advertised to IRC clients as `CASEMAPPING=ascii`). The folded form is the
//! identity; the display form (as first written) is kept separately.
//!
//! Names travel inside AMQP routing keys and NATS KV keys, which both restrict
//! their alphabet, so [`escape`] maps any name to a token made only of
//! `[a-z0-9_-]` and `=XX` escapes. The escape is reversible ([`unescape`]).

/// Folds a room or nick name for comparison (ASCII case mapping).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Escapes a (folded) name into `[a-z0-9_-]` plus `=XX` (uppercase hex of
/// each other byte). `ops` stays `ops`; `a.b` becomes `a=2Eb`.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => out.push(b as char),
            _ => {
                out.push('=');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

/// Reverses [`escape`]. Returns `None` for input that [`escape`] could not
/// have produced.
pub fn unescape(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The routing key of a room's events on the rooms exchange: `room.<escaped>`.
/// Takes the folded room name.
pub fn room_routing_key(room: &str) -> String {
    format!("room.{}", escape(room))
}

/// Which intent partition serialises a target (a folded room name).
///
/// FNV-1a, not the standard library's randomly keyed hasher: every process,
/// of every version, must pick the same partition for the same room.
pub fn partition_of(target: &str, partitions: u16) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u16
}

/// Whether `subject` matches the glob `mask` (ASCII case-insensitive).
///
/// Iterative with single-star backtracking: linear in practice and at worst
/// `O(len(mask) × len(subject))`, so a hostile mask cannot blow up a
/// router partition or a LIST the way a naive recursive matcher could.
pub fn glob_matches(mask: &str, subject: &str) -> bool {
    let p = mask.as_bytes();
    let s = subject.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    // Position after the last `*` seen, and the subject position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            pi += 1;
            star = Some((pi, si));
        } else if let Some((after_star, tried)) = star {
            // Let the last star absorb one more character and retry.
            pi = after_star;
            si = tried + 1;
            star = Some((after_star, si));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        for name in ["ops", "a.b", "#*", "ünï", "a=b", "Z", ""] {
            assert_eq!(unescape(&escape(name)).as_deref(), Some(name));
        }
        assert_eq!(escape("ops-1_x"), "ops-1_x");
        assert_eq!(escape("a.b"), "a=2Eb");
        assert_eq!(unescape("=G1"), None);
    }

    #[test]
    fn escaped_names_are_safe_tokens() {
        let e = escape("*.#[]\\ x");
        assert!(e
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'='));
    }

    #[test]
    fn partition_is_stable() {
        assert_eq!(partition_of("ops", 16), partition_of("ops", 16));
        assert!(partition_of("anything", 7) < 7);
        assert_eq!(partition_of("x", 0), 0);
    }
}
