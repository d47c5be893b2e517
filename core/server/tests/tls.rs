//! HTTPS with the generated CA: a rustls client that trusts only that CA reaches the server over
//! real TLS as `localhost` and `127.0.0.1`; `/ca.crt` serves the CA on disk; plain HTTP stays on
//! loopback; the binary prints `READY http=… https=…`.
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
    mut stream: S,
    host: &str,
    path: &str,
) -> (String, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
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

/// HTTP only, on a free loopback port.
fn config(dir: &std::path::Path) -> hearth_server::Config {
    hearth_server::Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        services: vec!["http".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn https_with_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tls.enabled = true;
    let handle = hearth_server::start(cfg).await.unwrap();
    let https = handle.https_addr().expect("https listener");
    let http = handle.http_addr().expect("loopback http listener");
    assert!(http.ip().is_loopback());
    assert_ne!(http, https);

    let ca = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let (status, body) = https_get(&ca, https, name, "/status.php").await;
        assert!(status.contains(" 200 "), "{name}: {status}");
        assert!(String::from_utf8_lossy(&body).contains("\"installed\""));
        let (status, body) = https_get(&ca, https, name, "/ca.crt").await;
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, ca, "/ca.crt is the CA on disk");
    }

    // A client trusting another CA is refused.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let refused = connector(other.cert.pem().as_bytes())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(refused.is_err());

    // Plain HTTP on the loopback listener serves the same router.
    let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let (status, body) = get(tcp, "localhost", "/ca.crt").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, ca);
    handle.shutdown().await;
}

#[tokio::test]
async fn ca_is_404_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let handle = hearth_server::start(cfg).await.unwrap();
    assert!(handle.https_addr().is_none());
    let tcp = tokio::net::TcpStream::connect(handle.http_addr().unwrap())
        .await
        .unwrap();
    let (status, _) = get(tcp, "localhost", "/ca.crt").await;
    assert!(status.contains(" 404 "), "{status}");
    handle.shutdown().await;
}

#[test]
fn binary_prints_both_addresses_and_info_prints_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::hearth(dir.path())
        .args(["server", "--listen", "127.0.0.1:0"])
        .env("HEARTH_TLS__ENABLED", "true")
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
    http.parse::<SocketAddr>().unwrap();
    https.parse::<SocketAddr>().unwrap();

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
    let mut cfg = config(dir.path());
    cfg.tls.enabled = true;
    let handle = hearth_server::start(cfg).await.unwrap();
    let https = handle.https_addr().expect("https listener");
    let http = handle.http_addr().expect("loopback http listener");
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
