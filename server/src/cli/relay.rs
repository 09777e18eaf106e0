//! `relay sessions`: the open and recent real-time sessions from the journal.

use std::process::ExitCode;
use std::time::Duration;

use imagecast_shared::text::{escape as esc, escape_bounded as esc_bounded};

use crate::relay::journal;
use crate::store::datadir::DataDir;

fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn who(domain: &str, user: &str) -> String {
    if user.is_empty() {
        esc(domain).into_owned()
    } else {
        format!("{}({})", esc(domain), esc(user))
    }
}

/// Prints the last `last` sessions, oldest first, one a line: number, start, demander(user),
/// target(user), bytes to the target, bytes to the demander, then `open` or the end's time
/// and reason. With `json`, one JSON array of the same rows.
pub fn sessions(data: &DataDir, last: usize, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let rows = journal::recent(&conn, last)?;
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in rows {
        let end = match (r.ended_ms, &r.end_reason) {
            (Some(at), reason) => format!(
                "ended {} {}",
                time(at),
                esc_bounded(reason.as_deref().unwrap_or(""), 500)
            ),
            (None, _) => "open".to_owned(),
        };
        println!(
            "{} {} {} -> {} {} {} {}",
            r.session,
            time(r.started_ms),
            who(&r.demander, &r.demander_user),
            who(&r.target, &r.target_user),
            r.bytes_to_target,
            r.bytes_to_demander,
            end
        );
    }
    Ok(ExitCode::SUCCESS)
}
