//! The options every command takes (flags or `IMAGECAST_*` variables), resolved with the
//! config file into [`Settings`].

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::{FileConfig, Settings, TlsArgs};

/// Where the server is, who this terminal is, and who logs in.
#[derive(clap::Args)]
pub struct Options {
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
}

impl Options {
    /// The settings: these options over the config file's.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file = FileConfig::load(self.config.as_deref())?;
        Settings::resolve(
            self.server.clone(),
            self.device.clone(),
            self.token.clone(),
            self.user.clone(),
            self.password()?,
            TlsArgs {
                plain: self.plain,
                fingerprint: self.server_fingerprint.clone(),
                known_servers: self.known_servers.clone(),
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
