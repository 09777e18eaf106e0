//! What the two ends of a call say over its Unix-domain socket: one message enum per
//! direction, postcard-encoded, each behind a 4-byte big-endian length. The names in the
//! comments are the T.30 signals each message stands for.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Capabilities;
use crate::coding::Coding;
use crate::page::Resolution;

/// The largest message: a page of [`crate::page::MAX_ROWS`] rows of worst-case MH data.
pub(crate) const MAX_MESSAGE: usize = 16 << 20;

/// From the calling end.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum CallerMsg {
    /// The call itself: who calls whom (the caller's TSI and capabilities).
    Call {
        caller: String,
        called: String,
        station: String,
        caps: Capabilities,
    },
    /// One page (DCS for its resolution and coding, the image data, EOP/MPS).
    Page {
        number: u32,
        resolution: Resolution,
        coding: Coding,
        rows: u32,
        /// The ECM frame check sequence, when the call uses error correction.
        fcs: Option<u32>,
        data: Vec<u8>,
    },
    /// The last page was confirmed; the caller hangs up (DCN).
    Done,
}

/// From the called end.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum CalleeMsg {
    /// Every line of the called station is in use.
    Busy,
    /// Answered: the callee's CSI and capabilities (DIS).
    Answer { station: String, caps: Capabilities },
    /// The page passed the check (MCF).
    Confirm { number: u32 },
    /// The page failed the check (RTN).
    Reject { number: u32, reason: String },
}

/// Writes one message.
pub(crate) async fn send<M: Serialize>(
    stream: &mut tokio::net::UnixStream,
    msg: &M,
) -> std::io::Result<()> {
    let bytes = postcard::to_allocvec(msg).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Reads one message; `Ok(None)` when the other end hung up between messages.
pub(crate) async fn recv<M: for<'de> Deserialize<'de>>(
    stream: &mut tokio::net::UnixStream,
) -> std::io::Result<Option<M>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "a message of {len} bytes is larger than {MAX_MESSAGE}"
        )));
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).await?;
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("a message does not decode: {e}")))
}
