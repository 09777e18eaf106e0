//! The commands that manage who may connect and who may act: `device …`, `user …`, and
//! `logins` (the recent failed logins). A running server applies revocations, new tokens,
//! removed users and changed passwords within a second (its account watcher).

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::msg::{DeviceKind, Role};
use imagecast_shared::text::escape as esc;

use crate::store::auth;
use crate::store::datadir::DataDir;

/// `device add`: the new token alone on standard output; the device is also listed in
/// `all.rec` if it is not yet.
pub fn device_add(
    data: &DataDir,
    domain: &str,
    name: &str,
    kind: &str,
) -> anyhow::Result<ExitCode> {
    let Some(kind) = DeviceKind::parse(kind) else {
        bail!("unknown device kind {kind:?}: use mfp, pc, printer or fax-gateway");
    };
    let conn = data.connect()?;
    let token = auth::add_device(&conn, domain, name, kind)?;
    if data.add_to_all(domain, name)? {
        eprintln!("added {domain};{name} to all.rec");
    }
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `device list`: domain, kind and name, a tab between them, escaped.
pub fn device_list(data: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let devices = auth::devices(&conn)?;
    if json {
        let list: Vec<_> = devices
            .iter()
            .map(|d| {
                serde_json::json!({
                    "domain": d.domain, "kind": d.kind.as_str(), "name": d.name,
                    "revoked": d.revoked,
                })
            })
            .collect();
        println!("{}", serde_json::Value::from(list));
        return Ok(ExitCode::SUCCESS);
    }
    for d in devices {
        let revoked = if d.revoked { "  (revoked)" } else { "" };
        println!(
            "{}\t{}\t{}{revoked}",
            esc(&d.domain),
            d.kind.as_str(),
            esc(&d.name)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `device revoke`.
pub fn device_revoke(data: &DataDir, domain: &str) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    auth::revoke_device(&conn, domain)?;
    eprintln!("revoked {domain}; a running server drops its connections within a second");
    Ok(ExitCode::SUCCESS)
}

/// `device token`: the new token alone on standard output.
pub fn device_token(data: &DataDir, domain: &str) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    println!("{}", auth::reissue_token(&conn, domain)?);
    Ok(ExitCode::SUCCESS)
}

/// `user add`: the password comes from standard input only, so it never shows in `ps`.
pub fn user_add(
    data: &DataDir,
    user: &str,
    role: &str,
    password_stdin: bool,
) -> anyhow::Result<ExitCode> {
    let Some(role) = Role::parse(role) else {
        bail!("unknown role {role:?}: use operator or admin");
    };
    if !password_stdin {
        bail!("give the password on standard input with --password-stdin");
    }
    let password = read_password()?;
    let conn = data.connect()?;
    let hash = auth::hash_password(&password)?;
    auth::add_user(&conn, user, role, &hash)?;
    eprintln!("added user {user} ({})", role.as_str());
    Ok(ExitCode::SUCCESS)
}

/// `user list`: user ID and role, a tab between them.
pub fn user_list(data: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let users = auth::users(&conn)?;
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| serde_json::json!({ "user": u.user, "role": u.role.as_str() }))
            .collect();
        println!("{}", serde_json::Value::from(list));
        return Ok(ExitCode::SUCCESS);
    }
    for u in users {
        println!("{}\t{}", u.user, u.role.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

/// `user passwd`: the new password from standard input.
pub fn user_passwd(data: &DataDir, user: &str, password_stdin: bool) -> anyhow::Result<ExitCode> {
    if !password_stdin {
        bail!("give the new password on standard input with --password-stdin");
    }
    let password = read_password()?;
    let conn = data.connect()?;
    auth::set_password(&conn, user, &auth::hash_password(&password)?)?;
    eprintln!("changed the password of {user}; their sessions end");
    Ok(ExitCode::SUCCESS)
}

/// `user remove`.
pub fn user_remove(data: &DataDir, user: &str) -> anyhow::Result<ExitCode> {
    let mut conn = data.connect()?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    auth::remove_user(&tx, user)?;
    let fax_rows = crate::fax::forget_user(&tx, user)?;
    tx.commit()?;
    if fax_rows > 0 {
        eprintln!("dropped {user} from {fax_rows} fax table rows");
    }
    eprintln!("removed user {user}; their sessions end");
    Ok(ExitCode::SUCCESS)
}

/// `logins`: the last `last` failed logins, oldest first: time, device, user, peer.
pub fn logins(data: &DataDir, last: u32, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let failed = auth::failed_logins(&conn, last)?;
    if json {
        let list: Vec<_> = failed
            .iter()
            .map(|f| {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(f.at_ms);
                serde_json::json!({
                    "at": humantime::format_rfc3339_seconds(at).to_string(),
                    "device": f.device, "user": f.user, "peer": f.peer,
                })
            })
            .collect();
        println!("{}", serde_json::Value::from(list));
        return Ok(ExitCode::SUCCESS);
    }
    for f in failed {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(f.at_ms);
        println!(
            "{} {} {} {}",
            humantime::format_rfc3339_seconds(at),
            esc(&f.device),
            esc(&f.user),
            esc(&f.peer)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of standard input (at most 4 KiB read), which must not be empty.
fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .context("cannot read the password from standard input")?;
    let password = s.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("the password on standard input is empty");
    }
    Ok(password)
}
