//! The PC client (personal computer 160 of the seed): the printer driver's sending path and
//! the receiving software, as scriptable subcommands. Output goes to the writer given (stdout
//! in the binary); errors return to the caller, which prints them as one sentence.
//!
//! Every text that comes from the server or another terminal (names, domains, user IDs, file
//! names, reasons, notices) is printed through [`peer`] or [`peer_reason`]: control characters
//! and bidirectional overrides escaped, the length bounded, so a peer can neither forge an
//! output line nor drive the terminal with escape sequences.
//!
//! # Layout
//! - this module: `groups`, `destinations`, `send`, `status`, `receive`, `register`,
//!   `withdraw`;
//! - `names.rs`: group and destination names resolved as operators type them;
//! - [`relay`]: `who`, `relay send|listen|pipe`, `logout` (real-time sessions).

pub mod fax;
mod names;
mod progress;
pub mod relay;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::DistributionId;
use imagecast_shared::client::{
    Client, ClientConfig, ClientError, DistributionRequest, Event, Events, Inbox, InboxMode,
    OutgoingPage, Received,
};
use imagecast_shared::msg::{
    DeliveryOutcome, DeliveryState, DestinationStatus, RegisterOutcome, WithdrawOutcome,
};
use imagecast_shared::text::{escape, escape_bounded, safe_file_name};
use imagecast_shared::tls::known_fingerprint;

use crate::config::Settings;
use crate::paper::pages::count_pages;

/// Connection attempts a `send` makes before giving up (each retry reuses the distribution ID,
/// so the server never makes two distributions of one send).
const SEND_ATTEMPTS: u32 = 3;
/// Extra 5-second waits while the server still holds an interrupted upload of ours. The
/// server hands an upload over to the same terminal's new connection within seconds; these
/// waits cover an older connection that takes longer to wind down, and older servers, which
/// let go only when they notice the dead connection (two heartbeat intervals, 30 s).
const STALE_UPLOAD_WAITS: u32 = 8;

/// How long `send --wait` waits without `--timeout` (`--timeout 0` waits without a limit).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The most characters of a peer's name, domain, user ID or file name printed.
pub const NAME_CHARS: usize = 256;
/// The most characters of a peer's reason or notice printed.
pub const REASON_CHARS: usize = 200;

/// A name, domain, user ID or file name from a peer, safe to print (see the module docs).
pub fn peer(s: &str) -> Cow<'_, str> {
    escape_bounded(s, NAME_CHARS)
}

/// A reason or notice from a peer, safe to print (see the module docs).
pub fn peer_reason(s: &str) -> Cow<'_, str> {
    escape_bounded(s, REASON_CHARS)
}

/// The client configuration for these settings.
pub fn client_config(s: &Settings, receive: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new(&s.server, &s.device, &s.token, receive);
    cfg.tls = s.tls.clone();
    cfg
}

/// Connects; a server certificate trusted for the first time is said on stderr with its
/// fingerprint, once, as ssh does (the pin is written by the client library on first use).
async fn connect(s: &Settings, receive: bool) -> Result<(Client, Events), ClientError> {
    let unpinned = s
        .tls
        .as_ref()
        .and_then(|t| match (&t.fingerprint, &t.known_servers) {
            (None, Some(path)) => {
                matches!(known_fingerprint(path, &s.server), Ok(None)).then_some(path)
            }
            _ => None,
        });
    let connected = Client::connect(&client_config(s, receive)).await?;
    if let Some(Ok(Some(fp))) = unpinned.map(|path| known_fingerprint(path, &s.server)) {
        eprintln!(
            "remembered server {} with fingerprint {fp} (compare it with `imagecast-server fingerprint` on the server)",
            s.server
        );
    }
    Ok(connected)
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

/// How a command prints what it reports: lines for people, or JSON for scripts (a listing is
/// one array; a stream is one object per line). The objects are described in `docs/json.md`;
/// fields are only ever added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Lines for people, peer text escaped.
    #[default]
    Human,
    /// JSON.
    Json,
}

