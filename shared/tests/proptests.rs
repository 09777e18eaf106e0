//! Property tests of the protocol layer against hostile input (issue 5, item 2).
//!
//! - The frame reader, fed arbitrary bytes in arbitrary pieces, agrees with a ten-line model of
//!   the frame format, never returns a body over its limit, and refuses an oversized length
//!   before it reads a byte of the body.
//! - Every decoder (`ClientMsg`, `ServerMsg`, `Hello`, `HelloReply`, `parse_hello`) takes
//!   arbitrary and mutated bytes without panicking.
//! - Every message round-trips through `OutFrame::encode`, and `OutFrame::encode_with_data`
//!   writes exactly the bytes of the plain encoding.
//! - An undecodable frame leaves the framing intact: the next frame still reads.
//! - The inbox stores any page name the server accepts inside its own folder.
//!
//! Futures here run on in-memory readers that are always ready (or pending once and woken),
//! so they are polled with a no-op waker instead of a runtime: that keeps a case cheap.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use imagecast_shared::client::{Event, Inbox, InboxMode};
use imagecast_shared::frame::{FrameReader, OutFrame, decode};
use imagecast_shared::limits::{
    CHUNK_SIZE, MAGIC, MAX_FRAME, MAX_HELLO_FRAME, MAX_NAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use imagecast_shared::msg::{
    Accepted, BeginDistribution, ClientMsg, Deliver, DeliveryOutcome, DeliveryState, Destination,
    DestinationStatus, DeviceKind, ErrorCode, ErrorInfo, GroupEntry, Hello, HelloCheck, HelloReply,
    PageInfo, Refusal, RefusalCode, RegisterOutcome, Role, ServerMsg, Welcome, WithdrawOutcome,
    parse_hello,
};
use imagecast_shared::{DeliveryId, DistributionId, ProtoError};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, ReadBuf};

// ---------------------------------------------------------------------------------------------
// Running futures without a runtime.

/// Polls `f` to completion. The readers used here never wait for anything outside the test, so
/// a future that stays pending is a bug (a lost wake-up): fail instead of hanging.
fn block<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future still pending after a million polls");
}

/// An in-memory stream that hands out at most `step` bytes per read and, when `stall` is set,
/// answers every other read with `Pending` first (waking at once), as a slow socket would.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    stall: bool,
    stalled: bool,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8], step: usize, stall: bool) -> Self {
        Self {
            data,
            step: step.max(1),
            stall,
            stalled: false,
        }
    }
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stall && !self.stalled {
            self.stalled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.stalled = false;
        let n = self.step.min(buf.remaining()).min(self.data.len());
        let data = self.data;
        let (now, rest) = data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------
// The frame format, modelled.

/// What one `read_frame` call gives, in a comparable form.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Frame(Vec<u8>),
    End,
    TooLarge { len: usize, max: usize },
    Truncated,
    Other(String),
}

impl From<Result<Option<Vec<u8>>, ProtoError>> for Step {
    fn from(r: Result<Option<Vec<u8>>, ProtoError>) -> Self {
        match r {
            Ok(Some(body)) => Step::Frame(body),
            Ok(None) => Step::End,
            Err(ProtoError::FrameTooLarge { len, max }) => Step::TooLarge { len, max },
            Err(ProtoError::Truncated) => Step::Truncated,
            Err(e) => Step::Other(e.to_string()),
        }
    }
}

/// The protocol page's frame format in a few lines: `u32` big-endian length, then the body;
/// a length over `max` is refused from the header alone.
fn model(mut bytes: &[u8], max: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        if bytes.is_empty() {
            steps.push(Step::End);
            return steps;
        }
        if bytes.len() < 4 {
            steps.push(Step::Truncated);
            return steps;
        }
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len > max {
            steps.push(Step::TooLarge { len, max });
            return steps;
        }
        if bytes.len() - 4 < len {
            steps.push(Step::Truncated);
            return steps;
        }
        steps.push(Step::Frame(bytes[4..4 + len].to_vec()));
        bytes = &bytes[4 + len..];
    }
}

