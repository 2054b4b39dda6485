//! One IRC message: parsing what a client sent and serialising what we send.
//!
//! Grammar (Modern IRC + IRCv3 message-tags):
//! `['@' tags SPACE] [':' source SPACE] command {SPACE param} [SPACE ':' trailing]`.
//!
//! Limits are checked here, not in the transport, because they apply to the
//! two parts separately: the tags part (from `@` to its space, inclusive) may
//! be up to [`MAX_TAGS_BYTES`], the rest up to [`MAX_BODY_BYTES`] including
//! the CRLF. The transport only caps the raw line at the sum, so a hostile
//! client can never make us buffer more than that.

/// Maximum size of the tags part, `@` and the separating space included.
pub const MAX_TAGS_BYTES: usize = 8191;
/// Maximum size of the rest of a line, CRLF included.
pub const MAX_BODY_BYTES: usize = 512;
/// The most a transport has to buffer for one line (without its line ending).
pub const MAX_LINE_BYTES: usize = MAX_TAGS_BYTES + MAX_BODY_BYTES;

/// A parsed or to-be-sent IRC message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Tags in order; an empty value means "no value".
    pub tags: Vec<(String, String)>,
    pub source: Option<String>,
    /// Upper-cased for parsed messages.
    pub command: String,
    pub params: Vec<String>,
    /// Serialise the last parameter with a `:` even when it would not need
    /// one: clients expect text (reasons, messages) in trailing form.
    pub trailing: bool,
}

/// Why a line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace: silently ignored.
    #[error("empty line")]
    Empty,
    /// Over one of the size limits: answered with 417.
    #[error("input line was too long")]
    TooLong,
    /// Not UTF-8: answered with `FAIL <command> INVALID_UTF8`.
    #[error("invalid UTF-8")]
    InvalidUtf8 { command: Option<String> },
    /// Contains a NUL byte, which no IRC message may: silently dropped.
    #[error("NUL byte in line")]
    Nul,
}

impl Message {
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            ..Self::default()
        }
    }

    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Appends a middle parameter (must contain no space and not start with `:`
    /// unless it is the last one).
    pub fn param(mut self, p: impl Into<String>) -> Self {
        self.params.push(p.into());
        self
    }

    /// Appends the final, free-text parameter (always sent with a `:`).
    pub fn text(mut self, t: impl Into<String>) -> Self {
        self.params.push(t.into());
        self.trailing = true;
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The value of a tag, if present.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Serialises without the line ending. The part after the tags is cut
    /// (at a character boundary) to fit [`MAX_BODY_BYTES`] with its CRLF:
    /// a last line of defence, callers size their texts beforehand.
    pub fn to_wire(&self) -> String {
        let mut out = String::with_capacity(64);
        if !self.tags.is_empty() {
            out.push('@');
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(k);
                if !v.is_empty() {
                    out.push('=');
                    escape_tag_value(v, &mut out);
                }
            }
            out.push(' ');
        }
        let body_start = out.len();
        if let Some(src) = &self.source {
            out.push(':');
            out.push_str(src);
            out.push(' ');
        }
        out.push_str(&self.command);
        let last = self.params.len().saturating_sub(1);
        for (i, p) in self.params.iter().enumerate() {
            out.push(' ');
            let needs_colon = p.is_empty() || p.contains(' ') || p.starts_with(':');
            if i == last && (self.trailing || needs_colon) {
                out.push(':');
            }
            out.push_str(p);
        }
        truncate_at_char(&mut out, body_start + MAX_BODY_BYTES - 2);
        out
    }
}

/// Truncates `s` to at most `max` bytes without splitting a character.
pub fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncated(s: &str, max: usize) -> String {
    let mut owned = s.to_string();
    truncate_at_char(&mut owned, max);
    owned
}

/// Escapes a tag value per IRCv3 message-tags.
pub fn escape_tag_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Unescapes a tag value; an unknown escape drops the backslash and a
/// trailing lone backslash is dropped, as the specification requires.
pub fn unescape_tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Parses one line (without its `\n`; a trailing `\r` is removed here).
pub fn parse(raw: &[u8]) -> Result<Message, ParseError> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.contains(&0) {
        return Err(ParseError::Nul);
    }
    let (tag_bytes, body) = split_tags(raw)?;
    let body = trim_start_spaces(body);
    if body.len() > MAX_BODY_BYTES - 2 {
        return Err(ParseError::TooLong);
    }
    if body.iter().all(|b| *b == b' ') {
        return Err(ParseError::Empty);
    }
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(ParseError::InvalidUtf8 {
            command: lossy_command(body),
        });
    };
    let tags = match tag_bytes {
        Some(t) => match std::str::from_utf8(t) {
            Ok(t) => parse_tags(t),
            Err(_) => {
                return Err(ParseError::InvalidUtf8 {
                    command: lossy_command(body.as_bytes()),
                })
            }
        },
        None => Vec::new(),
    };
    let mut rest = body;
    let mut source = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (src, tail) = after.split_once(' ').unwrap_or((after, ""));
        source = Some(src.to_string());
        rest = tail.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut params = Vec::new();
    let mut trailing = false;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(t) = rest.strip_prefix(':') {
            params.push(t.to_string());
            trailing = true;
            break;
        }
        let (p, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p.to_string());
        rest = tail;
    }
    Ok(Message {
        tags,
        source,
        command: command.to_ascii_uppercase(),
        params,
        trailing,
    })
}

