//! The provider across restarts: persisted refresh tokens and revocations, key rotation with the
//! old key still published, webfinger's instance relation, revocation and logout.

use super::*;

#[tokio::test]
async fn refresh_tokens_and_revocations_survive_a_restart() {
    let mut s = TestServer::start().await;
    let c = no_redirect();
    let code = code_for(&s, &c, &[]).await;
    let (_, t) = exchange(&s, &c, &code, VERIFIER).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let kid = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
        .unwrap()
        .kid;
    // Restart on the same data directory.
    s.handle.take().unwrap().shutdown().await;
    let cfg = hearth_server::Config {
        data_dir: s.dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..hearth_server::Config::default()
    };
    let h = hearth_server::start(cfg).await.unwrap();
    s.base = format!("http://{}", h.http_addr().unwrap());
    s.handle = Some(h);
    let (status, t2) = token(
        &s,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 200, "{t2}");
    let at2 = t2["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&at2).unwrap().kid,
        kid,
        "the signing key is kept"
    );
    assert_eq!(propfind(&s, &at2).await, 207);
    // Replay after the restart: refused, family revoked.
    let (status, _) = token(
        &s,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(propfind(&s, &at2).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn webfinger_instance_revocation_and_logout() {
    let s = TestServer::start().await;
    let c = no_redirect();
    let code = code_for(&s, &c, &[]).await;
    let (_, t) = exchange(&s, &c, &code, VERIFIER).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let wf = |bearer: Option<String>| {
        let mut r = c.get(format!(
            "{}/.well-known/webfinger?resource=https://x&rel=http://webfinger.owncloud/rel/server-instance",
            s.base
        ));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        async move {
            serde_json::from_str::<Value>(&r.send().await.unwrap().text().await.unwrap()).unwrap()
        }
    };
    assert_eq!(wf(None).await["links"], serde_json::json!([]));
    let v = wf(Some(at.clone())).await;
    assert_eq!(v["links"][0]["href"], s.base.as_str());
    // End session with the ID token revokes the grant.
    let r = c
        .get(format!(
            "{}/signin/v1/identifier/_/endsession?{}",
            s.base,
            form(&[("id_token_hint", t["id_token"].as_str().unwrap())])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(propfind(&s, &at).await, 401);
    // Revocation (RFC 7009) of a refresh token revokes its family.
    let code = code_for(&s, &c, &[]).await;
    let (_, t) = exchange(&s, &c, &code, VERIFIER).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let r = c
        .post(format!("{}/konnect/v1/revocation", s.base))
        .basic_auth(DESKTOP, Some(DESKTOP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", t["refresh_token"].as_str().unwrap())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(propfind(&s, &at).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn an_old_key_is_rotated_and_stays_published() {
    let mut s = TestServer::start_with(|cfg| {
        cfg.webdav.public_url = Some("http://hearth.test".into());
    })
    .await;
    let c = no_redirect();
    let code = code_for(&s, &c, &[]).await;
    let (_, t) = exchange(&s, &c, &code, VERIFIER).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&at).unwrap().kid.unwrap();
    s.handle.take().unwrap().shutdown().await;
    // Age the key beyond the rotation period, then restart.
    let key = s.dir.path().join("idp").join("signing-key.pem");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(200 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&key)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let mut cfg = hearth_server::Config {
        data_dir: s.dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..hearth_server::Config::default()
    };
    cfg.webdav.public_url = Some("http://hearth.test".into());
    let h = hearth_server::start(cfg).await.unwrap();
    s.base = format!("http://{}", h.http_addr().unwrap());
    s.handle = Some(h);
    let jwks: Value = serde_json::from_str(
        &c.get(format!("{}/konnect/v1/jwks.json", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert_ne!(kids[0], old_kid, "a new current key");
    assert_eq!(kids[1], old_kid, "the old key stays published");
    // Tokens signed by the old key still work until they expire; new ones use the new key.
    assert_eq!(propfind(&s, &at).await, 207);
    let (_, t2) = token(
        &s,
        &c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    let new_kid = jsonwebtoken::decode_header(t2["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(new_kid, kids[0]);
    s.stop().await;
}