/// Runs the real reader over `bytes` until it ends or fails.
fn read_all(bytes: &[u8], max: usize, step: usize, stall: bool) -> Vec<Step> {
    let mut reader = FrameReader::new(Trickle::new(bytes, step, stall), max);
    let mut steps = Vec::new();
    // Every frame takes at least four bytes, so this many calls always reach the end.
    for _ in 0..bytes.len() / 4 + 2 {
        let step = Step::from(block(reader.read_frame()));
        let last = !matches!(step, Step::Frame(_));
        steps.push(step);
        if last {
            return steps;
        }
    }
    panic!("the reader returned more frames than the input can hold");
}

fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Bytes shaped like a stream of frames: mostly well-formed frames of small bodies, with
/// arbitrary bytes (a bad length, a cut) mixed in.
fn frame_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => vec(any::<u8>(), 0..48).prop_map(|b| frame_bytes(&b)),
        1 => vec(any::<u8>(), 0..8),
        1 => (0u32..80).prop_map(|n| n.to_be_bytes().to_vec()),
    ];
    vec(piece, 0..8).prop_map(|ps| ps.concat())
}

fn limits() -> impl Strategy<Value = usize> {
    prop_oneof![
        select(vec![0usize, 1, 3, 4, 16, 47, MAX_HELLO_FRAME, MAX_FRAME]),
        0usize..64,
    ]
}

