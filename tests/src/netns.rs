//! Network namespaces for tests that need a real network between the programs: two private
//! networks behind masquerading NAT routers (nftables) and a server on the "public" side
//! between them ([`NatLab`]), and the single namespaces it is made of ([`Netns`]).
//!
//! ```text
//!                         public side 198.18.0.0/24 (a bridge in namespace `wan`)
//!        +----------------------+-----------------------+----------------------+
//!        | 198.18.0.11          | 198.18.0.2            | 198.18.0.12          |
//!   [ nat-a ] router        [ srv ] the server      [ nat-b ] router
//!        | 198.19.10.1                                    | 198.19.20.1
//!        | private 198.19.10.0/24                         | private 198.19.20.0/24
//!        | 198.19.10.2                                    | 198.19.20.2
//!   [ term-a ] terminal                             [ term-b ] terminal
//! ```
//!
//! Each router forwards its private side out to the public side and masquerades it (the far
//! end sees the router's public address), lets the replies back in, and drops every new
//! connection that comes from the public side, to itself or forwarded: a home NAT. The
//! terminals' default route is their router; the server has no route to the private networks.
//!
//! Every address is one of the benchmark range 198.18.0.0/15 inside the namespaces made here,
//! and nothing is done to the host's own interfaces, routes or firewall: every veth is made
//! directly inside its namespaces. The namespaces are named `icnat<PID>x<N>-<role>`, unique
//! per test; dropping a [`Netns`] (also on a panic) kills what still runs inside it and deletes
//! it, which deletes its veths. Namespaces left by a test process that was killed outright are
//! deleted by the next [`NatLab::build`].
//!
//! It needs root (CAP_NET_ADMIN) and the programs `ip` (iproute2) and `nft` (nftables);
//! [`NatLab::build`] fails, with what is missing, rather than skip.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{LIMIT, Output, bin};

/// The server's address, on the public side.
pub const SRV_ADDR: &str = "198.18.0.2";
/// Router `nat-a`'s public address: what the server sees for `term-a`'s connections.
pub const NAT_A_PUBLIC: &str = "198.18.0.11";
/// Router `nat-b`'s public address: what the server sees for `term-b`'s connections.
pub const NAT_B_PUBLIC: &str = "198.18.0.12";
/// Router `nat-a`'s address on its private network.
pub const NAT_A_LAN: &str = "198.19.10.1";
/// Router `nat-b`'s address on its private network.
pub const NAT_B_LAN: &str = "198.19.20.1";
/// Terminal `term-a`'s private address.
pub const TERM_A_ADDR: &str = "198.19.10.2";
/// Terminal `term-b`'s private address.
pub const TERM_B_ADDR: &str = "198.19.20.2";
/// Private network behind `nat-a`.
pub const NET_A: &str = "198.19.10.0/24";
/// Private network behind `nat-b`.
pub const NET_B: &str = "198.19.20.0/24";

/// The prefix of every namespace made here.
const PREFIX: &str = "icnat";

/// The rules of a home NAT router whose public interface is `wan` and private one `lan`.
const ROUTER_RULES: &str = r#"
table inet imagecast_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade
    }
}
table inet imagecast_filter {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lo" accept
        iifname "lan" accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
    }
}
"#;

/// Finds a system program in the usual places (root's PATH may lack /usr/sbin when the test
/// runs under another environment), falling back to PATH.
fn program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The `ip` program (iproute2).
pub fn ip_program() -> PathBuf {
    program("ip").unwrap_or_else(|| PathBuf::from("ip"))
}

/// Fails unless this process is root and has `ip` and `nft`: the NAT tests fail, never skip.
pub fn require_root_and_tools() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        bail!(
            "this test builds network namespaces and NAT (nftables) and needs root, which CI \
             has; it runs as uid {euid}: run it as root (e.g. `sudo -E cargo test -p \
             imagecast-tests --test e2e nat::`)"
        );
    }
    for (prog, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if program(prog).is_none() {
            bail!(
                "`{prog}` is missing: install the Debian package {package} (`bash scripts/test` \
                 installs it)"
            );
        }
    }
    Ok(())
}

