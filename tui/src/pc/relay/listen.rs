//! `relay listen`: answering demands (all, by pattern, or by asking), storing the pages of
//! accepted sessions and sending `--reply` files back in them, or handing a session to a
//! local TCP service (`--forward`).

use super::pages::{Outgoing, PageEvent, exchange};
use super::*;

/// How `relay listen` answers demands.
#[derive(Clone, Debug)]
pub enum Policy {
    /// Accept every demand.
    AcceptAll,
    /// Accept a demand whose device domain or user ID matches one of these shell globs.
    AcceptFrom(Vec<String>),
    /// Ask the operator at the terminal.
    Ask,
}

/// What `relay listen` does with an accepted session.
#[derive(Clone, Debug)]
pub struct ListenArgs {
    /// Where pages are stored.
    pub out: PathBuf,
    /// How demands are answered.
    pub policy: Policy,
    /// Hand sessions to this local TCP service instead of storing pages.
    pub forward: Option<String>,
    /// Files sent back, each as one page, in every session accepted.
    pub reply: Vec<PathBuf>,
    /// Events go to the log, not to stdout (a listener inside another program).
    pub quiet: bool,
}

/// `relay listen`: answers demands and serves accepted sessions, one line per event, until
/// the device logs out (then it returns Ok).
pub async fn listen(s: &Settings, args: &ListenArgs) -> anyhow::Result<()> {
    if args.forward.is_none() {
        imagecast_shared::private::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    for f in &args.reply {
        Outgoing::file(f)?;
    }
    let mut backoff = crate::pc::reconnect_backoff();
    let mut connected_once = false;
    loop {
        let (client, events) = match connect(s, false).await {
            Ok(x) => x,
            // Once it worked, a server that goes away is waited for; a refusal is final.
            Err(e) if connected_once && e.is_connection_lost() => {
                tracing::info!(error = %peer_reason(&e.to_string()), "cannot reach the server; retrying");
                tokio::time::sleep(backoff.pause()).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        maybe_login(&client, s).await?;
        client.relay_listen().await?;
        connected_once = true;
        backoff.reset();
        eprintln!(
            "listening for connection demands at {} as {}",
            s.server, s.device
        );
        match answer_demands(&client, events, args).await {
            // The device logged out: no reconnecting.
            Ended::LoggedOut => return Ok(()),
            Ended::Lost(reason) => {
                eprintln!(
                    "lost the connection to {} ({}); reconnecting",
                    s.server,
                    peer_reason(&reason)
                );
                tokio::time::sleep(backoff.pause()).await;
            }
        }
    }
}

/// Takes connection demands on an open connection and accepts every one, storing the pages
/// in `out`, as `relay listen --accept-all --out DIR` does, until the connection ends (the
/// demo's simulated terminals take real-time sessions this way).
pub async fn accept_all(client: Client, events: imagecast_shared::client::Events, out: PathBuf) {
    let args = ListenArgs {
        out,
        policy: Policy::AcceptAll,
        forward: None,
        reply: Vec::new(),
        quiet: true,
    };
    match client.relay_listen().await {
        Ok(()) => {
            let _ = answer_demands(&client, events, &args).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot take connection demands"),
    }
}

/// How one connection of `relay listen` ended.
enum Ended {
    LoggedOut,
    Lost(String),
}

/// Answers the demands that come on one connection until it ends.
async fn answer_demands(
    client: &Client,
    mut events: imagecast_shared::client::Events,
    args: &ListenArgs,
) -> Ended {
    while let Some(event) = events.recv().await {
        match event {
            Event::Demanded(d) => {
                let decision = decide(&args.policy, &d).await;
                let from = describe(&d);
                match client.answer(d.demand, decision.clone()).await {
                    Ok(Some(session)) => {
                        say_to(
                            args.quiet,
                            &format!("demand from {from}: accepted (session {})", session.id),
                        );
                        let args = args.clone();
                        tokio::spawn(async move { serve(session, &args).await });
                    }
                    Ok(None) => say_to(
                        args.quiet,
                        &format!(
                            "demand from {from}: rejected ({})",
                            decision.err().unwrap_or_default()
                        ),
                    ),
                    Err(e) => say_to(
                        args.quiet,
                        &format!("demand from {from}: {}", peer_reason(&e.to_string())),
                    ),
                }
            }
            Event::DemandWithdrawn { demand, reason } => {
                say_to(
                    args.quiet,
                    &format!("demand {demand} withdrawn: {}", peer_reason(&reason)),
                );
            }
            Event::LoggedOut(reason) => {
                say_to(args.quiet, &format!("logged out: {}", peer_reason(&reason)));
                client.close().await;
                return Ended::LoggedOut;
            }
            Event::Closed(reason) => return Ended::Lost(reason),
            Event::Notice(text) => tracing::info!("server: {}", peer_reason(&text)),
            _ => {}
        }
    }
    Ended::Lost("the connection ended".into())
}

/// One line on stdout, flushed (scripts read it as it comes).
/// With `quiet` (a listener inside another program, whose stdout is not its own), a log
/// line instead.
fn say_to(quiet: bool, line: &str) {
    if quiet {
        tracing::info!("{line}");
    } else {
        say(line);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn describe(d: &IncomingDemand) -> String {
    if d.user.is_empty() {
        format!("{} ({})", peer(&d.from.domain), peer(&d.from.name))
    } else {
        format!(
            "{} ({}, user {})",
            peer(&d.from.domain),
            peer(&d.from.name),
            peer(&d.user)
        )
    }
}

/// The answer to a demand under `policy`.
async fn decide(policy: &Policy, d: &IncomingDemand) -> Result<(), String> {
    match policy {
        Policy::AcceptAll => Ok(()),
        Policy::AcceptFrom(patterns) => {
            let domain = d.from.domain.to_ascii_lowercase();
            if patterns.iter().any(|p| {
                glob(&p.to_ascii_lowercase(), &domain) || (!d.user.is_empty() && glob(p, &d.user))
            }) {
                Ok(())
            } else {
                Err("not accepted by this terminal's --accept-from patterns".into())
            }
        }
        Policy::Ask => ask(d).await,
    }
}

/// Asks the operator on the terminal (stderr and stdin); no terminal, or no answer in time,
/// is a rejection with that reason.
async fn ask(d: &IncomingDemand) -> Result<(), String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err("this terminal asks its operator, and no operator is at it".into());
    }
    let secs = d.expires.as_secs().saturating_sub(2).max(1);
    eprint!(
        "Connection demand from {}: accept? [y/N] ({secs} s) ",
        describe(d)
    );
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    match tokio::time::timeout(Duration::from_secs(secs), answer).await {
        Ok(Ok(Ok(line))) if matches!(line.trim(), "y" | "Y" | "yes") => Ok(()),
        Ok(_) => Err("the operator rejected it".into()),
        Err(_) => Err("the operator did not answer".into()),
    }
}

/// A shell glob: `*` any run, `?` one character, `[abc]`/`[a-z]`/`[!a]` one of a set.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                return t.first() == Some(&'[') && glob_at(&p[1..], &t[1..]);
            };
            let Some(c) = t.first() else { return false };
            let (negate, set) = match p[1] {
                '!' | '^' => (true, &p[2..close]),
                _ => (false, &p[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != negate && glob_at(&p[close + 1..], &t[1..])
        }
        Some(c) => t.first() == Some(c) && glob_at(&p[1..], &t[1..]),
    }
}

/// Serves one accepted session: pages into the folder, or a forward to a local service.
async fn serve(session: RelaySession, args: &ListenArgs) {
    let id = session.id;
    let from = peer(&session.peer.domain).into_owned();
    let result = match &args.forward {
        Some(addr) => match tokio::net::TcpStream::connect(addr.as_str()).await {
            Ok(tcp) => {
                let (rd, wr) = tcp.into_split();
                splice(session.sender, session.receiver, rd, wr).await
            }
            Err(e) => {
                let reason = format!("cannot reach the forwarded service: {e}");
                let _ = session.sender.end(&reason).await;
                Err(reason)
            }
        },
        None => store_pages(session, &args.out, &args.reply, &from, args.quiet).await,
    };
    match result {
        Ok(reason) => say_to(
            args.quiet,
            &format!("session {id} ended: {}", peer_reason(&reason)),
        ),
        Err(reason) => say_to(
            args.quiet,
            &format!("session {id} broke: {}", peer_reason(&reason)),
        ),
    }
}

/// Stores the peer's pages and sends the `--reply` files back in the same session, until
/// the peer ends it; returns how it ended.
async fn store_pages(
    session: RelaySession,
    dir: &Path,
    reply: &[PathBuf],
    from: &str,
    quiet: bool,
) -> Result<String, String> {
    let replies: Vec<Outgoing> = reply
        .iter()
        .filter_map(|f| Outgoing::file(f).ok())
        .collect();
    let (link, mut events) = exchange(session, dir.to_owned());
    // The replies (and `done`) go once the peer has shown it sends pages: a `relay pipe`
    // that reached this listener gets no bytes it did not ask for.
    let mut replies = Some(replies);
    while let Some(event) = events.recv().await {
        if !matches!(event, PageEvent::Ended(_)) {
            if let Some(r) = replies.take() {
                link.send(r);
                link.done();
            }
        }
        match event {
            PageEvent::Stored { k, n, path } => say_to(
                quiet,
                &format!("page {k}/{n} from {from} stored as {}", path.display()),
            ),
            PageEvent::NotStored { k, reason } => {
                say_to(quiet, &format!("page {k} from {from} not stored: {reason}"));
            }
            PageEvent::Printed { k, n } => {
                say_to(quiet, &format!("page {k}/{n} printed by {from}"))
            }
            PageEvent::Refused { k, reason } => {
                say_to(quiet, &format!("page {k} not stored by {from}: {reason}"));
                link.end(&reason).await;
            }
            PageEvent::PeerDone => {}
            PageEvent::Ended(end) => return end,
        }
    }
    Err("the session ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob("*.osk.mei.co.jp", "sale1.osk.mei.co.jp"));
        assert!(!glob("*.osk.mei.co.jp", "sale1.hqs.mei.co.jp"));
        assert!(glob("sale?.*", "sale2.hqs"));
        assert!(glob("10[0-9]1", "1001"));
        assert!(!glob("10[!0]1", "1001"));
        assert!(glob("*", ""));
        assert!(!glob("a", "ab"));
    }
}
