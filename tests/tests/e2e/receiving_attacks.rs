//! The receiving terminal attacked by its server (issue 9, the terminal's side). A malicious
//! server, or a man in the middle of a `--plain` connection, is played by a few lines of
//! fake server over plain TCP that drive the real `imagecast receive`: deliveries that never
//! end, names with right-to-left overrides and escape sequences. The real server then
//! delivers into a folder holding a dangling symbolic link. The inbox's own unit tests
//! (`shared/src/client/inbox.rs`) cover the same attacks without a network.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use imagecast_shared::frame::{FrameReader, OutFrame};
use imagecast_shared::limits::{MAX_FRAME, MAX_HELLO_FRAME};
use imagecast_shared::msg::{
    ClientMsg, Deliver, DeliveryOutcome, Destination, DeviceKind, Hello, HelloReply, PageInfo,
    ServerMsg, Welcome,
};
use imagecast_shared::text::is_unsafe;
use imagecast_shared::{DeliveryId, DistributionId};
use imagecast_tests::{Scratch, TestServer, bin, list_files};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::LIMIT;

/// The most deliveries the terminal keeps incomplete (`Inbox`'s `MAX_INCOMPLETE`).
const MAX_INCOMPLETE: usize = imagecast_shared::client::MAX_INCOMPLETE;

