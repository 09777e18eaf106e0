//! Real-time sessions through the relay (issue 13, seed 004) with the real binaries:
//! `who`, `relay send`, `relay listen`, `relay pipe`, `logout`, and `imagecast-server relay
//! sessions`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imagecast_shared::client::{Client, Event, RelaySession};
use imagecast_shared::msg::RelayTarget;
use imagecast_tests::{Scratch, TestServer, multipage_tiff};
use sha2::{Digest, Sha256};

use crate::LIMIT;

const A: &str = "sale1.hqs.mei.co.jp";
const B: &str = "sale1.osk.mei.co.jp";
const C: &str = "sale1.ngy.mei.co.jp";
const D: &str = "sale1.fko.mei.co.jp";

/// A running `imagecast` whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    err: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn start(mut cmd: Command, stdin: Stdio) -> Running {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("imagecast starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let e = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut s = e.lock().expect("stderr text");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running { child, lines, err }
    }

    /// The next stdout line containing `text`, within `limit`.
    fn expect_line(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with {text:?} within {limit:?}; stderr: {}",
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.err.lock().expect("stderr text").clone()
    }

    /// Waits for stderr to contain `text`.
    fn expect_stderr(&self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stderr().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("stderr lacks {text:?}: {}", self.stderr());
    }

    /// Waits for the exit code, killing the process after `limit`.
    fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {limit:?}; stderr: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin piped")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `relay listen --out DIR ARGS` as `domain`, once it listens.
fn listen(server: &TestServer, domain: &str, out: &Path, args: &[&str]) -> Running {
    let mut cmd = server.imagecast(domain);
    cmd.args(["relay", "listen", "--out"]).arg(out).args(args);
    let l = Running::start(cmd, Stdio::null());
    l.expect_stderr("listening for connection demands", LIMIT);
    l
}

/// A session A demanded and B accepted, through the library: both clients (kept alive by the
/// caller) and both ends of the session.
async fn library_session(server: &TestServer) -> (Client, Client, RelaySession, RelaySession) {
    let (b, mut events) = server.connect(B, false).await.expect("B connects");
    b.relay_listen().await.expect("B listens");
    let (a, _a_events) = server.connect(A, false).await.expect("A connects");
    let demanding = tokio::spawn({
        let a = a.clone();
        async move {
            a.demand(RelayTarget::Device(B.into()), LIMIT)
                .await
                .expect("the demand is accepted")
        }
    });
    let demand = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(Event::Demanded(d)) = events.recv().await {
                break d;
            }
        }
    })
    .await
    .expect("B is asked");
    let at_b = b
        .answer(demand.demand, Ok(()))
        .await
        .expect("the answer goes out")
        .expect("a session");
    let at_a = demanding.await.expect("the demand returns");
    (a, b, at_a, at_b)
}

