//! HTTPS with the generated CA: a rustls client that trusts only that CA reaches the server over
//! real TLS as every name it advertises; `/ca.crt` serves the CA on disk; plain HTTP on the same
//! port is served to loopback and redirected elsewhere; the certificate follows a change of
//! address; the status API shows the fingerprints; the binary prints `READY http=… https=…`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS connector trusting only `ca_pem`.
fn connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// `GET path` over HTTP/1.1 on `stream`; returns (status line, body).
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    path: &str,
) -> (String, Vec<u8>) {
    request(stream, host, "GET", path, "", &[]).await
}

/// One HTTP/1.1 request with extra `headers` (CRLF-terminated lines) and a body; the connection
/// closes after it. Returns (status line, body).
async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    let length = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}{length}Connection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    // A peer closing without close_notify is fine here: the body is complete by then.
    let _ = stream.read_to_end(&mut buf).await;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let headers = head.to_ascii_lowercase();
    let mut body = buf[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

async fn https_get(ca: &[u8], addr: SocketAddr, name: &str, path: &str) -> (String, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = connector(ca).connect(server_name, tcp).await.unwrap();
    get(tls, name, path).await
}

/// A free loopback port (TLS on, the default).
fn config(dir: &std::path::Path) -> hearth_server::Config {
    hearth_server::Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        services: vec!["http".into()],
        ..Default::default()
    }
}

/// Connects over TLS to `addr`, verifying the certificate for `name`; the SHA-256 of the
/// certificate presented, or the handshake error.
async fn presented(ca: &[u8], addr: SocketAddr, name: &str) -> Result<String, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = connector(ca).connect(server_name, tcp).await?;
    let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    Ok(hearth_server::tls::fingerprint(cert.as_ref()))
}

async fn status_json(ca: &[u8], addr: SocketAddr) -> serde_json::Value {
    let (status, body) = https_get(ca, addr, "localhost", "/api/v1/status").await;
    assert!(status.contains(" 200 "), "{status}");
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn https_by_default_with_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let handle = hearth_server::start(config(dir.path())).await.unwrap();
    let https = handle.https_addr().expect("TLS is on by default");
    let http = handle.http_addr().unwrap();
    assert_eq!(http, https, "one port speaks both");

    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let (status, body) = https_get(&ca, https, name, "/status.php").await;
        assert!(status.contains(" 200 "), "{name}: {status}");
        assert!(String::from_utf8_lossy(&body).contains("\"installed\""));
        let (status, body) = https_get(&ca, https, name, "/ca.crt").await;
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, ca, "/ca.crt is the CA on disk");
    }
    // Every advertised name verifies (DNS names are dialled on loopback with that name as SNI).
    let summary = handle.tls().unwrap().summary();
    assert!(summary.names.iter().any(|n| n == "localhost"));
    for name in &summary.names {
        let fp = presented(&ca, https, name).await;
        assert_eq!(fp.unwrap(), summary.server_sha256, "{name}");
    }

    // A client trusting another CA is refused.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    assert!(
        presented(other.cert.pem().as_bytes(), https, "localhost")
            .await
            .is_err()
    );

    // Plain HTTP from this machine is served on the same port.
    let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let (status, body) = get(tcp, "localhost", "/ca.crt").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, ca);

    // The status API shows the fingerprints of the CA and of the certificate presented.
    let v = status_json(&ca, https).await;
    let der = CertificateDer::from_pem_slice(&ca).unwrap();
    assert_eq!(v["tls"]["enabled"], true);
    assert_eq!(
        v["tls"]["ca_sha256"],
        hearth_server::tls::fingerprint(der.as_ref())
    );
    assert_eq!(v["tls"]["server_sha256"], summary.server_sha256);
    assert_eq!(v["tls"]["ca_url"], "/ca.crt");
    assert_eq!(v["health"]["state"], "running");
    handle.shutdown().await;
}

