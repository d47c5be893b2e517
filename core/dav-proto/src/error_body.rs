//! Error response bodies: the SabreDAV-style `<d:error>` document that ownCloud clients parse,
//! and RFC 4918 §16 precondition/postcondition bodies.

use crate::fragment::escape_text;

/// The SabreDAV error document, e.g. for `exception = "Sabre\\DAV\\Exception\\NotFound"`:
/// `<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">
/// <s:exception>..</s:exception><s:message>..</s:message></d:error>`. Both texts are escaped.
pub fn sabre_error(exception: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\">\
<s:exception>{}</s:exception><s:message>{}</s:message></d:error>",
        escape_text(exception),
        escape_text(message)
    )
}

/// An RFC 4918 §16 condition body, e.g. `precondition_error("lock-token-submitted", &[href])`:
/// `<d:error xmlns:d="DAV:"><d:lock-token-submitted><d:href>..</d:href></d:lock-token-submitted></d:error>`.
/// With no hrefs the condition element is empty (`<d:cannot-modify-protected-property/>`).
/// `element` is a DAV: local name chosen by the server (not escaped); hrefs are escaped.
pub fn precondition_error(element: &str, hrefs: &[String]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\">");
    out.push_str("<d:");
    out.push_str(element);
    if hrefs.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        for href in hrefs {
            out.push_str("<d:href>");
            out.push_str(&escape_text(href));
            out.push_str("</d:href>");
        }
        out.push_str("</d:");
        out.push_str(element);
        out.push('>');
    }
    out.push_str("</d:error>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sabre_document() {
        assert_eq!(
            sabre_error("Sabre\\DAV\\Exception\\NotFound", "File <a> & b not found"),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\">\
<s:exception>Sabre\\DAV\\Exception\\NotFound</s:exception><s:message>File &lt;a&gt; &amp; b not found</s:message></d:error>"
        );
    }

    #[test]
    fn precondition_documents() {
        assert_eq!(
            precondition_error("lock-token-submitted", &["/a%20b".to_string()]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\">\
<d:lock-token-submitted><d:href>/a%20b</d:href></d:lock-token-submitted></d:error>"
        );
        assert_eq!(
            precondition_error("cannot-modify-protected-property", &[]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\">\
<d:cannot-modify-protected-property/></d:error>"
        );
    }
}
