//! Papercuts found at the terminal when it was tried as a new user would: a file name the
//! server refuses, and receivers counting files where the sender counted pages.

use imagecast_tests::{TestServer, list_files, multipage_tiff, run};

use crate::LIMIT;

#[test]
fn a_file_named_with_control_characters_is_sent_under_a_safe_name_and_counted_by_pages() {
    let server = TestServer::start_demo().unwrap();
    let work = tempfile::tempdir().unwrap();
    let tiff = work.path().join("a\nb\u{202e}.tif");
    multipage_tiff(&tiff, 3, 64, 48).unwrap();

    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", "sale1.osk.mei.co.jp"],
        &tiff,
    );
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("sending 'a\\nb\\u{202e}.tif' as 'a_b_.tif'\n"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains('\u{202e}') && out.stderr.lines().count() == 1,
        "one escaped line: {:?}",
        out.stderr
    );

    // The image waited at the server; the receiver gets it when it connects.
    let inbox = work.path().join("inbox");
    let out = run(
        server
            .imagecast("sale1.osk.mei.co.jp")
            .args(["receive", "--count", "1", "--out"])
            .arg(&inbox),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
    assert!(
        out.stdout.contains(" by 1001: 3 pages in 1 file, "),
        "the pages of the TIFF, not its one file: {}",
        out.stdout
    );
    assert!(
        out.stdout.trim_end().ends_with(": a_b_.tif"),
        "{}",
        out.stdout
    );
    assert_eq!(list_files(&inbox), ["a_b_.tif"]);
}