/// `cases` cases, and no regression file written next to the sources on a failure (the
/// failing input is in the test's output; add it as a plain test).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes, read in arbitrary pieces (with pending reads between them), give
    /// exactly the frames of the model, then the same end or error, and never a body over the
    /// limit.
    #[test]
    fn frame_reader_agrees_with_the_model_on_any_bytes(
        bytes in prop_oneof![vec(any::<u8>(), 0..256), frame_stream()],
        max in limits(),
        step in 1usize..9,
        stall in any::<bool>(),
    ) {
        let got = read_all(&bytes, max, step, stall);
        for s in &got {
            if let Step::Frame(body) = s {
                prop_assert!(body.len() <= max, "a body of {} bytes under a limit of {max}", body.len());
            }
        }
        prop_assert_eq!(got, model(&bytes, max));
    }

    /// A length over the limit is refused from the four header bytes alone: not one byte of
    /// the body is read (so nothing of its size is allocated), whatever follows.
    #[test]
    fn oversized_length_is_refused_before_the_body_is_read(
        max in limits(),
        excess in prop_oneof![1u64..16, any::<u32>().prop_map(u64::from)],
        rest in vec(any::<u8>(), 0..64),
    ) {
        let len = (max as u64 + excess).min(u64::from(u32::MAX));
        prop_assume!(len > max as u64);
        let mut bytes = (len as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&rest);
        let mut reader = FrameReader::new(&bytes[..], max);
        match block(reader.read_frame()) {
            Err(ProtoError::FrameTooLarge { len: l, max: m }) => {
                prop_assert_eq!(l as u64, len);
                prop_assert_eq!(m, max);
            }
            other => prop_assert!(false, "expected FrameTooLarge, got {:?}", other.map(|b| b.map(|b| b.len()))),
        }
        prop_assert!(reader.max() == max);
        prop_assert_eq!(reader.into_inner(), &rest[..], "the body was read");
    }

    /// A frame whose body does not decode is a non-fatal error and the next frame reads: only
    /// a broken frame closes a connection.
    #[test]
    fn undecodable_frame_leaves_the_framing_intact(
        before in client_msg(),
        garbage in vec(any::<u8>(), 0..64),
        after in client_msg(),
    ) {
        let mut wire = encode_wire(&before);
        wire.extend_from_slice(&frame_bytes(&garbage));
        wire.extend_from_slice(&encode_wire(&after));
        let mut reader = FrameReader::new(&wire[..], MAX_FRAME);
        prop_assert_eq!(block(reader.read_msg::<ClientMsg>("m")).unwrap(), Some(before));
        match block(reader.read_msg::<ClientMsg>("m")) {
            Ok(Some(_)) => {}
            Err(e) => prop_assert!(!e.is_fatal(), "a decode error counts as fatal: {}", e),
            Ok(None) => prop_assert!(false, "the stream ended early"),
        }
        prop_assert_eq!(block(reader.read_msg::<ClientMsg>("m")).unwrap(), Some(after));
        prop_assert_eq!(block(reader.read_msg::<ClientMsg>("m")).unwrap(), None);
    }

    /// No decoder panics on arbitrary bytes, and whatever decodes re-encodes to something
    /// that decodes to the same value.
    #[test]
    fn decoders_take_arbitrary_bytes(body in vec(any::<u8>(), 0..512)) {
        check_decoders(&body)?;
    }

    /// The same on valid encodings damaged in one place: a byte changed, a cut, bytes
    /// inserted. These get past the first byte, where random input mostly stops.
    #[test]
    fn decoders_take_damaged_messages(
        msg in prop_oneof![
            client_msg().prop_map(|m| body_of(&m)),
            server_msg().prop_map(|m| body_of(&m)),
            hello().prop_map(|m| body_of(&m)),
            hello_reply().prop_map(|m| body_of(&m)),
        ],
        at in any::<prop::sample::Index>(),
        how in 0u8..4,
        byte in any::<u8>(),
        extra in vec(any::<u8>(), 1..12),
    ) {
        let mut body = msg;
        let i = if body.is_empty() { 0 } else { at.index(body.len()) };
        match how {
            0 if !body.is_empty() => body[i] ^= byte | 1,
            1 => body.truncate(i),
            2 => { body.splice(i..i, extra); }
            _ => body.extend_from_slice(&extra),
        }
        check_decoders(&body)?;
    }

    #[test]
    fn client_messages_round_trip(msg in client_msg()) {
        round_trip(&msg)?;
    }

    #[test]
    fn server_messages_round_trip(msg in server_msg()) {
        round_trip(&msg)?;
    }

    #[test]
    fn hellos_round_trip_and_are_classified(h in hello()) {
        round_trip(&h)?;
        let body = body_of(&h);
        let expected = if h.magic != MAGIC {
            HelloCheck::NotHello
        } else if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&h.version) {
            HelloCheck::OtherVersion(h.version)
        } else {
            HelloCheck::Hello(h.clone())
        };
        prop_assert_eq!(parse_hello(&body), expected);
    }

    /// A hello of this version cut anywhere after its version is `Malformed`, never a panic
    /// and never a hello.
    #[test]
    fn cut_hellos_are_malformed(h in hello(), at in any::<prop::sample::Index>()) {
        let h = Hello { magic: MAGIC, version: PROTOCOL_VERSION, ..h };
        let body = body_of(&h);
        // magic (4 bytes) and the version (one varint byte) lead the body.
        let cut = 5 + at.index(body.len() - 5);
        prop_assert!(matches!(parse_hello(&body[..cut]), HelloCheck::Malformed(_)));
    }

    #[test]
    fn hello_replies_round_trip(r in hello_reply()) {
        round_trip(&r)?;
    }

    /// The zero-copy encoding of page data is byte-for-byte the plain one, in both
    /// directions, for lengths around the varint boundaries and up to a whole chunk.
    #[test]
    fn encode_with_data_equals_plain_encoding(
        upload in any::<u64>(),
        page in any::<u32>(),
        offset in any::<u64>(),
        // Around the varint steps at 128, 16,384 and 2,097,152 bytes, and a whole chunk.
        len in prop_oneof![
            8 => 0usize..300,
            4 => 16_370usize..16_400,
            1 => 2_097_140usize..2_097_160,
            1 => (CHUNK_SIZE - 8)..=CHUNK_SIZE,
        ],
        seed in any::<u8>(),
    ) {
        let mut data = vec![seed; len];
        for (i, b) in data.iter_mut().enumerate().step_by(4093) {
            *b = i as u8;
        }
        let data = Bytes::from(data);
        let plain = ClientMsg::PageData { upload, page, offset, data: data.clone() };
        let fast = OutFrame::encode_with_data(
            &ClientMsg::PageData { upload, page, offset, data: Bytes::new() },
            data.clone(),
        ).unwrap();
        let wire = wire_of(&fast);
        prop_assert_eq!(fast.wire_len(), wire.len());
        prop_assert!(wire == encode_wire(&plain), "PageData of {} bytes differs", len);
        prop_assert_eq!(decode::<ClientMsg>(&wire[4..], "m").unwrap(), plain);

        let delivery = DeliveryId(upload);
        let plain = ServerMsg::DeliverData { delivery, page, offset, data: data.clone() };
        let fast = OutFrame::encode_with_data(
            &ServerMsg::DeliverData { delivery, page, offset, data: Bytes::new() },
            data,
        ).unwrap();
        let wire = wire_of(&fast);
        prop_assert!(wire == encode_wire(&plain), "DeliverData of {} bytes differs", len);
        prop_assert_eq!(decode::<ServerMsg>(&wire[4..], "m").unwrap(), plain);
    }
}