/// Runs `cmd` to completion within `limit`; fails, with its stderr, unless it succeeded.
fn check(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = crate::run(cmd, LIMIT).with_context(|| format!("{what}: cannot start"))?;
    if out.code != 0 {
        bail!("{what}: exit {}: {}{}", out.code, out.stderr, out.stdout);
    }
    Ok(out.stdout)
}

/// One network namespace, deleted (with the processes still in it) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add NAME`, with its loopback up.
    pub fn add(name: &str) -> anyhow::Result<Self> {
        check(
            Command::new(ip_program()).args(["netns", "add", name]),
            &format!("ip netns add {name}"),
        )?;
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`); add its
    /// arguments and environment as to any [`Command`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(ip_program());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// `cmd` (program, arguments, environment changes, working folder) to be run inside the
    /// namespace. The rest of the environment is inherited: a `cmd` built with
    /// [`Command::env_clear`] takes [`Netns::wrap_clean_env`].
    pub fn wrap(&self, cmd: &Command) -> Command {
        self.wrap_with(cmd, false)
    }

    /// Like [`Netns::wrap`], starting from an empty environment: only the variables set on
    /// `cmd` are passed (for commands built with [`Command::env_clear`], such as
    /// [`crate::TestServer::imagecast`]).
    pub fn wrap_clean_env(&self, cmd: &Command) -> Command {
        self.wrap_with(cmd, true)
    }

    fn wrap_with(&self, cmd: &Command, clean: bool) -> Command {
        let mut c = self.command(cmd.get_program());
        c.args(cmd.get_args());
        if clean {
            c.env_clear();
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            c.current_dir(dir);
        }
        c
    }

    /// Runs `cmd` inside the namespace to completion within `limit` (killed after), with no
    /// standard input.
    pub fn run(&self, cmd: &Command, limit: Duration) -> anyhow::Result<Output> {
        crate::run(&mut self.wrap(cmd), limit)
    }

    /// Starts `cmd` inside the namespace with no standard input and its outputs piped; the
    /// process is killed when the returned guard is dropped.
    pub fn spawn(&self, cmd: &Command) -> anyhow::Result<Spawned> {
        Spawned::start(&mut self.wrap(cmd))
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        check(
            Command::new(ip_program())
                .args(["-n", &self.name])
                .args(args),
            &format!("ip -n {} {}", self.name, args.join(" ")),
        )
        .map(drop)
    }

    /// Loads an nftables ruleset (`nft -f FILE`) inside the namespace.
    pub fn nft(&self, ruleset: &str) -> anyhow::Result<()> {
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), ruleset)?;
        let mut cmd = Command::new(program("nft").unwrap_or_else(|| PathBuf::from("nft")));
        cmd.arg("-f").arg(file.path());
        check(
            &mut self.wrap(&cmd),
            &format!("nft -f in {}: {ruleset}", self.name),
        )
        .map(drop)
    }

    /// Sets an IPv4 sysctl inside the namespace through /proc (e.g. `ip_forward`, "1").
    pub fn sysctl_ipv4(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("echo {value} > /proc/sys/net/ipv4/{key}")]);
        check(
            &mut self.wrap(&cmd),
            &format!("{key}={value} in {}", self.name),
        )
        .map(drop)
    }

    /// Starts a TCP listener (`imagecast-netprobe listen`) on `addr` ("IP:PORT") inside the
    /// namespace, echoing what it receives when `echo`; returns once it listens.
    pub fn listen(&self, addr: &str, echo: bool) -> anyhow::Result<ProbeListener> {
        let mut cmd = Command::new(bin("imagecast-netprobe"));
        cmd.args(["listen", addr, "--for", "120"]);
        if echo {
            cmd.arg("--echo");
        }
        ProbeListener::start(&mut self.wrap(&cmd))
    }

    /// Tries a TCP connection from inside the namespace to `addr` ("IP:PORT"), giving up
    /// after `timeout` (`imagecast-netprobe connect`).
    pub fn connect(&self, addr: &str, timeout: Duration) -> anyhow::Result<Connect> {
        let mut cmd = Command::new(bin("imagecast-netprobe"));
        cmd.args(["connect", addr, "--timeout-ms"])
            .arg(timeout.as_millis().to_string());
        let out = crate::run(&mut self.wrap(&cmd), timeout + LIMIT)?;
        let said = out.stdout.trim().to_owned();
        Ok(match out.code {
            0 => Connect::Connected {
                local: said
                    .strip_prefix("connected from ")
                    .unwrap_or_default()
                    .to_owned(),
            },
            3 => Connect::Refused,
            4 => Connect::TimedOut,
            5 => Connect::Unreachable(said),
            _ => bail!(
                "imagecast-netprobe connect {addr} in {}: exit {}: {}{}",
                self.name,
                out.code,
                out.stderr,
                said
            ),
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs inside (a server, a listener) would keep the namespace alive.
        if let Ok(out) = crate::run(
            Command::new(ip_program()).args(["netns", "pids", &self.name]),
            Duration::from_secs(10),
        ) {
            for pid in out.stdout.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new(ip_program())
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// What a connection attempt ([`Netns::connect`]) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// Connected, from this local address ("IP:PORT").
    Connected {
        /// The local address the connection used.
        local: String,
    },
    /// Refused (a reset: something answered that no one listens).
    Refused,
    /// No answer within the timeout (a firewall that drops).
    TimedOut,
    /// Another error, as the prober said it (e.g. no route to the network).
    Unreachable(String),
}

impl Connect {
    /// True when the connection was opened.
    pub fn is_connected(&self) -> bool {
        matches!(self, Connect::Connected { .. })
    }
}

/// A process started inside a namespace ([`Netns::spawn`]); killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Option<Child>,
}

impl Spawned {
    /// Starts `cmd` as it is (already inside a namespace, e.g. from
    /// [`crate::TestServer::imagecast_in`] or [`Netns::wrap`]) with no standard input and its
    /// outputs piped.
    pub fn start(cmd: &mut Command) -> anyhow::Result<Self> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the command inside the namespace")?;
        Ok(Self { child: Some(child) })
    }

    /// The process (e.g. to take its stdout and read it as it goes).
    pub fn child_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("a Spawned holds its child until finished")
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child_mut().try_wait(), Ok(Some(_)))
    }

    /// Waits for the process at most `limit` (then kills it) and returns what it printed.
    pub fn finish(mut self, limit: Duration) -> anyhow::Result<Output> {
        let mut child = self
            .child
            .take()
            .expect("a Spawned holds its child until finished");
        let deadline = Instant::now() + limit;
        while child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait()?.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP listener running inside a namespace ([`Netns::listen`]); killed when dropped.
pub struct ProbeListener {
    /// The address it listens on ("IP:PORT").
    pub addr: String,
    accepted: Arc<Mutex<Vec<String>>>,
    _process: Spawned,
}

impl ProbeListener {
    fn start(cmd: &mut Command) -> anyhow::Result<Self> {
        let mut process = Spawned::start(cmd)?;
        let stdout = process
            .child_mut()
            .stdout
            .take()
            .context("the listener's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let acc = accepted.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                } else if let Some(peer) = line.strip_prefix("accepted from ") {
                    acc.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(peer.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(LIMIT) {
            Ok(addr) => addr,
            Err(_) => {
                let out = process.finish(Duration::from_secs(1))?;
                bail!("the listener did not start: {}", out.stderr);
            }
        };
        Ok(Self {
            addr,
            accepted,
            _process: process,
        })
    }

    /// The peers it accepted so far ("IP:PORT" as this side saw them), oldest first.
    pub fn accepted(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits at most `limit` until it has accepted `n` connections; returns the peers.
    pub fn wait_accepted(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.accepted();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The whole topology of the module documentation: a server namespace on a public network,
/// and two terminals each on a private network behind its own masquerading NAT router.
/// Dropping it deletes every namespace (and so every veth), also on a panic.
pub struct NatLab {
    /// Terminal A, 198.19.10.2, behind `nat_a`.
    pub term_a: Netns,
    /// Terminal B, 198.19.20.2, behind `nat_b`.
    pub term_b: Netns,
    /// The server's namespace, 198.18.0.2 on the public side.
    pub srv: Netns,
    /// Router A: 198.18.0.11 public, 198.19.10.1 private; masquerades term-a.
    pub nat_a: Netns,
    /// Router B: 198.18.0.12 public, 198.19.20.1 private; masquerades term-b.
    pub nat_b: Netns,
    /// The public network's switch (a bridge; no address of its own).
    pub wan: Netns,
}

impl NatLab {
    /// Builds the topology (about a second); fails with a clear message when not root or
    /// `ip`/`nft` are missing.
    pub fn build() -> anyhow::Result<Self> {
        require_root_and_tools()?;
        remove_stale();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let add = |role: &str| Netns::add(&format!("{base}-{role}"));
        // Each is deleted by its own guard if a later step fails.
        let wan = add("wan")?;
        let srv = add("srv")?;
        let nat_a = add("nat-a")?;
        let nat_b = add("nat-b")?;
        let term_a = add("term-a")?;
        let term_b = add("term-b")?;

        // The public side: a bridge in `wan`, a port to each of srv, nat-a, nat-b (whose end
        // is called `wan` there).
        wan.ip(&["link", "add", "br0", "type", "bridge"])?;
        wan.ip(&["link", "set", "br0", "up"])?;
        for (ns, addr) in [
            (&srv, SRV_ADDR),
            (&nat_a, NAT_A_PUBLIC),
            (&nat_b, NAT_B_PUBLIC),
        ] {
            let port = format!("p{}", ns.name().rsplit('-').next().unwrap_or("x"));
            wan.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "wan",
                "netns",
                ns.name(),
            ])?;
            wan.ip(&["link", "set", &port, "master", "br0"])?;
            wan.ip(&["link", "set", &port, "up"])?;
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "wan"])?;
            ns.ip(&["link", "set", "wan", "up"])?;
        }

        // Each private side: the router's `lan` to the terminal's `eth0`.
        for (router, term, lan, addr) in [
            (&nat_a, &term_a, NAT_A_LAN, TERM_A_ADDR),
            (&nat_b, &term_b, NAT_B_LAN, TERM_B_ADDR),
        ] {
            router.ip(&[
                "link",
                "add",
                "lan",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                term.name(),
            ])?;
            router.ip(&["addr", "add", &format!("{lan}/24"), "dev", "lan"])?;
            router.ip(&["link", "set", "lan", "up"])?;
            term.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            term.ip(&["link", "set", "eth0", "up"])?;
            term.ip(&["route", "add", "default", "via", lan])?;
            router.sysctl_ipv4("ip_forward", "1")?;
            router.nft(ROUTER_RULES)?;
        }
        Ok(Self {
            term_a,
            term_b,
            srv,
            nat_a,
            nat_b,
            wan,
        })
    }

    /// Routes each private network over the public side to its router, from the server and
    /// from the other router: the worst case for the NATs, where a packet from outside can
    /// find its way to a private address and only the router's firewall stops it. (Without
    /// this, the public side has no route to the private networks at all, as on the Internet.)
    pub fn route_private_networks(&self) -> anyhow::Result<()> {
        self.srv.ip(&["route", "add", NET_A, "via", NAT_A_PUBLIC])?;
        self.srv.ip(&["route", "add", NET_B, "via", NAT_B_PUBLIC])?;
        self.nat_a
            .ip(&["route", "add", NET_B, "via", NAT_B_PUBLIC])?;
        self.nat_b
            .ip(&["route", "add", NET_A, "via", NAT_A_PUBLIC])?;
        Ok(())
    }

    /// The names of its namespaces, for messages.
    pub fn names(&self) -> Vec<&str> {
        [
            &self.wan,
            &self.srv,
            &self.nat_a,
            &self.nat_b,
            &self.term_a,
            &self.term_b,
        ]
        .iter()
        .map(|n| n.name())
        .collect()
    }
}

/// Deletes namespaces left by test processes that no longer exist (killed before their
/// guards ran): `icnat<PID>x<N>-<role>` with no process PID.
fn remove_stale() {
    let Ok(out) = crate::run(
        Command::new(ip_program()).args(["netns", "list"]),
        Duration::from_secs(10),
    ) else {
        return;
    };
    for line in out.stdout.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('x'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            drop(Netns {
                name: name.to_owned(),
            });
        }
    }
}
