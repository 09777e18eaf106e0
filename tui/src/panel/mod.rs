//! The MFP control-panel emulator (digital multifunction apparatus 120 of the seed): the
//! dialogs of FIG. 6–12 on an LCD with a ten-key pad, Start, Reset and Stop.
//!
//! # Layout
//! - [`app`]: the state machine: dialog stack, connection state, user, received list.
//! - [`screens`]: one module per dialog, behind the closed `Screen` enum.
//! - [`jobs`]: network and disk work, off the UI, with the runner that owns the connection and
//!   the user; [`link`]: the connection with reconnects.
//! - [`chrome`]: status line, LCD frame, key pad, received pane, legend.
//! - [`keys`], [`strings`], [`theme`], [`menu`]: key map, texts, styles, numbered menus.
//! - [`runner`]: the terminal and headless loops; [`script`]: walkthrough scripts.
//!
//! Each screen's tests live in its module (key → action tests and its insta snapshots, under
//! `screens/snapshots/`); what they share is in `test_support`.

pub mod app;
pub mod chrome;
pub mod jobs;
pub mod keys;
pub mod link;
pub mod menu;
pub mod record;
pub mod runner;
pub mod screens;
pub mod script;
pub mod strings;
pub mod theme;

#[cfg(test)]
mod test_support;

pub use app::{App, PanelInfo};
pub use runner::{PanelDirs, PanelOptions, buffer_text, run, run_headless};
pub use script::Script;
pub use theme::Theme;
