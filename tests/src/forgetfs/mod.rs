//! A file system that forgets: a FUSE file system in memory that makes writes durable only
//! when they are fsynced, and on a simulated power loss drops, as a real disk may, any subset
//! of what was not (see [`model`] for exactly what survives which fsync).
//!
//! ```text
//! let mut fs = ForgetFs::mount(&dir)?;        // an empty file system at `dir`
//! ... programs work in `dir` ...
//! // every program using `dir` is stopped (killed), then:
//! let report = fs.power_loss(&mut Losses::seeded(seed, Severity::Random))?;
//! ... `dir` holds what survived; programs start again ...
//! ```
//!
//! It needs root (it mounts with the `mount` system call, so no `fusermount3` and no libfuse)
//! and `/dev/fuse`: [`ForgetFs::available`] says whether this machine has them.

pub mod fuse;
pub mod loss;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use loss::{DataFate, Losses, Severity};
pub use model::{LossReport, Model};

/// What can go wrong with a [`ForgetFs`].
#[derive(Debug, thiserror::Error)]
pub enum ForgetFsError {
    /// Mounting failed.
    #[error("cannot mount the forgetting file system on {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// Unmounting failed, even lazily.
    #[error("cannot unmount the forgetting file system from {path}: {reason}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file could not be copied in.
    #[error("cannot copy {path} into the forgetting file system: {source}")]
    Copy {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// A mounted forgetting file system.
pub struct ForgetFs {
    mountpoint: PathBuf,
    model: Arc<Mutex<Model>>,
    session: Option<fuser::BackgroundSession>,
    /// The kernel's number for the mounted connection (its folder under
    /// `/sys/fs/fuse/connections/`).
    connection: Option<u64>,
    live: Arc<AtomicBool>,
    mounts: u64,
}

impl ForgetFs {
    /// Whether this machine can mount one: `Err` says why not (not root, no `/dev/fuse`).
    pub fn available() -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid());
        if uid.as_ref().ok() != Some(&0) {
            return Err(format!("not running as root (uid {uid:?})"));
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map(drop)
            .map_err(|e| format!("/dev/fuse cannot be opened: {e}"))
    }

    /// Mounts an empty file system (root folder mode 0755) on `mountpoint`, an existing
    /// empty folder.
    pub fn mount(mountpoint: &Path) -> Result<Self, ForgetFsError> {
        let mut fs = Self {
            mountpoint: mountpoint.to_owned(),
            model: Arc::new(Mutex::new(Model::new())),
            session: None,
            connection: None,
            live: Arc::new(AtomicBool::new(true)),
            mounts: 0,
        };
        fs.attach()?;
        Ok(fs)
    }

    fn attach(&mut self) -> Result<(), ForgetFsError> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("forgetfs".into()),
            fuser::MountOption::Subtype("forgetfs".into()),
        ];
        self.live = Arc::new(AtomicBool::new(true));
        let adapter = fuse::Adapter {
            model: self.model.clone(),
            live: self.live.clone(),
        };
        let session = fuser::spawn_mount(adapter, &self.mountpoint, &config).map_err(|source| {
            ForgetFsError::Mount {
                path: self.mountpoint.clone(),
                source,
            }
        })?;
        self.session = Some(session);
        self.connection = connection_of(&self.mountpoint);
        self.mounts += 1;
        tracing::debug!(mountpoint = %self.mountpoint.display(), "forgetfs mounted");
        Ok(())
    }

    fn detach(&mut self) -> Result<(), ForgetFsError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let connection = self.connection.take();
        if let Err(e) = session.umount_and_join() {
            // Something still holds a file open: detach lazily, so that the mount point is
            // free for the next mount at once. First the connection is aborted: with its
            // server thread gone, a file closed later (at the latest when this process exits)
            // would wait for an answer forever and leave the process unkillable.
            tracing::warn!("forgetfs: unmount failed ({e}); aborting it and unmounting lazily");
            if let Some(c) = connection {
                abort_connection(c);
            }
            let out = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .output()
                .map_err(|e| ForgetFsError::Unmount {
                    path: self.mountpoint.clone(),
                    reason: e.to_string(),
                })?;
            if !out.status.success() {
                return Err(ForgetFsError::Unmount {
                    path: self.mountpoint.clone(),
                    reason: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        Ok(())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// How many times it was mounted (1 + power losses).
    pub fn mounts(&self) -> u64 {
        self.mounts
    }

    /// Unsynced changes waiting: (namespace operations, files with unsynced data).
    pub fn pending(&self) -> (usize, usize) {
        self.model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending()
    }

    /// The power goes out for the programs still using the file system: from now on every
    /// request fails with `EIO` (what was done before stays as it is, unsynced). Call
    /// [`ForgetFs::power_loss`] next.
    pub fn freeze(&self) {
        let _model = self.model.lock().unwrap_or_else(|e| e.into_inner());
        self.live.store(false, Ordering::SeqCst);
    }

    /// The power goes out (see [`ForgetFs::freeze`]): the file system is unmounted (the kernel's caches go with it),
    /// unsynced changes survive as `losses` decides, and it is mounted again. Every program
    /// using it must be stopped first.
    pub fn power_loss(&mut self, losses: &mut Losses) -> Result<LossReport, ForgetFsError> {
        self.freeze();
        self.detach()?;
        let report = self
            .model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .power_loss(losses);
        // Give the kernel a moment to release the old connection before mounting again.
        std::thread::sleep(Duration::from_millis(5));
        self.attach()?;
        Ok(report)
    }

    /// Copies the contents of `from` (files and folders, with their modes) into the mounted
    /// file system under `to` (a path inside it), and fsyncs every file and folder: all of it
    /// is durable.
    pub fn copy_in(&self, from: &Path, to: &Path) -> Result<(), ForgetFsError> {
        copy_tree(from, to)
    }
}

/// The FUSE connection behind a mount point: the minor number of its device, which names its
/// folder under `/sys/fs/fuse/connections/`.
fn connection_of(mountpoint: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mountpoint).ok()?.dev();
    // glibc's encoding of a device number; FUSE's have major 0, so the kernel's number is the
    // minor.
    Some((dev & 0xff) | ((dev >> 12) & !0xff))
}

/// Aborts a FUSE connection (every request waiting on it fails at once), mounting the FUSE
/// control file system first if it is not there.
fn abort_connection(connection: u64) {
    let root = Path::new("/sys/fs/fuse/connections");
    if !root.join(connection.to_string()).exists() {
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "none"])
            .arg(root)
            .output();
    }
    if let Err(e) = std::fs::write(root.join(connection.to_string()).join("abort"), b"1") {
        tracing::warn!("forgetfs: cannot abort FUSE connection {connection}: {e}");
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), ForgetFsError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| ForgetFsError::Copy { path, source }
    };
    let meta = std::fs::metadata(from).map_err(err(from))?;
    if !to.exists() {
        std::fs::create_dir(to).map_err(err(to))?;
    }
    std::fs::set_permissions(to, meta.permissions()).map_err(err(to))?;
    for entry in std::fs::read_dir(from).map_err(err(from))? {
        let entry = entry.map_err(err(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(err(&src))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&src).map_err(err(&src))?;
            let mode = entry.metadata().map_err(err(&src))?.permissions().mode();
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&dst)?;
                f.write_all(&bytes)?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                f.sync_all()
            };
            write().map_err(err(&dst))?;
        }
    }
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .map_err(err(to))?;
    if let Some(parent) = to.parent() {
        // The folder's own entry (ignored when the parent is outside the file system).
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(())
}

impl Drop for ForgetFs {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            tracing::warn!("{e}");
        }
    }
}
