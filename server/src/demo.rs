//! The seed's demo network (FIG. 2, FIG. 14–17): its offices, groups, devices and users;
//! putting it in a data directory ([`init`], for `imagecast-server init --demo`); and serving
//! that directory from inside another program ([`DemoServer`], for `imagecast demo`).
//!
//! This module is the demo's one way into the server: the terminal's `demo` feature links the
//! server crate for it and uses nothing else, so the server's internals can change without the
//! terminal noticing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imagecast_shared::msg::{DeviceKind, Role};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::{ServerConfig, ServerState};
use crate::store::datadir::{DEMO_TOKENS_FILE, DataDir};
use crate::store::{auth, files, tls};

/// How long [`DemoServer::shutdown`] waits for the server to close its connections.
const STOP_WAIT: Duration = Duration::from_secs(6);

/// One terminal of the seed's demo network (FIG. 2).
#[derive(Clone, Copy, Debug)]
pub struct DemoDevice {
    /// Reference numeral in the seed (MFP 120, PC 160...), or 0 for the extra offices.
    pub numeral: u32,
    /// Network domain name, as `all.rec` lists it and the device says it in its hello.
    pub domain: &'static str,
    /// Destination name, as terminals show it.
    pub name: &'static str,
    /// MFP or PC: what the device does with what it receives (prints it, or stores it).
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

/// What [`init`] made: every device with its token, every user with its password.
#[derive(Debug)]
pub struct DemoInit {
    /// The fingerprint of the server's new TLS certificate.
    pub fingerprint: String,
    /// The devices, with their tokens.
    pub devices: Vec<(DemoDevice, String)>,
    /// The users: ID, password, role.
    pub users: Vec<(String, String, Role)>,
}

/// Creates a data directory holding the demo network: every demo device listed in `all.rec`,
/// the groups of FIG. 14–17, the devices with fresh tokens, and the users. Blocking (password
/// hashing, files).
pub fn init(data: &DataDir) -> anyhow::Result<DemoInit> {
    let destinations: Vec<(&str, &str)> = DEMO_DEVICES.iter().map(|d| (d.domain, d.name)).collect();
    let fingerprint = data.init(&destinations)?;
    for (file, group, members) in DEMO_GROUPS {
        let mut text = format!("# {group}\n# {file}\n");
        for m in *members {
            let name = DEMO_DEVICES
                .iter()
                .find(|d| d.domain == *m)
                .map_or("", |d| d.name);
            text.push_str(&format!("{m};{name}\n"));
        }
        files::write_atomic(&data.groups_dir().join(file), text.as_bytes())?;
    }
    let conn = data.connect()?;
    let mut devices = Vec::with_capacity(DEMO_DEVICES.len());
    for d in DEMO_DEVICES {
        let token = auth::add_device(&conn, d.domain, d.name, d.kind)?;
        devices.push((*d, token));
    }
    let mut users = Vec::with_capacity(DEMO_USERS.len());
    for (user, password, role) in DEMO_USERS {
        let hash = auth::hash_password(password)?;
        auth::add_user(&conn, user, *role, &hash)?;
        users.push(((*user).to_owned(), (*password).to_owned(), *role));
    }
    Ok(DemoInit {
        fingerprint,
        devices,
        users,
    })
}

/// An existing data directory: issues fresh tokens for the demo devices (adding any that
/// are missing) and adds missing demo users; groups and queued images stay as they are.
/// Blocking.
fn reuse(data: &DataDir) -> anyhow::Result<Vec<(DemoDevice, String)>> {
    let conn = data.connect()?;
    let mut devices = Vec::with_capacity(DEMO_DEVICES.len());
    for d in DEMO_DEVICES {
        let token = if auth::device(&conn, d.domain)?.is_some() {
            auth::reissue_token(&conn, d.domain)?
        } else {
            data.add_to_all(d.domain, d.name)?;
            auth::add_device(&conn, d.domain, d.name, d.kind)?
        };
        devices.push((*d, token));
    }
    for (user, password, role) in DEMO_USERS {
        if auth::user_secret(&conn, user)?.is_none() {
            auth::add_user(&conn, user, *role, &auth::hash_password(password)?)?;
        }
    }
    Ok(devices)
}

/// Writes [`DEMO_TOKENS_FILE`] in the data directory, readable by its owner only; returns its path.
pub fn write_tokens(data: &DataDir, devices: &[(DemoDevice, String)]) -> anyhow::Result<PathBuf> {
    let tokens: String = devices
        .iter()
        .map(|(d, t)| format!("{} {t}\n", d.domain))
        .collect();
    let path = data.root().join(DEMO_TOKENS_FILE);
    files::write_private(&path, tokens.as_bytes())?;
    Ok(path)
}

/// The demo network's server, running in a task of the caller's runtime: the data directory
/// served over TLS on a loopback port, with a fresh token for every demo device.
pub struct DemoServer {
    data: DataDir,
    addr: String,
    fingerprint: String,
    devices: Vec<(DemoDevice, String)>,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl std::fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServer")
            .field("data", &self.data.root())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DemoServer {
    /// Creates the demo's data directory at `dir` (or reuses it: groups edited and images
    /// queued stay, every device gets a fresh token), writes [`DEMO_TOKENS_FILE`], and serves it
    /// over TLS on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(dir: impl Into<PathBuf>, listen: &str) -> anyhow::Result<DemoServer> {
        let data = DataDir::new(dir);
        let devices = {
            let data = data.clone();
            tokio::task::spawn_blocking(move || prepare(&data))
                .await
                .context("demo set-up was interrupted")??
        };
        let tls_dir = data.tls_dir();
        if !tls::files(&tls_dir).0.exists() {
            tls::create(&tls_dir, &[])?;
        }
        let (acceptor, fingerprint) = tls::load(&tls_dir)?;
        let shutdown = CancellationToken::new();
        let state =
            ServerState::open(data.clone(), ServerConfig::default(), shutdown.clone()).await?;
        let listener = crate::net::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?.to_string();
        let task = tokio::spawn(crate::net::run(listener, state.clone(), Some(acceptor)));
        Ok(DemoServer {
            data,
            addr,
            fingerprint,
            devices,
            state,
            shutdown,
            task: Some(task),
        })
    }

    /// `HOST:PORT` the server listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The fingerprint of the server's certificate, for terminals to pin.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Every demo device, in the order of [`DEMO_DEVICES`], with its token.
    pub fn devices(&self) -> &[(DemoDevice, String)] {
        &self.devices
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.root()
    }

    /// True when the device has a receiving connection to the server.
    pub fn is_online(&self, domain: &str) -> bool {
        self.state.connections.is_online(domain)
    }

    /// Stops the server: its connections are closed (a few seconds at most). Stopping it
    /// again does nothing.
    pub async fn shutdown(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(STOP_WAIT, task).await;
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Creates or reuses the data directory and returns every demo device with a usable token,
/// also written to [`DEMO_TOKENS_FILE`]. Blocking.
fn prepare(data: &DataDir) -> anyhow::Result<Vec<(DemoDevice, String)>> {
    files::create_private_dir(data.root())
        .with_context(|| format!("cannot create {}", data.root().display()))?;
    let devices = if data.db_path().exists() {
        reuse(data)?
    } else {
        init(data)?.devices
    };
    write_tokens(data, &devices)?;
    Ok(devices)
}
