//! FIG. 9, 10 and 12: the table of group names, every destination, and file problems.

use imagecast_shared::RequestId;
use imagecast_shared::msg::{Destination, ErrorCode, ErrorInfo, GroupEntry, ServerMsg};

use super::{Session, error};
use crate::groups::GroupSnapshot;

impl Session {
    pub(super) async fn snapshot(&self) -> Result<std::sync::Arc<GroupSnapshot>, ErrorInfo> {
        self.state.group_snapshot().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the group files");
            error(
                ErrorCode::Internal,
                None,
                "the server cannot read its group files; the administrator has been told",
            )
        })
    }

    pub(super) async fn list_groups(
        &self,
        id: RequestId,
        for_registration: bool,
    ) -> Result<ServerMsg, ErrorInfo> {
        let snap = self.snapshot().await?;
        let rows: Vec<_> = if for_registration {
            snap.groups_for_registration().collect()
        } else {
            snap.groups().iter().collect()
        };
        let groups = rows
            .into_iter()
            .map(|row| GroupEntry {
                name: row.group.clone(),
                file: row.file_name.clone(),
                members: snap
                    .group(&row.group)
                    .map_or(0, |f| f.member_count() as u32),
            })
            .collect();
        Ok(ServerMsg::Groups { id, groups })
    }

    /// The groups (registrable ones, in FIG. 18's order) this terminal is a member of.
    pub(super) async fn memberships(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        let snap = self.snapshot().await?;
        let domain = &self.device.domain;
        let groups = snap
            .groups_for_registration()
            .filter(|row| snap.group(&row.group).is_some_and(|f| f.contains(domain)))
            .map(|row| row.group.clone())
            .collect();
        Ok(ServerMsg::Memberships { id, groups })
    }

    pub(super) async fn list_destinations(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        let snap = self.snapshot().await?;
        let all = snap.all().ok_or_else(|| {
            error(
                ErrorCode::GroupFileBroken,
                None,
                "all.rec (all distribution destinations) is missing or unusable on the server",
            )
        })?;
        let destinations = all
            .members()
            .map(|m| Destination {
                domain: m.domain.to_string(),
                name: m.name.to_string(),
            })
            .collect();
        Ok(ServerMsg::Destinations { id, destinations })
    }

    pub(super) async fn problems(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        let snap = self.snapshot().await?;
        let problems = snap.problems().iter().map(ToString::to_string).collect();
        Ok(ServerMsg::Problems { id, problems })
    }
}
