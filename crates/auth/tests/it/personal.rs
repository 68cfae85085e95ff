//! What the users service asks of the auth service, on SQLite and PostgreSQL: password checks
//! (throttled like logins), email changes (old links spent, the new address and the old one
//! mailed), and the export and erasure of a user's personal data (every auth table, nothing of
//! another user, no secret; erasure ends the sessions at once and is idempotent). Also the
//! internal routes and `HttpSessionsClient` / `PersonalDataClient` over real HTTP.

use std::path::Path;
use std::sync::Arc;

use api::ApiError;
use api::auth::{LoginRequest, LoginResponse, SessionsApi, TokenResponse};
use api::personal::{DataSubject, PersonalData, PersonalDataApi};
use api::users::{NewUser, Role};
use auth::AuthService;
use auth::ports::{AuthStore, MfaChallenge, PERSONAL_DATA_TABLES};
use auth::service::{AuthError, ClientInfo};
use base64::Engine as _;
use platform::cache::{Cache, MemoryCache};
use platform::crypto::sha256;
use platform::db::Database;
use platform::identity::{TokenVerifier, VerifyError};
use serde_json::{Value, json};
use test_support::{ReceivedMail, read_mail_dir, wait};
use uuid::Uuid;

use super::end_sessions::{account, events, service, service_on};
use api::users::{UpdateUser, UserStatus, UsersApi as _};
use users::service::Actor;

/// The password `account` registers with.
const PASSWORD: &str = "canary correct horse battery staple";

/// Auth tables that hold no personal data, and why; every other `auth_*` table must be exported.
const NO_PERSONAL_DATA: &[&str] = &[
    // The service's signing keys (sealed private keys, public JWKs): nothing about any user.
    "auth_signing_keys",
];

fn client(ua: &str) -> ClientInfo {
    ClientInfo { user_agent: Some(ua.into()), ip: Some("192.0.2.44".parse().unwrap()) }
}

async fn login(svc: &AuthService, email: &str, info: ClientInfo) -> TokenResponse {
    let req = LoginRequest { email: email.into(), password: PASSWORD.into() };
    match svc.login(req, info).await.unwrap() {
        LoginResponse::Tokens(t) => t,
        LoginResponse::MfaRequired(_) => panic!("no second factor here"),
    }
}

fn sid(tokens: &TokenResponse) -> Uuid {
    let claims = tokens.access_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().parse().unwrap()
}

/// A clock that stands still: the account throttle's wait, counted from the last failure, cannot
/// run out between the failures and the attempt that must find it, however slow the machine.
fn still_clock() -> Arc<dyn platform::clock::Clock> {
    Arc::new(platform::clock::ManualClock::new(time::OffsetDateTime::now_utc()))
}

/// The mails in `dir` (a service's mail folder) to `to` whose subject starts with `subject`, once
/// there are at least `count` (mail leaves on a task of its own).
async fn mails_to(dir: &Path, to: &str, subject: &str, count: usize) -> Vec<ReceivedMail> {
    let what = format!("{count} mails \"{subject}…\" to {to} in {}", dir.display());
    wait::until_some(&what, || async {
        let found: Vec<ReceivedMail> = read_mail_dir(dir)
            .into_iter()
            .filter(|m| m.header("to") == Some(to) && m.header("subject").is_some_and(|s| s.starts_with(subject)))
            .collect();
        (found.len() >= count).then_some(found)
    })
    .await
}

