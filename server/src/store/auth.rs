//! Devices and users: who may connect, and who may act.
//!
//! A device is a terminal allowed to connect: its network domain name (stored and looked up
//! by its [`domain_key`], so `2001:0db8::5` finds `2001:db8::5`), a destination name, a kind,
//! and a random token of which only a SHA-256 digest is stored (a 256-bit random token needs
//! no slow hash; the digest comparison runs in constant time). A user has an ID, a role
//! and an argon2 password hash; hashing runs off the async threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use imagecast_shared::domain::domain_key;
use imagecast_shared::msg::{DeviceKind, Role};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::db::{DbError, now_ms};

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Network domain name (or IP address), as in `all.rec`.
    pub domain: String,
    /// Destination name.
    pub name: String,
    /// Kind of terminal.
    pub kind: DeviceKind,
    /// True once the token was revoked.
    pub revoked: bool,
    /// When [`check_token`] began to read the token it found valid (wall-clock ms, taken
    /// before the read); 0 for a device only looked up. A token change or revocation at or
    /// after this time drops the connection (see [`account_events_after`]).
    pub checked_ms: i64,
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User ID.
    pub user: String,
    /// What the user may do: operator or admin.
    pub role: Role,
}

/// Why an account operation failed.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A device or user of that name exists already.
    #[error("{0} exists already")]
    Exists(String),
    /// No device or user of that name.
    #[error("{0} does not exist")]
    Missing(String),
    /// A value is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// An account operation that fails inside a database closure ([`Db::call`]) fails the call:
/// a database fault stays one, anything else (an account that vanished, say) is a row that does
/// not make sense to the caller. Callers that expect [`AuthError::Missing`] match on it inside
/// the closure.
///
/// [`Db::call`]: super::db::Db::call
impl From<AuthError> for DbError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Db(d) => d,
            other => DbError::Corrupt(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Db(DbError::Sqlite(e))
    }
}

