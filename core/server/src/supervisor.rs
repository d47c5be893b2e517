//! The supervisor tree (the oCIS runtime, in Rust): every service is a named task; a service that
//! fails or panics is restarted with exponential backoff, and after too many failures in a window
//! the server reports [`Status::Degraded`] instead of spinning. [`ServerHandle::shutdown`] stops
//! accepting, lets in-flight requests finish (bounded) and flushes the store.

use crate::config::Config;
use crate::jobs;
use hearth_domain::{Core, CoreError, StorageOptions, ThrottleConfig};
use hearth_http::HttpOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The server's health, published on a watch channel (the tray shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every service runs.
    Running,
    /// A service keeps failing; the others still run.
    Degraded {
        /// The failing service.
        service: String,
        /// Its last error.
        error: String,
    },
    /// Shutting down.
    Stopping,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be opened.
    #[error("cannot open the data directory: {0}")]
    Core(#[from] CoreError),
    /// The TLS certificate could not be created or loaded.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The configuration names an unknown service.
    #[error("unknown service {0:?} (known: http, jobs)")]
    UnknownService(String),
    /// The external OpenID Connect provider settings are unusable.
    #[error("[oidc]: {0}")]
    ExternalIdp(String),
}

/// The services this build knows.
const SERVICES: &[&str] = &["http", "jobs"];

type ServiceFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type ServiceFn = Arc<dyn Fn(CancellationToken) -> ServiceFuture + Send + Sync>;

/// A running server.
pub struct ServerHandle {
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    status: watch::Receiver<Status>,
    status_tx: Arc<watch::Sender<Status>>,
    cancel: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
    core: Core,
    clean: bool,
}

impl ServerHandle {
    /// The bound plain-HTTP address: `listen` with TLS off, `tls.http_listen` with TLS on
    /// (`None` if the http service does not run here).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound HTTPS address (`listen` with TLS on).
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The status channel.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The services (for embedding, e.g. the tray app).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Graceful shutdown: stop accepting, let requests finish (up to 10 s), stop jobs, flush.
    pub async fn shutdown(mut self) {
        self.status_tx.send_replace(Status::Stopping);
        self.cancel.cancel();
        for (name, task) in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(_) => tracing::debug!(service = %name, "stopped"),
                Err(_) => tracing::warn!(service = %name, "did not stop within 10 s"),
            }
        }
        let core = self.core.clone();
        match tokio::task::spawn_blocking(move || core.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "flushing the store failed"),
            Err(e) => tracing::error!(error = %e, "flushing the store failed"),
        }
        self.clean = true;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.clean {
            tracing::warn!("server handle dropped without shutdown(): unclean shutdown");
            self.cancel.cancel();
        }
    }
}

