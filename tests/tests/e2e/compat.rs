//! A terminal of the previous release (protocol version 1) keeps working with this server:
//! it logs in, lists, registers, sends and receives, and it is never sent a message it cannot
//! read. `shared/tests/golden.rs` pins the bytes of every version-1 message; this test checks
//! what the server sends such a terminal, frame by frame, with version 1's own limits.

use bytes::Bytes;
use imagecast_shared::DistributionId;
use imagecast_shared::frame::{FrameReader, OutFrame, decode_server_msg};
use imagecast_shared::limits::{MAX_FRAME, MAX_HELLO_FRAME};
use imagecast_shared::msg::{
    BeginDistribution, ClientMsg, DeliveryOutcome, DeliveryState, ErrorCode, Hello, HelloReply,
    PageInfo, RegisterOutcome, ServerMsg,
};
use imagecast_tests::{PASSWORD, RawStream, TestServer, USER};
use tokio::io::{ReadHalf, WriteHalf};

use crate::LIMIT;
use crate::hostile::{BYSTANDER, GROUP, SENDER};

/// Server messages version 1 had (`Heartbeat` … `FailedLogins`).
const V1_SERVER_MESSAGES: u8 = 20;
/// Error codes version 1 had (`BadRequest` … `Internal`).
const V1_ERROR_CODES: u8 = 16;

/// A version-1 terminal: hello with version 1, and every frame it reads is checked against
/// what version 1 knows before it is decoded.
struct OldTerminal {
    reader: FrameReader<ReadHalf<RawStream>>,
    writer: WriteHalf<RawStream>,
    next_id: u64,
}

