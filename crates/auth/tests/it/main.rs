//! The auth store's contract on SQLite and PostgreSQL: refresh rotation is a compare-and-set (of
//! concurrent exchanges of one token exactly one wins), spent tokens are recognised, and
//! revocation stops rotation and hides sessions; mailed tokens are bound to their purpose, expire,
//! are spent once (by compare-and-set), are limited per user and hour, and die when the password
//! changes; a reset commits the password, the revocations, the spent tokens, the cleared failure
//! count and its event together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod end_sessions;

use std::sync::Arc;

use auth::ports::{AuthStore, EmailTokenPurpose, NewEmailToken, NewSession, PasswordReset, RefreshLookup};
use platform::bus::Event;
use platform::crypto::sha256;
use platform::db::Database;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The key-encryption key of service-level tests.
const KEK: [u8; 32] = [7; 32];

/// The file mailer of one service, writing into a folder of its own that goes when the mailer
/// does: no test reads another's mail, and no folder grows from run to run.
struct TestMailer {
    files: platform::mail::FileMailer,
    dir: std::path::PathBuf,
}

impl TestMailer {
    fn new() -> TestMailer {
        let dir = std::env::temp_dir().join(format!("trellis-auth-it-mail-{}", Uuid::now_v7().simple()));
        let files = platform::mail::FileMailer::new(&dir, "Trellis <no-reply@localhost>").unwrap();
        TestMailer { files, dir }
    }
}

impl Drop for TestMailer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[async_trait::async_trait]
impl platform::mail::Mailer for TestMailer {
    async fn send(&self, mail: &platform::mail::Mail) -> Result<(), platform::mail::MailError> {
        self.files.send(mail).await
    }
}

/// Settings for tests that drive the auth service itself: bcrypt at cost 4, mail into files in a
/// folder of the service's own, whose path comes second.
fn service_settings(keys: auth::service::KeySettings) -> (auth::AuthSettings, std::path::PathBuf) {
    let mailer = TestMailer::new();
    let mail_dir = mailer.dir.clone();
    let settings = auth::AuthSettings {
        issuer: "https://trellis.test".into(),
        audience: "trellis".into(),
        access_token_ttl: std::time::Duration::from_secs(900),
        session_lifetime: std::time::Duration::from_secs(30 * 86_400),
        session_idle_timeout: std::time::Duration::from_secs(7 * 86_400),
        refresh_reuse_grace: std::time::Duration::ZERO,
        password_min_len: 15,
        hasher: auth::passwords::PasswordHasher::new(secrecy::SecretSlice::from(vec![1u8; 32]), 4, 2, 16),
        key_encryption_key: platform::crypto::SealingKey::new(&KEK).unwrap(),
        keys,
        ip_failure_limit: 50,
        ip_failure_window: std::time::Duration::from_secs(900),
        register_limit: 100,
        register_window: std::time::Duration::from_secs(3600),
        mailer: Arc::new(mailer),
        public_url: "http://127.0.0.1:8080".into(),
    };
    (settings, mail_dir)
}

/// The users service on the same database, behind `UsersApi`, with every migration run.
/// The users service on `db`. Every instance has the same personal-data keys, as the replicas of
/// one deployment do, so that what one sealed another opens.
async fn users_on(db: &Database, clock: Arc<dyn platform::clock::Clock>) -> Arc<users::UsersService> {
    for m in [platform::outbox::MIGRATIONS, auth::MIGRATIONS, users::MIGRATIONS] {
        db.migrate(&m).await.unwrap();
    }
    let keys = users::pii::PiiKeys::new(&[(1, [1; 32])], [2; 32]).unwrap();
    Arc::new(users::UsersService::new(users::store(db), Arc::new(keys), clock, None))
}

async fn ready(db: &Database) -> Arc<dyn AuthStore> {
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    db.migrate(&auth::MIGRATIONS).await.unwrap();
    auth::store(db)
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond()).unwrap()
}

