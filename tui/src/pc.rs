//! The PC client (personal computer 160 of the seed): the printer driver's sending path and
//! the receiving software, as scriptable subcommands. Output goes to the writer given (stdout
//! in the binary); errors return to the caller, which prints them as one sentence.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::DistributionId;
use imagecast_shared::client::{
    Client, ClientConfig, ClientError, DistributionRequest, Event, Events, Inbox, InboxMode,
    OutgoingPage,
};
use imagecast_shared::msg::{
    DeliveryOutcome, DeliveryState, DestinationStatus, RegisterOutcome, WithdrawOutcome,
};

use crate::config::Settings;

/// Connection attempts a `send` makes before giving up (each retry reuses the distribution ID,
/// so the server never makes two distributions of one send).
const SEND_ATTEMPTS: u32 = 3;
/// Extra 5-second waits while the server still holds an interrupted upload of ours. The
/// server hands an upload over to the same terminal's new connection within seconds; these
/// waits cover an older connection that takes longer to wind down, and older servers, which
/// let go only when they notice the dead connection (two heartbeat intervals, 30 s).
const STALE_UPLOAD_WAITS: u32 = 8;

/// The client configuration for these settings.
pub fn client_config(s: &Settings, receive: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new(&s.server, &s.device, &s.token, receive);
    cfg.tls = s.tls.clone();
    cfg
}

async fn connect(s: &Settings, receive: bool) -> Result<(Client, Events), ClientError> {
    Client::connect(&client_config(s, receive)).await
}

async fn login(client: &Client, s: &Settings) -> anyhow::Result<()> {
    let (Some(user), Some(password)) = (&s.user, &s.password) else {
        bail!(
            "this needs a logged-in user: give --user USER and the password with --password-stdin or IMAGECAST_PASSWORD"
        );
    };
    client.login(user, password).await?;
    Ok(())
}

/// `groups`: "N: group name" lines numbered from 1 (FIG. 9), or without "all" (FIG. 12).
pub async fn groups(
    s: &Settings,
    for_registration: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    for (i, g) in client.groups(for_registration).await?.iter().enumerate() {
        writeln!(out, "{}: {}", i + 1, g.name)?;
    }
    client.close().await;
    Ok(())
}

/// `destinations`: "domain;name" lines as in `all.rec` (FIG. 10).
pub async fn destinations(s: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    for d in client.destinations().await? {
        writeln!(out, "{};{}", d.domain, d.name)?;
    }
    client.close().await;
    Ok(())
}

/// `register --group NAME`.
pub async fn register(s: &Settings, group: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    login(&client, s).await?;
    match client.register(group).await? {
        RegisterOutcome::Added => writeln!(out, "registered {} with {group:?}", s.device)?,
        RegisterOutcome::AlreadyMember => {
            writeln!(out, "{} is already a member of {group:?}", s.device)?
        }
    }
    client.close().await;
    Ok(())
}

/// `withdraw --group NAME`.
pub async fn withdraw(s: &Settings, group: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    login(&client, s).await?;
    match client.withdraw(group).await? {
        WithdrawOutcome::Removed => writeln!(out, "withdrew {} from {group:?}", s.device)?,
        WithdrawOutcome::NotMember => writeln!(out, "{} was not a member of {group:?}", s.device)?,
    }
    client.close().await;
    Ok(())
}

/// What `send` is asked to do.
#[derive(Clone, Debug)]
pub struct SendArgs {
    /// Group names.
    pub groups: Vec<String>,
    /// Individual destination domains.
    pub to: Vec<String>,
    /// The pages of the image.
    pub files: Vec<PathBuf>,
    /// Wait for every destination's result.
    pub wait: bool,
    /// Give up waiting after this long.
    pub timeout: Option<Duration>,
}

/// The word a result is printed with.
pub fn state_word(state: &DeliveryState) -> String {
    match state {
        DeliveryState::Queued => "queued".into(),
        DeliveryState::Sending => "sending".into(),
        DeliveryState::Delivered => "delivered".into(),
        DeliveryState::Printed => "printed".into(),
        DeliveryState::Failed(r) => format!("failed: {r}"),
    }
}

