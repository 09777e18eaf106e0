//! The supervisor's settings (002 \[0028\]–\[0030\], FIG. 7–8) as one TOML file: `fax export`
//! writes it, `fax import` reads it back. The file holds the priority table, the per-client
//! routes, the delivery rules, the retry policy, the groupings, the phone book, the
//! competences, the user homes and every gateway's settings; not the communication records
//! (a log, not a setting) and not the users themselves (`user add` owns passwords).
//!
//! An import replaces every table the file describes, in one transaction the caller holds:
//! one bad entry changes nothing. Its errors name the TOML table and the line. Gateway settings
//! that differ from the stored ones get a new version (pending until the gateway applies it);
//! gateways the file does not mention keep theirs. Export, import, export gives the same file.
//!
//! ```toml
//! priority = ["gw1.example", "gw2.example"]
//!
//! [policy]
//! max-dials = 12
//!
//! [[client-route]]
//! user = "1001"                    # or device = "pc1.example"
//! gateways = ["gw2.example"]
//!
//! [[delivery]]
//! station = "ACME*"                # or caller, called, gateway, or any = true
//! user = "1001"                    # or device = "mfp1.example"
//!
//! [[grouping]]
//! name = "osaka"
//! users = ["1001"]
//! devices = []
//! gateways = ["gw1.example"]
//!
//! [[phonebook]]
//! name = "Acme"
//! number = "+81 6 5555 0100"
//! shared = true                    # or users = [...] and/or devices = [...]
//!
//! [[competence]]
//! user = "1001"
//! competence = "gateway-settings"
//! granted = true                   # device = "pc1.example" for one terminal only
//!
//! [[user-home]]
//! user = "1001"
//! devices = ["pc1.example"]
//!
//! [[gateway]]
//! domain = "gw1.example"
//! [gateway.settings]
//! station-id = "+81 6 5555 0001"
//! ```

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::competence::{self, Competence};
use super::delivery::{self, Match};
use super::grouping::{self, Member};
use super::phonebook::{self, Visibility};
use super::policy::{self, Policy};
use super::settings::{self, GatewaySettings};
use super::{FaxError, Party, homes, priority};

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SupervisorFile {
    /// The priority table (empty: every gateway).
    #[serde(default)]
    pub priority: Vec<String>,
    /// The retry policy (keys left out have their defaults).
    #[serde(default)]
    pub policy: Policy,
    /// The per-client routes.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "client-route"
    )]
    pub client_routes: Vec<ClientRouteToml>,
    /// The delivery rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery: Vec<DeliveryToml>,
    /// The groupings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grouping: Vec<GroupingToml>,
    /// The phone book.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phonebook: Vec<PhonebookToml>,
    /// Grants and revocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub competence: Vec<CompetenceToml>,
    /// User homes.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "user-home")]
    pub user_homes: Vec<HomeToml>,
    /// Gateway settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<GatewayToml>,
}

/// A `[[client-route]]`: `user` or `device`, and its gateways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientRouteToml {
    /// The user, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// the terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Its gateways, in order.
    pub gateways: Vec<String>,
}

/// A `[[delivery]]` rule: one of `station`, `caller`, `called`, `gateway`, `any`, and one of
/// `user`, `device` (the flags of `fax delivery add`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeliveryToml {
    /// A pattern on the remote station ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// A pattern on the caller's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The number called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called: Option<String>,
    /// The gateway that received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Every fax.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any: bool,
    /// To this user's terminals, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// to this terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// A `[[grouping]]` and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupingToml {
    /// Its name.
    pub name: String,
    /// Member terminals.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Member users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Member gateways.
    #[serde(default)]
    pub gateways: Vec<String>,
}

/// A `[[phonebook]]` entry: `shared = true`, or the users and terminals that see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PhonebookToml {
    /// Its name.
    pub name: String,
    /// Its number.
    pub number: String,
    /// Seen by everyone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// Users who see it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Terminals that see it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

/// A `[[competence]]` grant or revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CompetenceToml {
    /// The user.
    pub user: String,
    /// `send-fax`, `gateway-settings` or `supervisor-settings`.
    pub competence: String,
    /// Only at this terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Granted or revoked.
    pub granted: bool,
}

/// A `[[user-home]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HomeToml {
    /// The user.
    pub user: String,
    /// The terminals that get the user's faxes.
    pub devices: Vec<String>,
}

/// A `[[gateway]]` and its `[gateway.settings]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GatewayToml {
    /// The gateway's domain.
    pub domain: String,
    /// Its settings (keys left out have their defaults).
    #[serde(default)]
    pub settings: GatewaySettings,
}

