//! No account lock-out, no global denial (issue 16; docs/SECURITY.md LG-1, LG-3, LG-7, SE-2,
//! PW-1), on SQLite and PostgreSQL through the real auth and users services: registration answers
//! alike for a new and a taken address and hashes only for a new one, within a per-client budget;
//! a password change counts failures like a login; a device cookie lets its owner in past a
//! stranger's lock-out; a reused refresh token ends its session at once unless a grace is set.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::auth::{LoginRequest, LoginResponse, RegisterRequest};
use api::users::Role;
use auth::AuthService;
use auth::service::{AuthError, ClientInfo};
use platform::cache::MemoryCache;
use platform::db::Database;
use platform::identity::Identity;
use test_support::{ReceivedMail, read_mail_dir, wait};
use uuid::Uuid;

const PASSWORD: &str = "canary correct horse battery staple";

/// The auth service with `tune` applied to the test settings, and its mail folder.
async fn service(db: &Database, tune: impl FnOnce(&mut auth::AuthSettings)) -> (Arc<AuthService>, std::path::PathBuf) {
    let users = super::users_on(db, Arc::new(platform::clock::SystemClock)).await;
    let (mut settings, mail_dir) = super::service_settings(auth::service::KeySettings::default());
    tune(&mut settings);
    let svc = AuthService::start(
        auth::store(db),
        users,
        settings,
        Arc::new(platform::clock::SystemClock),
        None,
        Arc::new(MemoryCache::default()),
    )
    .await
    .unwrap();
    (svc, mail_dir)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn fresh_email() -> String {
    format!("{}@example.com", Uuid::now_v7().simple())
}

fn registration(email: &str, password: &str, name: &str) -> RegisterRequest {
    RegisterRequest { email: email.into(), password: password.into(), name: name.into() }
}

async fn login(
    svc: &AuthService,
    email: &str,
    password: &str,
    from: &str,
    device: Option<&str>,
) -> Result<(), AuthError> {
    let req = LoginRequest { email: email.into(), password: password.into() };
    match svc.login_from_device(req, ClientInfo { user_agent: None, ip: ip(from) }, device).await? {
        LoginResponse::Tokens(_) => Ok(()),
        LoginResponse::MfaRequired(_) => panic!("no second factor here"),
    }
}

fn caller(user_id: Uuid) -> Identity {
    Identity {
        user_id,
        role: Role::User,
        session_id: Uuid::now_v7(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

async fn mails_to(dir: &std::path::Path, to: &str, subject: &str) -> Vec<ReceivedMail> {
    wait::until_some(&format!("a mail \"{subject}\" to {to}"), || async {
        let found: Vec<ReceivedMail> = read_mail_dir(dir)
            .into_iter()
            .filter(|m| m.header("to") == Some(to) && m.header("subject") == Some(subject))
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .await
}

async fn registration_answers_alike_and_hashes_only_new_addresses(db: Database) {
    let (svc, mail) = service(&db, |_| {}).await;
    let email = fresh_email();
    let before = svc.password_hashes_computed();
    let owner = svc.register(registration(&email, PASSWORD, "Owner"), ip("192.0.2.1")).await.unwrap();
    assert_eq!(svc.password_hashes_computed(), before + 1, "a new address is hashed once");

    // The same address again, with other details: the same answer, no hashing, no change.
    let other_password = "canary another long enough passphrase";
    let before = svc.password_hashes_computed();
    let taken =
        svc.register(registration(&email.to_uppercase(), other_password, "Mallory"), ip("192.0.2.1")).await.unwrap();
    assert_eq!(svc.password_hashes_computed(), before, "a taken address is never hashed");
    assert_ne!(taken.id, owner.id, "the answer names no existing account");
    assert_eq!((taken.email.as_str(), taken.name.as_str()), (email.as_str(), "Mallory"));
    let (a, b) = (serde_json::to_value(&owner).unwrap(), serde_json::to_value(&taken).unwrap());
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b), "the same fields");
    for field in ["role", "status", "email_verified", "mfa_enabled"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    // Microseconds at most, as the users service stores them: no finer timestamp tells a fake apart.
    let fraction = |v: &serde_json::Value| {
        let t = v["created_at"].as_str().unwrap().to_string();
        t.split_once('.').map_or(0, |(_, f)| f.trim_end_matches('Z').len())
    };
    assert!(fraction(&a) <= 6 && fraction(&b) <= 6, "{a} / {b}");
    assert!(login(&svc, &email, other_password, "192.0.2.1", None).await.is_err(), "the account kept its password");
    login(&svc, &email, PASSWORD, "192.0.2.1", None).await.unwrap();
    let told = mails_to(&mail, &email, "Someone tried to register with your address").await;
    assert!(told[0].body.contains("/forgot-password") && !told[0].body.contains(other_password));

    // Refused fields are refused alike for a taken and a new address.
    for address in [email.clone(), fresh_email()] {
        for (name, password) in [("", PASSWORD), ("Someone", "short")] {
            let refused = svc.register(registration(&address, password, name), ip("192.0.2.1")).await;
            assert!(matches!(refused, Err(AuthError::Api(api::ApiError::Invalid(_)))), "{address} {name:?}");
        }
    }
}

async fn registration_has_a_budget_per_client(db: Database) {
    let (svc, _) = service(&db, |s| s.register_limit = 3).await;
    for i in 0..3 {
        // One IPv6 /64: one client, whichever of its addresses it uses.
        let from = ip(&format!("2001:db8:5:6::{i}"));
        svc.register(registration(&fresh_email(), PASSWORD, "Someone"), from).await.unwrap();
    }
    let before = svc.password_hashes_computed();
    let spent = svc.register(registration(&fresh_email(), PASSWORD, "Someone"), ip("2001:db8:5:6:ffff::1")).await;
    assert!(matches!(spent, Err(AuthError::Throttled(s)) if s >= 1), "{spent:?}");
    assert_eq!(svc.password_hashes_computed(), before, "a refused registration costs no hashing");
    svc.register(registration(&fresh_email(), PASSWORD, "Someone"), ip("2001:db8:5:7::1")).await.unwrap();
}

async fn password_change_counts_failures_like_a_login(db: Database) {
    let (svc, _) = service(&db, |s| s.ip_failure_limit = 8).await;
    let email = fresh_email();
    let user = svc.register(registration(&email, PASSWORD, "Owner"), None).await.unwrap();
    let me = caller(user.id);
    let new = "canary a brand new long passphrase";
    // Five wrong current passwords: the account's login throttle applies from then on.
    for i in 0..auth::domain::FREE_FAILURES {
        let wrong = svc.change_password(&me, &format!("wrong password {i}"), new, ip("198.51.100.9")).await;
        assert!(matches!(wrong, Err(AuthError::Api(api::ApiError::Invalid(_)))), "{wrong:?}");
    }
    let blocked = svc.change_password(&me, PASSWORD, new, ip("198.51.100.9")).await;
    assert!(matches!(blocked, Err(AuthError::Throttled(_))), "even the right password waits: {blocked:?}");
    assert!(matches!(login(&svc, &email, PASSWORD, "203.0.113.1", None).await, Err(AuthError::Throttled(_))));

    // The client address counted each of them too: three more failures elsewhere block it.
    for _ in 0..3 {
        let _ = login(&svc, &fresh_email(), "wrong", "198.51.100.9", None).await;
    }
    let other = fresh_email();
    svc.register(registration(&other, PASSWORD, "Other"), None).await.unwrap();
    assert!(
        matches!(login(&svc, &other, PASSWORD, "198.51.100.9", None).await, Err(AuthError::Throttled(_))),
        "the address is blocked for every account"
    );
    login(&svc, &other, PASSWORD, "203.0.113.1", None).await.unwrap();
}

/// A wrong step-up proof and a wrong enrolment code count against the client's address exactly as
/// a failed login does: spread over accounts (so that no account's own throttle is reached), they
/// block the address for every account, while another address is untouched.
async fn step_up_and_enrolment_codes_count_failures_per_address(db: Database) {
    use api::auth::StepUpProof;
    let (svc, _) = service(&db, |s| s.ip_failure_limit = 6).await;
    let mut accounts = Vec::new();
    for name in ["Ada", "Bea", "Cai", "Dov"] {
        let email = fresh_email();
        accounts.push((svc.register(registration(&email, PASSWORD, name), None).await.unwrap().id, email));
    }
    let wrong = StepUpProof::Password("not the password at all".into());
    let right = StepUpProof::Password(PASSWORD.into());
    let attacker = "198.51.100.77";
    for (user, _) in &accounts[..2] {
        for _ in 0..2 {
            let e = svc.verify_step_up(*user, Some(&wrong), ip(attacker)).await.unwrap_err();
            assert!(matches!(e, AuthError::Api(api::ApiError::StepUpFailed)), "{e:?}");
        }
    }
    // The third account starts an enrolment from elsewhere; the attacker guesses its codes.
    let third = caller(accounts[2].0);
    svc.totp_setup(&third, Some(&right), ip("203.0.113.40")).await.unwrap();
    for guess in ["000000", "999999"] {
        let e = svc.totp_enable(&third, guess, ip(attacker)).await.unwrap_err();
        assert!(matches!(e, AuthError::Api(api::ApiError::Invalid(_))), "{e:?}");
    }
    // Six failures from one address: it is blocked for every proof and every account.
    let (fourth, email) = &accounts[3];
    let blocked = svc.verify_step_up(*fourth, Some(&right), ip(attacker)).await;
    assert!(matches!(blocked, Err(AuthError::Throttled(_))), "the address is blocked: {blocked:?}");
    assert!(matches!(login(&svc, email, PASSWORD, attacker, None).await, Err(AuthError::Throttled(_))));
    svc.verify_step_up(*fourth, Some(&right), ip("203.0.113.41")).await.expect("another address is not blocked");
    login(&svc, email, PASSWORD, "203.0.113.41", None).await.unwrap();
}

async fn a_device_cookie_outlasts_a_strangers_lockout(db: Database) {
    let (svc, _) = service(&db, |_| {}).await;
    let email = fresh_email();
    svc.register(registration(&email, PASSWORD, "Owner"), None).await.unwrap();
    login(&svc, &email, PASSWORD, "192.0.2.10", None).await.unwrap();
    let cookie = svc.device_cookie(&email);

    // A stranger locks the account.
    for _ in 0..auth::domain::FREE_FAILURES {
        assert!(matches!(login(&svc, &email, "guess", "203.0.113.5", None).await, Err(AuthError::InvalidCredentials)));
    }
    assert!(matches!(login(&svc, &email, PASSWORD, "203.0.113.5", None).await, Err(AuthError::Throttled(_))));
    assert!(
        matches!(login(&svc, &email, PASSWORD, "192.0.2.10", None).await, Err(AuthError::Throttled(_))),
        "without its cookie the owner is a stranger too"
    );

    // The owner's device signs in; the stranger is still locked out.
    login(&svc, &email, PASSWORD, "192.0.2.10", Some(&cookie)).await.expect("the known device gets in");
    assert!(matches!(login(&svc, &email, PASSWORD, "203.0.113.5", None).await, Err(AuthError::Throttled(_))));

    // Forged cookies, or another account's, are no cookie at all.
    let (nonce, _) = cookie.split_once('.').unwrap();
    let other = fresh_email();
    for bad in [format!("{nonce}.AAAA"), svc.device_cookie(&other), "garbage".to_string()] {
        assert!(
            matches!(login(&svc, &email, PASSWORD, "192.0.2.10", Some(&bad)).await, Err(AuthError::Throttled(_))),
            "{bad}"
        );
    }

    // The device's own failures still count, for it alone.
    let mine = svc.device_cookie(&email);
    for _ in 0..auth::domain::FREE_FAILURES {
        assert!(matches!(
            login(&svc, &email, "my typo", "192.0.2.10", Some(&mine)).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(matches!(login(&svc, &email, PASSWORD, "192.0.2.10", Some(&mine)).await, Err(AuthError::Throttled(_))));
    login(&svc, &email, PASSWORD, "192.0.2.10", Some(&cookie)).await.expect("another known device is not slowed");
}

async fn refresh_tokens(svc: &AuthService, email: &str) -> String {
    let req = LoginRequest { email: email.into(), password: PASSWORD.into() };
    let LoginResponse::Tokens(t) = svc.login(req, ClientInfo::default()).await.unwrap() else { panic!("tokens") };
    t.refresh_token
}

async fn reuse_ends_the_session_at_once_unless_a_grace_is_set(db: Database) {
    let (svc, _) = service(&db, |_| {}).await;
    let email = fresh_email();
    svc.register(registration(&email, PASSWORD, "Owner"), None).await.unwrap();
    let first = refresh_tokens(&svc, &email).await;
    let second = svc.refresh(&first).await.unwrap().refresh_token;
    assert!(matches!(svc.refresh(&first).await, Err(AuthError::InvalidCredentials)));
    assert!(
        matches!(svc.refresh(&second).await, Err(AuthError::InvalidCredentials)),
        "no grace by default: the first reuse ended the session, its newest token too"
    );

    let (graceful, _) = service(&db, |s| s.refresh_reuse_grace = Duration::from_secs(30)).await;
    let first = refresh_tokens(&graceful, &email).await;
    let second = graceful.refresh(&first).await.unwrap().refresh_token;
    assert!(matches!(graceful.refresh(&first).await, Err(AuthError::InvalidCredentials)));
    graceful.refresh(&second).await.expect("within the grace set, the session survives a reuse");
}

mod sqlite {
    macro_rules! on_sqlite {
        ($($check:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let db = test_support::TestSqlite::new().await;
                super::$check(db.db.clone()).await;
            }
        )*};
    }
    on_sqlite!(
        registration_answers_alike_and_hashes_only_new_addresses,
        registration_has_a_budget_per_client,
        password_change_counts_failures_like_a_login,
        step_up_and_enrolment_codes_count_failures_per_address,
        a_device_cookie_outlasts_a_strangers_lockout,
        reuse_ends_the_session_at_once_unless_a_grace_is_set
    );
}

mod postgres {
    macro_rules! on_postgres {
        ($($check:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let db = test_support::TestPostgres::new().await;
                super::$check(db.db.clone()).await;
            }
        )*};
    }
    on_postgres!(
        registration_answers_alike_and_hashes_only_new_addresses,
        registration_has_a_budget_per_client,
        password_change_counts_failures_like_a_login,
        step_up_and_enrolment_codes_count_failures_per_address,
        a_device_cookie_outlasts_a_strangers_lockout,
        reuse_ends_the_session_at_once_unless_a_grace_is_set
    );
}
