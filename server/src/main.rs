//! `imagecast-server`: the command line of the image server.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use imagecast_server::groups::GroupDir;
use imagecast_server::store::datadir::DataDir;
use imagecast_server::store::{auth, queue, tls};
use imagecast_server::{ServerConfig, ServerState, demo};
use imagecast_shared::limits::MAX_REASON;
use imagecast_shared::msg::{DeviceKind, Role};
use imagecast_shared::text::{escape as esc, escape_bounded as esc_bounded};
use tokio_util::sync::CancellationToken;

/// The imagecast image server: destination groups, registration, durable distribution.
#[derive(Parser)]
#[command(name = "imagecast-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory (with --demo: the seed's offices, groups, devices and users).
    Init {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// Add the seed's demo network (FIG. 2, FIG. 14-17) and print its tokens and users.
        #[arg(long)]
        demo: bool,
        /// Use this PEM certificate instead of making a self-signed one (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Serve terminals.
    Run {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:7410")]
        listen: String,
        /// Heartbeat interval in milliseconds; a terminal silent for two is dropped.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
        /// Seconds a new connection has to send its hello.
        #[arg(long, default_value_t = 10)]
        handshake_timeout: u64,
        /// Most connections served at once.
        #[arg(long, default_value_t = 20_000)]
        max_connections: usize,
        /// Serve plain TCP instead of TLS (only on a network you trust).
        #[arg(long)]
        plain: bool,
    },
    /// Print the fingerprint of the server's TLS certificate, to hand to terminals.
    Fingerprint {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Manage the server's TLS identity.
    #[command(subcommand)]
    Tls(TlsCmd),
    /// Check every group file; print each problem as FILE:LINE: reason.
    Check {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Manage devices (the terminals allowed to connect).
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Print the recent failed logins (time, device, user, peer).
    Logins {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// Only the last N.
        #[arg(long, default_value_t = 50)]
        last: u32,
    },
    /// Print the communication records: one line per destination result.
    Journal {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// Only the last N lines.
        #[arg(long, default_value_t = 100)]
        last: usize,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Make a new key and self-signed certificate (terminals that pinned the old one refuse
    /// it until told the new fingerprint).
    Create {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// A host name or address to name in the certificate (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Install an administrator's PEM certificate and key.
    Install {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// The private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Add a device; prints its new token alone on stdout.
    Add {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The device's network domain name (or IP address).
        domain: String,
        /// Its destination name.
        #[arg(long)]
        name: String,
        /// Its kind: mfp, pc, printer or fax-gateway.
        #[arg(long, default_value = "pc")]
        kind: String,
    },
    /// List the devices.
    List {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Revoke a device's token: it can no longer connect; its live connections are dropped.
    Revoke {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The device's domain.
        domain: String,
    },
    /// Issue a new token for a device (the old one stops working; a revoked device is back).
    Token {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The device's domain.
        domain: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input.
    Add {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The user ID.
        user: String,
        /// operator or admin.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (the only way: it never shows in `ps`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Change a user's password (read from standard input); the user's sessions end.
    Passwd {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The user ID.
        user: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user; the user's sessions end.
    Remove {
        /// The data directory.
        #[arg(long, env = "IMAGECAST_DATA_DIR")]
        data_dir: PathBuf,
        /// The user ID.
        user: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IMAGECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init {
            data_dir,
            demo,
            tls_cert,
            tls_key,
        } => {
            let data = DataDir::new(&data_dir);
            let (mut fingerprint, demo) = if demo {
                let made = demo::init(&data)?;
                (made.fingerprint.clone(), Some(made))
            } else {
                (data.init(&[])?, None)
            };
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                fingerprint = tls::install(&data.tls_dir(), &cert, &key)?;
            }
            println!("initialised {}", data_dir.display());
            println!("server certificate fingerprint {fingerprint}");
            if let Some(made) = demo {
                println!("demo devices (domain, kind, name, token):");
                for (d, token) in &made.devices {
                    println!(
                        "  {:<22} {:<4} {:<44} {token}",
                        d.domain,
                        d.kind.as_str(),
                        d.name
                    );
                }
                println!("demo users (user ID / password, role):");
                for (u, p, r) in &made.users {
                    println!("  {u} / {p}  {}", r.as_str());
                }
                let path = demo::write_tokens(&data, &made.devices)?;
                println!("tokens also written to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fingerprint { data_dir } => {
            println!("{}", tls::fingerprint(&DataDir::new(data_dir).tls_dir())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tls(TlsCmd::Create { data_dir, names }) => {
            let fp = tls::create(&DataDir::new(data_dir).tls_dir(), &names)?;
            println!("{fp}");
            eprintln!(
                "new certificate made; terminals must be given this fingerprint (restart the server to use it)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tls(TlsCmd::Install {
            data_dir,
            cert,
            key,
        }) => {
            let fp = tls::install(&DataDir::new(data_dir).tls_dir(), &cert, &key)?;
            println!("{fp}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            data_dir,
            listen,
            heartbeat_ms,
            handshake_timeout,
            max_connections,
            plain,
        } => {
            let config = ServerConfig {
                heartbeat: Duration::from_millis(heartbeat_ms.max(100)),
                handshake_timeout: Duration::from_secs(handshake_timeout.max(1)),
                max_connections: max_connections.max(1),
                ..ServerConfig::default()
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(serve(DataDir::new(data_dir), listen, config, plain))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { data_dir } => check(&DataDir::new(data_dir)),
        Command::Device(DeviceCmd::Add {
            data_dir,
            domain,
            name,
            kind,
        }) => {
            let data = DataDir::new(data_dir);
            let Some(kind) = DeviceKind::parse(&kind) else {
                bail!("unknown device kind {kind:?}: use mfp, pc, printer or fax-gateway");
            };
            let conn = data.connect()?;
            let token = auth::add_device(&conn, &domain, &name, kind)?;
            if data.add_to_all(&domain, &name)? {
                eprintln!("added {domain};{name} to all.rec");
            }
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Device(DeviceCmd::List { data_dir }) => {
            let conn = DataDir::new(data_dir).connect()?;
            for d in auth::devices(&conn)? {
                let revoked = if d.revoked { "  (revoked)" } else { "" };
                println!(
                    "{}\t{}\t{}{revoked}",
                    esc(&d.domain),
                    d.kind.as_str(),
                    esc(&d.name)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Device(DeviceCmd::Revoke { data_dir, domain }) => {
            let conn = DataDir::new(data_dir).connect()?;
            auth::revoke_device(&conn, &domain)?;
            eprintln!("revoked {domain}; a running server drops its connections within a second");
            Ok(ExitCode::SUCCESS)
        }
        Command::Logins { data_dir, last } => {
            let conn = DataDir::new(data_dir).connect()?;
            for f in auth::failed_logins(&conn, last)? {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(f.at_ms);
                println!(
                    "{} {} {} {}",
                    humantime::format_rfc3339_seconds(at),
                    esc(&f.device),
                    esc(&f.user),
                    esc(&f.peer)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCmd::Passwd {
            data_dir,
            user,
            password_stdin,
        }) => {
            if !password_stdin {
                bail!("give the new password on standard input with --password-stdin");
            }
            let password = read_password()?;
            let conn = DataDir::new(data_dir).connect()?;
            auth::set_password(&conn, &user, &auth::hash_password(&password)?)?;
            eprintln!("changed the password of {user}; their sessions end");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCmd::Remove { data_dir, user }) => {
            let conn = DataDir::new(data_dir).connect()?;
            auth::remove_user(&conn, &user)?;
            eprintln!("removed user {user}; their sessions end");
            Ok(ExitCode::SUCCESS)
        }
        Command::Device(DeviceCmd::Token { data_dir, domain }) => {
            let conn = DataDir::new(data_dir).connect()?;
            println!("{}", auth::reissue_token(&conn, &domain)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCmd::Add {
            data_dir,
            user,
            role,
            password_stdin,
        }) => {
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role {role:?}: use operator or admin");
            };
            if !password_stdin {
                bail!("give the password on standard input with --password-stdin");
            }
            let password = read_password()?;
            let conn = DataDir::new(data_dir).connect()?;
            let hash = auth::hash_password(&password)?;
            auth::add_user(&conn, &user, role, &hash)?;
            eprintln!("added user {user} ({})", role.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCmd::List { data_dir }) => {
            let conn = DataDir::new(data_dir).connect()?;
            for u in auth::users(&conn)? {
                println!("{}\t{}", u.user, u.role.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal { data_dir, last } => {
            let conn = DataDir::new(data_dir).connect()?;
            for l in queue::journal(&conn, last)? {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(l.at_ms.max(0) as u64);
                println!(
                    "{} {} {} {} {} {} {}{}",
                    humantime::format_rfc3339_seconds(at),
                    l.dist,
                    esc(&l.sender),
                    esc(&l.destination),
                    l.pages,
                    l.bytes,
                    l.result,
                    l.reason
                        .map(|r| format!(" {}", esc_bounded(&r, MAX_REASON)))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .context("cannot read the password from standard input")?;
    let password = s.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("the password on standard input is empty");
    }
    Ok(password)
}

fn check(data: &DataDir) -> anyhow::Result<ExitCode> {
    if !data.groups_dir().is_dir() {
        bail!(
            "{} has no groups folder; is it an imagecast data directory?",
            data.root().display()
        );
    }
    let snap = GroupDir::new(data.groups_dir()).snapshot()?;
    let mut errors = 0;
    for p in snap.problems() {
        println!("{}", esc(&p.to_string()));
        if !p.is_warning() {
            errors += 1;
        }
    }
    let groups = snap.groups().len();
    if errors > 0 {
        eprintln!("{errors} problem(s) in the group files; {groups} group(s) usable");
        Ok(ExitCode::FAILURE)
    } else {
        eprintln!("{groups} group(s), all files valid");
        Ok(ExitCode::SUCCESS)
    }
}

async fn serve(
    data: DataDir,
    listen: String,
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
    let state = ServerState::open(data, config, shutdown.clone()).await?;
    let listener = imagecast_server::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.cancel();
    });
    imagecast_server::run(listener, state, tls).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
