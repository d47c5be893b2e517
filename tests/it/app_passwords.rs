//! App passwords over real sockets: the JSON API (`/api/v1/app-passwords`), their use over WebDAV
//! Basic auth, revocation, throttling and the `auth.account_password_basic` switch.

use crate::harness::*;
use serde_json::{Value, json};

fn api(s: &TestServer, path: &str) -> String {
    format!("{}/api/v1/app-passwords{path}", s.base)
}

/// POSTs `body` as alice (account password); returns (status, JSON).
async fn create(s: &TestServer, body: &str) -> (u16, Value) {
    let r = s
        .req("POST", &api(s, ""))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "status {status}"
    );
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

/// A PROPFIND Depth 0 on alice's root with these credentials; returns the status.
async fn dav_as(s: &TestServer, pass: &str) -> u16 {
    s.client
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), s.dav(""))
        .basic_auth("alice", Some(pass))
        .header("Depth", "0")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn create_use_list_revoke() {
    let s = TestServer::start().await;
    let (status, v) = create(&s, r#"{"name":"laptop rclone"}"#).await;
    assert_eq!(status, 201, "{v}");
    let secret = v["password"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["name"], "laptop rclone");
    assert!(v["last_used"].is_null());
    assert_eq!(secret.len(), 35, "{secret}");
    assert!(secret.starts_with(&id));

    // Use it over WebDAV Basic: write and read a file.
    let r = s
        .client
        .put(s.dav("via-app-password.txt"))
        .basic_auth("alice", Some(&secret))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(dav_as(&s, &secret).await, 207);

    // The list shows it with last_used, and never a secret.
    let r = s.req("GET", &api(&s, "")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(!body.contains(&secret[6..]), "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "laptop rclone");
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0]["last_used"].as_i64().is_some(), "{body}");
    assert!(list[0].get("password").is_none());
    assert!(list[0].get("hash").is_none());

    // An app password may list but not mint more.
    let r = s
        .client
        .get(api(&s, ""))
        .basic_auth("alice", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .post(api(&s, ""))
        .basic_auth("alice", Some(&secret))
        .body(json!({"name": "more"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Revoke: 204, then the (cached) password fails at once.
    let r = s
        .req("DELETE", &api(&s, &format!("/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(dav_as(&s, &secret).await, 401);
    let r = s
        .req("DELETE", &api(&s, &format!("/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    // The account password still works (default).
    assert_eq!(dav_as(&s, &s.pass).await, 207);
    s.stop().await;
}

#[tokio::test]
async fn wrong_app_password_is_throttled_like_a_wrong_password() {
    let s = TestServer::start_with(|c| c.auth.max_failures = 2).await;
    let (status, v) = create(&s, r#"{"name":"phone"}"#).await;
    assert_eq!(status, 201);
    let secret = v["password"].as_str().unwrap().to_owned();
    // Same id (first group), wrong rest.
    let mut wrong = secret.clone();
    let last = if wrong.ends_with('2') { '3' } else { '2' };
    wrong.pop();
    wrong.push(last);
    assert_eq!(dav_as(&s, &wrong).await, 401);
    assert_eq!(dav_as(&s, &wrong).await, 401);
    // Blocked now, even with the right one.
    let r = s
        .client
        .get(s.dav(""))
        .basic_auth("alice", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    s.stop().await;
}

#[tokio::test]
async fn account_password_basic_off_accepts_only_app_passwords() {
    let s = TestServer::start_with(|c| c.auth.account_password_basic = false).await;
    let core = s.handle.as_ref().unwrap().core().clone();
    let new = tokio::task::spawn_blocking(move || {
        let u = core.accounts.get("alice").unwrap().unwrap();
        core.accounts.create_app_password(u.id, "davfs2").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(dav_as(&s, &s.pass).await, 401);
    assert_eq!(dav_as(&s, &new.secret).await, 207);
    // Without dashes, upper case: the same password.
    let bare = new.secret.replace('-', "").to_uppercase();
    assert_eq!(dav_as(&s, &bare).await, 207);
    s.stop().await;
}

#[tokio::test]
async fn names_and_bodies_are_validated() {
    let s = TestServer::start().await;
    let long = "x".repeat(101);
    for body in [
        r#"{"name":""}"#.to_owned(),
        r#"{"name":"   "}"#.to_owned(),
        json!({ "name": long }).to_string(),
        r#"{"name":42}"#.to_owned(),
        "not json".to_owned(),
    ] {
        let (status, v) = create(&s, &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(v["error"]["message"].as_str().is_some());
    }
    let (status, _) = create(&s, &json!({ "name": "x".repeat(100) }).to_string()).await;
    assert_eq!(status, 201);
    // Unauthenticated: 401 with a JSON body.
    let r = s.client.get(api(&s, "")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "unauthenticated");
    s.stop().await;
}
