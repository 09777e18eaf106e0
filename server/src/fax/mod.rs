//! The network-fax supervising server's own tables (seeds 002 and 003): which fax gateway sends
//! for whom, where received faxes go, each gateway's settings, the retry policy, the
//! communication records, and who may do what. Everything lives in the server's SQLite database
//! (one migration step in [`crate::store::db`]); every function takes a `&Connection`, so the
//! admin commands call them directly and the server hands them to [`Db::call`] as they are.
//!
//! # Layout
//!
//! One module per table:
//!
//! - [`priority`]: the priority table (002 table 21: gateways in order) and the per-client
//!   table (a device or a user → its own gateways), and [`priority::candidates`], the
//!   gateways a client's fax may go through, in order.
//! - [`delivery`]: the delivery table (002 table 23): ordered rules on the remote station ID,
//!   the caller's number, the number called or the gateway, each naming a user or a device;
//!   [`delivery::route`] is the first rule that matches.
//! - [`settings`]: each gateway's setting information (002 \[0025\], FIG. 5–6), versioned, with
//!   the version the gateway last acknowledged.
//! - [`policy`]: the supervisor's retry policy (HylaFAX's defaults).
//! - [`records`]: the communication records (002 record 22), one per call attempt, and their
//!   export in HylaFAX's `xferfaxlog` format.
//! - [`competence`]: who may send faxes and change settings (003 claims 11–12).
//! - [`grouping`]: named groupings of devices, users and gateways (003 claims 13–14).
//! - [`phonebook`]: shared and labelled phone-book entries (003 claims 17–22).
//! - [`homes`]: the terminals that get a user's faxes.
//! - [`reception`]: faxes the gateways received: uploaded, stored, routed, delivered.
//! - [`transfer`]: the whole of the supervisor's settings as one TOML file, out and in.
//! - [`glob`]: the shell patterns of delivery rules.
//!
//! # Decisions
//!
//! - **Gateways** are devices of kind `fax-gateway`, named by their domain (its
//!   `domain_key`). A name that is no device, or a device of another kind, is refused with
//!   the name in the message ([`require_gateway`]).
//! - **A table, once set, is the whole list.** An empty priority table means every gateway in
//!   domain order; a non-empty one means those gateways only, in that order. A client route
//!   names the only gateways that client uses.
//! - **A user's route beats the terminal's**: a user who moves between terminals keeps their
//!   own gateways; a terminal's route serves the users who have none.
//! - **Groupings** restrict only once one exists: then a user and a gateway communicate only
//!   when they share a grouping, and so do a device and a gateway; a terminal that belongs to
//!   no grouping does not restrict its user (a shared terminal), but users and gateways outside
//!   every grouping communicate with no one.
//! - **Numbers** are digits, with a leading `+` and spaces or dashes between digits for
//!   reading; they are compared without the spaces and dashes ([`normalize_number`]).
//!
//! [`Db::call`]: crate::store::db::Db::call

pub mod competence;
pub mod delivery;
pub mod dispatch;
pub mod glob;
pub mod grouping;
pub mod homes;
pub mod phonebook;
pub mod policy;
pub mod priority;
pub mod reception;
pub mod records;
pub mod settings;
pub mod transfer;

use imagecast_shared::msg::DeviceKind;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use std::sync::{Arc, Mutex};

use crate::store::auth::{self, AuthError};
use crate::store::db::{Db, DbError};

