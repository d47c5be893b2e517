//! RFC 4918 §10 WebDAV request headers: Depth (§10.2), Destination (§10.3), If (§10.4),
//! Overwrite (§10.6) and Timeout (§10.7).

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::error::HeaderError;

/// The `Depth` header (RFC 4918 §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `0`: the resource only.
    Zero,
    /// `1`: the resource and its immediate members.
    One,
    /// `infinity`: the whole subtree.
    Infinity,
}

/// Parses `Depth`: `0`, `1` or `infinity` (case-insensitive, surrounding whitespace ignored);
/// `Ok(None)` if the header is absent.
pub fn parse_depth(value: Option<&str>) -> Result<Option<Depth>, HeaderError> {
    let Some(raw) = value else { return Ok(None) };
    let v = raw.trim();
    if v == "0" {
        Ok(Some(Depth::Zero))
    } else if v == "1" {
        Ok(Some(Depth::One))
    } else if v.eq_ignore_ascii_case("infinity") {
        Ok(Some(Depth::Infinity))
    } else {
        Err(HeaderError::invalid("Depth", raw))
    }
}

/// Parses `Overwrite`: `T` or `F` (case-insensitive); an absent header means `T` (true).
pub fn parse_overwrite(value: Option<&str>) -> Result<bool, HeaderError> {
    let Some(raw) = value else { return Ok(true) };
    match raw.trim() {
        "T" | "t" => Ok(true),
        "F" | "f" => Ok(false),
        _ => Err(HeaderError::invalid("Overwrite", raw)),
    }
}

/// One `TimeType` of the `Timeout` header (RFC 4918 §10.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `Second-N` (N is capped at 2^32-1 as the RFC requires).
    Seconds(u64),
    /// `Infinite`.
    Infinite,
}

impl Timeout {
    /// Seconds for [`Timeout::Seconds`], `None` for [`Timeout::Infinite`].
    pub fn as_secs(self) -> Option<u64> {
        match self {
            Timeout::Seconds(s) => Some(s),
            Timeout::Infinite => None,
        }
    }
}

/// Parses `Timeout` (`Second-N, Infinite, ...`) and returns the first usable entry;
/// unusable entries are skipped. `None` if the header is absent or has no usable entry.
pub fn parse_timeout_header(value: Option<&str>) -> Option<Timeout> {
    value?.split(',').find_map(|item| {
        let item = item.trim();
        if item.eq_ignore_ascii_case("infinite") {
            return Some(Timeout::Infinite);
        }
        let digits = item
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("second-"))
            .and_then(|_| item.get(7..))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let max = u64::from(u32::MAX);
        // Over-long digit strings saturate instead of failing.
        let secs = digits.parse::<u64>().map_or(max, |n| n.min(max));
        Some(Timeout::Seconds(secs))
    })
}

/// Parses `Timeout` like [`parse_timeout_header`], returning the seconds of the first usable
/// entry. `None` means `Infinite`, an absent header, or no usable entry; use
/// [`parse_timeout_header`] to tell those apart.
pub fn parse_timeout(value: Option<&str>) -> Option<u64> {
    parse_timeout_header(value).and_then(Timeout::as_secs)
}

/// A parsed `If` header (RFC 4918 §10.4): a disjunction of lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfHeader {
    /// Lists in header order; the header is satisfied if any list is.
    pub lists: Vec<IfList>,
}

/// One parenthesised list: a conjunction of conditions, optionally tagged with a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    /// Tagged-list URL as written (absolute URL or path); `None` for a No-tag-list.
    pub resource: Option<String>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// One condition of an `If` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `[Not] <state-token>`.
    Token {
        /// Negated with `Not`.
        not: bool,
        /// The token URI without angle brackets, e.g. `urn:uuid:...` or `DAV:no-lock`.
        token: String,
    },
    /// `[Not] [entity-tag]`.
    Etag {
        /// Negated with `Not`.
        not: bool,
        /// The entity tag as written, including quotes (and `W/` if weak).
        etag: String,
    },
}

impl fmt::Display for IfHeader {
    /// Formats the header value so that [`parse_if`] reads it back unchanged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, list) in self.lists.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Some(res) = &list.resource {
                write!(f, "<{res}> ")?;
            }
            f.write_str("(")?;
            for (j, cond) in list.conditions.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                let (not, text) = match cond {
                    Condition::Token { not, token } => (*not, format!("<{token}>")),
                    Condition::Etag { not, etag } => (*not, format!("[{etag}]")),
                };
                if not {
                    f.write_str("Not ")?;
                }
                f.write_str(&text)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A cursor over a header value; never indexes out of bounds.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn eat_keyword_ci(&mut self, kw: &str) -> bool {
        match self.rest.get(..kw.len()) {
            Some(head) if head.eq_ignore_ascii_case(kw) => {
                self.rest = self.rest.get(kw.len()..).unwrap_or("");
                true
            }
            _ => false,
        }
    }

    /// Takes everything up to (not including) `end` and consumes `end`.
    fn take_until(&mut self, end: char) -> Option<&'a str> {
        let (head, tail) = self.rest.split_once(end)?;
        self.rest = tail;
        Some(head)
    }
}

