//! Fuzz target: RFC 4918 §10.4 `If` header parsing must never panic, and every header it
//! accepts must render back to a value that parses to the same result. Also fuzzes `url_path`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hearth_dav_proto::url_path(text);
    if let Ok(header) = hearth_dav_proto::parse_if(text) {
        let rendered = header.to_string();
        assert_eq!(hearth_dav_proto::parse_if(&rendered), Ok(header));
    }
});
