//! TLS between terminals and the server, with the server's certificate pinned like SSH's
//! `known_hosts`: a terminal trusts the certificate it sees first (or the fingerprint an
//! administrator handed it), remembers it, and refuses, naming both fingerprints, when it
//! changes. The certificate's names are not checked: the pin is the identity.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

/// The fingerprint of a DER certificate: `SHA256:` and 64 lowercase hex digits.
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let mut s = String::with_capacity(71);
    s.push_str("SHA256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Normalises a fingerprint typed by a person (case, optional `SHA256:` prefix, colons).
pub fn normalize_fingerprint(fp: &str) -> Option<String> {
    let hex: String = fp
        .trim()
        .trim_start_matches("SHA256:")
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("SHA256:{hex}"))
}

/// How a terminal decides to trust the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The fingerprint an administrator handed out; it must match.
    pub fingerprint: Option<String>,
    /// The file of remembered servers (`HOST:PORT SHA256:…` lines): first use is trusted and
    /// remembered, a change is refused.
    pub known_servers: Option<PathBuf>,
}

impl TlsSettings {
    /// Trust exactly this fingerprint.
    pub fn pinned(fingerprint: &str) -> Self {
        Self {
            fingerprint: Some(fingerprint.to_owned()),
            known_servers: None,
        }
    }

    /// Trust on first use, remembering servers in `path`.
    pub fn known_servers(path: impl Into<PathBuf>) -> Self {
        Self {
            fingerprint: None,
            known_servers: Some(path.into()),
        }
    }
}

/// The remembered fingerprint of `server` in the file, if any.
pub fn known_fingerprint(path: &Path, server: &str) -> std::io::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(s, _)| *s == server)
        .map(|(_, fp)| fp.trim().to_owned()))
}

/// Remembers `server`'s fingerprint in the file (created with its folder if missing).
pub fn remember(path: &Path, server: &str, fp: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{server} {fp}")?;
    f.sync_data()
}

/// Accepts the certificate whose fingerprint is expected (any, on first use) and records
/// what it saw; signatures are still checked, so the server must hold the key.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    expected: Option<String>,
    pub(crate) seen: Mutex<Option<String>>,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub(crate) fn new(expected: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            expected,
            seen: Mutex::new(None),
            provider: Arc::new(ring::default_provider()),
        })
    }

    pub(crate) fn seen(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(fp.clone());
        match &self.expected {
            Some(e) if *e != fp => Err(rustls::Error::General(format!(
                "certificate {fp} is not the pinned {e}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that trusts through `verifier`.
pub(crate) fn client_config(
    verifier: Arc<PinVerifier>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

/// The name sent in the handshake: the host part of `HOST:PORT` when it is a valid name,
/// else a placeholder (names are not checked; the pin is).
pub(crate) fn server_name(server: &str) -> ServerName<'static> {
    let host = server
        .rsplit_once(':')
        .map_or(server, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .or_else(|_| ServerName::try_from("imagecast.invalid".to_owned()))
        .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalise_and_known_servers_round_trip() {
        let fp = fingerprint(b"certificate");
        assert!(fp.starts_with("SHA256:") && fp.len() == 71);
        let typed = fp.trim_start_matches("SHA256:").to_ascii_uppercase();
        assert_eq!(normalize_fingerprint(&typed), Some(fp.clone()));
        assert_eq!(normalize_fingerprint("SHA256:abc"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_servers");
        assert_eq!(known_fingerprint(&path, "h:1").unwrap(), None);
        remember(&path, "h:1", &fp).unwrap();
        remember(&path, "h:2", "SHA256:other").unwrap();
        assert_eq!(known_fingerprint(&path, "h:1").unwrap(), Some(fp));
        assert_eq!(
            server_name("127.0.0.1:7410"),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("[::1]:7410"),
            ServerName::try_from("::1").unwrap()
        );
    }
}
