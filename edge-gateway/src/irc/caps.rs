//! IRCv3 capabilities: the ones this server offers and a client's enabled set.
//!
//! A set is a bitmask so the renderer can consult it for every line it
//! produces at no cost.

/// A capability this server supports. (`CapNotify` is the capability's
/// own name, `cap-notify`.)
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    CapNotify,
    EchoMessage,
    MessageTags,
    MultiPrefix,
    ServerTime,
    Batch,
    Sasl,
    AccountRegistration,
    AccountTag,
    AccountNotify,
    ExtendedJoin,
    Chathistory,
    EventPlayback,
    MessageRedaction,
    AwayNotify,
    InviteNotify,
    Setname,
    LabeledResponse,
    Chghost,
}

/// Every capability offered, in the order `CAP LS` lists them.
pub const SUPPORTED: [Cap; 19] = [
    Cap::CapNotify,
    Cap::EchoMessage,
    Cap::MessageTags,
    Cap::MultiPrefix,
    Cap::ServerTime,
    Cap::Batch,
    Cap::Sasl,
    Cap::AccountRegistration,
    Cap::AccountTag,
    Cap::AccountNotify,
    Cap::ExtendedJoin,
    Cap::Chathistory,
    Cap::EventPlayback,
    Cap::MessageRedaction,
    Cap::AwayNotify,
    Cap::InviteNotify,
    Cap::Setname,
    Cap::LabeledResponse,
    Cap::Chghost,
];

/// The SASL mechanisms offered (the `sasl` cap value and numeric 908).
pub const SASL_MECHANISMS: &str = "PLAIN,SCRAM-SHA-256,EXTERNAL";

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::CapNotify => "cap-notify",
            Cap::EchoMessage => "echo-message",
            Cap::MessageTags => "message-tags",
            Cap::MultiPrefix => "multi-prefix",
            Cap::ServerTime => "server-time",
            Cap::Batch => "batch",
            Cap::Sasl => "sasl",
            Cap::AccountRegistration => "draft/account-registration",
            Cap::AccountTag => "account-tag",
            Cap::AccountNotify => "account-notify",
            Cap::ExtendedJoin => "extended-join",
            // Work-in-progress specification: the draft names, as every
            // implementation of it uses.
            Cap::Chathistory => "draft/chathistory",
            Cap::EventPlayback => "draft/event-playback",
            Cap::MessageRedaction => "draft/message-redaction",
            Cap::AwayNotify => "away-notify",
            Cap::InviteNotify => "invite-notify",
            Cap::Setname => "setname",
            Cap::LabeledResponse => "labeled-response",
            Cap::Chghost => "chghost",
        }
    }

    /// The value shown after `=` in `CAP LS 302` (301 clients get names only).
    pub fn value(self) -> Option<&'static str> {
        match self {
            Cap::Sasl => Some(SASL_MECHANISMS),
            // Registration works before the connection is registered.
            Cap::AccountRegistration => Some("before-connect"),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Cap> {
        SUPPORTED.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

/// The capabilities a client has enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(u32);

impl CapSet {
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn set(&mut self, cap: Cap, on: bool) {
        if on {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// Space-separated names, for `CAP LIST`.
    pub fn names(self) -> String {
        SUPPORTED
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Cap::name)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The `CAP LS` list; with values (`sasl=PLAIN,…`) for `CAP LS 302`.
pub fn ls_list(with_values: bool) -> String {
    SUPPORTED
        .map(|c| match c.value() {
            Some(v) if with_values => format!("{}={v}", c.name()),
            _ => c.name().to_string(),
        })
        .join(" ")
}

/// Parses a `CAP REQ` argument into `(cap, enable)` changes. `None` if any
/// item is unknown or not allowed, since a request is granted all or
/// nothing. A 302 client has `cap-notify` implicitly and may not drop it.
pub fn parse_req(arg: &str, is_302: bool) -> Option<Vec<(Cap, bool)>> {
    let mut changes = Vec::new();
    for item in arg.split(' ').filter(|s| !s.is_empty()) {
        let (name, on) = match item.strip_prefix('-') {
            Some(n) => (n, false),
            None => (item, true),
        };
        let cap = Cap::from_name(name)?;
        if cap == Cap::CapNotify && !on && is_302 {
            return None;
        }
        changes.push((cap, on));
    }
    if changes.is_empty() {
        return None;
    }
    Some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn req_is_all_or_nothing() {
        assert_eq!(
            parse_req("echo-message -server-time", false),
            Some(vec![(Cap::EchoMessage, true), (Cap::ServerTime, false)])
        );
        assert_eq!(parse_req("echo-message sasl=PLAIN", false), None);
        assert_eq!(
            parse_req("sasl draft/account-registration", false),
            Some(vec![(Cap::Sasl, true), (Cap::AccountRegistration, true)])
        );
        assert_eq!(parse_req("", false), None);
        assert_eq!(parse_req("-cap-notify", true), None);
        assert!(parse_req("-cap-notify", false).is_some());
    }

    #[test]
    fn set_tracks_bits() {
        let mut s = CapSet::default();
        s.set(Cap::MessageTags, true);
        s.set(Cap::Batch, true);
        assert!(s.has(Cap::MessageTags) && !s.has(Cap::ServerTime));
        assert_eq!(s.names(), "message-tags batch");
        s.set(Cap::Batch, false);
        assert_eq!(s.names(), "message-tags");
        s.set(Cap::ExtendedJoin, true);
        assert!(s.has(Cap::ExtendedJoin) && !s.has(Cap::AccountNotify));
        assert_eq!(
            ls_list(false),
            "cap-notify echo-message message-tags multi-prefix server-time batch \
             sasl draft/account-registration account-tag account-notify extended-join \
             draft/chathistory draft/event-playback draft/message-redaction \
             away-notify invite-notify setname labeled-response chghost"
        );
        s.set(Cap::EventPlayback, true);
        assert!(s.has(Cap::EventPlayback) && !s.has(Cap::Chathistory));
        assert_eq!(
            parse_req("draft/chathistory draft/event-playback", true),
            Some(vec![(Cap::Chathistory, true), (Cap::EventPlayback, true)])
        );
        assert!(ls_list(true).contains(" sasl=PLAIN,SCRAM-SHA-256,EXTERNAL "));
        assert!(ls_list(true).contains(" draft/account-registration=before-connect "));
    }
}
