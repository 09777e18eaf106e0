//! `panel`: the MFP control panel connected as this device; `demo`: the seed's network in one
//! process with this panel as MFP 120 (only in builds with the `demo` feature).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::options::Options;
use super::{init_logging, runtime};
use crate::panel::{PanelDirs, PanelOptions, Script, Theme};
use crate::pc;

/// Options shared by `panel` and `demo`.
#[derive(clap::Args)]
pub struct PanelArgs {
    /// Replay a walkthrough script (see docs/walkthroughs/).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Draw into memory and print each screen as text (needs --script).
    #[arg(long, requires = "script")]
    headless: bool,
    /// With --headless: also write the screens as an asciicast v2 recording (`asciinema play
    /// FILE` replays it), in colour unless NO_COLOR is set.
    #[arg(long, requires = "headless")]
    record: Option<PathBuf>,
    /// Terminal size when headless, as COLSxROWS.
    #[arg(long, default_value = "80x24", value_parser = parse_size)]
    size: (u16, u16),
    /// Kiosk: quitting needs an administrator's login.
    #[arg(long)]
    kiosk: bool,
}

/// `panel`'s flags: the shared ones and where its paper lies.
#[derive(clap::Args)]
pub struct PanelCmd {
    #[command(flatten)]
    panel: PanelArgs,
    /// The ADF / input tray folder.
    #[arg(long)]
    adf: Option<PathBuf>,
    /// The output tray folder.
    #[arg(long)]
    output_tray: Option<PathBuf>,
    /// The removable-media folder.
    #[arg(long)]
    removable: Option<PathBuf>,
    /// The image store folder.
    #[arg(long)]
    store: Option<PathBuf>,
    /// The folder for logs and state.
    #[arg(long)]
    state: Option<PathBuf>,
}

/// `demo`'s flags.
#[derive(clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    panel: PanelArgs,
    /// Where to put everything (default: a new folder in the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `panel`: the folders default to the platform data folder's `panel/DEVICE/`.
pub fn panel(options: &Options, cmd: &PanelCmd) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    let base = directories::ProjectDirs::from("", "", "imagecast")
        .map(|d| d.data_dir().join("panel").join(&settings.device))
        .unwrap_or_else(|| PathBuf::from("imagecast-panel"));
    let std_dirs = PanelDirs::under(&base);
    let dirs = PanelDirs {
        adf: cmd.adf.clone().unwrap_or(std_dirs.adf),
        output_tray: cmd.output_tray.clone().unwrap_or(std_dirs.output_tray),
        removable: cmd.removable.clone().unwrap_or(std_dirs.removable),
        store: cmd.store.clone().unwrap_or(std_dirs.store),
        state: cmd.state.clone().unwrap_or(std_dirs.state),
    };
    init_logging(
        (!cmd.panel.headless)
            .then(|| dirs.state.join("panel.log"))
            .as_deref(),
    );
    let client = pc::client_config(&settings, true);
    let opts = panel_options(&cmd.panel, client, dirs, false)?;
    runtime()?.block_on(crate::panel::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// `demo`: starts the network, runs the panel, then prints where every tray is.
#[cfg(feature = "demo")]
pub fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    use crate::demo::{DemoNetwork, DemoOptions};

    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "imagecast-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        )),
    };
    init_logging(
        (!args.panel.headless)
            .then(|| root.join("demo.log"))
            .as_deref(),
    );
    runtime()?.block_on(async {
        let net = DemoNetwork::start(DemoOptions::new(&root)).await?;
        let peers = real_time_peers(&net);
        let fax = demo_fax::start(&net).await;
        if fax.is_ok() {
            // Each gateway prints a line once connected: before the panel takes the screen.
            demo_fax::wait_online(&net).await;
        }
        let opts = panel_options(
            &args.panel,
            net.panel_client_config(),
            net.panel_dirs(),
            true,
        )?;
        let result = crate::panel::run(opts).await;
        peers.cancel();
        let mut summary = net.tray_summary();
        match fax {
            Ok(fax) => summary.push_str(&fax.stop().await),
            Err(e) => summary.push_str(&format!("Fax: not running ({e:#})\n")),
        }
        net.shutdown().await;
        println!("{summary}");
        result.map(|()| ExitCode::SUCCESS)
    })
}

