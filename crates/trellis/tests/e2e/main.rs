//! End-to-end tests of the real `trellis` binary over HTTP: all-in-one with zero configuration,
//! and split into one process per service on PostgreSQL, Redis and RabbitMQ. Both run the same
//! walking-skeleton flow through the gateway, and the mail flows: all-in-one (and distributed)
//! reading `.eml` files from `data/mail`, and all-in-one again with `SMTP_URL` on a real SMTP sink.
//! Attachments: all-in-one unscanned and streamed; all-in-one with a real clamd (quarantine, then
//! available or rejected) and S3; distributed with presigned S3 redirects through the gateway.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod attack_admin_mfa;
mod attack_audit;
mod attack_fuzz;
mod attack_http;
mod attack_live;
mod attack_lockout;
mod attack_services;
mod attack_stepup;
mod attack_visibility;
mod audit;
mod browser;
mod email;
mod flow;
mod gdpr;
mod idempotency;
mod jobs;
mod keys;
mod live;
mod notifications;
mod policy;
mod project_matrix;
mod support;

use serde_json::Value;
use support::{Trellis, run, run_with_stdin};
use test_support::{TestBucket, TestClamd, TestPostgres, TestRabbit, TestRedis, TestSmtp};

#[tokio::test]
async fn all_in_one_with_zero_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let app = Trellis::start("all-in-one", dir.path(), &[], &[]).await;
    let outcome = flow::skeleton(&app.base).await;
    idempotency::replayed_create(&app.base).await;
    attachments::files(&app.base, attachments::Expect { scanned: false, presigned: false }).await;
    flow::edge_cases(&app.base).await;
    // Zero configuration: no grace, the first reuse of a rotated refresh token ends the session.
    flow::sessions(&app.base, flow::Reuse::Detected).await;
    flow::browser_session(&app.base).await;
    flow::brute_force(&app.base).await;
    let changed = flow::password_change(&app.base).await;
    let notice = email::mails_to(&dir.path().join("data/mail"), &changed, "Your Trellis password was changed", 1).await;
    assert!(notice[0].body.contains("/forgot-password"), "the owner is told, with a way out");
    flow::operations_endpoints(&app.base, &["database", "cache", "event_bus", "objects"], true).await;

    // The worker consumed every event the flows wrote (outbox → in-process bus → worker).
    let path = dir.path().join("data/trellis.db");
    assert!(path.exists(), "the embedded database lives under ./data");
    let db = platform::db::Database::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let events = support::wait_for_outbox_consumed(&db).await;
    assert!(events >= outcome.events_written as usize, "the skeleton's events are in the outbox: {events}");
    drop(db);

    // SIGTERM while a login is in flight (its handler reading the body): once the server has
    // stopped accepting connections, the body goes out, and the login still gets its answer.
    let login = serde_json::json!({"email": outcome.email, "password": outcome.password});
    let in_flight = support::HeldRequest::begin(&app, "/auth/login", &login).await;
    app.sigterm();
    app.wait_until_not_accepting().await;
    let (status, _) = in_flight.finish().await;
    assert!(status.starts_with("HTTP/1.1 200"), "an in-flight request is drained, not cut: {status}");
    let (code, log) = app.wait_exit().await;
    assert_eq!(code, Some(0), "SIGTERM stops cleanly:\n{log}");
    assert!(log.contains("\"stopped\""), "shutdown is logged:\n{log}");
    assert!(log.contains("NOT scanned for malware"), "no clamd is said, not hidden:\n{log}");
    flow::assert_log_is_clean(&log, &outcome);
    for line in log.lines().filter(|l| l.contains("request served")) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("log lines are JSON ({e}): {line}"));
        assert!(v["span"]["request_id"].is_string() && v["span"]["trace_id"].is_string(), "{line}");
    }
}

/// All-in-one with clamd and S3 storage: files are quarantined until clamd has scanned them, the
/// signed one is rejected, downloads are presigned redirects (docs/SECURITY.md UP-3, UP-5).
#[tokio::test]
async fn all_in_one_scans_attachments_and_presigns_downloads() {
    let bucket = TestBucket::new().await;
    let clamd = TestClamd::start(&[("malware.txt", attachments::SIGNED)]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("S3_ENDPOINT", bucket.endpoint.clone()),
        ("S3_BUCKET", bucket.bucket.clone()),
        ("S3_ACCESS_KEY_ID", "test".to_string()),
        ("S3_SECRET_ACCESS_KEY", "test".to_string()),
        ("TRELLIS_ATTACHMENTS__CLAMD", clamd.url()),
    ];
    let app = Trellis::start("all-in-one", dir.path(), &[], &env).await;
    attachments::files(&app.base, attachments::Expect { scanned: true, presigned: true }).await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("NOT scanned"), "{log}");
}

