//! The TOTP second factor (docs/SECURITY.md C): enrolment, removal, and the login step that follows a
//! correct password for an account that has it on.
//!
//! A correct password yields only an opaque `mfa_token` (stored hashed, 5 minutes, 5 attempts,
//! single use) that `POST /auth/login/mfa` alone accepts; it is not a JWT, so it can never pass
//! as an access token (TO-6). Wrong codes count per account in the database with the login
//! delays (5 free, then 30 s doubling to an hour, TO-4); after 100 in a row TOTP codes are no
//! longer accepted and only a recovery code gets in (and resets the count).

use std::net::IpAddr;
use std::time::Duration;

use api::auth::{MfaRequired, StepUpProof, TokenResponse, TotpEnabled, TotpSetup};
use api::users::{Role, User, UserStatus};
use api::{ApiError, FieldError};
use platform::bus::Event;
use platform::crypto::{random_token, sha256};
use platform::identity::Identity;
use serde_json::json;
use uuid::Uuid;

use super::email::Notice;
use super::{AuthError, AuthService, ClientInfo};
use crate::domain;
use crate::ports::MfaChallenge;
use crate::totp::{self, TotpSecret};

/// How long an `mfa_token` lasts.
pub const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Wrong codes one `mfa_token` takes before it dies (the account-wide delays still apply).
pub const MFA_TOKEN_ATTEMPTS: u32 = 5;
/// Consecutive wrong codes after which TOTP codes are refused and only a recovery code works.
pub const TOTP_LOCK_AFTER: u32 = 100;

/// The issuer shown in authenticator apps.
const TOTP_ISSUER: &str = "Trellis";

fn aad(user_id: Uuid) -> Vec<u8> {
    format!("auth_totp:{user_id}").into_bytes()
}

