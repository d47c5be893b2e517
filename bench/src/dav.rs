//! WebDAV client used by the workloads: one keep-alive HTTP/1.1 client per server, with every response checked.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION,
};
use reqwest::{Body, Method, Response};

/// Request body of every PROPFIND: the properties a sync client asks for.
const PROPFIND_BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="utf-8"?>"#,
    r#"<d:propfind xmlns:d="DAV:"><d:prop>"#,
    "<d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/>",
    "</d:prop></d:propfind>"
);

/// A WebDAV client bound to one server's base collection URL.
#[derive(Clone)]
pub struct Dav {
    client: reqwest::Client,
    base: String,
    /// `scheme://host:port` of `base`, for URLs outside the user's files (uploads, TUS).
    origin: String,
    user: String,
    propfind: Method,
    mkcol: Method,
    move_: Method,
}

impl Dav {
    /// A client for `base` (which ends with `/`) that sends Basic credentials on every request.
    pub fn new(base: &str, user: &str, password: &str) -> Result<Self> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}"))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .http1_only()
            .tcp_nodelay(true)
            .no_proxy()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        let origin = base
            .find("://")
            .and_then(|i| base[i + 3..].find('/').map(|j| &base[..i + 3 + j]))
            .unwrap_or(base.trim_end_matches('/'))
            .to_owned();
        Ok(Self {
            client,
            base: base.to_owned(),
            origin,
            user: user.to_owned(),
            propfind: Method::from_bytes(b"PROPFIND")?,
            mkcol: Method::from_bytes(b"MKCOL")?,
            move_: Method::from_bytes(b"MOVE")?,
        })
    }

    /// The absolute URL of `path` (relative to the base collection).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `scheme://host:port` of the server (no trailing slash).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// OPTIONS on the base collection; any 2xx passes.
    pub async fn options(&self) -> Result<()> {
        let url = self.url("");
        let resp = self.client.request(Method::OPTIONS, &url).send().await?;
        let status = resp.status();
        drain(resp).await?;
        if !status.is_success() {
            bail!("OPTIONS {url}: status {status}");
        }
        Ok(())
    }

    /// PUT of an in-memory body; expects 201 or 204.
    pub async fn put(&self, path: &str, body: Bytes) -> Result<()> {
        let url = self.url(path);
        let resp = self
            .client
            .put(&url)
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        expect(resp, &[201, 204], "PUT", &url).await
    }

    /// PUT of `len` bytes generated chunk by chunk (constant client memory); expects 201 or 204.
    pub async fn put_stream(&self, path: &str, len: u64, chunk: Bytes) -> Result<()> {
        let url = self.url(path);
        let step = chunk.len().max(1) as u64;
        let chunks = len.div_ceil(step);
        let stream = futures_util::stream::iter((0..chunks).map(move |i| {
            let remaining = len - i * step;
            let take = usize::try_from(remaining.min(step)).unwrap_or(chunk.len());
            Ok::<Bytes, std::io::Error>(chunk.slice(..take))
        }));
        let resp = self
            .client
            .put(&url)
            .header(CONTENT_LENGTH, len)
            .body(Body::wrap_stream(stream))
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        expect(resp, &[201, 204], "PUT", &url).await
    }

    /// GET that must return 200 and exactly `expected`.
    pub async fn get_exact(&self, path: &str, expected: &Bytes) -> Result<()> {
        let url = self.url(path);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let resp = check(resp, &[200], "GET", &url).await?;
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("GET {url}: reading body"))?;
        if body.len() != expected.len() {
            bail!(
                "GET {url}: got {} bytes, expected {}",
                body.len(),
                expected.len()
            );
        }
        if body != *expected {
            bail!("GET {url}: body differs from what was PUT");
        }
        Ok(())
    }

    /// Streaming GET that counts the body bytes without keeping them; returns the count.
    pub async fn get_count(&self, path: &str) -> Result<u64> {
        let url = self.url(path);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let mut resp = check(resp, &[200], "GET", &url).await?;
        let mut total = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("GET {url}: reading body"))?
        {
            total += chunk.len() as u64;
        }
        Ok(total)
    }

    /// PROPFIND with the given Depth; expects 207 and returns the number of `response` elements.
    pub async fn propfind(&self, path: &str, depth: &str) -> Result<usize> {
        let url = self.url(path);
        let resp = self
            .client
            .request(self.propfind.clone(), &url)
            .header("Depth", depth)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(PROPFIND_BODY)
            .send()
            .await
            .with_context(|| format!("PROPFIND {url}"))?;
        let resp = check(resp, &[207], "PROPFIND", &url).await?;
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("PROPFIND {url}: reading body"))?;
        Ok(count_responses(&body))
    }

    /// MKCOL; expects 201.
    pub async fn mkcol(&self, path: &str) -> Result<()> {
        let url = self.url(path);
        let resp = self
            .client
            .request(self.mkcol.clone(), &url)
            .send()
            .await
            .with_context(|| format!("MKCOL {url}"))?;
        expect(resp, &[201], "MKCOL", &url).await
    }

    /// MOVE to a new (absent) destination; expects 201 or 204.
    pub async fn move_to(&self, from: &str, to: &str) -> Result<()> {
        let url = self.url(from);
        let resp = self
            .client
            .request(self.move_.clone(), &url)
            .header("Destination", self.url(to))
            .send()
            .await
            .with_context(|| format!("MOVE {url}"))?;
        expect(resp, &[201, 204], "MOVE", &url).await
    }

    /// DELETE; expects 204 (or 200).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let url = self.url(path);
        let resp = self
            .client
            .delete(&url)
            .send()
            .await
            .with_context(|| format!("DELETE {url}"))?;
        expect(resp, &[204, 200], "DELETE", &url).await
    }
}

