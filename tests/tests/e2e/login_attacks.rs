//! Attacks by a terminal with a valid device token (issue 6, items 2, 3, 5 and 11): locking a
//! user out, holding every connection slot with throttled logins, racing the throttle with
//! concurrent logins, keeping a connection after its token was reissued, and finding out
//! device names before authenticating.

use std::time::{Duration, Instant};

use imagecast_shared::client::{Client, ClientError};
use imagecast_shared::msg::{ErrorCode, RefusalCode};
use imagecast_tests::{PASSWORD, TestServer, USER, run};

use crate::LIMIT;
use crate::auth::wait_closed;

/// The attacker's terminal.
const ATTACKER: &str = "sale2.hqs.mei.co.jp";
/// The real user's terminal.
const VICTIM: &str = "sale1.hqs.mei.co.jp";

/// The answer to a wrong password that was checked.
const WRONG: &str = "wrong user ID or password";

/// The error message of a login that must fail.
async fn login_error(client: &Client, password: &str) -> String {
    let err = client.login(USER, password).await.unwrap_err();
    let info = err.server_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(info.code, ErrorCode::BadLogin, "{info}");
    info.message.clone()
}

/// Wrong passwords for [`USER`] from `client`, one after the other without waiting, until
/// the throttle refuses one. Returns the refusal.
async fn fail_until_refused(client: &Client) -> String {
    for _ in 0..20 {
        let message = login_error(client, "0000").await;
        if message != WRONG {
            return message;
        }
    }
    panic!("twenty wrong passwords in a row were all checked");
}

/// Connects `domain` with a short connect timeout (a server with every slot taken does not
/// answer the handshake).
async fn connect_quickly(server: &TestServer, domain: &str) -> Result<Client, ClientError> {
    let mut cfg = server.config(domain, false);
    cfg.connect_timeout = Duration::from_secs(1);
    Client::connect(&cfg).await.map(|(c, _events)| c)
}

/// Sends a login for [`USER`] from a new connection of `domain` and hangs up without
/// waiting for the answer.
async fn abandoned_login(server: &TestServer, domain: &str) {
    let (client, _events) = server.connect(domain, false).await.unwrap();
    tokio::select! {
        _ = client.login(USER, "0000") => {}
        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
    }
    // Sends what was queued (the login), then closes.
    client.close().await;
}

/// Item 2: twelve wrong passwords and twenty abandoned logins from one terminal throttled the
/// real user for ten minutes on every terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_terminals_failures_and_abandoned_logins_do_not_lock_the_user_out() {
    let server = TestServer::start_demo().unwrap();
    let (attacker, _e) = server.connect(ATTACKER, false).await.unwrap();
    let started = Instant::now();
    let mut checked = 0;
    for _ in 0..12 {
        let message = login_error(&attacker, "0000").await;
        if message == WRONG {
            checked += 1;
        } else {
            assert!(message.starts_with("too many"), "{message}");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refusals come at once: {:?}",
        started.elapsed()
    );
    assert!(checked <= 5, "{checked} passwords checked in a row");
    let abandoned: Vec<_> = (0..20)
        .map(|_| abandoned_login(&server, ATTACKER))
        .collect();
    for a in abandoned {
        a.await;
    }
    // The real user, on another terminal, at once.
    let started = Instant::now();
    let (victim, _e) = server.connect(VICTIM, false).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), victim.login(USER, PASSWORD))
        .await
        .expect("the real user is not throttled")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The attacker's own wait did not grow with the abandoned attempts.
    let message = login_error(&attacker, "0000").await;
    if message != WRONG {
        let secs: u64 = message
            .trim_start_matches("too many failed logins; try again in ")
            .trim_end_matches(" s")
            .parse()
            .unwrap_or_else(|_| panic!("{message}"));
        assert!(secs <= 2, "{message}");
    }
    victim.close().await;
    attacker.close().await;
}

