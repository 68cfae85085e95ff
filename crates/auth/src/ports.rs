//! The auth service's storage ports, one per aggregate.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_credential(&self, user_id: Uuid, password_hash: &str, at: OffsetDateTime)
    -> Result<(), StoreError>;
    async fn password_hash(&self, user_id: Uuid) -> Result<String, StoreError>;
    /// Swaps `old` for `new` if `old` is still the stored hash (a rehash at a new cost).
    async fn replace_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Replaces the password hash, revokes every session of the user but `keep`, spends every
    /// outstanding password-reset token of the user, and records `event`, in one transaction;
    /// returns the revoked session ids.
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError>;
}

/// A login session: one refresh-token family.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub refresh_hash: [u8; 32],
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// How the sign-in authenticated the user (RFC 8176 values: `pwd`, `otp`); every access
    /// token of the session carries it, refreshed or not.
    pub amr: Vec<String>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    /// The absolute end of the session, however often it is refreshed.
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// As given at sign-in (`NewSession::amr`).
    pub amr: Vec<String>,
}

/// The stored form of an `amr` list (space-separated) read back.
pub fn parse_amr(stored: &str) -> Vec<String> {
    stored.split_ascii_whitespace().map(str::to_owned).collect()
}

/// What a presented refresh token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshLookup {
    /// The session's current token.
    Current(SessionRow),
    /// A token of this session that was already exchanged, at `used_at`.
    Used(SessionRow, OffsetDateTime),
    Unknown,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores the session, its first refresh token and its login event in one transaction.
    async fn create_session(&self, session: &NewSession, event: &Event) -> Result<(), StoreError>;
    /// Records an event on its own (a failed login, say).
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;
    async fn find_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshLookup, StoreError>;
    /// Exchanges `old` for `new` if `old` is still unused (compare-and-set) and the session is not
    /// revoked; returns false when another exchange won.
    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old: [u8; 32],
        new: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Revokes the sessions given (all of the user's when `only` is None) with `event`; returns
    /// the ids it revoked.
    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        only: Option<Uuid>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// The user's sessions that are neither revoked nor past their absolute end.
    async fn active_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRow>, StoreError>;
    async fn session(&self, id: Uuid) -> Result<SessionRow, StoreError>;
}

/// A stored signing key; `private_key` is PKCS#8 sealed with the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// The one JOSE algorithm the key signs with.
    pub alg: String,
    pub private_key: Vec<u8>,
    /// The public JWK as JSON (public parameters only), for inspection.
    pub public_jwk: String,
    /// When it was made and published in the JWKS.
    pub created_at: OffsetDateTime,
    /// When it starts signing: later than `created_at` after a rotation, so that every replica
    /// and verifier has seen it in the JWKS first.
    pub active_from: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Keys not retired, newest first.
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Every key, retired ones too, newest first.
    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Inserts `key` and `event` in one transaction, but only if the newest key not retired is
    /// still `expected_newest` (None: there is none); returns false, changing nothing, when
    /// another rotation got there first. Concurrent calls are serialized, so of several replicas
    /// deciding to rotate at once exactly one does.
    async fn insert_key(
        &self,
        key: &StoredKey,
        expected_newest: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Marks the key retired at `at`, with `event`, unless it already is; returns whether it did.
    async fn retire_key(&self, kid: &str, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
}

/// Consecutive failed logins per account key; the database is the truth, so a cache outage never
/// lifts the limit.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    /// The key's consecutive failures and until when it is blocked, if it has failed at all.
    async fn failures(&self, key: [u8; 32]) -> Result<Option<Failures>, StoreError>;
    /// Counts one more failure and returns the new consecutive count; `block` maps that count to
    /// the end of the block.
    async fn record_failure(
        &self,
        key: [u8; 32],
        now: OffsetDateTime,
        block: fn(u32) -> time::Duration,
    ) -> Result<u32, StoreError>;
    /// Forgets the failures after a successful login.
    async fn clear_failures(&self, key: [u8; 32]) -> Result<(), StoreError>;
}

/// The throttling state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub consecutive: u32,
    pub blocked_until: OffsetDateTime,
}

/// A user's TOTP enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    /// The seed, sealed with the key-encryption key.
    pub secret: Vec<u8>,
    /// None while enrolment waits for its first valid code.
    pub enabled_at: Option<OffsetDateTime>,
    /// The last accepted time step: codes of this step or earlier are refused (RFC 6238 §5.2).
    pub last_step: Option<i64>,
}

