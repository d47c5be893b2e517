//! Discovery and OCS basics over real sockets: status.php, the OCS envelope (v1/v2, XML/JSON),
//! capabilities, cloud/user and cloud/users/{id}.

use crate::harness::*;
use serde_json::Value;

/// GET an OCS endpoint as alice; returns (HTTP status, headers, body).
async fn ocs(s: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = s
        .req("GET", &format!("{}/ocs/{path}", s.base))
        .header("OCS-APIREQUEST", "true")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn status_php_needs_no_auth_and_has_the_fields() {
    let s = TestServer::start().await;
    for path in ["/status.php", "/status"] {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .header("OC-Connection-Validator", "desktop")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let v = json(&r.text().await.unwrap());
        assert_eq!(v["installed"], true);
        assert_eq!(v["maintenance"], false);
        assert_eq!(v["needsDbUpgrade"], false);
        assert_eq!(v["version"], "10.11.0.0");
        assert_eq!(v["versionstring"], "10.11.0");
        assert_eq!(v["edition"], "Community");
        assert_eq!(v["productname"], "Hearth");
        assert_eq!(v["product"], "Hearth");
        assert!(v["productversion"].as_str().is_some_and(|p| !p.is_empty()));
    }
    // nextcloudcmd sends Basic here; even wrong credentials are ignored.
    let r = s
        .client
        .get(format!("{}/status.php", s.base))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn capabilities_json_v1_and_v2() {
    let s = TestServer::start().await;
    for (v, code) in [("v1", 100), ("v2", 200)] {
        let (status, h, body) = ocs(&s, &format!("{v}.php/cloud/capabilities?format=json")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(h["content-type"], "application/json; charset=utf-8");
        assert_eq!(h["ocs-api-version"], &v[1..]);
        let j = json(&body);
        assert_eq!(j["ocs"]["meta"]["status"], "ok");
        assert_eq!(j["ocs"]["meta"]["statuscode"], code);
        let d = &j["ocs"]["data"];
        assert_eq!(d["version"]["major"], 10);
        assert_eq!(d["version"]["string"], "10.11.0");
        assert_eq!(d["version"]["product"], "Hearth");
        let c = &d["capabilities"];
        assert_eq!(c["core"]["pollinterval"], 60);
        assert_eq!(c["core"]["webdav-root"], "remote.php/webdav");
        assert_eq!(c["core"]["status"]["installed"], true);
        assert_eq!(c["dav"]["chunking"], "1.0");
        assert_eq!(c["dav"]["trashbin"], "1.0");
        assert_eq!(c["files"]["bigfilechunking"], true);
        assert_eq!(c["files"]["tus_support"]["version"], "1.0.0");
        assert_eq!(c["files"]["tus_support"]["resumable"], "1.0.0");
        assert_eq!(
            c["files"]["tus_support"]["extension"],
            "creation,creation-with-upload"
        );
        assert_eq!(c["files"]["tus_support"]["max_chunk_size"], 10_000_000);
        assert_eq!(c["checksums"]["preferredUploadType"], "SHA1");
        assert_eq!(c["files_sharing"]["api_enabled"], false);
        assert!(c.get("spaces").is_none());
    }
    s.stop().await;
}

#[tokio::test]
async fn capabilities_xml_with_elements_and_numeric_booleans() {
    let s = TestServer::start().await;
    let (status, h, body) = ocs(&s, "v1.php/cloud/capabilities").await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/xml; charset=utf-8");
    assert_eq!(h["ocs-api-version"], "1");
    assert!(body.starts_with("<?xml version=\"1.0\"?>"), "{body}");
    assert!(
        body.contains(
            "<meta><status>ok</status><statuscode>100</statuscode><message>OK</message>\
             <totalitems></totalitems><itemsperpage></itemsperpage></meta>"
        ),
        "{body}"
    );
    assert_eq!(between(&body, "<chunking>", "</chunking>").unwrap(), "1.0");
    assert_eq!(
        between(&body, "<bigfilechunking>", "</bigfilechunking>").unwrap(),
        "1"
    );
    assert_eq!(
        between(&body, "<support-url-signing>", "</support-url-signing>").unwrap(),
        "0"
    );
    assert!(
        body.contains(
            "<supportedTypes><element>SHA1</element><element>MD5</element>\
             <element>ADLER32</element></supportedTypes>"
        ),
        "{body}"
    );
    assert!(body.contains("<tus_support><"), "{body}");
    let (status, h, body) = ocs(&s, "v2.php/cloud/capabilities").await;
    assert_eq!(status, 200);
    assert_eq!(h["ocs-api-version"], "2");
    assert!(body.contains("<statuscode>200</statuscode>"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn capabilities_without_credentials_but_not_with_wrong_ones() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(format!(
            "{}/ocs/v1.php/cloud/capabilities?format=json",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        json(&r.text().await.unwrap())["ocs"]["data"]["capabilities"]["dav"]["chunking"],
        "1.0"
    );
    for v in ["v1", "v2"] {
        let r = s
            .client
            .get(format!(
                "{}/ocs/{v}.php/cloud/capabilities?format=json",
                s.base
            ))
            .basic_auth("alice", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{v}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"Hearth\", charset=\"UTF-8\""
        );
        assert_eq!(
            json(&r.text().await.unwrap())["ocs"]["meta"]["statuscode"],
            997
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn cloud_user_gives_the_dav_id() {
    let s = TestServer::start().await;
    for (v, code) in [("v1", 100), ("v2", 200)] {
        let (status, _, body) = ocs(&s, &format!("{v}.php/cloud/user?format=json")).await;
        assert_eq!(status, 200, "{body}");
        let j = json(&body);
        assert_eq!(j["ocs"]["meta"]["statuscode"], code);
        let d = &j["ocs"]["data"];
        assert_eq!(d["id"], "alice");
        assert_eq!(d["display-name"], "Alice");
        assert_eq!(d["email"], "");
        assert_eq!(d["user-type"], "primary");
        // Unlimited by default: free and total are ownCloud's -3.
        assert_eq!(d["quota"]["total"], -3);
        assert_eq!(d["quota"]["free"], -3);
        assert!(d["quota"]["used"].is_u64());
    }
    // The id really is the DAV path segment.
    let id = json(&ocs(&s, "v1.php/cloud/user?format=json").await.2)["ocs"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .req(
            "PROPFIND",
            &format!("{}/remote.php/dav/files/{id}/", s.base),
        )
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    s.stop().await;
}

#[tokio::test]
async fn cloud_user_reports_a_limited_quota() {
    let s = TestServer::start_with(|c| c.storage.default_quota = Some(1000)).await;
    s.put("q.txt", "0123456789").await;
    let d = json(&ocs(&s, "v2.php/cloud/user?format=json").await.2)["ocs"]["data"].clone();
    assert_eq!(d["quota"]["total"], 1000);
    assert_eq!(d["quota"]["used"], 10);
    assert_eq!(d["quota"]["free"], 990);
    assert_eq!(d["quota"]["relative"], 1.0);
    s.stop().await;
}

#[tokio::test]
async fn cloud_users_self_and_others() {
    let s = TestServer::start().await;
    let core = s.handle.as_ref().unwrap().core().clone();
    tokio::task::spawn_blocking(move || core.accounts.add("bob", "pw", Some("Bob")).unwrap())
        .await
        .unwrap();
    let (status, _, body) = ocs(&s, "v2.php/cloud/users/alice?format=json").await;
    assert_eq!(status, 200, "{body}");
    let d = json(&body)["ocs"]["data"].clone();
    assert_eq!(d["id"], "alice");
    assert_eq!(d["displayname"], "Alice");
    assert_eq!(d["display-name"], "Alice");
    assert_eq!(d["enabled"], "true");
    assert_eq!(d["quota"]["total"], -3);
    for who in ["bob", "nobody"] {
        let (status, _, body) = ocs(&s, &format!("v2.php/cloud/users/{who}?format=json")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(json(&body)["ocs"]["meta"]["statuscode"], 998);
        let (status, _, body) = ocs(&s, &format!("v1.php/cloud/users/{who}")).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<statuscode>998</statuscode>"), "{body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn errors_v1_vs_v2() {
    let s = TestServer::start().await;
    // Unknown endpoint: v1 says so in the envelope only, v2 with the HTTP status too.
    let (status, h, body) = ocs(&s, "v1.php/apps/nope/api/v1/things").await;
    assert_eq!(status, 200);
    assert_eq!(h["ocs-api-version"], "1");
    assert!(
        body.contains("<status>error</status><statuscode>998</statuscode>"),
        "{body}"
    );
    let (status, h, body) = ocs(&s, "v2.php/apps/nope/api/v1/things?format=json").await;
    assert_eq!(status, 404);
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    let j = json(&body);
    assert_eq!(j["ocs"]["meta"]["status"], "error");
    assert_eq!(j["ocs"]["meta"]["statuscode"], 998);
    // Unauthenticated: 401 with a challenge in both versions, so clients ask for credentials.
    for v in ["v1", "v2"] {
        let r = s
            .client
            .get(format!("{}/ocs/{v}.php/cloud/user", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{v}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=\"Hearth\"")
        );
        assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
        let body = r.text().await.unwrap();
        assert!(body.contains("<statuscode>997</statuscode>"), "{body}");
    }
    // The bare API roots are OCS too, not WebDAV.
    for root in ["v1.php", "v2.php/"] {
        let (_, h, body) = ocs(&s, root).await;
        assert!(h.contains_key("ocs-api-version"), "{root}");
        assert!(body.contains("<statuscode>998</statuscode>"), "{body}");
    }
    // Writes to read-only endpoints are unknown endpoints.
    let r = s
        .req("POST", &format!("{}/ocs/v2.php/cloud/user", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn ocs_throttles_like_webdav() {
    let s = TestServer::start_with(|c| c.auth.max_failures = 2).await;
    let url = format!("{}/ocs/v1.php/cloud/user?format=json", s.base);
    let bad = || s.client.get(&url).basic_auth("alice", Some("wrong")).send();
    assert_eq!(bad().await.unwrap().status(), 401);
    assert_eq!(bad().await.unwrap().status(), 401);
    let r = bad().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["ocs-api-version"], "1");
    s.stop().await;
}

#[tokio::test]
async fn webdav_still_answers_beside_ocs() {
    let s = TestServer::start().await;
    assert_eq!(s.put("a.txt", "x").await.status(), 201);
    assert_eq!(s.get_bytes("a.txt").await, (200, b"x".to_vec()));
    // Paths that merely look similar are not OCS.
    let r = s
        .req("GET", &format!("{}/ocs/v3.php/cloud/user", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.headers().contains_key("ocs-api-version"));
    s.stop().await;
}
