//! The network-fax supervisor's admin commands, run as the real `imagecast-server` binary on
//! a demo data directory with two fax gateways: every command, each refusal with its reason
//! named, the TOML export and import, the xferfaxlog export, and versioned gateway settings.

use imagecast_server::fax::{phonebook, records, settings};
use imagecast_server::store::datadir::DataDir;
use imagecast_tests::{Output, TestServer};

const GW1: &str = "gw1.fax.example";
const GW2: &str = "gw2.fax.example";
const PC: &str = "plan1.hqs.mei.co.jp";
const MFP: &str = "sale1.osk.mei.co.jp";

/// A demo server with two fax gateways.
fn server() -> TestServer {
    let mut server = TestServer::start_demo().unwrap();
    server.add_device(GW1, "Fax Tokyo", "fax-gateway").unwrap();
    server.add_device(GW2, "Fax Osaka", "fax-gateway").unwrap();
    server
}

/// Runs an admin command that must succeed; returns its stdout lines.
fn ok(server: &TestServer, args: &[&str]) -> Vec<String> {
    let out = server.admin_run(args);
    assert_eq!(
        out.code, 0,
        "{args:?}: stdout {}\nstderr {}",
        out.stdout, out.stderr
    );
    out.stdout.lines().map(str::to_owned).collect()
}

/// Runs an admin command that must fail with `text` on stderr.
fn refused(server: &TestServer, args: &[&str], text: &str) -> Output {
    let out = server.admin_run(args);
    out.assert_error(text);
    out
}

fn conn(server: &TestServer) -> rusqlite::Connection {
    DataDir::new(server.data_dir()).connect().unwrap()
}

#[test]
fn the_priority_table_and_client_routes() {
    let server = server();
    assert!(ok(&server, &["fax", "priority", "list"]).is_empty());
    ok(&server, &["fax", "priority", "set", GW2, "GW1.fax.example"]);
    assert_eq!(ok(&server, &["fax", "priority", "list"]), [GW2, GW1]);
    assert_eq!(
        ok(&server, &["fax", "priority", "list", "--json"]),
        [format!("[\"{GW2}\",\"{GW1}\"]")]
    );
    refused(
        &server,
        &["fax", "priority", "set", GW1, "gw9.fax.example"],
        "unknown gateway gw9.fax.example",
    );
    refused(
        &server,
        &["fax", "priority", "set", PC],
        &format!("{PC} is not a fax gateway: it is a device of kind"),
    );
    assert_eq!(
        ok(&server, &["fax", "priority", "list"]),
        [GW2, GW1],
        "a refused set changed nothing"
    );

    ok(&server, &["fax", "client-route", "set", "1001", GW1]);
    ok(&server, &["fax", "client-route", "set", PC, GW2, GW1]);
    assert_eq!(
        ok(&server, &["fax", "client-route", "list"]),
        [
            format!("1001\tuser\t{GW1}"),
            format!("{PC}\tdevice\t{GW2} {GW1}")
        ]
    );
    let json = ok(&server, &["fax", "client-route", "list", "--json"]).join("");
    assert!(
        json.starts_with("[{") && json.contains("\"kind\":\"user\""),
        "{json}"
    );
    let conn = conn(&server);
    assert_eq!(
        imagecast_server::fax::priority::candidates(&conn, Some(PC), Some("1001")).unwrap(),
        [GW1],
        "the user's route beats the terminal's"
    );
    assert_eq!(
        imagecast_server::fax::priority::candidates(&conn, Some(PC), Some("1002")).unwrap(),
        [GW2, GW1]
    );
    refused(
        &server,
        &["fax", "client-route", "set", "nobody", GW1],
        "nobody is neither a user ID nor a device domain",
    );
    refused(
        &server,
        &["fax", "client-route", "set", "1002", MFP],
        &format!("{MFP} is not a fax gateway"),
    );
    ok(&server, &["fax", "client-route", "clear", "1001"]);
    refused(
        &server,
        &["fax", "client-route", "clear", "1001"],
        "user 1001 has no client route",
    );
    assert_eq!(ok(&server, &["fax", "client-route", "list"]).len(), 1);
}

