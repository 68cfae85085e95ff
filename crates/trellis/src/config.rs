//! Settings of a `trellis` process, layered: defaults < TOML file < environment < flags.
//!
//! Environment: `TRELLIS_<KEY>` with `__` for nesting (`TRELLIS_AUTH__BCRYPT_COST=12`), plus the
//! conventional `DATABASE_URL`, `REDIS_URL`, `AMQP_URL`, `SMTP_URL` and `S3_*`. Any of them may instead be
//! given as `<NAME>_FILE`, naming a file that holds the value (for secrets). An unknown key in any
//! layer stops start-up with a message naming it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret setting: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Folder for the embedded database, local objects and generated secrets.
    pub data_dir: PathBuf,
    /// Services this process runs: `all`, or a comma-separated list of gateway, auth, users,
    /// projects, worker.
    pub services: String,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://<data_dir>/trellis.db`.
    pub database_url: Option<Secret>,
    /// `redis://…`; without it the cache and rate-limit counters live in this process.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// `amqp://…`; without it events travel on an in-process bus.
    pub amqp_url: Option<Secret>,
    /// Prefix of the RabbitMQ exchange and queues.
    pub amqp_namespace: String,
    pub s3: S3Settings,
    /// Where services running in other processes are, as comma-separated base URLs.
    pub upstreams: Upstreams,
    pub auth: AuthConfig,
    /// Removed: the one shared secret between services was replaced by per-service keys
    /// (`internal`); a configuration that still sets it is refused with a message saying so.
    #[serde(skip_serializing)]
    pub internal_token: Option<Secret>,
    /// The services' keys for calls between them (docs/OPERATIONS.md "Service keys").
    pub internal: InternalConfig,
    /// With `admin_password`: the first administrator, created on start if the email is new.
    /// There is never a default account.
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub admin_name: String,
    pub gateway: GatewayConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub mail: MailConfig,
    pub pii: PiiConfig,
    pub attachments: AttachmentsConfig,
    pub jobs: JobsConfig,
    pub events: EventsConfig,
    pub users: UsersConfig,
    pub audit: AuditConfig,
    /// Apply the database migrations when a server starts (default true). Set it to false where
    /// the servers' database role may not change the schema (PostgreSQL: an owner role runs
    /// `trellis migrate`, the runtime role has no DDL; docs/OPERATIONS.md); start-up then refuses
    /// to run on a schema with migrations still pending.
    pub migrate_on_start: bool,
    /// The web app's address as users reach it, for the links in mails.
    pub public_url: String,
}

/// The audit log's integrity keys (docs/SECURITY.md LO-4, ARCHITECTURE.md "Audit integrity").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// MAC keys of the audit chain as `ID:BASE64` entries separated by commas (32 random bytes
    /// each), kept out of the database; the highest id signs new entries, every one verifies. All-
    /// in-one, generated into `<data_dir>/secrets.toml`; split, the worker needs them.
    pub keys: Option<Secret>,
    /// Entries up to this seq may lack a MAC: those written before an upgrade to the keyed chain
    /// (`trellis audit verify` names the first one after it). Default 0.
    pub unkeyed_until_seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `smtp://host:port` (plain), `smtp://…?tls=starttls`, `smtps://…`, with optional
    /// `user:password@`. Without it, mail is written as `.eml` files into `<data_dir>/mail/`.
    pub smtp_url: Option<Secret>,
    /// The sender of every mail.
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { smtp_url: None, from: "Trellis <no-reply@localhost>".into() }
    }
}

/// Keys of the personal data at rest (users service; ARCHITECTURE.md "Personal data at rest").
/// All-in-one, both are generated into `<data_dir>/secrets.toml` on first start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Key-encryption keys as `VERSION:BASE64` entries separated by commas (32 random bytes
    /// each); the highest version wraps new data keys. To rotate: add a higher version, restart,
    /// run `trellis keys rotate-pii`, then remove the old entry.
    pub keys: Option<Secret>,
    /// The blind-index and search-token key (32 random bytes, base64). It cannot be rotated
    /// without re-indexing, so it is kept apart from the key-encryption keys.
    pub index_key: Option<Secret>,
}

/// Keys of the services for calls between them (`platform::service_auth`): each service signs
/// its calls with its own Ed25519 private key, and the service called verifies them with the
/// caller's public key. A process running services split from the others needs the private key
/// of each service it runs and every service's public key; all-in-one needs none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InternalConfig {
    /// Each service's private key (base64 of 32 random bytes, or of a PKCS#8 document), given only
    /// to the processes that run that service: `TRELLIS_INTERNAL__PRIVATE_KEYS__AUTH` and so on
    /// (`trellis keys service-key SERVICE` makes one).
    pub private_keys: ServiceKeys<Option<Secret>>,
    /// Each service's public keys (base64 of 32 bytes, or of a SubjectPublicKeyInfo document),
    /// comma-separated: two while a key is being replaced. Known to every process.
    pub public_keys: ServiceKeys<String>,
}

