//! Receiving faxes and central gateway settings (issue 12, features 3 and 4) with the real
//! binaries: imagecast-server, `imagecast-faxgw run` (a gateway on the simulated exchange),
//! `imagecast-faxgw machine --send` (a customer's fax machine) and `imagecast receive`,
//! `imagecast fax records|settings` at the terminals.

use std::path::Path;
use std::time::Duration;

use imagecast_faxgw::page::{FaxPage, Resolution, pages_from_file};
use imagecast_faxgw::tiff::read_fax_tiff;
use imagecast_tests::{Output, Scratch, TestServer, multipage_tiff, run};

use super::fax::{Proc, faxgw, machine, ok};

const GW: &str = "gw1.fax.example";
const GW_NUMBER: &str = "5550101";
/// The user 1001's home terminal.
const PC: &str = "plan1.hqs.mei.co.jp";
/// Where faxes no rule names go.
const DEFAULT: &str = "sale1.osk.mei.co.jp";

fn setup() -> (TestServer, Scratch) {
    let mut server = TestServer::start_demo().expect("server");
    server
        .add_device(GW, "Fax Tokyo", "fax-gateway")
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
        &["fax", "delivery", "add", "--any", "--device", DEFAULT],
    );
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("exchange")).expect("exchange");
    (server, scratch)
}

/// `imagecast-faxgw run` for the gateway, its received faxes kept in `spool`.
fn gateway(server: &TestServer, exchange: &Path, spool: &Path) -> Proc {
    let token = server.tokens.get(GW).cloned().expect("gateway token");
    let mut cmd = faxgw();
    cmd.args(["run", "--server", &server.addr, "--device", GW])
        .env("IMAGECAST_TOKEN", &token)
        .args(["--line", "sim", "--exchange"])
        .arg(exchange)
        .args(["--number", GW_NUMBER, "--station", "GW TOKYO", "--spool"])
        .arg(spool);
    match &server.fingerprint {
        Some(fp) => cmd.args(["--server-fingerprint", fp]),
        None => cmd.arg("--plain"),
    };
    Proc::spawn(GW, &mut cmd)
}

/// A customer's machine sends `file` to the gateway; it must exit 0 (every page confirmed).
fn customer_sends(exchange: &Path, number: &str, station: &str, file: &Path) -> Output {
    let out = run(
        faxgw()
            .args(["machine", "--exchange"])
            .arg(exchange)
            .args(["--number", number, "--station", station, "--send"])
            .arg(file)
            .args(["--to", GW_NUMBER]),
        Duration::from_secs(60),
    )
    .expect("the machine runs");
    out.assert_code(0);
    out
}

/// `imagecast receive --count 1` at `domain` into `dir`: its stdout.
fn receive_one(server: &TestServer, domain: &str, dir: &Path, json: bool) -> String {
    let mut cmd = server.imagecast(domain);
    cmd.args(["receive", "--count", "1", "--out"]).arg(dir);
    if json {
        cmd.arg("--json");
    }
    let out = run(&mut cmd, Duration::from_secs(30)).expect("imagecast receive runs");
    out.assert_code(0);
    out.stdout
}

fn same_pages(got: &[FaxPage], want: &[FaxPage]) {
    assert_eq!(got.len(), want.len(), "page count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.rows, w.rows, "rows of page {}", i + 1);
        assert!(g.bits == w.bits, "the bitmap of page {} differs", i + 1);
        assert!(w.black_pixels() > 0, "page {} is not blank", i + 1);
    }
}