async fn check_password_right_wrong_and_throttled(db: Database) {
    let (svc, _) = service_on(&db, Arc::new(MemoryCache::default()), still_clock()).await;
    let api: Arc<dyn SessionsApi> = svc.clone();
    let (user, email) = account(&svc).await;

    api.check_password(user, PASSWORD).await.unwrap();
    assert!(matches!(api.check_password(user, "not the password at all").await, Err(ApiError::Unauthorized)));
    api.check_password(user, PASSWORD).await.expect("a right password clears the count, like a login");

    // The login throttle: free failures, then a wait, for every credential attempt on the account.
    let free = (1..).find(|n| auth::domain::login_delay(*n) > time::Duration::ZERO).unwrap();
    for _ in 0..free {
        assert!(matches!(api.check_password(user, "wrong wrong wrong wrong").await, Err(ApiError::Unauthorized)));
    }
    match api.check_password(user, PASSWORD).await {
        Err(ApiError::RateLimited(secs)) => assert!((1..=30).contains(&secs), "{secs}"),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let req = LoginRequest { email: email.clone(), password: PASSWORD.into() };
    assert!(
        matches!(svc.login(req, ClientInfo::default()).await, Err(AuthError::Throttled(_))),
        "password checks and logins share the account's throttle"
    );
    let failed = events(&db, "auth.password_check_failed").await;
    assert_eq!(failed.len(), usize::try_from(free).unwrap() + 1);
    assert_eq!(failed[0], json!({ "user_id": user, "consecutive_failures": 1 }));
    assert!(!failed.iter().any(|e| e.to_string().contains("wrong")), "no password in events");

    // Unknown user, user without a password, inactive user: refused alike.
    assert!(matches!(api.check_password(Uuid::now_v7(), PASSWORD).await, Err(ApiError::Unauthorized)));
    let users = super::users_on(&db, Arc::new(platform::clock::SystemClock)).await;
    let bare = Uuid::now_v7();
    let new =
        NewUser { id: bare, email: format!("{}@example.com", bare.simple()), name: "Bare".into(), role: Role::User };
    users.create_user(new).await.unwrap();
    assert!(matches!(api.check_password(bare, PASSWORD).await, Err(ApiError::Unauthorized)));
    let (inactive, _) = account(&svc).await;
    users.connect_sessions(svc.clone());
    // The admin's own password is the step-up proof a status change needs.
    let (admin_id, _) = account(&svc).await;
    let admin = Actor { user_id: admin_id, role: Role::Admin, client_ip: None };
    let deactivate = UpdateUser {
        status: Some(UserStatus::Inactive),
        current_password: Some(PASSWORD.into()),
        ..UpdateUser::default()
    };
    users.update_user(admin, inactive, deactivate, None).await.unwrap();
    assert!(matches!(api.check_password(inactive, PASSWORD).await, Err(ApiError::Unauthorized)));
}

/// Text forms a secret could take in JSON.
fn encodings(secret: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let array = serde_json::to_string(secret).unwrap();
    vec![hex, STANDARD.encode(secret), STANDARD_NO_PAD.encode(secret), URL_SAFE_NO_PAD.encode(secret), array]
}

fn assert_absent(json: &str, what: &str, secret: &[u8]) {
    for form in encodings(secret) {
        assert!(!json.contains(&form), "the export holds {what} ({form})");
    }
}

struct Seeded {
    user: Uuid,
    email: String,
    sessions: Vec<TokenResponse>,
    refresh_tokens: Vec<String>,
    sealed_seed: Vec<u8>,
    recovery_hashes: Vec<[u8; 32]>,
    mfa_token: Vec<u8>,
}

/// An account with rows in every personal-data table: two sessions (one refreshed), a failed
/// login, a confirmed TOTP with recovery codes (one used), a pending second-factor challenge,
/// a verification and a reset token.
async fn seeded(svc: &AuthService, store: &Arc<dyn AuthStore>) -> Seeded {
    let (user, email) = account(svc).await;
    let first = login(svc, &email, client("canary-agent/1")).await;
    let second = login(svc, &email, client("canary-agent/2")).await;
    let rotated = svc.refresh(&first.refresh_token).await.unwrap();
    let bad = LoginRequest { email: email.clone(), password: "not the password at all".into() };
    assert!(svc.login(bad, client("guesser")).await.is_err());
    // A reset token (the service mails them to verified addresses only; stored directly here).
    let now = time::OffsetDateTime::now_utc();
    let reset = auth::ports::NewEmailToken {
        token_hash: sha256(format!("canary-reset-{user}").as_bytes()),
        user_id: user,
        purpose: auth::ports::EmailTokenPurpose::ResetPassword,
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    let event = platform::bus::Event::new("auth.password_reset_requested", user, None, now, json!({}));
    assert!(store.issue_email_token(&reset, now - time::Duration::hours(1), 3, &event).await.unwrap());

    let sealed_seed = b"canary-sealed-totp-seed-0123456789".to_vec();
    let recovery_hashes = vec![sha256(b"recovery-1"), sha256(b"recovery-2")];
    let now = time::OffsetDateTime::now_utc();
    store.put_pending_totp(user, &sealed_seed, now).await.unwrap();
    let event = platform::bus::Event::new("auth.mfa_enabled", user, Some(user), now, json!({}));
    assert!(store.enable_totp(user, now.unix_timestamp() / 30, &recovery_hashes, now, &event).await.unwrap());
    assert!(store.use_recovery_code(user, sha256(b"recovery-1"), now).await.unwrap());
    let mfa_token = format!("canary-mfa-token-{user}").into_bytes();
    let challenge = MfaChallenge {
        token_hash: sha256(&mfa_token),
        user_id: user,
        user_agent: Some("canary-agent/3".into()),
        ip: Some("192.0.2.45".into()),
        created_at: now,
        expires_at: now + time::Duration::minutes(5),
        attempts: 1,
        used_at: None,
    };
    store.create_mfa_challenge(&challenge).await.unwrap();
    let refresh_tokens = vec![first.refresh_token.clone(), second.refresh_token.clone(), rotated.refresh_token];
    Seeded { user, email, sessions: vec![first, second], refresh_tokens, sealed_seed, recovery_hashes, mfa_token }
}

fn rows<'a>(data: &'a PersonalData, table: &str) -> &'a Vec<Value> {
    data.tables.get(table).unwrap_or_else(|| panic!("the export names {table}"))
}