#[test]
fn the_delivery_table() {
    let server = server();
    let add = |args: &[&str]| {
        let mut all = vec!["fax", "delivery", "add"];
        all.extend_from_slice(args);
        ok(&server, &all)
    };
    assert_eq!(add(&["--station", "ACME*", "--user", "1001"]), ["1"]);
    assert_eq!(add(&["--caller", "+81 6*", "--device", MFP]), ["2"]);
    assert_eq!(add(&["--called", "03-5555-0001", "--user", "1002"]), ["3"]);
    assert_eq!(add(&["--gateway", GW2, "--device", PC]), ["4"]);
    assert_eq!(add(&["--any", "--user", "9000"]), ["5"]);
    assert_eq!(
        ok(&server, &["fax", "delivery", "list"]),
        [
            "1\tstation ACME*\tuser 1001".to_owned(),
            format!("2\tcaller +81 6*\tdevice {MFP}"),
            "3\tcalled 03-5555-0001\tuser 1002".to_owned(),
            format!("4\tgateway {GW2}\tdevice {PC}"),
            "5\tany\tuser 9000".to_owned(),
        ]
    );
    let json = ok(&server, &["fax", "delivery", "list", "--json"]).join("");
    for field in [
        "\"match\":\"station\"",
        "\"n\":1",
        "\"target\":\"1001\"",
        "\"target_kind\":\"user\"",
        "\"value\":\"ACME*\"",
    ] {
        assert!(json.contains(field), "{field} in {json}");
    }

    let route = |st: &str, ca: &str, cd: &str, gw: &str| {
        imagecast_server::fax::delivery::route(&conn(&server), st, ca, cd, gw)
            .unwrap()
            .map(|t| t.describe())
    };
    assert_eq!(
        route("acme osaka", "", "", GW1).as_deref(),
        Some("user 1001")
    );
    assert_eq!(
        route("X", "+81-6-5555", "", GW1),
        Some(format!("device {MFP}"))
    );
    assert_eq!(
        route("X", "", "0355550001", GW1).as_deref(),
        Some("user 1002")
    );
    assert_eq!(route("X", "", "", GW2), Some(format!("device {PC}")));
    assert_eq!(route("X", "", "", GW1).as_deref(), Some("user 9000"));

    refused(
        &server,
        &[
            "fax",
            "delivery",
            "add",
            "--called",
            "03-CALL-ME",
            "--user",
            "1001",
        ],
        "bad number \"03-CALL-ME\"",
    );
    refused(
        &server,
        &["fax", "delivery", "add", "--gateway", PC, "--user", "1001"],
        &format!("{PC} is not a fax gateway"),
    );
    refused(
        &server,
        &["fax", "delivery", "add", "--any", "--user", "4242"],
        "unknown user 4242",
    );
    refused(
        &server,
        &[
            "fax",
            "delivery",
            "add",
            "--any",
            "--device",
            "nowhere.example",
        ],
        "unknown device nowhere.example",
    );
    let both = server.admin_run(&[
        "fax",
        "delivery",
        "add",
        "--any",
        "--station",
        "X",
        "--user",
        "1001",
    ]);
    both.assert_code(2);
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );

    ok(&server, &["fax", "delivery", "remove", "1"]);
    let list = ok(&server, &["fax", "delivery", "list"]);
    assert_eq!(list.len(), 4);
    assert!(list[0].starts_with("1\tcaller"), "{list:?}");
    refused(
        &server,
        &["fax", "delivery", "remove", "9"],
        "no delivery rule 9: the table has 4",
    );
}

