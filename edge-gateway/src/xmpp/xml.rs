//! One WebSocket message → one element tree, under limits; and elements
//! back to text.
//!
//! RFC 7395 puts exactly one complete element in each message, so there is
//! no need for a streaming parser that keeps state between messages: each
//! message is parsed on its own with quick-xml, and the limits (size, depth,
//! attributes) bound what one untrusted client can make us build. XMPP
//! forbids DTDs, comments, processing instructions and entities other than
//! the five predefined ones (RFC 6120 §11.1); quick-xml never expands
//! declared entities, and we refuse the constructs outright so that an
//! entity bomb costs nothing.

use std::fmt::Write as _;

use quick_xml::escape::EscapeError;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::stream_error::Condition;

/// The namespace of stanzas whose element carries none.
pub const NS_CLIENT: &str = "jabber:client";

/// Limits for one message (`[xmpp]` configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_attributes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An element: local name, resolved namespace, attributes as written
/// (namespace declarations excluded on input) and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    /// `<name xmlns="ns"/>`; an empty `ns` writes no `xmlns`.
    pub fn new(name: &str, ns: &str) -> Self {
        Self {
            name: name.into(),
            ns: ns.into(),
            ..Self::default()
        }
    }

    pub fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attrs.push((key.into(), value.into()));
        self
    }

    /// Adds the attribute only when `value` is `Some`.
    pub fn attr_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.attr(key, v),
            None => self,
        }
    }

    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    pub fn get_attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn find(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name, ns))
    }

    /// The concatenated character data of the direct children.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    fn write(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if !self.ns.is_empty() && self.ns != parent_ns {
            out.push_str(" xmlns=\"");
            escape_into(out, &self.ns, true);
            out.push('"');
        }
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"");
            escape_into(out, v, true);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        let ns = if self.ns.is_empty() {
            parent_ns
        } else {
            &self.ns
        };
        for child in &self.children {
            match child {
                Node::Element(e) => e.write(out, ns),
                Node::Text(t) => escape_into(out, t, false),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        self.write(&mut out, "");
        f.write_str(&out)
    }
}

fn escape_into(out: &mut String, s: &str, attr: bool) {
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// What one message held.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Only whitespace: a keepalive (RFC 7395 §3.4 allows none, clients send
    /// it anyway; it costs nothing to accept).
    Whitespace,
    Element(Element),
}

/// Parses one message; `Err` is the stream error condition to end with.
pub fn parse(text: &str, limits: &Limits) -> Result<Parsed, Condition> {
    if text.len() > limits.max_bytes {
        return Err(Condition::PolicyViolation);
    }
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(condition_of)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    // A second element in one message (RFC 7395 §3.3).
                    return Err(Condition::NotWellFormed);
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(Condition::PolicyViolation);
                }
                let parent_ns = stack.last().map_or(NS_CLIENT, |p| p.ns.as_str());
                let ns = match resolved {
                    ResolveResult::Bound(ns) => std::str::from_utf8(ns.as_ref())
                        .map_err(|_| Condition::NotWellFormed)?
                        .to_string(),
                    ResolveResult::Unbound => parent_ns.to_string(),
                    ResolveResult::Unknown(_) => return Err(Condition::InvalidNamespace),
                };
                let local = std::str::from_utf8(start.local_name().as_ref())
                    .map_err(|_| Condition::NotWellFormed)?
                    .to_string();
                let mut element = Element::new(&local, &ns);
                let mut count = 0usize;
                for attr in start.attributes() {
                    let attr = attr.map_err(|_| Condition::NotWellFormed)?;
                    count += 1;
                    if count > limits.max_attributes {
                        return Err(Condition::PolicyViolation);
                    }
                    let key = std::str::from_utf8(attr.key.as_ref())
                        .map_err(|_| Condition::NotWellFormed)?;
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    let value = attr
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(condition_of)?;
                    element.attrs.push((key.to_string(), value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or(Condition::NotWellFormed)?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(condition_of)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(text.into_owned())),
                    None if text.trim().is_empty() => {}
                    None => return Err(Condition::NotWellFormed),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c)
                    .map_err(|_| Condition::NotWellFormed)?
                    .to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(text)),
                    None => return Err(Condition::NotWellFormed),
                }
            }
            // An XML declaration may open the message; anywhere else
            // quick-xml reports it as a syntax error.
            Event::Decl(_) if stack.is_empty() && root.is_none() => {}
            Event::Decl(_) => return Err(Condition::NotWellFormed),
            Event::DocType(_) | Event::PI(_) | Event::Comment(_) => {
                return Err(Condition::RestrictedXml)
            }
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(Condition::NotWellFormed);
                }
                return Ok(match root {
                    Some(e) => Parsed::Element(e),
                    None => Parsed::Whitespace,
                });
            }
        }
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => *root = Some(element),
    }
}

