//! The data directory: one folder holds all of a server's state.
//!
//! ```text
//! DATA/
//!   groups/*.rec     destination group files (the seed's format; edit them freely)
//!   imagecast.db     devices, users, distributions, deliveries, journal (SQLite, WAL)
//!   spool/           accepted images until every destination has them
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use imagecast_shared::msg::{DeviceKind, Role};

use super::{auth, db, files, tls};
use crate::groups::{ALL_FILE, GroupError, RecFile};

/// A data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// One terminal of the seed's demo network (FIG. 2).
#[derive(Clone, Copy, Debug)]
pub struct DemoDevice {
    /// Reference numeral in the seed (MFP 120, PC 160...), or 0 for the extra offices.
    pub numeral: u32,
    /// Network domain name.
    pub domain: &'static str,
    /// Destination name.
    pub name: &'static str,
    /// Kind.
    pub kind: DeviceKind,
}

/// The seed's network: head office LAN 100 (MFPs 120, 130, 140, PC 160), the Osaka office
/// LAN 300 (MFPs 310, 320, PC 340), and two more sales offices.
pub const DEMO_DEVICES: &[DemoDevice] = &[
    DemoDevice {
        numeral: 120,
        domain: "sale1.hqs.mei.co.jp",
        name: "sales department 1 of the head office",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 130,
        domain: "sale2.hqs.mei.co.jp",
        name: "sales department 2 of the head office",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 140,
        domain: "devl1.hqs.mei.co.jp",
        name: "development department of the head office",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 160,
        domain: "plan1.hqs.mei.co.jp",
        name: "planning department of the head office",
        kind: DeviceKind::Pc,
    },
    DemoDevice {
        numeral: 310,
        domain: "sale1.osk.mei.co.jp",
        name: "sales office, the Osaka branch",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 320,
        domain: "devl1.osk.mei.co.jp",
        name: "development department, the Osaka branch",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 340,
        domain: "plan1.osk.mei.co.jp",
        name: "planning section, the Osaka branch",
        kind: DeviceKind::Pc,
    },
    DemoDevice {
        numeral: 0,
        domain: "sale1.ngy.mei.co.jp",
        name: "sales office, the Nagoya branch",
        kind: DeviceKind::Mfp,
    },
    DemoDevice {
        numeral: 0,
        domain: "sale1.fko.mei.co.jp",
        name: "sales office, the Fukuoka branch",
        kind: DeviceKind::Mfp,
    },
];

/// The demo's group files (FIG. 14–17): file name, group name, member domains.
pub const DEMO_GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "eigyou_all.rec",
        "all sales-related places",
        &[
            "sale1.hqs.mei.co.jp",
            "sale2.hqs.mei.co.jp",
            "plan1.hqs.mei.co.jp",
            "sale1.osk.mei.co.jp",
            "sale1.ngy.mei.co.jp",
            "sale1.fko.mei.co.jp",
        ],
    ),
    (
        "eigyou_syo.rec",
        "all sales offices",
        &[
            "sale1.osk.mei.co.jp",
            "sale1.ngy.mei.co.jp",
            "sale1.fko.mei.co.jp",
        ],
    ),
    (
        "develop.rec",
        "product development-related places",
        &["devl1.hqs.mei.co.jp"],
    ),
];

/// The demo's users: ID, password, role.
pub const DEMO_USERS: &[(&str, &str, Role)] = &[
    ("1001", "1234", Role::Operator),
    ("1002", "5678", Role::Operator),
    ("9000", "9000", Role::Admin),
];

/// The name of "all distribution destinations".
pub const ALL_GROUP_NAME: &str = "all distribution destinations";

/// What `init` made.
#[derive(Debug, Default)]
pub struct InitReport {
    /// Devices added, with their tokens.
    pub devices: Vec<(DemoDevice, String)>,
    /// The fingerprint of the server's TLS certificate.
    pub fingerprint: String,
    /// Users added, with their passwords.
    pub users: Vec<(String, String, Role)>,
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `groups/`.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    /// `imagecast.db`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("imagecast.db")
    }

    /// `tls/`: the server's key and certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// `spool/`.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Fails with a helpful sentence unless `init` has run here.
    pub fn check_exists(&self) -> anyhow::Result<()> {
        if !self.db_path().is_file() || !self.groups_dir().is_dir() {
            bail!(
                "{} is not an imagecast data directory; create it with `imagecast-server init --data-dir {}`",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }

    /// Opens a database connection for a command-line operation.
    pub fn connect(&self) -> anyhow::Result<rusqlite::Connection> {
        self.check_exists()?;
        db::open_connection(&self.db_path())
            .with_context(|| format!("cannot open {}", self.db_path().display()))
    }

    /// Creates the data directory; with `demo`, the seed's network, groups and users.
    pub fn init(&self, demo: bool) -> anyhow::Result<InitReport> {
        if self.db_path().exists() {
            bail!(
                "{} is already an imagecast data directory; nothing was changed",
                self.root.display()
            );
        }
        std::fs::create_dir_all(self.groups_dir())
            .with_context(|| format!("cannot create {}", self.groups_dir().display()))?;
        std::fs::create_dir_all(self.spool_dir())
            .with_context(|| format!("cannot create {}", self.spool_dir().display()))?;
        let all = self.groups_dir().join(ALL_FILE);
        let mut report = InitReport {
            fingerprint: tls::create(&self.tls_dir(), &[])?,
            ..InitReport::default()
        };
        let conn = db::open_connection(&self.db_path())?;
        if !all.exists() {
            let mut text = format!("# {ALL_GROUP_NAME}\n# {ALL_FILE}\n");
            if demo {
                for d in DEMO_DEVICES {
                    text.push_str(&format!("{};{}\n", d.domain, d.name));
                }
            }
            files::write_atomic(&all, text.as_bytes())?;
        }
        if demo {
            for (file, group, members) in DEMO_GROUPS {
                let mut text = format!("# {group}\n# {file}\n");
                for m in *members {
                    let name = DEMO_DEVICES
                        .iter()
                        .find(|d| d.domain == *m)
                        .map_or("", |d| d.name);
                    text.push_str(&format!("{m};{name}\n"));
                }
                files::write_atomic(&self.groups_dir().join(file), text.as_bytes())?;
            }
            for d in DEMO_DEVICES {
                let token = auth::add_device(&conn, d.domain, d.name, d.kind)?;
                report.devices.push((*d, token));
            }
            for (user, password, role) in DEMO_USERS {
                let hash = auth::hash_password(password)?;
                auth::add_user(&conn, user, *role, &hash)?;
                report
                    .users
                    .push(((*user).to_owned(), (*password).to_owned(), *role));
            }
        }
        Ok(report)
    }

    /// Adds `domain;name` to `all.rec` unless the domain is listed there already.
    /// Returns true when the file changed.
    pub fn add_to_all(&self, domain: &str, name: &str) -> anyhow::Result<bool> {
        let path = self.groups_dir().join(ALL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("# {ALL_GROUP_NAME}\n# {ALL_FILE}\n").into_bytes()
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let file = RecFile::parse(ALL_FILE, &bytes).map_err(GroupError::Malformed)?;
        let (new, changed) = file.with_member_added(domain, name)?;
        if changed {
            files::write_atomic(&path, &new.to_bytes())?;
        }
        Ok(changed)
    }
}