/// Opens the data directory, binds every listener, and starts the selected services.
pub async fn start(cfg: Config) -> Result<ServerHandle, StartError> {
    let selected: Vec<String> = if cfg.services.is_empty() {
        SERVICES.iter().map(|s| s.to_string()).collect()
    } else {
        cfg.services.clone()
    };
    if let Some(bad) = selected.iter().find(|s| !SERVICES.contains(&s.as_str())) {
        return Err(StartError::UnknownService(bad.clone()));
    }
    let mut storage = StorageOptions::new(cfg.data_dir.clone());
    storage.default_quota = cfg.storage.default_quota;
    storage.versions_max_count = cfg.storage.versions_max_count;
    storage.versions_max_age =
        Duration::from_secs(cfg.storage.versions_max_age_days.saturating_mul(86_400));
    storage.trash_retention =
        Duration::from_secs(cfg.storage.trash_retention_days.saturating_mul(86_400));
    storage.upload_expiry = Duration::from_secs(cfg.uploads.expiry_secs);
    let throttle = ThrottleConfig {
        max_failures: cfg.auth.max_failures.max(1),
        block: Duration::from_secs(cfg.auth.block_secs),
        account_password_basic: cfg.auth.account_password_basic,
        ..ThrottleConfig::default()
    };
    let core = tokio::task::spawn_blocking(move || Core::open(storage, throttle))
        .await
        .map_err(|e| CoreError::Internal(e.to_string()))??;

    let mut services: Vec<(String, ServiceFn)> = Vec::new();
    let mut http_addr = None;
    let mut https_addr = None;
    if selected.iter().any(|s| s == "http") {
        let tls = if cfg.tls.enabled {
            let (dir, c, k) = (
                cfg.data_dir.clone(),
                cfg.tls.cert_file.clone(),
                cfg.tls.key_file.clone(),
            );
            let material = tokio::task::spawn_blocking(move || {
                crate::tls::ensure(&dir, c.as_deref(), k.as_deref())
            })
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
            tracing::info!(
                ca = %material.ca_fingerprint,
                server = %material.server_fingerprint,
                "TLS certificate fingerprints (SHA-256)"
            );
            Some(material)
        } else {
            None
        };
        let main = bind(cfg.listen)?;
        let plain = match &tls {
            None => Some(Arc::new(main.try_clone().map_err(|source| {
                StartError::Bind {
                    addr: cfg.listen,
                    source,
                }
            })?)),
            Some(_) => {
                let addr = cfg
                    .tls
                    .http_listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
                Some(Arc::new(bind(addr)?))
            }
        };
        http_addr = plain.as_ref().and_then(|l| l.local_addr().ok());
        let external_idp = external_idp(&cfg.oidc).await?;
        let router = hearth_http::router(
            core.clone(),
            HttpOptions {
                allow_depth_infinity: cfg.webdav.allow_depth_infinity,
                public_url: cfg.webdav.public_url.clone(),
                ca_pem: tls.as_ref().and_then(|m| m.ca_pem.clone()),
                idp_dir: Some(cfg.data_dir.join("idp")),
                external_idp,
            },
        )
        .map_err(StartError::ExternalIdp)?;
        let secure = match &tls {
            Some(material) => {
                https_addr = main.local_addr().ok();
                let acceptor = tokio_rustls::TlsAcceptor::from(material.server_config()?);
                Some((Arc::new(main), acceptor))
            }
            None => None,
        };
        services.push((
            "http".into(),
            Arc::new(move |cancel| {
                let (plain, secure, router) = (plain.clone(), secure.clone(), router.clone());
                Box::pin(async move {
                    let http = async {
                        match plain {
                            Some(l) => serve_http(l, router.clone(), cancel.clone()).await,
                            None => Ok(()),
                        }
                    };
                    let https = async {
                        match secure {
                            Some((l, acceptor)) => {
                                serve_https(
                                    l,
                                    acceptor,
                                    router
                                        .clone()
                                        .layer(axum::Extension(hearth_http::TlsConnection)),
                                    cancel.clone(),
                                )
                                .await
                            }
                            None => Ok(()),
                        }
                    };
                    futures_util::future::try_join(http, https)
                        .await
                        .map(|_| ())
                })
            }),
        ));
    }
    if selected.iter().any(|s| s == "jobs") {
        let (core2, jcfg) = (core.clone(), cfg.jobs.clone());
        services.push((
            "jobs".into(),
            Arc::new(move |cancel| Box::pin(jobs::run(core2.clone(), jcfg.clone(), cancel))),
        ));
    }

    let (status_tx, status) = watch::channel(Status::Running);
    let status_tx = Arc::new(status_tx);
    let cancel = CancellationToken::new();
    let tasks = services
        .into_iter()
        .map(|(name, f)| {
            let task = tokio::spawn(supervise(
                name.clone(),
                f,
                cancel.clone(),
                status_tx.clone(),
            ));
            (name, task)
        })
        .collect();
    Ok(ServerHandle {
        http_addr,
        https_addr,
        status,
        status_tx,
        cancel,
        tasks,
        core,
        clean: false,
    })
}

async fn serve_http(
    listener: Arc<std::net::TcpListener>,
    router: axum::Router,
    cancel: CancellationToken,
) -> Result<(), String> {
    use axum::serve::ListenerExt;
    let std_listener = listener.try_clone().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    // Small WebDAV requests stall ~40 ms per round trip without TCP_NODELAY (Nagle + delayed ACK).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
    .map_err(|e| e.to_string())
}

