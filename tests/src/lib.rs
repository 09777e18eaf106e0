//! Harness for end-to-end tests and the load generator: starts the real `imagecast-server`
//! binary on an ephemeral loopback port with a fresh data directory, and connects real
//! clients to it.
//!
//! The binaries are looked up next to the running test executable (`target/<profile>/`);
//! `cargo test --workspace` builds them because the server and terminal packages have
//! integration tests of their own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::client::{Client, ClientConfig, Events};
use imagecast_shared::tls::TlsSettings;

pub mod forgetfs;
pub mod hylafax;
pub mod netns;

/// The `.tif` files in `dir`, sorted (a fax machine's inbox, a terminal's tray).
pub fn tiffs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a readable folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    v.sort();
    v
}

/// Where cargo put the workspace's binaries for this build.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of a workspace binary, failing clearly when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// The upper bound for any single wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A test's scratch folder (removed at the end): page files to send and receivers' trays.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new empty scratch folder.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the folder (not created).
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a real PNG image `name` whose pixels spell `label` (so images of different
    /// labels differ) and returns its path: a page `imagecast send` and the panel's feeder take.
    pub fn image(&self, name: &str, label: &str) -> PathBuf {
        let pixels: Vec<u8> = if label.is_empty() {
            vec![255]
        } else {
            label.bytes().collect()
        };
        let img =
            image::GrayImage::from_raw(pixels.len() as u32, 1, pixels).expect("one row of pixels");
        let path = self.join(name);
        img.save_with_format(&path, image::ImageFormat::Png)
            .expect("a PNG page");
        path
    }

    /// Writes a page file `name` holding `bytes` and returns its path.
    pub fn page(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes.as_ref()).expect("a page file");
        path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// The demo user that may send and register.
pub const USER: &str = "1001";
/// Its password.
pub const PASSWORD: &str = "1234";

/// A running `imagecast-server` on its own data directory.
pub struct TestServer {
    /// The data directory (removed when the server is dropped).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Device tokens by domain.
    pub tokens: HashMap<String, String>,
    /// Extra `run` arguments kept for restarts.
    pub run_args: Vec<String>,
    /// The server certificate's fingerprint; `None` when it runs `--plain`.
    pub fingerprint: Option<String>,
    child: Option<Child>,
    /// The server's stderr log.
    pub log: PathBuf,
    /// The network namespace it runs in ([`TestServer::start_demo_in`]); `None`: the host's.
    netns: Option<String>,
}

impl TestServer {
    /// `init --demo`, then `run` (over TLS) on port 0 with a short heartbeat.
    pub fn start_demo() -> anyhow::Result<Self> {
        Self::start_demo_with(&["--heartbeat-ms", "1000"])
    }

    /// Like [`TestServer::start_demo`], with extra `run` arguments.
    pub fn start_demo_with(run_args: &[&str]) -> anyhow::Result<Self> {
        Self::demo(run_args, None, "127.0.0.1:0")
    }

    /// Like [`TestServer::start_demo_with`], the server running inside the network namespace
    /// `ns` and listening on `listen` (e.g. `198.18.0.2:0`, see [`netns::SRV_ADDR`]). Terminals
    /// in other namespaces run with [`TestServer::imagecast_in`].
    pub fn start_demo_in(
        ns: &netns::Netns,
        listen: &str,
        run_args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::demo(run_args, Some(ns.name()), listen)
    }

    fn demo(run_args: &[&str], netns: Option<&str>, listen: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let out = Command::new(bin("imagecast-server"))
            .args(["init", "--demo", "--data-dir"])
            .arg(&data)
            .output()?;
        if !out.status.success() {
            bail!("init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let tokens = std::fs::read_to_string(data.join("demo-tokens.txt"))?
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(d, t)| (d.to_owned(), t.to_owned()))
            .collect();
        let log = dir.path().join("server.log");
        let plain = run_args.contains(&"--plain");
        let fingerprint = if plain {
            None
        } else {
            let out = Command::new(bin("imagecast-server"))
                .args(["fingerprint", "--data-dir"])
                .arg(&data)
                .output()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let mut server = Self {
            dir,
            addr: String::new(),
            tokens,
            fingerprint,
            run_args: run_args.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
            log,
            netns: netns.map(str::to_owned),
        };
        server.start(listen)?;
        Ok(server)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A group file's path.
    pub fn group_file(&self, name: &str) -> PathBuf {
        self.data_dir().join("groups").join(name)
    }

    /// Adds a device with `imagecast-server device add` (which also lists it in `all.rec`)
    /// and returns its token, which [`TestServer::config`] and the helpers built on it then
    /// use for `domain`.
    pub fn add_device(&mut self, domain: &str, name: &str, kind: &str) -> anyhow::Result<String> {
        let out = Command::new(bin("imagecast-server"))
            .args(["device", "add", "--data-dir"])
            .arg(self.data_dir())
            .args([domain, "--name", name, "--kind", kind])
            .output()?;
        if !out.status.success() {
            bail!(
                "device add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        self.tokens.insert(domain.to_owned(), token.clone());
        Ok(token)
    }

    /// Starts `run` listening on `listen`; waits for "listening on".
    pub fn start(&mut self, listen: &str) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new(netns::ip_program());
                c.args(["netns", "exec", ns]).arg(bin("imagecast-server"));
                c
            }
            None => Command::new(bin("imagecast-server")),
        };
        let mut child = cmd
            .arg("run")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen", listen])
            .args(&self.run_args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let addr = wait_listening(&mut child, Duration::from_secs(30))
            .with_context(|| format!("the server's log: {}", self.log_text()))?;
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }

    /// The server process's ID while it runs (to read its memory from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Restarts on the same port after [`TestServer::kill9`] or [`TestServer::terminate`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let addr = self.addr.clone();
        // The port may linger briefly in TIME_WAIT for the listener; retry.
        for _ in 0..50 {
            match self.start(&addr) {
                Ok(()) => return Ok(()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        self.start(&addr)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client configuration for a demo device.
    pub fn config(&self, domain: &str, receive: bool) -> ClientConfig {
        let token = self.tokens.get(domain).cloned().unwrap_or_default();
        let mut cfg = ClientConfig::new(&self.addr, domain, &token, receive);
        cfg.request_timeout = Duration::from_secs(30);
        cfg.tls = self.fingerprint.as_deref().map(TlsSettings::pinned);
        cfg
    }

    /// Connects a demo device with the real client.
    pub async fn connect(&self, domain: &str, receive: bool) -> anyhow::Result<(Client, Events)> {
        Ok(Client::connect(&self.config(domain, receive)).await?)
    }

    /// The `imagecast` binary, set up as a demo device with the demo user.
    pub fn imagecast(&self, domain: &str) -> Command {
        let mut c = Command::new(bin("imagecast"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("IMAGECAST_SERVER", &self.addr)
            .env("IMAGECAST_DEVICE", domain)
            .env(
                "IMAGECAST_TOKEN",
                self.tokens.get(domain).cloned().unwrap_or_default(),
            )
            .env("IMAGECAST_USER", USER)
            .env("IMAGECAST_PASSWORD", PASSWORD);
        match &self.fingerprint {
            Some(fp) => c.env("IMAGECAST_SERVER_FINGERPRINT", fp),
            None => c.env("IMAGECAST_PLAIN", "1"),
        };
        c
    }

    /// [`TestServer::imagecast`] to be run inside the network namespace `ns` (a terminal
    /// behind a NAT of [`netns::NatLab`]), with the same environment and nothing else.
    pub fn imagecast_in(&self, ns: &netns::Netns, domain: &str) -> Command {
        ns.wrap_clean_env(&self.imagecast(domain))
    }

    /// A raw byte stream to the server as a terminal would open it (TLS unless the server
    /// runs `--plain`), for tests that write frames by hand.
    pub async fn raw(&self) -> anyhow::Result<RawStream> {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        Ok(match &self.fingerprint {
            None => Box::new(tcp),
            Some(fp) => Box::new(
                imagecast_shared::client::dial::tls(
                    tcp,
                    &self.addr,
                    &TlsSettings::pinned(fp),
                    Duration::from_secs(10),
                )
                .await?,
            ),
        })
    }

    /// The `imagecast-server` binary.
    pub fn admin(&self) -> Command {
        Command::new(bin("imagecast-server"))
    }

    /// Runs `imagecast-server ARGS --data-dir DATA` to completion (within [`LIMIT`]).
    pub fn admin_run(&self, args: &[&str]) -> Output {
        run(
            self.admin()
                .args(args)
                .arg("--data-dir")
                .arg(self.data_dir()),
            LIMIT,
        )
        .expect("imagecast-server runs")
    }

    /// The journal's lines (`imagecast-server journal`), which must succeed.
    pub fn journal(&self) -> Vec<String> {
        let out = self.admin_run(&["journal"]);
        assert_eq!(out.code, 0, "journal: {}", out.stderr);
        out.stdout.lines().map(str::to_owned).collect()
    }

    /// Runs the `imagecast` binary as `domain` (the demo user logged in) with `args` to
    /// completion (within [`LIMIT`]).
    pub fn terminal<I, A>(&self, domain: &str, args: I) -> Output
    where
        I: IntoIterator<Item = A>,
        A: AsRef<std::ffi::OsStr>,
    {
        run(self.imagecast(domain).args(args), LIMIT).expect("imagecast runs")
    }

    /// Runs the `imagecast` binary as `domain` with `user` logged in (`password`) with `args`
    /// to completion (within [`LIMIT`]).
    pub fn terminal_as(&self, domain: &str, user: &str, password: &str, args: &[&str]) -> Output {
        let mut cmd = self.imagecast(domain);
        cmd.env("IMAGECAST_USER", user)
            .env("IMAGECAST_PASSWORD", password)
            .args(args);
        run(&mut cmd, LIMIT).expect("imagecast runs")
    }

    /// Runs `imagecast send ARGS FILE` as `domain` (the demo user logged in) to completion.
    pub fn send(&self, domain: &str, args: &[&str], file: &Path) -> Output {
        run(
            self.imagecast(domain).arg("send").args(args).arg(file),
            LIMIT,
        )
        .expect("imagecast runs")
    }

    /// Runs `imagecast send --to TO --wait --timeout SECS FILE` as `from` to completion.
    pub fn send_and_wait(&self, from: &str, to: &str, file: &Path, secs: u32) -> Output {
        let secs = secs.to_string();
        self.send(from, &["--to", to, "--wait", "--timeout", &secs], file)
    }

    /// A receiving terminal `domain` that stores into `dir` and acknowledges what it stored.
    pub async fn receiver(&self, domain: &str, dir: &Path) -> Receiver {
        Receiver::start(self, domain, dir, true)
            .await
            .unwrap_or_else(|e| panic!("receiver {domain}: {e:#}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A byte stream to the server (TCP or TLS).
pub trait ByteStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type RawStream = Box<dyn ByteStream>;

/// Output of a finished command.
pub struct Output {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, showing both outputs when it is another.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "exit code; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
    }

    /// Asserts that the command failed with exit code 1 and said `text` on stderr.
    #[track_caller]
    pub fn assert_error(&self, text: &str) {
        assert_eq!(self.code, 1, "exit code; stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}: {}",
            self.stderr
        );
    }
}

/// Waits (at most `limit`) for a starting `imagecast-server run` to print `listening on
/// ADDR` on its piped stdout, and returns ADDR.
pub fn wait_listening(child: &mut Child, limit: Duration) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(limit).with_context(|| {
        format!(
            "the server did not say it was listening within {} s",
            limit.as_secs()
        )
    })?;
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => Ok(addr.to_owned()),
        None => bail!("unexpected first line {line:?} from the server"),
    }
}

/// Runs a command to completion within `limit`, killing it after.
pub fn run(cmd: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are drained while the command runs: one that writes more than a pipe holds
    // would otherwise block until the deadline.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A process the command left behind may hold a pipe open: wait for the rest a while.
    let text = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Output {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: text(stdout),
        stderr: text(stderr),
    })
}

/// A terminal receiving with the real client and [`Inbox`], in this process.
///
/// [`Inbox`]: imagecast_shared::client::Inbox
pub struct Receiver {
    /// Where deliveries land.
    pub dir: PathBuf,
    /// What arrived, in order (duplicates included, flagged).
    pub received: std::sync::Arc<std::sync::Mutex<Vec<imagecast_shared::client::Received>>>,
    /// True once the connection ended.
    pub closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The client, to close it.
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Connects `domain` as a receiving terminal storing into `dir`. With `ack` false the
    /// terminal stores but never acknowledges (a terminal that dies right after storing).
    pub async fn start(
        server: &TestServer,
        domain: &str,
        dir: &Path,
        ack: bool,
    ) -> anyhow::Result<Self> {
        use imagecast_shared::client::{Event, Inbox, InboxMode};
        use imagecast_shared::msg::DeliveryOutcome;
        let mut inbox = Inbox::open(dir, InboxMode::Store)?;
        let (client, mut events) = server.connect(domain, true).await?;
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, c, cl) = (received.clone(), closed.clone(), client.clone());
        let task = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if matches!(ev, Event::Closed(_)) {
                    break;
                }
                match inbox.handle(&ev) {
                    Ok(Some(got)) => {
                        let delivery = got.delivery;
                        r.lock().unwrap_or_else(|e| e.into_inner()).push(got);
                        if ack {
                            let _ = cl.ack(delivery, DeliveryOutcome::Printed).await;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => panic!("inbox error: {e}"),
                }
            }
            c.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Ok(Self {
            dir: dir.to_owned(),
            received,
            closed,
            client,
            task,
        })
    }

    /// Number of deliveries taken (duplicates included).
    pub fn count(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Waits until `n` deliveries were taken, at most `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.count() < n {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Closes the connection and ends the task.
    pub async fn stop(self) {
        self.client.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    /// Files in the folder (hidden state excluded), sorted.
    pub fn files(&self) -> Vec<String> {
        list_files(&self.dir)
    }
}

/// Non-hidden file names in `dir`, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes a multi-page grayscale TIFF (each page a different pattern) and returns its bytes.
pub fn multipage_tiff(path: &Path, pages: u32, width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    use tiff::encoder::{TiffEncoder, colortype::Gray8};
    let file = std::fs::File::create(path)?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file))?;
    for p in 0..pages {
        let data: Vec<u8> = (0..width * height)
            .map(|i| ((i % width) * (p + 1) + (i / width) * 7) as u8)
            .collect();
        enc.write_image::<Gray8>(width, height, &data)?;
    }
    drop(enc);
    Ok(std::fs::read(path)?)
}
