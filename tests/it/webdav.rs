//! WebDAV behaviour over real sockets: methods, headers, conditions, errors.

use crate::harness::*;

#[tokio::test]
async fn put_get_with_owncloud_headers() {
    let s = TestServer::start().await;
    let r = s
        .req("PUT", &s.dav("hello.txt"))
        .header("X-OC-Mtime", "1700000000")
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    assert!(r.headers().contains_key("oc-fileid"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["oc-etag"].to_str().unwrap(), etag);
    let g = s.req("GET", &s.dav("hello.txt")).send().await.unwrap();
    assert_eq!(g.status(), 200);
    assert_eq!(g.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(
        g.headers()["last-modified"],
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert!(
        g.headers()["oc-checksum"]
            .to_str()
            .unwrap()
            .starts_with("SHA1:2aae6c35")
    );
    assert_eq!(g.text().await.unwrap(), "hello world");
    // Overwrite answers 204 and changes the etag.
    let r = s.put("hello.txt", "v2").await;
    assert_eq!(r.status(), 204);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    s.stop().await;
}

#[tokio::test]
async fn conditional_put_and_get() {
    let s = TestServer::start().await;
    s.put("a.txt", "one").await;
    let etag = s.etag("a.txt").await;
    let r = s
        .req("PUT", &s.dav("a.txt"))
        .header("If-Match", "\"nope\"")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(s.get_bytes("a.txt").await.1, b"one");
    let r = s
        .req("PUT", &s.dav("a.txt"))
        .header("If-Match", &etag)
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req("PUT", &s.dav("a.txt"))
        .header("If-None-Match", "*")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let etag = s.etag("a.txt").await;
    let r = s
        .req("GET", &s.dav("a.txt"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .req("GET", &s.dav("a.txt"))
        .header("Range", "bytes=1-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1-2/3");
    assert_eq!(r.text().await.unwrap(), "wo");
    let r = s
        .req("GET", &s.dav("a.txt"))
        .header("Range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    s.stop().await;
}

#[tokio::test]
async fn checksum_mismatch_stores_nothing() {
    let s = TestServer::start().await;
    let r = s
        .req("PUT", &s.dav("c.txt"))
        .header(
            "OC-Checksum",
            "SHA1:0000000000000000000000000000000000000000",
        )
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.get_bytes("c.txt").await.0, 404);
    assert!(!s.files_dir().join("c.txt").exists());
    let r = s
        .req("PUT", &s.dav("c.txt"))
        .header(
            "OC-Checksum",
            "SHA1:a17c9aaa61e80a1bf71d0d850af4e5baa9800bbd",
        )
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, body) = s.propfind("c.txt", "0", PROPS).await;
    assert!(
        body.contains("SHA1:a17c9aaa61e80a1bf71d0d850af4e5baa9800bbd"),
        "{body}"
    );
    let r = s
        .req("PUT", &s.dav("c.txt"))
        .header("OC-Checksum", "CRC99:zz")
        .body("d")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn mkcol_delete_copy_move_statuses() {
    let s = TestServer::start().await;
    assert_eq!(s.mkcol("d").await, 201);
    assert_eq!(s.mkcol("d").await, 405);
    assert_eq!(s.mkcol("missing/child").await, 409);
    s.put("d/f.txt", "x").await;
    let mv = |from: &str, to: &str, overwrite: &str| {
        s.req("MOVE", &s.dav(from))
            .header("Destination", format!("/remote.php/dav/files/alice/{to}"))
            .header("Overwrite", overwrite.to_owned())
            .send()
    };
    let id = s.fileid("d/f.txt").await;
    assert_eq!(mv("d/f.txt", "d/g.txt", "T").await.unwrap().status(), 201);
    assert_eq!(s.fileid("d/g.txt").await, id, "file ids survive a rename");
    s.put("other.txt", "y").await;
    assert_eq!(mv("other.txt", "d/g.txt", "F").await.unwrap().status(), 412);
    assert_eq!(mv("other.txt", "d/g.txt", "T").await.unwrap().status(), 204);
    assert_eq!(s.get_bytes("d/g.txt").await.1, b"y");
    assert_eq!(mv("d", "d/inner", "T").await.unwrap().status(), 409);
    let cp = s
        .req("COPY", &s.dav("d"))
        .header("Destination", s.dav("e"))
        .send()
        .await
        .unwrap();
    assert_eq!(cp.status(), 201);
    assert_eq!(s.get_bytes("e/g.txt").await.1, b"y");
    assert_ne!(s.fileid("e/g.txt").await, s.fileid("d/g.txt").await);
    assert_eq!(
        s.req("DELETE", &s.dav("d")).send().await.unwrap().status(),
        204
    );
    assert_eq!(s.get_bytes("d/g.txt").await.0, 404);
    assert_eq!(
        s.req("DELETE", &s.dav("d")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        s.req("DELETE", &s.dav("")).send().await.unwrap().status(),
        403
    );
    let r = s.req("MOVE", &s.dav("e")).send().await.unwrap();
    assert_eq!(r.status(), 400, "missing Destination");
    s.stop().await;
}

#[tokio::test]
async fn propfind_depths_and_bad_bodies() {
    let s = TestServer::start().await;
    s.mkcol("dir").await;
    for i in 0..5 {
        s.put(&format!("dir/{i}.txt"), "x").await;
    }
    let (st, body) = s.propfind("dir", "1", "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&body), 6);
    let (st, body) = s.propfind("dir", "0", PROPS).await;
    assert_eq!(st, 207);
    assert_eq!(responses(&body), 1);
    assert!(body.contains("<oc:size>5</oc:size>"), "tree size: {body}");
    assert!(body.contains("<oc:permissions>RDNVCK</oc:permissions>"));
    let (st, _) = s.propfind("dir", "infinity", "").await;
    assert_eq!(st, 400);
    let (st, _) = s
        .propfind(
            "dir",
            "1",
            "<d:propfind xmlns:d=\"DAV:\"><d:prop><x:y/></d:prop></d:propfind>",
        )
        .await;
    assert_eq!(st, 400, "undeclared prefix");
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><d:propfind xmlns:d="DAV:"><d:prop>&b;</d:prop></d:propfind>"#;
    assert_eq!(s.propfind("dir", "1", bomb).await.0, 400);
    // CLIENT QUIRK (owncloudcmd 2.11): a stray character inside <d:propfind>.
    let quirky = "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/></d:prop>M</d:propfind>";
    assert_eq!(s.propfind("dir", "0", quirky).await.0, 207);
    let (st, body) = s
        .propfind(
            "dir/0.txt",
            "0",
            "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:nothere/></d:prop></d:propfind>",
        )
        .await;
    assert_eq!(st, 207);
    assert!(body.contains("404 Not Found"), "{body}");
    let r = s
        .req("PROPFIND", &s.dav("dir"))
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    assert_eq!(s.propfind("nope", "0", "").await.0, 404);
    s.stop().await;
}

#[tokio::test]
async fn infinity_when_enabled() {
    let s = TestServer::start_with(|c| c.webdav.allow_depth_infinity = true).await;
    s.mkcol("a").await;
    s.mkcol("a/b").await;
    s.put("a/b/c.txt", "x").await;
    let (st, body) = s.propfind("", "infinity", "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&body), 4);
    s.stop().await;
}

#[tokio::test]
async fn proppatch_dead_props_and_favorites() {
    let s = TestServer::start().await;
    s.put("p.txt", "x").await;
    let body = r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:z" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><z:color>blue</z:color><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"#;
    let r = s
        .req("PROPPATCH", &s.dav("p.txt"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let (_, got) = s
        .propfind("p.txt", "0", r#"<d:propfind xmlns:d="DAV:" xmlns:z="urn:z" xmlns:oc="http://owncloud.org/ns"><d:prop><z:color/><oc:favorite/></d:prop></d:propfind>"#)
        .await;
    assert!(got.contains(">blue<"), "{got}");
    assert!(got.contains("<oc:favorite>1</oc:favorite>"), "{got}");
    let report = r#"<?xml version="1.0"?><oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/></d:prop><oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules></oc:filter-files>"#;
    let r = s
        .req("REPORT", &s.dav(""))
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let t = r.text().await.unwrap();
    assert_eq!(responses(&t), 1);
    assert!(t.contains("p.txt"));
    // Live properties are protected: 403, and nothing else in the request is applied (424).
    let body = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:z"><d:set><d:prop><d:getetag>x</d:getetag><z:color>red</z:color></d:prop></d:set></d:propertyupdate>"#;
    let t = s
        .req("PROPPATCH", &s.dav("p.txt"))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        t.contains("403 Forbidden") && t.contains("424 Failed Dependency"),
        "{t}"
    );
    let (_, got) = s
        .propfind("p.txt", "0", r#"<d:propfind xmlns:d="DAV:" xmlns:z="urn:z"><d:prop><z:color/></d:prop></d:propfind>"#)
        .await;
    assert!(got.contains(">blue<"), "{got}");
    s.stop().await;
}

#[tokio::test]
async fn locks_are_enforced() {
    let s = TestServer::start().await;
    s.put("l.txt", "x").await;
    let lockinfo = r#"<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype><d:owner>me</d:owner></d:lockinfo>"#;
    let r = s
        .req("LOCK", &s.dav("l.txt"))
        .body(lockinfo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_owned();
    assert_eq!(s.put("l.txt", "y").await.status(), 423);
    assert_eq!(
        s.req("DELETE", &s.dav("l.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        423
    );
    let r = s
        .req("LOCK", &s.dav("l.txt"))
        .body(lockinfo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 423, "second exclusive lock");
    let r = s
        .req("PUT", &s.dav("l.txt"))
        .header("If", format!("({token})"))
        .body("z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req("UNLOCK", &s.dav("l.txt"))
        .header("Lock-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.put("l.txt", "w").await.status(), 204);
    let r = s
        .req("PUT", &s.dav("l.txt"))
        .header("If", "(<DAV:no-lock>)")
        .body("q")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = s
        .req("PUT", &s.dav("l.txt"))
        .header("If", "(garbage")
        .body("q")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn authentication_and_throttling() {
    let s = TestServer::start_with(|c| c.auth.max_failures = 3).await;
    let r = s
        .client
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), s.dav(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let bad = |pw: &str| {
        s.client
            .get(s.dav(""))
            .basic_auth("alice", Some(pw.to_owned()))
            .send()
    };
    assert_eq!(bad("wrong").await.unwrap().status(), 401);
    assert_eq!(bad("wrong").await.unwrap().status(), 401);
    assert_eq!(bad("wrong").await.unwrap().status(), 401);
    let r = bad("wrong").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Even the right password waits out the block (no oracle while blocked)…
    assert_eq!(bad("secret").await.unwrap().status(), 429);
    // …but an unknown user gets the same answer as a wrong password.
    let r = s
        .client
        .get(s.dav(""))
        .basic_auth("nobody", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Another user's space is invisible.
    let r = s
        .req("PROPFIND", &format!("{}/remote.php/dav/files/bob/", s.base))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 404 || r.status() == 429, "{}", r.status());
    s.stop().await;
}

#[tokio::test]
async fn legacy_endpoints_and_options() {
    let s = TestServer::start().await;
    s.put("x.txt", "legacy").await;
    for p in [
        "/remote.php/webdav/x.txt",
        "/webdav/x.txt",
        "/dav/files/alice/x.txt",
    ] {
        let r = s
            .req("GET", &format!("{}{p}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{p}");
        assert_eq!(r.text().await.unwrap(), "legacy");
    }
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, s.dav(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["dav"], "1, 2");
    let r = s.req("BREW", &s.dav("")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = s
        .client
        .get(format!("{}/nothing", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}
