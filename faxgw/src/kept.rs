//! The gateway's received faxes that the supervisor has not acknowledged yet: one fax TIFF
//! and one TOML description per fax in the `--spool` folder, written durably before the
//! upload begins and removed only once the supervisor answered that it stored the fax.
//!
//! ```text
//! SPOOL/ID.tif    the fax: one page per confirmed page, in the call's coding
//! SPOOL/ID.toml   its FaxReception (caller, station, pages, ...); written last
//! ```
//!
//! A fax exists once its `.toml` does: both files are written to a hidden `.NAME.part`,
//! fsynced and renamed, the TIFF first, and the folder fsynced. Part files a crash left
//! behind, and a TIFF without its description, are removed when the folder is opened.

use std::path::{Path, PathBuf};

use imagecast_shared::fax::FaxReception;
use tokio::sync::Notify;

use crate::coding::Coding;
use crate::page::FaxPage;
use crate::sim::{IncomingCall, Reception};
use crate::tiff::write_fax_tiff;

/// Why a received fax could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The pages could not be written as a TIFF.
    #[error(transparent)]
    Tiff(#[from] crate::tiff::FaxTiffError),
    /// A description could not be written or read.
    #[error("{path}: {reason}")]
    Toml {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeptError + '_ {
    move |source| KeptError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A received fax waiting for the supervisor's acknowledgement.
#[derive(Clone, Debug)]
pub struct KeptFax {
    /// Its description; `reception` is its ID.
    pub fax: FaxReception,
    /// The fax TIFF.
    pub tiff: PathBuf,
}

/// The spool folder of received faxes. See the module documentation.
#[derive(Debug)]
pub struct Kept {
    dir: PathBuf,
    added: Notify,
}

impl Kept {
    /// Opens (creating, owner-only) the folder and removes what a crash left half written.
    pub fn open(dir: &Path) -> Result<Kept, KeptError> {
        imagecast_shared::private::create_dir_all(dir).map_err(io(dir))?;
        for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let orphan_tiff = name.ends_with(".tif") && !path.with_extension("toml").exists();
            if (name.starts_with('.') && name.ends_with(".part")) || orphan_tiff {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(Kept {
            dir: dir.to_owned(),
            added: Notify::new(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the confirmed pages of `call` durably; `None` when it delivered no page.
    pub fn keep(
        &self,
        call: &IncomingCall,
        at_ms: i64,
        speed: u32,
    ) -> Result<Option<KeptFax>, KeptError> {
        if call.pages.is_empty() {
            return Ok(None);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id = format!(
            "{}-{:09}-{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        );
        let fax = FaxReception {
            reception: id,
            caller: call.caller.clone(),
            called: call.called.clone(),
            station: call.remote_station.clone(),
            pages: call.pages.len() as u32,
            coding: call.coding.name().to_owned(),
            ecm: call.ecm,
            speed,
            duration_ms: call.duration.as_millis() as u64,
            at_ms,
            reason: match &call.reception {
                Reception::Complete => String::new(),
                Reception::PageRejected { page, reason } => {
                    format!("page {page} rejected: {reason}")
                }
                Reception::Dropped(reason) => format!("dropped: {reason}"),
            },
            bytes: 0,
        };
        self.keep_pages(fax, &call.pages, call.coding).map(Some)
    }

    /// Keeps `pages` durably as a fax TIFF in `coding`, described by `fax` (its `reception`
    /// is the ID, a file name: letters, digits, `-` and `_`; its `bytes` is set here).
    pub fn keep_pages(
        &self,
        mut fax: FaxReception,
        pages: &[FaxPage],
        coding: Coding,
    ) -> Result<KeptFax, KeptError> {
        let id = fax.reception.clone();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(KeptError::Toml {
                path: id,
                reason: "a reception ID is letters, digits, - and _".into(),
            });
        }
        let bytes = write_fax_tiff(pages, coding)?;
        fax.bytes = bytes.len() as u64;
        let tiff = self.dir.join(format!("{id}.tif"));
        write_durably(&self.dir, &tiff, &bytes)?;
        let text = toml::to_string(&fax).map_err(|e| KeptError::Toml {
            path: id.clone(),
            reason: e.to_string(),
        })?;
        write_durably(
            &self.dir,
            &self.dir.join(format!("{id}.toml")),
            text.as_bytes(),
        )?;
        self.added.notify_one();
        Ok(KeptFax { fax, tiff })
    }

    /// True when the fax `id` is kept (not yet acknowledged by the supervisor).
    pub fn contains(&self, id: &str) -> bool {
        self.dir.join(format!("{id}.toml")).exists()
    }

    /// Every fax kept, oldest first.
    pub fn list(&self) -> Result<Vec<KeptFax>, KeptError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .flatten()
        {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let fax: FaxReception = toml::from_str(&text).map_err(|e| KeptError::Toml {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            out.push(KeptFax {
                fax,
                tiff: path.with_extension("tif"),
            });
        }
        out.sort_by(|a, b| a.fax.reception.cmp(&b.fax.reception));
        Ok(out)
    }

    /// Forgets a fax the supervisor stored: its description first, then its TIFF.
    pub fn forget(&self, id: &str) -> Result<(), KeptError> {
        let meta = self.dir.join(format!("{id}.toml"));
        std::fs::remove_file(&meta).map_err(io(&meta))?;
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.tif")));
        Ok(())
    }

    /// Waits until a fax is kept (or was kept since the last wait).
    pub async fn added(&self) {
        self.added.notified().await;
    }
}

/// Writes `bytes` to `path` through a hidden part file: fsynced, renamed, folder fsynced.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), KeptError> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part = dir.join(format!(".{name}.part"));
    let mut f = imagecast_shared::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)
        .map_err(io(&part))?;
    f.write_all(bytes).map_err(io(&part))?;
    f.sync_all().map_err(io(&part))?;
    drop(f);
    std::fs::rename(&part, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::Resolution;

    fn call(pages: usize) -> IncomingCall {
        let mut page = FaxPage::white(Resolution::Standard, 40);
        page.set(5, 5, true);
        IncomingCall {
            caller: "5550199".into(),
            called: "5550101".into(),
            remote_station: "ACME".into(),
            pages: vec![page; pages],
            coding: Coding::Mh,
            ecm: false,
            reception: Reception::Complete,
            duration: std::time::Duration::from_millis(5),
        }
    }

    #[test]
    fn a_kept_fax_is_listed_until_forgotten_and_half_writes_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::open(dir.path()).unwrap();
        assert!(kept.keep(&call(0), 1, 14_400).unwrap().is_none());
        let k = kept.keep(&call(2), 1, 14_400).unwrap().unwrap();
        assert_eq!(k.fax.pages, 2);
        assert_eq!(k.fax.bytes, std::fs::metadata(&k.tiff).unwrap().len());
        let pages = crate::tiff::read_fax_tiff(&std::fs::read(&k.tiff).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(pages, call(2).pages);
        std::fs::write(dir.path().join(".x.tif.part"), b"half").unwrap();
        std::fs::write(dir.path().join("orphan.tif"), b"no description").unwrap();
        let kept = Kept::open(dir.path()).unwrap();
        let list = kept.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].fax, k.fax);
        assert!(!dir.path().join(".x.tif.part").exists());
        assert!(!dir.path().join("orphan.tif").exists());
        kept.forget(&k.fax.reception).unwrap();
        assert!(kept.list().unwrap().is_empty());
        assert!(!k.tiff.exists());
    }
}
