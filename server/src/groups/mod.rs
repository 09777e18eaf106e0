//! Destination groups: the seed's `.rec` files, the table of group names and file names
//! (FIG. 18), and registration / withdrawal edits (section 2.3, claims 1 and 12).
//!
//! # Layout
//!
//! - [`rec`]: [`RecFile`], one group file parsed so that every byte the operator wrote is kept
//!   (comments, blank lines, order, CRLF, a BOM, a missing final newline). Edits produce a new
//!   `RecFile` whose bytes differ from the old ones only in the edited lines.
//! - [`table`]: [`GroupDir`] watches `DATA/groups/*.rec`; [`GroupDir::snapshot`] rescans the
//!   directory (listing + one `stat` per file, no reads when nothing changed) and returns an
//!   immutable [`GroupSnapshot`]: the [`GroupTable`] plus every usable file and every problem.
//! - [`writer`]: [`RecWriter`] applies registrations and withdrawals atomically (temp file,
//!   fsync, rename, fsync of the directory), one file at a time, with group commit: edits that
//!   queue up while a write is in flight go to disk together in the next write.
//! - [`resolve`]: [`resolve_destinations`] turns a sender's chosen groups and individual
//!   destinations into the devices that get the image, each once, named by its [`domain_key`].
//!
//! # The format (seed section 1.2)
//!
//! ```text
//! # product development-related places
//! # develop.rec
//! devl1.hqs.mei.co.jp;development department of the head office
//! devl1.osk.mei.co.jp;development department, the Osaka branch
//! ```
//!
//! Line 1 is a `#` comment holding the group name, line 2 a `#` comment holding the file name,
//! then one member a line, `network-domain-name;destination name` (an IPv4 or IPv6 address may
//! stand for the domain name). [`ALL_FILE`] (`all.rec`) lists every destination the system knows
//! and is where destination names are looked up.
//!
//! # Decisions
//!
//! - **Tolerance.** Whitespace around fields and after `#` is trimmed (`##` counts as `#`);
//!   blank lines and further `#` comments are allowed anywhere after line 2 and are kept;
//!   CRLF, a UTF-8 BOM and a missing final newline are accepted and kept on rewrite.
//! - **Bad member lines** (no `;`, empty domain or name, a domain that is neither a DNS name nor
//!   an IP address, a duplicate domain, invalid UTF-8, control characters in the name) are
//!   reported with file and line and *ignored*; the file's other members stay in use. The first
//!   occurrence of a duplicated domain wins. Domains compare case-insensitively (IP addresses by
//!   value: `::1` equals `0:0::1`).
//! - **Broken headers** (line 1 not a non-empty `#` group-name comment, line 2 not a non-empty
//!   `#` file-name comment) make the file unusable: it is reported and its group is left out of
//!   the table; the other groups are unaffected. A line-2 name that differs from the real file
//!   name is only a warning.
//! - **Group names** may not contain `;` or control characters. A `;` on line 1 almost always
//!   means a commented-out member line took the header's place, so refusing it catches the
//!   mistake; it also keeps group names safe in any `;`-separated listing.
//! - **The destination name** is everything after the *first* `;` (so a name may contain `;`).
//! - **Two files declaring the same group name**: `all.rec` always keeps its name; otherwise the
//!   file whose name sorts first (byte order) wins. The loser is reported as an error at its
//!   line 1 and left out of the table; the winner gets a warning naming the loser.
//! - **File selection**: only `NAME.rec` (lower-case extension) regular files; hidden files
//!   (`.develop.rec.swp`, our own `.NAME.rec.tmp-*`), editor back-ups (`develop.rec~`) and lock
//!   files (`#develop.rec#`) are ignored. Files over [`MAX_FILE_SIZE`] are reported, not read.
//! - **Group names** are matched exactly (after trimming), case included: they are shown to
//!   terminals and sent back verbatim.
//! - **Cross-file check**: a member of a group file that `all.rec` does not list is a warning
//!   (it is still a member).
//! - **At most [`MAX_PROBLEMS`] problems** are listed per file, then one line counts the rest,
//!   so a stray binary file cannot flood the log.
//! - **Problems** have a line number of 0 when they concern the whole file (missing `all.rec`,
//!   too large, unreadable); they display as `FILE: reason` then, `FILE:LINE: reason` otherwise,
//!   with `warning: ` before the reason of a warning.