fn check_decoders(body: &[u8]) -> Result<(), TestCaseError> {
    decodes_stably::<ClientMsg>(body)?;
    decodes_stably::<ServerMsg>(body)?;
    decodes_stably::<Hello>(body)?;
    decodes_stably::<HelloReply>(body)?;
    if let HelloCheck::Hello(h) = parse_hello(body) {
        prop_assert_eq!(h.magic, MAGIC);
        // Every version the server serves parses (a version-1 terminal keeps working).
        prop_assert!(
            (imagecast_shared::limits::MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION)
                .contains(&h.version)
        );
    }
    Ok(())
}

fn decodes_stably<M>(body: &[u8]) -> Result<(), TestCaseError>
where
    M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = decode::<M>(body, "m") {
        let again = body_of(&msg);
        prop_assert_eq!(decode::<M>(&again, "m").unwrap(), msg);
    }
    Ok(())
}

fn wire_of(frame: &OutFrame) -> Vec<u8> {
    let mut out = Vec::new();
    block(frame.write_to(&mut out)).unwrap();
    out
}

fn encode_wire<M: Serialize>(msg: &M) -> Vec<u8> {
    wire_of(&OutFrame::encode(msg).unwrap())
}

fn body_of<M: Serialize>(msg: &M) -> Vec<u8> {
    encode_wire(msg)[4..].to_vec()
}

/// Encodes one frame, checks its length prefix, and reads it back through the frame reader.
fn round_trip<M>(msg: &M) -> Result<(), TestCaseError>
where
    M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let frame = OutFrame::encode(msg).unwrap();
    let wire = wire_of(&frame);
    prop_assert_eq!(frame.wire_len(), wire.len());
    let len = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
    prop_assert_eq!(len, wire.len() - 4);
    let mut reader = FrameReader::new(&wire[..], MAX_FRAME);
    let back: Option<M> = block(reader.read_msg("m")).unwrap();
    prop_assert_eq!(back.as_ref(), Some(msg));
    prop_assert!(block(reader.read_frame()).unwrap().is_none());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies for well-formed messages: every variant of both enums and the handshake.

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 .;#/-]{0,16}",
        1 => any::<String>(),
    ]
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn dist_id() -> impl Strategy<Value = DistributionId> {
    any::<[u8; 16]>().prop_map(DistributionId::from_bytes)
}

fn page_info() -> impl Strategy<Value = PageInfo> {
    (text(), any::<u64>()).prop_map(|(name, size)| PageInfo { name, size })
}

fn destination() -> impl Strategy<Value = Destination> {
    (text(), text()).prop_map(|(domain, name)| Destination { domain, name })
}

fn delivery_state() -> impl Strategy<Value = DeliveryState> {
    prop_oneof![
        Just(DeliveryState::Queued),
        Just(DeliveryState::Sending),
        Just(DeliveryState::Delivered),
        Just(DeliveryState::Printed),
        text().prop_map(DeliveryState::Failed),
    ]
}

