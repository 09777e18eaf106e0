//! The real `imagecast-faxgw` binary: fax machines calling each other on a simulated exchange
//! in a temporary folder, with faults set through `pstn`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::page::{FAX_WIDTH, FaxPage, Resolution, pages_from_file};
use imagecast_faxgw::tiff::{read_fax_tiff, save_fax_tiff};

const BIN: &str = env!("CARGO_BIN_EXE_imagecast-faxgw");
/// Ring time for calls in these tests, in seconds.
const RING: &str = "0.5";

/// A test's folder: the exchange, inboxes and files to send.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("fx")
                .tempdir_in("/tmp")
                .expect("test set-up"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn exchange(&self) -> PathBuf {
        self.path("ex")
    }

    /// Three distinct fine pages written as one MH fax TIFF; returns the file and the pages.
    fn three_page_tiff(&self) -> (PathBuf, Vec<FaxPage>) {
        let mut pages = Vec::new();
        for k in 0..3u32 {
            let mut page = FaxPage::white(Resolution::Fine, 400 + k * 50);
            for y in 0..page.rows {
                for x in 0..FAX_WIDTH {
                    if (x / (7 + k) + y / (11 + k)) % (3 + k) == 0
                        || (x * 31 + y * 17 + k) % 97 == 0
                    {
                        page.set(x, y, true);
                    }
                }
            }
            pages.push(page);
        }
        let path = self.path("doc.tif");
        save_fax_tiff(&path, &pages, Coding::Mh).expect("test set-up");
        (path, pages)
    }

    /// Starts a receiving fax machine and waits until its number answers.
    fn machine(&self, number: &str, station: &str, extra: &[&str]) -> Machine {
        let inbox = self.path(&format!("inbox-{number}"));
        let child = Command::new(BIN)
            .args(["machine", "--exchange"])
            .arg(self.exchange())
            .args(["--number", number, "--station", station, "--inbox"])
            .arg(&inbox)
            .args(extra)
            .env("IMAGECAST_FAX_RING_TIME", RING)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("test set-up");
        let socket = self.exchange().join("lines").join(number).join("sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "machine {number} never held its number"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Machine {
            child: Some(child),
            inbox,
        }
    }

    /// Sends `files` from `from` to `to` with the real binary.
    fn send(&self, from: &str, to: &str, files: &[&Path], extra: &[&str]) -> Output {
        Command::new(BIN)
            .args(["machine", "--exchange"])
            .arg(self.exchange())
            .args(["--number", from, "--station", "SENDER ", "--to", to])
            .args(extra)
            .arg("--send")
            .args(files)
            .env("IMAGECAST_FAX_RING_TIME", RING)
            .output()
            .expect("test set-up")
    }

    fn pstn(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .args(["pstn", "--exchange"])
            .arg(self.exchange())
            .args(args)
            .output()
            .expect("test set-up");
        assert!(out.status.success(), "pstn {args:?}: {}", text(&out.stderr));
        out
    }

    /// The call log's rows (header skipped), as fields.
    fn calls(&self) -> Vec<Vec<String>> {
        let out = self.pstn(&["calls"]);
        text(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A receiving fax machine process; killed when dropped.
struct Machine {
    child: Option<Child>,
    inbox: PathBuf,
}

impl Machine {
    /// The received TIFFs, waiting (bounded) until there are `n`.
    fn wait_for_faxes(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.inbox)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            files.retain(|p| p.extension().is_some_and(|e| e == "tif"));
            files.sort();
            if files.len() >= n {
                return files;
            }
            assert!(
                Instant::now() < deadline,
                "{} faxes after 20 s, not {n}",
                files.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the machine with SIGTERM and returns its exit status and output.
    fn stop(mut self) -> Output {
        let child = self.child.take().expect("test set-up");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("test set-up");
        assert!(status.success());
        child.wait_with_output().expect("test set-up")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// libtiff's view of a fax TIFF: `tiffinfo -D` must read every page without complaint, and
/// `tiffcp -c none` must decode it; returns tiffinfo's report and the decoded pages.
fn libtiff_check(path: &Path) -> (String, Vec<FaxPage>) {
    let run = |tool: &str, args: &[&std::ffi::OsStr]| {
        Command::new(tool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install the Debian package libtiff-tools (faxgw/ci-packages.txt)")
        })
    };
    let info = run("tiffinfo", &["-D".as_ref(), path.as_os_str()]);
    let stderr = text(&info.stderr);
    assert!(
        info.status.success() && stderr.trim().is_empty(),
        "tiffinfo: {stderr}"
    );
    let plain = path.with_file_name("libtiff-plain.tif");
    let cp = run(
        "tiffcp",
        &[
            "-c".as_ref(),
            "none".as_ref(),
            path.as_os_str(),
            plain.as_os_str(),
        ],
    );
    assert!(cp.status.success(), "tiffcp: {}", text(&cp.stderr));
    let pages = pages_from_file(&plain, Resolution::Standard).expect("test set-up");
    std::fs::remove_file(&plain).expect("test set-up");
    (text(&info.stdout), pages)
}

#[test]
fn a_three_page_fax_arrives_bit_identical_in_g4_between_ecm_machines() {
    let s = Scratch::new();
    let (doc, pages) = s.three_page_tiff();
    let receiver = s.machine("200", "Customer 200", &[]);
    let out = s.send("100", "200", &[&doc], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("sent 3 pages") && said.contains("\"Customer 200\"") && said.contains("G4"),
        "{said}"
    );

    let faxes = receiver.wait_for_faxes(1);
    assert_eq!(faxes.len(), 1);
    let received = read_fax_tiff(&std::fs::read(&faxes[0]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        received, pages,
        "received pages differ from what the sender coded"
    );
    let (info, libtiff_pages) = libtiff_check(&faxes[0]);
    assert_eq!(libtiff_pages, pages, "libtiff decodes other pixels");
    assert_eq!(
        info.matches("Compression Scheme: CCITT Group 4").count(),
        3,
        "{info}"
    );
    assert_eq!(
        info.matches("Resolution: 204, 196 pixels/inch").count(),
        3,
        "{info}"
    );
    assert_eq!(
        info.matches("Photometric Interpretation: min-is-white")
            .count(),
        3
    );
    assert_eq!(info.matches("FillOrder: msb-to-lsb").count(), 3);
    assert_eq!(info.matches("Image Width: 1728").count(), 3);

    let calls = s.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(&calls[0][1..6], ["100", "200", "sent", "3", "G4"]);
    assert_eq!(calls[0][7], "Customer 200");

    // The machine stops on SIGTERM, gives its number back, and its inbox holds only the fax.
    let stopped = receiver.stop();
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    let log = text(&stopped.stdout);
    assert!(
        log.contains("fax from 100 \"SENDER\": 3 pages (G4, ECM)"),
        "{log}"
    );
    assert!(!s.exchange().join("lines/200/sock").exists());
    let inbox: Vec<_> = std::fs::read_dir(s.path("inbox-200"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(inbox.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        inbox[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn without_ecm_at_either_end_the_call_uses_mh_and_images_are_scaled() {
    let s = Scratch::new();
    let receiver = s.machine("201", "NO ECM", &["--no-ecm", "--no-fine"]);
    // A grey PNG with a black square: scaled to 1728 wide and thresholded.
    let png = s.path("square.png");
    image::GrayImage::from_fn(864, 1000, |x, y| {
        image::Luma([if (100..300).contains(&x) && (100..300).contains(&y) {
            20
        } else {
            230
        }])
    })
    .save(&png)
    .unwrap();
    let out = s.send("101", "201", &[&png], &["--fine"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("MH"), "{}", text(&out.stdout));
    let faxes = receiver.wait_for_faxes(1);
    let (info, pages) = libtiff_check(&faxes[0]);
    assert!(info.contains("Compression Scheme: CCITT Group 3"), "{info}");
    // Sent fine, printed standard: the receiver cannot print fine.
    assert!(info.contains("Resolution: 204, 98 pixels/inch"), "{info}");
    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    // 864 × 1000 square pixels → 1728 wide, 1000 × 2 × 98 / 204 ≈ 961 rows.
    assert!((955..=965).contains(&page.rows), "{} rows", page.rows);
    assert!(page.is_black(400, 190) && !page.is_black(700, 190) && !page.is_black(400, 400));
    assert_eq!(s.calls()[0][5], "MH");
}

#[test]
fn busy_twice_then_sent() {
    let s = Scratch::new();
    let (doc, _) = s.three_page_tiff();
    let _receiver = s.machine("202", "BUSY TEST", &[]);
    let set = s.pstn(&["fault", "202", "busy", "--times", "2"]);
    assert!(text(&set.stdout).contains("busy"));
    for _ in 0..2 {
        let out = s.send("102", "202", &[&doc], &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("not sent: busy"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = s.send("102", "202", &[&doc], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Vec<String> = s.calls().into_iter().map(|c| c[3].clone()).collect();
    assert_eq!(results, ["busy", "busy", "sent"]);
}

#[test]
fn a_number_nobody_holds_rings_out_as_no_answer_in_bounded_time() {
    let s = Scratch::new();
    let (doc, _) = s.three_page_tiff();
    let started = Instant::now();
    let out = s.send("103", "999", &[&doc], &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not sent: no answer"),
        "{}",
        text(&out.stderr)
    );
    assert!(took >= Duration::from_millis(450), "rang only {took:?}");
    assert!(took < Duration::from_secs(8), "rang {took:?}");

    // A held number with a no-answer fault rings out too, once.
    let _receiver = s.machine("203", "NOANSWER", &[]);
    s.pstn(&["fault", "203", "no-answer", "--times", "1"]);
    let out = s.send("103", "203", &[&doc], &[]);
    assert!(
        text(&out.stderr).contains("no answer"),
        "{}",
        text(&out.stderr)
    );
    let out = s.send("103", "203", &[&doc], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Vec<String> = s.calls().into_iter().map(|c| c[3].clone()).collect();
    assert_eq!(results, ["no answer", "no answer", "sent"]);
}

#[test]
fn a_page_error_at_page_2_is_reported_and_page_1_is_kept() {
    for no_ecm in [false, true] {
        let s = Scratch::new();
        let (doc, pages) = s.three_page_tiff();
        let extra: &[&str] = if no_ecm { &["--no-ecm"] } else { &[] };
        let receiver = s.machine("204", "PAGEERR", extra);
        s.pstn(&["fault", "204", "page-error", "2"]);
        let out = s.send("104", "204", &[&doc], &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains("not sent: page error at page 2"), "{err}");
        assert!(err.contains("1 of 3 pages confirmed"), "{err}");
        if no_ecm {
            assert!(
                err.contains("lines good"),
                "the MH line check should have failed: {err}"
            );
        } else {
            assert!(err.contains("frame check"), "{err}");
        }
        let faxes = receiver.wait_for_faxes(1);
        let kept = read_fax_tiff(&std::fs::read(&faxes[0]).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(kept, pages[..1]);
        let call = &s.calls()[0];
        assert_eq!((call[3].as_str(), call[4].as_str()), ("page error", "1"));
        // The fault was for one call: the next goes through.
        let out = s.send("104", "204", &[&doc], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

#[test]
fn hang_up_after_page_1_drops_the_call() {
    let s = Scratch::new();
    let (doc, pages) = s.three_page_tiff();
    let receiver = s.machine("205", "HANGUP", &[]);
    s.pstn(&["fault", "205", "hang-up-after", "1"]);
    let out = s.send("105", "205", &[&doc], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("failed: the line dropped after page 1"),
        "{err}"
    );
    let faxes = receiver.wait_for_faxes(1);
    let kept = read_fax_tiff(&std::fs::read(&faxes[0]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(kept, pages[..1]);
    assert_eq!(s.calls()[0][3], "failed");
    let log = text(&receiver.stop().stdout);
    assert!(log.contains("dropped"), "{log}");
}

#[test]
fn a_number_is_held_by_one_machine_and_clear_removes_faults() {
    let s = Scratch::new();
    let _first = s.machine("206", "FIRST", &[]);
    let second = Command::new(BIN)
        .args(["machine", "--exchange"])
        .arg(s.exchange())
        .args(["--number", "206", "--station", "SECOND", "--inbox"])
        .arg(s.path("inbox-second"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("number 206 is already held"),
        "{}",
        text(&second.stderr)
    );

    s.pstn(&["fault", "206", "busy"]);
    let numbers = text(&s.pstn(&["numbers"]).stdout);
    assert!(
        numbers.contains("206\t\"FIRST\"\tbusy (every call)"),
        "{numbers}"
    );
    s.pstn(&["clear"]);
    let numbers = text(&s.pstn(&["numbers"]).stdout);
    assert!(numbers.contains("206\t\"FIRST\"\tno faults"), "{numbers}");

    let bad = Command::new(BIN)
        .args(["machine", "--exchange"])
        .arg(s.exchange())
        .args(["--number", "207", "--station", "BAD\u{1b}[2J", "--inbox"])
        .arg(s.path("inbox-bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("not a station ID"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn a_machine_stopped_during_a_call_finishes_it_and_stores_the_fax() {
    let s = Scratch::new();
    let (doc, pages) = s.three_page_tiff();
    let receiver = s.machine("208", "STOPPING", &[]);
    // A slow call: 0.02 x (6 s of handshake + about 80 s of pages at 14 400 bit/s).
    let mut sender = Command::new(BIN)
        .args(["machine", "--exchange"])
        .arg(s.exchange())
        .args(["--number", "108", "--station", "SLOW", "--to", "208"])
        .args(["--time-scale", "0.02", "--send"])
        .arg(&doc)
        .env("IMAGECAST_FAX_RING_TIME", RING)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the receiving machine once the first page is confirmed.
    let stdout = sender.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the first page was never confirmed");
        if line == "208: page 1 confirmed" {
            break;
        }
    }
    assert!(
        sender.try_wait().unwrap().is_none(),
        "the call ended before the machine was stopped"
    );
    let stopped = receiver.stop();
    let sent = sender.wait_with_output().unwrap();
    let said = reader.join().unwrap();
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    assert!(said.contains("208: dialling"), "{said}");
    assert!(
        said.contains("208: connected to \"STOPPING\" (G4 ECM)"),
        "{said}"
    );
    assert!(said.contains("208: sending page 3 of 3"), "{said}");
    assert!(said.contains("sent 3 pages"), "{said}");
    let faxes: Vec<_> = std::fs::read_dir(s.path("inbox-208"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(faxes.len(), 1, "{faxes:?}");
    let stored = read_fax_tiff(&std::fs::read(&faxes[0]).unwrap()).unwrap();
    assert_eq!(stored.unwrap(), pages);
    // Stopped: the number no longer answers.
    let out = s.send("108", "208", &[&doc], &[]);
    assert!(
        text(&out.stderr).contains("no answer"),
        "{}",
        text(&out.stderr)
    );
}
