//! The one typed configuration: defaults < `hearth.toml` < `HEARTH_*` environment variables
//! (`__` separates nested keys, e.g. `HEARTH_STORAGE__DEFAULT_QUOTA`). Unknown keys are errors
//! that name the key.

pub use crate::listener::PlainHttp;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything that can be configured.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where accounts, metadata and files live (`files/<user>/` holds each user's files).
    pub data_dir: PathBuf,
    /// HTTP listen address (oCIS' port 9200 by default).
    pub listen: SocketAddr,
    /// Which services run in this process (`http`, `jobs`); empty = all.
    pub services: Vec<String>,
    /// Log filter (`info`, `warn`, `hearth_http=debug`, ...).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Storage settings.
    pub storage: StorageConfig,
    /// WebDAV settings.
    pub webdav: WebdavConfig,
    /// Login throttling.
    pub auth: AuthConfig,
    /// Background jobs.
    pub jobs: JobsConfig,
    /// Resumable (TUS) uploads.
    pub uploads: UploadsConfig,
    /// HTTPS on the main listener.
    pub tls: TlsConfig,
    /// Sign-in: an external OpenID Connect provider instead of the embedded one.
    pub oidc: OidcConfig,
}

/// OpenID Connect. Without `external_issuer` the embedded provider signs users in; with it, an
/// external provider (Keycloak, Authelia, authentik, ...) does, and Hearth only verifies its
/// access tokens (discovery + JWKS) and maps a claim to an account.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The external provider's issuer, exactly as in its discovery document's `issuer`
    /// (e.g. `https://id.example.com/realms/home`). Unset: the embedded provider.
    pub external_issuer: Option<String>,
    /// The client id the tokens must be for (in `aud`, or as `azp`); required with the issuer.
    /// (A numeric id given as `HEARTH_OIDC__EXTERNAL_CLIENT_ID=1234` is read as text.)
    #[serde(deserialize_with = "text_or_number")]
    pub external_client_id: Option<String>,
    /// The claim that holds the Hearth login name.
    pub external_username_claim: String,
    /// Create a missing account on its first valid token (otherwise such tokens get 401).
    pub external_auto_create: bool,
    /// A PEM file of CA certificates to trust (besides the system's) for the provider's HTTPS.
    pub external_ca_file: Option<PathBuf>,
    /// The least number of seconds between two fetches of the provider's keys (a token signed by
    /// an unknown key triggers one; more such tokens in this window are refused without asking).
    pub external_jwks_refetch_secs: u64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            external_issuer: None,
            external_client_id: None,
            external_username_claim: "preferred_username".into(),
            external_auto_create: false,
            external_ca_file: None,
            external_jwks_refetch_secs: 30,
        }
    }
}

/// HTTPS on the main port. With `enabled` (the default) the port speaks both: a TLS handshake
/// gets HTTPS (a certificate from Hearth's own CA in `<data_dir>/tls`, or `cert_file`/`key_file`),
/// and a plain HTTP request is served only to the peers `plain_http` allows; others are redirected
/// to `https://`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Serve HTTPS on `listen` (off: plain HTTP for everyone, e.g. behind a TLS proxy).
    pub enabled: bool,
    /// A user-provided certificate chain (PEM, leaf first) replacing the generated one.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Who may still use plain HTTP on the port: `loopback` (default), `everywhere`, `nowhere`.
    pub plain_http: PlainHttp,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cert_file: None,
            key_file: None,
            plain_http: PlainHttp::Loopback,
        }
    }
}

/// Storage settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Default per-user quota in bytes (absent = unlimited).
    pub default_quota: Option<u64>,
    /// Versions kept per file.
    pub versions_max_count: usize,
    /// Versions older than this many days are removed.
    pub versions_max_age_days: u64,
    /// Trash items older than this many days are purged.
    pub trash_retention_days: u64,
}

/// WebDAV settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebdavConfig {
    /// Allow `PROPFIND Depth: infinity` (off, as in oCIS).
    pub allow_depth_infinity: bool,
    /// Public base URL, e.g. `https://hearth.local:9200` (for private links).
    pub public_url: Option<String>,
}

/// Login throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Failed logins per account before it is blocked for a while (per address: 4×).
    pub max_failures: u32,
    /// First block, in seconds (doubles per further failure).
    pub block_secs: u64,
    /// Whether the account password itself works over Basic auth (app passwords always do).
    pub account_password_basic: bool,
    /// Seconds an OpenID Connect authorization code stays valid (RFC 6749 §4.1.2: short).
    pub oidc_code_ttl_secs: u64,
}

/// Resumable (TUS) uploads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Seconds an unfinished upload is kept (oCIS' `STORAGE_USERS_UPLOAD_EXPIRATION`: a day).
    pub expiry_secs: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            expiry_secs: 86_400,
        }
    }
}