/// Why a fax-table operation failed or was refused. Every message names the thing at fault.
#[derive(Debug, Error)]
pub enum FaxError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No device has this domain.
    #[error(
        "unknown gateway {0}: no device has that domain (add one with `imagecast-server device add {0} --name NAME --kind fax-gateway`)"
    )]
    UnknownGateway(String),
    /// The device exists but is no fax gateway.
    #[error("{domain} is not a fax gateway: it is a device of kind {kind}")]
    NotAGateway {
        /// The device's domain.
        domain: String,
        /// Its kind.
        kind: &'static str,
    },
    /// No user has this ID.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// No device has this domain.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// A name is neither a user nor a device, or both.
    #[error("{0}")]
    UnknownClient(String),
    /// A value is not allowed; the message names the key and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// The thing named does not exist.
    #[error("{0}")]
    Missing(String),
    /// The thing named exists already.
    #[error("{0}")]
    Exists(String),
    /// A rule refuses the request: a competence, a grouping, or a phone-book entry's
    /// visibility. The message says which and why.
    #[error("{0}")]
    Refused(String),
}

impl From<rusqlite::Error> for FaxError {
    fn from(e: rusqlite::Error) -> Self {
        FaxError::Db(DbError::Sqlite(e))
    }
}

impl From<AuthError> for FaxError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Db(d) => FaxError::Db(d),
            AuthError::Missing(m) => FaxError::Missing(m),
            AuthError::Exists(m) => FaxError::Exists(m),
            AuthError::Invalid(m) => FaxError::Invalid(m),
        }
    }
}

/// A fax-table operation that fails inside a database closure ([`Db::call`]) fails the call,
/// as [`AuthError`] does: a database fault stays one, anything else becomes its message.
///
/// [`Db::call`]: crate::store::db::Db::call
impl From<FaxError> for DbError {
    fn from(e: FaxError) -> Self {
        match e {
            FaxError::Db(d) => d,
            other => DbError::Corrupt(other.to_string()),
        }
    }
}

/// Runs a fax-table operation on the server's database thread ([`Db::call`]), in its own
/// savepoint: undone when it fails, on disk when this returns `Ok`. Unlike handing the function
/// to [`Db::call`] directly, the error stays a [`FaxError`], so a refusal reaches the caller as
/// [`FaxError::Refused`] with its reason, not as a database fault.
///
/// ```ignore
/// let gateways = fax::call(&db, move |c| priority::candidates(c, Some(&device), Some(&user))).await?;
/// ```
pub async fn call<T, F>(db: &Db, f: F) -> Result<T, FaxError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, FaxError> + Send + 'static,
{
    let slot: Arc<Mutex<Option<FaxError>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let result = db
        .call(move |c| {
            f(c).map_err(|e| {
                let as_db = match &e {
                    FaxError::Db(_) => None,
                    other => Some(DbError::Corrupt(other.to_string())),
                };
                match as_db {
                    Some(d) => {
                        if let Ok(mut s) = inner.lock() {
                            *s = Some(e);
                        }
                        d
                    }
                    None => DbError::from(e),
                }
            })
        })
        .await;
    result.map_err(|db_err| {
        slot.lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or(FaxError::Db(db_err))
    })
}

/// The domain key of a known, `fax-gateway` device; refused with the name otherwise.
pub fn require_gateway(conn: &Connection, gateway: &str) -> Result<String, FaxError> {
    match auth::device(conn, gateway)? {
        None => Err(FaxError::UnknownGateway(gateway.trim().to_owned())),
        Some(d) if d.kind != DeviceKind::FaxGateway => Err(FaxError::NotAGateway {
            domain: d.domain,
            kind: d.kind.as_str(),
        }),
        Some(d) => Ok(d.domain),
    }
}

/// The domain key of a known device (of any kind).
pub fn require_device(conn: &Connection, domain: &str) -> Result<String, FaxError> {
    auth::device(conn, domain)?
        .map(|d| d.domain)
        .ok_or_else(|| FaxError::UnknownDevice(domain.trim().to_owned()))
}

/// A known user's ID.
pub fn require_user(conn: &Connection, user: &str) -> Result<String, FaxError> {
    auth::user_secret(conn, user)?
        .map(|(u, _)| u.user)
        .ok_or_else(|| FaxError::UnknownUser(user.to_owned()))
}

