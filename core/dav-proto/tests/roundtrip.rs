//! Round trips: PROPPATCH dead values rendered through `MultistatusWriter` must come back
//! namespace-equivalent and character-exact when the 207 body is parsed again.
// Test-only code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Tok, contents_of};
use hearth_dav_proto::{MultistatusWriter, PatchOp, Prop, PropStat, PropValue, parse_proppatch};

/// Parses `body`, renders every `set` value in a multistatus, and checks that each property's
/// content equals (canonically) its content in the original request.
fn assert_round_trip(body: &str) {
    let ops = parse_proppatch(body.as_bytes()).unwrap();
    let mut w = MultistatusWriter::new();
    let mut props = Vec::new();
    for op in &ops {
        if let PatchOp::Set { name, value } = op {
            props.push(Prop {
                name: name.clone(),
                value: PropValue::Xml(value.xml.clone()),
            });
        }
    }
    w.response(
        "/dav/file",
        &[PropStat {
            status: 200,
            props: props.clone(),
        }],
    );
    let doc = String::from_utf8(w.finish()).unwrap();
    for prop in &props {
        let original = contents_of(body, &prop.name.ns, &prop.name.local).unwrap();
        let rendered = contents_of(&doc, &prop.name.ns, &prop.name.local)
            .unwrap_or_else(|e| panic!("rendered doc not well-formed ({e}): {doc}"));
        assert_eq!(rendered.len(), 1, "property {} in {doc}", prop.name);
        assert_eq!(
            original.first(),
            rendered.first(),
            "property {} differs; doc = {doc}",
            prop.name
        );
    }
    // The value also survives being parsed a second time as a PROPPATCH.
    for op in &ops {
        if let PatchOp::Set { name, value } = op {
            let again = format!(
                "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><p:{} xmlns:p=\"{}\">{}</p:{}></D:prop></D:set></D:propertyupdate>",
                name.local, name.ns, value.xml, name.local
            );
            if name.ns.is_empty() {
                continue;
            }
            let reparsed = parse_proppatch(again.as_bytes()).unwrap();
            assert_eq!(
                reparsed,
                vec![PatchOp::Set {
                    name: name.clone(),
                    value: value.clone()
                }]
            );
        }
    }
}

#[test]
fn text_values() {
    assert_round_trip(
        "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>\
<D:displayname>a &amp; b &lt;c&gt; \"q\" 'a'</D:displayname>\
<x:high xmlns:x=\"urn:x\">\u{10000}\u{1F600}\u{10FFFD}&#x10001;</x:high>\
<x:ws xmlns:x=\"urn:x\">  lead\ttab\r\nCRLF&#13;cr  </x:ws>\
<x:cdata xmlns:x=\"urn:x\"><![CDATA[<not> & markup]]></x:cdata>\
<x:empty xmlns:x=\"urn:x\"/>\
</D:prop></D:set></D:propertyupdate>",
    );
}

#[test]
fn litmus_like_values() {
    // propvalnspace / propwformed.
    assert_round_trip(
        "<propertyupdate xmlns=\"DAV:\"><set><prop>\
<valnspace xmlns=\"http://example.com/neon/litmus/\"><foo xmlns=\"http://bar\">baz</foo></valnspace>\
<t:wformed xmlns:t=\"http://example.com/neon/litmus/\"><foo><bar>baz</bar></foo></t:wformed>\
</prop></set></propertyupdate>",
    );
    // Prefixes declared far above the value, attributes in namespaces, undeclared default.
    assert_round_trip(
        "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" xmlns=\"urn:default\">\
<D:set><D:prop><a:p>head<b:q a:r=\"s&amp;t\" plain=\"v&#10;w\"><a:t/><u xmlns=\"\">x</u><dflt/></b:q>tail</a:p></D:prop></D:set>\
</D:propertyupdate>",
    );
    // propnullns-like: property and value in no namespace.
    assert_round_trip(
        "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><nonamespace xmlns=\"\"><inner>v</inner></nonamespace></D:prop></D:set></D:propertyupdate>",
    );
}

#[test]
fn many_namespaces() {
    // propmanyns: many properties, each in its own namespace, some sharing prefixes.
    let mut body = String::from("<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>");
    for i in 0..20 {
        body.push_str(&format!(
            "<p:prop{i} xmlns:p=\"http://example.com/ns{i}/\"><p:v xmlns:q=\"urn:q{i}\" q:a=\"{i}\">value {i}</p:v></p:prop{i}>"
        ));
    }
    body.push_str("</D:prop></D:set></D:propertyupdate>");
    assert_round_trip(&body);
}

#[test]
fn canonical_helper_sees_namespaces() {
    let toks = contents_of(
        "<r xmlns:a=\"urn:a\"><a:x><y a:b=\"1\"/>t</a:x></r>",
        "urn:a",
        "x",
    )
    .unwrap();
    assert_eq!(
        toks,
        vec![vec![
            Tok::Start("{}y".into(), vec![("{urn:a}b".into(), "1".into())]),
            Tok::End,
            Tok::Text("t".into())
        ]]
    );
}