/// `imagecast relay send --to-device B FILE` from A, to completion.
fn send_a_to_b(server: &TestServer, file: &Path) -> imagecast_tests::Output {
    server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            B.as_ref(),
            file.as_os_str(),
        ],
    )
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// A deterministic pseudo-random stream.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The server process's resident memory high-water mark and now, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("a number")
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn accepted_pages_arrive_byte_identical_and_are_journalled() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let out = scratch.join("tray");
    let listener = listen(&server, B, &out, &["--accept-all"]);

    // who: B takes demands, with its user, idle.
    let who = server.terminal(A, ["who"]);
    who.assert_code(0);
    let line = who.stdout.lines().find(|l| l.starts_with(B)).unwrap();
    assert!(line.contains("1001") && line.ends_with("idle"), "{line}");
    let json = server.terminal(A, ["who", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["domain"] == B && r["takes_demands"] == true),
        "{rows}"
    );

    let tiff = scratch.join("three.tif");
    let tiff_bytes = multipage_tiff(&tiff, 3, 64, 64).unwrap();
    let big = pattern(1, 3 * 1024 * 1024 + 17);
    let big_file = scratch.page("big.bin", &big);
    let send = server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            B.as_ref(),
            tiff.as_os_str(),
            big_file.as_os_str(),
        ],
    );
    send.assert_code(0);
    assert!(
        send.stdout
            .contains(&format!("connection demand to {B}: accepted (session ")),
        "{}",
        send.stdout
    );
    assert!(send.stdout.contains(&format!("page 1/2 printed by {B}")));
    assert!(send.stdout.contains(&format!("page 2/2 printed by {B}")));
    listener.expect_line(&format!("demand from {A}"), LIMIT);
    listener.expect_line("page 2/2", LIMIT);
    // Each file is one file at the other end, byte for byte (the TIFF is not split).
    assert_eq!(std::fs::read(out.join("three.tif")).unwrap(), tiff_bytes);
    assert_eq!(sha(&std::fs::read(out.join("big.bin")).unwrap()), sha(&big));
    let session = listener.expect_line("ended", LIMIT);
    assert!(session.contains("done"), "{session}");

    // The same again by user ID: the second copy gets a name of its own.
    let send = server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-user".as_ref(),
            "1001".as_ref(),
            tiff.as_os_str(),
        ],
    );
    send.assert_code(0);
    assert_eq!(std::fs::read(out.join("three-2.tif")).unwrap(), tiff_bytes);

    // The journal has both sessions, with the bytes each way and how they ended.
    let deadline = Instant::now() + LIMIT;
    let rows = loop {
        let out = server.admin_run(&["relay", "sessions", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let rows: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let rows = rows.as_array().unwrap().clone();
        if rows.len() == 2 && rows.iter().all(|r| !r["ended_ms"].is_null()) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "sessions not journalled: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows[0]["demander"], A);
    assert_eq!(rows[0]["target"], B);
    assert!(rows[0]["bytes_to_target"].as_u64().unwrap() > big.len() as u64);
    assert!(rows[0]["bytes_to_demander"].as_u64().unwrap() > 0);
    assert!(
        rows[0]["end_reason"]
            .as_str()
            .unwrap()
            .contains("ended the session: done")
    );
    let text = server.admin_run(&["relay", "sessions", "--last", "1"]);
    assert_eq!(text.stdout.lines().count(), 1, "{}", text.stdout);
    assert!(text.stdout.contains(&format!("{A}(1001) -> {B}(1001)")));
}

#[test]
fn rejected_not_online_and_busy_are_said_at_once() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let page = scratch.page("p.bin", b"page");
    let out = scratch.join("tray");
    let listener = listen(
        &server,
        B,
        &out,
        &["--accept-from", "*.ngy.mei.co.jp", "9999"],
    );

    // A (hqs) matches no pattern: rejected at once, exit 2 with the reason.
    let started = Instant::now();
    let send = send_a_to_b(&server, &page);
    send.assert_code(2);
    assert!(
        send.stderr.contains("rejected the connection demand")
            && send.stderr.contains("--accept-from"),
        "{}",
        send.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    listener.expect_line("rejected", LIMIT);
    assert!(!out.join("p.bin").exists());

    // A terminal that asks its operator, with no terminal to ask on, rejects with that reason.
    let _asking = listen(&server, D, &scratch.join("d"), &["--ask"]);
    let send = server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            D.as_ref(),
            page.as_os_str(),
        ],
    );
    send.assert_code(2);
    assert!(send.stderr.contains("no operator"), "{}", send.stderr);
    drop(_asking);

    // C (ngy) matches: accepted.
    let send = server.terminal(
        C,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            B.as_ref(),
            page.as_os_str(),
        ],
    );
    send.assert_code(0);
    listener.expect_line(&format!("demand from {C}"), LIMIT);
    listener.expect_line("ended", LIMIT);

    // Not online: at once, naming why (D's listener has gone).
    let send = server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            D.as_ref(),
            page.as_os_str(),
        ],
    );
    send.assert_code(2);
    assert!(
        send.stderr.contains(&format!("{D} is not online")),
        "{}",
        send.stderr
    );
    let send = server.terminal(A, ["relay", "pipe", "--to-user", "nobody"]);
    send.assert_code(2);
    assert!(send.stderr.contains("not logged in"), "{}", send.stderr);

    // Busy: C holds a session with B; A hears `busy` at once.
    let mut cmd = server.imagecast(C);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut holder = Running::start(cmd, Stdio::piped());
    listener.expect_line(&format!("demand from {C}"), LIMIT);
    let who = server.terminal(A, ["who"]);
    assert!(
        who.stdout
            .lines()
            .any(|l| l.starts_with(B) && l.ends_with("in-session")),
        "{}",
        who.stdout
    );
    let send = send_a_to_b(&server, &page);
    send.assert_code(2);
    assert!(send.stderr.contains("busy"), "{}", send.stderr);
    // The pipe's input ends before it sent anything: B half-closes too, and the session
    // ends cleanly.
    drop(holder.stdin());
    assert_eq!(holder.wait(LIMIT), 0, "{}", holder.stderr());
    listener.expect_line("ended", LIMIT);
}

