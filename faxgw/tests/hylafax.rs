//! The HylaFAX line driver against a real hfaxd: Debian's `hylafax-server` (installed by
//! `bash scripts/test`, see faxgw/ci-packages.txt).
//!
//! The set-up is `tests/src/hylafax.rs` ([`testbed::Testbed`]), shared with the end-to-end
//! test. Needs root (it edits the spool's `hosts.hfaxd` and puts a fax into `recvq/`); when
//! not root it prints why and skips (and fails when `CI` is set). When hfaxd is not running it starts HylaFAX with
//! `/etc/init.d/hylafax start` with `BINDTO="-l 127.0.0.1"` (hfaxd then listens on
//! 127.0.0.1:4559 only), and stops it again at the end; a running HylaFAX is used as it is.
//! Everything it changes is put back: `hosts.hfaxd` (bytes and times), `recvq/seqf`, the
//! fax it put into `recvq/`, its jobs and their documents in `docq/`.
//!
//! With no modem configured, jobs stay queued (READY): the test checks submission (the
//! queue file and the document HylaFAX holds), status, removal, a dial that times out while
//! queued, logins, and the receive-queue fetch and removal.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::hylafax::qfile::JobState;
use imagecast_faxgw::hylafax::{
    ADMIN_PASSWORD_ENV, HylafaxConfig, HylafaxError, HylafaxLine, PASSWORD_ENV,
};
use imagecast_faxgw::page::{FaxPage, Resolution};
use imagecast_faxgw::sim::{CallResult, DialOptions};

/// The HylaFAX set-up shared with the end-to-end test (tests/tests/e2e/fax_hylafax.rs).
#[allow(dead_code)]
#[path = "../../tests/src/hylafax.rs"]
mod testbed;

use testbed::{ADDR, SPOOL, Testbed, USER, queue_files_of_test_user, run};

/// A page with a recognisable pattern.
fn page(resolution: Resolution, seed: u32) -> FaxPage {
    let mut p = FaxPage::white(resolution, 120);
    for y in 0..120 {
        for x in 0..1728 {
            if (x / 16 + y / 8 + seed).is_multiple_of(5) {
                p.set(x, y, true);
            }
        }
    }
    p
}

#[test]
fn hylafax_driver_against_a_real_hfaxd() {
    let Some(mut bed) = Testbed::start() else {
        return;
    };
    let password = bed.password.clone();
    let admin = bed.admin_password.clone();

    let base = HylafaxConfig::new(ADDR, USER).expect("config");
    let user_cfg = base
        .clone()
        .with_passwords_from(|k| (k == PASSWORD_ENV).then(|| password.clone()));
    let admin_cfg = user_cfg.clone().with_passwords_from(|k| match k {
        PASSWORD_ENV => Some(password.clone()),
        ADMIN_PASSWORD_ENV => Some(admin.clone()),
        _ => None,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        logins(&base, &user_cfg, &password).await;
        submission_status_and_removal(&user_cfg).await;
        dial_times_out_while_queued(&user_cfg).await;
        receive_queue(&user_cfg, &admin_cfg, &mut bed).await;
    });
    assert!(
        queue_files_of_test_user().is_empty(),
        "jobs of the test are left in the queues: {:?}",
        queue_files_of_test_user()
    );
}

async fn logins(base: &HylafaxConfig, user_cfg: &HylafaxConfig, password: &str) {
    HylafaxLine::new(user_cfg.clone())
        .check()
        .await
        .expect("log in with the right password");

    let err = HylafaxLine::new(base.clone())
        .check()
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, HylafaxError::Login { .. }) && err.to_string().contains(PASSWORD_ENV),
        "no password: {err}"
    );

    let mut wrong = user_cfg.clone();
    wrong.password = Some(format!("{password}-wrong"));
    let err = HylafaxLine::new(wrong)
        .check()
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(
        matches!(&err, HylafaxError::Login { .. }) && text.contains("530"),
        "wrong password: {text}"
    );
    assert!(!text.contains(password), "the password shows: {text}");

    let mut nobody = base.clone();
    nobody.addr = "127.0.0.1:1".into();
    let err = HylafaxLine::new(nobody)
        .check()
        .await
        .expect_err("must fail");
    assert!(matches!(err, HylafaxError::Connect { .. }), "{err}");
}

