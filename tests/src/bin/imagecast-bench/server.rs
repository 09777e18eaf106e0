//! A real `imagecast-server` on a data directory made for one scenario: thousands of devices,
//! a group holding them, a user who sends and registers.
//!
//! `imagecast-server device add` is one process per device, far too slow for 10,000: the data
//! directory is made here through the server's own library instead (`DataDir::init`,
//! `auth::add_device` for every device in one transaction), and the group files are written
//! directly in the seed's format. Then the real binary runs on it, found next to this one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use imagecast_server::store::auth;
use imagecast_server::store::datadir::{ALL_GROUP_NAME, DataDir};
use imagecast_server::store::files::write_atomic;
use imagecast_shared::client::ClientConfig;
use imagecast_shared::msg::{DeviceKind, Role};

use crate::host::{self, Memory};

/// The user every scenario sends and registers as.
pub const USER: &str = "bench";
/// Its password.
pub const PASSWORD: &str = "bench-password";
/// The group the terminals are members of.
pub const GROUP: &str = "bench terminals";
/// Its file.
pub const GROUP_FILE: &str = "bench.rec";

/// A device with its token.
#[derive(Clone, Debug)]
pub struct Device {
    /// Network domain name.
    pub domain: String,
    /// Device token.
    pub token: String,
}

/// What the data directory holds.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Devices that are members of [`GROUP`] (the receiving terminals).
    pub members: usize,
    /// Lines in [`GROUP`]'s file for domains that are not devices (they never connect).
    pub paper_members: usize,
    /// Devices listed in `all.rec` but in no group (terminals that will register).
    pub outsiders: usize,
    /// Fax gateways (device kind `fax-gateway`, in no group).
    pub gateways: usize,
    /// Serve TLS (the product's default) rather than plain TCP.
    pub tls: bool,
    /// The server's heartbeat interval.
    pub heartbeat_ms: u64,
}

/// A running server on its own data directory; killed when dropped.
pub struct BenchServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The data directory (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The sending terminal.
    pub sender: Device,
    /// The members of [`GROUP`].
    pub members: Vec<Device>,
    /// The devices in no group.
    pub outsiders: Vec<Device>,
    /// The fax gateways.
    pub gateways: Vec<Device>,
    /// The server's stderr.
    pub log: PathBuf,
    /// The certificate's fingerprint when the server runs TLS.
    pub fingerprint: Option<String>,
    heartbeat_ms: u64,
    child: Child,
}

/// The domain of member `i`.
pub fn member_domain(i: usize) -> String {
    format!("t{i:05}.bench.imagecast")
}

/// The domain of outsider `i`.
pub fn outsider_domain(i: usize) -> String {
    format!("n{i:05}.bench.imagecast")
}

/// The domain of fax gateway `i`.
pub fn gateway_domain(i: usize) -> String {
    format!("g{i:05}.bench.imagecast")
}

/// The domain of paper member `i`.
pub fn paper_domain(i: usize) -> String {
    format!("p{i:05}.bench.imagecast")
}

/// An argon2 hash of [`PASSWORD`] with the cheapest parameters argon2 allows. The server reads
/// the parameters from the stored hash, so logging a thousand terminals in costs milliseconds
/// instead of the ~20 s the default parameters would cost; no measured figure includes a login.
fn cheap_hash() -> anyhow::Result<String> {
    let params = argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"imagecast-bench!")
        .map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
    Ok(argon
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string())
}

