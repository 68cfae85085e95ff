//! Step-up: the fresh proof a sensitive change needs in that very request (issue 16; OWASP ASVS
//! 5.0 V6.2/V7.5, NIST SP 800-63B-4 re-authentication).
//!
//! One mechanism for every sensitive change, here and in other services (through
//! `api::auth::SessionsApi::verify_step_up`): the caller's current password, or, for an account
//! without a password, a current second-factor code (a TOTP code, each usable once, or a
//! recovery code, which it spends). Having signed in recently never counts: a stolen access token
//! is recent by definition. No proof: `StepUpRequired` (403 `step_up_required`). A wrong proof:
//! `StepUpFailed` (401 `step_up_failed`), counted exactly as a failed login: a password through
//! `check_password` (the account's login throttle and the client-address budget), a code through
//! the second factor's own counter (the login delays of `domain::login_delay`), so guessing
//! through a step-up route is as slow as guessing at the login.

use std::net::IpAddr;

use api::ApiError;
use api::auth::StepUpProof;
use api::users::UserStatus;
use platform::bus::Event;
use serde_json::json;
use uuid::Uuid;

use super::{AuthError, AuthService};
use crate::totp;

impl AuthService {
    /// `Ok` when `proof` is a fresh proof of `user_id` (see the module). Errors:
    /// `Api(StepUpRequired)` without a proof, `Api(StepUpFailed)` when wrong, `Throttled` while
    /// the account's failures say wait.
    /// A failure counts against the account and against the client's address `ip`, as a failed
    /// login does.
    pub async fn verify_step_up(
        &self,
        user_id: Uuid,
        proof: Option<&StepUpProof>,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        match proof {
            None => Err(ApiError::StepUpRequired.into()),
            Some(StepUpProof::Password(password)) => match self.check_password_from(user_id, password, ip).await {
                Err(AuthError::InvalidCredentials) => Err(ApiError::StepUpFailed.into()),
                other => other,
            },
            Some(StepUpProof::Code(code)) => {
                if let Some(wait) = self.ip_throttle.blocked(ip).await {
                    return Err(AuthError::Throttled(wait));
                }
                let checked = self.check_step_up_code(user_id, code).await;
                if matches!(checked, Err(AuthError::Api(ApiError::StepUpFailed))) {
                    self.ip_throttle.record_failure(ip).await;
                }
                checked
            }
        }
    }

    /// A second-factor code as the proof of an account without a password. An account with a
    /// password must give it: a code alone is refused without being checked.
    async fn check_step_up_code(&self, user_id: Uuid, code: &str) -> Result<(), AuthError> {
        let user = match self.users.get_user(user_id).await {
            Ok(u) => u,
            Err(ApiError::NotFound) => return Err(ApiError::StepUpFailed.into()),
            Err(e) => return Err(e.into()),
        };
        match self.store.password_hash(user_id).await {
            Ok(_) => {
                tracing::info!(%user_id, outcome = "password_account", "step-up code refused: the password is the proof");
                return Err(ApiError::StepUpFailed.into());
            }
            Err(platform::db::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let consecutive = self.check_mfa_throttle(user_id).await?;
        let now = self.clock.now();
        let factor = self.store.totp(user_id).await?.filter(|t| t.enabled_at.is_some());
        let (accepted, method) = match factor {
            None => (false, "none"),
            Some(_) if user.status != UserStatus::Active => (false, "inactive"),
            Some(factor) if super::mfa::is_totp_code(code) => {
                let step = if consecutive >= super::TOTP_LOCK_AFTER {
                    None
                } else {
                    totp::verify(
                        &self.open_totp(user_id, &factor.secret)?,
                        code,
                        now.unix_timestamp(),
                        factor.last_step,
                    )
                };
                let accepted = match step {
                    Some(step) => self.store.accept_totp_step(user_id, step).await?,
                    None => false,
                };
                (accepted, "totp")
            }
            Some(_) => {
                (self.store.use_recovery_code(user_id, totp::hash_recovery_code(code), now).await?, "recovery_code")
            }
        };
        if !accepted {
            let failures = self.record_mfa_failure(user_id).await?;
            let event = Event::new(
                "auth.step_up_failed",
                user_id,
                Some(user_id),
                now,
                json!({ "user_id": user_id, "method": method, "consecutive_failures": failures }),
            );
            self.store.record_event(&event).await?;
            self.wake_relay();
            tracing::info!(%user_id, method, failures, "step-up code refused");
            return Err(ApiError::StepUpFailed.into());
        }
        self.store.clear_failures(self.settings.hasher.mfa_key(user_id)).await?;
        tracing::info!(%user_id, method, "step-up code accepted");
        Ok(())
    }
}
