//! Requests only an administrator may make: other terminals' registrations, the device list,
//! revoking a device, and the failed logins.

use imagecast_shared::RequestId;
use imagecast_shared::msg::{
    DeviceInfo, ErrorCode, ErrorInfo, RegisterOutcome, ServerMsg, WithdrawOutcome,
};

use super::registration::group_error;
use super::{Session, check_name, error};
use crate::groups::{Registration, Withdrawal};
use crate::store::auth::{self, AuthError};
use crate::store::db::{DbError, now_ms};

fn db_error(e: DbError) -> ErrorInfo {
    tracing::error!(error = %e, "database error");
    error(
        ErrorCode::Storage,
        None,
        "the server's database failed; nothing changed",
    )
}

impl Session {
    pub(super) async fn admin_register(
        &mut self,
        id: RequestId,
        group: String,
        domain: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("registering another terminal")?;
        check_name("group", &group)?;
        check_name("domain", &domain)?;
        let outcome = match self
            .state
            .rec_writer
            .register(&group, &domain)
            .await
            .map_err(group_error)?
        {
            Registration::Added { .. } => RegisterOutcome::Added,
            Registration::AlreadyMember { .. } => RegisterOutcome::AlreadyMember,
        };
        tracing::info!(admin = ?self.user, %domain, %group, ?outcome, "registration by an administrator");
        Ok(ServerMsg::Registered { id, group, outcome })
    }

    pub(super) async fn admin_withdraw(
        &mut self,
        id: RequestId,
        group: String,
        domain: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("withdrawing another terminal")?;
        check_name("group", &group)?;
        check_name("domain", &domain)?;
        let outcome = match self
            .state
            .rec_writer
            .withdraw(&group, &domain)
            .await
            .map_err(group_error)?
        {
            Withdrawal::Removed { .. } => WithdrawOutcome::Removed,
            Withdrawal::NotMember { .. } => WithdrawOutcome::NotMember,
        };
        tracing::info!(admin = ?self.user, %domain, %group, ?outcome, "withdrawal by an administrator");
        Ok(ServerMsg::Withdrawn { id, group, outcome })
    }

    pub(super) async fn list_devices(&mut self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("listing devices")?;
        let devices = self.state.db.call(auth::devices).await.map_err(db_error)?;
        let devices = devices
            .into_iter()
            .map(|d| DeviceInfo {
                online: self.state.connections.is_online(&d.domain),
                domain: d.domain,
                name: d.name,
                kind: d.kind,
                revoked: d.revoked,
            })
            .collect();
        Ok(ServerMsg::Devices { id, devices })
    }

    pub(super) async fn revoke(
        &mut self,
        id: RequestId,
        domain: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("revoking a device")?;
        check_name("domain", &domain)?;
        let d = domain.clone();
        let result = self
            .state
            .db
            .call(move |c| match auth::revoke_device(c, &d) {
                Ok(()) => Ok(Ok(())),
                Err(AuthError::Missing(m)) => Ok(Err(m)),
                Err(e) => Err(DbError::from(e)),
            })
            .await
            .map_err(db_error)?;
        if let Err(missing) = result {
            return Err(error(
                ErrorCode::UnknownDomain,
                Some("domain"),
                format!("{missing}: no such device"),
            ));
        }
        // At once, not a second later through the account events: every connection whose
        // token was checked before now used the revoked token (a later check is refused).
        let dropped = self.state.connections.drop_device(&domain, now_ms());
        tracing::warn!(admin = ?self.user, %domain, dropped, "device token revoked");
        Ok(ServerMsg::Ok { id })
    }

    pub(super) async fn failed_logins(
        &mut self,
        id: RequestId,
        last: u32,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("reading the failed logins")?;
        let n = last.clamp(1, 1000);
        let entries = self
            .state
            .db
            .call(move |c| auth::failed_logins(c, n))
            .await
            .map_err(db_error)?;
        Ok(ServerMsg::FailedLogins { id, entries })
    }
}
