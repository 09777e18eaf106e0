//! The priority table (002 table 21) and the per-client table, and the gateways a client's
//! fax may go through ([`candidates`]).
//!
//! The priority table lists gateways in the order the supervisor tries them; empty, it means
//! every gateway in domain order. A per-client route names a device or a user and the only
//! gateways that client uses, in order. A user's route beats the terminal's: the user keeps
//! their own gateways at any terminal, and a terminal's route serves users who have none.
//! Skipping gateways that are busy or offline is the dispatcher's part: this module answers
//! from the tables alone.

use imagecast_shared::msg::DeviceKind;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, Party, grouping, require_gateway};
use crate::store::auth;

/// Checks a gateway list: every name a `fax-gateway` device, none twice. Returns the domain
/// keys in order.
fn checked_gateways(conn: &Connection, gateways: &[String]) -> Result<Vec<String>, FaxError> {
    let mut out: Vec<String> = Vec::with_capacity(gateways.len());
    for g in gateways {
        let key = require_gateway(conn, g)?;
        if out.contains(&key) {
            return Err(FaxError::Invalid(format!("gateway {key} is listed twice")));
        }
        out.push(key);
    }
    Ok(out)
}

/// Replaces the priority table. An empty list means every gateway in domain order.
pub fn set(conn: &Connection, gateways: &[String]) -> Result<Vec<String>, FaxError> {
    let gateways = checked_gateways(conn, gateways)?;
    conn.execute("DELETE FROM fax_priority", [])?;
    for (i, g) in gateways.iter().enumerate() {
        conn.execute(
            "INSERT INTO fax_priority (pos, gateway) VALUES (?1, ?2)",
            params![i as i64, g],
        )?;
    }
    Ok(gateways)
}