/// One value per service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceKeys<T> {
    pub gateway: T,
    pub auth: T,
    pub users: T,
    pub projects: T,
    pub worker: T,
}

impl<T> ServiceKeys<T> {
    pub fn get(&self, service: api::internal::Service) -> &T {
        use api::internal::Service;
        match service {
            Service::Gateway => &self.gateway,
            Service::Auth => &self.auth,
            Service::Users => &self.users,
            Service::Projects => &self.projects,
            Service::Worker => &self.worker,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// Without an endpoint, objects are stored under `<data_dir>/objects`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstreams {
    pub auth: String,
    pub users: String,
    pub projects: String,
    /// The worker (serves the admin audit log).
    pub worker: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    /// RS256 (default: docs/API.md names it), PS256, ES256 or EdDSA. Changing it rotates
    /// to a key of the new algorithm; tokens of the old key verify until they expire.
    pub signing_algorithm: auth::keys::SigningAlgorithm,
    /// A signing key signs this long before the scheduled rotation replaces it. 30 days: short
    /// enough that a leaked key is useful for weeks at most, long enough that the JWKS stays small
    /// and rotation stays a routine monthly event; see ARCHITECTURE.md.
    pub key_rotation_days: u64,
    /// How often each auth replica reloads the signing keys, retires expired ones and checks
    /// whether a rotation is due.
    pub key_check_interval_secs: u64,
    /// Absolute lifetime of a session (refresh family). 30 days: a product decision longer than
    /// NIST's AAL2 advice (24 h), traded for not signing people out of a work tool every day.
    pub session_lifetime_days: u64,
    /// A session unused this long can no longer be refreshed.
    pub session_idle_timeout_days: u64,
    /// A rotated refresh token presented again within this many seconds is an honest race (the
    /// session survives); later it is reuse and ends the session. 0 (the default): the first
    /// reuse ends the session (RFC 9700 §4.14.2); the web app serializes its refreshes.
    pub refresh_reuse_grace_secs: u64,
    pub bcrypt_cost: u32,
    /// At least 15 (NIST SP 800-63B-4 §3.1.1.2 for a password used alone; no deployment makes a
    /// second factor mandatory for every account, so no shorter minimum is accepted).
    pub password_min_length: usize,
    /// bcrypt hashes computed at once (each takes a core for ~0.2 s at cost 12); defaults to the
    /// number of cores, on threads of lower priority than request handling.
    pub hash_workers: usize,
    /// Hashes allowed to wait for a worker before logins get 503.
    pub hash_queue: usize,
    /// Failed credential attempts (logins, second-factor codes) one client address may make per
    /// `ip_failure_window_secs` before all its attempts get 429 until the window ends.
    pub ip_failure_limit: u64,
    pub ip_failure_window_secs: u64,
    /// Registrations one client address (an IPv6 /64) may attempt per `register_window_secs`,
    /// whatever their outcome, before getting 429.
    pub register_limit: u64,
    pub register_window_secs: u64,
    /// Admins act as admins only in a session signed in with a second factor (RFC 8176 `amr`
    /// `otp`); without one they act as plain users and admin routes answer 403
    /// `admin_mfa_required` (ASVS 5.0 6.3.3, NIST SP 800-63B-4 AAL2). On by default; every
    /// process reads it, since every service verifies tokens itself.
    pub admin_requires_mfa: bool,
    /// Server-side pepper for password hashing (32+ random bytes, base64).
    pub pepper: Option<Secret>,
    /// Seals private signing keys at rest (32 random bytes, base64).
    pub key_encryption_key: Option<Secret>,
}

/// Files attached to tasks (projects service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentsConfig {
    /// The largest file accepted, in bytes (default 25 MiB); larger uploads are cut off with 413.
    pub max_bytes: u64,
    /// How often objects left without a row (a deleted task's, an erased user's projects') are
    /// swept from object storage, in seconds.
    pub sweep_interval_secs: u64,
    /// clamd's address (`tcp://host:port`): new files are quarantined until it scanned them.
    /// Unset, files are available at once and recorded as never scanned (`scan: none`).
    pub clamd: Option<String>,
    /// How long a presigned download URL (S3 storage) lives, in seconds (1–300, default 300).
    pub presign_ttl_secs: u64,
    /// How often quarantined files are retried while clamd is unreachable, in seconds.
    pub scan_retry_secs: u64,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            max_bytes: projects::service::DEFAULT_MAX_ATTACHMENT_BYTES,
            sweep_interval_secs: 3600,
            clamd: None,
            presign_ttl_secs: 300,
            scan_retry_secs: 30,
        }
    }
}