/// Writes one JSON value on a line of its own.
fn emit(out: &mut impl Write, value: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A destination's state as JSON: `state` is `queued`, `sending`, `delivered`, `printed` or
/// `failed`, with `reason` for a failure.
fn state_json(st: &DestinationStatus) -> serde_json::Value {
    let (state, reason) = match &st.state {
        DeliveryState::Queued => ("queued", None),
        DeliveryState::Sending => ("sending", None),
        DeliveryState::Delivered => ("delivered", None),
        DeliveryState::Printed => ("printed", None),
        DeliveryState::Failed(r) => ("failed", Some(r.as_str())),
    };
    let mut v = serde_json::json!({
        "domain": st.destination.domain,
        "name": st.destination.name,
        "state": state,
        "final": st.state.is_final(),
    });
    if let Some(r) = reason {
        v["reason"] = r.into();
    }
    v
}

/// `groups`: "N: group name" lines numbered from 1 (FIG. 9), or without "all" (FIG. 12), or
/// only the groups this terminal is a member of.
pub async fn groups(
    s: &Settings,
    for_registration: bool,
    member: bool,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    let mut groups = client.groups(for_registration || member).await?;
    if member {
        let joined = client.memberships().await?;
        groups.retain(|g| joined.contains(&g.name));
    }
    if format == Format::Json {
        let list: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                serde_json::json!({
                    "number": i + 1, "name": g.name, "file": g.file, "members": g.members,
                })
            })
            .collect();
        emit(out, &list.into())?;
    } else {
        for (i, g) in groups.iter().enumerate() {
            writeln!(out, "{}: {}", i + 1, peer(&g.name))?;
        }
    }
    client.close().await;
    Ok(())
}

/// `destinations`: "domain;name" lines as in `all.rec` (FIG. 10).
pub async fn destinations(
    s: &Settings,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    let list = client.destinations().await?;
    if format == Format::Json {
        let list: Vec<_> = list
            .iter()
            .map(|d| serde_json::json!({ "domain": d.domain, "name": d.name }))
            .collect();
        emit(out, &list.into())?;
    }
    for d in list.iter().filter(|_| format == Format::Human) {
        writeln!(out, "{};{}", peer(&d.domain), peer(&d.name))?;
    }
    client.close().await;
    Ok(())
}

/// `register --group NAME`.
pub async fn register(s: &Settings, group: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, _events) = connect(s, false).await?;
    login(&client, s).await?;
    let group = &registration_group(&client, group).await?;
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
    let group = &registration_group(&client, group).await?;
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
    /// Give up waiting after this long (default [`DEFAULT_WAIT`]; zero: no limit).
    pub timeout: Option<Duration>,
    /// Send files that are not images as they are.
    pub any_file: bool,
    /// How to print the ID and the results.
    pub format: Format,
    /// No progress on stderr even when it is a terminal.
    pub quiet: bool,
}

/// How a `send --wait` or a `status` ended: each maps to an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every destination has its image (or `send` did not wait).
    Done,
    /// A destination failed.
    Failed,
    /// A destination is not done yet (waiting timed out).
    NotDone,
}

impl Outcome {
    /// The outcome of these destination states: a failure first, then one not done.
    fn of<'a>(states: impl IntoIterator<Item = &'a DeliveryState>) -> Self {
        let mut outcome = Outcome::Done;
        for st in states {
            match st {
                DeliveryState::Failed(_) => return Outcome::Failed,
                s if !s.is_final() => outcome = Outcome::NotDone,
                _ => {}
            }
        }
        outcome
    }
}

/// The word a result is printed with; a failure's reason (from a peer) escaped and bounded.
pub fn state_word(state: &DeliveryState) -> String {
    match state {
        DeliveryState::Queued => "queued".into(),
        DeliveryState::Sending => "sending".into(),
        DeliveryState::Delivered => "delivered".into(),
        DeliveryState::Printed => "printed".into(),
        DeliveryState::Failed(r) => format!("failed: {}", peer_reason(r)),
    }
}

