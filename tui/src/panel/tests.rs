//! The panel without a terminal or a server: key → transition tests through the real [`App`],
//! and a snapshot of every dialog at 80×24 drawn into ratatui's `TestBackend`.

use std::time::{Duration, SystemTime};

use imagecast_shared::client::{Event, Received};
use imagecast_shared::msg::{
    Accepted, DeliveryState, Destination, DestinationStatus, GroupEntry, Role,
};
use imagecast_shared::{DeliveryId, DistributionId};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, AppEvent, Conn, ImageSource, PanelInfo, ReceivedEntry};
use super::jobs::{Job, JobResult};
use super::keys::Key;
use super::runner::buffer_text;
use super::screens::preview::PreviewData;
use super::screens::{GroupsFor, Screen};
use super::theme::Theme;
use crate::store::{Attributes, ImageId, Listing};

fn app(demo: bool, kiosk: bool) -> App {
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

fn logged_in() -> App {
    let mut a = app(true, false);
    a.event(AppEvent::Job(JobResult::LoggedIn {
        user: "1001".into(),
        role: Role::Operator,
        password: "1234".into(),
        quit: false,
    }));
    a
}

fn seed_groups() -> Vec<GroupEntry> {
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

fn dest(domain: &str, name: &str) -> Destination {
    Destination {
        domain: domain.into(),
        name: name.into(),
    }
}

fn seed_destinations() -> Vec<Destination> {
    vec![
        dest(
            "sale1.hqs.mei.co.jp",
            "sales department 1 of the head office",
        ),
        dest(
            "sale2.hqs.mei.co.jp",
            "sales department 2 of the head office",
        ),
        dest(
            "devl1.hqs.mei.co.jp",
            "development department of the head office",
        ),
        dest(
            "plan1.hqs.mei.co.jp",
            "planning department of the head office",
        ),
        dest("sale1.osk.mei.co.jp", "sales office, the Osaka branch"),
        dest(
            "devl1.osk.mei.co.jp",
            "development department, the Osaka branch",
        ),
        dest("plan1.osk.mei.co.jp", "planning section, the Osaka branch"),
        dest("sale1.ngy.mei.co.jp", "sales office, the Nagoya branch"),
        dest("sale1.fko.mei.co.jp", "sales office, the Fukuoka branch"),
    ]
}

fn keys(app: &mut App, keys: &[Key]) {
    for k in keys {
        app.key(*k);
    }
}

fn draw(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    buffer_text(t.draw(|f| app.draw(f)).unwrap().buffer)
}

fn screen(app: &mut App) -> String {
    draw(app, 80, 24)
}

fn the_job(app: &mut App) -> Job {
    let mut jobs = app.take_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.remove(0)
}

// ---- key handling -------------------------------------------------------------------------

#[test]
fn login_types_with_ten_keys_and_starts_a_login_job() {
    let mut a = app(true, false);
    a.key(Key::Start);
    assert!(screen(&mut a).contains("Enter your user ID first."));
    keys(
        &mut a,
        &[
            Key::Digit(1),
            Key::Digit(0),
            Key::Digit(0),
            Key::Digit(1),
            Key::Start,
        ],
    );
    // Start in the user box moves to the password box first.
    assert!(a.take_jobs().is_empty());
    keys(
        &mut a,
        &[
            Key::Digit(1),
            Key::Digit(2),
            Key::Digit(3),
            Key::Digit(4),
            Key::Start,
        ],
    );
    match the_job(&mut a) {
        Job::Login {
            user,
            password,
            quit,
            ..
        } => {
            assert_eq!(
                (user.as_str(), password.as_str(), quit),
                ("1001", "1234", false)
            );
        }
        other => panic!("{other:?}"),
    }
    a.event(AppEvent::Job(JobResult::LoginFailed(
        "wrong user ID or password".into(),
    )));
    let s = screen(&mut a);
    assert!(s.contains("wrong user ID or password"), "{s}");
    assert!(
        s.contains("Enter your user ID and password"),
        "stays on FIG. 6"
    );
}

#[test]
fn mode_selection_routes_by_number_key_and_reset_logs_out() {
    let mut a = logged_in();
    assert!(matches!(a.screen(), Screen::ModeSelect(_)));
    a.key(Key::Digit(2));
    assert!(screen(&mut a).contains("No fax gateway is configured"));
    a.key(Key::Start);
    a.key(Key::Digit(1));
    assert!(matches!(the_job(&mut a), Job::Copy));
    a.event(AppEvent::Job(JobResult::DoneHome {
        title: "Copy finished".into(),
        lines: vec![],
    }));
    a.key(Key::Start);
    a.key(Key::Digit(3));
    assert!(screen(&mut a).contains("Take out image: select the way"));
    a.key(Key::Reset);
    a.key(Key::Digit(6));
    assert!(matches!(a.screen(), Screen::DistributionMode(_)));
    a.key(Key::Digit(3));
    assert!(matches!(
        the_job(&mut a),
        Job::FetchGroups {
            purpose: GroupsFor::Register,
            ..
        }
    ));
    a.event(AppEvent::Job(JobResult::Failed {
        title: "x".into(),
        message: "y".into(),
    }));
    a.key(Key::Start);
    a.key(Key::Reset);
    a.key(Key::Reset);
    assert!(
        matches!(a.screen(), Screen::Login(_)),
        "Reset on FIG. 7 logs out"
    );
    assert!(a.user.is_none());
}

#[test]
fn destination_numbers_tick_groups_and_start_distributes_to_them() {
    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups: seed_groups(),
    }));
    a.key(Key::Start);
    assert!(screen(&mut a).contains("Choose at least one group"));
    keys(
        &mut a,
        &[Key::Digit(2), Key::Digit(4), Key::Digit(9), Key::Star],
    );
    let s = screen(&mut a);
    assert!(s.contains("[x] 2: all sales offices"), "{s}");
    assert!(
        s.contains("[x] 4: product development-related places"),
        "{s}"
    );
    assert!(s.contains("There is no group 9."), "{s}");
    assert!(s.contains("[x] * Keep in memory"), "{s}");
    a.key(Key::Digit(0));
    assert!(matches!(the_job(&mut a), Job::FetchDestinations { .. }));
    a.event(AppEvent::Job(JobResult::Destinations(seed_destinations())));
    keys(&mut a, &[Key::Down, Key::Down, Key::Space, Key::Pick(5)]);
    a.key(Key::Start);
    match the_job(&mut a) {
        Job::Distribute {
            source,
            groups,
            destinations,
            keep,
            ..
        } => {
            assert_eq!(source, ImageSource::Adf);
            assert_eq!(
                groups,
                ["all sales offices", "product development-related places"]
            );
            assert_eq!(destinations, ["devl1.hqs.mei.co.jp", "devl1.osk.mei.co.jp"]);
            assert!(keep);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(a.screen(), Screen::Progress(_)));
    assert!(a.busy.is_some());
    // A second job while one runs is refused with a note.
    a.key(Key::Stored);
    assert!(a.take_jobs().is_empty());
    assert!(a.note.as_ref().is_some_and(|n| n.0.contains("busy")));
    a.key(Key::Stop);
    assert!(matches!(the_job(&mut a), Job::Cancel));
}

