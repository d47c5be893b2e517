//! Property tests: header and body parsers never panic, If headers round-trip, and any text
//! written through `MultistatusWriter` comes back exactly from well-formed XML.
// Test-only code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Tok, contents_of};
use hearth_dav_proto::{
    Condition, IfHeader, IfList, MultistatusWriter, PatchOp, Prop, PropName, PropStat, PropValue,
    parse_if, parse_lockinfo, parse_propfind, parse_proppatch, parse_report, url_path,
};
use proptest::prelude::*;

/// Characters XML 1.0 can carry.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Arbitrary Unicode text without XML-forbidden characters, biased towards markup characters.
fn xml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| s.chars().filter(|c| is_xml_char(*c)).collect()),
        "[<>&\"' \r\n\t\u{10000}-\u{10FFFF}a-z\\]]{0,40}",
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        (
            any::<bool>(),
            "(urn:uuid:|opaquelocktoken:|DAV:)[a-zA-Z0-9._:-]{1,30}"
        )
            .prop_map(|(not, token)| Condition::Token { not, token }),
        (any::<bool>(), "(W/)?\"[a-zA-Z0-9 ()<>\\[-]{0,12}\"")
            .prop_map(|(not, etag)| Condition::Etag { not, etag }),
    ]
}

fn if_header() -> impl Strategy<Value = IfHeader> {
    let lists = |tagged: bool| {
        proptest::collection::vec(
            (
                "(http://h(:[0-9]{1,4})?)?/[a-zA-Z0-9/%._~-]{0,20}",
                proptest::collection::vec(condition(), 1..4),
            )
                .prop_map(move |(res, conditions)| IfList {
                    resource: tagged.then_some(res),
                    conditions,
                }),
            1..4,
        )
    };
    prop_oneof![lists(false), lists(true)].prop_map(|lists| IfHeader { lists })
}

/// Text of the single `{ns}local` element in `doc`, which must be well-formed.
fn text_of(doc: &str, ns: &str, local: &str) -> String {
    let found = contents_of(doc, ns, local).unwrap();
    assert_eq!(found.len(), 1);
    match found.first().map(Vec::as_slice) {
        Some([]) => String::new(),
        Some([Tok::Text(t)]) => t.clone(),
        other => panic!("unexpected content {other:?}"),
    }
}

/// Inserts `junk` at a position derived from `at` (on a char boundary).
fn mutate(base: &str, at: usize, junk: &str) -> String {
    let mut idx = at % (base.len() + 1);
    while !base.is_char_boundary(idx) {
        idx -= 1;
    }
    let (a, b) = base.split_at(idx);
    format!("{a}{junk}{b}")
}

