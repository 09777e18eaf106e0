//! `relay sessions`: the open and recent real-time sessions, and the connection demands that
//! opened none, from the journal.

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

/// Prints the last `last` rows of the journal, oldest first, one a line. A session: number,
/// start, demander(user), target(user), bytes to the target, bytes to the demander, then
/// `open` or the end's time and reason. A demand that opened no session: the word `demand`,
/// its time, demander(user), target(user), then `rejected`, `expired`, `not-online`,
/// `busy` or `older-terminal` and the reason. With `json`, one JSON array of
/// the same rows, each with `kind` `session` or `demand`.
pub fn sessions(data: &DataDir, last: usize, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let rows = journal::recent(&conn, last)?;
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    for row in rows {
        let r = match row {
            journal::JournalRow::Session(r) => r,
            journal::JournalRow::Demand(d) => {
                println!(
                    "demand {} {} -> {} {} {}",
                    time(d.at_ms),
                    who(&d.demander, &d.demander_user),
                    who(&d.target, &d.target_user),
                    esc(&d.outcome),
                    esc_bounded(&d.reason, 500)
                );
                continue;
            }
        };
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