#[test]
fn many_groups_take_two_digit_numbers() {
    let mut a = logged_in();
    let groups: Vec<GroupEntry> = (1..=12)
        .map(|i| GroupEntry {
            name: format!("group {i}"),
            file: format!("g{i}.rec"),
            members: 1,
        })
        .collect();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups,
    }));
    keys(
        &mut a,
        &[
            Key::Digit(1),
            Key::Digit(2),
            Key::Digit(1),
            Key::Space,
            Key::Digit(7),
        ],
    );
    let s = screen(&mut a);
    assert!(s.contains("[x] 12: group 12"), "{s}");
    assert!(s.contains("[x] 1: group 1"), "{s}");
    assert!(s.contains("[x] 7: group 7"), "{s}");
    assert!(s.contains("[ ] 2: group 2"), "{s}");
}

#[test]
fn image_id_box_takes_eight_digits() {
    let mut a = logged_in();
    keys(&mut a, &[Key::Digit(6), Key::Digit(2), Key::Digit(2)]);
    keys(
        &mut a,
        &[Key::Digit(1), Key::Digit(2), Key::Digit(3), Key::Start],
    );
    assert!(screen(&mut a).contains("exactly 8 digits"));
    keys(
        &mut a,
        &[
            Key::Digit(4),
            Key::Digit(5),
            Key::Digit(6),
            Key::Digit(7),
            Key::Digit(8),
            Key::Digit(9),
        ],
    );
    a.key(Key::Start);
    match the_job(&mut a) {
        Job::UseImage(id, _) => assert_eq!(id.to_string(), "12345678"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn touches_act_as_the_keys_drawn_there() {
    let mut a = logged_in();
    let s = screen(&mut a);
    // The key pad's [6] and the LCD's "6: Others" both lead to FIG. 8.
    let (row, line) = s
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("[6]"))
        .unwrap();
    let col = line.find("[6]").unwrap();
    let col = line[..col].chars().count() as u16;
    a.click(col + 1, row as u16);
    assert!(matches!(a.screen(), Screen::DistributionMode(_)));
    a.key(Key::Reset);
    screen(&mut a);
    let (row, line) = s
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("6: Others"))
        .unwrap();
    let col = line[..line.find("6: Others").unwrap()].chars().count() as u16;
    a.click(col + 2, row as u16);
    assert!(matches!(a.screen(), Screen::DistributionMode(_)));
}

#[test]
fn a_kiosk_closes_only_for_an_administrator() {
    let mut a = app(false, true);
    a.key(Key::Quit);
    assert!(!a.quit);
    assert!(screen(&mut a).contains("Administrator login to close the panel"));
    keys(
        &mut a,
        &[Key::Digit(1), Key::Tab, Key::Digit(2), Key::Start],
    );
    assert!(matches!(the_job(&mut a), Job::Login { quit: true, .. }));
    a.event(AppEvent::Job(JobResult::LoggedIn {
        user: "1".into(),
        role: Role::Operator,
        password: "2".into(),
        quit: true,
    }));
    assert!(!a.quit);
    assert!(screen(&mut a).contains("Only an administrator can close this kiosk."));
    a.event(AppEvent::Job(JobResult::LoggedIn {
        user: "9".into(),
        role: Role::Admin,
        password: "0".into(),
        quit: true,
    }));
    assert!(a.quit);
    let mut b = app(false, false);
    b.key(Key::Quit);
    assert!(b.quit, "outside a kiosk Quit quits");
}

#[test]
fn losing_the_connection_keeps_the_place_and_says_so() {
    let mut a = logged_in();
    a.key(Key::Digit(6));
    a.event(AppEvent::Disconnected {
        reason: "the server closed the connection".into(),
        attempt: 2,
        retry_in: Duration::from_secs(4),
    });
    assert!(
        matches!(a.screen(), Screen::DistributionMode(_)),
        "the place is kept"
    );
    let s = screen(&mut a);
    assert!(s.contains("OFFLINE, retry in"), "{s}");
    a.key(Key::Digit(1));
    assert!(a.take_jobs().is_empty());
    assert!(screen(&mut a).contains("Not connected"));
}

#[test]
fn results_arriving_before_acceptance_are_kept() {
    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups: seed_groups(),
    }));
    keys(&mut a, &[Key::Digit(4), Key::Start]);
    let _ = a.take_jobs();
    let dist = DistributionId::new_random();
    a.event(AppEvent::Server(Event::Progress {
        dist,
        status: DestinationStatus {
            destination: dest("devl1.hqs.mei.co.jp", "dev"),
            state: DeliveryState::Printed,
        },
    }));
    a.event(AppEvent::Job(JobResult::Accepted(Accepted {
        dist,
        destinations: vec![dest("devl1.hqs.mei.co.jp", "dev")],
        duplicate: false,
    })));
    let s = screen(&mut a);
    assert!(s.contains("Distribution: finished"), "{s}");
    assert!(s.contains("1 destination(s): 1 printed"), "{s}");
}

