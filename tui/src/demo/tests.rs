//! The demo network end to end: the real server, the real client, the simulated terminals.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use imagecast_shared::DistributionId;
use imagecast_shared::client::{
    Client, ClientConfig, DistributionRequest, Event, Events, OutgoingPage,
};
use imagecast_shared::msg::{DeliveryState, DeviceKind};

use super::*;
use crate::paper::{OutputTray, decode_pages};

/// Every test finishes within this, or fails.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test took too long")
}

/// Reads events until every domain in `want` has the wanted state; returns all states seen.
async fn wait_for_states(
    events: &mut Events,
    dist: DistributionId,
    mut states: HashMap<String, DeliveryState>,
    want: &[(&str, DeliveryState)],
) -> HashMap<String, DeliveryState> {
    let done = |s: &HashMap<String, DeliveryState>| {
        want.iter()
            .all(|(d, st)| s.get(*d).is_some_and(|x| x == st))
    };
    let wait = async {
        while !done(&states) {
            match events.recv().await {
                Some(Event::Progress { dist: d, status }) if d == dist => {
                    states.insert(status.destination.domain, status.state);
                }
                Some(Event::Done { dist: d, results }) if d == dist => {
                    for r in results {
                        states.insert(r.destination.domain, r.state);
                    }
                }
                Some(Event::Closed(reason)) | Some(Event::Notice(reason)) => {
                    panic!("unexpected: {reason}")
                }
                Some(_) => {}
                None => panic!("the events ended"),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .is_err()
    {
        panic!("states after 15 s: {states:?}, wanted {want:?}");
    }
    states
}

fn tray_files(dir: &Path) -> Vec<PathBuf> {
    OutputTray::new(dir).files().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_distributes_to_all_sales_offices_and_the_offline_one_waits() {
    let root = tempfile::tempdir().unwrap();
    bounded(async {
        let net = DemoNetwork::start(DemoOptions::new(root.path()))
            .await
            .unwrap();
        assert_eq!(net.panel_device().numeral, 120);
        assert_eq!(net.panel_device().domain, PANEL_DOMAIN);
        // Every other device is simulated; all but MFP 320 are on and connected.
        let domains: Vec<_> = net.terminals().iter().map(|t| t.domain()).collect();
        let expected: Vec<_> = DEMO_DEVICES
            .iter()
            .map(|d| d.domain)
            .filter(|d| *d != PANEL_DOMAIN)
            .collect();
        assert_eq!(domains, expected);
        for t in net.terminals() {
            let online = t.domain() != OFFLINE_DOMAIN;
            assert_eq!(t.is_online(), online, "{}", t.domain());
            assert_eq!(
                net.server().is_online(t.domain()),
                online,
                "{}",
                t.domain()
            );
            assert!(t.tray().starts_with(root.path()));
        }
        assert_eq!(net.terminal(OFFLINE_DOMAIN).unwrap().label(), "MFP 320");

        // The panel's connection, as the panel will make it.
        let (client, mut events) = Client::connect(&net.panel_client_config())
            .await
            .unwrap();
        assert_eq!(
            client.welcome().device_name,
            "sales department 1 of the head office"
        );
        assert_eq!(client.welcome().kind, DeviceKind::Mfp);
        client.login(DEMO_USER, DEMO_PASSWORD).await.unwrap();
        let groups: BTreeSet<_> = client
            .groups(false)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect();
        let want: BTreeSet<_> = [
            "all distribution destinations",
            "all sales-related places",
            "all sales offices",
            "product development-related places",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(groups, want);

        // The sample report from the ADF to "all sales offices" and to MFP 320.
        let page = net.panel_dirs().adf.join(SAMPLE_NAMES[0]);
        let sent = std::fs::read(&page).unwrap();
        let req = DistributionRequest {
            dist: DistributionId::new_random(),
            groups: vec!["all sales offices".to_owned()],
            destinations: vec![OFFLINE_DOMAIN.to_owned()],
            pages: vec![OutgoingPage::from_file(&page).unwrap()],
        };
        let accepted = client.distribute(&req).await.unwrap();
        let online = [
            "sale1.osk.mei.co.jp",
            "sale1.ngy.mei.co.jp",
            "sale1.fko.mei.co.jp",
        ];
        let mut to: Vec<_> = accepted
            .destinations
            .iter()
            .map(|d| d.domain.as_str())
            .collect();
        to.sort_unstable();
        let mut want_to = online.to_vec();
        want_to.push(OFFLINE_DOMAIN);
        want_to.sort_unstable();
        assert_eq!(to, want_to);

        let now = client
            .watch(accepted.dist)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.destination.domain, s.state))
            .collect();
        let want: Vec<_> = online
            .iter()
            .map(|d| (*d, DeliveryState::Printed))
            .collect();
        let states = wait_for_states(&mut events, accepted.dist, now, &want).await;
        assert_eq!(states.get(OFFLINE_DOMAIN), Some(&DeliveryState::Queued));

        for domain in online {
            let t = net.terminal(domain).unwrap();
            let files = tray_files(t.tray());
            assert_eq!(files.len(), 1, "{domain}: {files:?}");
            assert_eq!(files[0].file_name().unwrap(), SAMPLE_NAMES[0]);
            assert_eq!(std::fs::read(&files[0]).unwrap(), sent, "{domain}");
            assert_eq!(
                (t.received(), t.pages_received(), t.files_received()),
                (1, 1, 1),
                "{domain}"
            );
            assert_eq!(t.last_received(), files);
        }
        // Terminals outside the group got nothing; the offline one neither.
        for t in net.terminals() {
            if !online.contains(&t.domain()) {
                assert!(tray_files(t.tray()).is_empty(), "{}", t.domain());
                assert_eq!(t.received(), 0, "{}", t.domain());
            }
        }

        let summary = net.tray_summary();
        let dirs = net.panel_dirs();
        for path in [&dirs.output_tray, &dirs.adf, &dirs.removable, &dirs.store] {
            assert!(
                summary.contains(&path.display().to_string()),
                "{summary}"
            );
        }
        for t in net.terminals() {
            assert!(
                summary.contains(&t.tray().display().to_string()),
                "{summary}"
            );
        }
        assert!(
            summary.contains(&format!(
                "MFP 320 {OFFLINE_DOMAIN} (development department, the Osaka branch): offline: gets its images when it connects"
            )),
            "{summary}"
        );
        assert!(
            summary.contains("sale1.osk.mei.co.jp (sales office, the Osaka branch): online, received 1 image (1 page in 1 file)"),
            "{summary}"
        );

        // Store and forward: switched on, MFP 320 gets the image that waited for it.
        net.switch_on(OFFLINE_DOMAIN).unwrap();
        net.switch_on(OFFLINE_DOMAIN).unwrap();
        wait_for_states(
            &mut events,
            accepted.dist,
            states,
            &[(OFFLINE_DOMAIN, DeliveryState::Printed)],
        )
        .await;
        let late = net.terminal(OFFLINE_DOMAIN).unwrap();
        let files = tray_files(late.tray());
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), sent);
        assert_eq!(late.received(), 1);
        assert!(net.tray_summary().contains(
            "devl1.osk.mei.co.jp (development department, the Osaka branch): online, received 1 image (1 page in 1 file)"
        ));

        client.close().await;
        let addr = net.server_addr().to_owned();
        let token = net.panel_token().to_owned();
        let started = Instant::now();
        net.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "shutdown took {:?}",
            started.elapsed()
        );
        // The server is gone: nobody answers on its port.
        let mut cfg = ClientConfig::new(&addr, PANEL_DOMAIN, &token, false);
        cfg.connect_timeout = Duration::from_secs(2);
        assert!(Client::connect(&cfg).await.is_err());
        // The token file lists the panel's token.
        let tokens = std::fs::read_to_string(root.path().join("server/demo-tokens.txt")).unwrap();
        assert!(tokens.lines().any(|l| l == format!("{PANEL_DOMAIN} {token}")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adf_holds_the_samples_and_a_second_start_reuses_the_root() {
    let root = tempfile::tempdir().unwrap();
    bounded(async {
        let net = DemoNetwork::start(DemoOptions::new(root.path()))
            .await
            .unwrap();
        let dirs = net.panel_dirs();
        assert_eq!(dirs, PanelDirs::under(&panel_root(root.path())));
        for dir in [
            &dirs.adf,
            &dirs.output_tray,
            &dirs.removable,
            &dirs.store,
            &dirs.state,
        ] {
            assert!(dir.is_dir(), "{}", dir.display());
            assert!(dir.starts_with(root.path().join("mfp120")));
        }
        let docs = Adf::new(&dirs.adf).documents().unwrap();
        let names: Vec<_> = docs
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, SAMPLE_NAMES);
        let pages: usize = docs.iter().map(|p| decode_pages(p).unwrap().len()).sum();
        assert_eq!(pages, 4);
        let first_token = net.panel_token().to_owned();
        net.shutdown().await;

        // The operator took one document; a second start keeps the ADF as it is.
        std::fs::remove_file(&docs[2]).unwrap();
        let net = DemoNetwork::start(DemoOptions::new(root.path()))
            .await
            .unwrap();
        assert_eq!(Adf::new(&dirs.adf).documents().unwrap().len(), 2);
        assert_ne!(net.panel_token(), first_token, "tokens are issued afresh");
        let (client, _events) = Client::connect(&net.panel_client_config()).await.unwrap();
        client.login(DEMO_USER, DEMO_PASSWORD).await.unwrap();
        assert_eq!(client.groups(true).await.unwrap().len(), 3);
        let mut old = net.panel_client_config();
        old.token = first_token;
        assert!(
            Client::connect(&old).await.is_err(),
            "the old token is void"
        );
        client.close().await;
        net.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_reconnects_when_its_connection_is_taken() {
    let root = tempfile::tempdir().unwrap();
    bounded(async {
        let net = DemoNetwork::start(DemoOptions::new(root.path()))
            .await
            .unwrap();
        let t = net.terminal("sale1.ngy.mei.co.jp").unwrap();
        assert!(t.is_connected());
        // A newer receiving connection of the same device replaces the simulated one...
        let cfg = net.client_config(t.domain(), t.token(), true);
        let (intruder, mut events) = Client::connect(&cfg).await.unwrap();
        // ...which reconnects after its back-off and takes over again.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.recv().await {
                    Some(Event::Closed(_)) | None => break,
                    Some(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the simulated terminal did not come back");
        assert!(intruder.is_closed());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(t.is_connected() && net.server().is_online(t.domain())) {
            assert!(Instant::now() < deadline, "not reconnected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        net.shutdown().await;
    })
    .await;
}
