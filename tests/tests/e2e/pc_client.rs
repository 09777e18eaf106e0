//! The PC client as operators use it (issue "The panel and the PC client as operators use
//! them"): the real `imagecast` binary against the real server.

use imagecast_tests::{Scratch, TestServer};

/// `send --wait` to an offline terminal says `queued` at once and, when the timeout runs out,
/// how to follow the distribution later; it exits 4 (not done), not 2 (usage).
#[test]
fn waiting_on_an_offline_destination_says_queued_and_how_to_follow_it() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let page = work.page("notice.png", b"for whoever is offline");
    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", "devl1.osk.mei.co.jp", "--wait", "--timeout", "1"],
        &page,
    );
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[1], "devl1.osk.mei.co.jp: queued");
    assert!(
        out.stderr.contains(&format!(
            "1 destination(s) not done after 1 s; they get the image when they connect, and `imagecast status {}` shows how far it got",
            lines[0]
        )),
        "{}",
        out.stderr
    );

    // A timeout without --wait is a usage error.
    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", "devl1.osk.mei.co.jp", "--timeout", "1"],
        &page,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}