/// Reads every table into the file's shape.
pub fn export(conn: &Connection) -> Result<SupervisorFile, FaxError> {
    let client_routes = priority::client_routes(conn)?
        .into_iter()
        .map(|r| ClientRouteToml {
            user: matches!(r.client, Party::User(_)).then(|| r.client.name().to_owned()),
            device: matches!(r.client, Party::Device(_)).then(|| r.client.name().to_owned()),
            gateways: r.gateways,
        })
        .collect();
    let delivery = delivery::list(conn)?
        .into_iter()
        .map(|r| {
            let mut t = DeliveryToml::default();
            match r.matches {
                Match::Station(p) => t.station = Some(p),
                Match::Caller(p) => t.caller = Some(p),
                Match::Called(n) => t.called = Some(n),
                Match::Gateway(g) => t.gateway = Some(g),
                Match::Any => t.any = true,
            }
            match r.target {
                Party::User(u) => t.user = Some(u),
                Party::Device(d) => t.device = Some(d),
            }
            t
        })
        .collect();
    let grouping = grouping::list(conn)?
        .into_iter()
        .map(|g| {
            let mut t = GroupingToml {
                name: g.name,
                devices: Vec::new(),
                users: Vec::new(),
                gateways: Vec::new(),
            };
            for m in g.members {
                match m {
                    Member::Device(d) => t.devices.push(d),
                    Member::User(u) => t.users.push(u),
                    Member::Gateway(gw) => t.gateways.push(gw),
                }
            }
            t
        })
        .collect();
    let phonebook = phonebook::list(conn)?
        .into_iter()
        .map(|e| {
            let mut t = PhonebookToml {
                name: e.name,
                number: e.number,
                shared: false,
                users: Vec::new(),
                devices: Vec::new(),
            };
            match e.visibility {
                Visibility::Shared => t.shared = true,
                Visibility::For(labels) => {
                    for l in labels {
                        match l {
                            Party::User(u) => t.users.push(u),
                            Party::Device(d) => t.devices.push(d),
                        }
                    }
                }
            }
            t
        })
        .collect();
    let competence = competence::list(conn)?
        .into_iter()
        .map(|c| CompetenceToml {
            user: c.user,
            competence: c.competence.as_str().to_owned(),
            device: c.device,
            granted: c.granted,
        })
        .collect();
    let user_homes = homes::list(conn)?
        .into_iter()
        .map(|h| HomeToml {
            user: h.user,
            devices: h.devices,
        })
        .collect();
    let gateway = settings::all(conn)?
        .into_iter()
        .map(|v| GatewayToml {
            domain: v.gateway,
            settings: v.settings,
        })
        .collect();
    Ok(SupervisorFile {
        priority: priority::list(conn)?,
        policy: policy::get(conn)?,
        client_routes,
        delivery,
        grouping,
        phonebook,
        competence,
        user_homes,
        gateway,
    })
}

/// The file as TOML text.
pub fn to_toml(file: &SupervisorFile) -> Result<String, FaxError> {
    toml::to_string(file).map_err(|e| FaxError::Invalid(format!("cannot write TOML: {e}")))
}

/// Parses TOML text; the error names the line, the column and the key.
pub fn from_toml(text: &str) -> Result<SupervisorFile, FaxError> {
    toml::from_str(text).map_err(|e| FaxError::Invalid(e.to_string().trim_end().to_owned()))
}

/// Where the `n`th (from 0) `[[name]]` table starts in `text`, as "line L: [[name]] #N", or
/// just "[[name]] #N" when the file writes its tables another way.
fn place(text: &str, name: &str, n: usize) -> String {
    let header = format!("[[{name}]]");
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(n)
        .map(|(i, _)| i + 1);
    match line {
        Some(l) => format!("line {l}: {header} #{}", n + 1),
        None => format!("{header} #{}", n + 1),
    }
}

/// Where a top-level key is set in `text` ("line L: KEY"), for the errors of plain keys.
fn key_place(text: &str, key: &str) -> String {
    let line = text.lines().enumerate().find(|(_, l)| {
        let t = l.trim_start();
        t.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
            || t == format!("[{key}]")
    });
    match line {
        Some((i, _)) => format!("line {}: {key}", i + 1),
        None => key.to_owned(),
    }
}

fn at(place: String) -> impl FnOnce(FaxError) -> FaxError {
    move |e| match e {
        FaxError::Db(d) => FaxError::Db(d),
        other => FaxError::Invalid(format!("{place}: {other}")),
    }
}

fn one_of<'a>(place: &str, what: &str, options: &[(&'a str, bool)]) -> Result<&'a str, FaxError> {
    let set: Vec<&str> = options
        .iter()
        .filter(|(_, s)| *s)
        .map(|(k, _)| *k)
        .collect();
    match set.as_slice() {
        [one] => Ok(*one),
        _ => {
            let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
            Err(FaxError::Invalid(format!(
                "{place}: give exactly one {what} of {}",
                names.join(", ")
            )))
        }
    }
}