async fn submission_status_and_removal(cfg: &HylafaxConfig) {
    let line = HylafaxLine::new(cfg.clone());
    let pages = vec![
        page(Resolution::Standard, 0),
        page(Resolution::Standard, 1),
        page(Resolution::Standard, 2),
    ];
    // A retry resuming at page 2: only pages 2 and 3 are handed to HylaFAX.
    let id = line.submit("5550100", &pages, 2).await.expect("submit");
    assert!(id.chars().all(|c| c.is_ascii_digit()), "job ID {id:?}");

    // The queue file HylaFAX wrote, read from its spool (not through the protocol).
    let qfile = Path::new(SPOOL).join(format!("sendq/q{id}"));
    let text = fs::read_to_string(&qfile).expect("the job's queue file in sendq");
    let field = |tag: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{tag}:")))
            .unwrap_or_else(|| panic!("no {tag} in {text}"))
            .to_owned()
    };
    assert_eq!(field("number"), "5550100");
    assert_eq!(field("maxdials"), "1");
    assert_eq!(field("maxtries"), "1");
    assert_eq!(field("owner"), USER);
    assert_eq!(field("notify"), "none");
    let tiff = field("tiff");
    let doc = tiff.rsplit(':').next().expect("document path");
    let held = fs::read(Path::new(SPOOL).join(doc)).expect("the job's document in docq");
    let decoded = imagecast_faxgw::tiff::read_fax_tiff(&held)
        .expect("HylaFAX's copy reads")
        .expect("a fax TIFF");
    assert_eq!(decoded, pages[1..].to_vec(), "the document HylaFAX holds");

    // Its status through the protocol: queued, never active (no modem).
    let until = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job = line
            .job(&id)
            .await
            .expect("read the job")
            .expect("the job exists");
        if job.state != Some(JobState::Suspended) {
            break job;
        }
        assert!(Instant::now() < until, "faxq never took job {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = job.state.expect("a state");
    assert!(
        matches!(
            state,
            JobState::Ready | JobState::Pending | JobState::Sleeping | JobState::Blocked
        ),
        "job {id} is {state:?}"
    );
    let mut s = line.session().await.expect("session");
    s.expect(&format!("JOB {id}"), &[200]).await.expect("JOB");
    let r = s.expect("JPARM STATE", &[213]).await.expect("JPARM STATE");
    assert_eq!(
        r.text(),
        state.name(),
        "JPARM STATE and the queue file agree"
    );
    s.quit().await;

    line.remove(&id).await.expect("remove the job");
    assert!(line.job(&id).await.expect("read the job").is_none());
    assert!(!qfile.exists(), "{} is still there", qfile.display());
    assert!(!Path::new(SPOOL).join(format!("doneq/q{id}")).exists());
    // Removing it again is not an error.
    line.remove(&id).await.expect("remove a job that is gone");
}