/// True when `user` is an admin (who holds every competence).
pub fn is_admin(conn: &Connection, user: &str) -> Result<bool, FaxError> {
    Ok(auth::user_secret(conn, user)?
        .is_some_and(|(u, _)| u.role == imagecast_shared::msg::Role::Admin))
}

/// Drops a removed user from every fax table that names them (client route, delivery rules
/// to them, grouping memberships, phone-book labels, competences, home terminals), so no
/// table points at nobody and an export still imports; a phone-book entry labelled for them
/// alone goes too. Their communication records stay.
/// Returns how many rows went.
pub fn forget_user(conn: &Connection, user: &str) -> Result<usize, FaxError> {
    let mut n = 0;
    for sql in [
        "DELETE FROM fax_client_routes WHERE kind = 'user' AND client = ?1",
        "DELETE FROM fax_delivery_rules WHERE target_kind = 'user' AND target = ?1",
        "DELETE FROM fax_grouping_members WHERE kind = 'user' AND member = ?1",
        "DELETE FROM fax_phonebook_labels WHERE kind = 'user' AND label = ?1",
        "DELETE FROM fax_competences WHERE user = ?1",
        "DELETE FROM fax_user_homes WHERE user = ?1",
    ] {
        n += conn.execute(sql, [user])?;
    }
    n += conn.execute(
        "DELETE FROM fax_phonebook WHERE shared = 0
         AND name NOT IN (SELECT name FROM fax_phonebook_labels)",
        [],
    )?;
    Ok(n)
}

/// A user or a terminal: whom a rule, a route or a label names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Party {
    /// A user, by ID.
    User(String),
    /// A terminal, by its domain key.
    Device(String),
}

impl Party {
    /// `user` or `device`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Party::User(_) => "user",
            Party::Device(_) => "device",
        }
    }

    /// The user ID or the domain.
    pub fn name(&self) -> &str {
        match self {
            Party::User(n) | Party::Device(n) => n,
        }
    }

    /// Builds one from its stored kind and name.
    pub fn from_stored(kind: &str, name: String) -> Result<Party, FaxError> {
        match kind {
            "user" => Ok(Party::User(name)),
            "device" => Ok(Party::Device(name)),
            other => Err(FaxError::Db(DbError::Corrupt(format!(
                "party kind {other:?}"
            )))),
        }
    }

    /// `user 1001` or `device pc1.example`, for messages and listings.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind(), self.name())
    }

    /// Resolves a name typed by an operator (`CLIENT`, `--for USER|DOMAIN`): a user ID or a
    /// device's domain, checked to exist. A name that is both is refused, since which one was
    /// meant cannot be told.
    pub fn resolve(conn: &Connection, name: &str) -> Result<Party, FaxError> {
        let user = auth::user_secret(conn, name)?.map(|(u, _)| u.user);
        let device = auth::device(conn, name)?.map(|d| d.domain);
        match (user, device) {
            (Some(u), None) => Ok(Party::User(u)),
            (None, Some(d)) => Ok(Party::Device(d)),
            (Some(_), Some(_)) => Err(FaxError::UnknownClient(format!(
                "{name} is both a user ID and a device domain; rename one of them"
            ))),
            (None, None) => Err(FaxError::UnknownClient(format!(
                "{name} is neither a user ID nor a device domain"
            ))),
        }
    }

    /// Checks that the user or device exists, and puts a domain in its key form.
    pub fn checked(self, conn: &Connection) -> Result<Party, FaxError> {
        match self {
            Party::User(u) => require_user(conn, &u).map(Party::User),
            Party::Device(d) => require_device(conn, &d).map(Party::Device),
        }
    }
}

/// Most digits in a telephone number (E.164 allows 15; dial strings with extensions a few more).
pub const MAX_NUMBER_DIGITS: usize = 24;

