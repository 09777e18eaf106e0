//! The server attacked as a terminal with a valid token and an operator's login would
//! (issue 9): padded page data that pinned memory, pieces of odd sizes, refusal reasons that
//! forged journal lines, names that display as other names, and one address written two ways.
//! Login, throttle and account attacks are in `login_attacks`; the receiving terminal's side
//! in `receiving_attacks`.

use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{DistributionRequest, Event, OutgoingPage};
use imagecast_shared::limits::{CHUNK_SIZE, MAX_FRAME, MAX_REASON};
use imagecast_shared::msg::{ClientMsg, DeliveryOutcome, ErrorCode, ServerMsg};
use imagecast_tests::{PASSWORD, Scratch, TestServer, USER};

use crate::LIMIT;
use crate::hostile::{BYSTANDER, Raw, SENDER, begin, page, server_pid, status_bytes, wire};

/// Bytes that differ from one offset to the next, so a piece out of place shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ seed)
        .collect()
}

/// The next reply, past the progress events of distributions sent before.
async fn reply(raw: &mut Raw) -> ServerMsg {
    loop {
        match raw.next().await {
            ServerMsg::Progress { .. } | ServerMsg::DistributionDone { .. } => {}
            other => return other,
        }
    }
}

/// Starts an upload on `raw` and returns its ID, after the server said it is ready.
async fn upload_ready(raw: &mut Raw, pages: Vec<imagecast_shared::msg::PageInfo>) -> u64 {
    let id = raw.id();
    raw.send(&begin(id, pages)).await;
    match reply(raw).await {
        ServerMsg::UploadReady { id: got } if got == id => id,
        other => panic!("begin: {other:?}"),
    }
}

/// Sends `bytes` of page `page` in pieces of `piece` bytes.
async fn send_pieces(raw: &Raw, upload: u64, page: u32, bytes: &[u8], piece: usize) {
    for (k, chunk) in bytes.chunks(piece).enumerate() {
        raw.send(&ClientMsg::PageData {
            upload,
            page,
            offset: (k * piece) as u64,
            data: Bytes::copy_from_slice(chunk),
        })
        .await;
    }
}

