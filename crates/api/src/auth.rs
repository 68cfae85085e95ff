//! The auth service's public DTOs and the `KeySource` other services use to verify tokens.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiError;
use crate::users::User;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A successful login or refresh: a bearer access token and an opaque refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Absent for browser clients (`X-Trellis-Session: cookie`): theirs is in the `__Host-` cookie.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    pub user: User,
}

/// One public key of the JWKS (RFC 7517/7518/8037): `kty` `RSA` carries `n` and `e`, `EC` carries
/// `crv` (`P-256`), `x` and `y`, `OKP` carries `crv` (`Ed25519`) and `x`. Public parameters only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    /// The one algorithm this key verifies: RS256, PS256, ES256 or EdDSA.
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Where verifiers get the public keys that access tokens are signed with.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn jwks(&self) -> Result<Jwks, ApiError>;
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// One login session of the caller (docs/API.md `GET /auth/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: time::OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// True for the session the request was made with.
    pub current: bool,
}

/// Whether a session may still be used; the auth service's database is the truth. Every token
/// verifier asks (through a cache) on every request, so a logout takes effect at once.
#[async_trait]
pub trait SessionStatus: Send + Sync {
    async fn session_active(&self, session_id: uuid::Uuid) -> Result<bool, ApiError>;
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    pub token: String,
}

/// RFC 7662 introspection answer: only `active` when the token is not (or no longer) valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::users::Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// The answer to a correct password when the account has 2FA on: no token yet, only a
/// short-lived `mfa_token` that `POST /auth/login/mfa` alone accepts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MfaRequired {
    /// Always true.
    pub mfa_required: bool,
    pub mfa_token: String,
    /// Seconds until the `mfa_token` expires.
    pub expires_in: u64,
}

/// What `POST /auth/login` answers: tokens, or a second-factor challenge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    MfaRequired(MfaRequired),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    pub mfa_token: String,
    /// A current TOTP code, or one of the recovery codes.
    pub code: String,
}

/// A new, not yet enabled TOTP seed: shown once, for the authenticator app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// The seed in base32.
    pub secret: String,
    pub otpauth_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnableRequest {
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpEnabled {
    /// Ten single-use recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
}

/// Body of `POST /auth/mfa/totp/disable`: the current password as `password` (its first name) or
/// `current_password`, or for an account without a password a current code as `current_code`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_code: Option<String>,
}

impl TotpDisableRequest {
    pub fn proof(&self) -> Option<StepUpProof> {
        let password = self.current_password.as_deref().or(self.password.as_deref());
        StepUpProof::from_fields(password, self.current_code.as_deref())
    }
}

impl std::fmt::Debug for TotpDisableRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpDisableRequest").finish_non_exhaustive()
    }
}

/// A single-use token from a mailed link (`POST /auth/email/verify`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset link.
    pub token: String,
    pub new_password: String,
}

/// Why every session of a user is being ended by another service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    RoleChanged,
    StatusChanged,
}

impl SessionEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEndReason::RoleChanged => "role_changed",
            SessionEndReason::StatusChanged => "status_changed",
        }
    }
}

/// Body of the internal call that ends every session of a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessionsRequest {
    pub user_id: uuid::Uuid,
    pub reason: SessionEndReason,
}

/// Answer of that call: how many sessions it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndSessionsResponse {
    pub ended: u32,
}

/// Body of the internal call that checks a user's password before a sensitive change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordCheck {
    pub user_id: uuid::Uuid,
    pub password: String,
}

/// Body of the internal call made after a user's email address changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChanged {
    pub user_id: uuid::Uuid,
    /// The address before the change, to tell its owner (normalized).
    pub old_email: String,
}

/// A fresh proof given with a sensitive request (step-up, docs/SECURITY.md AZ/PW): the caller's
/// current password, or, for an account without a password, a second-factor code (TOTP or a
/// recovery code). Having signed in recently never counts: a stolen access token is recent too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepUpProof {
    Password(String),
    Code(String),
}

impl StepUpProof {
    /// The proof a request body carries in `current_password` (or the older `password`) or
    /// `current_code`; None when it carries none (then the answer is 403 `step_up_required`).
    pub fn from_fields(password: Option<&str>, code: Option<&str>) -> Option<StepUpProof> {
        match (password.filter(|p| !p.is_empty()), code.map(str::trim).filter(|c| !c.is_empty())) {
            (Some(p), _) => Some(StepUpProof::Password(p.to_string())),
            (None, Some(c)) => Some(StepUpProof::Code(c.to_string())),
            (None, None) => None,
        }
    }
}