async fn export_holds_the_users_rows_and_no_secret(db: Database) {
    let svc = service(&db, Arc::new(MemoryCache::default())).await;
    let store = auth::store(&db);
    let ada = seeded(&svc, &store).await;
    let bob = seeded(&svc, &store).await;

    let subject = DataSubject { user_id: ada.user, email: Some(ada.email.clone()) };
    let data = PersonalDataApi::export(&*svc, &subject).await.unwrap();
    let names: Vec<&str> = data.tables.keys().map(String::as_str).collect();
    let mut expected = PERSONAL_DATA_TABLES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "every table, each once");

    assert_eq!(rows(&data, "auth_credentials")[0]["password_set"], json!(true));
    let sessions = rows(&data, "auth_sessions");
    let mut ids: Vec<Uuid> = sessions.iter().map(|s| s["id"].as_str().unwrap().parse().unwrap()).collect();
    ids.sort();
    let mut expected: Vec<Uuid> = ada.sessions.iter().map(sid).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(sessions.iter().all(|s| s["ip"] == json!("192.0.2.44")));
    assert!(sessions.iter().any(|s| s["user_agent"] == json!("canary-agent/2")));
    let refresh = rows(&data, "auth_refresh_tokens");
    assert_eq!(refresh.len(), 3, "two first tokens and one rotated");
    assert_eq!(refresh.iter().filter(|t| t["used"] == json!(true)).count(), 1);
    let failures = rows(&data, "auth_login_failures");
    assert_eq!(failures.len(), 1);
    assert_eq!((&failures[0]["counter"], &failures[0]["consecutive_failures"]), (&json!("login"), &json!(1)));
    let totp = rows(&data, "auth_totp");
    assert_eq!((totp.len(), &totp[0]["confirmed"]), (1, &json!(true)));
    let codes = rows(&data, "auth_recovery_codes");
    assert_eq!((codes.len(), codes.iter().filter(|c| c["used"] == json!(true)).count()), (2, 1));
    let challenges = rows(&data, "auth_mfa_challenges");
    assert_eq!((challenges.len(), &challenges[0]["user_agent"]), (1, &json!("canary-agent/3")));
    let mut purposes: Vec<&str> =
        rows(&data, "auth_email_tokens").iter().map(|t| t["purpose"].as_str().unwrap()).collect();
    purposes.sort_unstable();
    assert_eq!(purposes, ["reset_password", "verify_email"]);
    assert!(rows(&data, "auth_email_tokens").iter().all(|t| t["expires_at"].is_string()));

    let text = serde_json::to_string(&data).unwrap();
    // Nothing of another user.
    assert!(!text.contains(&bob.user.to_string()) && !text.contains(&bob.email));
    for s in &bob.sessions {
        assert!(!text.contains(&sid(s).to_string()), "another user's session");
    }
    // No secret, in any encoding.
    assert!(!text.contains(PASSWORD));
    let hash = store.password_hash(ada.user).await.unwrap();
    assert!(!text.contains(&hash) && !text.contains(&hash[7..]), "the password hash");
    assert_absent(&text, "the TOTP seed", &ada.sealed_seed);
    for token in &ada.refresh_tokens {
        assert!(!text.contains(token.as_str()), "a refresh token");
        assert_absent(&text, "a refresh token hash", &sha256(token.as_bytes()));
    }
    for h in &ada.recovery_hashes {
        assert_absent(&text, "a recovery code hash", h);
    }
    assert_absent(&text, "the mfa token hash", &sha256(&ada.mfa_token));
    let hasher = auth::passwords::PasswordHasher::new(secrecy::SecretSlice::from(vec![1u8; 32]), 4, 1, 1);
    assert_absent(&text, "the throttle key", &hasher.account_key(&ada.email));
    for session in &ada.sessions {
        assert!(!text.contains(&session.access_token));
    }

    // Without the email, the login counter cannot be found, but the table is still named.
    let data = PersonalDataApi::export(&*svc, &DataSubject { user_id: ada.user, email: None }).await.unwrap();
    assert_eq!(rows(&data, "auth_login_failures").len(), 0);
    assert_eq!(rows(&data, "auth_sessions").len(), 2);
}

