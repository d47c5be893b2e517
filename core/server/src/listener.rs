//! The main port: HTTPS and plain HTTP on one listener. The first byte a client sends tells a TLS
//! ClientHello (record type 0x16, RFC 8446 §5.1) from an HTTP request line (a method token, ASCII
//! letters). Plain HTTP is served only to the peers [`PlainHttp`] allows (default: loopback);
//! anyone else gets `308 Permanent Redirect` to the same URL over `https://`.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Who may use plain HTTP on the main port (`tls.plain_http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlainHttp {
    /// Clients on this machine only (the tray app, local scripts): the default.
    #[default]
    Loopback,
    /// Every client (behind a TLS-terminating reverse proxy, or a trusted network).
    Everywhere,
    /// Nobody: every plain request is redirected.
    Nowhere,
}

impl PlainHttp {
    /// Whether a plain-HTTP request from `peer` is served (else redirected to https).
    pub fn allows(self, peer: IpAddr) -> bool {
        match self {
            PlainHttp::Everywhere => true,
            PlainHttp::Nowhere => false,
            PlainHttp::Loopback => peer.to_canonical().is_loopback(),
        }
    }
}

/// The TLS record type of a handshake message: every ClientHello starts with it.
const TLS_HANDSHAKE: u8 = 0x16;
/// Time a client gets to send its first byte and to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Time a client gets to send a complete request head (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the main port serves.
#[derive(Clone)]
pub(crate) struct MainPort {
    pub listener: Arc<std::net::TcpListener>,
    pub router: Router,
    /// `None`: plain HTTP only (TLS off).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub plain: PlainHttp,
}

/// Accepts connections until `cancel`, then lets open connections finish their requests.
pub(crate) async fn serve(port: MainPort, cancel: CancellationToken) -> Result<(), String> {
    let std_listener = port.listener.try_clone().map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = tcp.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // E.g. EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small WebDAV requests stall ~40 ms per round trip without TCP_NODELAY.
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(port.clone(), stream, peer, cancel.clone()));
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// One connection: sniff, handshake if TLS, then serve HTTP/1.1 or HTTP/2 on it.
async fn connection(
    port: MainPort,
    stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let Some(acceptor) = port.tls.clone() else {
        return plain(stream, peer, Mode::App(port.router), cancel).await;
    };
    let mut first = [0u8; 1];
    // Shutting down drops a connection that has not sent its first byte or finished its
    // handshake yet: no request of it is in flight.
    let peeked = tokio::select! {
        _ = cancel.cancelled() => return,
        p = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)) => p,
    };
    match peeked {
        Ok(Ok(1)) => {}
        // Closed, failed or silent: nothing to serve.
        _ => return,
    }
    if first[0] == TLS_HANDSHAKE {
        let handshake = tokio::select! {
            _ = cancel.cancelled() => return,
            // `TcpIo` under TLS for its quick ACKs only: TLS requests get no `Sendfile`.
            h = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(hearth_http::TcpIo::new(stream).0)) => h,
        };
        match handshake {
            Ok(Ok(tls)) => http(tls, peer, Mode::App(port.router), Conn::Tls, cancel).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    } else if port.plain.allows(peer.ip()) {
        plain(stream, peer, Mode::App(port.router), cancel).await
    } else {
        plain(stream, peer, Mode::RedirectToHttps, cancel).await
    }
}

/// A plain-HTTP connection, whose downloads may use `sendfile` (see `hearth_http::Sendfile`).
async fn plain(stream: TcpStream, peer: SocketAddr, mode: Mode, cancel: CancellationToken) {
    let (io, sendfile) = hearth_http::TcpIo::new(stream);
    http(io, peer, mode, Conn::Plain(sendfile), cancel).await
}

/// What a connection offers its requests beyond HTTP.
#[derive(Clone)]
enum Conn {
    Tls,
    Plain(hearth_http::Sendfile),
}

#[derive(Clone)]
enum Mode {
    App(Router),
    RedirectToHttps,
}

async fn http<I>(io: I, peer: SocketAddr, mode: Mode, conn: Conn, cancel: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |mut req: http::Request<Incoming>| {
        // axum's `ConnectInfo` extractor reads this extension (throttling is per address).
        req.extensions_mut().insert(ConnectInfo(peer));
        match &conn {
            Conn::Tls => {
                req.extensions_mut().insert(hearth_http::TlsConnection);
            }
            // One response at a time, in order: what `Sendfile` needs (not so on HTTP/2).
            Conn::Plain(sf) if req.version() <= http::Version::HTTP_11 => {
                req.extensions_mut().insert(sf.clone());
            }
            Conn::Plain(_) => {}
        }
        let req = req.map(axum::body::Body::new);
        let router = match &mode {
            Mode::App(r) => Some(r.clone()),
            Mode::RedirectToHttps => None,
        };
        async move {
            match router {
                Some(r) => r.oneshot(req).await,
                None => Ok(redirect_to_https(&req)),
            }
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // Body frames reach the I/O as they are, never copied into hyper's buffer: `Sendfile`'s
        // placeholder frames depend on it (and a copy per frame is saved on every download).
        .writev(true);
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// `308` to the same host, path and query over https (308 keeps the method and body, so a PUT
/// stays a PUT). The host comes from the request, as the client addressed us.
fn redirect_to_https(req: &http::Request<axum::body::Body>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| valid_host(h));
    let Some(host) = host else {
        return (
            http::StatusCode::BAD_REQUEST,
            "This server speaks HTTPS; plain HTTP needs a valid Host header to be redirected.\n",
        )
            .into_response();
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location = format!("https://{host}{path}");
    (
        http::StatusCode::PERMANENT_REDIRECT,
        [
            (http::header::LOCATION, location.clone()),
            (http::header::CONNECTION, "close".to_owned()),
        ],
        format!("This server only speaks plain HTTP to this machine. Use {location}\n"),
    )
        .into_response()
}

/// A `Host` value we are willing to echo into a `Location`: host[:port], no userinfo or path.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_policy() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        assert!(PlainHttp::Loopback.allows(lo));
        assert!(PlainHttp::Loopback.allows(lo6));
        assert!(PlainHttp::Loopback.allows(mapped));
        assert!(!PlainHttp::Loopback.allows(lan));
        assert!(PlainHttp::Everywhere.allows(lan));
        assert!(!PlainHttp::Nowhere.allows(lo));
    }

    #[test]
    fn redirect_keeps_host_path_and_query() {
        let req = http::Request::builder()
            .uri("/remote.php/dav/files/a%20b/x?y=1")
            .header("host", "hearth.local:9200")
            .body(axum::body::Body::empty())
            .unwrap();
        let r = redirect_to_https(&req);
        assert_eq!(r.status(), 308);
        assert_eq!(
            r.headers()["location"],
            "https://hearth.local:9200/remote.php/dav/files/a%20b/x?y=1"
        );
        for bad in ["", "evil.com/x", "a@b", "a b"] {
            let req = http::Request::builder()
                .uri("/")
                .header("host", bad)
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(redirect_to_https(&req).status(), 400, "{bad:?}");
        }
    }
}
