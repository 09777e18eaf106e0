//! `send`'s progress on stderr: the upload in bytes, then the destinations done, drawn by
//! indicatif only when stderr is a terminal (and not `--quiet`), so that scripts and logs get
//! nothing extra.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one `send`; every method does nothing when progress is not shown.
pub struct SendProgress {
    bar: ProgressBar,
}

impl SendProgress {
    /// Progress for an upload of `total` bytes, shown when stderr is a terminal and `quiet`
    /// is not set.
    pub fn new(total: u64, quiet: bool) -> Self {
        let shown = !quiet && std::io::stderr().is_terminal();
        let bar = if shown {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "uploading {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar }
    }

    /// The bytes handed to the connection so far.
    pub fn uploaded(&self, sent: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(sent);
    }

    /// The upload is done and the server has the image: now the destinations, `total` of them.
    pub fn destinations(&self, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("destinations {wide_bar} {pos}/{len} done {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }

    /// `done` destinations have their result.
    pub fn done(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Runs `f` (which prints a line on stdout) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
