//! Personal data (GDPR Art. 15, 17 and 20, docs/SECURITY.md GD-1 and GD-2): what the auth tables hold
//! about one user, exported and erased through `api::personal::PersonalDataApi`.
//!
//! The export has one entry per table of [`PERSONAL_DATA_TABLES`], empty or not, and never a
//! secret: the store does not even read the password hash, the TOTP seed, token and code hashes
//! or the throttle keys; the export says that they exist (`"password_set": true`,
//! `"confirmed": true`, `"used": false`). `auth_signing_keys` holds nothing about users.
//!
//! Erasure ends every session (revoked in the database, then published to the shared cache like
//! a logout-all, so access tokens die at once) and deletes every row about the user, in one
//! transaction with the outbox event `auth.user_erased` `{user_id, tables: {name: count}}`. An
//! erasure that finds nothing left writes no event, so running it again changes nothing.

use api::ApiError;
use api::personal::{DataSubject, ErasureReport, PersonalData, PersonalDataApi};
use async_trait::async_trait;
use platform::bus::Event;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AuthService;
use crate::domain;
use crate::ports::{ErasedCounts, PERSONAL_DATA_TABLES, PersonalRows, SubjectKeys};
use crate::totp;

/// A time as RFC 3339 text, as in every API answer.
fn at(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

fn opt_at(t: Option<OffsetDateTime>) -> Value {
    t.map(at).unwrap_or(Value::Null)
}

/// The JSON rows of every table, from rows that carry no secret.
fn tables(user_id: uuid::Uuid, rows: PersonalRows) -> PersonalData {
    let mut data = PersonalData::default();
    for table in PERSONAL_DATA_TABLES {
        data.tables.insert(table.to_string(), Vec::new());
    }
    let mut put = |table: &str, row: Value| data.tables.entry(table.to_string()).or_default().push(row);
    if let Some((created_at, updated_at)) = rows.credential {
        put(
            "auth_credentials",
            json!({ "user_id": user_id, "password_set": true, "created_at": at(created_at), "updated_at": at(updated_at) }),
        );
    }
    for s in rows.sessions {
        put(
            "auth_sessions",
            json!({
                "id": s.id, "user_id": s.user_id, "user_agent": s.user_agent, "ip": s.ip,
                "created_at": at(s.created_at), "last_used_at": at(s.last_used_at),
                "expires_at": at(s.expires_at), "revoked_at": opt_at(s.revoked_at),
            }),
        );
    }
    for t in rows.refresh_tokens {
        put(
            "auth_refresh_tokens",
            json!({
                "session_id": t.session_id, "issued_at": at(t.issued_at),
                "used": t.used_at.is_some(), "used_at": opt_at(t.used_at),
            }),
        );
    }
    for f in rows.login_failures {
        put(
            "auth_login_failures",
            json!({
                "counter": f.counter.as_str(), "consecutive_failures": f.consecutive,
                "blocked_until": at(f.blocked_until), "last_failed_at": at(f.last_failed_at),
            }),
        );
    }
    if let Some(t) = rows.totp {
        // The last accepted step, as the start of its 30-second window.
        let last_code_at = t
            .last_step
            .and_then(|step| step.checked_mul(totp::PERIOD_SECS))
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
        put(
            "auth_totp",
            json!({
                "user_id": user_id, "secret_set": true, "confirmed": t.enabled_at.is_some(),
                "created_at": at(t.created_at), "enabled_at": opt_at(t.enabled_at),
                "last_code_accepted_at": opt_at(last_code_at),
            }),
        );
    }
    for used_at in rows.recovery_codes {
        put(
            "auth_recovery_codes",
            json!({ "user_id": user_id, "used": used_at.is_some(), "used_at": opt_at(used_at) }),
        );
    }
    for c in rows.mfa_challenges {
        put(
            "auth_mfa_challenges",
            json!({
                "user_id": user_id, "user_agent": c.user_agent, "ip": c.ip,
                "created_at": at(c.created_at), "expires_at": at(c.expires_at),
                "wrong_codes": c.attempts, "used": c.used_at.is_some(), "used_at": opt_at(c.used_at),
            }),
        );
    }
    for t in rows.email_tokens {
        put(
            "auth_email_tokens",
            json!({
                "user_id": user_id, "purpose": t.purpose, "created_at": at(t.created_at),
                "expires_at": at(t.expires_at), "used": t.used_at.is_some(), "used_at": opt_at(t.used_at),
            }),
        );
    }
    data
}

impl AuthService {
    /// The keys under which the auth tables file the subject's rows.
    fn subject_keys(&self, subject: &DataSubject) -> SubjectKeys {
        let hasher = &self.settings.hasher;
        SubjectKeys {
            user_id: subject.user_id,
            login_key: subject.email.as_deref().map(|e| hasher.account_key(&domain::normalize_email(e))),
            mfa_key: hasher.mfa_key(subject.user_id),
        }
    }
}

#[async_trait]
impl PersonalDataApi for AuthService {
    async fn export(&self, subject: &DataSubject) -> Result<PersonalData, ApiError> {
        let rows = self.store.personal_rows(self.subject_keys(subject)).await?;
        tracing::info!(user_id = %subject.user_id, "personal data exported");
        Ok(tables(subject.user_id, rows))
    }

    async fn erase(&self, subject: &DataSubject) -> Result<ErasureReport, ApiError> {
        let user_id = subject.user_id;
        let now = self.clock.now();
        let event = Box::new(move |counts: &ErasedCounts| {
            // Nothing left to erase: no second event.
            counts.values().any(|n| *n > 0).then(|| {
                Event::new("auth.user_erased", user_id, None, now, json!({ "user_id": user_id, "tables": counts }))
            })
        });
        let erasure = self.store.erase_user(self.subject_keys(subject), now, event).await?;
        self.wake_relay();
        // Like a logout-all: verifiers refuse the sessions' access tokens at once.
        self.publish_revocations(&erasure.revoked).await;
        let rows: u64 = erasure.counts.values().sum();
        tracing::info!(%user_id, ended_sessions = erasure.revoked.len(), rows, "personal data erased");
        Ok(ErasureReport { tables: erasure.counts })
    }
}