fn event(kind: &str, user: Uuid) -> Event {
    Event::new(kind, user, Some(user), now(), serde_json::json!({ "user_id": user }))
}

async fn new_session(store: &Arc<dyn AuthStore>, user: Uuid, token: &str) -> Uuid {
    let id = Uuid::now_v7();
    let at = now();
    let s = NewSession {
        id,
        user_id: user,
        refresh_hash: sha256(token.as_bytes()),
        user_agent: Some("test".into()),
        ip: None,
        created_at: at,
        expires_at: at + Duration::days(30),
        amr: vec!["pwd".into()],
    };
    store.create_session(&s, &event("auth.login_succeeded", user)).await.unwrap();
    id
}

async fn rotation_is_compare_and_set(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let sid = new_session(&store, user, "t0").await;
    assert!(matches!(store.find_refresh(sha256(b"t0")).await.unwrap(), RefreshLookup::Current(s) if s.id == sid));

    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store.rotate_refresh(sid, sha256(b"t0"), sha256(format!("t1-{i}").as_bytes()), now()).await.unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one exchange of a token wins");
    assert!(matches!(store.find_refresh(sha256(b"t0")).await.unwrap(), RefreshLookup::Used(s, _) if s.id == sid));
    let mut current = 0;
    for i in 0..8 {
        let found = store.find_refresh(sha256(format!("t1-{i}").as_bytes())).await.unwrap();
        current += usize::from(matches!(found, RefreshLookup::Current(_)));
    }
    assert_eq!(current, 1, "only the winner's token is current");
    assert_eq!(store.find_refresh(sha256(b"never issued")).await.unwrap(), RefreshLookup::Unknown);
}

async fn revocation_stops_rotation_and_hides_sessions(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let a = new_session(&store, user, "a0").await;
    let b = new_session(&store, user, "b0").await;
    let other = new_session(&store, Uuid::now_v7(), "o0").await;
    assert_eq!(store.active_sessions(user, now()).await.unwrap().len(), 2);

    let revoked = store.revoke_sessions(user, Some(a), now(), &event("auth.logout", user)).await.unwrap();
    assert_eq!(revoked, vec![a]);
    assert!(
        !store.rotate_refresh(a, sha256(b"a0"), sha256(b"a1"), now()).await.unwrap(),
        "a revoked session cannot rotate"
    );
    let active: Vec<Uuid> = store.active_sessions(user, now()).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(active, vec![b]);
    assert!(store.session(a).await.unwrap().revoked_at.is_some());

    let revoked = store.revoke_sessions(user, None, now(), &event("auth.logout_all", user)).await.unwrap();
    assert_eq!(revoked, vec![b], "logout-all revokes what is left, and only this user's");
    assert!(store.session(other).await.unwrap().revoked_at.is_none());
}

/// The session's `amr` (how its sign-in authenticated) is stored with it and read back with every
/// lookup, before and after rotations, so that refreshed tokens keep it (docs/SECURITY.md AZ-6).
async fn session_amr_survives_refresh(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let pwd = new_session(&store, user, "p0").await;
    let at = now();
    let s = NewSession {
        id: Uuid::now_v7(),
        user_id: user,
        refresh_hash: sha256(b"m0"),
        user_agent: None,
        ip: None,
        created_at: at,
        expires_at: at + Duration::days(30),
        amr: vec!["pwd".into(), "otp".into()],
    };
    store.create_session(&s, &event("auth.login_succeeded", user)).await.unwrap();
    let both = vec!["pwd".to_string(), "otp".to_string()];
    assert!(store.rotate_refresh(s.id, sha256(b"m0"), sha256(b"m1"), now()).await.unwrap());
    assert!(store.rotate_refresh(pwd, sha256(b"p0"), sha256(b"p1"), now()).await.unwrap());
    match store.find_refresh(sha256(b"m1")).await.unwrap() {
        RefreshLookup::Current(row) => assert_eq!((row.id, &row.amr), (s.id, &both)),
        other => panic!("the rotated token is current: {other:?}"),
    }
    match store.find_refresh(sha256(b"p1")).await.unwrap() {
        RefreshLookup::Current(row) => assert_eq!(row.amr, vec!["pwd".to_string()]),
        other => panic!("the rotated token is current: {other:?}"),
    }
    assert!(matches!(store.find_refresh(sha256(b"m0")).await.unwrap(), RefreshLookup::Used(row, _) if row.amr == both));
    assert_eq!(store.session(s.id).await.unwrap().amr, both);
    let mut listed: Vec<_> = store.active_sessions(user, now()).await.unwrap().into_iter().map(|r| r.amr).collect();
    listed.sort();
    assert_eq!(listed, vec![vec!["pwd".to_string()], both]);
}

