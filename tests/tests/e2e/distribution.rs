//! Distribution to groups and individual destinations (FIG. 3, FIG. 4).

use std::collections::HashMap;

use imagecast_tests::{Scratch, TestServer, list_files, multipage_tiff};

use crate::LIMIT;

const SALES_OFFICES: [&str; 3] = [
    "sale1.osk.mei.co.jp",
    "sale1.ngy.mei.co.jp",
    "sale1.fko.mei.co.jp",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipage_tiff_reaches_every_member_byte_identical_and_no_one_else() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let mut receivers = HashMap::new();
    for domain in server.tokens.keys() {
        let dir = work.join(domain);
        let r = server.receiver(domain, &dir).await;
        receivers.insert(domain.clone(), r);
    }
    let tiff = work.join("report.tif");
    let bytes = multipage_tiff(&tiff, 3, 640, 480).unwrap();

    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--group", "all sales offices", "--wait", "--timeout", "20"],
        &tiff,
    );
    out.assert_code(0);
    let mut lines = out.stdout.lines();
    let dist = lines.next().unwrap().to_owned();
    assert_eq!(dist.len(), 36, "a distribution ID first: {dist}");
    // The results, after the states on the way (`queued`, `sending`).
    let mut results: Vec<&str> = lines.filter(|l| is_result(l)).collect();
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
    let journal = server.admin_run(&["journal"]);
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
    let work = Scratch::new();
    let mut receivers = HashMap::new();
    for domain in server.tokens.keys() {
        let r = server.receiver(domain, &work.join(domain)).await;
        receivers.insert(domain.clone(), r);
    }
    let page = work.page(
        "memo.png",
        b"not really a png, but bytes travel as they are",
    );
    // The sender sale1.hqs is in "all sales-related places": left out, unless picked.
    let out = server.send(
        "sale1.hqs.mei.co.jp",
        &[
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
            "--any-file",
        ],
        &page,
    );
    out.assert_code(0);
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
        .filter(|l| is_result(l))
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
    let work = Scratch::new();
    let me = server
        .receiver("devl1.hqs.mei.co.jp", &work.join("me"))
        .await;
    let page = work.page("p.jpg", [0xffu8, 0xd8, 0xff, 0xd9]);
    // develop.rec holds only devl1.hqs: sending to it from devl1.hqs reaches nobody.
    let out = server.send(
        "devl1.hqs.mei.co.jp",
        &["--group", "product development-related places"],
        &page,
    );
    out.assert_error("no destination other than this terminal");
    let out = server.send_and_wait("devl1.hqs.mei.co.jp", "devl1.hqs.mei.co.jp", &page, 20);
    out.assert_code(0);
    assert!(me.wait_for(1, LIMIT).await);
    assert_eq!(
        std::fs::read(me.dir.join("p.jpg")).unwrap(),
        [0xff, 0xd8, 0xff, 0xd9]
    );
    me.stop().await;
}

/// Whether a line of `send --wait` is a destination's result, not a state on the way.
fn is_result(line: &str) -> bool {
    !line.ends_with(": queued") && !line.ends_with(": sending")
}
