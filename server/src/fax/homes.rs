//! User homes: the terminals that get a user's faxes (a delivery rule naming a user delivers
//! to each of them, through store and forward, so an offline PC gets its copy later).

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, require_device, require_user};

/// A user's home terminals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Home {
    /// The user.
    pub user: String,
    /// The terminals' domain keys, in the order given.
    pub devices: Vec<String>,
}

/// Replaces a user's home terminals (the user and every terminal checked to exist); an empty
/// list clears them.
pub fn set(conn: &Connection, user: &str, devices: &[String]) -> Result<Home, FaxError> {
    let user = require_user(conn, user)?;
    let mut keys: Vec<String> = Vec::with_capacity(devices.len());
    for d in devices {
        let k = require_device(conn, d)?;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    conn.execute("DELETE FROM fax_user_homes WHERE user = ?1", [&user])?;
    for (i, d) in keys.iter().enumerate() {
        conn.execute(
            "INSERT INTO fax_user_homes (user, pos, device) VALUES (?1, ?2, ?3)",
            params![user, i as i64, d],
        )?;
    }
    Ok(Home {
        user,
        devices: keys,
    })
}

/// A user's home terminals (empty when none were set).
pub fn of(conn: &Connection, user: &str) -> Result<Vec<String>, FaxError> {
    Ok(conn
        .prepare_cached("SELECT device FROM fax_user_homes WHERE user = ?1 ORDER BY pos")?
        .query_map([user], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Every user with home terminals, by user.
pub fn list(conn: &Connection) -> Result<Vec<Home>, FaxError> {
    let users: Vec<String> = conn
        .prepare("SELECT DISTINCT user FROM fax_user_homes ORDER BY user")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    users
        .into_iter()
        .map(|user| {
            let devices = of(conn, &user)?;
            Ok(Home { user, devices })
        })
        .collect()
}

/// Removes every home (for an import that replaces them).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_user_homes", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    #[test]
    fn homes_are_set_replaced_and_checked() {
        let (_d, conn) = testing::db();
        assert!(of(&conn, "1001").unwrap().is_empty());
        let h = set(
            &conn,
            "1001",
            &[
                "PC1.example".into(),
                "mfp1.example".into(),
                "pc1.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(h.devices, ["pc1.example", "mfp1.example"]);
        assert_eq!(of(&conn, "1001").unwrap(), h.devices);
        set(&conn, "1001", &["mfp1.example".into()]).unwrap();
        assert_eq!(of(&conn, "1001").unwrap(), ["mfp1.example"]);
        let e = set(&conn, "1001", &["x.example".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown device x.example"), "{e}");
        assert!(set(&conn, "7777", &[]).is_err());
        assert_eq!(list(&conn).unwrap().len(), 1);
    }
}
