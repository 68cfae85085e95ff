//! Use cases of the auth service: registration, login and sessions.
//!
//! # Layout
//! - this module: accounts, login, sessions, password change.
//! - `mfa`: the TOTP second factor and the login step that follows a password.
//! - `email`: mailed single-use tokens: email verification, password reset, email change.
//! - `stepup`: the fresh proof (password, or a code) sensitive changes need.
//! - `keyring`: the signing keys, their rotation and retirement.
//! - `personal`: export and erasure of a user's data (`api::personal::PersonalDataApi`).

mod email;
mod keyring;
mod personal;
mod stepup;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::auth::{
    Jwks, KeySource, LoginRequest, LoginResponse, RegisterRequest, SessionEndReason, SessionInfo, SessionStatus,
    SessionsApi, TokenResponse,
};
use api::users::{NewUser, Role, User, UserStatus, UsersApi};
use api::{ApiError, FieldError};
use async_trait::async_trait;
use platform::bus::Event;
use platform::cache::Cache;
use platform::clock::Clock;
use platform::crypto::{SealingKey, random_token, sha256};
use platform::identity::{AMR_PWD, AccessClaims, Identity, session_cache_key};
use platform::mail::Mailer;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain;
use crate::ipthrottle::{ClientBudget, IpThrottle};
use crate::passwords::{HashError, PasswordHasher, Purpose};
use crate::ports::{AuthStore, NewSession, RefreshLookup, SessionRow};

pub use keyring::{
    ALGORITHM_SWITCH_HOLD, KeyInfo, KeyRing, KeySettings, KeyState, RETIRE_LEEWAY, RotationReason,
    spawn_key_maintenance,
};

mod mfa;

pub use email::MAILS_PER_HOUR;
pub use mfa::{MFA_TOKEN_ATTEMPTS, MFA_TOKEN_TTL, TOTP_LOCK_AFTER};

/// Settings of the auth service.
pub struct AuthSettings {
    /// The `iss` of every token, matched exactly by verifiers.
    pub issuer: String,
    /// The `aud` of every token.
    pub audience: String,
    pub access_token_ttl: Duration,
    /// Absolute lifetime of a session (refresh family), however often it is refreshed.
    pub session_lifetime: Duration,
    /// A session unused for this long cannot be refreshed any more.
    pub session_idle_timeout: Duration,
    /// A rotated refresh token presented again within this window is taken for an honest race
    /// (two tabs refreshing at once): refused, but the session survives. Later, it is reuse and
    /// the whole session is revoked. Zero (the default: the web app serializes its refreshes)
    /// revokes at the first reuse (RFC 9700 §4.14.2).
    pub refresh_reuse_grace: Duration,
    pub password_min_len: usize,
    /// Failed credential attempts one client address may make per `ip_failure_window`.
    pub ip_failure_limit: u64,
    pub ip_failure_window: Duration,
    /// Registrations one client address (an IPv6 /64) may attempt per `register_window`, taken
    /// or not, successful or not.
    pub register_limit: u64,
    pub register_window: Duration,
    pub hasher: PasswordHasher,
    /// Seals private signing keys at rest.
    pub key_encryption_key: SealingKey,
    /// Where verification and reset mails go.
    pub mailer: Arc<dyn Mailer>,
    /// The web app's address, without a trailing slash, for links in mails.
    pub public_url: String,
    /// Signing algorithm and key rotation.
    pub keys: KeySettings,
}

/// What can go wrong in auth use cases, beyond `ApiError`s from other services.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("password hashing is saturated")]
    Busy,
    /// Too many failed logins for this account; retry after this many seconds.
    #[error("too many failed logins")]
    Throttled(u64),
    /// The request conflicts with the account's state (2FA already on, say).
    #[error("{0}")]
    Conflict(&'static str),
    /// A mailed token that is unknown, already used or expired.
    #[error("invalid or expired token")]
    BadToken,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Saturated => AuthError::Busy,
            HashError::Failed(m) => AuthError::Api(ApiError::Internal(m)),
        }
    }
}

/// How other services see an auth failure (`SessionsApi` over the local service).
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ApiError::Unauthorized,
            AuthError::Busy => ApiError::Unavailable("password hashing is saturated".into()),
            AuthError::Throttled(secs) => ApiError::RateLimited(secs),
            AuthError::Conflict(detail) => ApiError::Conflict(detail.into()),
            AuthError::BadToken => ApiError::Invalid(vec![FieldError::new("token", "is invalid or expired")]),
            AuthError::Api(e) => e,
        }
    }
}

