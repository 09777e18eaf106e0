//! Faults of the framing and decoding layer.

use thiserror::Error;

/// A frame could not be read, written or decoded.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// The peer announced a frame longer than the limit in force.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The frame body is not a valid message of the expected kind.
    #[error("malformed {what}: {source}")]
    Decode {
        /// Which message kind was expected.
        what: &'static str,
        /// postcard's reason.
        source: postcard::Error,
    },
    /// The frame body holds bytes after its message.
    #[error("malformed {what}: {extra} bytes after the message")]
    Trailing {
        /// Which message kind was expected.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A message could not be encoded (a bug, or a field over its limit).
    #[error("cannot encode message: {0}")]
    Encode(postcard::Error),
    /// The byte stream failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtoError {
    /// True when the fault means the byte stream is out of step and must be closed.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ProtoError::Decode { .. } | ProtoError::Trailing { .. }
        )
    }
}
