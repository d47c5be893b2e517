//! TUS refusals and recovery: offsets (409), content type (415), forged tokens (403), termination
//! and finished uploads (404), checksums (460), expiry (410), quota (507), a dropped connection
//! resumed via HEAD, and concurrent uploads to one target.

use super::*;

#[tokio::test]
async fn patch_errors() {
    let s = TestServer::start().await;
    let url = s.tus_new("f.bin", 10).await;
    assert_eq!(s.patch(&url, 0, b"01234").await.status(), 204);
    assert_eq!(
        s.patch(&url, 0, b"01234").await.status(),
        409,
        "stale offset"
    );
    assert_eq!(s.patch(&url, 7, b"01234").await.status(), 409, "ahead");
    let r = s
        .client
        .patch(&url)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "5")
        .header("Content-Type", "application/octet-stream")
        .body("56789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = s
        .client
        .patch(&url)
        .header("Upload-Offset", "5")
        .header("Content-Type", "application/offset+octet-stream")
        .body("56789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412, "no Tus-Resumable");
    assert_eq!(s.patch(&url, 5, b"56789xx").await.status(), 400, "too long");
    assert_eq!(s.head_offset(&url).await, (200, Some(5)));

    // Forged tokens are refused with 403, whatever the method.
    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(s.head_offset(&forged).await.0, 403);
    assert_eq!(s.patch(&forged, 5, b"5").await.status(), 403);
    let bogus = format!("{}/data/not-a-token", s.base);
    assert_eq!(s.head_offset(&bogus).await.0, 403);

    // Termination.
    let r = s
        .client
        .delete(&url)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.head_offset(&url).await.0, 404);
    assert_eq!(s.patch(&url, 5, b"56789").await.status(), 404);
    assert!(!s.files_dir().join("f.bin").exists());
    s.stop().await;
}

#[tokio::test]
async fn checksums_whole_file_and_per_chunk() {
    let s = TestServer::start().await;
    let sha = hex::encode(sha1::Sha1::digest(b"hello world"));
    // Wrong whole-file checksum: 460 on the last chunk and nothing stored.
    let r = s
        .tus_create(
            "",
            11,
            &[
                ("filename", "bad.txt"),
                ("checksum", &format!("SHA1 {}", "0".repeat(40))),
            ],
            b"",
        )
        .await;
    let url = hdr(&r, "location").unwrap();
    assert_eq!(s.patch(&url, 0, b"hello ").await.status(), 204);
    assert_eq!(s.patch(&url, 6, b"world").await.status().as_u16(), 460);
    assert_eq!(s.get_bytes("bad.txt").await.0, 404);
    assert_eq!(s.head_offset(&url).await.0, 404);
    // Right one: stored.
    let r = s
        .tus_create(
            "",
            11,
            &[
                ("filename", "good.txt"),
                ("checksum", &format!("SHA1 {sha}")),
            ],
            b"hello world",
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_completion_headers(&r);
    assert_eq!(s.get_bytes("good.txt").await.1, b"hello world");

    // Per-chunk Upload-Checksum: a mismatch drops the chunk (460), the offset stays.
    let url = s.tus_new("chunked.txt", 11).await;
    let patch = |sum: String, at: u64, body: &'static [u8]| {
        s.client
            .patch(&url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", at.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Checksum", sum)
            .body(body)
            .send()
    };
    let b64d = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let r = patch(format!("sha1 {}", b64d(&[0; 20])), 0, b"hello ")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 460);
    assert_eq!(s.head_offset(&url).await, (200, Some(0)));
    let r = patch(
        format!("sha1 {}", b64d(&sha1::Sha1::digest(b"hello "))),
        0,
        b"hello ",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let r = patch(format!("crc99 {}", b64d(b"x")), 6, b"world")
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unsupported algorithm");
    let adler = adler32(b"world").to_be_bytes();
    let r = patch(format!("adler32 {}", b64d(&adler)), 6, b"world")
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get_bytes("chunked.txt").await.1, b"hello world");
    s.stop().await;
}

fn adler32(d: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in d {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[tokio::test]
async fn head_resumes_after_a_disconnect() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let body = data(2_000_000);
    let url = s.tus_new("resume.bin", body.len() as u64).await;
    // A PATCH announcing everything but cut off after 1.2 MB.
    let path = url.strip_prefix(&s.base).unwrap().to_owned();
    let host = s.base.strip_prefix("http://").unwrap().to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..1_200_000]).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(tcp);
    // Wait until the server has committed what arrived.
    let mut off = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (st, o) = s.head_offset(&url).await;
        assert_eq!(st, 200);
        if o.is_some() && o == off {
            break;
        }
        off = o;
    }
    let off = off.unwrap();
    assert!(off > 0 && off <= 1_200_000, "{off}");
    let r = s.patch(&url, off, &body[off as usize..]).await;
    assert_eq!(r.status(), 204);
    assert_completion_headers(&r);
    assert_eq!(s.get_bytes("resume.bin").await.1, body);
    s.stop().await;
}