/// `send`: prints the distribution ID, then with `wait` "DOMAIN: result" per destination.
/// Returns whether a destination failed or is not done when waiting timed out. A file whose name holds
/// control or bidirectional characters is sent under a safe name, said on stderr.
pub async fn send(s: &Settings, args: &SendArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    if args.files.is_empty() {
        bail!("name at least one file to send");
    }
    if args.groups.is_empty() && args.to.is_empty() {
        bail!("name at least one destination with --group NAME or --to DOMAIN");
    }
    let mut pages = Vec::with_capacity(args.files.len());
    let mut total_bytes = 0;
    for f in &args.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        total_bytes += meta.len();
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        if !args.any_file {
            crate::paper::pages::check_image_kind(f).map_err(|e| {
                anyhow::anyhow!(
                    "{e}; imagecast sends images, as the panel's feeder takes them \
                     (--any-file sends other files as they are)"
                )
            })?;
        }
        let mut page = OutgoingPage::from_file(f)?;
        if let Cow::Owned(safe) = safe_file_name(&page.name) {
            eprintln!("sending '{}' as '{safe}'", escape(&page.name));
            page.name = safe;
        }
        pages.push(page);
    }
    let mut req = DistributionRequest {
        dist: DistributionId::new_random(),
        groups: Vec::new(),
        destinations: Vec::new(),
        pages,
    };
    let bar = progress::SendProgress::new(total_bytes, args.quiet);
    let mut resolved = false;
    let mut attempt = 0;
    let (client, mut events, accepted) = loop {
        attempt += 1;
        let result = async {
            let (client, events) = connect(s, false).await?;
            login(&client, s).await?;
            if !resolved {
                resolve(&client, args, &mut req).await?;
                resolved = true;
            }
            let accepted = client
                .distribute_with_progress(&req, &|sent, total| bar.uploaded(sent, total))
                .await?;
            anyhow::Ok((client, events, accepted))
        }
        .await;
        match result {
            Ok(x) => break x,
            Err(e) if attempt < SEND_ATTEMPTS && is_connection_lost(&e) => {
                let error = format!("{e:#}");
                let error = peer_reason(&error);
                tracing::warn!(%error, "connection lost while sending; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            // Our previous connection still holds the same upload on the server, which did
            // not let go of it in time (see STALE_UPLOAD_WAITS).
            Err(e) if attempt < SEND_ATTEMPTS + STALE_UPLOAD_WAITS && is_stale_upload(&e) => {
                tracing::warn!("the server still holds the interrupted upload; waiting to retry");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => {
                bar.finish();
                return Err(e);
            }
        }
    };
    if !args.wait {
        bar.finish();
    }
    if args.format == Format::Json {
        let destinations: Vec<_> = accepted
            .destinations
            .iter()
            .map(|d| serde_json::json!({ "domain": d.domain, "name": d.name }))
            .collect();
        emit(
            out,
            &serde_json::json!({
                "dist": accepted.dist.to_string(),
                "duplicate": accepted.duplicate,
                "destinations": destinations,
            }),
        )?;
    } else {
        writeln!(out, "{}", accepted.dist)?;
        out.flush()?;
    }
    if !args.wait {
        client.close().await;
        return Ok(Outcome::Done);
    }
    let timeout = args.timeout.unwrap_or(DEFAULT_WAIT);
    let deadline = (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout);
    let mut states: HashMap<String, DeliveryState> = HashMap::new();
    let total = accepted.destinations.len();
    bar.destinations(total as u64);
    let mut client = client;
    // Status first: results that came before we listened are not lost.
    let mut status = client.watch(accepted.dist).await?;
    loop {
        for st in status.drain(..) {
            bar.suspend(|| report(&mut states, st, args.format, out))?;
        }
        let finals = states.values().filter(|s| s.is_final()).count();
        bar.done(finals as u64);
        if finals >= total {
            break;
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.recv()).await {
                Ok(e) => e,
                Err(_) => {
                    bar.finish();
                    let waiting = total - states.values().filter(|s| s.is_final()).count();
                    eprintln!(
                        "imagecast: {waiting} destination(s) not done after {} s; they get the \
                         image when they connect, and `imagecast status {}` shows how far it got",
                        timeout.as_secs(),
                        accepted.dist
                    );
                    client.close().await;
                    return Ok(Outcome::NotDone);
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
    bar.finish();
    client.close().await;
    Ok(Outcome::of(states.values()))
}

/// Prints "DOMAIN: state" when a destination's state changed (`queued`, `sending`, then its
/// result); a result, once printed, is final. In JSON only results are printed, one object
/// each.
fn report(
    states: &mut HashMap<String, DeliveryState>,
    st: DestinationStatus,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let changed = match states.get(&st.destination.domain) {
        Some(last) => !last.is_final() && *last != st.state,
        None => true,
    };
    if changed && format == Format::Json {
        if st.state.is_final() {
            emit(out, &state_json(&st))?;
        }
        states.insert(st.destination.domain, st.state);
    } else if changed {
        writeln!(
            out,
            "{}: {}",
            peer(&st.destination.domain),
            state_word(&st.state)
        )?;
        out.flush()?;
        states.insert(st.destination.domain, st.state);
    }
    Ok(())
}

/// Fills in the request's groups and destinations as the operator named them (see
/// `names.rs`): each list is asked for only when needed.
async fn resolve(
    client: &Client,
    args: &SendArgs,
    req: &mut DistributionRequest,
) -> anyhow::Result<()> {
    if !args.groups.is_empty() {
        let list: Vec<String> = client
            .groups(false)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
        req.groups = args
            .groups
            .iter()
            .map(|g| names::group(g, &list))
            .collect::<anyhow::Result<_>>()?;
    }
    if !args.to.is_empty() {
        let list = client.destinations().await?;
        req.destinations = args
            .to
            .iter()
            .map(|d| names::destination(d, &list))
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(())
}

/// The group `input` names among those a terminal can register with (numbered as
/// `groups --for-registration` prints them). A group outside that list but named exactly
/// ("all distribution destinations") goes to the server, which says why it cannot be.
async fn registration_group(client: &Client, input: &str) -> anyhow::Result<String> {
    let names_of = |groups: Vec<imagecast_shared::msg::GroupEntry>| -> Vec<String> {
        groups.into_iter().map(|g| g.name).collect()
    };
    match names::group(input, &names_of(client.groups(true).await?)) {
        Ok(name) => Ok(name),
        Err(_)
            if names_of(client.groups(false).await?)
                .iter()
                .any(|n| n == input) =>
        {
            Ok(input.to_owned())
        }
        Err(e) => Err(e),
    }
}

/// `status ID`: "DOMAIN: state" for every destination of a distribution this terminal sent
/// (or any, for an administrator: the user logs in when one is given).
pub async fn status(
    s: &Settings,
    dist: DistributionId,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let (client, _events) = connect(s, false).await?;
    if s.user.is_some() && s.password.is_some() {
        login(&client, s).await?;
    }
    let destinations = client.watch(dist).await?;
    let mut states = HashMap::new();
    if format == Format::Json {
        let list: Vec<_> = destinations.iter().map(state_json).collect();
        emit(out, &list.into())?;
    }
    for st in destinations {
        if format == Format::Human {
            report(&mut states, st, format, out)?;
        } else {
            states.insert(st.destination.domain, st.state);
        }
    }
    client.close().await;
    Ok(Outcome::of(states.values()))
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

/// The PC client's pause between attempts to reach its server: 0.2 s doubling to 5 s, with
/// jitter.
pub(crate) fn reconnect_backoff() -> imagecast_shared::client::Backoff {
    imagecast_shared::client::Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
}

async fn reconnect(s: &Settings) -> anyhow::Result<(Client, Events)> {
    let mut backoff = reconnect_backoff();
    let mut last = None;
    for _ in 0..20 {
        match connect(s, false).await {
            Ok(x) => return Ok(x),
            Err(e) if e.is_connection_lost() => {
                last = Some(e);
                tokio::time::sleep(backoff.pause()).await;
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
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // Opened after the first connection, so that a wrong token or address creates nothing.
    let mut inbox: Option<Inbox> = None;
    let mut received = 0u64;
    let mut backoff = reconnect_backoff();
    let mut connected_once = false;
    loop {
        let (client, mut events) = match connect(s, true).await {
            Ok(x) => x,
            // Once it worked, a server that goes away is waited for; a refusal is final.
            Err(e) if connected_once && e.is_connection_lost() => {
                let error = e.to_string();
                let error = peer_reason(&error);
                tracing::info!(%error, "cannot reach the server; retrying");
                tokio::time::sleep(backoff.pause()).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        connected_once = true;
        backoff.reset();
        let inbox = match &mut inbox {
            Some(inbox) => inbox,
            None => inbox
                .insert(Inbox::open(dir, InboxMode::Store).with_context(|| {
                    format!("cannot use {} for received images", dir.display())
                })?),
        };
        eprintln!("connected to {} as {}", s.server, s.device);
        while let Some(event) = events.recv().await {
            if let Event::Closed(reason) = &event {
                eprintln!(
                    "lost the connection to {} ({}); reconnecting",
                    s.server,
                    peer_reason(reason)
                );
                break;
            }
            if let Event::Notice(text) = &event {
                tracing::info!("server: {}", peer_reason(text));
            }
            match inbox.handle(&event) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    let files = r.files.clone();
                    let pages = tokio::task::spawn_blocking(move || count_pages(&files))
                        .await
                        .unwrap_or(r.pages);
                    let fax_note = inbox.take_fax(&r.dist);
                    if let Some(note) = &fax_note {
                        fax::remember_received(s, note);
                    }
                    print_received(&r, pages, fax_note.as_ref(), format, out)?;
                    if !r.duplicate {
                        received += 1;
                    }
                    let _ = client.ack(r.delivery, DeliveryOutcome::Stored).await;
                    if count.is_some_and(|n| received >= n) {
                        client.close().await;
                        return Ok(());
                    }
                }
                Err(e) => {
                    eprintln!("imagecast: {}", peer_reason(&e.to_string()));
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
        // What was half delivered on that connection comes again from the start.
        inbox.abandon_incomplete();
        tokio::time::sleep(backoff.pause()).await;
    }
}

/// "N pages in M files": how the PC client counts what it sends and receives (a multi-page
/// TIFF is one file of several pages).
pub fn pages_in_files(pages: usize, files: usize) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "{pages} page{} in {files} file{}",
        plural(pages),
        plural(files)
    )
}

/// The line `receive` prints for a stored delivery of `pages` pages (a multi-page TIFF counts
/// all its pages): every name from the peer escaped. A received fax (`fax`: the server's note
/// before its delivery) prints `fax from NUMBER "STATION" via GATEWAY: N pages` first, and its
/// JSON object has a `fax` member.
fn print_received(
    r: &Received,
    pages: usize,
    fax: Option<&imagecast_shared::fax::FaxIncoming>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == Format::Json {
        let files: Vec<_> = r
            .files
            .iter()
            .map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        return emit(
            out,
            &serde_json::json!({
                "dist": r.dist.to_string(),
                "delivery": r.delivery.0,
                "sender": { "domain": r.sender.domain, "name": r.sender.name },
                "user": r.user,
                "files": files,
                "pages": pages,
                "bytes": r.bytes,
                "duplicate": r.duplicate,
                "fax": fax.map(|f| serde_json::json!({
                    "caller": f.record.number,
                    "station": f.record.station,
                    "called": f.called,
                    "gateway": f.record.gateway,
                    "pages": f.record.pages,
                    "record": f.record.seq,
                })),
            }),
        );
    }
    if let Some(f) = fax {
        let files: Vec<String> = r
            .files
            .iter()
            .map(|f| {
                f.file_name()
                    .map_or_else(String::new, |n| peer(&n.to_string_lossy()).into_owned())
            })
            .collect();
        let stored = if r.duplicate {
            "already stored, not stored again".to_owned()
        } else {
            format!("stored as {}", files.join(", "))
        };
        writeln!(out, "{} ({stored})", fax::received_line(f))?;
        out.flush()?;
        return Ok(());
    }
    if r.duplicate {
        writeln!(
            out,
            "{} from {} ({}): already stored, not stored again",
            r.dist,
            peer(&r.sender.domain),
            peer(&r.sender.name)
        )?;
    } else {
        let files: Vec<String> = r
            .files
            .iter()
            .map(|f| {
                f.file_name()
                    .map_or_else(String::new, |n| peer(&n.to_string_lossy()).into_owned())
            })
            .collect();
        writeln!(
            out,
            "{} from {} ({}) by {}: {}, {} bytes: {}",
            r.dist,
            peer(&r.sender.domain),
            peer(&r.sender.name),
            peer(&r.user),
            pages_in_files(pages, r.files.len()),
            r.bytes,
            files.join(", ")
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagecast_shared::DeliveryId;
    use imagecast_shared::msg::Destination;
    use imagecast_shared::text::is_unsafe;

    /// What a hostile receiving terminal acknowledges a delivery with: a newline, a forged
    /// journal line, an OSC title escape, a colour escape and 200 KB of padding.
    fn forged_reason() -> String {
        format!(
            "disk full\n2026-11-27T10:00:00Z dist 1 sale1.osk.mei.co.jp: printed\u{1b}]0;pwned\u{7}\u{1b}[2J{}",
            "A".repeat(200 * 1024)
        )
    }

    /// Asserts `text` is exactly `lines` lines, with nothing unsafe in them.
    fn assert_clean(text: &str, lines: usize) {
        assert_eq!(text.lines().count(), lines, "{text:.300}");
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            assert!(!line.chars().any(is_unsafe), "{line:.300}");
        }
    }

    #[test]
    fn a_forged_refusal_prints_as_one_bounded_line() {
        let mut out = Vec::new();
        let mut states = HashMap::new();
        let st = DestinationStatus {
            destination: Destination {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "sales office".into(),
            },
            state: DeliveryState::Failed(forged_reason()),
        };
        report(&mut states, st, Format::Human, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_clean(&text, 1);
        assert!(
            text.starts_with("sale1.osk.mei.co.jp: failed: disk full\\n2026-11-27T10:00:00Z"),
            "{text:.300}"
        );
        assert!(text.contains("\\u{1b}]0;pwned\\u{7}"), "{text:.300}");
        assert!(text.len() < 600, "{} bytes printed", text.len());
    }

    #[test]
    fn each_state_change_prints_once_and_a_result_is_final() {
        let st = |state| DestinationStatus {
            destination: Destination {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "sales office".into(),
            },
            state,
        };
        let mut out = Vec::new();
        let mut states = HashMap::new();
        for state in [
            DeliveryState::Queued,
            DeliveryState::Queued,
            DeliveryState::Sending,
            DeliveryState::Printed,
            DeliveryState::Printed,
            DeliveryState::Queued,
        ] {
            report(&mut states, st(state), Format::Human, &mut out).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sale1.osk.mei.co.jp: queued\nsale1.osk.mei.co.jp: sending\nsale1.osk.mei.co.jp: printed\n"
        );
        assert_eq!(Outcome::of(states.values()), Outcome::Done);
        let failed = DeliveryState::Failed("x".into());
        let queued = DeliveryState::Queued;
        assert_eq!(Outcome::of([&queued, &failed]), Outcome::Failed);
        assert_eq!(
            Outcome::of([&DeliveryState::Printed, &queued]),
            Outcome::NotDone
        );
    }

    #[test]
    fn pages_are_counted_in_files() {
        assert_eq!(pages_in_files(15, 12), "15 pages in 12 files");
        assert_eq!(pages_in_files(1, 1), "1 page in 1 file");
        assert_eq!(pages_in_files(3, 1), "3 pages in 1 file");
    }

    #[test]
    fn received_names_are_printed_escaped() {
        let r = Received {
            delivery: DeliveryId(7),
            dist: DistributionId::new_random(),
            sender: Destination {
                domain: "plan1.hqs.mei.co.jp\n2026 forged".into(),
                name: "\u{1b}[2Jplanning\u{202e}".into(),
            },
            user: format!("1001\u{1b}]0;pwned\u{7}{}", "9".repeat(10_000)),
            files: vec![PathBuf::from("/tmp/invoice\u{202e}fdp.exe")],
            pages: 1,
            bytes: 2,
            duplicate: false,
        };
        let mut out = Vec::new();
        print_received(&r, 1, None, Format::Human, &mut out).unwrap();
        print_received(
            &Received {
                duplicate: true,
                ..r.clone()
            },
            1,
            None,
            Format::Human,
            &mut out,
        )
        .unwrap();
        let note = imagecast_shared::fax::FaxIncoming {
            dist: r.dist,
            called: "5550101".into(),
            record: imagecast_shared::fax::FaxRecordInfo {
                seq: 1,
                at_ms: 0,
                direction: "receive".into(),
                job: String::new(),
                user: "1001".into(),
                terminal: "plan1.hqs.mei.co.jp".into(),
                gateway: "gw1\n.example".into(),
                number: "5550199".into(),
                station: "ACME\u{1b}[2J".into(),
                pages: 2,
                duration_ms: 1,
                coding: "MH".into(),
                speed: 14400,
                result: "received".into(),
                reason: String::new(),
            },
        };
        print_received(&r, 2, Some(&note), Format::Human, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_clean(&text, 3);
        assert!(text.contains("fax from 5550199 \"ACME"), "{text}");
        assert!(
            text.contains("from plan1.hqs.mei.co.jp\\n2026 forged (\\u{1b}[2Jplanning\\u{202e})")
        );
        assert!(text.contains("invoice\\u{202e}fdp.exe"), "{text}");
        assert!(text.len() < 2 * 1024, "{} bytes printed", text.len());
    }
}