#[tokio::test]
async fn plain_http_elsewhere_is_redirected_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tls.plain_http = hearth_server::config::PlainHttp::Nowhere;
    let handle = hearth_server::start(cfg).await.unwrap();
    let addr = handle.https_addr().unwrap();
    let host = format!("localhost:{}", addr.port());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "PUT /remote.php/dav/files/alice/x.txt?a=1 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    );
    let (status, head) = raw(tcp, &req).await;
    assert!(status.contains(" 308 "), "{status}");
    assert!(
        head.contains(&format!(
            "location: https://{host}/remote.php/dav/files/alice/x.txt?a=1"
        )),
        "{head}"
    );
    // No Host: nothing to redirect to.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, _) = raw(tcp, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(status.contains(" 400 "), "{status}");
    // The same port still speaks TLS.
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let (status, _) = https_get(&ca, addr, "localhost", "/status.php").await;
    assert!(status.contains(" 200 "), "{status}");
    handle.shutdown().await;
}

/// The default policy as a LAN client sees it: plain HTTP to a non-loopback address of this
/// machine is redirected, while loopback is served (skipped only on a machine without any
/// non-loopback IPv4 address, where no LAN client could exist).
#[tokio::test]
async fn lan_clients_are_redirected_loopback_is_served() {
    let lan: Vec<std::net::IpAddr> = hearth_server::tls::machine_names()
        .iter()
        .filter_map(|n| n.parse::<std::net::IpAddr>().ok())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    let Some(lan_ip) = lan.first().copied() else {
        eprintln!("no non-loopback IPv4 address on this machine: nothing to test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let handle = hearth_server::start(cfg).await.unwrap();
    let port = handle.https_addr().unwrap().port();
    let lan_addr = SocketAddr::new(lan_ip, port);
    let tcp = tokio::net::TcpStream::connect(lan_addr).await.unwrap();
    let (status, head) = raw(
        tcp,
        &format!("GET /status.php HTTP/1.1\r\nHost: {lan_addr}\r\n\r\n"),
    )
    .await;
    assert!(status.contains(" 308 "), "{status}");
    assert!(
        head.contains(&format!("location: https://{lan_addr}/status.php")),
        "{head}"
    );
    // The certificate covers the LAN address.
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let (status, _) = https_get(&ca, lan_addr, &lan_ip.to_string(), "/status.php").await;
    assert!(status.contains(" 200 "), "{status}");
    let tcp = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let (status, _) = get(tcp, "localhost", "/status.php").await;
    assert!(status.contains(" 200 "), "{status}");
    handle.shutdown().await;
}

#[tokio::test]
async fn certificate_follows_a_change_of_address_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let handle = hearth_server::start(config(dir.path())).await.unwrap();
    let addr = handle.https_addr().unwrap();
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let live = handle.tls().unwrap().clone();
    let before = live.summary();
    assert!(presented(&ca, addr, "10.99.0.7").await.is_err());
    // Nothing changed: nothing re-issued.
    assert!(!live.refresh_for(&before.names).unwrap());
    // The machine moved to another network.
    let mut names = before.names.clone();
    names.push("10.99.0.7".into());
    assert!(
        tokio::task::spawn_blocking({
            let live = live.clone();
            move || live.refresh_for(&names).unwrap()
        })
        .await
        .unwrap()
    );
    let after = live.summary();
    assert_eq!(after.ca_sha256, before.ca_sha256, "same CA");
    assert_ne!(after.server_sha256, before.server_sha256, "re-issued");
    assert_eq!(
        presented(&ca, addr, "10.99.0.7").await.unwrap(),
        after.server_sha256
    );
    assert_eq!(
        presented(&ca, addr, "localhost").await.unwrap(),
        after.server_sha256
    );
    let v = status_json(&ca, addr).await;
    assert_eq!(v["tls"]["server_sha256"], after.server_sha256);
    handle.shutdown().await;
}

/// Sends a raw request; (status line, lower-cased head).
async fn raw(mut stream: tokio::net::TcpStream, req: &str) -> (String, String) {
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, head.to_ascii_lowercase())
}

#[tokio::test]
async fn ca_is_404_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tls.enabled = false;
    let handle = hearth_server::start(cfg).await.unwrap();
    assert!(handle.https_addr().is_none());
    let tcp = tokio::net::TcpStream::connect(handle.http_addr().unwrap())
        .await
        .unwrap();
    let (status, _) = get(tcp, "localhost", "/ca.crt").await;
    assert!(status.contains(" 404 "), "{status}");
    let tcp = tokio::net::TcpStream::connect(handle.http_addr().unwrap())
        .await
        .unwrap();
    let (_, body) = get(tcp, "localhost", "/api/v1/status").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tls"]["enabled"], false);
    handle.shutdown().await;
}