#[test]
fn gateway_settings_are_versioned_and_pending_until_applied() {
    let server = server();
    let show = |gw: &str| ok(&server, &["fax", "settings", "show", gw]);
    let fresh = show(GW1);
    assert_eq!(
        &fresh[..3],
        ["version=0", "applied-version=0", "pending=no"]
    );
    assert!(fresh.contains(&"coding=g3".to_owned()), "{fresh:?}");
    assert_eq!(
        ok(
            &server,
            &[
                "fax",
                "settings",
                "set",
                GW1,
                "station-id=+81 3 5555 0001",
                "resolution=fine",
                "lines=2"
            ]
        ),
        ["1"]
    );
    let s = show(GW1);
    assert_eq!(&s[..3], ["version=1", "applied-version=0", "pending=yes"]);
    assert!(
        s.contains(&"station-id=+81 3 5555 0001".to_owned()),
        "{s:?}"
    );
    assert!(s.contains(&"resolution=fine".to_owned()), "{s:?}");
    assert_eq!(
        ok(
            &server,
            &["fax", "settings", "set", GW1, "tagline=ACME Tokyo"]
        ),
        ["2"]
    );

    // The gateway applies version 2 (the dispatcher records its acknowledgement).
    settings::acknowledge(&conn(&server), GW1, 2).unwrap();
    assert_eq!(
        &show(GW1)[..3],
        ["version=2", "applied-version=2", "pending=no"]
    );
    let json = ok(&server, &["fax", "settings", "show", GW1, "--json"]).join("");
    assert!(
        json.contains("\"version\":2") && json.contains("\"tagline\":\"ACME Tokyo\""),
        "{json}"
    );

    refused(
        &server,
        &["fax", "settings", "set", GW1, "colour=red"],
        "unknown setting \"colour\": the keys are station-id, number",
    );
    refused(
        &server,
        &["fax", "settings", "set", GW1, "lines=3", "resolution=super"],
        "bad value \"super\" for resolution: allowed is standard or fine",
    );
    refused(
        &server,
        &[
            "fax",
            "settings",
            "set",
            GW1,
            "coding=g4",
            "error-correction=off",
        ],
        "coding=g4 needs error-correction=on",
    );
    refused(
        &server,
        &["fax", "settings", "set", GW1, "number=555 CALL"],
        "bad number",
    );
    refused(
        &server,
        &["fax", "settings", "set", GW1, "lines"],
        "expected KEY=VALUE, got \"lines\"",
    );
    refused(
        &server,
        &["fax", "settings", "show", "gw9.fax.example"],
        "unknown gateway gw9.fax.example",
    );
    refused(
        &server,
        &["fax", "settings", "set", MFP, "lines=2"],
        &format!("{MFP} is not a fax gateway"),
    );
    let s = show(GW1);
    assert_eq!(s[0], "version=2", "refused sets made no version");
    assert!(s.contains(&"lines=2".to_owned()), "{s:?}");
}

#[test]
fn the_retry_policy() {
    let server = server();
    assert_eq!(
        ok(&server, &["fax", "policy", "show"]),
        [
            "max-dials=12",
            "max-tries=3",
            "busy-retry-s=180",
            "no-answer-retry-s=300",
            "failed-retry-s=300",
            "ring-timeout-s=10"
        ]
    );
    ok(
        &server,
        &["fax", "policy", "set", "max-dials=4", "busy-retry-s=1"],
    );
    let p = ok(&server, &["fax", "policy", "show"]);
    assert_eq!(
        (p[0].as_str(), p[2].as_str()),
        ("max-dials=4", "busy-retry-s=1")
    );
    refused(
        &server,
        &["fax", "policy", "set", "max-tries=5"],
        "max-tries (5) must not exceed max-dials (4)",
    );
    refused(
        &server,
        &["fax", "policy", "set", "retries=5"],
        "unknown policy key \"retries\"",
    );
    refused(
        &server,
        &["fax", "policy", "set", "ring-timeout-s=soon"],
        "bad value \"soon\" for ring-timeout-s: allowed is seconds, from 1 to 300",
    );
    let json = ok(&server, &["fax", "policy", "show", "--json"]).join("");
    assert!(json.contains("\"max-dials\":4"), "{json}");
}

fn record(result: records::CallResult, at_ms: i64) -> records::NewRecord {
    records::NewRecord {
        at_ms,
        direction: records::Direction::Send,
        job: "job-7".into(),
        user: "1001".into(),
        terminal: PC.into(),
        gateway: GW1.into(),
        number: "+81 6 5555 0100".into(),
        local_number: "+81 3 5555 0001".into(),
        station: "ACME OSAKA".into(),
        pages: if result == records::CallResult::Sent {
            2
        } else {
            0
        },
        duration_ms: 42_000,
        coding: settings::Coding::G3,
        resolution: settings::Resolution::Fine,
        error_correction: true,
        speed: 9600,
        result,
        reason: if result == records::CallResult::Busy {
            "busy".into()
        } else {
            String::new()
        },
    }
}

