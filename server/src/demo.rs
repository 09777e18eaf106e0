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

/// One fax gateway of the demo (device kind `fax-gateway`), on the simulated telephone
/// network that `imagecast demo` runs in its own process.
#[derive(Clone, Copy, Debug)]
pub struct DemoFaxGateway {
    /// Its device domain.
    pub domain: &'static str,
    /// Its name, as the devices table keeps it.
    pub name: &'static str,
    /// Its telephone number on the simulated network.
    pub number: &'static str,
    /// Its station ID.
    pub station: &'static str,
    /// Lines it calls on at once.
    pub lines: u32,
}

/// The demo's two fax gateways, in the order of the priority table.
pub const DEMO_FAX_GATEWAYS: &[DemoFaxGateway] = &[
    DemoFaxGateway {
        domain: "fax1.hqs.mei.co.jp",
        name: "fax server 1 of the head office",
        number: "0355550101",
        station: "MEI HEAD OFFICE 1",
        lines: 2,
    },
    DemoFaxGateway {
        domain: "fax2.hqs.mei.co.jp",
        name: "fax server 2 of the head office",
        number: "0355550102",
        station: "MEI HEAD OFFICE 2",
        lines: 1,
    },
];

/// The customer's fax machine on the demo's simulated network: its number and station ID.
pub const DEMO_CUSTOMER_NUMBER: &str = "0665550199";
/// The customer's station ID; the delivery table routes faxes from it to [`DEMO_FAX_USER`].
pub const DEMO_CUSTOMER_STATION: &str = "ACME TRADING OSAKA";
/// The user whose home terminal (MFP 120) gets the customer's faxes, and for whom one
/// phone-book entry is labelled.
pub const DEMO_FAX_USER: &str = "1001";
/// The terminal that is [`DEMO_FAX_USER`]'s home: MFP 120.
pub const DEMO_FAX_HOME: &str = "sale1.hqs.mei.co.jp";

/// The demo's phone book: name, number, `None` for a shared entry or the user it is
/// labelled for.
pub const DEMO_PHONEBOOK: &[(&str, &str, Option<&str>)] = &[
    ("Acme Trading", DEMO_CUSTOMER_NUMBER, None),
    ("Head office fax 2", "0355550102", None),
    (
        "Acme (Mr Sato, direct)",
        DEMO_CUSTOMER_NUMBER,
        Some(DEMO_FAX_USER),
    ),
];

/// Puts the demo's fax part into the database, where it is missing: the gateways (fresh
/// tokens), the priority table, the user's home terminal, the delivery rule for the
/// customer's faxes and the phone book. Entries an operator changed stay as they are.
/// Returns every gateway with its token. Blocking.
fn fax_setup(conn: &rusqlite::Connection) -> anyhow::Result<Vec<(DemoFaxGateway, String)>> {
    use crate::fax::{Party, delivery, homes, phonebook, priority};
    let mut gateways = Vec::with_capacity(DEMO_FAX_GATEWAYS.len());
    for g in DEMO_FAX_GATEWAYS {
        let token = if auth::device(conn, g.domain)?.is_some() {
            auth::reissue_token(conn, g.domain)?
        } else {
            auth::add_device(conn, g.domain, g.name, DeviceKind::FaxGateway)?
        };
        gateways.push((*g, token));
    }
    if priority::list(conn)?.is_empty() {
        let order: Vec<String> = DEMO_FAX_GATEWAYS
            .iter()
            .map(|g| g.domain.to_owned())
            .collect();
        priority::set(conn, &order)?;
    }
    if homes::of(conn, DEMO_FAX_USER)?.is_empty() {
        homes::set(conn, DEMO_FAX_USER, &[DEMO_FAX_HOME.to_owned()])?;
    }
    if delivery::list(conn)?.is_empty() {
        delivery::add(
            conn,
            delivery::Match::Station(DEMO_CUSTOMER_STATION.to_owned()),
            Party::User(DEMO_FAX_USER.to_owned()),
        )?;
    }
    let existing = phonebook::list(conn)?;
    for (name, number, label) in DEMO_PHONEBOOK {
        if existing.iter().any(|e| e.name.eq_ignore_ascii_case(name)) {
            continue;
        }
        phonebook::add(
            conn,
            &phonebook::Entry {
                name: (*name).to_owned(),
                number: (*number).to_owned(),
                visibility: match label {
                    None => phonebook::Visibility::Shared,
                    Some(u) => phonebook::Visibility::For(vec![Party::User((*u).to_owned())]),
                },
            },
        )?;
    }
    Ok(gateways)
}

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
    fax_gateways: Vec<(DemoFaxGateway, String)>,
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
        let (devices, fax_gateways) = {
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
            fax_gateways,
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

    /// The demo's fax gateways ([`DEMO_FAX_GATEWAYS`]), each with a fresh token.
    pub fn fax_gateways(&self) -> &[(DemoFaxGateway, String)] {
        &self.fax_gateways
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

/// Devices and fax gateways, each with its token.
type Prepared = (Vec<(DemoDevice, String)>, Vec<(DemoFaxGateway, String)>);

/// Creates or reuses the data directory and returns every demo device with a usable token,
/// also written to [`DEMO_TOKENS_FILE`], and the fax gateways with theirs. Blocking.
fn prepare(data: &DataDir) -> anyhow::Result<Prepared> {
    files::create_private_dir(data.root())
        .with_context(|| format!("cannot create {}", data.root().display()))?;
    let devices = if data.db_path().exists() {
        reuse(data)?
    } else {
        init(data)?.devices
    };
    write_tokens(data, &devices)?;
    let gateways = fax_setup(&data.connect()?).context("cannot set up the demo's fax part")?;
    Ok((devices, gateways))
}
