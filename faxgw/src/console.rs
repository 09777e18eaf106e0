//! Where a gateway's lines for its operator go: standard output and standard error for the
//! `imagecast-faxgw` binary, or the `tracing` log when the gateway runs inside a program that
//! owns the terminal (the panel's demo runs its gateways in its own process, and a line
//! printed over its screen would garble it).

use std::sync::atomic::{AtomicBool, Ordering};

static TO_LOG: AtomicBool = AtomicBool::new(false);

/// From now on this process's gateways write their lines to the `tracing` log, not to the
/// terminal.
pub fn to_log() {
    TO_LOG.store(true, Ordering::Relaxed);
}

/// A line of news ("connected as ...", "fax ... stored"): standard output, or an info event.
pub fn say(line: std::fmt::Arguments<'_>) {
    if TO_LOG.load(Ordering::Relaxed) {
        tracing::info!("{line}");
    } else {
        println!("{line}");
    }
}

/// A line about a problem: standard error, or a warning event.
pub fn warn(line: std::fmt::Arguments<'_>) {
    if TO_LOG.load(Ordering::Relaxed) {
        tracing::warn!("{line}");
    } else {
        eprintln!("{line}");
    }
}

/// Prints a line of news through [`say`].
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::console::say(format_args!($($t)*)) };
}

/// Prints a line about a problem through [`warn`].
#[macro_export]
macro_rules! warn_line {
    ($($t:tt)*) => { $crate::console::warn(format_args!($($t)*)) };
}
