//! Each gateway's setting information (002 \[0025\], FIG. 5–6; 003 claims 5–8): read and changed
//! on the supervisor, with a version number, and applied by the gateway.
//!
//! Every change bumps the version; the gateway acknowledges the version it applied
//! ([`acknowledge`]), and a version above the applied one is pending ([`Versioned::pending`])
//! until then, so a change made while the gateway is offline waits for it. A gateway never
//! set has the defaults at version 0, nothing pending. The settings are stored as one JSON
//! object per gateway: adding a key later needs no migration, and an old row reads with the
//! new key's default.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, require_gateway, validate_number};
use crate::store::db::{DbError, now_ms};

/// Vertical resolution of the pages a gateway sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// 3.85 lines/mm (98 dpi).
    #[default]
    Standard,
    /// 7.7 lines/mm (196 dpi).
    Fine,
}

/// Page coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Coding {
    /// ITU-T T.4 one-dimensional (Modified Huffman), Group 3.
    #[default]
    G3,
    /// ITU-T T.6 (MMR), Group 4: only with error correction at both ends.
    G4,
}

impl Coding {
    /// `g3` or `g4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::G3 => "g3",
            Coding::G4 => "g4",
        }
    }

    /// Parses `g3` or `g4`.
    pub fn parse(s: &str) -> Option<Coding> {
        match s {
            "g3" => Some(Coding::G3),
            "g4" => Some(Coding::G4),
            _ => None,
        }
    }
}

/// One gateway's setting information. The field names are the `KEY`s of
/// `fax settings set GATEWAY KEY=VALUE`, as [`KEYS`] lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// The station ID sent to the remote machine (TSI/CSI): at most 20 printable ASCII
    /// characters.
    pub station_id: String,
    /// The gateway's own fax number ("" when not set).
    pub number: String,
    /// How many lines it dials on at once.
    pub lines: u32,
    /// Resolution of the pages it sends.
    pub resolution: Resolution,
    /// Coding of the pages it sends.
    pub coding: Coding,
    /// Error correction mode (ECM).
    pub error_correction: bool,
    /// Dialled before every number (an outside line, say): digits, `*`, `#`, `,` (a pause).
    pub dial_prefix: String,
    /// The line printed at the top of every page sent.
    pub tagline: String,
    /// Most pages of one fax.
    pub max_pages: u32,
    /// Network information (002 \[0025\]): where the gateway reaches its line, e.g. the
    /// HylaFAX server's `HOST:PORT`.
    pub network: String,
    /// Destination information (002 \[0025\]): notes on the numbers this gateway serves.
    pub destination: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            station_id: String::new(),
            number: String::new(),
            lines: 1,
            resolution: Resolution::Standard,
            coding: Coding::G3,
            error_correction: true,
            dial_prefix: String::new(),
            tagline: String::new(),
            max_pages: 100,
            network: String::new(),
            destination: String::new(),
        }
    }
}

/// Every key with what it allows, in the order `settings show` prints them.
pub const KEYS: &[(&str, &str)] = &[
    ("station-id", "at most 20 printable ASCII characters"),
    (
        "number",
        "a fax number (digits, a leading +, spaces or dashes), or empty",
    ),
    ("lines", "a whole number from 1 to 64"),
    ("resolution", "standard or fine"),
    ("coding", "g3 or g4 (g4 needs error-correction=on)"),
    ("error-correction", "on or off"),
    (
        "dial-prefix",
        "at most 8 of the characters 0-9 * # , (a comma pauses), or empty",
    ),
    ("tagline", "at most 100 printable characters"),
    ("max-pages", "a whole number from 1 to 1000"),
    ("network", "at most 200 printable characters"),
    ("destination", "at most 500 printable characters"),
];

/// Splits `KEY=VALUE`; the error shows the argument.
pub fn split_assignment(arg: &str) -> Result<(&str, &str), FaxError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(FaxError::Invalid(format!(
            "expected KEY=VALUE, got {arg:?}"
        ))),
    }
}

fn bad(key: &str, value: &str, allowed: &str) -> FaxError {
    FaxError::Invalid(format!(
        "bad value {value:?} for {key}: allowed is {allowed}"
    ))
}

fn printable(key: &str, value: &str, max: usize, ascii: bool) -> Result<String, FaxError> {
    let ok = value.chars().count() <= max
        && !value.chars().any(char::is_control)
        && (!ascii || value.is_ascii());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(bad(key, value, allowed(key)))
    }
}

fn allowed(key: &str) -> &'static str {
    KEYS.iter().find(|(k, _)| *k == key).map_or("", |(_, a)| *a)
}

fn number_in(key: &str, value: &str, lo: u32, hi: u32) -> Result<u32, FaxError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| bad(key, value, allowed(key)))
}

