//! Trash bin and versions over WebDAV, and chunked uploads (chunking NG), against a real server.

use crate::harness::*;

fn trash_url(s: &TestServer, rest: &str) -> String {
    format!("{}/remote.php/dav/trash-bin/alice/{rest}", s.base)
}

#[tokio::test]
async fn trash_list_restore_purge() {
    let s = TestServer::start().await;
    s.mkcol("docs").await;
    s.put("docs/a.txt", "alpha").await;
    let id = s.fileid("docs/a.txt").await;
    assert_eq!(
        s.req("DELETE", &s.dav("docs/a.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = s
        .req("PROPFIND", &trash_url(&s, ""))
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert_eq!(responses(&body), 2, "{body}");
    assert!(
        body.contains("<oc:trashbin-original-filename>a.txt</oc:trashbin-original-filename>"),
        "{body}"
    );
    assert!(
        body.contains("<oc:trashbin-original-location>docs/a.txt</oc:trashbin-original-location>"),
        "{body}"
    );
    assert!(body.contains("<oc:trashbin-delete-datetime>"), "{body}");
    let key = item_keys(&body).remove(0);
    // Restoring onto an existing name with Overwrite: F is refused, nothing changes.
    s.put("docs/a.txt", "new one").await;
    let r = s
        .req("MOVE", &trash_url(&s, &key))
        .header("Destination", s.dav("docs/a.txt"))
        .header("Overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(s.get_bytes("docs/a.txt").await.1, b"new one");
    // Restore under another name: the content and the file id come back.
    let r = s
        .req("MOVE", &trash_url(&s, &key))
        .header("Destination", s.dav("docs/restored.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.get_bytes("docs/restored.txt").await.1, b"alpha");
    assert_eq!(s.fileid("docs/restored.txt").await, id);
    // Restoring into a missing folder is a conflict.
    s.req("DELETE", &s.dav("docs/restored.txt"))
        .send()
        .await
        .unwrap();
    let body = s.listing(&trash_url(&s, "")).await.1;
    let key = item_keys(&body).remove(0);
    let r = s
        .req("MOVE", &trash_url(&s, &key))
        .header("Destination", s.dav("nope/x.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Purge one, then empty the rest.
    assert_eq!(
        s.req("DELETE", &trash_url(&s, &key))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        s.req("DELETE", &trash_url(&s, &key))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.put("z.txt", "z").await;
    s.req("DELETE", &s.dav("z.txt")).send().await.unwrap();
    assert_eq!(
        s.req("DELETE", &trash_url(&s, ""))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let body = s.listing(&trash_url(&s, "")).await.1;
    assert_eq!(responses(&body), 1, "{body}");
    // Another user's trash is invisible.
    let r = s
        .req(
            "PROPFIND",
            &format!("{}/remote.php/dav/trash-bin/bob/", s.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn versions_list_download_restore() {
    let s = TestServer::start().await;
    s.put("v.txt", "one").await;
    s.put("v.txt", "two!").await;
    s.put("v.txt", "three").await;
    let id = s.fileid("v.txt").await;
    let meta = format!("{}/remote.php/dav/meta/{}", s.base, id.replace('$', "%24"));
    let r = s.req("PROPFIND", &meta).send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<oc:meta-path-for-user>/v.txt</oc:meta-path-for-user>")
    );
    let r = s
        .req("PROPFIND", &format!("{meta}/v"))
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(responses(&body), 3, "{body}");
    let keys = item_keys(&body);
    let oldest = keys.last().unwrap().clone();
    let r = s
        .req("GET", &format!("{meta}/v/{oldest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "one");
    let r = s
        .req("COPY", &format!("{meta}/v/{oldest}"))
        .header("Destination", s.dav("v.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get_bytes("v.txt").await.1, b"one");
    assert_eq!(s.fileid("v.txt").await, id, "restoring keeps the file id");
    let body = s.listing(&format!("{meta}/v")).await.1;
    assert_eq!(
        responses(&body),
        4,
        "the replaced content became a version: {body}"
    );
    assert_eq!(
        s.req("GET", &format!("{meta}/v/12345"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn chunked_upload_ng() {
    let s = TestServer::start().await;
    let up = |rest: &str| format!("{}/remote.php/dav/uploads/alice/{rest}", s.base);
    let data: Vec<u8> = (0..250_000u32).map(|i| (i % 251) as u8).collect();
    let sha1 = "SHA1:".to_owned() + &sha1_hex(&data);
    assert_eq!(
        s.req("MKCOL", &up("t1"))
            .header("OC-Total-Length", "250000")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        s.req("MKCOL", &up("t1")).send().await.unwrap().status(),
        405
    );
    // Out of order, named by byte offset (ownCloud style).
    for (off, chunk) in [
        (200_000usize, &data[200_000..]),
        (0, &data[..100_000]),
        (100_000, &data[100_000..200_000]),
    ] {
        let r = s
            .req("PUT", &up(&format!("t1/{off:016}")))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = s
        .req("PROPFIND", &up("t1"))
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(responses(&r.text().await.unwrap()), 4);
    let r = s
        .req("MOVE", &up("t1/.file"))
        .header("Destination", "/remote.php/dav/files/alice/big.bin")
        .header("OC-Total-Length", "250000")
        .header("OC-Checksum", sha1.as_str())
        .header("X-OC-Mtime", "1600000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    assert!(r.headers().contains_key("oc-fileid"));
    assert_eq!(s.get_bytes("big.bin").await.1, data);
    assert_eq!(
        s.req("PROPFIND", &up("t1")).send().await.unwrap().status(),
        404,
        "transfer gone"
    );

    // A wrong checksum stores nothing; a wrong total length is refused.
    s.req("MKCOL", &up("t2")).send().await.unwrap();
    s.req("PUT", &up("t2/0"))
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    let r = s
        .req("MOVE", &up("t2/.file"))
        .header("Destination", s.dav("bad.bin"))
        .header(
            "OC-Checksum",
            "SHA1:0000000000000000000000000000000000000000",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.get_bytes("bad.bin").await.0, 404);
    let r = s
        .req("MOVE", &up("t2/.file"))
        .header("Destination", s.dav("bad.bin"))
        .header("OC-Total-Length", "99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // If-Match protects an existing file.
    let r = s
        .req("MOVE", &up("t2/.file"))
        .header("Destination", s.dav("big.bin"))
        .header("If-Match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(s.get_bytes("big.bin").await.1, data);
    assert_eq!(
        s.req("DELETE", &up("t2")).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        s.req("PUT", &up("t2/1"))
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "aborted"
    );
    // Legacy v1 chunking is refused clearly.
    let r = s
        .req("PUT", &s.dav("f-chunking-1-2-0"))
        .header("OC-Chunked", "1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("chunking"));
    // Other users' upload folders are invisible.
    let r = s
        .req("MKCOL", &format!("{}/remote.php/dav/uploads/bob/t", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn spaces_endpoint_serves_the_personal_space() {
    let s = TestServer::start().await;
    s.put("sp.txt", "space").await;
    let id = s.fileid("sp.txt").await;
    let space = id.split('!').next().unwrap().to_owned();
    let url = format!(
        "{}/remote.php/dav/spaces/{}/sp.txt",
        s.base,
        space.replace('$', "%24")
    );
    let r = s.req("GET", &url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "space");
    let other = format!(
        "{}/remote.php/dav/spaces/{}$00000000-0000-0000-0000-000000000000/sp.txt",
        s.base,
        space.split('$').next().unwrap()
    );
    assert_eq!(s.req("GET", &other).send().await.unwrap().status(), 404);
    s.stop().await;
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

#[tokio::test]
async fn chunked_upload_quota_and_stale_transfers() {
    let s = TestServer::start_with(|c| c.storage.default_quota = Some(1000)).await;
    let up = |rest: &str| format!("{}/remote.php/dav/uploads/alice/{rest}", s.base);
    // The announced total is checked at creation…
    let r = s
        .req("MKCOL", &up("big"))
        .header("OC-Total-Length", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    // …and the assembled size again at completion.
    assert_eq!(
        s.req("MKCOL", &up("sneaky")).send().await.unwrap().status(),
        201
    );
    s.req("PUT", &up("sneaky/0"))
        .body(vec![1u8; 800])
        .send()
        .await
        .unwrap();
    s.req("PUT", &up("sneaky/1"))
        .body(vec![2u8; 800])
        .send()
        .await
        .unwrap();
    let r = s
        .req("MOVE", &up("sneaky/.file"))
        .header("Destination", s.dav("x.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    assert_eq!(s.get_bytes("x.bin").await.0, 404);
    // A stale transfer is purged by the background job, with its disk space.
    let core = s.handle.as_ref().unwrap().core().clone();
    let purged = tokio::task::spawn_blocking(move || {
        core.files
            .purge_stale_transfers(std::time::Duration::ZERO)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(
        s.req("PUT", &up("sneaky/2"))
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let left = std::fs::read_dir(s.dir.path().join("system/chunks"))
        .unwrap()
        .flatten()
        .flat_map(|u| std::fs::read_dir(u.path()).unwrap())
        .count();
    assert_eq!(left, 0);
    s.stop().await;
}