#[test]
fn records_list_and_export_as_xferfaxlog() {
    let server = server();
    assert!(ok(&server, &["fax", "records"]).is_empty());
    {
        let conn = conn(&server);
        // 2026-01-02 03:04 UTC, then a minute later each.
        let t0 = 1_767_323_040_000;
        records::insert(&conn, &record(records::CallResult::Busy, t0)).unwrap();
        records::insert(&conn, &record(records::CallResult::Busy, t0 + 60_000)).unwrap();
        records::insert(&conn, &record(records::CallResult::Sent, t0 + 120_000)).unwrap();
    }
    let lines = ok(&server, &["fax", "records"]);
    assert_eq!(lines.len(), 3);
    let f: Vec<&str> = lines[2].split('\t').collect();
    assert_eq!(f[0], "2026-01-02T03:06:00Z");
    assert_eq!(
        &f[1..13],
        [
            "send",
            "1001",
            PC,
            GW1,
            "+81 6 5555 0100",
            "ACME OSAKA",
            "2",
            "42",
            "g3",
            "9600",
            "sent",
            ""
        ]
    );
    assert_eq!(
        ok(&server, &["fax", "records", "--last", "1"]),
        [lines[2].clone()]
    );
    let first: Vec<String> = lines[0].split('\t').map(str::to_owned).collect();
    assert_eq!(first[11], "busy");

    let xfer = ok(&server, &["fax", "records", "--xferfaxlog"]);
    assert_eq!(xfer.len(), 3);
    let f: Vec<&str> = xfer[2].split('\t').collect();
    assert_eq!(f.len(), 19, "{}", xfer[2]);
    assert_eq!(f[0], "01/02/26 03:06");
    assert_eq!(f[1], "SEND");
    assert_eq!(f[2], "000000003");
    assert_eq!(f[3], GW1);
    assert_eq!(f[4], "job-7");
    assert_eq!(f[6], format!("1001@{PC}"));
    assert_eq!(f[7], "\"+81 6 5555 0100\"");
    assert_eq!(f[8], "\"ACME OSAKA\"");
    // fine | 9600 bit/s (index 3) | ECM | format version 1
    assert_eq!(f[9], (1 | (3 << 3) | (1 << 16) | (1 << 21)).to_string());
    assert_eq!((f[10], f[11], f[12]), ("2", "0:00:42", "0:00:42"));
    assert_eq!(f[13], "\"\"");
    assert_eq!(f[17], "\"1001\"");
    let busy: Vec<&str> = xfer[0].split('\t').collect();
    assert_eq!((busy[10], busy[13]), ("0", "\"busy\""));

    assert!(ok(&server, &["fax", "records", "--user", "1002"]).is_empty());
    assert_eq!(
        ok(&server, &["fax", "records", "--gateway", "GW1.fax.example"]).len(),
        3
    );
    assert!(ok(&server, &["fax", "records", "--gateway", GW2]).is_empty());
    let json = ok(&server, &["fax", "records", "--last", "2", "--json"]).join("");
    assert!(
        json.starts_with('[') && json.contains("\"result\":\"sent\""),
        "{json}"
    );
    assert_eq!(json.matches("\"seq\"").count(), 2, "{json}");
}

