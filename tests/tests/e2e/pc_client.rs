//! The PC client as operators use it (issue "The panel and the PC client as operators use
//! them"): the real `imagecast` binary against the real server.

use std::process::{Command, Stdio};
use std::time::Duration;

use imagecast_tests::{Scratch, TestServer, run};

use crate::LIMIT;

/// `send --wait` to an offline terminal says `queued` at once and, when the timeout runs out,
/// how to follow the distribution later; it exits 4 (not done), not 2 (usage).
#[test]
fn waiting_on_an_offline_destination_says_queued_and_how_to_follow_it() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let page = work.image("notice.png", "for whoever is offline");
    let out = server.send_and_wait("plan1.hqs.mei.co.jp", "devl1.osk.mei.co.jp", &page, 1);
    out.assert_code(4);
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
    out.assert_code(2);
}

/// A group named almost right gets the closest names suggested; its number from `groups`, a
/// different case, and a destination's name in place of its domain all work.
#[test]
fn groups_by_number_or_case_and_destinations_by_name() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let page = work.image("note.png", "note");
    let sender = "plan1.hqs.mei.co.jp";

    let out = server.send(sender, &["--group", "all sales office"], &page);
    out.assert_error(
        "unknown destination group \"all sales office\"; did you mean \"all sales offices\"?",
    );
    let out = server.send(sender, &["--to", "sales office, the Osaka"], &page);
    out.assert_error("did you mean \"sales office, the Osaka branch\"?");

    // "2: all sales offices" in the demo's list.
    let groups = server.terminal(sender, ["groups"]);
    assert!(
        groups.stdout.contains("2: all sales offices\n"),
        "{}",
        groups.stdout
    );
    let by_number = server.send(sender, &["--group", "2", "--wait", "--timeout", "1"], &page);
    let by_case = server.send(
        sender,
        &["--group", "ALL Sales Offices", "--wait", "--timeout", "1"],
        &page,
    );
    for out in [&by_number, &by_case] {
        out.assert_code(4);
        for office in ["sale1.osk", "sale1.ngy", "sale1.fko"] {
            assert!(
                out.stdout.contains(&format!("{office}.mei.co.jp: queued")),
                "{}",
                out.stdout
            );
        }
    }
    let by_name = server.send_and_wait(sender, "Sales office, the Nagoya branch", &page, 1);
    by_name.assert_code(4);
    assert!(
        by_name.stdout.ends_with("\nsale1.ngy.mei.co.jp: queued\n"),
        "{}",
        by_name.stdout
    );

    // Registration numbers the groups as `groups --for-registration` does.
    let listed = server.terminal(sender, ["groups", "--for-registration"]);
    let line = listed
        .stdout
        .lines()
        .find(|l| l.ends_with(": all sales offices"))
        .unwrap()
        .to_owned();
    let number = line.split(':').next().unwrap();
    let out = server.terminal(sender, ["register", "--group", number]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "registered plan1.hqs.mei.co.jp with \"all sales offices\"\n"
    );
}

/// `receive` says where it connected, and when it lost and regained the server (stderr); a
/// wrong token fails before `--out` is created.
#[test]
fn receive_says_when_it_connects_and_creates_nothing_with_a_wrong_token() {
    let mut server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let tray = work.join("tray");
    let out = run(
        server
            .imagecast("sale1.osk.mei.co.jp")
            .env("IMAGECAST_TOKEN", "wrong")
            .args(["receive", "--count", "1", "--out"])
            .arg(&tray),
        LIMIT,
    )
    .unwrap();
    out.assert_code(1);
    assert!(!tray.exists(), "created before failing: {}", out.stderr);

    let child = server
        .imagecast("sale1.osk.mei.co.jp")
        .args(["receive", "--count", "1", "--out"])
        .arg(&tray)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let connected = format!("connected to {} as sale1.osk.mei.co.jp\n", server.addr);
    // Connected: its tray exists (created after the connection).
    let deadline = std::time::Instant::now() + LIMIT;
    while !tray.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill9();
    server.restart().unwrap();
    let page = work.image("after.png", "after the restart");
    let sent = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", "sale1.osk.mei.co.jp"],
        &page,
    );
    sent.assert_code(0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches(&connected).count(), 2, "{stderr}");
    assert!(
        stderr.contains(&format!("lost the connection to {} (", server.addr)),
        "{stderr}"
    );
    assert!(tray.join("after.png").exists());
}

/// `status ID` takes the ID `send` printed: each destination's state, exit 4 while one is
/// queued, 0 once all have it; another terminal may not ask; a malformed ID is a usage error.
#[test]
fn status_follows_a_distribution_by_the_id_send_printed() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let page = work.image("memo.png", "memo");
    let sender = "plan1.hqs.mei.co.jp";
    let sent = server.send(sender, &["--to", "devl1.osk.mei.co.jp"], &page);
    sent.assert_code(0);
    let dist = sent.stdout.trim().to_owned();

    let out = server.terminal(sender, ["status", &dist]);
    out.assert_code(4);
    assert_eq!(out.stdout, "devl1.osk.mei.co.jp: queued\n");

    let got = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["receive", "--count", "1", "--out"])
            .arg(work.join("tray")),
        LIMIT,
    )
    .unwrap();
    got.assert_code(0);
    let deadline = std::time::Instant::now() + LIMIT;
    let out = loop {
        let out = server.terminal(sender, ["status", &dist]);
        if out.code != 4 || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    out.assert_code(0);
    assert_eq!(out.stdout, "devl1.osk.mei.co.jp: delivered\n");

    let out = server.terminal("sale1.osk.mei.co.jp", ["status", &dist]);
    out.assert_error("only the sending terminal or an administrator");
    let out = server.terminal(sender, ["status", "12345"]);
    out.assert_code(2);
}

