//! The supervisor tree (the oCIS runtime, in Rust): every service is a named task; a service that
//! fails or panics is restarted with exponential backoff, and after too many failures in a window
//! the server reports [`Status::Degraded`] instead of spinning. [`ServerHandle::shutdown`] stops
//! accepting, lets in-flight requests finish (bounded) and flushes the store.

use crate::config::Config;
use crate::jobs;
use crate::listener::{self, MainPort};
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
    tls: Option<Arc<crate::tls::LiveTls>>,
    clean: bool,
}

impl ServerHandle {
    /// The bound main port (`None` if the http service does not run here). With TLS on it
    /// speaks plain HTTP too, to the peers `tls.plain_http` allows (default: loopback).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound main port when it speaks HTTPS (TLS on), else `None`.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The live TLS state (TLS on): fingerprints, and re-issuing on a change of names.
    pub fn tls(&self) -> Option<&Arc<crate::tls::LiveTls>> {
        self.tls.as_ref()
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
    let (status_tx, status) = watch::channel(Status::Running);
    let mut live_tls = None;
    if selected.iter().any(|s| s == "http") {
        if cfg.tls.enabled {
            let (dir, c, k) = (
                cfg.data_dir.clone(),
                cfg.tls.cert_file.clone(),
                cfg.tls.key_file.clone(),
            );
            let live = tokio::task::spawn_blocking(move || {
                crate::tls::LiveTls::load(&dir, c.as_deref(), k.as_deref())
            })
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
            let summary = live.summary();
            tracing::info!(
                ca = %summary.ca_sha256,
                server = %summary.server_sha256,
                "TLS certificate fingerprints (SHA-256)"
            );
            live_tls = Some(live);
        }
        let main = bind(cfg.listen)?;
        let addr = main.local_addr().map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
        http_addr = Some(addr);
        let runtime = Arc::new(Runtime {
            status: status.clone(),
            tls: live_tls.clone(),
        });
        let external_idp = external_idp(&cfg.oidc).await?;
        let router = hearth_http::router(
            core.clone(),
            HttpOptions {
                allow_depth_infinity: cfg.webdav.allow_depth_infinity,
                public_url: cfg.webdav.public_url.clone(),
                ca_pem: live_tls.as_ref().and_then(|t| t.ca_pem()),
                idp_dir: Some(cfg.data_dir.join("idp")),
                runtime: Some(runtime),
                oidc_code_ttl: Some(Duration::from_secs(cfg.auth.oidc_code_ttl_secs)),
                external_idp,
            },
        )
        .map_err(StartError::ExternalIdp)?;
        let tls = match &live_tls {
            Some(live) => {
                https_addr = Some(addr);
                Some(tokio_rustls::TlsAcceptor::from(live.server_config()?))
            }
            None => None,
        };
        let port = MainPort {
            listener: Arc::new(main),
            router,
            tls,
            plain: cfg.tls.plain_http,
        };
        let live = live_tls.clone();
        services.push((
            "http".into(),
            Arc::new(move |cancel| {
                let (port, live) = (port.clone(), live.clone());
                Box::pin(async move {
                    // The certificate follows the machine's names while the port is served.
                    if let Some(live) = live {
                        tokio::spawn(live.watch(cancel.child_token()));
                    }
                    listener::serve(port, cancel).await
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

    // Always: the core's own threads live wherever the core does.
    let files: Arc<dyn crate::watchdog::CoreThreads> = core.files.clone();
    services.push((
        "store".into(),
        Arc::new(move |cancel| Box::pin(crate::watchdog::watch(files.clone(), cancel))),
    ));

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
        tls: live_tls,
        clean: false,
    })
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

/// The status API's view of the supervisor.
#[derive(Debug)]
struct Runtime {
    status: watch::Receiver<Status>,
    tls: Option<Arc<crate::tls::LiveTls>>,
}

impl hearth_http::RuntimeStatus for Runtime {
    fn health(&self) -> hearth_http::Health {
        match &*self.status.borrow() {
            Status::Running => hearth_http::Health {
                state: "running",
                detail: None,
            },
            Status::Degraded { service, error } => hearth_http::Health {
                state: "degraded",
                detail: Some(format!("{service}: {error}")),
            },
            Status::Stopping => hearth_http::Health {
                state: "stopping",
                detail: None,
            },
        }
    }

    fn tls(&self) -> Option<hearth_http::TlsSummary> {
        self.tls.as_ref().map(|t| t.summary())
    }
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

/// Runs `f` as service `name` under [`supervise`]: (status, task, cancel).
#[cfg(test)]
pub(crate) fn supervise_for_test(
    name: &str,
    f: impl Fn(CancellationToken) -> ServiceFuture + Send + Sync + 'static,
) -> (watch::Receiver<Status>, JoinHandle<()>, CancellationToken) {
    let (tx, rx) = watch::channel(Status::Running);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(supervise(
        name.into(),
        Arc::new(f),
        cancel.clone(),
        Arc::new(tx),
    ));
    (rx, task, cancel)
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
