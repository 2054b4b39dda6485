//! JIDs (RFC 7622) as this gateway uses them, and the mapping of the
//! platform's names onto them.
//!
//! * A person is `<nick>@<domain>`: an XMPP session's nick is its account
//!   name, and an IRC user `bob` (logged in as account `bob`) is
//!   `bob@<domain>`, so replying to a message reaches its sender whatever
//!   the sender's protocol.
//! * A room is `<room>@conference.<domain>`, its occupants
//!   `<room>@conference.<domain>/<nick>`.
//!
//! Room names and nicks of lowercase letters, digits and the usual
//! punctuation map as they are. Characters a JID localpart cannot hold
//! (space, `"`, `&`, `'`, `/`, `:`, `<`, `>`, `@`) and the backslash are
//! written with XEP-0106 JID escaping (`\20`, `\22`, …, `\5c`), which
//! [`unescape_local`] reverses: IRC `#a:b` is `a\3ab@conference.localhost`.

/// The characters XEP-0106 escapes, each as `\` and two lowercase hex digits.
const ESCAPED: &[char] = &[' ', '"', '&', '\'', '/', ':', '<', '>', '@', '\\'];

/// Longest localpart, resourcepart and domainpart (RFC 7622 §3).
const MAX_PART_BYTES: usize = 1023;

/// A parsed JID: `local@domain/resource`, localpart and resource optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jid {
    pub local: Option<String>,
    pub domain: String,
    pub resource: Option<String>,
}

impl Jid {
    /// Parses a JID; `None` if malformed (empty parts, too long, control
    /// characters or spaces outside the resource). Localpart and domain are
    /// case-folded (ASCII: the platform's case mapping).
    pub fn parse(s: &str) -> Option<Jid> {
        let (rest, resource) = match s.split_once('/') {
            Some((rest, res)) => (rest, Some(res)),
            None => (s, None),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((local, domain)) => (Some(local), domain),
            None => (None, rest),
        };
        let part_ok = |p: &str, spaces: bool| {
            !p.is_empty()
                && p.len() <= MAX_PART_BYTES
                && !p.chars().any(|c| c.is_control() || (!spaces && c == ' '))
        };
        if !part_ok(domain, false) || domain.contains('@') {
            return None;
        }
        if let Some(l) = local {
            if !part_ok(l, false)
                || l.chars()
                    .any(|c| matches!(c, '"' | '&' | '\'' | ':' | '<' | '>'))
            {
                return None;
            }
        }
        if let Some(r) = resource {
            if !part_ok(r, true) {
                return None;
            }
        }
        Some(Jid {
            local: local.map(str::to_ascii_lowercase),
            domain: domain.to_ascii_lowercase(),
            resource: resource.map(str::to_string),
        })
    }

    /// `local@domain` (or `domain`).
    pub fn bare(&self) -> String {
        match &self.local {
            Some(l) => format!("{l}@{}", self.domain),
            None => self.domain.clone(),
        }
    }
}

/// XEP-0106 escaping of a name for a JID localpart.
pub fn escape_local(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if ESCAPED.contains(&c) {
            out.push_str(&format!("\\{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape_local`]; a backslash not starting one of the ten
/// escapes stays as it is (XEP-0106 §4.3).
pub fn unescape_local(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut rest = local;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let decoded = tail
            .get(1..3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .map(char::from)
            .filter(|c| ESCAPED.contains(c));
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[3..];
            }
            None => {
                out.push('\\');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The MUC service's domain: `conference.<domain>`.
pub fn muc_domain(domain: &str) -> String {
    format!("conference.{domain}")
}

/// A room's bare JID from its (folded or display) name.
pub fn room_jid(room: &str, domain: &str) -> String {
    format!(
        "{}@{}",
        escape_local(&room.to_ascii_lowercase()),
        muc_domain(domain)
    )
}

/// An occupant's JID: the room's JID with the nick as resource.
pub fn occupant_jid(room: &str, nick: &str, domain: &str) -> String {
    format!("{}/{nick}", room_jid(room, domain))
}

/// A person's bare JID from a nick.
pub fn user_jid(nick: &str, domain: &str) -> String {
    format!("{}@{domain}", escape_local(&nick.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_folds() {
        let j = Jid::parse("Alice@LocalHost/Laptop 1").unwrap();
        assert_eq!(j.local.as_deref(), Some("alice"));
        assert_eq!(j.domain, "localhost");
        assert_eq!(j.resource.as_deref(), Some("Laptop 1"));
        assert_eq!(j.bare(), "alice@localhost");
        assert_eq!(Jid::parse("localhost").unwrap().bare(), "localhost");
        assert_eq!(
            Jid::parse("ops@conference.localhost/a/b")
                .unwrap()
                .resource
                .as_deref(),
            Some("a/b")
        );
        for bad in [
            "",
            "@localhost",
            "a@",
            "a@b/",
            "a b@c",
            "a@b@c",
            "x\u{7}@y",
            "a<b@c",
        ] {
            assert!(Jid::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        for name in ["ops", "a:b", "a b", "x@y/z", r"back\slash", "l'été", r"\20"] {
            let local = escape_local(name);
            assert!(!local.contains([' ', ':', '@', '/', '\'']), "{local}");
            assert_eq!(unescape_local(&local), name);
        }
        assert_eq!(escape_local("a:b"), r"a\3ab");
        assert_eq!(unescape_local(r"a\zz"), r"a\zz");
        assert_eq!(room_jid("Ops", "localhost"), "ops@conference.localhost");
        assert_eq!(
            occupant_jid("ops", "Bob", "localhost"),
            "ops@conference.localhost/Bob"
        );
        assert_eq!(user_jid("Bob", "localhost"), "bob@localhost");
    }
}
