//! Sending faxes through the supervisor (issue 12, features 1 and 2) with the real binaries:
//! imagecast-server, two `imagecast-faxgw run` gateways and `imagecast-faxgw machine`
//! customers on one simulated exchange, and `imagecast fax ...` at a PC.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imagecast_faxgw::page::{Resolution, pages_from_file};
use imagecast_tests::{Output, Scratch, TestServer, bin, multipage_tiff, run};

const GW1: &str = "gw1.fax.example";
const GW2: &str = "gw2.fax.example";
const PC: &str = "plan1.hqs.mei.co.jp";
const CUSTOMER: &str = "5550199";
const CUSTOMER2: &str = "5550198";

/// A child process killed when dropped, whose stdout lines arrive on a channel.
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Proc {
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawns");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Proc {
            child,
            lines,
            name: name.to_owned(),
        }
    }

    /// Waits (bounded) for a line containing `text`; returns it.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(text) => return l,
                Ok(_) => {}
                Err(_) => panic!("{} never printed {text:?}", self.name),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn faxgw() -> Command {
    let mut c = Command::new(bin("imagecast-faxgw"));
    c.env("IMAGECAST_FAX_RING_TIME", "0.5");
    c
}

fn gateway(server: &TestServer, exchange: &Path, domain: &str, number: &str) -> Proc {
    gateway_scaled(server, exchange, domain, number, 0.0)
}

/// A gateway whose calls take `scale` times a real V.17 call (0: machine speed).
fn gateway_scaled(
    server: &TestServer,
    exchange: &Path,
    domain: &str,
    number: &str,
    scale: f64,
) -> Proc {
    let token = server.tokens.get(domain).cloned().expect("gateway token");
    let mut cmd = faxgw();
    cmd.env("IMAGECAST_FAX_TIME_SCALE", scale.to_string());
    cmd.args([
        "run",
        "--server",
        &server.addr,
        "--device",
        domain,
        "--token",
        &token,
    ])
    .args(["--line", "sim", "--exchange"])
    .arg(exchange)
    .args(["--number", number, "--lines", "1", "--spool"])
    .arg(server.dir.path().join(format!("spool-{domain}")));
    match &server.fingerprint {
        Some(fp) => cmd.args(["--server-fingerprint", fp]),
        None => cmd.arg("--plain"),
    };
    let p = Proc::spawn(domain, &mut cmd);
    p.wait_for(&format!("connected as {domain}"));
    p
}

pub(crate) fn machine(exchange: &Path, number: &str, inbox: &Path) -> Proc {
    let mut cmd = faxgw();
    cmd.args(["machine", "--exchange"])
        .arg(exchange)
        .args(["--number", number, "--station", "CUSTOMER", "--inbox"])
        .arg(inbox);
    let p = Proc::spawn(number, &mut cmd);
    p.wait_for("receiving into");
    p
}

pub(crate) fn ok(server: &TestServer, args: &[&str]) {
    let out = server.admin_run(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
}

fn pstn(exchange: &Path, args: &[&str]) {
    let out = run(
        faxgw()
            .arg("pstn")
            .arg("--exchange")
            .arg(exchange)
            .args(args),
        imagecast_tests::LIMIT,
    )
    .expect("pstn runs");
    out.assert_code(0);
}

fn fax_send(server: &TestServer, args: &[&str], files: &[&Path]) -> Output {
    let mut cmd = server.imagecast(PC);
    cmd.args(["fax", "send"]).args(args);
    for f in files {
        cmd.arg(f);
    }
    run(&mut cmd, Duration::from_secs(60)).expect("imagecast runs")
}

/// This job's communication records, as `imagecast fax records` prints them: the result
/// field of each (oldest first) and the gateway.
fn records_of(server: &TestServer, job: &str) -> Vec<(String, String)> {
    let out = server.terminal(PC, ["fax", "records", "--last", "100"]);
    out.assert_code(0);
    out.stdout
        .lines()
        .filter(|l| l.ends_with(job))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[8].to_owned(), f[2].to_owned())
        })
        .collect()
}