impl OldTerminal {
    async fn connect(server: &TestServer, domain: &str, receive: bool) -> OldTerminal {
        let stream = server.raw().await.expect("connects");
        let (rd, mut writer) = tokio::io::split(stream);
        let mut hello = Hello::new(domain, &server.tokens[domain], "imagecast 0.1.0", receive);
        hello.version = 1;
        OutFrame::encode(&hello)
            .expect("encodes")
            .write_to(&mut writer)
            .await
            .expect("hello written");
        let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
        let reply = tokio::time::timeout(LIMIT, reader.read_msg::<HelloReply>("welcome"))
            .await
            .expect("a welcome in time")
            .expect("a readable welcome");
        match reply {
            Some(HelloReply::Welcome(w)) => assert_eq!(w.version, 1, "the server speaks version 1"),
            other => panic!("a version-1 terminal is refused: {other:?}"),
        }
        reader.set_max(MAX_FRAME);
        OldTerminal {
            reader,
            writer,
            next_id: 0,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn send(&mut self, msg: &ClientMsg) {
        OutFrame::encode(msg)
            .expect("encodes")
            .write_to(&mut self.writer)
            .await
            .expect("written");
    }

    /// The next message other than a heartbeat, after checking that version 1 knows it.
    async fn next(&mut self) -> ServerMsg {
        loop {
            let body = tokio::time::timeout(LIMIT, self.reader.read_frame())
                .await
                .expect("a frame in time")
                .expect("a readable frame")
                .expect("the connection still open");
            assert!(
                body[0] < V1_SERVER_MESSAGES,
                "message number {} is unknown to version 1",
                body[0]
            );
            let msg = decode_server_msg(Bytes::from(body)).expect("decodes");
            if let ServerMsg::Error { error, .. } = &msg {
                assert!(
                    (error.code as u8) < V1_ERROR_CODES,
                    "error code {:?} is unknown to version 1",
                    error.code
                );
            }
            if msg != ServerMsg::Heartbeat {
                return msg;
            }
        }
    }

    async fn login(&mut self) {
        let id = self.id();
        self.send(&ClientMsg::Login {
            id,
            user: USER.into(),
            password: PASSWORD.into(),
        })
        .await;
        assert!(
            matches!(self.next().await, ServerMsg::LoggedIn { id: got, .. } if got == id),
            "login"
        );
    }
}

#[tokio::test]
async fn a_version_1_terminal_sends_receives_and_registers() {
    let server = TestServer::start_demo().expect("server starts");
    let mut sender = OldTerminal::connect(&server, SENDER, false).await;
    let mut receiver = OldTerminal::connect(&server, BYSTANDER, true).await;
    sender.login().await;

    // Listing and registering.
    let id = sender.id();
    sender
        .send(&ClientMsg::ListGroups {
            id,
            for_registration: false,
        })
        .await;
    match sender.next().await {
        ServerMsg::Groups { groups, .. } => {
            assert!(groups.iter().any(|g| g.name == GROUP), "{groups:?}")
        }
        other => panic!("groups: {other:?}"),
    }
    let id = sender.id();
    sender
        .send(&ClientMsg::Register {
            id,
            group: GROUP.into(),
        })
        .await;
    match sender.next().await {
        ServerMsg::Registered { outcome, .. } => assert_eq!(outcome, RegisterOutcome::Added),
        other => panic!("register: {other:?}"),
    }

    // A request of a later version is refused with a code version 1 knows.
    let id = sender.id();
    sender.send(&ClientMsg::Memberships { id }).await;
    match sender.next().await {
        ServerMsg::Error { id: got, error } => {
            assert_eq!(got, Some(id));
            assert_eq!(error.code, ErrorCode::BadRequest);
            assert!(error.message.contains("version 2"), "{}", error.message);
        }
        other => panic!("a version-2 request from a version-1 terminal: {other:?}"),
    }

    // Sending two pages to a group; the old receiver gets them and prints.
    let pages = [
        Bytes::from(vec![1u8; 70_000]),
        Bytes::from_static(b"page two"),
    ];
    let dist = DistributionId::new_random();
    let id = sender.id();
    sender
        .send(&ClientMsg::BeginDistribution {
            id,
            request: BeginDistribution {
                dist,
                groups: vec![GROUP.into()],
                destinations: vec![],
                pages: pages
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PageInfo {
                        name: format!("p{i}.bin"),
                        size: p.len() as u64,
                    })
                    .collect(),
            },
        })
        .await;
    assert!(matches!(sender.next().await, ServerMsg::UploadReady { .. }));
    for (i, p) in pages.iter().enumerate() {
        sender
            .send(&ClientMsg::PageData {
                upload: id,
                page: i as u32,
                offset: 0,
                data: p.clone(),
            })
            .await;
    }
    let commit = sender.id();
    sender
        .send(&ClientMsg::CommitDistribution {
            id: commit,
            upload: id,
        })
        .await;
    match sender.next().await {
        ServerMsg::Accepted { accepted, .. } => {
            assert!(accepted.destinations.iter().any(|d| d.domain == BYSTANDER))
        }
        other => panic!("commit: {other:?}"),
    }
    let watch = sender.id();
    sender
        .send(&ClientMsg::WatchDistribution { id: watch, dist })
        .await;

    let deliver = match receiver.next().await {
        ServerMsg::Deliver(d) => d,
        other => panic!("a delivery: {other:?}"),
    };
    assert_eq!(deliver.dist, dist);
    let mut got = vec![Vec::new(); pages.len()];
    loop {
        match receiver.next().await {
            ServerMsg::DeliverData { page, data, .. } => {
                got[page as usize].extend_from_slice(&data)
            }
            ServerMsg::DeliverEnd { delivery } => {
                assert_eq!(delivery, deliver.delivery);
                break;
            }
            other => panic!("delivery data: {other:?}"),
        }
    }
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(&g[..], &p[..], "pages arrive byte for byte");
    }
    receiver
        .send(&ClientMsg::DeliveryAck {
            delivery: deliver.delivery,
            outcome: DeliveryOutcome::Printed,
        })
        .await;

    // The old sender follows the distribution to its end.
    let mut printed = false;
    for _ in 0..50 {
        match sender.next().await {
            ServerMsg::DistributionStatus { destinations, .. }
            | ServerMsg::DistributionDone {
                results: destinations,
                ..
            } => {
                printed = destinations.iter().any(|d| {
                    d.destination.domain == BYSTANDER && d.state == DeliveryState::Printed
                });
            }
            ServerMsg::Progress { status, .. } => {
                printed |= status.destination.domain == BYSTANDER
                    && status.state == DeliveryState::Printed;
            }
            other => panic!("watching: {other:?}"),
        }
        if printed {
            break;
        }
    }
    assert!(printed, "the old receiver's print reaches the old sender");
}