/// Item 2: throttled logins held their connection slots for minutes, `device revoke` said it
/// dropped connections that stayed, and the shutdown waited for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_logins_hold_no_slot_and_revoke_and_shutdown_close_at_once() {
    const SLOTS: usize = 6;
    let slots = SLOTS.to_string();
    let mut server =
        TestServer::start_demo_with(&["--heartbeat-ms", "1000", "--max-connections", &slots])
            .unwrap();
    let (attacker, _e) = server.connect(ATTACKER, false).await.unwrap();
    fail_until_refused(&attacker).await;
    attacker.close().await;

    // Every slot taken by a throttled login that is abandoned: the slots come back at once.
    let abandoned: Vec<_> = (0..SLOTS)
        .map(|_| abandoned_login(&server, ATTACKER))
        .collect();
    for a in abandoned {
        a.await;
    }
    let started = Instant::now();
    let victim = loop {
        match connect_quickly(&server, VICTIM).await {
            Ok(c) => break c,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(3),
                "no slot for a real terminal: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    victim.login(USER, PASSWORD).await.unwrap();
    victim.close().await;

    // Every slot held by the attacker's terminal with a throttled login: a revocation frees
    // them all within the watcher's second.
    let mut held = Vec::new();
    for _ in 0..SLOTS {
        let (client, events) = server.connect(ATTACKER, false).await.unwrap();
        let _ = client.login(USER, "0000").await;
        held.push((client, events));
    }
    let out = run(
        server
            .admin()
            .args(["device", "revoke", "--data-dir"])
            .arg(server.data_dir())
            .arg(ATTACKER),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
    for (_, events) in &mut held {
        assert!(
            tokio::time::timeout(Duration::from_secs(4), wait_closed(events))
                .await
                .unwrap_or(false),
            "a revoked terminal's connection stays"
        );
    }
    drop(held);
    let victim = connect_quickly(&server, VICTIM).await;
    let victim = match victim {
        Ok(v) => v,
        Err(_) => {
            // The server may not have seen the sockets close yet.
            tokio::time::sleep(Duration::from_millis(500)).await;
            connect_quickly(&server, VICTIM).await.unwrap()
        }
    };

    // A shutdown with throttled logins on other connections closes them all in time.
    let (other, _e) = server.connect("plan1.osk.mei.co.jp", false).await.unwrap();
    fail_until_refused(&other).await;
    let _ = other.login(USER, "0000").await;
    assert!(server.terminate(), "{}", server.log_text());
    assert!(
        !server.log_text().contains("did not close in time"),
        "{}",
        server.log_text()
    );
    drop((victim, other));
}

/// Item 3: forty passwords sent at once from one terminal were all checked (the throttle
/// ignored attempts in flight), and the right one logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_sent_at_once_do_not_skip_the_throttle() {
    const AT_ONCE: usize = 40;
    let server = TestServer::start_demo().unwrap();
    let mut clients = Vec::new();
    for _ in 0..AT_ONCE {
        clients.push(server.connect(ATTACKER, false).await.unwrap());
    }
    // The right password last: the throttle must have refused it along with the others.
    let answers = clients.iter().enumerate().map(|(i, (c, _))| {
        let password = if i + 1 == AT_ONCE { PASSWORD } else { "0000" };
        let c = c.clone();
        tokio::spawn(async move { c.login(USER, password).await })
    });
    let answers: Vec<_> = answers.collect();
    let mut checked = 0;
    let mut refused = 0;
    for a in answers {
        match a.await.unwrap() {
            Ok(_) => checked += 1,
            Err(e) => {
                let info = e.server_error().unwrap_or_else(|| panic!("{e}"));
                assert_eq!(info.code, ErrorCode::BadLogin);
                if info.message == WRONG {
                    checked += 1;
                } else {
                    assert!(info.message.contains("try again in"), "{info}");
                    refused += 1;
                }
            }
        }
    }
    // Three free attempts per terminal and user, however they arrive.
    assert!(checked <= 3, "{checked} passwords checked at once");
    assert_eq!(checked + refused, AT_ONCE);
    for (c, _) in clients {
        c.close().await;
    }
}

/// Item 5: a connection opened with a token that was then reissued kept receiving images.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_token_drops_the_old_tokens_connections_only() {
    const DEVICE: &str = "sale1.ngy.mei.co.jp";
    let server = TestServer::start_demo().unwrap();
    let (old, mut old_events) = server.connect(DEVICE, true).await.unwrap();
    let out = run(
        server
            .admin()
            .args(["device", "token", "--data-dir"])
            .arg(server.data_dir())
            .arg(DEVICE),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
    // Right after the reissue, a connection with the new token.
    let mut cfg = server.config(DEVICE, false);
    cfg.token = out.stdout.trim().to_owned();
    let (new, _new_events) = Client::connect(&cfg).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(4), wait_closed(&mut old_events))
            .await
            .unwrap_or(false),
        "the old token's connection is dropped"
    );
    // The watcher has applied the reissue by now; the new token's connection stays.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    new.groups(false).await.unwrap();
    assert!(!new.is_closed());
    // The old token no longer connects.
    match server
        .connect(DEVICE, false)
        .await
        .unwrap_err()
        .downcast_ref::<ClientError>()
    {
        Some(ClientError::Refused(r)) => assert_eq!(r.code, RefusalCode::BadToken),
        other => panic!("{other:?}"),
    }
    drop(old);
    new.close().await;
}

/// Item 11: an unknown device and a wrong token got different refusals, so device names
/// could be found out without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_devices_and_wrong_tokens_get_the_same_refusal() {
    let server = TestServer::start_demo().unwrap();
    let refusal = |domain: &'static str| {
        let mut cfg = server.config(domain, false);
        cfg.token = "0".repeat(64);
        async move {
            match Client::connect(&cfg).await {
                Err(ClientError::Refused(r)) => (r.code, r.message.replace(domain, "DEVICE")),
                other => panic!("{domain}: {other:?}"),
            }
        }
    };
    let unknown = refusal("nobody.example").await;
    let wrong = refusal("plan1.hqs.mei.co.jp").await;
    assert_eq!(unknown, wrong);
    assert_eq!(unknown.0, RefusalCode::BadToken);
    // The server's log still tells them apart.
    let log = server.log_text();
    assert!(log.contains("hello from an unknown device"), "{log}");
    assert!(log.contains("hello with a wrong device token"), "{log}");
}
