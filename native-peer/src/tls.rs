//! The self-signed certificate of the HTTPS listener, kept in `<data dir>/tls/`.
//!
//! A LAN has no certificate authority, so the peer signs its own certificate on first start
//! and reuses it afterwards: visitors accept the browser's warning once per device. The
//! certificate names every address the peer can be reached at ([`SubjectNames`]); when the
//! machine gains an address it does not name, or it nears its end, a new one is made.
//!
//! Apple's platforms refuse server certificates valid for more than 825 days, or without the
//! server-auth extended key usage, even self-signed ones: the certificate has neither flaw.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

/// The folder of the data dir that holds the certificate and its key.
pub const TLS_DIR: &str = "tls";
/// The certificate, PEM.
pub const CERT_FILE: &str = "cert.pem";
/// The certificate's private key, PEM, readable by its owner only.
pub const KEY_FILE: &str = "key.pem";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// How long a new certificate is valid: under the 825 days Apple's platforms accept.
const VALIDITY: Duration = Duration::from_secs(800 * 24 * 3600);
/// A certificate that expires within this long is replaced at start-up.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the certificate could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// rcgen could not make the certificate.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or its key.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The names a certificate covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectNames {
    /// DNS names: `localhost`, then the host name and `<host>.local` (mDNS) when valid.
    pub dns: Vec<String>,
    /// IP addresses a new certificate names: the loopback ones and every interface address.
    pub ips: Vec<IpAddr>,
    /// The addresses the printed links point to (and the loopback ones): a stored certificate
    /// that lacks one is replaced. Other addresses do not cost visitors a new warning: IPv6
    /// privacy addresses, for one, change every day.
    pub required_ips: Vec<IpAddr>,
}

impl SubjectNames {
    /// `localhost`, 127.0.0.1, ::1, `host` and `<host>.local` (skipped when not valid DNS
    /// names) and every address of `interfaces`, for a listener bound to `bound`.
    pub fn new(host: Option<&str>, interfaces: &[IpAddr], bound: IpAddr) -> Self {
        let mut dns = vec!["localhost".to_owned()];
        if let Some(host) = host.map(str::to_ascii_lowercase) {
            let mdns = (!host.ends_with(".local")).then(|| format!("{host}.local"));
            for name in std::iter::once(host).chain(mdns) {
                let valid = matches!(
                    ServerName::try_from(name.as_str()),
                    Ok(ServerName::DnsName(_))
                );
                if valid && !dns.contains(&name) {
                    dns.push(name);
                }
            }
        }
        let loopback = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let linked = crate::links::reachable_addresses(bound, interfaces);
        let specific = (!bound.is_unspecified()).then_some(bound);
        let ips = loopback.iter().chain(interfaces).chain(&specific).copied();
        SubjectNames {
            dns,
            ips: sorted(ips.collect()),
            required_ips: sorted(loopback.into_iter().chain(linked).collect()),
        }
    }

    /// This host's names, for a listener bound to `bound` (see [`SubjectNames::new`]).
    pub fn of_this_host(bound: IpAddr) -> Self {
        let host = crate::links::host_name();
        Self::new(host.as_deref(), &crate::links::interface_addresses(), bound)
    }

    /// The names a stored certificate must match to be kept.
    fn required(&self) -> impl Iterator<Item = ServerName<'static>> + '_ {
        let dns = self
            .dns
            .iter()
            .filter_map(|d| ServerName::try_from(d.clone()).ok());
        dns.chain(self.required_ips.iter().map(|ip| ServerName::from(*ip)))
    }
}