/// Data-lifecycle jobs (`platform::jobs`; `trellis jobs list`, `trellis jobs run NAME`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Whether servers schedule the jobs of the services they run (once per cluster, under a
    /// database lease). Off, run them from cron with `trellis jobs run NAME`.
    pub schedule: bool,
    /// Hours between runs of each job (default 24).
    pub interval_hours: u64,
    /// Per-job overrides of `interval_hours`, by job name (`-` or `_` between words).
    pub intervals: BTreeMap<String, u64>,
    /// `sessions`: sessions ended this many days ago are deleted with their refresh tokens, and
    /// failed-login counters without a failure for as long (default 30).
    pub sessions_retention_days: u64,
    /// `processed-events`: the worker's dedupe window, in days (default 30).
    pub processed_events_retention_days: u64,
    /// `temp-files`: temporary objects (`tmp/`) and files (`<data_dir>/tmp`) older than this
    /// many days are deleted (default 30).
    pub temp_files_retention_days: u64,
    /// `audit-archive`: audit entries older than this many days move to object storage (default
    /// 365, the audit log's retention in the database: docs/OPERATIONS.md).
    pub audit_retention_days: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            schedule: true,
            interval_hours: 24,
            intervals: BTreeMap::new(),
            sessions_retention_days: 30,
            processed_events_retention_days: 30,
            temp_files_retention_days: 30,
            audit_retention_days: 365,
        }
    }
}

impl JobsConfig {
    /// How often the job `name` runs.
    pub fn interval(&self, name: &str) -> std::time::Duration {
        let hours = self.intervals.get(&name.replace('-', "_")).copied().unwrap_or(self.interval_hours);
        std::time::Duration::from_secs(hours * 3600)
    }
}

/// Events (the outbox).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Published outbox rows are kept this many days (default 7, at least 1: live updates
    /// replay recent rows), then deleted by the `outbox` job.
    pub retention_days: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retention_days: 7 }
    }
}

/// The users service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersConfig {
    /// The row an erasure leaves (no personal data) is deleted this many days after the erasure
    /// finished, by the `erased-users` job (default 30).
    pub purge_after_days: u64,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig { purge_after_days: 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Requests per minute of one client address without a valid token (IPv6: per /64); 100,
    /// the seed's budget. Requests with a token that does not verify count here too.
    pub rate_limit_per_minute: u64,
    /// Requests per minute of one signed-in user, whatever their address. Unset: six times
    /// `rate_limit_per_minute` (600 by default), room for the web app (a board load reads the
    /// project, its members, their names and the tasks; the admin dashboard polls) while a
    /// script hammering the API is still stopped within seconds.
    pub user_rate_limit_per_minute: Option<u64>,
    pub upstream_timeout_secs: u64,
    /// Proxies in front of the gateway whose `X-Forwarded-For` is believed, as CIDR networks or
    /// addresses (`["10.0.0.0/8"]`; environment: `TRELLIS_GATEWAY__TRUSTED_PROXIES='["10.0.0.0/8"]'`).
    /// Empty (the default): the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

impl GatewayConfig {
    /// The signed-in budget per minute.
    pub fn user_rate_limit(&self) -> u64 {
        self.user_rate_limit_per_minute.unwrap_or(self.rate_limit_per_minute.saturating_mul(6))
    }
}

/// Bounds of every HTTP listener of the process (docs/SECURITY.md GW).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's head (and the longest an idle keep-alive
    /// connection stays open).
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take before its handler is cancelled and the client gets 503
    /// (uploads excepted: their own limits bound them).
    pub request_timeout_secs: u64,
    /// Connections open at once in this process, WebSockets included; more are answered 503.
    pub max_connections: usize,
    /// Live-update WebSockets one user may hold open on one worker process.
    pub websockets_per_user: usize,
    /// Live-update WebSockets one client address (IPv6: /64) may hold open on one worker process.
    pub websockets_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            max_connections: 10_000,
            websockets_per_user: 20,
            websockets_per_address: 200,
        }
    }
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate address for `/metrics`, `/readyz` with each check and `/healthz` (the way
    /// Prometheus exporters do). When set, the main listener no longer serves `/metrics`, and its
    /// `/readyz` gives the overall status only.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `info,trellis=debug`.
    pub level: String,
    pub format: platform::telemetry::LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            services: "all".into(),
            database_url: None,
            redis_url: None,
            redis_prefix: "trellis:".into(),
            amqp_url: None,
            amqp_namespace: "trellis".into(),
            s3: S3Settings { region: "us-east-1".into(), bucket: "trellis".into(), ..Default::default() },
            upstreams: Upstreams::default(),
            auth: AuthConfig::default(),
            internal_token: None,
            internal: InternalConfig::default(),
            admin_email: None,
            admin_password: None,
            admin_name: "Administrator".into(),
            gateway: GatewayConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            mail: MailConfig::default(),
            pii: PiiConfig::default(),
            attachments: AttachmentsConfig::default(),
            jobs: JobsConfig::default(),
            events: EventsConfig::default(),
            users: UsersConfig::default(),
            audit: AuditConfig::default(),
            migrate_on_start: true,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "trellis".into(),
            audience: "trellis".into(),
            access_token_ttl_secs: 900,
            signing_algorithm: auth::keys::SigningAlgorithm::RS256,
            key_rotation_days: 30,
            key_check_interval_secs: 60,
            session_lifetime_days: 30,
            session_idle_timeout_days: 7,
            refresh_reuse_grace_secs: 0,
            bcrypt_cost: 12,
            password_min_length: 15,
            hash_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hash_queue: 8,
            ip_failure_limit: 50,
            ip_failure_window_secs: 900,
            register_limit: 100,
            register_window_secs: 3600,
            admin_requires_mfa: true,
            pepper: None,
            key_encryption_key: None,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            rate_limit_per_minute: 100,
            user_rate_limit_per_minute: None,
            upstream_timeout_secs: 30,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: platform::telemetry::LogFormat::Json }
    }
}