// ---- snapshots ----------------------------------------------------------------------------

fn progress_app(done: bool) -> App {
    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups: seed_groups(),
    }));
    keys(
        &mut a,
        &[Key::Digit(2), Key::Digit(4), Key::Star, Key::Start],
    );
    let _ = a.take_jobs();
    a.event(AppEvent::Job(JobResult::Scanned {
        files: 3,
        pages: 4,
        bytes: 85_000,
        refused: vec!["Refused notes.txt: not an image".into()],
        kept: ImageId::new(20_261_121),
    }));
    let dist = DistributionId::new_random();
    let dests = vec![
        dest("sale1.osk.mei.co.jp", "sales office, the Osaka branch"),
        dest("sale1.ngy.mei.co.jp", "sales office, the Nagoya branch"),
        dest("sale1.fko.mei.co.jp", "sales office, the Fukuoka branch"),
        dest(
            "devl1.hqs.mei.co.jp",
            "development department of the head office",
        ),
    ];
    a.event(AppEvent::Job(JobResult::Accepted(Accepted {
        dist,
        destinations: dests.clone(),
        duplicate: false,
    })));
    let states = [
        DeliveryState::Printed,
        DeliveryState::Sending,
        DeliveryState::Failed("the terminal refused it: disk full".into()),
        DeliveryState::Queued,
    ];
    for (d, s) in dests.iter().zip(states) {
        a.event(AppEvent::Server(Event::Progress {
            dist,
            status: DestinationStatus {
                destination: d.clone(),
                state: s,
            },
        }));
    }
    if done {
        let results = dests
            .iter()
            .zip([
                DeliveryState::Printed,
                DeliveryState::Printed,
                DeliveryState::Failed("the terminal refused it: disk full".into()),
                DeliveryState::Delivered,
            ])
            .map(|(d, s)| DestinationStatus {
                destination: d.clone(),
                state: s,
            })
            .collect();
        a.event(AppEvent::Server(Event::Done { dist, results }));
    }
    a
}

