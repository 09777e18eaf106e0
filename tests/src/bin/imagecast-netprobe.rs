//! `imagecast-netprobe`: the TCP probe the NAT test runs inside its network namespaces
//! (`ip netns exec NS imagecast-netprobe ...`), so the test needs no `nc`, `socat` or Python.
//!
//! ```text
//! imagecast-netprobe listen ADDR:PORT [--echo] [--for SECS]
//!     prints "listening on ADDR:PORT", then "accepted from IP:PORT" per connection (the peer
//!     as this host sees it: behind a NAT, the router's public address); --echo writes back
//!     what each connection sends; exits after SECS (default 60) whatever happens
//! imagecast-netprobe connect ADDR:PORT [--timeout-ms MS]
//!     exit 0 "connected from IP:PORT" (the local address used); exit 3 "refused: ...";
//!     exit 4 "timed out after MS ms" (a firewall that drops); exit 5 another error
//!     ("unreachable: ...", e.g. no route)
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("listen") => listen(&args[1..]),
        Some("connect") => connect(&args[1..]),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: imagecast-netprobe listen ADDR:PORT [--echo] [--for SECS]\n       \
         imagecast-netprobe connect ADDR:PORT [--timeout-ms MS]"
    );
    ExitCode::from(2)
}

/// The address argument and the value of `--NAME VALUE` (parsed), or `None` when malformed.
fn parse(args: &[String], option: &str, default: u64) -> Option<(SocketAddr, u64, bool)> {
    let addr: SocketAddr = args.first()?.parse().ok()?;
    let mut value = default;
    let mut echo = false;
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        if a == option {
            value = rest.next()?.parse().ok()?;
        } else if a == "--echo" {
            echo = true;
        } else {
            return None;
        }
    }
    Some((addr, value, echo))
}

fn listen(args: &[String]) -> ExitCode {
    let Some((addr, secs, echo)) = parse(args, "--for", 60) else {
        return usage();
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("imagecast-netprobe: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    // The lifetime bound: the process ends after SECS even if nobody stops it.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        std::process::exit(0);
    });
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        match conn.peer_addr() {
            Ok(peer) => println!("accepted from {peer}"),
            Err(_) => println!("accepted from ?"),
        }
        let _ = std::io::stdout().flush();
        if echo {
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    }
    ExitCode::SUCCESS
}

fn connect(args: &[String]) -> ExitCode {
    let Some((addr, ms, _)) = parse(args, "--timeout-ms", 2000) else {
        return usage();
    };
    let started = Instant::now();
    match TcpStream::connect_timeout(&addr, Duration::from_millis(ms)) {
        Ok(s) => {
            match s.local_addr() {
                Ok(local) => println!("connected from {local}"),
                Err(_) => println!("connected"),
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            println!("refused: {e}");
            ExitCode::from(3)
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            println!(
                "timed out after {} ms",
                started.elapsed().as_millis().max(u128::from(ms))
            );
            ExitCode::from(4)
        }
        Err(e) => {
            println!("unreachable: {e}");
            ExitCode::from(5)
        }
    }
}
