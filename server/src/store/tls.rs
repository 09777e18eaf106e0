//! The server's TLS identity: a key and a self-signed certificate in `DATA/tls/`, made by
//! `init` (or supplied by the administrator), loaded by `run`. Terminals pin its fingerprint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::files;

/// The certificate file in the TLS folder.
pub const CERT_FILE: &str = "server.crt";
/// The key file in the TLS folder.
pub const KEY_FILE: &str = "server.key";

/// Makes a key and a self-signed certificate for `names` (plus localhost and 127.0.0.1) in
/// `dir`; the key file is readable by its owner only. Returns the fingerprint.
pub fn create(dir: &Path, names: &[String]) -> anyhow::Result<String> {
    files::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    sans.extend(names.iter().cloned());
    let certified =
        rcgen::generate_simple_self_signed(sans).context("cannot make a certificate")?;
    files::write_private(
        &dir.join(KEY_FILE),
        certified.signing_key.serialize_pem().as_bytes(),
    )?;
    files::write_atomic(&dir.join(CERT_FILE), certified.cert.pem().as_bytes())?;
    Ok(imagecast_shared::tls::fingerprint(certified.cert.der()))
}

/// Copies an administrator's certificate and key into `dir` after checking they load.
pub fn install(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<String> {
    let (certs, key_der) = read_pair(cert, key)?;
    config(certs.clone(), key_der)?;
    files::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let cert_bytes =
        std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    files::write_private(&dir.join(KEY_FILE), &key_bytes)?;
    files::write_atomic(&dir.join(CERT_FILE), &cert_bytes)?;
    Ok(imagecast_shared::tls::fingerprint(&certs[0]))
}

fn read_pair(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate", cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    Ok((certs, key))
}

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<rustls::ServerConfig> {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS set-up failed")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS identity")
}

/// The certificate and key files of a TLS folder.
pub fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(CERT_FILE), dir.join(KEY_FILE))
}

/// Loads the TLS identity from `dir`; returns the acceptor and the fingerprint.
pub fn load(dir: &Path) -> anyhow::Result<(TlsAcceptor, String)> {
    let (cert, key) = files(dir);
    if !cert.exists() {
        bail!(
            "no TLS certificate in {} (data directories made before TLS: run `imagecast-server tls create --data-dir DIR`; or serve without TLS with --plain)",
            dir.display()
        );
    }
    let (certs, key_der) = read_pair(&cert, &key)?;
    let fp = imagecast_shared::tls::fingerprint(&certs[0]);
    Ok((TlsAcceptor::from(Arc::new(config(certs, key_der)?)), fp))
}

/// The fingerprint of the certificate in `dir`.
pub fn fingerprint(dir: &Path) -> anyhow::Result<String> {
    let (cert, _) = files(dir);
    let first = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?
        .next()
        .with_context(|| format!("{} holds no certificate", cert.display()))?
        .with_context(|| format!("{} is not a PEM certificate", cert.display()))?;
    Ok(imagecast_shared::tls::fingerprint(&first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_identity_loads_and_keeps_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let fp = create(dir.path(), &["image-server.example".into()]).unwrap();
        let (_, loaded) = load(dir.path()).unwrap();
        assert_eq!(fp, loaded);
        assert_eq!(fingerprint(dir.path()).unwrap(), fp);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
        let other = tempfile::tempdir().unwrap();
        let (cert, key) = files(dir.path());
        assert_eq!(install(other.path(), &cert, &key).unwrap(), fp);
        let err = load(tempfile::tempdir().unwrap().path()).err().unwrap();
        assert!(err.to_string().contains("--plain"), "{err}");
    }
}
