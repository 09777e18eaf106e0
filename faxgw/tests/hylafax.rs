//! The HylaFAX line driver against a real hfaxd: Debian's `hylafax-server` (installed by
//! `bash scripts/test`, see faxgw/ci-packages.txt).
//!
//! Needs root (it edits the spool's `hosts.hfaxd` and puts a fax into `recvq/`); when not
//! root it prints why and skips. When hfaxd is not running it starts HylaFAX with
//! `/etc/init.d/hylafax start` with `BINDTO="-l 127.0.0.1"` (hfaxd then listens on
//! 127.0.0.1:4559 only), and stops it again at the end; a running HylaFAX is used as it is.
//! Everything it changes is put back: `hosts.hfaxd` (bytes and times), `recvq/seqf`, the
//! fax it put into `recvq/`, its jobs and their documents in `docq/`.
//!
//! With no modem configured, jobs stay queued (READY): the test checks submission (the
//! queue file and the document HylaFAX holds), status, removal, a dial that times out while
//! queued, logins, and the receive-queue fetch and removal.

use std::fs;
use std::io::{Read, Seek, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::hylafax::qfile::JobState;
use imagecast_faxgw::hylafax::{
    ADMIN_PASSWORD_ENV, HylafaxConfig, HylafaxError, HylafaxLine, PASSWORD_ENV,
};
use imagecast_faxgw::page::{FaxPage, Resolution};
use imagecast_faxgw::sim::{CallResult, DialOptions};

const SPOOL: &str = "/var/spool/hylafax";
const HFAXD: &str = "/usr/sbin/hfaxd";
const FAXQ: &str = "/usr/sbin/faxq";
const INIT: &str = "/etc/init.d/hylafax";
const ADDR: &str = "127.0.0.1:4559";
/// The test's HylaFAX user and its fax uid (the group of the files it creates).
const USER: &str = "imagecast-test";
const FAX_UID: u32 = 4242;

const SYSTEMD_START: [&str; 4] = ["start", "hylafax.service", "faxq.service", "hfaxd.service"];

/// Whether systemd runs this machine (Debian's init script then refuses to run).
fn systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn is_root() -> bool {
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

fn need_program(path: &str, package: &str) {
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

fn run(cmd: &mut Command) -> String {
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

/// Removes the test's leftovers from the spool when dropped: documents in `docq/` (their
/// group is the test user's fax uid; removing them is faxqclean's job otherwise) and a fax
/// it put into `recvq/`.
struct Leftovers {
    files: Vec<PathBuf>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for f in &self.files {
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

fn test_documents() -> Vec<PathBuf> {
    fs::read_dir(Path::new(SPOOL).join("docq"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.gid() == FAX_UID))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
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
fn crypt(password: &str) -> String {
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

/// A page with a recognisable pattern.
fn page(resolution: Resolution, seed: u32) -> FaxPage {
    let mut p = FaxPage::white(resolution, 120);
    for y in 0..120 {
        for x in 0..1728 {
            if (x / 16 + y / 8 + seed).is_multiple_of(5) {
                p.set(x, y, true);
            }
        }
    }
    p
}

fn queue_files_of_test_user() -> Vec<PathBuf> {
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

/// Puts `tiff` into the receive queue the way faxgetty stores a received fax: the next
/// number from `recvq/seqf` (taken under its lock), `faxNNNNNNNNN.tif`, owned by the fax
/// user (the owner of `recvq/`), mode 0600 (RecvFileMode's default).
fn put_received(tiff: &[u8]) -> PathBuf {
    let recvq = Path::new(SPOOL).join("recvq");
    let owner = fs::metadata(&recvq).expect("recvq");
    let mut seqf = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(recvq.join("seqf"))
        .expect("open recvq/seqf");
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
    seqf.unlock().expect("unlock seqf");
    fs::write(&path, tiff).expect("write the received fax");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown");
    path
}

#[test]
fn hylafax_driver_against_a_real_hfaxd() {
    if !is_root() {
        eprintln!(
            "skipped: the HylaFAX test needs root (it edits {SPOOL}/etc/hosts.hfaxd and \
             puts a fax into {SPOOL}/recvq); CI runs it as root"
        );
        return;
    }
    need_program(HFAXD, "hylafax-server");
    need_program(FAXQ, "hylafax-server");
    need_program(INIT, "hylafax-server");
    need_program("tiffcp", "libtiff-tools");
    need_program("tiffset", "libtiff-tools");
    need_program("perl", "perl-base");

    let _server = Server::start();
    // What hfaxd reads: the spool's copy (or bind mount) of /etc/hylafax; under systemd
    // the bind mount is private to the service, and /etc/hylafax's file is the one.
    let hosts = [
        Path::new(SPOOL).join("etc/hosts.hfaxd"),
        PathBuf::from("/etc/hylafax/hosts.hfaxd"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("no hosts.hfaxd in /var/spool/hylafax/etc or /etc/hylafax: run faxsetup");
    // Entries a killed earlier run left behind go first; what is left is restored at the
    // end, before the server is stopped (dropped in reverse order).
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
    let _hosts = Restore::save(&hosts);
    let _seqf = Restore::save(&Path::new(SPOOL).join("recvq/seqf"));
    let mut leftovers = Leftovers { files: Vec::new() };

    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let password = format!("pw-{}-{nanos}", std::process::id());
    let admin = format!("admin-{}", std::process::id());
    let entry = format!(
        "{marker}127\\.0\\.0\\.1$:{FAX_UID}:{}:{}\n",
        crypt(&password),
        crypt(&admin)
    );
    let mut content = entry.into_bytes();
    content.extend(fs::read(&hosts).expect("read hosts.hfaxd"));
    write_in_place(&hosts, &content);
    assert_eq!(
        fs::metadata(&hosts).expect("hosts.hfaxd").mode() & 0o077,
        0,
        "hfaxd ignores a hosts.hfaxd that others may read"
    );

    let base = HylafaxConfig::new(ADDR, USER).expect("config");
    let user_cfg = base
        .clone()
        .with_passwords_from(|k| (k == PASSWORD_ENV).then(|| password.clone()));
    let admin_cfg = user_cfg.clone().with_passwords_from(|k| match k {
        PASSWORD_ENV => Some(password.clone()),
        ADMIN_PASSWORD_ENV => Some(admin.clone()),
        _ => None,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Jobs a killed earlier run left behind.
        let line = HylafaxLine::new(user_cfg.clone());
        for q in queue_files_of_test_user() {
            let name = q.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(id) = name.strip_prefix('q') {
                line.remove(id)
                    .await
                    .expect("remove a job an earlier run left");
            }
        }
        logins(&base, &user_cfg, &password).await;
        submission_status_and_removal(&user_cfg).await;
        dial_times_out_while_queued(&user_cfg).await;
        receive_queue(&user_cfg, &admin_cfg, &mut leftovers).await;
    });
    assert!(
        queue_files_of_test_user().is_empty(),
        "jobs of the test are left in the queues: {:?}",
        queue_files_of_test_user()
    );
}

async fn logins(base: &HylafaxConfig, user_cfg: &HylafaxConfig, password: &str) {
    HylafaxLine::new(user_cfg.clone())
        .check()
        .await
        .expect("log in with the right password");

    let err = HylafaxLine::new(base.clone())
        .check()
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, HylafaxError::Login { .. }) && err.to_string().contains(PASSWORD_ENV),
        "no password: {err}"
    );

    let mut wrong = user_cfg.clone();
    wrong.password = Some(format!("{password}-wrong"));
    let err = HylafaxLine::new(wrong)
        .check()
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(
        matches!(&err, HylafaxError::Login { .. }) && text.contains("530"),
        "wrong password: {text}"
    );
    assert!(!text.contains(password), "the password shows: {text}");

    let mut nobody = base.clone();
    nobody.addr = "127.0.0.1:1".into();
    let err = HylafaxLine::new(nobody)
        .check()
        .await
        .expect_err("must fail");
    assert!(matches!(err, HylafaxError::Connect { .. }), "{err}");
}

async fn submission_status_and_removal(cfg: &HylafaxConfig) {
    let line = HylafaxLine::new(cfg.clone());
    let pages = vec![
        page(Resolution::Standard, 0),
        page(Resolution::Standard, 1),
        page(Resolution::Standard, 2),
    ];
    // A retry resuming at page 2: only pages 2 and 3 are handed to HylaFAX.
    let id = line.submit("5550100", &pages, 2).await.expect("submit");
    assert!(id.chars().all(|c| c.is_ascii_digit()), "job ID {id:?}");

    // The queue file HylaFAX wrote, read from its spool (not through the protocol).
    let qfile = Path::new(SPOOL).join(format!("sendq/q{id}"));
    let text = fs::read_to_string(&qfile).expect("the job's queue file in sendq");
    let field = |tag: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{tag}:")))
            .unwrap_or_else(|| panic!("no {tag} in {text}"))
            .to_owned()
    };
    assert_eq!(field("number"), "5550100");
    assert_eq!(field("maxdials"), "1");
    assert_eq!(field("maxtries"), "1");
    assert_eq!(field("owner"), USER);
    assert_eq!(field("notify"), "none");
    let tiff = field("tiff");
    let doc = tiff.rsplit(':').next().expect("document path");
    let held = fs::read(Path::new(SPOOL).join(doc)).expect("the job's document in docq");
    let decoded = imagecast_faxgw::tiff::read_fax_tiff(&held)
        .expect("HylaFAX's copy reads")
        .expect("a fax TIFF");
    assert_eq!(decoded, pages[1..].to_vec(), "the document HylaFAX holds");

    // Its status through the protocol: queued, never active (no modem).
    let until = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job = line
            .job(&id)
            .await
            .expect("read the job")
            .expect("the job exists");
        if job.state != Some(JobState::Suspended) {
            break job;
        }
        assert!(Instant::now() < until, "faxq never took job {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = job.state.expect("a state");
    assert!(
        matches!(
            state,
            JobState::Ready | JobState::Pending | JobState::Sleeping | JobState::Blocked
        ),
        "job {id} is {state:?}"
    );
    let mut s = line.session().await.expect("session");
    s.expect(&format!("JOB {id}"), &[200]).await.expect("JOB");
    let r = s.expect("JPARM STATE", &[213]).await.expect("JPARM STATE");
    assert_eq!(
        r.text(),
        state.name(),
        "JPARM STATE and the queue file agree"
    );
    s.quit().await;

    line.remove(&id).await.expect("remove the job");
    assert!(line.job(&id).await.expect("read the job").is_none());
    assert!(!qfile.exists(), "{} is still there", qfile.display());
    assert!(!Path::new(SPOOL).join(format!("doneq/q{id}")).exists());
    // Removing it again is not an error.
    line.remove(&id).await.expect("remove a job that is gone");
}

async fn dial_times_out_while_queued(cfg: &HylafaxConfig) {
    let mut cfg = cfg.clone();
    cfg.job_timeout = Duration::from_secs(3);
    cfg.poll_interval = Duration::from_millis(200);
    let line = HylafaxLine::new(cfg);
    let pages = vec![page(Resolution::Fine, 3), page(Resolution::Fine, 4)];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = DialOptions {
        first_page: 1,
        progress: Some(tx),
    };
    let outcome = line.dial("5550101", &pages, &options).await.expect("dial");
    drop(options);
    match &outcome.result {
        CallResult::Failed(reason) => assert!(
            reason.starts_with("timed out") && reason.contains("READY"),
            "{reason}"
        ),
        other => panic!("a dial with no modem ended {other:?}"),
    }
    assert_eq!((outcome.pages_confirmed, outcome.next_page), (0, 1));
    assert!(outcome.duration >= Duration::from_secs(3));
    // Never active, so no progress at all.
    assert_eq!(rx.recv().await, None);

    // A dial dropped while its job is queued (the gateway hangs up its calls when it loses
    // the supervisor) kills and removes the job.
    let mut long = line.config().clone();
    long.job_timeout = Duration::from_secs(600);
    let abandoned = HylafaxLine::new(long);
    let pages2 = pages.clone();
    let call = tokio::spawn(async move {
        abandoned
            .dial("5550102", &pages2, &DialOptions::default())
            .await
    });
    let until = Instant::now() + Duration::from_secs(20);
    let queued = || {
        queue_files_of_test_user()
            .iter()
            .any(|q| fs::read_to_string(q).is_ok_and(|t| t.lines().any(|l| l == "state:5")))
    };
    while !queued() {
        assert!(Instant::now() < until, "the dial's job never became READY");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.abort();
    assert!(call.await.expect_err("aborted").is_cancelled());
    let until = Instant::now() + Duration::from_secs(20);
    while !queue_files_of_test_user().is_empty() {
        assert!(
            Instant::now() < until,
            "the abandoned dial's job is still there: {:?}",
            queue_files_of_test_user()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bad input is refused before anything is sent.
    let err = line
        .dial("555\"; JKILL 1", &pages, &DialOptions::default())
        .await;
    assert!(
        matches!(err, Err(HylafaxError::InvalidNumber(_))),
        "{err:?}"
    );
    let err = line
        .dial("5550101", &pages, &DialOptions::from_page(3))
        .await;
    assert!(matches!(err, Err(HylafaxError::NoPages { .. })), "{err:?}");
}

async fn receive_queue(user: &HylafaxConfig, admin: &HylafaxConfig, leftovers: &mut Leftovers) {
    // A received fax as faxgetty stores one from a Class 1 modem: Group 3 with
    // FillOrder 2 (tiffcp), the TSI and caller ID in ImageDescription (tiffset).
    let pages = vec![page(Resolution::Fine, 5), page(Resolution::Standard, 6)];
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = dir.path().join("ours.tif");
    let theirs = dir.path().join("received.tif");
    fs::write(
        &ours,
        imagecast_faxgw::tiff::write_fax_tiff(&pages, Coding::Mh).expect("write"),
    )
    .expect("write");
    run(Command::new("tiffcp")
        .args(["-f", "lsb2msb", "-c", "g3:1d"])
        .arg(&ours)
        .arg(&theirs));
    run(Command::new("tiffset")
        .args(["-s", "270", "ACME TSI\n5551234\nACME Corp\u{1b}[2J"])
        .arg(&theirs));
    let bytes = fs::read(&theirs).expect("read");
    let path = put_received(&bytes);
    leftovers.files.push(path.clone());
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();

    // Mode 0600: a user without administrative privileges does not see it.
    let plain = HylafaxLine::new(user.clone());
    let seen = plain.poll_received().await.expect("poll as a plain user");
    assert!(seen.iter().all(|f| f.name != name), "a 0600 fax was listed");

    let line = HylafaxLine::new(admin.clone());
    let got = line.poll_received().await.expect("poll with ADMIN");
    let fax = got.iter().find(|f| f.name == name).unwrap_or_else(|| {
        panic!(
            "{name} not among {:?}",
            got.iter().map(|f| &f.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(fax.tiff, bytes, "the fax's bytes as stored");
    assert_eq!(fax.sender_station, "ACME TSI");
    assert_eq!(fax.caller_number, "5551234");
    assert_eq!(fax.caller_name, "ACME Corp?[2J");
    assert_eq!(fax.pages, 2);
    let decoded = imagecast_faxgw::tiff::read_fax_tiff(&fax.tiff)
        .expect("decode")
        .expect("a fax TIFF");
    assert_eq!(decoded, pages, "the received pages, pixel for pixel");

    // Still there until removed: delivered at least once.
    assert!(path.exists());
    let err = plain.remove_received(&name).await.expect_err("must fail");
    assert!(
        matches!(err, HylafaxError::Refused { code: 550, .. }),
        "{err}"
    );
    line.remove_received(&name)
        .await
        .expect("remove the received fax");
    assert!(!path.exists(), "{} is still there", path.display());
    let again = line.poll_received().await.expect("poll again");
    assert!(again.iter().all(|f| f.name != name));
    let err = line.remove_received(&name).await.expect_err("must fail");
    assert!(
        matches!(err, HylafaxError::Refused { code: 550, .. }),
        "{err}"
    );
    let err = line
        .remove_received("../etc/hosts.hfaxd")
        .await
        .expect_err("must fail");
    assert!(matches!(err, HylafaxError::InvalidName(_)), "{err}");
}
