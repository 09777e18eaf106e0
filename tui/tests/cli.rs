//! The `imagecast` command line without a server (also makes `cargo test` build the binary
//! that the end-to-end tests in `tests/` start).

use std::process::Command;

/// Runs `cmd` and asserts that it succeeded, showing its stderr when it did not.
fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("imagecast runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn imagecast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imagecast"));
    c.env_clear().env("HOME", std::env::temp_dir());
    c
}

#[test]
fn missing_settings_and_unreachable_servers_are_one_sentence_errors() {
    let out = imagecast().arg("groups").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("imagecast: no device given"), "{err}");

    let out = imagecast()
        .args([
            "--server",
            "127.0.0.1:1",
            "--device",
            "a.example",
            "--token",
            "t",
            "groups",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the image server at 127.0.0.1:1"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("refused").count(), 1, "the cause once: {err}");

    // A mistyped yes-or-no variable is named, not quietly read as no.
    let out = imagecast()
        .env("IMAGECAST_PLAIN", "ture")
        .args([
            "--server",
            "127.0.0.1:1",
            "--device",
            "a.example",
            "--token",
            "t",
        ])
        .arg("groups")
        .output()
        .expect("imagecast runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("IMAGECAST_PLAIN=\"ture\""), "{err}");
}

#[test]
fn marksheet_print_then_decode_even_after_a_rough_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.png");
    // An A4 page at 150 dpi with some "text".
    let img = image::GrayImage::from_fn(1240, 1754, |x, y| {
        image::Luma([if y % 40 < 6 && (100..1100).contains(&x) {
            20
        } else {
            250
        }])
    });
    img.save(&page).unwrap();
    let sheet = dir.path().join("sheet.png");
    succeeds(
        imagecast()
            .args(["marksheet", "print", "01234567", "--page"])
            .arg(&page)
            .arg("--out")
            .arg(&sheet),
    );
    // Rescanned: half resolution, saved as a JPEG.
    let rescan = dir.path().join("rescan.jpg");
    let printed = image::open(&sheet).unwrap();
    printed
        .resize(
            printed.width() / 2,
            printed.height() / 2,
            image::imageops::FilterType::Triangle,
        )
        .to_luma8()
        .save(&rescan)
        .unwrap();
    let out = succeeds(imagecast().args(["marksheet", "decode"]).arg(&rescan));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "01234567\n");

    let out = imagecast()
        .args(["marksheet", "decode"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("page.png"));

    let out = imagecast()
        .args(["marksheet", "print", "1234", "--page"])
        .arg(&page)
        .args(["--out", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 digits"));

    let missing = dir.path().join("nope.png");
    let out = imagecast()
        .args(["marksheet", "decode"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.png"));
}

#[test]
fn usage_errors_exit_2_and_the_exit_codes_are_in_help() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, b"x").unwrap();
    // The settings come from the environment: the usage line does not ask for them.
    let out = imagecast()
        .env("IMAGECAST_SERVER", "127.0.0.1:1")
        .env("IMAGECAST_DEVICE", "a.example")
        .env("IMAGECAST_TOKEN", "t")
        .arg("send")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("name at least one destination"), "{err}");

    let out = imagecast()
        .env("IMAGECAST_DEVICE", "a.example")
        .arg("receive")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: imagecast receive --out <OUT>\n"),
        "{err}"
    );
    assert!(!err.contains("--device"), "{err}");

    let out = succeeds(imagecast().arg("--help"));
    let help = String::from_utf8_lossy(&out.stdout);
    for code in [
        "1 error",
        "2 usage",
        "3 a destination failed",
        "4 a destination is",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}

/// `config show` says where each setting comes from: a flag beats the environment, the
/// environment the file (named with its line), the file the default; secrets never print.
#[test]
fn config_show_names_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "server = \"10.0.0.5:7410\"\n# the planning PC\ndevice = \"plan1.hqs.mei.co.jp\"\ntoken = \"sekrit-token\"\nuser = \"2002\"\n",
    )
    .unwrap();
    let out = succeeds(
        imagecast()
            .env("IMAGECAST_USER", "1001")
            .env("IMAGECAST_PASSWORD", "pw-from-env")
            .env("IMAGECAST_CONFIG", &file)
            .args(["--device", "sale1.osk.mei.co.jp", "config", "show"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} row: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let path = file.display();
    assert_eq!(row("server"), format!("server 10.0.0.5:7410 file {path}:1"));
    assert_eq!(row("device"), "device sale1.osk.mei.co.jp flag (--device)");
    assert_eq!(row("token"), format!("token (set) file {path}:4"));
    assert_eq!(row("user"), "user 1001 environment (IMAGECAST_USER)");
    assert_eq!(
        row("password"),
        "password (set) environment (IMAGECAST_PASSWORD)"
    );
    assert_eq!(row("plain"), "plain no default");
    assert!(
        !text.contains("sekrit") && !text.contains("pw-from-env"),
        "{text}"
    );
    assert_eq!(row("config"), format!("config {path}"));

    // No file, no flags: the defaults, and the missing file said plainly.
    let out = succeeds(imagecast().args(["config", "show"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let flat: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        flat.contains(&"server 127.0.0.1:7410 default".to_owned()),
        "{text}"
    );
    assert!(flat.contains(&"device (none) not set".to_owned()), "{text}");
    assert!(text.contains("(not there; nothing read)"), "{text}");

    // A misspelt key is an error naming the file and the line.
    std::fs::write(&file, "server = \"h:1\"\nsever = \"typo\"\n").unwrap();
    let out = imagecast()
        .args(["--config"])
        .arg(&file)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{path} is not a valid config file"))
            && err.contains("line 2")
            && err.contains("unknown field `sever`"),
        "{err}"
    );
}

/// `fax send` checks its files before it connects: pages are images (the rule `send` and the
/// feeder use), and a job's files fit what one job carries; each refusal names the file.
#[test]
fn fax_send_refuses_non_images_and_oversized_jobs_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"minutes").unwrap();
    // More than a fax job carries (64 MiB in parts): a PNG signature, then a hole, so the
    // file costs no disk; it is refused before anything is read past its head or sent.
    let big = dir.path().join("big.png");
    let f = std::fs::File::create(&big).unwrap();
    std::io::Write::write_all(&mut &f, b"\x89PNG\r\n\x1a\n").unwrap();
    f.set_len(imagecast_shared::fax::MAX_UPLOADED_JOB_BYTES + 1)
        .unwrap();
    drop(f);
    let fax = |file: &std::path::Path| {
        imagecast()
            .env("IMAGECAST_SERVER", "127.0.0.1:1")
            .env("IMAGECAST_DEVICE", "a.example")
            .env("IMAGECAST_TOKEN", "t")
            .args(["fax", "send", "--to", "0312345678"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = fax(&text);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("not a PNG, JPEG or TIFF image"),
        "{err}"
    );
    let out = fax(&big);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("big.png") && err.contains("a fax job carries at most"),
        "{err}"
    );
    assert!(
        !err.contains("127.0.0.1:1"),
        "refused before connecting: {err}"
    );
}