#[test]
fn groupings_phonebook_competences_and_homes() {
    let server = server();
    ok(&server, &["grouping", "add", "tokyo"]);
    refused(
        &server,
        &["grouping", "add", "tokyo"],
        "grouping tokyo exists already",
    );
    ok(
        &server,
        &["grouping", "member", "add", "tokyo", "--user", "1001"],
    );
    ok(
        &server,
        &["grouping", "member", "add", "tokyo", "--device", PC],
    );
    ok(
        &server,
        &["grouping", "member", "add", "tokyo", "--gateway", GW1],
    );
    refused(
        &server,
        &["grouping", "member", "add", "tokyo", "--gateway", MFP],
        &format!("{MFP} is not a fax gateway"),
    );
    refused(
        &server,
        &["grouping", "member", "add", "osaka", "--user", "1001"],
        "no grouping osaka",
    );
    assert_eq!(
        ok(&server, &["grouping", "list"]),
        [format!("tokyo\tdevice:{PC} user:1001 gateway:{GW1}")]
    );
    assert!(
        ok(&server, &["grouping", "list", "--json"])
            .join("")
            .contains("\"users\":[\"1001\"]")
    );
    let conn = conn(&server);
    assert_eq!(
        imagecast_server::fax::priority::candidates(&conn, Some(PC), Some("1001")).unwrap(),
        [GW1],
        "only the grouping's gateway"
    );
    assert!(
        imagecast_server::fax::priority::candidates(&conn, Some(MFP), Some("1002"))
            .unwrap()
            .is_empty(),
        "user 1002 is in no grouping"
    );
    ok(&server, &["grouping", "add", "spare"]);
    ok(
        &server,
        &["grouping", "member", "add", "spare", "--gateway", GW2],
    );
    ok(
        &server,
        &["grouping", "member", "remove", "spare", "--gateway", GW2],
    );
    refused(
        &server,
        &["grouping", "member", "remove", "spare", "--gateway", GW2],
        &format!("gateway {GW2} is no member of grouping spare"),
    );
    ok(&server, &["grouping", "remove", "spare"]);
    refused(
        &server,
        &["grouping", "remove", "spare"],
        "no grouping spare",
    );
    assert_eq!(ok(&server, &["grouping", "list"]).len(), 1);

    ok(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Acme",
            "--number",
            "+81 6 5555 0100",
            "--shared",
        ],
    );
    ok(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Lawyer",
            "--number",
            "03-5555-0199",
            "--for",
            "1002",
            "--for",
            MFP,
        ],
    );
    refused(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "acme",
            "--number",
            "1",
            "--shared",
        ],
        "has an entry acme already",
    );
    refused(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Pizza",
            "--number",
            "555-PIZZA",
            "--shared",
        ],
        "bad number \"555-PIZZA\"",
    );
    refused(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Pizza",
            "--number",
            "555",
            "--for",
            "4242",
        ],
        "4242 is neither a user ID nor a device domain",
    );
    assert_eq!(
        ok(&server, &["phonebook", "list"]),
        [
            "Acme\t+81 6 5555 0100\tshared".to_owned(),
            format!("Lawyer\t03-5555-0199\tfor user:1002 device:{MFP}")
        ]
    );
    assert_eq!(
        ok(
            &server,
            &["phonebook", "list", "--user", "1001", "--device", PC]
        ),
        ["Acme\t+81 6 5555 0100\tshared"],
        "only what user 1001 sees at the PC"
    );
    assert_eq!(
        ok(
            &server,
            &["phonebook", "list", "--user", "1001", "--device", MFP]
        )
        .len(),
        2,
        "the MFP sees the entry labelled for it"
    );
    assert_eq!(
        phonebook::lookup(&conn, "Lawyer", Some("1002"), Some(PC))
            .unwrap()
            .number,
        "03-5555-0199"
    );
    let e = phonebook::lookup(&conn, "Lawyer", Some("1001"), Some(PC))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "phone-book entry Lawyer is not visible to user 1001 at {PC}"
        )),
        "{e}"
    );
    ok(&server, &["phonebook", "remove", "Lawyer"]);
    refused(
        &server,
        &["phonebook", "remove", "Lawyer"],
        "no entry Lawyer",
    );

    ok(
        &server,
        &["competence", "grant", "1001", "gateway-settings"],
    );
    ok(&server, &["competence", "revoke", "1002", "send-fax"]);
    ok(
        &server,
        &["competence", "grant", "1002", "send-fax", "--device", MFP],
    );
    refused(
        &server,
        &["competence", "grant", "1001", "fly"],
        "unknown competence \"fly\": use send-fax, gateway-settings or supervisor-settings",
    );
    refused(
        &server,
        &["competence", "grant", "4242", "send-fax"],
        "unknown user 4242",
    );
    assert_eq!(
        ok(&server, &["competence", "list"]),
        [
            "1001\tgateway-settings\tgranted\teverywhere".to_owned(),
            "1002\tsend-fax\trevoked\teverywhere".to_owned(),
            format!("1002\tsend-fax\tgranted\t{MFP}"),
        ]
    );
    use imagecast_server::fax::competence::{Competence, check};
    check(&conn, "1002", Some(MFP), Competence::SendFax).unwrap();
    let e = check(&conn, "1002", Some(PC), Competence::SendFax)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("user 1002 lacks the competence send-fax at {PC}")),
        "{e}"
    );

    ok(&server, &["user", "home", "1001", PC, MFP]);
    assert_eq!(ok(&server, &["user", "home", "1001"]), [PC, MFP]);
    refused(
        &server,
        &["user", "home", "1001", "nowhere.example"],
        "unknown device nowhere.example",
    );
    refused(&server, &["user", "home", "4242", PC], "unknown user 4242");
    assert_eq!(ok(&server, &["user", "home", "1001"]), [PC, MFP]);
    assert_eq!(
        ok(&server, &["user", "home", "1001", "--json"]),
        [format!("[\"{PC}\",\"{MFP}\"]")]
    );
    ok(&server, &["user", "home", "1001", "--clear"]);
    assert!(ok(&server, &["user", "home", "1001"]).is_empty());
}

