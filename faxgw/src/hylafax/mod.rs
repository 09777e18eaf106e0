//! The `hylafax` line driver: a real fax server behind the gateway. HylaFAX reaches analog
//! modems, IAX and T.38 lines; the gateway drives it through its client protocol (hfaxd,
//! TCP port 4559), the FTP-like protocol HylaFAX's own `sendfax` and `faxstat` use.
//!
//! # Layout
//! - [`client`]: [`client::Session`], one logged-in hfaxd connection: commands and replies
//!   ([`reply`]), passive data connections over the control connection's peer address,
//!   uploads (STOT), downloads (RETR), listings (LIST), jobs (JNEW/JPARM/JSUBM/JKILL/JDELE).
//! - [`qfile`]: a job's queue file (`sendq/qN`, `doneq/qN`, see sendq(5)), read to follow it.
//! - [`status`]: HylaFAX's job states and status codes mapped to the gateway's
//!   [`CallProgress`](crate::sim::CallProgress) and [`CallResult`](crate::sim::CallResult).
//! - [`recvq`]: the receive queue: listing, the sender's TSI and caller ID of a received fax.
//! - [`line`](mod@line): [`HylafaxLine`], the driver: [`HylafaxLine::dial`] has the shape of
//!   [`crate::sim::Line::dial`]; [`HylafaxLine::poll_received`] and
//!   [`HylafaxLine::remove_received`] fetch received faxes.
//!
//! # A call
//! [`HylafaxLine::dial`] writes the pages from `options.first_page` on as one fax TIFF
//! ([`crate::tiff::write_fax_tiff`], Group 3 one-dimensional), and in one session: `TYPE I`,
//! `FORM TIFF`, `STOT` (the server names the file `/tmp/docN.tif`; it lives as long as the
//! session), `JNEW`, `JPARM` SENDTIME NOW, LASTTIME (how long HylaFAX may wait for a free
//! modem), DIALSTRING, MAXDIALS 1, MAXTRIES 1 (retries are the supervisor's), NOTIFY NONE,
//! VRES, DOCUMENT (linked into `docq/`), `JSUBM`. It then reads the job's queue file with
//! `RETR sendq/qN` (then `doneq/qN`) every poll interval: reading the file is immune to
//! hfaxd's per-session job cache, which misses a change made in the second it last looked.
//! The first ACTIVE state reports `Dialling`; each page HylaFAX counts as sent reports
//! `PageConfirmed` (and `SendingPage` for the next one); DONE is `sent`, FAILED maps its
//! status code (1 busy, 3 and 11 no answer, 130–133 a page error at the first page not
//! sent, others failed with HylaFAX's reason). The finished job is removed (`JDELE`);
//! its document copy in `docq/` is HylaFAX's `faxqclean`'s to remove. A job still unfinished
//! when [`HylafaxConfig::job_timeout`] runs out is killed (`JKILL`) and removed, and the call
//! fails with `timed out`; so is the job of a dial that is dropped before its end (the
//! gateway hangs up its calls when it loses the supervisor), in a background task.
//!
//! # Reception
//! [`HylafaxLine::poll_received`] lists `recvq/` (`RCVFMT "%f|%p|%z|%n"`), skips faxes still
//! being received, and fetches each with `RETR`; the sender's TSI and caller ID come from the
//! TIFF's ImageDescription (`TSI\nNUMBER\nNAME`, as faxgetty writes it). A fax stays in the
//! queue until [`HylafaxLine::remove_received`] (`DELE`) is called, so a fax is delivered at
//! least once: the caller removes it once it is stored safely. Received faxes are mode 0600
//! by default (`RecvFileMode`), so only a client with administrative privileges sees them:
//! the driver sends `ADMIN` when an admin password is configured.
//!
//! # Credentials and safety
//! The password comes from `IMAGECAST_HYLAFAX_PASSWORD` and the admin password from
//! `IMAGECAST_HYLAFAX_ADMIN_PASSWORD` ([`HylafaxConfig::from_env`]); neither is ever logged
//! or shown (`PASS ****` in errors, a `Debug` that hides them). Every step has a timeout;
//! reply lines, replies, listings and files are bounded; text from the server is escaped
//! ([`imagecast_shared::text::escape_bounded`]) before it is logged or put into a reason.
//!
//! # In the gateway
//! `imagecast-faxgw run ... --line hylafax --hylafax HOST:PORT --hylafax-user USER` builds a
//! [`HylafaxConfig`] with [`HylafaxConfig::from_env`] (the job timeout from
//! `--hylafax-job-timeout`), calls [`HylafaxLine::check`] once at start-up (failing early on
//! a wrong address or password), and runs the gateway on
//! [`crate::driver::Driver::Hylafax`]: calls go through [`HylafaxLine::dial`] like a sim
//! [`crate::sim::Line::dial`]; a task polls [`HylafaxLine::poll_received`] every
//! `--hylafax-poll` seconds, keeps each fax in the spool ([`crate::kept`]) under a stable
//! ID, and [`HylafaxLine::remove_received`] is called once the supervisor stored it.

pub mod client;
mod error;
pub mod line;
pub mod qfile;
pub mod recvq;
pub mod reply;
pub mod status;

pub use error::HylafaxError;
pub use line::{HylafaxConfig, HylafaxLine};
pub use recvq::ReceivedFax;

/// hfaxd's port for the HylaFAX client protocol.
pub const DEFAULT_PORT: u16 = 4559;
/// The environment variable that holds the HylaFAX user's password.
pub const PASSWORD_ENV: &str = "IMAGECAST_HYLAFAX_PASSWORD";
/// The environment variable that holds the password for administrative privileges.
pub const ADMIN_PASSWORD_ENV: &str = "IMAGECAST_HYLAFAX_ADMIN_PASSWORD";
