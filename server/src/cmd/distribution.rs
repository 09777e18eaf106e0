//! FIG. 3 and 4: a terminal uploads an image with its destination information; the server
//! stores it durably, resolves the destinations and answers "accepted".

use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::limits::{MAX_PAGE_BYTES, MAX_PAGES};
use imagecast_shared::msg::{
    Accepted, BeginDistribution, Destination, ErrorCode, ErrorInfo, ServerMsg,
};
use imagecast_shared::{DistributionId, RequestId};

use super::{Session, check_name, error};
use crate::delivery;
use crate::groups::{Unresolved, domain_key, resolve_destinations};
use crate::state::UploadClaim;
use crate::store::pages;
use crate::store::queue::{self, NewDistribution};
use crate::store::spool::{SpoolError, Upload, UploadError};

/// Most uploads one connection may have open at once.
const MAX_OPEN_UPLOADS: usize = 4;

/// How long a terminal's new connection waits for its older one to let go of an upload it
/// takes over (the older one is dropped at once; this covers its winding down).
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// An upload in progress on a connection. Dropping it unfinished removes its spooled pages;
/// dropping it lets go of its claim.
pub struct UploadState {
    request: BeginDistribution,
    destinations: Vec<Destination>,
    upload: Option<Upload>,
    failed: Option<ErrorInfo>,
    _claim: UploadClaim,
}

/// The error reply for destinations that do not resolve.
fn unresolved(e: Unresolved) -> ErrorInfo {
    let code = match e {
        Unresolved::UnknownGroup { .. } => ErrorCode::UnknownGroup,
        Unresolved::UnknownDomain { .. } => ErrorCode::UnknownDomain,
        Unresolved::NoDestinations => ErrorCode::NoDestinations,
    };
    error(code, e.field().as_deref(), e.to_string())
}

fn check_page_name(i: usize, name: &str) -> Result<(), ErrorInfo> {
    let field = format!("pages[{i}].name");
    check_name(&field, name)?;
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(error(
            ErrorCode::BadRequest,
            Some(&field),
            format!("page name {name:?} must be a plain file name without directories"),
        ));
    }
    Ok(())
}

fn validate(req: &BeginDistribution) -> Result<(), ErrorInfo> {
    if req.pages.is_empty() {
        return Err(error(
            ErrorCode::BadRequest,
            Some("pages"),
            "an image needs at least one page",
        ));
    }
    if req.pages.len() > MAX_PAGES {
        return Err(error(
            ErrorCode::TooLarge,
            Some("pages"),
            format!("{} pages; the limit is {MAX_PAGES}", req.pages.len()),
        ));
    }
    for (i, p) in req.pages.iter().enumerate() {
        check_page_name(i, &p.name)?;
        if p.size > MAX_PAGE_BYTES {
            return Err(error(
                ErrorCode::TooLarge,
                Some(&format!("pages[{i}].size")),
                format!(
                    "page {} is {} bytes; the limit is {MAX_PAGE_BYTES}",
                    i + 1,
                    p.size
                ),
            ));
        }
    }
    for (i, g) in req.groups.iter().enumerate() {
        check_name(&format!("groups[{i}]"), g)?;
    }
    for (i, d) in req.destinations.iter().enumerate() {
        check_name(&format!("destinations[{i}]"), d)?;
    }
    if req.groups.is_empty() && req.destinations.is_empty() {
        return Err(error(
            ErrorCode::NoDestinations,
            Some("groups"),
            "name at least one group or destination",
        ));
    }
    Ok(())
}

fn storage_error(e: impl std::fmt::Display) -> ErrorInfo {
    tracing::error!(error = %e, "cannot store an upload");
    error(
        ErrorCode::Storage,
        None,
        "the server could not store the image; nothing was accepted",
    )
}