/// The demo's other offices online take real-time sessions (seed 004): each keeps a second
/// connection that accepts every connection demand and prints the pages to its tray, as
/// `imagecast relay listen --accept-all` does. Cancelling the token closes them.
#[cfg(feature = "demo")]
fn real_time_peers(net: &crate::demo::DemoNetwork) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    for (device, token) in net.server().devices() {
        let domain = device.domain;
        if domain == crate::demo::PANEL_DOMAIN || domain == crate::demo::OFFLINE_DOMAIN {
            continue;
        }
        let cfg = net.client_config(domain, token, false);
        let tray = net
            .root()
            .join("terminals")
            .join(domain)
            .join("output-tray");
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok((client, events)) = imagecast_shared::client::Client::connect(&cfg).await else {
                return;
            };
            tokio::select! {
                () = pc::relay::accept_all(client.clone(), events, tray) => {}
                () = stop.cancelled() => client.close().await,
            }
        });
    }
    stop
}

/// The demo's fax part (issue 12): two gateways and a customer's fax machine on a simulated
/// telephone network under `ROOT/fax/`, run in this process through the faxgw library.
#[cfg(feature = "demo")]
mod demo_fax {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use anyhow::Context;
    use imagecast_faxgw::gateway::{self, GatewayConfig};
    use imagecast_faxgw::machine;
    use imagecast_faxgw::page::{FaxPage, Resolution};
    use imagecast_faxgw::sim::{Capabilities, DialOptions, Exchange, Line};
    use imagecast_server::demo::{DEMO_CUSTOMER_NUMBER, DEMO_CUSTOMER_STATION};
    use tokio::task::JoinHandle;
    use tokio_util::sync::CancellationToken;

    /// How long stopping waits for the gateways and the machine.
    const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// The running fax part.
    pub struct DemoFax {
        stop: CancellationToken,
        tasks: Vec<JoinHandle<()>>,
        inbox: PathBuf,
        exchange: PathBuf,
        gateways: Vec<(String, String)>,
    }

    /// The simulated network's folder under the demo's root.
    pub fn exchange_dir(root: &Path) -> PathBuf {
        root.join("fax").join("exchange")
    }

    /// The customer's inbox under the demo's root.
    pub fn customer_inbox(root: &Path) -> PathBuf {
        root.join("fax").join("customer-inbox")
    }

    /// The customer's reply: one page with a frame and a few bars, so it is seen to arrive.
    fn reply_page() -> FaxPage {
        let (w, h) = (1728u32, 1100u32);
        let mut page = FaxPage::white(Resolution::Standard, h);
        for y in 0..h {
            for x in 0..w {
                let frame = !(40..w - 40).contains(&x) || !(40..h - 40).contains(&y);
                let bar = (200..1500).contains(&x) && (y / 60) % 3 == 1 && (200..900).contains(&y);
                if frame || bar {
                    page.set(x, y, true);
                }
            }
        }
        page
    }

    /// Starts both gateways and the customer's machine; the customer answers every fax it
    /// receives with a one-page reply to the number that called.
    pub async fn start(net: &crate::demo::DemoNetwork) -> anyhow::Result<DemoFax> {
        // The panel owns the terminal: the gateways' lines go to the log.
        imagecast_faxgw::console::to_log();
        let root = net.root().to_owned();
        let exchange_path = exchange_dir(&root);
        let exchange = Exchange::open(&exchange_path)
            .with_context(|| format!("exchange {}", exchange_path.display()))?;
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut gateways = Vec::new();
        for (g, token) in net.server().fax_gateways() {
            let line = Line::register(
                &exchange,
                g.number,
                g.station,
                Capabilities::default(),
                g.lines as usize,
            )
            .await
            .with_context(|| format!("gateway {} on {}", g.domain, g.number))?;
            let mut client = net.client_config(g.domain, token, true);
            client.software =
                concat!("imagecast demo fax gateway ", env!("CARGO_PKG_VERSION")).to_owned();
            let cfg = GatewayConfig {
                client,
                number: g.number.to_owned(),
                station: g.station.to_owned(),
                lines: g.lines,
                spool: root.join("fax").join(g.domain).join("spool"),
            };
            let stop = stop.clone();
            let domain = g.domain;
            tasks.push(tokio::spawn(async move {
                if let Err(e) = gateway::run(cfg, Arc::new(line), stop.cancelled_owned()).await {
                    tracing::warn!(gateway = domain, "demo fax gateway stopped: {e:#}");
                }
            }));
            gateways.push((g.domain.to_owned(), g.number.to_owned()));
        }
        let inbox = customer_inbox(&root);
        machine::prepare_inbox(&inbox)?;
        let customer = Line::register(
            &exchange,
            DEMO_CUSTOMER_NUMBER,
            DEMO_CUSTOMER_STATION,
            Capabilities::default(),
            2,
        )
        .await
        .context("the customer's fax machine")?;
        {
            let (stop, inbox) = (stop.clone(), inbox.clone());
            tasks.push(tokio::spawn(async move {
                customer_machine(customer, inbox, stop).await;
            }));
        }
        Ok(DemoFax {
            stop,
            tasks,
            inbox,
            exchange: exchange_path,
            gateways,
        })
    }