fn status() -> impl Strategy<Value = DestinationStatus> {
    (destination(), delivery_state())
        .prop_map(|(destination, state)| DestinationStatus { destination, state })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    use ErrorCode::*;
    select(vec![
        BadRequest,
        NotLoggedIn,
        BadLogin,
        Forbidden,
        UnknownGroup,
        UnknownDomain,
        NotRegistrable,
        GroupFileBroken,
        TooLarge,
        UnknownDistribution,
        OutOfOrder,
        Malformed,
        Storage,
        NoDestinations,
        ShuttingDown,
        Internal,
    ])
}

fn role() -> impl Strategy<Value = Role> {
    select(vec![Role::Operator, Role::Admin])
}

fn kind() -> impl Strategy<Value = DeviceKind> {
    select(vec![
        DeviceKind::Mfp,
        DeviceKind::Pc,
        DeviceKind::Printer,
        DeviceKind::FaxGateway,
    ])
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let id = any::<u64>;
    prop_oneof![
        Just(ClientMsg::Heartbeat),
        (id(), text(), text()).prop_map(|(id, user, password)| ClientMsg::Login {
            id,
            user,
            password
        }),
        id().prop_map(|id| ClientMsg::Logout { id }),
        (id(), any::<bool>()).prop_map(|(id, for_registration)| ClientMsg::ListGroups {
            id,
            for_registration
        }),
        id().prop_map(|id| ClientMsg::ListDestinations { id }),
        (
            id(),
            dist_id(),
            vec(text(), 0..4),
            vec(text(), 0..4),
            vec(page_info(), 0..4)
        )
            .prop_map(|(id, dist, groups, destinations, pages)| {
                ClientMsg::BeginDistribution {
                    id,
                    request: BeginDistribution {
                        dist,
                        groups,
                        destinations,
                        pages,
                    },
                }
            }),
        (id(), any::<u32>(), any::<u64>(), blob()).prop_map(|(upload, page, offset, data)| {
            ClientMsg::PageData {
                upload,
                page,
                offset,
                data,
            }
        }),
        (id(), id()).prop_map(|(id, upload)| ClientMsg::CommitDistribution { id, upload }),
        id().prop_map(|upload| ClientMsg::AbortDistribution { upload }),
        (
            id(),
            prop_oneof![
                Just(DeliveryOutcome::Stored),
                Just(DeliveryOutcome::Printed),
                text().prop_map(DeliveryOutcome::Refused),
            ]
        )
            .prop_map(|(d, outcome)| ClientMsg::DeliveryAck {
                delivery: DeliveryId(d),
                outcome
            }),
        (id(), text()).prop_map(|(id, group)| ClientMsg::Register { id, group }),
        (id(), text()).prop_map(|(id, group)| ClientMsg::Withdraw { id, group }),
        id().prop_map(|id| ClientMsg::GroupProblems { id }),
        (id(), dist_id()).prop_map(|(id, dist)| ClientMsg::WatchDistribution { id, dist }),
    ]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let id = any::<u64>;
    prop_oneof![
        Just(ServerMsg::Heartbeat),
        id().prop_map(|id| ServerMsg::Ok { id }),
        (
            proptest::option::of(id()),
            error_code(),
            proptest::option::of(text()),
            text()
        )
            .prop_map(|(id, code, field, message)| ServerMsg::Error {
                id,
                error: ErrorInfo {
                    code,
                    field,
                    message
                },
            }),
        (id(), text(), role()).prop_map(|(id, user, role)| ServerMsg::LoggedIn { id, user, role }),
        (
            id(),
            vec(
                (text(), text(), any::<u32>()).prop_map(|(name, file, members)| GroupEntry {
                    name,
                    file,
                    members
                }),
                0..4
            )
        )
            .prop_map(|(id, groups)| ServerMsg::Groups { id, groups }),
        (id(), vec(destination(), 0..4))
            .prop_map(|(id, destinations)| ServerMsg::Destinations { id, destinations }),
        id().prop_map(|id| ServerMsg::UploadReady { id }),
        (id(), dist_id(), vec(destination(), 0..4), any::<bool>()).prop_map(
            |(id, dist, destinations, duplicate)| ServerMsg::Accepted {
                id,
                accepted: Accepted {
                    dist,
                    destinations,
                    duplicate
                },
            }
        ),
        (
            id(),
            text(),
            select(vec![RegisterOutcome::Added, RegisterOutcome::AlreadyMember])
        )
            .prop_map(|(id, group, outcome)| ServerMsg::Registered { id, group, outcome }),
        (
            id(),
            text(),
            select(vec![WithdrawOutcome::Removed, WithdrawOutcome::NotMember])
        )
            .prop_map(|(id, group, outcome)| ServerMsg::Withdrawn { id, group, outcome }),
        (id(), vec(text(), 0..4)).prop_map(|(id, problems)| ServerMsg::Problems { id, problems }),
        (id(), dist_id(), vec(status(), 0..4)).prop_map(|(id, dist, destinations)| {
            ServerMsg::DistributionStatus {
                id,
                dist,
                destinations,
            }
        }),
        (dist_id(), status()).prop_map(|(dist, status)| ServerMsg::Progress { dist, status }),
        (dist_id(), vec(status(), 0..4))
            .prop_map(|(dist, results)| ServerMsg::DistributionDone { dist, results }),
        (
            id(),
            dist_id(),
            destination(),
            text(),
            any::<u64>(),
            vec(page_info(), 0..4),
            any::<bool>()
        )
            .prop_map(|(d, dist, sender, user, accepted_at_ms, pages, print)| {
                ServerMsg::Deliver(Deliver {
                    delivery: DeliveryId(d),
                    dist,
                    sender,
                    user,
                    accepted_at_ms,
                    pages,
                    print,
                })
            }),
        (id(), any::<u32>(), any::<u64>(), blob()).prop_map(|(d, page, offset, data)| {
            ServerMsg::DeliverData {
                delivery: DeliveryId(d),
                page,
                offset,
                data,
            }
        }),
        id().prop_map(|d| ServerMsg::DeliverEnd {
            delivery: DeliveryId(d)
        }),
        text().prop_map(|text| ServerMsg::Notice { text }),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        prop_oneof![Just(MAGIC), any::<[u8; 4]>()],
        prop_oneof![
            Just(PROTOCOL_VERSION),
            Just(MIN_PROTOCOL_VERSION),
            any::<u16>()
        ],
        text(),
        text(),
        text(),
        any::<bool>(),
    )
        .prop_map(|(magic, version, device, token, software, receive)| Hello {
            magic,
            version,
            device,
            token,
            software,
            receive,
        })
}

