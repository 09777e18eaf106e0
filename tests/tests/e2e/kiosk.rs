//! The SSH kiosk of docs/kiosk.md, through a real OpenSSH server on 127.0.0.1: the `Match
//! User` block is read from the document itself, the kiosk account is a system user made for
//! the test (deleted at the end, even on failure), and the forced command is the real
//! `imagecast panel --kiosk` connected to a real `imagecast-server`. An `ssh -tt` session under
//! tmux at 80x24 walks FIG. 6 → 7 → 8 → 9 and distributes a page; closing the panel needs an
//! administrator; no shell, forwarding or sftp is reachable; a dropped connection leaves no
//! panel process behind.
//!
//! It needs `/usr/sbin/sshd` (openssh-server), `ssh` and `sftp` (openssh-client) and `tmux`,
//! which `scripts/test` installs, and root, to add the account and because sshd run by
//! another user gives no session a terminal (CI runs as root).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imagecast_tests::{PASSWORD, TestServer, USER, bin, run};

use crate::LIMIT;

/// The OpenSSH server the test runs.
const SSHD: &str = "/usr/sbin/sshd";
/// The panel's device: a demo terminal that is in no group the test sends to.
const PANEL_DEVICE: &str = "sale1.hqs.mei.co.jp";
/// The only member of group 4, "product development-related places".
const RECEIVER: &str = "devl1.hqs.mei.co.jp";
/// The demo's administrator.
const ADMIN: (&str, &str) = ("9000", "9000");
/// How long a panel may outlive its dropped SSH connection.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);

/// The `sshd-config` block of docs/kiosk.md.
fn documented_match_block() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/kiosk.md");
    let text = std::fs::read_to_string(&path).expect("docs/kiosk.md");
    let start = text
        .find("```sshd-config\n")
        .expect("docs/kiosk.md has an ```sshd-config block")
        + "```sshd-config\n".len();
    let len = text[start..]
        .find("```")
        .expect("the sshd-config block ends");
    text[start..start + len].to_owned()
}

