//! What the panel's tests share: an app connected to the seed's network without a server,
//! the seed's groups and destinations, key presses, and drawing into ratatui's `TestBackend`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use imagecast_shared::client::Received;
use imagecast_shared::msg::{Destination, GroupEntry, Role};
use imagecast_shared::{DeliveryId, DistributionId};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, AppEvent, Conn, PanelInfo, ReceivedEntry};
use super::jobs::{GroupsFor, ImageSource, Job, JobResult, Paper};
use super::keys::Key;
use super::runner::buffer_text;
use super::theme::Theme;
use crate::paper::{Adf, OutputTray};
use crate::store::ImageStore;

/// A panel of sales department 1 of the head office, connected, at FIG. 6.
pub fn app(demo: bool, kiosk: bool) -> App {
    let mut app = App::new(
        PanelInfo {
            server: "127.0.0.1:7410".into(),
            device: "sale1.hqs.mei.co.jp".into(),
            demo,
            kiosk,
        },
        Theme::plain(),
    );
    app.conn = Conn::Connected;
    app.device_name = "sales department 1 of the head office".into();
    app
}

/// The demo panel with operator 1001 logged in, at FIG. 7.
pub fn logged_in() -> App {
    let mut a = app(true, false);
    a.event(AppEvent::Job(JobResult::LoggedIn {
        user: "1001".into(),
        role: Role::Operator,
        quit: false,
    }));
    a
}

/// The seed's groups, as the server lists them for FIG. 9.
pub fn seed_groups() -> Vec<GroupEntry> {
    [
        ("all distribution destinations", "all.rec", 9),
        ("all sales offices", "eigyou_syo.rec", 3),
        ("all sales-related places", "eigyou_all.rec", 6),
        ("product development-related places", "develop.rec", 1),
    ]
    .iter()
    .map(|(n, f, m)| GroupEntry {
        name: (*n).into(),
        file: (*f).into(),
        members: *m,
    })
    .collect()
}

/// FIG. 9 for the ADF with the seed's groups, after `pressed`.
pub fn fig09(pressed: &[Key]) -> App {
    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups: seed_groups(),
    }));
    keys(&mut a, pressed);
    a
}

/// A destination of all.rec.
pub fn dest(domain: &str, name: &str) -> Destination {
    Destination {
        domain: domain.into(),
        name: name.into(),
    }
}

/// The seed's all.rec, for FIG. 10.
pub fn seed_destinations() -> Vec<Destination> {
    [
        (
            "sale1.hqs.mei.co.jp",
            "sales department 1 of the head office",
        ),
        (
            "sale2.hqs.mei.co.jp",
            "sales department 2 of the head office",
        ),
        (
            "devl1.hqs.mei.co.jp",
            "development department of the head office",
        ),
        (
            "plan1.hqs.mei.co.jp",
            "planning department of the head office",
        ),
        ("sale1.osk.mei.co.jp", "sales office, the Osaka branch"),
        (
            "devl1.osk.mei.co.jp",
            "development department, the Osaka branch",
        ),
        ("plan1.osk.mei.co.jp", "planning section, the Osaka branch"),
        ("sale1.ngy.mei.co.jp", "sales office, the Nagoya branch"),
        ("sale1.fko.mei.co.jp", "sales office, the Fukuoka branch"),
    ]
    .iter()
    .map(|(d, n)| dest(d, n))
    .collect()
}

/// Two deliveries a minute apart on 2026-11-21: one page from Osaka, then two from
/// development.
pub fn two_received(app: &mut App) {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_300_000);
    for (i, (sender, name)) in [
        ("sale1.osk.mei.co.jp", "sales office, the Osaka branch"),
        (
            "devl1.hqs.mei.co.jp",
            "development department of the head office",
        ),
    ]
    .iter()
    .enumerate()
    {
        app.received.push(ReceivedEntry {
            received: Received {
                delivery: DeliveryId(i as u64 + 1),
                dist: DistributionId::new_random(),
                sender: dest(sender, name),
                user: "1002".into(),
                files: vec![],
                pages: i + 1,
                bytes: 1000,
                duplicate: false,
            },
            pages: i + 1,
            at: at + Duration::from_secs(60 * i as u64),
            realtime: false,
            fax: None,
        });
    }
}

/// The ten keys that type `digits`.
pub fn digits(digits: &str) -> Vec<Key> {
    digits.bytes().map(|b| Key::Digit(b - b'0')).collect()
}

/// Presses `keys` in order.
pub fn keys(app: &mut App, keys: &[Key]) {
    for k in keys {
        app.key(*k);
    }
}

/// Draws the panel at `w`×`h` and returns its text.
pub fn draw(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    buffer_text(t.draw(|f| app.draw(f)).unwrap().buffer)
}

/// Draws the panel at 80×24, the size of the snapshots.
pub fn screen(app: &mut App) -> String {
    draw(app, 80, 24)
}

/// The one job the app queued.
pub fn the_job(app: &mut App) -> Job {
    let mut jobs = app.take_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.remove(0)
}

/// The panel's paper in folders under `dir` (the ADF folder not yet made).
pub fn paper_in(dir: &Path) -> Paper {
    Paper {
        adf: Adf::new(dir.join("adf")),
        tray: OutputTray::new(dir.join("tray")),
        removable: OutputTray::new(dir.join("removable")),
        store: ImageStore::open(dir.join("store")).unwrap(),
    }
}
