//! Why a job failed. Each variant's words are what the operator reads in the error dialog (or
//! on FIG. 6, or in the progress view), so they are sentences, and the lower layers' errors
//! show through unchanged.

use std::path::PathBuf;

use imagecast_shared::client::ClientError;

use crate::marksheet::MarkSheetError;
use crate::paper::PaperError;
use crate::store::StoreError;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The link is down: the job needs the server.
    #[error("not connected to the image server")]
    NotConnected,
    /// Nobody is logged in, and the job stores who did it.
    #[error("nobody is logged in")]
    NotLoggedIn,
    /// The server refused, or the connection broke.
    #[error(transparent)]
    Server(#[from] ClientError),
    /// The ADF, a tray or a page file failed.
    #[error(transparent)]
    Paper(#[from] PaperError),
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every document in the ADF was refused.
    #[error("No readable document in the ADF ({}).{}", dir.display(), sentences(refused))]
    NothingReadable {
        /// The ADF's folder.
        dir: PathBuf,
        /// Each refusal, as "Refused NAME: why".
        refused: Vec<String>,
    },
    /// The ADF holds no mark sheet to read.
    #[error("Place the mark sheet in the ADF ({}) and press Start.", dir.display())]
    NoMarkSheet {
        /// The ADF's folder.
        dir: PathBuf,
    },
    /// The sheet in the ADF could not be read.
    #[error("{file}: {source}")]
    MarkSheet {
        /// The sheet's file name.
        file: String,
        /// Why it could not be read.
        #[source]
        source: MarkSheetError,
    },
    /// The output tray holds no sheet to carry.
    #[error("nothing to carry: the output tray {} holds no sheet", dir.display())]
    TrayEmpty {
        /// The output tray's folder.
        dir: PathBuf,
    },
    /// A worker thread panicked or was shut down.
    #[error("internal error: {0}")]
    Internal(#[from] tokio::task::JoinError),
}

/// Each line as a sentence after the one before: " Refused a.png: why."
fn sentences(lines: &[String]) -> String {
    lines.iter().map(|l| format!(" {l}.")).collect()
}