/// A pending second-factor login (the `mfa_token`, stored hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub attempts: u32,
    pub used_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Stores a new, not yet enabled seed, replacing an earlier unconfirmed one; `Conflict` when
    /// TOTP is already enabled.
    async fn put_pending_totp(&self, user_id: Uuid, sealed: &[u8], at: OffsetDateTime) -> Result<(), StoreError>;
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpRow>, StoreError>;
    /// Confirms the pending seed with its first accepted `step`, replaces the recovery codes and
    /// records `event`, in one transaction; false when there was no pending seed.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Removes the seed and the recovery codes and records `event`; false when there was none.
    async fn disable_totp(&self, user_id: Uuid, event: &Event) -> Result<bool, StoreError>;
    /// Replaces every recovery code of a user whose TOTP is enabled (the old ones die) and records
    /// `event`, in one transaction; false (nothing written) when TOTP is not enabled.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[[u8; 32]],
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Moves the last accepted step forward to `step` (compare-and-set); false when `step` is not
    /// newer, i.e. the code was already used.
    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError>;
    /// Marks an unused recovery code used; false when unknown or already used.
    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: [u8; 32],
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<u32, StoreError>;
    /// Stores a challenge (and forgets expired ones).
    async fn create_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError>;
    async fn mfa_challenge(&self, token_hash: [u8; 32]) -> Result<Option<MfaChallenge>, StoreError>;
    /// Counts a wrong code against the challenge; returns its attempts so far.
    async fn fail_mfa_challenge(&self, token_hash: [u8; 32]) -> Result<u32, StoreError>;
    /// Marks the challenge used if it still is not (compare-and-set) and creates the session with
    /// its login event, in one transaction; false when another request completed it first.
    async fn complete_mfa_challenge(
        &self,
        token_hash: [u8; 32],
        session: &NewSession,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// What a mailed single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailTokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// Mailed to the new address of an email change; following it applies the change.
    ChangeEmail,
    /// Mailed to the old address once a change applied; following it restores the old address
    /// and ends every session.
    UndoEmailChange,
}

impl EmailTokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailTokenPurpose::VerifyEmail => "verify_email",
            EmailTokenPurpose::ResetPassword => "reset_password",
            EmailTokenPurpose::ChangeEmail => "change_email",
            EmailTokenPurpose::UndoEmailChange => "undo_email_change",
        }
    }
}

/// A token to store: only its SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct NewEmailToken {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    pub purpose: EmailTokenPurpose,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A password reset to commit: everything in one transaction, or nothing.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    pub password_hash: String,
    /// The login-throttle key of the account, whose failure count the reset clears.
    pub account_key: [u8; 32],
    pub at: OffsetDateTime,
}

/// Single-use tokens sent by mail (email verification, password reset).
#[async_trait]
pub trait EmailTokenStore: Send + Sync {
    /// Stores `token` with `event`, in one transaction, unless `limit` tokens of the same purpose
    /// were already created for the user since `since`; returns whether it was stored.
    async fn issue_email_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// The owner of a token of `purpose` that is unused and unexpired at `now`, if there is one.
    async fn email_token_owner(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError>;
    /// Spends an email-verification token (compare-and-set) and records `event` with it; false
    /// when it is unknown, used or expired (of concurrent attempts exactly one wins).
    async fn spend_verify_token(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// In one transaction: spends the reset token (compare-and-set; it must be the user's, unused
    /// and unexpired), replaces the password hash, spends every other outstanding reset token of
    /// the user, revokes all the user's sessions, clears the account's failed-login count and
    /// records `event`. Returns the revoked session ids, or None (and changes nothing) when the
    /// token could not be spent.
    async fn reset_password(&self, reset: &PasswordReset, event: &Event) -> Result<Option<Vec<Uuid>>, StoreError>;
    /// After the user's email changed, in one transaction: spends every outstanding
    /// email-verification token of the user (a link mailed to the old address must not verify
    /// the new one), stores `token` unless `limit` verification tokens were already created for
    /// the user since `since`, and records `event`. Returns whether `token` was stored.
    async fn replace_verify_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Stores a `change_email` token carrying the new address (`sealed_email`; None for an
    /// address that is taken: the token then never applies anything) with `event`, in one
    /// transaction, unless `limit` such tokens were created for the user since `since`; returns
    /// whether it was stored.
    async fn issue_email_change(
        &self,
        token: &NewEmailToken,
        sealed_email: Option<&[u8]>,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// The owner and sealed address of an unused, unexpired token of `purpose` (`change_email`
    /// or `undo_email_change`).
    async fn email_change(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<(Uuid, Vec<u8>)>, StoreError>;
    /// After the users service applied a change, in one transaction: spends the `change_email`
    /// token (compare-and-set), every other outstanding `change_email` and `verify_email` token
    /// of the user, stores the `undo` token with the old address (`sealed_old`) and records
    /// `event`. False (nothing written) when the token was spent meanwhile.
    async fn complete_email_change(
        &self,
        token_hash: [u8; 32],
        undo: &NewEmailToken,
        sealed_old: &[u8],
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// After the users service restored the old address, in one transaction: spends the
    /// `undo_email_change` token (compare-and-set) and every outstanding `change_email`,
    /// `undo_email_change` and `verify_email` token of the user, revokes every session of the user
    /// and records `event`. The revoked session ids, or None (nothing written) when the token was
    /// spent meanwhile.
    async fn undo_email_change(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Option<Vec<Uuid>>, StoreError>;
}

/// Every auth table that holds data about a user, as named in exports and erasure reports.
/// `auth_signing_keys` is the only other auth table, and holds nothing about users.
pub const PERSONAL_DATA_TABLES: [&str; 8] = [
    "auth_credentials",
    "auth_sessions",
    "auth_refresh_tokens",
    "auth_login_failures",
    "auth_totp",
    "auth_recovery_codes",
    "auth_mfa_challenges",
    "auth_email_tokens",
];

/// The rows of one user, for an export. Secret columns (password hash, TOTP seed, token and
/// code hashes, the throttle keys) are never read: the store returns only what may be shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalRows {
    /// `(created_at, updated_at)` of the password, when there is one.
    pub credential: Option<(OffsetDateTime, OffsetDateTime)>,
    pub sessions: Vec<SessionRow>,
    pub refresh_tokens: Vec<RefreshTokenInfo>,
    pub login_failures: Vec<FailureInfo>,
    pub totp: Option<TotpInfo>,
    pub recovery_codes: Vec<Option<OffsetDateTime>>,
    pub mfa_challenges: Vec<MfaChallengeInfo>,
    pub email_tokens: Vec<EmailTokenInfo>,
}

/// A refresh token of one of the user's sessions, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenInfo {
    pub session_id: Uuid,
    pub issued_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Which failure counter of `auth_login_failures` a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCounter {
    /// Failed logins, keyed by the HMAC of the normalized email.
    Login,
    /// Wrong second-factor codes, keyed by the HMAC of the user id.
    SecondFactor,
}

impl FailureCounter {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCounter::Login => "login",
            FailureCounter::SecondFactor => "second_factor",
        }
    }
}

/// A failure counter of the user, without its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureInfo {
    pub counter: FailureCounter,
    pub consecutive: u32,
    pub blocked_until: OffsetDateTime,
    pub last_failed_at: OffsetDateTime,
}

/// The user's TOTP enrolment, without its seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpInfo {
    pub created_at: OffsetDateTime,
    pub enabled_at: Option<OffsetDateTime>,
    pub last_step: Option<i64>,
}

/// A second-factor challenge of the user, without its token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallengeInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub attempts: u32,
    pub used_at: Option<OffsetDateTime>,
}

/// A mailed token of the user, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTokenInfo {
    /// `verify_email` or `reset_password`.
    pub purpose: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Whose rows: the user id and the keys of the user's failure counters (the login key only
/// while the email is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectKeys {
    pub user_id: Uuid,
    pub login_key: Option<[u8; 32]>,
    pub mfa_key: [u8; 32],
}

