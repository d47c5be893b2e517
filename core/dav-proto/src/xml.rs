//! Bounded, namespace-resolving XML reader (XML 1.0 + Namespaces, no DTD, no entity expansion)
//! shared by the request-body parsers, plus the escaping and fragment serialisation they need.
//!
//! Fragment serialisation of parsed values lives in `fragment.rs`.
//!
//! The reader builds a small owned tree. Memory is bounded by [`MAX_BODY_BYTES`],
//! [`MAX_ELEMENTS`] and [`MAX_DEPTH`], and every recursive walk over the tree is bounded by
//! [`MAX_DEPTH`] because the tree cannot be deeper than that.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::PrefixDeclaration;
use quick_xml::reader::NsReader;

use crate::error::XmlError;
use crate::name::PropName;

/// Largest request body accepted by any parser (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Deepest element nesting accepted (the root element is depth 1).
pub const MAX_DEPTH: usize = 64;
/// Most properties accepted in one PROPFIND, PROPPATCH or REPORT body.
pub const MAX_PROPERTIES: usize = 10_000;
/// Most elements accepted in one body, whatever they are.
pub const MAX_ELEMENTS: usize = 100_000;

/// The namespace bound to the reserved `xml` prefix.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A parsed attribute (namespace declarations are kept apart in [`Element::ns_decls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// Prefix as written, if any.
    pub prefix: Option<String>,
    /// Local part of the attribute name.
    pub local: String,
    /// Namespace of a prefixed attribute; unprefixed attributes have none (`""`).
    pub ns: String,
    /// Normalised, unescaped value.
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A child element.
    Element(Element),
    /// Unescaped character data (adjacent text, references and CDATA are merged).
    Text(String),
}

/// A parsed element with its name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    /// Expanded name.
    pub name: PropName,
    /// Prefix as written, if any.
    pub prefix: Option<String>,
    /// Namespace declarations written on this element: `(None, uri)` is `xmlns="uri"`.
    pub ns_decls: Vec<(Option<String>, String)>,
    /// Ordinary attributes.
    pub attrs: Vec<Attr>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// True if the element has the given namespace and local name.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.name.ns == ns && self.name.local == local
    }

    /// Child elements in document order; text children are skipped.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Concatenated direct text content.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// The value of `xml:lang` written on this element, if any.
    pub fn xml_lang(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == XML_NS && a.local == "lang")
            .map(|a| a.value.as_str())
    }
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// True for characters allowed in XML 1.0 documents (the `Char` production).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<(), XmlError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(XmlError::Malformed(format!(
            "character U+{:04X} not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn is_xml_whitespace(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

fn check_name_part(part: &str) -> Result<(), XmlError> {
    let bad = part.is_empty()
        || part.contains(':')
        || part.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
    if bad {
        Err(XmlError::Malformed(format!("invalid XML name `{part}`")))
    } else {
        Ok(())
    }
}

/// In-scope namespace bindings, innermost last. Resolution is done here rather than by
/// quick-xml's resolver, which binds the raw (still escaped) attribute text.
#[derive(Default)]
struct Scopes {
    bindings: Vec<(Option<String>, String)>,
    marks: Vec<usize>,
}

impl Scopes {
    fn push(&mut self, decls: &[(Option<String>, String)]) {
        self.marks.push(self.bindings.len());
        self.bindings.extend(decls.iter().cloned());
    }

    fn pop(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.bindings.truncate(mark);
        }
    }

    /// Namespace of `prefix` (`None` = default namespace, which may be unbound: `""`).
    fn resolve(&self, prefix: Option<&str>) -> Result<String, XmlError> {
        if prefix == Some("xml") {
            return Ok(XML_NS.to_owned());
        }
        let found = self
            .bindings
            .iter()
            .rev()
            .find(|(p, _)| p.as_deref() == prefix)
            .map(|(_, uri)| uri.as_str());
        match (prefix, found) {
            (None, uri) => Ok(uri.unwrap_or("").to_owned()),
            (Some(_), Some(uri)) if !uri.is_empty() => Ok(uri.to_owned()),
            (Some(p), _) => Err(XmlError::UndeclaredPrefix(p.to_owned())),
        }
    }
}

fn build_element(scopes: &mut Scopes, start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let qname = start.name();
    let local = qname.local_name().as_ref().to_owned();
    check_name_part(&local)?;
    let prefix = qname.prefix().map(|p| p.as_ref().to_owned());
    if let Some(p) = &prefix {
        check_name_part(p)?;
    }
    let mut ns_decls = Vec::new();
    let mut raw_attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        if attr.value.contains('<') {
            return Err(XmlError::Malformed("`<` in attribute value".into()));
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(malformed)?
            .into_owned();
        check_chars(&value)?;
        match attr.key.as_namespace_binding() {
            Some(PrefixDeclaration::Default) => ns_decls.push((None, value)),
            Some(PrefixDeclaration::Named(p)) => ns_decls.push((Some(p.to_owned()), value)),
            None => {
                let local = attr.key.local_name().as_ref().to_owned();
                check_name_part(&local)?;
                let prefix = attr.key.prefix().map(|p| p.as_ref().to_owned());
                raw_attrs.push((prefix, local, value));
            }
        }
    }
    scopes.push(&ns_decls);
    let ns = scopes.resolve(prefix.as_deref())?;
    let mut attrs = Vec::with_capacity(raw_attrs.len());
    for (aprefix, alocal, value) in raw_attrs {
        let ans = match &aprefix {
            Some(p) => scopes.resolve(Some(p))?,
            None => String::new(),
        };
        if attrs
            .iter()
            .any(|a: &Attr| a.ns == ans && a.local == alocal && !ans.is_empty())
        {
            return Err(XmlError::Malformed(format!("duplicate attribute {alocal}")));
        }
        attrs.push(Attr {
            prefix: aprefix,
            local: alocal,
            ns: ans,
            value,
        });
    }
    Ok(Element {
        name: PropName { ns, local },
        prefix,
        ns_decls,
        attrs,
        children: Vec::new(),
    })
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    check_chars(text)?;
    match stack.last_mut() {
        None if is_xml_whitespace(text) => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
        Some(el) => {
            if let Some(Node::Text(t)) = el.children.last_mut() {
                t.push_str(text);
            } else {
                el.children.push(Node::Text(text.to_owned()));
            }
            Ok(())
        }
    }
}

