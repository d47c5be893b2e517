//! Fuzz target: RFC 4918 §9.2 PROPPATCH body parsing must never panic, and every dead value it
//! accepts must embed back into a document that parses again to the same value.
#![no_main]

use hearth_dav_proto::{PatchOp, parse_proppatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ops) = parse_proppatch(data) else {
        return;
    };
    for op in ops {
        let PatchOp::Set { name, value } = op else {
            continue;
        };
        if name.ns.is_empty() || name.ns.contains(['"', '&', '<']) {
            continue;
        }
        let body = format!(
            "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><p:{l} xmlns:p=\"{ns}\">{v}</p:{l}></D:prop></D:set></D:propertyupdate>",
            l = name.local,
            ns = name.ns,
            v = value.xml
        );
        let again = parse_proppatch(body.as_bytes());
        assert_eq!(again, Ok(vec![PatchOp::Set { name, value }]));
    }
});
