//! Network fax requests: a gateway's announcement, progress and results; a
//! terminal's send, status, gateway and record requests. The work is
//! [`crate::fax::dispatch`]'s; this checks the fields and who asks.

use std::sync::Arc;

use imagecast_shared::RequestId;
use imagecast_shared::domain::domain_key;
use imagecast_shared::fax::{
    FaxEvent, FaxFile, FaxGatewayInfo, FaxRequest, FaxUpload, MAX_SUPERVISOR_FILE_BYTES,
    MAX_UPLOADED_JOB_BYTES,
};
use imagecast_shared::msg::{DeviceKind, ErrorCode, ErrorInfo, Role, ServerMsg};

use super::{Session, check_name, error};
use crate::fax::competence::{self, Competence};
use crate::fax::dispatch::{self, NewJob};
use crate::fax::{
    self as faxdb, FaxError, phonebook, priority, reception, records, settings, transfer,
};

/// The most bytes of files one fax job may carry (its files travel in one frame).
pub use imagecast_shared::fax::MAX_JOB_BYTES;

fn fax_error(e: FaxError) -> ErrorInfo {
    match e {
        FaxError::Refused(m) => error(ErrorCode::Forbidden, None, m),
        FaxError::Db(d) => error(ErrorCode::Storage, None, d.to_string()),
        other => error(ErrorCode::BadRequest, None, other.to_string()),
    }
}

/// The files of a job: inline, or uploaded before in chunks.
enum JobFiles {
    Inline(Vec<FaxFile>),
    Uploaded(Vec<FaxUpload>),
}

impl JobFiles {
    fn names(&self) -> Vec<&str> {
        match self {
            JobFiles::Inline(f) => f.iter().map(|f| f.name.as_str()).collect(),
            JobFiles::Uploaded(f) => f.iter().map(|f| f.name.as_str()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            JobFiles::Inline(f) => f.is_empty(),
            JobFiles::Uploaded(f) => f.is_empty(),
        }
    }
}

/// The uploads folder name of a terminal (gateways' are their domains).
fn terminal_uploads(domain: &str) -> String {
    format!("@{}", domain_key(domain))
}

fn reply(event: FaxEvent) -> Option<ServerMsg> {
    Some(ServerMsg::Fax(event))
}

impl Session {
    fn require_gateway_conn(&self) -> Result<String, ErrorInfo> {
        if self.device.kind != DeviceKind::FaxGateway {
            return Err(error(
                ErrorCode::Forbidden,
                None,
                format!(
                    "{} is not a fax gateway: it is a device of kind {}",
                    self.device.domain,
                    self.device.kind.as_str()
                ),
            ));
        }
        Ok(domain_key(&self.device.domain).into_owned())
    }

