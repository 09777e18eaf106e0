//! The options every command takes (flags or `IMAGECAST_*` variables), resolved with the
//! config file into [`Settings`].

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::{FileConfig, Settings, TlsArgs};

/// Where the server is, who this terminal is, and who logs in. The `IMAGECAST_*` variables
/// are read here rather than by clap, whose usage lines would otherwise list a flag the
/// environment supplies as if it were required.
#[derive(clap::Args)]
pub struct Options {
    /// Image server address HOST:PORT (else IMAGECAST_SERVER).
    #[arg(long, global = true)]
    server: Option<String>,
    /// This terminal's network domain name (else IMAGECAST_DEVICE).
    #[arg(long, global = true)]
    device: Option<String>,
    /// This terminal's device token (else IMAGECAST_TOKEN).
    #[arg(long, global = true)]
    token: Option<String>,
    /// User ID to log in with (else IMAGECAST_USER).
    #[arg(long, global = true)]
    user: Option<String>,
    /// Read the password from standard input (else IMAGECAST_PASSWORD).
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Connect without TLS (only to a server run with --plain; else IMAGECAST_PLAIN=1).
    #[arg(long, global = true)]
    plain: bool,
    /// The server certificate's fingerprint (from `imagecast-server fingerprint`); without it
    /// the first one seen is trusted and remembered (else IMAGECAST_SERVER_FINGERPRINT).
    #[arg(long, global = true)]
    server_fingerprint: Option<String>,
    /// The file of remembered server fingerprints (else IMAGECAST_KNOWN_SERVERS; default: the
    /// config folder's known_servers).
    #[arg(long, global = true)]
    known_servers: Option<PathBuf>,
    /// Config file (else IMAGECAST_CONFIG; default: the platform config folder's
    /// imagecast/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

impl Options {
    /// The settings: these options over the config file's.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file = FileConfig::load(
            self.config
                .clone()
                .or_else(|| env("IMAGECAST_CONFIG").map(PathBuf::from))
                .as_deref(),
        )?;
        Settings::resolve(
            self.server.clone().or_else(|| env("IMAGECAST_SERVER")),
            self.device.clone().or_else(|| env("IMAGECAST_DEVICE")),
            self.token.clone().or_else(|| env("IMAGECAST_TOKEN")),
            self.user.clone().or_else(|| env("IMAGECAST_USER")),
            self.password()?,
            TlsArgs {
                plain: self.plain || env_flag("IMAGECAST_PLAIN")?,
                fingerprint: self
                    .server_fingerprint
                    .clone()
                    .or_else(|| env("IMAGECAST_SERVER_FINGERPRINT")),
                known_servers: self
                    .known_servers
                    .clone()
                    .or_else(|| env("IMAGECAST_KNOWN_SERVERS").map(PathBuf::from)),
            },
            file,
        )
    }

    /// The password: the first line of standard input with `--password-stdin`, else
    /// `IMAGECAST_PASSWORD`.
    fn password(&self) -> anyhow::Result<Option<String>> {
        if self.password_stdin {
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
}

/// An `IMAGECAST_*` variable, if set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A yes-or-no variable, as clap reads one (`1`, `true`, `yes`, `on`, `y`, or their opposites);
/// unset or empty is no, and anything else is an error naming the variable, so a typo does
/// not quietly choose for the operator.
fn env_flag(name: &str) -> anyhow::Result<bool> {
    let Some(v) = env(name) else {
        return Ok(false);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" => Ok(false),
        _ => bail!("{name}={v:?} is neither yes nor no: use 1 or 0"),
    }
}
