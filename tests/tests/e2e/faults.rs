//! Bad input: each gets its own clear error, and everyone else keeps being served.

use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::frame::{FrameReader, OutFrame};
use imagecast_shared::limits::{MAX_FRAME, MAX_HELLO_FRAME};
use imagecast_shared::msg::{ClientMsg, ErrorCode, Hello, HelloReply, RefusalCode, ServerMsg};
use imagecast_tests::{RawStream, Scratch, TestServer, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::LIMIT;

async fn raw(server: &TestServer) -> RawStream {
    server.raw().await.unwrap()
}

async fn read_reply(stream: &mut RawStream) -> HelloReply {
    let mut r = FrameReader::new(stream, MAX_HELLO_FRAME);
    tokio::time::timeout(LIMIT, r.read_msg::<HelloReply>("reply"))
        .await
        .unwrap()
        .unwrap()
        .expect("a reply before the close")
}

fn refusal(reply: HelloReply) -> (RefusalCode, String) {
    match reply {
        HelloReply::Refused(r) => (r.code, r.message),
        HelloReply::Welcome(_) => panic!("expected a refusal"),
    }
}

/// Reads until the server closes the connection; true if it did within the limit.
async fn closed_by_server(stream: &mut RawStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

async fn logged_in_raw(server: &TestServer, domain: &str) -> RawStream {
    let mut s = raw(server).await;
    let hello = Hello::new(domain, &server.tokens[domain], "raw test", false);
    OutFrame::encode(&hello)
        .unwrap()
        .write_to(&mut s)
        .await
        .unwrap();
    assert!(matches!(read_reply(&mut s).await, HelloReply::Welcome(_)));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_while_others_are_served() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    // A bystander stays connected through everything below and still receives at the end.
    let bystander = server
        .receiver("sale1.osk.mei.co.jp", &work.join("osk"))
        .await;
    let page = work.image("p.png", "page");

    // Wrong token.
    let out = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .env("IMAGECAST_TOKEN", "0000")
            .arg("groups"),
        LIMIT,
    )
    .unwrap();
    out.assert_error("device plan1.hqs.mei.co.jp is unknown or its token is wrong");
    // Unknown device.
    let out = run(
        server
            .imagecast("nobody.example")
            .env("IMAGECAST_TOKEN", "x")
            .arg("groups"),
        LIMIT,
    )
    .unwrap();
    assert!(
        out.stderr
            .contains("device nobody.example is unknown or its token is wrong"),
        "{}",
        out.stderr
    );
    // Wrong password.
    let out = run(
        server
            .imagecast("plan1.hqs.mei.co.jp")
            .env("IMAGECAST_PASSWORD", "9999")
            .args(["send", "--group", "all sales offices"])
            .arg(&page),
        LIMIT,
    )
    .unwrap();
    out.assert_error("wrong user ID or password");
    // Unknown group, unknown domain.
    let out = server.send("plan1.hqs.mei.co.jp", &["--group", "nonexistent"], &page);
    assert!(
        out.stderr
            .contains("unknown destination group \"nonexistent\""),
        "{}",
        out.stderr
    );
    let out = server.send(
        "plan1.hqs.mei.co.jp",
        &["--to", "nowhere.example.com"],
        &page,
    );
    assert!(
        out.stderr
            .contains("\"nowhere.example.com\" is not listed in all.rec"),
        "{}",
        out.stderr
    );

    // Plain bytes on the TLS port: the TLS handshake fails and the connection closes.
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(LIMIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a plain client is turned away");

    // Garbage bytes inside TLS, before the hello: HTTP, say.
    let mut s = raw(&server).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (code, msg) = refusal(read_reply(&mut s).await);
    assert_eq!(code, RefusalCode::NotHello);
    assert!(msg.contains("another protocol"), "{msg}");
    assert!(closed_by_server(&mut s, LIMIT).await);

    // A 4 GiB frame length before the handshake.
    let mut s = raw(&server).await;
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let (code, msg) = refusal(read_reply(&mut s).await);
    assert_eq!(code, RefusalCode::NotHello);
    assert!(msg.contains("4294967295 bytes"), "{msg}");

    // A frame that is no hello.
    let mut s = raw(&server).await;
    OutFrame::encode(&ClientMsg::Heartbeat)
        .unwrap()
        .write_to(&mut s)
        .await
        .unwrap();
    let (code, _) = refusal(read_reply(&mut s).await);
    assert_eq!(code, RefusalCode::NotHello);

    // Another protocol version.
    let mut s = raw(&server).await;
    let mut hello = Hello::new(
        "plan1.hqs.mei.co.jp",
        &server.tokens["plan1.hqs.mei.co.jp"],
        "old",
        false,
    );
    hello.version = 99;
    OutFrame::encode(&hello)
        .unwrap()
        .write_to(&mut s)
        .await
        .unwrap();
    let (code, msg) = refusal(read_reply(&mut s).await);
    assert_eq!(code, RefusalCode::VersionMismatch);
    assert!(
        msg.contains("versions 1 to 2") && msg.contains("version 99"),
        "{msg}"
    );

    // After the handshake: an undecodable frame gets an error, the connection lives on.
    let mut s = logged_in_raw(&server, "plan1.hqs.mei.co.jp").await;
    s.write_all(&[0, 0, 0, 2, 0xee, 0xee]).await.unwrap();
    OutFrame::encode(&ClientMsg::ListGroups {
        id: 7,
        for_registration: false,
    })
    .unwrap()
    .write_to(&mut s)
    .await
    .unwrap();
    let mut r = FrameReader::new(&mut s, MAX_FRAME);
    let mut saw_malformed = false;
    let mut saw_groups = false;
    while !(saw_malformed && saw_groups) {
        let msg = tokio::time::timeout(LIMIT, r.read_msg::<ServerMsg>("m"))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match msg {
            ServerMsg::Error { id: None, error } if error.code == ErrorCode::Malformed => {
                saw_malformed = true
            }
            ServerMsg::Groups { id: 7, groups } => {
                assert_eq!(groups.len(), 4);
                saw_groups = true;
            }
            ServerMsg::Heartbeat => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // An oversized frame: a clear error, then the close.
    s.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
        .await
        .unwrap();
    let mut r = FrameReader::new(&mut s, MAX_FRAME);
    let err = loop {
        match tokio::time::timeout(LIMIT, r.read_msg::<ServerMsg>("m"))
            .await
            .unwrap()
            .unwrap()
        {
            Some(ServerMsg::Heartbeat) => continue,
            Some(ServerMsg::Error { error, .. }) => break error,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(err.code, ErrorCode::TooLarge);
    assert!(
        err.message.contains("exceeds the limit of 1048576"),
        "{}",
        err.message
    );
    assert!(closed_by_server(&mut s, LIMIT).await);

    // Page names with directories are refused, naming the field.
    let (client, _e) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    client
        .login(imagecast_tests::USER, imagecast_tests::PASSWORD)
        .await
        .unwrap();
    let err = client
        .distribute(&imagecast_shared::client::DistributionRequest {
            dist: imagecast_shared::DistributionId::new_random(),
            groups: vec!["all sales offices".into()],
            destinations: vec![],
            pages: vec![imagecast_shared::client::OutgoingPage::from_bytes(
                "../../x",
                Bytes::from_static(b"x"),
            )],
        })
        .await
        .unwrap_err();
    let info = err.server_error().expect("a server error");
    assert_eq!(info.field.as_deref(), Some("pages[0].name"));
    client.close().await;

    // The bystander never lost its connection and still gets a distribution.
    assert!(!bystander.closed.load(std::sync::atomic::Ordering::SeqCst));
    let out = server.send_and_wait("plan1.hqs.mei.co.jp", "sale1.osk.mei.co.jp", &page, 20);
    out.assert_code(0);
    assert!(bystander.wait_for(1, LIMIT).await);
    bystander.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_dropped_and_heartbeats_keep_terminals_connected() {
    let server =
        TestServer::start_demo_with(&["--heartbeat-ms", "300", "--handshake-timeout", "1"])
            .unwrap();
    // Never says hello: closed after the handshake timeout.
    let mut s = raw(&server).await;
    let (code, msg) = refusal(read_reply(&mut s).await);
    assert_eq!(code, RefusalCode::NotHello);
    assert!(msg.contains("no hello within 1 s"), "{msg}");

    // Says hello, then nothing: dropped after two heartbeat intervals.
    let mut s = logged_in_raw(&server, "sale2.hqs.mei.co.jp").await;
    assert!(closed_by_server(&mut s, Duration::from_secs(10)).await);

    // The real client sends heartbeats and stays.
    let (client, _events) = server.connect("sale2.hqs.mei.co.jp", true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!client.is_closed());
    assert_eq!(client.groups(false).await.unwrap().len(), 4);
    client.close().await;
}
