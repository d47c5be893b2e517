//! Namespaced WebDAV property names (RFC 4918 §4.3, §14.18) and well-known namespace URIs.

use std::fmt;

/// The WebDAV namespace (RFC 4918 §21).
pub const DAV_NS: &str = "DAV:";
/// The ownCloud namespace (`oc:` prefix).
pub const OC_NS: &str = "http://owncloud.org/ns";
/// The Nextcloud namespace (`nc:` prefix).
pub const NC_NS: &str = "http://nextcloud.org/ns";
/// The Open Collaboration Services namespace (`ocs:` prefix).
pub const OCS_NS: &str = "http://open-collaboration-services.org/ns";
/// The SabreDAV namespace (`s:` prefix), used by error bodies.
pub const SABRE_NS: &str = "http://sabredav.org/ns";

/// An expanded XML name: namespace URI plus local name. `ns == ""` means "no namespace"
/// (litmus `propnullns`), which renders as `<foo xmlns="">`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropName {
    /// Namespace URI, empty for no namespace.
    pub ns: String,
    /// Local name (an XML NCName).
    pub local: String,
}

impl PropName {
    /// Builds a name from a namespace URI and a local name.
    pub fn new(ns: &str, local: &str) -> Self {
        PropName {
            ns: ns.to_owned(),
            local: local.to_owned(),
        }
    }

    /// A name in the `DAV:` namespace.
    pub fn dav(local: &str) -> Self {
        Self::new(DAV_NS, local)
    }

    /// A name in the ownCloud namespace.
    pub fn oc(local: &str) -> Self {
        Self::new(OC_NS, local)
    }

    /// A name in the Nextcloud namespace.
    pub fn nc(local: &str) -> Self {
        Self::new(NC_NS, local)
    }

    /// Stable storage key `{ns}local` (Clark notation); a name without namespace is just `local`.
    pub fn clark(&self) -> String {
        if self.ns.is_empty() {
            self.local.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.local)
        }
    }

    /// Inverse of [`PropName::clark`]. Accepts `{ns}local`, `{}local` and bare `local`;
    /// returns `None` for an unterminated `{`, an empty local name, or a local name with braces.
    pub fn from_clark(s: &str) -> Option<Self> {
        let (ns, local) = match s.strip_prefix('{') {
            Some(rest) => rest.split_once('}')?,
            None => ("", s),
        };
        if local.is_empty() || local.contains(['{', '}']) {
            return None;
        }
        Some(Self::new(ns, local))
    }

    /// The fixed document-level prefix for a well-known namespace (`d`, `oc`, `nc`, `s`, `ocs`).
    pub fn well_known_prefix(&self) -> Option<&'static str> {
        well_known_prefix(&self.ns)
    }
}

impl fmt::Display for PropName {
    /// Formats the Clark notation of the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.clark())
    }
}

/// The fixed prefix a [`crate::MultistatusWriter`] document declares for `ns`, if any.
pub fn well_known_prefix(ns: &str) -> Option<&'static str> {
    match ns {
        DAV_NS => Some("d"),
        OC_NS => Some("oc"),
        NC_NS => Some("nc"),
        SABRE_NS => Some("s"),
        OCS_NS => Some("ocs"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clark_round_trip() {
        for name in [
            PropName::dav("getetag"),
            PropName::oc("fileid"),
            PropName::new("", "nullns"),
            PropName::new("http://example.com/ns/", "x-y.z"),
        ] {
            assert_eq!(PropName::from_clark(&name.clark()), Some(name.clone()));
        }
        assert_eq!(PropName::dav("getetag").clark(), "{DAV:}getetag");
        assert_eq!(
            PropName::from_clark("{}foo"),
            Some(PropName::new("", "foo"))
        );
        assert_eq!(PropName::from_clark("{DAV:getetag"), None);
        assert_eq!(PropName::from_clark("{DAV:}"), None);
        assert_eq!(PropName::from_clark(""), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(PropName::dav("x").well_known_prefix(), Some("d"));
        assert_eq!(PropName::nc("x").well_known_prefix(), Some("nc"));
        assert_eq!(PropName::new("urn:x", "x").well_known_prefix(), None);
    }
}