/// Personal data all-in-one: the flow of `gdpr`, a `sqlite3 .dump` without any test user's email
/// or name, then a key-encryption key rotation against the running deployment, interrupted and
/// resumed, after which the old key is removed and everything still reads.
#[tokio::test]
async fn all_in_one_personal_data_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let admin = ("root@example.com", "canary granite harbour lighthouse keeper");
    let env = vec![
        ("TRELLIS_ADMIN_EMAIL", admin.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", admin.1.to_string()),
        // Admin actions here are about something else than 2FA (that is attack_admin_mfa.rs): a
        // password-only administrator may act.
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".to_string()),
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000".to_string()),
    ];
    let app = Trellis::start("pii", dir.path(), &[], &env).await;
    let path = dir.path().join("data/trellis.db");
    let db = platform::db::Database::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let canaries = gdpr::personal_data(&app.base, admin, &db, &dir.path().join("data/mail")).await;
    gdpr::assert_absent(&gdpr::sqlite_dump(&path), &canaries, "sqlite3 .dump");
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    gdpr::assert_absent(&log, &canaries, "the log");

    // A second key-encryption key: configured beside the generated one, servers restarted, the
    // rows re-encrypted while they serve.
    let secrets: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.path().join("data/secrets.toml")).unwrap()).unwrap();
    let (old, index) = (secrets["pii_keys"].as_str().unwrap(), secrets["pii_index_key"].as_str().unwrap());
    let new = {
        use base64::Engine as _;
        format!("2:{}", base64::engine::general_purpose::STANDARD.encode([42u8; 32]))
    };
    let with_keys = |keys: String| {
        let mut e = env.clone();
        e.push(("TRELLIS_PII__KEYS", keys));
        e.push(("TRELLIS_PII__INDEX_KEY", index.to_string()));
        e
    };
    let both = with_keys(format!("{old},{new}"));
    let app = Trellis::start("pii-rotating", dir.path(), &[], &both).await;
    gdpr::rotate_pii(dir.path(), &both).await;
    let http = flow::client();
    let admin_token = flow::login_tokens(&http, &app.base, admin.0, admin.1).await.access;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    // Only the new key now: every user still reads and signs in.
    let app = Trellis::start("pii-rotated", dir.path(), &[], &with_keys(new)).await;
    let admin_token2 = flow::login_tokens(&http, &app.base, admin.0, admin.1).await.access;
    assert_ne!(admin_token, admin_token2);
    let found: Value = http
        .get(format!("{}/api/users?q=zephyrine", app.base))
        .bearer_auth(&admin_token2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["name"], "Zephyrine Quillfeather", "{found}");
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
}

/// The second factor and the mailed flows, all-in-one with zero configuration (a process of its
/// own: the gateway's per-address limit of 100 unauthenticated requests a minute is real).
#[tokio::test]
async fn all_in_one_second_factor_and_mail() {
    let dir = tempfile::tempdir().unwrap();
    let app = Trellis::start("all-in-one-2fa-mail", dir.path(), &[], &[]).await;
    flow::two_factor(&app.base).await;
    let mail_dir = dir.path().join("data/mail");
    let mut mailed = email::verification_and_reset(&app.base, &app.base, &mail_dir, "http://127.0.0.1:8080").await;
    mailed.push(email::reset_keeps_the_second_factor(&app.base, &mail_dir, "http://127.0.0.1:8080").await);
    notifications::assignment_and_mention(&app.base, &mail_dir, "http://127.0.0.1:8080").await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    email::assert_tokens_absent(&log, &mailed);
    assert!(
        log.lines().any(|l| l.contains("mail written to a file") && l.contains("data/mail/")),
        "each mail file is named in the log:\n{log}"
    );
    if let Some(line) = log.lines().find(|l| l.contains("canary")) {
        panic!("a password reached the logs: {line}");
    }
}

