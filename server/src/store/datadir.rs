//! The data directory: one folder holds all of a server's state.
//!
//! ```text
//! DATA/
//!   groups/*.rec     destination group files (the seed's format; edit them freely)
//!   imagecast.db     devices, users, distributions, deliveries, journal (SQLite, WAL)
//!   spool/           accepted images until every destination has them
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{db, files, tls};
use crate::groups::{ALL_FILE, GroupError, RecFile};

/// A data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// The name of "all distribution destinations".
pub const ALL_GROUP_NAME: &str = "all distribution destinations";

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `groups/`.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    /// `imagecast.db`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("imagecast.db")
    }

    /// `tls/`: the server's key and certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// `spool/`.
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
        std::fs::create_dir_all(self.groups_dir())
            .with_context(|| format!("cannot create {}", self.groups_dir().display()))?;
        std::fs::create_dir_all(self.spool_dir())
            .with_context(|| format!("cannot create {}", self.spool_dir().display()))?;
        let all = self.groups_dir().join(ALL_FILE);
        let fingerprint = tls::create(&self.tls_dir(), &[])?;
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