/// `send`: prints the distribution ID, then with `wait` "DOMAIN: result" per destination.
/// Returns false when waiting timed out or a destination failed.
pub async fn send(s: &Settings, args: &SendArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    if args.files.is_empty() {
        bail!("name at least one file to send");
    }
    if args.groups.is_empty() && args.to.is_empty() {
        bail!("name at least one destination with --group NAME or --to DOMAIN");
    }
    let mut pages = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        pages.push(OutgoingPage::from_file(f)?);
    }
    let req = DistributionRequest {
        dist: DistributionId::new_random(),
        groups: args.groups.clone(),
        destinations: args.to.clone(),
        pages,
    };
    let mut attempt = 0;
    let (client, mut events, accepted) = loop {
        attempt += 1;
        let result = async {
            let (client, events) = connect(s, false).await?;
            login(&client, s).await?;
            let accepted = client.distribute(&req).await?;
            anyhow::Ok((client, events, accepted))
        }
        .await;
        match result {
            Ok(x) => break x,
            Err(e) if attempt < SEND_ATTEMPTS && is_connection_lost(&e) => {
                tracing::warn!(error = %e, "connection lost while sending; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            // Our previous connection still holds the same upload on the server, which did
            // not let go of it in time (see STALE_UPLOAD_WAITS).
            Err(e) if attempt < SEND_ATTEMPTS + STALE_UPLOAD_WAITS && is_stale_upload(&e) => {
                tracing::warn!("the server still holds the interrupted upload; waiting to retry");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e),
        }
    };
    writeln!(out, "{}", accepted.dist)?;
    out.flush()?;
    if !args.wait {
        client.close().await;
        return Ok(true);
    }
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut finals: HashMap<String, DeliveryState> = HashMap::new();
    let total = accepted.destinations.len();
    let mut client = client;
    // Status first: results that came before we listened are not lost.
    let mut status = client.watch(accepted.dist).await?;
    loop {
        for st in status.drain(..) {
            report(&mut finals, st, out)?;
        }
        if finals.len() >= total {
            break;
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.recv()).await {
                Ok(e) => e,
                Err(_) => {
                    for dest in &accepted.destinations {
                        if !finals.contains_key(&dest.domain) {
                            writeln!(
                                out,
                                "{}: queued (still waiting when --timeout ran out)",
                                dest.domain
                            )?;
                        }
                    }
                    client.close().await;
                    return Ok(false);
                }
            },
            None => events.recv().await,
        };
        match next {
            Some(Event::Progress { dist, status: st }) if dist == accepted.dist => status.push(st),
            Some(Event::Done { dist, results }) if dist == accepted.dist => status.extend(results),
            Some(Event::Closed(_)) | None => {
                // Reconnect and ask again; the server kept every result.
                let (c, e) = reconnect(s).await?;
                client = c;
                events = e;
                status = client.watch(accepted.dist).await?;
            }
            _ => {}
        }
    }
    client.close().await;
    Ok(finals
        .values()
        .all(|s| !matches!(s, DeliveryState::Failed(_))))
}

fn report(
    finals: &mut HashMap<String, DeliveryState>,
    st: DestinationStatus,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if st.state.is_final() && !finals.contains_key(&st.destination.domain) {
        writeln!(out, "{}: {}", st.destination.domain, state_word(&st.state))?;
        out.flush()?;
        finals.insert(st.destination.domain, st.state);
    }
    Ok(())
}

fn is_stale_upload(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ClientError>()
        .and_then(ClientError::server_error)
        .is_some_and(|i| {
            i.code == imagecast_shared::msg::ErrorCode::OutOfOrder
                && i.field.as_deref() == Some("dist")
        })
}

fn is_connection_lost(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ClientError>()
        .is_some_and(ClientError::is_connection_lost)
}

async fn reconnect(s: &Settings) -> anyhow::Result<(Client, Events)> {
    let mut delay = Duration::from_millis(200);
    let mut last = None;
    for _ in 0..20 {
        match connect(s, false).await {
            Ok(x) => return Ok(x),
            Err(e) if e.is_connection_lost() => {
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("cannot reconnect"), Into::into))
}

/// `receive --out DIR [--count N]`: stays connected (reconnecting when the server goes away),
/// stores every delivered page byte-identical in `dir`, prints one line per delivery.
pub async fn receive(
    s: &Settings,
    dir: &Path,
    count: Option<u64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut inbox = Inbox::open(dir, InboxMode::Store)
        .with_context(|| format!("cannot use {} for received images", dir.display()))?;
    let mut received = 0u64;
    let mut delay = Duration::from_millis(200);
    let mut connected_once = false;
    loop {
        let (client, mut events) = match connect(s, true).await {
            Ok(x) => x,
            // Once it worked, a server that goes away is waited for; a refusal is final.
            Err(e) if connected_once && e.is_connection_lost() => {
                tracing::warn!(error = %e, "cannot reach the server; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        connected_once = true;
        delay = Duration::from_millis(200);
        while let Some(event) = events.recv().await {
            if let Event::Closed(reason) = &event {
                tracing::warn!(%reason, "connection lost; reconnecting");
                break;
            }
            if let Event::Notice(text) = &event {
                tracing::info!("server: {text}");
            }
            match inbox.handle(&event) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    let files: Vec<String> = r
                        .files
                        .iter()
                        .map(|f| {
                            f.file_name()
                                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                        })
                        .collect();
                    if r.duplicate {
                        writeln!(
                            out,
                            "{} from {} ({}): already stored, not stored again",
                            r.dist, r.sender.domain, r.sender.name
                        )?;
                    } else {
                        writeln!(
                            out,
                            "{} from {} ({}) by {}: {} page(s), {} bytes: {}",
                            r.dist,
                            r.sender.domain,
                            r.sender.name,
                            r.user,
                            r.pages,
                            r.bytes,
                            files.join(", ")
                        )?;
                        received += 1;
                    }
                    out.flush()?;
                    let _ = client.ack(r.delivery, DeliveryOutcome::Stored).await;
                    if count.is_some_and(|n| received >= n) {
                        client.close().await;
                        return Ok(());
                    }
                }
                Err(e) => {
                    eprintln!("imagecast: {e}");
                    if let Event::DeliverEnd { delivery } = event {
                        let _ = client
                            .ack(delivery, DeliveryOutcome::Refused(e.to_string()))
                            .await;
                    } else {
                        // The stream is out of step: reconnect for a clean redelivery.
                        client.close().await;
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(delay).await;
    }
}
