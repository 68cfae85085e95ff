//! Composition: builds the adapters chosen by the settings, the services this process runs, and
//! for every other service the HTTP client that reaches it, then serves until shutdown.
//!
//! The rule (quickwit's): a consumer of a service gets the local implementation when the service
//! runs in this process, and an HTTP client otherwise. All-in-one mode is nothing but every
//! service local plus the embedded adapters; there is no other code path.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::auth::{KeySource, SessionStatus, SessionsApi};
use api::personal::PersonalDataApi;
use api::projects::ProjectAccess;
use api::users::UsersApi;
use auth::passwords::PasswordHasher;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use gateway::{Backend, Backends, GatewayParts, ServiceName};
use platform::bus::{EventBus, InProcessBus, RabbitMqBus};
use platform::cache::{Cache, MemoryCache, RedisCache};
use platform::client::{PersonalDataClient, ProjectAccessClient, ServiceClient};
use platform::clock::{Clock, SystemClock};
use platform::crypto::SealingKey;
use platform::db::{Database, redact_url};
use platform::http::server::ServerLimits;
use platform::http::{
    ClientAddress, DEFAULT_BODY_LIMIT, Readiness, deadline, enforce_policy, health_routes, observe, problem_fallback,
    problems_for_errors, public_health_routes, reject_oversized, reject_unknown_methods, require_service,
    trust_only_the_gateway,
};
use platform::identity::TokenVerifier;
use platform::jobs::builtin::{IdempotencyKeysJob, OutboxJob, TempFilesJob};
use platform::jobs::{Job, JobReport, JobRunner, JobStatus, RunOutcome};
use platform::mail::{FileMailer, Mailer, SmtpMailer};
use platform::objects::ObjectStore;
use platform::outbox::Relay;
use tokio::sync::watch;
use utoipa::OpenApi as _;

use crate::config::{Secret, Settings, split_list};

/// Which services this process runs.
pub fn selected_services(spec: &str) -> anyhow::Result<BTreeSet<ServiceName>> {
    let mut out = BTreeSet::new();
    for name in split_list(spec) {
        if name == "all" {
            out.extend(ServiceName::all());
        } else {
            out.insert(name.parse::<ServiceName>().map_err(anyhow::Error::msg)?);
        }
    }
    anyhow::ensure!(!out.is_empty(), "no service selected");
    Ok(out)
}

/// Every migration set, in dependency order.
pub fn all_migrations() -> [platform::db::Migrations; 8] {
    [
        platform::outbox::MIGRATIONS,
        platform::mail::queue::MIGRATIONS,
        platform::jobs::MIGRATIONS,
        platform::http::idempotency::MIGRATIONS,
        users::MIGRATIONS,
        auth::MIGRATIONS,
        projects::MIGRATIONS,
        worker::MIGRATIONS,
    ]
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url();
    let db = Database::connect(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    for m in all_migrations() {
        db.migrate(&m).await?;
    }
    Ok(())
}

/// The OpenAPI document of the whole public API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(
        info(title = "Trellis", description = "Projects and tasks for teams: the public HTTP API, version 1."),
        paths(
            auth::http::register,
            auth::http::login,
            auth::http::login_mfa,
            auth::http::totp_setup,
            auth::http::totp_enable,
            auth::http::totp_disable,
            auth::http::regenerate_recovery_codes,
            auth::http::admin_reset_mfa,
            auth::http::confirm_email_change,
            auth::http::undo_email_change,
            auth::http::refresh,
            auth::http::introspect,
            auth::http::logout,
            auth::http::logout_all,
            auth::http::change_password,
            auth::http::forgot_password,
            auth::http::reset_password,
            auth::http::verify_email,
            auth::http::resend_verification,
            auth::http::sessions,
            auth::http::revoke_session,
            auth::http::jwks,
            users::http::me,
            users::http::get_user,
            users::http::update_user,
            users::http::erase_user,
            users::http::search,
            users::http::get_preferences,
            users::http::put_preferences,
            users::http::export,
            users::http::export_without_proof
        ),
        tags((name = "auth"), (name = "users"), (name = "projects"))
    )]
    struct Doc;
    let mut doc = Doc::openapi();
    doc.merge(projects::http::openapi());
    doc.merge(worker::http::openapi());
    doc.merge(worker::live::openapi());
    doc
}

fn remote(name: ServiceName, list: &str) -> anyhow::Result<Vec<String>> {
    let bases = split_list(list);
    anyhow::ensure!(
        !bases.is_empty(),
        "the {name} service does not run in this process: set upstreams.{name} (TRELLIS_UPSTREAMS__{}) to its address",
        name.as_str().to_uppercase()
    );
    Ok(bases)
}