/// A self-signed certificate and its private key.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, DER.
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl SelfSigned {
    /// A rustls server configuration for this certificate, with the aws-lc-rs provider.
    pub fn server_config(self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert], self.key)?;
        // The listener speaks HTTP/1.1 only, which also carries the WebSocket upgrade of /ws.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Why this certificate should not be used at `now` for `names`, if it should not.
    fn problem(&self, names: &SubjectNames, now: SystemTime) -> Option<String> {
        let provider = provider();
        if let Err(e) =
            CertifiedKey::from_der(vec![self.cert.clone()], self.key.clone_key(), &provider)
        {
            return Some(format!("does not match its key ({e})"));
        }
        let parsed = match ParsedCertificate::try_from(&self.cert) {
            Ok(parsed) => parsed,
            Err(e) => return Some(format!("cannot be parsed ({e})")),
        };
        if let Some(name) = names
            .required()
            .find(|n| verify_server_name(&parsed, n).is_err())
        {
            return Some(format!("does not name {}", name.to_str()));
        }
        let mut itself = RootCertStore::empty();
        if let Err(e) = itself.add(self.cert.clone()) {
            return Some(format!("is not a usable root ({e})"));
        }
        let soon = unix_time(now + RENEW_BEFORE);
        let algorithms = provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&parsed, &itself, &[], soon, algorithms)
            .err()
            .map(|e| {
                format!(
                    "will not be valid in {} days ({e})",
                    RENEW_BEFORE.as_secs() / 86400
                )
            })
    }
}

/// `<data_dir>/tls/cert.pem`.
pub fn cert_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TLS_DIR).join(CERT_FILE)
}

/// The certificate in `<data_dir>/tls/`; a new one for `names` is made and stored when there
/// is none, when it cannot be read, lacks one of the DNS names or [`SubjectNames::required_ips`],
/// or expires within 30 days.
pub fn load_or_create(data_dir: &Path, names: &SubjectNames) -> Result<SelfSigned, TlsError> {
    load_or_create_at(data_dir, names, SystemTime::now())
}

fn load_or_create_at(
    data_dir: &Path,
    names: &SubjectNames,
    now: SystemTime,
) -> Result<SelfSigned, TlsError> {
    let dir = data_dir.join(TLS_DIR);
    match load(&dir) {
        Ok(Some(stored)) => match stored.problem(names, now) {
            None => return Ok(stored),
            Some(why) => {
                tracing::info!(
                    "making a new TLS certificate: {} {why}",
                    cert_file(data_dir).display()
                );
            }
        },
        Ok(None) => tracing::info!("making a self-signed TLS certificate in {}", dir.display()),
        Err(e) => tracing::warn!("making a new TLS certificate: {e}"),
    }
    let (cert_pem, key_pem) = generate(names, now)?;
    write_atomically(&dir, KEY_FILE, &key_pem, 0o600)?;
    write_atomically(&dir, CERT_FILE, &cert_pem, 0o644)?;
    parse(&dir, cert_pem.as_bytes(), key_pem.as_bytes())
}

/// The stored pair, or `None` when there is no certificate yet.
fn load(dir: &Path) -> Result<Option<SelfSigned>, TlsError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| TlsError::File { path, source })
    };
    let cert = match read(CERT_FILE) {
        Err(TlsError::File { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        other => other?,
    };
    parse(dir, &cert, &read(KEY_FILE)?).map(Some)
}

fn parse(dir: &Path, cert: &[u8], key: &[u8]) -> Result<SelfSigned, TlsError> {
    let invalid = |name: &str, e: rustls::pki_types::pem::Error| TlsError::File {
        path: dir.join(name),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    };
    Ok(SelfSigned {
        cert: CertificateDer::from_pem_slice(cert).map_err(|e| invalid(CERT_FILE, e))?,
        key: PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(KEY_FILE, e))?,
    })
}

/// A new ECDSA P-256 key and a certificate for `names`, valid from a day before `now` (for
/// visitors whose clock lags) for [`VALIDITY`]; both PEM.
fn generate(names: &SubjectNames, now: SystemTime) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.dns.clone())?;
    params
        .subject_alt_names
        .extend(names.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
    let host = names
        .dns
        .get(1)
        .map(|h| format!(" on {h}"))
        .unwrap_or_default();
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, format!("Multiverse peer{host}"));
    subject.push(rcgen::DnType::OrganizationName, "Multiverse");
    params.distinguished_name = subject;
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(DAY);
    params.not_after = epoch + since_epoch + VALIDITY;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `dir/name` through a synced temporary file, so a crash never leaves half a file;
