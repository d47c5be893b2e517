//! The certificate the main port presents, swappable while the server runs (a rustls
//! `ResolvesServerCert`). Once a minute the machine's names are compared with the certificate's;
//! when the hostname or an address changed (a laptop joins another network), the same CA issues a
//! new certificate and new connections get it at once, without a restart.

use super::{TlsError, TlsMaterial, ensure_at, machine_names};
use hearth_http::TlsSummary;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// How often the machine's names are checked.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The certificate in use and what the status API shows of it.
#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    summary: TlsSummary,
    /// The PEM of the generated CA (`GET /ca.crt`).
    ca_pem: Option<String>,
}

/// The live TLS state of the main port.
#[derive(Debug)]
pub struct LiveTls {
    dir: PathBuf,
    /// A user-provided certificate is never re-issued.
    user_provided: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Current>,
}

impl LiveTls {
    /// Ensures the certificates (see [`super::ensure`]) and loads them.
    pub fn load(
        data_dir: &std::path::Path,
        cert_file: Option<&std::path::Path>,
        key_file: Option<&std::path::Path>,
    ) -> Result<Arc<Self>, TlsError> {
        let material = super::ensure(data_dir, cert_file, key_file)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let user_provided = cert_file.is_some();
        let current = current_of(&provider, material, user_provided)?;
        Ok(Arc::new(Self {
            dir: data_dir.join("tls"),
            user_provided,
            provider,
            current: RwLock::new(current),
        }))
    }

    /// A rustls server configuration presenting the live certificate (HTTP/2 and HTTP/1.1 by
    /// ALPN).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The certificate in use.
    pub fn summary(&self) -> TlsSummary {
        self.read(|c| c.summary.clone())
    }

    /// The generated CA in PEM (`None` with a user-provided certificate).
    pub fn ca_pem(&self) -> Option<String> {
        self.read(|c| c.ca_pem.clone())
    }

    /// Re-issues the certificate when the machine's names changed; `true` if it did.
    pub fn refresh(&self) -> Result<bool, TlsError> {
        self.refresh_for(&machine_names())
    }

    /// [`Self::refresh`] for a given name list (tests simulate an address change with it).
    pub fn refresh_for(&self, names: &[String]) -> Result<bool, TlsError> {
        if self.user_provided {
            return Ok(false);
        }
        let mut wanted = names.to_vec();
        wanted.sort();
        wanted.dedup();
        if self.read(|c| c.summary.names == wanted) {
            return Ok(false);
        }
        let material = ensure_at(&self.dir, &wanted, OffsetDateTime::now_utc())?;
        let next = current_of(&self.provider, material, false)?;
        tracing::info!(
            names = ?next.summary.names,
            server = %next.summary.server_sha256,
            "the machine's names changed: new server certificate in use"
        );
        match self.current.write() {
            Ok(mut c) => *c = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(true)
    }

    /// Checks the machine's names every minute until `cancel`.
    pub(crate) async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        if self.user_provided {
            return;
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.refresh()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "re-issuing the server certificate failed")
                }
                Err(e) => tracing::error!(error = %e, "re-issuing the server certificate failed"),
            }
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        match self.current.read() {
            Ok(c) => f(&c),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

impl ResolvesServerCert for LiveTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read(|c| c.key.clone()))
    }
}

fn current_of(
    provider: &rustls::crypto::CryptoProvider,
    m: TlsMaterial,
    user_provided: bool,
) -> Result<Current, TlsError> {
    let signing = provider.key_provider.load_private_key(m.key)?;
    Ok(Current {
        key: Arc::new(CertifiedKey::new(m.chain, signing)),
        summary: TlsSummary {
            ca_sha256: m.ca_fingerprint,
            server_sha256: m.server_fingerprint,
            names: m.names,
            user_certificate: user_provided,
        },
        ca_pem: m.ca_pem,
    })
}
