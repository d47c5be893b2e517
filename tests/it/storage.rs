//! The storage guarantees: tree etags, stable ids, on-disk changes, names, confinement, quota,
//! trash and versions, atomic replacement.

use crate::harness::*;

#[tokio::test]
async fn tree_etags_and_sizes_propagate() {
    let s = TestServer::start().await;
    s.mkcol("a").await;
    s.mkcol("a/b").await;
    s.mkcol("z").await;
    let (root0, a0, z0) = (s.etag("").await, s.etag("a").await, s.etag("z").await);
    s.put("a/b/f.txt", "12345").await;
    assert_ne!(s.etag("").await, root0);
    assert_ne!(s.etag("a").await, a0);
    assert_eq!(s.etag("z").await, z0, "unrelated folders keep their etag");
    let (_, body) = s.propfind("a", "0", PROPS).await;
    assert!(body.contains("<oc:size>5</oc:size>"), "{body}");
    let id = s.fileid("a/b/f.txt").await;
    let r = s
        .req("MOVE", &s.dav("a/b"))
        .header("Destination", s.dav("z/b2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.fileid("z/b2/f.txt").await, id, "ids survive moves");
    let (_, body) = s.propfind("z", "0", PROPS).await;
    assert!(body.contains("<oc:size>5</oc:size>"), "{body}");
    let (_, body) = s.propfind("a", "0", PROPS).await;
    assert!(body.contains("<oc:size>0</oc:size>"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn changes_on_disk_are_noticed() {
    let s = TestServer::start().await;
    s.mkcol("d").await;
    let root0 = s.etag("").await;
    std::fs::write(s.files_dir().join("d/host.txt"), "from the host").unwrap();
    let (_, body) = s.propfind("d", "1", "").await;
    assert!(body.contains("host.txt"), "{body}");
    assert_ne!(s.etag("").await, root0);
    let e1 = s.etag("d/host.txt").await;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(s.files_dir().join("d/host.txt"), "edited on the host!").unwrap();
    assert_ne!(s.etag("d/host.txt").await, e1);
    assert_eq!(s.get_bytes("d/host.txt").await.1, b"edited on the host!");
    std::fs::rename(
        s.files_dir().join("d/host.txt"),
        s.files_dir().join("d/renamed.txt"),
    )
    .unwrap();
    let (_, body) = s.propfind("d", "1", "").await;
    assert!(
        body.contains("renamed.txt") && !body.contains("host.txt"),
        "{body}"
    );
    std::fs::remove_file(s.files_dir().join("d/renamed.txt")).unwrap();
    assert_eq!(s.get_bytes("d/renamed.txt").await.0, 404);
    // The background scan notices deep changes and propagates them to the root etag.
    std::fs::create_dir_all(s.files_dir().join("d/deep/er")).unwrap();
    std::fs::write(s.files_dir().join("d/deep/er/x"), "x").unwrap();
    let before = s.etag("").await;
    let core = s.handle.as_ref().unwrap().core().clone();
    tokio::task::spawn_blocking(move || {
        for sp in core.files.spaces().unwrap() {
            core.files.scan_space(&sp).unwrap();
        }
    })
    .await
    .unwrap();
    assert_ne!(s.etag("").await, before);
    s.stop().await;
}

#[tokio::test]
async fn awkward_names_work() {
    let s = TestServer::start().await;
    let long = "l".repeat(255);
    let names = [
        "with space.txt",
        "caf\u{e9}.txt",
        "cafe\u{301}.txt",
        "hash#tag",
        "100%",
        "what?",
        "\u{1F600}",
        long.as_str(),
    ];
    for n in names {
        let enc = enc(n);
        assert_eq!(s.put(&enc, n.to_owned()).await.status(), 201, "{n}");
        assert_eq!(s.get_bytes(&enc).await.1, n.as_bytes(), "{n}");
        assert!(s.files_dir().join(n).exists(), "real name on disk: {n}");
    }
    let (_, body) = s.propfind("", "1", "").await;
    assert_eq!(responses(&body), names.len() + 1);
    assert!(
        body.contains("hash%23tag") && body.contains("100%25") && body.contains("what%3F"),
        "{body}"
    );
    assert_eq!(s.put(&"x".repeat(256), "x").await.status(), 400, "too long");
    // Deep trees.
    let mut p = String::new();
    for i in 0..40 {
        p.push_str(&format!("d{i}/"));
        assert_eq!(s.mkcol(&p).await, 201);
    }
    assert_eq!(s.put(&format!("{p}leaf"), "deep").await.status(), 201);
    assert_eq!(s.get_bytes(&format!("{p}leaf")).await.1, b"deep");
    s.stop().await;
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn nothing_outside_the_space_is_reachable() {
    let s = TestServer::start().await;
    std::fs::write(s.dir.path().join("secret.txt"), "outside").unwrap();
    s.mkcol("d").await;
    // The HTTP client itself resolves `%2e%2e` segments; a raw request follows below.
    for bad in [
        "d/..%2f..%2fsecret.txt",
        "a%5cb",
        "a%00b",
        "d%2f..%2f..%2fx",
    ] {
        let r = s.req("GET", &s.dav(bad)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let r = s.req("PUT", &s.dav(bad)).body("x").send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    for raw in [
        "/remote.php/dav/files/alice/%2e%2e/%2e%2e/secret.txt",
        "/remote.php/dav/files/alice/d/%2E%2E/%2e%2e/%2e%2e/secret.txt",
        "/remote.php/dav/files/alice/../../secret.txt",
    ] {
        let (status, body) = raw_get(&s, raw).await;
        assert!(status == "400" || status == "404", "{raw}: {status}");
        assert!(!body.contains("outside"), "{raw}");
    }
    // A symlink planted on disk pointing outside is never followed.
    std::os::unix::fs::symlink(
        s.dir.path().join("secret.txt"),
        s.files_dir().join("d/link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(s.dir.path(), s.files_dir().join("d/dirlink")).unwrap();
    assert_eq!(s.get_bytes("d/link").await.0, 404);
    assert_eq!(s.get_bytes("d/dirlink/secret.txt").await.0, 404);
    let (_, body) = s.propfind("d", "1", "").await;
    assert!(!body.contains("link"), "{body}");
    assert_eq!(s.put("d/link", "overwrite?").await.status(), 201);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("secret.txt")).unwrap(),
        "outside"
    );
    s.stop().await;
}

#[tokio::test]
async fn quota_is_enforced() {
    let s = TestServer::start_with(|c| c.storage.default_quota = Some(10)).await;
    assert_eq!(s.put("a", "12345").await.status(), 201);
    assert_eq!(s.put("b", "123456").await.status(), 507);
    assert!(!s.files_dir().join("b").exists());
    assert_eq!(
        s.put("a", "1234567890").await.status(),
        204,
        "replacing counts the old size"
    );
    let (_, body) = s
        .propfind("", "0", r#"<d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/><d:quota-available-bytes/></d:prop></d:propfind>"#)
        .await;
    assert!(
        body.contains("<d:quota-used-bytes>10</d:quota-used-bytes>"),
        "{body}"
    );
    assert!(
        body.contains("<d:quota-available-bytes>0</d:quota-available-bytes>"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn deletes_go_to_trash_and_overwrites_keep_versions() {
    let s = TestServer::start().await;
    s.put("v.txt", "one").await;
    s.put("v.txt", "two").await;
    s.put("v.txt", "three").await;
    let core = s.handle.as_ref().unwrap().core().clone();
    let id: hearth_types::ResourceId = s.fileid("v.txt").await.parse().unwrap();
    let c2 = core.clone();
    let versions = tokio::task::spawn_blocking(move || c2.files.versions_of(id.node).unwrap())
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    let mut contents = version_contents(&s, id);
    contents.sort();
    assert_eq!(contents, vec!["one", "two"]);
    assert_eq!(
        s.req("DELETE", &s.dav("v.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let trash = tokio::task::spawn_blocking(move || {
        let sp = core.files.spaces().unwrap().remove(0);
        core.files.trash_of(&sp).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].original_path, "/v.txt");
    s.stop().await;
}

#[tokio::test]
async fn concurrent_writers_leave_one_whole_winner() {
    let s = TestServer::start().await;
    let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 256 * 1024]).collect();
    let mut tasks = Vec::new();
    for b in bodies.clone() {
        let req = s.req("PUT", &s.dav("race.bin")).body(b);
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        let st = t.await.unwrap();
        assert!(st == 201 || st == 204, "{st}");
    }
    let (_, got) = s.get_bytes("race.bin").await;
    assert!(bodies.contains(&got), "the content is one upload, whole");
    let (_, body) = s.propfind("", "1", "").await;
    assert_eq!(responses(&body), 2, "one entry, no orphans: {body}");
    s.stop().await;
}

/// Same-path writers are serialised from their condition check to their durable commit (the
/// path lock travels with the upload to the commit threads): of 8 concurrent `If-Match` PUTs
/// on one etag exactly one wins, and 8 concurrent plain overwrites keep every replaced content
/// as a version, none lost between two of them.
#[tokio::test]
async fn concurrent_overwrites_check_conditions_and_keep_every_version() {
    let s = TestServer::start().await;
    s.put("c.txt", "original").await;
    let etag = s.etag("c.txt").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = s
            .req("PUT", &s.dav("c.txt"))
            .header("If-Match", etag.clone())
            .body(format!("conditional {i}"));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 412, 412, 412, 412, 412, 412, 412]);

    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = s.req("PUT", &s.dav("c.txt")).body(format!("plain {i}"));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    let (_, current) = s.get_bytes("c.txt").await;
    let id: hearth_types::ResourceId = s.fileid("c.txt").await.parse().unwrap();
    let mut kept = version_contents(&s, id);
    kept.push(String::from_utf8(current).unwrap());
    kept.sort();
    let mut expected: Vec<String> = (0..8).map(|i| format!("plain {i}")).collect();
    expected.push("original".into());
    expected.push(
        kept.iter()
            .find(|k| k.starts_with("conditional"))
            .cloned()
            .expect("the winning conditional write was kept as a version"),
    );
    expected.sort();
    assert_eq!(
        kept, expected,
        "every content is either current or a version"
    );
    s.stop().await;
}

/// The contents of the version files kept for `id`, read from the data directory.
fn version_contents(s: &TestServer, id: hearth_types::ResourceId) -> Vec<String> {
    let vdir = s
        .dir
        .path()
        .join("system/versions")
        .join(id.node.to_string());
    std::fs::read_dir(&vdir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[tokio::test]
async fn interrupted_upload_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    s.put("keep.txt", "old content").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /remote.php/dav/files/alice/keep.txt HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nContent-Length: 10000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b'x'; 3_000_000]).await.unwrap();
    drop(tcp);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(s.get_bytes("keep.txt").await.1, b"old content");
    let tmp = std::fs::read_dir(s.dir.path().join("system/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "the partial upload is gone");
    s.stop().await;
}

/// A GET with the path sent exactly as given (no client-side normalisation).
async fn raw_get(s: &TestServer, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).unwrap_or("").to_owned();
    (status, out)
}