fn resolve_reference(name: &str) -> Result<char, XmlError> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16),
            None if !num.is_empty() && num.len() <= 10 => num.parse::<u32>(),
            _ => {
                return Err(XmlError::Malformed(format!(
                    "bad character reference &{name};"
                )));
            }
        }
        .map_err(|_| XmlError::Malformed(format!("bad character reference &{name};")))?;
        return char::from_u32(code)
            .filter(|c| is_xml_char(*c))
            .ok_or_else(|| XmlError::Malformed(format!("bad character reference &{name};")));
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        // No DTD is ever read, so every other entity is undeclared: never expanded.
        _ => Err(XmlError::Malformed(format!("undeclared entity &{name};"))),
    }
}

/// Parses a whole request body into its root element; `Ok(None)` for an empty or
/// whitespace-only body. Enforces every limit and rejects DOCTYPE declarations.
pub(crate) fn parse_document(body: &[u8]) -> Result<Option<Element>, XmlError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(XmlError::TooLarge);
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    if is_xml_whitespace(text) {
        return Ok(None);
    }
    match parse_str(text) {
        // A DTD that quick-xml could not even tokenise still gets the precise error.
        Err(XmlError::Malformed(_)) if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") => {
            Err(XmlError::DoctypeForbidden)
        }
        other => other.map(Some),
    }
}

fn parse_str(text: &str) -> Result<Element, XmlError> {
    // NsReader (not Reader) so quick-xml also validates `xml`/`xmlns` prefix bindings.
    let mut reader = NsReader::from_str(text);
    reader.resolver_mut().set_max_namespace_bindings(256);
    let mut scopes = Scopes::default();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooLarge);
                }
                let el = build_element(&mut scopes, start)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    scopes.pop();
                    close(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unmatched end tag".into()))?;
                scopes.pop();
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => {
                if stack.is_empty() {
                    return Err(XmlError::Malformed("CDATA outside the root element".into()));
                }
                push_text(&mut stack, &c.xml10_content())?;
            }
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r)?;
                let mut buf = [0u8; 4];
                push_text(&mut stack, c.encode_utf8(&mut buf))?;
            }
            Event::DocType(_) => return Err(XmlError::DoctypeForbidden),
            Event::Decl(_) => {
                if root.is_some() || !stack.is_empty() {
                    return Err(XmlError::Malformed("misplaced XML declaration".into()));
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

/// Checks the root element's name, returning [`XmlError::UnexpectedRoot`] otherwise.
pub(crate) fn expect_root(root: &Element, ns: &str, local: &str) -> Result<(), XmlError> {
    if root.is(ns, local) {
        Ok(())
    } else {
        Err(XmlError::UnexpectedRoot(root.name.clark()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> Result<Element, XmlError> {
        parse_document(s.as_bytes()).and_then(|r| r.ok_or(XmlError::Invalid("empty".into())))
    }

    #[test]
    fn resolves_namespaces_and_text() {
        let el = root(
            r#"<?xml version="1.0"?><a:x xmlns:a="urn:a">t&amp;&#x10000;<![CDATA[<c>]]></a:x>"#,
        )
        .unwrap();
        assert_eq!(el.name, PropName::new("urn:a", "x"));
        assert_eq!(el.text(), "t&\u{10000}<c>");
    }

    #[test]
    fn rejects_hostile_and_malformed() {
        assert_eq!(root("<a:x/>"), Err(XmlError::UndeclaredPrefix("a".into())));
        assert_eq!(root(r#"<x xmlns:a="u" a:b="1"/>"#).map(|_| ()), Ok(()));
        assert_eq!(
            root(r#"<x c:b="1"/>"#),
            Err(XmlError::UndeclaredPrefix("c".into()))
        );
        assert_eq!(
            root(r#"<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>"#),
            Err(XmlError::DoctypeForbidden)
        );
        assert!(matches!(root("<x>&foo;</x>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x>&#0;</x>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x>\u{1}</x>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x><y></x>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x/><y/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("junk<x/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(root("<x a='<'/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(
            root("<x a='1' a='2'/>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(root("<!-- only -->"), Err(XmlError::Malformed(_))));
        assert!(matches!(
            parse_document(b"<x>\xff</x>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(parse_document(b" \r\n\t"), Ok(None));
        let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
        assert_eq!(root(&deep), Err(XmlError::TooDeep));
        let ok = format!("{}{}", "<a>".repeat(64), "</a>".repeat(64));
        assert!(root(&ok).is_ok());
        let big = format!("<a>{}</a>", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(root(&big), Err(XmlError::TooLarge));
    }
}
