//! The systemd service: `contrib/imagecast-server.service` passes `systemd-analyze verify`
//! and its sandboxing rates well, and the server reports readiness and stopping on the notify
//! socket as `Type=notify` expects.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imagecast_tests::{Scratch, bin, run, wait_listening};

use crate::LIMIT;

/// The unit file as shipped.
fn unit() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contrib/imagecast-server.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_unit_file_verifies_and_is_sandboxed() {
    let work = Scratch::new();
    // verify checks that ExecStart's program exists: point it at the binary just built.
    let text = unit().replace(
        "/usr/bin/imagecast-server",
        &bin("imagecast-server").display().to_string(),
    );
    let file = work.page("imagecast-server.service", &text);
    let out = run(
        Command::new("systemd-analyze").arg("verify").arg(&file),
        LIMIT,
    )
    .expect("systemd-analyze runs (Debian package systemd; .ci/run installs it)");
    assert_eq!(
        (out.code, out.stderr.trim()),
        (0, ""),
        "systemd-analyze verify: {}",
        out.stderr
    );
    for wanted in [
        "Type=notify",
        "ProtectSystem=strict",
        "StateDirectory=imagecast",
        "Restart=on-failure",
        "User=imagecast",
    ] {
        assert!(text.contains(wanted), "{wanted}");
    }
    let out = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(&file),
        LIMIT,
    )
    .expect("systemd-analyze runs");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let exposure = out
        .stdout
        .lines()
        .find_map(|l| {
            l.split("exposure level for imagecast-server.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f32>().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {}", out.stdout));
    assert!(exposure <= 2.0, "exposure {exposure}: {}", out.stdout);
}

#[test]
fn readiness_and_stopping_reach_the_notify_socket() {
    let work = Scratch::new();
    let data = work.join("data");
    run(
        Command::new(bin("imagecast-server"))
            .args(["init", "--data-dir"])
            .arg(&data),
        LIMIT,
    )
    .expect("init runs")
    .assert_code(0);
    let socket_path = work.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("a notify socket");
    socket
        .set_read_timeout(Some(LIMIT))
        .expect("a read timeout");
    let mut child = Command::new(bin("imagecast-server"))
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let addr = wait_listening(&mut child, LIMIT).expect("listening");
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a readiness datagram");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("STATUS=listening on {addr}")),
        "{ready}"
    );
    // The port really is open when READY=1 arrives.
    std::net::TcpStream::connect(&addr).expect("the port is open");

    let stop = Instant::now();
    let pid = child.id().to_string();
    run(Command::new("kill").args(["-TERM", &pid]), LIMIT)
        .expect("kill runs")
        .assert_code(0);
    let n = socket.recv(&mut buf).expect("a stopping datagram");
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(stop.elapsed() < Duration::from_secs(20), "stops in time");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
