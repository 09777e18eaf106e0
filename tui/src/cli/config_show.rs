//! `config show`: the settings in effect and where each came from, so that an operator sees
//! why the terminal connects where it does.

use std::process::ExitCode;

use super::options::Options;

/// Prints `KEY  VALUE  SOURCE` per setting (secrets only as "(set)"), then the config file.
pub fn show(options: &Options) -> anyhow::Result<ExitCode> {
    let (path, exists, rows) = options.sources()?;
    let key_w = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let value_w = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0);
    for r in &rows {
        println!(
            "{:<key_w$}  {:<value_w$}  {}",
            r.key,
            r.value,
            r.source,
            value_w = value_w
        );
    }
    let state = if exists {
        ""
    } else {
        " (not there; nothing read)"
    };
    println!("{:<key_w$}  {}{state}", "config", path.display());
    Ok(ExitCode::SUCCESS)
}