/// Entity references other than the predefined ones are restricted XML
/// (RFC 6120 §11.1); everything else quick-xml rejects is not well-formed.
fn condition_of(e: quick_xml::Error) -> Condition {
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..)) => Condition::RestrictedXml,
        _ => Condition::NotWellFormed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 4096,
        max_depth: 4,
        max_attributes: 3,
    };

    fn element(text: &str) -> Element {
        match parse(text, &LIMITS) {
            Ok(Parsed::Element(e)) => e,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_namespaces_attributes_and_text() {
        let e = element(
            r#"<iq type="set" id="a&amp;b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r&lt;1</resource></bind></iq>"#,
        );
        assert!(e.is("iq", NS_CLIENT));
        assert_eq!(e.get_attr("id"), Some("a&b"));
        let bind = e.find("bind", "urn:ietf:params:xml:ns:xmpp-bind").unwrap();
        let res = bind
            .find("resource", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap();
        assert_eq!(res.text_content(), "r<1");
        let s = element(r#"<s:a xmlns:s="urn:x"><s:b/></s:a>"#);
        assert!(s.is("a", "urn:x"));
        assert!(s.find("b", "urn:x").is_some());
    }

    #[test]
    fn whitespace_is_a_keepalive() {
        assert_eq!(parse("  \n", &LIMITS), Ok(Parsed::Whitespace));
        assert_eq!(parse("", &LIMITS), Ok(Parsed::Whitespace));
    }

    #[test]
    fn malformed_is_not_well_formed() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a><b></a>",
            "</a>",
            "<a/><b/>",
            "text",
            "<a x='1' x='2'/>",
        ] {
            assert_eq!(parse(bad, &LIMITS), Err(Condition::NotWellFormed), "{bad}");
        }
    }

    #[test]
    fn restricted_constructs_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(parse(bomb, &LIMITS), Err(Condition::RestrictedXml));
        assert_eq!(
            parse("<a><?pi x?></a>", &LIMITS),
            Err(Condition::RestrictedXml)
        );
        assert_eq!(
            parse("<a><!-- c --></a>", &LIMITS),
            Err(Condition::RestrictedXml)
        );
        assert_eq!(
            parse("<a>&ent;</a>", &LIMITS),
            Err(Condition::RestrictedXml)
        );
        assert!(parse("<?xml version='1.0'?><a/>", &LIMITS).is_ok());
    }

    #[test]
    fn limits_are_policy_violations() {
        let big = format!("<a>{}</a>", "x".repeat(5000));
        assert_eq!(parse(&big, &LIMITS), Err(Condition::PolicyViolation));
        assert!(parse("<a><b><c><d/></c></b></a>", &LIMITS).is_ok());
        assert_eq!(
            parse("<a><b><c><d><e/></d></c></b></a>", &LIMITS),
            Err(Condition::PolicyViolation)
        );
        assert!(parse("<a x='1' y='2' z='3'/>", &LIMITS).is_ok());
        assert_eq!(
            parse("<a x='1' y='2' z='3' w='4'/>", &LIMITS),
            Err(Condition::PolicyViolation)
        );
    }

    #[test]
    fn serialises_with_escaping_and_inherited_namespaces() {
        let e = Element::new("iq", NS_CLIENT)
            .attr("id", "a\"<")
            .child(Element::new("bind", "urn:b").child(Element::new("jid", "urn:b").text("a&b")));
        assert_eq!(
            e.to_string(),
            r#"<iq xmlns="jabber:client" id="a&quot;&lt;"><bind xmlns="urn:b"><jid>a&amp;b</jid></bind></iq>"#
        );
    }
}
