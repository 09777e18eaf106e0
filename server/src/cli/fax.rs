//! The network-fax supervisor's admin commands: `fax …` (priority, client routes, delivery
//! rules, gateway settings, records, policy, export and import), `grouping …`, `phonebook …`,
//! `competence …` and `user home`. They work on the data directory's database directly, like
//! `device add`; each change runs in one transaction. Listings print one item a line (text a
//! terminal or an operator wrote is escaped) or, with `--json`, one JSON array.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use imagecast_shared::text::escape as esc;
use serde_json::json;

use crate::fax::competence::{self, Competence};
use crate::fax::delivery::{self, Match};
use crate::fax::grouping::{self, Member};
use crate::fax::phonebook::{self, Visibility};
use crate::fax::records::{self, Filter};
use crate::fax::{Party, homes, policy, priority, settings, transfer};
use crate::store::datadir::DataDir;
use crate::store::files;

/// `--json`: print one JSON array (or object) instead of lines.
#[derive(Args, Clone, Copy)]
pub(super) struct Json {
    /// Print one JSON value instead of one line per item.
    #[arg(long)]
    json: bool,
}

/// `imagecast-server fax …`.
#[derive(Subcommand)]
pub(super) enum FaxCmd {
    /// The priority table: the gateways in the order the supervisor tries them.
    #[command(subcommand)]
    Priority(PriorityCmd),
    /// Per-client routes: a device or a user and the only gateways it uses, in order.
    #[command(subcommand, name = "client-route")]
    ClientRoute(ClientRouteCmd),
    /// The delivery table: where received faxes go, first matching rule first.
    #[command(subcommand)]
    Delivery(DeliveryCmd),
    /// A gateway's settings, versioned; a change is pending until the gateway applies it.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// The communication records, one per call attempt, oldest first.
    Records {
        /// Only the last N.
        #[arg(long)]
        last: Option<usize>,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Only through this gateway.
        #[arg(long)]
        gateway: Option<String>,
        /// In HylaFAX's xferfaxlog format (tab-separated).
        #[arg(long, conflicts_with = "json")]
        xferfaxlog: bool,
        #[command(flatten)]
        json: Json,
    },
    /// The retry policy (max-dials, max-tries, busy-retry-s, no-answer-retry-s, ...).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Write the supervisor's settings to a TOML file (- for standard output).
    Export {
        /// The file to write.
        file: PathBuf,
    },
    /// Replace the supervisor's settings with a TOML file's, all or nothing.
    Import {
        /// The file to read.
        file: PathBuf,
    },
}

/// `fax priority …`.
#[derive(Subcommand)]
pub(super) enum PriorityCmd {
    /// Set the table (no gateway: every gateway, in domain order).
    Set {
        /// Fax gateways' domains, the first tried first.
        gateways: Vec<String>,
    },
    /// Print the table, one gateway a line.
    List {
        #[command(flatten)]
        json: Json,
    },
}

/// `fax client-route …`.
#[derive(Subcommand)]
pub(super) enum ClientRouteCmd {
    /// Route a client (a device domain or a user ID) through these gateways only.
    Set {
        /// A device's domain or a user ID.
        client: String,
        /// Fax gateways' domains, the first tried first.
        #[arg(required = true)]
        gateways: Vec<String>,
    },
    /// Drop a client's route (it uses the priority table again).
    Clear {
        /// A device's domain or a user ID.
        client: String,
    },
    /// Print the routes: client, its kind, its gateways.
    List {
        #[command(flatten)]
        json: Json,
    },
}

/// `fax delivery …`.
#[derive(Subcommand)]
pub(super) enum DeliveryCmd {
    /// Append a rule; prints its number.
    #[command(group(ArgGroup::new("match").required(true)
        .args(["station", "caller", "called", "gateway", "any"])))]
    #[command(group(ArgGroup::new("target").required(true).args(["user", "device"])))]
    Add {
        /// The remote station ID matches this shell pattern (letters in either case).
        #[arg(long)]
        station: Option<String>,
        /// The caller's number matches this shell pattern.
        #[arg(long)]
        caller: Option<String>,
        /// The number called is this one.
        #[arg(long)]
        called: Option<String>,
        /// The fax came in through this gateway.
        #[arg(long)]
        gateway: Option<String>,
        /// Every fax (a default route, last).
        #[arg(long)]
        any: bool,
        /// Deliver to this user's home terminals.
        #[arg(long)]
        user: Option<String>,
        /// Deliver to this terminal.
        #[arg(long)]
        device: Option<String>,
    },
    /// Print the rules: number, match, target.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Remove rule N (as `list` numbers them).
    Remove {
        /// The rule's number.
        n: usize,
    },
}

