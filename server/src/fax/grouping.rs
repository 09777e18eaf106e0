//! Groupings (003 claims 13–14): named sets of devices, users and gateways. Only members of one
//! grouping communicate: once any grouping exists, a user's fax goes only through gateways of
//! one of the user's groupings, and a received fax reaches only users (or terminals) that
//! share a grouping with the gateway that took it. No grouping at all means no restriction.
//! A terminal that belongs to no grouping does not restrict its user; users and gateways
//! outside every grouping communicate with no one.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, require_device, require_gateway, require_user};

/// A member of a grouping.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Member {
    /// A terminal, by domain key.
    Device(String),
    /// A user, by ID.
    User(String),
    /// A fax gateway, by domain key.
    Gateway(String),
}

impl Member {
    fn stored(&self) -> (&'static str, &str) {
        match self {
            Member::Device(n) => ("device", n),
            Member::User(n) => ("user", n),
            Member::Gateway(n) => ("gateway", n),
        }
    }

    fn from_stored(kind: &str, name: String) -> Result<Member, FaxError> {
        Ok(match kind {
            "device" => Member::Device(name),
            "user" => Member::User(name),
            "gateway" => Member::Gateway(name),
            other => {
                return Err(FaxError::Db(crate::store::db::DbError::Corrupt(format!(
                    "grouping member kind {other:?}"
                ))));
            }
        })
    }

    /// Checks that the member exists (a gateway must be a `fax-gateway` device) and puts a
    /// domain in its key form.
    pub fn checked(self, conn: &Connection) -> Result<Member, FaxError> {
        Ok(match self {
            Member::Device(d) => Member::Device(require_device(conn, &d)?),
            Member::User(u) => Member::User(require_user(conn, &u)?),
            Member::Gateway(g) => Member::Gateway(require_gateway(conn, &g)?),
        })
    }
}

/// A grouping and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    /// Its name.
    pub name: String,
    /// Its members, devices first, then users, then gateways, each by name.
    pub members: Vec<Member>,
}

/// Checks a grouping name: 1 to 64 printable characters.
pub fn validate_name(name: &str) -> Result<(), FaxError> {
    if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(FaxError::Invalid(format!(
            "grouping name {name:?} must be 1 to 64 printable characters"
        )));
    }
    Ok(())
}

/// Adds an empty grouping.
pub fn add(conn: &Connection, name: &str) -> Result<(), FaxError> {
    validate_name(name)?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO fax_groupings (name) VALUES (?1)",
        [name],
    )?;
    if n == 0 {
        return Err(FaxError::Exists(format!("grouping {name} exists already")));
    }
    Ok(())
}

/// Adds a member to a grouping (after checking it exists); adding it twice is no error.
pub fn add_member(conn: &Connection, grouping: &str, member: Member) -> Result<(), FaxError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM fax_groupings WHERE name = ?1)",
        [grouping],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(FaxError::Missing(format!(
            "no grouping {grouping} (add it with `imagecast-server grouping add {grouping}`)"
        )));
    }
    let member = member.checked(conn)?;
    let (kind, name) = member.stored();
    conn.execute(
        "INSERT OR IGNORE INTO fax_grouping_members (grouping, kind, member) VALUES (?1, ?2, ?3)",
        params![grouping, kind, name],
    )?;
    Ok(())
}

/// Removes a grouping and its memberships (with the last grouping gone, nothing is restricted).
pub fn remove(conn: &Connection, name: &str) -> Result<(), FaxError> {
    conn.execute(
        "DELETE FROM fax_grouping_members WHERE grouping = ?1",
        [name],
    )?;
    if conn.execute("DELETE FROM fax_groupings WHERE name = ?1", [name])? == 0 {
        return Err(FaxError::Missing(format!("no grouping {name}")));
    }
    Ok(())
}

/// Takes a member out of a grouping.
pub fn remove_member(conn: &Connection, grouping: &str, member: &Member) -> Result<(), FaxError> {
    let (kind, name) = member.stored();
    let key = match member {
        Member::User(_) => name.to_owned(),
        _ => imagecast_shared::domain::domain_key(name).into_owned(),
    };
    let n = conn.execute(
        "DELETE FROM fax_grouping_members WHERE grouping = ?1 AND kind = ?2 AND member = ?3",
        params![grouping, kind, key],
    )?;
    if n == 0 {
        return Err(FaxError::Missing(format!(
            "{kind} {key} is no member of grouping {grouping}"
        )));
    }
    Ok(())
}

/// Every grouping with its members, by name.
pub fn list(conn: &Connection) -> Result<Vec<Grouping>, FaxError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM fax_groupings ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT kind, member FROM fax_grouping_members WHERE grouping = ?1
         ORDER BY CASE kind WHEN 'device' THEN 0 WHEN 'user' THEN 1 ELSE 2 END, member",
    )?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let rows: Vec<(String, String)> = stmt
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let members = rows
            .into_iter()
            .map(|(k, m)| Member::from_stored(&k, m))
            .collect::<Result<_, _>>()?;
        out.push(Grouping { name, members });
    }
    Ok(out)
}