fn setup() -> (TestServer, Scratch) {
    let mut server = TestServer::start_demo().expect("server");
    server
        .add_device(GW1, "Fax Tokyo", "fax-gateway")
        .expect("gw1");
    server
        .add_device(GW2, "Fax Osaka", "fax-gateway")
        .expect("gw2");
    ok(&server, &["fax", "priority", "set", GW2, GW1]);
    ok(
        &server,
        &[
            "fax",
            "policy",
            "set",
            "busy-retry-s=1",
            "no-answer-retry-s=1",
            "failed-retry-s=1",
        ],
    );
    (server, Scratch::new())
}

#[test]
fn priority_busy_retries_and_a_page_error_resumes_at_that_page() {
    let (server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let inbox = scratch.join("inbox");
    let inbox2 = scratch.join("inbox2");
    for d in [&exchange, &inbox, &inbox2] {
        std::fs::create_dir_all(d).unwrap();
    }
    let _customer = machine(&exchange, CUSTOMER, &inbox);
    let _customer2 = machine(&exchange, CUSTOMER2, &inbox2);
    let _gw1 = gateway(&server, &exchange, GW1, "5550101");
    let _gw2 = gateway(&server, &exchange, GW2, "5550102");

    let gws = server.terminal(PC, ["fax", "gateways"]);
    gws.assert_code(0);
    assert!(
        gws.stdout.contains(&format!("{GW1}\tonline")),
        "{}",
        gws.stdout
    );
    assert!(
        gws.stdout.contains(&format!("{GW2}\tonline")),
        "{}",
        gws.stdout
    );

    // (a) Priority: the first number goes through gw2 (first in the table); the second, at
    // the same time, skips gw2 (its one line is busy) and goes through gw1.
    let doc = scratch.join("doc.tif");
    multipage_tiff(&doc, 3, 300, 200).unwrap();
    let one = scratch.image("one.png", "one");
    let out = fax_send(
        &server,
        &[
            "--to",
            CUSTOMER,
            "--to",
            CUSTOMER2,
            "--wait",
            "--timeout",
            "40",
        ],
        &[&one],
    );
    out.assert_code(0);
    let job = out.stdout.lines().next().unwrap().to_owned();
    assert!(
        out.stdout
            .contains(&format!("{CUSTOMER}: sent 1 pages via {GW2} (")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("{CUSTOMER2}: sent 1 pages via {GW1} (")),
        "{}",
        out.stdout
    );
    let recs = records_of(&server, &job);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(
        !server.data_dir().join("fax").join(&job).exists(),
        "a finished job's files are removed"
    );

    // (b) Busy twice, then sent: three records, the last `sent`.
    pstn(&exchange, &["fault", CUSTOMER, "busy", "--times", "2"]);
    let out = fax_send(
        &server,
        &["--to", CUSTOMER, "--wait", "--timeout", "40"],
        &[&one],
    );
    out.assert_code(0);
    let job = out.stdout.lines().next().unwrap().to_owned();
    let results: Vec<String> = records_of(&server, &job).into_iter().map(|r| r.0).collect();
    assert_eq!(results, ["busy", "busy", "sent"], "{}", out.stdout);

    // (c) A page error at page 2 of 3: the retry resumes at page 2; the customer holds
    // every page once, decoded equal to what was sent.
    let before = imagecast_tests::tiffs_in(&inbox);
    pstn(&exchange, &["fault", CUSTOMER, "page-error", "2"]);
    let out = fax_send(
        &server,
        &["--to", CUSTOMER, "--wait", "--timeout", "40"],
        &[&doc],
    );
    out.assert_code(0);
    assert!(
        out.stdout
            .contains(&format!("{CUSTOMER}: sent 3 pages via")),
        "{}",
        out.stdout
    );
    let job = out.stdout.lines().next().unwrap().to_owned();
    let results: Vec<String> = records_of(&server, &job).into_iter().map(|r| r.0).collect();
    assert_eq!(results, ["page error", "sent"]);
    // The machine stores a call's TIFF once the call ended: wait for the second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let new: Vec<PathBuf> = loop {
        let now: Vec<PathBuf> = imagecast_tests::tiffs_in(&inbox)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if now.len() >= 2 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut received = Vec::new();
    for p in &new {
        let bytes = std::fs::read(p).unwrap();
        received.extend(
            imagecast_faxgw::tiff::read_fax_tiff(&bytes)
                .unwrap()
                .expect("a fax TIFF"),
        );
    }
    let sent = pages_from_file(&doc, Resolution::Standard).unwrap();
    assert_eq!(received.len(), 3, "pages received: {}", received.len());
    for (i, (r, s)) in received.iter().zip(&sent).enumerate() {
        assert_eq!(r.rows, s.rows, "page {}", i + 1);
        assert!(r.bits == s.bits, "page {} differs", i + 1);
    }

    let status = server.terminal(PC, ["fax", "status", &job]);
    status.assert_code(0);
    assert!(status.stdout.contains("\tsent\t"), "{}", status.stdout);
}

#[test]
fn a_user_without_the_send_fax_competence_is_refused_with_the_reason() {
    let (server, scratch) = setup();
    ok(&server, &["competence", "revoke", "1001", "send-fax"]);
    let one = scratch.image("one.png", "one");
    let out = fax_send(&server, &["--to", CUSTOMER], &[&one]);
    out.assert_error("lacks the competence send-fax");
}

#[test]
fn an_accepted_job_survives_a_sigkill_of_the_server() {
    let (mut server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let inbox = scratch.join("inbox");
    for d in [&exchange, &inbox] {
        std::fs::create_dir_all(d).unwrap();
    }
    let _customer = machine(&exchange, CUSTOMER, &inbox);
    // No gateway is online: the job waits in the queue, on disk.
    let one = scratch.image("one.png", "one");
    let out = fax_send(&server, &["--to", CUSTOMER], &[&one]);
    out.assert_code(0);
    let job = out.stdout.lines().next().unwrap().to_owned();
    let status = server.terminal(PC, ["fax", "status", &job]);
    assert!(status.stdout.contains("\tqueued\t"), "{}", status.stdout);
    assert!(
        server.data_dir().join("fax").join(&job).join("0").exists(),
        "a queued job's files are on disk"
    );
    server.kill9();
    server.restart().unwrap();
    let _gw = gateway(&server, &exchange, GW1, "5550101");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.terminal(PC, ["fax", "status", &job]);
        if status.stdout.contains("\tsent\t") {
            assert!(status.stdout.contains(GW1), "{}", status.stdout);
            break;
        }
        assert!(Instant::now() < deadline, "not sent: {}", status.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(records_of(&server, &job).len(), 1);
}

#[test]
fn a_job_larger_than_a_frame_travels_in_parts_and_arrives_bit_identical() {
    let (server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let inbox = scratch.join("inbox");
    for d in [&exchange, &inbox] {
        std::fs::create_dir_all(d).unwrap();
    }
    let customer = machine(&exchange, CUSTOMER, &inbox);
    let _gw = gateway(&server, &exchange, GW1, "5550101");
    // Noise does not compress: a PNG of about 1.9 MB, twice the frame limit.
    let big = scratch.join("big.png");
    let mut seed = 0x2545_f491_u32;
    image::GrayImage::from_fn(1400, 1400, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        image::Luma([(seed >> 24) as u8])
    })
    .save(&big)
    .unwrap();
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(
        size > imagecast_shared::limits::MAX_FRAME as u64,
        "{size} bytes"
    );
    let out = fax_send(
        &server,
        &["--to", CUSTOMER, "--wait", "--timeout", "60"],
        &[&big],
    );
    out.assert_code(0);
    assert!(
        out.stdout
            .contains(&format!("{CUSTOMER}: sent 1 pages via {GW1}")),
        "{}",
        out.stdout
    );
    customer.wait_for("stored as");
    let got = imagecast_tests::tiffs_in(&inbox);
    assert_eq!(got.len(), 1, "{got:?}");
    let pages = imagecast_faxgw::tiff::read_fax_tiff(&std::fs::read(&got[0]).unwrap())
        .unwrap()
        .unwrap();
    let sent = pages_from_file(&big, Resolution::Standard).unwrap();
    assert_eq!(pages.len(), 1);
    assert!(pages[0].bits == sent[0].bits && pages[0].rows == sent[0].rows);
    // The server's log says the job went in parts.
    assert!(
        server.log_text().contains("in_parts=true"),
        "handed over in parts"
    );
}

/// The server's database, read beside it (WAL: the server keeps writing).
fn db(server: &TestServer) -> rusqlite::Connection {
    imagecast_server::store::datadir::DataDir::new(server.data_dir())
        .connect()
        .expect("the server's database")
}

#[test]
fn a_sigkill_of_the_server_during_a_call_loses_no_job_and_faxes_no_page_twice() {
    let (mut server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let inbox = scratch.join("inbox");
    for d in [&exchange, &inbox] {
        std::fs::create_dir_all(d).unwrap();
    }
    let _customer = machine(&exchange, CUSTOMER, &inbox);
    // Slow calls (a tenth of real time: about a second a page), so the kill lands while a
    // page is on the line.
    let gw = gateway_scaled(&server, &exchange, GW1, "5550101", 0.1);
    let doc = scratch.join("doc.tif");
    multipage_tiff(&doc, 4, 600, 400).unwrap();
    let sent = pages_from_file(&doc, Resolution::Standard).unwrap();
    let out = fax_send(&server, &["--to", CUSTOMER], &[&doc]);
    out.assert_code(0);
    let job = out.stdout.lines().next().unwrap().to_owned();

    // Page 1's confirmation is on the server's disk and page 2 is being sent: kill.
    let conn = db(&server);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (next, detail): (u32, String) = conn
            .query_row(
                "SELECT next_page, detail FROM fax_jobs WHERE job = ?1",
                [&job],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if next == 2 && detail.starts_with("sending page 2") {
            break;
        }
        assert!(
            next < 3,
            "the call ran past page 2 before the kill: {detail}"
        );
        assert!(Instant::now() < deadline, "page 2 never went out: {detail}");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(conn);
    server.kill9();
    server.restart().unwrap();
    // The gateway connects again by itself; the job resumes and is sent.
    gw.wait_for(&format!("connected as {GW1}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let line = loop {
        let status = server.terminal(PC, ["fax", "status", &job]);
        if let Some(l) = status.stdout.lines().find(|l| l.contains("\tsent\t")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "not sent: {}", status.stdout);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(line.contains("sent 4 pages via"), "{line}");

    // The customer's machine holds every page exactly once, in order: the cut-off call's
    // confirmed pages, then the rest from the resumed call.
    let deadline = Instant::now() + Duration::from_secs(20);
    let received = loop {
        let mut received = Vec::new();
        for p in imagecast_tests::tiffs_in(&inbox) {
            received.extend(
                imagecast_faxgw::tiff::read_fax_tiff(&std::fs::read(&p).unwrap())
                    .unwrap()
                    .expect("a fax TIFF"),
            );
        }
        if received.len() >= sent.len() || Instant::now() > deadline {
            break received;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(received.len(), 4, "pages received");
    for (i, (r, s)) in received.iter().zip(&sent).enumerate() {
        assert!(
            r.rows == s.rows && r.bits == s.bits,
            "page {} differs",
            i + 1
        );
    }
    let files = imagecast_tests::tiffs_in(&inbox);
    assert_eq!(files.len(), 2, "two calls delivered pages: {files:?}");
    let first_call = imagecast_faxgw::tiff::read_fax_tiff(&std::fs::read(&files[0]).unwrap())
        .unwrap()
        .expect("a fax TIFF")
        .len();
    assert_eq!(first_call, 1, "the cut-off call delivered page 1 only");
    // The simulated network's call log: the resumed call sent the other three.
    let calls = run(
        faxgw()
            .args(["pstn", "--exchange"])
            .arg(&exchange)
            .arg("calls"),
        imagecast_tests::LIMIT,
    )
    .expect("pstn runs");
    calls.assert_code(0);
    let to_customer: Vec<Vec<&str>> = calls
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[2] == CUSTOMER)
        .collect();
    assert_eq!(to_customer.len(), 1, "{}", calls.stdout);
    assert_eq!((to_customer[0][3], to_customer[0][4]), ("sent", "3"));

    // A consistent record: the cut-off call (failed, one page) and the resumed one (sent,
    // three pages), two dials, the job's files removed.
    let conn = db(&server);
    let recs: Vec<(String, u32, String)> = conn
        .prepare("SELECT result, pages, reason FROM fax_records WHERE job = ?1 ORDER BY seq")
        .unwrap()
        .query_map([&job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!((recs[0].0.as_str(), recs[0].1), ("failed", 1), "{recs:?}");
    assert!(recs[0].2.contains("the server restarted"), "{recs:?}");
    assert_eq!((recs[1].0.as_str(), recs[1].1), ("sent", 3), "{recs:?}");
    let dials: u32 = conn
        .query_row("SELECT dials FROM fax_jobs WHERE job = ?1", [&job], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dials, 2);
    assert!(!server.data_dir().join("fax").join(&job).exists());
}

#[test]
fn groupings_refuse_with_the_grouping_named_and_never_use_a_gateway_outside() {
    let (server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let inbox = scratch.join("inbox");
    for d in [&exchange, &inbox] {
        std::fs::create_dir_all(d).unwrap();
    }
    let _customer = machine(&exchange, CUSTOMER, &inbox);
    let one = scratch.image("one.png", "one");

    // User 1001's grouping has no gateway: refused at send, the grouping named.
    ok(&server, &["grouping", "add", "tokyo"]);
    ok(
        &server,
        &["grouping", "member", "add", "tokyo", "--user", "1001"],
    );
    let out = fax_send(&server, &["--to", CUSTOMER], &[&one]);
    out.assert_error("user 1001's grouping tokyo has no fax gateway");

    // With gw1 in it: gw2 comes first in the priority table and is free, yet every call
    // goes through gw1.
    ok(
        &server,
        &["grouping", "member", "add", "tokyo", "--gateway", GW1],
    );
    let _gw1 = gateway(&server, &exchange, GW1, "5550101");
    let _gw2 = gateway(&server, &exchange, GW2, "5550102");
    for _ in 0..2 {
        let out = fax_send(
            &server,
            &["--to", CUSTOMER, "--wait", "--timeout", "40"],
            &[&one],
        );
        out.assert_code(0);
        assert!(
            out.stdout
                .contains(&format!("{CUSTOMER}: sent 1 pages via {GW1} (")),
            "{}",
            out.stdout
        );
        let job = out.stdout.lines().next().unwrap().to_owned();
        let recs = records_of(&server, &job);
        assert_eq!(recs, [("sent".to_owned(), GW1.to_owned())]);
    }
    let calls = run(
        faxgw()
            .args(["pstn", "--exchange"])
            .arg(&exchange)
            .arg("calls"),
        imagecast_tests::LIMIT,
    )
    .expect("pstn runs");
    assert!(
        !calls.stdout.lines().any(|l| l.contains("\t5550102\t")),
        "gw2 dialled: {}",
        calls.stdout
    );

    // A job accepted while gw1 was in the grouping, still queued when it is taken out
    // (busy line), fails with the grouping named.
    pstn(&exchange, &["fault", CUSTOMER, "busy"]);
    let out = fax_send(&server, &["--to", CUSTOMER], &[&one]);
    out.assert_code(0);
    let job = out.stdout.lines().next().unwrap().to_owned();
    ok(
        &server,
        &["grouping", "member", "remove", "tokyo", "--gateway", GW1],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.terminal(PC, ["fax", "status", &job]);
        if let Some(l) = status.stdout.lines().find(|l| l.contains("\tfailed\t")) {
            assert!(
                l.contains("no gateway may send it: user 1001's grouping tokyo has no fax gateway"),
                "{l}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not failed: {}", status.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        records_of(&server, &job).iter().all(|(_, gw)| gw == GW1),
        "{:?}",
        records_of(&server, &job)
    );
}