macro_rules! on_both_backends {
    ($($check:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { let db = test_support::TestSqlite::new().await; super::$check(db.db.clone()).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { let db = test_support::TestPostgres::new().await; super::$check(db.db.clone()).await; })*
        }
    };
}

on_both_backends!(
    rotation_is_compare_and_set,
    session_amr_survives_refresh,
    revocation_stops_rotation_and_hides_sessions,
    login_failures_count_block_and_clear,
    totp_enrolment_and_single_use_codes,
    mfa_challenges_complete_once,
    rehash_swaps_only_the_hash_it_read,
    email_tokens_are_bound_single_use_and_expire,
    email_tokens_are_limited_per_user_and_purpose,
    reset_commits_everything_at_once_and_only_once,
    password_change_spends_outstanding_reset_tokens
);

async fn totp_enrolment_and_single_use_codes(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    assert_eq!(store.totp(user).await.unwrap(), None);
    store.put_pending_totp(user, b"sealed-1", now()).await.unwrap();
    store.put_pending_totp(user, b"sealed-2", now()).await.unwrap();
    let pending = store.totp(user).await.unwrap().unwrap();
    assert_eq!((pending.secret.as_slice(), pending.enabled_at, pending.last_step), (&b"sealed-2"[..], None, None));
    assert!(!store.accept_totp_step(user, 10).await.unwrap(), "a pending seed accepts no login code");

    let codes = [sha256(b"r1"), sha256(b"r2")];
    assert!(store.enable_totp(user, 100, &codes, now(), &event("auth.mfa_enabled", user)).await.unwrap());
    assert!(!store.enable_totp(user, 101, &codes, now(), &event("auth.mfa_enabled", user)).await.unwrap());
    assert!(
        matches!(store.put_pending_totp(user, b"x", now()).await, Err(platform::db::StoreError::Conflict(_))),
        "an enabled seed is never replaced by setup"
    );
    assert_eq!(store.totp(user).await.unwrap().unwrap().last_step, Some(100));
    assert!(!store.accept_totp_step(user, 100).await.unwrap(), "the enrolment code's step is spent");
    assert!(store.accept_totp_step(user, 101).await.unwrap());
    assert!(!store.accept_totp_step(user, 101).await.unwrap(), "each step once");
    assert!(!store.accept_totp_step(user, 99).await.unwrap(), "never backwards");

    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 2);
    assert!(store.use_recovery_code(user, sha256(b"r1"), now()).await.unwrap());
    assert!(!store.use_recovery_code(user, sha256(b"r1"), now()).await.unwrap(), "single use");
    assert!(!store.use_recovery_code(Uuid::now_v7(), sha256(b"r2"), now()).await.unwrap(), "another user's code");
    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 1);

    assert!(store.disable_totp(user, &event("auth.mfa_disabled", user)).await.unwrap());
    assert!(!store.disable_totp(user, &event("auth.mfa_disabled", user)).await.unwrap());
    assert_eq!(store.totp(user).await.unwrap(), None);
    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 0, "recovery codes go with the factor");
}

