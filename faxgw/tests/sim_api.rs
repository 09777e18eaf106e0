//! The simulated network through the library API a gateway uses: resume from a page, incoming
//! calls with the caller and station, busy lines, faults, the time scale, and a hostile peer.

use std::time::{Duration, Instant};

use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::page::{FAX_WIDTH, FaxPage, Resolution};
use imagecast_faxgw::sim::{
    CallProgress, CallResult, Capabilities, DialOptions, Exchange, Fault, Line, Reception, SimError,
};
use tokio::io::AsyncWriteExt;

fn pages(n: u32) -> Vec<FaxPage> {
    (0..n)
        .map(|k| {
            let mut page = FaxPage::white(Resolution::Standard, 120 + k);
            for y in (k..page.rows).step_by(3) {
                for x in (0..FAX_WIDTH).filter(|x| (x + y * (k + 1)) % 13 < 4) {
                    page.set(x, y, true);
                }
            }
            page
        })
        .collect()
}

fn exchange(dir: &tempfile::TempDir) -> Exchange {
    Exchange::open(dir.path())
        .expect("test set-up")
        .with_ring_time(Duration::from_millis(300))
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fs")
        .tempdir_in("/tmp")
        .expect("test set-up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_resumes_at_a_page_and_the_receiver_sees_caller_and_station() {
    let dir = scratch();
    let ex = exchange(&dir);
    let gateway = Line::register(&ex, "300", "GATEWAY ONE", Capabilities::default(), 2)
        .await
        .unwrap();
    let customer = Line::register(&ex, "301", "CUSTOMER", Capabilities::default(), 1)
        .await
        .unwrap();
    let doc = pages(3);
    let (progress, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let options = DialOptions {
        first_page: 2,
        progress: Some(progress),
    };
    let outcome = customer.dial("300", &doc, &options).await.unwrap();
    drop(options);
    let mut seen = Vec::new();
    while let Some(step) = steps.recv().await {
        seen.push(step);
    }
    assert_eq!(
        seen,
        [
            CallProgress::Dialling,
            CallProgress::Connected {
                remote_station: "GATEWAY ONE".into(),
                coding: Coding::G4,
                ecm: true
            },
            CallProgress::SendingPage { page: 2, of: 3 },
            CallProgress::PageConfirmed { page: 2 },
            CallProgress::SendingPage { page: 3, of: 3 },
            CallProgress::PageConfirmed { page: 3 },
        ]
    );
    assert_eq!(outcome.bit_rate, Some(14_400));
    assert_eq!(outcome.result, CallResult::Sent);
    assert_eq!(outcome.pages_confirmed, 2);
    assert_eq!(outcome.next_page, 4);
    assert_eq!(outcome.remote_station.as_deref(), Some("GATEWAY ONE"));
    assert_eq!(outcome.coding, Some(Coding::G4));
    assert!(outcome.ecm);

    let call = tokio::time::timeout(Duration::from_secs(10), gateway.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.caller, "301");
    assert_eq!(call.called, "300");
    assert_eq!(call.remote_station, "CUSTOMER");
    assert_eq!(call.reception, Reception::Complete);
    assert_eq!(call.pages, doc[1..]);

    // Local mistakes are errors, not call results.
    let err = customer.dial("300", &doc, &DialOptions::from_page(4)).await;
    assert!(
        matches!(err, Err(SimError::NoPages { first: 4, pages: 3 })),
        "{err:?}"
    );
    let err = customer.dial("30/0", &doc, &DialOptions::default()).await;
    assert!(matches!(err, Err(SimError::InvalidNumber(_))), "{err:?}");
    let taken = Line::register(&ex, "300", "AGAIN", Capabilities::default(), 1).await;
    assert!(matches!(taken, Err(SimError::NumberTaken(_))), "{taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_whose_lines_are_all_in_use_is_busy() {
    let dir = scratch();
    let ex = exchange(&dir);
    // Calls from the slow caller take 0.05 × 6 s of handshake at least.
    let slow_ex = ex.clone().with_time_scale(0.05);
    let callee = Line::register(&ex, "310", "ONE LINE", Capabilities::default(), 1)
        .await
        .unwrap();
    let slow = Line::register(&slow_ex, "311", "SLOW", Capabilities::default(), 1)
        .await
        .unwrap();
    let other = Line::register(&ex, "312", "OTHER", Capabilities::default(), 1)
        .await
        .unwrap();
    let doc = pages(2);
    let started = Instant::now();
    let options = DialOptions::default();
    let slow_call = slow.dial("310", &doc, &options);
    let second = async {
        // Wait (bounded) until the slow call holds the callee's only line.
        let deadline = Instant::now() + Duration::from_secs(5);
        while callee.lines_in_use() == 0 {
            assert!(Instant::now() < deadline, "the slow call never connected");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let busy = other
            .dial("310", &doc, &DialOptions::default())
            .await
            .unwrap();
        // The callee's only line is taken, so it cannot dial out either.
        let no_line = callee.dial("312", &doc, &DialOptions::default()).await;
        (busy, no_line)
    };
    let (slow_outcome, (busy, no_line)) = tokio::join!(slow_call, second);
    assert_eq!(slow_outcome.unwrap().result, CallResult::Sent);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the time scale did not slow the call"
    );
    assert_eq!(busy.result, CallResult::Busy);
    assert!(busy.remote_station.is_none());
    assert!(
        matches!(no_line, Err(SimError::NoFreeLine(1))),
        "{no_line:?}"
    );
    // Once the call is reported, its line is free again.
    let received = tokio::time::timeout(Duration::from_secs(10), callee.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((received.caller.as_str(), received.pages.len()), ("311", 2));
    assert_eq!((callee.lines(), callee.lines_in_use()), (1, 0));
    let calls = ex.calls().unwrap();
    let results: Vec<_> = calls
        .iter()
        .map(|c| (c.caller.as_str(), c.result.as_str()))
        .collect();
    assert!(
        results.contains(&("312", "busy")) && results.contains(&("311", "sent")),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_through_the_api_and_g4_only_with_ecm_at_both_ends() {
    let dir = scratch();
    let ex = exchange(&dir);
    let no_ecm = Capabilities {
        ecm: false,
        ..Capabilities::default()
    };
    let receiver = Line::register(&ex, "320", "PLAIN G3", no_ecm, 1)
        .await
        .unwrap();
    let sender = Line::register(&ex, "321", "SENDER", Capabilities::default(), 1)
        .await
        .unwrap();
    let doc = pages(3);
    ex.set_fault(
        "320",
        Fault::PageError {
            page: 3,
            times: None,
        },
    )
    .unwrap();
    let outcome = sender
        .dial("320", &doc, &DialOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.coding, Some(Coding::Mh));
    assert!(!outcome.ecm);
    match &outcome.result {
        CallResult::PageError { page, reason } => {
            assert_eq!(*page, 3);
            assert!(reason.contains("lines good"), "{reason}");
        }
        other => panic!("expected a page error, got {other:?}"),
    }
    assert_eq!((outcome.pages_confirmed, outcome.next_page), (2, 3));
    let call = receiver.accept().await.unwrap();
    assert!(matches!(
        call.reception,
        Reception::PageRejected { page: 3, .. }
    ));
    assert_eq!(call.pages, doc[..2]);

    // The retry resumes at page 3 and goes through: the fault was for one call.
    let retry = sender
        .dial("320", &doc, &DialOptions::from_page(outcome.next_page))
        .await
        .unwrap();
    assert_eq!(retry.result, CallResult::Sent);
    assert_eq!(receiver.accept().await.unwrap().pages, doc[2..]);
    assert!(ex.faults("320").unwrap().is_empty());
}

/// Writes a postcard string: a varint length and the bytes.
fn postcard_str(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 128);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_caller_cannot_stop_the_line_and_its_station_id_is_made_safe() {
    let dir = scratch();
    let ex = exchange(&dir);
    let line = Line::register(&ex, "330", "TARGET", Capabilities::default(), 1)
        .await
        .unwrap();
    let socket = dir.path().join("lines/330/sock");

    // A frame claiming 4 GiB, then garbage: the connection is dropped, nothing is allocated.
    let mut junk = tokio::net::UnixStream::connect(&socket).await.unwrap();
    junk.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    drop(junk);

    // A call whose station ID is long and full of escapes, that sends no page and hangs up.
    let mut msg = vec![0u8]; // CallerMsg::Call
    postcard_str(&mut msg, b"339");
    postcard_str(&mut msg, b"330");
    postcard_str(
        &mut msg,
        "\u{1b}]0;pwned\u{7}\nFORGED LINE AND MORE TEXT".as_bytes(),
    );
    msg.extend_from_slice(&[1, 1, 1]); // capabilities
    let mut hostile = tokio::net::UnixStream::connect(&socket).await.unwrap();
    hostile
        .write_all(&(msg.len() as u32).to_be_bytes())
        .await
        .unwrap();
    hostile.write_all(&msg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(hostile);
    let call = tokio::time::timeout(Duration::from_secs(10), line.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.caller, "339");
    assert!(call.remote_station.len() <= 20);
    assert!(
        call.remote_station
            .chars()
            .all(|c| (' '..='~').contains(&c)),
        "{:?}",
        call.remote_station
    );
    assert!(matches!(call.reception, Reception::Dropped(_)));
    assert!(call.pages.is_empty());

    // The line still answers real calls.
    let sender = Line::register(&ex, "331", "FRIEND", Capabilities::default(), 1)
        .await
        .unwrap();
    let outcome = sender
        .dial("330", &pages(1), &DialOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.result, CallResult::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_with_two_lines_takes_two_calls_at_once_and_a_third_is_busy() {
    let dir = scratch();
    let ex = exchange(&dir);
    let slow_ex = ex.clone().with_time_scale(0.05);
    let gateway = Line::register(&ex, "340", "TWO LINES", Capabilities::default(), 2)
        .await
        .unwrap();
    let a = Line::register(&slow_ex, "341", "A", Capabilities::default(), 1)
        .await
        .unwrap();
    let b = Line::register(&slow_ex, "342", "B", Capabilities::default(), 1)
        .await
        .unwrap();
    let c = Line::register(&ex, "343", "C", Capabilities::default(), 1)
        .await
        .unwrap();
    let doc = pages(2);
    let options = DialOptions::default();
    let third = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        while gateway.lines_in_use() < 2 {
            assert!(
                Instant::now() < deadline,
                "the two calls never connected together"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c.dial("340", &doc, &options).await.unwrap()
    };
    let (ra, rb, rc) = tokio::join!(
        a.dial("340", &doc, &options),
        b.dial("340", &doc, &options),
        third
    );
    assert_eq!(ra.unwrap().result, CallResult::Sent);
    assert_eq!(rb.unwrap().result, CallResult::Sent);
    assert_eq!(rc.result, CallResult::Busy);
    let mut callers = Vec::new();
    for _ in 0..2 {
        let call = tokio::time::timeout(Duration::from_secs(10), gateway.accept())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.pages, doc);
        callers.push(call.caller);
    }
    callers.sort();
    assert_eq!(callers, ["341", "342"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_is_owner_only_and_pushed_settings_change_a_held_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    let ex = Exchange::open(&dir.path().join("ex"))
        .expect("exchange")
        .with_ring_time(Duration::from_millis(300));
    let gateway = Line::register(&ex, "400", "OLD NAME", Capabilities::default(), 1)
        .await
        .unwrap();
    let customer = Line::register(&ex, "401", "CUSTOMER", Capabilities::default(), 1)
        .await
        .unwrap();
    // Settings pushed to a gateway: a new station ID and no G4 take effect on the next call.
    gateway.set_station("NEW NAME").unwrap();
    assert!(gateway.set_station("\u{1b}bad").is_err());
    gateway.set_capabilities(Capabilities {
        g4: false,
        ..Capabilities::default()
    });
    gateway.set_lines(2);
    assert_eq!(gateway.lines(), 2);
    let outcome = customer
        .dial("400", &pages(1), &DialOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.result, CallResult::Sent);
    assert_eq!(outcome.remote_station.as_deref(), Some("NEW NAME"));
    assert_eq!(outcome.coding, Some(Coding::Mh));
    let call = gateway.accept().await.unwrap();
    assert_eq!(call.remote_station, "CUSTOMER");
    // Numbers, station IDs and the call log are nobody else's business.
    for p in [
        "ex",
        "ex/lines",
        "ex/faults",
        "ex/lines/400",
        "ex/lines/400/holder",
        "ex/exchange.lock",
        "ex/calls.log",
    ] {
        let mode = std::fs::metadata(dir.path().join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{p} is mode {:o}", mode & 0o777);
    }
}
