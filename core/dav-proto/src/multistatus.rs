//! RFC 4918 §13 and §14.16 `207 Multi-Status` bodies: a streaming writer, so a Depth-1 listing
//! of many entries can be sent in chunks instead of being held in memory twice.

use crate::fragment::{escape_attr_into, escape_text_into};
use crate::name::{PropName, well_known_prefix};

/// The value of one property in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    /// No content: `<d:foo/>` (also used for names-only and error propstats).
    Empty,
    /// Text content, escaped on output.
    Text(String),
    /// Trusted, well-formed XML content; may use the document prefixes `d: oc: nc: s: ocs:`.
    Xml(String),
}

/// One property in a propstat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// Property name.
    pub name: PropName,
    /// Property value.
    pub value: PropValue,
}

/// A group of properties sharing one status (e.g. 200 found, 404 not found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropStat {
    /// HTTP status code for these properties.
    pub status: u16,
    /// The properties.
    pub props: Vec<Prop>,
}

/// Incremental `<d:multistatus>` writer. Write responses, drain with
/// [`MultistatusWriter::take_chunk`] whenever convenient, and end with [`MultistatusWriter::finish`].
#[derive(Debug)]
pub struct MultistatusWriter {
    buf: Vec<u8>,
}

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" \
xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" \
xmlns:nc=\"http://nextcloud.org/ns\" xmlns:ocs=\"http://open-collaboration-services.org/ns\">";

impl Default for MultistatusWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl MultistatusWriter {
    /// Starts a document: XML declaration and the `<d:multistatus>` root declaring
    /// the `d`, `s`, `oc`, `nc` and `ocs` prefixes.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(8192);
        buf.extend_from_slice(HEADER.as_bytes());
        MultistatusWriter { buf }
    }

    /// Writes one `<d:response>` with its propstats. `href` must already be percent-encoded
    /// (it is XML-escaped here). Propstats without properties are skipped; if none remain, an
    /// empty `200` propstat is written so the response stays valid.
    pub fn response(&mut self, href: &str, propstats: &[PropStat]) {
        let mut out = String::with_capacity(256);
        out.push_str("<d:response><d:href>");
        escape_text_into(&mut out, href);
        out.push_str("</d:href>");
        let mut wrote = false;
        for ps in propstats.iter().filter(|ps| !ps.props.is_empty()) {
            wrote = true;
            out.push_str("<d:propstat><d:prop>");
            for prop in &ps.props {
                write_prop(&mut out, prop);
            }
            out.push_str("</d:prop><d:status>");
            out.push_str(&status_line(ps.status));
            out.push_str("</d:status></d:propstat>");
        }
        if !wrote {
            out.push_str("<d:propstat><d:prop/><d:status>HTTP/1.1 200 OK</d:status></d:propstat>");
        }
        out.push_str("</d:response>");
        self.buf.extend_from_slice(out.as_bytes());
    }

    /// Writes `<d:response><d:href/><d:status/></d:response>` (e.g. a failed member of a
    /// DELETE/COPY, or a `404` in a REPORT).
    pub fn response_status(&mut self, href: &str, status: u16) {
        let mut out = String::with_capacity(128);
        out.push_str("<d:response><d:href>");
        escape_text_into(&mut out, href);
        out.push_str("</d:href><d:status>");
        out.push_str(&status_line(status));
        out.push_str("</d:status></d:response>");
        self.buf.extend_from_slice(out.as_bytes());
    }

    /// Bytes written but not yet taken.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Drains and returns the bytes written so far (for streaming bodies).
    pub fn take_chunk(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Returns the remaining bytes followed by `</d:multistatus>`.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"</d:multistatus>");
        self.buf
    }
}

/// Writes one property element. Well-known namespaces use the document prefixes, other
/// namespaces an inline `x` prefix declaration, and no namespace `xmlns=""`.
fn write_prop(out: &mut String, prop: &Prop) {
    let name = &prop.name;
    let (prefix, decl): (Option<&str>, Option<(&str, &str)>) = match well_known_prefix(&name.ns) {
        Some(p) => (Some(p), None),
        None if name.ns.is_empty() => (None, Some(("xmlns", ""))),
        None => (Some("x"), Some(("xmlns:x", name.ns.as_str()))),
    };
    out.push('<');
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(&name.local);
    if let Some((attr, uri)) = decl {
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        escape_attr_into(out, uri);
        out.push('"');
    }
    let content = match &prop.value {
        PropValue::Empty => None,
        PropValue::Text(t) if t.is_empty() => None,
        PropValue::Xml(x) if x.is_empty() => None,
        v => Some(v),
    };
    match content {
        None => out.push_str("/>"),
        Some(v) => {
            out.push('>');
            match v {
                PropValue::Text(t) => escape_text_into(out, t),
                PropValue::Xml(x) => out.push_str(x),
                PropValue::Empty => {}
            }
            out.push_str("</");
            if let Some(p) = prefix {
                out.push_str(p);
                out.push(':');
            }
            out.push_str(&name.local);
            out.push('>');
        }
    }
}

/// The reason phrase for a status code ("" if unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// `HTTP/1.1 <code> <reason>`, e.g. `HTTP/1.1 404 Not Found` (no trailing space if unknown).
pub fn status_line(status: u16) -> String {
    match reason_phrase(status) {
        "" => format!("HTTP/1.1 {status}"),
        reason => format!("HTTP/1.1 {status} {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: PropName, value: PropValue) -> Prop {
        Prop { name, value }
    }

    #[test]
    fn writes_document() {
        let mut w = MultistatusWriter::new();
        w.response(
            "/remote.php/dav/files/u/a%20b&c",
            &[
                PropStat {
                    status: 200,
                    props: vec![
                        prop(PropName::dav("getetag"), PropValue::Text("\"abc\"".into())),
                        prop(
                            PropName::dav("resourcetype"),
                            PropValue::Xml("<d:collection/>".into()),
                        ),
                        prop(PropName::oc("size"), PropValue::Text("<1&2>".into())),
                        prop(PropName::new("urn:x\"y", "foo"), PropValue::Empty),
                        prop(PropName::new("", "bar"), PropValue::Text("v".into())),
                    ],
                },
                PropStat {
                    status: 404,
                    props: vec![],
                },
            ],
        );
        assert!(w.buffered_len() > HEADER.len());
        let first = w.take_chunk();
        assert_eq!(w.buffered_len(), 0);
        w.response_status("/x", 423);
        w.response("/y", &[]);
        let mut doc = first;
        doc.extend(w.finish());
        let doc = String::from_utf8(doc).unwrap();
        let expected = format!(
            "{HEADER}<d:response><d:href>/remote.php/dav/files/u/a%20b&amp;c</d:href><d:propstat><d:prop>\
<d:getetag>\"abc\"</d:getetag><d:resourcetype><d:collection/></d:resourcetype>\
<oc:size>&lt;1&amp;2&gt;</oc:size><x:foo xmlns:x=\"urn:x&quot;y\"/><bar xmlns=\"\">v</bar>\
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\
<d:response><d:href>/x</d:href><d:status>HTTP/1.1 423 Locked</d:status></d:response>\
<d:response><d:href>/y</d:href><d:propstat><d:prop/><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\
</d:multistatus>"
        );
        assert_eq!(doc, expected);
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_line(404), "HTTP/1.1 404 Not Found");
        assert_eq!(status_line(507), "HTTP/1.1 507 Insufficient Storage");
        assert_eq!(status_line(599), "HTTP/1.1 599");
    }
}
