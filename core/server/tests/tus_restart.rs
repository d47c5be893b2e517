//! A TUS upload survives `kill -9` of the real `hearth` binary: after a restart HEAD reports the
//! durable offset (bytes written past it are cut off), the upload finishes, and the file is
//! byte-identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, add_user};
use std::io::{Read, Write};

/// One request on its own connection; returns (status, headers lower-cased, body).
fn http(addr: &str, head: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, out[split + 4..].to_vec())
}

fn get<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

const AUTH: &str = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n";

fn patch(addr: &str, path: &str, offset: usize, body: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (s, h, _) = http(addr, &head, body);
    (s, h)
}

fn head_offset(addr: &str, path: &str) -> (u16, Option<usize>) {
    let head = format!(
        "HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n"
    );
    let (s, h, _) = http(addr, &head, b"");
    (s, get(&h, "upload-offset").map(|v| v.parse().unwrap()))
}

#[test]
fn tus_upload_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    assert!(add_user(dir.path(), "alice").status.success());
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let half = 1_500_000;

    let mut server = Server::start(dir.path(), None);
    let addr = server.addr.clone();
    let meta = "filename cmVzdW1lZC5iaW4="; // base64("resumed.bin")
    let (status, h, _) = http(
        &addr,
        &format!(
            "POST /remote.php/dav/files/alice/ HTTP/1.1\r\nHost: {addr}\r\n{AUTH}Tus-Resumable: 1.0.0\r\nUpload-Length: {}\r\nUpload-Metadata: {meta}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        b"",
    );
    assert_eq!(status, 201);
    let location = get(&h, "location").unwrap().to_owned();
    let path = location
        .strip_prefix(&format!("http://{addr}"))
        .unwrap()
        .to_owned();
    assert!(path.starts_with("/data/"), "{location}");
    let (status, h) = patch(&addr, &path, 0, &body[..half]);
    assert_eq!(status, 204);
    assert_eq!(get(&h, "upload-offset"), Some("1500000"));

    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    // A write that reached the disk but not the offset record (a crash mid-chunk).
    let uploads = dir.path().join("system/uploads");
    let data = std::fs::read_dir(&uploads)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .unwrap()
        .write_all(&[b'X'; 4096])
        .unwrap();
    assert!(!dir.path().join("files/alice/resumed.bin").exists());

    let server = Server::start(dir.path(), None);
    let addr = server.addr.clone();
    assert_eq!(head_offset(&addr, &path), (200, Some(half)));
    assert_eq!(
        std::fs::metadata(&data).unwrap().len(),
        half as u64,
        "cut back to the durable offset"
    );
    let (status, h) = patch(&addr, &path, half, &body[half..]);
    assert_eq!(status, 204);
    assert!(get(&h, "etag").is_some() && get(&h, "oc-fileid").is_some());
    let (status, _, got) = http(
        &addr,
        &format!(
            "GET /remote.php/dav/files/alice/resumed.bin HTTP/1.1\r\nHost: {addr}\r\n{AUTH}Connection: close\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(status, 200);
    assert!(got == body, "byte-identical after the restart");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    server.stop();
}
