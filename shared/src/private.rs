//! Files and folders that only their owner may read: a terminal's trays, inbox and image store
//! hold scanned documents, and its config holds a device token.
//!
//! Everything the terminal creates goes through [`create_dir_all`] (folders 0700) and
//! [`open_options`] (files 0600). An operator who wants the trays readable by a group (a
//! print room's shared folder, say) sets `IMAGECAST_SHARED_FILES=1`: new folders and files are
//! then created with the usual 0777/0666, less the process's umask. Folders that exist already
//! keep their mode: the operator chose it.

use std::io;
use std::path::Path;

/// The environment variable that makes new files follow the umask instead of being private.
pub const SHARED_FILES_ENV: &str = "IMAGECAST_SHARED_FILES";

/// True unless the operator asked for shared files (`IMAGECAST_SHARED_FILES=1`).
pub fn private() -> bool {
    static PRIVATE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRIVATE.get_or_init(|| {
        !std::env::var(SHARED_FILES_ENV)
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
    })
}

/// Creates `dir` and its missing parents, owner-only (see the module doc).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    if private() {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates one folder, owner-only; fails if it exists (like [`std::fs::create_dir`]).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    if private() {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Open options whose newly created files are owner-only (see the module doc); set `write`,
/// `create`, `append` and the rest as usual.
pub fn open_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    if private() {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates (or truncates) `path` owner-only and writes `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?
        .write_all(bytes)
}

/// The permission bits of `path` that let others than its owner read or write it, if any:
/// for a warning like ssh's about a key file others can read.
pub fn readable_by_others(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let file = nested.join("page.png");
        write(&file, b"scan").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(readable_by_others(&file).unwrap(), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(readable_by_others(&file).unwrap(), Some(0o644));
    }
}
