//! `journal`: the communication records, one line per destination result.

use std::process::ExitCode;
use std::time::Duration;

use imagecast_shared::limits::MAX_REASON;
use imagecast_shared::text::{escape as esc, escape_bounded as esc_bounded};

use crate::store::datadir::DataDir;
use crate::store::queue;

/// Prints the last `last` journal lines, oldest first: time, distribution, sender,
/// destination, pages, bytes, result, and a failure's reason (escaped and cut, since a
/// terminal wrote it); with `json`, one JSON array of objects with those fields.
pub fn print(data: &DataDir, last: usize, json: bool) -> anyhow::Result<ExitCode> {
    let conn = data.connect()?;
    let lines = queue::journal(&conn, last)?;
    if json {
        let list: Vec<_> = lines
            .iter()
            .map(|l| {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(l.at_ms.max(0) as u64);
                serde_json::json!({
                    "at": humantime::format_rfc3339_seconds(at).to_string(),
                    "dist": l.dist.to_string(),
                    "sender": l.sender,
                    "destination": l.destination,
                    "pages": l.pages,
                    "bytes": l.bytes,
                    "result": l.result.to_string(),
                    "reason": l.reason,
                })
            })
            .collect();
        println!("{}", serde_json::Value::from(list));
        return Ok(ExitCode::SUCCESS);
    }
    for l in lines {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(l.at_ms.max(0) as u64);
        println!(
            "{} {} {} {} {} {} {}{}",
            humantime::format_rfc3339_seconds(at),
            l.dist,
            esc(&l.sender),
            esc(&l.destination),
            l.pages,
            l.bytes,
            l.result,
            l.reason
                .map(|r| format!(" {}", esc_bounded(&r, MAX_REASON)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
