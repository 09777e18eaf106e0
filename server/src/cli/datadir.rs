//! The commands that make and look after a data directory: `init`, `check`, `fingerprint`,
//! `tls create` and `tls install`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use imagecast_shared::text::escape as esc;

use crate::demo;
use crate::groups::{GroupDir, TextEncoding};
use crate::store::datadir::DataDir;
use crate::store::tls;

/// `init`: creates the data directory (with `demo`, the seed's network, whose tokens and users
/// it prints and whose tokens it also writes to `demo-tokens.txt`); `tls` installs the
/// administrator's certificate and key instead of the self-signed pair.
pub fn init(
    data: &DataDir,
    demo: bool,
    tls: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    let (mut fingerprint, demo) = if demo {
        let made = demo::init(data)?;
        (made.fingerprint.clone(), Some(made))
    } else {
        (data.init(&[])?, None)
    };
    if let Some((cert, key)) = tls {
        fingerprint = tls::install(&data.tls_dir(), &cert, &key)?;
    }
    println!("initialised {}", data.root().display());
    println!("server certificate fingerprint {fingerprint}");
    if let Some(made) = demo {
        println!("demo devices (domain, kind, name, token):");
        for (d, token) in &made.devices {
            println!(
                "  {:<22} {:<4} {:<44} {token}",
                d.domain,
                d.kind.as_str(),
                d.name
            );
        }
        println!("demo users (user ID / password, role):");
        for (u, p, r) in &made.users {
            println!("  {u} / {p}  {}", r.as_str());
        }
        let path = demo::write_tokens(data, &made.devices)?;
        println!("tokens also written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `fingerprint`: the certificate's fingerprint, alone on standard output.
pub fn fingerprint(data: &DataDir) -> anyhow::Result<ExitCode> {
    println!("{}", tls::fingerprint(&data.tls_dir())?);
    Ok(ExitCode::SUCCESS)
}

/// `tls create`: a new key and self-signed certificate naming `names`.
pub fn tls_create(data: &DataDir, names: &[String]) -> anyhow::Result<ExitCode> {
    let fp = tls::create(&data.tls_dir(), names)?;
    println!("{fp}");
    eprintln!(
        "new certificate made; terminals must be given this fingerprint (restart the server to use it)"
    );
    Ok(ExitCode::SUCCESS)
}

/// `tls install`: the administrator's certificate and key, checked before they replace ours.
pub fn tls_install(data: &DataDir, cert: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let fp = tls::install(&data.tls_dir(), cert, key)?;
    println!("{fp}");
    Ok(ExitCode::SUCCESS)
}

/// `check`: every problem of the group files once, on standard output, then what of the data
/// directory other users may read or write; fails when a group file has an error (warnings
/// alone do not).
pub fn check(data: &DataDir) -> anyhow::Result<ExitCode> {
    if !data.groups_dir().is_dir() {
        bail!(
            "{} has no groups folder; is it an imagecast data directory?",
            data.root().display()
        );
    }
    let snap = GroupDir::new(data.groups_dir())
        .without_logging()
        .snapshot()?;
    let mut errors = 0;
    for p in snap.problems() {
        println!("{}", esc(&p.to_string()));
        if !p.is_warning() {
            errors += 1;
        }
    }
    // Like ssh with a private key: what others may read is said, not refused.
    for open in data.open_to_others() {
        println!("{}", esc(&open.to_string()));
    }
    // Files read in another encoding than UTF-8 say so (they are written back in it).
    let files = snap.all().into_iter().chain(
        snap.groups()
            .iter()
            .filter_map(|row| snap.file(&row.file_name)),
    );
    for file in files {
        if file.encoding() != TextEncoding::Utf8 {
            eprintln!(
                "{}: read as {}; registrations are written back in {}",
                esc(file.file_name()),
                file.encoding().name(),
                file.encoding().name()
            );
        }
    }
    let groups = snap.groups().len();
    if errors > 0 {
        eprintln!("{errors} problem(s) in the group files; {groups} group(s) usable");
        Ok(ExitCode::FAILURE)
    } else {
        eprintln!("{groups} group(s), all files valid");
        Ok(ExitCode::SUCCESS)
    }
}
