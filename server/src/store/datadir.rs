//! The data directory: one folder holds all of a server's state.
//!
//! ```text
//! DATA/
//!   groups/*.rec     destination group files (the seed's format; edit them freely)
//!   imagecast.db     devices, users, distributions, deliveries, journal (SQLite, WAL)
//!   spool/           accepted images until every destination has them
//!   tls/             the server's key and certificate
//!   demo-tokens.txt  with `init --demo`: every demo device's token
//! ```
//!
//! Everything in it is its owner's only ([`files`]): `check` names what other local users
//! may read or write ([`DataDir::open_to_others`]).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{db, files, tls};
use crate::groups::{ALL_FILE, GroupError, RecFile};

/// A data directory: only paths, so it is cheap to make and pass around; nothing is read
/// until a method asks.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// The name of "all distribution destinations".
pub const ALL_GROUP_NAME: &str = "all distribution destinations";

/// The file that lists every demo device's token ("domain token" a line), written by
/// `init --demo` and `imagecast demo`.
pub const DEMO_TOKENS_FILE: &str = "demo-tokens.txt";

/// A file or folder of the data directory that other local users may read or write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenToOthers {
    /// The file or folder.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// The mode it should have: `0700` for a folder, `0600` for a file.
    pub private: u32,
}

impl fmt::Display for OpenToOthers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: warning: other users may read or write it (mode {:04o}); run chmod {:o} {}",
            self.path.display(),
            self.mode,
            self.private,
            self.path.display()
        )
    }
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `groups/`: the `.rec` files, the operator's to edit.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    /// `imagecast.db`: accounts, the queue and the journal.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("imagecast.db")
    }

    /// `tls/`: the server's key and certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// `spool/`: accepted images until every destination has them.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Fails with a helpful sentence unless `init` has run here.
    pub fn check_exists(&self) -> anyhow::Result<()> {
        if !self.db_path().is_file() || !self.groups_dir().is_dir() {
            bail!(
                "{} is not an imagecast data directory; create it with `imagecast-server init --data-dir {}`",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }

    /// The parts that hold secrets or documents (the folder itself, the database, the spool,
    /// the TLS key, `demo-tokens.txt`) that other local users may read or write; what does not
    /// exist is skipped.
    pub fn open_to_others(&self) -> Vec<OpenToOthers> {
        let db = self.db_path().into_os_string();
        let with = |suffix: &str| {
            let mut p = db.clone();
            p.push(suffix);
            PathBuf::from(p)
        };
        let checked = [
            (self.root.clone(), files::PRIVATE_DIR),
            (self.db_path(), files::PRIVATE_FILE),
            (with("-wal"), files::PRIVATE_FILE),
            (with("-shm"), files::PRIVATE_FILE),
            (self.spool_dir(), files::PRIVATE_DIR),
            (tls::files(&self.tls_dir()).1, files::PRIVATE_FILE),
            (self.root.join(DEMO_TOKENS_FILE), files::PRIVATE_FILE),
        ];
        checked
            .into_iter()
            .filter_map(|(path, private)| {
                let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
                (mode & 0o077 != 0).then_some(OpenToOthers {
                    path,
                    mode,
                    private,
                })
            })
            .collect()
    }

    /// Opens a database connection for a command-line operation.
    pub fn connect(&self) -> anyhow::Result<rusqlite::Connection> {
        self.check_exists()?;
        db::open_connection(&self.db_path())
            .with_context(|| format!("cannot open {}", self.db_path().display()))
    }

    /// Creates the data directory: its folders, the TLS identity, the database, and `all.rec`
    /// listing `destinations` (domain, destination name) unless the operator put one there
    /// already. Returns the fingerprint of the new certificate.
    pub fn init(&self, destinations: &[(&str, &str)]) -> anyhow::Result<String> {
        if self.db_path().exists() {
            bail!(
                "{} is already an imagecast data directory; nothing was changed",
                self.root.display()
            );
        }
        for dir in [self.root.clone(), self.groups_dir(), self.spool_dir()] {
            files::create_private_dir(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let all = self.groups_dir().join(ALL_FILE);
        let fingerprint = tls::create(&self.tls_dir(), &[])?;
        // Created empty for its owner only before SQLite opens it: its -wal and -shm files
        // take its mode.
        files::create_private_file(&self.db_path())
            .with_context(|| format!("cannot create {}", self.db_path().display()))?;
        db::open_connection(&self.db_path())?;
        if !all.exists() {
            let mut text = format!("# {ALL_GROUP_NAME}\n# {ALL_FILE}\n");
            for (domain, name) in destinations {
                text.push_str(&format!("{domain};{name}\n"));
            }
            files::write_atomic(&all, text.as_bytes())?;
        }
        Ok(fingerprint)
    }

    /// Adds `domain;name` to `all.rec` unless the domain is listed there already.
    /// Returns true when the file changed.
    pub fn add_to_all(&self, domain: &str, name: &str) -> anyhow::Result<bool> {
        let path = self.groups_dir().join(ALL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("# {ALL_GROUP_NAME}\n# {ALL_FILE}\n").into_bytes()
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let file = RecFile::parse(ALL_FILE, &bytes).map_err(GroupError::Malformed)?;
        let (new, changed) = file.with_member_added(domain, name)?;
        if changed {
            files::write_atomic(&path, &new.to_bytes())?;
        }
        Ok(changed)
    }
}