/// Binds a non-blocking TCP listener.
/// The external provider's options from `[oidc]` (`None`: the embedded provider). Only local
/// things are checked here (the CA file); the provider itself is first asked on the first token.
async fn external_idp(
    cfg: &crate::config::OidcConfig,
) -> Result<Option<hearth_http::ExternalIdpOptions>, StartError> {
    let Some(issuer) = cfg.external_issuer.clone().filter(|i| !i.is_empty()) else {
        if cfg.external_client_id.is_some() || cfg.external_ca_file.is_some() {
            return Err(StartError::ExternalIdp(
                "external_client_id and external_ca_file need external_issuer".into(),
            ));
        }
        return Ok(None);
    };
    let client_id = cfg
        .external_client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            StartError::ExternalIdp("external_issuer needs external_client_id".into())
        })?;
    let ca_pem =
        match cfg.external_ca_file.clone() {
            Some(path) => Some(tokio::fs::read(&path).await.map_err(|e| {
                StartError::ExternalIdp(format!("reading {}: {e}", path.display()))
            })?),
            None => None,
        };
    tracing::info!(%issuer, %client_id, "signing in with an external OpenID Connect provider");
    Ok(Some(hearth_http::ExternalIdpOptions {
        issuer,
        client_id,
        username_claim: cfg.external_username_claim.clone(),
        auto_create: cfg.external_auto_create,
        ca_pem,
        refetch_interval: Duration::from_secs(cfg.external_jwks_refetch_secs),
    }))
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(listener)
}

/// A listener yielding connections whose TLS handshake is done. Handshakes run in their own
/// tasks (bounded by a timeout) so a slow client cannot hold up the accept loop.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream, SocketAddr)>,
    local: SocketAddr,
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop has stopped (shutdown): wait for the graceful shutdown signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

async fn serve_https(
    listener: Arc<std::net::TcpListener>,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    cancel: CancellationToken,
) -> Result<(), String> {
    use axum::serve::ListenerExt;
    let std_listener = listener.try_clone().map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    let (tx, ready) = tokio::sync::mpsc::channel(64);
    let stop = cancel.child_token();
    let accept_stop = stop.clone();
    let accept_loop = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = accept_stop.cancelled() => return,
                a = tcp.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a TLS connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small WebDAV requests stall ~40 ms per round trip without TCP_NODELAY.
            let _ = stream.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    // `tap_io` only to get axum's `ConnectInfo<SocketAddr>` for a custom listener.
    let listener = TlsListener { ready, local }.tap_io(|_| {});
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
    .map_err(|e| e.to_string());
    stop.cancel();
    let _ = accept_loop.await;
    served
}

/// Failures within this window count towards `Degraded`.
const WINDOW: Duration = Duration::from_secs(60);
/// This many failures within the window mark the server degraded.
const MAX_FAILURES: usize = 5;

async fn supervise(
    name: String,
    f: ServiceFn,
    cancel: CancellationToken,
    status: Arc<watch::Sender<Status>>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut failures: Vec<Instant> = Vec::new();
    loop {
        let run = tokio::spawn(f(cancel.clone()));
        let outcome = run.await;
        if cancel.is_cancelled() {
            return;
        }
        let error = match outcome {
            Ok(Ok(())) => "exited unexpectedly".to_owned(),
            Ok(Err(e)) => e,
            Err(join) if join.is_panic() => "panicked".to_owned(),
            Err(join) => join.to_string(),
        };
        let now = Instant::now();
        failures.retain(|t| now.duration_since(*t) < WINDOW);
        failures.push(now);
        tracing::error!(service = %name, %error, restart_in_ms = backoff.as_millis() as u64, "service failed");
        if failures.len() >= MAX_FAILURES {
            status.send_replace(Status::Degraded {
                service: name.clone(),
                error: error.clone(),
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn failing_service_is_restarted_then_degraded() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let f: ServiceFn = Arc::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err("boom".to_owned()) })
        });
        let (tx, mut rx) = watch::channel(Status::Running);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise("t".into(), f, cancel.clone(), Arc::new(tx)));
        rx.wait_for(|s| matches!(s, Status::Degraded { .. }))
            .await
            .unwrap();
        assert!(runs.load(Ordering::SeqCst) >= MAX_FAILURES);
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn panicking_service_is_restarted() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let f: ServiceFn = Arc::new(move |cancel: CancellationToken| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    #[allow(clippy::panic)]
                    {
                        panic!("first run panics");
                    }
                }
                cancel.cancelled().await;
                Ok(())
            })
        });
        let (tx, rx) = watch::channel(Status::Running);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise("t".into(), f, cancel.clone(), Arc::new(tx)));
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(*rx.borrow(), Status::Running);
        cancel.cancel();
        task.await.unwrap();
    }
}
