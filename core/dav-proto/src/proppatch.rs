//! RFC 4918 §9.2 PROPPATCH request bodies (§14.26 `propertyupdate`, §14.26 `set`, §14.23 `remove`)
//! and dead property values (§4.3).

use crate::error::XmlError;
use crate::fragment::fragment;
use crate::name::{DAV_NS, PropName};
use crate::xml::{MAX_PROPERTIES, expect_root, parse_document};

/// One instruction of a PROPPATCH, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOp {
    /// Set `name` to `value`.
    Set {
        /// Property to set.
        name: PropName,
        /// New value.
        value: DeadValue,
    },
    /// Remove `name`.
    Remove {
        /// Property to remove.
        name: PropName,
    },
}

/// A dead property value as a self-contained XML fragment (the element's CONTENT, not the element itself): text is
/// escaped, child elements carry their own xmlns declarations so the fragment can be embedded anywhere and round-trips
/// namespaces (litmus props: propvalnspace, propwformed, prophighunicode, propmanyns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadValue {
    /// The escaped fragment, e.g. `a &amp; b` or `<x:y xmlns:x="urn:x">1</x:y>`.
    pub xml: String,
}

impl DeadValue {
    /// A text-only value (escaped here).
    pub fn from_text(text: &str) -> Self {
        DeadValue {
            xml: crate::fragment::escape_text(text),
        }
    }

    /// True if the value is empty (`<x:foo/>`).
    pub fn is_empty(&self) -> bool {
        self.xml.is_empty()
    }
}

