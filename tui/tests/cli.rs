//! The `imagecast` command line without a server (also makes `cargo test` build the binary
//! that the end-to-end tests in `tests/` start).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

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
}