fn parse_condition_list(cur: &mut Cursor<'_>) -> Option<Vec<Condition>> {
    let mut conditions = Vec::new();
    loop {
        cur.skip_ws();
        if cur.eat(')') {
            return (!conditions.is_empty()).then_some(conditions);
        }
        let not = cur.eat_keyword_ci("Not");
        if not {
            cur.skip_ws();
        }
        if cur.eat('<') {
            let token = cur.take_until('>')?;
            if token.is_empty() || token.contains(['<', '(', ')']) {
                return None;
            }
            conditions.push(Condition::Token {
                not,
                token: token.to_owned(),
            });
        } else if cur.eat('[') {
            let etag = cur.take_until(']')?;
            if !valid_etag(etag) {
                return None;
            }
            conditions.push(Condition::Etag {
                not,
                etag: etag.to_owned(),
            });
        } else {
            return None;
        }
    }
}

/// `[W/]"opaque"` (RFC 7232 entity-tag); a bare token without quotes is tolerated.
fn valid_etag(etag: &str) -> bool {
    let opaque = etag.strip_prefix("W/").unwrap_or(etag);
    match opaque.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .is_some_and(|body| !body.contains('"')),
        None => {
            !opaque.is_empty()
                && !opaque
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '"' | '[' | '<' | '>' | '(' | ')'))
        }
    }
}

/// Parses an `If` header value (RFC 4918 §10.4): either only untagged lists
/// `(<token> ["etag"])`, or only tagged lists `<url> (..) (..)`, with `Not` negations.
/// Anything malformed (empty, unbalanced, mixed tagged/untagged, empty list) is an error.
pub fn parse_if(value: &str) -> Result<IfHeader, HeaderError> {
    let err = || HeaderError::invalid("If", value);
    let mut cur = Cursor { rest: value };
    let mut lists = Vec::new();
    let mut tagged: Option<bool> = None;
    let mut resource: Option<String> = None;
    let mut need_list = false;
    loop {
        cur.skip_ws();
        match cur.peek() {
            None => break,
            Some('<') => {
                if tagged == Some(false) || need_list {
                    return Err(err());
                }
                cur.eat('<');
                let url = cur.take_until('>').ok_or_else(err)?;
                if url.is_empty() || url.contains('<') {
                    return Err(err());
                }
                tagged = Some(true);
                resource = Some(url.to_owned());
                need_list = true;
            }
            Some('(') => {
                cur.eat('(');
                tagged.get_or_insert(false);
                let conditions = parse_condition_list(&mut cur).ok_or_else(err)?;
                lists.push(IfList {
                    resource: resource.clone(),
                    conditions,
                });
                need_list = false;
            }
            Some(_) => return Err(err()),
        }
    }
    if lists.is_empty() || need_list {
        return Err(err());
    }
    Ok(IfHeader { lists })
}

/// Bytes escaped when a raw (unencoded) character shows up in a URL path; `%` is kept as is.
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Destination/tagged URL: absolute URL ("http://host:port/p/a%20th") or path-only ("/p/a%20th"); returns the path, still percent-encoded, without query/fragment.
///
/// Raw characters a path may not contain (spaces, non-ASCII) are percent-encoded; control
/// characters, bad `%` escapes, relative references and `//authority` references are errors.
pub fn url_path(value: &str) -> Result<String, HeaderError> {
    let err = || HeaderError::invalid("Destination", value);
    let v = value.trim();
    if v.is_empty() || v.chars().any(char::is_control) {
        return Err(err());
    }
    let path = if v.starts_with("//") {
        return Err(err());
    } else if v.starts_with('/') {
        v
    } else {
        let (scheme, rest) = v.split_once("://").ok_or_else(err)?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(err());
        }
        let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at_checked(path_start).ok_or_else(err)?;
        if authority.is_empty() || authority.contains(' ') {
            return Err(err());
        }
        path
    };
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = path.get(..end).ok_or_else(err)?;
    if !valid_percent_escapes(path) {
        return Err(err());
    }
    if path.is_empty() {
        return Ok("/".to_owned());
    }
    if !path.starts_with('/') {
        return Err(err());
    }
    Ok(utf8_percent_encode(path, PATH_ESCAPE).to_string())
}

