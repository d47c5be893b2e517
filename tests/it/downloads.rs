//! Downloads of files larger than one read: whole, ranged, HEAD, old versions, pipelined on one
//! connection, and a file that shrinks on disk while it is being sent. On plain HTTP/1.1 these go
//! out with `sendfile` through placeholder frames, so every check compares bytes exactly: a
//! mix-up would show as zeros or as another range's bytes.

use crate::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `len` bytes that differ at every offset (a xorshift stream), so a misplaced range shows.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A `Range` GET: (status, Content-Range, body).
async fn ranged(s: &TestServer, url: &str, range: &str) -> (u16, String, Vec<u8>) {
    let r = s
        .req("GET", url)
        .header("Range", range)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cr = r
        .headers()
        .get("content-range")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cr, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn large_downloads_are_byte_exact() {
    let s = TestServer::start().await;
    // Three full 1 MiB frames and a partial one.
    let big = content(3 * 1024 * 1024 + 12_345, 7);
    assert_eq!(s.put("big.bin", big.clone()).await.status(), 201);
    s.put("small.txt", "small").await;

    for _ in 0..2 {
        // Alternating with small responses on the same keep-alive connection.
        let (st, body) = s.get_bytes("big.bin").await;
        assert_eq!(st, 200);
        assert!(body == big, "whole file differs ({} bytes)", body.len());
        assert_eq!(s.get_bytes("small.txt").await.1, b"small");
    }

    let url = s.dav("big.bin");
    let n = big.len();
    // Across the first frame boundary, a suffix, the last byte, and one byte.
    for (range, from, to) in [
        ("bytes=1048000-2097999", 1_048_000, 2_098_000),
        ("bytes=-70000", n - 70_000, n),
        (&*format!("bytes={}-", n - 1), n - 1, n),
        ("bytes=5-5", 5, 6),
        ("bytes=100000-", 100_000, n),
    ] {
        let (st, cr, body) = ranged(&s, &url, range).await;
        assert_eq!(st, 206, "{range}");
        assert_eq!(cr, format!("bytes {from}-{}/{n}", to - 1), "{range}");
        assert!(body == big[from..to], "{range}: body differs");
    }
    let (st, _, _) = ranged(&s, &url, &format!("bytes={n}-")).await;
    assert_eq!(st, 416);

    let r = s.req("HEAD", &url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], n.to_string().as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // An old version is a download too.
    let newer = content(2 * 1024 * 1024 + 1, 9);
    assert_eq!(s.put("big.bin", newer.clone()).await.status(), 204);
    assert!(s.get_bytes("big.bin").await.1 == newer);
    let id = s.fileid("big.bin").await;
    let meta = format!(
        "{}/remote.php/dav/meta/{}/v",
        s.base,
        id.replace('$', "%24")
    );
    let listing = s.listing(&meta).await.1;
    let key = item_keys(&listing).into_iter().next().expect("one version");
    let r = s.req("GET", &format!("{meta}/{key}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == big, "old version differs");
    s.stop().await;
}

/// Reads one HTTP/1.1 response with a Content-Length body from `buf`/`tcp`.
async fn read_response(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 65536];
        let k = tcp.read(&mut chunk).await.unwrap();
        assert!(k > 0, "connection closed inside a response head");
        buf.extend_from_slice(&chunk[..k]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = between(&head, "content-length: ", "\r\n")
        .expect("content-length")
        .parse()
        .unwrap();
    while buf.len() < head_end + len {
        let mut chunk = vec![0u8; 1 << 20];
        let k = tcp.read(&mut chunk).await.unwrap();
        assert!(k > 0, "connection closed inside a body");
        buf.extend_from_slice(&chunk[..k]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    (head, body)
}

#[tokio::test]
async fn pipelined_downloads_keep_their_order() {
    let s = TestServer::start().await;
    let big = content(2 * 1024 * 1024 + 777, 3);
    s.put("big.bin", big.clone()).await;
    s.put("small.txt", "in between").await;
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:secret")
    );
    let path = "/remote.php/dav/files/alice";
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    // All four requests in one write: the server answers them one after another.
    let mut reqs = String::new();
    for (file, range) in [
        ("big.bin", "bytes=1000000-"),
        ("small.txt", ""),
        ("big.bin", ""),
        ("big.bin", "bytes=0-99999"),
    ] {
        reqs += &format!("GET {path}/{file} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n");
        if !range.is_empty() {
            reqs += &format!("Range: {range}\r\n");
        }
        reqs += "\r\n";
    }
    tcp.write_all(reqs.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let (h, b) = read_response(&mut tcp, &mut buf).await;
    assert!(h.starts_with("http/1.1 206"), "{h}");
    assert!(b == big[1_000_000..]);
    let (h, b) = read_response(&mut tcp, &mut buf).await;
    assert!(h.starts_with("http/1.1 200"), "{h}");
    assert_eq!(b, b"in between");
    let (_, b) = read_response(&mut tcp, &mut buf).await;
    assert!(b == big);
    let (h, b) = read_response(&mut tcp, &mut buf).await;
    assert!(h.starts_with("http/1.1 206"), "{h}");
    assert!(b == big[..100_000]);
    s.stop().await;
}

#[tokio::test]
async fn a_file_shrinking_during_a_download_gives_a_short_body_of_its_own_bytes() {
    let s = TestServer::start().await;
    // Larger than what the socket buffers hold, so most of it is sent after the truncation.
    let big = content(64 * 1024 * 1024, 5);
    assert_eq!(s.put("shrinks.bin", big.clone()).await.status(), 201);
    let r = s.req("GET", &s.dav("shrinks.bin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(big.len() as u64));
    let mut r = r;
    let mut got = Vec::new();
    while got.len() < 1024 * 1024 {
        got.extend_from_slice(&r.chunk().await.unwrap().unwrap());
    }
    // The host user cuts the file down in place while the download is under way.
    let on_disk = std::fs::OpenOptions::new()
        .write(true)
        .open(s.files_dir().join("shrinks.bin"))
        .unwrap();
    on_disk.set_len(8 * 1024 * 1024).unwrap();
    let ended = loop {
        match r.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(
        ended.is_err(),
        "a short body must end in an error, not look complete"
    );
    assert!(got.len() < big.len(), "got {} bytes", got.len());
    assert!(
        got == big[..got.len()],
        "every byte sent is the file's own, in place"
    );
    s.stop().await;
}