#[tokio::test]
async fn an_unanswered_demand_expires() {
    let server =
        TestServer::start_demo_with(&["--heartbeat-ms", "1000", "--relay-demand-timeout-s", "2"])
            .unwrap();
    let (b, mut events) = server.connect(B, false).await.unwrap();
    b.relay_listen().await.unwrap();
    let scratch = Scratch::new();
    let page = scratch.page("p.bin", b"page");
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "send", "--to-device", B]).arg(&page);
    let mut send = Running::start(cmd, Stdio::null());
    let started = Instant::now();
    let demanded = tokio::time::timeout(LIMIT, async {
        loop {
            match events.recv().await {
                Some(Event::Demanded(d)) => break d,
                Some(_) => {}
                None => panic!("connection ended"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(demanded.from.domain, A);
    assert_eq!(demanded.user, "1001");
    let withdrawn = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(Event::DemandWithdrawn { demand, reason }) = events.recv().await {
                break (demand, reason);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(withdrawn.0, demanded.demand);
    let code = tokio::task::spawn_blocking(move || {
        let code = send.wait(LIMIT);
        (code, send.stderr())
    })
    .await
    .unwrap();
    assert_eq!(code.0, 2, "{}", code.1);
    assert!(code.1.contains("did not answer"), "{}", code.1);
    assert!(started.elapsed() >= Duration::from_secs(2));
    // Too late to answer now.
    let late = b.answer(demanded.demand, Ok(())).await.unwrap_err();
    assert!(late.to_string().contains("not waiting"), "{late}");
}

/// A local TCP service for `--forward`: records the SHA-256 of what it reads, and writes
/// `reply` then half-closes.
fn service(reply: Vec<u8>) -> (String, mpsc::Receiver<(usize, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = l.accept().expect("a connection");
        let mut writer = stream.try_clone().expect("clone");
        let w = std::thread::spawn(move || {
            writer.write_all(&reply).expect("reply written");
            writer
                .shutdown(std::net::Shutdown::Write)
                .expect("half-close");
        });
        let mut reader = stream;
        let mut hash = Sha256::new();
        let mut n = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = reader.read(&mut buf).expect("read");
            if k == 0 {
                break;
            }
            n += k;
            hash.update(&buf[..k]);
        }
        let _ = w.join();
        let _ = tx.send((n, hash.finalize().to_vec()));
    });
    (addr, rx)
}

#[test]
fn pipe_carries_64_mib_each_way_with_bounded_server_memory() {
    const SIZE: usize = 64 << 20;
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let down = pattern(2, SIZE);
    let down_sha = sha(&down);
    let (addr, got) = service(down);
    let _listener = listen(
        &server,
        B,
        &scratch.join("tray"),
        &["--accept-all", "--forward", &addr],
    );
    let pid = server.pid().expect("the server runs");
    let (hwm_before, _) = memory_kib(pid);

    let up = pattern(3, SIZE);
    let up_sha = sha(&up);
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(&up).expect("fed");
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut n = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = stdout.read(&mut buf).expect("read");
            if k == 0 {
                break;
            }
            n += k;
            hash.update(&buf[..k]);
        }
        (n, hash.finalize().to_vec())
    });
    let limit = Duration::from_secs(240);
    let (n, got_down) = reader.join().unwrap();
    feeder.join().unwrap();
    let (m, got_up) = got.recv_timeout(limit).unwrap();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "pipe did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(n, SIZE, "bytes down");
    assert_eq!(got_down, down_sha);
    assert_eq!(m, SIZE, "bytes up");
    assert_eq!(got_up, up_sha);
    let (hwm_after, rss_after) = memory_kib(pid);
    let growth_mib = hwm_after.saturating_sub(hwm_before) / 1024;
    eprintln!("server peak memory {hwm_before} KiB before, {hwm_after} KiB after 64 MiB each way");
    assert!(
        growth_mib < 48,
        "the server's peak memory grew by {growth_mib} MiB (now {rss_after} KiB resident)"
    );
}

#[test]
fn a_stalled_reader_does_not_slow_a_second_session() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    // Session 1: B forwards to a service that accepts and never reads.
    let stall = TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_addr = stall.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || {
        let conn = stall.accept().map(|(c, _)| c);
        std::thread::sleep(Duration::from_secs(60));
        drop(conn);
    });
    let _b = listen(
        &server,
        B,
        &scratch.join("b"),
        &["--accept-all", "--forward", &stall_addr],
    );
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut stalled = Running::start(cmd, Stdio::piped());
    let mut stdin = stalled.stdin();
    let (fed_tx, fed_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let chunk = vec![7u8; 1 << 20];
        let mut fed = 0usize;
        // Writes block once the relay stops granting credit.
        while fed < (256 << 20) {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
            fed += chunk.len();
            let _ = fed_tx.send(fed);
        }
    });
    // Let it stall.
    std::thread::sleep(Duration::from_secs(3));
    let stalled_at = fed_rx.try_iter().last().unwrap_or(0);

    // Session 2: C sends 16 MiB to D and is done quickly.
    let out = scratch.join("d");
    let _d = listen(&server, D, &out, &["--accept-all"]);
    let data = pattern(4, 16 << 20);
    let file = scratch.page("second.bin", &data);
    let started = Instant::now();
    let send = server.terminal(
        C,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            D.as_ref(),
            file.as_os_str(),
        ],
    );
    send.assert_code(0);
    let took = started.elapsed();
    assert_eq!(
        sha(&std::fs::read(out.join("second.bin")).unwrap()),
        sha(&data)
    );
    assert!(
        took < Duration::from_secs(25),
        "the second session took {took:?}"
    );
    // The first is still stalled: it took little more than its windows and socket buffers.
    let now_fed = fed_rx.try_iter().last().unwrap_or(stalled_at);
    assert!(
        now_fed < (64 << 20),
        "the stalled session kept taking data: {now_fed} bytes"
    );
    assert!(stalled.child.try_wait().unwrap().is_none());
    drop(stalled);
    drop(holder);
}

