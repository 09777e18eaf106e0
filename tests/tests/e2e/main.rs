//! End-to-end tests: the real `imagecast-server` binary on an ephemeral loopback port, driven
//! by the real client library and the real `imagecast` binary. One module per area.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod auth;
mod compat;
mod crash;
mod distribution;
mod faults;
mod fax;
mod fax_admin;
mod fax_hylafax;
mod fax_phonebook;
mod fax_reception;
mod fax_supervisor;
mod groups;
mod hostile;
mod json;
mod kiosk;
mod login_attacks;
mod manuals;
mod nat;
mod papercuts_server;
mod papercuts_terminal;
mod pc_client;
mod powerloss;
mod receiving_attacks;
mod recovery;
mod relay;
mod service;
mod terminal_attacks;
mod tls;

pub use imagecast_tests::LIMIT;
