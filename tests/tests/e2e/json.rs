//! `--json` for scripts: every listing command prints one JSON array, and the streaming ones
//! (`send`, `receive`) one object per line and nothing else on stdout. The field names are
//! the documented schema (docs/json.md): these tests pin them.

use std::process::Stdio;

use imagecast_tests::{Scratch, TestServer, run};
use serde_json::Value;

use crate::LIMIT;

const SENDER: &str = "plan1.hqs.mei.co.jp";
const RECEIVER: &str = "sale1.osk.mei.co.jp";

/// The whole of stdout as one JSON value.
fn one(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Each line of stdout as a JSON value.
fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(one).collect()
}

#[test]
fn terminal_listings_and_streams_are_json() {
    let server = TestServer::start_demo().expect("server starts");
    let groups = server.terminal(SENDER, ["groups", "--json"]);
    groups.assert_code(0);
    let groups = one(&groups.stdout);
    let sales = groups
        .as_array()
        .expect("an array")
        .iter()
        .find(|g| g["name"] == "all sales offices")
        .expect("the seed's group");
    assert_eq!(sales["file"], "eigyou_syo.rec");
    assert_eq!(sales["members"], 3);
    assert!(sales["number"].as_u64().is_some_and(|n| n >= 1));

    let dests = server.terminal(SENDER, ["destinations", "--json"]);
    dests.assert_code(0);
    let dests = one(&dests.stdout);
    assert!(
        dests
            .as_array()
            .expect("an array")
            .iter()
            .any(|d| d["domain"] == RECEIVER && d["name"] == "sales office, the Osaka branch"),
        "{dests}"
    );

    // A receiver that prints JSON, and a sender that waits for its result.
    let work = Scratch::new();
    let tray = work.join("tray");
    let receiver = server
        .imagecast(RECEIVER)
        .args(["receive", "--json", "--count", "1", "--out"])
        .arg(&tray)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("receive starts");
    let page = work.image("memo.png", "json memo");
    let sent = server.send(
        SENDER,
        &["--to", RECEIVER, "--json", "--wait", "--timeout", "20"],
        &page,
    );
    sent.assert_code(0);
    let events = lines(&sent.stdout);
    let dist = events[0]["dist"].as_str().expect("dist").to_owned();
    assert_eq!(events[0]["duplicate"], false);
    assert_eq!(events[0]["destinations"][0]["domain"], RECEIVER);
    assert_eq!(
        events.len(),
        2,
        "the distribution, then one result: {events:?}"
    );
    assert_eq!(events[1]["domain"], RECEIVER);
    assert_eq!(events[1]["final"], true);
    assert!(
        ["delivered", "printed"].contains(&events[1]["state"].as_str().expect("state")),
        "{}",
        events[1]
    );

    let got = receiver.wait_with_output().expect("receive ends");
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let got = lines(&String::from_utf8_lossy(&got.stdout));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["dist"], dist.as_str());
    assert_eq!(got[0]["sender"]["domain"], SENDER);
    assert_eq!(got[0]["user"], "1001");
    assert_eq!(got[0]["files"][0], "memo.png");
    assert_eq!(got[0]["pages"], 1);
    assert_eq!(
        got[0]["bytes"],
        std::fs::metadata(&page).expect("page").len()
    );

    let status = server.terminal(SENDER, ["status", "--json", &dist]);
    status.assert_code(0);
    let status = one(&status.stdout);
    assert_eq!(status[0]["domain"], RECEIVER);
    assert_eq!(status[0]["final"], true);

    // The server's listings.
    let journal = one(&server.admin_run(&["journal", "--json"]).stdout);
    assert_eq!(journal[0]["dist"], dist.as_str());
    assert_eq!(journal[0]["sender"], SENDER);
    assert_eq!(journal[0]["destination"], RECEIVER);
    assert_eq!(journal[0]["pages"], 1);
    assert!(journal[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let devices = one(&server.admin_run(&["device", "list", "--json"]).stdout);
    assert!(
        devices
            .as_array()
            .expect("an array")
            .iter()
            .any(|d| d["domain"] == RECEIVER && d["kind"] == "mfp" && d["revoked"] == false),
        "{devices}"
    );
    let users = one(&server.admin_run(&["user", "list", "--json"]).stdout);
    assert!(
        users
            .as_array()
            .expect("an array")
            .iter()
            .any(|u| u["user"] == "9000" && u["role"] == "admin"),
        "{users}"
    );
    let bad = run(
        server
            .imagecast(SENDER)
            .env("IMAGECAST_PASSWORD", "wrong")
            .args(["register", "--group", "all sales offices"]),
        LIMIT,
    )
    .expect("register runs");
    bad.assert_code(1);
    let logins = one(&server.admin_run(&["logins", "--json"]).stdout);
    assert_eq!(logins[0]["device"], SENDER, "{logins}");
    assert_eq!(logins[0]["user"], "1001");
}
