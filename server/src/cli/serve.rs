//! `run`: serves terminals until SIGTERM or SIGINT.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::net;
use crate::state::{ServerConfig, ServerState};
use crate::store::datadir::DataDir;
use crate::store::tls;

/// Opens the data directory and serves it on `listen` (over TLS unless `plain`), printing
/// `listening on ADDR` once the port is bound (tests and scripts wait for that line) and
/// telling systemd `READY=1` then (`STOPPING=1` on SIGTERM or SIGINT) when it runs the server
/// as a `Type=notify` service.
pub fn run(
    data: DataDir,
    listen: &str,
    config: ServerConfig,
    plain: bool,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(serve(data, listen, config, plain))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    data: DataDir,
    listen: &str,
    config: ServerConfig,
    plain: bool,
) -> anyhow::Result<()> {
    let tls = if plain {
        tracing::warn!("serving plain TCP: traffic is not encrypted");
        None
    } else {
        data.check_exists()?;
        let (acceptor, fp) = tls::load(&data.tls_dir())?;
        tracing::info!(fingerprint = %fp, "serving TLS");
        Some(acceptor)
    };
    let shutdown = CancellationToken::new();
    // Watched from now on, before anyone is told the server is ready: a SIGTERM sent the
    // moment READY=1 arrives still stops the server gracefully.
    let signals = Signals::watch();
    let state = ServerState::open(data, config, shutdown.clone()).await?;
    let listener = net::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    // Under systemd (`Type=notify`): ready once the port is bound. Outside it, NOTIFY_SOCKET
    // is unset and nothing is sent.
    let status = format!("listening on {addr}");
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    tokio::spawn(async move {
        signals.wait().await;
        notify(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing the connections"),
        ]);
        shutdown.cancel();
    });
    net::run(listener, state, tls).await
}

/// Tells the service manager (systemd's notify socket) how the server stands; a failure is
/// logged, never fatal.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// SIGTERM and SIGINT, watched from the moment this is made.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn watch() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => Self(None),
        }
    }

    /// Completes on SIGTERM or SIGINT (on Ctrl-C where those cannot be watched).
    async fn wait(self) {
        let Some((mut term, mut int)) = self.0 else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
