//! Message text as IRC can carry it: one line per message, of bounded
//! length. XMPP bodies and Tinode content may hold newlines and any
//! length; these helpers cut them into IRC-sized lines.

/// Bytes of text per IRC line: what fits a 512-byte line after a long
/// source prefix, command and target.
pub const MAX_LINE_BYTES: usize = 400;

/// The non-empty lines of `text`, each cut at character boundaries to at
/// most `max` bytes.
pub fn split_lines(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split(['\n', '\r']) {
        if line.trim().is_empty() {
            continue;
        }
        let mut rest = line;
        while !rest.is_empty() {
            let mut cut = rest.len().min(max.max(4));
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(&rest[..cut]);
            rest = &rest[cut..];
        }
    }
    out
}

/// IRC text as other protocols write it: CTCP ACTION becomes `/me …`.
pub fn me_of(text: &str) -> String {
    match text
        .strip_prefix("\u{1}ACTION ")
        .map(|t| t.strip_suffix('\u{1}').unwrap_or(t))
    {
        Some(action) => format!("/me {action}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_cut() {
        assert_eq!(split_lines("hi", 10), vec!["hi"]);
        assert_eq!(split_lines("a\n\nb\r\nc\rd", 10), vec!["a", "b", "c", "d"]);
        assert_eq!(split_lines("abcdefgh", 4), vec!["abcd", "efgh"]);
        let cut = split_lines("ééé", 5);
        assert_eq!(cut, vec!["éé", "é"]);
        assert!(split_lines(" \n ", 10).is_empty());
    }
}