/// A six-digit code is a TOTP code; anything else is tried as a recovery code.
pub(super) fn is_totp_code(code: &str) -> bool {
    let code = code.trim();
    code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

impl AuthService {
    pub(super) fn open_totp(&self, user_id: Uuid, sealed: &[u8]) -> Result<TotpSecret, AuthError> {
        let raw = self
            .settings
            .key_encryption_key
            .open(sealed, &aad(user_id))
            .map_err(|_| ApiError::Internal("a TOTP seed cannot be opened".into()))?;
        let bytes: [u8; totp::SECRET_LEN] =
            raw.as_slice().try_into().map_err(|_| ApiError::Internal("a TOTP seed has the wrong length".into()))?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    /// Refuses with `Throttled` while the account's second-factor failures say wait.
    pub(super) async fn check_mfa_throttle(&self, user_id: Uuid) -> Result<u32, AuthError> {
        let now = self.clock.now();
        match self.store.failures(self.settings.hasher.mfa_key(user_id)).await? {
            Some(f) if f.blocked_until > now => {
                metrics::counter!("trellis_mfa_throttled_total").increment(1);
                Err(AuthError::Throttled(u64::try_from((f.blocked_until - now).whole_seconds()).unwrap_or(1).max(1)))
            }
            Some(f) => Ok(f.consecutive),
            None => Ok(0),
        }
    }

    pub(super) async fn record_mfa_failure(&self, user_id: Uuid) -> Result<u32, AuthError> {
        let key = self.settings.hasher.mfa_key(user_id);
        Ok(self.store.record_failure(key, self.clock.now(), domain::login_delay).await?)
    }

    /// Starts enrolment after a step-up proof of the caller: a new seed, stored sealed and not
    /// yet enabled, shown once. Enabling needs a code of this seed, which only this answer
    /// reveals, so the proof given here covers the whole enrolment.
    pub async fn totp_setup(
        &self,
        caller: &Identity,
        proof: Option<&StepUpProof>,
        ip: Option<IpAddr>,
    ) -> Result<TotpSetup, AuthError> {
        if self.has_second_factor(caller.user_id).await? {
            return Err(AuthError::Conflict("2FA is already enabled"));
        }
        self.verify_step_up(caller.user_id, proof, ip).await?;
        let user = self.users.get_user(caller.user_id).await?;
        let secret = TotpSecret::generate();
        let sealed = self.settings.key_encryption_key.seal(secret.as_bytes(), &aad(user.id));
        match self.store.put_pending_totp(user.id, &sealed, self.clock.now()).await {
            Ok(()) => {}
            Err(platform::db::StoreError::Conflict(_)) => return Err(AuthError::Conflict("2FA is already enabled")),
            Err(e) => return Err(e.into()),
        }
        Ok(TotpSetup { otpauth_uri: totp::otpauth_uri(&secret, TOTP_ISSUER, &user.email), secret: secret.to_base32() })
    }

    /// Confirms enrolment with a valid code from the new seed; returns the recovery codes, which
    /// are stored only as hashes. A wrong code counts against the account's second factor and
    /// against the client's address `ip`, as at the login.
    pub async fn totp_enable(
        &self,
        caller: &Identity,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<TotpEnabled, AuthError> {
        let user_id = caller.user_id;
        if let Some(wait) = self.ip_throttle.blocked(ip).await {
            return Err(AuthError::Throttled(wait));
        }
        self.check_mfa_throttle(user_id).await?;
        let row = match self.store.totp(user_id).await? {
            Some(row) if row.enabled_at.is_none() => row,
            Some(_) => return Err(AuthError::Conflict("2FA is already enabled")),
            None => return Err(AuthError::Conflict("start with POST /auth/mfa/totp/setup")),
        };
        let secret = self.open_totp(user_id, &row.secret)?;
        let Some(step) = totp::verify(&secret, code, self.clock.now().unix_timestamp(), None) else {
            self.ip_throttle.record_failure(ip).await;
            self.record_mfa_failure(user_id).await?;
            return Err(ApiError::Invalid(vec![FieldError::new("code", "is not the current code")]).into());
        };
        let codes = totp::new_recovery_codes();
        let hashes: Vec<[u8; 32]> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
        let event = self.session_event("auth.mfa_enabled", caller);
        if !self.store.enable_totp(user_id, step, &hashes, self.clock.now(), &event).await? {
            return Err(AuthError::Conflict("2FA is already enabled"));
        }
        self.wake_relay();
        self.store.clear_failures(self.settings.hasher.mfa_key(user_id)).await?;
        self.users.set_mfa_enabled(user_id, true).await?;
        tracing::info!(user_id = %user_id, "2FA enabled");
        match self.users.get_user(user_id).await {
            Ok(user) => self.notify(&user, Notice::SecondFactorEnabled),
            Err(e) => tracing::warn!(user_id = %user_id, error = %e, "could not notify about 2FA"),
        }
        Ok(TotpEnabled { recovery_codes: codes })
    }

    /// Removes the factor after a step-up proof (the password; a code for an account without
    /// one), which is throttled like a login.
    pub async fn totp_disable(
        &self,
        caller: &Identity,
        proof: Option<&StepUpProof>,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let user = self.users.get_user(caller.user_id).await?;
        self.verify_step_up(user.id, proof, ip).await?;
        let event = self.session_event("auth.mfa_disabled", caller);
        if !self.store.disable_totp(user.id, &event).await? {
            return Err(AuthError::Conflict("2FA is not enabled"));
        }
        self.wake_relay();
        self.users.set_mfa_enabled(user.id, false).await?;
        tracing::info!(user_id = %user.id, "2FA disabled");
        self.notify(&user, Notice::SecondFactorDisabled);
        Ok(())
    }

    /// Ten new recovery codes after a step-up proof; the old ones die in the same transaction.
    /// Shown once; the owner is told by mail.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Identity,
        proof: Option<&StepUpProof>,
        ip: Option<IpAddr>,
    ) -> Result<TotpEnabled, AuthError> {
        let user_id = caller.user_id;
        if !self.has_second_factor(user_id).await? {
            return Err(AuthError::Conflict("2FA is not enabled"));
        }
        self.verify_step_up(user_id, proof, ip).await?;
        let codes = totp::new_recovery_codes();
        let hashes: Vec<[u8; 32]> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
        let event = self.session_event("auth.recovery_codes_regenerated", caller);
        if !self.store.replace_recovery_codes(user_id, &hashes, &event).await? {
            return Err(AuthError::Conflict("2FA is not enabled"));
        }
        self.wake_relay();
        tracing::info!(%user_id, "recovery codes regenerated");
        match self.users.get_user(user_id).await {
            Ok(user) => self.notify(&user, Notice::RecoveryCodesRegenerated),
            Err(e) => tracing::warn!(%user_id, error = %e, "could not notify about new recovery codes"),
        }
        Ok(TotpEnabled { recovery_codes: codes })
    }

    /// An administrator removes another user's second factor (a lost phone), after the
    /// administrator's own step-up proof: the seed and recovery codes go, every session of the
    /// user ends (a session may have been the attacker's), the event `auth.mfa_reset` names the
    /// administrator as actor (the audit log records it), and the user is told by mail.
    pub async fn admin_reset_mfa(
        &self,
        caller: &Identity,
        user_id: Uuid,
        proof: Option<&StepUpProof>,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden.into());
        }
        let user = self.users.get_user(user_id).await?;
        self.verify_step_up(caller.user_id, proof, ip).await?;
        let now = self.clock.now();
        let event = Event::new(
            "auth.mfa_reset",
            user_id,
            Some(caller.user_id),
            now,
            json!({ "user_id": user_id, "admin_id": caller.user_id }),
        );
        if !self.store.disable_totp(user_id, &event).await? {
            return Err(AuthError::Conflict("2FA is not enabled"));
        }
        self.wake_relay();
        self.users.set_mfa_enabled(user_id, false).await?;
        self.store.clear_failures(self.settings.hasher.mfa_key(user_id)).await?;
        let ended = Event::new(
            "auth.sessions_ended",
            user_id,
            Some(caller.user_id),
            now,
            json!({ "user_id": user_id, "reason": "mfa_reset" }),
        );
        let revoked = self.revoke(user_id, None, ended).await?;
        tracing::info!(%user_id, admin_id = %caller.user_id, ended_sessions = revoked.len(), "2FA reset by an administrator");
        self.notify(&user, Notice::SecondFactorReset);
        Ok(())
    }

    /// Whether the account must pass a second factor after its password.
    pub(super) async fn has_second_factor(&self, user_id: Uuid) -> Result<bool, AuthError> {
        Ok(self.store.totp(user_id).await?.is_some_and(|t| t.enabled_at.is_some()))
    }

    /// The answer to a correct password when 2FA is on.
    pub(super) async fn mfa_challenge(&self, user: &User, client: ClientInfo) -> Result<MfaRequired, AuthError> {
        let token = random_token();
        let now = self.clock.now();
        let challenge = MfaChallenge {
            token_hash: sha256(token.as_bytes()),
            user_id: user.id,
            user_agent: client.user_agent.map(|ua| ua.chars().take(512).collect()),
            ip: client.ip.map(|ip| ip.to_string()),
            created_at: now,
            expires_at: now + MFA_TOKEN_TTL,
            attempts: 0,
            used_at: None,
        };
        self.store.create_mfa_challenge(&challenge).await?;
        tracing::info!(user_id = %user.id, "password accepted; second factor required");
        Ok(MfaRequired { mfa_required: true, mfa_token: token, expires_in: MFA_TOKEN_TTL.as_secs() })
    }

    /// The second step of a login: a TOTP code (each usable once) or a recovery code.
    pub async fn login_mfa(&self, mfa_token: &str, code: &str, client: ClientInfo) -> Result<TokenResponse, AuthError> {
        if let Some(wait) = self.ip_throttle.blocked(client.ip).await {
            return Err(AuthError::Throttled(wait));
        }
        let now = self.clock.now();
        let token_hash = sha256(mfa_token.as_bytes());
        let Some(challenge) =
            self.store.mfa_challenge(token_hash).await?.filter(|c| c.used_at.is_none() && c.expires_at > now)
        else {
            self.ip_throttle.record_failure(client.ip).await;
            return Err(AuthError::InvalidCredentials);
        };
        let user_id = challenge.user_id;
        let consecutive = self.check_mfa_throttle(user_id).await?;
        if challenge.attempts >= MFA_TOKEN_ATTEMPTS {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(factor) = self.store.totp(user_id).await?.filter(|t| t.enabled_at.is_some()) else {
            return Err(AuthError::InvalidCredentials);
        };
        let user = self.users.get_user(user_id).await?;
        if user.status != UserStatus::Active {
            return Err(AuthError::InvalidCredentials);
        }
        let (accepted, method) = if is_totp_code(code) {
            let step = if consecutive >= TOTP_LOCK_AFTER {
                None
            } else {
                totp::verify(&self.open_totp(user_id, &factor.secret)?, code, now.unix_timestamp(), factor.last_step)
            };
            let accepted = match step {
                Some(step) => self.store.accept_totp_step(user_id, step).await?,
                None => false,
            };
            (accepted, "totp")
        } else {
            (self.store.use_recovery_code(user_id, totp::hash_recovery_code(code), now).await?, "recovery_code")
        };
        if !accepted {
            self.store.fail_mfa_challenge(token_hash).await?;
            self.ip_throttle.record_failure(client.ip).await;
            let failures = self.record_mfa_failure(user_id).await?;
            let event = Event::new(
                "auth.mfa_failed",
                user_id,
                Some(user_id),
                now,
                json!({ "user_id": user_id, "method": method, "consecutive_failures": failures }),
            );
            self.store.record_event(&event).await?;
            self.wake_relay();
            tracing::info!(user_id = %user_id, method, failures, "second factor refused");
            return Err(AuthError::InvalidCredentials);
        }
        self.store.clear_failures(self.settings.hasher.mfa_key(user_id)).await?;
        // The session is the login's: the client details recorded with its password step.
        let client = ClientInfo { user_agent: challenge.user_agent, ip: challenge.ip.and_then(|ip| ip.parse().ok()) };
        let amr = [platform::identity::AMR_PWD, platform::identity::AMR_OTP];
        let (session, refresh_token) = self.new_session(user_id, client, &amr);
        let event = Event::new(
            "auth.login_succeeded",
            user_id,
            Some(user_id),
            now,
            json!({ "user_id": user_id, "session_id": session.id, "second_factor": method }),
        );
        if !self.store.complete_mfa_challenge(token_hash, &session, &event).await? {
            return Err(AuthError::InvalidCredentials);
        }
        self.wake_relay();
        if method == "recovery_code" {
            let left = self.store.unused_recovery_codes(user_id).await?;
            tracing::info!(user_id = %user_id, recovery_codes_left = left, "logged in with a recovery code");
        }
        tracing::info!(user_id = %user_id, session_id = %session.id, "login succeeded (2FA)");
        Ok(self.token_response(user, session.id, &session.amr, refresh_token)?)
    }
}
