//! Fuzz target: RFC 4918 §9.1 PROPFIND body parsing (also LOCK and REPORT bodies) must never
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hearth_dav_proto::parse_propfind(data);
    let _ = hearth_dav_proto::parse_lockinfo(data);
    let _ = hearth_dav_proto::parse_report(data);
});