/// The priority table as set (empty when never set).
pub fn list(conn: &Connection) -> Result<Vec<String>, FaxError> {
    Ok(conn
        .prepare("SELECT gateway FROM fax_priority ORDER BY pos")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// One per-client route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRoute {
    /// The user or the terminal.
    pub client: Party,
    /// Its gateways, in order.
    pub gateways: Vec<String>,
}

/// Sets the route of one client (a user or a device, checked to exist) to `gateways`.
pub fn set_client(
    conn: &Connection,
    client: &Party,
    gateways: &[String],
) -> Result<Vec<String>, FaxError> {
    let client = client.clone().checked(conn)?;
    if gateways.is_empty() {
        return Err(FaxError::Invalid(format!(
            "a client route needs at least one gateway (to drop the route of {}, clear it)",
            client.describe()
        )));
    }
    let gateways = checked_gateways(conn, gateways)?;
    clear_client(conn, &client)?;
    for (i, g) in gateways.iter().enumerate() {
        conn.execute(
            "INSERT INTO fax_client_routes (kind, client, pos, gateway) VALUES (?1, ?2, ?3, ?4)",
            params![client.kind(), client.name(), i as i64, g],
        )?;
    }
    Ok(gateways)
}

/// Drops a client's route; true when it had one.
pub fn clear_client(conn: &Connection, client: &Party) -> Result<bool, FaxError> {
    let n = conn.execute(
        "DELETE FROM fax_client_routes WHERE kind = ?1 AND client = ?2",
        params![client.kind(), client.name()],
    )?;
    Ok(n > 0)
}

/// One client's route, if it has one.
pub fn client_route(conn: &Connection, client: &Party) -> Result<Option<Vec<String>>, FaxError> {
    let rows: Vec<String> = conn
        .prepare_cached(
            "SELECT gateway FROM fax_client_routes WHERE kind = ?1 AND client = ?2 ORDER BY pos",
        )?
        .query_map(params![client.kind(), client.name()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((!rows.is_empty()).then_some(rows))
}

/// Every client route: users first, then devices, each by name.
pub fn client_routes(conn: &Connection) -> Result<Vec<ClientRoute>, FaxError> {
    let clients: Vec<(String, String)> = conn
        .prepare(
            "SELECT DISTINCT kind, client FROM fax_client_routes
             ORDER BY CASE kind WHEN 'user' THEN 0 ELSE 1 END, client",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(clients.len());
    for (kind, name) in clients {
        let client = Party::from_stored(&kind, name)?;
        let gateways = client_route(conn, &client)?.unwrap_or_default();
        out.push(ClientRoute { client, gateways });
    }
    Ok(out)
}

/// Every gateway that may still connect (a `fax-gateway` device not revoked), by domain.
pub fn gateways(conn: &Connection) -> Result<Vec<String>, FaxError> {
    Ok(auth::devices(conn)?
        .into_iter()
        .filter(|d| d.kind == DeviceKind::FaxGateway && !d.revoked)
        .map(|d| d.domain)
        .collect())
}

/// The gateways a fax from `client_user` at `client_device` may go through, in the order to
/// try them: the user's route, else the terminal's, else the priority table (else every
/// gateway); less the gateways revoked or no longer gateways, and less those that share no
/// grouping with the user (or with the terminal, when it belongs to a grouping). Empty means
/// the client may send through no gateway; [`explain_none`] says why.
pub fn candidates(
    conn: &Connection,
    client_device: Option<&str>,
    client_user: Option<&str>,
) -> Result<Vec<String>, FaxError> {
    let device = client_device.map(|d| imagecast_shared::domain::domain_key(d).into_owned());
    let route = match client_user {
        Some(u) => client_route(conn, &Party::User(u.to_owned()))?,
        None => None,
    };
    let route = match (route, &device) {
        (Some(r), _) => Some(r),
        (None, Some(d)) => client_route(conn, &Party::Device(d.clone()))?,
        (None, None) => None,
    };
    let live = gateways(conn)?;
    let order = match route {
        Some(r) => r,
        None => {
            let table = list(conn)?;
            if table.is_empty() {
                live.clone()
            } else {
                table
            }
        }
    };
    let mut out = Vec::with_capacity(order.len());
    for g in order {
        if !live.contains(&g) {
            continue;
        }
        match grouping::check_client_gateway(conn, client_user, device.as_deref(), &g) {
            Ok(()) => out.push(g),
            Err(FaxError::Refused(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Why [`candidates`] found no gateway for this client, naming the user's groupings when
/// they are the reason: a user in no grouping, or whose groupings hold no (usable) gateway;
/// else the first reason of the first gateway, or that there is no gateway at all.
pub fn explain_none(
    conn: &Connection,
    client_device: Option<&str>,
    client_user: Option<&str>,
) -> Result<String, FaxError> {
    let live = gateways(conn)?;
    if live.is_empty() {
        return Ok("no fax gateway is configured".into());
    }
    if let Some(u) = client_user
        && grouping::any(conn)?
    {
        let names = grouping::of(conn, &grouping::Member::User(u.to_owned()))?;
        if names.is_empty() {
            return Ok(format!(
                "user {u} belongs to no grouping, and only members of one grouping \
                 communicate (`imagecast-server grouping member add GROUPING --user {u}`)"
            ));
        }
        let theirs: Vec<String> = live
            .iter()
            .filter(|g| {
                grouping::of(conn, &grouping::Member::Gateway((*g).clone()))
                    .is_ok_and(|of| of.iter().any(|n| names.contains(n)))
            })
            .cloned()
            .collect();
        let named = if names.len() == 1 {
            format!("user {u}'s grouping {}", names[0])
        } else {
            format!("user {u}'s groupings {}", names.join(", "))
        };
        if theirs.is_empty() {
            return Ok(format!(
                "{named} has no fax gateway (`imagecast-server grouping member add {} \
                 --gateway GATEWAY`)",
                names[0]
            ));
        }
        for g in &theirs {
            if let Err(e) = grouping::check_client_gateway(conn, client_user, client_device, g) {
                return Ok(e.to_string());
            }
        }
        return Ok(format!(
            "{named} reaches only {}, which this client's route or the priority table leaves out",
            theirs.join(", ")
        ));
    }
    for g in &live {
        if let Err(e) = grouping::check_client_gateway(conn, client_user, client_device, g) {
            return Ok(e.to_string());
        }
    }
    Ok("no gateway of this client's route or of the priority table may still connect".into())
}

/// Empties the priority and per-client tables (for an import that replaces them).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_priority", [])?;
    conn.execute("DELETE FROM fax_client_routes", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::grouping::{self, Member};
    use crate::fax::testing;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_priority_table_orders_and_client_routes_override() {
        let (_d, conn) = testing::db();
        let all = s(&["gw1.example", "gw2.example", "gw3.example"]);
        assert_eq!(
            candidates(&conn, Some("pc1.example"), Some("1001")).unwrap(),
            all
        );
        set(&conn, &s(&["GW3.example", "gw1.example"])).unwrap();
        assert_eq!(list(&conn).unwrap(), s(&["gw3.example", "gw1.example"]));
        assert_eq!(
            candidates(&conn, Some("pc1.example"), Some("1001")).unwrap(),
            s(&["gw3.example", "gw1.example"])
        );
        set_client(
            &conn,
            &Party::Device("pc1.example".into()),
            &s(&["gw2.example"]),
        )
        .unwrap();
        assert_eq!(
            candidates(&conn, Some("PC1.example"), Some("1001")).unwrap(),
            s(&["gw2.example"])
        );
        set_client(
            &conn,
            &Party::User("1001".into()),
            &s(&["gw1.example", "gw2.example"]),
        )
        .unwrap();
        assert_eq!(
            candidates(&conn, Some("pc1.example"), Some("1001")).unwrap(),
            s(&["gw1.example", "gw2.example"]),
            "the user's route beats the terminal's"
        );
        assert_eq!(
            candidates(&conn, Some("pc1.example"), Some("1002")).unwrap(),
            s(&["gw2.example"])
        );
        let routes = client_routes(&conn).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].client, Party::User("1001".into()));
        assert!(clear_client(&conn, &Party::User("1001".into())).unwrap());
        assert!(!clear_client(&conn, &Party::User("1001".into())).unwrap());
        auth::revoke_device(&conn, "gw2.example").unwrap();
        assert!(
            candidates(&conn, Some("pc1.example"), None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_gateways_are_refused_by_name() {
        let (_d, conn) = testing::db();
        let e = set(&conn, &s(&["gw1.example", "nope.example"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown gateway nope.example"), "{e}");
        assert!(list(&conn).unwrap().is_empty(), "nothing was half set");
        let e = set(&conn, &s(&["mfp1.example"])).unwrap_err().to_string();
        assert!(e.contains("mfp1.example is not a fax gateway"), "{e}");
        let e = set(&conn, &s(&["gw1.example", "GW1.example"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
        let e = set_client(&conn, &Party::User("7777".into()), &s(&["gw1.example"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown user 7777"), "{e}");
    }

    #[test]
    fn groupings_restrict_the_candidates() {
        let (_d, conn) = testing::db();
        grouping::add(&conn, "osaka").unwrap();
        grouping::add_member(&conn, "osaka", Member::User("1001".into())).unwrap();
        grouping::add_member(&conn, "osaka", Member::Gateway("gw2.example".into())).unwrap();
        assert_eq!(
            candidates(&conn, Some("pc1.example"), Some("1001")).unwrap(),
            s(&["gw2.example"])
        );
        assert!(
            candidates(&conn, Some("pc1.example"), Some("1002"))
                .unwrap()
                .is_empty()
        );
        let why = explain_none(&conn, Some("pc1.example"), Some("1002")).unwrap();
        assert!(why.contains("user 1002 belongs to no grouping"), "{why}");
        grouping::add(&conn, "kobe").unwrap();
        grouping::add_member(&conn, "kobe", Member::User("1002".into())).unwrap();
        let why = explain_none(&conn, Some("pc1.example"), Some("1002")).unwrap();
        assert!(
            why.starts_with("user 1002's grouping kobe has no fax gateway"),
            "{why}"
        );
        grouping::add_member(&conn, "kobe", Member::Gateway("gw3.example".into())).unwrap();
        set(&conn, &s(&["gw1.example", "gw2.example"])).unwrap();
        assert!(
            candidates(&conn, Some("pc1.example"), Some("1002"))
                .unwrap()
                .is_empty()
        );
        let why = explain_none(&conn, Some("pc1.example"), Some("1002")).unwrap();
        assert!(
            why.contains("grouping kobe reaches only gw3.example, which"),
            "{why}"
        );
    }
}