/// Background jobs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Seconds between scans of the data directory for changes made on disk (0 = never).
    pub scan_interval_secs: u64,
    /// Seconds between trash purges.
    pub purge_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            listen: SocketAddr::from(([0, 0, 0, 0], 9200)),
            services: Vec::new(),
            log: "info".into(),
            log_format: "text".into(),
            storage: StorageConfig::default(),
            webdav: WebdavConfig::default(),
            auth: AuthConfig::default(),
            jobs: JobsConfig::default(),
            uploads: UploadsConfig::default(),
            tls: TlsConfig::default(),
            oidc: OidcConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            default_quota: None,
            versions_max_count: 20,
            versions_max_age_days: 30,
            trash_retention_days: 30,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            block_secs: 30,
            account_password_basic: true,
            oidc_code_ttl_secs: 60,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            scan_interval_secs: 30,
            purge_interval_secs: 3600,
        }
    }
}

/// An optional string that may arrive as a number (environment values that look numeric are
/// turned into numbers before the typed parse).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        I(i64),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::S(s) => s,
        Text::I(i) => i.to_string(),
    }))
}

/// The platform's data directory (`~/.local/share/hearth` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "hearth")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("hearth-data"))
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after the environment overlay) is invalid; the message names the key.
    #[error("invalid configuration{origin}: {message}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file (`file`, or `<data_dir>/hearth.toml`
    /// when it exists), then `HEARTH_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("HEARTH_"))
            .collect();
        let mut table = toml::Table::new();
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let data_dir = env
                    .iter()
                    .find(|(k, _)| k == "HEARTH_DATA_DIR")
                    .map(|(_, v)| PathBuf::from(v))
                    .unwrap_or_else(default_data_dir);
                Some(data_dir.join("hearth.toml")).filter(|p| p.exists())
            }
        };
        if let Some(p) = &path {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid {
                    origin: format!(" in {}", p.display()),
                    message: e.to_string(),
                })?;
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("HEARTH_") else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &parts, env_value(&value, &parts)).map_err(|message| {
                ConfigError::Invalid {
                    origin: format!(" in {key}"),
                    message,
                }
            })?;
        }
        let origin = path
            .map(|p| format!(" in {} or the environment", p.display()))
            .unwrap_or_default();
        // The error names the key it is about (`tls.plain_http: unknown variant ...`).
        serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().message().to_owned();
            ConfigError::Invalid {
                origin,
                message: if key == "." {
                    message
                } else {
                    format!("{key}: {message}")
                },
            }
        })
    }
}

/// Environment values are strings; numbers and booleans are recognised, `services` is a list.
fn env_value(v: &str, path: &[String]) -> toml::Value {
    if path.last().is_some_and(|k| k == "services") {
        return toml::Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        );
    }
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.into()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A `hearth.toml` with `text` in a fresh folder (kept alive by the returned guard).
    fn toml_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hearth.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    #[test]
    fn layers_apply_in_order() {
        let (_dir, file) =
            toml_file("listen = \"127.0.0.1:1234\"\n[storage]\ndefault_quota = 10\n");
        let c = Config::load(
            Some(&file),
            env(&[("HEARTH_STORAGE__DEFAULT_QUOTA", "20"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.storage.default_quota, Some(20));
        assert_eq!(c.log, "info");
    }

    #[test]
    fn unknown_keys_are_named() {
        let (_dir, file) = toml_file("lisen = \"127.0.0.1:1\"\n");
        let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = Config::load(None, env(&[("HEARTH_BOGUS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn external_idp_keys() {
        let (_dir, file) = toml_file(
            "[oidc]\nexternal_issuer = \"https://id.example.com/realms/home\"\nexternal_client_id = \"hearth\"\n",
        );
        let c = Config::load(
            Some(&file),
            env(&[("HEARTH_OIDC__EXTERNAL_AUTO_CREATE", "true")]),
        )
        .unwrap();
        assert_eq!(
            c.oidc.external_issuer.as_deref(),
            Some("https://id.example.com/realms/home")
        );
        assert_eq!(c.oidc.external_client_id.as_deref(), Some("hearth"));
        assert_eq!(c.oidc.external_username_claim, "preferred_username");
        assert!(c.oidc.external_auto_create);
        assert_eq!(c.oidc.external_jwks_refetch_secs, 30);
        let c = Config::load(None, env(&[("HEARTH_OIDC__EXTERNAL_CLIENT_ID", "1234")])).unwrap();
        assert_eq!(c.oidc.external_client_id.as_deref(), Some("1234"));
        let e = Config::load(None, env(&[("HEARTH_OIDC__EXTERNAL_ISSUR", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("external_issur"), "{e}");
    }

    #[test]
    fn env_overrides_listen_and_services() {
        let c = Config::load(
            None,
            env(&[
                ("HEARTH_LISTEN", "127.0.0.1:0"),
                ("HEARTH_SERVICES", "http"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.services, vec!["http".to_string()]);
    }

    #[test]
    fn tls_is_on_by_default_and_plain_http_is_configurable() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.tls.enabled);
        assert_eq!(c.tls.plain_http, PlainHttp::Loopback);
        let c = Config::load(
            None,
            env(&[
                ("HEARTH_TLS__PLAIN_HTTP", "nowhere"),
                ("HEARTH_TLS__ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tls.plain_http, PlainHttp::Nowhere);
        assert!(!c.tls.enabled);
        let err = Config::load(None, env(&[("HEARTH_TLS__PLAIN_HTTP", "lan")])).unwrap_err();
        assert!(err.to_string().contains("plain_http"), "{err}");
    }
}