async fn erase_removes_everything_once_and_ends_sessions_at_once(db: Database) {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let svc = service(&db, cache.clone()).await;
    let store = auth::store(&db);
    let ada = seeded(&svc, &store).await;
    let bob = seeded(&svc, &store).await;
    let verifier = TokenVerifier::new(svc.clone(), svc.clone(), cache.clone(), "https://trellis.test", "trellis");
    let access = &ada.sessions[1].access_token;
    verifier.verify(access).await.expect("valid before the erasure (and cached as active)");

    let subject = DataSubject { user_id: ada.user, email: Some(ada.email.clone()) };
    let report = PersonalDataApi::erase(&*svc, &subject).await.unwrap();
    let expected: std::collections::BTreeMap<String, u64> = [
        ("auth_credentials", 1),
        ("auth_sessions", 2),
        ("auth_refresh_tokens", 3),
        ("auth_login_failures", 1),
        ("auth_totp", 1),
        ("auth_recovery_codes", 2),
        ("auth_mfa_challenges", 1),
        ("auth_email_tokens", 2),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_string(), n))
    .collect();
    assert_eq!(report.tables, expected);

    assert!(matches!(verifier.verify(access).await, Err(VerifyError::Invalid)), "the access token dies at once");
    assert!(svc.refresh(&ada.refresh_tokens[2]).await.is_err());
    let after = PersonalDataApi::export(&*svc, &subject).await.unwrap();
    assert!(after.tables.values().all(Vec::is_empty), "nothing left: {after:?}");
    assert_eq!(after.tables.len(), PERSONAL_DATA_TABLES.len());

    let erased = events(&db, "auth.user_erased").await;
    assert_eq!(erased, vec![json!({ "user_id": ada.user, "tables": expected })], "ids and counts only");

    // Again: nothing to do, every table reported with zero, and no second event.
    let again = PersonalDataApi::erase(&*svc, &subject).await.unwrap();
    assert_eq!(again.tables.len(), PERSONAL_DATA_TABLES.len());
    assert!(again.tables.values().all(|n| *n == 0), "{again:?}");
    assert_eq!(events(&db, "auth.user_erased").await.len(), 1);

    let req = LoginRequest { email: ada.email.clone(), password: PASSWORD.into() };
    assert!(matches!(svc.login(req, ClientInfo::default()).await, Err(AuthError::InvalidCredentials)));

    // The other user keeps everything.
    let bobs =
        PersonalDataApi::export(&*svc, &DataSubject { user_id: bob.user, email: Some(bob.email) }).await.unwrap();
    assert_eq!(rows(&bobs, "auth_sessions").len(), 2);
    assert_eq!(rows(&bobs, "auth_credentials").len(), 1);
    verifier.verify(&bob.sessions[1].access_token).await.expect("another user's token lives on");
}

