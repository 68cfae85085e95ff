//! Use cases of the users service, over the `UserStore` port. Personal data is sealed here on the
//! way in and opened on the way out (`pii.rs`): the store never sees plaintext.

mod gdpr;
mod rotation;

use std::sync::{Arc, OnceLock};

use api::auth::{EmailChangeRequest, SessionEndReason, SessionsApi, StepUpProof};
use api::personal::PersonalDataApi;
use api::projects::ProjectPeople;
use api::users::{
    NewUser, NotificationSettings, PublicUser, Role, UpdateUser, User, UserListItem, UserPage, UserStatus, UsersApi,
};
use api::{ApiError, FieldError};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::bus::Event;
use platform::clock::Clock;
use platform::db::StoreError;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{Email, UserName};
use crate::pii::{Column, DataKey, PiiKeys, SearchToken, WrappedKey};
use crate::ports::{SearchFilter, StoredUser, UpdateOutcome, UserStore};
use crate::preferences::Preferences;

pub use gdpr::ExportDocument;

/// The name shown for an erased user wherever their content remains.
pub const DELETED_USER_NAME: &str = "Deleted user";

/// The other services holding data about users, by name.
pub type Holders = Vec<(&'static str, Arc<dyn PersonalDataApi>)>;

pub struct UsersService {
    store: Arc<dyn UserStore>,
    keys: Arc<PiiKeys>,
    clock: Arc<dyn Clock>,
    outbox_waker: Option<Arc<Notify>>,
    /// The auth service, to end a user's sessions when their role or status changes. Connected
    /// after construction because the auth service itself is built on top of this one.
    sessions: OnceLock<Arc<dyn SessionsApi>>,
    /// The other services holding data about users, for export and erasure (auth, projects).
    holders: OnceLock<Holders>,
    /// Who shares a project with whom (the projects service), for a non-admin's search.
    people: OnceLock<Arc<dyn ProjectPeople>>,
}

/// Who performs a use case: a verified user and their global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub role: Role,
    /// The address the request came from, when known: a failed step-up counts against it.
    pub client_ip: Option<std::net::IpAddr>,
}

impl Actor {
    fn may_manage(&self, id: Uuid) -> bool {
        self.user_id == id || self.role == Role::Admin
    }
}

/// Why an update was refused, beyond the `ApiError`s every call can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// `If-Match` named another version than the stored one (412).
    #[error("the user changed since the version given in If-Match")]
    PreconditionFailed,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        UpdateError::Api(e.into())
    }
}

/// The query of `GET /api/users`.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub status: Option<UserStatus>,
    pub role: Option<Role>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The entity tag of a user's current version (docs/API.md: single resources carry an `ETag`).
pub fn etag(user: &User) -> String {
    format!("\"{:x}\"", user.updated_at.unix_timestamp_nanos() / 1000)
}

/// Whether an `If-Match` header value names the current version (`*` names any).
fn if_match_holds(header: &str, current: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current)
}

/// Both databases keep microseconds: a time written equals the time read back.
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_microsecond(t.microsecond()).unwrap_or(t)
}

fn pii_failure(id: Uuid, e: crate::pii::PiiError) -> ApiError {
    // The configured keys cannot open this row: a configuration fault, never the caller's.
    ApiError::Internal(format!("personal data of user {id} cannot be opened: {e}"))
}

/// A user row opened with its data key (the preferences stay sealed until asked for:
/// `open_preferences`, so that the hot reads decrypt two fields, not three).
struct Opened {
    user: User,
    key: Option<DataKey>,
}