/// The TUS protocol version the bench speaks.
const TUS_VERSION: &str = "1.0.0";
/// Content type of TUS bodies that carry upload data.
const TUS_CONTENT_TYPE: &str = "application/offset+octet-stream";

/// Hearth-only upload protocols: TUS 1.0.0 and ownCloud chunking NG.
impl Dav {
    /// TUS creation-with-upload: `POST` to the folder `folder` (relative to the base, "" for the
    /// base itself) announcing `total` bytes for `name`, with `first` as the first chunk. Expects
    /// 201, `Tus-Resumable: 1.0.0`, a `Location` and `Upload-Offset` = `first.len()`; returns
    /// the absolute upload URL.
    pub async fn tus_create(
        &self,
        folder: &str,
        name: &str,
        total: u64,
        first: Bytes,
    ) -> Result<String> {
        let url = self.url(folder);
        let sent = first.len() as u64;
        let meta = base64::engine::general_purpose::STANDARD.encode(name);
        let resp = self
            .client
            .post(&url)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Length", total)
            .header("Upload-Metadata", format!("filename {meta}"))
            .header(CONTENT_TYPE, TUS_CONTENT_TYPE)
            .body(first)
            .send()
            .await
            .with_context(|| format!("TUS POST {url}"))?;
        let resp = check(resp, &[201], "TUS POST", &url).await?;
        tus_version(&resp, "TUS POST", &url)?;
        let location = header_str(&resp, LOCATION.as_str())
            .with_context(|| format!("TUS POST {url}: 201 without a Location header"))?;
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.origin)
        } else {
            bail!("TUS POST {url}: Location {location:?} is neither absolute nor rooted")
        };
        upload_offset(&resp, sent, "TUS POST", &url)?;
        drain(resp)
            .await
            .with_context(|| format!("TUS POST {url}: reading body"))?;
        Ok(location)
    }

    /// TUS `PATCH` of `chunk` at `offset` to an upload URL; expects 204, `Tus-Resumable: 1.0.0`
    /// and `Upload-Offset` = `offset + chunk.len()`.
    pub async fn tus_patch(&self, location: &str, offset: u64, chunk: Bytes) -> Result<()> {
        let end = offset + chunk.len() as u64;
        let resp = self
            .client
            .patch(location)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Offset", offset)
            .header(CONTENT_TYPE, TUS_CONTENT_TYPE)
            .body(chunk)
            .send()
            .await
            .with_context(|| format!("TUS PATCH {location} at {offset}"))?;
        let what = format!("TUS PATCH at {offset}");
        let resp = check(resp, &[204], &what, location).await?;
        tus_version(&resp, &what, location)?;
        upload_offset(&resp, end, &what, location)?;
        drain(resp)
            .await
            .with_context(|| format!("{what} {location}: reading body"))
    }

    /// URL of a chunking-NG transfer folder (`/remote.php/dav/uploads/<user>/<transfer>`).
    fn transfer_url(&self, transfer: &str) -> String {
        format!(
            "{}/remote.php/dav/uploads/{}/{transfer}",
            self.origin, self.user
        )
    }

    /// Chunking NG, step 1: `MKCOL` of the transfer folder with `OC-Total-Length`; expects 201.
    pub async fn chunked_begin(&self, transfer: &str, total: u64) -> Result<()> {
        let url = self.transfer_url(transfer);
        let resp = self
            .client
            .request(self.mkcol.clone(), &url)
            .header("OC-Total-Length", total)
            .send()
            .await
            .with_context(|| format!("MKCOL {url}"))?;
        expect(resp, &[201], "MKCOL", &url).await
    }

    /// Chunking NG, step 2: `PUT` of one chunk named by its 16-digit byte offset; expects 201.
    pub async fn chunked_put(&self, transfer: &str, offset: u64, chunk: Bytes) -> Result<()> {
        let url = format!("{}/{offset:016}", self.transfer_url(transfer));
        let resp = self
            .client
            .put(&url)
            .body(chunk)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        expect(resp, &[201], "chunk PUT", &url).await
    }

    /// Chunking NG, step 3: `MOVE` of `<transfer>/.file` to `dest` (relative to the base) with
    /// `OC-Total-Length`; expects 201 or 204.
    pub async fn chunked_finish(&self, transfer: &str, dest: &str, total: u64) -> Result<()> {
        let url = format!("{}/.file", self.transfer_url(transfer));
        let resp = self
            .client
            .request(self.move_.clone(), &url)
            .header("Destination", self.url(dest))
            .header("OC-Total-Length", total)
            .send()
            .await
            .with_context(|| format!("MOVE {url}"))?;
        expect(resp, &[201, 204], "MOVE", &url).await
    }
}