#[tokio::test]
async fn distributed_one_process_per_service() {
    let pg = TestPostgres::new().await;
    let redis = TestRedis::new().await;
    let rabbit = TestRabbit::new(&[worker::GROUP, worker::notify::GROUP]);
    let bucket = TestBucket::new().await;
    let dir = tempfile::tempdir().unwrap();
    let b64 = |n: usize| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode((0..n).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>())
    };
    let common: Vec<(&str, String)> = vec![
        ("DATABASE_URL", pg.url.clone()),
        ("REDIS_URL", redis.url.clone()),
        ("AMQP_URL", rabbit.url.clone()),
        ("S3_ENDPOINT", bucket.endpoint.clone()),
        ("S3_BUCKET", bucket.bucket.clone()),
        ("S3_ACCESS_KEY_ID", "test".into()),
        ("S3_SECRET_ACCESS_KEY", "test".into()),
        ("TRELLIS_REDIS_PREFIX", redis.prefix.clone()),
        ("TRELLIS_AMQP_NAMESPACE", rabbit.namespace.clone()),
        ("TRELLIS_AUTH__PEPPER", b64(32)),
        ("TRELLIS_AUTH__KEY_ENCRYPTION_KEY", b64(32)),
        ("TRELLIS_PII__KEYS", format!("1:{}", b64(32))),
        ("TRELLIS_PII__INDEX_KEY", b64(32)),
        ("TRELLIS_AUDIT__KEYS", format!("1:{}", b64(32))),
        // A grace window (the default is none): a rotated refresh token presented again within it
        // is taken for an honest race, and the session survives.
        ("TRELLIS_AUTH__REFRESH_REUSE_GRACE_SECS", "10".into()),
        // Every flow runs against this one deployment from one address, within a minute.
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "1000".into()),
        // Signing keys are reloaded every second, so a rotation is seen quickly.
        ("TRELLIS_AUTH__KEY_CHECK_INTERVAL_SECS", "1".into()),
        ("TRELLIS_ADMIN_EMAIL", "root@example.com".into()),
        ("TRELLIS_ADMIN_PASSWORD", "canary granite harbour lighthouse keeper".into()),
        // Admin actions here are about something else than 2FA (that is attack_admin_mfa.rs): a
        // password-only administrator may act.
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".into()),
    ];
    // Each service's own key pair (docs/OPERATIONS.md "Service keys").
    let common: Vec<(&str, String)> = common.into_iter().chain(attack_services::service_key_env()).collect();
    // Every process is told where the others are, as DNS names would in production.
    let port = |_| test_support::reserve_port();
    let [users_port, auth_port, projects_port, worker_port, gateway_port]: [u16; 5] = std::array::from_fn(port);
    let mut env = common.clone();
    env.push(("TRELLIS_UPSTREAMS__USERS", format!("http://127.0.0.1:{users_port}")));
    env.push(("TRELLIS_UPSTREAMS__AUTH", format!("http://127.0.0.1:{auth_port}")));
    env.push(("TRELLIS_UPSTREAMS__PROJECTS", format!("http://127.0.0.1:{projects_port}")));
    env.push(("TRELLIS_UPSTREAMS__WORKER", format!("http://127.0.0.1:{worker_port}")));
    let (users, auth) = tokio::join!(
        Trellis::start_on(users_port, "users", dir.path(), &["--services", "users"], &env),
        Trellis::start_on(auth_port, "auth", dir.path(), &["--services", "auth"], &env),
    );
    let projects = Trellis::start_on(projects_port, "projects", dir.path(), &["--services", "projects"], &env).await;
    let worker = Trellis::start_on(worker_port, "worker", dir.path(), &["--services", "worker"], &env).await;
    let gateway = Trellis::start_on(gateway_port, "gateway", dir.path(), &["--services", "gateway"], &env).await;

    let outcome = flow::skeleton(&gateway.base).await;
    idempotency::replayed_create(&gateway.base).await;
    // Live updates through the gateway's tunnel to the worker process, and from a second worker
    // process (another instance: every instance takes every event from RabbitMQ).
    live::updates(&gateway.base).await;
    let worker2_port = test_support::reserve_port();
    let worker2 = Trellis::start_on(worker2_port, "worker-2", dir.path(), &["--services", "worker"], &env).await;
    live::fan_out(&gateway.base, &worker2.base).await;
    let (code, log) = worker2.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    attachments::files(&gateway.base, attachments::Expect { scanned: false, presigned: true }).await;
    flow::edge_cases(&gateway.base).await;
    flow::sessions(&gateway.base, flow::Reuse::WithinGrace).await;
    flow::browser_session(&gateway.base).await;
    flow::brute_force(&gateway.base).await;
    flow::password_change(&gateway.base).await;
    flow::two_factor(&gateway.base).await;
    // The auth process writes mail into its data folder; users answers over HTTP.
    let mail_dir = dir.path().join("data/mail");
    let mailed = email::verification_and_reset(&gateway.base, &auth.base, &mail_dir, "http://127.0.0.1:8080").await;
    // The worker process mails notifications, asking users and projects over HTTP.
    notifications::assignment_and_mention(&gateway.base, &mail_dir, "http://127.0.0.1:8080").await;
    // The users process ends sessions through the auth process (SessionsApi over HTTP).
    let rbac = flow::rbac(&gateway.base, "root@example.com", "canary granite harbour lighthouse keeper").await;
    role_gate_in_each_service(&projects.base, &users.base, &rbac).await;
    // The projects authorization matrix on PostgreSQL, Redis and S3, through the gateway.
    project_matrix::create_guest(dir.path(), &env).await;
    let matrix = project_matrix::matrix(&gateway.base).await;
    // Personal data across the users, auth and projects processes; then no test user's email or
    // name is anywhere in the database.
    let canaries = gdpr::personal_data(
        &gateway.base,
        ("root@example.com", "canary granite harbour lighthouse keeper"),
        &pg.db,
        &mail_dir,
    )
    .await;
    gdpr::assert_absent(&gdpr::pg_dump(&pg.url), &canaries, "pg_dump");
    flow::operations_endpoints(&gateway.base, &["cache"], false).await;
    // The projects process read the skeleton's task through Redis: its counters say so.
    let metrics = flow::client().get(format!("{}/metrics", projects.base)).send().await.unwrap().text().await.unwrap();
    for counter in ["trellis_cache_hits_total{entity=\"task\"}", "trellis_cache_misses_total{entity=\"task\"}"] {
        assert!(metrics.contains(counter), "{counter} in the projects process's {metrics}");
    }
    flow::operations_endpoints(&worker.base, &["database", "cache", "event_bus", "objects"], false).await;
    // `trellis keys rotate` on the shared database: the auth process signs with the new key and
    // the gateway and projects processes (JWKS over HTTP) accept it.
    keys::rotate_while_serving(&gateway.base, dir.path(), &env).await;

    // The events crossed RabbitMQ to the worker process and were recorded in PostgreSQL.
    let events = support::wait_for_outbox_consumed(&pg.db).await;
    assert!(events >= outcome.events_written as usize, "the skeleton's events are in the outbox: {events}");
    // The audit log on PostgreSQL and S3: counted, archived by the CLI, verified through the gateway.
    audit::distributed(&gateway.base, dir.path(), &env).await;

    // Rate-limit counters live in Redis under this deployment's prefix. A counter lasts its
    // window (a minute): look right after a request the gateway counted, not minutes later.
    let res = flow::client().get(format!("{}/api/projects", gateway.base)).send().await.unwrap();
    assert!(res.headers().contains_key("ratelimit-remaining"), "the gateway counts every request");
    assert!(
        redis.keys().iter().any(|k| k.starts_with(&format!("{}rl:", redis.prefix))),
        "the gateway counted in Redis"
    );

    // The web app in a real browser, through the gateway: WebSocket tunnel, cookies through the
    // proxy, downloads from presigned S3 URLs.
    browser::suite(&gateway.base, "root@example.com", "canary granite harbour lighthouse keeper", "distributed").await;

    let mut logs = String::new();
    for p in [gateway, projects, auth, users, worker] {
        let (code, log) = p.terminate().await;
        assert_eq!(code, Some(0), "clean stop:\n{log}");
        logs.push_str(&log);
    }
    flow::assert_log_is_clean(&logs, &outcome);
    email::assert_tokens_absent(&logs, &mailed);
    project_matrix::assert_refusals_logged(&logs, &matrix);
    // The request id of the gateway travelled with the call to the service behind it.
    assert!(
        logs.lines().filter(|l| l.contains(&outcome.traced_request_id)).count() >= 2,
        "request id {} should appear in the gateway's and the service's logs",
        outcome.traced_request_id
    );
    // The caller's W3C trace went on through the gateway: the projects service's span for the
    // traced call is a child of the gateway's span, in the same trace.
    let span_of = |service: &str| -> Value {
        logs.lines()
            .filter(|l| l.contains("request served") && l.contains(&outcome.traced_trace_id))
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["span"].clone())
            .find(|span| span["service"] == service)
            .unwrap_or_else(|| panic!("no {service} log line carries trace id {}", outcome.traced_trace_id))
    };
    let (gw, svc) = (span_of("gateway"), span_of("projects"));
    assert_eq!(gw["parent_span_id"], "00f067aa0ba902b7", "the gateway continues the caller's span");
    assert_eq!(svc["parent_span_id"], gw["span_id"], "the service's parent is the gateway's span");
    assert_eq!(svc["trace_id"], outcome.traced_trace_id.as_str());
}