impl Session {
    pub(super) async fn begin(
        &mut self,
        id: RequestId,
        req: BeginDistribution,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_user("distributing an image")?;
        validate(&req)?;
        if self.uploads.contains_key(&id) {
            return Err(error(
                ErrorCode::OutOfOrder,
                None,
                format!("request ID {id} already names an upload on this connection"),
            ));
        }
        if self.uploads.len() >= MAX_OPEN_UPLOADS {
            return Err(error(
                ErrorCode::TooLarge,
                None,
                format!("at most {MAX_OPEN_UPLOADS} uploads may be open on one connection"),
            ));
        }
        let dist = req.dist;
        // Claimed first: a commit of the same distribution holds the claim until it is done,
        // so the check below sees every commit that can happen.
        // Every return below before the upload is stored lets go of the claim (it drops).
        let claim = self.claim(dist).await?;
        let previous = self
            .state
            .db
            .call(move |c| queue::accepted(c, &dist))
            .await
            .map_err(storage_error)?;
        if let Some(previous) = previous {
            return self.already_accepted(id, dist, previous);
        }
        let snap = self.snapshot().await?;
        let destinations =
            resolve_destinations(&snap, &self.device.domain, &req.groups, &req.destinations)
                .map_err(unresolved)?;
        let sizes: Vec<u64> = req.pages.iter().map(|p| p.size).collect();
        let upload = self
            .state
            .spool
            .begin(dist, &sizes)
            .map_err(storage_error)?;
        self.uploads.insert(
            id,
            UploadState {
                request: req,
                destinations,
                upload: Some(upload),
                failed: None,
                _claim: claim,
            },
        );
        Ok(ServerMsg::UploadReady { id })
    }

    /// The answer to a distribution this terminal's earlier connection already committed.
    fn already_accepted(
        &mut self,
        id: RequestId,
        dist: DistributionId,
        previous: (String, Vec<Destination>),
    ) -> Result<ServerMsg, ErrorInfo> {
        let (sender, destinations) = previous;
        if domain_key(&sender) != domain_key(&self.device.domain) {
            return Err(error(
                ErrorCode::BadRequest,
                Some("dist"),
                format!("distribution ID {dist} belongs to another terminal"),
            ));
        }
        self.watch_dist(dist);
        Ok(ServerMsg::Accepted {
            id,
            accepted: Accepted {
                dist,
                destinations,
                duplicate: true,
            },
        })
    }