/// Conventional environment names and the setting each stands for.
const ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("REDIS_URL", "redis_url"),
    ("AMQP_URL", "amqp_url"),
    ("SMTP_URL", "mail.smtp_url"),
    ("S3_ENDPOINT", "s3.endpoint"),
    ("S3_BUCKET", "s3.bucket"),
    ("S3_REGION", "s3.region"),
    ("S3_ACCESS_KEY_ID", "s3.access_key_id"),
    ("S3_SECRET_ACCESS_KEY", "s3.secret_access_key"),
];

/// Flags given on the command line; each overrides every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub services: Option<String>,
}

/// `AUTH__BCRYPT_COST` → `auth.bcrypt_cost`.
fn setting_key(env_stem: &str) -> String {
    env_stem.to_lowercase().replace("__", ".")
}

fn read_file_value(var: &str, path: &str) -> anyhow::Result<String> {
    let raw = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {var}={path}: {e}"))?;
    Ok(raw.trim_end_matches(['\n', '\r']).to_string())
}

/// Loads the settings from every layer, reading the environment from `env`.
pub fn load_from(file: Option<&Path>, env: &[(String, String)], overrides: &Overrides) -> anyhow::Result<Settings> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = file {
        anyhow::ensure!(path.exists(), "configuration file {} does not exist", path.display());
        figment = figment.merge(Toml::file_exact(path));
    }
    for (name, value) in env {
        if let Some(stem) = name.strip_suffix("_FILE") {
            // A file holds a secret: its content is taken as a string, never reinterpreted.
            // Only our own names are read; other programs' `*_FILE` variables are not ours.
            let key = match stem.strip_prefix("TRELLIS_") {
                Some(k) => Some(setting_key(k)),
                None => ALIASES.iter().find(|(alias, _)| *alias == stem).map(|(_, k)| k.to_string()),
            };
            if let Some(key) = key {
                figment = figment.merge(Serialized::global(&key, read_file_value(name, value)?));
            }
        } else if let Some(key) = name.strip_prefix("TRELLIS_") {
            // Typed like figment's own environment provider: numbers, booleans, strings.
            let parsed = value.parse::<figment::value::Value>().unwrap_or_else(|_| value.as_str().into());
            figment = figment.merge(Serialized::global(&setting_key(key), parsed));
        } else if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| alias == name) {
            figment = figment.merge(Serialized::global(key, value.clone()));
        }
    }
    if let Some(listen) = &overrides.listen {
        figment = figment.merge(Serialized::global("listen", listen));
    }
    if let Some(dir) = &overrides.data_dir {
        figment = figment.merge(Serialized::global("data_dir", dir));
    }
    if let Some(services) = &overrides.services {
        figment = figment.merge(Serialized::global("services", services));
    }
    let settings: Settings = figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

/// Loads the settings from the process environment.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Settings> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(file, &env, overrides)
}