/// Commits `upload` and returns the accepted distribution's ID.
async fn commit(raw: &mut Raw, upload: u64) -> DistributionId {
    let id = raw.id();
    raw.send(&ClientMsg::CommitDistribution { id, upload })
        .await;
    match reply(raw).await {
        ServerMsg::Accepted { id: got, accepted } if got == id => accepted.dist,
        other => panic!("commit: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_page_data_is_refused_and_pins_no_memory() {
    let server = TestServer::start_demo().unwrap();
    let pid = server_pid(&server);
    let mut raw = Raw::logged_in(&server, SENDER).await;
    let page_bytes = pattern(1000, 1);
    let upload = upload_ready(&mut raw, vec![page("padded.bin", 1000)]).await;
    raw.sync().await;
    let before = status_bytes(pid, "VmRSS");

    // One byte of page data, then almost a megabyte of padding inside the same frame (within
    // the frame limit), 200 times: before the fix the server kept every frame whole (200 MB
    // for 200 bytes).
    const PADDED: usize = 200;
    for i in 0..PADDED {
        let mut frame = wire(&ClientMsg::PageData {
            upload,
            page: 0,
            offset: i as u64,
            data: Bytes::copy_from_slice(&page_bytes[i..=i]),
        })
        .await;
        frame.extend(std::iter::repeat_n(0u8, MAX_FRAME - 64));
        let len = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        raw.send_bytes(frame).await;
    }
    for _ in 0..PADDED {
        match raw.next().await {
            ServerMsg::Error { id: None, error } => {
                assert_eq!(error.code, ErrorCode::Malformed, "{error:?}");
                assert!(
                    error.message.contains("bytes after the message"),
                    "{error:?}"
                );
            }
            other => panic!("a padded frame must be refused: {other:?}"),
        }
    }
    let grown = status_bytes(pid, "VmRSS").saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the server grew by {} MiB for {PADDED} refused frames",
        grown >> 20
    );

    // The same page sent honestly, one byte a frame, is accepted and arrives intact.
    send_pieces(&raw, upload, 0, &page_bytes, 1).await;
    commit(&mut raw, upload).await;
    let grown = status_bytes(pid, "VmRSS").saturating_sub(before);
    assert!(grown < 64 << 20, "grew by {} MiB", grown >> 20);
    let work = Scratch::new();
    let rx = server.receiver(BYSTANDER, &work.join("rx")).await;
    assert!(rx.wait_for(1, LIMIT).await, "the page did not arrive");
    assert_eq!(
        std::fs::read(work.join("rx").join("padded.bin")).unwrap(),
        page_bytes
    );
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_of_any_size_deliver_byte_identical() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let rx = server.receiver(BYSTANDER, &work.join("rx")).await;
    let mut raw = Raw::logged_in(&server, SENDER).await;
    // Pieces smaller than, equal to and larger than the server's own, across a chunk border.
    let pieces = [
        100,
        4095,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        1 << 19,
    ];
    for (n, &piece) in pieces.iter().enumerate() {
        let small = pattern(1024, n as u8);
        let large = pattern(CHUNK_SIZE * 2 + 333, n as u8 ^ 0x55);
        let (a, b) = (format!("small-{piece}.bin"), format!("large-{piece}.bin"));
        let upload = upload_ready(
            &mut raw,
            vec![page(&a, small.len() as u64), page(&b, large.len() as u64)],
        )
        .await;
        send_pieces(&raw, upload, 0, &small, piece).await;
        send_pieces(&raw, upload, 1, &large, piece).await;
        commit(&mut raw, upload).await;
        assert!(
            rx.wait_for(n + 1, LIMIT).await,
            "distribution in pieces of {piece} bytes did not arrive"
        );
        let dir = work.join("rx");
        assert_eq!(std::fs::read(dir.join(&a)).unwrap(), small, "{a}");
        assert_eq!(std::fs::read(dir.join(&b)).unwrap(), large, "{b}");
    }
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reason_cannot_forge_journal_lines_or_escapes() {
    let server = TestServer::start_demo().unwrap();
    // A receiving terminal that refuses with a reason made to forge a journal line, drive the
    // operator's terminal and fill the database.
    let (rx, mut events) = server.connect(BYSTANDER, true).await.unwrap();
    let forged = format!(
        "disk full\n2026-01-01T00:00:00Z 00000000-0000-0000-0000-000000000000 a b 1 1 delivered\
         \x1b[31mRED\x1b]0;pwned\x07{}",
        "x".repeat(200_000)
    );
    let answer = forged.clone();
    let refusing = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::DeliverEnd { delivery } = ev {
                rx.ack(delivery, DeliveryOutcome::Refused(answer.clone()))
                    .await
                    .unwrap();
                return rx;
            }
        }
        panic!("no delivery");
    });
    let page = imagecast_tests::Scratch::new();
    let file = page.image("note.png", "hello");
    let sent = server.send_and_wait(SENDER, BYSTANDER, &file, 20);
    assert_eq!(sent.code, 3, "a failed destination: {}", sent.stderr);
    tokio::time::timeout(LIMIT, refusing)
        .await
        .unwrap()
        .unwrap()
        .close()
        .await;

    let journal = server.admin_run(&["journal"]);
    journal.assert_code(0);
    let lines: Vec<&str> = journal.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one result, one line: {:?}", journal.stdout);
    let line = lines[0];
    assert!(
        line.contains(BYSTANDER) && line.contains("failed"),
        "{line}"
    );
    assert!(
        line.contains("disk full\\n2026"),
        "escaped, not dropped: {line}"
    );
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(
        line.len() < MAX_REASON * 5 + 300,
        "the reason is bounded: {} bytes",
        line.len()
    );
    for out in [&sent.stdout, &sent.stderr] {
        assert!(
            !out.contains('\x1b'),
            "send --wait printed an escape: {out:?}"
        );
        assert!(
            !out.contains("\n2026-01-01"),
            "send printed a forged line: {out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_bidirectional_overrides_are_refused() {
    let server = TestServer::start_demo().unwrap();
    let mut raw = Raw::logged_in(&server, SENDER).await;
    let id = raw.id();
    let e = raw
        .refused(id, &begin(id, vec![page("invoice\u{202e}fdp.exe", 10)]))
        .await;
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    assert_eq!(e.field.as_deref(), Some("pages[0].name"));
    assert!(e.message.contains("U+202E"), "{e:?}");
    raw.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_address_written_two_ways_is_one_destination() {
    let mut server = TestServer::start_demo().unwrap();
    let token = server
        .add_device("2001:db8::5", "ipv6 printer", "printer")
        .unwrap();
    std::fs::write(
        server.group_file("ipv6.rec"),
        "# ipv6 printers\n# ipv6.rec\n2001:0db8:0:0::5;ipv6 printer\n",
    )
    .unwrap();
    let check = server.admin_run(&["check"]);
    check.assert_code(0);

    // The printer connects under a third spelling of its address.
    let spelling = "2001:DB8:0:0:0:0:0:5";
    server.tokens.insert(spelling.to_owned(), token);
    let work = Scratch::new();
    let rx = server.receiver(spelling, &work.join("rx")).await;
    let (client, _events) = server.connect(SENDER, false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    let accepted = client
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec!["ipv6 printers".into()],
            destinations: vec![],
            pages: vec![OutgoingPage::from_bytes(
                "v6.txt",
                Bytes::from_static(b"v6"),
            )],
        })
        .await
        .unwrap();
    assert_eq!(accepted.destinations.len(), 1);
    assert_eq!(accepted.destinations[0].domain, "2001:db8::5");
    assert!(
        rx.wait_for(1, Duration::from_secs(20)).await,
        "the online printer never got it"
    );
    assert_eq!(
        std::fs::read(work.join("rx").join("v6.txt")).unwrap(),
        b"v6"
    );
    // And picked individually, under yet another spelling.
    let again = client
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec![],
            destinations: vec!["2001:0DB8::0005".into()],
            pages: vec![OutgoingPage::from_bytes(
                "v6-2.txt",
                Bytes::from_static(b"2"),
            )],
        })
        .await
        .unwrap();
    assert_eq!(again.destinations[0].domain, "2001:db8::5");
    assert!(rx.wait_for(2, Duration::from_secs(20)).await);
    client.close().await;
    rx.stop().await;
}