/// A server certificate trusted for the first time is said once, with its fingerprint.
#[test]
fn a_first_seen_server_certificate_is_said_once_with_its_fingerprint() {
    let server = TestServer::start_demo().unwrap();
    let fingerprint = server.fingerprint.clone().unwrap();
    let work = Scratch::new();
    let groups = || {
        let mut c = server.imagecast("plan1.hqs.mei.co.jp");
        c.env_remove("IMAGECAST_SERVER_FINGERPRINT")
            .env("IMAGECAST_KNOWN_SERVERS", work.join("known_servers"))
            .arg("groups");
        run(&mut c, LIMIT).unwrap()
    };
    let first = groups();
    first.assert_code(0);
    assert_eq!(
        first.stderr,
        format!(
            "remembered server {} with fingerprint {fingerprint} (compare it with `imagecast-server fingerprint` on the server)\n",
            server.addr
        )
    );
    let again = groups();
    again.assert_code(0);
    assert_eq!(again.stderr, "", "said once");
}

/// `receive` counts pages in files: two files, one of them a 3-page TIFF, are "4 pages in 2
/// files".
#[test]
fn receive_says_pages_in_files() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let tiff = work.join("scan.tif");
    imagecast_tests::multipage_tiff(&tiff, 3, 64, 48).unwrap();
    let note = work.image("note.png", "note");
    let sent = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .args(["send", "--to", "sale1.osk.mei.co.jp"])
            .arg(&tiff)
            .arg(&note),
        LIMIT,
    )
    .unwrap();
    sent.assert_code(0);
    let got = run(
        server
            .imagecast("sale1.osk.mei.co.jp")
            .args(["receive", "--count", "1", "--out"])
            .arg(work.join("tray")),
        LIMIT,
    )
    .unwrap();
    got.assert_code(0);
    assert!(
        got.stdout.contains(" by 1001: 4 pages in 2 files, "),
        "{}",
        got.stdout
    );
}

/// One rule for what a page is: `send` refuses a file that is not a PNG, JPEG or TIFF image
/// (judged by its content, whatever its name) with the reason the panel's feeder gives, and
/// sends nothing; `--any-file` sends it as it is.
#[test]
fn send_takes_images_only_unless_told_otherwise() {
    let server = TestServer::start_demo().expect("server starts");
    let work = Scratch::new();
    let text = work.page("notes.txt", b"minutes of the meeting");
    let disguised = work.page("scan.png", b"not really a png");
    for file in [&text, &disguised] {
        let out = server.send(
            "plan1.hqs.mei.co.jp",
            &["--to", "sale1.osk.mei.co.jp"],
            file,
        );
        out.assert_code(1);
        assert_eq!(out.stdout, "", "no distribution ID: nothing was sent");
        assert!(
            out.stderr.contains("not a PNG, JPEG or TIFF image")
                && out.stderr.contains("--any-file"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&file.display().to_string()),
            "names the file: {}",
            out.stderr
        );
    }
    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--any-file", "--to", "sale1.osk.mei.co.jp"],
        &text,
    );
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "the distribution ID");
}

/// `send` draws its progress on stderr only when stderr is a terminal: under a pseudo-terminal
/// (util-linux `script`) the upload and the destinations show; with `--quiet`, or piped, stderr
/// stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_shows_progress_on_a_terminal_only() {
    let server = TestServer::start_demo().expect("server starts");
    let work = Scratch::new();
    let receiver = server
        .receiver("sale1.osk.mei.co.jp", &work.join("osk"))
        .await;
    // A few MiB, so that the upload takes several pieces.
    let big = work.join("big.tif");
    imagecast_tests::multipage_tiff(&big, 2, 1200, 1200).expect("a TIFF");
    let args = ["--to", "sale1.osk.mei.co.jp", "--wait", "--timeout", "20"];

    let piped = server.send("plan1.hqs.mei.co.jp", &args, &big);
    piped.assert_code(0);
    assert!(
        !piped.stderr.contains("uploading") && !piped.stderr.contains("destinations"),
        "no progress when stderr is not a terminal: {}",
        piped.stderr
    );

    // The same command on a pseudo-terminal: `script -qec LINE /dev/null` (util-linux).
    let on_a_terminal = |extra: &[&str]| {
        let base = server.imagecast("plan1.hqs.mei.co.jp");
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
        let mut line = vec![quote(base.get_program())];
        line.push("send".into());
        line.extend(args.iter().chain(extra).map(|a| quote(a.as_ref())));
        line.push(quote(big.as_os_str()));
        let mut script = Command::new("script");
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        script.args(["-qec", &line.join(" "), "/dev/null"]);
        let out = run(&mut script, LIMIT).expect("script runs");
        out.assert_code(0);
        out.stdout
    };
    let shown = on_a_terminal(&[]);
    assert!(
        shown.contains("uploading") || shown.contains("destinations"),
        "progress on a terminal: {shown}"
    );
    assert!(shown.contains("sale1.osk.mei.co.jp: "), "{shown}");
    let quiet = on_a_terminal(&["--quiet"]);
    assert!(
        !quiet.contains("uploading") && !quiet.contains("destinations"),
        "--quiet: {quiet}"
    );
    assert!(quiet.contains("sale1.osk.mei.co.jp: "), "{quiet}");
    receiver.stop().await;
}
