//! SASL pieces that do not depend on the protocol carrying them: IRC's
//! `AUTHENTICATE` and XMPP's `<auth>`/`<response>` both hand the decoded
//! bytes here. Everything that decides (credentials, SCRAM) is the auth
//! service's.

/// A PLAIN message (RFC 4616): `authzid NUL authcid NUL password`, as
/// `(authzid, authcid, password)`. An empty authzid is none; an empty
/// authcid or password, a missing or extra field, or invalid UTF-8 is
/// malformed (`None`).
pub fn parse_plain(bytes: &[u8]) -> Option<(Option<String>, String, String)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    let authzid = (!authzid.is_empty()).then(|| authzid.to_string());
    Some((authzid, authcid.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_parses_three_fields() {
        assert_eq!(
            parse_plain(b"\0alice\0secretpw"),
            Some((None, "alice".into(), "secretpw".into()))
        );
        assert_eq!(
            parse_plain(b"alice\0alice\0pw"),
            Some((Some("alice".into()), "alice".into(), "pw".into()))
        );
        assert_eq!(parse_plain(b"alice\0pw"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"a\0b\0c\0d"), None);
        assert_eq!(parse_plain(b"\0a\0\xff"), None);
    }
}
