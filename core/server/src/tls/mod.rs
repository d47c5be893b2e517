//! TLS on the LAN: a small local CA (`<data>/tls/ca.crt`, `ca.key`, 10 years) and a server
//! certificate signed by it for every name the machine is reached by (`server.crt`, `server.key`,
//! the list in `server.names`). The server certificate is re-issued with the same CA when that list
//! changes or when it expires within 30 days. A user-provided certificate can replace it.

mod live;
pub use live::LiveTls;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Lifetime of the CA.
const CA_DAYS: i64 = 3650;
/// Lifetime of a server certificate (below the 398/825-day limits clients enforce).
const SERVER_DAYS: i64 = 397;
/// A server certificate expiring within this many days is re-issued.
const RENEW_DAYS: i64 = 30;

/// Something went wrong with the certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The certificate material the server uses.
#[derive(Debug)]
pub struct TlsMaterial {
    /// The generated CA in PEM (what `GET /ca.crt` serves; `None` with a user-provided cert).
    pub ca_pem: Option<String>,
    /// SHA-256 of the generated CA (hex, colon-separated).
    pub ca_fingerprint: String,
    /// SHA-256 of the certificate the server presents (hex, colon-separated).
    pub server_fingerprint: String,
    /// The names in the generated certificate (empty with a user-provided cert).
    pub names: Vec<String>,
    /// The certificate chain presented to clients.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// A rustls server configuration (aws-lc-rs, HTTP/2 and HTTP/1.1 by ALPN).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// SHA-256 of DER bytes as upper-case hex pairs separated by colons.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Ensures the CA and server certificate under `<data_dir>/tls` for this machine's names, or
/// loads the user-provided certificate and key when both are given.
pub fn ensure(
    data_dir: &Path,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<TlsMaterial, TlsError> {
    let dir = data_dir.join("tls");
    let generated = ensure_at(&dir, &machine_names(), OffsetDateTime::now_utc())?;
    match (cert_file, key_file) {
        (Some(c), Some(k)) => {
            let chain = load_chain(c)?;
            let key = load_key(k)?;
            let server_fingerprint = chain
                .first()
                .map(|d| fingerprint(d.as_ref()))
                .unwrap_or_default();
            Ok(TlsMaterial {
                ca_pem: None,
                ca_fingerprint: generated.ca_fingerprint,
                server_fingerprint,
                names: Vec::new(),
                chain,
                key,
            })
        }
        (Some(_), None) | (None, Some(_)) => Err(TlsError::Pem {
            path: cert_file.or(key_file).unwrap_or(&dir).to_path_buf(),
            message: "tls.cert_file and tls.key_file must be given together".into(),
        }),
        (None, None) => Ok(generated),
    }
}

/// Loads a PEM certificate chain (leaf first).
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no certificate found".into(),
        });
    }
    Ok(chain)
}