    /// Claims the upload of `dist` for this connection. An older connection of the same
    /// terminal that still holds it is dropped: the terminal is retrying after losing that
    /// connection, which the server may not have noticed yet (it would after two heartbeat
    /// intervals). Refused when another terminal uploads the same distribution ID, when this
    /// connection already does, or when the older connection does not let go in time.
    async fn claim(&mut self, dist: DistributionId) -> Result<UploadClaim, ErrorInfo> {
        let key = domain_key(&self.device.domain).into_owned();
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        loop {
            let (holder, holder_key) = match self.state.claim_upload(dist, &self.conn, &key) {
                Ok(claim) => return Ok(claim),
                Err(held) => held,
            };
            let refuse = |why: String| Err(error(ErrorCode::OutOfOrder, Some("dist"), why));
            if holder.id == self.conn.id {
                return refuse(format!(
                    "distribution {dist} is already being uploaded on this connection"
                ));
            }
            if holder_key != key {
                return refuse(format!(
                    "distribution {dist} is being uploaded on another connection"
                ));
            }
            if !holder.is_cancelled() {
                tracing::info!(
                    %dist,
                    device = %self.device.domain,
                    old = holder.id,
                    new = self.conn.id,
                    "the terminal uploads again on a new connection; dropping the older one"
                );
                holder.cancel();
            }
            if tokio::time::Instant::now() >= deadline {
                return refuse(format!(
                    "distribution {dist} is still being uploaded on an older connection; \
                     try again in a moment"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) fn page_data(
        &mut self,
        upload: RequestId,
        page: u32,
        offset: u64,
        data: Bytes,
    ) -> Result<(), ErrorInfo> {
        let Some(state) = self.uploads.get_mut(&upload) else {
            return Err(error(
                ErrorCode::OutOfOrder,
                Some("upload"),
                format!("page data for upload {upload}, which is not open"),
            ));
        };
        if state.failed.is_some() {
            return Ok(());
        }
        let Some(up) = state.upload.as_mut() else {
            return Ok(());
        };
        if let Err(e) = up.write(page, offset, data) {
            let info = match e {
                UploadError::OutOfOrder(m) => error(ErrorCode::OutOfOrder, Some("offset"), m),
                UploadError::TooLong(m) => error(ErrorCode::TooLarge, Some("data"), m),
                UploadError::Spool(e) => storage_error(e),
            };
            state.failed = Some(info.clone());
            state.upload = None;
            return Err(info);
        }
        Ok(())
    }

    pub(super) async fn commit(
        &mut self,
        id: RequestId,
        upload: RequestId,
    ) -> Result<ServerMsg, ErrorInfo> {
        let Some(mut st) = self.uploads.remove(&upload) else {
            return Err(error(
                ErrorCode::OutOfOrder,
                Some("upload"),
                format!("commit of upload {upload}, which is not open"),
            ));
        };
        let dist = st.request.dist;
        let result = self.commit_upload(&mut st).await;
        // The claim was held until the commit was on disk; now it goes.
        drop(st);
        let destinations = result?;
        tracing::info!(
            %dist,
            sender = %self.device.domain,
            destinations = destinations.len(),
            "distribution accepted"
        );
        Ok(ServerMsg::Accepted {
            id,
            accepted: Accepted {
                dist,
                destinations,
                duplicate: false,
            },
        })
    }

    async fn commit_upload(&mut self, st: &mut UploadState) -> Result<Vec<Destination>, ErrorInfo> {
        if let Some(e) = st.failed.take() {
            return Err(e);
        }
        let Some(upload) = st.upload.take() else {
            return Err(error(
                ErrorCode::OutOfOrder,
                None,
                "the upload was already closed",
            ));
        };
        if !upload.complete() {
            return Err(error(
                ErrorCode::OutOfOrder,
                Some("upload"),
                format!(
                    "the upload is incomplete: {} bytes are missing",
                    upload.remaining()
                ),
            ));
        }
        let dist = st.request.dist;
        let files = st.request.pages.len();
        let spool = self.state.spool.clone();
        // The journal counts pages, not files: a multi-page TIFF is read for its page count
        // once it is durable.
        let (image, page_count) = tokio::task::spawn_blocking(move || {
            let image = upload.finish()?;
            let pages = (0..files)
                .map(|i| pages::count(&spool.page_path(&dist, i)))
                .fold(0u32, u32::saturating_add);
            Ok::<_, SpoolError>((image, pages))
        })
        .await
        .map_err(storage_error)?
        .map_err(storage_error)?;
        let user = self.user.as_ref().map(|u| u.0.clone()).unwrap_or_default();
        let new = NewDistribution {
            dist,
            sender: Destination {
                domain: self.device.domain.clone(),
                name: self.device.name.clone(),
            },
            user,
            pages: st.request.pages.clone(),
            page_count,
            destinations: st.destinations.clone(),
        };
        if let Err(e) = self.state.db.call(move |c| queue::insert(c, &new)).await {
            let _ = self.state.spool.remove(&dist);
            return Err(storage_error(e));
        }
        self.state.images.insert(dist, image);
        self.watch_dist(dist);
        delivery::wake(
            &self.state,
            st.destinations.iter().map(|d| d.domain.as_str()),
        );
        Ok(std::mem::take(&mut st.destinations))
    }

    fn watch_dist(&mut self, dist: DistributionId) {
        self.state.watchers.watch(dist, self.conn.clone());
        if !self.watching.contains(&dist) {
            self.watching.push(dist);
        }
    }

    pub(super) async fn watch(
        &mut self,
        id: RequestId,
        dist: DistributionId,
    ) -> Result<ServerMsg, ErrorInfo> {
        let found = self
            .state
            .db
            .call(move |c| queue::accepted(c, &dist))
            .await
            .map_err(storage_error)?;
        let Some((sender, _)) = found else {
            return Err(error(
                ErrorCode::UnknownDistribution,
                Some("dist"),
                format!("no distribution {dist} on this server"),
            ));
        };
        if domain_key(&sender) != domain_key(&self.device.domain)
            && !matches!(self.user, Some((_, imagecast_shared::msg::Role::Admin)))
        {
            return Err(error(
                ErrorCode::Forbidden,
                Some("dist"),
                "only the sending terminal or an administrator may follow this distribution",
            ));
        }
        self.watch_dist(dist);
        let destinations = self
            .state
            .db
            .call(move |c| queue::status(c, &dist))
            .await
            .map_err(storage_error)?;
        Ok(ServerMsg::DistributionStatus {
            id,
            dist,
            destinations,
        })
    }
}
