//! Every walkthrough in `docs/walkthroughs/` replayed headless against the demo network by
//! the real `imagecast demo --script FILE --headless`, then what it left on disk checked.
//! The demo's other offices take real-time sessions (they accept every connection demand,
//! as `imagecast relay listen --accept-all` does), so 05 needs no second program.
#![cfg(feature = "demo")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn walkthroughs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/walkthroughs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/walkthroughs/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// Checks an asciicast v2 recording: a header of the panel's size, then output events in
/// time order, each a whole screen; returns the number of events.
fn check_recording(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: serde_json::Value =
        serde_json::from_str(lines.next().expect("a header")).expect("a JSON header");
    assert_eq!(header["version"], 2, "{}", path.display());
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    let mut last = 0.0;
    let mut events = 0;
    for line in lines {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON event");
        let time = event[0].as_f64().expect("a time");
        assert!(time >= last, "{}: time goes back at {time}", path.display());
        last = time;
        assert_eq!(event[1], "o");
        let data = event[2].as_str().expect("output");
        assert!(data.starts_with("\x1b[H"), "each event redraws the screen");
        assert_eq!(data.matches("\r\n").count(), 23, "24 rows");
        events += 1;
    }
    assert!(events > 5, "{}: {events} screens", path.display());
    events
}

/// Runs one walkthrough in `root`, recording it to `root/recording.cast`; returns stdout,
/// failing with the screens on error.
fn replay(script: &Path, root: &Path) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_imagecast"))
        .args(["demo", "--headless", "--dir"])
        .arg(root)
        .arg("--script")
        .arg(script)
        .arg("--record")
        .arg(root.join("recording.cast"))
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("imagecast starts");
    let pid = child.id();
    // Both pipes are drained while it runs (the screens are long); a watchdog ends a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(out) => out.expect("imagecast's output is read"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{} did not finish within 180 s", script.display());
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{stdout}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_walkthrough_passes_headless() {
    let scripts = walkthroughs();
    assert!(scripts.len() >= 3, "walkthroughs missing: {scripts:?}");
    for script in scripts {
        let root = tempfile::tempdir().unwrap();
        let out = replay(&script, root.path());
        assert!(out.contains("─── after line"), "screens are printed");
        // The run's recording, and the one committed beside the script, both replay.
        check_recording(&root.path().join("recording.cast"));
        check_recording(&script.with_extension("cast"));
        assert!(
            out.contains("output tray:"),
            "the tray summary is printed on exit"
        );
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let tray = |domain: &str| {
            root.path()
                .join("terminals")
                .join(domain)
                .join("output-tray")
        };
        let samples = ["01-sales-report.png", "02-price-list.tif", "03-memo.jpg"];
        if name.starts_with("01-") {
            // Groups 2 and 4: all sales offices and product development-related places.
            for d in [
                "sale1.osk.mei.co.jp",
                "sale1.ngy.mei.co.jp",
                "sale1.fko.mei.co.jp",
                "devl1.hqs.mei.co.jp",
            ] {
                assert_eq!(files(&tray(d)), samples, "{d}");
                for s in samples {
                    assert!(
                        std::fs::metadata(tray(d).join(s)).unwrap().len() > 1000,
                        "{d}/{s}"
                    );
                }
            }
            for d in [
                "sale2.hqs.mei.co.jp",
                "plan1.hqs.mei.co.jp",
                "plan1.osk.mei.co.jp",
            ] {
                assert!(files(&tray(d)).is_empty(), "{d} is in neither group");
            }
            // The feeder is empty: the originals were handed back to its `returned` folder.
            let adf = root.path().join("mfp120/adf");
            assert_eq!(files(&adf), ["returned"], "the ADF was emptied");
            assert_eq!(
                files(&adf.join("returned")),
                samples,
                "the originals came back"
            );
            // The price list is a two-page TIFF: four pages in three files, for the panel
            // and for every receiver alike.
            assert!(out.contains("Scanned 4 page(s) in 3 file(s)"), "{out}");
            assert!(
                out.contains("sale1.osk.mei.co.jp (sales office, the Osaka branch): online, received 1 image (4 pages in 3 files)"),
                "{out}"
            );
        }
        if name.starts_with("02-") {
            // Kept once (image store), then sent again by its mark sheet to group 4.
            let store = files(&root.path().join("mfp120/image-store"));
            assert_eq!(store.len(), 1, "{store:?}");
            assert_eq!(files(&tray("devl1.hqs.mei.co.jp")), samples);
            assert_eq!(files(&tray("sale1.osk.mei.co.jp")), samples);
            assert_eq!(
                files(&root.path().join("mfp120/adf")),
                ["returned"],
                "the sheet left the feeder (handed back to `returned`)"
            );
        }
        if name.starts_with("05-") {
            // Sent in real time to the Osaka sales office, which accepts every demand in the
            // demo: each file whole and byte for byte, and nobody else got anything.
            let osaka = tray("sale1.osk.mei.co.jp");
            assert_eq!(files(&osaka), samples);
            let returned = root.path().join("mfp120/adf/returned");
            for s in samples {
                assert_eq!(
                    std::fs::read(osaka.join(s)).unwrap(),
                    std::fs::read(returned.join(s)).unwrap(),
                    "{s} arrived byte-identical"
                );
            }
            assert!(files(&tray("sale1.ngy.mei.co.jp")).is_empty());
            assert!(
                out.contains("Page 3 of 3 printed by sales office, the Osaka branch."),
                "{out}"
            );
            assert!(out.contains("Session ended: done."), "{out}");
        }
        if name.starts_with("04-") {
            // The customer's machine received the four pages of the ADF through gateway 1,
            // and its one-page reply came back to this panel's tray as a fax.
            let inbox = root.path().join("fax/customer-inbox");
            let got = files(&inbox);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].ends_with("-from-0355550101.tif"), "{got:?}");
            let pages =
                imagecast_faxgw::tiff::read_fax_tiff(&std::fs::read(inbox.join(&got[0])).unwrap())
                    .unwrap()
                    .expect("a fax TIFF");
            assert_eq!(pages.len(), 4, "every page of the three documents");
            let tray = files(&root.path().join("mfp120/output-tray"));
            assert!(
                tray.contains(&"fax-from-0665550199.tif".to_owned()),
                "{tray:?}"
            );
            let reply = imagecast_faxgw::tiff::read_fax_tiff(
                &std::fs::read(
                    root.path()
                        .join("mfp120/output-tray/fax-from-0665550199.tif"),
                )
                .unwrap(),
            )
            .unwrap()
            .expect("the reply is a fax TIFF");
            assert_eq!(reply.len(), 1);
            assert!(
                reply[0].black_pixels() > 10_000,
                "the reply page has its frame and bars"
            );
            assert!(
                out.contains(
                    "customer's fax machine 0665550199 \"ACME TRADING OSAKA\": received 1 fax"
                ),
                "{out}"
            );
        }
        if name.starts_with("03-") {
            let develop =
                std::fs::read_to_string(root.path().join("server/groups/develop.rec")).unwrap();
            assert_eq!(
                develop,
                "# product development-related places\n# develop.rec\ndevl1.hqs.mei.co.jp;development department of the head office\n",
                "withdrawal restored the file"
            );
        }
    }
}

