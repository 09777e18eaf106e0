//! `imagecast demo`: the seed's network in one process, with no set-up.
//!
//! [`DemoNetwork::start`] creates (or reuses) a data directory with the seed's head office and
//! Osaka office and the groups of FIG. 14–17, serves it on a loopback port from a task of this
//! process, switches on a [`SimulatedTerminal`] for every other office, and places sample
//! documents in the ADF of MFP 120, whose panel the caller then opens with
//! [`DemoNetwork::panel_client_config`] and the demo login ([`DEMO_USER`] / [`DEMO_PASSWORD`]).
//! MFP 320 ([`OFFLINE_DOMAIN`]) stays offline, so the demo also shows store and forward: its
//! images wait at the server, queued, until [`DemoNetwork::switch_on`] connects it.
//!
//! # Layout of the root folder
//! ```text
//! ROOT/
//!   server/                        the server's data directory (groups/*.rec, imagecast.db,
//!                                  spool/) and demo-tokens.txt ("domain token" a line)
//!   mfp120/adf/                    the panel's document feeder, with the sample documents
//!   mfp120/output-tray/            where the panel prints
//!   mfp120/removable/              the removable-media folder
//!   mfp120/store/                  the image store (memory means 128)
//!   mfp120/state/                  anything else the panel keeps
//!   terminals/DOMAIN/output-tray/  each simulated terminal's tray
//! ```
//! Nothing is written outside the root. Starting again on the same root reuses the data
//! directory (groups edited, images still queued) and issues fresh device tokens.
//!
//! # Modules
//! - [`samples`]: the sample documents.
//! - [`terminal`]: the simulated terminals.

pub mod samples;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use imagecast_server::demo::{DEMO_DEVICES, DemoDevice, DemoServer};
use imagecast_shared::client::ClientConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use samples::{SAMPLE_NAMES, write_samples};
pub use terminal::{SimulatedTerminal, device_label};

use crate::paper::Adf;

/// The panel's device: MFP 120 of the seed.
pub const PANEL_DOMAIN: &str = "sale1.hqs.mei.co.jp";
/// The terminal left offline at start: MFP 320, the Osaka development department.
pub const OFFLINE_DOMAIN: &str = "devl1.osk.mei.co.jp";
/// The demo login's user ID (FIG. 6).
pub const DEMO_USER: &str = "1001";
/// The demo login's password.
pub const DEMO_PASSWORD: &str = "1234";

/// How long [`DemoNetwork::start`] waits for the simulated terminals to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long [`DemoNetwork::shutdown`] waits for the terminals (the server has its own wait).
const STOP_WAIT: Duration = Duration::from_secs(3);

/// Where the demo goes and what it listens on.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The folder everything goes under (a temporary folder, or `--dir`).
    pub root: PathBuf,
    /// The address the server listens on, normally `127.0.0.1:0` (a free port).
    pub listen: String,
}

impl DemoOptions {
    /// Everything under `root`, the server on a free loopback port.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            listen: "127.0.0.1:0".to_owned(),
        }
    }
}

/// MFP 120's folders: the panel's standard folders under `ROOT/mfp120/`.
pub use crate::panel::PanelDirs;

/// The folder of MFP 120 under the demo's root.
pub fn panel_root(root: &Path) -> PathBuf {
    root.join("mfp120")
}

/// A simulated terminal's output tray under the demo's root.
fn terminal_tray(root: &Path, domain: &str) -> PathBuf {
    root.join("terminals").join(domain).join("output-tray")
}

/// The seed's network, running: the server and the simulated terminals.
pub struct DemoNetwork {
    root: PathBuf,
    server: DemoServer,
    panel: DemoDevice,
    panel_token: String,
    terminals: Vec<SimulatedTerminal>,
    stop_terminals: CancellationToken,
    tasks: TaskTracker,
    tls: imagecast_shared::tls::TlsSettings,
}