/// Object storage and, for S3, the signer of its presigned URLs.
type Storage = (Arc<dyn ObjectStore>, Option<Arc<dyn platform::objects::Signer>>);

/// The deployment's object storage: the S3 bucket when `s3.endpoint` is set (with the signer of
/// presigned downloads), else the local folder `data/objects`.
pub fn object_storage(settings: &Settings) -> anyhow::Result<Storage> {
    Ok(match &settings.s3.endpoint {
        Some(endpoint) => {
            let (store, signer) = platform::objects::s3_presigning(&platform::objects::S3Location {
                endpoint: endpoint.clone(),
                bucket: settings.s3.bucket.clone(),
                region: settings.s3.region.clone(),
                access_key_id: settings.s3.access_key_id.clone().map(|s| s.0).unwrap_or_default(),
                secret_access_key: settings.s3.secret_access_key.clone().map(|s| s.0).unwrap_or_default(),
            })?;
            (store, Some(signer))
        }
        None => (platform::objects::local(&settings.data_dir.join("objects"))?, None),
    })
}

/// SMTP when `mail.smtp_url` (`SMTP_URL`) is set, else `.eml` files under `<data_dir>/mail`.
fn mailer(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = &settings.mail.from;
    Ok(match &settings.mail.smtp_url {
        Some(Secret(url)) => {
            let m = SmtpMailer::new(url, from).map_err(|e| anyhow::anyhow!("mail.smtp_url (SMTP_URL): {e}"))?;
            tracing::info!(server = %redact_url(url), "mail goes over SMTP");
            Arc::new(m)
        }
        None => {
            let dir = settings.data_dir.join("mail");
            let m = FileMailer::new(&dir, from).map_err(|e| anyhow::anyhow!("mail folder: {e}"))?;
            tracing::info!(folder = %dir.display(), "no SMTP_URL: mail is written to .eml files");
            Arc::new(m)
        }
    })
}

fn auth_settings(settings: &Settings, secrets: &crate::secrets::Secrets) -> anyhow::Result<auth::AuthSettings> {
    let a = &settings.auth;
    Ok(auth::AuthSettings {
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        access_token_ttl: Duration::from_secs(a.access_token_ttl_secs),
        session_lifetime: Duration::from_secs(a.session_lifetime_days * 86_400),
        session_idle_timeout: Duration::from_secs(a.session_idle_timeout_days * 86_400),
        refresh_reuse_grace: Duration::from_secs(a.refresh_reuse_grace_secs),
        password_min_len: a.password_min_length,
        ip_failure_limit: a.ip_failure_limit,
        ip_failure_window: Duration::from_secs(a.ip_failure_window_secs),
        register_limit: a.register_limit,
        register_window: Duration::from_secs(a.register_window_secs),
        hasher: PasswordHasher::new(secrets.pepper.clone().into(), a.bcrypt_cost, a.hash_workers, a.hash_queue),
        key_encryption_key: SealingKey::new(&secrets.key_encryption_key)?,
        mailer: mailer(settings)?,
        public_url: settings.public_url.trim_end_matches('/').to_string(),
        keys: auth::service::KeySettings {
            algorithm: a.signing_algorithm,
            rotation: Duration::from_secs(a.key_rotation_days * 86_400),
            check_interval: Duration::from_secs(a.key_check_interval_secs),
        },
    })
}

