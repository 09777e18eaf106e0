//! The delivery table (002 table 23, FIG. 4): ordered rules that route a received fax to a user
//! (whose terminals are listed by [`super::homes`]) or to one terminal.
//!
//! A rule matches on the remote station ID (a shell pattern, letters in either case), the
//! caller's number (a shell pattern on the number without spaces and dashes), the number
//! called (exact, without spaces and dashes), the gateway that took the call, or anything.
//! [`route`] takes the first rule that matches and whose target shares a grouping with the
//! gateway ([`super::grouping`]); a rule whose target may not hear from that gateway is passed
//! over, so a later rule (an `--any` default, say) still catches the fax.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::grouping::{self, Member};
use super::{FaxError, Party, glob, normalize_number, require_gateway, validate_number};

/// What a rule matches on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "on", content = "value")]
pub enum Match {
    /// The remote station ID (TSI), a shell pattern; letters match either case.
    Station(String),
    /// The caller's number, a shell pattern on the number without spaces and dashes.
    Caller(String),
    /// The number called, exactly (spaces and dashes aside).
    Called(String),
    /// The gateway that received the fax (its domain key).
    Gateway(String),
    /// Every fax.
    Any,
}

impl Match {
    /// `station`, `caller`, `called`, `gateway` or `any`.
    pub fn kind(&self) -> &'static str {
        match self {
            Match::Station(_) => "station",
            Match::Caller(_) => "caller",
            Match::Called(_) => "called",
            Match::Gateway(_) => "gateway",
            Match::Any => "any",
        }
    }

    /// The pattern, number or gateway ("" for `any`).
    pub fn value(&self) -> &str {
        match self {
            Match::Station(v) | Match::Caller(v) | Match::Called(v) | Match::Gateway(v) => v,
            Match::Any => "",
        }
    }

    /// Builds one from its kind and value, as stored or as written in a TOML file.
    pub fn from_parts(kind: &str, value: String) -> Result<Match, FaxError> {
        Ok(match kind {
            "station" => Match::Station(value),
            "caller" => Match::Caller(value),
            "called" => Match::Called(value),
            "gateway" => Match::Gateway(value),
            "any" => Match::Any,
            other => {
                return Err(FaxError::Invalid(format!(
                    "unknown match {other:?}: use station, caller, called, gateway or any"
                )));
            }
        })
    }

    /// Checks the pattern or number and puts a gateway in its key form.
    pub fn checked(self, conn: &Connection) -> Result<Match, FaxError> {
        Ok(match self {
            Match::Station(p) => {
                glob::validate(&p).map_err(|e| FaxError::Invalid(format!("--station: {e}")))?;
                Match::Station(p)
            }
            Match::Caller(p) => {
                glob::validate(&p).map_err(|e| FaxError::Invalid(format!("--caller: {e}")))?;
                if let Some(c) = p.chars().find(|c| {
                    !matches!(
                        *c,
                        '0'..='9' | '+' | ' ' | '-' | '*' | '?' | '[' | ']' | '!' | '\\'
                    )
                }) {
                    return Err(FaxError::Invalid(format!(
                        "--caller pattern {p:?}: {c:?} is not allowed (digits, +, spaces, dashes and * ? [ ] only)"
                    )));
                }
                Match::Caller(p)
            }
            Match::Called(n) => Match::Called(validate_number(&n)?),
            Match::Gateway(g) => Match::Gateway(require_gateway(conn, &g)?),
            Match::Any => Match::Any,
        })
    }

    /// True when a fax with these particulars matches.
    pub fn matches(&self, fax: &Incoming<'_>) -> bool {
        match self {
            Match::Station(p) => glob::matches(p, fax.station.trim(), true),
            Match::Caller(p) => {
                glob::matches(&normalize_pattern(p), &normalize_number(fax.caller), false)
            }
            Match::Called(n) => normalize_number(n) == normalize_number(fax.called),
            Match::Gateway(g) => *g == imagecast_shared::domain::domain_key(fax.gateway),
            Match::Any => true,
        }
    }
}

/// A caller pattern without the spaces and dashes that stand between digits for reading; a
/// dash inside `[...]` is a range and stays.
fn normalize_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut in_class = false;
    let mut escaped = false;
    for c in p.trim().chars() {
        match c {
            _ if escaped => {
                escaped = false;
                out.push(c);
            }
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            ' ' | '-' if !in_class => {}
            c => out.push(c),
        }
    }
    out
}