/// Parses a PROPPATCH body into its operations, keeping the document order of `set`/`remove`.
///
/// Errors: malformed XML, undeclared prefixes, DOCTYPE, limits, a root other than
/// `DAV:propertyupdate`, a `set`/`remove` without `prop`, or no operation at all.
pub fn parse_proppatch(body: &[u8]) -> Result<Vec<PatchOp>, XmlError> {
    let root = parse_document(body)?
        .ok_or_else(|| XmlError::Invalid("PROPPATCH requires a body".into()))?;
    expect_root(&root, DAV_NS, "propertyupdate")?;
    let mut ops = Vec::new();
    // CLIENT QUIRK (owncloudcmd 2.11): stray text inside structure elements (propertyupdate,
    // set, remove, prop) is ignored: only child elements are walked.
    for action in root.elements() {
        let is_set = match (action.name.ns.as_str(), action.name.local.as_str()) {
            (DAV_NS, "set") => true,
            (DAV_NS, "remove") => false,
            _ => continue,
        };
        let mut saw_prop = false;
        for prop in action.elements().filter(|e| e.is(DAV_NS, "prop")) {
            saw_prop = true;
            for p in prop.elements() {
                if ops.len() >= MAX_PROPERTIES {
                    return Err(XmlError::TooLarge);
                }
                let name = p.name.clone();
                if is_set {
                    // xml:lang in scope at the property element applies to its value (RFC 4918 §4.3).
                    let lang = p
                        .xml_lang()
                        .or_else(|| prop.xml_lang())
                        .or_else(|| action.xml_lang())
                        .or_else(|| root.xml_lang());
                    let value = DeadValue {
                        xml: fragment(&p.children, lang),
                    };
                    ops.push(PatchOp::Set { name, value });
                } else {
                    ops.push(PatchOp::Remove { name });
                }
            }
        }
        if !saw_prop {
            return Err(XmlError::Invalid(format!(
                "<{}> without <prop>",
                action.name.local
            )));
        }
    }
    if ops.is_empty() {
        return Err(XmlError::Invalid(
            "propertyupdate without properties".into(),
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<PatchOp>, XmlError> {
        parse_proppatch(s.as_bytes())
    }

    fn set(ns: &str, local: &str, xml: &str) -> PatchOp {
        PatchOp::Set {
            name: PropName::new(ns, local),
            value: DeadValue { xml: xml.into() },
        }
    }

    #[test]
    fn keeps_document_order() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/standards/z39.50/">
  <D:set><D:prop><Z:Authors><Z:Author>Jim Whitehead</Z:Author><Z:Author>Roy Fielding</Z:Author></Z:Authors></D:prop></D:set>
  <D:remove><D:prop><Z:Copyright-Owner/></D:prop></D:remove>
  <D:set><D:prop><Z:Title>a &lt;b&gt; &amp; c</Z:Title><D:displayname/></D:prop></D:set>
</D:propertyupdate>"#;
        let z = "http://ns.example.com/standards/z39.50/";
        assert_eq!(
            parse(body),
            Ok(vec![
                set(
                    z,
                    "Authors",
                    &format!(
                        r#"<Z:Author xmlns:Z="{z}">Jim Whitehead</Z:Author><Z:Author xmlns:Z="{z}">Roy Fielding</Z:Author>"#
                    )
                ),
                PatchOp::Remove {
                    name: PropName::new(z, "Copyright-Owner")
                },
                set(z, "Title", "a &lt;b&gt; &amp; c"),
                set(DAV_NS, "displayname", ""),
            ])
        );
    }

    #[test]
    fn litmus_values() {
        // propvalnspace: value element in its own (default) namespace.
        let body = r#"<propertyupdate xmlns="DAV:"><set><prop><valnspace xmlns="http://example.com/neon/litmus/"><foo xmlns="http://bar">baz</foo></valnspace></prop></set></propertyupdate>"#;
        assert_eq!(
            parse(body),
            Ok(vec![set(
                "http://example.com/neon/litmus/",
                "valnspace",
                r#"<foo xmlns="http://bar">baz</foo>"#
            )])
        );
        // prophighunicode: U+10000 and beyond preserved verbatim.
        let body = "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x:high xmlns:x=\"urn:x\">\u{10000}\u{10FFFD}&#x1F600;</x:high></D:prop></D:set></D:propertyupdate>";
        assert_eq!(
            parse(body),
            Ok(vec![set("urn:x", "high", "\u{10000}\u{10FFFD}\u{1F600}")])
        );
        // propnullns: property in no namespace.
        let body = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><nonamespace xmlns="">randomvalue</nonamespace></D:prop></D:set></D:propertyupdate>"#;
        assert_eq!(parse(body), Ok(vec![set("", "nonamespace", "randomvalue")]));
        // Whitespace and CR in values are preserved exactly.
        let body = "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><D:x> a\r\n b&#13; </D:x></D:prop></D:set></D:propertyupdate>";
        assert_eq!(parse(body), Ok(vec![set(DAV_NS, "x", " a\n b&#13; ")]));
    }

    #[test]
    fn xml_lang_is_carried() {
        let body = r#"<D:propertyupdate xmlns:D="DAV:" xml:lang="de"><D:set><D:prop><D:x><D:y>Hallo</D:y>z</D:x></D:prop></D:set></D:propertyupdate>"#;
        assert_eq!(
            parse(body),
            Ok(vec![set(
                DAV_NS,
                "x",
                r#"<D:y xmlns:D="DAV:" xml:lang="de">Hallo</D:y>z"#
            )])
        );
    }

    #[test]
    fn negative_cases() {
        assert_eq!(
            parse(
                r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:foo/></D:prop></D:set></D:propertyupdate>"#
            ),
            Err(XmlError::UndeclaredPrefix("x".into()))
        );
        assert_eq!(
            parse(r#"<D:propfind xmlns:D="DAV:"/>"#),
            Err(XmlError::UnexpectedRoot("{DAV:}propfind".into()))
        );
        assert!(matches!(parse(""), Err(XmlError::Invalid(_))));
        assert!(matches!(
            parse(r#"<D:propertyupdate xmlns:D="DAV:"/>"#),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"<D:propertyupdate xmlns:D="DAV:"><D:set/></D:propertyupdate>"#),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:x></D:y></D:prop></D:set></D:propertyupdate>"#
            ),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(
            parse(r#"<!DOCTYPE x SYSTEM "file:///etc/passwd"><D:propertyupdate xmlns:D="DAV:"/>"#),
            Err(XmlError::DoctypeForbidden)
        );
    }
}