/// A response header as text, if present and ASCII.
fn header_str<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Fails unless the response says `Tus-Resumable: 1.0.0`.
fn tus_version(resp: &Response, method: &str, url: &str) -> Result<()> {
    match header_str(resp, "tus-resumable").map(str::trim) {
        Some(TUS_VERSION) => Ok(()),
        other => bail!("{method} {url}: Tus-Resumable {other:?}, expected {TUS_VERSION:?}"),
    }
}

/// Fails unless the response's `Upload-Offset` is `expected`.
fn upload_offset(resp: &Response, expected: u64, method: &str, url: &str) -> Result<()> {
    let got = header_str(resp, "upload-offset").map(str::trim);
    if got.and_then(|v| v.parse::<u64>().ok()) != Some(expected) {
        bail!("{method} {url}: Upload-Offset {got:?}, expected {expected}");
    }
    Ok(())
}

/// Reads and drops a response body so the connection can be reused.
async fn drain(mut resp: Response) -> Result<()> {
    while resp.chunk().await?.is_some() {}
    Ok(())
}

/// Fails unless the status is one of `ok`; the error quotes the start of the body.
async fn check(resp: Response, ok: &[u16], method: &str, url: &str) -> Result<Response> {
    let status = resp.status();
    if ok.contains(&status.as_u16()) {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let snippet: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    bail!("{method} {url}: status {status}, expected {ok:?}; body: {snippet}")
}

/// [`check`] followed by [`drain`].
async fn expect(resp: Response, ok: &[u16], method: &str, url: &str) -> Result<()> {
    let resp = check(resp, ok, method, url).await?;
    drain(resp)
        .await
        .with_context(|| format!("{method} {url}: reading body"))
}

/// Counts `response` start tags in a multistatus body, whatever namespace prefix the server uses
/// (`<d:response>`, `<D:response>`, `<response xmlns="DAV:">`, `<lp1:response>` ...).
pub fn count_responses(body: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while let Some(offset) = body[i..].iter().position(|&b| b == b'<') {
        let start = i + offset + 1;
        let end = body[start..]
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
            .map_or(body.len(), |n| start + n);
        let name = &body[start..end];
        let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
        if local == b"response" {
            count += 1;
        }
        i = end.max(start);
    }
    count
}