/// A fresh device token: 32 random bytes in hex.
pub fn new_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Invalid(format!("no random numbers available: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Adds a device and returns its new token.
pub fn add_device(
    conn: &Connection,
    domain: &str,
    name: &str,
    kind: DeviceKind,
) -> Result<String, AuthError> {
    let domain = &*domain_key(domain);
    let token = new_token()?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO devices (domain, name, kind, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![domain, name, kind.as_str(), &token_digest(&token)[..], now_ms()],
    )?;
    if inserted == 0 {
        return Err(AuthError::Exists(format!("device {domain}")));
    }
    Ok(token)
}

/// Replaces a device's token (un-revoking it) and returns the new one. The running server
/// drops the connections opened with the old token within a second (through the account
/// events it watches).
pub fn reissue_token(conn: &Connection, domain: &str) -> Result<String, AuthError> {
    let domain = &*domain_key(domain);
    let token = new_token()?;
    let n = conn.execute(
        "UPDATE devices SET token_hash = ?2, revoked = 0 WHERE domain = ?1",
        params![domain, &token_digest(&token)[..]],
    )?;
    if n == 0 {
        return Err(AuthError::Missing(format!("device {domain}")));
    }
    // Written after the change is committed, so its time is after every check that could
    // still have seen the old token.
    account_event(conn, EVENT_DEVICE_TOKEN, domain)?;
    Ok(token)
}

/// Revokes a device's token: it can no longer connect, and the running server drops its
/// connections within a second (through the account events it watches).
pub fn revoke_device(conn: &Connection, domain: &str) -> Result<(), AuthError> {
    let domain = &*domain_key(domain);
    let n = conn.execute(
        "UPDATE devices SET revoked = 1, revoked_ms = ?2 WHERE domain = ?1",
        params![domain, now_ms()],
    )?;
    if n == 0 {
        return Err(AuthError::Missing(format!("device {domain}")));
    }
    account_event(conn, EVENT_DEVICE_REVOKED, domain)
}

/// Account event: a device's token was revoked.
pub const EVENT_DEVICE_REVOKED: &str = "device-revoked";
/// Account event: a device was given a new token (the old one stops working).
pub const EVENT_DEVICE_TOKEN: &str = "device-token";
/// Account event: a user was removed.
pub const EVENT_USER_REMOVED: &str = "user-removed";
/// Account event: a user's password changed.
pub const EVENT_USER_PASSWORD: &str = "user-password";

fn account_event(conn: &Connection, kind: &str, name: &str) -> Result<(), AuthError> {
    conn.execute(
        "INSERT INTO account_events (at_ms, kind, name) VALUES (?1, ?2, ?3)",
        params![now_ms(), kind, name],
    )?;
    Ok(())
}

/// A change to devices or users that the running server applies to live connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountEvent {
    /// Its number; later events have higher ones.
    pub seq: i64,
    /// When it was written (wall-clock ms), after the change itself was committed: a device
    /// event concerns the connections whose token was checked at or before this
    /// ([`Device::checked_ms`]).
    pub at_ms: i64,
    /// One of the `EVENT_*` kinds.
    pub kind: String,
    /// The device's domain or the user ID.
    pub name: String,
}

/// Account events after `seq`, oldest first.
pub fn account_events_after(conn: &Connection, seq: i64) -> Result<Vec<AccountEvent>, AuthError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, kind, name FROM account_events WHERE seq > ?1 ORDER BY seq LIMIT 1000",
    )?;
    let rows = stmt
        .query_map([seq], |r| {
            Ok(AccountEvent {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                kind: r.get(2)?,
                name: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The newest account event's number (0 when there is none).
pub fn last_account_event(conn: &Connection) -> Result<i64, AuthError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM account_events",
        [],
        |r| r.get(0),
    )?)
}

/// Records a failed login.
pub fn record_failed_login(
    conn: &Connection,
    device: &str,
    user: &str,
    peer: &str,
) -> Result<(), AuthError> {
    conn.execute(
        "INSERT INTO login_failures (at_ms, device, user, peer) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), device, user, peer],
    )?;
    Ok(())
}

/// The last `n` failed logins, oldest first.
pub fn failed_logins(
    conn: &Connection,
    n: u32,
) -> Result<Vec<imagecast_shared::msg::FailedLogin>, AuthError> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, device, user, peer FROM
         (SELECT * FROM login_failures ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([i64::from(n)], |r| {
            Ok(imagecast_shared::msg::FailedLogin {
                at_ms: r.get::<_, i64>(0)?.max(0) as u64,
                device: r.get(1)?,
                user: r.get(2)?,
                peer: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Looks a device up by domain (any spelling of its [`domain_key`]).
pub fn device(conn: &Connection, domain: &str) -> Result<Option<Device>, AuthError> {
    let domain = &*domain_key(domain);
    Ok(conn
        .query_row(
            "SELECT domain, name, kind, revoked FROM devices WHERE domain = ?1",
            [domain],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            },
        )
        .optional()?
        .map(|(domain, name, kind, revoked)| Device {
            domain,
            name,
            kind: DeviceKind::parse(&kind).unwrap_or(DeviceKind::Pc),
            revoked,
            checked_ms: 0,
        }))
}

/// Every device, by domain.
pub fn devices(conn: &Connection) -> Result<Vec<Device>, AuthError> {
    let mut stmt = conn.prepare("SELECT domain FROM devices ORDER BY domain")?;
    let domains: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(domains.len());
    for d in domains {
        if let Some(dev) = device(conn, &d)? {
            out.push(dev);
        }
    }
    Ok(out)
}

/// What a token check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token is right.
    Valid(Device),
    /// No such device.
    UnknownDevice,
    /// The token is wrong.
    BadToken,
    /// The device's token was revoked.
    Revoked,
}

/// Checks a device's token in constant time. The answer names the device: a caller must
/// give [`TokenCheck::UnknownDevice`] and [`TokenCheck::BadToken`] the same answer, or device
/// names can be found out without a token.
pub fn check_token(conn: &Connection, domain: &str, token: &str) -> Result<TokenCheck, AuthError> {
    let domain = &*domain_key(domain);
    // Before the read: a token change committed after it cannot have been seen.
    let checked_ms = now_ms();
    // Digested before the lookup, so an unknown device costs the same as a known one.
    let digest = token_digest(token);
    let row: Option<Vec<u8>> = conn
        .query_row(
            "SELECT token_hash FROM devices WHERE domain = ?1",
            [domain],
            |r| r.get(0),
        )
        .optional()?;
    let Some(stored) = row else {
        return Ok(TokenCheck::UnknownDevice);
    };
    let good: bool = digest[..].ct_eq(&stored[..]).into();
    if !good {
        return Ok(TokenCheck::BadToken);
    }
    match device(conn, domain)? {
        Some(d) if d.revoked => Ok(TokenCheck::Revoked),
        Some(d) => Ok(TokenCheck::Valid(Device { checked_ms, ..d })),
        None => Ok(TokenCheck::UnknownDevice),
    }
}

/// Hashes a password with argon2 (slow on purpose: call it off the async threads).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AuthError::Invalid(format!("no random numbers available: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AuthError::Invalid(format!("cannot encode a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(format!("cannot hash the password: {e}")))
}

/// Checks a password against a stored argon2 hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a user ID: printable, no spaces, at most 64 characters.
pub fn validate_user_id(user: &str) -> Result<(), AuthError> {
    if user.is_empty()
        || user.len() > 64
        || user.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(AuthError::Invalid(format!(
            "user ID {user:?} must be 1 to 64 printable characters without spaces"
        )));
    }
    Ok(())
}

/// Adds a user with an already hashed password.
pub fn add_user(conn: &Connection, user: &str, role: Role, hash: &str) -> Result<(), AuthError> {
    validate_user_id(user)?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO users (user, role, password, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![user, role.as_str(), hash, now_ms()],
    )?;
    if n == 0 {
        return Err(AuthError::Exists(format!("user {user}")));
    }
    Ok(())
}

/// Sets a user's password (already hashed); the user's sessions are ended.
pub fn set_password(conn: &Connection, user: &str, hash: &str) -> Result<(), AuthError> {
    let n = conn.execute(
        "UPDATE users SET password = ?2 WHERE user = ?1",
        params![user, hash],
    )?;
    if n == 0 {
        return Err(AuthError::Missing(format!("user {user}")));
    }
    account_event(conn, EVENT_USER_PASSWORD, user)
}

/// Removes a user; the user's sessions are ended.
pub fn remove_user(conn: &Connection, user: &str) -> Result<(), AuthError> {
    let n = conn.execute("DELETE FROM users WHERE user = ?1", [user])?;
    if n == 0 {
        return Err(AuthError::Missing(format!("user {user}")));
    }
    account_event(conn, EVENT_USER_REMOVED, user)
}

/// A user's role and password hash.
pub fn user_secret(conn: &Connection, user: &str) -> Result<Option<(User, String)>, AuthError> {
    Ok(conn
        .query_row(
            "SELECT role, password FROM users WHERE user = ?1",
            [user],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .map(|(role, hash)| {
            (
                User {
                    user: user.to_owned(),
                    role: Role::parse(&role).unwrap_or(Role::Operator),
                },
                hash,
            )
        }))
}

/// Every user, by ID.
pub fn users(conn: &Connection) -> Result<Vec<User>, AuthError> {
    let mut stmt = conn.prepare("SELECT user, role FROM users ORDER BY user")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(User {
                user: r.get(0)?,
                role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Operator),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_passwords_check_out() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::db::open_connection(&dir.path().join("t.db")).unwrap();
        let token = add_device(&conn, "Pc1.Example", "PC one", DeviceKind::Pc).unwrap();
        assert_eq!(token.len(), 64);
        assert!(matches!(
            check_token(&conn, "pc1.example", &token).unwrap(),
            TokenCheck::Valid(d) if d.name == "PC one"
        ));
        assert_eq!(
            check_token(&conn, "pc1.example", "nope").unwrap(),
            TokenCheck::BadToken
        );
        assert_eq!(
            check_token(&conn, "pc2.example", &token).unwrap(),
            TokenCheck::UnknownDevice
        );
        assert!(matches!(
            add_device(&conn, "pc1.example", "again", DeviceKind::Pc),
            Err(AuthError::Exists(_))
        ));
        let hash = hash_password("1234").unwrap();
        add_user(&conn, "1001", Role::Operator, &hash).unwrap();
        let (user, stored) = user_secret(&conn, "1001").unwrap().unwrap();
        assert_eq!(user.role, Role::Operator);
        assert!(verify_password("1234", &stored));
        assert!(!verify_password("1235", &stored));
        assert!(validate_user_id("bad id").is_err());
        revoke_device(&conn, "PC1.example").unwrap();
        assert_eq!(
            check_token(&conn, "pc1.example", &token).unwrap(),
            TokenCheck::Revoked
        );
        let fresh = reissue_token(&conn, "pc1.example").unwrap();
        let reissued_ms = account_events_after(&conn, 0).unwrap()[1].at_ms;
        assert!(matches!(
            check_token(&conn, "pc1.example", &fresh).unwrap(),
            TokenCheck::Valid(d) if d.checked_ms >= reissued_ms
        ));
        assert_eq!(
            check_token(&conn, "pc1.example", &token).unwrap(),
            TokenCheck::BadToken
        );
        set_password(&conn, "1001", &hash_password("9999").unwrap()).unwrap();
        assert!(verify_password(
            "9999",
            &user_secret(&conn, "1001").unwrap().unwrap().1
        ));
        remove_user(&conn, "1001").unwrap();
        assert!(user_secret(&conn, "1001").unwrap().is_none());
        assert!(matches!(
            remove_user(&conn, "1001"),
            Err(AuthError::Missing(_))
        ));
        let events = account_events_after(&conn, 0).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                EVENT_DEVICE_REVOKED,
                EVENT_DEVICE_TOKEN,
                EVENT_USER_PASSWORD,
                EVENT_USER_REMOVED
            ]
        );
        assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(events[1].name, "pc1.example");
        assert_eq!(last_account_event(&conn).unwrap(), events[3].seq);
        record_failed_login(&conn, "pc1.example", "1001", "127.0.0.1:5").unwrap();
        assert_eq!(failed_logins(&conn, 10).unwrap()[0].user, "1001");
    }
}