/// Runs a setup command, which must succeed.
fn must(cmd: &mut Command) -> String {
    let out = run(cmd, LIMIT).expect("a setup command runs");
    assert_eq!(out.code, 0, "{cmd:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// The kiosk account: a system user created for the test (deleted on drop, with any process
/// left of it).
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

impl Account {
    fn new(home: &Path) -> Self {
        let me = std::fs::metadata("/proc/self").expect("/proc/self");
        assert_eq!(
            me.uid(),
            0,
            "the SSH kiosk test runs as root (CI does): it adds a system user, and sshd gives \
             a session a terminal only when it runs as root"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("ick-{}-{}", std::process::id(), nanos % 100_000);
        must(
            Command::new("useradd")
                .args([
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--shell",
                    "/bin/sh",
                ])
                .arg("--home-dir")
                .arg(home)
                .arg(&name),
        );
        let mut account = Self {
            name,
            uid: 0,
            gid: 0,
        };
        // Not locked: without PAM, sshd refuses a locked account even for a key.
        must(Command::new("usermod").args(["-p", "*", &account.name]));
        account.uid = must(Command::new("id").args(["-u", &account.name]))
            .trim()
            .parse()
            .expect("a uid");
        account.gid = must(Command::new("id").args(["-g", &account.name]))
            .trim()
            .parse()
            .expect("a gid");
        account
    }

    /// Makes `path` the account's.
    fn own(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        for pid in processes(|_, uid| uid == self.uid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// Processes whose command line and owner pass `pick`, by pid.
fn processes(pick: impl Fn(&[String], u32) -> bool) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let (Ok(meta), Ok(cmdline)) = (
            entry.metadata(),
            std::fs::read(entry.path().join("cmdline")),
        ) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if pick(&args, meta.uid()) {
            found.push(pid);
        }
    }
    found
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Makes `path` readable (and searchable) by everyone.
fn open_up(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The whole set-up: the image server, the kiosk account, sshd with the documented block,
/// and a private tmux server for the sessions.
struct Kiosk {
    server: TestServer,
    /// Everything the test made; world-searchable so that the kiosk account reaches its part.
    dir: tempfile::TempDir,
    /// The panel binary, copied where the kiosk account can run it.
    panel_bin: PathBuf,
    key: PathBuf,
    port: u16,
    sshd: Child,
    sshd_log: Arc<Mutex<String>>,
    tmux: Tmux,
    // Last: the account goes once nothing of it runs any more.
    account: Account,
}

impl Kiosk {
    fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/test does)"
        );
        let server = TestServer::start_demo().expect("the image server starts");
        let dir = tempfile::Builder::new()
            .prefix("kiosk-test-")
            .tempdir()
            .expect("a temporary folder");
        open_up(dir.path(), 0o755);
        let home = dir.path().join("home");
        let account = Account::new(&home);

        // The binary: the target folder may not be reachable by the kiosk account.
        let bin_dir = dir.path().join("bin");
        std::fs::create_dir(&bin_dir).expect("bin");
        open_up(&bin_dir, 0o755);
        let panel_bin = bin_dir.join("imagecast");
        std::fs::copy(bin("imagecast"), &panel_bin).expect("copy imagecast");
        open_up(&panel_bin, 0o755);

        // The account's home with its config file (docs/kiosk.md, step 2).
        let config_dir = home.join(".config/imagecast");
        std::fs::create_dir_all(&config_dir).expect("the config folder");
        let config = config_dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "server = \"{}\"\ndevice = \"{PANEL_DEVICE}\"\ntoken = \"{}\"\nserver_fingerprint = \"{}\"\n",
                server.addr,
                server.tokens[PANEL_DEVICE],
                server
                    .fingerprint
                    .as_deref()
                    .expect("the test server runs TLS")
            ),
        )
        .expect("config.toml");
        open_up(&config, 0o600);
        for p in [&home, &home.join(".config"), &config_dir, &config] {
            account.own(p);
        }
        open_up(&home, 0o700);
        // The panel's folders (/srv/imagecast-kiosk in the document), the account's alone.
        let srv = dir.path().join("srv");
        std::fs::create_dir(&srv).expect("srv");
        account.own(&srv);
        open_up(&srv, 0o700);

        // sshd: a host key, the client's key, and the configuration.
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let key = dir.path().join("client_key");
        for k in [&host_key, &key] {
            must(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiosk-test", "-f"])
                    .arg(k),
            );
        }
        let keys = dir.path().join("authorized_keys");
        std::fs::create_dir(&keys).expect("authorized_keys");
        open_up(&keys, 0o755);
        let authorized = keys.join(&account.name);
        std::fs::copy(key.with_extension("pub"), &authorized).expect("the authorized key");
        open_up(&authorized, 0o644);
        let port = free_port();
        let d = dir.path().display();
        let block = documented_match_block()
            .replace("/srv/imagecast-kiosk", &srv.display().to_string())
            .replace("/usr/bin/imagecast", &panel_bin.display().to_string())
            .replace(
                "Match User imagecast-kiosk",
                &format!("Match User {}", account.name),
            );
        assert!(
            block.contains(&format!("Match User {}", account.name)),
            "{block}"
        );
        let sshd_config = dir.path().join("sshd_config");
        std::fs::write(
            &sshd_config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {d}/ssh_host_ed25519_key\n\
                 PidFile {d}/sshd.pid\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 AuthorizedKeysFile {d}/authorized_keys/%u\n\
                 AllowUsers {user}\n\
                 LogLevel VERBOSE\n\
                 # Served to everyone else: the kiosk's ForceCommand must win over it.\n\
                 Subsystem sftp internal-sftp\n\
                 \n{block}",
                user = account.name
            ),
        )
        .expect("sshd_config");
        // sshd's privilege separation folder, which the Debian service makes at start.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let test = run(
            Command::new(SSHD).arg("-t").arg("-f").arg(&sshd_config),
            LIMIT,
        )
        .expect("sshd -t runs");
        assert_eq!(test.code, 0, "sshd -t: {}", test.stderr);

        let tmux = Tmux::start(dir.path());
        let mut sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&sshd_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd starts");
        let sshd_log = Arc::new(Mutex::new(String::new()));
        let stderr = sshd.stderr.take().expect("sshd's stderr");
        let log = sshd_log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let kiosk = Self {
            server,
            dir,
            panel_bin,
            key,
            port,
            sshd,
            sshd_log,
            tmux,
            account,
        };
        kiosk.wait_until("sshd listening", || {
            kiosk.sshd_log().contains("Server listening on 127.0.0.1")
        });
        kiosk
    }

    fn sshd_log(&self) -> String {
        self.sshd_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Polls `ok` every 100 ms until it holds, failing after [`LIMIT`].
    fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {} s; sshd said:\n{}",
                LIMIT.as_secs(),
                self.sshd_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ssh` with the test's key to the kiosk account, no host-key checks.
    fn ssh_args(&self) -> Vec<String> {
        vec![
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-i".into(),
            self.key.display().to_string(),
            "-p".into(),
            self.port.to_string(),
        ]
    }

    fn target(&self) -> String {
        format!("{}@127.0.0.1", self.account.name)
    }

    /// `ssh ARGS kiosk@127.0.0.1 COMMAND…` run to completion (within [`LIMIT`]).
    fn ssh(&self, args: &[&str], command: &[&str]) -> imagecast_tests::Output {
        run(
            Command::new("ssh")
                .args(self.ssh_args())
                .args(args)
                .arg(self.target())
                .args(command),
            LIMIT,
        )
        .expect("ssh runs")
    }

    /// Opens `ssh -tt … COMMAND` in a new 80x24 tmux session `name`.
    fn session(&self, name: &str, command: &str) -> Session<'_> {
        let mut session = self.tmux.session(
            name,
            &format!(
                "ssh -tt {} {} {command}",
                self.ssh_args().join(" "),
                self.target()
            ),
        );
        session.sshd_log = Some(self.sshd_log.clone());
        session
    }

    /// The panel processes running now: (pid, uid).
    fn panels(&self) -> Vec<(u32, u32)> {
        let exe = self.panel_bin.display().to_string();
        processes(|args, _| args.first() == Some(&exe))
            .into_iter()
            .filter_map(|pid| {
                std::fs::metadata(format!("/proc/{pid}"))
                    .ok()
                    .map(|m| (pid, m.uid()))
            })
            .collect()
    }

    /// Waits until no panel process is left, at most [`HANGUP_LIMIT`].
    fn assert_no_panel_left(&self, after: &str) {
        assert_gone(&self.panel_bin, after);
    }
}

/// Waits until no process runs `exe`, at most [`HANGUP_LIMIT`].
fn assert_gone(exe: &Path, after: &str) {
    let exe = exe.display().to_string();
    let deadline = Instant::now() + HANGUP_LIMIT;
    loop {
        let left = processes(|args, _| args.first() == Some(&exe));
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{after}: {exe} still runs after {} s: pids {left:?}",
            HANGUP_LIMIT.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills every process running `exe`.
fn kill_all(exe: &Path) {
    let exe = exe.display().to_string();
    for pid in processes(|args, _| args.first() == Some(&exe)) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        self.tmux.kill_server();
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        // Whatever the panel binary still runs (as any user).
        kill_all(&self.panel_bin);
    }
}

/// A private tmux server (its own socket) whose panes stay after their command ends, so that
/// what it said last can be read.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path) -> Self {
        let tmux = Self {
            socket: dir.join("tmux.sock"),
        };
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\nset -g status off\n").expect("tmux.conf");
        // A session that keeps the server up between the test's sessions.
        must(tmux.command().arg("-f").arg(&conf).args([
            "new-session",
            "-d",
            "-s",
            "keep",
            "sleep 3600",
        ]));
        tmux
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    /// Runs `command` in a new 80x24 session `name`.
    fn session(&self, name: &str, command: &str) -> Session<'_> {
        must(
            self.command()
                .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", name])
                .arg(command),
        );
        Session {
            tmux: self,
            name: name.to_owned(),
            sshd_log: None,
        }
    }

    fn kill_server(&self) {
        let _ = run(self.command().arg("kill-server"), LIMIT);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill_server();
    }
}

/// One tmux session.
struct Session<'a> {
    tmux: &'a Tmux,
    name: String,
    /// What sshd logged, shown when the screen is not as expected.
    sshd_log: Option<Arc<Mutex<String>>>,
}

impl Session<'_> {
    /// The screen as text.
    fn screen(&self) -> String {
        let out = run(
            self.tmux
                .command()
                .args(["capture-pane", "-p", "-t", &self.name]),
            LIMIT,
        )
        .expect("tmux capture-pane runs");
        out.stdout
    }

    /// Waits until the screen shows every one of `texts`; returns the screen.
    #[track_caller]
    fn expect(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {texts:?} within {} s:\n{screen}\nsshd said:\n{}",
                LIMIT.as_secs(),
                self.sshd_log
                    .as_ref()
                    .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).clone())
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        must(
            self.tmux
                .command()
                .args(["send-keys", "-t", &self.name, "-l", text]),
        );
    }

    /// Presses named keys (tmux names: Tab, Enter, C-q).
    fn press(&self, keys: &[&str]) {
        must(
            self.tmux
                .command()
                .args(["send-keys", "-t", &self.name])
                .args(keys),
        );
    }

    /// Fills in FIG. 6's user ID and password and presses Start.
    fn login(&self, user: &str, password: &str) {
        self.type_text(user);
        self.press(&["Tab"]);
        self.type_text(password);
        self.press(&["Enter"]);
    }

    /// True once the command in the pane (ssh) has ended.
    fn ended(&self) -> bool {
        let out = run(
            self.tmux
                .command()
                .args(["display-message", "-p", "-t", &self.name, "#{pane_dead}"]),
            LIMIT,
        )
        .expect("tmux display-message runs");
        out.stdout.trim() == "1"
    }

    /// Waits until the pane's command ended.
    fn wait_ended(&self) {
        let deadline = Instant::now() + LIMIT;
        while !self.ended() {
            assert!(
                Instant::now() < deadline,
                "still running after {} s:\n{}",
                LIMIT.as_secs(),
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Closes the session: tmux kills ssh, as closing a terminal window does.
    fn drop_connection(self) {
        must(self.tmux.command().args(["kill-session", "-t", &self.name]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_kiosk_runs_only_the_panel_and_ends_with_the_connection() {
    let kiosk = Kiosk::start();
    let inbox = kiosk.dir.path().join("devl1-inbox");
    let receiver = kiosk.server.receiver(RECEIVER, &inbox).await;

    // sshd's own view of the account: the documented restrictions are in effect.
    let effective = must(
        Command::new(SSHD)
            .arg("-T")
            .arg("-C")
            .arg(format!(
                "user={},host=localhost,addr=127.0.0.1",
                kiosk.account.name
            ))
            .arg("-f")
            .arg(kiosk.dir.path().join("sshd_config")),
    );
    for line in [
        "permittty yes",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "allowstreamlocalforwarding no",
        "x11forwarding no",
        "permittunnel no",
        "disableforwarding yes",
        "permituserrc no",
    ] {
        assert!(
            effective.lines().any(|l| l == line),
            "sshd -T lacks {line:?}:\n{effective}"
        );
    }
    assert!(
        effective.contains(&format!(
            "forcecommand {} panel --kiosk",
            kiosk.panel_bin.display()
        )),
        "{effective}"
    );

    // A page in the ADF (the panel makes the other folders).
    let srv = kiosk.dir.path().join("srv");
    let adf = srv.join("adf");
    std::fs::create_dir(&adf).expect("the ADF");
    let png = image::GrayImage::from_raw(3, 1, vec![0, 128, 255]).expect("pixels");
    png.save_with_format(adf.join("memo.png"), image::ImageFormat::Png)
        .expect("a page");
    for p in [&adf, &adf.join("memo.png")] {
        kiosk.account.own(p);
    }

    // FIG. 6 → 7 → 8 → 9, and a distribution to group 4.
    let s = kiosk.session("walk", "");
    s.expect(&["Enter your user ID and password", " online ", "LCD (kiosk)"]);
    let panels = kiosk.panels();
    assert_eq!(panels.len(), 1, "one panel runs: {panels:?}");
    assert_eq!(
        panels[0].1, kiosk.account.uid,
        "the panel runs as the kiosk account"
    );
    s.login(USER, PASSWORD);
    s.expect(&["Select a mode", "6: Others", "1001 (operator)"]);
    s.type_text("6");
    s.expect(&["Select a distribution mode", "1: Distribute document"]);
    s.type_text("1");
    s.expect(&[
        "Select destinations",
        "4: product development-related places",
    ]);
    s.type_text("4");
    s.expect(&["[x] 4: product development-related places"]);
    s.press(&["Enter"]);
    s.expect(&["Distribution: finished", "1 destination(s): 1 printed"]);
    assert!(receiver.wait_for(1, LIMIT).await, "group 4 got the page");
    assert_eq!(receiver.files(), ["memo.png"]);
    let journal = kiosk.server.journal();
    assert!(
        journal
            .iter()
            .any(|l| l.contains(PANEL_DEVICE) && l.contains(RECEIVER)),
        "the journal records the kiosk's distribution: {journal:?}"
    );
    s.press(&["Enter"]);
    s.expect(&["Select a mode"]);

    // Closing needs an administrator: the operator's login is refused and the panel stays.
    s.press(&["C-q"]);
    s.expect(&["Administrator login to close the panel"]);
    s.login(USER, PASSWORD);
    s.expect(&["Only an administrator can close this kiosk."]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!s.ended(), "the panel did not close for an operator");
    assert_eq!(kiosk.panels().len(), 1, "the panel still runs");

    // A dropped connection ends the panel (on the SIGHUP, or the dead terminal, first).
    s.drop_connection();
    kiosk.assert_no_panel_left("the SSH connection dropped");

    // A command of the client's own gets the panel, never a shell.
    let s = kiosk.session("shell", "/bin/sh -c \"'echo pwned; exec /bin/sh'\"");
    s.expect(&["Enter your user ID and password", "LCD (kiosk)"]);
    assert!(!s.screen().contains("pwned"), "{}", s.screen());
    // An administrator's login closes it, and with it the session.
    s.press(&["C-q"]);
    s.expect(&["Administrator login to close the panel"]);
    s.login(ADMIN.0, ADMIN.1);
    s.wait_ended();
    assert!(!s.screen().contains("pwned"), "{}", s.screen());
    kiosk.assert_no_panel_left("the administrator closed the panel");

    // Without a terminal: the panel refuses to run, and the command is not run either.
    let out = kiosk.ssh(&["-T"], &["/bin/sh", "-c", "'echo pwned'"]);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("pwned") && !out.stderr.contains("pwned"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("the panel needs a terminal"),
        "{}",
        out.stderr
    );

    // sftp: the forced command runs instead of the sftp server, so it fails.
    let listing = kiosk.dir.path().join("sftp-batch");
    std::fs::write(&listing, "ls /\n").expect("an sftp batch");
    let out = run(
        Command::new("sftp")
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes"])
            .arg("-i")
            .arg(&kiosk.key)
            .arg("-P")
            .arg(kiosk.port.to_string())
            .arg("-b")
            .arg(&listing)
            .arg(kiosk.target()),
        LIMIT,
    )
    .expect("sftp runs");
    assert_ne!(out.code, 0, "sftp worked: {}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("bin"), "{}", out.stdout);

    // Remote forwarding is refused outright.
    let out = kiosk.ssh(
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:9",
        ],
        &[],
    );
    assert_ne!(out.code, 0, "-R was accepted: {}", out.stderr);
    // Local forwarding: the listener is the client's own, but sshd refuses every channel.
    let local = free_port();
    let mut forward = Command::new("ssh")
        .args(kiosk.ssh_args())
        .args(["-N", "-L", &format!("{local}:{}", kiosk.server.addr)])
        .arg(kiosk.target())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh -L starts");
    let mut through = None;
    kiosk.wait_until("ssh -L listening", || {
        through = std::net::TcpStream::connect(("127.0.0.1", local)).ok();
        through.is_some()
    });
    let mut through = through.expect("a connection to the forwarded port");
    through
        .set_read_timeout(Some(LIMIT))
        .expect("a read timeout");
    let mut got = Vec::new();
    let read = through.read_to_end(&mut got);
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(
        matches!(read, Ok(0)) || got.is_empty(),
        "bytes came through the forward: {read:?} {got:?}"
    );
    kiosk.wait_until("sshd refusing the forward", || {
        kiosk.sshd_log().contains("refused local port forward")
    });

    receiver.stop().await;
    kiosk.assert_no_panel_left("the end");
}

/// A panel of its own (no sshd) in a tmux session, online and logged in on FIG. 7, where it
/// draws no cursor: idle there, it writes nothing that could fail on a dead terminal.
struct LonePanel {
    server: TestServer,
    dir: tempfile::TempDir,
    exe: PathBuf,
    tmux: Tmux,
}

impl LonePanel {
    fn new() -> Self {
        let server = TestServer::start_demo().expect("the image server starts");
        let dir = tempfile::tempdir().expect("a temporary folder");
        // A copy, so that its processes are this test's alone.
        let exe = dir.path().join("imagecast");
        std::fs::copy(bin("imagecast"), &exe).expect("copy imagecast");
        let tmux = Tmux::start(dir.path());
        Self {
            server,
            dir,
            exe,
            tmux,
        }
    }

    /// Starts the panel as `wrapper PANEL… then` in the pane's shell, and logs in.
    fn start(&self, wrapper: &str, then: &str) -> Session<'_> {
        let root = self.dir.path().join("panel");
        let command = format!(
            "HOME={home} {wrapper} {exe} --server {addr} --device {PANEL_DEVICE} --token {token} \
             --server-fingerprint {fp} panel --kiosk --adf {root}/adf --output-tray {root}/tray \
             --removable {root}/removable --store {root}/store --state {root}/state{then}",
            home = self.dir.path().display(),
            exe = self.exe.display(),
            addr = self.server.addr,
            token = self.server.tokens[PANEL_DEVICE],
            fp = self
                .server
                .fingerprint
                .as_deref()
                .expect("the test server runs TLS"),
            root = root.display(),
        );
        let s = self.tmux.session("panel", &command);
        s.expect(&["Enter your user ID and password", "LCD (kiosk)", " online "]);
        s.login(USER, PASSWORD);
        s.expect(&["Select a mode"]);
        s
    }

    /// The panel's pid.
    fn pid(&self) -> u32 {
        let exe = self.exe.display().to_string();
        let panels = processes(|args, _| args.first() == Some(&exe));
        assert_eq!(panels.len(), 1, "one panel: {panels:?}");
        panels[0]
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("panel/state/panel.log")).unwrap_or_default()
    }
}

impl Drop for LonePanel {
    fn drop(&mut self) {
        self.tmux.kill_server();
        kill_all(&self.exe);
    }
}

/// A panel in a session of its own (`setsid`) gets no SIGHUP when its terminal hangs up: it
/// must still notice that the terminal is gone and end, not spin on it.
#[test]
fn a_panel_whose_terminal_hangs_up_without_a_signal_ends() {
    let lone = LonePanel::new();
    let s = lone.start("setsid -w", "");
    lone.pid();
    s.drop_connection();
    assert_gone(&lone.exe, "its terminal hung up");
}

/// SIGTERM closes even a kiosk panel, cleanly: exit status 0, the terminal restored (the
/// panel's screen gone from it), the reason in the log.
#[test]
fn sigterm_closes_the_panel_and_restores_the_terminal() {
    let lone = LonePanel::new();
    let status = lone.dir.path().join("status");
    let s = lone.start("", &format!("; echo $? > {}", status.display()));
    must(Command::new("kill").args(["-TERM", &lone.pid().to_string()]));
    s.wait_ended();
    let deadline = Instant::now() + LIMIT;
    let code = loop {
        match std::fs::read_to_string(&status) {
            Ok(code) if code.ends_with('\n') => break code,
            _ if Instant::now() > deadline => panic!("no exit status within {LIMIT:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(code.trim(), "0", "the panel's exit status (128+15: killed)");
    let screen = s.screen();
    assert!(
        !screen.contains("LCD"),
        "the panel's screen is left:\n{screen}"
    );
    assert!(
        lone.log()
            .contains("closing the panel: asked to stop (SIGTERM)"),
        "{}",
        lone.log()
    );
}