/// The attacks of issue 16 against the all-in-one deployment with zero configuration (plus an
/// administrator): each area's flow performs its attack against the real binary and fails if the
/// hole comes back (docs/SECURITY.md).
#[tokio::test]
async fn all_in_one_under_attack() {
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&'static str, String)> = vec![
        ("TRELLIS_ADMIN_EMAIL", support::ATTACK_ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", support::ATTACK_ADMIN.1.to_string()),
    ];
    env.extend(attack_http::settings());
    env.extend(attack_lockout::settings());
    let app = Trellis::start("under-attack", dir.path(), &[], &env).await;
    let path = dir.path().join("data/trellis.db");
    let db = platform::db::Database::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let services =
        ["gateway", "auth", "users", "projects", "worker"].into_iter().map(|s| (s, app.base.clone())).collect();
    let ctx = support::Attack {
        base: app.base.clone(),
        services,
        mail_dir: dir.path().join("data/mail"),
        db,
        admin: (support::ATTACK_ADMIN.0.to_string(), support::ATTACK_ADMIN.1.to_string()),
        dir: dir.path().to_path_buf(),
        env: env.clone(),
        distributed: false,
    };
    under_attack(&ctx).await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    if let Some(line) = log.lines().find(|l| l.contains("canary")) {
        panic!("a password or canary text reached the logs: {line}");
    }
}