impl std::fmt::Debug for DemoNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoNetwork")
            .field("root", &self.root)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl DemoNetwork {
    /// Prepares the root, starts the server and switches on every terminal but the panel's
    /// and [`OFFLINE_DOMAIN`]; waits (a few seconds at most) until they are connected.
    pub async fn start(opts: DemoOptions) -> anyhow::Result<DemoNetwork> {
        let root = opts.root.clone();
        let dirs = PanelDirs::under(&panel_root(&root));
        {
            let (root, dirs) = (root.clone(), dirs.clone());
            tokio::task::spawn_blocking(move || prepare(&root, &dirs))
                .await
                .context("demo set-up was interrupted")??;
        }
        let server = DemoServer::start(root.join("server"), &opts.listen).await?;
        let devices = server.devices().to_vec();

        let mut panel = None;
        let mut terminals = Vec::new();
        for (d, token) in devices {
            if d.domain == PANEL_DOMAIN {
                panel = Some((d, token));
            } else {
                let tray = terminal_tray(&root, d.domain);
                terminals.push(SimulatedTerminal::new(d, token, tray));
            }
        }
        let Some((panel, panel_token)) = panel else {
            anyhow::bail!("the demo network has no device {PANEL_DOMAIN}");
        };
        let tls = imagecast_shared::tls::TlsSettings::pinned(server.fingerprint());
        let net = DemoNetwork {
            root,
            server,
            panel,
            panel_token,
            terminals,
            stop_terminals: CancellationToken::new(),
            tasks: TaskTracker::new(),
            tls,
        };
        for t in &net.terminals {
            if t.domain() != OFFLINE_DOMAIN {
                net.switch_on(t.domain())?;
            }
        }
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        loop {
            let waiting: Vec<&str> = net
                .terminals
                .iter()
                .filter(|t| {
                    t.is_online() && !(t.is_connected() && net.server.is_online(t.domain()))
                })
                .map(|t| t.domain())
                .collect();
            if waiting.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(?waiting, "some simulated terminals are not connected yet");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(net)
    }

    /// The folder everything is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.server.data_dir().to_owned()
    }

    /// `HOST:PORT` of the server.
    pub fn server_addr(&self) -> &str {
        self.server.addr()
    }

    /// The running server (who is online, for instance).
    pub fn server(&self) -> &DemoServer {
        &self.server
    }

    /// MFP 120, whose panel the demo opens.
    pub fn panel_device(&self) -> &DemoDevice {
        &self.panel
    }

    /// MFP 120's device token.
    pub fn panel_token(&self) -> &str {
        &self.panel_token
    }

    /// How the panel connects: as MFP 120, receiving.
    pub fn panel_client_config(&self) -> ClientConfig {
        self.client_config(self.panel.domain, &self.panel_token, true)
    }

    /// How a device connects to the demo's server (over TLS, the certificate pinned).
    pub fn client_config(&self, domain: &str, token: &str, receive: bool) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.server.addr(), domain, token, receive);
        cfg.tls = Some(self.tls.clone());
        cfg
    }

    /// The fingerprint of the demo server's certificate.
    pub fn fingerprint(&self) -> Option<&str> {
        self.tls.fingerprint.as_deref()
    }

    /// MFP 120's folders.
    pub fn panel_dirs(&self) -> PanelDirs {
        PanelDirs::under(&panel_root(&self.root))
    }

    /// The other devices, in the order of the seed's network (the offline one included).
    pub fn terminals(&self) -> &[SimulatedTerminal] {
        &self.terminals
    }

    /// One simulated terminal by domain.
    pub fn terminal(&self, domain: &str) -> Option<&SimulatedTerminal> {
        self.terminals.iter().find(|t| t.domain() == domain)
    }

    /// Switches a terminal on; harmless if it is on already.
    pub fn switch_on(&self, domain: &str) -> anyhow::Result<()> {
        let t = self
            .terminal(domain)
            .with_context(|| format!("the demo has no simulated terminal {domain}"))?;
        if let Some(task) = t.switch_on(
            self.server.addr(),
            Some(self.tls.clone()),
            self.stop_terminals.clone(),
        ) {
            self.tasks.spawn(task);
        }
        Ok(())
    }

    /// Where every tray is, and what each terminal received.
    pub fn tray_summary(&self) -> String {
        let dirs = self.panel_dirs();
        let mut out = format!(
            "{} {} ({}), this panel:
  ADF (place documents here): {}
  output tray: {}
  removable media: {}
  image store: {}
",
            device_label(&self.panel),
            self.panel.domain,
            self.panel.name,
            dirs.adf.display(),
            dirs.output_tray.display(),
            dirs.removable.display(),
            dirs.store.display(),
        );
        out.push_str(
            "Other terminals:
",
        );
        for t in &self.terminals {
            let state = if t.is_online() {
                let n = t.received();
                format!(
                    "online, received {n} image{} ({})",
                    if n == 1 { "" } else { "s" },
                    crate::pc::pages_in_files(t.pages_received(), t.files_received())
                )
            } else {
                "offline: gets its images when it connects".to_owned()
            };
            out.push_str(&format!(
                "  {} {} ({}): {state}
    tray: {}
",
                t.label(),
                t.domain(),
                t.name(),
                t.tray().display()
            ));
        }
        out.push_str(&format!(
            "Server data directory: {}
",
            self.server.data_dir().display()
        ));
        out
    }

    /// Stops the terminals, then the server.
    pub async fn shutdown(mut self) {
        self.stop_terminals.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(STOP_WAIT, self.tasks.wait()).await;
        self.server.shutdown().await;
    }
}

impl Drop for DemoNetwork {
    fn drop(&mut self) {
        // The server stops when it is dropped.
        self.stop_terminals.cancel();
    }
}

/// Creates the panel's and terminals' folders and fills an empty ADF with the samples.
/// Blocking.
fn prepare(root: &Path, dirs: &PanelDirs) -> anyhow::Result<()> {
    for dir in dirs.all() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if Adf::new(&dirs.adf).documents()?.is_empty() {
        write_samples(&dirs.adf)?;
    }
    for d in DEMO_DEVICES {
        if d.domain != PANEL_DOMAIN {
            let tray = terminal_tray(root, d.domain);
            std::fs::create_dir_all(&tray)
                .with_context(|| format!("cannot create {}", tray.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
