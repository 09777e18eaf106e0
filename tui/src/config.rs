//! Terminal settings: flags first, then `IMAGECAST_*` environment variables (both handled by
//! clap), then the config file `config.toml` in the platform config folder (or `--config`).
//!
//! ```toml
//! server = "127.0.0.1:7410"
//! device = "plan1.hqs.mei.co.jp"
//! token = "…"
//! user = "1001"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use imagecast_shared::tls::{TlsSettings, normalize_fingerprint};
use serde::Deserialize;

/// The address used when none is given anywhere.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7410";

/// Values read from the config file; every one is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `HOST:PORT` of the image server.
    pub server: Option<String>,
    /// This terminal's network domain name.
    pub device: Option<String>,
    /// This terminal's device token.
    pub token: Option<String>,
    /// The user ID to log in with.
    pub user: Option<String>,
    /// The password (prefer `--password-stdin` or `IMAGECAST_PASSWORD`).
    pub password: Option<String>,
    /// Connect without TLS (only to a server run with `--plain`).
    pub plain: Option<bool>,
    /// The server certificate's fingerprint, as printed by `imagecast-server fingerprint`.
    pub server_fingerprint: Option<String>,
    /// The file of remembered server fingerprints.
    pub known_servers: Option<PathBuf>,
}

/// The platform's known-servers file (`~/.config/imagecast/known_servers` on Linux).
pub fn default_known_servers() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "imagecast")
        .map(|d| d.config_dir().join("known_servers"))
}

/// TLS choices from the command line or the environment.
#[derive(Clone, Debug, Default)]
pub struct TlsArgs {
    /// `--plain`.
    pub plain: bool,
    /// `--server-fingerprint`.
    pub fingerprint: Option<String>,
    /// `--known-servers`.
    pub known_servers: Option<PathBuf>,
}

/// The platform's config file path (`~/.config/imagecast/config.toml` on Linux).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "imagecast").map(|d| d.config_dir().join("config.toml"))
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty config unless it was named explicitly.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok(Self::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid config file", path.display()))?;
        if let Some(warning) = config.exposure(&path) {
            eprintln!("imagecast: warning: {warning}");
        }
        Ok(config)
    }

    /// A warning when this config holds a secret (a device token or a password) in a file that
    /// other users can read or change, as ssh warns about a key file.
    pub fn exposure(&self, path: &Path) -> Option<String> {
        let secrets: Vec<&str> = [
            self.token.as_ref().map(|_| "a device token"),
            self.password.as_ref().map(|_| "a password"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if secrets.is_empty() {
            return None;
        }
        let mode = imagecast_shared::private::readable_by_others(path).ok()??;
        Some(format!(
            "{} holds {} and other users can read or change it (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            secrets.join(" and "),
            path.display()
        ))
    }
}

/// Everything needed to connect, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `HOST:PORT`.
    pub server: String,
    /// Device domain.
    pub device: String,
    /// Device token.
    pub token: String,
    /// User ID, if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// TLS and how to trust the server; `None` for plain TCP.
    pub tls: Option<TlsSettings>,
}

impl Settings {
    /// Merges flag/environment values (`Some` wins) over the file's.
    pub fn resolve(
        server: Option<String>,
        device: Option<String>,
        token: Option<String>,
        user: Option<String>,
        password: Option<String>,
        tls: TlsArgs,
        file: FileConfig,
    ) -> anyhow::Result<Self> {
        let tls = if tls.plain || file.plain.unwrap_or(false) {
            None
        } else {
            let fingerprint = match tls.fingerprint.or(file.server_fingerprint) {
                None => None,
                Some(fp) => Some(normalize_fingerprint(&fp).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{fp:?} is not a server fingerprint (SHA256: and 64 hex digits, as `imagecast-server fingerprint` prints it)"
                    )
                })?),
            };
            Some(TlsSettings {
                fingerprint,
                known_servers: tls
                    .known_servers
                    .or(file.known_servers)
                    .or_else(default_known_servers),
            })
        };
        let device = device.or(file.device);
        let token = token.or(file.token);
        let Some(device) = device else {
            bail!(
                "no device given: use --device DOMAIN, IMAGECAST_DEVICE or `device` in the config file"
            );
        };
        let Some(token) = token else {
            bail!(
                "no device token given: use --token TOKEN, IMAGECAST_TOKEN or `token` in the config file"
            );
        };
        Ok(Self {
            server: server
                .or(file.server)
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
            device,
            token,
            user: user.or(file.user),
            password: password.or(file.password),
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_missing_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "server = \"h:1\"\ndevice = \"d.example\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let file = FileConfig::load(Some(&path)).unwrap();
        let none = TlsArgs::default;
        let s = Settings::resolve(
            Some("x:2".into()),
            None,
            None,
            None,
            None,
            none(),
            file.clone(),
        )
        .unwrap();
        assert_eq!((s.server.as_str(), s.device.as_str()), ("x:2", "d.example"));
        assert!(s.tls.is_some(), "TLS unless asked otherwise");
        let plain = TlsArgs {
            plain: true,
            ..none()
        };
        let s = Settings::resolve(None, None, None, None, None, plain, file.clone()).unwrap();
        assert!(s.tls.is_none());
        let bad = TlsArgs {
            fingerprint: Some("abc".into()),
            ..none()
        };
        let err = Settings::resolve(None, None, None, None, None, bad, file).unwrap_err();
        assert!(
            err.to_string().contains("not a server fingerprint"),
            "{err}"
        );
        let err = Settings::resolve(None, None, None, None, None, none(), FileConfig::default())
            .unwrap_err();
        assert!(err.to_string().contains("no device given"), "{err}");
        std::fs::write(&path, "sever = \"typo\"\n").unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_in_a_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "device = \"d.example\"\ntoken = \"t\"\n").unwrap();
        let chmod = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        chmod(0o644).unwrap();
        let file = FileConfig::load(Some(&path)).unwrap();
        let warning = file.exposure(&path).expect("a warning");
        assert!(
            warning.contains("a device token") && warning.contains("mode 644"),
            "{warning}"
        );
        assert!(warning.contains("chmod 600"), "{warning}");
        chmod(0o600).unwrap();
        assert_eq!(file.exposure(&path), None);
        // No secret, no warning.
        std::fs::write(&path, "device = \"d.example\"\n").unwrap();
        chmod(0o644).unwrap();
        assert_eq!(FileConfig::load(Some(&path)).unwrap().exposure(&path), None);
    }
}