/// Loads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The CA's subject: fixed text plus a short id derived from its key, so it is the same every
/// time the CA key is loaded (re-issuing needs the issuer's exact name).
fn ca_params(ca_key: &KeyPair, now: OffsetDateTime) -> CertificateParams {
    let id: String = Sha256::digest(ca_key.public_key_raw())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Hearth");
    dn.push(DnType::CommonName, format!("Hearth local CA {id}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    params
}

/// [`ensure`] for a given directory, name list and time (tests use other times).
pub fn ensure_at(
    dir: &Path,
    names: &[String],
    now: OffsetDateTime,
) -> Result<TlsMaterial, TlsError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (ca_crt, ca_key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (srv_crt, srv_key) = (dir.join("server.crt"), dir.join("server.key"));
    let names_file = dir.join("server.names");

    let (ca_key, ca_pem, new_ca) = if ca_crt.exists() && ca_key_path.exists() {
        let key_pem = std::fs::read_to_string(&ca_key_path).map_err(io_err(&ca_key_path))?;
        let key = KeyPair::from_pem(&key_pem)?;
        let pem = std::fs::read_to_string(&ca_crt).map_err(io_err(&ca_crt))?;
        (key, pem, false)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params(&key, now).self_signed(&key)?;
        write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
        write_file(&ca_crt, cert.pem().as_bytes(), false)?;
        (key, cert.pem(), true)
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: ca_crt.clone(),
        message: e.to_string(),
    })?;

    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let current = read_names(&names_file);
    let fresh = !new_ca
        && srv_crt.exists()
        && srv_key.exists()
        && current.as_ref().is_some_and(|(have, not_after)| {
            *have == wanted && *not_after > (now + Duration::days(RENEW_DAYS)).unix_timestamp()
        });
    if !fresh {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Hearth");
        dn.push(
            DnType::CommonName,
            wanted
                .iter()
                .next()
                .cloned()
                .unwrap_or_else(|| "hearth".into()),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = wanted
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
            })
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::days(1);
        let not_after = now + Duration::days(SERVER_DAYS);
        params.not_after = not_after;
        let issuer = Issuer::new(ca_params(&ca_key, now), &ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        write_file(&srv_key, key.serialize_pem().as_bytes(), true)?;
        write_file(&srv_crt, cert.pem().as_bytes(), false)?;
        let mut list = String::from("# names in server.crt; it is re-issued when they change\n");
        list.push_str(&format!("not_after={}\n", not_after.unix_timestamp()));
        for n in &wanted {
            list.push_str(n);
            list.push('\n');
        }
        write_file(&names_file, list.as_bytes(), false)?;
        tracing::info!(names = ?wanted, "issued the server certificate");
    }
    let chain = load_chain(&srv_crt)?;
    let key = load_key(&srv_key)?;
    let server_fingerprint = chain
        .first()
        .map(|d| fingerprint(d.as_ref()))
        .unwrap_or_default();
    Ok(TlsMaterial {
        ca_fingerprint: fingerprint(ca_der.as_ref()),
        ca_pem: Some(ca_pem),
        server_fingerprint,
        names: wanted.into_iter().collect(),
        chain,
        key,
    })
}

/// `server.names`: the names and the `not_after` Unix time of the current certificate.
fn read_names(path: &Path) -> Option<(BTreeSet<String>, i64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut not_after = None;
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix("not_after=") {
            Some(v) => not_after = v.parse::<i64>().ok(),
            None => {
                names.insert(line.to_owned());
            }
        }
    }
    Some((names, not_after?))
}

/// Writes a file atomically; private files get mode 0600 from the start.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Every name this machine is reached by: the hostname, `<hostname>.local`, `localhost`, each
/// non-loopback local address, `127.0.0.1` and `::1` (sorted, without duplicates).
pub fn machine_names() -> Vec<String> {
    let mut names = BTreeSet::new();
    if let Some(host) = hostname() {
        let short = host.strip_suffix(".local").unwrap_or(&host).to_owned();
        if short != "localhost" && valid_dns_name(&short) {
            names.insert(format!("{short}.local"));
            names.insert(short);
        }
    }
    names.insert("localhost".to_owned());
    for ip in local_addresses() {
        names.insert(ip.to_string());
    }
    names.insert(Ipv4Addr::LOCALHOST.to_string());
    names.insert(Ipv6Addr::LOCALHOST.to_string());
    names.into_iter().collect()
}

fn valid_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty())
}

/// Non-loopback local addresses: IPv4 from `/proc/net/fib_trie`, global IPv6 from
/// `/proc/net/if_inet6`; elsewhere, the source address a UDP socket would route from.
fn local_addresses() -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        for ip in parse_fib_trie(&trie) {
            out.insert(IpAddr::V4(ip));
        }
    }
    if let Ok(v6) = std::fs::read_to_string("/proc/net/if_inet6") {
        for ip in parse_if_inet6(&v6) {
            out.insert(IpAddr::V6(ip));
        }
    }
    if out.is_empty() {
        // Connecting a UDP socket sends nothing; it only picks the route's source address.
        for (bind, target) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
            let ip = std::net::UdpSocket::bind(bind)
                .and_then(|s| s.connect(target).map(|()| s))
                .and_then(|s| s.local_addr())
                .map(|a| a.ip());
            if let Ok(ip) = ip
                && !ip.is_loopback()
                && !ip.is_unspecified()
            {
                out.insert(ip);
            }
        }
    }
    out.into_iter().collect()
}