impl Settings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.internal_token.is_none(),
            "internal_token (TRELLIS_INTERNAL_TOKEN) is no longer used: services now prove who they are with \
             keys of their own. Remove it and give each process the private key of each service it runs \
             (internal.private_keys.<service>, TRELLIS_INTERNAL__PRIVATE_KEYS__<SERVICE>) and every service's \
             public key (internal.public_keys.<service>); `trellis keys service-key <service>` makes a pair \
             (docs/OPERATIONS.md, \"Service keys\")"
        );
        anyhow::ensure!(
            (10..=16).contains(&self.auth.bcrypt_cost),
            "auth.bcrypt_cost must be between 10 and 16 (got {})",
            self.auth.bcrypt_cost
        );
        anyhow::ensure!(
            (15..=64).contains(&self.auth.password_min_length),
            "auth.password_min_length must be between 15 and 64 (got {}): a shorter minimum is allowed only \
             where a second factor is mandatory for every account (NIST SP 800-63B-4 §3.1.1.2), which no \
             setting of Trellis makes so",
            self.auth.password_min_length
        );
        anyhow::ensure!(self.auth.register_limit > 0, "auth.register_limit must be positive");
        anyhow::ensure!(
            (60..=86_400).contains(&self.auth.register_window_secs),
            "auth.register_window_secs must be between 60 and 86400"
        );
        anyhow::ensure!(self.auth.ip_failure_limit > 0, "auth.ip_failure_limit must be positive");
        anyhow::ensure!(
            (1024..=5 * 1024 * 1024 * 1024).contains(&self.attachments.max_bytes),
            "attachments.max_bytes must be between 1 KiB and 5 GiB"
        );
        anyhow::ensure!(
            self.attachments.sweep_interval_secs >= 60,
            "attachments.sweep_interval_secs must be at least 60"
        );
        anyhow::ensure!(
            (1..=projects::service::MAX_PRESIGN_TTL.as_secs()).contains(&self.attachments.presign_ttl_secs),
            "attachments.presign_ttl_secs must be between 1 and 300"
        );
        anyhow::ensure!(self.attachments.scan_retry_secs >= 1, "attachments.scan_retry_secs must be positive");
        if let Some(url) = &self.attachments.clamd {
            projects::scanner::ClamdScanner::new(url, self.attachments.max_bytes)
                .map_err(|e| anyhow::anyhow!("attachments.clamd: {e}"))?;
        }
        anyhow::ensure!(
            (60..=86_400).contains(&self.auth.ip_failure_window_secs),
            "auth.ip_failure_window_secs must be between 60 and 86400"
        );
        anyhow::ensure!(self.auth.access_token_ttl_secs >= 60, "auth.access_token_ttl_secs must be at least 60");
        anyhow::ensure!(
            self.auth.session_idle_timeout_days >= 1
                && self.auth.session_idle_timeout_days <= self.auth.session_lifetime_days,
            "auth.session_idle_timeout_days must be between 1 and auth.session_lifetime_days"
        );
        anyhow::ensure!(self.auth.refresh_reuse_grace_secs <= 60, "auth.refresh_reuse_grace_secs must be at most 60");
        anyhow::ensure!(
            (1..=365).contains(&self.auth.key_rotation_days),
            "auth.key_rotation_days must be between 1 and 365"
        );
        anyhow::ensure!(
            self.auth.key_rotation_days * 86_400 > self.auth.access_token_ttl_secs * 2,
            "auth.key_rotation_days must be more than twice auth.access_token_ttl_secs"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.auth.key_check_interval_secs),
            "auth.key_check_interval_secs must be between 1 and 3600"
        );
        anyhow::ensure!(
            self.admin_email.is_some() == self.admin_password.is_some(),
            "admin_email (TRELLIS_ADMIN_EMAIL) and admin_password (TRELLIS_ADMIN_PASSWORD or TRELLIS_ADMIN_PASSWORD_FILE) go together"
        );
        anyhow::ensure!(self.gateway.rate_limit_per_minute > 0, "gateway.rate_limit_per_minute must be positive");
        anyhow::ensure!(self.gateway.user_rate_limit() > 0, "gateway.user_rate_limit_per_minute must be positive");
        platform::http::net::TrustedProxies::parse(&self.gateway.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("gateway.trusted_proxies: {e}"))?;
        anyhow::ensure!(
            (1..=300).contains(&self.http.header_read_timeout_secs),
            "http.header_read_timeout_secs must be between 1 and 300"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.http.request_timeout_secs),
            "http.request_timeout_secs must be between 1 and 3600"
        );
        anyhow::ensure!(self.http.max_connections > 0, "http.max_connections must be positive");
        anyhow::ensure!(
            self.http.websockets_per_user > 0 && self.http.websockets_per_address > 0,
            "http.websockets_per_user and http.websockets_per_address must be positive"
        );
        if let Some(addr) = self.metrics.listen {
            anyhow::ensure!(addr != self.listen, "metrics.listen must differ from listen");
        }
        anyhow::ensure!(
            self.public_url.starts_with("http://") || self.public_url.starts_with("https://"),
            "public_url (TRELLIS_PUBLIC_URL) must be an http:// or https:// address"
        );
        anyhow::ensure!(
            (1..=24 * 365).contains(&self.jobs.interval_hours),
            "jobs.interval_hours must be between 1 and 8760"
        );
        for (name, hours) in &self.jobs.intervals {
            anyhow::ensure!(
                JOB_NAMES.contains(&name.replace('_', "-").as_str()),
                "jobs.intervals: unknown job {name:?} (jobs: {})",
                JOB_NAMES.join(", ")
            );
            anyhow::ensure!((1..=24 * 365).contains(hours), "jobs.intervals.{name} must be between 1 and 8760");
        }
        for (key, days) in [
            ("jobs.sessions_retention_days", self.jobs.sessions_retention_days),
            ("jobs.processed_events_retention_days", self.jobs.processed_events_retention_days),
            ("jobs.temp_files_retention_days", self.jobs.temp_files_retention_days),
            ("jobs.audit_retention_days", self.jobs.audit_retention_days),
            ("events.retention_days", self.events.retention_days),
            ("users.purge_after_days", self.users.purge_after_days),
        ] {
            anyhow::ensure!((1..=3650).contains(&days), "{key} must be between 1 and 3650 days");
        }
        platform::mail::parse_mailbox(&self.mail.from)
            .map_err(|e| anyhow::anyhow!("mail.from (TRELLIS_MAIL__FROM) is not a mail address: {e}"))?;
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(Secret(url)) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("trellis.db").display()),
        }
    }
}

