//! The server's papercuts: the journal counts a multi-page TIFF's pages, the data directory is
//! private on disk, `check` says each thing once, and a log written to a file is plain text.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imagecast_tests::{Receiver, TestServer, multipage_tiff, run};

use crate::LIMIT;

/// The permission bits of a file or folder.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Runs `imagecast-server check` on the server's data directory.
fn check(server: &TestServer) -> imagecast_tests::Output {
    server.admin_run(&["check"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipage_tiff_sent_as_one_file_counts_its_pages_in_the_journal() {
    let server = TestServer::start_demo().unwrap();
    let work = tempfile::tempdir().unwrap();
    let to = "sale1.osk.mei.co.jp";
    let receiver = Receiver::start(&server, to, &work.path().join(to), true)
        .await
        .unwrap();
    let tiff = work.path().join("report.tif");
    multipage_tiff(&tiff, 3, 64, 48).unwrap();
    let sent = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .args(["send", "--to", to, "--wait", "--timeout", "20"])
            .arg(&tiff),
        LIMIT,
    )
    .unwrap();
    sent.assert_code(0);
    assert!(receiver.wait_for(1, LIMIT).await);

    let journal = server.admin_run(&["journal"]);
    let lines: Vec<&str> = journal.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", journal.stdout);
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[3], to, "{}", lines[0]);
    assert_eq!(fields[4], "3", "pages: {}", lines[0]);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_its_owners_only_and_check_says_when_it_is_not() {
    let server = TestServer::start_demo().unwrap();
    let data = server.data_dir();
    // An image for a terminal that is offline stays spooled.
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("memo.png");
    std::fs::write(&page, b"bytes in transit").unwrap();
    let sent = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .args(["send", "--any-file", "--to", "devl1.osk.mei.co.jp"])
            .arg(&page),
        LIMIT,
    )
    .unwrap();
    sent.assert_code(0);
    let dist = sent.stdout.lines().next().unwrap().trim().to_owned();
    let spooled = data.join("spool").join(&dist);

    let folders = [
        data.clone(),
        data.join("groups"),
        data.join("spool"),
        data.join("spool/tmp"),
        spooled.clone(),
        data.join("tls"),
    ];
    for f in &folders {
        assert_eq!(mode(f), 0o700, "{}", f.display());
    }
    let mut files = vec![
        data.join("imagecast.db"),
        data.join("imagecast.db-wal"),
        data.join("imagecast.db-shm"),
        data.join("demo-tokens.txt"),
        data.join("tls/server.key"),
        spooled.join("0"),
    ];
    for e in std::fs::read_dir(data.join("groups")).unwrap() {
        files.push(e.unwrap().path());
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let quiet = check(&server);
    quiet.assert_code(0);
    assert_eq!(
        quiet.stdout, "",
        "nothing to say about a private data directory"
    );

    // Opened to others by hand: check names each, with its mode and the fix, and still passes.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("imagecast.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tokens = data.join("demo-tokens.txt");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o640)).unwrap();
    let warned = check(&server);
    warned.assert_code(0);
    let lines: Vec<&str> = warned.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", warned.stdout);
    for (path, shown, fix) in [
        (&data, "0755", "chmod 700"),
        (&db, "0644", "chmod 600"),
        (&tokens, "0640", "chmod 600"),
    ] {
        let path = path.display().to_string();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{path}: warning:"))
                    && l.contains(shown)
                    && l.ends_with(&format!("{fix} {path}"))),
            "{path}: {}",
            warned.stdout
        );
    }
}

#[test]
fn check_prints_each_problem_once_and_a_log_file_has_no_colour() {
    let server = TestServer::start_demo().unwrap();
    std::fs::write(
        server.group_file("broken.rec"),
        "# broken\n# broken.rec\nsale1.osk.mei.co.jp\n",
    )
    .unwrap();
    let out = check(&server);
    out.assert_code(1);
    let problems: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(problems.len(), 1, "{}", out.stdout);
    assert!(problems[0].starts_with("broken.rec:3: "), "{}", problems[0]);
    assert!(
        !out.stderr.contains("broken.rec"),
        "the problem again on stderr: {}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one summary: {}", out.stderr);

    let log = server.log_text();
    assert!(log.contains("INFO"), "the server logged: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour escapes in a log file: {log:?}"
    );
}