/// Checks a telephone number and returns it as typed, trimmed. Allowed: digits, one leading
/// `+`, and single spaces or dashes between digits for reading (`+81 3-1234-5678`).
pub fn validate_number(number: &str) -> Result<String, FaxError> {
    let n = number.trim();
    let explain = |why: &str| {
        FaxError::Invalid(format!(
            "bad number {n:?}: {why} (a number is digits, with one leading + and spaces or dashes between digits, e.g. +81 3-1234-5678)"
        ))
    };
    let body = n.strip_prefix('+').unwrap_or(n);
    if body.is_empty() {
        return Err(explain("it has no digits"));
    }
    let mut digits = 0;
    let mut prev_sep = true;
    for c in body.chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                prev_sep = false;
            }
            ' ' | '-' if !prev_sep => prev_sep = true,
            ' ' | '-' => return Err(explain("a space or dash must stand between two digits")),
            '+' => return Err(explain("+ may only stand first")),
            c => return Err(explain(&format!("{:?} is not allowed", c))),
        }
    }
    if prev_sep {
        return Err(explain("it must end with a digit"));
    }
    if digits > MAX_NUMBER_DIGITS {
        return Err(explain(&format!("more than {MAX_NUMBER_DIGITS} digits")));
    }
    Ok(n.to_owned())
}