/// Relay sessions run beside a version-1 terminal: it keeps receiving, a demand for it is
/// answered "runs an older imagecast", and it is never sent a relay frame (every frame it
/// reads is checked against version 1's numbers).
#[tokio::test]
async fn a_version_1_terminal_stays_served_while_relay_sessions_run() {
    use imagecast_shared::client::{DistributionRequest, Event, OutgoingPage};
    use imagecast_shared::msg::RelayTarget;

    const LEFT: &str = "devl1.hqs.mei.co.jp";
    const RIGHT: &str = "devl1.osk.mei.co.jp";
    let server = TestServer::start_demo().expect("server starts");
    let mut old = OldTerminal::connect(&server, BYSTANDER, true).await;

    // Two current terminals open a session and relay data both ways.
    let (right, mut right_events) = server.connect(RIGHT, false).await.expect("connects");
    right.relay_listen().await.expect("listens");
    let (left, _left_events) = server.connect(LEFT, false).await.expect("connects");
    left.login(USER, PASSWORD).await.expect("logs in");
    let demanding = tokio::spawn({
        let left = left.clone();
        async move { left.demand(RelayTarget::Device(RIGHT.into()), LIMIT).await }
    });
    let demand = loop {
        match tokio::time::timeout(LIMIT, right_events.recv()).await {
            Ok(Some(Event::Demanded(d))) => break d,
            Ok(Some(_)) => {}
            other => panic!("no demand: {other:?}"),
        }
    };
    let mut at_right = right
        .answer(demand.demand, Ok(()))
        .await
        .expect("answers")
        .expect("a session");
    let mut at_left = demanding.await.expect("joins").expect("accepted");
    at_left
        .sender
        .send(Bytes::from(vec![5u8; 300_000]))
        .await
        .expect("sent");
    at_right
        .sender
        .send(Bytes::from_static(b"back"))
        .await
        .expect("sent");
    let mut got = 0;
    while got < 300_000 {
        got += at_right
            .receiver
            .recv()
            .await
            .expect("data")
            .expect("not closed")
            .len();
    }
    assert_eq!(
        &at_left.receiver.recv().await.expect("data").expect("open")[..],
        b"back"
    );

    // A demand for the old terminal: a clear error, at once.
    let err = left
        .demand(RelayTarget::Device(BYSTANDER.into()), LIMIT)
        .await
        .expect_err("an old terminal takes no sessions");
    let info = err.server_error().expect("a server error");
    assert_eq!(info.code, ErrorCode::OlderTerminal);
    assert!(
        info.message
            .contains("runs an older imagecast that cannot take real-time sessions"),
        "{}",
        info.message
    );

    // While the session is open, the old terminal still receives a distribution.
    let accepted = left
        .distribute(&DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec![],
            destinations: vec![BYSTANDER.into()],
            pages: vec![OutgoingPage::from_bytes(
                "p.bin",
                Bytes::from_static(b"old"),
            )],
        })
        .await
        .expect("accepted");
    assert_eq!(accepted.destinations.len(), 1);
    let deliver = match old.next().await {
        ServerMsg::Deliver(d) => d,
        other => panic!("a delivery: {other:?}"),
    };
    let mut bytes = Vec::new();
    loop {
        match old.next().await {
            ServerMsg::DeliverData { data, .. } => bytes.extend_from_slice(&data),
            ServerMsg::DeliverEnd { .. } => break,
            other => panic!("delivery data: {other:?}"),
        }
    }
    assert_eq!(bytes, b"old");
    old.send(&ClientMsg::DeliveryAck {
        delivery: deliver.delivery,
        outcome: DeliveryOutcome::Stored,
    })
    .await;
    at_left.sender.end("done").await.expect("ended");
    let ended = at_right.receiver.recv().await.expect_err("ended");
    assert!(ended.to_string().contains("done"), "{ended}");
    // The old terminal is still there and hears only what version 1 knows.
    let id = old.id();
    old.send(&ClientMsg::ListDestinations { id }).await;
    assert!(matches!(old.next().await, ServerMsg::Destinations { .. }));
}