/// Runs `imagecast demo --headless --dir ROOT --script SCRIPT` (no recording) and returns
/// whether it succeeded, with stdout and stderr.
fn demo_run(root: &Path, script: &str) -> (bool, String, String) {
    let path = root.with_extension("script.txt");
    std::fs::write(&path, script).expect("the script is written");
    let out = Command::new(env!("CARGO_BIN_EXE_imagecast"))
        .args(["demo", "--headless", "--dir"])
        .arg(root)
        .arg("--script")
        .arg(&path)
        .output()
        .expect("imagecast runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A user whose competence send-fax was revoked (issue 12, feature 5) sees the
/// supervisor's reason on the fax progress screen, and the ADF keeps its documents.
#[test]
fn a_fax_refused_by_the_supervisor_shows_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let login = "expect \"Enter your user ID and password\"\ntype 1001\npress tab\ntype 1234\npress start\nexpect \"Select a mode\"\n";
    // A first run creates the demo's data.
    let (ok, out, err) = demo_run(&root, login);
    assert!(ok, "{err}\n{out}");
    let admin = Path::new(env!("CARGO_BIN_EXE_imagecast")).with_file_name("imagecast-server");
    let revoked = Command::new(&admin)
        .args(["competence", "revoke", "1001", "send-fax", "--data-dir"])
        .arg(root.join("server"))
        .output()
        .expect("imagecast-server runs (cargo build --workspace --bins)");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let script = format!(
        "{login}press 2\nexpect \"Facsimile transmission: destinations\"\ntype 0665550199\npress start\nexpect \"Fax not sent\" within 20s\nexpect \"user 1001 lacks the competence send-fax\"\npress start\nexpect \"Facsimile transmission: destinations\"\n"
    );
    let (ok, out, err) = demo_run(&root, &script);
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("it was revoked"), "{out}");
    assert_eq!(
        files(&root.join("mfp120/adf")).len(),
        3,
        "the documents stay in the ADF"
    );
}