/// A number without its spaces and dashes, for comparing (`+81 3-1234` → `+813 1234` → `+8131234`).
pub fn normalize_number(number: &str) -> String {
    number
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A database with a few devices and users for the table modules' tests.

    use imagecast_shared::msg::{DeviceKind, Role};
    use rusqlite::Connection;

    use crate::store::auth;

    /// A fresh database (in a temporary folder kept alive by the returned guard) with gateways
    /// `gw1.example`, `gw2.example`, `gw3.example`, terminals `pc1.example`, `mfp1.example`,
    /// operators `1001`, `1002` and admin `9000`.
    pub fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = crate::store::db::open_connection(&dir.path().join("t.db")).expect("db");
        for gw in ["gw1.example", "gw2.example", "gw3.example"] {
            auth::add_device(&conn, gw, gw, DeviceKind::FaxGateway).expect("gateway");
        }
        auth::add_device(&conn, "pc1.example", "PC", DeviceKind::Pc).expect("pc");
        auth::add_device(&conn, "mfp1.example", "MFP", DeviceKind::Mfp).expect("mfp");
        for (u, r) in [
            ("1001", Role::Operator),
            ("1002", Role::Operator),
            ("9000", Role::Admin),
        ] {
            auth::add_user(&conn, u, r, "x").expect("user");
        }
        (dir, conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digits_with_a_plus_and_separators() {
        assert_eq!(
            validate_number(" +81 3-1234-5678 ").unwrap(),
            "+81 3-1234-5678"
        );
        assert_eq!(normalize_number("+81 3-1234-5678"), "+81312345678");
        for bad in [
            "", "+", "12a4", "1++2", "1  2", "-12", "12-", "1+2", "12\n3",
        ] {
            let e = validate_number(bad).unwrap_err().to_string();
            assert!(e.contains("bad number"), "{bad:?}: {e}");
        }
        assert!(validate_number(&"1".repeat(25)).is_err());
    }

    #[test]
    fn gateways_users_and_clients_are_checked() {
        let (_d, conn) = testing::db();
        assert_eq!(
            require_gateway(&conn, "GW1.example").unwrap(),
            "gw1.example"
        );
        let e = require_gateway(&conn, "nope.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown gateway nope.example"), "{e}");
        let e = require_gateway(&conn, "pc1.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pc1.example is not a fax gateway"), "{e}");
        assert_eq!(
            Party::resolve(&conn, "1001").unwrap(),
            Party::User("1001".into())
        );
        assert_eq!(
            Party::resolve(&conn, "PC1.example").unwrap(),
            Party::Device("pc1.example".into())
        );
        assert!(Party::resolve(&conn, "nobody").is_err());
        assert!(is_admin(&conn, "9000").unwrap());
        assert!(!is_admin(&conn, "1001").unwrap());
    }

    #[tokio::test]
    async fn call_runs_on_the_database_thread_and_keeps_a_refusal_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        call(&db, |c| {
            auth::add_device(c, "gw1.example", "G", DeviceKind::FaxGateway)?;
            auth::add_user(c, "1001", imagecast_shared::msg::Role::Operator, "x")?;
            competence::revoke(c, "1001", competence::Competence::SendFax, None)?;
            Ok(())
        })
        .await
        .unwrap();
        let refused = call(&db, |c| {
            competence::check(c, "1001", None, competence::Competence::SendFax)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(refused, FaxError::Refused(ref r) if r.contains("send-fax")),
            "{refused}"
        );
        let failed = call(&db, |c| {
            priority::set(c, &["gw1.example".into()])?;
            priority::set(c, &["nope.example".into()])
        })
        .await
        .unwrap_err();
        assert!(matches!(failed, FaxError::UnknownGateway(ref g) if g == "nope.example"));
        let table = call(&db, priority::list).await.unwrap();
        assert!(table.is_empty(), "a failed call is undone whole: {table:?}");
        let gateways = call(&db, |c| priority::candidates(c, None, Some("1001")))
            .await
            .unwrap();
        assert_eq!(gateways, ["gw1.example"]);
    }

    #[test]
    fn a_database_of_the_previous_release_gains_the_fax_tables_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = crate::store::db::open_connection(&path).unwrap();
            auth::add_device(&conn, "gw1.example", "G", DeviceKind::FaxGateway).unwrap();
            let fax_tables: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'fax_%'",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(fax_tables.len(), 15, "{fax_tables:?}");
            for t in fax_tables {
                conn.execute_batch(&format!("DROP TABLE {t}")).unwrap();
            }
            // The previous release stopped at step 2: the relay's journal (sessions, and
            // the demands added after the fax tables) comes again too.
            conn.execute_batch("DROP TABLE relay_sessions; DROP TABLE relay_demands")
                .unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
        }
        let conn = crate::store::db::open_connection(&path).unwrap();
        assert_eq!(
            require_gateway(&conn, "gw1.example").unwrap(),
            "gw1.example"
        );
        priority::set(&conn, &["gw1.example".into()]).unwrap();
        assert_eq!(priority::list(&conn).unwrap(), ["gw1.example"]);
    }

    #[test]
    fn a_removed_user_leaves_no_row_behind_and_the_export_still_imports() {
        use phonebook::{Entry, Visibility};
        let (_d, conn) = testing::db();
        let u = || Party::User("1002".into());
        priority::set_client(&conn, &u(), &["gw1.example".into()]).unwrap();
        delivery::add(&conn, delivery::Match::Any, u()).unwrap();
        grouping::add(&conn, "g").unwrap();
        grouping::add_member(&conn, "g", grouping::Member::User("1002".into())).unwrap();
        let private = Entry {
            name: "Mine".into(),
            number: "1".into(),
            visibility: Visibility::For(vec![u()]),
        };
        phonebook::add(&conn, &private).unwrap();
        let both = Entry {
            name: "Ours".into(),
            number: "2".into(),
            visibility: Visibility::For(vec![u(), Party::User("1001".into())]),
        };
        phonebook::add(&conn, &both).unwrap();
        competence::grant(&conn, "1002", competence::Competence::GatewaySettings, None).unwrap();
        homes::set(&conn, "1002", &["pc1.example".into()]).unwrap();
        auth::remove_user(&conn, "1002").unwrap();
        assert_eq!(forget_user(&conn, "1002").unwrap(), 8);
        let text = transfer::to_toml(&transfer::export(&conn).unwrap()).unwrap();
        assert!(!text.contains("1002"), "{text}");
        let names: Vec<String> = phonebook::list(&conn)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["Ours"]);
        let (_d2, other) = testing::db();
        transfer::import(&other, &text).unwrap();
    }
}
