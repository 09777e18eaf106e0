//! Errors a terminal sees.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::ProtoError;
use crate::msg::{ErrorInfo, Refusal};

/// Why a client call failed. Each message is one plain sentence for the operator.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach the image server at {server}: {reason}")]
    Connect {
        /// The address dialled.
        server: String,
        /// The network's reason; part of the message, so not also reported as the error's
        /// source (a report of the chain would say it twice).
        reason: std::io::Error,
    },
    /// The server refused this terminal at the handshake.
    #[error("the image server refused this terminal: {}", .0.message)]
    Refused(Refusal),
    /// The server answered a request with an error.
    #[error("{0}")]
    Server(ErrorInfo),
    /// The connection is gone.
    #[error("the connection to the image server was lost: {0}")]
    Closed(String),
    /// The server did not answer in time.
    #[error("the image server did not answer {0} in time")]
    Timeout(&'static str),
    /// The server answered with a message that does not fit the request.
    #[error("the image server answered {0} with an unexpected message")]
    Unexpected(&'static str),
    /// A local page file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    File {
        /// The file that could not be read.
        path: PathBuf,
        /// The system's reason (in the message, not repeated as a source).
        reason: std::io::Error,
    },
    /// A page is unusable before anything is sent (empty name, changed while sending...).
    #[error("{0}")]
    BadPage(String),
    /// The TLS handshake failed.
    #[error("{0}")]
    Tls(String),
    /// The server's certificate is not the one pinned for it.
    #[error("the image server at {server} presented certificate {seen}, but {expected} is pinned for it{}; if its certificate was replaced on purpose, remove the old line{} or give the new fingerprint with --server-fingerprint", known_servers.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(), known_servers.as_ref().map(|_| " from that file").unwrap_or_default())]
    ServerChanged {
        /// The server's address, as dialled and as the pin is filed under.
        server: String,
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint presented.
        seen: String,
        /// Where the pin was remembered.
        known_servers: Option<PathBuf>,
    },
    /// A relay session ended (the peer or an administrator ended it, or a connection broke);
    /// the reason says which.
    #[error("the session ended: {0}")]
    SessionEnded(String),
    /// Framing or decoding failed.
    #[error(transparent)]
    Protocol(#[from] ProtoError),
}

impl ClientError {
    /// The server's error details, when the server refused the request.
    pub fn server_error(&self) -> Option<&ErrorInfo> {
        match self {
            ClientError::Server(info) => Some(info),
            _ => None,
        }
    }

    /// True when the connection must be re-established before trying again.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Tls(_)
                | ClientError::Closed(_)
                | ClientError::Timeout(_)
                | ClientError::Protocol(_)
        )
    }
}