fn hello_reply() -> impl Strategy<Value = HelloReply> {
    let refusal = select(vec![
        RefusalCode::NotHello,
        RefusalCode::VersionMismatch,
        RefusalCode::UnknownDevice,
        RefusalCode::BadToken,
        RefusalCode::Revoked,
        RefusalCode::Unavailable,
    ]);
    prop_oneof![
        (
            any::<u16>(),
            text(),
            text(),
            kind(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(
                |(version, server, device_name, kind, heartbeat_ms, max_frame, chunk_size)| {
                    HelloReply::Welcome(Welcome {
                        version,
                        server,
                        device_name,
                        kind,
                        heartbeat_ms,
                        max_frame,
                        chunk_size,
                    })
                }
            ),
        (refusal, text())
            .prop_map(|(code, message)| HelloReply::Refused(Refusal { code, message })),
    ]
}

// ---------------------------------------------------------------------------------------------
// The inbox against hostile page names.

/// Whether the server accepts `name` as a page name (`server/src/cmd/distribution.rs`,
/// `check_page_name`): not blank, at most `MAX_NAME` bytes, no control characters, no `/` or
/// `\`, not `.` or `..`.
fn server_accepts(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_NAME
        && !name.chars().any(char::is_control)
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
}

/// Page names a hostile sender might choose that the server lets through.
fn hostile_page_name(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("...".to_owned()),
        Just(". .".to_owned()),
        Just(".imagecast".to_owned()),
        Just("received".to_owned()),
        Just("a:b".to_owned()),
        Just(" ".to_owned() + "x"),
        "[.]{1,4}[a-z]{0,3}",
        "[a-z.: ~-]{1,12}",
        "\\PC{1,40}",
        // Long names in multi-byte characters: right at the byte limit.
        (1usize..=130, select(vec!['a', 'é', 'あ', '🖨']))
            .prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
    .prop_map(move |s| {
        let mut cut = s.len().min(max_bytes);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s[..cut].to_owned()
    })
    .prop_filter("the server accepts it", |s| server_accepts(s))
}

/// Pushes one delivery of `names` (page `i` holds the byte `i`) into the inbox.
fn deliver(inbox: &mut Inbox, delivery: u64, names: &[String]) -> Result<(), String> {
    let dist = DistributionId::new_random();
    let delivery = DeliveryId(delivery);
    let pages = names
        .iter()
        .map(|n| PageInfo {
            name: n.clone(),
            size: 1,
        })
        .collect();
    let mut events = vec![Event::Deliver(Deliver {
        delivery,
        dist,
        sender: Destination {
            domain: "evil.example".into(),
            name: "E".into(),
        },
        user: "1001".into(),
        accepted_at_ms: 0,
        pages,
        print: false,
    })];
    for i in 0..names.len() {
        events.push(Event::DeliverData {
            delivery,
            page: i as u32,
            offset: 0,
            data: Bytes::from(vec![i as u8]),
        });
    }
    events.push(Event::DeliverEnd { delivery });
    for ev in &events {
        inbox.handle(ev).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Delivers the same page names twice (so every name collides once) and checks that every
/// page landed as a plain file directly in the folder, that nothing was written beside the
/// folder, and that the folder still opens.
fn inbox_takes(names: &[String]) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tray");
    let mut inbox = Inbox::open(&dir, InboxMode::Store).unwrap();
    for round in 0..2u64 {
        deliver(&mut inbox, round + 1, names)
            .map_err(|e| TestCaseError::fail(format!("round {round}: {e}")))?;
    }
    drop(inbox);
    let beside: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    prop_assert_eq!(beside, vec![std::ffi::OsString::from("tray")]);
    let mut stored = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name == ".imagecast" {
            continue;
        }
        prop_assert!(entry.file_type().unwrap().is_file(), "{name:?} is no file");
        prop_assert!(!name.starts_with('.'), "{name:?} is hidden");
        prop_assert!(name.len() <= 255, "{name:?} is too long");
        stored += 1;
    }
    prop_assert_eq!(stored, 2 * names.len());
    Inbox::open(&dir, InboxMode::Store)
        .map_err(|e| TestCaseError::fail(format!("the inbox no longer opens: {e}")))?;
    Ok(())
}

proptest! {
    // Each case writes and fsyncs files: fewer cases.
    #![proptest_config(config(64))]

    /// Names the server accepts, up to 240 bytes, land inside the folder and nowhere else,
    /// each distinct, even when they collide.
    #[test]
    fn inbox_keeps_hostile_page_names_inside_its_folder(
        names in vec(hostile_page_name(240), 1..4),
    ) {
        inbox_takes(&names)?;
    }

    /// The same with names up to the server's full limit of 255 bytes.
    #[test]
    fn inbox_keeps_page_names_of_any_accepted_length_inside_its_folder(
        names in vec(hostile_page_name(MAX_NAME), 1..4),
    ) {
        inbox_takes(&names)?;
    }
}

/// The smallest case of the bug above, kept as a plain regression test.
#[test]
fn page_name_of_255_bytes_received_twice() {
    let name = "あ".repeat(85);
    assert_eq!(name.len(), MAX_NAME);
    assert!(server_accepts(&name));
    inbox_takes(&[name]).unwrap();
}
