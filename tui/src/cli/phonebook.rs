//! `imagecast phonebook`: the fax phone-book entries this user sees at this terminal. The
//! work is in [`crate::pc::fax::phonebook`].

use std::process::ExitCode;

use super::options::Options;
use super::{init_logging, runtime};
use crate::pc::fax;

/// Runs `phonebook [--json]`.
pub fn run(options: &Options, json: bool) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    init_logging(None);
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(fax::phonebook(&settings, json, out))?;
    Ok(ExitCode::SUCCESS)
}
