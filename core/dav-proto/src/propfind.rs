//! RFC 4918 §9.1 PROPFIND request bodies (§14.20 `propfind`, §14.2 `allprop`, §14.8 `include`,
//! §14.21 `propname`, §14.18 `prop`).

use crate::error::XmlError;
use crate::name::{DAV_NS, PropName};
use crate::xml::{Element, MAX_PROPERTIES, expect_root, parse_document};

/// What a PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropfindRequest {
    /// `<allprop/>` (optionally with `<include>`), or an empty body (RFC 4918 §9.1).
    AllProp {
        /// Extra properties named in `<include>`, in document order.
        include: Vec<PropName>,
    },
    /// `<propname/>`: names only, no values.
    PropName,
    /// `<prop>`: exactly these properties, in document order.
    Prop(Vec<PropName>),
}

/// Names of the child elements of `el` (their contents are ignored), with the property limit.
pub(crate) fn prop_names(el: &Element, count: &mut usize) -> Result<Vec<PropName>, XmlError> {
    let mut names = Vec::new();
    // CLIENT QUIRK (owncloudcmd 2.11): stray text between structure elements is ignored,
    // because only child elements are looked at here.
    for child in el.elements() {
        *count += 1;
        if *count > MAX_PROPERTIES {
            return Err(XmlError::TooLarge);
        }
        names.push(child.name.clone());
    }
    Ok(names)
}