/// The attacks of issue 16 against the distributed deployment: one process per service over
/// PostgreSQL, Redis and RabbitMQ.
#[tokio::test]
async fn distributed_under_attack() {
    let pg = TestPostgres::new().await;
    let redis = TestRedis::new().await;
    let rabbit = TestRabbit::new(&[worker::GROUP, worker::notify::GROUP]);
    let dir = tempfile::tempdir().unwrap();
    let b64 = |seed: usize| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode((0..32).map(|i| (i * 7 + seed) as u8).collect::<Vec<u8>>())
    };
    let mut env: Vec<(&'static str, String)> = vec![
        ("DATABASE_URL", pg.url.clone()),
        ("REDIS_URL", redis.url.clone()),
        ("AMQP_URL", rabbit.url.clone()),
        ("TRELLIS_REDIS_PREFIX", redis.prefix.clone()),
        ("TRELLIS_AMQP_NAMESPACE", rabbit.namespace.clone()),
        ("TRELLIS_AUTH__PEPPER", b64(1)),
        ("TRELLIS_AUTH__KEY_ENCRYPTION_KEY", b64(2)),
        ("TRELLIS_PII__KEYS", format!("1:{}", b64(3))),
        ("TRELLIS_PII__INDEX_KEY", b64(4)),
        ("TRELLIS_AUDIT__KEYS", format!("1:{}", b64(5))),
        ("TRELLIS_ADMIN_EMAIL", support::ATTACK_ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", support::ATTACK_ADMIN.1.to_string()),
    ];
    env.extend(attack_http::settings());
    env.extend(attack_lockout::settings());
    env.extend(attack_services::service_key_env());
    let names = ["users", "auth", "projects", "worker", "gateway"];
    let ports: Vec<u16> = names.iter().map(|_| test_support::reserve_port()).collect();
    for (name, port) in names.iter().zip(&ports) {
        if *name != "gateway" {
            let key: &'static str = match *name {
                "users" => "TRELLIS_UPSTREAMS__USERS",
                "auth" => "TRELLIS_UPSTREAMS__AUTH",
                "projects" => "TRELLIS_UPSTREAMS__PROJECTS",
                _ => "TRELLIS_UPSTREAMS__WORKER",
            };
            env.push((key, format!("http://127.0.0.1:{port}")));
        }
    }
    // Started in dependency order: users and auth, then those that call them.
    let mut processes = Vec::new();
    for (name, port) in names.iter().zip(&ports) {
        processes.push(Trellis::start_on(*port, name, dir.path(), &["--services", name], &env).await);
    }
    let services = names.iter().zip(&processes).map(|(n, p)| (*n, p.base.clone())).collect();
    let ctx = support::Attack {
        base: processes.last().expect("the gateway").base.clone(),
        services,
        mail_dir: dir.path().join("data/mail"),
        db: platform::db::Database::connect(&pg.url).await.unwrap(),
        admin: (support::ATTACK_ADMIN.0.to_string(), support::ATTACK_ADMIN.1.to_string()),
        dir: dir.path().to_path_buf(),
        env: env.clone(),
        distributed: true,
    };
    under_attack(&ctx).await;
    let mut logs = String::new();
    for p in processes.into_iter().rev() {
        let (code, log) = p.terminate().await;
        assert_eq!(code, Some(0), "clean stop:\n{log}");
        logs.push_str(&log);
    }
    if let Some(line) = logs.lines().find(|l| l.contains("canary")) {
        panic!("a password or canary text reached the logs: {line}");
    }
}