#[test]
fn a_peer_killed_mid_session_ends_it_with_a_reason() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let mut b = listen(&server, B, &scratch.join("b"), &["--accept-all"]);
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut pipe = Running::start(cmd, Stdio::piped());
    let _stdin = pipe.stdin();
    b.expect_line(&format!("demand from {A}"), LIMIT);
    b.child.kill().unwrap();
    let _ = b.child.wait();
    let started = Instant::now();
    assert_eq!(pipe.wait(LIMIT), 2, "{}", pipe.stderr());
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = pipe.stderr();
    assert!(
        err.contains(&format!("the connection of {B} ended")),
        "{err}"
    );
}

#[test]
fn logout_ends_every_session_of_the_device() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let mut b = listen(&server, B, &scratch.join("b"), &["--accept-all"]);
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut pipe = Running::start(cmd, Stdio::piped());
    let _stdin = pipe.stdin();
    b.expect_line(&format!("demand from {A}"), LIMIT);

    let out = server.terminal(B, ["logout"]);
    out.assert_code(0);
    // The listener exits 0; the peer hears why.
    assert_eq!(b.wait(LIMIT), 0, "{}", b.stderr());
    assert_eq!(pipe.wait(LIMIT), 2);
    assert!(
        pipe.stderr().contains(&format!("{B} logged out")),
        "{}",
        pipe.stderr()
    );
    let who = server.terminal(A, ["who"]);
    assert!(
        !who.stdout.lines().any(|l| l.starts_with(B)),
        "{}",
        who.stdout
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let s = server.admin_run(&["relay", "sessions"]);
        if s.stdout.contains("logged out") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", s.stdout);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn an_administrator_lists_and_ends_sessions() {
    let server = TestServer::start_demo().unwrap();
    let (_a, _b, mut at_a, mut at_b) = library_session(&server).await;
    assert_eq!(at_a.id, at_b.id);
    at_a.sender
        .send(bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(&at_b.receiver.recv().await.unwrap().unwrap()[..], b"hello");

    let (admin, _e) = server.connect(C, false).await.unwrap();
    // Not without an administrator logged in.
    assert!(admin.relay_sessions().await.is_err());
    admin.login("9000", "9000").await.unwrap();
    let list = admin.relay_sessions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].demander.domain, A);
    assert_eq!(list[0].bytes_to_target, 5);
    // The terminal's commands for an administrator: list, then end.
    let as_admin = |args: &[&str]| {
        let mut cmd = server.imagecast(C);
        cmd.env("IMAGECAST_USER", "9000")
            .env("IMAGECAST_PASSWORD", "9000")
            .args(args);
        imagecast_tests::run(&mut cmd, LIMIT).unwrap()
    };
    let listed = as_admin(&["relay", "sessions"]);
    listed.assert_code(0);
    assert_eq!(
        listed.stdout.trim(),
        format!("{} {A} -> {B} 5 0", list[0].session),
        "{}",
        listed.stderr
    );
    let json = as_admin(&["relay", "sessions", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(rows[0]["bytes_to_target"], 5, "{rows}");
    assert_eq!(rows[0]["target"], B, "{rows}");
    let session = list[0].session.to_string();
    as_admin(&["relay", "end", &session, "--reason", "maintenance"]).assert_code(0);
    // An operator may not.
    let refused = server.terminal(C, ["relay", "end", &session]);
    refused.assert_error("administrator");
    let err = at_b.receiver.recv().await.unwrap_err();
    assert!(err.to_string().contains("maintenance"), "{err}");
    let err = at_a.receiver.recv().await.unwrap_err();
    assert!(err.to_string().contains("maintenance"), "{err}");
    let err = at_a
        .sender
        .send(bytes::Bytes::from_static(b"more"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maintenance"), "{err}");
    assert!(admin.relay_sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn files_travel_both_ways_in_one_session() {
    let server = TestServer::start_demo().unwrap();
    let (_a, _b, at_a, at_b) = library_session(&server).await;
    // Two files each way, at the same time, several windows long.
    let to_b = [pattern(10, 17 << 20), pattern(11, 5000)];
    let to_a = [pattern(12, 2 << 20), pattern(13, 1)];
    let send = |sender: imagecast_shared::client::SessionSender, files: Vec<Vec<u8>>| {
        tokio::spawn(async move {
            for f in files {
                sender.send(bytes::Bytes::from(f)).await.unwrap();
            }
            sender.finish().await.unwrap();
        })
    };
    let receive = |mut rx: imagecast_shared::client::SessionReceiver| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(b) = rx.recv().await.unwrap() {
                got.extend_from_slice(&b);
            }
            got
        })
    };
    let s1 = send(at_a.sender.clone(), to_b.to_vec());
    let s2 = send(at_b.sender.clone(), to_a.to_vec());
    let r1 = receive(at_b.receiver);
    let r2 = receive(at_a.receiver);
    s1.await.unwrap();
    s2.await.unwrap();
    let got_b = tokio::time::timeout(LIMIT, r1).await.unwrap().unwrap();
    let got_a = tokio::time::timeout(LIMIT, r2).await.unwrap().unwrap();
    assert_eq!(sha(&got_b), sha(&to_b.concat()));
    assert_eq!(sha(&got_a), sha(&to_a.concat()));
    // The journal shows an open session's bytes as it goes (every 16 MiB).
    let deadline = Instant::now() + LIMIT;
    loop {
        let out = server.admin_run(&["relay", "sessions", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let row = &rows[0];
        if row["ended_ms"].is_null() && row["bytes_to_target"].as_u64() >= Some(16 << 20) {
            break;
        }
        assert!(Instant::now() < deadline, "{rows}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = server.admin_run(&["relay", "sessions"]);
    assert!(text.stdout.trim_end().ends_with("open"), "{}", text.stdout);
    at_a.sender.end("done").await.unwrap();
}

#[test]
fn a_listener_reconnects_after_a_server_restart_but_not_after_logout() {
    let mut server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let out = scratch.join("b");
    let mut b = listen(&server, B, &out, &["--accept-all"]);
    server.kill9();
    server.restart().unwrap();
    let deadline = Instant::now() + LIMIT;
    while b
        .stderr()
        .matches("listening for connection demands")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{}", b.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.stderr().contains("reconnecting"), "{}", b.stderr());
    let page = scratch.page("after.bin", b"after the restart");
    let send = send_a_to_b(&server, &page);
    send.assert_code(0);
    assert_eq!(
        std::fs::read(out.join("after.bin")).unwrap(),
        b"after the restart"
    );
    server.terminal(B, ["logout"]).assert_code(0);
    assert_eq!(b.wait(LIMIT), 0, "{}", b.stderr());
    assert_eq!(
        b.stderr()
            .matches("listening for connection demands")
            .count(),
        2,
        "{}",
        b.stderr()
    );
}

#[tokio::test]
async fn a_broken_session_says_which_pages_were_printed() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let first = scratch.page("first.bin", pattern(20, 1000));
    let second = scratch.page("second.bin", pattern(21, 3 << 20));
    // B is a terminal of the test's own: it confirms the first page, then dies.
    let (b, mut events) = server.connect(B, false).await.unwrap();
    b.relay_listen().await.unwrap();
    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "send", "--to-device", B])
        .arg(&first)
        .arg(&second);
    let send = Running::start(cmd, Stdio::null());
    let demand = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(Event::Demanded(d)) = events.recv().await {
                break d;
            }
        }
    })
    .await
    .unwrap();
    let mut session = b.answer(demand.demand, Ok(())).await.unwrap().unwrap();
    let header = b"page 1 2 1000 9\n";
    let want = header.len() + "first.bin".len() + 1000;
    let mut got = Vec::new();
    while got.len() < want {
        got.extend_from_slice(&session.receiver.recv().await.unwrap().unwrap());
    }
    assert!(got.starts_with(header), "{:?}", &got[..header.len()]);
    session
        .sender
        .send(bytes::Bytes::from_static(b"printed 1\n"))
        .await
        .unwrap();
    // Part of the second page arrives; then this terminal is gone.
    let _ = session.receiver.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.close().await;
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let mut send = send;
        let code = send.wait(LIMIT);
        let mut out = Vec::new();
        // Until the reader thread saw the end of the output.
        while let Ok(l) = send.lines.recv_timeout(LIMIT) {
            out.push(l);
        }
        (code, out.join("\n"), send.stderr())
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(out.contains(&format!("page 1/2 printed by {B}")), "{out}");
    assert!(!out.contains("page 2/2"), "{out}");
    assert!(
        err.contains(&format!("the connection of {B} ended"))
            && err.contains("pages 1 to 1 of 2 were printed"),
        "{err}"
    );
}

