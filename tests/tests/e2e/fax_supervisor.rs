//! The supervisor's own settings from a terminal (issue 12, feature 4; 002 FIG. 5–8, 003
//! claims 7–8) with the real binaries: `imagecast fax supervisor show` prints the tables as one
//! TOML file headed by its version, `imagecast fax supervisor set FILE` replaces them all or
//! none, a file read at an older version is refused, and a user without the competence
//! `supervisor-settings` is refused with the competence named.

use imagecast_tests::{Scratch, TestServer};

const PC: &str = "plan1.hqs.mei.co.jp";

fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.admin_run(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

#[test]
fn a_user_with_the_competence_reads_and_replaces_the_supervisors_settings() {
    let server = TestServer::start_demo().expect("server");
    let scratch = Scratch::new();
    ok(
        &server,
        &[
            "phonebook",
            "add",
            "--name",
            "Acme",
            "--number",
            "0312345678",
            "--shared",
        ],
    );

    // 1002 holds no grant: refused, naming the competence.
    let out = server.terminal_as(PC, "1002", "5678", &["fax", "supervisor", "show"]);
    out.assert_error("supervisor-settings");

    ok(
        &server,
        &["competence", "grant", "1002", "supervisor-settings"],
    );
    let shown = server.terminal_as(PC, "1002", "5678", &["fax", "supervisor", "show"]);
    shown.assert_code(0);
    let first = shown.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with("# imagecast supervisor settings, version "),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("Acme"), "{}", shown.stdout);

    // Change the file: the entry gets another number; set it, and the server has it.
    let changed = shown.stdout.replace("0312345678", "0398765432");
    assert_ne!(changed, shown.stdout);
    let file = scratch.join("supervisor.toml");
    std::fs::write(&file, &changed).unwrap();
    let set = server.terminal_as(
        PC,
        "1002",
        "5678",
        &["fax", "supervisor", "set", file.to_str().unwrap()],
    );
    set.assert_code(0);
    let new_first = set.stdout.lines().next().unwrap_or_default();
    assert_ne!(new_first, first, "a new version: {}", set.stdout);
    let book = ok(&server, &["phonebook", "list"]);
    assert!(
        book.contains("0398765432") && !book.contains("0312345678"),
        "{book}"
    );

    // The same file again was read at the old version: refused, nothing changes.
    let stale = changed.replace("0398765432", "0311111111");
    std::fs::write(&file, &stale).unwrap();
    let out = server.terminal_as(
        PC,
        "1002",
        "5678",
        &["fax", "supervisor", "set", file.to_str().unwrap()],
    );
    out.assert_error("changed since version");
    assert!(ok(&server, &["phonebook", "list"]).contains("0398765432"));

    // A file without the version line, and a broken file, are refused; nothing changes.
    std::fs::write(&file, "priority = []\n").unwrap();
    let out = server.terminal_as(
        PC,
        "1002",
        "5678",
        &["fax", "supervisor", "set", file.to_str().unwrap()],
    );
    out.assert_error("first line must be");
    let current = server.terminal_as(PC, "1002", "5678", &["fax", "supervisor", "show"]);
    let broken = format!(
        "{}\npriority = [\"no.such.gateway\"]\n",
        current.stdout.lines().next().unwrap_or_default()
    );
    std::fs::write(&file, broken).unwrap();
    let out = server.terminal_as(
        PC,
        "1002",
        "5678",
        &["fax", "supervisor", "set", file.to_str().unwrap()],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no.such.gateway"), "{}", out.stderr);
    assert!(ok(&server, &["phonebook", "list"]).contains("0398765432"));

    // Revoked again: refused.
    ok(
        &server,
        &["competence", "revoke", "1002", "supervisor-settings"],
    );
    let out = server.terminal_as(PC, "1002", "5678", &["fax", "supervisor", "show"]);
    out.assert_error("supervisor-settings");
}