/// The supervisor's settings file as it is now, and its version (a digest of the file):
/// what a terminal is shown, and what a change from a terminal must have been read at.
pub fn current(conn: &Connection) -> Result<(String, String), FaxError> {
    use sha2::{Digest, Sha256};
    let text = to_toml(&export(conn)?)?;
    let digest = Sha256::digest(text.as_bytes());
    let version = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok((text, version))
}

/// Replaces the supervisor's tables with `text` as a terminal's user asks: refused unless they
/// are still at `version` (someone else changed them meanwhile). Run it inside a transaction
/// and commit only when it returns `Ok` (all or none); returns the new file and version.
pub fn replace_at(
    conn: &Connection,
    text: &str,
    version: &str,
) -> Result<(String, String), FaxError> {
    let (_, now) = current(conn)?;
    if now != version {
        return Err(FaxError::Invalid(format!(
            "the supervisor's settings changed since version {version} was read (they are at \
             version {now} now): show them again, make the change there and set again"
        )));
    }
    import(conn, text)?;
    current(conn)
}

/// Replaces the supervisor's tables with the file's `text` (parsed, then applied table by
/// table through the modules' own checks). Run it inside a transaction and commit only when it
/// returns `Ok`: the first error stops it, naming the TOML table and line.
pub fn import(conn: &Connection, text: &str) -> Result<(), FaxError> {
    let file = from_toml(text)?;
    priority::clear(conn)?;
    delivery::clear(conn)?;
    grouping::clear(conn)?;
    phonebook::clear(conn)?;
    competence::clear(conn)?;
    homes::clear(conn)?;

    priority::set(conn, &file.priority).map_err(at(key_place(text, "priority")))?;
    policy::replace(conn, &file.policy).map_err(at(key_place(text, "policy")))?;
    for (i, r) in file.client_routes.iter().enumerate() {
        let p = place(text, "client-route", i);
        let client = match one_of(
            &p,
            "client",
            &[("user", r.user.is_some()), ("device", r.device.is_some())],
        )? {
            "user" => Party::User(r.user.clone().unwrap_or_default()),
            _ => Party::Device(r.device.clone().unwrap_or_default()),
        };
        priority::set_client(conn, &client, &r.gateways).map_err(at(p))?;
    }
    for (i, r) in file.delivery.iter().enumerate() {
        let p = place(text, "delivery", i);
        let kind = one_of(
            &p,
            "match",
            &[
                ("station", r.station.is_some()),
                ("caller", r.caller.is_some()),
                ("called", r.called.is_some()),
                ("gateway", r.gateway.is_some()),
                ("any", r.any),
            ],
        )?;
        let value = [&r.station, &r.caller, &r.called, &r.gateway]
            .into_iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or_default();
        let m = Match::from_parts(kind, value).map_err(at(p.clone()))?;
        let target = match one_of(
            &p,
            "target",
            &[("user", r.user.is_some()), ("device", r.device.is_some())],
        )? {
            "user" => Party::User(r.user.clone().unwrap_or_default()),
            _ => Party::Device(r.device.clone().unwrap_or_default()),
        };
        delivery::add(conn, m, target).map_err(at(p))?;
    }
    for (i, g) in file.grouping.iter().enumerate() {
        let p = place(text, "grouping", i);
        grouping::add(conn, &g.name).map_err(at(p.clone()))?;
        let members = g
            .devices
            .iter()
            .map(|d| Member::Device(d.clone()))
            .chain(g.users.iter().map(|u| Member::User(u.clone())))
            .chain(g.gateways.iter().map(|gw| Member::Gateway(gw.clone())));
        for m in members {
            grouping::add_member(conn, &g.name, m).map_err(at(p.clone()))?;
        }
    }
    for (i, e) in file.phonebook.iter().enumerate() {
        let p = place(text, "phonebook", i);
        let labels: Vec<Party> = e
            .users
            .iter()
            .map(|u| Party::User(u.clone()))
            .chain(e.devices.iter().map(|d| Party::Device(d.clone())))
            .collect();
        let visibility = match (e.shared, labels.is_empty()) {
            (true, true) => Visibility::Shared,
            (false, _) => Visibility::For(labels),
            (true, false) => {
                return Err(FaxError::Invalid(format!(
                    "{p}: an entry is either shared or for users and devices, not both"
                )));
            }
        };
        phonebook::add(
            conn,
            &phonebook::Entry {
                name: e.name.clone(),
                number: e.number.clone(),
                visibility,
            },
        )
        .map_err(at(p))?;
    }
    for (i, c) in file.competence.iter().enumerate() {
        let p = place(text, "competence", i);
        let comp = Competence::parse(&c.competence).map_err(at(p.clone()))?;
        competence::set(conn, &c.user, comp, c.device.as_deref(), c.granted).map_err(at(p))?;
    }
    for (i, h) in file.user_homes.iter().enumerate() {
        let p = place(text, "user-home", i);
        homes::set(conn, &h.user, &h.devices).map_err(at(p))?;
    }
    for (i, g) in file.gateway.iter().enumerate() {
        let p = place(text, "gateway", i);
        settings::replace(conn, &g.domain, &g.settings).map_err(at(p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    fn fill(conn: &Connection) {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        priority::set(conn, &s(&["gw2.example", "gw1.example"])).unwrap();
        priority::set_client(conn, &Party::User("1001".into()), &s(&["gw3.example"])).unwrap();
        priority::set_client(
            conn,
            &Party::Device("pc1.example".into()),
            &s(&["gw1.example"]),
        )
        .unwrap();
        delivery::add(
            conn,
            Match::Station("ACME*".into()),
            Party::User("1001".into()),
        )
        .unwrap();
        delivery::add(conn, Match::Any, Party::Device("mfp1.example".into())).unwrap();
        policy::set(conn, &s(&["max-dials=5"])).unwrap();
        grouping::add(conn, "osaka").unwrap();
        grouping::add_member(conn, "osaka", Member::User("1001".into())).unwrap();
        grouping::add_member(conn, "osaka", Member::Gateway("gw1.example".into())).unwrap();
        phonebook::add(
            conn,
            &phonebook::Entry {
                name: "Acme".into(),
                number: "+81 6 5555 0100".into(),
                visibility: Visibility::Shared,
            },
        )
        .unwrap();
        phonebook::add(
            conn,
            &phonebook::Entry {
                name: "Lawyer".into(),
                number: "03-5555".into(),
                visibility: Visibility::For(vec![Party::User("1002".into())]),
            },
        )
        .unwrap();
        competence::grant(
            conn,
            "1001",
            Competence::GatewaySettings,
            Some("pc1.example"),
        )
        .unwrap();
        competence::revoke(conn, "1002", Competence::SendFax, None).unwrap();
        homes::set(conn, "1001", &s(&["pc1.example", "mfp1.example"])).unwrap();
        settings::set(
            conn,
            "gw1.example",
            &s(&["station-id=ACME HQ", "coding=g4"]),
        )
        .unwrap();
    }

    #[test]
    fn export_import_export_is_the_same_file() {
        let (_d, conn) = testing::db();
        fill(&conn);
        let text = to_toml(&export(&conn).unwrap()).unwrap();
        assert!(text.contains("[[delivery]]"), "{text}");
        let (_d2, other) = testing::db();
        import(&other, &text).unwrap();
        assert_eq!(to_toml(&export(&other).unwrap()).unwrap(), text);
        assert_eq!(settings::show(&other, "gw1.example").unwrap().version, 1);
        // Importing the same file again changes no setting's version.
        import(&other, &text).unwrap();
        assert_eq!(settings::show(&other, "gw1.example").unwrap().version, 1);
        assert_eq!(to_toml(&export(&other).unwrap()).unwrap(), text);
    }

    #[test]
    fn an_empty_supervisor_exports_only_its_priority_and_policy() {
        let (_d, conn) = testing::db();
        let text = to_toml(&export(&conn).unwrap()).unwrap();
        assert!(
            text.starts_with("priority = []\n\n[policy]\nmax-dials = 12\n"),
            "{text}"
        );
        assert!(!text.contains("[["), "{text}");
        import(&conn, &text).unwrap();
        assert_eq!(to_toml(&export(&conn).unwrap()).unwrap(), text);
    }

    #[test]
    fn import_errors_name_the_table_and_line() {
        let (_d, conn) = testing::db();
        let e = import(&conn, "priority = [\"gw1.example\", \"nope.example\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1: priority: unknown gateway nope.example"),
            "{e}"
        );
        let text = "[[delivery]]\nany = true\nuser = \"1001\"\n\n[[delivery]]\nstation = \"X*\"\nuser = \"7777\"\n";
        let e = import(&conn, text).unwrap_err().to_string();
        assert!(
            e.contains("line 5: [[delivery]] #2: unknown user 7777"),
            "{e}"
        );
        let e = import(
            &conn,
            "[[delivery]]\nany = true\nstation = \"X\"\nuser = \"1001\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("give exactly one match"), "{e}");
        let e = import(&conn, "[policy]\nretries = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retries") && e.contains("line 2"), "{e}");
        let e = import(
            &conn,
            "[[gateway]]\ndomain = \"gw1.example\"\n[gateway.settings]\ncoding = \"g5\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("g5"), "{e}");
    }
}
