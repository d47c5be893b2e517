//! Self-contained XML fragments for dead property and lock-owner values (RFC 4918 §4.3,
//! §14.17), and the text/attribute escaping every renderer uses.

use crate::xml::{Element, Node, is_xml_char};

/// Appends `s` escaped for element content. `\r` becomes `&#13;` so it survives end-of-line
/// normalisation; characters XML cannot carry are replaced by U+FFFD.
pub(crate) fn escape_text_into(out: &mut String, s: &str) {
    // Fast path: most names and values need no escaping at all. Bytes that may need work are
    // the markup characters, C0 controls, and 0xEF (the lead byte of U+FFFE/U+FFFF).
    let plain = s.bytes().all(|b| {
        !matches!(b, b'&' | b'<' | b'>' | b'\r' | 0xEF) && (b >= 0x20 || b == b'\t' || b == b'\n')
    });
    if plain {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends `s` escaped for a double-quoted attribute value (whitespace kept via references).
pub(crate) fn escape_attr_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            c => escape_text_into(out, c.encode_utf8(&mut [0u8; 4])),
        }
    }
}

/// Returns `s` escaped for element content (see [`escape_text_into`]).
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_text_into(&mut out, s);
    out
}

/// Serialises `children` as a self-contained fragment: every element re-declares whatever
/// namespace bindings it needs that its fragment ancestors have not declared, top-level
/// unprefixed elements always declare their default namespace (possibly `xmlns=""`), and
/// top-level elements carry the inherited `xml:lang` (if any) unless they set their own.
pub(crate) fn fragment(children: &[Node], inherited_lang: Option<&str>) -> String {
    let mut out = String::new();
    let mut scope: Vec<(Option<&str>, &str)> = Vec::new();
    for child in children {
        match child {
            Node::Text(t) => escape_text_into(&mut out, t),
            Node::Element(el) => write_element(&mut out, el, &mut scope, inherited_lang),
        }
    }
    out
}

fn lookup<'a>(scope: &[(Option<&'a str>, &'a str)], prefix: Option<&str>) -> Option<&'a str> {
    scope
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, uri)| *uri)
}

fn write_qname(out: &mut String, prefix: Option<&str>, local: &str) {
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(local);
}

fn write_element<'a>(
    out: &mut String,
    el: &'a Element,
    scope: &mut Vec<(Option<&'a str>, &'a str)>,
    top_lang: Option<&str>,
) {
    let mark = scope.len();
    let mut decls: Vec<(Option<&'a str>, &'a str)> = Vec::new();
    for (p, uri) in &el.ns_decls {
        if p.is_some() && uri.is_empty() {
            continue; // `xmlns:p=""` is not XML 1.0; nothing to carry over.
        }
        decls.push((p.as_deref(), uri.as_str()));
        scope.push((p.as_deref(), uri.as_str()));
    }
    let mut ensure = |prefix: Option<&'a str>, uri: &'a str, scope: &mut Vec<_>| {
        if prefix == Some("xml") {
            return;
        }
        if lookup(scope, prefix) != Some(uri) {
            decls.push((prefix, uri));
            scope.push((prefix, uri));
        }
    };
    ensure(el.prefix.as_deref(), el.name.ns.as_str(), scope);
    for a in &el.attrs {
        if a.prefix.is_some() {
            ensure(a.prefix.as_deref(), a.ns.as_str(), scope);
        }
    }
    out.push('<');
    write_qname(out, el.prefix.as_deref(), &el.name.local);
    for (p, uri) in decls {
        out.push_str(" xmlns");
        if let Some(p) = p {
            out.push(':');
            out.push_str(p);
        }
        out.push_str("=\"");
        escape_attr_into(out, uri);
        out.push('"');
    }
    for a in &el.attrs {
        out.push(' ');
        write_qname(out, a.prefix.as_deref(), &a.local);
        out.push_str("=\"");
        escape_attr_into(out, &a.value);
        out.push('"');
    }
    if let Some(lang) = top_lang
        && el.xml_lang().is_none()
    {
        out.push_str(" xml:lang=\"");
        escape_attr_into(out, lang);
        out.push('"');
    }
    if el.children.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        for child in &el.children {
            match child {
                Node::Text(t) => escape_text_into(out, t),
                // Bounded recursion: the tree is at most MAX_DEPTH deep.
                Node::Element(c) => write_element(out, c, scope, None),
            }
        }
        out.push_str("</");
        write_qname(out, el.prefix.as_deref(), &el.name.local);
        out.push('>');
    }
    scope.truncate(mark);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::XmlError;
    use crate::xml::parse_document;

    fn root(s: &str) -> Result<Element, XmlError> {
        parse_document(s.as_bytes()).and_then(|r| r.ok_or(XmlError::Invalid("empty".into())))
    }

    #[test]
    fn fragment_redeclares_namespaces() {
        let el = root(
            r#"<r xmlns="urn:d" xmlns:p="urn:p" xml:lang="en"><v>a<p:b p:at="1&#10;"><c/></p:b></v></r>"#,
        )
        .unwrap();
        let v = el.elements().next().unwrap();
        let frag = fragment(&v.children, el.xml_lang());
        assert_eq!(
            frag,
            r#"a<p:b xmlns:p="urn:p" p:at="1&#10;" xml:lang="en"><c xmlns="urn:d"/></p:b>"#
        );
        let el = root(r#"<r><v><c>x</c></v></r>"#).unwrap();
        let v = el.elements().next().unwrap();
        assert_eq!(fragment(&v.children, None), r#"<c xmlns="">x</c>"#);
    }

    #[test]
    fn escaped_namespace_uris() {
        let el = root(r#"<a:x xmlns:a="urn:&amp;&#x41;"><a:y/></a:x>"#).unwrap();
        assert_eq!(el.name.ns, "urn:&A");
        let frag = fragment(&el.children, None);
        assert_eq!(frag, r#"<a:y xmlns:a="urn:&amp;A"/>"#);
        assert!(matches!(
            root(r#"<x xmlns:a="u" xmlns:b="u" a:c="1" b:c="2"/>"#),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(
            root(r#"<a:x xmlns:a="u"><a:y xmlns:a=""/></a:x>"#).map(|_| ()),
            Err(XmlError::UndeclaredPrefix("a".into()))
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a<b>&\r\u{0}"), "a&lt;b&gt;&amp;&#13;\u{FFFD}");
        let mut s = String::new();
        escape_attr_into(&mut s, "\"\t\n'");
        assert_eq!(s, "&quot;&#9;&#10;'");
    }
}