#[tokio::test]
async fn expired_uploads_answer_410() {
    let s = TestServer::start_with(|cfg| cfg.uploads.expiry_secs = 1).await;
    let url = s.tus_new("late.bin", 4).await;
    assert_eq!(s.patch(&url, 0, b"ab").await.status(), 204);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(s.head_offset(&url).await.0, 410);
    assert_eq!(s.patch(&url, 2, b"cd").await.status(), 410);
    assert!(!s.files_dir().join("late.bin").exists());
    let core = s.handle.as_ref().unwrap().core().clone();
    let n = tokio::task::spawn_blocking(move || core.uploads.purge_expired().unwrap())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("system/uploads"))
            .unwrap()
            .count(),
        0,
        "bytes removed"
    );
    s.stop().await;
}

#[tokio::test]
async fn quota_is_checked_at_creation_and_completion() {
    let s = TestServer::start().await;
    let core = s.handle.as_ref().unwrap().core().clone();
    tokio::task::spawn_blocking(move || core.accounts.set_quota("alice", Some(100)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        s.tus_create("", 101, &[("filename", "big")], b"")
            .await
            .status(),
        507
    );
    // Two uploads that fit alone but not together: the second to finish is refused.
    let a = s.tus_new("a", 60).await;
    let b = s.tus_new("b", 60).await;
    assert_eq!(s.patch(&a, 0, &[1; 60]).await.status(), 204);
    assert_eq!(s.patch(&b, 0, &[2; 60]).await.status(), 507);
    assert_eq!(s.get_bytes("b").await.0, 404);
    s.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_to_one_target_give_one_whole_winner() {
    let s = TestServer::start().await;
    let (a, b) = (vec![b'a'; 500_000], vec![b'b'; 500_000]);
    let ua = s.tus_new("same.bin", 500_000).await;
    let ub = s.tus_new("same.bin", 500_000).await;
    let (ra, rb) = tokio::join!(s.patch(&ua, 0, &a), s.patch(&ub, 0, &b));
    assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (204, 204));
    let got = s.get_bytes("same.bin").await.1;
    assert!(got == a || got == b, "one whole winner");
    s.stop().await;
}

/// WebDAV locks hold for TUS uploads as for PUT: without the lock's token a creation is refused
/// (423), whole or resumable; with it (`If` header) it succeeds; a lock taken after the creation
/// stops the completion, and the locked file keeps its content.
#[tokio::test]
async fn locked_targets_refuse_tus_uploads_without_the_token() {
    let s = TestServer::start().await;
    s.put("l.txt", "old").await;
    let token = s.lock("l.txt").await;
    let create = |body: &'static [u8], len: u64, if_header: Option<String>| {
        let mut rb = s
            .req("POST", &s.dav(""))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header("Upload-Metadata", format!("filename {}", b64("l.txt")));
        if let Some(v) = if_header {
            rb = rb.header("If", v);
        }
        if !body.is_empty() {
            rb = rb
                .header("Content-Type", "application/offset+octet-stream")
                .body(body);
        }
        rb.send()
    };
    assert_eq!(
        create(b"new", 3, None).await.unwrap().status(),
        423,
        "whole"
    );
    assert_eq!(
        create(b"", 3, None).await.unwrap().status(),
        423,
        "resumable"
    );
    assert_eq!(s.get_bytes("l.txt").await.1, b"old");
    let r = create(b"new", 3, Some(format!("({token})"))).await.unwrap();
    assert_eq!(r.status(), 201, "with the token");
    assert_eq!(s.get_bytes("l.txt").await.1, b"new");
    s.req("UNLOCK", &s.dav("l.txt"))
        .header("Lock-Token", &token)
        .send()
        .await
        .unwrap();

    // Created unlocked, locked before its last chunk: the completion is refused.
    let r = create(b"", 4, None).await.unwrap();
    assert_eq!(r.status(), 201);
    let url = hdr(&r, "location").unwrap();
    assert_eq!(s.patch(&url, 0, b"ne").await.status(), 204);
    s.lock("l.txt").await;
    assert_eq!(s.patch(&url, 2, b"xt").await.status(), 423);
    assert_eq!(s.get_bytes("l.txt").await.1, b"new");
    s.stop().await;
}
