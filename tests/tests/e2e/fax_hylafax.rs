//! A fax gateway on a real HylaFAX server (issue 12, the `hylafax` line driver) with the
//! real binaries: imagecast-server, `imagecast-faxgw run --line hylafax` against Debian's
//! hfaxd on 127.0.0.1:4559, and `imagecast fax send` / `imagecast receive` at a PC.
//!
//! Needs root, like the driver's test (faxgw/tests/hylafax.rs), whose set-up it shares
//! ([`imagecast_tests::hylafax::Testbed`]); skipped otherwise, except under `CI`, where it
//! fails. With no modem configured, a job HylaFAX is given stays queued: the test checks
//! that the supervisor shows it dialling through the gateway while HylaFAX holds it, and
//! failed `timed out` (the gateway's `--hylafax-job-timeout`) once the gateway removed it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::page::{FaxPage, Resolution};
use imagecast_tests::hylafax::{ADDR, Testbed, USER, queue_files_of_test_user, run as must};
use imagecast_tests::{Scratch, TestServer, run};

use super::fax::{Proc, faxgw, ok};

const GW: &str = "hylafax.fax.example";
const PC: &str = "plan1.hqs.mei.co.jp";
const CUSTOMER: &str = "5550199";

/// `imagecast-faxgw run --line hylafax` with the test user's passwords in the environment.
fn gateway_cmd(server: &TestServer, spool: &Path, password: &str, admin: &str) -> Command {
    let token = server.tokens.get(GW).cloned().expect("gateway token");
    let mut cmd = faxgw();
    cmd.args(["run", "--server", &server.addr, "--device", GW])
        .env("IMAGECAST_TOKEN", &token)
        .env("IMAGECAST_HYLAFAX_PASSWORD", password)
        .env("IMAGECAST_HYLAFAX_ADMIN_PASSWORD", admin)
        .args([
            "--line",
            "hylafax",
            "--hylafax",
            ADDR,
            "--hylafax-user",
            USER,
        ])
        .args(["--hylafax-poll", "0.5", "--hylafax-job-timeout", "4"])
        .args(["--number", "5550100", "--spool"])
        .arg(spool);
    match &server.fingerprint {
        Some(fp) => cmd.args(["--server-fingerprint", fp]),
        None => cmd.arg("--plain"),
    };
    cmd
}

/// A page with a recognisable pattern.
fn page(resolution: Resolution, seed: u32) -> FaxPage {
    let mut p = FaxPage::white(resolution, 160);
    for y in 0..160 {
        for x in 0..1728 {
            if (x / 24 + y / 10 + seed) % 4 == 0 {
                p.set(x, y, true);
            }
        }
    }
    p
}

