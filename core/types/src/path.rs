//! Paths inside a space, normalised and confined: every segment is one real file name that can exist
//! on disk, so no request can name anything outside its space (`..`, `%2e%2e`, `%2f`, `\`, NUL).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::fmt;

/// The longest name a file system accepts (Linux `NAME_MAX`, in bytes).
pub const NAME_MAX: usize = 255;

/// Why a path segment cannot be a file name.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum NameError {
    /// `.` and `..` name no file of their own and would escape the space.
    #[error("the name {0:?} is reserved")]
    Reserved(String),
    /// Contains a byte no file name may hold here (`/`, `\`, NUL or another control character).
    #[error("the name {0:?} contains a forbidden character")]
    ForbiddenChar(String),
    /// Longer than [`NAME_MAX`] bytes.
    #[error("the name is longer than {NAME_MAX} bytes")]
    TooLong,
    /// Empty names exist only as a path's root.
    #[error("the name is empty")]
    Empty,
    /// Percent-decoding gave bytes that are not UTF-8.
    #[error("the name is not valid UTF-8")]
    NotUtf8,
}

/// One validated file or folder name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates a decoded name.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s == "." || s == ".." {
            return Err(NameError::Reserved(s.to_owned()));
        }
        if s.len() > NAME_MAX {
            return Err(NameError::TooLong);
        }
        // Backslash is legal on Linux but is a separator to Windows clients, and reva refuses it too.
        if s.chars()
            .any(|c| c == '/' || c == '\\' || c == '\0' || c.is_control())
        {
            return Err(NameError::ForbiddenChar(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised path relative to a space root: a list of valid names. The empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RelPath(Vec<Name>);

impl RelPath {
    /// The space root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses the percent-encoded tail of a URL (`a/b%20c/`); empty segments (`//`, trailing `/`) are
    /// dropped, every other segment must decode to a valid [`Name`].
    pub fn from_url_path(encoded: &str) -> Result<Self, NameError> {
        let mut names = Vec::new();
        for seg in encoded.split('/') {
            if seg.is_empty() {
                continue;
            }
            let decoded = percent_decode_str(seg)
                .decode_utf8()
                .map_err(|_| NameError::NotUtf8)?;
            names.push(Name::new(&decoded)?);
        }
        Ok(Self(names))
    }

    /// Parses a decoded `/`-separated path (as in TUS metadata or OCS `path=`).
    pub fn from_decoded(path: &str) -> Result<Self, NameError> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(Name::new)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether this is the space root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The names from the root down.
    pub fn names(&self) -> &[Name] {
        &self.0
    }

    /// The last name, `None` at the root.
    pub fn file_name(&self) -> Option<&Name> {
        self.0.last()
    }

    /// The parent path, `None` at the root.
    pub fn parent(&self) -> Option<RelPath> {
        let (_, head) = self.0.split_last()?;
        Some(Self(head.to_vec()))
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &Name) -> RelPath {
        let mut v = self.0.clone();
        v.push(name.clone());
        Self(v)
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// Number of segments.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// `other` re-rooted: the part of `self` below `prefix`, appended to `to`.
    pub fn rebase(&self, prefix: &RelPath, to: &RelPath) -> Option<RelPath> {
        let rest = self.0.strip_prefix(prefix.0.as_slice())?;
        let mut v = to.0.clone();
        v.extend_from_slice(rest);
        Some(Self(v))
    }
}

impl fmt::Display for RelPath {
    /// Decoded, `/`-joined, with a leading `/` (`/` for the root).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for n in &self.0 {
            write!(f, "/{}", n.as_str())?;
        }
        Ok(())
    }
}

/// Characters kept literal in an href segment: RFC 3986 unreserved only; everything else, including
/// `#`, `%`, `?`, `$`, spaces and non-ASCII, is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a [`RelPath`] as `a/b%20c` (no leading or trailing slash).
pub fn encode_path(p: &RelPath) -> String {
    let mut out = String::new();
    for (i, n) in p.names().iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&encode_segment(n.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "..",
            "a/..",
            "%2e%2e",
            "a/%2E%2E/b",
            "a%2fb",
            "a%5cb",
            "a\\b",
            "a%00b",
            "%ff",
        ] {
            assert!(RelPath::from_url_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalises_slashes() {
        let p = RelPath::from_url_path("//a///b%20c/").unwrap();
        assert_eq!(p.to_string(), "/a/b c");
        assert_eq!(encode_path(&p), "a/b%20c");
    }

    #[test]
    fn special_names_round_trip() {
        for name in [
            "a#b",
            "100%",
            "what?",
            "spaced name",
            "caf\u{e9}",
            "cafe\u{301}",
            "\u{1F600}",
        ] {
            let enc = encode_segment(name);
            let p = RelPath::from_url_path(&enc).unwrap();
            assert_eq!(p.file_name().unwrap().as_str(), name);
        }
    }

    #[test]
    fn long_names() {
        let ok = "x".repeat(255);
        assert!(Name::new(&ok).is_ok());
        assert_eq!(Name::new(&"x".repeat(256)), Err(NameError::TooLong));
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(segs in proptest::collection::vec("[^/\\\\\\x00-\\x1f\\x7f]{1,40}", 0..6)) {
            let segs: Vec<_> = segs.into_iter().filter(|s| Name::new(s).is_ok()).collect();
            let p = RelPath::from_decoded(&segs.join("/")).unwrap();
            let again = RelPath::from_url_path(&encode_path(&p)).unwrap();
            prop_assert_eq!(p, again);
        }

        #[test]
        fn parsing_never_escapes(s in ".{0,200}") {
            if let Ok(p) = RelPath::from_url_path(&s) {
                for n in p.names() {
                    prop_assert!(n.as_str() != ".." && n.as_str() != "." && !n.as_str().contains('/'));
                    prop_assert!(!n.as_str().contains('\\') && !n.as_str().contains('\0'));
                }
            }
        }
    }
}
