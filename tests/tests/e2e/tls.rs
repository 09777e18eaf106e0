//! TLS by default, the server's certificate pinned on first use, and plain TCP only when both
//! sides ask for it.

use imagecast_shared::client::{Client, ClientError};
use imagecast_shared::tls::TlsSettings;
use imagecast_tests::{Scratch, TestServer, run};

use crate::LIMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_is_remembered_and_a_changed_certificate_is_refused_by_name() {
    let mut server = TestServer::start_demo().unwrap();
    let first = server.fingerprint.clone().unwrap();
    let work = Scratch::new();
    let known = work.join("known_servers");
    let mut cfg = server.config("plan1.hqs.mei.co.jp", false);
    cfg.tls = Some(TlsSettings::known_servers(&known));
    let (c, _e) = Client::connect(&cfg).await.unwrap();
    c.close().await;
    let remembered = std::fs::read_to_string(&known).unwrap();
    assert_eq!(remembered, format!("{} {first}\n", server.addr));

    // The CLI trusts on first use too (known_servers in its config folder).
    let cli = |server: &TestServer| {
        let mut c = server.imagecast("plan1.hqs.mei.co.jp");
        c.env_remove("IMAGECAST_SERVER_FINGERPRINT")
            .env("IMAGECAST_KNOWN_SERVERS", work.join("cli_known"))
            .arg("groups");
        c
    };
    assert_eq!(run(&mut cli(&server), LIMIT).unwrap().code, 0);

    // The administrator replaces the certificate.
    server.kill9();
    let out = server.admin_run(&["tls", "create"]);
    let second = out.stdout.trim().to_owned();
    assert!(second.starts_with("SHA256:") && second != first, "{second}");
    server.restart().unwrap();

    let err = Client::connect(&cfg).await.unwrap_err();
    match &err {
        ClientError::ServerChanged { expected, seen, .. } => {
            assert_eq!((expected, seen), (&first, &second));
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&first) && text.contains(&second), "{text}");
    assert!(text.contains(&known.display().to_string()), "{text}");
    let out = run(&mut cli(&server), LIMIT).unwrap();
    out.assert_error(&second);
    out.assert_error("is pinned");

    // Handed the new fingerprint in advance, a terminal connects.
    cfg.tls = Some(TlsSettings::pinned(&second));
    let (c, _e) = Client::connect(&cfg).await.unwrap();
    c.close().await;
    let fp = server.admin_run(&["fingerprint"]);
    assert_eq!(fp.stdout.trim(), second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_needs_both_sides_to_ask_for_it() {
    let tls_server = TestServer::start_demo().unwrap();
    let mut plain_cfg = tls_server.config("plan1.hqs.mei.co.jp", false);
    plain_cfg.tls = None;
    plain_cfg.connect_timeout = std::time::Duration::from_secs(3);
    assert!(
        Client::connect(&plain_cfg).await.is_err(),
        "a plain client gets nowhere"
    );

    let plain = TestServer::start_demo_with(&["--heartbeat-ms", "1000", "--plain"]).unwrap();
    assert!(plain.fingerprint.is_none());
    let mut tls_cfg = plain.config("plan1.hqs.mei.co.jp", false);
    tls_cfg.tls = Some(TlsSettings::known_servers(
        tempfile::tempdir().unwrap().path().join("k"),
    ));
    tls_cfg.connect_timeout = std::time::Duration::from_secs(3);
    let err = Client::connect(&tls_cfg).await.unwrap_err();
    assert!(err.to_string().contains("without --plain"), "{err}");
    let (c, _e) = plain.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    assert_eq!(c.groups(false).await.unwrap().len(), 4);
    c.close().await;
    let out = run(
        plain.imagecast("plan1.hqs.mei.co.jp").arg("destinations"),
        LIMIT,
    )
    .unwrap();
    out.assert_code(0);
}