/// `fax settings …`.
#[derive(Subcommand)]
pub(super) enum SettingsCmd {
    /// Print a gateway's settings as KEY=VALUE lines, after its version lines.
    Show {
        /// The gateway's domain.
        gateway: String,
        #[command(flatten)]
        json: Json,
    },
    /// Change settings (KEY=VALUE each, all or none); prints the new version.
    Set {
        /// The gateway's domain.
        gateway: String,
        /// station-id, number, lines, resolution, coding, error-correction, dial-prefix,
        /// tagline, max-pages, network, destination.
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
    },
}

/// `fax policy …`.
#[derive(Subcommand)]
pub(super) enum PolicyCmd {
    /// Print the policy as KEY=VALUE lines.
    Show {
        #[command(flatten)]
        json: Json,
    },
    /// Change the policy (KEY=VALUE each, all or none).
    Set {
        /// max-dials, max-tries, busy-retry-s, no-answer-retry-s, failed-retry-s,
        /// ring-timeout-s.
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
    },
}

/// `grouping …`.
#[derive(Subcommand)]
pub(super) enum GroupingCmd {
    /// Add an empty grouping.
    Add {
        /// Its name.
        name: String,
    },
    /// Remove a grouping (with the last one gone, nothing is restricted).
    Remove {
        /// Its name.
        name: String,
    },
    /// Print the groupings: name, then its members as KIND:NAME.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Manage a grouping's members.
    #[command(subcommand)]
    Member(MemberCmd),
}

/// `grouping member …`.
#[derive(Subcommand)]
pub(super) enum MemberCmd {
    /// Add a device, a user or a gateway to a grouping.
    Add(MemberArgs),
    /// Take a device, a user or a gateway out of a grouping.
    Remove(MemberArgs),
}

/// A grouping and one member of it.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("member").required(true).args(["device", "user", "gateway"])))]
pub(super) struct MemberArgs {
    /// The grouping's name.
    name: String,
    /// A terminal's domain.
    #[arg(long)]
    device: Option<String>,
    /// A user ID.
    #[arg(long)]
    user: Option<String>,
    /// A fax gateway's domain.
    #[arg(long)]
    gateway: Option<String>,
}

impl MemberArgs {
    /// The grouping's name and the member named.
    fn member(self) -> anyhow::Result<(String, Member)> {
        let m = match (self.device, self.user, self.gateway) {
            (Some(d), ..) => Member::Device(d),
            (_, Some(u), _) => Member::User(u),
            (.., Some(g)) => Member::Gateway(g),
            _ => anyhow::bail!("give --device, --user or --gateway"),
        };
        Ok((self.name, m))
    }
}

/// `phonebook …`.
#[derive(Subcommand)]
pub(super) enum PhonebookCmd {
    /// Add an entry, shared or for some users and terminals.
    #[command(group(ArgGroup::new("visibility").required(true).args(["shared", "for_"])))]
    Add {
        /// Its name (unique).
        #[arg(long)]
        name: String,
        /// Its number: digits, a leading +, spaces or dashes.
        #[arg(long)]
        number: String,
        /// Everyone sees it.
        #[arg(long)]
        shared: bool,
        /// Only this user ID or terminal domain sees it (repeatable).
        #[arg(long = "for", id = "for_", value_name = "USER|DOMAIN", num_args = 1..)]
        for_: Vec<String>,
    },
    /// Print the entries: name, number, who sees them.
    List {
        /// Only the entries this user sees (with --device: at that terminal).
        #[arg(long)]
        user: Option<String>,
        /// Only the entries this terminal sees (with --user: for that user).
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        json: Json,
    },
    /// Remove an entry.
    Remove {
        /// Its name.
        name: String,
    },
}

/// `competence …`.
#[derive(Subcommand)]
pub(super) enum CompetenceCmd {
    /// Grant a competence (send-fax, gateway-settings, supervisor-settings).
    Grant(CompetenceArgs),
    /// Revoke a competence (send-fax is everyone's until revoked).
    Revoke(CompetenceArgs),
    /// Print the grants and revocations: user, competence, granted or revoked, where.
    List {
        #[command(flatten)]
        json: Json,
    },
}