fn received(a: &mut App) {
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
        a.received.push(ReceivedEntry {
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
            at: at + Duration::from_secs(60 * i as u64),
        });
    }
}

#[test]
fn snapshots_of_every_dialog_at_80x24() {
    let mut a = app(true, false);
    insta::assert_snapshot!("fig06_login", screen(&mut a));
    keys(
        &mut a,
        &[
            Key::Digit(1),
            Key::Digit(0),
            Key::Digit(0),
            Key::Digit(1),
            Key::Tab,
            Key::Digit(9),
        ],
    );
    a.event(AppEvent::Job(JobResult::LoginFailed(
        "wrong user ID or password".into(),
    )));
    insta::assert_snapshot!("fig06_login_refused", screen(&mut a));

    let mut a = logged_in();
    insta::assert_snapshot!("fig07_mode_selection", screen(&mut a));
    a.key(Key::Digit(6));
    insta::assert_snapshot!("fig08_distribution_mode", screen(&mut a));
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Distribute(ImageSource::Adf),
        groups: seed_groups(),
    }));
    keys(&mut a, &[Key::Digit(2), Key::Digit(4), Key::Star]);
    insta::assert_snapshot!("fig09_destinations", screen(&mut a));
    a.event(AppEvent::Job(JobResult::Destinations(seed_destinations())));
    keys(
        &mut a,
        &[
            Key::Down,
            Key::Down,
            Key::Space,
            Key::Down,
            Key::Down,
            Key::Space,
        ],
    );
    insta::assert_snapshot!("fig10_individual_destinations", screen(&mut a));

    let mut a = logged_in();
    keys(
        &mut a,
        &[
            Key::Digit(6),
            Key::Digit(2),
            Key::Digit(2),
            Key::Digit(0),
            Key::Digit(6),
            Key::Digit(0),
            Key::Digit(6),
        ],
    );
    insta::assert_snapshot!("fig11_specify_image", screen(&mut a));

    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Groups {
        purpose: GroupsFor::Register,
        groups: seed_groups()[1..].to_vec(),
    }));
    a.key(Key::Digit(3));
    insta::assert_snapshot!("fig12_register_with_group", screen(&mut a));

    insta::assert_snapshot!("progress_delivering", screen(&mut progress_app(false)));
    insta::assert_snapshot!("progress_summary", screen(&mut progress_app(true)));

    let mut a = logged_in();
    received(&mut a);
    insta::assert_snapshot!("home_with_received_pane", screen(&mut a));
    a.key(Key::Received);
    insta::assert_snapshot!("received_list", screen(&mut a));

    let mut a = logged_in();
    a.event(AppEvent::Job(JobResult::Stored(Listing {
        images: vec![
            Attributes {
                id: ImageId::new(20_261_121).unwrap(),
                pages: 4,
                size: 85_000,
                stored_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_300_000),
                stored_by: "1001".into(),
            },
            Attributes {
                id: ImageId::new(31_415_926).unwrap(),
                pages: 1,
                size: 2_400_000,
                stored_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_303_600),
                stored_by: "1002".into(),
            },
        ],
        damaged: vec![],
    })));
    insta::assert_snapshot!("stored_images", screen(&mut a));

    let mut a = logged_in();
    let mut page = image::GrayImage::from_pixel(120, 170, image::Luma([255]));
    for y in 20..150 {
        if y % 14 < 6 {
            for x in 15..105 {
                page.put_pixel(x, y, image::Luma([0]));
            }
        }
    }
    a.event(AppEvent::Job(JobResult::Preview(Box::new(PreviewData {
        title: "From sales office, the Osaka branch".into(),
        pages: vec![("memo.png p.1".into(), image::DynamicImage::ImageLuma8(page))],
    }))));
    insta::assert_snapshot!("preview", screen(&mut a));

    let mut a = logged_in();
    insta::assert_snapshot!("too_small_terminal", draw(&mut a, 50, 12));
    let mut a = logged_in();
    a.event(AppEvent::Disconnected {
        reason: "connection refused".into(),
        attempt: 3,
        retry_in: Duration::from_secs(0),
    });
    insta::assert_snapshot!(
        "reconnecting_status",
        draw(&mut a, 80, 24).lines().next().unwrap_or_default()
    );
}

#[test]
fn larger_terminals_get_the_same_dialogs_with_more_room() {
    let mut a = logged_in();
    let s = draw(&mut a, 120, 40);
    assert!(s.contains("6: Others"));
    assert!(
        s.contains("0-9 ten keys  Enter Start"),
        "the long legend fits: {s}"
    );
}
