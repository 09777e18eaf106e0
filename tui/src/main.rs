//! `imagecast`: the terminal side of imagecast: the MFP control-panel emulator, the demo, mark
//! sheets, and the PC client's subcommands.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use imagecast::config::{FileConfig, Settings, TlsArgs};
use imagecast::demo::{DemoNetwork, DemoOptions};
use imagecast::panel::{PanelDirs, PanelOptions, Script, Theme};
use imagecast::pc;
use imagecast::store::ImageId;

/// imagecast terminal: send scanned images to destination groups, receive them, register.
#[derive(Parser)]
#[command(name = "imagecast", version, about)]
struct Cli {
    /// Image server address HOST:PORT.
    #[arg(long, global = true, env = "IMAGECAST_SERVER")]
    server: Option<String>,
    /// This terminal's network domain name.
    #[arg(long, global = true, env = "IMAGECAST_DEVICE")]
    device: Option<String>,
    /// This terminal's device token.
    #[arg(long, global = true, env = "IMAGECAST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// User ID to log in with.
    #[arg(long, global = true, env = "IMAGECAST_USER")]
    user: Option<String>,
    /// Read the password from standard input (else IMAGECAST_PASSWORD).
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Connect without TLS (only to a server run with --plain).
    #[arg(long, global = true, env = "IMAGECAST_PLAIN", value_parser = clap::builder::BoolishValueParser::new())]
    plain: bool,
    /// The server certificate's fingerprint (from `imagecast-server fingerprint`); without it
    /// the first one seen is trusted and remembered.
    #[arg(long, global = true, env = "IMAGECAST_SERVER_FINGERPRINT")]
    server_fingerprint: Option<String>,
    /// The file of remembered server fingerprints (default: the config folder's known_servers).
    #[arg(long, global = true, env = "IMAGECAST_KNOWN_SERVERS")]
    known_servers: Option<PathBuf>,
    /// Config file (default: the platform config folder's imagecast/config.toml).
    #[arg(long, global = true, env = "IMAGECAST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the destination groups, numbered from 1 (FIG. 9).
    Groups {
        /// Leave out "all distribution destinations" (FIG. 12).
        #[arg(long)]
        for_registration: bool,
    },
    /// List every destination as "domain;name" (FIG. 10).
    Destinations,
    /// Send files (the pages of one image) to groups and destinations.
    Send {
        /// A destination group name (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// An individual destination's domain (repeatable).
        #[arg(long = "to")]
        to: Vec<String>,
        /// Wait and print "DOMAIN: result" for every destination.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (exit code 2).
        #[arg(long)]
        timeout: Option<u64>,
        /// The pages, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stay connected and store every delivered image in a folder.
    Receive {
        /// The folder.
        #[arg(long)]
        out: PathBuf,
        /// Exit after this many deliveries.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Register this terminal with a group.
    Register {
        /// The group name.
        #[arg(long)]
        group: String,
    },
    /// Withdraw this terminal from a group.
    Withdraw {
        /// The group name.
        #[arg(long)]
        group: String,
    },
    /// The MFP control panel (FIG. 6-12), connected as this device.
    Panel {
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
    },
    /// One command, no set-up: the seed's network with an embedded server, simulated
    /// terminals, and this panel as MFP 120.
    Demo {
        #[command(flatten)]
        panel: PanelArgs,
        /// Where to put everything (default: a new folder in the temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Mark sheets (FIG. 20): print one, or read the image ID from a scan.
    #[command(subcommand)]
    Marksheet(MarksheetCmd),
}

/// Options shared by `panel` and `demo`.
#[derive(clap::Args)]
struct PanelArgs {
    /// Replay a walkthrough script (see docs/walkthroughs/).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Draw into memory and print each screen as text (needs --script).
    #[arg(long, requires = "script")]
    headless: bool,
    /// Terminal size when headless, as COLSxROWS.
    #[arg(long, default_value = "80x24", value_parser = parse_size)]
    size: (u16, u16),
    /// Kiosk: quitting needs an administrator's login.
    #[arg(long)]
    kiosk: bool,
}

#[derive(Subcommand)]
enum MarksheetCmd {
    /// Stamp the QR code of IMAGE_ID on a page image.
    Print {
        /// The 8-digit image ID.
        image_id: String,
        /// The page to stamp (PNG, JPEG or TIFF; its first page).
        #[arg(long)]
        page: PathBuf,
        /// Where to write the sheet (PNG).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the image ID found on a scanned mark sheet.
    Decode {
        /// The scan (PNG, JPEG or TIFF).
        file: PathBuf,
    },
}

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The most characters of an error printed when it carries text from the server.
const PEER_ERROR_CHARS: usize = 1000;

/// An error as one printable sentence. One that came from the server or from a delivery (a
/// refusal, an error reply, a broken stream) may carry a peer's text: its control characters
/// and bidirectional overrides are escaped and its length bounded. Local errors (a config
/// file's parse error, with its own line breaks) print as they are.
fn error_text(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let from_peer = e.chain().any(|c| {
        c.is::<imagecast_shared::client::ClientError>()
            || c.is::<imagecast_shared::client::InboxError>()
    });
    if from_peer {
        imagecast_shared::text::escape_bounded(&text, PEER_ERROR_CHARS).into_owned()
    } else {
        text
    }
}

/// Logs to stderr, or to a file while the panel owns the terminal.
fn init_logging(file: Option<&std::path::Path>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMAGECAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file.and_then(|p| {
        std::fs::create_dir_all(p.parent()?).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(f) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}

fn password(cli: &Cli) -> anyhow::Result<Option<String>> {
    if cli.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        let p = s.lines().next().unwrap_or("").to_owned();
        if p.is_empty() {
            bail!("the password on standard input is empty");
        }
        return Ok(Some(p));
    }
    Ok(std::env::var("IMAGECAST_PASSWORD").ok())
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let file = FileConfig::load(cli.config.as_deref())?;
    Settings::resolve(
        cli.server.clone(),
        cli.device.clone(),
        cli.token.clone(),
        cli.user.clone(),
        password(cli)?,
        TlsArgs {
            plain: cli.plain,
            fingerprint: cli.server_fingerprint.clone(),
            known_servers: cli.known_servers.clone(),
        },
        file,
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
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
        theme: if args.headless {
            Theme::plain()
        } else {
            Theme::from_env()
        },
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Marksheet(cmd) => {
            init_logging(None);
            return marksheet(cmd);
        }
        Command::Demo { panel, dir } => {
            let root = match dir {
                Some(d) => d.clone(),
                None => std::env::temp_dir().join(format!(
                    "imagecast-demo-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                )),
            };
            init_logging((!panel.headless).then(|| root.join("demo.log")).as_deref());
            return runtime()?.block_on(async {
                let net = DemoNetwork::start(DemoOptions::new(&root)).await?;
                let opts = panel_options(panel, net.panel_client_config(), net.panel_dirs(), true)?;
                let result = imagecast::panel::run(opts).await;
                let summary = net.tray_summary();
                net.shutdown().await;
                println!("{summary}");
                result.map(|()| ExitCode::SUCCESS)
            });
        }
        _ => {}
    }
    let settings = settings(&cli)?;
    if let Command::Panel {
        panel,
        adf,
        output_tray,
        removable,
        store,
        state,
    } = &cli.command
    {
        let base = directories::ProjectDirs::from("", "", "imagecast")
            .map(|d| d.data_dir().join("panel").join(&settings.device))
            .unwrap_or_else(|| PathBuf::from("imagecast-panel"));
        let std_dirs = PanelDirs::under(&base);
        let dirs = PanelDirs {
            adf: adf.clone().unwrap_or(std_dirs.adf),
            output_tray: output_tray.clone().unwrap_or(std_dirs.output_tray),
            removable: removable.clone().unwrap_or(std_dirs.removable),
            store: store.clone().unwrap_or(std_dirs.store),
            state: state.clone().unwrap_or(std_dirs.state),
        };
        init_logging(
            (!panel.headless)
                .then(|| dirs.state.join("panel.log"))
                .as_deref(),
        );
        let client = pc::client_config(&settings, true);
        let opts = panel_options(panel, client, dirs, false)?;
        runtime()?.block_on(imagecast::panel::run(opts))?;
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(None);
    let rt = runtime()?;
    let mut out = std::io::stdout().lock();
    rt.block_on(async {
        match cli.command {
            Command::Groups { for_registration } => {
                pc::groups(&settings, for_registration, &mut out).await?
            }
            Command::Destinations => pc::destinations(&settings, &mut out).await?,
            Command::Register { group } => pc::register(&settings, &group, &mut out).await?,
            Command::Withdraw { group } => pc::withdraw(&settings, &group, &mut out).await?,
            Command::Receive { out: dir, count } => {
                pc::receive(&settings, &dir, count, &mut out).await?
            }
            Command::Send {
                groups,
                to,
                wait,
                timeout,
                files,
            } => {
                let args = pc::SendArgs {
                    groups,
                    to,
                    files,
                    wait,
                    timeout: timeout.map(Duration::from_secs),
                };
                if !pc::send(&settings, &args, &mut out).await? {
                    return Ok(ExitCode::from(2));
                }
            }
            Command::Panel { .. } | Command::Demo { .. } | Command::Marksheet(_) => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn marksheet(cmd: &MarksheetCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        MarksheetCmd::Print {
            image_id,
            page,
            out,
        } => {
            let id: ImageId = image_id.parse()?;
            let first = imagecast::paper::decode_first_page(page)?;
            let sheet = imagecast::marksheet::print_sheet(id, &first);
            sheet
                .save_with_format(out, image::ImageFormat::Png)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("mark sheet for image {id} written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        MarksheetCmd::Decode { file } => match imagecast::marksheet::decode_file(file) {
            Ok(id) => {
                println!("{id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("imagecast: {}: {e}", file.display());
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagecast_shared::client::ClientError;
    use imagecast_shared::msg::{ErrorCode, ErrorInfo};

    #[test]
    fn an_error_from_the_server_prints_as_one_escaped_bounded_line() {
        let forged = format!(
            "no such group\nimagecast: forged line\u{1b}]0;pwned\u{7}\u{202e}{}",
            "A".repeat(100_000)
        );
        let e = anyhow::Error::from(ClientError::Server(ErrorInfo {
            code: ErrorCode::UnknownGroup,
            field: None,
            message: forged,
        }))
        .context("cannot send");
        let text = error_text(&e);
        assert!(
            !text.chars().any(imagecast_shared::text::is_unsafe),
            "{text:.200}"
        );
        assert!(
            text.starts_with("cannot send: no such group\\nimagecast: forged line\\u{1b}]0;pwned"),
            "{text:.200}"
        );
        assert!(
            text.chars().count() <= PEER_ERROR_CHARS + 100,
            "{}",
            text.len()
        );
        // A local error keeps its own line breaks.
        let local = anyhow::anyhow!("config.toml:\n1 | sever = 1\n  | ^ unknown field");
        assert_eq!(
            error_text(&local),
            "config.toml:\n1 | sever = 1\n  | ^ unknown field"
        );
    }
}