async fn mfa_challenges_complete_once(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let at = now();
    let challenge = auth::ports::MfaChallenge {
        token_hash: sha256(b"mfa-token"),
        user_id: user,
        user_agent: Some("ua".into()),
        ip: Some("192.0.2.7".into()),
        created_at: at,
        expires_at: at + Duration::minutes(5),
        attempts: 0,
        used_at: None,
    };
    store.create_mfa_challenge(&challenge).await.unwrap();
    assert_eq!(store.mfa_challenge(sha256(b"mfa-token")).await.unwrap(), Some(challenge.clone()));
    assert_eq!(store.mfa_challenge(sha256(b"other")).await.unwrap(), None);
    assert_eq!(store.fail_mfa_challenge(sha256(b"mfa-token")).await.unwrap(), 1);
    assert_eq!(store.fail_mfa_challenge(sha256(b"mfa-token")).await.unwrap(), 2);

    let mut racers = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let s = NewSession {
                id: Uuid::now_v7(),
                user_id: user,
                refresh_hash: sha256(format!("rt-{i}").as_bytes()),
                user_agent: None,
                ip: None,
                created_at: now(),
                expires_at: now() + Duration::days(1),
                amr: vec!["pwd".into(), "otp".into()],
            };
            store.complete_mfa_challenge(sha256(b"mfa-token"), &s, &event("auth.login_succeeded", user)).await.unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "an mfa_token completes exactly one login");
    assert_eq!(store.active_sessions(user, now()).await.unwrap().len(), 1, "and creates exactly one session");
    let used = store.mfa_challenge(sha256(b"mfa-token")).await.unwrap().unwrap();
    assert!(used.used_at.is_some());

    // Expired challenges are swept when new ones are made.
    let later = at + Duration::minutes(10);
    let fresh = auth::ports::MfaChallenge {
        token_hash: sha256(b"later"),
        created_at: later,
        expires_at: later + Duration::minutes(5),
        ..challenge
    };
    store.create_mfa_challenge(&fresh).await.unwrap();
    assert_eq!(store.mfa_challenge(sha256(b"mfa-token")).await.unwrap(), None);
}

async fn rehash_swaps_only_the_hash_it_read(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    store.insert_credential(user, "$2b$10$old", now()).await.unwrap();
    store.replace_password_hash(user, "$2b$10$stale", "$2b$12$lost", now()).await.unwrap();
    assert_eq!(store.password_hash(user).await.unwrap(), "$2b$10$old", "a hash changed meanwhile is kept");
    store.replace_password_hash(user, "$2b$10$old", "$2b$12$new", now()).await.unwrap();
    assert_eq!(store.password_hash(user).await.unwrap(), "$2b$12$new");
}

async fn login_failures_count_block_and_clear(db: Database) {
    let store = ready(&db).await;
    let key = sha256(b"an account key");
    let t0 = now();
    assert_eq!(store.failures(key).await.unwrap(), None);
    for expected in 1..=6 {
        assert_eq!(store.record_failure(key, t0, auth::domain::login_delay).await.unwrap(), expected);
    }
    let f = store.failures(key).await.unwrap().expect("blocked after six failures");
    assert_eq!((f.consecutive, f.blocked_until - t0), (6, auth::domain::login_delay(6)));
    assert_eq!(store.failures(sha256(b"another key")).await.unwrap(), None, "keys are independent");
    store.clear_failures(key).await.unwrap();
    assert_eq!(store.failures(key).await.unwrap(), None);
    assert_eq!(store.record_failure(key, t0, auth::domain::login_delay).await.unwrap(), 1, "the count restarts");
}

use EmailTokenPurpose::{ResetPassword, VerifyEmail};

fn email_token(token: &str, user: Uuid, purpose: EmailTokenPurpose, ttl: Duration) -> NewEmailToken {
    let at = now();
    NewEmailToken { token_hash: sha256(token.as_bytes()), user_id: user, purpose, created_at: at, expires_at: at + ttl }
}

