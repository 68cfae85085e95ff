//! The session's `amr` (RFC 8176) in access tokens, on SQLite and PostgreSQL, through the real
//! auth service and the token verifier every service uses: `["pwd"]` after a password alone,
//! `["pwd", "otp"]` after a second factor, kept by every refresh; an admin acts as one only with
//! `otp` while `admin_requires_mfa` is on (docs/SECURITY.md AZ-6).

use std::sync::Arc;

use api::auth::{LoginRequest, LoginResponse, TokenResponse};
use api::users::Role;
use auth::AuthService;
use auth::service::ClientInfo;
use auth::totp::{self, TotpSecret};
use platform::cache::MemoryCache;
use platform::db::Database;
use platform::identity::TokenVerifier;
use serde_json::Value;
use uuid::Uuid;

use super::end_sessions::service_on;

const PASSWORD: &str = "canary correct horse battery staple";

fn amr(t: &TokenResponse) -> Value {
    use base64::Engine as _;
    let claims = t.access_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["amr"].clone()
}

/// An enabled TOTP factor for `user`, written the way enrolment stores it; returns the seed.
async fn enrol(db: &Database, user: Uuid) -> TotpSecret {
    let store = auth::store(db);
    let secret = TotpSecret::generate();
    let kek = platform::crypto::SealingKey::new(&super::KEK).unwrap();
    let sealed = kek.seal(secret.as_bytes(), format!("auth_totp:{user}").as_bytes());
    let now = time::OffsetDateTime::now_utc();
    store.put_pending_totp(user, &sealed, now).await.unwrap();
    let event = platform::bus::Event::new("auth.mfa_enabled", user, Some(user), now, serde_json::json!({}));
    let hashes = vec![totp::hash_recovery_code("aaaa-bbbb-cccc")];
    assert!(store.enable_totp(user, now.unix_timestamp() / 30 - 2, &hashes, now, &event).await.unwrap());
    secret
}

async fn login(svc: &AuthService, email: &str) -> LoginResponse {
    let req = LoginRequest { email: email.into(), password: PASSWORD.into() };
    svc.login(req, ClientInfo::default()).await.unwrap()
}

async fn tokens_carry_the_sessions_amr_and_admins_need_otp(db: Database) {
    let cache = Arc::new(MemoryCache::default());
    let (svc, _) = service_on(&db, cache.clone(), Arc::new(platform::clock::SystemClock)).await;
    let email = format!("{}@example.com", Uuid::now_v7().simple());
    assert!(svc.ensure_admin(&email, PASSWORD, "Admin").await.unwrap());
    let verifier = TokenVerifier::new(svc.clone(), svc.clone(), cache.clone(), "https://trellis.test", "trellis");
    let lenient = TokenVerifier::new(svc.clone(), svc.clone(), cache, "https://trellis.test", "trellis")
        .admin_requires_mfa(false);

    let LoginResponse::Tokens(pwd) = login(&svc, &email).await else { panic!("no second factor yet") };
    assert_eq!(amr(&pwd), serde_json::json!(["pwd"]));
    let id = verifier.verify(&pwd.access_token).await.unwrap();
    assert_eq!((id.role, id.mfa, id.admin_needs_mfa), (Role::User, false, true), "an admin acting as a user");
    let id = lenient.verify(&pwd.access_token).await.unwrap();
    assert_eq!((id.role, id.admin_needs_mfa), (Role::Admin, false), "the setting turns it off");
    let again = svc.refresh(&pwd.refresh_token).await.unwrap();
    assert_eq!(amr(&again), serde_json::json!(["pwd"]), "a refresh adds no factor");
    assert_eq!(verifier.verify(&again.access_token).await.unwrap().role, Role::User);

    let secret = enrol(&db, pwd.user.id).await;
    for code in [None, Some("AAAA-BBBB-CCCC")] {
        let LoginResponse::MfaRequired(challenge) = login(&svc, &email).await else { panic!("2FA now") };
        let code =
            code.map_or_else(|| totp::code_at(&secret, time::OffsetDateTime::now_utc().unix_timestamp()), Into::into);
        let otp = svc.login_mfa(&challenge.mfa_token, &code, ClientInfo::default()).await.unwrap();
        assert_eq!(amr(&otp), serde_json::json!(["pwd", "otp"]), "a TOTP or recovery code is `otp`");
        let id = verifier.verify(&otp.access_token).await.unwrap();
        assert_eq!((id.role, id.mfa, id.admin_needs_mfa), (Role::Admin, true, false));
        let refreshed = svc.refresh(&otp.refresh_token).await.unwrap();
        assert_eq!(amr(&refreshed), serde_json::json!(["pwd", "otp"]), "the refresh keeps the session's amr");
        assert_eq!(verifier.verify(&refreshed.access_token).await.unwrap().role, Role::Admin);
    }
    // The password-only session stays password-only after the enrolment.
    let later = svc.refresh(&again.refresh_token).await.unwrap();
    assert_eq!(amr(&later), serde_json::json!(["pwd"]));
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_carry_the_sessions_amr_and_admins_need_otp() {
        let db = test_support::TestSqlite::new().await;
        super::tokens_carry_the_sessions_amr_and_admins_need_otp(db.db.clone()).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_carry_the_sessions_amr_and_admins_need_otp() {
        let db = test_support::TestPostgres::new().await;
        super::tokens_carry_the_sessions_amr_and_admins_need_otp(db.db.clone()).await;
    }
}
