//! The imagecast terminal: the MFP control-panel emulator and the scriptable PC client.
//!
//! # Layout
//! - [`cli`]: the `imagecast` command line: its options and one function per command.
//! - [`config`]: settings from flags, then `IMAGECAST_*` variables, then the config file.
//! - [`panel`]: the MFP control-panel emulator (FIG. 6–12), in a terminal or headless.
//! - [`pc`]: the PC client's subcommands (the seed's printer driver and receiving software).
//! - [`paper`]: paper emulated as folders: the ADF, the output tray, removable media.
//! - [`store`]: the image store (memory means 128) with the attribute table of FIG. 19.
//! - [`demo`]: the seed's network in one process, for `imagecast demo`.
//! - [`marksheet`]: mark sheets (FIG. 20): a QR code of the image ID stamped on page one.

pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod marksheet;
pub mod panel;
pub mod paper;
pub mod pc;
pub mod store;