/// The `/32 host LOCAL` leaves of the kernel's FIB trie are the machine's own IPv4 addresses.
fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if t.contains("/32 host LOCAL")
            && let Some(ip) = last
            && !ip.is_loopback()
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// Global-scope (scope 00) addresses from `/proc/net/if_inet6`.
fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(scope)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if *scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(n) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = Ipv6Addr::from(n);
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A client config trusting only `ca_pem`.
    fn verifies(ca_pem: &str, chain: &[CertificateDer<'static>], name: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &server_name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .is_ok()
    }

    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn generates_ca_and_server_cert_with_all_names() {
        let dir = tempfile::tempdir().unwrap();
        let list = names(&[
            "box",
            "box.local",
            "localhost",
            "192.168.1.7",
            "127.0.0.1",
            "::1",
        ]);
        let m = ensure_at(dir.path(), &list, OffsetDateTime::now_utc()).unwrap();
        let ca_pem = m.ca_pem.clone().unwrap();
        for n in &list {
            assert!(verifies(&ca_pem, &m.chain, n), "{n} is in the SANs");
        }
        assert!(!verifies(&ca_pem, &m.chain, "other.local"));
        assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
        assert_eq!(mode(&dir.path().join("server.key")), 0o600);
        assert_eq!(m.ca_fingerprint.len(), 32 * 3 - 1);
        assert!(m.ca_fingerprint.split(':').all(|b| b.len() == 2));
        assert_ne!(m.ca_fingerprint, m.server_fingerprint);
        m.server_config().unwrap();
    }

    #[test]
    fn reissues_on_changed_names_with_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let a = ensure_at(dir.path(), &names(&["localhost", "10.0.0.1"]), now).unwrap();
        let same = ensure_at(dir.path(), &names(&["10.0.0.1", "localhost"]), now).unwrap();
        assert_eq!(a.server_fingerprint, same.server_fingerprint, "unchanged");
        let b = ensure_at(dir.path(), &names(&["localhost", "10.0.0.2"]), now).unwrap();
        assert_eq!(a.ca_fingerprint, b.ca_fingerprint, "same CA");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_ne!(a.server_fingerprint, b.server_fingerprint, "re-issued");
        let ca_pem = a.ca_pem.unwrap();
        assert!(verifies(&ca_pem, &b.chain, "10.0.0.2"));
        assert!(!verifies(&ca_pem, &b.chain, "10.0.0.1"));
        let text = std::fs::read_to_string(dir.path().join("server.names")).unwrap();
        assert!(
            text.contains("10.0.0.2") && !text.contains("10.0.0.1"),
            "{text}"
        );
    }

    #[test]
    fn reissues_when_expiring_soon() {
        let dir = tempfile::tempdir().unwrap();
        let list = names(&["localhost"]);
        let now = OffsetDateTime::now_utc();
        let old = ensure_at(dir.path(), &list, now - Duration::days(SERVER_DAYS - 10)).unwrap();
        let mid = ensure_at(dir.path(), &list, now - Duration::days(SERVER_DAYS - 40)).unwrap();
        assert_eq!(
            old.server_fingerprint, mid.server_fingerprint,
            "40 days left"
        );
        let new = ensure_at(dir.path(), &list, now).unwrap();
        assert_ne!(
            old.server_fingerprint, new.server_fingerprint,
            "10 days left"
        );
        assert_eq!(old.ca_fingerprint, new.ca_fingerprint);
        assert!(verifies(
            new.ca_pem.as_ref().unwrap(),
            &new.chain,
            "localhost"
        ));
    }

    #[test]
    fn user_provided_certificate_replaces_the_generated_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["files.example.org".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.path().join("my.crt"), dir.path().join("my.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let m = ensure(dir.path(), Some(&c), Some(&k)).unwrap();
        assert_eq!(m.server_fingerprint, fingerprint(cert.der()));
        assert!(m.ca_pem.is_none());
        assert!(dir.path().join("tls/ca.crt").exists());
        m.server_config().unwrap();
        assert!(ensure(dir.path(), Some(&c), None).is_err());
        assert!(
            ensure(dir.path(), Some(&k), Some(&k)).is_err(),
            "no cert in a key file"
        );
    }

    #[test]
    fn machine_names_always_include_loopback() {
        let n = machine_names();
        for want in ["localhost", "127.0.0.1", "::1"] {
            assert!(n.iter().any(|x| x == want), "{n:?}");
        }
    }

    #[test]
    fn parses_proc_files() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n     |-- 192.168.1.0\n        /24 link UNICAST\n     |-- 192.168.1.7\n        /32 host LOCAL\n";
        assert_eq!(parse_fib_trie(trie), vec![Ipv4Addr::new(192, 168, 1, 7)]);
        let v6 = "00000000000000000000000000000001 01 80 10 80       lo\nfe800000000000000000000000000001 02 40 20 80     eth0\n20010db8000000000000000000000005 02 40 00 00     eth0\n";
        assert_eq!(
            parse_if_inet6(v6),
            vec!["2001:db8::5".parse::<Ipv6Addr>().unwrap()]
        );
    }
}