/// Issues with the service's limit of three per hour.
async fn issue(store: &Arc<dyn AuthStore>, token: &str, user: Uuid, purpose: EmailTokenPurpose) -> bool {
    let t = email_token(token, user, purpose, Duration::hours(1));
    store.issue_email_token(&t, now() - Duration::hours(1), 3, &event("auth.token_issued", user)).await.unwrap()
}

async fn email_tokens_are_bound_single_use_and_expire(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let t = email_token("v1", user, VerifyEmail, Duration::hours(24));
    assert!(store.issue_email_token(&t, now() - Duration::hours(1), 3, &event("issued", user)).await.unwrap());
    let v1 = sha256(b"v1");
    assert_eq!(store.email_token_owner(v1, VerifyEmail, now()).await.unwrap(), Some(user));
    assert_eq!(store.email_token_owner(v1, ResetPassword, now()).await.unwrap(), None, "bound to its purpose");
    assert_eq!(store.email_token_owner(sha256(b"never"), VerifyEmail, now()).await.unwrap(), None);
    let later = now() + Duration::hours(25);
    assert_eq!(store.email_token_owner(v1, VerifyEmail, later).await.unwrap(), None, "expired");
    assert!(!store.spend_verify_token(v1, later, &event("verified", user)).await.unwrap(), "expired");

    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store.spend_verify_token(v1, now(), &event("auth.email_verified", user)).await.unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one use of a token wins");
    assert_eq!(store.email_token_owner(v1, VerifyEmail, now()).await.unwrap(), None, "spent");
    assert!(!store.spend_verify_token(sha256(b"never"), now(), &event("verified", user)).await.unwrap());
    assert_eq!(
        test_support::outbox_event_types(&db).await,
        ["issued", "auth.email_verified"],
        "each change carries its one event"
    );
}

async fn email_tokens_are_limited_per_user_and_purpose(db: Database) {
    let store = ready(&db).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    for i in 0..3 {
        assert!(issue(&store, &format!("r{i}"), ada, ResetPassword).await, "token {i} within the limit");
    }
    assert!(!issue(&store, "r3", ada, ResetPassword).await, "the fourth in an hour is refused");
    assert_eq!(store.email_token_owner(sha256(b"r3"), ResetPassword, now()).await.unwrap(), None, "not stored");
    assert!(issue(&store, "v0", ada, VerifyEmail).await, "another purpose has its own limit");
    assert!(issue(&store, "b0", bob, ResetPassword).await, "another user has their own limit");
    let t = email_token("r4", ada, ResetPassword, Duration::hours(1));
    assert!(
        store.issue_email_token(&t, now() + Duration::seconds(1), 3, &event("auth.token_issued", ada)).await.unwrap(),
        "tokens older than the window do not count"
    );
    assert_eq!(test_support::outbox_event_types(&db).await.len(), 6, "no event for a refused token");
}

