//! Store and forward, and crashes: nothing accepted is lost, nothing is stored twice.

use std::time::Duration;

use imagecast_shared::DistributionId;
use imagecast_shared::client::{DistributionRequest, OutgoingPage};
use imagecast_tests::{PASSWORD, Receiver, Scratch, TestServer, USER};

use crate::LIMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_terminal_receives_when_it_connects() {
    let server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let page = work.image("notice.png", "for whoever is offline");
    let out = server.send_and_wait("plan1.hqs.mei.co.jp", "devl1.osk.mei.co.jp", &page, 1);
    out.assert_code(4);
    assert!(
        out.stdout.contains("devl1.osk.mei.co.jp: queued"),
        "{}",
        out.stdout
    );
    let dist: DistributionId = out.stdout.lines().next().unwrap().parse().unwrap();

    // The sender follows the distribution from a new connection.
    let (sender, mut events) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    let status = sender.watch(dist).await.unwrap();
    assert!(!status[0].state.is_final());

    let rx = server
        .receiver("devl1.osk.mei.co.jp", &work.join("osk"))
        .await;
    assert!(rx.wait_for(1, LIMIT).await);
    assert_eq!(rx.files(), ["notice.png"]);
    let done = tokio::time::timeout(LIMIT, async {
        while let Some(e) = events.recv().await {
            if let imagecast_shared::client::Event::Done { dist: d, results } = e {
                return Some((d, results));
            }
        }
        None
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(done.0, dist);
    assert_eq!(
        done.1[0].state,
        imagecast_shared::msg::DeliveryState::Printed
    );
    rx.stop().await;
    sender.close().await;
}

async fn send_pages(server: &TestServer, to: &str, dist: DistributionId, body: &[u8]) {
    let (client, _events) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    let accepted = client
        .distribute(&DistributionRequest {
            dist,
            groups: vec![],
            destinations: vec![to.into()],
            pages: vec![OutgoingPage::from_bytes("page.tif", body.to_vec())],
        })
        .await
        .unwrap();
    assert!(!accepted.duplicate);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_accepted_loses_nothing_and_stores_nothing_twice() {
    let mut server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let mut sent = Vec::new();
    for i in 0..3u8 {
        let dist = DistributionId::new_random();
        let body: Vec<u8> = (0..300_000u32)
            .map(|k| (k as u8).wrapping_mul(i + 1))
            .collect();
        send_pages(&server, "sale1.ngy.mei.co.jp", dist, &body).await;
        sent.push((dist, body));
    }
    server.kill9();
    server.restart().unwrap();

    let rx = server
        .receiver("sale1.ngy.mei.co.jp", &work.join("ngy"))
        .await;
    assert!(rx.wait_for(3, LIMIT).await, "got {}", rx.count());
    let got = rx.received.lock().unwrap().clone();
    for (dist, body) in &sent {
        let r = got
            .iter()
            .find(|r| r.dist == *dist)
            .expect("every distribution arrives");
        assert!(!r.duplicate);
        assert_eq!(&std::fs::read(&r.files[0]).unwrap(), body);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 3, "nothing more arrives");
    rx.stop().await;

    // A retry of an accepted distribution is recognised, not made twice.
    let (client, _e) = server.connect("plan1.hqs.mei.co.jp", false).await.unwrap();
    client.login(USER, PASSWORD).await.unwrap();
    let again = client
        .distribute(&DistributionRequest {
            dist: sent[0].0,
            groups: vec![],
            destinations: vec!["sale1.ngy.mei.co.jp".into()],
            pages: vec![OutgoingPage::from_bytes("page.tif", sent[0].1.clone())],
        })
        .await
        .unwrap();
    assert!(again.duplicate);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_a_lost_acknowledgement_is_not_stored_twice() {
    let mut server = TestServer::start_demo().unwrap();
    let work = Scratch::new();
    let dir = work.join("fko");
    // This terminal stores but "crashes" before its acknowledgement reaches the server.
    let silent = Receiver::start(&server, "sale1.fko.mei.co.jp", &dir, false)
        .await
        .unwrap();
    let dist = DistributionId::new_random();
    send_pages(&server, "sale1.fko.mei.co.jp", dist, b"only once, please").await;
    assert!(silent.wait_for(1, LIMIT).await);
    silent.stop().await;
    server.kill9();
    server.restart().unwrap();

    let rx = server.receiver("sale1.fko.mei.co.jp", &dir).await;
    assert!(rx.wait_for(1, LIMIT).await, "the delivery comes again");
    assert!(
        rx.received.lock().unwrap()[0].duplicate,
        "and is recognised"
    );
    assert_eq!(rx.files(), ["page.tif"], "stored once");
    rx.stop().await;

    let journal = server.admin_run(&["journal"]);
    assert_eq!(journal.stdout.lines().count(), 1, "{}", journal.stdout);
    assert!(journal.stdout.contains(&dist.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly_and_it_comes_back() {
    let mut server = TestServer::start_demo().unwrap();
    let (client, mut events) = server.connect("sale2.hqs.mei.co.jp", true).await.unwrap();
    assert!(
        server.terminate(),
        "exit status 0 on SIGTERM; log:\n{}",
        server.log_text()
    );
    let mut notice = false;
    let closed = tokio::time::timeout(LIMIT, async {
        while let Some(e) = events.recv().await {
            match e {
                imagecast_shared::client::Event::Notice(t) if t.contains("shutting down") => {
                    notice = true
                }
                imagecast_shared::client::Event::Closed(_) => return true,
                _ => {}
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(closed && notice, "the terminal is told and disconnected");
    drop(client);
    server.restart().unwrap();
    let (c, _e) = server.connect("sale2.hqs.mei.co.jp", false).await.unwrap();
    assert_eq!(c.groups(false).await.unwrap().len(), 4);
    c.close().await;
}
