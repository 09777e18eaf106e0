//! The panel's app against a real server (the demo network's embedded one), driven by
//! scripts headless: receiving and printing, and stored images by ID; and the job runner
//! logging the user in again after a reconnect.
#![cfg(feature = "demo")]

use std::time::Duration;

use imagecast::demo::{DemoNetwork, DemoOptions};
use imagecast::panel::{PanelOptions, Script, Theme, run_headless};
use imagecast::store::ImageStore;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, DistributionRequest, OutgoingPage};

const LOGIN: &str = "type 1001\npress tab\ntype 1234\npress start\nexpect \"Select a mode\"\n";

fn options(net: &DemoNetwork, script: &str) -> PanelOptions {
    PanelOptions {
        client: net.panel_client_config(),
        dirs: net.panel_dirs(),
        demo: true,
        kiosk: false,
        script: Some(Script::parse(script).expect("the script parses")),
        headless: true,
        size: (80, 24),
        record: None,
        theme: Theme::plain(),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("bounded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_prints_what_it_receives_and_previews_it() {
    let root = tempfile::tempdir().unwrap();
    let net = DemoNetwork::start(DemoOptions::new(root.path()))
        .await
        .unwrap();
    let script = format!(
        "{LOGIN}expect \"Received 1\" within 30s\npress received\nexpect \"from planning department of the head office\"\npress start\nexpect \"memo.png p.1 (1/1)\"\nexpect \"From planning department of the head office\"\npress reset reset\nexpect \"Select a mode\"\n"
    );
    let opts = options(&net, &script);
    // PC 160 sends a page to MFP 120 while the panel runs.
    let pc = net.terminal("plan1.hqs.mei.co.jp").unwrap();
    let cfg = net.client_config(pc.domain(), pc.token(), false);
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 90, |x, y| {
        image::Luma([if (x / 8 + y / 8) % 2 == 0 { 0 } else { 255 }])
    }))
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
    .unwrap();
    let sent = png.clone();
    let sender = async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (client, _events) = Client::connect(&cfg).await.unwrap();
        client.login("1002", "5678").await.unwrap();
        client
            .distribute(&DistributionRequest {
                dist: DistributionId::new_random(),
                groups: vec![],
                destinations: vec!["sale1.hqs.mei.co.jp".into()],
                pages: vec![OutgoingPage::from_bytes("memo.png", sent)],
            })
            .await
            .unwrap();
        client.close().await;
    };
    let mut out = Vec::new();
    let (panel, ()) = bounded(async { tokio::join!(run_headless(opts, &mut out), sender) }).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    panel.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("▒") || text.contains("█"),
        "the preview draws the page"
    );
    let printed = std::fs::read(net.panel_dirs().output_tray.join("memo.png")).unwrap();
    assert_eq!(printed, png, "printed byte for byte into the output tray");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_image_is_distributed_printed_and_copied_by_its_id() {
    let root = tempfile::tempdir().unwrap();
    let net = DemoNetwork::start(DemoOptions::new(root.path()))
        .await
        .unwrap();
    let dirs = net.panel_dirs();
    let store = ImageStore::open(&dirs.store).unwrap();
    let files = vec![
        ("quote.png".to_owned(), b"quote page".to_vec()),
        ("terms.png".to_owned(), b"terms page".to_vec()),
    ];
    let id = store.keep(&files, 2, "1001").unwrap();
    let script = format!(
        "{LOGIN}press 6 2\nexpect \"Select the way of specifying images\"\npress 2\ntype {id}\nexpect \"[{id}]\"\npress start\nexpect \"Select destinations for image {id}\" within 20s\npress 3 start\nexpect \"Distribution: finished\" within 30s\nexpect \"5 destination(s) (this terminal skipped): 4 printed, 1\"\nexpect \"delivered, 0 failed\"\npress start\nexpect \"Select a mode\"\npress 3 2\ntype {id}\npress start\nexpect \"Printed\" within 20s\npress start\npress 5 2\ntype {id}\npress start\nexpect \"Copied\" within 20s\npress start\npress 3 2\ntype 99999999\npress start\nexpect \"no image with ID 99999999 in the image store\" within 20s\n"
    );
    let mut out = Vec::new();
    let r = bounded(run_headless(options(&net, &script), &mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    r.unwrap_or_else(|e| panic!("{e}\n{text}"));
    for domain in [
        "sale2.hqs.mei.co.jp",
        "plan1.hqs.mei.co.jp",
        "sale1.osk.mei.co.jp",
    ] {
        let t = net.terminal(domain).unwrap();
        assert_eq!(
            std::fs::read(t.tray().join("terms.png")).unwrap(),
            b"terms page",
            "{domain}"
        );
    }
    assert_eq!(
        std::fs::read(dirs.output_tray.join("quote.png")).unwrap(),
        b"quote page"
    );
    assert_eq!(
        std::fs::read(dirs.removable.join("terms.png")).unwrap(),
        b"terms page"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_runner_logs_the_user_in_again_on_a_new_connection() {
    use imagecast::panel::jobs::server::{Login, Register};
    use imagecast::panel::jobs::{JobResult, JobRunner, Paper};
    use imagecast::paper::{Adf, OutputTray};

    let root = tempfile::tempdir().unwrap();
    let net = DemoNetwork::start(DemoOptions::new(root.path()))
        .await
        .unwrap();
    let dirs = net.panel_dirs();
    let paper = Paper {
        adf: Adf::new(&dirs.adf),
        tray: OutputTray::new(&dirs.output_tray),
        removable: OutputTray::new(&dirs.removable),
        store: ImageStore::open(&dirs.store).unwrap(),
    };
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut runner = JobRunner::new(paper, move |r| {
        let _ = tx.send(r);
    });
    let cfg = net.panel_client_config();
    bounded(async {
        let (first, _events) = Client::connect(&cfg).await.unwrap();
        runner.connected(first.clone());
        runner.spawn(
            Login {
                user: "1001".into(),
                password: "1234".into(),
                quit: false,
            }
            .into(),
        );
        assert!(matches!(
            answers.recv().await,
            Some(JobResult::LoggedIn { .. })
        ));
        // The link comes back on a new connection, where nobody is logged in yet: the runner
        // logs the user in again before the next job reaches the server.
        first.close().await;
        runner.disconnected();
        let (second, _events) = Client::connect(&cfg).await.unwrap();
        runner.connected(second);
        runner.spawn(
            Register {
                group: "product development-related places".into(),
            }
            .into(),
        );
        match answers.recv().await {
            Some(JobResult::DoneHome { title, .. }) => assert_eq!(title, "Registered"),
            other => panic!("{other:?}"),
        }
    })
    .await;
    net.shutdown().await;
}