/// An auth error in words for an operator (field errors spelled out; never the password).
fn describe(e: auth::service::AuthError) -> String {
    match e {
        auth::service::AuthError::Api(api::ApiError::Invalid(errors)) => {
            errors.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

/// The users service of this deployment's database for a command run beside the servers (its
/// migrations applied and rows from before encryption at rest adopted), with the secrets.
async fn offline_users(
    settings: &Settings,
) -> anyhow::Result<(crate::secrets::Secrets, Database, Arc<users::UsersService>)> {
    let secrets = crate::secrets::resolve(settings, selected_services(&settings.services)?.len() == 5, true)?;
    let url = settings.database_url();
    let db = Database::connect(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    for m in all_migrations() {
        db.migrate(&m).await?;
    }
    let keys = secrets.pii.clone().context("the personal-data keys (pii.keys, pii.index_key) are not configured")?;
    let users = Arc::new(users::UsersService::new(users::store(&db), keys, Arc::new(SystemClock), None));
    users.adopt_plaintext().await.context("encrypting the users stored before encryption at rest")?;
    Ok((secrets, db, users))
}

/// What `trellis keys rotate-pii` did.
pub struct PiiRotation {
    pub rewritten: u64,
    pub remaining: u64,
    pub version: u32,
}

/// `trellis keys rotate-pii`: re-encrypts every user under the newest key-encryption key, in
/// batches of `batch_size` (each one transaction), stopping after `max_batches` when given. Safe
/// while servers run and after any interruption: it carries on from what is left.
pub async fn rotate_pii(settings: &Settings, batch_size: u32, max_batches: Option<u64>) -> anyhow::Result<PiiRotation> {
    let (secrets, _db, users) = offline_users(settings).await?;
    let version = secrets.pii.as_ref().map_or(0, |k| k.current_version());
    let total = users.count_stale_keys().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} users ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("re-encrypting under key version {version}"));
    let mut rewritten = 0;
    let mut batches = 0;
    loop {
        if max_batches.is_some_and(|m| batches >= m) {
            break;
        }
        let batch = users.rekey_batch(batch_size).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if batch.read == 0 {
            break;
        }
        batches += 1;
        rewritten += batch.written;
        bar.inc(batch.written);
        tracing::info!(rewritten, total, "personal data re-encrypted");
    }
    bar.finish_and_clear();
    let remaining = users.count_stale_keys().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(PiiRotation { rewritten, remaining, version })
}

/// `trellis admin create-user`: creates an account directly in this deployment's database.
pub async fn create_user(
    settings: Settings,
    email: &str,
    name: &str,
    role: api::users::Role,
    password: &str,
) -> anyhow::Result<api::users::User> {
    let (secrets, db, users) = offline_users(&settings).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let users: Arc<dyn UsersApi> = users;
    let svc = auth::AuthService::start(
        auth::store(&db),
        users,
        auth_settings(&settings, &secrets)?,
        clock,
        None,
        Arc::new(MemoryCache::default()),
    )
    .await?;
    let req = api::auth::RegisterRequest { email: email.into(), password: password.into(), name: name.into() };
    svc.create_account(req, role).await.map_err(|e| anyhow::anyhow!("cannot create {email}: {}", describe(e)))
}

/// The auth service of this deployment's database, for the `keys` commands: its signing keys are
/// left as they are until the command acts.
async fn auth_for_keys(settings: &Settings) -> anyhow::Result<auth::AuthService> {
    let (secrets, db, users) = offline_users(settings).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let users: Arc<dyn UsersApi> = users;
    Ok(auth::AuthService::without_keys(
        auth::store(&db),
        users,
        auth_settings(settings, &secrets)?,
        clock,
        None,
        Arc::new(MemoryCache::default()),
    ))
}

/// `trellis keys rotate`: makes a key of the configured algorithm; running replicas load it at
/// their next check and sign with it from the returned time.
pub async fn rotate_key(settings: &Settings) -> anyhow::Result<(String, time::OffsetDateTime)> {
    let svc = auth_for_keys(settings).await?;
    svc.rotate_key(auth::service::RotationReason::Manual)
        .await?
        .ok_or_else(|| anyhow::anyhow!("another process rotated the signing key at the same moment; try again"))
}

/// `trellis keys list`: every signing key with its state, newest first.
pub async fn list_keys(settings: &Settings) -> anyhow::Result<Vec<auth::service::KeyInfo>> {
    auth_for_keys(settings).await?.key_list().await
}

/// The data-lifecycle jobs of `services`, each in the service that owns its tables: auth
/// `sessions`, projects `idempotency-keys` (its POSTs' keys), users `erased-users`, and the
/// worker `outbox`, `processed-events`, `temp-files` and `audit-archive`.
pub fn lifecycle_jobs(
    settings: &Settings,
    db: &Database,
    objects: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    services: &BTreeSet<ServiceName>,
) -> Vec<Arc<dyn Job>> {
    let days = |d: u64| time::Duration::days(i64::try_from(d).unwrap_or(3650));
    let mut jobs: Vec<Arc<dyn Job>> = Vec::new();
    if services.contains(&ServiceName::Auth) {
        jobs.push(Arc::new(auth::jobs::SessionsJob::new(
            auth::store(db),
            days(settings.jobs.sessions_retention_days),
            days(settings.auth.session_idle_timeout_days),
        )));
    }
    if services.contains(&ServiceName::Projects) {
        let idempotency = Arc::new(platform::http::idempotency::Idempotency::new(db, clock));
        jobs.push(Arc::new(IdempotencyKeysJob::new(idempotency)));
    }
    if services.contains(&ServiceName::Worker) {
        jobs.push(Arc::new(OutboxJob::new(db.clone(), days(settings.events.retention_days))));
        jobs.push(Arc::new(worker::retention::ProcessedEventsJob::new(
            db.clone(),
            days(settings.jobs.processed_events_retention_days),
        )));
        jobs.push(Arc::new(TempFilesJob::new(
            Some(objects.clone()),
            Some(settings.data_dir.join(platform::jobs::builtin::TEMP_DIR)),
            days(settings.jobs.temp_files_retention_days),
        )));
        jobs.push(Arc::new(worker::retention::AuditArchiveJob::new(
            worker::audit::AuditLog::new(db.clone()),
            objects,
            days(settings.jobs.audit_retention_days),
        )));
    }
    if services.contains(&ServiceName::Users) {
        jobs.push(Arc::new(users::jobs::ErasedUsersJob::new(users::store(db), days(settings.users.purge_after_days))));
    }
    jobs
}

/// This deployment's database (migrated), a job runner on it and every job, for the `jobs`
/// commands.
async fn offline_jobs(settings: &Settings) -> anyhow::Result<(JobRunner, Vec<Arc<dyn Job>>)> {
    let url = settings.database_url();
    let db = Database::connect(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    for m in all_migrations() {
        db.migrate(&m).await?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (objects, _) = object_storage(settings)?;
    let jobs = lifecycle_jobs(settings, &db, objects, clock.clone(), &ServiceName::all().into_iter().collect());
    Ok((JobRunner::new(&db, clock), jobs))
}

/// A job as `trellis jobs list` shows it.
pub struct JobLine {
    pub name: &'static str,
    pub description: &'static str,
    pub interval: Duration,
    pub status: Option<JobStatus>,
}

/// `trellis jobs list`: every job with its interval and, from `job_leases`, its last run.
pub async fn list_jobs(settings: &Settings) -> anyhow::Result<Vec<JobLine>> {
    let (runner, jobs) = offline_jobs(settings).await?;
    let mut status = runner.status().await?;
    Ok(jobs
        .iter()
        .map(|j| JobLine {
            name: j.name(),
            description: j.description(),
            interval: settings.jobs.interval(j.name()),
            status: status.iter().position(|s| s.name == j.name()).map(|i| status.remove(i)),
        })
        .collect())
}

/// `trellis jobs run NAME`: runs the job now in this process, under its lease; an error when the
/// name is unknown or another process holds the lease. Ctrl-C stops it at its next batch.
pub async fn run_job(settings: &Settings, name: &str) -> anyhow::Result<JobReport> {
    let (runner, jobs) = offline_jobs(settings).await?;
    let names = jobs.iter().map(|j| j.name()).collect::<Vec<_>>().join(", ");
    let job = jobs
        .iter()
        .find(|j| j.name() == name)
        .ok_or_else(|| anyhow::anyhow!("unknown job {name:?}; the jobs are: {names}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    match runner.run(job.as_ref(), stop_rx).await.map_err(|e| anyhow::anyhow!("job {name} failed: {e}"))? {
        RunOutcome::Ran(report) => Ok(report),
        RunOutcome::Busy { holder, until } => anyhow::bail!(
            "job {name} is running in another process ({holder}, lease until {}); try again later",
            until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        ),
        RunOutcome::NotDue => anyhow::bail!("job {name} could not take its lease; try again"),
    }
}

/// Completes the erasures an interruption left unfinished, retrying while a service they need is
/// unreachable (it may be starting too).
async fn resume_erasures(users: Arc<users::UsersService>, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_secs(1);
    loop {
        match users.resume_erasures().await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(erasures = n, "interrupted erasures completed");
                return;
            }
            Err(e) => tracing::warn!(error = %e, retry_in_secs = delay.as_secs(), "cannot resume erasures yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// Builds everything and serves on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let selected = selected_services(&settings.services)?;
    // Install the metrics recorder before anything records.
    let _ = platform::telemetry::metrics_handle();
    let all_in_one = selected.len() == ServiceName::all().len();
    let secrets = crate::secrets::resolve(&settings, all_in_one, selected.contains(&ServiceName::Users))?;
    // The worker keys the audit chain it appends to and verifies (docs/SECURITY.md LO-4).
    let audit_keys = if selected.contains(&ServiceName::Worker) {
        Some(crate::secrets::audit_keys(&settings, &secrets)?)
    } else {
        None
    };
    // Each service signs its calls to others with its own key and verifies the callers' (split
    // processes must have them; all-in-one calls nothing over HTTP and needs none).
    let local_services: BTreeSet<api::internal::Service> =
        selected.iter().map(|s| s.as_str().parse()).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let service_keys = crate::secrets::service_keys(&settings, &local_services, all_in_one)?;
    let service_key = |s: api::internal::Service| service_keys.signer(s);
    let local = |s: ServiceName| selected.contains(&s);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut readiness = Readiness::default();

    // Storage: only services with tables need the database.
    let needs_db =
        [ServiceName::Auth, ServiceName::Users, ServiceName::Projects, ServiceName::Worker].into_iter().any(local);
    let db = if needs_db {
        let url = settings.database_url();
        let db =
            Database::connect(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        if settings.migrate_on_start {
            for m in all_migrations() {
                db.migrate(&m).await.context("migration failed")?;
            }
        } else {
            // The runtime role may not change the schema: `trellis migrate` ran as its owner.
            for m in all_migrations() {
                db.ensure_migrated(&m).await.context("migrate_on_start is off")?;
            }
        }
        tracing::info!(backend = db.backend(), "database ready");
        let probe = db.clone();
        readiness.add(
            "database",
            true,
            Arc::new(move || {
                let db = probe.clone();
                Box::pin(async move { db.ping().await.map_err(|e| e.to_string()) })
            }),
        );
        Some(db)
    } else {
        None
    };

    let cache: Arc<dyn Cache> = match &settings.redis_url {
        Some(Secret(url)) => {
            let c = RedisCache::connect(url, &settings.redis_prefix)
                .await
                .with_context(|| format!("cannot connect to Redis at {}", redact_url(url)))?;
            Arc::new(c)
        }
        None => Arc::new(MemoryCache::default()),
    };
    {
        let c = cache.clone();
        readiness.add(
            "cache",
            false,
            Arc::new(move || {
                let c = c.clone();
                Box::pin(async move { c.ping().await.map_err(|e| e.to_string()) })
            }),
        );
    }

    // S3 downloads are presigned redirects (docs/SECURITY.md UP-3); the local folder streams.
    let (objects, signer) = object_storage(&settings)?;
    {
        let o = objects.clone();
        readiness.add(
            "objects",
            false,
            Arc::new(move || {
                let o = o.clone();
                Box::pin(async move { o.list_with_delimiter(None).await.map(|_| ()).map_err(|e| e.to_string()) })
            }),
        );
    }

    // The bus exists wherever events are consumed: the worker's groups, and the projects
    // service's cache invalidation. The relay (and its waker) runs with the worker; it starts
    // after every consumer of this process has subscribed, so nothing relayed misses one.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let bus: Option<Arc<dyn EventBus>> = match (&db, local(ServiceName::Worker) || local(ServiceName::Projects)) {
        (Some(_), true) => {
            let bus: Arc<dyn EventBus> = match &settings.amqp_url {
                Some(Secret(url)) => Arc::new(
                    RabbitMqBus::connect(url, &settings.amqp_namespace)
                        .await
                        .with_context(|| format!("cannot connect to RabbitMQ at {}", redact_url(url)))?,
                ),
                None => Arc::new(InProcessBus::new()),
            };
            let b = bus.clone();
            readiness.add(
                "event_bus",
                false,
                Arc::new(move || {
                    let b = b.clone();
                    Box::pin(async move { b.ping().await.map_err(|e| e.to_string()) })
                }),
            );
            Some(bus)
        }
        _ => None,
    };
    let relay = match (&db, &bus, local(ServiceName::Worker)) {
        (Some(db), Some(bus), true) => Some(Relay::new(db.clone(), bus.clone())),
        _ => None,
    };
    let outbox_waker = relay.as_ref().map(Relay::waker);

    // Services, local or remote.
    let users_svc = match (&db, local(ServiceName::Users)) {
        (Some(db), true) => {
            let keys = secrets.pii.clone().context("the users service needs the personal-data keys")?;
            let svc = Arc::new(users::UsersService::new(users::store(db), keys, clock.clone(), outbox_waker.clone()));
            svc.adopt_plaintext().await.context("encrypting the users stored before encryption at rest")?;
            Some(svc)
        }
        _ => None,
    };
    // The users service as `caller` reaches it: in process, or signed with the caller's key.
    let users_for = |caller: api::internal::Service| -> anyhow::Result<Arc<dyn UsersApi>> {
        Ok(match &users_svc {
            Some(s) => s.clone(),
            None => Arc::new(users::HttpUsersClient(ServiceClient::new(
                "users",
                split_list(&settings.upstreams.users),
                service_key(caller)?,
            )?)),
        })
    };
    let auth_svc = match (&db, local(ServiceName::Auth)) {
        (Some(db), true) => {
            let mut auth_settings = auth_settings(&settings, &secrets)?;
            // Every mail of the auth service (security notices above all) goes through the durable
            // queue in its database, sealed under a key derived from the key-encryption key.
            let key = platform::crypto::hmac_sha256(&secrets.key_encryption_key, b"trellis mail queue v1");
            let queue = Arc::new(
                platform::mail::MailQueue::new(db.clone(), auth_settings.mailer.clone(), &key, Default::default())
                    .map_err(|e| anyhow::anyhow!("mail queue: {e}"))?,
            );
            tasks.push(tokio::spawn(queue.clone().run(stop_rx.clone())));
            auth_settings.mailer = queue;
            Some(
                auth::AuthService::start(
                    auth::store(db),
                    users_for(api::internal::Service::Auth)?,
                    auth_settings,
                    clock.clone(),
                    outbox_waker.clone(),
                    cache.clone(),
                )
                .await?,
            )
        }
        _ => None,
    };
    if let Some(svc) = &auth_svc {
        tasks.push(auth::service::spawn_key_maintenance(svc.clone(), stop_rx.clone()));
    }
    if let (Some(svc), Some(email), Some(Secret(password))) =
        (&auth_svc, &settings.admin_email, &settings.admin_password)
    {
        svc.ensure_admin(email, password, &settings.admin_name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the first administrator ({email}): {}", describe(e)))?;
    }
    let (key_source, session_status): (Arc<dyn KeySource>, Arc<dyn SessionStatus>) = match &auth_svc {
        Some(s) => (s.clone(), s.clone()),
        None => {
            // Every service of this process may check sessions: any of their keys will do.
            let any = service_keys.any_signer().context("this process has no service key to call the auth service")?;
            let client = ServiceClient::new("auth", split_list(&settings.upstreams.auth), any)?;
            (Arc::new(auth::HttpKeySource(client.clone())), Arc::new(auth::HttpSessionStatus(client)))
        }
    };
    // The users service ends a user's sessions through the auth service when an admin changes the
    // user's role or status.
    if let Some(users) = &users_svc {
        let sessions: Arc<dyn SessionsApi> = match &auth_svc {
            Some(s) => s.clone(),
            None => Arc::new(auth::HttpSessionsClient(ServiceClient::new(
                "auth",
                split_list(&settings.upstreams.auth),
                service_key(api::internal::Service::Users)?,
            )?)),
        };
        users.connect_sessions(sessions);
    }
    let verifier = Arc::new(
        TokenVerifier::new(key_source, session_status, cache.clone(), &settings.auth.issuer, &settings.auth.audience)
            .admin_requires_mfa(settings.auth.admin_requires_mfa),
    );
    let projects_svc = match (&db, local(ServiceName::Projects)) {
        (Some(db), true) => {
            let svc = projects::ProjectsService::new(projects::store(db), clock.clone(), outbox_waker.clone());
            Some(Arc::new(svc.with_cache(cache.clone())))
        }
        _ => None,
    };
    if let Some(p) = &projects_svc {
        p.connect_users(users_for(api::internal::Service::Projects)?);
        p.connect_invitations(projects::service::Invitations {
            mailer: mailer(&settings)?,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
        });
        p.connect_objects(objects.clone(), settings.attachments.max_bytes);
        let every = Duration::from_secs(settings.attachments.sweep_interval_secs);
        tasks.push(tokio::spawn(p.clone().run_attachment_sweeper(every, stop_rx.clone())));
        if let Some(signer) = signer {
            p.presign_downloads(signer, Duration::from_secs(settings.attachments.presign_ttl_secs))?;
        }
        match &settings.attachments.clamd {
            Some(url) => {
                let clamd = projects::scanner::ClamdScanner::new(url, settings.attachments.max_bytes)
                    .map_err(|e| anyhow::anyhow!("attachments.clamd: {e}"))?;
                p.connect_scanner(Arc::new(clamd))?;
                let retry = Duration::from_secs(settings.attachments.scan_retry_secs);
                tasks.push(tokio::spawn(p.clone().run_attachment_scanner(retry, stop_rx.clone())));
            }
            None => tracing::warn!(
                "attachments.clamd is not set: uploaded files are NOT scanned for malware; they are available \
                 at once and recorded with scan \"none\""
            ),
        }
    }
    // The consumers subscribe, then the relay starts.
    if let (Some(bus), Some(p)) = (&bus, &projects_svc) {
        tasks.push(projects::invalidation::spawn(p.clone(), bus.clone(), stop_rx.clone()).await);
    }
    if let (Some(db), Some(bus), Some(relay)) = (&db, &bus, relay) {
        let access: Arc<dyn ProjectAccess> = match &projects_svc {
            Some(p) => p.clone(),
            None => Arc::new(ProjectAccessClient(ServiceClient::new(
                "projects",
                split_list(&settings.upstreams.projects),
                service_key(api::internal::Service::Worker)?,
            )?)),
        };
        let notifier = worker::notify::Notifier::new(
            db.clone(),
            users_for(api::internal::Service::Worker)?,
            access,
            mailer(&settings)?,
            &settings.public_url,
        );
        tasks.push(notifier.spawn(bus.clone(), stop_rx.clone()).await);
        let worker = worker::Worker::new(db.clone(), bus.clone()).with_audit_keys(audit_keys.clone());
        tasks.extend(worker::spawn_keyed(worker, bus.clone(), relay, stop_rx.clone()).await);
    }
    // Export and erasure reach every other service holding data about users.
    if let Some(users) = &users_svc {
        let holder = |name: &'static str, list: &str| -> anyhow::Result<Arc<dyn PersonalDataApi>> {
            let key = service_key(api::internal::Service::Users)?;
            Ok(Arc::new(PersonalDataClient(ServiceClient::new(name, split_list(list), key)?)))
        };
        let auth_data: Arc<dyn PersonalDataApi> = match &auth_svc {
            Some(s) => s.clone(),
            None => holder("auth", &settings.upstreams.auth)?,
        };
        let projects_data: Arc<dyn PersonalDataApi> = match &projects_svc {
            Some(s) => s.clone(),
            None => holder("projects", &settings.upstreams.projects)?,
        };
        users.connect_personal_data(vec![("auth", auth_data), ("projects", projects_data)]);
        // A non-admin's search is limited to the people who share a project with them.
        let people: Arc<dyn api::projects::ProjectPeople> = match &projects_svc {
            Some(s) => s.clone(),
            None => Arc::new(users::client::HttpProjectPeople(ServiceClient::new(
                "projects",
                split_list(&settings.upstreams.projects),
                service_key(api::internal::Service::Users)?,
            )?)),
        };
        users.connect_people(people);
        tasks.push(tokio::spawn(resume_erasures(users.clone(), stop_rx.clone())));
    }

    // Data-lifecycle jobs of the services run here, once per cluster (a lease in the database).
    if let (Some(db), true) = (&db, settings.jobs.schedule) {
        let runner = Arc::new(JobRunner::new(db, clock.clone()));
        let jobs = lifecycle_jobs(&settings, db, objects.clone(), clock.clone(), &selected)
            .into_iter()
            .map(|j| {
                let every = settings.jobs.interval(j.name());
                (j, every)
            })
            .collect();
        tasks.extend(platform::jobs::spawn_scheduler(runner, jobs, stop_rx.clone()));
    }

    // Every service router enforces the role gate (api::policy) itself, whichever process the
    // gateway runs in; it needs the verifier to know the caller.
    let with_verifier = |r: Router| r.route_layer(from_fn(enforce_policy)).layer(axum::Extension(verifier.clone()));
    // Behind a gateway in another process, the client's address is the gateway's X-Forwarded-For.
    let client_address =
        if local(ServiceName::Gateway) { ClientAddress::Peer } else { ClientAddress::ForwardedByGateway };
    let auth_router = auth_svc.clone().map(|s| with_verifier(auth::router(s)).layer(axum::Extension(client_address)));
    // The users service counts failed step-up proofs against the client's address too.
    let users_router =
        users_svc.clone().map(|s| with_verifier(users::router(s)).layer(axum::Extension(client_address)));
    // Idempotency keys of the projects service's POSTs live in its database.
    let projects_router = match (&projects_svc, &db) {
        (Some(s), Some(db)) => {
            let idempotency = Arc::new(platform::http::idempotency::Idempotency::new(db, clock.clone()));
            s.connect_idempotency(idempotency.clone());
            Some(with_verifier(projects::router(s.clone())).layer(axum::Extension(idempotency)))
        }
        _ => None,
    };
    // The admin audit log and its statistics are the worker's: its table is written by the worker's
    // consumer, its archives are in the deployment's object storage. So are live updates: every
    // worker takes every event from the bus for its WebSocket clients.
    let worker_router = match (&db, &bus, local(ServiceName::Worker)) {
        (Some(db), Some(bus), true) => {
            let access: Arc<dyn api::projects::ProjectAccess> = match &projects_svc {
                Some(s) => s.clone(),
                None => Arc::new(platform::client::ProjectAccessClient(ServiceClient::new(
                    "projects",
                    remote(ServiceName::Projects, &settings.upstreams.projects)?,
                    service_key(api::internal::Service::Worker)?,
                )?)),
            };
            let live = worker::live::LiveSettings {
                max_per_user: settings.http.websockets_per_user,
                max_per_address: settings.http.websockets_per_address,
                ..Default::default()
            };
            let hub = worker::live::LiveHub::new(db.clone(), access, verifier.clone(), live);
            tasks.push(tokio::spawn(hub.clone().run(bus.clone(), stop_rx.clone())));
            let log = match &audit_keys {
                Some(keys) => worker::audit::AuditLog::keyed(db.clone(), keys.clone()),
                None => worker::audit::AuditLog::new(db.clone()),
            };
            let audit = worker::http::router(log, objects.clone());
            // Live updates count connections per client address (docs/SECURITY.md GW).
            Some(with_verifier(audit.merge(worker::live::router(hub))).layer(axum::Extension(client_address)))
        }
        _ => None,
    };
    // Routes other services call: only those `api::internal` lists for each, proven by their
    // signed credentials (docs/SECURITY.md GW-6).
    let internal = [
        users_svc.clone().map(users::internal_router),
        auth_svc.clone().map(auth::internal_router),
        projects_svc.clone().map(projects::internal_router),
    ]
    .into_iter()
    .flatten()
    .reduce(Router::merge)
    .map(|r| {
        r.route_layer(from_fn(enforce_policy))
            .route_layer(from_fn_with_state(service_keys.verifier.clone(), require_service))
    });
    // With a metrics address, `/metrics` and the checks' details are served there only.
    let (health, metrics_app) = match settings.metrics.listen {
        Some(_) => (
            public_health_routes(readiness.clone()).route_layer(from_fn(enforce_policy)),
            Some(
                health_routes(readiness)
                    .route_layer(from_fn(enforce_policy))
                    .fallback(problem_fallback)
                    .layer(from_fn(problems_for_errors))
                    .layer(from_fn_with_state("metrics", observe)),
            ),
        ),
        None => (health_routes(readiness).route_layer(from_fn(enforce_policy)), None),
    };
    let request_timeout = Duration::from_secs(settings.http.request_timeout_secs);
    let app = if local(ServiceName::Gateway) {
        let backend = |r: Option<Router>, name: ServiceName, list: &str| -> anyhow::Result<Backend> {
            Ok(match r {
                Some(r) => Backend::Local(r),
                None => Backend::Remote(remote(name, list)?),
            })
        };
        let backends = Backends {
            auth: backend(auth_router, ServiceName::Auth, &settings.upstreams.auth)?,
            users: backend(users_router, ServiceName::Users, &settings.upstreams.users)?,
            projects: backend(projects_router, ServiceName::Projects, &settings.upstreams.projects)?,
            worker: backend(worker_router, ServiceName::Worker, &settings.upstreams.worker)?,
        };
        let limiter = Arc::new(gateway::ratelimit::RateLimiter::new(
            cache.clone(),
            settings.gateway.rate_limit_per_minute,
            settings.gateway.user_rate_limit(),
            Duration::from_secs(60),
        ));
        let openapi_json = openapi().to_json().context("OpenAPI document")?;
        let parts = GatewayParts {
            verifier: verifier.clone(),
            limiter,
            openapi_json,
            health,
            internal,
            upstream_timeout: Duration::from_secs(settings.gateway.upstream_timeout_secs),
            request_timeout,
            trusted_proxies: platform::http::net::TrustedProxies::parse(&settings.gateway.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("gateway.trusted_proxies: {e}"))?,
            // Signs what the gateway proxies, so split services trust its forwarded headers.
            service_credential: service_key(api::internal::Service::Gateway).ok(),
        };
        gateway::router(backends, parts)?
    } else {
        // A service process without the gateway: its own routes, health and the common layers.
        let mut app = health;
        for r in [auth_router, users_router, projects_router, worker_router, internal].into_iter().flatten() {
            app = app.merge(r);
        }
        let name: &'static str = match selected.iter().next() {
            Some(s) if selected.len() == 1 => s.as_str(),
            _ => "services",
        };
        // Behind the gateway: forwarded client headers count only when the gateway sent them.
        app.fallback(problem_fallback)
            .layer(from_fn_with_state(service_keys.verifier.clone(), trust_only_the_gateway))
            .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
            .layer(from_fn_with_state(request_timeout, deadline))
            .layer(from_fn_with_state(DEFAULT_BODY_LIMIT, reject_oversized))
            .layer(from_fn(reject_unknown_methods))
            .layer(from_fn(problems_for_errors))
            .layer(from_fn_with_state(name, observe))
    };

    let addr = listener.local_addr()?;
    let names: Vec<&str> = selected.iter().map(|s| s.as_str()).collect();
    tracing::info!(%addr, services = ?names, "trellis is serving");
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs(settings.http.header_read_timeout_secs),
        max_connections: settings.http.max_connections,
    };
    let (metrics_stop, metrics_server) = match (settings.metrics.listen, metrics_app) {
        (Some(at), Some(metrics_app)) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (metrics.listen)"))?;
            tracing::info!(addr = %at, "metrics and readiness details are served on their own address");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let limits = ServerLimits { max_connections: 64, ..limits };
            let stopped = async move {
                let _ = rx.await;
            };
            (Some(tx), Some(tokio::spawn(platform::http::server::serve(listener, metrics_app, limits, stopped))))
        }
        _ => (None, None),
    };
    let result = platform::http::server::serve(listener, app, limits, shutdown).await;
    if let (Some(stop), Some(server)) = (metrics_stop, metrics_server) {
        let _ = stop.send(());
        let _ = server.await;
    }
    tracing::info!("draining background work");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    tracing::info!("stopped");
    result.context("server error")
}