    pub(super) async fn fax(&mut self, req: FaxRequest) -> Result<Option<ServerMsg>, ErrorInfo> {
        match req {
            FaxRequest::Gateway {
                id,
                number,
                station,
                lines,
            } => {
                let domain = self.require_gateway_conn()?;
                let (gw, n, st) = (domain.clone(), number.clone(), station);
                faxdb::call(&self.state.db, move |c| {
                    settings::record_announcement(c, &gw, &n, &st, lines)
                })
                .await
                .map_err(fax_error)?;
                self.state.fax.attach(&domain, &self.conn, &number, lines);
                tracing::info!(gateway = %domain, lines, "fax gateway online");
                Ok(Some(ServerMsg::Ok { id }))
            }
            FaxRequest::Progress {
                job,
                number,
                attempt,
                stage,
            } => {
                if let Ok(domain) = self.require_gateway_conn() {
                    dispatch::progress(&self.state, &domain, job, number, attempt, stage).await;
                }
                Ok(None)
            }
            FaxRequest::Result { id, result } => {
                let domain = self.require_gateway_conn()?;
                dispatch::result(&self.state, &domain, result)
                    .await
                    .map_err(fax_error)?;
                Ok(Some(ServerMsg::Ok { id }))
            }
            FaxRequest::Send {
                id,
                job,
                numbers,
                books,
                fine,
                files,
            } => {
                self.fax_send(id, job, numbers, books, fine, JobFiles::Inline(files))
                    .await
            }
            FaxRequest::SendUploaded {
                id,
                job,
                numbers,
                books,
                fine,
                files,
            } => {
                self.fax_send(id, job, numbers, books, fine, JobFiles::Uploaded(files))
                    .await
            }
            FaxRequest::JobPart {
                id,
                job,
                file,
                offset,
            } => {
                let domain = self.require_gateway_conn()?;
                let data = dispatch::job_part(&self.state, &domain, &job, file, offset)
                    .await
                    .map_err(fax_error)?;
                Ok(reply(FaxEvent::JobPart { id, data }))
            }
            FaxRequest::Status { id, job } => {
                let (user, admin) = self.fax_user("fax status")?;
                let rows = faxdb::call(&self.state.db, move |c| {
                    if job.is_empty() {
                        dispatch::recent_rows(c, (!admin).then_some(user.as_str()), 50)
                    } else {
                        let rows = dispatch::job_rows(c, &job)?;
                        if rows.is_empty() || (!admin && rows.iter().any(|r| r.user != user)) {
                            return Err(FaxError::Missing(format!(
                                "no fax job {job} of user {user}"
                            )));
                        }
                        Ok(rows)
                    }
                })
                .await
                .map_err(fax_error)?;
                Ok(reply(FaxEvent::Status {
                    id,
                    numbers: rows.iter().map(dispatch::JobRow::status).collect(),
                }))
            }
            FaxRequest::Gateways { id } => {
                let all = faxdb::call(&self.state.db, priority::gateways)
                    .await
                    .map_err(fax_error)?;
                let online = self.state.fax.online();
                let gateways = all
                    .into_iter()
                    .map(|domain| {
                        let o = online.get(&domain).cloned();
                        FaxGatewayInfo {
                            online: o.is_some(),
                            lines: o.as_ref().map_or(0, |x| x.0),
                            in_use: o.as_ref().map_or(0, |x| x.1),
                            number: o.map(|x| x.2).unwrap_or_default(),
                            domain,
                        }
                    })
                    .collect();
                Ok(reply(FaxEvent::Gateways { id, gateways }))
            }
            FaxRequest::Chunk {
                id,
                upload,
                offset,
                total,
                data,
            } => {
                let owner = self.upload_owner()?;
                let root = self.state.data.root().to_owned();
                tokio::task::spawn_blocking(move || {
                    reception::chunk(&root, &owner, &upload, offset, total, &data)
                })
                .await
                .map_err(|e| error(ErrorCode::Internal, None, e.to_string()))?
                .map_err(fax_error)?;
                Ok(Some(ServerMsg::Ok { id }))
            }
            FaxRequest::Received { id, fax } => {
                let domain = self.require_gateway_conn()?;
                let rc = fax.reception.clone();
                let stored = reception::store(&self.state, &domain, fax)
                    .await
                    .map_err(fax_error)?;
                Ok(reply(FaxEvent::ReceivedStored {
                    id,
                    reception: rc,
                    duplicate: stored.duplicate,
                }))
            }
            FaxRequest::SettingsApplied {
                id,
                version,
                stored_only,
            } => {
                let domain = self.require_gateway_conn()?;
                let gw = domain.clone();
                faxdb::call(&self.state.db, move |c| {
                    settings::acknowledge(c, &gw, version)
                })
                .await
                .map_err(fax_error)?;
                tracing::info!(gateway = %domain, version, stored_only = ?stored_only, "gateway applied its settings");
                Ok(Some(ServerMsg::Ok { id }))
            }
            FaxRequest::SettingsShow { id, gateway } => {
                let (user, _) = self.fax_user("reading gateway settings")?;
                let device = domain_key(&self.device.domain).into_owned();
                let v = faxdb::call(&self.state.db, move |c| {
                    settings::show_by(c, &user, Some(&device), &gateway)
                })
                .await
                .map_err(fax_error)?;
                Ok(reply(FaxEvent::SettingsInfo {
                    id,
                    settings: settings::to_wire(&v),
                }))
            }
            FaxRequest::SettingsSet {
                id,
                gateway,
                assignments,
            } => {
                let (user, _) = self.fax_user("changing gateway settings")?;
                let device = domain_key(&self.device.domain).into_owned();
                if assignments.len() > 64 {
                    return Err(error(
                        ErrorCode::TooLarge,
                        Some("assignments"),
                        "at most 64 KEY=VALUE at once",
                    ));
                }
                let v = faxdb::call(&self.state.db, move |c| {
                    settings::set_by(c, &user, Some(&device), &gateway, &assignments)
                })
                .await
                .map_err(fax_error)?;
                self.state.fax.wake();
                Ok(reply(FaxEvent::SettingsInfo {
                    id,
                    settings: settings::to_wire(&v),
                }))
            }
            FaxRequest::PhoneBook { id } => {
                let (user, _) = self.fax_user("reading the phone book")?;
                let device = domain_key(&self.device.domain).into_owned();
                let entries = faxdb::call(&self.state.db, move |c| {
                    phonebook::visible_to(c, Some(&user), Some(&device))
                })
                .await
                .map_err(fax_error)?;
                Ok(reply(FaxEvent::PhoneBook {
                    id,
                    entries: entries.iter().map(phonebook::to_wire).collect(),
                }))
            }
            FaxRequest::SupervisorShow { id } => {
                let (user, _) = self.fax_user("reading the supervisor's settings")?;
                let device = domain_key(&self.device.domain).into_owned();
                let (file, version) = faxdb::call(&self.state.db, move |c| {
                    competence::check(c, &user, Some(&device), Competence::SupervisorSettings)?;
                    transfer::current(c)
                })
                .await
                .map_err(fax_error)?;
                Ok(reply(FaxEvent::Supervisor { id, file, version }))
            }
            FaxRequest::SupervisorSet { id, file, version } => {
                let (user, _) = self.fax_user("changing the supervisor's settings")?;
                if file.len() > MAX_SUPERVISOR_FILE_BYTES {
                    return Err(error(
                        ErrorCode::TooLarge,
                        Some("file"),
                        format!(
                            "the settings file has {} bytes; at most {MAX_SUPERVISOR_FILE_BYTES}",
                            file.len()
                        ),
                    ));
                }
                let device = domain_key(&self.device.domain).into_owned();
                let (file, version) = faxdb::call(&self.state.db, move |c| {
                    competence::check(c, &user, Some(&device), Competence::SupervisorSettings)?;
                    transfer::replace_at(c, &file, &version)
                })
                .await
                .map_err(fax_error)?;
                tracing::info!(%version, "the supervisor's settings were replaced from a terminal");
                self.state.fax.wake();
                Ok(reply(FaxEvent::Supervisor { id, file, version }))
            }
            FaxRequest::Records { id, last } => {
                let (user, admin) = self.fax_user("fax records")?;
                let recs = faxdb::call(&self.state.db, move |c| {
                    records::query(
                        c,
                        &records::Filter {
                            user: (!admin).then_some(user),
                            last: last.clamp(1, 10_000) as usize,
                            ..Default::default()
                        },
                    )
                })
                .await
                .map_err(fax_error)?;
                Ok(reply(FaxEvent::Records {
                    id,
                    records: recs.iter().map(dispatch::record_info).collect(),
                }))
            }
        }
    }