/// The particulars of a received fax that rules match on.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// The remote station ID (TSI) as received; may be empty.
    pub station: &'a str,
    /// The caller's number (caller ID) as received; may be empty.
    pub caller: &'a str,
    /// The number that was called (the gateway's line).
    pub called: &'a str,
    /// The gateway that received it.
    pub gateway: &'a str,
}

/// Where a fax goes: a user (all the user's home terminals) or one terminal.
pub type Target = Party;

/// A rule of the delivery table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its number, from 1, in the order rules are tried.
    pub n: usize,
    /// What it matches.
    #[serde(rename = "match")]
    pub matches: Match,
    /// Where a matching fax goes.
    pub target: Target,
}

/// Appends a rule (after checking the pattern, the gateway, and that the target exists);
/// returns its number.
pub fn add(conn: &Connection, matches: Match, target: Target) -> Result<usize, FaxError> {
    let matches = matches.checked(conn)?;
    let target = target.checked(conn)?;
    let pos: i64 = conn.query_row(
        "SELECT COALESCE(MAX(pos), -1) + 1 FROM fax_delivery_rules",
        [],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO fax_delivery_rules (pos, match_kind, match_value, target_kind, target)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            pos,
            matches.kind(),
            matches.value(),
            target.kind(),
            target.name()
        ],
    )?;
    count(conn)
}

fn count(conn: &Connection) -> Result<usize, FaxError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM fax_delivery_rules", [], |r| r.get(0))?;
    Ok(n as usize)
}

