//! Hostile input, end to end (issue 5, item 2), beyond `faults.rs`: every case gets its own
//! specific error or disconnect, a bystander terminal keeps being served throughout, and
//! nothing is written outside the data directory.
//!
//! Frames are written by hand ([`Raw`]) so the server sees exactly what a hostile terminal
//! would send, not what the client library would let through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{DistributionRequest, OutgoingPage};
use imagecast_shared::frame::{FrameReader, OutFrame};
use imagecast_shared::limits::{MAX_FRAME, MAX_HELLO_FRAME, MAX_NAME, MAX_PAGE_BYTES, MAX_PAGES};
use imagecast_shared::msg::{
    BeginDistribution, ClientMsg, ErrorCode, ErrorInfo, Hello, HelloReply, PageInfo, ServerMsg,
};
use imagecast_tests::{PASSWORD, RawStream, Receiver, Scratch, TestServer, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;

use crate::LIMIT;

/// The test server's usual `run` arguments.
const DEFAULT_RUN: [&str; 2] = ["--heartbeat-ms", "1000"];

/// The sending terminal of these tests (a PC).
pub(crate) const SENDER: &str = "plan1.hqs.mei.co.jp";
/// The bystander: a receiving MFP that must be served whatever the others do.
pub(crate) const BYSTANDER: &str = "sale1.osk.mei.co.jp";
/// A group the sender may send to; the bystander is a member.
pub(crate) const GROUP: &str = "all sales offices";

/// A message as the bytes of its frame.
pub(crate) async fn wire(msg: &ClientMsg) -> Vec<u8> {
    let frame = OutFrame::encode(msg).unwrap();
    let mut out = Vec::with_capacity(frame.wire_len());
    frame.write_to(&mut out).await.unwrap();
    out
}

/// A terminal written by hand over the harness's raw stream (TLS when the server uses it).
/// A writer task sends a heartbeat every 200 ms, so the server never drops it for silence;
/// replies are read only when the test asks.
pub(crate) struct Raw {
    reader: FrameReader<ReadHalf<RawStream>>,
    out: mpsc::Sender<Vec<u8>>,
    /// False once a write failed: the server has dropped the connection.
    writable: Arc<AtomicBool>,
    next_id: u64,
}

impl Raw {
    pub(crate) async fn connect(server: &TestServer, domain: &str, receive: bool) -> Raw {
        let stream = server.raw().await.unwrap();
        let (rd, mut wr) = tokio::io::split(stream);
        let hello = Hello::new(domain, &server.tokens[domain], "hostile test", receive);
        OutFrame::encode(&hello)
            .unwrap()
            .write_to(&mut wr)
            .await
            .unwrap();
        let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
        let reply = tokio::time::timeout(LIMIT, reader.read_msg::<HelloReply>("reply"))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(reply, Some(HelloReply::Welcome(_))), "{reply:?}");
        reader.set_max(MAX_FRAME);
        let (out, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let writable = Arc::new(AtomicBool::new(true));
        let flag = writable.clone();
        tokio::spawn(async move {
            let beat = wire(&ClientMsg::Heartbeat).await;
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                let bytes = tokio::select! {
                    b = rx.recv() => match b { Some(b) => b, None => break },
                    _ = tick.tick() => beat.clone(),
                };
                if wr.write_all(&bytes).await.is_err() {
                    flag.store(false, Ordering::SeqCst);
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        Raw {
            reader,
            out,
            writable,
            next_id: 100,
        }
    }

    /// Connects, then logs the demo user in.
    pub(crate) async fn logged_in(server: &TestServer, domain: &str) -> Raw {
        let mut raw = Raw::connect(server, domain, false).await;
        let id = raw.id();
        raw.send(&ClientMsg::Login {
            id,
            user: USER.into(),
            password: PASSWORD.into(),
        })
        .await;
        match raw.next().await {
            ServerMsg::LoggedIn { id: got, .. } if got == id => {}
            other => panic!("login: {other:?}"),
        }
        raw
    }

    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) async fn send(&self, msg: &ClientMsg) {
        self.send_bytes(wire(msg).await).await;
    }

    pub(crate) async fn send_bytes(&self, bytes: Vec<u8>) {
        self.out.send(bytes).await.unwrap();
    }

    /// The next message other than a heartbeat.
    pub(crate) async fn next(&mut self) -> ServerMsg {
        loop {
            let msg = tokio::time::timeout(LIMIT, self.reader.read_msg::<ServerMsg>("m"))
                .await
                .expect("a message in time")
                .expect("a readable frame")
                .expect("the connection still open");
            if msg != ServerMsg::Heartbeat {
                return msg;
            }
        }
    }

    /// Sends request `id` and returns the error it must get.
    pub(crate) async fn refused(&mut self, id: u64, msg: &ClientMsg) -> ErrorInfo {
        self.send(msg).await;
        match self.next().await {
            ServerMsg::Error {
                id: Some(got),
                error,
            } if got == id => error,
            other => panic!("request {id} ({msg:?}) should fail, got {other:?}"),
        }
    }

    /// Commits `upload`, which must be refused; returns why.
    pub(crate) async fn commit_refused(&mut self, upload: u64) -> ErrorInfo {
        let id = self.id();
        self.refused(id, &ClientMsg::CommitDistribution { id, upload })
            .await
    }

    /// A round trip that proves the connection still works and every earlier frame was
    /// handled (requests on one connection are answered in order).
    pub(crate) async fn sync(&mut self) {
        let id = self.id();
        self.send(&ClientMsg::ListGroups {
            id,
            for_registration: false,
        })
        .await;
        match self.next().await {
            ServerMsg::Groups { id: got, groups } if got == id => assert!(!groups.is_empty()),
            other => panic!("sync: {other:?}"),
        }
    }
}

pub(crate) fn begin(id: u64, pages: Vec<PageInfo>) -> ClientMsg {
    ClientMsg::BeginDistribution {
        id,
        request: BeginDistribution {
            dist: DistributionId::new_random(),
            groups: vec![GROUP.into()],
            destinations: vec![],
            pages,
        },
    }
}

pub(crate) fn page(name: &str, size: u64) -> PageInfo {
    PageInfo {
        name: name.into(),
        size,
    }
}

fn data(upload: u64, page: u32, offset: u64, len: usize) -> ClientMsg {
    ClientMsg::PageData {
        upload,
        page,
        offset,
        data: Bytes::from(vec![0x5a; len]),
    }
}

fn assert_error(e: &ErrorInfo, code: ErrorCode, field: Option<&str>, what: &str) {
    assert_eq!(e.code, code, "{what}: {e:?}");
    assert_eq!(e.field.as_deref(), field, "{what}: {e:?}");
    assert!(!e.message.is_empty(), "{what}: no message");
}

/// Names and bytes of every regular file under `dir`, recursively.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.insert(path.strip_prefix(dir).unwrap().to_owned(), bytes);
            }
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a path escape would have written: `x`, `passwd` or a name with a newline anywhere
/// next to the server's folders, the test's working folder (the server's too) or their
/// parents; and anything in the server's temporary folder besides `data` and the log.
fn assert_nothing_outside_data(server: &TestServer, passwd: &[u8]) {
    assert_eq!(entries(server.dir.path()), ["data", "server.log"]);
    let data = server.data_dir();
    let cwd = std::env::current_dir().unwrap();
    for base in [
        cwd,
        data.clone(),
        data.join("spool"),
        data.join("spool").join("tmp"),
        data.join("groups"),
    ] {
        for rel in ["x", "../x", "../../x", "../../../x", "a\nb", "../a\nb"] {
            let p = base.join(rel);
            assert!(!p.exists(), "{} exists", p.display());
        }
    }
    // Other tests may add or remove an account meanwhile (the SSH kiosk test does), so the
    // file is not compared byte for byte: every line must still be an account line, and the
    // first one still the same.
    let now =
        String::from_utf8_lossy(&std::fs::read("/etc/passwd").unwrap_or_default()).into_owned();
    let before = String::from_utf8_lossy(passwd);
    assert!(
        now.lines().all(|l| l.split(':').count() == 7),
        "/etc/passwd holds something that is no account line:\n{now}"
    );
    assert_eq!(
        now.lines().next(),
        before.lines().next(),
        "/etc/passwd was replaced"
    );
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
}

/// Unfinished uploads in the spool.
fn spool_tmp(server: &TestServer) -> Vec<String> {
    entries(&server.data_dir().join("spool").join("tmp"))
}

/// Waits until `cond` holds, at most `limit`.
pub(crate) async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The bystander is still connected and gets one more image, now.
async fn bystander_served(server: &TestServer, bystander: &Receiver, count: usize) {
    assert!(
        !bystander.closed.load(Ordering::SeqCst),
        "the bystander lost its connection"
    );
    let (client, _events) = server.connect(SENDER, false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    client
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec![],
            destinations: vec![BYSTANDER.into()],
            pages: vec![OutgoingPage::from_bytes(
                "still-here.txt",
                Bytes::from_static(b"still here"),
            )],
        })
        .await
        .unwrap();
    assert!(
        bystander.wait_for(count, LIMIT).await,
        "the bystander did not get image {count}"
    );
    client.close().await;
}

/// A hostile test's stage: the demo server (run with `args`), a scratch folder, a bystander
/// MFP receiving into its `osk` folder, which must be served throughout, and `/etc/passwd`
/// as it was before, to prove no path escape wrote to it.
async fn stage(args: &[&str]) -> (TestServer, Scratch, Receiver, Vec<u8>) {
    let server = TestServer::start_demo_with(args).unwrap();
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let work = Scratch::new();
    let bystander = server.receiver(BYSTANDER, &work.join("osk")).await;
    (server, work, bystander, passwd)
}

/// The end of every hostile test: the bystander still gets its image number `count` at once,
/// and nothing was written outside the data directory.
async fn bystander_served_and_nothing_outside(
    server: &TestServer,
    bystander: Receiver,
    count: usize,
    passwd: &[u8],
) {
    bystander_served(server, &bystander, count).await;
    assert_nothing_outside_data(server, passwd);
    bystander.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_page_names_counts_and_sizes_are_refused_naming_the_field() {
    let (server, work, bystander, passwd) = stage(&DEFAULT_RUN).await;
    let tray = work.join("osk");
    let mut raw = Raw::logged_in(&server, SENDER).await;

    // Page names that try to leave the folder or smuggle control characters. The bad one is
    // the second page, so the field must say which.
    let long = "n".repeat(MAX_NAME + 1);
    for (name, code) in [
        ("../../x", ErrorCode::BadRequest),
        ("/etc/passwd", ErrorCode::BadRequest),
        ("a\nb", ErrorCode::BadRequest),
        ("a\u{1}b", ErrorCode::BadRequest),
        ("bell\u{7}", ErrorCode::BadRequest),
        ("del\u{7f}", ErrorCode::BadRequest),
        ("nel\u{85}", ErrorCode::BadRequest),
        ("esc\u{1b}[2J", ErrorCode::BadRequest),
        ("..", ErrorCode::BadRequest),
        (".", ErrorCode::BadRequest),
        ("dir\\x", ErrorCode::BadRequest),
        ("x/", ErrorCode::BadRequest),
        ("", ErrorCode::BadRequest),
        ("   ", ErrorCode::BadRequest),
        (long.as_str(), ErrorCode::TooLarge),
    ] {
        let id = raw.id();
        let e = raw
            .refused(id, &begin(id, vec![page("ok.png", 1), page(name, 1)]))
            .await;
        assert_error(&e, code, Some("pages[1].name"), &format!("name {name:?}"));
    }

    // Counts and sizes over the limits: refused from the request alone.
    let id = raw.id();
    let many = vec![page("p", 1); 20_000];
    let e = raw.refused(id, &begin(id, many)).await;
    assert_error(&e, ErrorCode::TooLarge, Some("pages"), "20,000 pages");
    assert!(e.message.contains("20000 pages"), "{}", e.message);
    for size in [MAX_PAGE_BYTES + 1, 1 << 40, u64::MAX] {
        let id = raw.id();
        let e = raw
            .refused(id, &begin(id, vec![page("big.tif", size)]))
            .await;
        assert_error(&e, ErrorCode::TooLarge, Some("pages[0].size"), "page size");
    }
    let id = raw.id();
    let e = raw.refused(id, &begin(id, vec![])).await;
    assert_error(&e, ErrorCode::BadRequest, Some("pages"), "no pages");
    // Group and destination fields get the same checks.
    let id = raw.id();
    let mut msg = begin(id, vec![page("ok.png", 1)]);
    if let ClientMsg::BeginDistribution { request, .. } = &mut msg {
        request.groups = vec![GROUP.into(), "sales\nroot".into()];
    }
    let e = raw.refused(id, &msg).await;
    assert_error(&e, ErrorCode::BadRequest, Some("groups[1]"), "group name");
    let id = raw.id();
    if let ClientMsg::BeginDistribution { request, id: i } = &mut msg {
        *i = id;
        request.groups = vec![];
        request.destinations = vec!["../../etc/passwd".into()];
    }
    let e = raw.refused(id, &msg).await;
    assert_error(
        &e,
        ErrorCode::UnknownDomain,
        Some("destinations[0]"),
        "destination",
    );

    // On the wire a page count has no sign: a "negative" count is a huge varint, which
    // postcard refuses before allocating. The frame is malformed; the connection lives on.
    let mut body = vec![5u8, 1];
    body.extend_from_slice(DistributionId::new_random().as_bytes());
    body.extend_from_slice(&[0, 0]); // no groups, no destinations
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    raw.send_bytes(frame).await;
    match raw.next().await {
        ServerMsg::Error { id: None, error } => {
            assert_eq!(error.code, ErrorCode::Malformed, "{error:?}");
        }
        other => panic!("a u64::MAX page count: {other:?}"),
    }
    raw.sync().await;

    // The largest request the limits allow, 10,000 pages of 4 GiB (40 TiB), is accepted
    // without reserving anything: the spool holds an empty folder until data arrives.
    let id = raw.id();
    raw.send(&begin(id, vec![page("p", MAX_PAGE_BYTES); MAX_PAGES]))
        .await;
    match raw.next().await {
        ServerMsg::UploadReady { id: got } => assert_eq!(got, id),
        other => panic!("40 TiB announced: {other:?}"),
    }
    let open = spool_tmp(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    let folder = server.data_dir().join("spool").join("tmp").join(&open[0]);
    assert!(entries(&folder).is_empty());
    raw.send(&ClientMsg::AbortDistribution { upload: id }).await;
    raw.sync().await;
    assert!(spool_tmp(&server).is_empty(), "{:?}", spool_tmp(&server));
    assert_nothing_outside_data(&server, &passwd);

    // Names the server lets through, however odd, reach the bystander as plain files in its
    // tray and nowhere else.
    let odd = [
        "...",
        "..x",
        "x..",
        " spaced ",
        "a:b",
        "CON",
        ".imagecast",
        "received",
        "-rf",
        "ページ.tif",
        "%2e%2e%2fx",
        "~root",
    ];
    let (client, _events) = server.connect(SENDER, false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    client
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec![],
            destinations: vec![BYSTANDER.into()],
            pages: odd
                .iter()
                .map(|n| OutgoingPage::from_bytes(n, Bytes::from(n.as_bytes().to_vec())))
                .collect(),
        })
        .await
        .unwrap();
    client.close().await;
    assert!(bystander.wait_for(1, LIMIT).await);
    let got = bystander.received.lock().unwrap()[0].files.clone();
    assert_eq!(got.len(), odd.len());
    for (f, name) in got.iter().zip(odd) {
        assert_eq!(
            f.parent(),
            Some(tray.as_path()),
            "{name:?} → {}",
            f.display()
        );
        assert_eq!(std::fs::read(f).unwrap(), name.as_bytes());
    }
    assert_eq!(entries(work.path()), ["osk"]);

    drop(raw);
    bystander_served_and_nothing_outside(&server, bystander, 2, &passwd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_names_with_separators_are_refused_and_files_stay_unchanged() {
    let (server, _work, bystander, passwd) = stage(&DEFAULT_RUN).await;
    let groups_dir = server.data_dir().join("groups");
    let before = tree(&groups_dir);
    let develop = "product development-related places";
    let mut raw = Raw::logged_in(&server, "devl1.osk.mei.co.jp").await;

    let long = "g".repeat(MAX_NAME + 1);
    let cases: Vec<(String, ErrorCode, Option<&str>)> = vec![
        // A ';' cannot be in a group name, so no group has it.
        ("a;b".into(), ErrorCode::UnknownGroup, None),
        (
            format!("{develop};devl1.osk.mei.co.jp"),
            ErrorCode::UnknownGroup,
            None,
        ),
        (
            "devl1.osk.mei.co.jp;development department, the Osaka branch".into(),
            ErrorCode::UnknownGroup,
            None,
        ),
        // Line breaks and other control characters: refused naming the field.
        (format!("{develop}\n"), ErrorCode::BadRequest, Some("group")),
        (
            format!("{develop}\ndevl1.osk.mei.co.jp;x"),
            ErrorCode::BadRequest,
            Some("group"),
        ),
        (format!("{develop}\r"), ErrorCode::BadRequest, Some("group")),
        ("a\u{0}b".into(), ErrorCode::BadRequest, Some("group")),
        ("".into(), ErrorCode::BadRequest, Some("group")),
        (" \t ".into(), ErrorCode::BadRequest, Some("group")),
        (long, ErrorCode::TooLarge, Some("group")),
        // File names and paths are not group names.
        ("develop.rec".into(), ErrorCode::UnknownGroup, None),
        (
            "../groups/develop.rec".into(),
            ErrorCode::UnknownGroup,
            None,
        ),
        ("/etc/passwd".into(), ErrorCode::UnknownGroup, None),
        (format!("# {develop}"), ErrorCode::UnknownGroup, None),
        (
            "all distribution destinations".into(),
            ErrorCode::NotRegistrable,
            None,
        ),
    ];
    for (group, code, field) in &cases {
        for register in [true, false] {
            let id = raw.id();
            let msg = if register {
                ClientMsg::Register {
                    id,
                    group: group.clone(),
                }
            } else {
                ClientMsg::Withdraw {
                    id,
                    group: group.clone(),
                }
            };
            let e = raw.refused(id, &msg).await;
            assert_error(
                &e,
                *code,
                *field,
                &format!("{group:?} (register {register})"),
            );
            // The reply names what was asked for, escaped, and no server path.
            assert!(!e.message.contains('\n'), "{:?}", e.message);
            let data = server.data_dir().display().to_string();
            assert!(!e.message.contains(&data), "{:?}", e.message);
        }
    }
    assert_eq!(tree(&groups_dir), before, "a group file changed");

    // The connection and the writer still work: register and withdraw for real, and the file
    // is back to its exact bytes.
    let id = raw.id();
    raw.send(&ClientMsg::Register {
        id,
        group: develop.into(),
    })
    .await;
    assert!(matches!(raw.next().await, ServerMsg::Registered { id: got, .. } if got == id));
    assert_ne!(tree(&groups_dir), before);
    let id = raw.id();
    raw.send(&ClientMsg::Withdraw {
        id,
        group: develop.into(),
    })
    .await;
    assert!(matches!(raw.next().await, ServerMsg::Withdrawn { id: got, .. } if got == id));
    assert_eq!(
        tree(&groups_dir),
        before,
        "register + withdraw changed the file"
    );

    drop(raw);
    bystander_served_and_nothing_outside(&server, bystander, 1, &passwd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_data_out_of_bounds_gets_clear_errors_and_leaves_no_spool() {
    let (server, _work, bystander, passwd) = stage(&DEFAULT_RUN).await;
    let mut raw = Raw::logged_in(&server, SENDER).await;

    // Data and a commit for uploads that were never opened.
    let e = raw.refused(999, &data(999, 0, 0, 10)).await;
    assert_error(&e, ErrorCode::OutOfOrder, Some("upload"), "data, no upload");
    let e = raw.commit_refused(998).await;
    assert_error(
        &e,
        ErrorCode::OutOfOrder,
        Some("upload"),
        "commit, no upload",
    );

    // More data than announced: refused at once, the partial page is gone at once, and the
    // commit repeats the reason.
    let up = raw.id();
    raw.send(&begin(up, vec![page("a.png", 10)])).await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
    assert_eq!(spool_tmp(&server).len(), 1);
    raw.send(&data(up, 0, 0, 6)).await;
    let e = raw.refused(up, &data(up, 0, 6, 5)).await;
    assert_error(&e, ErrorCode::TooLarge, Some("data"), "11 bytes of 10");
    assert!(spool_tmp(&server).is_empty(), "{:?}", spool_tmp(&server));
    // Further data for the failed upload is ignored (no flood of errors).
    raw.send(&data(up, 0, 6, 4)).await;
    let e = raw.commit_refused(up).await;
    assert_error(
        &e,
        ErrorCode::TooLarge,
        Some("data"),
        "commit after too much",
    );

    // Data for a page that does not exist.
    let up = raw.id();
    raw.send(&begin(up, vec![page("a.png", 3)])).await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
    raw.send(&data(up, 0, 0, 3)).await;
    let e = raw.refused(up, &data(up, 1, 0, 1)).await;
    assert_error(&e, ErrorCode::TooLarge, Some("data"), "a page past the end");
    raw.send(&ClientMsg::AbortDistribution { upload: up }).await;

    // A gap, and a jump to a later page before this one is complete.
    let up = raw.id();
    raw.send(&begin(up, vec![page("a.png", 10), page("b.png", 5)]))
        .await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
    raw.send(&data(up, 0, 0, 5)).await;
    let e = raw.refused(up, &data(up, 0, 7, 1)).await;
    assert_error(&e, ErrorCode::OutOfOrder, Some("offset"), "a gap");
    raw.send(&ClientMsg::AbortDistribution { upload: up }).await;
    let up = raw.id();
    raw.send(&begin(up, vec![page("a.png", 10), page("b.png", 5)]))
        .await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
    let e = raw.refused(up, &data(up, 1, 0, 5)).await;
    assert_error(
        &e,
        ErrorCode::OutOfOrder,
        Some("offset"),
        "page 2 before page 1",
    );
    raw.send(&ClientMsg::AbortDistribution { upload: up }).await;

    // A commit of an incomplete upload says how much is missing; nothing is left behind.
    let up = raw.id();
    raw.send(&begin(up, vec![page("a.png", 10)])).await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
    raw.send(&data(up, 0, 0, 4)).await;
    let e = raw.commit_refused(up).await;
    assert_error(
        &e,
        ErrorCode::OutOfOrder,
        Some("upload"),
        "incomplete commit",
    );
    assert!(e.message.contains("6 bytes are missing"), "{}", e.message);
    // The upload is closed by the failed commit: a second one finds nothing.
    let e = raw.commit_refused(up).await;
    assert_error(&e, ErrorCode::OutOfOrder, Some("upload"), "second commit");
    raw.sync().await;
    assert!(spool_tmp(&server).is_empty(), "{:?}", spool_tmp(&server));

    // The same request ID twice, and more open uploads than allowed.
    let first = raw.id();
    raw.send(&begin(first, vec![page("a.png", 10)])).await;
    assert_eq!(raw.next().await, ServerMsg::UploadReady { id: first });
    let e = raw
        .refused(first, &begin(first, vec![page("a.png", 10)]))
        .await;
    assert_error(&e, ErrorCode::OutOfOrder, None, "the same upload ID twice");
    for _ in 0..3 {
        let up = raw.id();
        raw.send(&begin(up, vec![page("a.png", 10)])).await;
        assert_eq!(raw.next().await, ServerMsg::UploadReady { id: up });
        raw.send(&data(up, 0, 0, 2)).await;
    }
    let id = raw.id();
    let e = raw.refused(id, &begin(id, vec![page("a.png", 10)])).await;
    assert_error(&e, ErrorCode::TooLarge, None, "a fifth open upload");
    raw.sync().await;
    assert_eq!(spool_tmp(&server).len(), 4, "{:?}", spool_tmp(&server));

    // The terminal goes away with four uploads open, three with data: all are erased.
    drop(raw);
    assert!(
        eventually(Duration::from_secs(10), || spool_tmp(&server).is_empty()).await,
        "left in the spool after the connection closed: {:?}",
        spool_tmp(&server)
    );

    bystander_served(&server, &bystander, 1).await;
    // Only the bystander's images were accepted, and they are erased once delivered.
    let spool = server.data_dir().join("spool");
    assert!(
        eventually(LIMIT, || entries(&spool) == ["tmp"]).await,
        "{:?}",
        entries(&spool)
    );
    assert_nothing_outside_data(&server, &passwd);
    bystander.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_reads_nothing_is_dropped_and_holds_nobody_up() {
    let server = TestServer::start_demo_with(&["--heartbeat-ms", "500"]).unwrap();
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let work = Scratch::new();
    let osaka = server.receiver(BYSTANDER, &work.join("osk")).await;
    let nagoya = server
        .receiver("sale1.ngy.mei.co.jp", &work.join("ngy"))
        .await;
    // Fukuoka takes deliveries, keeps sending heartbeats, and reads nothing.
    let stuck = Raw::connect(&server, "sale1.fko.mei.co.jp", true).await;

    let image: Bytes = (0..20u32 << 20)
        .map(|i| (i ^ (i >> 11)) as u8)
        .collect::<Vec<_>>()
        .into();
    let (client, _events) = server.connect(SENDER, false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    let accepted = client
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec![GROUP.into()],
            destinations: vec![],
            pages: vec![OutgoingPage::from_bytes("big.tif", image.clone())],
        })
        .await
        .unwrap();
    assert_eq!(accepted.destinations.len(), 3);
    let t0 = Instant::now();

    // The readers get the whole image promptly, whatever Fukuoka does.
    assert!(osaka.wait_for(1, Duration::from_secs(10)).await);
    assert!(nagoya.wait_for(1, Duration::from_secs(10)).await);
    let delivered = t0.elapsed();
    for rx in [&osaka, &nagoya] {
        let files = rx.received.lock().unwrap()[0].files.clone();
        assert_eq!(std::fs::read(&files[0]).unwrap(), image);
    }

    // Fukuoka is dropped once a write to it has waited two heartbeat intervals (1 s).
    assert!(
        eventually(Duration::from_secs(10), || server
            .log_text()
            .contains("peer stopped reading"))
        .await,
        "{}",
        server.log_text()
    );
    assert!(
        eventually(Duration::from_secs(10), || !stuck
            .writable
            .load(Ordering::SeqCst))
        .await,
        "the server still takes the silent reader's heartbeats"
    );
    let dropped = t0.elapsed();
    eprintln!(
        "20 MiB: both readers done in {delivered:?}; the non-reader dropped after {dropped:?}"
    );
    drop(stuck);

    // Nothing is lost for Fukuoka: the image is still queued and arrives when it reads.
    let fukuoka = server
        .receiver("sale1.fko.mei.co.jp", &work.join("fko"))
        .await;
    assert!(fukuoka.wait_for(1, LIMIT).await);
    let files = fukuoka.received.lock().unwrap()[0].files.clone();
    assert_eq!(std::fs::read(&files[0]).unwrap(), image);

    // The others never noticed.
    assert!(!osaka.closed.load(Ordering::SeqCst));
    assert!(!nagoya.closed.load(Ordering::SeqCst));
    client.close().await;
    bystander_served(&server, &osaka, 2).await;
    assert_nothing_outside_data(&server, &passwd);
    for rx in [osaka, nagoya, fukuoka] {
        rx.stop().await;
    }
}

/// The soft limit on open files of this process (the server inherits it).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// The server's process: the one whose command line runs our data directory.
pub(crate) fn server_pid(server: &TestServer) -> u32 {
    let data = server.data_dir().into_os_string().into_string().unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.contains(&&b"run"[..]) && args.contains(&data.as_bytes()) {
            return pid;
        }
    }
    panic!("no server process runs {data}");
}

/// A `kB` field of `/proc/PID/status`, in bytes.
pub(crate) fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Opens `n` TCP connections to `addr`, `batch` at a time, that never send a byte; each
/// task reads until the server closes it (at most `LIMIT`) and gives whether it did and how
/// long after connecting.
async fn open_silent(addr: &str, n: usize, batch: usize) -> tokio::task::JoinSet<(bool, Duration)> {
    let mut conns = tokio::task::JoinSet::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(batch);
        let mut connecting = tokio::task::JoinSet::new();
        for _ in 0..k {
            let addr = addr.to_owned();
            connecting.spawn(async move { tokio::net::TcpStream::connect(addr).await.unwrap() });
        }
        while let Some(s) = connecting.join_next().await {
            let mut s = s.unwrap();
            conns.spawn(async move {
                let start = Instant::now();
                let mut buf = [0u8; 512];
                let closed = tokio::time::timeout(LIMIT, async {
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await
                .is_ok();
                (closed, start.elapsed())
            });
        }
        left -= k;
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    conns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_connections_are_closed_and_a_terminal_still_works() {
    // A handshake timeout of 3 s, not 1: opening 1,000 connections takes ~0.2 s alone but
    // over a second while the rest of the suite runs, and they must all be open at once.
    let (server, _work, bystander, passwd) =
        stage(&["--heartbeat-ms", "1000", "--handshake-timeout", "3"]).await;
    let pid = server_pid(&server);
    let fds_before = open_fds(pid);
    let rss_before = status_bytes(pid, "VmRSS:");
    // 1,000 unless this process may not open that many files (the server inherits the
    // limit): then as many as fit with room to spare.
    let n = 1000.min(open_files_limit().saturating_sub(200));
    assert!(n >= 200, "the open-files limit is too low for this test");

    // Open them all within a fraction of the handshake timeout: TCP connections that never
    // say anything (no TLS handshake, no hello). Each task reads until the server closes and
    // reports how long that took. (Batches of 64 keep within the listen backlog: see
    // `a_burst_of_connects_beyond_the_listen_backlog_is_accepted`.)
    let opened = Instant::now();
    let mut conns = open_silent(&server.addr, n, 64).await;
    let open_took = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds_during = open_fds(pid);

    // Meanwhile a terminal connects and works: lists groups, sends, the bystander receives.
    let t = Instant::now();
    let (client, _events) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    assert_eq!(client.groups(false).await.unwrap().len(), 4);
    client.close().await;
    bystander_served(&server, &bystander, 1).await;
    let served = t.elapsed();

    let mut longest = Duration::ZERO;
    let mut shortest = Duration::MAX;
    while let Some(r) = conns.join_next().await {
        let (closed, took) = r.unwrap();
        assert!(closed, "a silent connection was still open after {LIMIT:?}");
        longest = longest.max(took);
        shortest = shortest.min(took);
    }
    let all_closed = opened.elapsed();
    eprintln!(
        "{n} silent connections opened in {open_took:?}: server fds {fds_before} → {fds_during}; \
         each closed after {shortest:?}..{longest:?}, all within {all_closed:?}; a terminal was \
         served in {served:?}"
    );
    assert!(
        fds_during >= fds_before + n * 9 / 10,
        "the connections were not open at once ({fds_before} → {fds_during} fds)"
    );
    // Closed by the handshake timeout (3 s), not at once and not much later.
    assert!(
        shortest >= Duration::from_millis(2900),
        "closed after {shortest:?}"
    );
    assert!(
        longest < Duration::from_secs(10),
        "closed after {longest:?}"
    );
    assert!(served < Duration::from_secs(10), "served after {served:?}");

    // The server is alive, gave every descriptor back, and its memory is sane.
    assert!(
        eventually(Duration::from_secs(10), || open_fds(pid) <= fds_before + 8).await,
        "the server holds {} fds, {fds_before} before",
        open_fds(pid)
    );
    let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(!state.contains("State:\tZ"), "{state}");
    let rss = status_bytes(pid, "VmRSS:");
    let peak = status_bytes(pid, "VmHWM:");
    eprintln!(
        "server RSS {} MiB → {} MiB (peak {} MiB)",
        rss_before >> 20,
        rss >> 20,
        peak >> 20
    );
    assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
    let (client, _events) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    assert_eq!(client.groups(false).await.unwrap().len(), 4);
    client.close().await;
    bystander_served_and_nothing_outside(&server, bystander, 2, &passwd).await;
}

/// A reconnect storm: every terminal dialling the moment the server is back. All 1,000 SYNs
/// arrive at once; the server must accept every connection (and close each after the
/// handshake timeout), not leave some half-open on the client side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_beyond_the_listen_backlog_is_accepted() {
    let server =
        TestServer::start_demo_with(&["--heartbeat-ms", "1000", "--handshake-timeout", "1"])
            .unwrap();
    let n = 1000.min(open_files_limit().saturating_sub(200));
    let mut conns = open_silent(&server.addr, n, n).await;
    let mut open = 0;
    while let Some(r) = conns.join_next().await {
        if !r.unwrap().0 {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} of {n} connections were never accepted");
}

/// A terminal that lost its connection in the middle of an upload and retries the same
/// distribution on a new connection takes the upload over at once: its older connection is
/// dropped (the server would notice it was gone only after two heartbeat intervals), and the
/// image is accepted once. Nobody else may take it, and one connection may not begin it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_upload_takes_over_from_the_terminals_older_connection() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let bystander = server.receiver(BYSTANDER, &work.join("osk")).await;
    let with_id = |msg: &ClientMsg, new: u64| {
        let mut msg = msg.clone();
        if let ClientMsg::BeginDistribution { id, .. } = &mut msg {
            *id = new;
        }
        msg
    };

    let mut old = Raw::logged_in(&server, SENDER).await;
    let up = old.id();
    let request = begin(up, vec![page("a.png", 10)]);
    let ClientMsg::BeginDistribution { request: req, .. } = &request else {
        unreachable!()
    };
    let dist = req.dist;
    old.send(&request).await;
    assert_eq!(old.next().await, ServerMsg::UploadReady { id: up });
    old.send(&data(up, 0, 0, 4)).await;
    old.sync().await;

    let again = old.id();
    let e = old.refused(again, &with_id(&request, again)).await;
    assert_error(&e, ErrorCode::OutOfOrder, Some("dist"), "begun twice");
    assert!(e.message.contains("this connection"), "{e:?}");

    let mut other = Raw::logged_in(&server, BYSTANDER).await;
    let theirs = other.id();
    let e = other.refused(theirs, &with_id(&request, theirs)).await;
    assert_error(&e, ErrorCode::OutOfOrder, Some("dist"), "another terminal");
    assert!(e.message.contains("another connection"), "{e:?}");
    old.sync().await;

    // The same terminal again, on a new connection.
    let mut new = Raw::logged_in(&server, SENDER).await;
    let up2 = new.id();
    new.send(&with_id(&request, up2)).await;
    assert_eq!(new.next().await, ServerMsg::UploadReady { id: up2 });
    let dropped = tokio::time::timeout(LIMIT, async {
        while let Ok(Some(_)) = old.reader.read_msg::<ServerMsg>("m").await {}
    })
    .await;
    assert!(dropped.is_ok(), "the older connection is still open");

    new.send(&data(up2, 0, 0, 10)).await;
    let commit = new.id();
    new.send(&ClientMsg::CommitDistribution {
        id: commit,
        upload: up2,
    })
    .await;
    match new.next().await {
        ServerMsg::Accepted { id, accepted } => {
            assert_eq!(id, commit);
            assert_eq!(accepted.dist, dist);
            assert!(!accepted.duplicate);
        }
        other => panic!("commit: {other:?}"),
    }
    assert!(
        bystander.wait_for(1, LIMIT).await,
        "the image did not arrive"
    );

    // Once accepted, beginning it again only reports what was accepted.
    let last = new.id();
    new.send(&with_id(&request, last)).await;
    loop {
        match new.next().await {
            // The sender watches its distribution: its progress comes in between.
            ServerMsg::Progress { .. } | ServerMsg::DistributionDone { .. } => {}
            ServerMsg::Accepted { id, accepted } => {
                assert_eq!(id, last);
                assert!(accepted.duplicate);
                break;
            }
            other => panic!("begun after the commit: {other:?}"),
        }
    }
    bystander_served(&server, &bystander, 2).await;
    assert_eq!(bystander.count(), 2, "the taken-over image arrived twice");
    bystander.stop().await;
}
