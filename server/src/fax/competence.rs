//! Competences (003 claims 11–12): what a user may do, everywhere or only at one terminal.
//!
//! - `send-fax` is every user's by default; `competence revoke USER send-fax` takes it away.
//! - `gateway-settings` (changing a gateway's settings) and `supervisor-settings` (changing
//!   the supervisor's tables) need a grant.
//! - Admins hold every competence, whatever the table says.
//!
//! A row is a grant or a revocation, for one user, either everywhere (no device) or at one
//! device. At a device, that device's row decides; without one, the user's everywhere row;
//! without either, the default. So `revoke 1001 send-fax` with `grant 1001 send-fax --device
//! mfp1` lets user 1001 send from that MFP only.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, is_admin, require_device, require_user};

/// What a user may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Competence {
    /// Send faxes (granted to everyone by default).
    SendFax,
    /// Change a gateway's settings.
    GatewaySettings,
    /// Change the supervisor's settings (its tables).
    SupervisorSettings,
}

impl Competence {
    /// Every competence.
    pub const ALL: [Competence; 3] = [
        Competence::SendFax,
        Competence::GatewaySettings,
        Competence::SupervisorSettings,
    ];

    /// `send-fax`, `gateway-settings` or `supervisor-settings`.
    pub fn as_str(self) -> &'static str {
        match self {
            Competence::SendFax => "send-fax",
            Competence::GatewaySettings => "gateway-settings",
            Competence::SupervisorSettings => "supervisor-settings",
        }
    }

    /// Parses a competence's name, naming the allowed ones when it is none of them.
    pub fn parse(s: &str) -> Result<Competence, FaxError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                FaxError::Invalid(format!(
                    "unknown competence {s:?}: use send-fax, gateway-settings or supervisor-settings"
                ))
            })
    }

    /// Whether a user holds it when no row says otherwise.
    pub fn default_granted(self) -> bool {
        self == Competence::SendFax
    }
}

/// One grant or revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The user.
    pub user: String,
    /// The competence.
    pub competence: Competence,
    /// Only at this device (its domain key); `None`: everywhere.
    pub device: Option<String>,
    /// Granted (true) or revoked (false).
    pub granted: bool,
}

/// Grants (`granted`) or revokes a competence of a user (checked to exist), everywhere or at
/// one device (checked to exist). Replaces an earlier row for the same place.
pub fn set(
    conn: &Connection,
    user: &str,
    competence: Competence,
    device: Option<&str>,
    granted: bool,
) -> Result<Entry, FaxError> {
    let user = require_user(conn, user)?;
    let device = device.map(|d| require_device(conn, d)).transpose()?;
    conn.execute(
        "INSERT INTO fax_competences (user, competence, device, granted) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user, competence, device) DO UPDATE SET granted = ?4",
        params![
            user,
            competence.as_str(),
            device.as_deref().unwrap_or(""),
            granted
        ],
    )?;
    Ok(Entry {
        user,
        competence,
        device,
        granted,
    })
}

/// Grants a competence (see [`set`]).
pub fn grant(
    conn: &Connection,
    user: &str,
    competence: Competence,
    device: Option<&str>,
) -> Result<Entry, FaxError> {
    set(conn, user, competence, device, true)
}

/// Revokes a competence (see [`set`]).
pub fn revoke(
    conn: &Connection,
    user: &str,
    competence: Competence,
    device: Option<&str>,
) -> Result<Entry, FaxError> {
    set(conn, user, competence, device, false)
}

/// Every grant and revocation, by user, competence, then device (everywhere first).
pub fn list(conn: &Connection) -> Result<Vec<Entry>, FaxError> {
    let rows: Vec<(String, String, String, bool)> = conn
        .prepare("SELECT user, competence, device, granted FROM fax_competences ORDER BY user, competence, device")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(user, c, device, granted)| {
            Ok(Entry {
                user,
                competence: Competence::parse(&c)?,
                device: (!device.is_empty()).then_some(device),
                granted,
            })
        })
        .collect()
}