#[test]
fn an_incoming_fax_reaches_the_users_terminal_bit_identical_and_a_stranger_the_default_route() {
    let (mut server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let gw = gateway(&server, &exchange, &scratch.join("spool"));
    gw.wait_for(&format!("connected as {GW}"));

    // Matched by station ID: user 1001, whose home terminal is offline now.
    let doc = scratch.join("contract.tif");
    multipage_tiff(&doc, 2, 640, 480).expect("document");
    customer_sends(&exchange, "5550199", "ACME OSAKA", &doc);
    gw.wait_for("received fax from 5550199 \"ACME OSAKA\": 2 pages");
    gw.wait_for(" uploaded");
    // Not matched: the default route.
    let note = scratch.join("note.tif");
    multipage_tiff(&note, 1, 300, 200).expect("note");
    customer_sends(&exchange, "5550177", "STRANGER", &note);
    gw.wait_for("received fax from 5550177 \"STRANGER\": 1 pages");
    gw.wait_for(" uploaded");

    // The terminal comes online and gets it (store and forward).
    let pc_dir = scratch.join("pc");
    let line = receive_one(&server, PC, &pc_dir, false);
    assert!(
        line.contains(&format!(
            "fax from 5550199 \"ACME OSAKA\" via {GW}: 2 pages"
        )),
        "{line}"
    );
    let stored = imagecast_tests::tiffs_in(&pc_dir);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let got = read_fax_tiff(&std::fs::read(&stored[0]).expect("stored fax"))
        .expect("a fax TIFF")
        .expect("G3/G4 pages");
    let sent = pages_from_file(&doc, Resolution::Standard).expect("the customer's pages");
    same_pages(&got, &sent);

    let osk_dir = scratch.join("osk");
    let json = receive_one(&server, DEFAULT, &osk_dir, true);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(v["fax"]["caller"], "5550177", "{json}");
    assert_eq!(v["fax"]["station"], "STRANGER", "{json}");
    assert_eq!(v["fax"]["gateway"], GW, "{json}");
    assert_eq!(v["fax"]["pages"], 1, "{json}");
    assert_eq!(v["sender"]["domain"], GW, "{json}");
    let got =
        read_fax_tiff(&std::fs::read(&imagecast_tests::tiffs_in(&osk_dir)[0]).expect("stored"))
            .expect("TIFF")
            .expect("pages");
    same_pages(
        &got,
        &pages_from_file(&note, Resolution::Standard).expect("pages"),
    );

    // The journal shows both deliveries; the records say received, and to whom.
    let journal = server.journal().join("\n");
    assert!(
        journal.contains(GW) && journal.contains(PC) && journal.contains(DEFAULT),
        "{journal}"
    );
    let records = server.admin_run(&["fax", "records"]);
    assert_eq!(records.code, 0, "{}", records.stderr);
    let received: Vec<&str> = records
        .stdout
        .lines()
        .filter(|l| l.contains("\treceive\t"))
        .collect();
    assert_eq!(received.len(), 2, "{}", records.stdout);
    assert!(received[0].contains("1001") && received[0].contains("ACME OSAKA"));

    // The terminal keeps the records it was sent: with the server away it still answers.
    let online = server.terminal(PC, ["fax", "records"]);
    online.assert_code(0);
    assert!(online.stdout.contains("ACME OSAKA"), "{}", online.stdout);
    drop(gw);
    server.kill9();
    let away = server.terminal(PC, ["fax", "records"]);
    away.assert_code(0);
    assert!(away.stdout.contains("receive"), "{}", away.stdout);
    assert!(away.stdout.contains("\"ACME OSAKA\""), "{}", away.stdout);
    assert!(
        away.stderr.contains("this terminal's own copies"),
        "{}",
        away.stderr
    );
}

#[test]
fn a_fax_kept_by_a_killed_gateway_is_uploaded_again_and_reaches_the_user_once() {
    let (mut server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let spool = scratch.join("spool");
    // The supervisor is away while the fax comes in: the gateway answers and keeps it.
    server.kill9();
    let gw = gateway(&server, &exchange, &spool);
    let doc = scratch.join("order.tif");
    multipage_tiff(&doc, 1, 500, 400).expect("document");
    customer_sends(&exchange, "5550199", "ACME KOBE", &doc);
    let kept = gw.wait_for("received fax from 5550199 \"ACME KOBE\"");
    let id = kept.rsplit("kept as ").next().expect("an ID").to_owned();
    // Killed (SIGKILL) before any acknowledgement; a copy of its spool stands for an
    // acknowledgement lost after the supervisor stored the fax.
    drop(gw);
    let copy = scratch.join("spool-copy");
    std::fs::create_dir_all(&copy).expect("copy");
    for ext in ["tif", "toml"] {
        std::fs::copy(
            spool.join(format!("{id}.{ext}")),
            copy.join(format!("{id}.{ext}")),
        )
        .expect("spooled fax");
    }

    server.restart().expect("restart");
    let gw = gateway(&server, &exchange, &spool);
    gw.wait_for(&format!("fax {id} uploaded"));
    assert!(
        !spool.join(format!("{id}.toml")).exists(),
        "forgotten once stored"
    );
    drop(gw);
    for ext in ["tif", "toml"] {
        std::fs::copy(
            copy.join(format!("{id}.{ext}")),
            spool.join(format!("{id}.{ext}")),
        )
        .expect("restore");
    }
    let gw = gateway(&server, &exchange, &spool);
    gw.wait_for(&format!(
        "fax {id} uploaded (the supervisor had it already)"
    ));

    let pc_dir = scratch.join("pc");
    let line = receive_one(&server, PC, &pc_dir, false);
    assert!(
        line.contains(&format!("fax from 5550199 \"ACME KOBE\" via {GW}: 1 page")),
        "{line}"
    );
    assert_eq!(imagecast_tests::tiffs_in(&pc_dir).len(), 1);
    // Once: one delivery in the journal, one receive record.
    let deliveries = server
        .journal()
        .iter()
        .filter(|l| l.contains(GW) && l.contains(PC))
        .count();
    assert_eq!(deliveries, 1, "{:?}", server.journal());
    let records = server.admin_run(&["fax", "records"]);
    assert_eq!(
        records
            .stdout
            .lines()
            .filter(|l| l.contains("\treceive\t"))
            .count(),
        1,
        "{}",
        records.stdout
    );
}

#[test]
fn a_received_fax_goes_only_to_users_of_the_gateways_grouping() {
    let (server, scratch) = setup();
    let exchange = scratch.join("exchange");
    // The gateway serves the Osaka grouping, which user 1002 belongs to, not 1001: the
    // station rule naming 1001 is passed over, and a later rule to 1002 takes the fax.
    ok(&server, &["grouping", "add", "osaka"]);
    ok(
        &server,
        &["grouping", "member", "add", "osaka", "--gateway", GW],
    );
    ok(
        &server,
        &["grouping", "member", "add", "osaka", "--user", "1002"],
    );
    ok(&server, &["user", "home", "1002", "sale1.ngy.mei.co.jp"]);
    ok(
        &server,
        &[
            "fax", "delivery", "add", "--caller", "555*", "--user", "1002",
        ],
    );
    let gw = gateway(&server, &exchange, &scratch.join("spool"));
    gw.wait_for(&format!("connected as {GW}"));
    let doc = scratch.join("d.tif");
    multipage_tiff(&doc, 1, 300, 200).expect("document");
    customer_sends(&exchange, "5550199", "ACME OSAKA", &doc);
    gw.wait_for(" uploaded");
    let line = receive_one(&server, "sale1.ngy.mei.co.jp", &scratch.join("ngy"), false);
    assert!(line.contains("fax from 5550199 \"ACME OSAKA\""), "{line}");
    let records = server.admin_run(&["fax", "records"]);
    let received: Vec<&str> = records
        .stdout
        .lines()
        .filter(|l| l.contains("\treceive\t"))
        .collect();
    assert_eq!(received.len(), 1, "{}", records.stdout);
    assert!(received[0].contains("1002"), "{}", received[0]);
    assert!(!received[0].contains("1001"), "{}", received[0]);
}

fn settings_show(server: &TestServer) -> String {
    let out = server.admin_run(&["fax", "settings", "show", GW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

#[test]
fn settings_changed_while_the_gateway_is_down_are_applied_when_it_returns() {
    let (server, scratch) = setup();
    let exchange = scratch.join("exchange");
    let spool = scratch.join("spool");
    let gw = gateway(&server, &exchange, &spool);
    gw.wait_for(&format!("connected as {GW}"));
    drop(gw);

    ok(
        &server,
        &[
            "fax",
            "settings",
            "set",
            GW,
            "station-id=OSAKA CENTRAL",
            "lines=2",
            "tagline=ACME Corp",
        ],
    );
    let shown = settings_show(&server);
    assert!(shown.contains("pending=yes"), "{shown}");
    // What the gateway said about itself (`run --station`) is stored by the supervisor.
    assert!(
        shown.contains("announced-station=GW TOKYO") && shown.contains("announced-number=5550101"),
        "{shown}"
    );

    let gw = gateway(&server, &exchange, &spool);
    gw.wait_for("settings version 1 applied (only stored: tagline)");
    let shown = settings_show(&server);
    assert!(
        shown.contains("pending=no") && shown.contains("applied-version=1"),
        "{shown}"
    );
    // Applied: the gateway answers with the new station ID and announced two lines.
    let doc = scratch.join("p.tif");
    multipage_tiff(&doc, 1, 300, 200).expect("document");
    let out = customer_sends(&exchange, "5550199", "ACME", &doc);
    assert!(out.stdout.contains("\"OSAKA CENTRAL\""), "{}", out.stdout);
    let gateways = server.terminal(PC, ["fax", "gateways"]);
    assert!(
        gateways.stdout.contains("online\t0/2 lines in use"),
        "{}",
        gateways.stdout
    );

    // From a terminal: refused without the competence, with the reason.
    let refused = server.terminal(PC, ["fax", "settings", "set", GW, "lines=1"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("lacks the competence gateway-settings"),
        "{}",
        refused.stderr
    );
    let refused = server.terminal(PC, ["fax", "settings", "show", GW]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("gateway-settings"),
        "{}",
        refused.stderr
    );
    ok(
        &server,
        &["competence", "grant", "1001", "gateway-settings"],
    );
    let set = server.terminal(PC, ["fax", "settings", "set", GW, "station-id=FROM PC"]);
    set.assert_code(0);
    assert!(set.stdout.contains("version=2"), "{}", set.stdout);
    // Pushed to the gateway online.
    gw.wait_for("settings version 2 applied");
    let shown = server.terminal(PC, ["fax", "settings", "show", GW, "--json"]);
    shown.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(shown.stdout.trim()).expect("JSON");
    assert_eq!(v["settings"]["station-id"], "FROM PC", "{}", shown.stdout);
    assert_eq!(v["applied_version"], 2, "{}", shown.stdout);
    assert_eq!(v["pending"], false, "{}", shown.stdout);

    // max-pages is honoured: a longer job fails without a call.
    ok(&server, &["fax", "settings", "set", GW, "max-pages=1"]);
    gw.wait_for("settings version 3 applied");
    ok(&server, &["fax", "policy", "set", "max-tries=1"]);
    let inbox = scratch.join("inbox");
    let _customer = machine(&exchange, "5550199", &inbox);
    let two = scratch.join("two.tif");
    multipage_tiff(&two, 2, 300, 200).expect("document");
    let out = run(
        server
            .imagecast(PC)
            .args([
                "fax",
                "send",
                "--to",
                "5550199",
                "--wait",
                "--timeout",
                "30",
            ])
            .arg(&two),
        Duration::from_secs(60),
    )
    .expect("imagecast runs");
    out.assert_code(2);
    assert!(
        out.stdout
            .contains("2 pages; this gateway sends at most 1 (max-pages)"),
        "{}",
        out.stdout
    );
}
