//! Test harness: a real server on 127.0.0.1:0 over a temp data dir, with a user and a client.

use hearth_server::{Config, ServerHandle};
use reqwest::{Client, Method, RequestBuilder, Response};
use std::path::PathBuf;

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub client: Client,
    pub user: String,
    pub pass: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        cfg.jobs.scan_interval_secs = 0;
        tweak(&mut cfg);
        let handle = hearth_server::start(cfg).await.unwrap();
        let core = handle.core().clone();
        tokio::task::spawn_blocking(move || {
            core.accounts.add("alice", "secret", Some("Alice")).unwrap()
        })
        .await
        .unwrap();
        let addr = handle.http_addr().unwrap();
        Self {
            handle: Some(handle),
            dir,
            base: format!("http://{addr}"),
            client: Client::new(),
            user: "alice".into(),
            pass: "secret".into(),
        }
    }

    /// The WebDAV root URL of alice.
    pub fn dav(&self, path: &str) -> String {
        format!("{}/remote.php/dav/files/alice/{}", self.base, path)
    }

    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files").join("alice")
    }

    pub fn req(&self, method: &str, url: &str) -> RequestBuilder {
        self.client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
            .basic_auth(&self.user, Some(&self.pass))
    }

    pub async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.req("PUT", &self.dav(path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self.req("GET", &self.dav(path)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.bytes().await.unwrap().to_vec())
    }

    pub async fn mkcol(&self, path: &str) -> u16 {
        self.req("MKCOL", &self.dav(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// PROPFIND returning (status, body).
    pub async fn propfind(&self, path: &str, depth: &str, body: &str) -> (u16, String) {
        let r = self
            .req("PROPFIND", &self.dav(path))
            .header("Depth", depth)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// PROPFIND Depth 1 on a full URL (trash, versions, uploads): (status, body).
    pub async fn listing(&self, url: &str) -> (u16, String) {
        let r = self
            .req("PROPFIND", url)
            .header("Depth", "1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// An exclusive write LOCK on `path`; its `Lock-Token` (`<opaquelocktoken:…>`).
    pub async fn lock(&self, path: &str) -> String {
        let r = self
            .req("LOCK", &self.dav(path))
            .body(LOCKINFO)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["lock-token"].to_str().unwrap().to_owned()
    }

    /// The etag of a resource (from PROPFIND Depth 0).
    pub async fn etag(&self, path: &str) -> String {
        let (s, body) = self.propfind(path, "0", PROPS).await;
        assert_eq!(s, 207, "{body}");
        between(&body, "<d:getetag>", "</d:getetag>").unwrap()
    }

    pub async fn fileid(&self, path: &str) -> String {
        let (_, body) = self.propfind(path, "0", PROPS).await;
        between(&body, "<oc:fileid>", "</oc:fileid>").unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

pub const PROPS: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/><oc:fileid/><oc:size/><d:getcontentlength/><d:resourcetype/><oc:checksums/><oc:permissions/></d:prop></d:propfind>"#;

pub fn between(s: &str, a: &str, b: &str) -> Option<String> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(s[start..end].to_owned())
}

/// Number of `<d:response>` entries.
pub fn responses(body: &str) -> usize {
    body.matches("<d:response>").count()
}

/// `PROPFIND Depth: 0` on `<base>/remote.php/dav/files/<user>/` with a Bearer token; the status.
pub async fn propfind_bearer(client: &Client, base: &str, user: &str, bearer: &str) -> u16 {
    client
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{base}/remote.php/dav/files/{user}/"),
        )
        .bearer_auth(bearer)
        .header("Depth", "0")
        .body(PROPS)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs `tests/python/<script>` with the test venv's interpreter (`TESTS_PYTHON`); it must exit 0.
/// Its standard output.
pub async fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let python = std::env::var("TESTS_PYTHON")
        .unwrap_or_else(|_| "/var/cache/hearth-venv/bin/python".into());
    let path = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The last path segment of every href that is not a collection.
pub fn item_keys(body: &str) -> Vec<String> {
    body.split("<d:href>")
        .skip(1)
        .filter_map(|x| x.split("</d:href>").next())
        .filter(|h| !h.ends_with('/'))
        .filter_map(|h| h.rsplit('/').next().map(str::to_owned))
        .collect()
}

/// The body of an exclusive write LOCK.
pub const LOCKINFO: &str = r#"<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype><d:owner>me</d:owner></d:lockinfo>"#;
