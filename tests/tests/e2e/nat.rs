//! A real NAT (issue 13, "Relay across NAT"): two private networks in network namespaces, each
//! behind its own masquerading nftables router, and the server on the public side between
//! them ([`NatLab`], the topology in `docs/nat-test.md`). These tests need root, as CI has;
//! without it, or without `ip`/`nft`, they fail and say so (they never skip).
//!
//! Run them alone: `cargo build --workspace --bins && cargo test -p imagecast-tests --test e2e
//! nat::` (as root).

use std::time::{Duration, Instant};

use imagecast_tests::netns::{
    Connect, NAT_A_LAN, NAT_A_PUBLIC, NAT_B_LAN, NAT_B_PUBLIC, NatLab, Netns, SRV_ADDR, Spawned,
    TERM_A_ADDR, TERM_B_ADDR,
};
use imagecast_tests::{Scratch, TestServer, multipage_tiff, run};

use crate::LIMIT;

/// Terminal A (the sender) and terminal B (the receiver), demo devices.
const DEVICE_A: &str = "plan1.hqs.mei.co.jp";
const DEVICE_B: &str = "sale1.osk.mei.co.jp";

/// How long a connection attempt that a NAT drops is given before it counts as failed.
const PROBE: Duration = Duration::from_millis(1500);

/// The topology, or a panic that says why it could not be built (not root, no `nft`, ...).
fn lab() -> NatLab {
    NatLab::build().unwrap_or_else(|e| panic!("cannot build the NAT test network: {e:#}"))
}

/// A connection from `from` to `addr` that must not open.
#[track_caller]
fn assert_blocked(from: &Netns, addr: &str, what: &str) {
    let started = Instant::now();
    let got = from.connect(addr, PROBE).expect("the probe runs");
    eprintln!("{what}: {got:?}");
    assert!(
        !got.is_connected(),
        "{what}: {} opened a connection to {addr} ({got:?})",
        from.name()
    );
    assert!(
        started.elapsed() < PROBE + Duration::from_secs(10),
        "{what}: the attempt was not bounded"
    );
}

/// A connection from `from` to `addr` that must open; returns the local address it used.
#[track_caller]
fn assert_opens(from: &Netns, addr: &str, what: &str) -> String {
    match from
        .connect(addr, Duration::from_secs(5))
        .expect("the probe runs")
    {
        Connect::Connected { local } => local,
        other => panic!("{what}: {} -> {addr}: {other:?}", from.name()),
    }
}