const PROPFIND: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/><oc:fileid/></d:prop></d:propfind>"#;
const PROPPATCH: &str = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:a xmlns:Z="urn:z"><Z:b c="d">t</Z:b></Z:a></D:prop></D:set><D:remove><D:prop><D:x/></D:prop></D:remove></D:propertyupdate>"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_if_never_panics(s in any::<String>()) {
        let _ = parse_if(&s);
        let _ = url_path(&s);
    }

    #[test]
    fn parse_if_never_panics_on_if_like_input(s in "[<>()\\[\\] \t\"NnOoTtW/a-z:0-9]{0,60}") {
        let _ = parse_if(&s);
    }

    #[test]
    fn if_header_round_trips(h in if_header()) {
        let text = h.to_string();
        prop_assert_eq!(parse_if(&text), Ok(h), "rendered as {}", text);
    }

    #[test]
    fn text_values_round_trip_through_multistatus(
        text in xml_text(),
        ns in prop_oneof![Just(String::from("DAV:")), Just(String::new()), "urn:[a-z\"&<]{1,8}"],
    ) {
        let name = PropName::new(&ns, "value");
        let mut w = MultistatusWriter::new();
        w.response("/a%20b&c", &[PropStat {
            status: 200,
            props: vec![Prop { name: name.clone(), value: PropValue::Text(text.clone()) }],
        }]);
        let doc = String::from_utf8(w.finish()).unwrap();
        prop_assert_eq!(text_of(&doc, &name.ns, &name.local), text);
    }

    #[test]
    fn dead_text_values_round_trip(text in xml_text()) {
        let mut escaped = String::new();
        for c in text.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '\r' => escaped.push_str("&#xD;"),
                c => escaped.push(c),
            }
        }
        let body = format!(
            "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x:v xmlns:x=\"urn:x\">{escaped}</x:v></D:prop></D:set></D:propertyupdate>"
        );
        let ops = parse_proppatch(body.as_bytes()).unwrap();
        let Some(PatchOp::Set { name, value }) = ops.first() else {
            panic!("expected one set, got {ops:?}");
        };
        let mut w = MultistatusWriter::new();
        w.response("/f", &[PropStat {
            status: 200,
            props: vec![Prop { name: name.clone(), value: PropValue::Xml(value.xml.clone()) }],
        }]);
        let doc = String::from_utf8(w.finish()).unwrap();
        prop_assert_eq!(text_of(&doc, "urn:x", "v"), text);
    }

    #[test]
    fn body_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_propfind(&bytes);
        let _ = parse_proppatch(&bytes);
        let _ = parse_lockinfo(&bytes);
        let _ = parse_report(&bytes);
    }

    #[test]
    fn body_parsers_never_panic_on_xmlish_input(s in "[<>/=\"' a-zA-Z:&;#!\\[\\]?-]{0,200}") {
        let _ = parse_propfind(s.as_bytes());
        let _ = parse_proppatch(s.as_bytes());
        let _ = parse_lockinfo(s.as_bytes());
        let _ = parse_report(s.as_bytes());
    }

    #[test]
    fn body_parsers_never_panic_on_mutated_bodies(
        at in any::<usize>(),
        junk in "[<>/=\"' a-zA-Z:&;#!\\[\\]\u{0}-\u{1f}\u{10000}]{1,8}",
    ) {
        let _ = parse_propfind(mutate(PROPFIND, at, &junk).as_bytes());
        let _ = parse_proppatch(mutate(PROPPATCH, at, &junk).as_bytes());
    }
}