/// Splits off the tags part, enforcing its size limit.
fn split_tags(raw: &[u8]) -> Result<(Option<&[u8]>, &[u8]), ParseError> {
    if raw.first() != Some(&b'@') {
        return Ok((None, raw));
    }
    match raw.iter().position(|b| *b == b' ') {
        Some(sp) if sp + 1 > MAX_TAGS_BYTES => Err(ParseError::TooLong),
        Some(sp) => Ok((Some(&raw[1..sp]), &raw[sp + 1..])),
        None if raw.len() > MAX_TAGS_BYTES => Err(ParseError::TooLong),
        None => Ok((Some(&raw[1..]), &[])),
    }
}

fn trim_start_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| **c == b' ').count();
    &b[n..]
}

fn parse_tags(t: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for item in t.split(';') {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            continue;
        }
        let v = unescape_tag_value(v);
        // A repeated key: the last value wins.
        tags.retain(|(existing, _)| existing != k);
        tags.push((k.to_string(), v));
    }
    tags
}

/// The command of a line that is not UTF-8, if it can be made out, so the
/// `FAIL` reply can name it.
fn lossy_command(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut words = text.split(' ').filter(|w| !w.is_empty());
    let mut first = words.next()?;
    if first.starts_with(':') {
        first = words.next()?;
    }
    let ok = !first.is_empty() && first.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| first.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_commands() {
        let m = parse(b"privmsg #chan :hello there\r").unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, vec!["#chan", "hello there"]);
        assert!(m.trailing);
        let m = parse(b"NICK   alice").unwrap();
        assert_eq!(m.params, vec!["alice"]);
        assert!(!m.trailing);
    }

    #[test]
    fn keeps_an_empty_trailing_parameter() {
        let m = parse(b"TOPIC #c :").unwrap();
        assert_eq!(m.params, vec!["#c", ""]);
        let m = parse(b"TOPIC #c").unwrap();
        assert_eq!(m.params, vec!["#c"]);
    }

    #[test]
    fn parses_source_and_tags() {
        let m = parse(b"@+typing=active;time=x;+a=b\\sc\\:d\\\\ :nick!u@h TAGMSG #c").unwrap();
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.tag_value("+typing"), Some("active"));
        assert_eq!(m.tag_value("+a"), Some("b c;d\\"));
        assert_eq!(m.command, "TAGMSG");
    }

    #[test]
    fn tag_escaping_round_trips() {
        for v in ["a b;c\\d\r\ne", "plain", "trailing\\"] {
            let mut esc = String::new();
            escape_tag_value(v, &mut esc);
            assert!(!esc.contains(' ') && !esc.contains(';'));
            assert_eq!(unescape_tag_value(&esc), v);
        }
        assert_eq!(
            unescape_tag_value("a\\b\\"),
            "ab",
            "unknown escape and lone backslash"
        );
    }

    #[test]
    fn empty_and_blank_lines_are_empty() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"   \r"), Err(ParseError::Empty));
        assert_eq!(parse(b"@a=b "), Err(ParseError::Empty));
    }

    #[test]
    fn enforces_body_and_tag_limits() {
        let ok = format!("PRIVMSG #c :{}", "x".repeat(510 - 12));
        assert_eq!(ok.len(), 510);
        assert!(parse(ok.as_bytes()).is_ok());
        let long = format!("{ok}x");
        assert_eq!(parse(long.as_bytes()), Err(ParseError::TooLong));
        // Tags have their own, larger budget.
        let tags = format!("@+k={} PING x", "v".repeat(8000));
        assert!(parse(tags.as_bytes()).is_ok());
        let tags = format!("@+k={} PING x", "v".repeat(8190));
        assert_eq!(parse(tags.as_bytes()), Err(ParseError::TooLong));
    }

    #[test]
    fn invalid_utf8_names_the_command() {
        assert_eq!(
            parse(b"PRIVMSG #c :\xff\xfe"),
            Err(ParseError::InvalidUtf8 {
                command: Some("PRIVMSG".into())
            })
        );
        assert_eq!(
            parse(b"\xff"),
            Err(ParseError::InvalidUtf8 { command: None })
        );
        assert_eq!(parse(b"PING a\0b"), Err(ParseError::Nul));
    }

    #[test]
    fn serialises_with_colon_only_where_needed() {
        let m = Message::new("PRIVMSG")
            .with_source("a!b@c")
            .param("#c")
            .param("hi");
        assert_eq!(m.to_wire(), ":a!b@c PRIVMSG #c hi");
        let m = Message::new("PRIVMSG").param("#c").param("hi there");
        assert_eq!(m.to_wire(), "PRIVMSG #c :hi there");
        let m = Message::new("PART").param("#c").param("");
        assert_eq!(m.to_wire(), "PART #c :");
        let m = Message::new("001").param("me").text("Welcome");
        assert_eq!(m.to_wire(), "001 me :Welcome");
        let m = Message::new("JOIN")
            .param("#c")
            .tag("time", "t")
            .tag("+x", "a b");
        assert_eq!(m.to_wire(), "@time=t;+x=a\\sb JOIN #c");
    }

    #[test]
    fn serialised_body_never_exceeds_the_limit() {
        let m = Message::new("PRIVMSG")
            .with_source("n!u@h")
            .param("#c")
            .text("é".repeat(400));
        let wire = m.to_wire();
        assert!(wire.len() <= 510, "{}", wire.len());
        let tagged = m.tag("msgid", "abc").to_wire();
        assert!(tagged.len() <= 510 + "@msgid=abc ".len());
    }
}