/// `USER COMPETENCE [--device D]`.
#[derive(Args)]
pub(super) struct CompetenceArgs {
    /// The user ID.
    user: String,
    /// send-fax, gateway-settings or supervisor-settings.
    competence: String,
    /// Only at this terminal.
    #[arg(long)]
    device: Option<String>,
}

/// Runs `f` in one transaction, committed only when it succeeds. `IMMEDIATE`: it takes the
/// write lock first (waiting for a running server's batch), so a read-then-write never finds
/// its snapshot stale.
fn in_tx<T>(
    data: &DataDir,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, crate::fax::FaxError>,
) -> anyhow::Result<T> {
    let mut conn = data.connect()?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context("cannot begin a transaction")?;
    let out = f(&tx)?;
    tx.commit().context("cannot commit")?;
    Ok(out)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string(value)?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `fax …`.
pub(super) fn run(data: &DataDir, cmd: FaxCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        FaxCmd::Priority(PriorityCmd::Set { gateways }) => {
            let set = in_tx(data, |c| priority::set(c, &gateways))?;
            if set.is_empty() {
                eprintln!("the priority table is empty: every gateway is tried, in domain order");
            } else {
                eprintln!("priority: {}", set.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Priority(PriorityCmd::List { json }) => {
            let list = priority::list(&data.connect()?)?;
            if json.json {
                return print_json(&json!(list));
            }
            for g in list {
                println!("{}", esc(&g));
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::ClientRoute(ClientRouteCmd::Set { client, gateways }) => {
            let (who, set) = in_tx(data, |c| {
                let who = Party::resolve(c, &client)?;
                let set = priority::set_client(c, &who, &gateways)?;
                Ok((who, set))
            })?;
            eprintln!("{} sends through {}", who.describe(), set.join(" "));
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::ClientRoute(ClientRouteCmd::Clear { client }) => {
            let (who, had) = in_tx(data, |c| {
                let who = Party::resolve(c, &client)?;
                let had = priority::clear_client(c, &who)?;
                Ok((who, had))
            })?;
            if !had {
                anyhow::bail!("{} has no client route", who.describe());
            }
            eprintln!("{} uses the priority table again", who.describe());
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::ClientRoute(ClientRouteCmd::List { json }) => {
            let routes = priority::client_routes(&data.connect()?)?;
            if json.json {
                let v: Vec<_> = routes
                    .iter()
                    .map(|r| json!({"client": r.client.name(), "kind": r.client.kind(), "gateways": r.gateways}))
                    .collect();
                return print_json(&json!(v));
            }
            for r in routes {
                println!(
                    "{}\t{}\t{}",
                    esc(r.client.name()),
                    r.client.kind(),
                    esc(&r.gateways.join(" "))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Delivery(DeliveryCmd::Add {
            station,
            caller,
            called,
            gateway,
            any: _,
            user,
            device,
        }) => {
            let m = match (station, caller, called, gateway) {
                (Some(p), ..) => Match::Station(p),
                (_, Some(p), ..) => Match::Caller(p),
                (_, _, Some(n), _) => Match::Called(n),
                (.., Some(g)) => Match::Gateway(g),
                _ => Match::Any,
            };
            let target = match (user, device) {
                (Some(u), _) => Party::User(u),
                (_, Some(d)) => Party::Device(d),
                (None, None) => anyhow::bail!("give --user USER or --device DOMAIN"),
            };
            let n = in_tx(data, |c| delivery::add(c, m, target))?;
            println!("{n}");
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Delivery(DeliveryCmd::List { json }) => {
            let rules = delivery::list(&data.connect()?)?;
            if json.json {
                let v: Vec<_> = rules
                    .iter()
                    .map(|r| {
                        json!({"n": r.n, "match": r.matches.kind(), "value": r.matches.value(),
                               "target_kind": r.target.kind(), "target": r.target.name()})
                    })
                    .collect();
                return print_json(&json!(v));
            }
            for r in rules {
                let m = match &r.matches {
                    Match::Any => "any".to_owned(),
                    m => format!("{} {}", m.kind(), esc(m.value())),
                };
                println!("{}\t{m}\t{}", r.n, esc(&r.target.describe()));
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Delivery(DeliveryCmd::Remove { n }) => {
            let rule = in_tx(data, |c| delivery::remove(c, n))?;
            eprintln!(
                "removed rule {n} ({} {} -> {})",
                rule.matches.kind(),
                esc(rule.matches.value()),
                esc(&rule.target.describe())
            );
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Settings(SettingsCmd::Show { gateway, json }) => {
            let v = settings::show(&data.connect()?, &gateway)?;
            if json.json {
                return print_json(&serde_json::to_value(&v)?);
            }
            println!("version={}", v.version);
            println!("applied-version={}", v.applied_version);
            println!("pending={}", if v.pending { "yes" } else { "no" });
            for (k, value) in v.settings.to_pairs() {
                println!("{k}={}", esc(&value));
            }
            match &v.announced {
                None => println!("announced=never (the gateway has not connected)"),
                Some(a) => {
                    println!("announced-number={}", esc(&a.number));
                    println!("announced-station={}", esc(&a.station));
                    println!("announced-lines={}", a.lines);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Settings(SettingsCmd::Set {
            gateway,
            assignments,
        }) => {
            let v = in_tx(data, |c| settings::set(c, &gateway, &assignments))?;
            println!("{}", v.version);
            if v.pending {
                eprintln!(
                    "{}: settings version {} is pending until the gateway applies it (it has version {})",
                    v.gateway, v.version, v.applied_version
                );
            } else {
                eprintln!("{}: nothing changed (version {})", v.gateway, v.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Records {
            last,
            user,
            gateway,
            xferfaxlog,
            json,
        } => {
            let gateway = gateway.map(|g| imagecast_shared::domain::domain_key(&g).into_owned());
            let recs = records::query(
                &data.connect()?,
                &Filter {
                    last: last.unwrap_or(0),
                    user,
                    gateway,
                    ..Filter::default()
                },
            )?;
            if json.json {
                return print_json(&serde_json::to_value(&recs)?);
            }
            for rec in recs {
                if xferfaxlog {
                    println!("{}", records::xferfaxlog_line(&rec));
                    continue;
                }
                let r = &rec.record;
                let at = std::time::UNIX_EPOCH + Duration::from_millis(r.at_ms.max(0) as u64);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    humantime::format_rfc3339_seconds(at),
                    r.direction.as_str(),
                    esc(&r.user),
                    esc(&r.terminal),
                    esc(&r.gateway),
                    esc(&r.number),
                    esc(&r.station),
                    r.pages,
                    r.duration_ms.div_ceil(1000),
                    r.coding.as_str(),
                    r.speed,
                    r.result.as_str(),
                    esc(&r.reason),
                    esc(&r.job),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Policy(PolicyCmd::Show { json }) => {
            let p = policy::get(&data.connect()?)?;
            if json.json {
                return print_json(&serde_json::to_value(&p)?);
            }
            for (k, v) in p.to_pairs() {
                println!("{k}={v}");
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Policy(PolicyCmd::Set { assignments }) => {
            in_tx(data, |c| policy::set(c, &assignments))?;
            eprintln!("policy changed");
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Export { file } => {
            let text = transfer::to_toml(&transfer::export(&data.connect()?)?)?;
            if file.as_os_str() == "-" {
                print!("{text}");
            } else {
                files::write_atomic(&file, text.as_bytes())
                    .with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!("wrote the supervisor's settings to {}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            in_tx(data, |c| transfer::import(c, &text))
                .with_context(|| format!("{}: nothing was imported", file.display()))?;
            eprintln!("imported the supervisor's settings from {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `grouping …`.
pub(super) fn grouping(data: &DataDir, cmd: GroupingCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        GroupingCmd::Add { name } => {
            in_tx(data, |c| grouping::add(c, &name))?;
            eprintln!("added grouping {}", esc(&name));
        }
        GroupingCmd::Member(MemberCmd::Add(args)) => {
            let (name, m) = args.member()?;
            in_tx(data, |c| grouping::add_member(c, &name, m))?;
            eprintln!("added a member to grouping {}", esc(&name));
        }
        GroupingCmd::Member(MemberCmd::Remove(args)) => {
            let (name, m) = args.member()?;
            in_tx(data, |c| grouping::remove_member(c, &name, &m))?;
            eprintln!("took a member out of grouping {}", esc(&name));
        }
        GroupingCmd::Remove { name } => {
            in_tx(data, |c| grouping::remove(c, &name))?;
            eprintln!("removed grouping {}", esc(&name));
        }
        GroupingCmd::List { json } => {
            let list = transfer::export(&data.connect()?)?.grouping;
            if json.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            for g in list {
                let members: Vec<String> = g
                    .devices
                    .iter()
                    .map(|d| format!("device:{d}"))
                    .chain(g.users.iter().map(|u| format!("user:{u}")))
                    .chain(g.gateways.iter().map(|gw| format!("gateway:{gw}")))
                    .collect();
                println!("{}\t{}", esc(&g.name), esc(&members.join(" ")));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `phonebook …`.
pub(super) fn phonebook(data: &DataDir, cmd: PhonebookCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PhonebookCmd::Add {
            name,
            number,
            shared,
            for_,
        } => {
            let e = in_tx(data, |c| {
                let visibility = if shared {
                    Visibility::Shared
                } else {
                    Visibility::For(
                        for_.iter()
                            .map(|n| Party::resolve(c, n))
                            .collect::<Result<_, _>>()?,
                    )
                };
                phonebook::add(
                    c,
                    &phonebook::Entry {
                        name,
                        number,
                        visibility,
                    },
                )
            })?;
            eprintln!("added {} ({})", esc(&e.name), esc(&e.number));
        }
        PhonebookCmd::List { user, device, json } => {
            let conn = data.connect()?;
            let mut list = transfer::export(&conn)?.phonebook;
            if user.is_some() || device.is_some() {
                let seen: Vec<String> =
                    phonebook::visible_to(&conn, user.as_deref(), device.as_deref())?
                        .into_iter()
                        .map(|e| e.name)
                        .collect();
                list.retain(|e| seen.contains(&e.name));
            }
            if json.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            for e in list {
                let who = if e.shared {
                    "shared".to_owned()
                } else {
                    let labels: Vec<String> = e
                        .users
                        .iter()
                        .map(|u| format!("user:{u}"))
                        .chain(e.devices.iter().map(|d| format!("device:{d}")))
                        .collect();
                    format!("for {}", labels.join(" "))
                };
                println!("{}\t{}\t{}", esc(&e.name), esc(&e.number), esc(&who));
            }
        }
        PhonebookCmd::Remove { name } => {
            in_tx(data, |c| phonebook::remove(c, &name))?;
            eprintln!("removed {}", esc(&name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `competence …`.
pub(super) fn competence(data: &DataDir, cmd: CompetenceCmd) -> anyhow::Result<ExitCode> {
    let (args, granted) = match cmd {
        CompetenceCmd::Grant(a) => (a, true),
        CompetenceCmd::Revoke(a) => (a, false),
        CompetenceCmd::List { json } => {
            let list = competence::list(&data.connect()?)?;
            if json.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            for e in list {
                println!(
                    "{}\t{}\t{}\t{}",
                    esc(&e.user),
                    e.competence.as_str(),
                    if e.granted { "granted" } else { "revoked" },
                    esc(e.device.as_deref().unwrap_or("everywhere"))
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let comp = Competence::parse(&args.competence)?;
    let e = in_tx(data, |c| {
        competence::set(c, &args.user, comp, args.device.as_deref(), granted)
    })?;
    let place = e.device.map(|d| format!(" at {d}")).unwrap_or_default();
    let (verb, prep) = if granted {
        ("granted", "to")
    } else {
        ("revoked", "from")
    };
    eprintln!("{verb} {} {prep} {}{place}", e.competence.as_str(), e.user);
    Ok(ExitCode::SUCCESS)
}

/// Runs `user home USER [DOMAIN...] [--clear] [--json]`: sets the user's home terminals,
/// clears them, or prints them when no domain is given.
pub(super) fn user_home(
    data: &DataDir,
    user: &str,
    devices: &[String],
    clear: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if devices.is_empty() && !clear {
        let conn = data.connect()?;
        let user = crate::fax::require_user(&conn, user)?;
        let homes = homes::of(&conn, &user)?;
        if json {
            return print_json(&json!(homes));
        }
        for d in homes {
            println!("{}", esc(&d));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let h = in_tx(data, |c| homes::set(c, user, devices))?;
    if h.devices.is_empty() {
        eprintln!("{} gets faxes at no terminal", h.user);
    } else {
        eprintln!("{}'s faxes go to {}", h.user, h.devices.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