/// Every area's attacks, in one order for both deployments. Each flow leaves the deployment as
/// usable as it found it (the administrator can still sign in with the same password).
async fn under_attack(ctx: &support::Attack) {
    // Each area of issue 16 adds its flow here (crates/trellis/tests/e2e/attack_*.rs).
    let admin = flow::login_tokens(&flow::client(), &ctx.base, &ctx.admin.0, &ctx.admin.1).await;
    assert!(!admin.access.is_empty(), "the administrator signs in");
    // Early, while this address still has registrations left; it leaves the administrator
    // signing in with the password alone, as found.
    attack_admin_mfa::admin_mfa(ctx).await;
    attack_visibility::visibility(ctx).await;
    attack_stepup::step_up(ctx).await;
    attack_http::hardened(ctx).await;
    attack_services::services(ctx).await;
    attack_live::live(ctx).await;
    attack_lockout::lockout(ctx).await;
    // Last: about 40 malformed requests, some counted by the anonymous rate limit.
    attack_fuzz::malformed_input(ctx).await;
    attack_audit::audit(ctx).await;
}

/// A full disk under the all-in-one binary answers 503 with `Retry-After` and loses nothing
/// (docs/SECURITY.md GW-2; a tmpfs of a few MiB, so it needs root as CI has).
#[tokio::test]
async fn all_in_one_full_disk_answers_503_and_loses_nothing() {
    attack_audit::full_disk().await;
}

/// PostgreSQL with an owner role for migrations and a runtime role without DDL: the binary works
/// as the runtime role, which cannot touch the audit log's triggers (docs/SECURITY.md LO-4).
#[tokio::test]
async fn all_in_one_on_postgres_runs_as_a_role_without_ddl() {
    attack_audit::runtime_role_without_ddl().await;
}

/// A security notice is queued durably: through an SMTP outage and a restart, it arrives.
#[tokio::test]
async fn all_in_one_security_notice_survives_smtp_outage_and_restart() {
    attack_audit::durable_notice().await;
}