/// Output of a finished child process.
struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Waits for `child` at most `limit` (killing it after), without blocking the runtime.
async fn finish(mut child: Child, limit: Duration) -> Finished {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Finished {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One connection of the fake server, past the handshake.
struct Conn {
    reader: FrameReader<ReadHalf<TcpStream>>,
    writer: WriteHalf<TcpStream>,
}

impl Conn {
    /// Accepts a terminal and lets it in, whoever it is.
    async fn accept(listener: &TcpListener) -> Conn {
        let (stream, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("the terminal did not connect")
            .unwrap();
        let (rd, mut writer) = tokio::io::split(stream);
        let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
        let hello: Hello = reader.read_msg("hello").await.unwrap().unwrap();
        assert!(hello.receive);
        let welcome = HelloReply::Welcome(Welcome {
            version: hello.version,
            server: "fake server".into(),
            device_name: "a PC".into(),
            kind: DeviceKind::Pc,
            heartbeat_ms: 10_000,
            max_frame: MAX_FRAME as u32,
            chunk_size: 1024,
        });
        OutFrame::encode(&welcome)
            .unwrap()
            .write_to(&mut writer)
            .await
            .unwrap();
        reader.set_max(MAX_FRAME);
        Conn { reader, writer }
    }

    /// Sends a message; false once the terminal has gone.
    async fn send(&mut self, msg: &ServerMsg) -> bool {
        OutFrame::encode(msg)
            .unwrap()
            .write_to(&mut self.writer)
            .await
            .is_ok()
    }

    /// The terminal's next message other than a heartbeat; `None` once it closed.
    async fn next(&mut self) -> Option<ClientMsg> {
        loop {
            match self.reader.read_msg::<ClientMsg>("client message").await {
                Ok(Some(ClientMsg::Heartbeat)) => {}
                Ok(Some(msg)) => return Some(msg),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

fn header(delivery: u64, sender: Destination, user: &str, pages: &[(&str, usize)]) -> ServerMsg {
    ServerMsg::Deliver(Deliver {
        delivery: DeliveryId(delivery),
        dist: DistributionId::new_random(),
        sender,
        user: user.into(),
        accepted_at_ms: 0,
        pages: pages
            .iter()
            .map(|(name, size)| PageInfo {
                name: (*name).into(),
                size: *size as u64,
            })
            .collect(),
        print: false,
    })
}

fn data(delivery: u64, page: u32, bytes: &[u8]) -> ServerMsg {
    ServerMsg::DeliverData {
        delivery: DeliveryId(delivery),
        page,
        offset: 0,
        data: Bytes::copy_from_slice(bytes),
    }
}

/// Entries in the inbox's folder of incomplete deliveries.
fn incoming(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".imagecast").join("incoming")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_server_cannot_pile_up_deliveries_or_smuggle_names() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let work = Scratch::new();
    let out = work.join("received");
    let child = Command::new(bin("imagecast"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .args(["--plain", "--server", &addr, "--device", "pc1.example"])
        .args(["--token", "t", "receive", "--count", "1", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let honest = Destination {
        domain: "plan1.hqs.mei.co.jp".into(),
        name: "planning".into(),
    };

    // 1,500 deliveries begin, each with a first piece of its page; none ever ends.
    let mut conn = Conn::accept(&listener).await;
    for d in 1..=1500u64 {
        if !conn
            .send(&header(d, honest.clone(), "1001", &[("p.tif", 6)]))
            .await
            || !conn.send(&data(d, 0, b"abc")).await
        {
            break;
        }
    }
    // The terminal refuses the one past the limit and drops the connection...
    let closed = tokio::time::timeout(LIMIT, async { while conn.next().await.is_some() {} });
    assert!(
        closed.await.is_ok(),
        "the terminal kept taking deliveries that never end ({} incomplete)",
        incoming(&out)
    );
    // ...and comes back having dropped the half deliveries: no folder, no file left open.
    let mut conn = Conn::accept(&listener).await;
    assert_eq!(incoming(&out), 0, "incomplete deliveries left behind");

    // A delivery whose names would reorder or drive the operator's screen.
    let sender = Destination {
        domain: "plan1.hqs.mei.co.jp\n2026-11-27 forged line".into(),
        name: "\u{1b}]0;pwned\u{7}planning\u{202e}".into(),
    };
    let pages = [("invoice\u{202e}fdp.exe", 2), ("../\u{1b}[2Jnote.txt", 4)];
    assert!(
        conn.send(&header(9000, sender, "1001\u{1b}[2J", &pages))
            .await
    );
    assert!(conn.send(&data(9000, 0, b"MZ")).await);
    assert!(conn.send(&data(9000, 1, b"note")).await);
    assert!(
        conn.send(&ServerMsg::DeliverEnd {
            delivery: DeliveryId(9000)
        })
        .await
    );
    match tokio::time::timeout(LIMIT, conn.next()).await.unwrap() {
        Some(ClientMsg::DeliveryAck { delivery, outcome }) => {
            assert_eq!(delivery, DeliveryId(9000));
            assert_eq!(outcome, DeliveryOutcome::Stored);
        }
        other => panic!("expected the acknowledgement, got {other:?}"),
    }

    let done = finish(child, LIMIT).await;
    assert_eq!(
        done.code, 0,
        "stdout: {}\nstderr: {}",
        done.stdout, done.stderr
    );
    assert!(
        done.stderr.contains(&format!(
            "{MAX_INCOMPLETE} deliveries are already incomplete"
        )),
        "{}",
        done.stderr
    );
    assert_eq!(list_files(&out), ["_[2Jnote.txt", "invoice_fdp.exe"]);
    assert_eq!(std::fs::read(out.join("invoice_fdp.exe")).unwrap(), b"MZ");
    assert_eq!(done.stdout.lines().count(), 1, "{}", done.stdout);
    let line = done.stdout.trim_end();
    assert!(!line.chars().any(is_unsafe), "{line:?}");
    assert!(
        line.contains(
            "from plan1.hqs.mei.co.jp\\n2026-11-27 forged line (\\u{1b}]0;pwned\\u{7}planning\\u{202e}) by 1001\\u{1b}[2J"
        ),
        "{line}"
    );
    assert!(line.ends_with("invoice_fdp.exe, _[2Jnote.txt"), "{line}");
    assert!(
        !done.stderr.contains('\u{202e}') && !done.stderr.contains("]0;pwned"),
        "{}",
        done.stderr
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_link_in_the_out_folder_is_never_replaced() {
    const RECEIVER: &str = "sale1.osk.mei.co.jp";
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let out = work.join("received");
    std::fs::create_dir_all(&out).unwrap();
    // `exists()` says no to a dangling link: the old inbox renamed the delivery over it.
    let target = work.join("not-there");
    std::os::unix::fs::symlink(&target, out.join("report.tif")).unwrap();
    let receiving = server
        .imagecast(RECEIVER)
        .args(["receive", "--count", "1", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let page = work.page("report.tif", b"the delivered report");
    // Not an image: the bytes are what the test follows.
    let sent = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", RECEIVER, "--any-file"],
        &page,
    );
    sent.assert_code(0);
    let done = finish(receiving, LIMIT).await;
    assert_eq!(
        done.code, 0,
        "stdout: {}\nstderr: {}",
        done.stdout, done.stderr
    );
    assert_eq!(std::fs::read_link(out.join("report.tif")).unwrap(), target);
    assert!(!target.exists(), "nothing was written through the link");
    assert_eq!(
        std::fs::read(out.join("report-2.tif")).unwrap(),
        b"the delivered report"
    );
    assert!(
        done.stdout.trim_end().ends_with(": report-2.tif"),
        "{}",
        done.stdout
    );
}