    /// Whose uploads a chunk belongs to: a gateway's (received faxes) or, for a user's
    /// connection, the terminal's (`@DOMAIN`: files of a large job).
    fn upload_owner(&self) -> Result<String, ErrorInfo> {
        if self.device.kind == DeviceKind::FaxGateway {
            return self.require_gateway_conn();
        }
        self.require_user("uploading a fax job's files")?;
        Ok(terminal_uploads(&self.device.domain))
    }

    fn fax_user(&self, what: &str) -> Result<(String, bool), ErrorInfo> {
        let user = self.require_user(what)?.to_owned();
        let admin = matches!(self.user, Some((_, Role::Admin)));
        Ok((user, admin))
    }

    async fn fax_send(
        &mut self,
        id: RequestId,
        job: String,
        numbers: Vec<String>,
        books: Vec<String>,
        fine: bool,
        files: JobFiles,
    ) -> Result<Option<ServerMsg>, ErrorInfo> {
        let user = self.require_user("sending a fax")?.to_owned();
        check_name("job", &job)?;
        if job.len() > 64
            || !job
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(error(
                ErrorCode::BadRequest,
                Some("job"),
                "a job ID is at most 64 letters, digits, - and _",
            ));
        }
        if files.is_empty() {
            return Err(error(
                ErrorCode::BadRequest,
                Some("files"),
                "a fax needs at least one file",
            ));
        }
        for (i, name) in files.names().iter().enumerate() {
            check_name(&format!("files[{i}].name"), name)?;
        }
        let (total, limit) = match &files {
            JobFiles::Inline(f) => (
                f.iter().map(|f| f.data.len() as u64).sum::<u64>(),
                MAX_JOB_BYTES as u64,
            ),
            JobFiles::Uploaded(f) => (
                f.iter().map(|f| f.bytes).fold(0u64, u64::saturating_add),
                MAX_UPLOADED_JOB_BYTES,
            ),
        };
        if total > limit {
            return Err(error(
                ErrorCode::TooLarge,
                Some("files"),
                format!("the files are {total} bytes; a fax job carries at most {limit}"),
            ));
        }
        if numbers.is_empty() && books.is_empty() {
            return Err(error(
                ErrorCode::BadRequest,
                Some("numbers"),
                "a fax needs at least one number or phone-book entry",
            ));
        }
        if let JobFiles::Uploaded(f) = &files {
            let root = self.state.data.root();
            let owner = terminal_uploads(&self.device.domain);
            for (i, up) in f.iter().enumerate() {
                reception::check_id(&up.upload).map_err(fax_error)?;
                let len = std::fs::metadata(reception::part_path(root, &owner, &up.upload))
                    .map(|m| m.len())
                    .ok();
                if len != Some(up.bytes) {
                    return Err(error(
                        ErrorCode::BadRequest,
                        Some(&format!("files[{i}]")),
                        format!(
                            "upload {} holds {} bytes, not {}: send its chunks first",
                            up.upload,
                            len.unwrap_or(0),
                            up.bytes
                        ),
                    ));
                }
            }
        }
        let device = domain_key(&self.device.domain).into_owned();
        let (u, d, j) = (user.clone(), device.clone(), job.clone());
        // Competence, numbers, phone book, a gateway to go through, and a duplicate.
        let checked = faxdb::call(&self.state.db, move |c| {
            competence::check(c, &u, Some(&d), Competence::SendFax)?;
            let existing = dispatch::job_rows(c, &j)?;
            if !existing.is_empty() {
                if existing.iter().any(|r| r.user != u) {
                    return Err(FaxError::Exists(format!("fax job {j} is another user's")));
                }
                return Ok((existing.into_iter().map(|r| r.number).collect(), true));
            }
            let mut out: Vec<String> = Vec::new();
            for n in &numbers {
                out.push(faxdb::validate_number(n)?);
            }
            for b in &books {
                out.push(phonebook::lookup(c, b, Some(&u), Some(&d))?.number);
            }
            let mut seen = std::collections::HashSet::new();
            out.retain(|n| seen.insert(faxdb::normalize_number(n)));
            if priority::candidates(c, Some(&d), Some(&u))?.is_empty() {
                return Err(FaxError::Refused(priority::explain_none(
                    c,
                    Some(&d),
                    Some(&u),
                )?));
            }
            Ok((out, false))
        })
        .await
        .map_err(fax_error)?;
        let (numbers, duplicate) = checked;
        if duplicate {
            if let JobFiles::Uploaded(f) = &files {
                let owner = terminal_uploads(&self.device.domain);
                for up in f {
                    let _ = std::fs::remove_file(reception::part_path(
                        self.state.data.root(),
                        &owner,
                        &up.upload,
                    ));
                }
            }
            return Ok(reply(FaxEvent::Accepted {
                id,
                job,
                numbers,
                duplicate: true,
            }));
        }
        let root = self.state.data.root().to_owned();
        let j = job.clone();
        let uploads = terminal_uploads(&self.device.domain);
        let names = tokio::task::spawn_blocking(move || match &files {
            JobFiles::Inline(f) => dispatch::store_files(&root, &j, f),
            JobFiles::Uploaded(f) => dispatch::store_uploaded(&root, &j, &uploads, f),
        })
        .await
        .map_err(|e| error(ErrorCode::Internal, None, e.to_string()))?
        .map_err(|e| error(ErrorCode::Storage, None, format!("{e:#}")))?;
        let new = NewJob {
            job: job.clone(),
            numbers: numbers.clone(),
            user,
            device,
            fine,
            files: names,
        };
        faxdb::call(&self.state.db, move |c| dispatch::insert_job(c, &new))
            .await
            .map_err(fax_error)?;
        tracing::info!(%job, numbers = numbers.len(), "fax job accepted");
        let state = Arc::clone(&self.state);
        state.fax.wake();
        Ok(reply(FaxEvent::Accepted {
            id,
            job,
            numbers,
            duplicate: false,
        }))
    }
}
