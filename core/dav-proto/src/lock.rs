//! RFC 4918 §9.10 LOCK request bodies (§14.11 `lockinfo`) and lock rendering
//! (§14.1 `activelock`, §15.8 `lockdiscovery`, §15.10 `supportedlock`, §14.10 `lockentry`).

use crate::error::XmlError;
use crate::fragment::{escape_text, fragment};
use crate::name::DAV_NS;
use crate::xml::{expect_root, parse_document};

/// A parsed `<lockinfo>`: what kind of write lock is requested and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// `true` for `<shared/>`, `false` for `<exclusive/>`.
    pub shared: bool,
    /// Content of `<owner>` as a self-contained fragment (see [`crate::DeadValue`]).
    pub owner_xml: Option<String>,
}

/// Parses a LOCK body. An empty or whitespace-only body is a refresh: `Ok(None)`.
///
/// Errors: malformed XML, undeclared prefixes, DOCTYPE, limits, a root other than
/// `DAV:lockinfo`, a missing `lockscope`/`locktype`, or a lock type other than `write`.
pub fn parse_lockinfo(body: &[u8]) -> Result<Option<LockInfo>, XmlError> {
    let Some(root) = parse_document(body)? else {
        return Ok(None);
    };
    expect_root(&root, DAV_NS, "lockinfo")?;
    let mut shared: Option<bool> = None;
    let mut write = false;
    let mut owner_xml = None;
    // CLIENT QUIRK (owncloudcmd 2.11): stray text inside lockinfo/lockscope/locktype is
    // ignored: only child elements are walked.
    for child in root.elements().filter(|e| e.name.ns == DAV_NS) {
        match child.name.local.as_str() {
            "lockscope" => {
                for scope in child.elements() {
                    match (scope.name.ns.as_str(), scope.name.local.as_str()) {
                        (DAV_NS, "exclusive") => shared = Some(false),
                        (DAV_NS, "shared") => shared = Some(true),
                        _ => {}
                    }
                }
            }
            "locktype" => {
                if child.elements().any(|t| t.is(DAV_NS, "write")) {
                    write = true;
                } else {
                    return Err(XmlError::Invalid("only write locks are supported".into()));
                }
            }
            "owner" => {
                let lang = child.xml_lang().or_else(|| root.xml_lang());
                owner_xml = Some(fragment(&child.children, lang));
            }
            _ => {}
        }
    }
    let shared = shared.ok_or_else(|| XmlError::Invalid("lockinfo without lockscope".into()))?;
    if !write {
        return Err(XmlError::Invalid("lockinfo without locktype".into()));
    }
    Ok(Some(LockInfo { shared, owner_xml }))
}

/// A lock as reported in `lockdiscovery` and LOCK responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLock {
    /// The lock token URI: `urn:uuid:...` or `opaquelocktoken:...`.
    pub token: String,
    /// The lock root URL path, already percent-encoded.
    pub root_href: String,
    /// `Depth: infinity` lock (else depth 0).
    pub depth_infinity: bool,
    /// Shared (else exclusive) write lock.
    pub shared: bool,
    /// Owner fragment as parsed by [`parse_lockinfo`] (trusted, well-formed).
    pub owner_xml: Option<String>,
    /// Remaining seconds; `None` means `Infinite`.
    pub timeout_secs: Option<u64>,
}

/// Renders `<d:activelock>...</d:activelock>`; the caller declares `xmlns:d="DAV:"`.
pub fn activelock_xml(lock: &ActiveLock) -> String {
    let scope = if lock.shared { "shared" } else { "exclusive" };
    let depth = if lock.depth_infinity { "infinity" } else { "0" };
    let mut out = String::with_capacity(400);
    out.push_str("<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope><d:");
    out.push_str(scope);
    out.push_str("/></d:lockscope><d:depth>");
    out.push_str(depth);
    out.push_str("</d:depth>");
    if let Some(owner) = &lock.owner_xml {
        out.push_str("<d:owner>");
        out.push_str(owner);
        out.push_str("</d:owner>");
    }
    out.push_str("<d:timeout>");
    match lock.timeout_secs {
        Some(secs) => {
            out.push_str("Second-");
            out.push_str(&secs.to_string());
        }
        None => out.push_str("Infinite"),
    }
    out.push_str("</d:timeout><d:locktoken><d:href>");
    out.push_str(&escape_text(&lock.token));
    out.push_str("</d:href></d:locktoken><d:lockroot><d:href>");
    out.push_str(&escape_text(&lock.root_href));
    out.push_str("</d:href></d:lockroot></d:activelock>");
    out
}

