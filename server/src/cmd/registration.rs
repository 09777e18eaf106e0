//! Section 2.3 and claim 1: a terminal registers itself with a group, or withdraws.

use imagecast_shared::RequestId;
use imagecast_shared::msg::{ErrorCode, ErrorInfo, RegisterOutcome, ServerMsg, WithdrawOutcome};

use super::{Session, check_name, error};
use crate::groups::{GroupError, Registration, Withdrawal};

/// The reply for a group error; server-side paths stay in the log.
pub fn group_error(e: GroupError) -> ErrorInfo {
    let code = match &e {
        GroupError::UnknownGroup(_) => ErrorCode::UnknownGroup,
        GroupError::UnknownDomain(_) => ErrorCode::UnknownDomain,
        GroupError::NotRegistrable(_) => ErrorCode::NotRegistrable,
        GroupError::MissingAll | GroupError::Malformed(_) => ErrorCode::GroupFileBroken,
        GroupError::InvalidMember(_) => ErrorCode::BadRequest,
        GroupError::ConcurrentEdit(_) => ErrorCode::Storage,
        GroupError::Io { .. } => {
            tracing::error!(error = %e, "group file write failed");
            return error(
                ErrorCode::Storage,
                None,
                "the server could not write the group file; nothing was changed",
            );
        }
        GroupError::Interrupted(_) => ErrorCode::Internal,
    };
    error(code, None, e.to_string())
}

impl Session {
    pub(super) async fn register(
        &mut self,
        id: RequestId,
        group: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_user("registering with a group")?;
        check_name("group", &group)?;
        let outcome = self
            .state
            .rec_writer
            .register(&group, &self.device.domain)
            .await
            .map_err(group_error)?;
        let outcome = match outcome {
            Registration::Added { .. } => RegisterOutcome::Added,
            Registration::AlreadyMember { .. } => RegisterOutcome::AlreadyMember,
        };
        tracing::info!(device = %self.device.domain, %group, ?outcome, "registration");
        Ok(ServerMsg::Registered { id, group, outcome })
    }

    pub(super) async fn withdraw(
        &mut self,
        id: RequestId,
        group: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_user("withdrawing from a group")?;
        check_name("group", &group)?;
        let outcome = self
            .state
            .rec_writer
            .withdraw(&group, &self.device.domain)
            .await
            .map_err(group_error)?;
        let outcome = match outcome {
            Withdrawal::Removed { .. } => WithdrawOutcome::Removed,
            Withdrawal::NotMember { .. } => WithdrawOutcome::NotMember,
        };
        tracing::info!(device = %self.device.domain, %group, ?outcome, "withdrawal");
        Ok(ServerMsg::Withdrawn { id, group, outcome })
    }
}