fn row(
    conn: &Connection,
    user: &str,
    c: Competence,
    device: &str,
) -> Result<Option<bool>, FaxError> {
    Ok(conn
        .query_row(
            "SELECT granted FROM fax_competences WHERE user = ?1 AND competence = ?2 AND device = ?3",
            params![user, c.as_str(), device],
            |r| r.get(0),
        )
        .optional()?)
}

/// Whether `user` at `device` holds `competence`: `Ok(())`, or [`FaxError::Refused`] saying
/// who lacks what where, and how it is got. An unknown user is refused too.
pub fn check(
    conn: &Connection,
    user: &str,
    device: Option<&str>,
    competence: Competence,
) -> Result<(), FaxError> {
    let user = require_user(conn, user)?;
    if is_admin(conn, &user)? {
        return Ok(());
    }
    let device = device.map(|d| imagecast_shared::domain::domain_key(d).into_owned());
    let at_device = match &device {
        Some(d) => row(conn, &user, competence, d)?,
        None => None,
    };
    let granted = match at_device {
        Some(g) => g,
        None => row(conn, &user, competence, "")?.unwrap_or(competence.default_granted()),
    };
    if granted {
        return Ok(());
    }
    let place = device.map(|d| format!(" at {d}")).unwrap_or_default();
    let how = if competence.default_granted() {
        "it was revoked"
    } else {
        "it needs a grant"
    };
    Err(FaxError::Refused(format!(
        "user {user} lacks the competence {}{place}: {how} (imagecast-server competence grant {user} {})",
        competence.as_str(),
        competence.as_str()
    )))
}

/// Removes every row (for an import that replaces them).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_competences", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    #[test]
    fn defaults_grants_revocations_and_admins() {
        let (_d, conn) = testing::db();
        check(&conn, "1001", Some("pc1.example"), Competence::SendFax).unwrap();
        let e = check(&conn, "1001", None, Competence::GatewaySettings)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user 1001 lacks the competence gateway-settings"),
            "{e}"
        );
        assert!(e.contains("needs a grant"), "{e}");
        check(&conn, "9000", None, Competence::SupervisorSettings).unwrap();
        grant(&conn, "1001", Competence::GatewaySettings, None).unwrap();
        check(
            &conn,
            "1001",
            Some("pc1.example"),
            Competence::GatewaySettings,
        )
        .unwrap();
        revoke(&conn, "1001", Competence::SendFax, None).unwrap();
        let e = check(&conn, "1001", Some("pc1.example"), Competence::SendFax)
            .unwrap_err()
            .to_string();
        assert!(e.contains("send-fax at pc1.example: it was revoked"), "{e}");
        grant(&conn, "1001", Competence::SendFax, Some("MFP1.example")).unwrap();
        check(&conn, "1001", Some("mfp1.example"), Competence::SendFax).unwrap();
        assert!(check(&conn, "1001", Some("pc1.example"), Competence::SendFax).is_err());
        revoke(
            &conn,
            "1002",
            Competence::SupervisorSettings,
            Some("pc1.example"),
        )
        .unwrap();
        grant(&conn, "1002", Competence::SupervisorSettings, None).unwrap();
        assert!(
            check(
                &conn,
                "1002",
                Some("pc1.example"),
                Competence::SupervisorSettings
            )
            .is_err()
        );
        check(
            &conn,
            "1002",
            Some("mfp1.example"),
            Competence::SupervisorSettings,
        )
        .unwrap();
        revoke(&conn, "9000", Competence::SendFax, None).unwrap();
        check(&conn, "9000", None, Competence::SendFax).unwrap();
        let l = list(&conn).unwrap();
        assert_eq!(l.len(), 6);
        assert_eq!(l[0].user, "1001");
        assert!(check(&conn, "7777", None, Competence::SendFax).is_err());
        assert!(grant(&conn, "7777", Competence::SendFax, None).is_err());
        assert!(grant(&conn, "1001", Competence::SendFax, Some("x.example")).is_err());
        assert!(
            Competence::parse("fly")
                .unwrap_err()
                .to_string()
                .contains("send-fax")
        );
    }
}
