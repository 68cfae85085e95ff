//! The worker's admin API (docs/API.md "Admin"): `GET /api/admin/audit-log` (filters `actor_id`,
//! `action`, `from`, `to`; keyset pages newest first), `GET /api/admin/audit-log/verify` (the
//! archives in object storage, then the table) and `GET /api/admin/stats` (usage per day or week,
//! counted from the audit log: `stats`). The role gate (`api::policy`, layered outside) lets
//! administrators only reach them.

use api::FieldError;
use std::sync::Arc;

use api::audit::{
    AdminStats, AuditEntry, AuditPage, AuditVerification, BrokenArchive, BrokenEntry, StatsBucket, StatsPeriod,
    StatsTotals,
};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use platform::http::{Authenticated, Json, Problem};
use platform::objects::ObjectStore;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::audit::{AuditLog, AuditQuery, decode_cursor};
use crate::stats::{StatsRange, parse_date};

/// What the admin routes need: the audit log and the object storage holding its archives.
#[derive(Clone)]
pub struct AdminState {
    pub log: AuditLog,
    pub objects: Arc<dyn ObjectStore>,
}

/// The admin routes with their state.
pub fn router(log: AuditLog, objects: Arc<dyn ObjectStore>) -> Router {
    routes().with_state(AdminState { log, objects })
}

/// The routes before their state (the role-gate table test walks them).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/admin/audit-log", get(list))
        .route("/api/admin/audit-log/verify", get(verify))
        .route("/api/admin/stats", get(stats))
}

/// The OpenAPI paths of the worker's admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(
        paths(list, verify, stats),
        components(schemas(
            AuditEntry,
            AuditPage,
            AuditVerification,
            BrokenEntry,
            BrokenArchive,
            AdminStats,
            StatsBucket,
            StatsPeriod,
            StatsTotals
        ))
    )]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    actor_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn parse_query(q: ListQuery) -> Result<AuditQuery, Problem> {
    let mut errors = Vec::new();
    let mut field = |name: &str, msg: &str| errors.push(FieldError::new(name, msg));
    let actor_id = match q.actor_id.as_deref().map(Uuid::parse_str) {
        Some(Err(_)) => {
            field("actor_id", "must be a UUID");
            None
        }
        other => other.and_then(Result::ok),
    };
    let mut time = |name: &str, v: Option<&str>| match v.map(|v| OffsetDateTime::parse(v, &Rfc3339)) {
        Some(Err(_)) => {
            field(name, "must be an RFC 3339 date-time");
            None
        }
        other => other.and_then(Result::ok),
    };
    let from = time("from", q.from.as_deref());
    let to = time("to", q.to.as_deref());
    let limit = match q.limit.as_deref().map(str::parse::<u32>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new("limit", "must be between 1 and 100"));
            20
        }
    };
    let before = match q.cursor.as_deref().map(decode_cursor) {
        None => None,
        Some(Some(seq)) => Some(seq),
        Some(None) => {
            errors.push(FieldError::new("cursor", "is not a cursor this list gave"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok(AuditQuery { actor_id, action: q.action, from, to, before, limit })
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/admin/audit-log", tag = "admin",
    params(("actor_id" = Option<Uuid>, Query), ("action" = Option<String>, Query, description = "event type, e.g. project.created"),
           ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
           ("to" = Option<String>, Query, description = "RFC 3339, inclusive"),
           ("limit" = Option<u32>, Query, description = "1–100, default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = AuditPage), (status = 401, description = "not signed in"),
              (status = 403, description = "not an administrator"), (status = 422, description = "invalid filter")))]
async fn list(
    State(AdminState { log, .. }): State<AdminState>,
    Authenticated(_caller): Authenticated,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let (items, next_cursor) = log.list(parse_query(q)?).await?;
    Ok(Json(AuditPage { items, next_cursor }))
}

/// Checks the whole hash chain: every archive in object storage (downloaded, its SHA-256 and its
/// entries' chain checked), then the entries still in the table, which must continue the newest
/// archive. Names the first archive or entry that breaks it.
#[utoipa::path(get, path = "/api/admin/audit-log/verify", tag = "admin",
    responses((status = 200, body = AuditVerification), (status = 401, description = "not signed in"),
              (status = 403, description = "not an administrator")))]
async fn verify(
    State(state): State<AdminState>,
    Authenticated(_caller): Authenticated,
) -> Result<Json<AuditVerification>, Problem> {
    Ok(Json(state.log.verify_all(Some(state.objects.as_ref())).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Sign-ups, active users, projects and tasks created, tasks completed, per UTC day or ISO week,
/// counted from the audit log. Entries already archived to object storage (older than the
/// retention, a year by default) are no longer counted.
#[utoipa::path(get, path = "/api/admin/stats", tag = "admin",
    params(("period" = Option<StatsPeriod>, Query, description = "day (default) or week (Monday to Sunday, UTC)"),
           ("from" = Option<String>, Query, description = "YYYY-MM-DD, moved to the start of its period; default: 30 days or 12 weeks before to"),
           ("to" = Option<String>, Query, description = "YYYY-MM-DD, moved to the end of its period; default: today (UTC)")),
    responses((status = 200, body = AdminStats), (status = 401, description = "not signed in"),
              (status = 403, description = "not an administrator"),
              (status = 422, description = "invalid period or date, from after to, or more than 366 periods")))]
async fn stats(
    State(AdminState { log, .. }): State<AdminState>,
    Authenticated(_caller): Authenticated,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<AdminStats>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let mut errors = Vec::new();
    let period = match q.period.as_deref() {
        None | Some("day") => StatsPeriod::Day,
        Some("week") => StatsPeriod::Week,
        Some(_) => {
            errors.push(FieldError::new("period", "must be day or week"));
            StatsPeriod::Day
        }
    };
    let mut date = |name: &str, v: Option<&str>| match v.map(parse_date) {
        Some(None) => {
            errors.push(FieldError::new(name, "must be a date (YYYY-MM-DD)"));
            None
        }
        other => other.flatten(),
    };
    let (from, to) = (date("from", q.from.as_deref()), date("to", q.to.as_deref()));
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let today = OffsetDateTime::now_utc().date();
    let range = StatsRange::resolve(period, from, to, today).map_err(|e| Problem::invalid(vec![e]))?;
    Ok(Json(log.stats(range).await?))
}