/// Parses a PROPFIND body. An empty or whitespace-only body means `allprop`.
///
/// Errors: malformed XML, undeclared prefixes, DOCTYPE, limits, a root other than
/// `DAV:propfind`, or a `propfind` without exactly one of `propname`/`allprop`/`prop`.
/// Unknown child elements in other namespaces are ignored (RFC 4918 §17).
pub fn parse_propfind(body: &[u8]) -> Result<PropfindRequest, XmlError> {
    let Some(root) = parse_document(body)? else {
        return Ok(PropfindRequest::AllProp {
            include: Vec::new(),
        });
    };
    expect_root(&root, DAV_NS, "propfind")?;
    let mut request: Option<PropfindRequest> = None;
    let mut include: Option<Vec<PropName>> = None;
    let mut count = 0usize;
    // CLIENT QUIRK (owncloudcmd 2.11): it sends a stray non-whitespace character as text inside
    // `<d:propfind>`; `elements()` skips text, so the junk is ignored instead of rejected.
    for child in root.elements() {
        if child.name.ns != DAV_NS {
            continue;
        }
        let this = match child.name.local.as_str() {
            "propname" => PropfindRequest::PropName,
            "allprop" => PropfindRequest::AllProp {
                include: Vec::new(),
            },
            "prop" => PropfindRequest::Prop(prop_names(child, &mut count)?),
            "include" => {
                if include.is_some() {
                    return Err(XmlError::Invalid("more than one <include>".into()));
                }
                include = Some(prop_names(child, &mut count)?);
                continue;
            }
            _ => continue,
        };
        if request.is_some() {
            return Err(XmlError::Invalid(
                "propfind must contain exactly one of propname, allprop, prop".into(),
            ));
        }
        request = Some(this);
    }
    match (request, include) {
        (Some(PropfindRequest::AllProp { .. }), include) => Ok(PropfindRequest::AllProp {
            include: include.unwrap_or_default(),
        }),
        (Some(_), Some(_)) => Err(XmlError::Invalid(
            "<include> is only valid with <allprop>".into(),
        )),
        (Some(req), None) => Ok(req),
        (None, _) => Err(XmlError::Invalid(
            "propfind must contain one of propname, allprop, prop".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PropfindRequest, XmlError> {
        parse_propfind(s.as_bytes())
    }

    #[test]
    fn empty_body_is_allprop() {
        let all = PropfindRequest::AllProp { include: vec![] };
        assert_eq!(parse(""), Ok(all.clone()));
        assert_eq!(parse("  \r\n"), Ok(all));
    }

    #[test]
    fn prop_list_in_document_order() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:prop><d:getetag/><oc:fileid/><x:foo xmlns:x="urn:x"><ignored/></x:foo><bar xmlns=""/></d:prop>
</d:propfind>"#;
        assert_eq!(
            parse(body),
            Ok(PropfindRequest::Prop(vec![
                PropName::dav("getetag"),
                PropName::oc("fileid"),
                PropName::new("urn:x", "foo"),
                PropName::new("", "bar"),
            ]))
        );
    }

    #[test]
    fn matches_by_namespace_not_prefix() {
        let body = r#"<propfind xmlns="DAV:"><prop><getlastmodified/></prop></propfind>"#;
        assert_eq!(
            parse(body),
            Ok(PropfindRequest::Prop(vec![PropName::dav(
                "getlastmodified"
            )]))
        );
        // Right local name, wrong namespace.
        let body = r#"<D:propfind xmlns:D="urn:not-dav"><D:allprop/></D:propfind>"#;
        assert_eq!(
            parse(body),
            Err(XmlError::UnexpectedRoot("{urn:not-dav}propfind".into()))
        );
    }

    #[test]
    fn propname_and_allprop_include() {
        assert_eq!(
            parse(r#"<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#),
            Ok(PropfindRequest::PropName)
        );
        assert_eq!(
            parse(
                r#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:supportedlock/></D:include></D:propfind>"#
            ),
            Ok(PropfindRequest::AllProp {
                include: vec![PropName::dav("supportedlock")]
            })
        );
    }

    #[test]
    fn owncloudcmd_stray_text_quirk() {
        let body =
            "<d:propfind xmlns:d=\"DAV:\">\n1<d:prop>x<d:resourcetype/>y</d:prop>\n</d:propfind>";
        assert_eq!(
            parse(body),
            Ok(PropfindRequest::Prop(vec![PropName::dav("resourcetype")]))
        );
    }

    #[test]
    fn negative_cases() {
        // litmus propfind_invalid2: undeclared prefix inside prop.
        assert_eq!(
            parse(r#"<D:propfind xmlns:D="DAV:"><D:prop><bar:foo/></D:prop></D:propfind>"#),
            Err(XmlError::UndeclaredPrefix("bar".into()))
        );
        // litmus propfind_invalid: not well-formed.
        assert!(matches!(
            parse(r#"<D:propfind xmlns:D="DAV:"><D:prop></D:propfind>"#),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(
            parse(r#"<D:foo xmlns:D="DAV:"/>"#),
            Err(XmlError::UnexpectedRoot("{DAV:}foo".into()))
        );
        assert!(matches!(
            parse(r#"<D:propfind xmlns:D="DAV:"/>"#),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:propname/></D:propfind>"#),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(r#"<D:propfind xmlns:D="DAV:"><D:prop/><D:include/></D:propfind>"#),
            Err(XmlError::Invalid(_))
        ));
        let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<D:propfind xmlns:D="DAV:"><D:prop><D:x>&lol2;</D:x></D:prop></D:propfind>"#;
        assert_eq!(parse(laughs), Err(XmlError::DoctypeForbidden));
        let deep = format!(
            r#"<D:propfind xmlns:D="DAV:"><D:prop><D:x>{}{}</D:x></D:prop></D:propfind>"#,
            "<a>".repeat(70),
            "</a>".repeat(70)
        );
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
        let many = format!(
            r#"<D:propfind xmlns:D="DAV:"><D:prop>{}</D:prop></D:propfind>"#,
            "<D:p/>".repeat(MAX_PROPERTIES + 1)
        );
        assert_eq!(parse(&many), Err(XmlError::TooLarge));
        let exactly = format!(
            r#"<D:propfind xmlns:D="DAV:"><D:prop>{}</D:prop></D:propfind>"#,
            "<D:p/>".repeat(MAX_PROPERTIES)
        );
        assert!(
            matches!(parse(&exactly), Ok(PropfindRequest::Prop(v)) if v.len() == MAX_PROPERTIES)
        );
    }
}