impl std::fmt::Debug for StepUpProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepUpProof::Password(_) => f.write_str("Password(<redacted>)"),
            StepUpProof::Code(_) => f.write_str("Code(<redacted>)"),
        }
    }
}

/// Body of the internal call that checks a step-up proof (`SessionsApi::verify_step_up`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpCheck {
    pub user_id: uuid::Uuid,
    pub proof: Option<StepUpProof>,
    /// The address of the client that gave the proof: failures count against it as well, as a
    /// login's do (trusted from the calling service only, which the internal route enforces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<std::net::IpAddr>,
}

/// Body of the internal call that asks for a user's email to change once the new address is
/// verified (`SessionsApi::request_email_change`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    pub user_id: uuid::Uuid,
    /// The new address, already parsed and normalized by the users service.
    pub new_email: String,
    /// Who asks: the user themself or an administrator.
    pub actor_id: uuid::Uuid,
}

/// Body of `POST /auth/email/change/confirm` and `/undo`: the token from the mailed link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeToken {
    pub token: String,
}

/// Body of the step-up-guarded second-factor routes (`/auth/mfa/totp/setup`,
/// `/auth/mfa/recovery-codes`, `/auth/users/{id}/mfa/reset`): the caller's current password, or
/// for an account without one a current second-factor code.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_code: Option<String>,
}

impl StepUpRequest {
    pub fn proof(&self) -> Option<StepUpProof> {
        StepUpProof::from_fields(self.current_password.as_deref(), self.current_code.as_deref())
    }
}

impl std::fmt::Debug for StepUpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpRequest").finish_non_exhaustive()
    }
}

/// What the users service asks of the auth service: it ends a user's sessions when an
/// administrator changes the user's role or status, re-checks a password before an erasure, and
/// has the new address of a changed email verified.
#[async_trait]
pub trait SessionsApi: Send + Sync {
    /// Ends every session of the user at once: revoked in the auth database (with an event in
    /// the same transaction), then published to the shared cache so that the user's access
    /// tokens stop working in every service. Returns how many sessions ended.
    async fn end_all_sessions(&self, user_id: uuid::Uuid, reason: SessionEndReason) -> Result<u32, ApiError>;
    /// `Ok` when `password` is the user's; `Unauthorized` otherwise. A wrong password counts as a
    /// failed login (the same delays and limits apply, `RateLimited` once they do).
    async fn check_password(&self, user_id: uuid::Uuid, password: &str) -> Result<(), ApiError>;
    /// The user's email changed (the users service has already stored it, unverified): spends
    /// outstanding verification links, mails a new one to the new address, and tells the old
    /// address that it was replaced.
    async fn email_changed(&self, user_id: uuid::Uuid, old_email: &str) -> Result<(), ApiError>;
    /// Step-up (docs/ARCHITECTURE.md "Step-up"): `Ok` when `proof` is a fresh proof of the user
    /// `user_id` (their current password; for an account without a password, a current TOTP or
    /// recovery code). `StepUpRequired` without a proof, `StepUpFailed` when wrong: a wrong proof
    /// counts exactly as a failed login, against the account and the client's address
    /// `client_ip` (same throttles; `RateLimited` once one blocks).
    async fn verify_step_up(
        &self,
        user_id: uuid::Uuid,
        proof: Option<&StepUpProof>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        let _ = client_ip;
        match proof {
            None => Err(ApiError::StepUpRequired),
            Some(StepUpProof::Password(p)) => self.check_password(user_id, p).await.map_err(|e| match e {
                ApiError::Unauthorized => ApiError::StepUpFailed,
                e => e,
            }),
            Some(StepUpProof::Code(_)) => Err(ApiError::StepUpFailed),
        }
    }
    /// A verified user asks (or an administrator asks for them) that their email become
    /// `new_email`: nothing changes yet; a link that applies the change is mailed to the new
    /// address. The answer is the same whether or not the address is taken (then no link is
    /// mailed, and its owner gets a notice instead).
    async fn request_email_change(&self, req: &EmailChangeRequest) -> Result<(), ApiError> {
        let _ = req;
        Err(ApiError::Unavailable("email changes are not supported by this auth service".into()))
    }
}