fn valid_percent_escapes(s: &str) -> bool {
    let mut parts = s.split('%');
    parts.next();
    parts.all(|p| p.len() >= 2 && p.bytes().take(2).all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert_eq!(parse_depth(None), Ok(None));
        assert_eq!(parse_depth(Some("0")), Ok(Some(Depth::Zero)));
        assert_eq!(parse_depth(Some(" 1 ")), Ok(Some(Depth::One)));
        assert_eq!(parse_depth(Some("Infinity")), Ok(Some(Depth::Infinity)));
        assert_eq!(parse_depth(Some("infinity")), Ok(Some(Depth::Infinity)));
        assert_eq!(
            parse_depth(Some("2")),
            Err(HeaderError::Invalid {
                header: "Depth",
                value: "2".into()
            })
        );
        assert!(parse_depth(Some("")).is_err());
    }

    #[test]
    fn overwrite() {
        assert_eq!(parse_overwrite(None), Ok(true));
        assert_eq!(parse_overwrite(Some("T")), Ok(true));
        assert_eq!(parse_overwrite(Some("F")), Ok(false));
        assert_eq!(parse_overwrite(Some(" f ")), Ok(false));
        assert!(parse_overwrite(Some("yes")).is_err());
        assert!(parse_overwrite(Some("")).is_err());
    }

    #[test]
    fn timeout() {
        assert_eq!(parse_timeout(None), None);
        assert_eq!(parse_timeout(Some("Second-3600")), Some(3600));
        assert_eq!(parse_timeout(Some("second-10, Infinite")), Some(10));
        assert_eq!(parse_timeout(Some("Infinite, Second-4100000000")), None);
        assert_eq!(
            parse_timeout_header(Some("Infinite, Second-4100000000")),
            Some(Timeout::Infinite)
        );
        assert_eq!(parse_timeout(Some("bogus, Second-5")), Some(5));
        assert_eq!(
            parse_timeout(Some("Second-99999999999999999999999")),
            Some(u64::from(u32::MAX))
        );
        assert_eq!(parse_timeout_header(Some("Second-, Second-x")), None);
        assert_eq!(parse_timeout_header(Some("")), None);
        assert_eq!(parse_timeout_header(Some("Sécond-1")), None);
    }

    fn token(not: bool, t: &str) -> Condition {
        Condition::Token {
            not,
            token: t.into(),
        }
    }

    fn etag(not: bool, e: &str) -> Condition {
        Condition::Etag {
            not,
            etag: e.into(),
        }
    }

    #[test]
    fn if_untagged_and_tagged() {
        let h = parse_if(
            r#"(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> ["I am an ETag"]) (["I am another ETag"])"#,
        )
        .unwrap();
        assert_eq!(
            h.lists,
            vec![
                IfList {
                    resource: None,
                    conditions: vec![
                        token(false, "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"),
                        etag(false, "\"I am an ETag\"")
                    ]
                },
                IfList {
                    resource: None,
                    conditions: vec![etag(false, "\"I am another ETag\"")]
                }
            ]
        );
        let h = parse_if(r#"(Not <urn:uuid:a> <urn:uuid:b>)"#).unwrap();
        assert_eq!(
            h.lists[0].conditions,
            vec![token(true, "urn:uuid:a"), token(false, "urn:uuid:b")]
        );
        let h = parse_if(
            r#"<http://www.example.com/specs/> (<urn:uuid:1>) (NOT [W/"x"]) </a%20b> (<DAV:no-lock>)"#,
        )
        .unwrap();
        assert_eq!(h.lists.len(), 3);
        assert_eq!(
            h.lists[0].resource.as_deref(),
            Some("http://www.example.com/specs/")
        );
        assert_eq!(
            h.lists[1].resource.as_deref(),
            Some("http://www.example.com/specs/")
        );
        assert_eq!(h.lists[1].conditions, vec![etag(true, "W/\"x\"")]);
        assert_eq!(h.lists[2].resource.as_deref(), Some("/a%20b"));
        assert_eq!(h.lists[2].conditions, vec![token(false, "DAV:no-lock")]);
        // litmus: negated no-lock in its own list.
        let h = parse_if("(<opaquelocktoken:abc>) (Not <DAV:no-lock>)").unwrap();
        assert_eq!(h.lists[1].conditions, vec![token(true, "DAV:no-lock")]);
        assert_eq!(h.to_string(), "(<opaquelocktoken:abc>) (Not <DAV:no-lock>)");
    }

    #[test]
    fn if_malformed() {
        for bad in [
            "",
            "   ",
            "()",
            "(",
            "(<urn:a>",
            "<urn:a>",
            "<http://x/> ",
            "(<urn:a>) <http://x/> (<urn:b>)",
            "<http://x/> (<urn:b>) (<urn:c>) <http://y/>",
            "(urn:a)",
            "(Not)",
            "(<>)",
            "([])",
            "([\"a\"\"b\"])",
            "(<urn:a>) junk",
            "(<urn:a>))",
            "(Nott <urn:a>)",
            "<http://x/> <http://y/> (<urn:a>)",
        ] {
            assert!(parse_if(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn url_paths() {
        let ok = |v: &str| url_path(v).unwrap();
        assert_eq!(ok("http://host:8080/p/a%20th"), "/p/a%20th");
        assert_eq!(ok("https://host/p/a%20th?x=1#f"), "/p/a%20th");
        assert_eq!(ok("/p/a%20th"), "/p/a%20th");
        assert_eq!(ok("http://host"), "/");
        assert_eq!(ok("http://host?q"), "/");
        assert_eq!(ok("http://[::1]:80/x"), "/x");
        assert_eq!(ok("/p/a b/ü"), "/p/a%20b/%C3%BC");
        for bad in [
            "",
            "p/a",
            "//host/p",
            "http:/x",
            "1http://h/x",
            "http:///x",
            "/a%2",
            "/a%zz",
            "/a\u{0}b",
        ] {
            assert!(url_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
