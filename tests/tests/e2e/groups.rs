//! Group files: registration and withdrawal (section 2.3), edits on disk, malformed files.

use imagecast_tests::{Scratch, TestServer, run};

use crate::LIMIT;

const DEVELOP: &str = "product development-related places";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_withdraw_edit_the_file_and_keep_its_comments() {
    let server = TestServer::start_demo().unwrap();
    let path = server.group_file("develop.rec");
    // The operator's own touches: a comment, a blank line, CRLF endings.
    let original = "# product development-related places\r\n# develop.rec\r\n# the head office first\r\ndevl1.hqs.mei.co.jp;development department of the head office\r\n\r\n";
    std::fs::write(&path, original).unwrap();

    let groups = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["groups", "--for-registration"]),
        LIMIT,
    )
    .unwrap();
    groups.assert_code(0);
    assert!(!groups.stdout.contains("all distribution destinations"));
    assert!(
        groups
            .stdout
            .lines()
            .any(|l| l.ends_with(&format!(": {DEVELOP}"))),
        "{}",
        groups.stdout
    );

    let reg = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["register", "--group", DEVELOP]),
        LIMIT,
    )
    .unwrap();
    reg.assert_code(0);
    let after = std::fs::read_to_string(&path).unwrap();
    // Appended after the last member (before the trailing blank line), in the file's CRLF.
    assert_eq!(
        after,
        original.replace(
            "head office\r\n\r\n",
            "head office\r\ndevl1.osk.mei.co.jp;development department, the Osaka branch\r\n\r\n"
        )
    );
    // Twice is harmless.
    let again = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["register", "--group", DEVELOP]),
        LIMIT,
    )
    .unwrap();
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.contains("already a member"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);

    // The new member receives what is sent to the group.
    let work = Scratch::new();
    let rx = server
        .receiver("devl1.osk.mei.co.jp", &work.join("rx"))
        .await;
    let page = work.page("spec.tif", b"II*\0spec");
    let sent = server.send("sale1.hqs.mei.co.jp", &["--group", DEVELOP], &page);
    sent.assert_code(0);
    assert!(rx.wait_for(1, LIMIT).await);
    rx.stop().await;

    let wd = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["withdraw", "--group", DEVELOP]),
        LIMIT,
    )
    .unwrap();
    wd.assert_code(0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refusals_are_clear() {
    let server = TestServer::start_demo().unwrap();
    // A device that is not listed in all.rec.
    let token = run(
        server
            .admin()
            .args(["device", "add", "--data-dir"])
            .arg(server.data_dir())
            .args(["guest.example.org", "--name", "guest PC"]),
        LIMIT,
    )
    .unwrap();
    token.assert_code(0);
    let token = token.stdout.trim().to_owned();
    assert_eq!(token.len(), 64);
    // device add lists it in all.rec; take it out again to test the refusal.
    let all = server.group_file("all.rec");
    let text = std::fs::read_to_string(&all).unwrap();
    assert!(text.contains("guest.example.org;guest PC\n"), "{text}");
    std::fs::write(&all, text.replace("guest.example.org;guest PC\n", "")).unwrap();

    let mut cmd = server.imagecast("guest.example.org");
    cmd.env("IMAGECAST_TOKEN", &token)
        .args(["register", "--group", DEVELOP]);
    let out = run(&mut cmd, LIMIT).unwrap();
    out.assert_error("is not listed in all.rec");

    let out = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .args(["register", "--group", "no such group"]),
        LIMIT,
    )
    .unwrap();
    out.assert_error("unknown destination group \"no such group\"");

    let out = run(
        server.imagecast("devl1.osk.mei.co.jp").args([
            "register",
            "--group",
            "all distribution destinations",
        ]),
        LIMIT,
    )
    .unwrap();
    out.assert_error("cannot be registered with");

    let out = run(
        server
            .imagecast("devl1.osk.mei.co.jp")
            .env_remove("IMAGECAST_USER")
            .args(["register", "--group", DEVELOP]),
        LIMIT,
    )
    .unwrap();
    out.assert_error("logged-in user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_edited_added_and_removed_on_disk_take_effect_without_restart() {
    let server = TestServer::start_demo().unwrap();
    let list = || {
        run(server.imagecast("plan1.hqs.mei.co.jp").arg("groups"), LIMIT)
            .unwrap()
            .stdout
    };
    assert!(!list().contains("quality assurance"));
    std::fs::write(
        server.group_file("qa.rec"),
        "# quality assurance\n# qa.rec\nsale1.fko.mei.co.jp;sales office, the Fukuoka branch\n",
    )
    .unwrap();
    assert!(list().contains("5: quality assurance"), "{}", list());

    let work = Scratch::new();
    let fko = server
        .receiver("sale1.fko.mei.co.jp", &work.join("fko"))
        .await;
    let page = work.image("qa.png", "qa");
    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--group", "quality assurance", "--wait", "--timeout", "20"],
        &page,
    );
    out.assert_code(0);
    assert!(out.stdout.contains("sale1.fko.mei.co.jp: printed"));
    fko.stop().await;

    // Renaming the group in its first line, then deleting the file.
    std::fs::write(
        server.group_file("qa.rec"),
        "# quality assurance (all sites)\n# qa.rec\nsale1.fko.mei.co.jp;sales office, the Fukuoka branch\n",
    )
    .unwrap();
    assert!(
        list().contains("5: quality assurance (all sites)"),
        "{}",
        list()
    );
    std::fs::remove_file(server.group_file("qa.rec")).unwrap();
    assert!(!list().contains("quality assurance"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_file_is_reported_with_file_and_line_and_hides_nothing_else() {
    let server = TestServer::start_demo().unwrap();
    std::fs::write(
        server.group_file("broken.rec"),
        "# broken group\n# broken.rec\nsale1.osk.mei.co.jp;ok\nthis line has no separator\n",
    )
    .unwrap();
    std::fs::write(
        server.group_file("headless.rec"),
        "sale1.osk.mei.co.jp;no header\n",
    )
    .unwrap();

    let check = server.admin_run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(check.stdout.contains("broken.rec:4: "), "{}", check.stdout);
    assert!(
        check.stdout.contains("headless.rec:1: "),
        "{}",
        check.stdout
    );

    let (client, _events) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    let problems = client.group_problems().await.unwrap();
    assert!(
        problems.iter().any(|p| p.starts_with("broken.rec:4: ")),
        "{problems:?}"
    );
    let groups = client.groups(false).await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    for g in [
        "all distribution destinations",
        "all sales-related places",
        "all sales offices",
        DEVELOP,
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    client.close().await;

    // Removing the broken files makes check pass.
    std::fs::remove_file(server.group_file("broken.rec")).unwrap();
    std::fs::remove_file(server.group_file("headless.rec")).unwrap();
    let check = server.admin_run(&["check"]);
    check.assert_code(0);
}

/// `groups --member` (and the panel's withdraw list) show the groups the terminal is in now, as
/// the server's group files say, including an operator's edit made on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_lists_exactly_the_groups_the_terminal_is_in() {
    let server = TestServer::start_demo().expect("server starts");
    let domain = "devl1.osk.mei.co.jp";
    let member = || {
        let out =
            run(server.imagecast(domain).args(["groups", "--member"]), LIMIT).expect("groups runs");
        out.assert_code(0);
        out.stdout
            .lines()
            .map(|l| l.split_once(": ").expect("N: name").1.to_owned())
            .collect::<Vec<_>>()
    };
    let before = member();
    assert!(!before.contains(&DEVELOP.to_owned()), "{before:?}");
    assert!(
        !before.iter().any(|g| g == "all distribution destinations"),
        "all.rec is not a group one withdraws from: {before:?}"
    );
    run(
        server
            .imagecast(domain)
            .args(["register", "--group", DEVELOP]),
        LIMIT,
    )
    .expect("register runs")
    .assert_code(0);
    let after = member();
    assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
    assert!(after.contains(&DEVELOP.to_owned()), "{after:?}");

    // An operator removes the line by hand: the list follows the file.
    let path = server.group_file("develop.rec");
    let text = std::fs::read_to_string(&path).expect("reads");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(domain))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).expect("writes");
    let mut edited = member();
    for _ in 0..50 {
        if !edited.contains(&DEVELOP.to_owned()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        edited = member();
    }
    assert_eq!(edited, before);
}

/// A group file saved in Shift_JIS (CP932) by an older Japanese system: the server lists its
/// Japanese name, a terminal registers with it, the line is written in Shift_JIS with the file's
/// CRLF endings, and `check` says which encoding it read.
#[test]
fn a_shift_jis_group_file_is_read_and_written_in_shift_jis() {
    let server = TestServer::start_demo().expect("server starts");
    let sjis = |text: &str| {
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!unmappable, "{text}");
        bytes.into_owned()
    };
    let original = "# 開発関連部署\r\n# develop.rec\r\ndevl1.hqs.mei.co.jp;本社開発部\r\n";
    let path = server.group_file("develop.rec");
    std::fs::write(&path, sjis(original)).expect("writes");

    let terminal = "devl1.osk.mei.co.jp";
    let mut listed = String::new();
    for _ in 0..50 {
        let out = run(
            server
                .imagecast(terminal)
                .args(["groups", "--for-registration"]),
            LIMIT,
        )
        .expect("groups runs");
        listed = out.stdout;
        if listed.contains("開発関連部署") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listed.contains(": 開発関連部署\n"), "{listed}");

    run(
        server
            .imagecast(terminal)
            .args(["register", "--group", "開発関連部署"]),
        LIMIT,
    )
    .expect("register runs")
    .assert_code(0);
    let name = "development department, the Osaka branch";
    assert_eq!(
        std::fs::read(&path).expect("reads"),
        sjis(&format!("{original}{terminal};{name}\r\n")),
        "appended in Shift_JIS with CRLF"
    );

    let check = server.admin_run(&["check"]);
    check.assert_code(0);
    assert!(
        check.stderr.contains(
            "develop.rec: read as Shift_JIS; registrations are written back in Shift_JIS"
        ),
        "{}",
        check.stderr
    );

    run(
        server
            .imagecast(terminal)
            .args(["withdraw", "--group", "開発関連部署"]),
        LIMIT,
    )
    .expect("withdraw runs")
    .assert_code(0);
    assert_eq!(std::fs::read(&path).expect("reads"), sjis(original));
}