fn on_off(key: &str, value: &str) -> Result<bool, FaxError> {
    match value.trim() {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(bad(key, value, allowed(key))),
    }
}

impl GatewaySettings {
    /// Sets one key from its text; refuses an unknown key (listing the known ones) or a value
    /// it does not allow (naming the key and what it allows).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), FaxError> {
        match key {
            "station-id" => self.station_id = printable(key, value.trim(), 20, true)?,
            "number" => {
                self.number = if value.trim().is_empty() {
                    String::new()
                } else {
                    validate_number(value).map_err(|e| FaxError::Invalid(format!("number: {e}")))?
                }
            }
            "lines" => self.lines = number_in(key, value, 1, 64)?,
            "resolution" => {
                self.resolution = match value.trim() {
                    "standard" => Resolution::Standard,
                    "fine" => Resolution::Fine,
                    _ => return Err(bad(key, value, allowed(key))),
                }
            }
            "coding" => {
                self.coding =
                    Coding::parse(value.trim()).ok_or_else(|| bad(key, value, allowed(key)))?
            }
            "error-correction" => self.error_correction = on_off(key, value)?,
            "dial-prefix" => {
                let v = value.trim();
                if v.len() > 8 || !v.chars().all(|c| c.is_ascii_digit() || "*#,".contains(c)) {
                    return Err(bad(key, value, allowed(key)));
                }
                self.dial_prefix = v.to_owned();
            }
            "tagline" => self.tagline = printable(key, value, 100, false)?,
            "max-pages" => self.max_pages = number_in(key, value, 1, 1000)?,
            "network" => self.network = printable(key, value.trim(), 200, false)?,
            "destination" => self.destination = printable(key, value, 500, false)?,
            other => {
                let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(FaxError::Invalid(format!(
                    "unknown setting {other:?}: the keys are {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Checks what no single key can: G4 coding needs error correction.
    pub fn validate(&self) -> Result<(), FaxError> {
        for (key, value) in self.to_pairs() {
            self.clone().apply(key, &value)?;
        }
        if self.coding == Coding::G4 && !self.error_correction {
            return Err(FaxError::Invalid(
                "coding=g4 needs error-correction=on (T.6 pages travel only with error correction)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Every key with its value as `settings show` prints it, in [`KEYS`] order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let on = |b: bool| if b { "on" } else { "off" }.to_owned();
        vec![
            ("station-id", self.station_id.clone()),
            ("number", self.number.clone()),
            ("lines", self.lines.to_string()),
            (
                "resolution",
                match self.resolution {
                    Resolution::Standard => "standard",
                    Resolution::Fine => "fine",
                }
                .to_owned(),
            ),
            ("coding", self.coding.as_str().to_owned()),
            ("error-correction", on(self.error_correction)),
            ("dial-prefix", self.dial_prefix.clone()),
            ("tagline", self.tagline.clone()),
            ("max-pages", self.max_pages.to_string()),
            ("network", self.network.clone()),
            ("destination", self.destination.clone()),
        ]
    }
}

/// What a gateway last announced about itself when it connected (`imagecast-faxgw run
/// --number N --station S --lines L`, or the lines after applied settings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Announced {
    /// Its number.
    pub number: String,
    /// Its station ID.
    pub station: String,
    /// Its lines.
    pub lines: u32,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
}

/// Stores what a gateway announced (escaped text cut to size: it comes from the peer).
pub fn record_announcement(
    conn: &Connection,
    gateway: &str,
    number: &str,
    station: &str,
    lines: u32,
) -> Result<(), FaxError> {
    let text = |s: &str, n: usize| {
        imagecast_shared::text::escape(imagecast_shared::text::truncate(s, n)).into_owned()
    };
    conn.execute(
        "INSERT INTO fax_gateway_announced (gateway, number, station, lines, announced_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (gateway) DO UPDATE SET number = ?2, station = ?3, lines = ?4, announced_ms = ?5",
        params![gateway, text(number, 40), text(station, 20), lines, now_ms()],
    )?;
    Ok(())
}

fn announced(conn: &Connection, gateway: &str) -> Result<Option<Announced>, FaxError> {
    Ok(conn
        .query_row(
            "SELECT number, station, lines, announced_ms FROM fax_gateway_announced WHERE gateway = ?1",
            [gateway],
            |r| {
                Ok(Announced {
                    number: r.get(0)?,
                    station: r.get(1)?,
                    lines: r.get(2)?,
                    at_ms: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// A gateway's settings with their version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versioned {
    /// The gateway's domain key.
    pub gateway: String,
    /// Its settings.
    pub settings: GatewaySettings,
    /// Bumped by every change; 0 when never set.
    pub version: i64,
    /// The version the gateway last acknowledged having applied.
    pub applied_version: i64,
    /// True while the gateway has not applied the current version.
    pub pending: bool,
    /// What the gateway last announced about itself (`None`: it never connected).
    pub announced: Option<Announced>,
}

fn read(conn: &Connection, gateway: &str) -> Result<Versioned, FaxError> {
    let row: Option<(String, i64, i64)> = conn
        .query_row(
            "SELECT settings, version, applied_version FROM fax_gateway_settings WHERE gateway = ?1",
            [gateway],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (settings, version, applied_version) = match row {
        None => (GatewaySettings::default(), 0, 0),
        Some((json, v, a)) => (
            serde_json::from_str(&json).map_err(|e| {
                FaxError::Db(DbError::Corrupt(format!(
                    "settings of gateway {gateway}: {e}"
                )))
            })?,
            v,
            a,
        ),
    };
    Ok(Versioned {
        gateway: gateway.to_owned(),
        settings,
        version,
        applied_version,
        pending: version > applied_version,
        announced: announced(conn, gateway)?,
    })
}

/// A gateway's settings (the defaults at version 0 when never set); refused unless `gateway`
/// is a known fax gateway.
pub fn show(conn: &Connection, gateway: &str) -> Result<Versioned, FaxError> {
    let gateway = require_gateway(conn, gateway)?;
    read(conn, &gateway)
}

/// Changes keys of a gateway's settings (`KEY=VALUE` each) all at once: one bad key or value
/// changes nothing. Bumps the version once, marking it pending, when anything changed.
pub fn set(
    conn: &Connection,
    gateway: &str,
    assignments: &[String],
) -> Result<Versioned, FaxError> {
    let current = show(conn, gateway)?;
    if assignments.is_empty() {
        return Err(FaxError::Invalid("give at least one KEY=VALUE".into()));
    }
    let mut next = current.settings.clone();
    for a in assignments {
        let (k, v) = split_assignment(a)?;
        next.apply(k, v)?;
    }
    replace(conn, &current.gateway, &next)
}

/// [`set`] on behalf of a user at a terminal (a client's settings request, 002 FIG. 6): refused
/// unless the user holds the `gateway-settings` competence there.
pub fn set_by(
    conn: &Connection,
    user: &str,
    device: Option<&str>,
    gateway: &str,
    assignments: &[String],
) -> Result<Versioned, FaxError> {
    super::competence::check(
        conn,
        user,
        device,
        super::competence::Competence::GatewaySettings,
    )?;
    set(conn, gateway, assignments)
}

/// A gateway's settings as terminals and the gateway see them.
pub fn to_wire(v: &Versioned) -> imagecast_shared::fax::FaxSettings {
    imagecast_shared::fax::FaxSettings {
        gateway: v.gateway.clone(),
        version: v.version,
        applied_version: v.applied_version,
        values: v
            .settings
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// [`show`] on behalf of a user at a terminal: refused unless the user holds the
/// `gateway-settings` competence there.
pub fn show_by(
    conn: &Connection,
    user: &str,
    device: Option<&str>,
    gateway: &str,
) -> Result<Versioned, FaxError> {
    super::competence::check(
        conn,
        user,
        device,
        super::competence::Competence::GatewaySettings,
    )?;
    show(conn, gateway)
}

/// The settings to push to `gateway` when it connects: `Some` while a version is pending.
pub fn pending_for(conn: &Connection, gateway: &str) -> Result<Option<Versioned>, FaxError> {
    let v = show(conn, gateway)?;
    Ok(v.pending.then_some(v))
}

/// Replaces a gateway's settings (checked first); bumps the version when they differ from
/// the stored ones. For `set`, an import, and a client's settings request.
pub fn replace(
    conn: &Connection,
    gateway: &str,
    settings: &GatewaySettings,
) -> Result<Versioned, FaxError> {
    let gateway = require_gateway(conn, gateway)?;
    settings.validate()?;
    let current = read(conn, &gateway)?;
    if current.settings == *settings && current.version > 0 {
        return Ok(current);
    }
    let json = serde_json::to_string(settings)
        .map_err(|e| FaxError::Invalid(format!("cannot store the settings: {e}")))?;
    conn.execute(
        "INSERT INTO fax_gateway_settings (gateway, settings, version, applied_version, updated_ms)
         VALUES (?1, ?2, 1, 0, ?3)
         ON CONFLICT (gateway) DO UPDATE SET settings = ?2, version = version + 1, updated_ms = ?3",
        params![gateway, json, now_ms()],
    )?;
    tracing::debug!(%gateway, version = current.version + 1, "gateway settings changed");
    read(conn, &gateway)
}

/// Records that the gateway applied `version` (an acknowledgement of an older version than one
/// already acknowledged changes nothing; one of a version never issued is refused).
pub fn acknowledge(conn: &Connection, gateway: &str, version: i64) -> Result<Versioned, FaxError> {
    let current = show(conn, gateway)?;
    if version > current.version || version < 0 {
        return Err(FaxError::Invalid(format!(
            "gateway {} acknowledged settings version {version}, but the newest is {}",
            current.gateway, current.version
        )));
    }
    conn.execute(
        "UPDATE fax_gateway_settings SET applied_version = MAX(applied_version, ?2) WHERE gateway = ?1",
        params![current.gateway, version],
    )?;
    read(conn, &current.gateway)
}

/// Every gateway whose settings were ever set, by domain.
pub fn all(conn: &Connection) -> Result<Vec<Versioned>, FaxError> {
    let gateways: Vec<String> = conn
        .prepare("SELECT gateway FROM fax_gateway_settings ORDER BY gateway")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    gateways.iter().map(|g| read(conn, g)).collect()
}

/// The gateways with settings not yet applied: what to push when a gateway connects.
pub fn pending(conn: &Connection) -> Result<Vec<Versioned>, FaxError> {
    Ok(all(conn)?.into_iter().filter(|v| v.pending).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn each_change_bumps_the_version_and_is_pending_until_acknowledged() {
        let (_d, conn) = testing::db();
        let v0 = show(&conn, "gw1.example").unwrap();
        assert_eq!((v0.version, v0.pending), (0, false));
        assert_eq!(v0.settings, GatewaySettings::default());
        let v1 = set(
            &conn,
            "GW1.example",
            &args(&["station-id=+81 6 1234", "resolution=fine", "lines=2"]),
        )
        .unwrap();
        assert_eq!((v1.version, v1.applied_version, v1.pending), (1, 0, true));
        assert_eq!(v1.settings.resolution, Resolution::Fine);
        assert_eq!(pending(&conn).unwrap().len(), 1);
        let same = set(&conn, "gw1.example", &args(&["lines=2"])).unwrap();
        assert_eq!(same.version, 1, "no change, no new version");
        let v2 = set(&conn, "gw1.example", &args(&["tagline=ACME  Osaka"])).unwrap();
        assert_eq!(v2.version, 2);
        let a = acknowledge(&conn, "gw1.example", 1).unwrap();
        assert!(a.pending);
        let a = acknowledge(&conn, "gw1.example", 2).unwrap();
        assert!(!a.pending);
        assert_eq!(
            acknowledge(&conn, "gw1.example", 1)
                .unwrap()
                .applied_version,
            2
        );
        assert!(acknowledge(&conn, "gw1.example", 3).is_err());
        assert!(pending(&conn).unwrap().is_empty());
        assert_eq!(pending_for(&conn, "gw1.example").unwrap(), None);
        let e = set_by(
            &conn,
            "1001",
            Some("pc1.example"),
            "gw1.example",
            &args(&["lines=3"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lacks the competence gateway-settings"), "{e}");
        let v3 = set_by(&conn, "9000", None, "gw1.example", &args(&["lines=3"])).unwrap();
        assert_eq!(pending_for(&conn, "gw1.example").unwrap(), Some(v3));
        assert_eq!(
            show(&conn, "gw1.example").unwrap().settings.tagline,
            "ACME  Osaka"
        );
    }

    #[test]
    fn bad_keys_and_values_are_named_and_change_nothing() {
        let (_d, conn) = testing::db();
        let e = set(&conn, "gw1.example", &args(&["lines=2", "colour=red"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting \"colour\""), "{e}");
        assert!(e.contains("station-id"), "lists the keys: {e}");
        assert_eq!(show(&conn, "gw1.example").unwrap().version, 0);
        for (arg, want) in [
            ("resolution=super", "standard or fine"),
            ("coding=g5", "g3 or g4"),
            ("lines=0", "1 to 64"),
            ("lines=many", "for lines"),
            ("error-correction=maybe", "on or off"),
            ("dial-prefix=9a", "dial-prefix"),
            ("station-id=ÄÖÜ", "station-id"),
            ("station-id=123456789012345678901", "20 printable"),
            ("max-pages=1001", "1 to 1000"),
            ("number=12ab", "bad number"),
            ("lines", "expected KEY=VALUE"),
        ] {
            let e = set(&conn, "gw1.example", &args(&[arg]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{arg}: {e}");
        }
        let e = set(
            &conn,
            "gw1.example",
            &args(&["coding=g4", "error-correction=off"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("coding=g4 needs error-correction=on"), "{e}");
        let e = set(&conn, "pc1.example", &args(&["lines=2"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a fax gateway"), "{e}");
        let e = show(&conn, "nope.example").unwrap_err().to_string();
        assert!(e.contains("unknown gateway nope.example"), "{e}");
    }
}