/// A generated dead-property value node.
#[derive(Debug, Clone)]
enum GNode {
    Text(String),
    El {
        prefix: Option<&'static str>,
        local: &'static str,
        decls: Vec<(Option<&'static str>, &'static str)>,
        attr: Option<(Option<&'static str>, String)>,
        children: Vec<GNode>,
    },
}

const PREFIXES: [Option<&str>; 3] = [None, Some("a"), Some("b")];
const URIS: [&str; 4] = ["urn:1", "urn:2", "DAV:", "http://owncloud.org/ns"];

fn decl() -> impl Strategy<Value = (Option<&'static str>, &'static str)> {
    (
        proptest::sample::select(&PREFIXES[..]),
        prop_oneof![proptest::sample::select(&URIS[..]), Just("")],
    )
        .prop_map(|(p, u)| {
            (
                p,
                if p.is_some() && u.is_empty() {
                    "urn:3"
                } else {
                    u
                },
            )
        })
}

fn gnode() -> impl Strategy<Value = GNode> {
    let leaf = xml_text().prop_map(GNode::Text);
    leaf.prop_recursive(4, 24, 4, |inner| {
        (
            proptest::sample::select(&PREFIXES[..]),
            proptest::sample::select(&["e", "f", "getetag"][..]),
            proptest::collection::vec(decl(), 0..3),
            proptest::option::of((proptest::sample::select(&PREFIXES[..]), "[a-z&<\"]{0,5}")),
            proptest::collection::vec(inner, 0..4),
        )
            .prop_map(|(prefix, local, decls, attr, children)| GNode::El {
                prefix,
                local,
                decls,
                attr,
                children,
            })
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\r', "&#13;")
}

/// Writes generated nodes as (namespace-valid) XML; `scope` holds the bindings in effect.
fn write_gnodes(
    out: &mut String,
    nodes: &[GNode],
    scope: &mut Vec<(Option<&'static str>, &'static str)>,
) {
    for node in nodes {
        match node {
            GNode::Text(t) => out.push_str(&escape(t)),
            GNode::El {
                prefix,
                local,
                decls,
                attr,
                children,
            } => {
                let mark = scope.len();
                let mut written: Vec<(Option<&str>, &str)> = Vec::new();
                for d in decls {
                    if !written.iter().any(|w| w.0 == d.0) {
                        written.push(*d);
                        scope.push(*d);
                    }
                }
                let bound = |scope: &Vec<(Option<&str>, &str)>, p: Option<&str>| {
                    scope
                        .iter()
                        .rev()
                        .find(|b| b.0 == p)
                        .is_some_and(|b| !b.1.is_empty())
                };
                let attr_prefix = attr.as_ref().and_then(|a| a.0);
                for p in [*prefix, attr_prefix].into_iter().flatten() {
                    if !bound(scope, Some(p)) && !written.iter().any(|w| w.0 == Some(p)) {
                        written.push((Some(p), "urn:fallback"));
                        scope.push((Some(p), "urn:fallback"));
                    }
                }
                let qname = match prefix {
                    Some(p) => format!("{p}:{local}"),
                    None => (*local).to_owned(),
                };
                out.push('<');
                out.push_str(&qname);
                for (p, u) in &written {
                    match p {
                        Some(p) => out.push_str(&format!(" xmlns:{p}=\"{u}\"")),
                        None => out.push_str(&format!(" xmlns=\"{u}\"")),
                    }
                }
                if let Some((p, v)) = attr {
                    let an = p.map_or("at".to_owned(), |p| format!("{p}:at"));
                    out.push_str(&format!(" {an}=\"{}\"", escape(v)));
                }
                out.push('>');
                write_gnodes(out, children, scope);
                out.push_str(&format!("</{qname}>"));
                scope.truncate(mark);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn structured_dead_values_round_trip(
        root_decls in proptest::collection::vec(decl(), 0..3),
        nodes in proptest::collection::vec(gnode(), 0..4),
    ) {
        let mut scope = Vec::new();
        let mut body = String::from("<D:propertyupdate xmlns:D=\"DAV:\"");
        for (p, u) in &root_decls {
            if scope.iter().any(|(q, _): &(Option<&str>, &str)| q == p) {
                continue;
            }
            scope.push((*p, *u));
            match p {
                Some(p) => body.push_str(&format!(" xmlns:{p}=\"{u}\"")),
                None => body.push_str(&format!(" xmlns=\"{u}\"")),
            }
        }
        body.push_str("><D:set><D:prop><x:target xmlns:x=\"urn:target\">");
        write_gnodes(&mut body, &nodes, &mut scope);
        body.push_str("</x:target></D:prop></D:set></D:propertyupdate>");

        let ops = parse_proppatch(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        let Some(PatchOp::Set { value, .. }) = ops.first() else {
            panic!("expected one set, got {ops:?}");
        };
        let mut w = MultistatusWriter::new();
        w.response("/f", &[PropStat {
            status: 200,
            props: vec![Prop { name: PropName::new("urn:target", "target"), value: PropValue::Xml(value.xml.clone()) }],
        }]);
        let doc = String::from_utf8(w.finish()).unwrap();
        let original = contents_of(&body, "urn:target", "target").unwrap();
        let rendered = contents_of(&doc, "urn:target", "target")
            .map_err(|e| TestCaseError::fail(format!("{e}: {doc}")))?;
        prop_assert_eq!(original, rendered, "body {} doc {}", body, doc);
    }
}
