//! Authentication limits: throttled and recorded failed logins, revocation, password changes,
//! and what an operator may not do.

use std::time::{Duration, Instant};

use imagecast_shared::client::Event;
use imagecast_shared::msg::{ErrorCode, RefusalCode, RegisterOutcome};
use imagecast_tests::{PASSWORD, TestServer, USER, run};

use crate::LIMIT;

const ADMIN: (&str, &str) = ("9000", "9000");

/// True when the connection closes within 10 s.
pub(crate) async fn wait_closed(events: &mut imagecast_shared::client::Events) -> bool {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.recv().await {
            if let Event::Closed(_) = e {
                return true;
            }
        }
        true
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_down_are_recorded_and_visible_to_an_admin_only() {
    let server = TestServer::start_demo().unwrap();
    let (client, _e) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    let login_error = |password: &'static str| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let err = client.login(USER, password).await.unwrap_err();
            // Nothing sleeps: refused or not, the answer comes at once.
            assert!(started.elapsed() < Duration::from_secs(2));
            let err = err.server_error().unwrap().clone();
            assert_eq!(err.code, ErrorCode::BadLogin, "{err}");
            err.message
        }
    };
    for _ in 0..3 {
        assert_eq!(login_error("0000").await, "wrong user ID or password");
    }
    // After three free failures the key is blocked for 250 ms, then 500 ms, doubling; an
    // attempt within the block is refused without a check, the right password too.
    let throttled = "too many failed logins; try again in 1 s";
    assert_eq!(login_error("0000").await, throttled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(login_error("0000").await, "wrong user ID or password");
    assert_eq!(login_error(PASSWORD).await, throttled);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // A success clears the key.
    client.login(USER, PASSWORD).await.unwrap();
    let err = client.failed_logins(10).await.unwrap_err();
    assert_eq!(err.server_error().unwrap().code, ErrorCode::Forbidden);
    assert!(
        err.to_string().contains("user 1001 is an operator"),
        "{err}"
    );

    let (admin, _e) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    admin.login(ADMIN.0, ADMIN.1).await.unwrap();
    let failures = admin.failed_logins(100).await.unwrap();
    assert_eq!(
        failures.len(),
        4,
        "refused attempts are not checked, nor recorded"
    );
    assert!(
        failures
            .iter()
            .all(|f| f.user == USER && f.device == "sale2.hqs.mei.co.jp")
    );
    let cli = server.admin_run(&["logins"]);
    assert_eq!(cli.stdout.lines().count(), 4, "{}", cli.stdout);
    assert!(
        cli.stdout.contains(" sale2.hqs.mei.co.jp 1001 127.0.0.1:"),
        "{}",
        cli.stdout
    );
    client.close().await;
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_dropped_at_once_and_refused_until_reissued() {
    let server = TestServer::start_demo().unwrap();
    let (client, mut events) = server.connect("sale1.ngy.mei.co.jp", true).await.unwrap();
    let out = run(
        server
            .admin()
            .args(["device", "revoke", "--data-dir"])
            .arg(server.data_dir())
            .arg("sale1.ngy.mei.co.jp"),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
    assert!(
        wait_closed(&mut events).await,
        "the live connection is dropped"
    );
    drop(client);
    let refused = server
        .connect("sale1.ngy.mei.co.jp", true)
        .await
        .unwrap_err();
    match refused.downcast_ref::<imagecast_shared::client::ClientError>() {
        Some(imagecast_shared::client::ClientError::Refused(r)) => {
            assert_eq!(r.code, RefusalCode::Revoked);
            assert!(r.message.contains("was revoked"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    let out = run(
        server
            .admin()
            .args(["device", "token", "--data-dir"])
            .arg(server.data_dir())
            .arg("sale1.ngy.mei.co.jp"),
        LIMIT,
    )
    .unwrap();
    let mut cfg = server.config("sale1.ngy.mei.co.jp", false);
    cfg.token = out.stdout.trim().to_owned();
    let (c, _e) = imagecast_shared::client::Client::connect(&cfg)
        .await
        .unwrap();
    c.close().await;

    // An admin can revoke over the protocol too; an operator cannot.
    let (op, _e) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    op.login(USER, PASSWORD).await.unwrap();
    let err = op.revoke_device("sale1.fko.mei.co.jp").await.unwrap_err();
    assert_eq!(err.server_error().unwrap().code, ErrorCode::Forbidden);
    let (victim, mut victim_events) = server.connect("sale1.fko.mei.co.jp", true).await.unwrap();
    let (admin, _e) = server.connect("plan1.osk.mei.co.jp", false).await.unwrap();
    admin.login(ADMIN.0, ADMIN.1).await.unwrap();
    admin.revoke_device("sale1.fko.mei.co.jp").await.unwrap();
    assert!(wait_closed(&mut victim_events).await);
    drop(victim);
    let devices = admin.devices().await.unwrap();
    let fko = devices
        .iter()
        .find(|d| d.domain == "sale1.fko.mei.co.jp")
        .unwrap();
    assert!(fko.revoked && !fko.online);
    op.close().await;
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changes_and_removal_end_sessions() {
    let server = TestServer::start_demo().unwrap();
    let (client, mut events) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    client.login("1002", "5678").await.unwrap();
    let mut cmd = server.admin();
    cmd.args(["user", "passwd", "--data-dir"])
        .arg(server.data_dir())
        .args(["1002", "--password-stdin"])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"2468\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(wait_closed(&mut events).await, "the session ends");
    let (c, _e) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    assert!(c.login("1002", "5678").await.is_err());
    c.login("1002", "2468").await.unwrap();
    let out = run(
        server
            .admin()
            .args(["user", "remove", "--data-dir"])
            .arg(server.data_dir())
            .arg("1002"),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
    let (c2, _e) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    assert_eq!(
        c2.login("1002", "2468")
            .await
            .unwrap_err()
            .server_error()
            .unwrap()
            .code,
        ErrorCode::BadLogin
    );
    c2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cannot_manage_other_terminals_an_admin_can() {
    let server = TestServer::start_demo().unwrap();
    let group = "product development-related places";
    let (op, _e) = server.connect("sale1.hqs.mei.co.jp", false).await.unwrap();
    op.login(USER, PASSWORD).await.unwrap();
    for err in [
        op.admin_register(group, "devl1.osk.mei.co.jp")
            .await
            .unwrap_err(),
        op.admin_withdraw(group, "devl1.hqs.mei.co.jp")
            .await
            .unwrap_err(),
        op.devices().await.unwrap_err(),
    ] {
        assert_eq!(
            err.server_error().unwrap().code,
            ErrorCode::Forbidden,
            "{err}"
        );
    }
    let before = std::fs::read_to_string(server.group_file("develop.rec")).unwrap();
    assert!(!before.contains("devl1.osk"));
    let (admin, _e) = server.connect("sale1.hqs.mei.co.jp", false).await.unwrap();
    admin.login(ADMIN.0, ADMIN.1).await.unwrap();
    assert_eq!(
        admin
            .admin_register(group, "devl1.osk.mei.co.jp")
            .await
            .unwrap(),
        RegisterOutcome::Added
    );
    let after = std::fs::read_to_string(server.group_file("develop.rec")).unwrap();
    assert!(after.ends_with("devl1.osk.mei.co.jp;development department, the Osaka branch\n"));
    assert_eq!(admin.devices().await.unwrap().len(), 9);
    op.close().await;
    admin.close().await;
}
