//! Dialling the server securely: the TLS handshake with the server's certificate checked
//! against its pin (and remembered on first use), with every failure as a [`ClientError`].
//! The pinning itself (fingerprints, the known-servers file, the verifier) is in
//! [`crate::tls`], which knows nothing of clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::error::ClientError;
use crate::tls::{
    PinVerifier, TlsSettings, client_config, known_fingerprint, remember, server_name,
};

/// Runs the TLS handshake over `stream` to `server`, checking the server's certificate against
/// the pin (and remembering it on first use).
pub async fn tls(
    stream: TcpStream,
    server: &str,
    tls: &TlsSettings,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
    let known = match &tls.known_servers {
        Some(path) => known_fingerprint(path, server).map_err(|reason| ClientError::File {
            path: path.clone(),
            reason,
        })?,
        None => None,
    };
    let expected = tls.fingerprint.clone().or(known.clone());
    let verifier = PinVerifier::new(expected.clone());
    let config = client_config(verifier.clone()).map_err(|e| ClientError::Tls(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = connector.connect(server_name(server), stream);
    let result = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout("the TLS handshake"))?;
    let seen = verifier.seen();
    match result {
        Ok(stream) => {
            if expected.is_none() {
                if let (Some(path), Some(fp)) = (&tls.known_servers, &seen) {
                    remember(path, server, fp).map_err(|reason| ClientError::File {
                        path: path.clone(),
                        reason,
                    })?;
                }
            }
            Ok(stream)
        }
        Err(e) => match (expected, seen) {
            (Some(expected), Some(seen)) if expected != seen => Err(ClientError::ServerChanged {
                server: server.to_owned(),
                expected,
                seen,
                known_servers: tls.known_servers.clone(),
            }),
            _ => Err(ClientError::Tls(format!(
                "TLS with {} failed: {e} (is the server running without --plain?)",
                server
            ))),
        },
    }
}