#[test]
fn export_then_import_is_the_same_and_a_bad_file_changes_nothing() {
    let server = server();
    for args in [
        &["fax", "priority", "set", GW2, GW1][..],
        &["fax", "client-route", "set", "1001", GW1],
        &[
            "fax",
            "delivery",
            "add",
            "--station",
            "ACME*",
            "--user",
            "1001",
        ],
        &["fax", "delivery", "add", "--any", "--device", MFP],
        &["fax", "policy", "set", "max-dials=6"],
        &[
            "fax",
            "settings",
            "set",
            GW2,
            "station-id=OSAKA",
            "coding=g4",
        ],
        &["grouping", "add", "all"],
        &["grouping", "member", "add", "all", "--gateway", GW1],
        &["grouping", "member", "add", "all", "--user", "1001"],
        &[
            "phonebook",
            "add",
            "--name",
            "Acme",
            "--number",
            "+81 6 5555 0100",
            "--shared",
        ],
        &[
            "phonebook",
            "add",
            "--name",
            "Mine",
            "--number",
            "0120",
            "--for",
            "1001",
        ],
        &[
            "competence",
            "grant",
            "1002",
            "supervisor-settings",
            "--device",
            PC,
        ],
        &["user", "home", "1001", PC],
    ] {
        ok(&server, args);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("supervisor.toml");
    let file = file.to_str().unwrap();
    ok(&server, &["fax", "export", file]);
    let text = std::fs::read_to_string(file).unwrap();
    for table in [
        "[[delivery]]",
        "[[grouping]]",
        "[[phonebook]]",
        "[[gateway]]",
        "[policy]",
    ] {
        assert!(text.contains(table), "{table} in {text}");
    }
    assert_eq!(ok(&server, &["fax", "export", "-"]).join("\n") + "\n", text);

    // Change things, then import the file: the export is the same again.
    ok(&server, &["fax", "priority", "set", GW1]);
    ok(&server, &["fax", "delivery", "remove", "1"]);
    ok(&server, &["phonebook", "remove", "Acme"]);
    ok(&server, &["fax", "import", file]);
    ok(&server, &["fax", "export", file]);
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    assert_eq!(ok(&server, &["fax", "priority", "list"]), [GW2, GW1]);
    assert_eq!(
        ok(&server, &["fax", "settings", "show", GW2])[0],
        "version=1",
        "settings the import did not change keep their version"
    );

    // A file with one bad entry changes nothing, and says where it is.
    let bad = text.replace("user = \"1001\"\n", "user = \"4242\"\n");
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, &bad).unwrap();
    let out = refused(
        &server,
        &["fax", "import", bad_file.to_str().unwrap()],
        "unknown user 4242",
    );
    assert!(
        out.stderr.contains("nothing was imported"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line "), "{}", out.stderr);
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "priority = [\"gw1\"\n[policy]\n").unwrap();
    refused(
        &server,
        &["fax", "import", syntax.to_str().unwrap()],
        "TOML parse error at line",
    );
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[policy]\nmax-dials = 3\nretries = 2\n").unwrap();
    refused(
        &server,
        &["fax", "import", unknown.to_str().unwrap()],
        "retries",
    );
    ok(&server, &["fax", "export", file]);
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        text,
        "nothing changed"
    );
}

#[test]
fn removing_a_user_drops_them_from_the_fax_tables() {
    let server = server();
    ok(&server, &["fax", "client-route", "set", "1002", GW2]);
    ok(
        &server,
        &["fax", "delivery", "add", "--any", "--user", "1002"],
    );
    ok(&server, &["competence", "revoke", "1002", "send-fax"]);
    ok(&server, &["user", "home", "1002", MFP]);
    ok(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Mine",
            "--number",
            "0120",
            "--for",
            "1002",
        ],
    );
    let out = server.admin_run(&["user", "remove", "1002"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("dropped 1002 from 6 fax table rows"),
        "{}",
        out.stderr
    );
    let text = ok(&server, &["fax", "export", "-"]).join("\n");
    assert!(!text.contains("1002"), "{text}");
    assert!(ok(&server, &["fax", "delivery", "list"]).is_empty());
    assert!(ok(&server, &["phonebook", "list"]).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text + "\n").unwrap();
    ok(&server, &["fax", "import", file.to_str().unwrap()]);
}
