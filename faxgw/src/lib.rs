//! The imagecast fax gateway's line layer: fax pages, their coding, fax TIFFs, the simulated
//! telephone network and a plain fax machine on it.
//!
//! # Layout
//! - [`page`]: [`page::FaxPage`] (1728 pixels a row, standard or fine) and any image file
//!   turned into fax pages.
//! - [`coding`]: T.4 one-dimensional (MH) and T.6 (G4) coding, and the receiver's page check.
//! - [`tiff`]: multi-page fax TIFFs written with the right tags, and read back.
//! - [`sim`]: the simulated telephone network shared through a folder: numbers, calls, faults,
//!   the call log.
//! - [`machine`]: a plain fax machine on the simulated network (receive into a folder, send
//!   files).
//! - [`gateway`]: `imagecast-faxgw run`, the gateway terminal of the supervising server.
//! - [`driver`]: the gateway's line drivers (`sim`, `hylafax`) behind one type.
//! - [`hylafax`]: the HylaFAX line driver (hfaxd's client protocol).
//! - [`kept`]: received faxes kept until the supervisor acknowledged them.
//! - [`console`]: where a gateway's lines for its operator go (terminal or log).
//! - [`cli`]: the `imagecast-faxgw` commands `run`, `machine` and `pstn`.

#![deny(missing_docs)]

pub mod cli;
pub mod coding;
pub mod console;
pub mod driver;
pub mod gateway;
pub mod hylafax;
pub mod kept;
pub mod machine;
pub mod page;
pub mod sim;
pub mod tiff;