/// [0031]: a terminal busy in a session takes a demand on another connection it keeps for
/// that; `busy` only when none is vacant.
#[test]
fn a_second_listening_connection_takes_the_demand_while_the_first_is_busy() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let out = scratch.join("b");
    let first = listen(&server, B, &out, &["--accept-all"]);
    let second = listen(&server, B, &out, &["--accept-all"]);
    let mut cmd = server.imagecast(C);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut holder = Running::start(cmd, Stdio::piped());
    let _stdin = holder.stdin();
    let deadline = Instant::now() + LIMIT;
    while !server
        .terminal(A, ["who"])
        .stdout
        .lines()
        .any(|l| l.starts_with(B) && l.ends_with("in-session"))
    {
        assert!(Instant::now() < deadline, "the pipe's session never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = scratch.page("p.bin", b"to the vacant connection");
    let send = send_a_to_b(&server, &page);
    send.assert_code(0);
    assert_eq!(
        std::fs::read(out.join("p.bin")).unwrap(),
        b"to the vacant connection"
    );
    // One listener took the pipe, the other the pages.
    first.expect_line("demand from", LIMIT);
    second.expect_line("demand from", LIMIT);
    // A second pipe takes the vacant connection again; with both in a session, `busy`.
    let mut cmd = server.imagecast(D);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut holder2 = Running::start(cmd, Stdio::piped());
    let _stdin2 = holder2.stdin();
    let accepted = format!("demand from {D}");
    let deadline = Instant::now() + LIMIT;
    'wait: loop {
        for l in [&first, &second] {
            if l.lines.try_iter().any(|line| line.contains(&accepted)) {
                break 'wait;
            }
        }
        assert!(Instant::now() < deadline, "{}", holder2.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let send = send_a_to_b(&server, &page);
    send.assert_code(2);
    assert!(send.stderr.contains("busy"), "{}", send.stderr);
    assert!(holder2.child.try_wait().unwrap().is_none());
}

/// A peer that goes silent (no close, no heartbeat: a pulled cable) ends the session for the
/// other side within the heartbeat timeout (two intervals, 2 s here), with the reason.
#[tokio::test]
async fn a_silent_peer_ends_the_session_within_the_heartbeat_timeout() {
    use imagecast_shared::frame::{FrameReader, OutFrame, decode_server_msg};
    use imagecast_shared::limits::{MAX_FRAME, RELAY_WINDOW};
    use imagecast_shared::msg::{ClientMsg, Hello, HelloReply, ServerMsg};

    let server = TestServer::start_demo().unwrap();
    // B by hand: it listens, accepts, then says nothing more and keeps the socket open.
    let stream = server.raw().await.unwrap();
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = FrameReader::new(rd, MAX_FRAME);
    OutFrame::encode(&Hello::new(B, &server.tokens[B], "silent", false))
        .unwrap()
        .write_to(&mut wr)
        .await
        .unwrap();
    let welcome = reader.read_msg::<HelloReply>("welcome").await.unwrap();
    assert!(
        matches!(welcome, Some(HelloReply::Welcome(_))),
        "{welcome:?}"
    );
    async fn next(
        reader: &mut FrameReader<tokio::io::ReadHalf<imagecast_tests::RawStream>>,
    ) -> ServerMsg {
        loop {
            let body = tokio::time::timeout(LIMIT, reader.read_frame_bytes())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let msg = decode_server_msg(body).unwrap();
            if msg != ServerMsg::Heartbeat {
                return msg;
            }
        }
    }
    OutFrame::encode(&ClientMsg::RelayListen { id: 1 })
        .unwrap()
        .write_to(&mut wr)
        .await
        .unwrap();
    assert_eq!(next(&mut reader).await, ServerMsg::Ok { id: 1 });

    let mut cmd = server.imagecast(A);
    cmd.args(["relay", "pipe", "--to-device", B]);
    let mut pipe = Running::start(cmd, Stdio::piped());
    let _stdin = pipe.stdin();
    let ServerMsg::Demanded { demand, .. } = next(&mut reader).await else {
        panic!("no demand")
    };
    OutFrame::encode(&ClientMsg::Answer {
        id: 2,
        demand,
        accept: true,
        reason: String::new(),
        window: RELAY_WINDOW,
    })
    .unwrap()
    .write_to(&mut wr)
    .await
    .unwrap();
    assert!(matches!(
        next(&mut reader).await,
        ServerMsg::SessionOpen { id: 2, .. }
    ));
    // Silence from here on.
    let started = Instant::now();
    let (code, err) = tokio::task::spawn_blocking(move || (pipe.wait(LIMIT), pipe.stderr()))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("the connection of {B} ended")) && err.contains("silent"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop((reader, wr));
}

/// `relay pipe` as an SSH ProxyCommand, to sshd behind `relay listen --forward` (docs/relay.md).
/// Needs `ssh`, `sshd` and root (CI runs as root); says so and returns without them.
#[test]
fn ssh_runs_through_relay_pipe_as_its_proxy_command() {
    let (ssh, sshd) = (Path::new("/usr/bin/ssh"), Path::new("/usr/sbin/sshd"));
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !(ssh.exists() && sshd.exists() && root) {
        eprintln!("skipped: needs ssh, sshd and root");
        return;
    }
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let keygen = |name: &str| {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(scratch.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    };
    keygen("host");
    keygen("client");
    std::fs::copy(scratch.join("client.pub"), scratch.join("authorized")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = Command::new(sshd)
        .args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "ListenAddress=127.0.0.1", "-h"])
        .arg(scratch.join("host"))
        .arg("-o")
        .arg(format!(
            "AuthorizedKeysFile={}",
            scratch.join("authorized").display()
        ))
        .args([
            "-o",
            "StrictModes=no",
            "-o",
            "PidFile=none",
            "-o",
            "UsePAM=no",
        ])
        .args(["-o", "PermitRootLogin=prohibit-password"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let forward = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + LIMIT;
    while std::net::TcpStream::connect(&forward).is_err() {
        assert!(Instant::now() < deadline, "sshd does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = listen(
        &server,
        B,
        &scratch.join("b"),
        &["--accept-all", "--forward", &forward],
    );
    // The proxy command runs as A; ssh passes it its own environment.
    let proxy = server.imagecast(A).get_program().to_owned();
    let mut cmd = Command::new(ssh);
    cmd.env_clear();
    for (k, v) in server.imagecast(A).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .args(["-o", "BatchMode=yes", "-i"])
    .arg(scratch.join("client"))
    .arg("-o")
    .arg(format!(
        "ProxyCommand={} relay pipe --to-device {B}",
        proxy.to_string_lossy()
    ))
    .args([
        "root@lab1",
        "echo through the relay; head -c 3000000 /dev/zero | wc -c",
    ]);
    let out = imagecast_tests::run(&mut cmd, LIMIT).unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    out.assert_code(0);
    assert!(
        out.stdout.contains("through the relay") && out.stdout.contains("3000000"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    b.expect_line(&format!("demand from {A}"), LIMIT);
    let ended = b.expect_line("session", LIMIT);
    assert!(ended.contains("ended"), "{ended}");
}

/// The next connection demand B is asked, within the limit.
async fn next_demand(
    events: &mut imagecast_shared::client::Events,
) -> imagecast_shared::client::IncomingDemand {
    tokio::time::timeout(LIMIT, async {
        loop {
            match events.recv().await {
                Some(Event::Demanded(d)) => break d,
                Some(_) => {}
                None => panic!("the connection ended"),
            }
        }
    })
    .await
    .expect("a demand within the limit")
}

#[tokio::test]
async fn refused_demands_are_journalled_apart_from_sessions() {
    let server = TestServer::start_demo_with(&["--relay-demand-timeout-s", "2"]).unwrap();
    let (a, mut a_events) = server.connect(A, false).await.unwrap();
    tokio::spawn(async move { while a_events.recv().await.is_some() {} });
    a.login(imagecast_tests::USER, imagecast_tests::PASSWORD)
        .await
        .unwrap();
    let demand = |target: &str| {
        let a = a.clone();
        let target = target.to_owned();
        tokio::spawn(async move { a.demand(RelayTarget::Device(target), LIMIT).await })
    };
    // Not online.
    let err = demand(D).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("not online"), "{err}");
    // Rejected, with a reason.
    let (b, mut b_events) = server.connect(B, false).await.unwrap();
    b.relay_listen().await.unwrap();
    let asking = demand(B);
    let d = next_demand(&mut b_events).await;
    assert!(
        b.answer(d.demand, Err("out to lunch".into()))
            .await
            .unwrap()
            .is_none()
    );
    let err = asking.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("out to lunch"), "{err}");
    // Expired: B hears the demand and says nothing.
    let asking = demand(B);
    next_demand(&mut b_events).await;
    let err = asking.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
    // Busy: A and B in a session, C demands B.
    let asking = demand(B);
    let d = next_demand(&mut b_events).await;
    let at_b = b.answer(d.demand, Ok(())).await.unwrap().unwrap();
    let at_a = asking.await.unwrap().unwrap();
    let (c, _c_events) = server.connect(C, false).await.unwrap();
    let err = c
        .demand(RelayTarget::Device(B.into()), LIMIT)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
    at_a.sender.end("done").await.unwrap();
    assert!(at_b.receiver.id() == at_a.id);

    // The journal has the four refused demands, who, when and why, and the one session.
    let deadline = Instant::now() + LIMIT;
    let rows = loop {
        let out = server.admin_run(&["relay", "sessions", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let rows: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let rows = rows.as_array().unwrap().clone();
        if rows.len() == 5 && rows.iter().any(|r| !r["ended_ms"].is_null()) {
            break rows;
        }
        assert!(Instant::now() < deadline, "not journalled: {rows:?}");
        // The clients' tasks run on this test's runtime: wait on it, not on the thread.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("demand", "not-online"),
            ("demand", "rejected"),
            ("demand", "expired"),
            ("session", ""),
            ("demand", "busy"),
        ],
        "{rows:?}"
    );
    assert_eq!(rows[0]["demander"], A);
    assert_eq!(rows[0]["demander_user"], "1001");
    assert_eq!(rows[0]["target"], D);
    assert!(rows[1]["reason"].as_str().unwrap().contains("out to lunch"));
    assert_eq!(rows[2]["target"], B);
    assert!(rows[2]["at_ms"].as_i64().unwrap() > 0);
    assert_eq!(rows[4]["demander"], C);
    assert!(rows[4]["reason"].as_str().unwrap().contains("busy"));
    // In lines, a demand says so first, a session starts with its number.
    let text = server.admin_run(&["relay", "sessions"]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", text.stdout);
    assert!(
        lines[0].starts_with("demand ")
            && lines[0].contains(&format!("{A}(1001) -> {D} not-online")),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("rejected") && lines[1].contains("out to lunch"));
    assert!(lines[2].starts_with("demand ") && lines[2].contains(" expired "));
    assert!(lines[3].starts_with(&at_a.id.to_string()), "{}", lines[3]);
    assert!(lines[4].starts_with("demand ") && lines[4].contains(" busy "));
    let last = server.admin_run(&["relay", "sessions", "--last", "2"]);
    assert_eq!(last.stdout.lines().count(), 2, "{}", last.stdout);
    assert!(last.stdout.lines().last().unwrap().contains(" busy "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_whose_target_leaves_unanswered_is_journalled_as_withdrawn() {
    let server = TestServer::start_demo().unwrap();
    let (a, mut a_events) = server.connect(A, false).await.unwrap();
    tokio::spawn(async move { while a_events.recv().await.is_some() {} });
    a.login(imagecast_tests::USER, imagecast_tests::PASSWORD)
        .await
        .unwrap();
    let (b, mut b_events) = server.connect(B, false).await.unwrap();
    b.relay_listen().await.unwrap();
    let asking = {
        let a = a.clone();
        tokio::spawn(async move { a.demand(RelayTarget::Device(B.into()), LIMIT).await })
    };
    next_demand(&mut b_events).await;
    // B goes away without answering: A hears why at once, and the journal keeps the demand.
    b.close().await;
    drop(b_events);
    let err = asking.await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("went offline before it answered"),
        "{err}"
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let out = server.admin_run(&["relay", "sessions", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let rows: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        if let [row] = rows.as_array().unwrap().as_slice() {
            assert_eq!(row["kind"], "demand", "{row}");
            assert_eq!(row["outcome"], "withdrawn", "{row}");
            assert_eq!(row["demander"], A);
            assert_eq!(row["target"], B);
            assert!(
                row["reason"]
                    .as_str()
                    .unwrap()
                    .contains("went offline before it answered"),
                "{row}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not journalled: {rows}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn pages_go_both_ways_byte_identical_in_one_session() {
    let server = TestServer::start_demo().unwrap();
    let scratch = Scratch::new();
    let tiff = scratch.join("reply.tif");
    let tiff_bytes = multipage_tiff(&tiff, 2, 48, 48).unwrap();
    let big = pattern(30, (2 << 20) + 5);
    let big_reply = scratch.page("reply.bin", &big);
    let at_b = scratch.join("b-tray");
    let listener = listen(
        &server,
        B,
        &at_b,
        &[
            "--accept-all",
            "--reply",
            tiff.to_str().unwrap(),
            big_reply.to_str().unwrap(),
        ],
    );
    let sent = pattern(31, 3 << 20);
    let first = scratch.page("first.bin", &sent);
    let second = scratch.page("second.bin", b"x");
    let at_a = scratch.join("a-tray");
    let send = server.terminal(
        A,
        [
            "relay".as_ref(),
            "send".as_ref(),
            "--to-device".as_ref(),
            B.as_ref(),
            "--out".as_ref(),
            at_a.as_os_str(),
            first.as_os_str(),
            second.as_os_str(),
        ],
    );
    send.assert_code(0);
    // A's pages at B, B's at A: each file whole, byte for byte, in one session.
    assert_eq!(
        sha(&std::fs::read(at_b.join("first.bin")).unwrap()),
        sha(&sent)
    );
    assert_eq!(std::fs::read(at_b.join("second.bin")).unwrap(), b"x");
    assert_eq!(std::fs::read(at_a.join("reply.tif")).unwrap(), tiff_bytes);
    assert_eq!(
        sha(&std::fs::read(at_a.join("reply.bin")).unwrap()),
        sha(&big)
    );
    for k in 1..=2 {
        assert!(
            send.stdout.contains(&format!("page {k}/2 printed by {B}")),
            "{}",
            send.stdout
        );
        assert!(
            send.stdout
                .contains(&format!("page {k}/2 from {B} stored as")),
            "{}",
            send.stdout
        );
    }
    // B hears its replies confirmed, then the end.
    listener.expect_line(&format!("page 2/2 printed by {A}"), LIMIT);
    let ended = listener.expect_line("ended", LIMIT);
    assert!(ended.contains("done"), "{ended}");
    let accepted = send
        .stdout
        .lines()
        .find(|l| l.contains("accepted (session"))
        .unwrap();
    // One session: the journal has exactly one, with bytes both ways.
    let deadline = Instant::now() + LIMIT;
    loop {
        let out = server.admin_run(&["relay", "sessions", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let rows = rows.as_array().unwrap();
        if rows.len() == 1 && !rows[0]["ended_ms"].is_null() {
            assert!(rows[0]["bytes_to_target"].as_u64().unwrap() > sent.len() as u64);
            assert!(rows[0]["bytes_to_demander"].as_u64().unwrap() > big.len() as u64);
            assert!(accepted.contains(&format!("session {})", rows[0]["session"])));
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