async fn reset_commits_everything_at_once_and_only_once(db: Database) {
    let store = ready(&db).await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    store.insert_credential(user, "old-hash", now()).await.unwrap();
    store.insert_credential(other, "other-hash", now()).await.unwrap();
    let a = new_session(&store, user, "a0").await;
    let b = new_session(&store, user, "b0").await;
    let o = new_session(&store, other, "o0").await;
    assert!(issue(&store, "r1", user, ResetPassword).await && issue(&store, "r2", user, ResetPassword).await);
    assert!(issue(&store, "o1", other, ResetPassword).await);
    let t = email_token("r-old", user, ResetPassword, Duration::seconds(-1));
    assert!(store.issue_email_token(&t, now(), 3, &event("issued", user)).await.unwrap());
    let key = sha256(b"the user's account key");
    for _ in 0..6 {
        store.record_failure(key, now(), auth::domain::login_delay).await.unwrap();
    }
    let reset = |token: &str, owner: Uuid| PasswordReset {
        token_hash: sha256(token.as_bytes()),
        user_id: owner,
        password_hash: format!("new-hash-{token}"),
        account_key: key,
        at: now(),
    };
    let events_before = test_support::outbox_event_types(&db).await.len();
    assert_eq!(store.reset_password(&reset("r-old", user), &event("x", user)).await.unwrap(), None, "expired");
    assert_eq!(store.reset_password(&reset("o1", user), &event("x", user)).await.unwrap(), None, "not the user's");
    assert_eq!(store.reset_password(&reset("v1", user), &event("x", user)).await.unwrap(), None, "unknown");
    assert_eq!(store.password_hash(user).await.unwrap(), "old-hash", "a refused reset changes nothing");
    assert_eq!(test_support::outbox_event_types(&db).await.len(), events_before);

    let mut racers = Vec::new();
    for _ in 0..6 {
        let (store, r) = (store.clone(), reset("r1", user));
        racers.push(tokio::spawn(async move {
            store.reset_password(&r, &event("auth.password_reset", user)).await.unwrap()
        }));
    }
    let mut revoked = Vec::new();
    for r in racers {
        revoked.extend(r.await.unwrap());
    }
    assert_eq!(revoked.len(), 1, "exactly one reset with a token wins");
    let mut ended = revoked.pop().unwrap();
    ended.sort();
    assert_eq!(ended, vec![a, b], "every session of the user ends");
    assert_eq!(store.password_hash(user).await.unwrap(), "new-hash-r1");
    assert!(store.active_sessions(user, now()).await.unwrap().is_empty());
    assert!(!store.rotate_refresh(a, sha256(b"a0"), sha256(b"a1"), now()).await.unwrap());
    assert_eq!(store.failures(key).await.unwrap(), None, "the failed-login count is cleared");
    assert_eq!(store.email_token_owner(sha256(b"r2"), ResetPassword, now()).await.unwrap(), None, "r2 died too");
    assert_eq!(store.reset_password(&reset("r2", user), &event("x", user)).await.unwrap(), None);
    assert_eq!(store.password_hash(user).await.unwrap(), "new-hash-r1");
    let events = test_support::outbox_event_types(&db).await;
    assert_eq!(events[events_before..], ["auth.password_reset"], "one event, with the change");

    // The other user is untouched.
    assert_eq!(store.password_hash(other).await.unwrap(), "other-hash");
    assert!(store.session(o).await.unwrap().revoked_at.is_none());
    assert_eq!(store.email_token_owner(sha256(b"o1"), ResetPassword, now()).await.unwrap(), Some(other));
}

async fn password_change_spends_outstanding_reset_tokens(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    store.insert_credential(user, "old-hash", now()).await.unwrap();
    let keep = new_session(&store, user, "k0").await;
    assert!(issue(&store, "r1", user, ResetPassword).await);
    assert!(issue(&store, "v1", user, VerifyEmail).await);
    store.change_password(user, "new-hash", keep, now(), &event("auth.password_changed", user)).await.unwrap();
    assert_eq!(store.email_token_owner(sha256(b"r1"), ResetPassword, now()).await.unwrap(), None);
    let r = PasswordReset {
        token_hash: sha256(b"r1"),
        user_id: user,
        password_hash: "attacker".into(),
        account_key: sha256(b"k"),
        at: now(),
    };
    assert_eq!(store.reset_password(&r, &event("x", user)).await.unwrap(), None, "a changed password kills the link");
    assert_eq!(store.password_hash(user).await.unwrap(), "new-hash");
    assert_eq!(
        store.email_token_owner(sha256(b"v1"), VerifyEmail, now()).await.unwrap(),
        Some(user),
        "verification links are not reset tokens"
    );
}

mod admin_mfa;
mod keys;
mod lockout;
mod personal;
mod retention;
mod stepup;