impl UsersService {
    pub fn new(
        store: Arc<dyn UserStore>,
        keys: Arc<PiiKeys>,
        clock: Arc<dyn Clock>,
        outbox_waker: Option<Arc<Notify>>,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            outbox_waker,
            sessions: OnceLock::new(),
            holders: OnceLock::new(),
            people: OnceLock::new(),
        }
    }

    /// Connects the auth service's session API (in process or over HTTP). Until then, role and
    /// status changes are refused as unavailable, never done without ending sessions.
    pub fn connect_sessions(&self, sessions: Arc<dyn SessionsApi>) {
        if self.sessions.set(sessions).is_err() {
            tracing::warn!("the sessions API was already connected");
        }
    }

    /// Connects the other services that hold data about users. Until then, exports and erasures
    /// are refused as unavailable, never done partially.
    pub fn connect_personal_data(&self, holders: Holders) {
        if self.holders.set(holders).is_err() {
            tracing::warn!("the personal-data holders were already connected");
        }
    }

    /// Connects the projects service's `ProjectPeople`. Until then, a non-admin's search is
    /// refused as unavailable, never widened to everyone.
    pub fn connect_people(&self, people: Arc<dyn ProjectPeople>) {
        if self.people.set(people).is_err() {
            tracing::warn!("the project people API was already connected");
        }
    }

    fn sessions(&self) -> Result<&Arc<dyn SessionsApi>, ApiError> {
        self.sessions.get().ok_or_else(|| ApiError::Unavailable("the auth service is not connected".into()))
    }

    fn holders(&self) -> Result<&Holders, ApiError> {
        self.holders
            .get()
            .ok_or_else(|| ApiError::Unavailable("the services holding personal data are not connected".into()))
    }

    /// Encrypts the rows left in plaintext by a version before encryption at rest (migration
    /// 0003 set them aside); run once on start, before serving.
    pub async fn adopt_plaintext(&self) -> Result<u64, StoreError> {
        let keys = self.keys.clone();
        let seal = move |(id, email, name, role, status, email_verified, mfa_enabled, created_at, updated_at): crate::ports::PlaintextRow| {
            let (key, wrapped) = keys.new_data_key(id);
            let tokens: Vec<SearchToken> = keys.search_tokens(&name, &email).into_iter().collect();
            let user = StoredUser {
                id,
                email_index: Some(keys.email_index(&email)),
                email: Some(key.seal(Column::Email, email.as_bytes())),
                name: Some(key.seal(Column::Name, name.as_bytes())),
                preferences: None,
                data_key: Some(wrapped.bytes),
                key_version: wrapped.version,
                role,
                status,
                email_verified,
                mfa_enabled,
                created_at,
                updated_at,
                erasure_started_at: None,
                erased_at: None,
            };
            (user, tokens)
        };
        let moved = self.store.adopt_plaintext(&seal).await?;
        if moved > 0 {
            tracing::info!(users = moved, "encrypted the personal data of users stored before encryption at rest");
        }
        Ok(moved)
    }

    fn open(&self, row: &StoredUser) -> Result<Opened, ApiError> {
        let base = |email: String, name: String| User {
            id: row.id,
            email,
            name,
            role: row.role,
            status: row.status,
            email_verified: row.email_verified,
            mfa_enabled: row.mfa_enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        let Some(wrapped) = &row.data_key else {
            // Erased: the key is gone, and everything sealed with it.
            return Ok(Opened { user: base(String::new(), DELETED_USER_NAME.into()), key: None });
        };
        let wrapped = WrappedKey { version: row.key_version, bytes: wrapped.clone() };
        let key = self.keys.unwrap(row.id, &wrapped).map_err(|e| pii_failure(row.id, e))?;
        let text = |col: Column, v: &Option<Vec<u8>>| -> Result<String, ApiError> {
            v.as_deref()
                .map(|b| key.open_string(col, b))
                .transpose()
                .map_err(|e| pii_failure(row.id, e))
                .map(Option::unwrap_or_default)
        };
        let email = text(Column::Email, &row.email)?;
        let name = text(Column::Name, &row.name)?;
        Ok(Opened { user: base(email, name), key: Some(key) })
    }

    /// The row's preferences, opened with its data key (defaults when none are stored or the
    /// user is erased).
    fn open_preferences(&self, row: &StoredUser, opened: &Opened) -> Result<Preferences, ApiError> {
        let (Some(sealed), Some(key)) = (&row.preferences, &opened.key) else { return Ok(Preferences::default()) };
        let raw = key.open(Column::Preferences, sealed).map_err(|e| pii_failure(row.id, e))?;
        Ok(serde_json::from_slice(&raw).unwrap_or_else(|e| {
            tracing::error!(user_id = %row.id, error = %e, "stored preferences do not parse; defaults used");
            Preferences::default()
        }))
    }

    async fn load(&self, id: Uuid) -> Result<(StoredUser, Opened), ApiError> {
        let row = self.store.get(id).await?;
        let opened = self.open(&row)?;
        Ok((row, opened))
    }

    /// A user as `actor` may see them: whole for themself and admins (an admin reading someone
    /// else's personal data leaves an event: docs/SECURITY.md GD-3), `{id, name}` for others.
    pub async fn view_user(&self, actor: Actor, id: Uuid) -> Result<UserListItem, ApiError> {
        let (_, opened) = self.load(id).await?;
        if actor.user_id == id {
            return Ok(UserListItem::Full(opened.user));
        }
        if actor.role == Role::Admin {
            self.record(Event::new(
                "users.profile_viewed",
                id,
                Some(actor.user_id),
                self.clock.now(),
                json!({ "user_id": id }),
            ))
            .await?;
            return Ok(UserListItem::Full(opened.user));
        }
        Ok(UserListItem::Public(PublicUser { id, name: opened.user.name }))
    }

    /// Checks the fresh proof a sensitive change needs (step-up: docs/SECURITY.md AZ-6,
    /// ASVS 5.0 7.5.1 and 7.5.3, NIST SP 800-63B-4 reauthentication): the caller's own current password, given with
    /// that very request. A valid access token is not one: a stolen token is by definition
    /// recent. The auth service checks it as a login attempt (same throttle, failures counted).
    /// Missing: `StepUpRequired` (403); wrong: `StepUpFailed` (401); throttled: `RateLimited`.
    pub(crate) async fn step_up(&self, actor: Actor, proof: Option<&str>) -> Result<(), ApiError> {
        self.step_up_proof(actor, StepUpProof::from_fields(proof, None).as_ref()).await
    }

    /// The step-up check with either kind of proof (`SessionsApi::verify_step_up`: the current
    /// password, or a second-factor code for an account without a password).
    pub(crate) async fn step_up_proof(&self, actor: Actor, proof: Option<&StepUpProof>) -> Result<(), ApiError> {
        let Some(proof) = proof else { return Err(ApiError::StepUpRequired) };
        match self.sessions()?.verify_step_up(actor.user_id, Some(proof), actor.client_ip).await {
            Ok(()) => Ok(()),
            Err(ApiError::Unauthorized | ApiError::StepUpFailed) => {
                tracing::info!(actor_id = %actor.user_id, "step-up failed");
                Err(ApiError::StepUpFailed)
            }
            Err(e) => Err(e),
        }
    }

    async fn record(&self, event: Event) -> Result<(), ApiError> {
        self.store.record(&event).await?;
        self.wake_relay();
        Ok(())
    }

    /// `PATCH /api/users/{id}`: `name` and `email` by the user themself or an admin; `role` and
    /// `status` by an admin only. A new email is stored unverified and the auth service mails a
    /// link to it (and a notice to the old one). A change of role or status ends every session of
    /// the user (their tokens carry the old role), before the change is written and once more
    /// after, so that no session started in between survives. The last active administrator
    /// cannot be demoted or deactivated (409). Events: `users.role_changed`,
    /// `users.status_changed`, `users.profile_updated`, in the transaction of the change.
    pub async fn update_user(
        &self,
        actor: Actor,
        id: Uuid,
        patch: UpdateUser,
        if_match: Option<&str>,
    ) -> Result<User, UpdateError> {
        // A re-encryption of the row between our read and our write (key rotation) makes the
        // write stale without changing the user: read again and redo it.
        for _ in 0..3 {
            if let Some(user) = self.try_update(actor, id, &patch, if_match).await? {
                return Ok(user);
            }
        }
        Err(ApiError::Conflict("the user changed meanwhile; read it again and retry".into()).into())
    }

    /// One attempt of `update_user`; `None` when the row was only re-encrypted meanwhile.
    async fn try_update(
        &self,
        actor: Actor,
        id: Uuid,
        patch: &UpdateUser,
        if_match: Option<&str>,
    ) -> Result<Option<User>, UpdateError> {
        let (row, opened) = self.load(id).await?;
        if row.erasure_started_at.is_some() {
            return Err(ApiError::NotFound.into());
        }
        let current = opened.user;
        if let Some(header) = if_match
            && !if_match_holds(header, &etag(&current))
        {
            return Err(UpdateError::PreconditionFailed);
        }
        let is_admin = actor.role == Role::Admin;
        if (patch.role.is_some() || patch.status.is_some()) && !is_admin {
            return Err(ApiError::Forbidden.into());
        }
        if (patch.name.is_some() || patch.email.is_some()) && !actor.may_manage(id) {
            return Err(ApiError::Forbidden.into());
        }
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(raw) = &patch.name {
            match UserName::parse(raw) {
                Ok(name) => next.name = name.as_str().to_string(),
                Err(m) => errors.push(FieldError::new("name", m)),
            }
        }
        // A new email is never written here: it becomes a pending change that the auth service
        // mails to the new address, and applies (`UsersApi::apply_email_change`) only once that
        // link is followed (docs/ARCHITECTURE.md "Email change").
        let mut requested_email = None;
        if let Some(raw) = &patch.email {
            match Email::parse(raw) {
                Ok(email) if email.as_str() != current.email => requested_email = Some(email.as_str().to_string()),
                Ok(_) => {}
                Err(m) => errors.push(FieldError::new("email", m)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors).into());
        }
        next.role = patch.role.unwrap_or(current.role);
        next.status = patch.status.unwrap_or(current.status);
        if next == current && requested_email.is_none() {
            return Ok(Some(current));
        }
        let role_changed = next.role != current.role;
        let status_changed = next.status != current.status;
        if role_changed || status_changed || requested_email.is_some() {
            // An email change, or an admin's change of someone's (or their own) role or status:
            // nothing changes without the caller's own fresh proof in the same request (one check
            // per request, so a single-use code serves the whole change).
            let proof = StepUpProof::from_fields(patch.current_password.as_deref(), patch.current_code.as_deref());
            self.step_up_proof(actor, proof.as_ref()).await?;
        }
        if let Some(new_email) = requested_email {
            // The same answer whether or not the address is taken (the auth service decides what
            // to mail), and nothing of the account changes until the link is followed.
            let req = EmailChangeRequest { user_id: id, new_email, actor_id: actor.user_id };
            self.sessions()?.request_email_change(&req).await?;
            tracing::info!(user_id = %id, actor_id = %actor.user_id, "email change requested; pending verification");
            if next == current {
                return Ok(Some(current));
            }
        }
        let active_admin = |u: &User| u.role == Role::Admin && u.status == UserStatus::Active;
        // Decided inside the write's transaction (the administrators' rows held); this early
        // look only spares ending the user's sessions for a change that will be refused.
        let keep_an_admin = active_admin(&current) && !active_admin(&next);
        if keep_an_admin && self.store.active_admins().await? <= 1 {
            return Err(ApiError::Conflict(LAST_ADMIN.into()).into());
        }
        next.updated_at = micros(self.clock.now());
        let mut events = Vec::new();
        let event =
            |kind: &str, data: serde_json::Value| Event::new(kind, id, Some(actor.user_id), next.updated_at, data);
        if role_changed {
            events.push(event(
                "users.role_changed",
                json!({ "user_id": id, "from": current.role.as_str(), "to": next.role.as_str() }),
            ));
        }
        if status_changed {
            events.push(event(
                "users.status_changed",
                json!({ "user_id": id, "from": current.status.as_str(), "to": next.status.as_str() }),
            ));
        }
        let mut fields = Vec::new();
        if next.name != current.name {
            fields.push("name");
        }
        if !fields.is_empty() {
            events.push(event("users.profile_updated", json!({ "user_id": id, "fields": fields })));
        }
        let reason = match (role_changed, status_changed) {
            (true, _) => Some(SessionEndReason::RoleChanged),
            (false, true) => Some(SessionEndReason::StatusChanged),
            (false, false) => None,
        };
        if let Some(reason) = reason {
            // If the auth service cannot end them, nothing changes (503): a new role or status
            // never goes live while sessions of the old one do.
            self.sessions()?.end_all_sessions(id, reason).await?;
        }
        let Some(key) = &opened.key else { return Err(ApiError::NotFound.into()) };
        let mut stored = row.clone();
        stored.role = next.role;
        stored.status = next.status;
        stored.email_verified = next.email_verified;
        stored.updated_at = next.updated_at;
        if next.name != current.name {
            stored.name = Some(key.seal(Column::Name, next.name.as_bytes()));
        }
        let tokens: Option<Vec<SearchToken>> =
            (!fields.is_empty()).then(|| self.keys.search_tokens(&next.name, &next.email).into_iter().collect());
        let outcome = self.store.update(&stored, &row, tokens.as_deref(), keep_an_admin, &events).await;
        match outcome {
            Ok(UpdateOutcome::Updated) => {}
            Ok(UpdateOutcome::Stale) => {
                let now = self.store.get(id).await?;
                if now.updated_at == row.updated_at {
                    // Only re-encrypted: the user is unchanged, so the caller redoes the change.
                    return Ok(None);
                }
                if if_match.is_some() {
                    return Err(UpdateError::PreconditionFailed);
                }
                return Err(ApiError::Conflict("the user changed meanwhile; read it again and retry".into()).into());
            }
            Ok(UpdateOutcome::LastAdmin) => return Err(ApiError::Conflict(LAST_ADMIN.into()).into()),
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::Invalid(vec![FieldError::new("email", "is already registered")]).into());
            }
            Err(e) => return Err(e.into()),
        }
        self.wake_relay();
        if let Some(reason) = reason {
            // A login between the first ending and the commit got a token of the old role.
            if let Err(e) = self.sessions()?.end_all_sessions(id, reason).await {
                tracing::error!(user_id = %id, error = %e, "could not end the sessions started during a role or status change");
            }
            tracing::info!(
                user_id = %id,
                actor_id = %actor.user_id,
                role = next.role.as_str(),
                status = next.status.as_str(),
                "role or status changed; sessions ended"
            );
        }
        Ok(Some(next))
    }

    /// Applies a verified email change (`UsersApi::apply_email_change`, called by the auth
    /// service once the link mailed to the new address, or the old address's undo link, was
    /// followed): the address, its blind index and search tokens change and it is verified, with
    /// `users.profile_updated` (`fields: ["email"]`), in one optimistic write. Another account
    /// holding the address by now is `Conflict` (the unique blind index decides, inside the
    /// write), and nothing is written.
    pub async fn apply_email_change(&self, id: Uuid, raw: &str) -> Result<(), ApiError> {
        let email = Email::parse(raw).map_err(|m| ApiError::Invalid(vec![FieldError::new("email", m)]))?;
        for _ in 0..3 {
            let (row, opened) = self.load(id).await?;
            let (true, Some(key)) = (row.erasure_started_at.is_none(), &opened.key) else {
                return Err(ApiError::NotFound);
            };
            let current = opened.user;
            if current.email == email.as_str() && current.email_verified {
                return Ok(());
            }
            let at = micros(self.clock.now());
            let mut stored = row.clone();
            stored.email = Some(key.seal(Column::Email, email.as_str().as_bytes()));
            stored.email_index = Some(self.keys.email_index(email.as_str()));
            stored.email_verified = true;
            stored.updated_at = at;
            let tokens: Vec<SearchToken> = self.keys.search_tokens(&current.name, email.as_str()).into_iter().collect();
            let event = Event::new(
                "users.profile_updated",
                id,
                Some(id),
                at,
                json!({ "user_id": id, "fields": ["email", "email_verified"] }),
            );
            match self.store.update(&stored, &row, Some(&tokens), false, &[event]).await {
                Ok(UpdateOutcome::Updated) => {
                    self.wake_relay();
                    tracing::info!(user_id = %id, "email change applied");
                    return Ok(());
                }
                // Changed or re-encrypted meanwhile: read it again.
                Ok(UpdateOutcome::Stale) => continue,
                Ok(UpdateOutcome::LastAdmin) => return Err(ApiError::Internal("an email change touched roles".into())),
                Err(StoreError::Conflict(_)) => return Err(ApiError::Conflict("email already registered".into())),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict("the user changed meanwhile; try again".into()))
    }

    /// `GET /api/users/{id}/preferences`: the user's own (or, for an admin, anyone's).
    pub async fn preferences(&self, actor: Actor, id: Uuid) -> Result<Preferences, ApiError> {
        if !actor.may_manage(id) {
            return Err(ApiError::Forbidden);
        }
        let (row, opened) = self.load(id).await?;
        if row.erasure_started_at.is_some() {
            return Err(ApiError::NotFound);
        }
        self.open_preferences(&row, &opened)
    }

    /// `PUT /api/users/{id}/preferences`: replaces the whole document (absent keys take their
    /// defaults); every invalid field is reported at once (422).
    pub async fn set_preferences(
        &self,
        actor: Actor,
        id: Uuid,
        body: &serde_json::Value,
    ) -> Result<Preferences, ApiError> {
        if !actor.may_manage(id) {
            return Err(ApiError::Forbidden);
        }
        let prefs = crate::preferences::parse(body).map_err(ApiError::Invalid)?;
        let json = serde_json::to_vec(&prefs).map_err(|e| ApiError::Internal(e.to_string()))?;
        for _ in 0..3 {
            let (row, opened) = self.load(id).await?;
            let (true, Some(key)) = (row.erasure_started_at.is_none(), &opened.key) else {
                return Err(ApiError::NotFound);
            };
            if self.open_preferences(&row, &opened)? == prefs {
                return Ok(prefs);
            }
            let mut stored = row.clone();
            stored.preferences = Some(key.seal(Column::Preferences, &json));
            stored.updated_at = micros(self.clock.now());
            let event = Event::new(
                "users.preferences_updated",
                id,
                Some(actor.user_id),
                stored.updated_at,
                json!({ "user_id": id }),
            );
            match self.store.update(&stored, &row, None, false, &[event]).await? {
                UpdateOutcome::Updated => {
                    self.wake_relay();
                    return Ok(prefs);
                }
                // Changed meanwhile (or re-encrypted): this PUT replaces the whole document, so
                // apply it to the new version.
                UpdateOutcome::Stale | UpdateOutcome::LastAdmin => continue,
            }
        }
        Err(ApiError::Conflict("the user changed meanwhile; retry".into()))
    }

    /// `GET /api/users`: admins find anyone (with `status` and `role` filters) and see whole
    /// users, and every page that shows someone else is audited (`users.searched` with their
    /// ids). Everyone else finds only active users who share a project with them (themself
    /// included), sees `{id, name}`, and `q` matches their names only, never email text
    /// (docs/SECURITY.md: no enumeration of accounts by address); without `q` they get those
    /// co-members, never everyone. `q` matches the beginnings of words, every word of `q` having
    /// to match.
    pub async fn search(&self, actor: Actor, query: SearchQuery) -> Result<UserPage, ApiError> {
        let is_admin = actor.role == Role::Admin;
        let page = self.search_page(actor, query).await?;
        if is_admin {
            let seen: Vec<Uuid> = page
                .items
                .iter()
                .filter_map(|i| match i {
                    UserListItem::Full(u) if u.id != actor.user_id => Some(u.id),
                    _ => None,
                })
                .collect();
            if !seen.is_empty() {
                self.record(Event::new(
                    "users.searched",
                    actor.user_id,
                    Some(actor.user_id),
                    self.clock.now(),
                    json!({ "user_ids": seen }),
                ))
                .await?;
            }
        }
        Ok(page)
    }

    async fn search_page(&self, actor: Actor, query: SearchQuery) -> Result<UserPage, ApiError> {
        let is_admin = actor.role == Role::Admin;
        let mut errors = Vec::new();
        let limit = query.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 100"));
        }
        if !is_admin && (query.status.is_some() || query.role.is_some()) {
            return Err(ApiError::Forbidden);
        }
        let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let tokens = match q {
            Some(q) if q.chars().count() > 200 => {
                errors.push(FieldError::new("q", "must be at most 200 characters"));
                Vec::new()
            }
            Some(q) => self.keys.query_tokens(q).unwrap_or_else(|| {
                errors.push(FieldError::new("q", "needs a word of at least 2 letters or digits"));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let after =
            match &query.cursor {
                None => None,
                Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                    ApiError::Invalid(vec![FieldError::new("cursor", "is not a cursor of this list")])
                })?),
            };
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let status = if is_admin { query.status } else { Some(UserStatus::Active) };
        let ids = if is_admin {
            None
        } else {
            let people = self
                .people
                .get()
                .ok_or_else(|| ApiError::Unavailable("the projects service is not connected".into()))?;
            let mut ids = people.co_members(actor.user_id).await?;
            ids.push(actor.user_id);
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        };
        let mut filter = SearchFilter { tokens, status, role: query.role, ids, after, limit: limit + 1 };
        let mut items = Vec::new();
        // Tokens can match more than the words do (prefixes cut at 16 characters); the decrypted
        // text decides, so a batch may yield fewer users than asked: read on, a bounded number of
        // times, then hand back a cursor.
        for _ in 0..8 {
            let rows = self.store.search(&filter).await?;
            let exhausted = rows.len() < filter.limit as usize;
            for row in &rows {
                filter.after = Some(row.id);
                let opened = self.open(row)?;
                // Email text is searchable by admins only.
                let email = if is_admin { opened.user.email.as_str() } else { "" };
                if let Some(q) = q
                    && !crate::pii::matches(q, &opened.user.name, email)
                {
                    continue;
                }
                if items.len() == limit as usize {
                    let last = match items.last() {
                        Some(UserListItem::Full(u)) => u.id,
                        Some(UserListItem::Public(p)) => p.id,
                        None => row.id,
                    };
                    return Ok(UserPage { items, next_cursor: Some(encode_cursor(last)) });
                }
                items.push(if is_admin {
                    UserListItem::Full(opened.user)
                } else {
                    UserListItem::Public(PublicUser { id: row.id, name: opened.user.name })
                });
            }
            if exhausted {
                return Ok(UserPage { items, next_cursor: None });
            }
        }
        Ok(UserPage { items, next_cursor: filter.after.map(encode_cursor) })
    }

    fn wake_relay(&self) {
        if let Some(w) = &self.outbox_waker {
            w.notify_one();
        }
    }
}