    async fn customer_machine(line: Line, inbox: PathBuf, stop: CancellationToken) {
        let reply = [reply_page()];
        let dial = DialOptions::default();
        loop {
            let call = tokio::select! {
                () = stop.cancelled() => break,
                call = line.accept() => call,
            };
            let call = match call {
                Ok(call) => call,
                Err(e) => {
                    tracing::warn!("the customer's fax machine: {e}");
                    break;
                }
            };
            match machine::store_call(&inbox, &call) {
                Ok(stored) => {
                    tracing::info!("{}", machine::describe_call(&call, stored.as_deref()))
                }
                Err(e) => tracing::warn!("the customer's fax machine cannot store a fax: {e}"),
            }
            if call.pages.is_empty() || call.caller.is_empty() {
                continue;
            }
            let outcome = tokio::select! {
                () = stop.cancelled() => break,
                o = line.dial(&call.caller, &reply, &dial) => o,
            };
            match outcome {
                Ok(o) => {
                    tracing::info!(to = %call.caller, result = o.result.word(), "customer's reply")
                }
                Err(e) => tracing::warn!(to = %call.caller, "customer's reply: {e}"),
            }
        }
        line.stop_answering();
    }

    /// Waits (5 s at most) until every gateway is connected to the server.
    pub async fn wait_online(net: &crate::demo::DemoNetwork) {
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while net
            .server()
            .fax_gateways()
            .iter()
            .any(|(g, _)| !net.server().is_online(g.domain))
        {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("the demo's fax gateways are not all connected yet");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    impl DemoFax {
        /// Stops the gateways and the machine; returns the lines the summary prints.
        pub async fn stop(self) -> String {
            self.stop.cancel();
            for t in self.tasks {
                let _ = tokio::time::timeout(STOP_WAIT, t).await;
            }
            let received = std::fs::read_dir(&self.inbox)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".tif"))
                        .count()
                })
                .unwrap_or(0);
            let mut out = String::from("Fax (simulated telephone network):\n");
            for (domain, number) in &self.gateways {
                out.push_str(&format!("  gateway {domain}: number {number}\n"));
            }
            out.push_str(&format!(
                "  customer's fax machine {DEMO_CUSTOMER_NUMBER} \"{DEMO_CUSTOMER_STATION}\": received {received} fax{}\n    inbox: {}\n  exchange: {}\n",
                if received == 1 { "" } else { "es" },
                self.inbox.display(),
                self.exchange.display()
            ));
            out
        }
    }
}

/// `demo` in a build without the `demo` feature: says so.
#[cfg(not(feature = "demo"))]
pub fn demo(_: &DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this build of imagecast has no demo (built without the `demo` feature)")
}

fn panel_options(
    args: &PanelArgs,
    client: imagecast_shared::client::ClientConfig,
    dirs: PanelDirs,
    demo: bool,
) -> anyhow::Result<PanelOptions> {
    let script = match &args.script {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the script {}", path.display()))?;
            Some(Script::parse(&text).with_context(|| format!("{}", path.display()))?)
        }
    };
    Ok(PanelOptions {
        client,
        dirs,
        demo,
        kiosk: args.kiosk,
        script,
        headless: args.headless,
        size: args.size,
        record: args.record.clone(),
        // A recording is in colour (unless NO_COLOR); text screens are plain.
        theme: if args.headless && args.record.is_none() {
            Theme::plain()
        } else {
            Theme::from_env()
        },
    })
}

/// Parses `--size COLSxROWS`.
fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not COLSxROWS, like 80x24"))?;
    let w: u16 = w
        .parse()
        .map_err(|_| format!("{w:?} is not a number of columns"))?;
    let h: u16 = h
        .parse()
        .map_err(|_| format!("{h:?} is not a number of rows"))?;
    if w < 20 || h < 5 {
        return Err(format!("{w}x{h} is too small"));
    }
    Ok((w, h))
}
