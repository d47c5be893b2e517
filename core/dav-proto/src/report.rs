//! REPORT request bodies (RFC 3253 §3.6): the ownCloud `oc:filter-files` report
//! (favorites listing); every other report is returned as unsupported by root name.

use crate::error::XmlError;
use crate::name::{DAV_NS, OC_NS, PropName};
use crate::propfind::prop_names;
use crate::xml::parse_document;

/// A parsed REPORT body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRequest {
    /// `oc:filter-files`: list files matching the filter rules with the given properties.
    FilterFiles {
        /// Properties from `<d:prop>`, in document order.
        props: Vec<PropName>,
        /// `<oc:filter-rules><oc:favorite>1</oc:favorite>` was given.
        favorite: bool,
    },
    /// Any other report; holds the root element name (answer `415`/`501` as appropriate).
    Unsupported(PropName),
}

/// Parses a REPORT body. Errors: empty body, malformed XML, undeclared prefixes, DOCTYPE, limits.
pub fn parse_report(body: &[u8]) -> Result<ReportRequest, XmlError> {
    let root =
        parse_document(body)?.ok_or_else(|| XmlError::Invalid("REPORT requires a body".into()))?;
    if !root.is(OC_NS, "filter-files") {
        return Ok(ReportRequest::Unsupported(root.name.clone()));
    }
    let mut props = Vec::new();
    let mut favorite = false;
    let mut count = 0usize;
    for child in root.elements() {
        if child.is(DAV_NS, "prop") {
            props.extend(prop_names(child, &mut count)?);
        } else if child.is(OC_NS, "filter-rules") {
            for rule in child.elements().filter(|r| r.is(OC_NS, "favorite")) {
                let text = rule.text();
                let text = text.trim();
                favorite |= text == "1" || text.eq_ignore_ascii_case("true");
            }
        }
    }
    Ok(ReportRequest::FilterFiles { props, favorite })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_files_favorites() {
        let body = r#"<?xml version="1.0"?>
<oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:prop><d:getlastmodified/><oc:fileid/><oc:favorite/></d:prop>
  <oc:filter-rules><oc:favorite> 1 </oc:favorite></oc:filter-rules>
</oc:filter-files>"#;
        assert_eq!(
            parse_report(body.as_bytes()),
            Ok(ReportRequest::FilterFiles {
                props: vec![
                    PropName::dav("getlastmodified"),
                    PropName::oc("fileid"),
                    PropName::oc("favorite")
                ],
                favorite: true
            })
        );
        let body = r#"<filter-files xmlns="http://owncloud.org/ns"><filter-rules><favorite>0</favorite></filter-rules></filter-files>"#;
        assert_eq!(
            parse_report(body.as_bytes()),
            Ok(ReportRequest::FilterFiles {
                props: vec![],
                favorite: false
            })
        );
    }

    #[test]
    fn other_reports() {
        let body = r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/></d:sync-collection>"#;
        assert_eq!(
            parse_report(body.as_bytes()),
            Ok(ReportRequest::Unsupported(PropName::dav("sync-collection")))
        );
        assert!(matches!(parse_report(b""), Err(XmlError::Invalid(_))));
        assert_eq!(
            parse_report(b"<x:filter-files/>"),
            Err(XmlError::UndeclaredPrefix("x".into()))
        );
    }
}
