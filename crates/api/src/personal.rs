//! Personal data held about one user across services (GDPR Art. 15, 17 and 20): each service
//! that stores anything about a user exports it and erases it through `PersonalDataApi`, and the
//! users service assembles one export document and runs erasure across all of them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ApiError;

/// Whose data: the user's id and, while it is still known, their normalized email (the auth
/// service keys its failed-login counts by a keyed hash of the email, not by the id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSubject {
    pub user_id: Uuid,
    pub email: Option<String>,
}

/// One service's share of a user's personal data: for every table of the service that holds
/// data about users, the rows about this user, as JSON objects. A table that holds nothing about
/// this user is present with no rows, so the export names every table it looked in. Secrets
/// (password hashes, TOTP seeds, token hashes) are described (`"password_set": true`), never
/// copied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalData {
    pub tables: BTreeMap<String, Vec<serde_json::Value>>,
}

/// What an erasure did in one service, for the erasure event and the logs (counts only: no
/// personal data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureReport {
    /// Table name → rows deleted or made pseudonymous.
    pub tables: BTreeMap<String, u64>,
}

/// Export and erasure of one user's data in one service.
#[async_trait]
pub trait PersonalDataApi: Send + Sync {
    /// Every row about the subject in this service's tables.
    async fn export(&self, subject: &DataSubject) -> Result<PersonalData, ApiError>;
    /// Deletes the subject's rows or makes them pseudonymous. Idempotent: erasing again, or
    /// after an interrupted erasure, finishes the work and changes nothing already done.
    async fn erase(&self, subject: &DataSubject) -> Result<ErasureReport, ApiError>;
}
