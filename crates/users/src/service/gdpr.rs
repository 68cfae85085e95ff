//! The user's rights over their data (GDPR Art. 15, 17, 20): one export document gathered from
//! every service, and an erasure run across every service that can be resumed after any
//! interruption and repeated without effect.

use std::collections::BTreeMap;

use api::ApiError;
use api::personal::{DataSubject, PersonalData};
use api::users::{Role, User};
use platform::bus::Event;
use platform::db::StoreError;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Actor, UsersService, micros};
use crate::preferences::Preferences;

/// The document of `GET /api/users/{id}/export`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportDocument {
    /// `trellis.export/1`.
    pub format: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    pub user: User,
    pub preferences: Preferences,
    /// Service → table → the rows about the user, every table holding data about users listed
    /// (empty when it holds nothing about this one).
    #[schema(value_type = Object)]
    pub services: BTreeMap<String, PersonalData>,
}

impl UsersService {
    /// `POST /api/users/{id}/export`, for the user themself or an admin (which leaves an event),
    /// with the caller's own current password (step-up: a stolen access token alone downloads
    /// nothing). Fails as a whole (503) when a service holding data cannot answer: an export that
    /// silently lacks a part would mislead.
    pub async fn export(&self, actor: Actor, id: Uuid, proof: Option<&str>) -> Result<ExportDocument, ApiError> {
        if !actor.may_manage(id) {
            return Err(ApiError::Forbidden);
        }
        let (row, opened) = self.load(id).await?;
        self.step_up(actor, proof).await?;
        let preferences = self.open_preferences(&row, &opened)?;
        let subject = DataSubject { user_id: id, email: Some(opened.user.email.clone()).filter(|e| !e.is_empty()) };
        let mut services = BTreeMap::new();
        for (name, holder) in self.holders()? {
            services.insert((*name).to_string(), holder.export(&subject).await?);
        }
        let user = &opened.user;
        let mut own = PersonalData::default();
        own.tables.insert(
            "users".into(),
            vec![json!({
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "role": user.role,
                "status": user.status,
                "email_verified": user.email_verified,
                "mfa_enabled": user.mfa_enabled,
                "preferences": preferences,
                "created_at": rfc3339(user.created_at),
                "updated_at": rfc3339(user.updated_at),
                "key_version": row.key_version,
                "data_key": if row.data_key.is_some() { "held (wrapped)" } else { "destroyed" },
                "erasure_started_at": row.erasure_started_at.map(rfc3339),
                "erased_at": row.erased_at.map(rfc3339),
            })],
        );
        let tokens = self.store.count_tokens(id).await?;
        own.tables.insert(
            "user_search_tokens".into(),
            vec![json!({
                "user_id": id,
                "tokens": tokens,
                "what": "keyed hashes of the beginnings of the words of your name and email, for search",
            })],
        );
        let events = self.store.events_about(id).await?;
        own.tables.insert(
            "outbox".into(),
            events
                .into_iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "type": e.event_type,
                        "aggregate_id": e.aggregate_id,
                        "actor_id": e.actor_id,
                        "occurred_at": rfc3339(e.occurred_at),
                        "data": e.data,
                    })
                })
                .collect(),
        );
        services.insert("users".into(), own);
        let now = self.clock.now();
        // Recorded after the export succeeded, so that it is not part of it.
        self.record(Event::new("users.data_exported", id, Some(actor.user_id), now, json!({ "user_id": id }))).await?;
        tracing::info!(user_id = %id, actor_id = %actor.user_id, "personal data exported");
        Ok(ExportDocument { format: "trellis.export/1", exported_at: now, user: opened.user, preferences, services })
    }

    /// `DELETE /api/users/{id}`: the user themself or an admin, either with their own current
    /// password (step-up). Idempotent: an erased user answers as erased again. The last active
    /// administrator is refused (409) inside the transaction that starts the erasure.
    pub async fn erase(&self, actor: Actor, id: Uuid, proof: Option<&str>) -> Result<(), ApiError> {
        if !actor.may_manage(id) {
            return Err(ApiError::Forbidden);
        }
        let row = self.store.get(id).await?;
        if row.erased_at.is_some() {
            return Ok(());
        }
        self.step_up(actor, proof).await?;
        // An early look (the transaction decides): spares the auth service a needless call.
        if row.erasure_started_at.is_none()
            && row.role == Role::Admin
            && row.status == api::users::UserStatus::Active
            && self.store.active_admins().await? <= 1
        {
            return Err(ApiError::Conflict("the last active administrator cannot be erased".into()));
        }
        self.run_erasure(id, Some(actor.user_id)).await
    }

    /// Runs (or resumes) an erasure: marks the user deleted, has every other service erase what
    /// it holds, then destroys the user's personal data and data key. Each step is idempotent, so
    /// an erasure interrupted anywhere completes when run again.
    pub(super) async fn run_erasure(&self, id: Uuid, actor: Option<Uuid>) -> Result<(), ApiError> {
        let holders = self.holders()?;
        let now = micros(self.clock.now());
        let started = Event::new("users.erasure_started", id, actor, now, json!({ "user_id": id }));
        let row = self.store.begin_erasure(id, now, &started).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("the last active administrator cannot be erased".into()),
            other => other.into(),
        })?;
        self.wake_relay();
        if row.erased_at.is_some() {
            return Ok(());
        }
        let opened = self.open(&row)?;
        let subject = DataSubject { user_id: id, email: Some(opened.user.email).filter(|e| !e.is_empty()) };
        let mut report = serde_json::Map::new();
        for (name, holder) in holders {
            let done = holder.erase(&subject).await?;
            report.insert((*name).to_string(), json!(done.tables));
        }
        let erased = Event::new(
            "user.erased",
            id,
            actor,
            micros(self.clock.now()),
            json!({ "user_id": id, "services": report }),
        );
        if self.store.finish_erasure(id, erased.occurred_at, &erased).await? {
            self.wake_relay();
            tracing::info!(user_id = %id, "user erased");
        }
        Ok(())
    }

    /// Completes the erasures an interruption left unfinished; run on start. Returns how many
    /// were completed.
    pub async fn resume_erasures(&self) -> Result<usize, ApiError> {
        let pending = self.store.unfinished_erasures().await?;
        for id in &pending {
            tracing::info!(user_id = %id, "resuming an interrupted erasure");
            self.run_erasure(*id, None).await?;
        }
        Ok(pending.len())
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