/// A complete LOCK response body: `<d:prop><d:lockdiscovery>` with every given lock.
pub fn lockdiscovery_body(locks: &[ActiveLock]) -> Vec<u8> {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:prop xmlns:d=\"DAV:\"><d:lockdiscovery>",
    );
    for lock in locks {
        out.push_str(&activelock_xml(lock));
    }
    out.push_str("</d:lockdiscovery></d:prop>");
    out.into_bytes()
}

/// The content of `supportedlock`: exclusive and shared write lock entries (prefix `d`).
pub fn supportedlock_xml() -> &'static str {
    "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>\
<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<LockInfo>, XmlError> {
        parse_lockinfo(s.as_bytes())
    }

    #[test]
    fn parses_lockinfo() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:lockinfo xmlns:D='DAV:'>
  <D:lockscope><D:exclusive/></D:lockscope>
  <D:locktype><D:write/></D:locktype>
  <D:owner><D:href>http://example.org/~ejw/contact.html</D:href></D:owner>
</D:lockinfo>"#;
        assert_eq!(
            parse(body),
            Ok(Some(LockInfo {
                shared: false,
                owner_xml: Some(
                    r#"<D:href xmlns:D="DAV:">http://example.org/~ejw/contact.html</D:href>"#
                        .into()
                ),
            }))
        );
        let body = r#"<lockinfo xmlns="DAV:">x<lockscope><shared/></lockscope><locktype><write/></locktype><owner>litmus &amp; co</owner></lockinfo>"#;
        assert_eq!(
            parse(body),
            Ok(Some(LockInfo {
                shared: true,
                owner_xml: Some("litmus &amp; co".into())
            }))
        );
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("\n"), Ok(None));
    }

    #[test]
    fn rejects_bad_lockinfo() {
        assert!(matches!(
            parse(r#"<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>"#),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope></D:lockinfo>"#
            ),
            Err(XmlError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:read/></D:locktype></D:lockinfo>"#
            ),
            Err(XmlError::Invalid(_))
        ));
        assert_eq!(
            parse(
                r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><X:shared/></D:lockscope></D:lockinfo>"#
            ),
            Err(XmlError::UndeclaredPrefix("X".into()))
        );
        assert_eq!(
            parse(r#"<D:propfind xmlns:D="DAV:"/>"#),
            Err(XmlError::UnexpectedRoot("{DAV:}propfind".into()))
        );
    }

    #[test]
    fn renders_activelock() {
        let lock = ActiveLock {
            token: "urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4".into(),
            root_href: "/remote.php/dav/files/a%20b".into(),
            depth_infinity: true,
            shared: false,
            owner_xml: Some("me &amp; you".into()),
            timeout_secs: Some(3600),
        };
        assert_eq!(
            activelock_xml(&lock),
            "<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope><d:exclusive/></d:lockscope>\
<d:depth>infinity</d:depth><d:owner>me &amp; you</d:owner><d:timeout>Second-3600</d:timeout>\
<d:locktoken><d:href>urn:uuid:e71d4fae-5dec-22d6-fea5-00a0c91e6be4</d:href></d:locktoken>\
<d:lockroot><d:href>/remote.php/dav/files/a%20b</d:href></d:lockroot></d:activelock>"
        );
        let body = lockdiscovery_body(&[ActiveLock {
            timeout_secs: None,
            owner_xml: None,
            shared: true,
            depth_infinity: false,
            ..lock
        }]);
        let body = String::from_utf8(body).unwrap();
        assert!(body.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:prop xmlns:d=\"DAV:\"><d:lockdiscovery><d:activelock>"));
        assert!(body.contains("<d:timeout>Infinite</d:timeout>"));
        assert!(body.contains("<d:shared/>"));
        assert!(body.contains("<d:depth>0</d:depth>"));
        assert!(!body.contains("<d:owner>"));
        assert!(body.ends_with("</d:activelock></d:lockdiscovery></d:prop>"));
        assert!(supportedlock_xml().contains("<d:exclusive/>"));
        assert!(supportedlock_xml().contains("<d:shared/>"));
    }
}
