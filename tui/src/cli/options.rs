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

/// One setting as `config show` prints it: its key, its value (secrets masked) and where it
/// came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Sourced {
    /// The config file's key for it.
    pub key: &'static str,
    /// The value in effect, a secret only as "(set)".
    pub value: String,
    /// `flag (--server)`, `environment (IMAGECAST_SERVER)`, `file PATH:LINE` or `default`.
    pub source: String,
}

impl Options {
    /// Every setting in effect and where it came from, in the order flags win over the
    /// environment, the environment over the config file, the file over the defaults. Reads
    /// no password from standard input.
    pub fn sources(&self) -> anyhow::Result<(PathBuf, bool, Vec<Sourced>)> {
        let (path, named) = match self
            .config
            .clone()
            .or_else(|| env("IMAGECAST_CONFIG").map(PathBuf::from))
        {
            Some(p) => (p, true),
            None => (
                crate::config::default_config_path().unwrap_or_default(),
                false,
            ),
        };
        let file = FileConfig::load(named.then_some(path.as_path()))?;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let exists = path.is_file();
        // The line of `key = …` in the (flat) config file.
        let in_file = |key: &str| {
            let line = text.lines().position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            format!("file {}:{}", path.display(), line.map_or(0, |l| l + 1))
        };
        let pick = |key: &'static str,
                    flag: Option<String>,
                    var: &str,
                    from_file: Option<String>,
                    default: Option<String>,
                    secret: bool| {
            let flag_name = format!("--{}", key.replace('_', "-"));
            let (value, source) = if let Some(v) = flag {
                (Some(v), format!("flag ({flag_name})"))
            } else if let Some(v) = env(var) {
                (Some(v), format!("environment ({var})"))
            } else if let Some(v) = from_file {
                (Some(v), in_file(key))
            } else if let Some(v) = default {
                (Some(v), "default".to_owned())
            } else {
                (None, "not set".to_owned())
            };
            let value = match value {
                None => "(none)".to_owned(),
                Some(_) if secret => "(set)".to_owned(),
                Some(v) => imagecast_shared::text::escape(&v).into_owned(),
            };
            Sourced { key, value, source }
        };
        let path_text = |p: Option<PathBuf>| p.map(|p| p.display().to_string());
        let plain_env = env_flag("IMAGECAST_PLAIN")?;
        let mut rows = vec![
            pick(
                "server",
                self.server.clone(),
                "IMAGECAST_SERVER",
                file.server.clone(),
                Some(crate::config::DEFAULT_SERVER.to_owned()),
                false,
            ),
            pick(
                "device",
                self.device.clone(),
                "IMAGECAST_DEVICE",
                file.device.clone(),
                None,
                false,
            ),
            pick(
                "token",
                self.token.clone(),
                "IMAGECAST_TOKEN",
                file.token.clone(),
                None,
                true,
            ),
            pick(
                "user",
                self.user.clone(),
                "IMAGECAST_USER",
                file.user.clone(),
                None,
                false,
            ),
            pick(
                "password",
                self.password_stdin.then(|| "stdin".to_owned()),
                "IMAGECAST_PASSWORD",
                file.password.clone(),
                None,
                true,
            ),
            pick(
                "server_fingerprint",
                self.server_fingerprint.clone(),
                "IMAGECAST_SERVER_FINGERPRINT",
                file.server_fingerprint.clone(),
                None,
                false,
            ),
            pick(
                "known_servers",
                path_text(self.known_servers.clone()),
                "IMAGECAST_KNOWN_SERVERS",
                path_text(file.known_servers.clone()),
                path_text(crate::config::default_known_servers()),
                false,
            ),
        ];
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let (value, source) = if self.plain {
            (yes_no(true), "flag (--plain)".to_owned())
        } else if env("IMAGECAST_PLAIN").is_some() {
            (
                yes_no(plain_env),
                "environment (IMAGECAST_PLAIN)".to_owned(),
            )
        } else if let Some(p) = file.plain {
            (yes_no(p), in_file("plain"))
        } else {
            (yes_no(false), "default".to_owned())
        };
        let plain = Sourced {
            key: "plain",
            value,
            source,
        };
        if self.password_stdin {
            rows[4].source = "flag (--password-stdin)".to_owned();
        }
        rows.push(plain);
        Ok((path, exists, rows))
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