fn rec_file(group: &str, file: &str, lines: &[String]) -> String {
    let mut text = format!("# {group}\n# {file}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

impl BenchServer {
    /// Makes the data directory for `layout` and starts the server on it.
    pub fn start(layout: &Layout) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("imagecast-bench-")
            .tempdir()?;
        let data = DataDir::new(dir.path().join("data"));
        data.init(&[])?;

        let line = |domain: &str| format!("{domain};bench terminal {domain}");
        let sender_domain = "sender.bench.imagecast".to_owned();
        let member_domains: Vec<String> = (0..layout.members).map(member_domain).collect();
        let outsider_domains: Vec<String> = (0..layout.outsiders).map(outsider_domain).collect();
        let paper_domains: Vec<String> = (0..layout.paper_members).map(paper_domain).collect();

        let conn = data.connect()?;
        let tx = conn.unchecked_transaction()?;
        let add_kind = |domain: &String, kind: DeviceKind| -> anyhow::Result<Device> {
            let token = auth::add_device(&tx, domain, &format!("bench terminal {domain}"), kind)?;
            Ok(Device {
                domain: domain.clone(),
                token,
            })
        };
        let add = |domain: &String| add_kind(domain, DeviceKind::Pc);
        let sender = add(&sender_domain)?;
        let members = member_domains
            .iter()
            .map(add)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let outsiders = outsider_domains
            .iter()
            .map(add)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let gateways = (0..layout.gateways)
            .map(|i| add_kind(&gateway_domain(i), DeviceKind::FaxGateway))
            .collect::<anyhow::Result<Vec<_>>>()?;
        auth::add_user(&tx, USER, Role::Operator, &cheap_hash()?)?;
        tx.commit()?;
        drop(conn);

        let all: Vec<String> = std::iter::once(&sender_domain)
            .chain(&paper_domains)
            .chain(&member_domains)
            .chain(&outsider_domains)
            .map(|d| line(d))
            .collect();
        let groups = data.groups_dir();
        write_atomic(
            &groups.join("all.rec"),
            rec_file(ALL_GROUP_NAME, "all.rec", &all).as_bytes(),
        )?;
        let group: Vec<String> = paper_domains
            .iter()
            .chain(&member_domains)
            .map(|d| line(d))
            .collect();
        write_atomic(
            &groups.join(GROUP_FILE),
            rec_file(GROUP, GROUP_FILE, &group).as_bytes(),
        )?;

        let log = dir.path().join("server.log");
        let fingerprint = if layout.tls {
            Some(imagecast_server::store::tls::fingerprint(&data.tls_dir())?)
        } else {
            None
        };
        let child = spawn(&data, "127.0.0.1:0", layout.heartbeat_ms, layout.tls, &log)?;
        let mut server = Self {
            heartbeat_ms: layout.heartbeat_ms,
            addr: String::new(),
            dir,
            sender,
            members,
            outsiders,
            gateways,
            log,
            fingerprint,
            child,
        };
        server.addr = server.wait_listening()?;
        Ok(server)
    }

    fn wait_listening(&mut self) -> anyhow::Result<String> {
        imagecast_tests::wait_listening(&mut self.child, Duration::from_secs(60)).with_context(
            || {
                format!(
                    "the server's log: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            },
        )
    }

    /// Stops the server with SIGTERM (as systemd does) and waits for it to exit, at most
    /// `limit`; returns how long it took. The data directory stays.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let start = std::time::Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        while start.elapsed() < limit {
            if self.child.try_wait()?.is_some() {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        anyhow::bail!(
            "the server did not exit within {} s of SIGTERM",
            limit.as_secs()
        )
    }

    /// Starts the server again on the same data directory and address (after
    /// [`terminate`](Self::terminate)), appending to the same log; returns once it listens.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let data = DataDir::new(self.dir.path().join("data"));
        let log = std::fs::OpenOptions::new().append(true).open(&self.log)?;
        self.child = spawn_logging_to(
            &data,
            &self.addr,
            self.heartbeat_ms,
            self.fingerprint.is_some(),
            log,
        )?;
        let addr = self.wait_listening()?;
        anyhow::ensure!(
            addr == self.addr,
            "the server came back on {addr}, not {}",
            self.addr
        );
        Ok(())
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now and at its peak.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        host::memory(self.pid())
    }

    /// The path of the group file of [`GROUP`].
    pub fn group_path(&self) -> PathBuf {
        self.dir.path().join("data").join("groups").join(GROUP_FILE)
    }

    /// A client configuration for `device`.
    pub fn config(&self, device: &Device, receive: bool) -> ClientConfig {
        let mut cfg = ClientConfig::new(&self.addr, &device.domain, &device.token, receive);
        cfg.connect_timeout = Duration::from_secs(30);
        cfg.request_timeout = Duration::from_secs(120);
        cfg.tls = self
            .fingerprint
            .as_deref()
            .map(imagecast_shared::tls::TlsSettings::pinned);
        cfg
    }

    /// Lines of the server's log that report a problem (warnings and errors), at most `n`.
    pub fn log_problems(&self, n: usize) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(strip_ansi)
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .take(n)
            .collect()
    }
}

/// A log line without its terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in '@'..='~'
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn spawn(
    data: &DataDir,
    listen: &str,
    heartbeat_ms: u64,
    tls: bool,
    log: &std::path::Path,
) -> anyhow::Result<Child> {
    spawn_logging_to(data, listen, heartbeat_ms, tls, std::fs::File::create(log)?)
}

fn spawn_logging_to(
    data: &DataDir,
    listen: &str,
    heartbeat_ms: u64,
    tls: bool,
    log: std::fs::File,
) -> anyhow::Result<Child> {
    let child = Command::new(imagecast_tests::bin("imagecast-server"))
        .arg("run")
        .arg("--data-dir")
        .arg(data.root())
        .args(["--listen", listen])
        .args(["--heartbeat-ms", &heartbeat_ms.to_string()])
        .args(if tls { &[][..] } else { &["--plain"][..] })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("cannot start imagecast-server")?;
    Ok(child)
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        // A server that ended by itself is a finding: say how, with the end of its log.
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("imagecast-bench: the server exited by itself ({status}); its log ends:");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("IMAGECAST_BENCH_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "imagecast-bench: kept the data directory and server log in {}",
                self.dir.path().display()
            );
        }
    }
}
