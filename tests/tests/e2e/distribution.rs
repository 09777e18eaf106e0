//! Distribution to groups and individual destinations (FIG. 3, FIG. 4).

use std::collections::HashMap;

use imagecast_tests::{Receiver, TestServer, list_files, multipage_tiff, run};

use crate::LIMIT;

const SALES_OFFICES: [&str; 3] = [
    "sale1.osk.mei.co.jp",
    "sale1.ngy.mei.co.jp",
    "sale1.fko.mei.co.jp",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipage_tiff_reaches_every_member_byte_identical_and_no_one_else() {
    let server = TestServer::start_demo().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut receivers = HashMap::new();
    for domain in server.tokens.keys() {
        let dir = work.path().join(domain);
        let r = Receiver::start(&server, domain, &dir, true).await.unwrap();
        receivers.insert(domain.clone(), r);
    }
    let tiff = work.path().join("report.tif");
    let bytes = multipage_tiff(&tiff, 3, 640, 480).unwrap();

    let out = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .args([
                "send",
                "--group",
                "all sales offices",
                "--wait",
                "--timeout",
                "20",
            ])
            .arg(&tiff),
        LIMIT,
    )
    .unwrap();
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let mut lines = out.stdout.lines();
    let dist = lines.next().unwrap().to_owned();
    assert_eq!(dist.len(), 36, "a distribution ID first: {dist}");
    let mut results: Vec<&str> = lines.collect();
    results.sort();
    assert_eq!(
        results,
        [
            "sale1.fko.mei.co.jp: printed",
            "sale1.ngy.mei.co.jp: printed",
            "sale1.osk.mei.co.jp: printed"
        ]
    );
    for domain in SALES_OFFICES {
        let r = &receivers[domain];
        assert!(r.wait_for(1, LIMIT).await, "{domain} got nothing");
        assert_eq!(r.files(), ["report.tif"], "{domain}");
        assert_eq!(
            std::fs::read(r.dir.join("report.tif")).unwrap(),
            bytes,
            "{domain}"
        );
        let got = r.received.lock().unwrap()[0].clone();
        assert_eq!(got.dist.to_string(), dist);
        assert_eq!(got.sender.domain, "plan1.hqs.mei.co.jp");
        assert_eq!(got.user, imagecast_tests::USER);
    }
    // Give a wrong delivery every chance to show up before checking nobody else got one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for (domain, r) in &receivers {
        if !SALES_OFFICES.contains(&domain.as_str()) {
            assert_eq!(r.count(), 0, "{domain} is not in the group");
            assert!(list_files(&r.dir).is_empty());
        }
    }
    // The journal has one line per destination.
    let journal = run(
        server
            .admin()
            .args(["journal", "--data-dir"])
            .arg(server.data_dir()),
        LIMIT,
    )
    .unwrap();
    let lines: Vec<&str> = journal.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", journal.stdout);
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f[1], dist);
        assert_eq!(f[2], "plan1.hqs.mei.co.jp");
        assert!(SALES_OFFICES.contains(&f[3]), "{l}");
        assert_eq!(f[4], "3", "pages (one file holding a 3-page TIFF): {l}");
        assert_eq!(f[5], bytes.len().to_string(), "bytes: {l}");
        assert_eq!(f[6], "printed");
    }
    // FIG. 4 S45: the spooled image is erased once everyone has it.
    let spool = server.data_dir().join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "tmp")
        .collect();
    assert!(left.is_empty(), "spool still holds {left:?}");
    for r in receivers.into_values() {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_individual_destinations_are_delivered_once_each() {
    let server = TestServer::start_demo().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut receivers = HashMap::new();
    for domain in server.tokens.keys() {
        let r = Receiver::start(&server, domain, &work.path().join(domain), true)
            .await
            .unwrap();
        receivers.insert(domain.clone(), r);
    }
    let page = work.path().join("memo.png");
    std::fs::write(&page, b"not really a png, but bytes travel as they are").unwrap();
    // The sender sale1.hqs is in "all sales-related places": left out, unless picked.
    let out = run(
        server
            .imagecast("sale1.hqs.mei.co.jp")
            .args([
                "send",
                "--group",
                "all sales offices",
                "--group",
                "all sales-related places",
                "--to",
                "sale1.osk.mei.co.jp",
                "--to",
                "devl1.osk.mei.co.jp",
                "--to",
                "DEVL1.OSK.MEI.CO.JP",
                "--wait",
                "--timeout",
                "20",
            ])
            .arg(&page),
        LIMIT,
    )
    .unwrap();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let expected = [
        "devl1.osk.mei.co.jp",
        "plan1.hqs.mei.co.jp",
        "sale1.fko.mei.co.jp",
        "sale1.ngy.mei.co.jp",
        "sale1.osk.mei.co.jp",
        "sale2.hqs.mei.co.jp",
    ];
    let mut reported: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(':').next().unwrap())
        .collect();
    reported.sort();
    assert_eq!(reported, expected);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for (domain, r) in &receivers {
        let want = usize::from(expected.contains(&domain.as_str()));
        assert_eq!(r.count(), want, "{domain}");
        assert_eq!(r.files().len(), want, "{domain}");
    }
    for r in receivers.into_values() {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_itself_is_included_only_when_picked() {
    let server = TestServer::start_demo().unwrap();
    let work = tempfile::tempdir().unwrap();
    let me = Receiver::start(
        &server,
        "devl1.hqs.mei.co.jp",
        &work.path().join("me"),
        true,
    )
    .await
    .unwrap();
    let page = work.path().join("p.jpg");
    std::fs::write(&page, [0xffu8, 0xd8, 0xff, 0xd9]).unwrap();
    // develop.rec holds only devl1.hqs: sending to it from devl1.hqs reaches nobody.
    let out = run(
        server
            .imagecast("devl1.hqs.mei.co.jp")
            .args(["send", "--group", "product development-related places"])
            .arg(&page),
        LIMIT,
    )
    .unwrap();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("no destination other than this terminal"),
        "{}",
        out.stderr
    );
    let out = run(
        server
            .imagecast("devl1.hqs.mei.co.jp")
            .args([
                "send",
                "--to",
                "devl1.hqs.mei.co.jp",
                "--wait",
                "--timeout",
                "20",
            ])
            .arg(&page),
        LIMIT,
    )
    .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(me.wait_for(1, LIMIT).await);
    assert_eq!(
        std::fs::read(me.dir.join("p.jpg")).unwrap(),
        [0xff, 0xd8, 0xff, 0xd9]
    );
    me.stop().await;
}
