//! A real HylaFAX server for tests: Debian's `hylafax-server` on 127.0.0.1:4559, a test
//! user with a password and an admin password in `hosts.hfaxd`, and received faxes put into
//! its receive queue the way faxgetty stores them. Shared by the driver's test
//! (`faxgw/tests/hylafax.rs`, which includes this file with `#[path]`) and the end-to-end
//! test (`tests/tests/e2e/fax_hylafax.rs`); std only, so both crates build it.
//!
//! [`Testbed::start`] needs root: without it, it returns `None` after saying why, unless the
//! `CI` environment variable is set, where it fails. It holds a lock
//! (`/tmp/imagecast-hylafax-test.lock`) for as long as it lives, so two tests (in one test
//! binary or in two) never use HylaFAX at the same time. When hfaxd is not running it starts
//! HylaFAX with `/etc/init.d/hylafax start` and `BINDTO="-l 127.0.0.1"`, and stops it again
//! when dropped; a running HylaFAX is used as it is. Everything it changes is put back when
//! dropped: `hosts.hfaxd` (bytes and times), `recvq/seqf`, the faxes it put into `recvq/`,
//! the test user's jobs and their documents in `docq/`.

use std::fs;
use std::io::{Read, Seek, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// HylaFAX's spool.
pub const SPOOL: &str = "/var/spool/hylafax";
/// hfaxd.
pub const HFAXD: &str = "/usr/sbin/hfaxd";
/// faxq.
pub const FAXQ: &str = "/usr/sbin/faxq";
/// Debian's init script.
pub const INIT: &str = "/etc/init.d/hylafax";
/// Where hfaxd listens for the tests.
pub const ADDR: &str = "127.0.0.1:4559";
/// The tests' HylaFAX user.
pub const USER: &str = "imagecast-test";
/// Its fax uid (the group of the files hfaxd creates for it).
pub const FAX_UID: u32 = 4242;

const LOCK: &str = "/tmp/imagecast-hylafax-test.lock";
const SYSTEMD_START: [&str; 4] = ["start", "hylafax.service", "faxq.service", "hfaxd.service"];

/// Whether systemd runs this machine (Debian's init script then refuses to run).
fn systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether a process named `name` runs (its /proc/PID/comm).
fn running(name: &str) -> bool {
    fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .any(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
}

fn listening() -> bool {
    TcpStream::connect_timeout(&ADDR.parse().expect("address"), Duration::from_millis(500)).is_ok()
}

/// Fails the test with the package to install when `path` (a path or a command) is missing.
pub fn need_program(path: &str, package: &str) {
    let found = if path.starts_with('/') {
        Path::new(path).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {path}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        found,
        "{path} is missing: install the Debian package {package} \
         (`bash scripts/test` installs it, see faxgw/ci-packages.txt)"
    );
}

/// Runs a command that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// HylaFAX running for the test; stops what it started when dropped.
struct Server {
    started_init: bool,
    hfaxd: Option<Child>,
}

impl Server {
    fn start() -> Server {
        let mut server = Server {
            started_init: false,
            hfaxd: None,
        };
        if listening() {
            return server;
        }
        if !running("faxq") && !running("hfaxd") {
            if systemd() {
                // Untested here (no systemd on the CI machines): the units bind hfaxd as
                // /etc/hylafax/hfaxd.systemd.conf says.
                run(Command::new("systemctl").args(SYSTEMD_START));
            } else {
                run(Command::new(INIT)
                    .arg("start")
                    .env("BINDTO", "-l 127.0.0.1")
                    .env("USE_FAXGETTY", "no"));
            }
            server.started_init = true;
        } else {
            // faxq runs but hfaxd does not listen: run one of our own.
            server.hfaxd = Some(
                Command::new(HFAXD)
                    .args(["-d", "-l", "127.0.0.1", "-i", "4559"])
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("start hfaxd"),
            );
        }
        let until = Instant::now() + Duration::from_secs(30);
        while !listening() {
            assert!(
                Instant::now() < until,
                "hfaxd does not listen on {ADDR} 30 s after starting HylaFAX"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.hfaxd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.started_init {
            let mut stop = if systemd() {
                let mut c = Command::new("systemctl");
                c.arg("stop").args(&SYSTEMD_START[1..]);
                c
            } else {
                let mut c = Command::new(INIT);
                c.arg("stop");
                c
            };
            let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// A file put back as it was (bytes and times, or removed) when dropped.
struct Restore {
    path: PathBuf,
    old: Option<(Vec<u8>, SystemTime, SystemTime)>,
}

impl Restore {
    fn save(path: &Path) -> Restore {
        let old = fs::metadata(path).ok().map(|m| {
            let bytes = fs::read(path).expect("read a file to restore later");
            (
                bytes,
                m.accessed().expect("atime"),
                m.modified().expect("mtime"),
            )
        });
        Restore {
            path: path.to_owned(),
            old,
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        match &self.old {
            None => {
                let _ = fs::remove_file(&self.path);
            }
            Some((bytes, atime, mtime)) => {
                // Written in place: the inode, owner and mode stay.
                if let Ok(mut f) = fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&self.path)
                {
                    let _ = f.write_all(bytes);
                    let times = fs::FileTimes::new()
                        .set_accessed(*atime)
                        .set_modified(*mtime);
                    let _ = f.set_times(times);
                }
            }
        }
    }
}

/// The test user's documents in `docq/` (their group is its fax uid; removing them is
/// faxqclean's job otherwise).
pub fn test_documents() -> Vec<PathBuf> {
    fs::read_dir(Path::new(SPOOL).join("docq"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.gid() == FAX_UID))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The queue files (`sendq/qN`, `doneq/qN`) of the test user's jobs.
pub fn queue_files_of_test_user() -> Vec<PathBuf> {
    ["sendq", "doneq"]
        .iter()
        .flat_map(|q| fs::read_dir(Path::new(SPOOL).join(q)).into_iter().flatten())
        .flatten()
        .filter(|e| {
            fs::read_to_string(e.path())
                .is_ok_and(|t| t.lines().any(|l| l == format!("owner:{USER}")))
        })
        .map(|e| e.path())
        .collect()
}

/// Rewrites a file in place, so its inode, owner and mode stay.
fn write_in_place(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A crypt(3) SHA-512 hash of `password`, as hosts.hfaxd holds them (perl is Essential in
/// Debian and uses the same crypt as hfaxd).
pub fn crypt(password: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let salt: String = format!("{nanos:x}{}", std::process::id())
        .chars()
        .take(16)
        .collect();
    let hash = run(Command::new("perl").args([
        "-e",
        "print crypt($ARGV[0], $ARGV[1])",
        password,
        &format!("$6${salt}$"),
    ]));
    assert!(hash.starts_with("$6$"), "perl's crypt gave {hash:?}");
    hash
}

/// HylaFAX ready for one test; see the module documentation. Dropped: everything put back.
pub struct Testbed {
    /// The test user's password (IMAGECAST_HYLAFAX_PASSWORD).
    pub password: String,
    /// Its admin password (IMAGECAST_HYLAFAX_ADMIN_PASSWORD).
    pub admin_password: String,
    received: Vec<PathBuf>,
    // Dropped in this order: the spool's files, then the server, then the lock.
    _seqf: Restore,
    _hosts: Restore,
    _server: Server,
    _lock: fs::File,
}

impl Testbed {
    /// HylaFAX running on [`ADDR`] with [`USER`] admitted from 127.0.0.1 with a new password
    /// and admin password; `None` (after saying why) when not root and `CI` is not set.
    pub fn start() -> Option<Testbed> {
        if !is_root() {
            let why = format!(
                "the HylaFAX test needs root (it edits {SPOOL}/etc/hosts.hfaxd and puts \
                 faxes into {SPOOL}/recvq)"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}; CI must run it as root"
            );
            eprintln!("skipped: {why}; CI runs it as root");
            return None;
        }
        need_program(HFAXD, "hylafax-server");
        need_program(FAXQ, "hylafax-server");
        need_program(INIT, "hylafax-server");
        need_program("tiffcp", "libtiff-tools");
        need_program("tiffset", "libtiff-tools");
        need_program("perl", "perl-base");

        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .unwrap_or_else(|e| panic!("cannot open {LOCK}: {e}"));
        // flock: released by the kernel when the test process dies; per open file, so two
        // tests of one process exclude each other too.
        #[allow(clippy::incompatible_msrv)] // the faxgw crate these tests build needs 1.89
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {LOCK}: {e}"));

        let server = Server::start();
        // What hfaxd reads: the spool's copy (or bind mount) of /etc/hylafax; under systemd
        // the bind mount is private to the service, and /etc/hylafax's file is the one.
        let hosts = [
            Path::new(SPOOL).join("etc/hosts.hfaxd"),
            PathBuf::from("/etc/hylafax/hosts.hfaxd"),
        ]
        .into_iter()
        .find(|p| p.exists())
        .expect("no hosts.hfaxd in /var/spool/hylafax/etc or /etc/hylafax: run faxsetup");
        // Entries a killed earlier run left behind go first; what is left is restored at
        // the end, before the server is stopped.
        let marker = format!("^{}@", USER.replace('-', "\\-"));
        let found = fs::read_to_string(&hosts).expect("read hosts.hfaxd");
        if found.lines().any(|l| l.starts_with(&marker)) {
            let kept: String = found
                .lines()
                .filter(|l| !l.starts_with(&marker))
                .map(|l| format!("{l}\n"))
                .collect();
            write_in_place(&hosts, kept.as_bytes());
        }
        // Jobs and documents a killed earlier run left behind.
        for f in queue_files_of_test_user()
            .into_iter()
            .chain(test_documents())
        {
            let _ = fs::remove_file(f);
        }
        let hosts_restore = Restore::save(&hosts);
        let seqf = Restore::save(&Path::new(SPOOL).join("recvq/seqf"));

        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let password = format!("pw-{}-{nanos}", std::process::id());
        let admin_password = format!("admin-{}-{nanos}", std::process::id());
        let entry = format!(
            "{marker}127\\.0\\.0\\.1$:{FAX_UID}:{}:{}\n",
            crypt(&password),
            crypt(&admin_password)
        );
        let mut content = entry.into_bytes();
        content.extend(fs::read(&hosts).expect("read hosts.hfaxd"));
        write_in_place(&hosts, &content);
        assert_eq!(
            fs::metadata(&hosts).expect("hosts.hfaxd").mode() & 0o077,
            0,
            "hfaxd ignores a hosts.hfaxd that others may read"
        );
        Some(Testbed {
            password,
            admin_password,
            received: Vec::new(),
            _seqf: seqf,
            _hosts: hosts_restore,
            _server: server,
            _lock: lock,
        })
    }

    /// Puts `tiff` into the receive queue the way faxgetty stores a received fax: the next
    /// number from `recvq/seqf` (taken under its lock), `faxNNNNNNNNN.tif`, owned by the fax
    /// user (the owner of `recvq/`), mode 0600 (RecvFileMode's default). Removed when the
    /// test bed is dropped, if still there.
    pub fn put_received(&mut self, tiff: &[u8]) -> PathBuf {
        let recvq = Path::new(SPOOL).join("recvq");
        let mut seqf = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(recvq.join("seqf"))
            .expect("open recvq/seqf");
        #[allow(clippy::incompatible_msrv)] // see above
        seqf.lock().expect("lock recvq/seqf");
        let mut text = String::new();
        seqf.read_to_string(&mut text).expect("read recvq/seqf");
        let mut n: u64 = text.trim().parse().unwrap_or(1).max(1);
        let path = loop {
            let p = recvq.join(format!("fax{n:09}.tif"));
            n += 1;
            if !p.exists() {
                break p;
            }
        };
        seqf.set_len(0).expect("truncate seqf");
        seqf.rewind().expect("rewind seqf");
        write!(seqf, "{n}").expect("write seqf");
        #[allow(clippy::incompatible_msrv)] // see above
        seqf.unlock().expect("unlock seqf");
        self.put_as(&path, tiff);
        path
    }

    /// Puts `tiff` into the receive queue as `path` (a `recvq/faxNNNNNNNNN.tif`), as
    /// [`Testbed::put_received`] does: e.g. a fax whose removal was lost. Removed when the
    /// test bed is dropped, if still there.
    pub fn put_as(&mut self, path: &Path, tiff: &[u8]) {
        let recvq = Path::new(SPOOL).join("recvq");
        assert!(path.parent() == Some(recvq.as_path()), "{}", path.display());
        let owner = fs::metadata(&recvq).expect("recvq");
        if !self.received.iter().any(|p| p == path) {
            self.received.push(path.to_owned());
        }
        // Written under another name and renamed: the queue's listing never shows it half
        // written.
        let part = recvq.join(format!(".{}.part", std::process::id()));
        fs::write(&part, tiff).expect("write the received fax");
        fs::set_permissions(&part, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&part, Some(owner.uid()), Some(owner.gid())).expect("chown");
        fs::rename(&part, path).expect("rename the received fax");
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for f in &self.received {
            let _ = fs::remove_file(f);
        }
        // After a failure: the test's jobs, then their documents.
        for f in queue_files_of_test_user() {
            let _ = fs::remove_file(f);
        }
        for f in test_documents() {
            let _ = fs::remove_file(f);
        }
    }
}
