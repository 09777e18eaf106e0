//! The `imagecast-server` command line (also makes `cargo test` build the binary that the
//! end-to-end tests in `tests/` start).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

/// Runs `cmd` and asserts that it succeeded, showing its stderr when it did not.
fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imagecast-server"))
}

#[test]
fn init_check_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = server()
        .args(["check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("data directory"));

    succeeds(server().args(["init", "--data-dir"]).arg(&data));
    let again = server()
        .args(["init", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already an imagecast data directory"));

    let all = std::fs::read_to_string(data.join("groups/all.rec")).unwrap();
    assert_eq!(all, "# all distribution destinations\n# all.rec\n");
    let out = server()
        .args(["check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());

    let out = succeeds(
        server()
            .args(["device", "add", "--data-dir"])
            .arg(&data)
            .args([
                "10.0.0.7",
                "--name",
                "front desk printer",
                "--kind",
                "printer",
            ]),
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.trim().len(), 64, "the token alone on stdout");
    let all = std::fs::read_to_string(data.join("groups/all.rec")).unwrap();
    assert!(all.ends_with("10.0.0.7;front desk printer\n"), "{all}");

    let out = server()
        .args(["device", "add", "--data-dir"])
        .arg(&data)
        .args(["x.example", "--name", "x", "--kind", "toaster"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device kind \"toaster\""));

    let mut child = server()
        .args(["user", "add", "--data-dir"])
        .arg(&data)
        .args(["2001", "--role", "admin", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    assert!(child.wait().unwrap().success());
    let out = server()
        .args(["user", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2001\tadmin\n");

    std::fs::write(
        data.join("groups/bad.rec"),
        "# bad\n# bad.rec\nno-separator\n",
    )
    .unwrap();
    let out = server()
        .args(["check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("bad.rec:3: "));
}

#[test]
fn a_command_without_a_data_directory_says_how_to_give_one() {
    for args in [
        &["check"][..],
        &["device", "list"],
        &["journal", "--last", "3"],
    ] {
        let out = server()
            .args(args)
            .env_remove("IMAGECAST_DATA_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("this command needs --data-dir or IMAGECAST_DATA_DIR"),
            "{args:?}: {stderr}"
        );
    }
    // Given once, anywhere after the command, or by the environment.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    succeeds(server().arg("--data-dir").arg(&data).arg("init"));
    succeeds(
        server()
            .args(["device", "list"])
            .env("IMAGECAST_DATA_DIR", &data),
    );
}