pub mod rec;
pub mod resolve;
pub mod table;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use rec::{
    EditOutcome, MAX_FILE_SIZE, MAX_PROBLEMS, Member, RecEdit, RecFile, RecProblem, Severity,
    TextEncoding, domain_key,
};
pub use resolve::{Unresolved, resolve_destinations};
pub use table::{GroupDir, GroupRow, GroupSnapshot, GroupTable};
pub use writer::{RecWriter, Registration, Withdrawal, WriterStats};

/// The file that lists every destination (FIG. 14, "all distribution destinations").
pub const ALL_FILE: &str = "all.rec";

/// The extension that marks a destination group file.
pub const REC_EXTENSION: &str = ".rec";

/// Everything that can go wrong with groups, registration and withdrawal.
///
/// Messages are meant for the terminal or operator who caused them: they name the group or
/// domain that was asked for and never list other groups, files or paths, except [`Io`], which
/// names the server-side path and belongs in the server's log.
///
/// [`Io`]: GroupError::Io
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// No usable group file declares this group name.
    #[error("unknown destination group {0:?}")]
    UnknownGroup(String),
    /// The domain is not listed in `all.rec`, so it has no destination name and cannot register.
    #[error(
        "{0:?} is not listed in all.rec (all distribution destinations); ask the operator to add it first"
    )]
    UnknownDomain(String),
    /// The group is the all-destinations group (`all.rec`); terminals cannot register with it or
    /// withdraw from it: only the operator edits that file.
    #[error(
        "the group {0:?} lists every destination and cannot be registered with or withdrawn from"
    )]
    NotRegistrable(String),
    /// `all.rec` does not exist, so no destination names are known.
    #[error("all.rec (all distribution destinations) is missing")]
    MissingAll,
    /// A file is unusable (a broken header, too large, ...): every problem, with file and line.
    #[error("{}", join_problems(.0))]
    Malformed(Vec<RecProblem>),
    /// The member to add is not valid (bad domain or destination name).
    #[error("invalid member: {0}")]
    InvalidMember(String),
    /// The file kept changing on disk while we tried to rewrite it (the operator is editing it).
    #[error("{0} was changed on disk while it was being rewritten; try again")]
    ConcurrentEdit(String),
    /// Reading, writing or listing failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The edit was lost because the task doing it failed (a bug, or the runtime shutting down).
    #[error("the group file edit was interrupted: {0}")]
    Interrupted(String),
}

impl GroupError {
    /// An [`GroupError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GroupError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

fn join_problems(problems: &[RecProblem]) -> String {
    /// Enough to act on; the full list is in the log and in `imagecast-server check`.
    const SHOWN: usize = 5;
    let mut out = String::new();
    for (i, p) in problems.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&p.to_string());
    }
    if problems.len() > SHOWN {
        out.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    if out.is_empty() {
        out.push_str("malformed group file");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_shows_the_first_problems_only() {
        let problems: Vec<_> = (1..=7)
            .map(|line| RecProblem::error("x.rec", line, "bad"))
            .collect();
        let shown = GroupError::Malformed(problems).to_string();
        assert_eq!(
            shown,
            "x.rec:1: bad; x.rec:2: bad; x.rec:3: bad; x.rec:4: bad; x.rec:5: bad; and 2 more"
        );
        assert_eq!(
            GroupError::UnknownGroup("sales\u{1b}".to_owned()).to_string(),
            "unknown destination group \"sales\\u{1b}\""
        );
    }
}