/// `imagecast fax status JOB` until its line holds `want` (bounded); that line.
fn status_until(server: &TestServer, job: &str, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let out = server.terminal(PC, ["fax", "status", job]);
        out.assert_code(0);
        if let Some(l) = out.stdout.lines().find(|l| l.contains(want)) {
            return l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "job {job} never showed {want:?}: {}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_gateway_on_a_real_hylafax_server_submits_jobs_and_delivers_received_faxes() {
    let Some(mut bed) = Testbed::start() else {
        return;
    };
    let mut server = TestServer::start_demo().expect("server");
    server
        .add_device(GW, "Fax HylaFAX", "fax-gateway")
        .expect("gateway");
    ok(&server, &["user", "home", "1001", PC]);
    ok(
        &server,
        &[
            "fax",
            "delivery",
            "add",
            "--station",
            "ACME*",
            "--user",
            "1001",
        ],
    );
    ok(
        &server,
        &["fax", "policy", "set", "max-tries=1", "failed-retry-s=1"],
    );
    let scratch = Scratch::new();
    let spool = scratch.join("spool");

    // A wrong password: the gateway refuses to start and says why, without the password.
    let wrong = format!("{}-wrong", bed.password);
    let out = run(
        &mut gateway_cmd(&server, &spool, &wrong, &bed.admin_password),
        Duration::from_secs(60),
    )
    .expect("imagecast-faxgw runs");
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("cannot use the HylaFAX server 127.0.0.1:4559"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&wrong), "the password shows");

    let gw = Proc::spawn(
        GW,
        &mut gateway_cmd(&server, &spool, &bed.password, &bed.admin_password),
    );
    gw.wait_for("HylaFAX server 127.0.0.1:4559 ready");
    gw.wait_for(&format!("connected as {GW}"));

    // Sending: the job goes into HylaFAX's send queue with the number; with no modem it
    // stays queued there while the supervisor shows it dialling through the gateway.
    let one = scratch.image("one.png", "hylafax");
    let out = run(
        server
            .imagecast(PC)
            .args(["fax", "send", "--to", CUSTOMER])
            .arg(&one),
        Duration::from_secs(60),
    )
    .expect("imagecast runs");
    out.assert_code(0);
    let job = out.stdout.lines().next().expect("a job ID").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let qfile = loop {
        let found = queue_files_of_test_user().into_iter().find(|q| {
            std::fs::read_to_string(q)
                .is_ok_and(|t| t.lines().any(|l| l == format!("number:{CUSTOMER}")))
        });
        if let Some(q) = found {
            break q;
        }
        assert!(
            Instant::now() < deadline,
            "no HylaFAX job for {CUSTOMER} in sendq"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&qfile).unwrap_or_default();
    assert!(
        text.lines().any(|l| l == "maxdials:1") && text.lines().any(|l| l == "maxtries:1"),
        "{text}"
    );
    let dialling = status_until(&server, &job, "\tdialling\t", Duration::from_secs(10));
    assert!(dialling.contains(GW), "{dialling}");
    // The gateway's job timeout (4 s) runs out: the job is killed and removed from
    // HylaFAX, and with max-tries=1 the number fails with HylaFAX's state named.
    let failed = status_until(&server, &job, "\tfailed\t", Duration::from_secs(30));
    assert!(
        failed.contains("timed out") && failed.contains("READY"),
        "{failed}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !queue_files_of_test_user().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the gateway left its HylaFAX job: {:?}",
            queue_files_of_test_user()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let records = server.terminal(PC, ["fax", "records", "--last", "10"]);
    records.assert_code(0);
    let sent: Vec<&str> = records
        .stdout
        .lines()
        .filter(|l| l.ends_with(&job))
        .collect();
    assert_eq!(sent.len(), 1, "{}", records.stdout);
    assert!(
        sent[0].contains(GW) && sent[0].contains("failed"),
        "{}",
        sent[0]
    );

    // Reception: a fax in HylaFAX's receive queue, stored as faxgetty stores one (Group 3,
    // FillOrder 2, TSI and caller ID in ImageDescription, mode 0600).
    let pages = vec![page(Resolution::Fine, 1), page(Resolution::Standard, 2)];
    let ours = scratch.join("ours.tif");
    let theirs = scratch.join("received.tif");
    std::fs::write(
        &ours,
        imagecast_faxgw::tiff::write_fax_tiff(&pages, Coding::Mh).expect("TIFF"),
    )
    .expect("write");
    must(
        Command::new("tiffcp")
            .args(["-f", "lsb2msb", "-c", "g3:1d"])
            .arg(&ours)
            .arg(&theirs),
    );
    must(
        Command::new("tiffset")
            .args(["-s", "270", "ACME TSI\n5551234\nACME Corp"])
            .arg(&theirs),
    );
    // The supervisor is away when it comes in: the gateway keeps it, and it stays in
    // HylaFAX's queue until the supervisor has stored it.
    server.kill9();
    let bytes = std::fs::read(&theirs).expect("read");
    let queued = bed.put_received(&bytes);
    let name = queued
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    let kept = gw.wait_for("received fax from 5551234 \"ACME TSI\": 2 pages; kept as hylafax-");
    let id = kept
        .split("kept as ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("an ID")
        .to_owned();
    assert!(queued.exists(), "removed before the supervisor stored it");
    server.restart().expect("restart");
    gw.wait_for(&format!("connected as {GW}"));
    // Removed from HylaFAX's queue once the supervisor stored it, then forgotten.
    gw.wait_for(&format!("fax {name} removed from HylaFAX's receive queue"));
    gw.wait_for(&format!("fax {id} uploaded"));
    assert!(!queued.exists(), "{} is still queued", queued.display());
    // A removal that was lost (the fax is there again): fetched again under the same ID,
    // which the supervisor knows; removed; the user still gets it once.
    bed.put_as(&queued, &bytes);
    gw.wait_for(&format!("kept as {id} "));
    gw.wait_for(&format!("fax {name} removed from HylaFAX's receive queue"));
    gw.wait_for(&format!(
        "fax {id} uploaded (the supervisor had it already)"
    ));
    assert!(!queued.exists(), "{} is still queued", queued.display());

    let dir = scratch.join("pc");
    let mut cmd = server.imagecast(PC);
    cmd.args(["receive", "--count", "1", "--out"]).arg(&dir);
    let out = run(&mut cmd, Duration::from_secs(30)).expect("imagecast receive runs");
    out.assert_code(0);
    assert!(
        out.stdout
            .contains(&format!("fax from 5551234 \"ACME TSI\" via {GW}: 2 pages")),
        "{}",
        out.stdout
    );
    let stored: Vec<_> = std::fs::read_dir(&dir)
        .expect("received folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let got = imagecast_faxgw::tiff::read_fax_tiff(&std::fs::read(&stored[0]).expect("read"))
        .expect("a fax TIFF")
        .expect("G3 pages");
    assert_eq!(got, pages, "the received pages, pixel for pixel");
    let records = server.admin_run(&["fax", "records"]);
    let received: Vec<&str> = records
        .stdout
        .lines()
        .filter(|l| l.contains("\treceive\t"))
        .collect();
    assert_eq!(received.len(), 1, "{}", records.stdout);
    assert!(
        received[0].contains("1001") && received[0].contains("ACME TSI"),
        "{}",
        received[0]
    );
    drop(gw);
    server.kill9();
}