#[test]
fn binary_prints_both_addresses_and_info_prints_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::hearth(dir.path())
        .args(["server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let rest = line.trim().strip_prefix("READY http=").expect("READY line");
    let (http, https) = rest.split_once(" https=").expect("both addresses");
    let http = http.parse::<SocketAddr>().unwrap();
    assert_eq!(http, https.parse::<SocketAddr>().unwrap(), "one port");

    let out = common::hearth(dir.path()).arg("info").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let der = CertificateDer::from_pem_slice(&ca).unwrap();
    let fp = hearth_server::tls::fingerprint(der.as_ref());
    assert!(
        text.contains(&format!("CA SHA-256:          {fp}")),
        "{text}"
    );
    assert!(text.contains("server SHA-256:"), "{text}");
}

/// The OIDC issuer names the scheme the request actually used.
#[tokio::test]
async fn oidc_issuer_follows_the_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let handle = hearth_server::start(cfg).await.unwrap();
    let https = handle.https_addr().expect("https listener");
    let http = handle.http_addr().unwrap();
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let path = "/.well-known/openid-configuration";
    let (status, body) = https_get(&ca, https, "localhost", path).await;
    assert!(status.contains(" 200 "), "{status}");
    let body = String::from_utf8_lossy(&body).to_string();
    assert!(body.contains("\"issuer\":\"https://localhost\""), "{body}");
    assert!(body.contains(
        "\"authorization_endpoint\":\"https://localhost/signin/v1/identifier/_/authorize\""
    ));
    let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let (_, body) = get(tcp, "localhost", path).await;
    assert!(String::from_utf8_lossy(&body).contains("\"issuer\":\"http://localhost\""));
    handle.shutdown().await;
}

/// Shutting down does not wait for connections with nothing in flight: one that never sent a
/// byte, one idle between keep-alive requests, and a TLS one idle after its handshake. (Before,
/// a silent connection held the port's task until the 10 s shutdown limit.)
#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let handle = hearth_server::start(config(dir.path())).await.unwrap();
    let addr = handle.https_addr().unwrap();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /status.php HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _tls = connector(&ca)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), handle.shutdown())
        .await
        .expect("shutdown finished without waiting for idle connections");
    // The idle keep-alive connection was closed by the server.
    let n = idle.read(&mut buf).await.unwrap_or(0);
    assert_eq!(n, 0);
}

/// A download larger than one read over TLS (which takes the read path, not `sendfile`) and
/// over plain HTTP on loopback (which takes `sendfile`) give the same bytes, whole and ranged.
#[tokio::test]
async fn large_downloads_over_tls_and_plain_http_are_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let handle = hearth_server::start(config(dir.path())).await.unwrap();
    let addr = handle.https_addr().unwrap();
    let core = handle.core().clone();
    tokio::task::spawn_blocking(move || core.accounts.add("bob", "pw", None).unwrap())
        .await
        .unwrap();
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let tls = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        connector(&ca).connect(name, tcp).await.unwrap()
    };
    let auth = "Authorization: Basic Ym9iOnB3\r\n";
    let path = "/remote.php/dav/files/bob/big.bin";
    let data: Vec<u8> = (0..3_500_000u32)
        .map(|i| (i.wrapping_mul(7) % 253) as u8)
        .collect();
    let (status, _) = request(tls().await, "localhost", "PUT", path, auth, &data).await;
    assert!(status.contains(" 201 "), "{status}");

    let (status, body) = request(tls().await, "localhost", "GET", path, auth, &[]).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(body == data, "TLS download differs ({} bytes)", body.len());
    let range = format!("{auth}Range: bytes=1048570-2200000\r\n");
    let (status, body) = request(tls().await, "localhost", "GET", path, &range, &[]).await;
    assert!(status.contains(" 206 "), "{status}");
    assert!(body == data[1_048_570..=2_200_000]);

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, body) = request(tcp, "localhost", "GET", path, auth, &[]).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        body == data,
        "plain download differs ({} bytes)",
        body.len()
    );
    handle.shutdown().await;
}
