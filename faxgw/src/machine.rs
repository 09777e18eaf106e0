//! A plain fax machine on the simulated network: it receives into a folder, or sends files to
//! one number and reports whether every page was confirmed.
//!
//! The inbox holds only received fax TIFFs: one multi-page TIFF per call that delivered at
//! least one confirmed page, named `fax-SECONDS-NANOS-from-CALLER.tif`, written owner-only
//! and atomically (a `.NAME.part` file renamed into place; part files left by a crash are
//! removed when the machine starts).

use std::path::{Path, PathBuf};

use crate::page::{FaxPage, PageError, Resolution, pages_from_file};
use crate::sim::{
    CallOutcome, CallProgress, Capabilities, DialOptions, Exchange, IncomingCall, Line, Reception,
    SimError,
};
use crate::tiff::{FaxTiffError, save_fax_tiff};

/// Errors of a fax machine outside the calls themselves.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The network refused something (the number is held, a bad number…).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A file to send could not be turned into fax pages.
    #[error(transparent)]
    Page(#[from] PageError),
    /// A received fax could not be stored.
    #[error(transparent)]
    Tiff(#[from] FaxTiffError),
    /// The inbox folder could not be prepared.
    #[error("inbox {path}: {source}")]
    Inbox {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Prepares `inbox`: creates it owner-only and removes part files a crash left behind.
pub fn prepare_inbox(inbox: &Path) -> Result<(), MachineError> {
    let err = |source| MachineError::Inbox {
        path: inbox.display().to_string(),
        source,
    };
    imagecast_shared::private::create_dir_all(inbox).map_err(err)?;
    for entry in std::fs::read_dir(inbox).map_err(err)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Stores the confirmed pages of `call` in `inbox` as one fax TIFF in the call's coding;
/// `None` when the call delivered no page.
pub fn store_call(inbox: &Path, call: &IncomingCall) -> Result<Option<PathBuf>, MachineError> {
    if call.pages.is_empty() {
        return Ok(None);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let caller = imagecast_shared::text::safe_file_name(&call.caller).replace(['/', '.'], "_");
    let path = inbox.join(format!(
        "fax-{}-{:09}-from-{caller}.tif",
        now.as_secs(),
        now.subsec_nanos()
    ));
    save_fax_tiff(&path, &call.pages, call.coding)?;
    Ok(Some(path))
}

/// One line describing a received call, station ID escaped.
pub fn describe_call(call: &IncomingCall, stored: Option<&Path>) -> String {
    let station = imagecast_shared::text::escape(&call.remote_station);
    let how = match &call.reception {
        Reception::Complete => "complete".to_string(),
        Reception::PageRejected { page, reason } => format!("page {page} rejected: {reason}"),
        Reception::Dropped(reason) => format!("dropped: {reason}"),
    };
    let stored = stored.map_or("nothing stored".to_string(), |p| {
        format!("stored as {}", p.display())
    });
    format!(
        "fax from {} \"{station}\": {} pages ({}{}), {how}; {stored}",
        call.caller,
        call.pages.len(),
        call.coding.name(),
        if call.ecm { ", ECM" } else { "" },
    )
}

/// How long a stopping machine waits for the calls in progress to end.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Receives calls on `line` into `inbox` until `shutdown` completes, printing one line per
/// call. On shutdown it stops answering and lets the calls in progress finish (at most
/// [`SHUTDOWN_GRACE`]), so pages it confirmed are stored.
pub async fn receive(
    line: &Line,
    inbox: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), MachineError> {
    prepare_inbox(inbox)?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            call = line.accept() => store_and_tell(inbox, &call?),
        }
    }
    line.stop_answering();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while let Ok(Ok(call)) = tokio::time::timeout_at(deadline, line.accept()).await {
        store_and_tell(inbox, &call);
    }
    Ok(())
}

fn store_and_tell(inbox: &Path, call: &IncomingCall) {
    let stored = match store_call(inbox, call) {
        Ok(stored) => stored,
        Err(e) => {
            eprintln!("cannot store a fax from {}: {e}", call.caller);
            None
        }
    };
    println!("{}", describe_call(call, stored.as_deref()));
}

/// The fax pages of `files`, in order (each page of a multi-page TIFF is one page).
pub fn pages_of(files: &[PathBuf], resolution: Resolution) -> Result<Vec<FaxPage>, MachineError> {
    let mut pages = Vec::new();
    for file in files {
        pages.extend(pages_from_file(file, resolution)?);
    }
    Ok(pages)
}

/// Holds `number` just for one call and sends `pages` to `to` with `options`.
pub async fn send(
    exchange: &Exchange,
    number: &str,
    station: &str,
    caps: Capabilities,
    pages: &[FaxPage],
    to: &str,
    options: &DialOptions,
) -> Result<CallOutcome, MachineError> {
    let line = Line::register(exchange, number, station, caps, 1).await?;
    Ok(line.dial(to, pages, options).await?)
}

/// One line telling a step of a call to `to`, station ID escaped.
pub fn describe_progress(to: &str, step: &CallProgress) -> String {
    match step {
        CallProgress::Dialling => format!("{to}: dialling"),
        CallProgress::Connected {
            remote_station,
            coding,
            ecm,
        } => format!(
            "{to}: connected to \"{}\" ({}{})",
            imagecast_shared::text::escape(remote_station),
            coding.name(),
            if *ecm { " ECM" } else { "" }
        ),
        CallProgress::SendingPage { page, of } => format!("{to}: sending page {page} of {of}"),
        CallProgress::PageConfirmed { page } => format!("{to}: page {page} confirmed"),
    }
}
