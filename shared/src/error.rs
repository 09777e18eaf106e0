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
    #[error("malformed {what}: {reason}")]
    Decode {
        /// Which message kind was expected.
        what: &'static str,
        /// postcard's reason (in the message, not repeated as a source).
        reason: postcard::Error,
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
    Io(std::io::Error),
}

/// By hand rather than `#[from]`, which would also report the error as its own source, and a
/// report of the whole chain would then say it twice.
impl From<std::io::Error> for ProtoError {
    fn from(e: std::io::Error) -> Self {
        ProtoError::Io(e)
    }
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