/// The two terminals cannot open a connection to each other, neither to the private address
/// nor to the other router's public one, even when the public side routes the private
/// networks to the routers; a host on the public side cannot either. Each terminal still
/// reaches the server, which sees the connection come from the terminal's router (masquerade).
/// The listeners are shown to be up by their own side reaching them, and the same attempt
/// succeeds once nat-b's rules are flushed, so it is the NAT that stops it.
#[test]
fn terminals_behind_two_nats_cannot_open_a_connection_to_each_other() {
    let lab = lab();
    // The worst case for the NATs: every packet finds a route, only the firewalls stop it.
    lab.route_private_networks().unwrap();
    let on_b = lab
        .term_b
        .listen(&format!("{TERM_B_ADDR}:7000"), true)
        .unwrap();
    let on_a = lab
        .term_a
        .listen(&format!("{TERM_A_ADDR}:7000"), true)
        .unwrap();
    let router_b = lab.nat_b.listen("0.0.0.0:7000", false).unwrap();
    let router_a = lab.nat_a.listen("0.0.0.0:7000", false).unwrap();
    let server = lab.srv.listen(&format!("{SRV_ADDR}:7000"), true).unwrap();

    // The listeners are up: each is reached from its own private network.
    assert_opens(&lab.nat_b, &on_b.addr, "term-b's listener from its router");
    assert_opens(&lab.nat_a, &on_a.addr, "term-a's listener from its router");
    assert_opens(
        &lab.term_b,
        &format!("{NAT_B_LAN}:7000"),
        "nat-b from its LAN",
    );
    assert_opens(
        &lab.term_a,
        &format!("{NAT_A_LAN}:7000"),
        "nat-a from its LAN",
    );

    // Neither terminal reaches the other, nor the other's router from outside; nor does a
    // host on the public side (the server's), with a route to the private network. The
    // attempts run side by side, each bounded by PROBE.
    let (nat_a_public, nat_b_public) = (
        format!("{NAT_A_PUBLIC}:7000"),
        format!("{NAT_B_PUBLIC}:7000"),
    );
    let attempts = [
        (
            &lab.term_a,
            &on_b.addr,
            "term-a to term-b's private address",
        ),
        (
            &lab.term_a,
            &nat_b_public,
            "term-a to nat-b's public address",
        ),
        (
            &lab.term_b,
            &on_a.addr,
            "term-b to term-a's private address",
        ),
        (
            &lab.term_b,
            &nat_a_public,
            "term-b to nat-a's public address",
        ),
        (&lab.srv, &on_b.addr, "the server's host to term-b"),
        (&lab.srv, &nat_b_public, "the server's host to nat-b"),
    ];
    std::thread::scope(|s| {
        for (from, addr, what) in attempts {
            s.spawn(move || assert_blocked(from, addr, what));
        }
    });

    // Only the routers' own connections reached the terminals' listeners.
    let peers_b = on_b.accepted();
    assert_eq!(peers_b.len(), 1, "term-b accepted {peers_b:?}");
    assert!(
        peers_b[0].starts_with(&format!("{NAT_B_LAN}:")),
        "{peers_b:?}"
    );
    let peers_a = on_a.accepted();
    assert_eq!(peers_a.len(), 1, "term-a accepted {peers_a:?}");
    assert!(
        peers_a[0].starts_with(&format!("{NAT_A_LAN}:")),
        "{peers_a:?}"
    );
    // And the routers' listeners only heard their own terminal.
    for (router, term) in [(&router_a, TERM_A_ADDR), (&router_b, TERM_B_ADDR)] {
        let peers = router.accepted();
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert!(peers[0].starts_with(&format!("{term}:")), "{peers:?}");
    }

    // Outbound works: each terminal opens a connection to the server from its private
    // address, and the server sees the router's public address instead.
    let from_a = assert_opens(&lab.term_a, &server.addr, "term-a to the server");
    let from_b = assert_opens(&lab.term_b, &server.addr, "term-b to the server");
    assert!(from_a.starts_with(&format!("{TERM_A_ADDR}:")), "{from_a}");
    assert!(from_b.starts_with(&format!("{TERM_B_ADDR}:")), "{from_b}");
    let seen = server.wait_accepted(2, LIMIT);
    assert_eq!(seen.len(), 2, "the server accepted {seen:?}");
    assert!(seen[0].starts_with(&format!("{NAT_A_PUBLIC}:")), "{seen:?}");
    assert!(seen[1].starts_with(&format!("{NAT_B_PUBLIC}:")), "{seen:?}");

    // The control: with nat-b's rules gone (a plain router, routes to both private networks
    // in place) term-a does reach term-b, from nat-a's public address. So what blocked it
    // above was the NAT, not the test's own wiring.
    lab.nat_b.nft("flush ruleset").unwrap();
    assert_opens(
        &lab.term_a,
        &on_b.addr,
        "term-a to term-b through an open router",
    );
    let peers_b = on_b.wait_accepted(2, LIMIT);
    assert_eq!(peers_b.len(), 2, "term-b accepted {peers_b:?}");
    assert!(
        peers_b[1].starts_with(&format!("{NAT_A_PUBLIC}:")),
        "{peers_b:?}"
    );
}