impl From<platform::db::StoreError> for AuthError {
    fn from(e: platform::db::StoreError) -> Self {
        AuthError::Api(e.into())
    }
}

pub struct AuthService {
    store: Arc<dyn AuthStore>,
    users: Arc<dyn UsersApi>,
    settings: AuthSettings,
    clock: Arc<dyn Clock>,
    keys: KeyRing,
    outbox_waker: Option<Arc<Notify>>,
    /// Where revocations are published for every verifier (the shared cache).
    revocations: Arc<dyn Cache>,
    ip_throttle: IpThrottle,
    register_budget: ClientBudget,
}

/// How one password check counts (see `AuthService::counted_password_check`).
struct Attempt<'a> {
    ip: Option<IpAddr>,
    /// The device cookie the client presented, unverified.
    device: Option<&'a str>,
    purpose: Purpose,
    /// The event of a failure for a known account.
    failed_event: &'static str,
    /// Whether the failure event names the account as its actor (a signed-in caller).
    by_the_user: bool,
}

/// Client details recorded with a session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

impl AuthService {
    /// Builds the service and runs a signing-key maintenance pass: loads the keys, generating the
    /// first one if there is none and rotating if due.
    pub async fn start(
        store: Arc<dyn AuthStore>,
        users: Arc<dyn UsersApi>,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
        outbox_waker: Option<Arc<Notify>>,
        revocations: Arc<dyn Cache>,
    ) -> anyhow::Result<Arc<AuthService>> {
        let svc = Self::without_keys(store, users, settings, clock, outbox_waker, revocations);
        svc.maintain_keys().await?;
        Ok(Arc::new(svc))
    }

    /// Builds the service without touching the signing keys (for `trellis keys`, which acts on
    /// them itself).
    pub fn without_keys(
        store: Arc<dyn AuthStore>,
        users: Arc<dyn UsersApi>,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
        outbox_waker: Option<Arc<Notify>>,
        revocations: Arc<dyn Cache>,
    ) -> AuthService {
        let ip_throttle = IpThrottle::new(revocations.clone(), settings.ip_failure_limit, settings.ip_failure_window);
        let register_budget =
            ClientBudget::new(revocations.clone(), "register", settings.register_limit, settings.register_window);
        AuthService {
            store,
            users,
            settings,
            clock,
            keys: KeyRing::default(),
            outbox_waker,
            revocations,
            ip_throttle,
            register_budget,
        }
    }

    /// How long a session (refresh family) lives at most: the browser cookie's `Max-Age`.
    pub fn session_lifetime(&self) -> std::time::Duration {
        self.settings.session_lifetime
    }

    fn wake_relay(&self) {
        if let Some(w) = &self.outbox_waker {
            w.notify_one();
        }
    }