/// Every data-lifecycle job's name (`jobs.intervals` keys are checked against it).
pub const JOB_NAMES: [&str; 7] =
    ["sessions", "idempotency-keys", "outbox", "processed-events", "temp-files", "erased-users", "audit-archive"];

/// Splits a comma-separated list, dropping blanks.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://./data/trellis.db");
        assert_eq!(s.auth.bcrypt_cost, 12);
        assert_eq!(s.gateway.rate_limit_per_minute, 100, "the seed's anonymous budget");
        assert_eq!(s.gateway.user_rate_limit(), 600, "signed-in users: six times as much");
        assert!(s.gateway.trusted_proxies.is_empty(), "nobody's X-Forwarded-For by default");
        assert_eq!(s.http.header_read_timeout_secs, 10);
        assert_eq!(s.metrics.listen, None);
    }

    #[test]
    fn lockout_and_password_settings_are_checked() {
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(s.auth.refresh_reuse_grace_secs, 0, "no grace for a reused refresh token by default");
        assert_eq!((s.auth.password_min_length, s.auth.register_limit, s.auth.register_window_secs), (15, 100, 3600));
        assert!(s.auth.admin_requires_mfa, "admins need a second factor by default");
        let off = load_from(None, &env(&[("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false")]), &Overrides::default());
        assert!(!off.unwrap().auth.admin_requires_mfa, "a setting");
        let e = env(&[("TRELLIS_AUTH__REFRESH_REUSE_GRACE_SECS", "10"), ("TRELLIS_AUTH__REGISTER_LIMIT", "5")]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!((s.auth.refresh_reuse_grace_secs, s.auth.register_limit), (10, 5), "the grace stays a setting");
        let short = load_from(None, &env(&[("TRELLIS_AUTH__PASSWORD_MIN_LENGTH", "14")]), &Overrides::default());
        let message = short.expect_err("a minimum below 15 is refused at start-up").to_string();
        assert!(message.contains("auth.password_min_length") && message.contains("15"), "{message}");
        for (name, value) in [
            ("TRELLIS_AUTH__PASSWORD_MIN_LENGTH", "8"),
            ("TRELLIS_AUTH__REGISTER_LIMIT", "0"),
            ("TRELLIS_AUTH__REGISTER_WINDOW_SECS", "10"),
        ] {
            assert!(load_from(None, &env(&[(name, value)]), &Overrides::default()).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn signing_key_settings_are_checked() {
        use auth::keys::SigningAlgorithm;
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(
            (s.auth.signing_algorithm, s.auth.key_rotation_days, s.auth.key_check_interval_secs),
            (SigningAlgorithm::RS256, 30, 60)
        );
        for alg in SigningAlgorithm::ALL {
            let s = load_from(None, &env(&[("TRELLIS_AUTH__SIGNING_ALGORITHM", alg.as_str())]), &Overrides::default());
            assert_eq!(s.unwrap().auth.signing_algorithm, alg);
        }
        for (name, value) in [
            ("TRELLIS_AUTH__SIGNING_ALGORITHM", "HS256"),
            ("TRELLIS_AUTH__SIGNING_ALGORITHM", "none"),
            ("TRELLIS_AUTH__SIGNING_ALGORITHM", "es256"),
            ("TRELLIS_AUTH__KEY_ROTATION_DAYS", "0"),
            ("TRELLIS_AUTH__KEY_CHECK_INTERVAL_SECS", "0"),
        ] {
            assert!(load_from(None, &env(&[(name, value)]), &Overrides::default()).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn http_hardening_settings_are_read_and_checked() {
        let e = env(&[
            ("TRELLIS_GATEWAY__TRUSTED_PROXIES", r#"["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]"#),
            ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "50"),
            ("TRELLIS_HTTP__MAX_CONNECTIONS", "3"),
            ("TRELLIS_METRICS__LISTEN", "127.0.0.1:9100"),
        ]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(s.gateway.trusted_proxies, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
        assert_eq!((s.gateway.rate_limit_per_minute, s.gateway.user_rate_limit()), (50, 300));
        assert_eq!(s.http.max_connections, 3);
        assert_eq!(s.metrics.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9100))));
        let s = load_from(None, &env(&[("TRELLIS_GATEWAY__USER_RATE_LIMIT_PER_MINUTE", "7")]), &Overrides::default())
            .unwrap();
        assert_eq!(s.gateway.user_rate_limit(), 7);
        for (name, value, named) in [
            ("TRELLIS_GATEWAY__TRUSTED_PROXIES", r#"["10.0.0.0/33"]"#, "trusted_proxies"),
            ("TRELLIS_GATEWAY__TRUSTED_PROXIES", r#"["proxy.example"]"#, "trusted_proxies"),
            ("TRELLIS_HTTP__HEADER_READ_TIMEOUT_SECS", "0", "header_read_timeout_secs"),
            ("TRELLIS_HTTP__REQUEST_TIMEOUT_SECS", "0", "request_timeout_secs"),
            ("TRELLIS_HTTP__MAX_CONNECTIONS", "0", "max_connections"),
            ("TRELLIS_HTTP__WEBSOCKETS_PER_USER", "0", "websockets_per_user"),
            ("TRELLIS_METRICS__LISTEN", "127.0.0.1:8080", "metrics.listen"),
        ] {
            let err = load_from(None, &env(&[(name, value)]), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(named), "{name}={value}: {err}");
        }
    }

    #[test]
    fn attachment_scan_and_presign_settings_are_checked() {
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!((s.attachments.clamd.as_deref(), s.attachments.presign_ttl_secs), (None, 300));
        let e =
            env(&[("TRELLIS_ATTACHMENTS__CLAMD", "tcp://clamd:3310"), ("TRELLIS_ATTACHMENTS__PRESIGN_TTL_SECS", "1")]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!((s.attachments.clamd.as_deref(), s.attachments.presign_ttl_secs), (Some("tcp://clamd:3310"), 1));
        for (name, value) in [
            ("TRELLIS_ATTACHMENTS__CLAMD", "clamd:3310"),
            ("TRELLIS_ATTACHMENTS__CLAMD", "unix:///run/clamav/clamd.ctl"),
            ("TRELLIS_ATTACHMENTS__PRESIGN_TTL_SECS", "0"),
            ("TRELLIS_ATTACHMENTS__PRESIGN_TTL_SECS", "301"),
            ("TRELLIS_ATTACHMENTS__SCAN_RETRY_SECS", "0"),
        ] {
            assert!(load_from(None, &env(&[(name, value)]), &Overrides::default()).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn job_settings_have_documented_defaults_and_are_checked() {
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert!(s.jobs.schedule);
        assert_eq!(s.jobs.interval("sessions"), std::time::Duration::from_secs(86_400));
        assert_eq!((s.events.retention_days, s.users.purge_after_days, s.jobs.sessions_retention_days), (7, 30, 30));
        assert_eq!((s.jobs.processed_events_retention_days, s.jobs.temp_files_retention_days), (30, 30));
        let e = env(&[("TRELLIS_JOBS__INTERVALS__TEMP_FILES", "6"), ("TRELLIS_EVENTS__RETENTION_DAYS", "1")]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(s.jobs.interval("temp-files"), std::time::Duration::from_secs(6 * 3600));
        assert_eq!(s.jobs.interval("outbox"), std::time::Duration::from_secs(86_400));
        for (name, value, named) in [
            ("TRELLIS_EVENTS__RETENTION_DAYS", "0", "events.retention_days"),
            ("TRELLIS_USERS__PURGE_AFTER_DAYS", "0", "users.purge_after_days"),
            ("TRELLIS_JOBS__INTERVAL_HOURS", "0", "jobs.interval_hours"),
            ("TRELLIS_JOBS__INTERVALS__NOPE", "3", "nope"),
        ] {
            let err = load_from(None, &env(&[(name, value)]), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(named), "{name}={value}: {err}");
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[gateway]\nrate_limit_per_minute = 5\n").unwrap();
        let e = env(&[("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "7"), ("DATABASE_URL", "postgres://x@h/db")]);
        let s = load_from(Some(&file), &e, &Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000", "file over defaults");
        assert_eq!(s.gateway.rate_limit_per_minute, 7, "environment over file");
        assert_eq!(s.database_url(), "postgres://x@h/db");
        let flags = Overrides { listen: Some("127.0.0.1:9100".into()), ..Default::default() };
        let s = load_from(Some(&file), &e, &flags).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9100", "flags over everything");
    }

    #[test]
    fn file_variables_hold_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pepper");
        std::fs::write(&secret, "c2VjcmV0LXBlcHBlcg==\n").unwrap();
        let kek = dir.path().join("kek");
        std::fs::write(&kek, "postgres://u:pw@h/db").unwrap();
        let e = env(&[
            ("TRELLIS_AUTH__PEPPER_FILE", secret.to_str().unwrap()),
            ("DATABASE_URL_FILE", kek.to_str().unwrap()),
            ("OTHER_TOOL_CONFIG_FILE", "/nonexistent/file"),
        ]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(s.auth.pepper, Some(Secret("c2VjcmV0LXBlcHBlcg==".into())));
        assert_eq!(s.database_url(), "postgres://u:pw@h/db");
        assert!(!format!("{s:?}").contains("c2VjcmV0"), "secrets never show in Debug");
    }

    #[test]
    fn mail_settings_and_their_aliases() {
        let s = load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(s.mail.smtp_url, None, "without SMTP_URL mail goes to files");
        assert_eq!(s.mail.from, "Trellis <no-reply@localhost>");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        let e = env(&[
            ("SMTP_URL", "smtp://mailer:pw@127.0.0.1:2525"),
            ("TRELLIS_MAIL__FROM", "Ops <ops@example.com>"),
            ("TRELLIS_PUBLIC_URL", "https://trellis.example.com"),
        ]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(s.mail.smtp_url, Some(Secret("smtp://mailer:pw@127.0.0.1:2525".into())));
        assert_eq!(s.mail.from, "Ops <ops@example.com>");
        assert_eq!(s.public_url, "https://trellis.example.com");
        assert!(!format!("{s:?}").contains(":pw@"), "the SMTP URL is a secret");
        for (k, v, named) in
            [("TRELLIS_MAIL__FROM", "nobody", "mail.from"), ("TRELLIS_PUBLIC_URL", "trellis.example.com", "public_url")]
        {
            let err = load_from(None, &env(&[(k, v)]), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn the_old_internal_token_is_refused_with_what_replaced_it() {
        let value = "an-internal-token-of-at-least-32-characters";
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("internal");
        std::fs::write(&secret, value).unwrap();
        for (name, v) in [("TRELLIS_INTERNAL_TOKEN", value), ("TRELLIS_INTERNAL_TOKEN_FILE", secret.to_str().unwrap())]
        {
            let err = load_from(None, &env(&[(name, v)]), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains("internal_token") && err.contains("internal.private_keys"), "{name}: {err}");
            assert!(!err.contains(value), "the secret is not repeated: {err}");
        }
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "internal_token = \"an-internal-token-of-at-least-32-characters\"\n").unwrap();
        let err = load_from(Some(&file), &[], &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("internal.public_keys"), "{err}");
        let e = env(&[
            ("TRELLIS_INTERNAL__PRIVATE_KEYS__AUTH", "a2V5"),
            ("TRELLIS_INTERNAL__PUBLIC_KEYS__WORKER", "cHViMQ==,cHViMg=="),
        ]);
        let s = load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(s.internal.private_keys.auth, Some(Secret("a2V5".into())));
        assert_eq!(s.internal.public_keys.worker, "cHViMQ==,cHViMg==");
        assert!(!format!("{s:?}").contains("a2V5"), "private keys never show in Debug");
        let err = load_from(None, &env(&[("TRELLIS_INTERNAL__PRIVATE_KEYS__ADMIN", "x")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin"), "an unknown service is named: {err}");
    }

    #[test]
    fn unknown_and_invalid_settings_are_named() {
        let err = load_from(None, &env(&[("TRELLIS_LISTN", "x")]), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
        let err = load_from(None, &env(&[("TRELLIS_LISTEN", "not-an-address")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = load_from(None, &env(&[("TRELLIS_AUTH__BCRYPT_COST", "4")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bcrypt_cost"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "[gateway]\nrate_limit = 5\n").unwrap();
        let err = load_from(Some(&file), &[], &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("rate_limit"), "{err}");
    }
}