/// Every `auth_*` table of the migrations, read from the database catalog.
async fn auth_tables(db: &Database) -> Vec<String> {
    let names: Vec<String> = match db {
        Database::Sqlite(db) => db
            .read(|c| {
                c.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect()
            })
            .await
            .unwrap(),
        Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            let sql = "SELECT table_name::text FROM information_schema.tables \
                       WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'";
            client.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
        }
    };
    let mut names: Vec<String> = names.into_iter().filter(|n| n.starts_with("auth_")).collect();
    names.sort();
    names
}

async fn every_auth_table_is_exported_or_holds_no_personal_data(db: Database) {
    let svc = service(&db, Arc::new(MemoryCache::default())).await;
    let (user, email) = account(&svc).await;
    let subject = DataSubject { user_id: user, email: Some(email) };
    let exported = PersonalDataApi::export(&*svc, &subject).await.unwrap();
    let erased = PersonalDataApi::erase(&*svc, &subject).await.unwrap();
    let tables = auth_tables(&db).await;
    assert!(tables.len() >= 9, "the catalog lists the auth tables: {tables:?}");
    for table in &tables {
        let listed = NO_PERSONAL_DATA.contains(&table.as_str());
        assert!(
            exported.tables.contains_key(table) || listed,
            "{table} is neither exported nor listed as holding no personal data"
        );
        assert!(erased.tables.contains_key(table) || listed, "{table} is not erased");
    }
    for table in exported.tables.keys() {
        assert!(tables.contains(table), "the export names {table}, which the migrations do not create");
    }
}

on_both_backends!(
    check_password_right_wrong_and_throttled,
    export_holds_the_users_rows_and_no_secret,
    erase_removes_everything_once_and_ends_sessions_at_once,
    every_auth_table_is_exported_or_holds_no_personal_data
);

/// The internal routes and the HTTP clients, end to end over a real socket (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_serve_the_clients() {
    let db = test_support::TestSqlite::new().await;
    let (svc, mail) = service_on(&db.db, Arc::new(MemoryCache::default()), still_clock()).await;
    let (user, email) = account(&svc).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = auth::internal_router(svc.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (key, _) = platform::service_auth::ServiceKey::generate(api::internal::Service::Users);
    let remote = platform::client::ServiceClient::new("auth", vec![base], Arc::new(key)).unwrap();
    let sessions = auth::HttpSessionsClient(remote.clone());
    let personal = platform::client::PersonalDataClient(remote);

    sessions.check_password(user, PASSWORD).await.unwrap();
    assert!(matches!(sessions.check_password(user, "wrong wrong wrong wrong").await, Err(ApiError::Unauthorized)));
    sessions.email_changed(user, "someone-before@example.com").await.unwrap();
    mails_to(&mail, "someone-before@example.com", "The email address of your Trellis account was changed", 1).await;

    let subject = DataSubject { user_id: user, email: Some(email) };
    let data = personal.export(&subject).await.unwrap();
    assert_eq!(data, PersonalDataApi::export(&*svc, &subject).await.unwrap());
    assert_eq!(rows(&data, "auth_login_failures").len(), 1);
    let report = personal.erase(&subject).await.unwrap();
    assert_eq!(report.tables["auth_credentials"], 1);
    assert_eq!(personal.erase(&subject).await.unwrap().tables["auth_credentials"], 0);

    // Throttled: 429 with Retry-After becomes RateLimited on the client side.
    let (user, _) = account(&svc).await;
    let free = (1..).find(|n| auth::domain::login_delay(*n) > time::Duration::ZERO).unwrap();
    for _ in 0..free {
        assert!(matches!(sessions.check_password(user, "wrong wrong wrong wrong").await, Err(ApiError::Unauthorized)));
    }
    assert!(matches!(sessions.check_password(user, PASSWORD).await, Err(ApiError::RateLimited(s)) if s >= 1));
    server.abort();
}