/// Waits (at most [`LIMIT`]) for the server's log to say `device` connected from `peer_ip`
/// (the log line "terminal connected conn=.. peer=IP:PORT device=.."); returns the log.
fn wait_connected_from(server: &TestServer, device: &str, peer_ip: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let log = server.log_text();
        let found = log.lines().any(|l| {
            l.contains("terminal connected")
                && l.contains(&format!("peer={peer_ip}:"))
                && l.contains(&format!("device={device}"))
        });
        if found {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{device} did not connect from {peer_ip}; the server's log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Store and forward across both NATs with the real binaries: `imagecast receive` in term-b
/// keeps its outbound connection through nat-b, `imagecast send --to` in term-a goes out
/// through nat-a, and the server pushes the pages down term-b's connection; both files arrive
/// byte-identical. The server only ever saw the routers' public addresses.
#[test]
fn store_and_forward_crosses_both_nats_byte_identical() {
    let lab = lab();
    let server = TestServer::start_demo_in(
        &lab.srv,
        &format!("{SRV_ADDR}:0"),
        &["--heartbeat-ms", "1000"],
    )
    .unwrap();
    assert!(
        server.addr.starts_with(&format!("{SRV_ADDR}:")),
        "{}",
        server.addr
    );
    let work = Scratch::new();
    let tray = work.join("tray");
    let png = work.image("memo.png", "across two NATs");
    let tiff_bytes = multipage_tiff(&work.join("plan.tiff"), 3, 64, 48).unwrap();

    let mut receive = server.imagecast_in(&lab.term_b, DEVICE_B);
    receive
        .args(["receive", "--count", "1", "--out"])
        .arg(&tray);
    let receiver = Spawned::start(&mut receive).unwrap();
    wait_connected_from(&server, DEVICE_B, NAT_B_PUBLIC);

    let mut send = server.imagecast_in(&lab.term_a, DEVICE_A);
    send.args(["send", "--to", DEVICE_B, "--wait", "--timeout", "30"])
        .arg(&png)
        .arg(work.join("plan.tiff"));
    let sent = run(&mut send, LIMIT).unwrap();
    sent.assert_code(0);
    // A PC stores what it receives: "delivered" (a panel would say "printed").
    assert!(
        sent.stdout.contains(&format!("{DEVICE_B}: delivered")),
        "{}",
        sent.stdout
    );

    let got = receiver.finish(LIMIT).unwrap();
    got.assert_code(0);
    assert_eq!(
        std::fs::read(tray.join("memo.png")).unwrap(),
        std::fs::read(&png).unwrap(),
        "the PNG page changed on the way; receive said: {}",
        got.stdout
    );
    assert_eq!(
        std::fs::read(tray.join("plan.tiff")).unwrap(),
        tiff_bytes,
        "the TIFF changed on the way; receive said: {}",
        got.stdout
    );

    let log = wait_connected_from(&server, DEVICE_A, NAT_A_PUBLIC);
    assert!(
        !log.contains("peer=198.19."),
        "the server saw a private address:\n{log}"
    );
}

/// `relay send --to-device` from term-a to term-b, retried (bounded) until term-b's listener
/// takes demands; returns its output.
fn relay_send(
    server: &TestServer,
    lab: &NatLab,
    files: &[&std::path::Path],
) -> imagecast_tests::Output {
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut send = server.imagecast_in(&lab.term_a, DEVICE_A);
        send.args(["relay", "send", "--to-device", DEVICE_B])
            .args(files);
        let out = run(&mut send, LIMIT).expect("relay send runs");
        let waiting = out.stderr.contains("takes no connection demands");
        if !waiting || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real-time session across both NATs (seed 004): neither terminal can open a connection
/// to the other, yet `relay send` from term-a reaches `relay listen` in term-b through the
/// server, each file stored byte-identical and confirmed page by page; then a byte stream
/// (`relay pipe` into `relay listen --forward` to an echo service that only term-b can reach)
/// comes back whole.
#[test]
fn a_relay_session_joins_terminals_behind_two_nats() {
    let lab = lab();
    let echo = lab
        .term_b
        .listen("127.0.0.1:7000", true)
        .expect("an echo service in term-b");
    assert_blocked(
        &lab.term_a,
        &format!("{TERM_B_ADDR}:7000"),
        "term-a -> term-b",
    );
    assert_blocked(
        &lab.term_a,
        &format!("{NAT_B_PUBLIC}:7000"),
        "term-a -> nat-b",
    );
    let server = TestServer::start_demo_in(
        &lab.srv,
        &format!("{SRV_ADDR}:0"),
        &["--heartbeat-ms", "1000"],
    )
    .expect("the server starts in srv");
    let work = Scratch::new();
    let tray = work.join("tray");
    let png = work.image("memo.png", "relayed across two NATs");
    let tiff = work.join("plan.tiff");
    let tiff_bytes = multipage_tiff(&tiff, 3, 64, 48).expect("a TIFF");

    let mut listen = server.imagecast_in(&lab.term_b, DEVICE_B);
    listen
        .args(["relay", "listen", "--accept-all", "--out"])
        .arg(&tray);
    let listener = Spawned::start(&mut listen).expect("relay listen starts");
    wait_connected_from(&server, DEVICE_B, NAT_B_PUBLIC);
    let sent = relay_send(&server, &lab, &[&png, &tiff]);
    sent.assert_code(0);
    assert!(
        sent.stdout
            .contains(&format!("connection demand to {DEVICE_B}: accepted")),
        "{}",
        sent.stdout
    );
    assert!(
        sent.stdout
            .contains(&format!("page 2/2 printed by {DEVICE_B}")),
        "{}",
        sent.stdout
    );
    assert_eq!(
        std::fs::read(tray.join("memo.png")).expect("the PNG arrived"),
        std::fs::read(&png).expect("the PNG"),
    );
    assert_eq!(
        std::fs::read(tray.join("plan.tiff")).expect("the TIFF arrived"),
        tiff_bytes,
        "a multi-page TIFF travels as one file"
    );
    drop(listener);

    // A byte stream through the relay into a service only term-b can reach.
    let mut forward = server.imagecast_in(&lab.term_b, DEVICE_B);
    forward.args([
        "relay",
        "listen",
        "--accept-all",
        "--forward",
        "127.0.0.1:7000",
    ]);
    let _forwarder = Spawned::start(&mut forward).expect("relay listen --forward starts");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let deadline = Instant::now() + LIMIT;
    let echoed = loop {
        let mut pipe = server.imagecast_in(&lab.term_a, DEVICE_A);
        pipe.args(["relay", "pipe", "--to-device", DEVICE_B])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = pipe.spawn().expect("relay pipe starts");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = payload.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data);
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx
            .recv_timeout(LIMIT)
            .expect("relay pipe ends in time")
            .expect("relay pipe's output");
        let _ = writer.join();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() || !stderr.contains("takes no connection demands") {
            assert!(out.status.success(), "relay pipe: {stderr}");
            break out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "the forwarder never listened: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(echoed.len(), payload.len(), "every byte came back");
    assert!(echoed == payload, "the bytes came back unchanged");
    // The echo service saw the forwarder inside term-b, never a peer from outside.
    assert!(
        echo.accepted()
            .iter()
            .all(|peer| peer.starts_with("127.0.0.1:")),
        "{:?}",
        echo.accepted()
    );
}