const LAST_ADMIN: &str = "the last active administrator cannot be demoted or deactivated";

pub(crate) fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub(crate) fn decode_cursor(raw: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    Uuid::from_slice(&bytes).ok()
}

#[async_trait]
impl UsersApi for UsersService {
    async fn create_user(&self, new: NewUser) -> Result<User, ApiError> {
        let mut errors = Vec::new();
        let email = Email::parse(&new.email).map_err(|m| errors.push(FieldError::new("email", m))).ok();
        let name = UserName::parse(&new.name).map_err(|m| errors.push(FieldError::new("name", m))).ok();
        let (Some(email), Some(name)) = (email, name) else {
            return Err(ApiError::Invalid(errors));
        };
        let now = micros(self.clock.now());
        let user = User {
            id: new.id,
            email: email.as_str().to_string(),
            name: name.as_str().to_string(),
            role: new.role,
            status: UserStatus::Active,
            email_verified: false,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        };
        let (key, wrapped) = self.keys.new_data_key(user.id);
        let stored = StoredUser {
            id: user.id,
            email_index: Some(self.keys.email_index(&user.email)),
            email: Some(key.seal(Column::Email, user.email.as_bytes())),
            name: Some(key.seal(Column::Name, user.name.as_bytes())),
            preferences: None,
            data_key: Some(wrapped.bytes),
            key_version: wrapped.version,
            role: user.role,
            status: user.status,
            email_verified: false,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
            erasure_started_at: None,
            erased_at: None,
        };
        let tokens: Vec<SearchToken> = self.keys.search_tokens(&user.name, &user.email).into_iter().collect();
        let event = Event::new("user.created", user.id, Some(user.id), now, json!({ "user_id": user.id }));
        self.store.insert(&stored, &tokens, &event).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("email already registered".into()),
            other => other.into(),
        })?;
        self.wake_relay();
        Ok(user)
    }

    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        Ok(self.load(id).await?.1.user)
    }

    async fn find_by_email(&self, email: &str) -> Result<User, ApiError> {
        let email = Email::parse(email).map_err(|_| ApiError::NotFound)?;
        let row = self.store.find_by_email_index(&self.keys.email_index(email.as_str())).await?;
        Ok(self.open(&row)?.user)
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool) -> Result<(), ApiError> {
        Ok(self.store.set_mfa_enabled(id, enabled, self.clock.now()).await?)
    }

    async fn discard_new_user(&self, id: Uuid) -> Result<(), ApiError> {
        Ok(self.store.delete(id).await?)
    }

    async fn set_email_verified(&self, id: Uuid) -> Result<(), ApiError> {
        let now = self.clock.now();
        let event =
            Event::new("user.updated", id, Some(id), now, json!({ "user_id": id, "changed": ["email_verified"] }));
        if self.store.set_email_verified(id, now, &event).await? {
            self.wake_relay();
        }
        Ok(())
    }

    async fn apply_email_change(&self, id: Uuid, email: &str) -> Result<(), ApiError> {
        UsersService::apply_email_change(self, id, email).await
    }

    async fn notification_settings(&self, id: Uuid) -> Result<NotificationSettings, ApiError> {
        let (row, opened) = self.load(id).await?;
        if row.erasure_started_at.is_some() {
            return Err(ApiError::NotFound);
        }
        let n = self.open_preferences(&row, &opened)?.notifications;
        Ok(NotificationSettings { task_assigned: n.task_assigned, mentioned: n.mentioned, comments: n.comments })
    }
}