/// Failed credential attempts are limited per client address too (docs/SECURITY.md LG-1), counted in
/// Redis: past the limit even a right password from that address waits, spread over any emails.
#[tokio::test]
async fn failed_attempts_are_limited_per_client_address() {
    let redis = TestRedis::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("REDIS_URL", redis.url.clone()),
        ("TRELLIS_REDIS_PREFIX", redis.prefix.clone()),
        ("TRELLIS_AUTH__IP_FAILURE_LIMIT", "3".to_string()),
    ];
    let app = Trellis::start("per-address", dir.path(), &[], &env).await;
    let http = reqwest::Client::new();
    let (email, password) = ("pat.doe@example.com", "canary: sprayed passwords are counted");
    let body = serde_json::json!({"email": email, "password": password, "name": "Pat Doe"});
    let res = http.post(format!("{}/auth/register", app.base)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    for i in 0..3 {
        let res = flow::post_login(&http, &app.base, &format!("victim{i}@example.com"), "canary guess").await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    }
    let res = flow::post_login(&http, &app.base, email, password).await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    let res = http
        .post(format!("{}/auth/login/mfa", app.base))
        .json(&serde_json::json!({"mfa_token": "x", "code": "123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::TOO_MANY_REQUESTS, "every credential endpoint");
    app.terminate().await;
}

/// With `SMTP_URL`, every mail goes over SMTP (to a real aiosmtpd sink here) and none to files;
/// links use `public_url`.
#[tokio::test]
async fn all_in_one_mails_over_smtp() {
    let sink = TestSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("SMTP_URL", sink.url.clone()),
        ("TRELLIS_PUBLIC_URL", "https://trellis.example.test/".to_string()),
        ("TRELLIS_MAIL__FROM", "Trellis <no-reply@localhost>".to_string()),
    ];
    let app = Trellis::start("smtp", dir.path(), &[], &env).await;
    let mailed = email::verification_and_reset(&app.base, &app.base, sink.dir(), "https://trellis.example.test").await;
    let received = sink.messages();
    assert!(received.iter().all(|m| m.header("x-envelope-to") == m.header("to")), "sent to the header's address");
    assert!(test_support::read_mail_dir(&dir.path().join("data/mail")).is_empty(), "no mail went to files");
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    email::assert_tokens_absent(&log, &mailed);
    assert!(log.contains("mail goes over SMTP"), "{log}");
    if let Some(line) = log.lines().find(|l| l.contains("canary")) {
        panic!("a password reached the logs: {line}");
    }
}

/// The role gate on the all-in-one binary: the served OpenAPI document against the table, every
/// rule × role, and the RBAC flow; refusals are logged with the user, method and route.
#[tokio::test]
async fn role_gate_and_rbac_all_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_email, admin_password) = ("root@example.com", "canary granite harbour lighthouse keeper");
    let (code, _, err) = run_with_stdin(
        dir.path(),
        &["admin", "create-user", "--email", "guest@example.com", "--name", "Guest", "--role", "guest"],
        &[],
        "canary orchard meadow lantern keeper\n",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let env = vec![
        ("TRELLIS_ADMIN_EMAIL", admin_email.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", admin_password.to_string()),
        // Admin actions here are about something else than 2FA (that is attack_admin_mfa.rs): a
        // password-only administrator may act.
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".to_string()),
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000".to_string()),
    ];
    let app = Trellis::start("rbac", dir.path(), &[], &env).await;
    let http = reqwest::Client::builder().timeout(support::request_timeout()).build().unwrap();
    policy::openapi_matches_the_table(&http, &app.base).await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (user_email, user_password) = (format!("member.{tag}@example.com"), format!("canary-password-{tag}"));
    let res = http
        .post(format!("{}/auth/register", app.base))
        .json(&serde_json::json!({"email": user_email, "password": user_password, "name": "Member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    use api::users::Role;
    let mut logins = [
        policy::Login::new(&http, &app.base, Role::Guest, "guest@example.com", "canary orchard meadow lantern keeper")
            .await,
        policy::Login::new(&http, &app.base, Role::User, &user_email, &user_password).await,
        policy::Login::new(&http, &app.base, Role::Admin, admin_email, admin_password).await,
    ];
    policy::matrix(&http, &app.base, &mut logins).await;
    let guest_id = {
        let me: Value = http
            .get(format!("{}/api/users/me", app.base))
            .bearer_auth(&logins[0].access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().to_string()
    };
    let rbac = flow::rbac(&app.base, admin_email, admin_password).await;

    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    // AZ-11: the guest's refused write is logged with who, what and where, and no token.
    let denied = log
        .lines()
        .filter(|l| l.contains("authorization denied"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["fields"]["user_id"] == guest_id.as_str() && v["fields"]["route"] == "/api/projects")
        .unwrap_or_else(|| panic!("the guest's refusal is logged:\n{log}"));
    assert_eq!(denied["fields"]["method"], "POST");
    assert_eq!(denied["fields"]["role"], "guest");
    assert!(log.lines().any(|l| l.contains("role or status changed")), "role changes are logged");
    assert!(!log.contains("canary"), "no password reaches the logs");
    for l in &logins {
        assert!(!log.contains(&l.access), "no access token reaches the logs");
    }
    assert!(!log.contains(&rbac.guest_access));
}

/// Straight to the service processes, past the gateway (docs/SECURITY.md AZ-5): each one enforces the
/// role gate itself, and identity headers forged by the caller count for nothing.
async fn role_gate_in_each_service(projects: &str, users: &str, rbac: &flow::RbacOutcome) {
    let http = reqwest::Client::builder().timeout(support::request_timeout()).build().unwrap();
    let res = http
        .post(format!("{projects}/api/projects"))
        .bearer_auth(&rbac.guest_access)
        .json(&serde_json::json!({"name": "Past the gateway"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["detail"], platform::http::ROLE_DENIED);
    let res = http
        .get(format!("{projects}/api/projects/{}", rbac.guest_project))
        .bearer_auth(&rbac.guest_access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK, "the guest still reads its project");
    for (method, url) in [
        (reqwest::Method::POST, format!("{projects}/api/projects")),
        (reqwest::Method::GET, format!("{users}/api/users/me")),
        (reqwest::Method::PATCH, format!("{users}/api/users/{}", rbac.admin_id)),
    ] {
        let res = http
            .request(method, &url)
            .header("x-user-id", &rbac.admin_id)
            .header("x-user-role", "admin")
            .header("x-forwarded-user", &rbac.admin_id)
            .json(&serde_json::json!({"name": "Forged"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED, "{url}: forged identity headers count for nothing");
    }
    // Internal routes answer only a service's signed credential (attack_services has the rest).
    let res = http
        .post(format!("{users}/internal/users/lookup"))
        .json(&serde_json::json!({"email": "root@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "service_credential_required");
}

#[tokio::test]
async fn command_line_and_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["--help"], &[]).await;
    assert_eq!(code, Some(0));
    for word in ["serve", "migrate", "config"] {
        assert!(out.contains(word), "--help lists {word}:\n{out}");
    }
    let (code, out, _) = run(dir.path(), &["config", "print-default"], &[]).await;
    assert_eq!(code, Some(0));
    let parsed: toml::Value = toml::from_str(&out).expect("the default configuration is TOML");
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));

    // The printed defaults are a valid configuration file.
    std::fs::write(dir.path().join("trellis.toml"), &out).unwrap();
    let (code, _, err) = run(dir.path(), &["migrate", "--config", "trellis.toml"], &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.path().join("data/trellis.db").exists());

    let (code, _, err) = run(dir.path(), &["serve"], &[("TRELLIS_LISTN", "127.0.0.1:1".into())]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("listn"), "an unknown setting is named: {err}");
    // These two are refused after the listener is bound: a port of their own, not the default
    // 8080 that anything on the machine may hold.
    let listen = format!("127.0.0.1:{}", test_support::reserve_port());
    let (code, _, err) = run(dir.path(), &["serve", "--listen", &listen, "--services", "billing"], &[]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("billing"), "{err}");
    let (code, _, err) = run(dir.path(), &["serve", "--listen", &listen, "--services", "projects"], &[]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("TRELLIS_AUTH__PEPPER"), "split services must be given their secrets: {err}");
}

#[tokio::test]
async fn first_administrator_from_the_environment_or_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("admin-password");
    std::fs::write(&password_file, "granite harbour lighthouse keeper\n").unwrap();
    let env = vec![
        ("TRELLIS_ADMIN_EMAIL", "root@example.com".to_string()),
        ("TRELLIS_ADMIN_PASSWORD_FILE", password_file.display().to_string()),
    ];
    // First start creates the administrator; a second start finds it and changes nothing.
    for round in 0..2 {
        let app = Trellis::start("bootstrap", dir.path(), &[], &env).await;
        let http = reqwest::Client::new();
        let res =
            flow::post_login(&http, &app.base, "root@example.com", "granite harbour lighthouse keeper").await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK, "round {round}");
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(tokens["user"]["role"], "admin");
        let (code, log) = app.terminate().await;
        assert_eq!(code, Some(0), "{log}");
        assert!(!log.contains("granite harbour lighthouse keeper"), "the password never reaches the log");
    }

    // The command line reads the password from standard input.
    let (code, out, err) = run_with_stdin(
        dir.path(),
        &["admin", "create-user", "--email", "ops@example.com", "--name", "Operations", "--role", "user"],
        &[],
        "another long passphrase for ops\n",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("created ops@example.com") && out.contains("role user"), "{out}");
    let (code, _, err) = run_with_stdin(
        dir.path(),
        &["admin", "create-user", "--email", "weak@example.com", "--name", "Weak"],
        &[],
        "short\n",
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("password") && !err.contains("short\n"), "{err}");
    let (code, _, err) = run_with_stdin(
        dir.path(),
        &["admin", "create-user", "--email", "x@example.com", "--name", "X", "--role", "root"],
        &[],
        "",
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("--role"), "{err}");
    let app = Trellis::start("after-cli", dir.path(), &[], &[]).await;
    let status =
        flow::login(app.base.clone(), "ops@example.com".into(), "another long passphrase for ops".into()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "the account made on the command line logs in");
    let _ = app.terminate().await;

    // An email without a password is refused at start-up, by name.
    let (code, _, err) = run(dir.path(), &["serve"], &[("TRELLIS_ADMIN_EMAIL", "root@example.com".into())]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("TRELLIS_ADMIN_PASSWORD"), "{err}");
}