async fn dial_times_out_while_queued(cfg: &HylafaxConfig) {
    let mut cfg = cfg.clone();
    cfg.job_timeout = Duration::from_secs(3);
    cfg.poll_interval = Duration::from_millis(200);
    let line = HylafaxLine::new(cfg);
    let pages = vec![page(Resolution::Fine, 3), page(Resolution::Fine, 4)];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = DialOptions {
        first_page: 1,
        progress: Some(tx),
    };
    let outcome = line.dial("5550101", &pages, &options).await.expect("dial");
    drop(options);
    match &outcome.result {
        CallResult::Failed(reason) => assert!(
            reason.starts_with("timed out") && reason.contains("READY"),
            "{reason}"
        ),
        other => panic!("a dial with no modem ended {other:?}"),
    }
    assert_eq!((outcome.pages_confirmed, outcome.next_page), (0, 1));
    assert!(outcome.duration >= Duration::from_secs(3));
    // Never active, so no progress at all.
    assert_eq!(rx.recv().await, None);

    // A dial dropped while its job is queued (the gateway hangs up its calls when it loses
    // the supervisor) kills and removes the job.
    let mut long = line.config().clone();
    long.job_timeout = Duration::from_secs(600);
    let abandoned = HylafaxLine::new(long);
    let pages2 = pages.clone();
    let call = tokio::spawn(async move {
        abandoned
            .dial("5550102", &pages2, &DialOptions::default())
            .await
    });
    let until = Instant::now() + Duration::from_secs(20);
    let queued = || {
        queue_files_of_test_user()
            .iter()
            .any(|q| fs::read_to_string(q).is_ok_and(|t| t.lines().any(|l| l == "state:5")))
    };
    while !queued() {
        assert!(Instant::now() < until, "the dial's job never became READY");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.abort();
    assert!(call.await.expect_err("aborted").is_cancelled());
    let until = Instant::now() + Duration::from_secs(20);
    while !queue_files_of_test_user().is_empty() {
        assert!(
            Instant::now() < until,
            "the abandoned dial's job is still there: {:?}",
            queue_files_of_test_user()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bad input is refused before anything is sent.
    let err = line
        .dial("555\"; JKILL 1", &pages, &DialOptions::default())
        .await;
    assert!(
        matches!(err, Err(HylafaxError::InvalidNumber(_))),
        "{err:?}"
    );
    let err = line
        .dial("5550101", &pages, &DialOptions::from_page(3))
        .await;
    assert!(matches!(err, Err(HylafaxError::NoPages { .. })), "{err:?}");
}

async fn receive_queue(user: &HylafaxConfig, admin: &HylafaxConfig, bed: &mut Testbed) {
    // A received fax as faxgetty stores one from a Class 1 modem: Group 3 with
    // FillOrder 2 (tiffcp), the TSI and caller ID in ImageDescription (tiffset).
    let pages = vec![page(Resolution::Fine, 5), page(Resolution::Standard, 6)];
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = dir.path().join("ours.tif");
    let theirs = dir.path().join("received.tif");
    fs::write(
        &ours,
        imagecast_faxgw::tiff::write_fax_tiff(&pages, Coding::Mh).expect("write"),
    )
    .expect("write");
    run(Command::new("tiffcp")
        .args(["-f", "lsb2msb", "-c", "g3:1d"])
        .arg(&ours)
        .arg(&theirs));
    run(Command::new("tiffset")
        .args(["-s", "270", "ACME TSI\n5551234\nACME Corp\u{1b}[2J"])
        .arg(&theirs));
    let bytes = fs::read(&theirs).expect("read");
    let path = bed.put_received(&bytes);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();

    // Mode 0600: a user without administrative privileges does not see it.
    let plain = HylafaxLine::new(user.clone());
    let seen = plain.poll_received().await.expect("poll as a plain user");
    assert!(seen.iter().all(|f| f.name != name), "a 0600 fax was listed");

    let line = HylafaxLine::new(admin.clone());
    let got = line.poll_received().await.expect("poll with ADMIN");
    let fax = got.iter().find(|f| f.name == name).unwrap_or_else(|| {
        panic!(
            "{name} not among {:?}",
            got.iter().map(|f| &f.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(fax.tiff, bytes, "the fax's bytes as stored");
    assert_eq!(fax.sender_station, "ACME TSI");
    assert_eq!(fax.caller_number, "5551234");
    assert_eq!(fax.caller_name, "ACME Corp?[2J");
    assert_eq!(fax.pages, 2);
    let decoded = imagecast_faxgw::tiff::read_fax_tiff(&fax.tiff)
        .expect("decode")
        .expect("a fax TIFF");
    assert_eq!(decoded, pages, "the received pages, pixel for pixel");

    // Still there until removed: delivered at least once.
    assert!(path.exists());
    let err = plain.remove_received(&name).await.expect_err("must fail");
    assert!(
        matches!(err, HylafaxError::Refused { code: 550, .. }),
        "{err}"
    );
    line.remove_received(&name)
        .await
        .expect("remove the received fax");
    assert!(!path.exists(), "{} is still there", path.display());
    let again = line.poll_received().await.expect("poll again");
    assert!(again.iter().all(|f| f.name != name));
    let err = line.remove_received(&name).await.expect_err("must fail");
    assert!(
        matches!(err, HylafaxError::Refused { code: 550, .. }),
        "{err}"
    );
    let err = line
        .remove_received("../etc/hosts.hfaxd")
        .await
        .expect_err("must fail");
    assert!(matches!(err, HylafaxError::InvalidName(_)), "{err}");
}