/// `mode` applies on Unix.
fn write_atomically(dir: &Path, name: &str, contents: &str, mode: u32) -> Result<(), TlsError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || {
        std::fs::create_dir_all(dir)?;
        // A left-over temporary file would keep its old mode.
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| TlsError::File { path, source })
}

fn sorted(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort();
    ips.dedup();
    ips
}

fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

fn unix_time(at: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(ips: &[&str]) -> SubjectNames {
        let ips: Vec<IpAddr> = ips.iter().map(|s| ip(s)).collect();
        SubjectNames::new(Some("Kitchen"), &ips, ip("0.0.0.0"))
    }

    fn stored(dir: &Path) -> Vec<u8> {
        std::fs::read(cert_file(dir)).unwrap()
    }

    #[test]
    fn names_cover_loopback_host_and_interfaces() {
        let got = names(&["192.168.1.20", "127.0.0.1", "fd00::2"]);
        assert_eq!(got.dns, ["localhost", "kitchen", "kitchen.local"]);
        let all = [
            ip("127.0.0.1"),
            ip("192.168.1.20"),
            ip("::1"),
            ip("fd00::2"),
        ];
        assert_eq!(got.ips, all);
        // Bound to 0.0.0.0, the links use IPv4 only.
        assert_eq!(got.required_ips, all[..3]);
        let lo = ip("127.0.0.1");
        let odd = SubjectNames::new(Some("my host"), &[], lo);
        assert_eq!(
            odd.dns,
            ["localhost"],
            "a host name with a space is not a DNS name"
        );
        let local = SubjectNames::new(Some("pi.local"), &[], lo);
        assert_eq!(local.dns, ["localhost", "pi.local"]);
    }

    #[test]
    fn made_once_then_reused_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &names(&["10.0.0.7"])).unwrap();
        assert!(first
            .problem(&names(&["10.0.0.7"]), SystemTime::now())
            .is_none());
        let bytes = stored(dir.path());
        let again = load_or_create(dir.path(), &names(&["10.0.0.7"])).unwrap();
        assert_eq!(again.cert, first.cert);
        assert_eq!(stored(dir.path()), bytes);
        again.server_config().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = std::fs::metadata(dir.path().join(TLS_DIR).join(KEY_FILE)).unwrap();
            assert_eq!(key.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_new_address_or_a_near_end_makes_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &names(&["10.0.0.7"])).unwrap();
        let moved = load_or_create(dir.path(), &names(&["10.0.0.7", "192.168.1.20"])).unwrap();
        assert_ne!(moved.cert, first.cert);
        // An address that went away does not matter: the certificate still names the rest.
        let fewer = load_or_create(dir.path(), &names(&["192.168.1.20"])).unwrap();
        assert_eq!(fewer.cert, moved.cert);
        // Nor does an address no link points to (a daily IPv6 privacy address, with 0.0.0.0).
        let v6 = load_or_create(dir.path(), &names(&["192.168.1.20", "2001:db8::7"])).unwrap();
        assert_eq!(v6.cert, moved.cert);
        let late = SystemTime::now() + VALIDITY - RENEW_BEFORE / 2;
        let renewed = load_or_create_at(dir.path(), &names(&["192.168.1.20"]), late).unwrap();
        assert_ne!(renewed.cert, moved.cert);
        assert!(renewed.problem(&names(&["192.168.1.20"]), late).is_none());
    }

    #[test]
    fn unreadable_or_mismatched_files_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(TLS_DIR);
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join(CERT_FILE), "garbage").unwrap();
        let made = load_or_create(dir.path(), &names(&[])).unwrap();
        assert!(made.problem(&names(&[]), SystemTime::now()).is_none());
        let other = tempfile::tempdir().unwrap();
        load_or_create(other.path(), &names(&[])).unwrap();
        let foreign_key = other.path().join(TLS_DIR).join(KEY_FILE);
        std::fs::copy(foreign_key, tls.join(KEY_FILE)).unwrap();
        let remade = load_or_create(dir.path(), &names(&[])).unwrap();
        assert_ne!(remade.cert, made.cert);
        remade.server_config().unwrap();
    }
}
