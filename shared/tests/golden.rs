//! Golden bytes: one fixed instance of every message, encoded, against the bytes a released
//! terminal sends and reads. A terminal of an earlier release keeps working only while these
//! never change: a new message is appended with a new number and a new line here; no line is
//! ever edited.

use bytes::Bytes;
use imagecast_shared::ids::{DeliveryId, DistributionId};
use imagecast_shared::limits::MAGIC;
use imagecast_shared::msg::{
    Accepted, BeginDistribution, ClientMsg, Deliver, DeliveryOutcome, DeliveryState, Destination,
    DestinationStatus, DeviceInfo, DeviceKind, ErrorCode, ErrorInfo, FailedLogin, GroupEntry,
    Hello, HelloReply, PageInfo, Refusal, RefusalCode, RegisterOutcome, Role, ServerMsg, Welcome,
    WithdrawOutcome,
};
use imagecast_shared::msg::{Presence, RelayTarget, SessionInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn hex<M: Serialize>(msg: &M) -> String {
    postcard::to_allocvec(msg)
        .expect("encodes")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks each message's bytes and that the bytes decode back to it.
fn check<M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(cases: &[(M, &str)]) {
    let mut wrong = Vec::new();
    for (msg, want) in cases {
        let got = hex(msg);
        if got != *want {
            wrong.push(format!("{msg:?}\n  want {want}\n  got  {got}"));
        }
        let bytes = postcard::to_allocvec(msg).expect("encodes");
        let back: M = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(&back, msg);
    }
    assert!(
        wrong.is_empty(),
        "wire format changed:\n{}",
        wrong.join("\n")
    );
}

fn dist() -> DistributionId {
    DistributionId::from_bytes([7; 16])
}

fn dest() -> Destination {
    Destination {
        domain: "a.b".into(),
        name: "N".into(),
    }
}

fn page() -> PageInfo {
    PageInfo {
        name: "p.png".into(),
        size: 300,
    }
}

#[test]
fn hello_and_its_reply_keep_their_bytes() {
    let hello = Hello {
        magic: MAGIC,
        version: 1,
        device: "a.b".into(),
        token: "t".into(),
        software: "s".into(),
        receive: true,
    };
    check(&[(hello, "494353540103612e620174017301")]);
    let welcome = HelloReply::Welcome(Welcome {
        version: 1,
        server: "s".into(),
        device_name: "N".into(),
        kind: DeviceKind::Pc,
        heartbeat_ms: 15_000,
        max_frame: 1 << 20,
        chunk_size: 1 << 18,
    });
    let refused = HelloReply::Refused(Refusal {
        code: RefusalCode::VersionMismatch,
        message: "m".into(),
    });
    check(&[
        (welcome, "00010173014e019875808040808010"),
        (refused, "0101016d"),
    ]);
}

#[test]
fn client_messages_keep_their_bytes() {
    check(&[
        (ClientMsg::Heartbeat, "00"),
        (
            ClientMsg::Login {
                id: 1,
                user: "u".into(),
                password: "p".into(),
            },
            "010101750170",
        ),
        (ClientMsg::Logout { id: 2 }, "0202"),
        (
            ClientMsg::ListGroups {
                id: 3,
                for_registration: true,
            },
            "030301",
        ),
        (ClientMsg::ListDestinations { id: 4 }, "0404"),
        (
            ClientMsg::BeginDistribution {
                id: 5,
                request: BeginDistribution {
                    dist: dist(),
                    groups: vec!["g".into()],
                    destinations: vec!["a.b".into()],
                    pages: vec![page()],
                },
            },
            "050510070707070707070707070707070707070101670103612e620105702e706e67ac02",
        ),
        (
            ClientMsg::PageData {
                upload: 5,
                page: 1,
                offset: 300,
                data: Bytes::from_static(b"xy"),
            },
            "060501ac02027879",
        ),
        (ClientMsg::CommitDistribution { id: 6, upload: 5 }, "070605"),
        (ClientMsg::AbortDistribution { upload: 5 }, "0805"),
        (
            ClientMsg::DeliveryAck {
                delivery: DeliveryId(9),
                outcome: DeliveryOutcome::Refused("r".into()),
            },
            "0909020172",
        ),
        (
            ClientMsg::Register {
                id: 7,
                group: "g".into(),
            },
            "0a070167",
        ),
        (
            ClientMsg::Withdraw {
                id: 8,
                group: "g".into(),
            },
            "0b080167",
        ),
        (ClientMsg::GroupProblems { id: 9 }, "0c09"),
        (
            ClientMsg::WatchDistribution {
                id: 10,
                dist: dist(),
            },
            "0d0a1007070707070707070707070707070707",
        ),
        (
            ClientMsg::AdminRegister {
                id: 11,
                group: "g".into(),
                domain: "a.b".into(),
            },
            "0e0b016703612e62",
        ),
        (
            ClientMsg::AdminWithdraw {
                id: 12,
                group: "g".into(),
                domain: "a.b".into(),
            },
            "0f0c016703612e62",
        ),
        (ClientMsg::ListDevices { id: 13 }, "100d"),
        (
            ClientMsg::RevokeDevice {
                id: 14,
                domain: "a.b".into(),
            },
            "110e03612e62",
        ),
        (ClientMsg::FailedLogins { id: 15, last: 20 }, "120f14"),
        // Version 2.
        (ClientMsg::Memberships { id: 16 }, "1310"),
    ]);
}

#[test]
fn server_messages_keep_their_bytes() {
    let status = DestinationStatus {
        destination: dest(),
        state: DeliveryState::Failed("f".into()),
    };
    check(&[
        (ServerMsg::Heartbeat, "00"),
        (ServerMsg::Ok { id: 1 }, "0101"),
        (
            ServerMsg::Error {
                id: Some(2),
                error: ErrorInfo {
                    code: ErrorCode::Internal,
                    field: Some("f".into()),
                    message: "m".into(),
                },
            },
            "0201020f010166016d",
        ),
        (
            ServerMsg::LoggedIn {
                id: 3,
                user: "u".into(),
                role: Role::Admin,
            },
            "0303017501",
        ),
        (
            ServerMsg::Groups {
                id: 4,
                groups: vec![GroupEntry {
                    name: "G".into(),
                    file: "g.rec".into(),
                    members: 2,
                }],
            },
            "040401014705672e72656302",
        ),
        (
            ServerMsg::Destinations {
                id: 5,
                destinations: vec![dest()],
            },
            "05050103612e62014e",
        ),
        (ServerMsg::UploadReady { id: 6 }, "0606"),
        (
            ServerMsg::Accepted {
                id: 7,
                accepted: Accepted {
                    dist: dist(),
                    destinations: vec![dest()],
                    duplicate: false,
                },
            },
            "070710070707070707070707070707070707070103612e62014e00",
        ),
        (
            ServerMsg::Registered {
                id: 8,
                group: "g".into(),
                outcome: RegisterOutcome::AlreadyMember,
            },
            "0808016701",
        ),
        (
            ServerMsg::Withdrawn {
                id: 9,
                group: "g".into(),
                outcome: WithdrawOutcome::NotMember,
            },
            "0909016701",
        ),
        (
            ServerMsg::Problems {
                id: 10,
                problems: vec!["x.rec:1: y".into()],
            },
            "0a0a010a782e7265633a313a2079",
        ),
        (
            ServerMsg::DistributionStatus {
                id: 11,
                dist: dist(),
                destinations: vec![status.clone()],
            },
            "0b0b10070707070707070707070707070707070103612e62014e040166",
        ),
        (
            ServerMsg::Progress {
                dist: dist(),
                status: status.clone(),
            },
            "0c100707070707070707070707070707070703612e62014e040166",
        ),
        (
            ServerMsg::DistributionDone {
                dist: dist(),
                results: vec![status],
            },
            "0d10070707070707070707070707070707070103612e62014e040166",
        ),
        (
            ServerMsg::Deliver(Deliver {
                delivery: DeliveryId(3),
                dist: dist(),
                sender: dest(),
                user: "u".into(),
                accepted_at_ms: 1_700_000_000_000,
                pages: vec![page()],
                print: true,
            }),
            "0e03100707070707070707070707070707070703612e62014e017580d095ffbc310105702e706e67ac0201",
        ),
        (
            ServerMsg::DeliverData {
                delivery: DeliveryId(3),
                page: 0,
                offset: 0,
                data: Bytes::from_static(b"z"),
            },
            "0f030000017a",
        ),
        (
            ServerMsg::DeliverEnd {
                delivery: DeliveryId(3),
            },
            "1003",
        ),
        (ServerMsg::Notice { text: "n".into() }, "11016e"),
        (
            ServerMsg::Devices {
                id: 12,
                devices: vec![DeviceInfo {
                    domain: "a.b".into(),
                    name: "N".into(),
                    kind: DeviceKind::FaxGateway,
                    revoked: false,
                    online: true,
                }],
            },
            "120c0103612e62014e030001",
        ),
        (
            ServerMsg::FailedLogins {
                id: 13,
                entries: vec![FailedLogin {
                    at_ms: 5,
                    device: "a.b".into(),
                    user: "u".into(),
                    peer: "127.0.0.1:9".into(),
                }],
            },
            "130d010503612e6201750b3132372e302e302e313a39",
        ),
        // Version 2.
        (
            ServerMsg::Memberships {
                id: 14,
                groups: vec!["G".into()],
            },
            "140e010147",
        ),
    ]);
}

/// Every message of version 1 says so; a later message never goes to a version-1 terminal.
#[test]
fn messages_name_the_version_that_brought_them() {
    assert_eq!(ServerMsg::Heartbeat.since(), 1);
    assert_eq!(
        ServerMsg::Memberships {
            id: 1,
            groups: vec![]
        }
        .since(),
        2
    );
    assert_eq!(ErrorCode::Internal.since(), 1);
}

/// Version 2: the relay's messages (seed 004), numbered after `Memberships`.
#[test]
fn relay_messages_keep_their_bytes() {
    check(&[
        (ClientMsg::Who { id: 17 }, "1411"),
        (ClientMsg::RelayListen { id: 18 }, "1512"),
        (
            ClientMsg::Demand {
                id: 19,
                target: RelayTarget::Device("a.b".into()),
                window: 300,
            },
            "16130003612e62ac02",
        ),
        (
            ClientMsg::Demand {
                id: 19,
                target: RelayTarget::User("u".into()),
                window: 300,
            },
            "1613010175ac02",
        ),
        (
            ClientMsg::Answer {
                id: 20,
                demand: 3,
                accept: false,
                reason: "r".into(),
                window: 300,
            },
            "171403000172ac02",
        ),
        (
            ClientMsg::RelayData {
                session: 4,
                data: Bytes::from_static(b"xy"),
            },
            "1804027879",
        ),
        (
            ClientMsg::RelayCredit {
                session: 4,
                bytes: 300,
            },
            "1904ac02",
        ),
        (ClientMsg::RelayEof { session: 4 }, "1a04"),
        (
            ClientMsg::RelayEnd {
                session: 4,
                reason: "r".into(),
            },
            "1b040172",
        ),
        (ClientMsg::DeviceLogout { id: 21 }, "1c15"),
        (ClientMsg::ListSessions { id: 22 }, "1d16"),
        (
            ClientMsg::EndSession {
                id: 23,
                session: 4,
                reason: "r".into(),
            },
            "1e17040172",
        ),
    ]);
    check(&[
        (
            ServerMsg::Who {
                id: 17,
                terminals: vec![Presence {
                    domain: "a.b".into(),
                    name: "N".into(),
                    users: vec!["u".into()],
                    in_session: true,
                    takes_demands: true,
                    older: false,
                }],
            },
            "15110103612e62014e010175010100",
        ),
        (
            ServerMsg::Demanded {
                demand: 3,
                from: dest(),
                user: "u".into(),
                expires_ms: 30_000,
            },
            "160303612e62014e0175b0ea01",
        ),
        (
            ServerMsg::DemandWithdrawn {
                demand: 3,
                reason: "r".into(),
            },
            "17030172",
        ),
        (
            ServerMsg::SessionOpen {
                id: 19,
                session: 4,
                peer: dest(),
                peer_user: "u".into(),
                credit: 300,
            },
            "18130403612e62014e0175ac02",
        ),
        (
            ServerMsg::RelayData {
                session: 4,
                data: Bytes::from_static(b"xy"),
            },
            "1904027879",
        ),
        (
            ServerMsg::RelayCredit {
                session: 4,
                bytes: 300,
            },
            "1a04ac02",
        ),
        (ServerMsg::RelayEof { session: 4 }, "1b04"),
        (
            ServerMsg::SessionEnded {
                session: 4,
                reason: "r".into(),
            },
            "1c040172",
        ),
        (ServerMsg::LoggedOut { reason: "r".into() }, "1d0172"),
        (
            ServerMsg::Sessions {
                id: 22,
                sessions: vec![SessionInfo {
                    session: 4,
                    demander: dest(),
                    demander_user: "u".into(),
                    target: dest(),
                    target_user: "".into(),
                    started_ms: 5,
                    bytes_to_target: 6,
                    bytes_to_demander: 7,
                }],
            },
            "1e16010403612e62014e017503612e62014e00050607",
        ),
    ]);
    let codes = [
        ErrorCode::NotOnline,
        ErrorCode::Busy,
        ErrorCode::Rejected,
        ErrorCode::Expired,
        ErrorCode::OlderTerminal,
        ErrorCode::UnknownSession,
    ];
    check(
        &codes
            .iter()
            .zip(["10", "11", "12", "13", "14", "15"])
            .map(|(c, h)| (*c, h))
            .collect::<Vec<_>>(),
    );
    for c in codes {
        assert_eq!(c.since(), 2, "{c:?}");
    }
    assert_eq!(ClientMsg::Who { id: 1 }.since(), 2);
    assert_eq!(ClientMsg::Who { id: 1 }.request_id(), Some(1));
    assert_eq!(ClientMsg::RelayEof { session: 1 }.request_id(), None);
    assert_eq!(ServerMsg::RelayEof { session: 1 }.since(), 2);
}

#[test]
fn fax_messages_keep_their_bytes() {
    use imagecast_shared::fax::{
        CallStage, FaxEvent, FaxFile, FaxGatewayInfo, FaxJob, FaxNumberStatus, FaxRecordInfo,
        FaxRequest, FaxResult,
    };
    let file = || FaxFile {
        name: "p.png".into(),
        data: Bytes::from_static(b"ab"),
    };
    let status = FaxNumberStatus {
        job: "j".into(),
        number: "5".into(),
        state: "sent".into(),
        done: true,
        gateway: "g".into(),
        pages_sent: 2,
        pages_total: 2,
        dials: 1,
        detail: "d".into(),
    };
    let record = FaxRecordInfo {
        seq: 1,
        at_ms: 2,
        direction: "send".into(),
        job: "j".into(),
        user: "u".into(),
        terminal: "t".into(),
        gateway: "g".into(),
        number: "5".into(),
        station: "S".into(),
        pages: 2,
        duration_ms: 3,
        coding: "MH".into(),
        speed: 4,
        result: "sent".into(),
        reason: "".into(),
    };
    check(&[
        (
            ClientMsg::Fax(FaxRequest::Gateway {
                id: 1,
                number: "5".into(),
                station: "S".into(),
                lines: 2,
            }),
            "1f00010135015302",
        ),
        (
            ClientMsg::Fax(FaxRequest::Send {
                id: 2,
                job: "j".into(),
                numbers: vec!["5".into()],
                books: vec!["B".into()],
                fine: true,
                files: vec![file()],
            }),
            "1f0102016a010135010142010105702e706e67026162",
        ),
        (
            ClientMsg::Fax(FaxRequest::Progress {
                job: "j".into(),
                number: "5".into(),
                attempt: 1,
                stage: CallStage::Sending { page: 1, of: 2 },
            }),
            "1f02016a013501020102",
        ),
        (
            ClientMsg::Fax(FaxRequest::Progress {
                job: "j".into(),
                number: "5".into(),
                attempt: 1,
                stage: CallStage::Connected {
                    station: "S".into(),
                },
            }),
            "1f02016a013501010153",
        ),
        (
            ClientMsg::Fax(FaxRequest::Result {
                id: 3,
                result: FaxResult {
                    job: "j".into(),
                    number: "5".into(),
                    attempt: 1,
                    outcome: "sent".into(),
                    station: "S".into(),
                    pages_confirmed: 2,
                    pages_total: 2,
                    next_page: 3,
                    coding: "MH".into(),
                    ecm: false,
                    speed: 4,
                    duration_ms: 5,
                    reason: "".into(),
                },
            }),
            "1f0303016a0135010473656e740153020203024d4800040500",
        ),
        (
            ClientMsg::Fax(FaxRequest::Status {
                id: 4,
                job: "j".into(),
            }),
            "1f0404016a",
        ),
        (ClientMsg::Fax(FaxRequest::Gateways { id: 5 }), "1f0505"),
        (
            ClientMsg::Fax(FaxRequest::Records { id: 6, last: 7 }),
            "1f060607",
        ),
    ]);
    check(&[
        (
            ServerMsg::Fax(FaxEvent::Accepted {
                id: 1,
                job: "j".into(),
                numbers: vec!["5".into()],
                duplicate: false,
            }),
            "1f0001016a01013500",
        ),
        (
            ServerMsg::Fax(FaxEvent::Job(FaxJob {
                job: "j".into(),
                attempt: 1,
                number: "5".into(),
                fine: false,
                first_page: 2,
                files: vec![file()],
            })),
            "1f01016a01013500020105702e706e67026162",
        ),
        (
            ServerMsg::Fax(FaxEvent::Progress(status.clone())),
            "1f02016a01350473656e740101670202010164",
        ),
        (
            ServerMsg::Fax(FaxEvent::Record(record.clone())),
            "1f0302040473656e64016a017501740167013501530203024d48040473656e7400",
        ),
        (
            ServerMsg::Fax(FaxEvent::Status {
                id: 2,
                numbers: vec![status],
            }),
            "1f040201016a01350473656e740101670202010164",
        ),
        (
            ServerMsg::Fax(FaxEvent::Gateways {
                id: 3,
                gateways: vec![FaxGatewayInfo {
                    domain: "g".into(),
                    online: true,
                    lines: 2,
                    in_use: 1,
                    number: "5".into(),
                }],
            }),
            "1f05030101670102010135",
        ),
        (
            ServerMsg::Fax(FaxEvent::Records {
                id: 4,
                records: vec![record],
            }),
            "1f06040102040473656e64016a017501740167013501530203024d48040473656e7400",
        ),
    ]);
    let req = ClientMsg::Fax(FaxRequest::Gateways { id: 9 });
    assert_eq!(req.since(), 2);
    assert_eq!(req.request_id(), Some(9));
    let progress = ClientMsg::Fax(FaxRequest::Progress {
        job: "j".into(),
        number: "5".into(),
        attempt: 1,
        stage: CallStage::Dialling,
    });
    assert_eq!(progress.request_id(), None);
    let ev = ServerMsg::Fax(FaxEvent::Gateways {
        id: 8,
        gateways: vec![],
    });
    assert_eq!(ev.since(), 2);
    assert_eq!(ev.reply_to(), Some(8));
}

#[test]
fn fax_reception_and_settings_messages_keep_their_bytes() {
    use imagecast_shared::fax::{
        FaxEvent, FaxIncoming, FaxReception, FaxRecordInfo, FaxRequest, FaxSettings,
    };
    let settings = FaxSettings {
        gateway: "g".into(),
        version: 2,
        applied_version: 1,
        values: vec![("lines".into(), "2".into())],
    };
    let record = FaxRecordInfo {
        seq: 1,
        at_ms: 2,
        direction: "receive".into(),
        job: "".into(),
        user: "u".into(),
        terminal: "t".into(),
        gateway: "g".into(),
        number: "5".into(),
        station: "S".into(),
        pages: 2,
        duration_ms: 3,
        coding: "MH".into(),
        speed: 4,
        result: "received".into(),
        reason: "".into(),
    };
    check(&[
        (
            ClientMsg::Fax(FaxRequest::Chunk {
                id: 7,
                upload: "r".into(),
                offset: 1,
                total: 3,
                data: Bytes::from_static(b"ab"),
            }),
            "1f070701720103026162",
        ),
        (
            ClientMsg::Fax(FaxRequest::Received {
                id: 8,
                fax: FaxReception {
                    reception: "r".into(),
                    caller: "5".into(),
                    called: "6".into(),
                    station: "S".into(),
                    pages: 2,
                    coding: "G4".into(),
                    ecm: true,
                    speed: 4,
                    duration_ms: 5,
                    at_ms: 6,
                    reason: "".into(),
                    bytes: 7,
                },
            }),
            "1f08080172013501360153020247340104050c0007",
        ),
        (
            ClientMsg::Fax(FaxRequest::SettingsApplied {
                id: 9,
                version: 2,
                stored_only: vec!["tagline".into()],
            }),
            "1f09090401077461676c696e65",
        ),
        (
            ClientMsg::Fax(FaxRequest::SettingsShow {
                id: 10,
                gateway: "g".into(),
            }),
            "1f0a0a0167",
        ),
        (
            ClientMsg::Fax(FaxRequest::SettingsSet {
                id: 11,
                gateway: "g".into(),
                assignments: vec!["lines=2".into()],
            }),
            "1f0b0b016701076c696e65733d32",
        ),
    ]);
    check(&[
        (
            ServerMsg::Fax(FaxEvent::ReceivedStored {
                id: 1,
                reception: "r".into(),
                duplicate: true,
            }),
            "1f0701017201",
        ),
        (
            ServerMsg::Fax(FaxEvent::Incoming(FaxIncoming {
                dist: dist(),
                called: "6".into(),
                record,
            })),
            "1f08100707070707070707070707070707070701360204077265636569766500017501740167013501530203024d480408726563656976656400",
        ),
        (
            ServerMsg::Fax(FaxEvent::Settings(settings.clone())),
            "1f090167040201056c696e65730132",
        ),
        (
            ServerMsg::Fax(FaxEvent::SettingsInfo { id: 2, settings }),
            "1f0a020167040201056c696e65730132",
        ),
    ]);
    let req = ClientMsg::Fax(FaxRequest::SettingsShow {
        id: 3,
        gateway: "g".into(),
    });
    assert_eq!(req.since(), 2);
    assert_eq!(req.request_id(), Some(3));
    let ev = ServerMsg::Fax(FaxEvent::ReceivedStored {
        id: 4,
        reception: "r".into(),
        duplicate: false,
    });
    assert_eq!(ev.since(), 2);
    assert_eq!(ev.reply_to(), Some(4));
}

#[test]
fn fax_jobs_in_parts_keep_their_bytes() {
    use imagecast_shared::fax::{FaxEvent, FaxFile, FaxJob, FaxRequest, FaxUpload};
    check(&[
        (
            ClientMsg::Fax(FaxRequest::SendUploaded {
                id: 12,
                job: "j".into(),
                numbers: vec!["5".into()],
                books: vec![],
                fine: false,
                files: vec![FaxUpload {
                    name: "p.png".into(),
                    upload: "j-0".into(),
                    bytes: 2,
                }],
            }),
            "1f0c0c016a01013500000105702e706e67036a2d3002",
        ),
        (
            ClientMsg::Fax(FaxRequest::JobPart {
                id: 13,
                job: "j".into(),
                file: 1,
                offset: 2,
            }),
            "1f0d0d016a0102",
        ),
    ]);
    check(&[
        (
            ServerMsg::Fax(FaxEvent::JobByParts {
                job: FaxJob {
                    job: "j".into(),
                    attempt: 1,
                    number: "5".into(),
                    fine: false,
                    first_page: 1,
                    files: vec![FaxFile {
                        name: "p.png".into(),
                        data: Bytes::new(),
                    }],
                },
                sizes: vec![2],
            }),
            "1f0b016a01013500010105702e706e67000102",
        ),
        (
            ServerMsg::Fax(FaxEvent::JobPart {
                id: 3,
                data: Bytes::from_static(b"ab"),
            }),
            "1f0c03026162",
        ),
    ]);
    let req = ClientMsg::Fax(FaxRequest::JobPart {
        id: 4,
        job: "j".into(),
        file: 0,
        offset: 0,
    });
    assert_eq!((req.since(), req.request_id()), (2, Some(4)));
    let ev = ServerMsg::Fax(FaxEvent::JobPart {
        id: 5,
        data: Bytes::new(),
    });
    assert_eq!((ev.since(), ev.reply_to()), (2, Some(5)));
}

#[test]
fn fax_phone_book_messages_keep_their_bytes() {
    use imagecast_shared::fax::{FaxBookEntry, FaxEvent, FaxRequest};
    check(&[(ClientMsg::Fax(FaxRequest::PhoneBook { id: 14 }), "1f0e0e")]);
    check(&[(
        ServerMsg::Fax(FaxEvent::PhoneBook {
            id: 15,
            entries: vec![
                FaxBookEntry {
                    name: "A".into(),
                    number: "1".into(),
                    shared: true,
                    labels: vec![],
                },
                FaxBookEntry {
                    name: "B".into(),
                    number: "2".into(),
                    shared: false,
                    labels: vec!["user 1001".into()],
                },
            ],
        }),
        "1f0d0f0201410131010001420132000109757365722031303031",
    )]);
    let req = ClientMsg::Fax(FaxRequest::PhoneBook { id: 16 });
    assert_eq!(req.since(), 2);
    assert_eq!(req.request_id(), Some(16));
    let ev = ServerMsg::Fax(FaxEvent::PhoneBook {
        id: 17,
        entries: vec![],
    });
    assert_eq!(ev.since(), 2);
    assert_eq!(ev.reply_to(), Some(17));
}

#[test]
fn fax_supervisor_settings_messages_keep_their_bytes() {
    use imagecast_shared::fax::{FaxEvent, FaxRequest};
    check(&[
        (
            ClientMsg::Fax(FaxRequest::SupervisorShow { id: 18 }),
            "1f0f12",
        ),
        (
            ClientMsg::Fax(FaxRequest::SupervisorSet {
                id: 19,
                file: "a".into(),
                version: "v".into(),
            }),
            "1f101301610176",
        ),
    ]);
    check(&[(
        ServerMsg::Fax(FaxEvent::Supervisor {
            id: 20,
            file: "a".into(),
            version: "v".into(),
        }),
        "1f0e1401610176",
    )]);
    let req = ClientMsg::Fax(FaxRequest::SupervisorShow { id: 21 });
    assert_eq!(req.since(), 2);
    assert_eq!(req.request_id(), Some(21));
    let ev = ServerMsg::Fax(FaxEvent::Supervisor {
        id: 22,
        file: String::new(),
        version: String::new(),
    });
    assert_eq!(ev.since(), 2);
    assert_eq!(ev.reply_to(), Some(22));
}