    /// Self-service registration: always the `user` role (docs/SECURITY.md LG-3, LG-7).
    ///
    /// Each attempt takes one from the client's registration budget first (429 past it). Then
    /// the answer is the same for a new and a taken address: the fields and the password policy
    /// are checked alike, and a taken address answers 201 with a user as a new one would (an id
    /// that exists nowhere), after waiting about as long as the hash it skipped; its owner gets a
    /// mail instead ("someone tried to register with your address"). The password is hashed only
    /// once the address is known to be new, so taken addresses cost no hashing.
    pub async fn register(&self, req: RegisterRequest, ip: Option<IpAddr>) -> Result<User, AuthError> {
        if let Err(wait) = self.register_budget.take(ip).await {
            return Err(AuthError::Throttled(wait));
        }
        let started = std::time::Instant::now();
        domain::check_name(&req.name)
            .map_err(|m| AuthError::Api(ApiError::Invalid(vec![FieldError::new("name", m)])))?;
        self.check_policy("password", &req.password, &req.email, &req.name)?;
        match self.users.find_by_email(&req.email).await {
            Ok(owner) => return Ok(self.registration_of_a_taken_address(owner, &req, started).await),
            Err(ApiError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        match self.create_account(req.clone(), Role::User).await {
            Ok(user) => {
                self.send_verification_after_registration(&user).await;
                Ok(user)
            }
            // Taken between the look-up and the insert: the same answer as a taken address.
            Err(AuthError::Api(ApiError::Conflict(_))) => match self.users.find_by_email(&req.email).await {
                Ok(owner) => Ok(self.registration_of_a_taken_address(owner, &req, started).await),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        }
    }

    /// The answer to a registration with a taken address: what a new account's would be, no
    /// sooner, and a mail to the owner (at most one an hour per account, so that registrations
    /// cannot bomb a mailbox).
    async fn registration_of_a_taken_address(
        &self,
        owner: User,
        req: &RegisterRequest,
        started: std::time::Instant,
    ) -> User {
        // Microseconds, as the users service stores them: the same timestamps as a new account's.
        let now = self.clock.now();
        let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
        let once_an_hour = format!("auth:register-attempt-mail:{}", owner.id);
        match self.revocations.add(&once_an_hour, b"1", Duration::from_secs(3600)).await {
            Ok(false) => tracing::info!(user_id = %owner.id, "registration with a taken address; owner told already"),
            _ => {
                tracing::info!(user_id = %owner.id, "registration with a taken address; owner told");
                self.spawn_mail(
                    registration_attempt_mail(&owner.email, &self.settings.public_url),
                    owner.id,
                    "registration_attempt_notice",
                );
            }
        }
        let pretend = self.settings.hasher.typical_hash_time();
        if let Some(left) = pretend.checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
        User {
            id: platform::ids::new_id(),
            email: domain::normalize_email(&req.email),
            name: req.name.trim().to_string(),
            role: Role::User,
            status: UserStatus::Active,
            email_verified: false,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Makes sure an administrator with this email exists (first start with `TRELLIS_ADMIN_*`);
    /// returns false when the email was already registered, whatever its role (it is never
    /// changed or given a new password here).
    pub async fn ensure_admin(&self, email: &str, password: &str, name: &str) -> Result<bool, AuthError> {
        match self.users.find_by_email(email).await {
            Ok(_) => Ok(false),
            Err(ApiError::NotFound) => {
                let req = RegisterRequest { email: email.into(), password: password.into(), name: name.into() };
                let user = self.create_account(req, Role::Admin).await?;
                tracing::info!(user_id = %user.id, "created the first administrator");
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an account with `role` after the password policy (used by registration, the admin
    /// bootstrap and `trellis admin create-user`).
    /// Applies the password policy; the error names `field`.
    fn check_policy(&self, field: &str, password: &str, email: &str, name: &str) -> Result<(), AuthError> {
        let local_part = email.split('@').next().unwrap_or_default();
        let mut context: Vec<&str> = vec!["trellis", local_part];
        context.extend(name.split_whitespace());
        domain::check_password(password, self.settings.password_min_len, &context)
            .map_err(|r| ApiError::Invalid(vec![FieldError::new(field, format!("{} ({})", r.message, r.code))]).into())
    }

    /// Changes the caller's password after checking the current one; every other session of
    /// the caller ends at once (docs/SECURITY.md PW-7).
    ///
    /// The current password is checked like a login (docs/SECURITY.md LG-1): the account's and
    /// the client address's throttles first, and a wrong one counts for both.
    pub async fn change_password(
        &self,
        caller: &Identity,
        current: &str,
        new: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let user = self.users.get_user(caller.user_id).await?;
        let key = self.settings.hasher.account_key(&domain::normalize_email(&user.email));
        let attempt = Attempt {
            ip,
            device: None,
            purpose: Purpose::Other,
            failed_event: "auth.password_change_failed",
            by_the_user: true,
        };
        match self.counted_password_check(Some(&user), key, current, attempt).await {
            Ok(()) => {}
            Err(AuthError::InvalidCredentials) => {
                return Err(ApiError::Invalid(vec![FieldError::new(
                    "current_password",
                    "is not the current password",
                )])
                .into());
            }
            Err(e) => return Err(e),
        }
        self.check_policy("new_password", new, &user.email, &user.name)?;
        let hash = self.settings.hasher.hash(new).await?;
        let event = self.session_event("auth.password_changed", caller);
        let revoked = self.store.change_password(user.id, &hash, caller.session_id, self.clock.now(), &event).await?;
        self.wake_relay();
        self.publish_revocations(&revoked).await;
        tracing::info!(user_id = %user.id, ended_sessions = revoked.len(), "password changed");
        self.notify(&user, email::Notice::PasswordChanged);
        Ok(())
    }

    pub async fn create_account(&self, req: RegisterRequest, role: Role) -> Result<User, AuthError> {
        self.check_policy("password", &req.password, &req.email, &req.name)?;
        let hash = self.settings.hasher.hash(&req.password).await?;
        let id = platform::ids::new_id();
        let user = self.users.create_user(NewUser { id, email: req.email, name: req.name, role }).await?;
        if let Err(e) = self.store.insert_credential(id, &hash, self.clock.now()).await {
            // Leave no account without a password behind.
            if let Err(cleanup) = self.users.discard_new_user(id).await {
                tracing::error!(user_id = %id, error = %cleanup, "could not discard a half-registered user");
            }
            return Err(e.into());
        }
        tracing::info!(user_id = %id, role = role.as_str(), "user registered");
        Ok(user)
    }

    /// A new session for `user_id` and its first refresh token (not stored yet).
    /// A new session (refresh family) whose sign-in authenticated by `amr` (RFC 8176), which
    /// every access token of it carries.
    fn new_session(&self, user_id: Uuid, client: ClientInfo, amr: &[&str]) -> (NewSession, String) {
        let refresh_token = random_token();
        let now = self.clock.now();
        let session = NewSession {
            id: platform::ids::new_id(),
            user_id,
            refresh_hash: sha256(refresh_token.as_bytes()),
            user_agent: client.user_agent.map(|ua| ua.chars().take(512).collect()),
            ip: client.ip.map(|ip| ip.to_string()),
            created_at: now,
            expires_at: now + self.settings.session_lifetime,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        };
        (session, refresh_token)
    }

    /// Stores a fresh hash at the configured cost when `stored` was made at another one
    /// (docs/SECURITY.md PW-8); a failure here never fails the login.
    async fn rehash_if_needed(&self, user_id: Uuid, password: &str, stored: &str) {
        if !self.settings.hasher.needs_rehash(stored) {
            return;
        }
        let result = async {
            let fresh = self.settings.hasher.hash(password).await?;
            self.store.replace_password_hash(user_id, stored, &fresh, self.clock.now()).await?;
            Ok::<_, AuthError>(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(user_id = %user_id, "password rehashed at the configured cost"),
            Err(e) => tracing::warn!(user_id = %user_id, error = %e, "could not rehash a password"),
        }
    }

    pub async fn login(&self, req: LoginRequest, client: ClientInfo) -> Result<LoginResponse, AuthError> {
        self.login_from_device(req, client, None).await
    }

    /// A login whose client presented `device` (the device cookie, unverified): when it is valid
    /// for this account, the account's lock-out from other clients' failures does not apply, only
    /// the device's own (docs/SECURITY.md LG-1).
    pub async fn login_from_device(
        &self,
        req: LoginRequest,
        client: ClientInfo,
        device: Option<&str>,
    ) -> Result<LoginResponse, AuthError> {
        // Throttling is keyed by the email, known or not, so that it reveals nothing; it is
        // checked before any hashing, and kept in the database.
        let key = self.settings.hasher.account_key(&domain::normalize_email(&req.email));
        let user = match self.users.find_by_email(&req.email).await {
            Ok(u) => Some(u),
            Err(ApiError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let attempt = Attempt {
            ip: client.ip,
            device,
            purpose: Purpose::Login,
            failed_event: "auth.login_failed",
            by_the_user: false,
        };
        self.counted_password_check(user.as_ref(), key, &req.password, attempt).await?;
        let Some(user) = user else { return Err(AuthError::InvalidCredentials) };
        if self.has_second_factor(user.id).await? {
            return Ok(LoginResponse::MfaRequired(self.mfa_challenge(&user, client).await?));
        }
        let now = self.clock.now();
        let (session, refresh_token) = self.new_session(user.id, client, &[AMR_PWD]);
        let event = Event::new(
            "auth.login_succeeded",
            user.id,
            Some(user.id),
            now,
            json!({ "user_id": user.id, "session_id": session.id }),
        );
        self.store.create_session(&session, &event).await?;
        self.wake_relay();
        tracing::info!(user_id = %user.id, session_id = %session.id, "login succeeded");
        Ok(LoginResponse::Tokens(self.token_response(user, session.id, &session.amr, refresh_token)?))
    }

    /// How many bcrypt computations this service has done (hashes and verifications).
    pub fn password_hashes_computed(&self) -> u64 {
        self.settings.hasher.computed()
    }

    /// A new device cookie for the account with this email, set at a successful sign-in.
    pub fn device_cookie(&self, email: &str) -> String {
        crate::device::issue(&self.settings.hasher, &self.settings.hasher.account_key(&domain::normalize_email(email)))
    }

    /// The one way a password is checked (login, password change, step-up), so that each counts
    /// failures alike (docs/SECURITY.md LG-1): the client address's throttle, then the
    /// account's (or, for a client with a valid device cookie for this account, that device's
    /// own) before any hashing; a wrong password, an unknown or inactive account counts one
    /// failure for both; a right one clears the count it was checked against, and rehashes at
    /// the configured cost when due.
    async fn counted_password_check(
        &self,
        user: Option<&User>,
        account_key: [u8; 32],
        password: &str,
        attempt: Attempt<'_>,
    ) -> Result<(), AuthError> {
        if let Some(wait) = self.ip_throttle.blocked(attempt.ip).await {
            return Err(AuthError::Throttled(wait));
        }
        let device = attempt.device.and_then(|d| crate::device::verify(&self.settings.hasher, &account_key, d));
        let key = match device {
            Some(nonce) => self.settings.hasher.device_key(&account_key, nonce),
            None => account_key,
        };
        let now = self.clock.now();
        if let Some(until) = self.store.failures(key).await?.map(|f| f.blocked_until).filter(|until| *until > now) {
            metrics::counter!("trellis_login_throttled_total").increment(1);
            tracing::info!(outcome = "throttled", known_device = device.is_some(), "password check refused");
            return Err(AuthError::Throttled(u64::try_from((until - now).whole_seconds()).unwrap_or(1).max(1)));
        }
        let hash = match user {
            Some(user) => match self.store.password_hash(user.id).await {
                Ok(h) => Some(h),
                Err(platform::db::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let ok = match &hash {
            Some(h) => self.settings.hasher.verify_as(attempt.purpose, password, h).await?,
            None => {
                self.settings.hasher.verify_dummy_as(attempt.purpose, password).await?;
                false
            }
        };
        let Some(user) = user.filter(|u| ok && u.status == UserStatus::Active) else {
            let failures = self.store.record_failure(key, now, domain::login_delay).await?;
            self.ip_throttle.record_failure(attempt.ip).await;
            match user {
                Some(user) => {
                    let event = Event::new(
                        attempt.failed_event,
                        user.id,
                        attempt.by_the_user.then_some(user.id),
                        now,
                        json!({ "user_id": user.id, "consecutive_failures": failures }),
                    );
                    self.store.record_event(&event).await?;
                    self.wake_relay();
                    tracing::info!(user_id = %user.id, outcome = "rejected", failures, kind = attempt.failed_event, "password check failed");
                }
                None => {
                    tracing::info!(outcome = "unknown_account", kind = attempt.failed_event, "password check failed")
                }
            }
            return Err(AuthError::InvalidCredentials);
        };
        self.store.clear_failures(key).await?;
        if let Some(h) = &hash {
            self.rehash_if_needed(user.id, password, h).await;
        }
        Ok(())
    }

    /// Checks the password of a signed-in user before a sensitive change (another service asks,
    /// `SessionsApi::check_password`). It is a login attempt for the account: the same throttle
    /// is checked first and a wrong password counts as a failed login (with its event
    /// `auth.password_check_failed`), a right one clears the count. A user without a password,
    /// or not active, is refused like a wrong password.
    pub async fn check_password(&self, user_id: Uuid, password: &str) -> Result<(), AuthError> {
        self.check_password_from(user_id, password, None).await
    }

    /// [`AuthService::check_password`] for a client at `ip`: a failure counts against that
    /// address too, and a blocked address is refused before any hashing, as for a login.
    pub async fn check_password_from(
        &self,
        user_id: Uuid,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        if let Some(wait) = self.ip_throttle.blocked(ip).await {
            return Err(AuthError::Throttled(wait));
        }
        let user = match self.users.get_user(user_id).await {
            Ok(u) => u,
            Err(ApiError::NotFound) => {
                self.settings.hasher.verify_dummy(password).await?;
                self.ip_throttle.record_failure(ip).await;
                tracing::info!(%user_id, outcome = "unknown_account", "password check failed");
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        let key = self.settings.hasher.account_key(&domain::normalize_email(&user.email));
        let attempt = Attempt {
            ip,
            device: None,
            purpose: Purpose::Other,
            failed_event: "auth.password_check_failed",
            by_the_user: true,
        };
        self.counted_password_check(Some(&user), key, password, attempt).await?;
        tracing::info!(%user_id, "password check passed");
        Ok(())
    }

    fn token_response(
        &self,
        user: User,
        session_id: Uuid,
        amr: &[String],
        refresh_token: String,
    ) -> Result<TokenResponse, ApiError> {
        Ok(TokenResponse {
            access_token: self.issue_access_token(&user, session_id, amr)?,
            token_type: "Bearer".into(),
            expires_in: self.settings.access_token_ttl.as_secs(),
            refresh_token,
            user,
        })
    }

    /// Exchanges a refresh token for a new pair (rotation). Presenting an already exchanged token
    /// revokes the whole session (RFC 9700 §4.14.2): at once by default, after the grace window
    /// when one is set.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, AuthError> {
        let now = self.clock.now();
        let presented = sha256(refresh_token.as_bytes());
        let session = match self.store.find_refresh(presented).await? {
            RefreshLookup::Unknown => return Err(AuthError::InvalidCredentials),
            RefreshLookup::Used(session, used_at) => {
                let grace = self.settings.refresh_reuse_grace;
                let honest_race = !grace.is_zero() && now - used_at <= grace;
                if session.revoked_at.is_none() && !honest_race {
                    let event = Event::new(
                        "auth.refresh_reuse_detected",
                        session.user_id,
                        Some(session.user_id),
                        now,
                        json!({ "user_id": session.user_id, "session_id": session.id }),
                    );
                    self.revoke(session.user_id, Some(session.id), event).await?;
                    tracing::warn!(user_id = %session.user_id, session_id = %session.id, "refresh token reuse; session revoked");
                }
                return Err(AuthError::InvalidCredentials);
            }
            RefreshLookup::Current(session) => session,
        };
        if !self.usable(&session, now) {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self.users.get_user(session.user_id).await?;
        if user.status != UserStatus::Active {
            return Err(AuthError::InvalidCredentials);
        }
        let next = random_token();
        if !self.store.rotate_refresh(session.id, presented, sha256(next.as_bytes()), now).await? {
            // Another refresh with the same token won the race.
            return Err(AuthError::InvalidCredentials);
        }
        // The session's sign-in decides the amr of every token it ever gets.
        Ok(self.token_response(user, session.id, &session.amr, next)?)
    }

    /// A session can be refreshed while it is not revoked, not past its absolute end and not idle
    /// for longer than the idle timeout.
    fn usable(&self, s: &SessionRow, now: time::OffsetDateTime) -> bool {
        s.revoked_at.is_none() && s.expires_at > now && s.last_used_at + self.settings.session_idle_timeout > now
    }

    /// Revokes sessions in the database (the truth), then tells every verifier through the cache.
    async fn revoke(&self, user_id: Uuid, only: Option<Uuid>, event: Event) -> Result<Vec<Uuid>, AuthError> {
        let revoked = self.store.revoke_sessions(user_id, only, self.clock.now(), &event).await?;
        self.wake_relay();
        self.publish_revocations(&revoked).await;
        Ok(revoked)
    }

    /// Tells every verifier, through the shared cache, that these sessions ended.
    async fn publish_revocations(&self, revoked: &[Uuid]) {
        // Long enough to outlive any access token of these sessions.
        let ttl = self.settings.access_token_ttl + Duration::from_secs(120);
        for sid in revoked {
            if let Err(e) = self.revocations.set(&session_cache_key(*sid), b"0", ttl).await {
                // Verifiers that find no marker ask the database, so this only delays them by
                // the life of a cached "active" answer (seconds).
                tracing::warn!(session_id = %sid, error = %e, "could not publish a revocation to the cache");
            }
        }
    }

    /// Ends the caller's session: its refresh token and its access tokens stop working at once.
    pub async fn logout(&self, caller: &Identity) -> Result<(), AuthError> {
        let event = self.session_event("auth.logout", caller);
        self.revoke(caller.user_id, Some(caller.session_id), event).await?;
        Ok(())
    }

    /// Ends every session of the caller.
    pub async fn logout_all(&self, caller: &Identity) -> Result<(), AuthError> {
        let event = self.session_event("auth.logout_all", caller);
        self.revoke(caller.user_id, None, event).await?;
        Ok(())
    }

    /// Ends every session of a user for a reason decided elsewhere (an administrator changed the
    /// user's role or status): the database first, with its event, then the shared cache.
    pub async fn end_all_sessions(&self, user_id: Uuid, reason: SessionEndReason) -> Result<u32, AuthError> {
        let event = Event::new(
            "auth.sessions_ended",
            user_id,
            None,
            self.clock.now(),
            json!({ "user_id": user_id, "reason": reason.as_str() }),
        );
        let revoked = self.revoke(user_id, None, event).await?;
        tracing::info!(%user_id, reason = reason.as_str(), ended_sessions = revoked.len(), "sessions ended");
        Ok(u32::try_from(revoked.len()).unwrap_or(u32::MAX))
    }

    /// Ends one of the caller's sessions; another user's session is `NotFound`.
    pub async fn revoke_session(&self, caller: &Identity, session_id: Uuid) -> Result<(), AuthError> {
        match self.store.session(session_id).await {
            Ok(s) if s.user_id == caller.user_id => {}
            Ok(_) | Err(platform::db::StoreError::NotFound) => return Err(ApiError::NotFound.into()),
            Err(e) => return Err(e.into()),
        }
        let mut event = self.session_event("auth.session_revoked", caller);
        event.data = json!({ "user_id": caller.user_id, "session_id": session_id });
        self.revoke(caller.user_id, Some(session_id), event).await?;
        Ok(())
    }

    pub async fn sessions(&self, caller: &Identity) -> Result<Vec<SessionInfo>, AuthError> {
        let rows = self.store.active_sessions(caller.user_id, self.clock.now()).await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionInfo {
                current: s.id == caller.session_id,
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect())
    }

    fn session_event(&self, kind: &str, caller: &Identity) -> Event {
        Event::new(
            kind,
            caller.user_id,
            Some(caller.user_id),
            self.clock.now(),
            json!({ "user_id": caller.user_id, "session_id": caller.session_id }),
        )
    }

    fn issue_access_token(&self, user: &User, session_id: Uuid, amr: &[String]) -> Result<String, ApiError> {
        let now = self.clock.now().unix_timestamp();
        let ttl = i64::try_from(self.settings.access_token_ttl.as_secs()).unwrap_or(900);
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: user.id,
            aud: self.settings.audience.clone(),
            exp: now + ttl,
            iat: now,
            jti: platform::ids::new_id().to_string(),
            sid: session_id,
            role: user.role,
            amr: amr.to_vec(),
        };
        self.current_key()?.sign(&claims).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

#[async_trait]
impl SessionStatus for AuthService {
    async fn session_active(&self, session_id: Uuid) -> Result<bool, ApiError> {
        match self.store.session(session_id).await {
            Ok(s) => Ok(s.revoked_at.is_none() && s.expires_at > self.clock.now()),
            Err(platform::db::StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl SessionsApi for AuthService {
    async fn end_all_sessions(&self, user_id: Uuid, reason: SessionEndReason) -> Result<u32, ApiError> {
        Ok(AuthService::end_all_sessions(self, user_id, reason).await?)
    }

    async fn check_password(&self, user_id: Uuid, password: &str) -> Result<(), ApiError> {
        Ok(AuthService::check_password(self, user_id, password).await?)
    }

    async fn email_changed(&self, user_id: Uuid, old_email: &str) -> Result<(), ApiError> {
        Ok(AuthService::email_changed(self, user_id, old_email).await?)
    }

    async fn verify_step_up(
        &self,
        user_id: Uuid,
        proof: Option<&api::auth::StepUpProof>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        Ok(AuthService::verify_step_up(self, user_id, proof, client_ip).await?)
    }

    async fn request_email_change(&self, req: &api::auth::EmailChangeRequest) -> Result<(), ApiError> {
        Ok(AuthService::request_email_change(self, req).await?)
    }
}

#[async_trait]
impl KeySource for AuthService {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        Ok(self.public_keys())
    }
}

/// The mail to the owner of an address someone tried to register with.
fn registration_attempt_mail(to: &str, public_url: &str) -> platform::mail::Mail {
    let url = public_url.trim_end_matches('/');
    platform::mail::Mail {
        to: to.to_string(),
        subject: "Someone tried to register with your address".into(),
        text: format!(
            "Hello,\n\nsomeone just tried to create a Trellis account with this email address, which already \
             has one. Nothing was changed.\n\nIf it was you, sign in at {url}/login, or set a new password at \
             {url}/forgot-password. If it was not you, you need not do anything.\n"
        ),
    }
}
