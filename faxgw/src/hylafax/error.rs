//! The errors of the HylaFAX driver.

/// What went wrong talking to a HylaFAX server. Server text in these errors is already
/// escaped and bounded; passwords never appear.
#[derive(Debug, thiserror::Error)]
pub enum HylafaxError {
    /// The server could not be reached.
    #[error("cannot connect to the HylaFAX server at {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A step took longer than the configured timeout.
    #[error("the HylaFAX server did not answer in time ({step})")]
    Timeout {
        /// The step: a command, a transfer.
        step: String,
    },
    /// Reading or writing the control or a data connection failed.
    #[error("{step}: {source}")]
    Io {
        /// The step.
        step: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server closed the control connection.
    #[error("the HylaFAX server closed the connection ({step})")]
    Closed {
        /// The step.
        step: String,
    },
    /// A reply or listing that does not follow the protocol, or is too long.
    #[error("the HylaFAX server's reply does not follow the protocol: {0}")]
    Protocol(String),
    /// The server refused a command (an unexpected reply code).
    #[error("the HylaFAX server refused {command}: {code} {text}")]
    Refused {
        /// The command, with any password replaced by `****`.
        command: String,
        /// The reply code.
        code: u16,
        /// The reply's text.
        text: String,
    },
    /// The user or password was not accepted.
    #[error("the HylaFAX server refused the login of {user}: {text}")]
    Login {
        /// The user.
        user: String,
        /// The server's reply.
        text: String,
    },
    /// Something to send or fetch is larger than the driver accepts.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// What.
        what: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A number the driver does not pass to HylaFAX.
    #[error("{0:?} is not a dial string (1 to 40 of: digits, + * # , -)")]
    InvalidNumber(String),
    /// A received fax's name that is not one HylaFAX gives (`faxNNNNNNNNN.tif`).
    #[error("{0:?} is not the name of a received fax")]
    InvalidName(String),
    /// Nothing to send: no pages, or a first page past the last.
    #[error("nothing to send: first page {first} of {pages}")]
    NoPages {
        /// The first page asked for (1-based).
        first: usize,
        /// Pages in the document.
        pages: usize,
    },
    /// The pages could not be written as a fax TIFF.
    #[error("cannot write the fax TIFF: {0}")]
    Tiff(#[from] crate::tiff::FaxTiffError),
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
}
