//! The phone book at a terminal (issue 12, feature 7; 003 claims 17–22) with the real
//! binaries: `imagecast phonebook` lists the entries this user sees at this terminal (shared
//! ones and those labelled for the user or the terminal), and `imagecast fax send --book NAME`
//! of an entry labelled for others is refused with the reason named.

use imagecast_tests::{Output, Scratch, TestServer};

const PC: &str = "plan1.hqs.mei.co.jp";
const MFP: &str = "sale1.hqs.mei.co.jp";

fn ok(server: &TestServer, args: &[&str]) {
    let out = server.admin_run(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
}

fn names(out: &Output) -> Vec<String> {
    out.assert_code(0);
    out.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn labelled_entries_are_seen_only_by_their_users_and_terminals() {
    let server = TestServer::start_demo().expect("server");
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
            "1001",
        ],
    );
    ok(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Desk",
            "--number",
            "5550123",
            "--for",
            MFP,
        ],
    );

    // 1001 at the PC: the shared entry and the one labelled for 1001.
    let out = server.terminal_as(PC, "1001", "1234", &["phonebook"]);
    assert_eq!(names(&out), ["Acme", "Lawyer"], "{}", out.stdout);
    assert!(
        out.stdout.contains("Acme\t+81 6 5555 0100\tshared"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Lawyer\t03-5555-0199\tfor user 1001"),
        "{}",
        out.stdout
    );

    // 1002 at the PC: only the shared one; at the MFP also the MFP's.
    let out = server.terminal_as(PC, "1002", "5678", &["phonebook"]);
    assert_eq!(names(&out), ["Acme"], "{}", out.stdout);
    let out = server.terminal_as(MFP, "1002", "5678", &["phonebook", "--json"]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let rows = json.as_array().expect("an array");
    assert_eq!(rows.len(), 2, "{json}");
    assert_eq!(rows[1]["name"], "Desk");
    assert_eq!(rows[1]["shared"], false);
    assert_eq!(rows[1]["for"][0], format!("device {MFP}"));

    // Sending to an entry labelled for someone else is refused with the reason.
    let scratch = Scratch::new();
    let page = scratch.image("page.png", "PHONE BOOK");
    let page = page.to_str().expect("a UTF-8 path");
    let out = server.terminal_as(
        PC,
        "1002",
        "5678",
        &["fax", "send", "--book", "Lawyer", page],
    );
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "phone-book entry Lawyer is not visible to user 1002 at {PC}"
        )),
        "{}",
        out.stderr
    );
    let out = server.terminal_as(
        PC,
        "1001",
        "1234",
        &["fax", "send", "--book", "Nobody", page],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("the phone book has no entry Nobody"),
        "{}",
        out.stderr
    );
}