/// Every rule, in order, numbered from 1.
pub fn list(conn: &Connection) -> Result<Vec<Rule>, FaxError> {
    let rows: Vec<(String, String, String, String)> = conn
        .prepare_cached(
            "SELECT match_kind, match_value, target_kind, target FROM fax_delivery_rules ORDER BY pos",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .enumerate()
        .map(|(i, (mk, mv, tk, t))| {
            Ok(Rule {
                n: i + 1,
                matches: Match::from_parts(&mk, mv)?,
                target: Party::from_stored(&tk, t)?,
            })
        })
        .collect()
}

/// Removes rule `n` (counted from 1, as [`list`] numbers them); the later rules move up.
pub fn remove(conn: &Connection, n: usize) -> Result<Rule, FaxError> {
    let rules = list(conn)?;
    let Some(rule) = n.checked_sub(1).and_then(|i| rules.get(i)).cloned() else {
        return Err(FaxError::Missing(format!(
            "no delivery rule {n}: the table has {} (see `imagecast-server fax delivery list`)",
            rules.len()
        )));
    };
    conn.execute(
        "DELETE FROM fax_delivery_rules WHERE pos =
         (SELECT pos FROM fax_delivery_rules ORDER BY pos LIMIT 1 OFFSET ?1)",
        [n as i64 - 1],
    )?;
    Ok(rule)
}

/// Where a received fax goes: the first rule that matches and whose target shares a grouping
/// with the gateway, or `None` (no rule matched: the fax stays with the supervisor and the
/// journal says so).
pub fn route(
    conn: &Connection,
    station: &str,
    caller: &str,
    called: &str,
    gateway: &str,
) -> Result<Option<Target>, FaxError> {
    Ok(route_rule(
        conn,
        &Incoming {
            station,
            caller,
            called,
            gateway,
        },
    )?
    .map(|r| r.target))
}

/// Like [`route`], with the rule that matched (for the journal).
pub fn route_rule(conn: &Connection, fax: &Incoming<'_>) -> Result<Option<Rule>, FaxError> {
    let gw = Member::Gateway(imagecast_shared::domain::domain_key(fax.gateway).into_owned());
    for rule in list(conn)? {
        if !rule.matches.matches(fax) {
            continue;
        }
        let member = match &rule.target {
            Party::User(u) => Member::User(u.clone()),
            Party::Device(d) => Member::Device(d.clone()),
        };
        if grouping::communicate(conn, &member, &gw)? {
            return Ok(Some(rule));
        }
        tracing::debug!(rule = rule.n, target = %rule.target.describe(), gateway = %fax.gateway,
            "delivery rule passed over: its target shares no grouping with the gateway");
    }
    Ok(None)
}

/// The terminals a routed fax goes to: a user's home terminals ([`super::homes`]), or the one
/// terminal. A user with no home terminal is an error that says how to give them one.
pub fn destinations(conn: &Connection, target: &Target) -> Result<Vec<String>, FaxError> {
    match target {
        Party::Device(d) => Ok(vec![d.clone()]),
        Party::User(u) => {
            let homes = super::homes::of(conn, u)?;
            if homes.is_empty() {
                return Err(FaxError::Missing(format!(
                    "user {u} has no home terminal to get faxes (imagecast-server user home {u} DOMAIN...)"
                )));
            }
            Ok(homes)
        }
    }
}

/// Empties the table (for an import that replaces it).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_delivery_rules", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    fn user(u: &str) -> Target {
        Party::User(u.into())
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let (_d, conn) = testing::db();
        assert_eq!(
            route(&conn, "ACME", "+8131234", "555", "gw1.example").unwrap(),
            None
        );
        add(&conn, Match::Station("ACME*".into()), user("1001")).unwrap();
        add(&conn, Match::Caller("+81 3*".into()), user("1002")).unwrap();
        add(
            &conn,
            Match::Called("555-0100".into()),
            Party::Device("MFP1.example".into()),
        )
        .unwrap();
        add(&conn, Match::Gateway("gw2.example".into()), user("9000")).unwrap();
        assert_eq!(add(&conn, Match::Any, user("1002")).unwrap(), 5);
        let r = |st, ca, cd, gw| route(&conn, st, ca, cd, gw).unwrap();
        assert_eq!(
            r("acme osaka", "+1 555", "1", "gw1.example"),
            Some(user("1001"))
        );
        assert_eq!(
            r("OTHER", "+81-3-1234", "1", "gw1.example"),
            Some(user("1002"))
        );
        assert_eq!(normalize_pattern("+81 [0-3]-*"), "+81[0-3]*");
        assert_eq!(normalize_pattern(r"0\-1"), r"0\-1");
        assert_eq!(
            r("OTHER", "+1", "5550100", "gw1.example"),
            Some(Party::Device("mfp1.example".into()))
        );
        assert_eq!(r("OTHER", "+1", "1", "GW2.example"), Some(user("9000")));
        assert_eq!(r("", "", "", "gw3.example"), Some(user("1002")));
        let e = destinations(&conn, &user("1001")).unwrap_err().to_string();
        assert!(e.contains("user 1001 has no home terminal"), "{e}");
        crate::fax::homes::set(
            &conn,
            "1001",
            &["pc1.example".into(), "mfp1.example".into()],
        )
        .unwrap();
        assert_eq!(
            destinations(&conn, &user("1001")).unwrap(),
            ["pc1.example", "mfp1.example"]
        );
        assert_eq!(
            destinations(&conn, &Party::Device("mfp1.example".into())).unwrap(),
            ["mfp1.example"]
        );
        let removed = remove(&conn, 1).unwrap();
        assert_eq!(removed.matches, Match::Station("ACME*".into()));
        assert_eq!(list(&conn).unwrap()[0].n, 1);
        assert_eq!(
            r("acme osaka", "+1 555", "1", "gw1.example"),
            Some(user("1002"))
        );
        let e = remove(&conn, 9).unwrap_err().to_string();
        assert!(e.contains("no delivery rule 9"), "{e}");
        assert!(remove(&conn, 0).is_err());
    }

    #[test]
    fn bad_rules_are_refused_by_name() {
        let (_d, conn) = testing::db();
        let e = add(&conn, Match::Gateway("pc1.example".into()), user("1001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a fax gateway"), "{e}");
        let e = add(&conn, Match::Called("12x".into()), user("1001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad number"), "{e}");
        let e = add(&conn, Match::Caller("abc*".into()), user("1001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--caller"), "{e}");
        let e = add(&conn, Match::Any, user("7777"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown user 7777"), "{e}");
        let e = add(&conn, Match::Any, Party::Device("x.example".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown device x.example"), "{e}");
        assert!(list(&conn).unwrap().is_empty());
    }

    #[test]
    fn a_rule_whose_target_shares_no_grouping_with_the_gateway_is_passed_over() {
        let (_d, conn) = testing::db();
        grouping::add(&conn, "osaka").unwrap();
        grouping::add_member(&conn, "osaka", Member::User("1002".into())).unwrap();
        grouping::add_member(&conn, "osaka", Member::Gateway("gw1.example".into())).unwrap();
        add(&conn, Match::Station("ACME*".into()), user("1001")).unwrap();
        add(&conn, Match::Any, user("1002")).unwrap();
        assert_eq!(
            route(&conn, "ACME", "", "", "gw1.example").unwrap(),
            Some(user("1002"))
        );
        assert_eq!(route(&conn, "ACME", "", "", "gw2.example").unwrap(), None);
    }
}