/// True when at least one grouping exists (and so groupings restrict).
pub fn any(conn: &Connection) -> Result<bool, FaxError> {
    Ok(
        conn.query_row("SELECT EXISTS (SELECT 1 FROM fax_groupings)", [], |r| {
            r.get(0)
        })?,
    )
}

/// The names of the groupings `member` belongs to.
pub fn of(conn: &Connection, member: &Member) -> Result<Vec<String>, FaxError> {
    let (kind, name) = member.stored();
    let rows = conn
        .prepare_cached(
            "SELECT grouping FROM fax_grouping_members WHERE kind = ?1 AND member = ?2 ORDER BY grouping",
        )?
        .query_map(params![kind, name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// True when `a` and `b` may communicate: no grouping exists, or they share one.
pub fn communicate(conn: &Connection, a: &Member, b: &Member) -> Result<bool, FaxError> {
    if !any(conn)? {
        return Ok(true);
    }
    let theirs = of(conn, b)?;
    Ok(of(conn, a)?.iter().any(|g| theirs.contains(g)))
}

/// Whether a client (a user, at a terminal) may use `gateway`: `Ok(())`, or the refusal
/// naming who shares no grouping with it. A terminal in no grouping does not restrict.
pub fn check_client_gateway(
    conn: &Connection,
    user: Option<&str>,
    device: Option<&str>,
    gateway: &str,
) -> Result<(), FaxError> {
    if !any(conn)? {
        return Ok(());
    }
    let gw = Member::Gateway(gateway.to_owned());
    if let Some(u) = user {
        if !communicate(conn, &Member::User(u.to_owned()), &gw)? {
            return Err(FaxError::Refused(format!(
                "user {u} shares no grouping with gateway {gateway}"
            )));
        }
    }
    if let Some(d) = device {
        let dev = Member::Device(d.to_owned());
        if !of(conn, &dev)?.is_empty() && !communicate(conn, &dev, &gw)? {
            return Err(FaxError::Refused(format!(
                "terminal {d} shares no grouping with gateway {gateway}"
            )));
        }
    }
    Ok(())
}

/// Removes every grouping (for an import that replaces them).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_grouping_members", [])?;
    conn.execute("DELETE FROM fax_groupings", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    #[test]
    fn no_grouping_means_no_restriction_and_one_grouping_restricts() {
        let (_d, conn) = testing::db();
        check_client_gateway(&conn, Some("1001"), Some("pc1.example"), "gw1.example").unwrap();
        add(&conn, "sales").unwrap();
        assert!(matches!(add(&conn, "sales"), Err(FaxError::Exists(_))));
        add_member(&conn, "sales", Member::User("1001".into())).unwrap();
        add_member(&conn, "sales", Member::Gateway("GW1.example".into())).unwrap();
        add_member(&conn, "sales", Member::Gateway("gw1.example".into())).unwrap();
        check_client_gateway(&conn, Some("1001"), Some("pc1.example"), "gw1.example").unwrap();
        let e = check_client_gateway(&conn, Some("1001"), None, "gw2.example")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "user 1001 shares no grouping with gateway gw2.example");
        let e = check_client_gateway(&conn, Some("1002"), None, "gw1.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user 1002"), "{e}");
        add(&conn, "dev").unwrap();
        add_member(&conn, "dev", Member::Device("pc1.example".into())).unwrap();
        let e = check_client_gateway(&conn, Some("1001"), Some("pc1.example"), "gw1.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("terminal pc1.example"), "{e}");
        let l = list(&conn).unwrap();
        assert_eq!(l.len(), 2);
        remove_member(&conn, "dev", &Member::Device("PC1.example".into())).unwrap();
        let e = remove_member(&conn, "dev", &Member::Device("pc1.example".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("device pc1.example is no member of grouping dev"),
            "{e}"
        );
        check_client_gateway(&conn, Some("1001"), Some("pc1.example"), "gw1.example").unwrap();
        remove(&conn, "dev").unwrap();
        assert!(remove(&conn, "dev").is_err());
        remove(&conn, "sales").unwrap();
        check_client_gateway(&conn, Some("1002"), None, "gw2.example").unwrap();
        add(&conn, "sales").unwrap();
        add(&conn, "dev").unwrap();
        add_member(&conn, "dev", Member::Device("pc1.example".into())).unwrap();
        add_member(&conn, "sales", Member::User("1001".into())).unwrap();
        add_member(&conn, "sales", Member::Gateway("gw1.example".into())).unwrap();
        let l = list(&conn).unwrap();
        assert_eq!(
            l[1].members,
            [
                Member::User("1001".into()),
                Member::Gateway("gw1.example".into())
            ]
        );
    }

    #[test]
    fn members_must_exist_and_gateways_be_gateways() {
        let (_d, conn) = testing::db();
        add(&conn, "g").unwrap();
        let e = add_member(&conn, "g", Member::Gateway("pc1.example".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a fax gateway"), "{e}");
        let e = add_member(&conn, "g", Member::User("7777".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown user 7777"), "{e}");
        let e = add_member(&conn, "nope", Member::User("1001".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no grouping nope"), "{e}");
        assert!(add(&conn, "").is_err());
    }
}