/// Rows deleted per table (every table of [`PERSONAL_DATA_TABLES`] is present).
pub type ErasedCounts = std::collections::BTreeMap<String, u64>;

/// Builds the erasure's event from what it deleted; None records no event.
pub type ErasureEvent = Box<dyn FnOnce(&ErasedCounts) -> Option<Event> + Send>;

/// What an erasure did: the sessions that were live (to publish their revocation) and the rows
/// deleted per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    pub revoked: Vec<Uuid>,
    pub counts: ErasedCounts,
}

/// Export and erasure of everything the auth tables hold about one user (GDPR Art. 15, 17, 20).
#[async_trait]
pub trait PersonalDataStore: Send + Sync {
    /// The user's rows in every table, secrets left out.
    async fn personal_rows(&self, subject: SubjectKeys) -> Result<PersonalRows, StoreError>;
    /// In one transaction: revokes the user's live sessions, deletes the user's rows in every
    /// table of [`PERSONAL_DATA_TABLES`], and records the event `event` builds from the counts.
    async fn erase_user(
        &self,
        subject: SubjectKeys,
        now: OffsetDateTime,
        event: ErasureEvent,
    ) -> Result<Erasure, StoreError>;
}

/// What has ended and can go (the `sessions` job, `crate::jobs`); each call deletes at most
/// `limit` rows in one transaction and returns how many went.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Sessions that ended before `before` (revoked, past their absolute end, or last used
    /// before `idle_before`), with their refresh tokens: `(sessions, refresh tokens)`.
    async fn purge_sessions(
        &self,
        before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: i64,
    ) -> Result<(u64, u64), StoreError>;
    /// Mailed tokens that expired before `before`, spent or not.
    async fn purge_email_tokens(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;
    /// Second-factor challenges that expired before `before`.
    async fn purge_mfa_challenges(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;
    /// Failure counters whose block ended and whose last failure was before `before`.
    async fn purge_login_failures(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;
}

/// Everything the auth service stores.
pub trait AuthStore:
    CredentialStore
    + SessionStore
    + SigningKeyStore
    + LoginThrottleStore
    + MfaStore
    + EmailTokenStore
    + PersonalDataStore
    + RetentionStore
{
}
impl<
    T: CredentialStore
        + SessionStore
        + SigningKeyStore
        + LoginThrottleStore
        + MfaStore
        + EmailTokenStore
        + PersonalDataStore
        + RetentionStore,
> AuthStore for T
{
}
