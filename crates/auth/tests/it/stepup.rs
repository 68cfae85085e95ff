//! Step-up proofs, the second factor's step-up routes, email changes and reset links (issue 16),
//! on SQLite and PostgreSQL, through the real auth and users services: nothing sensitive changes
//! without a fresh proof in the request, wrong proofs count like failed logins, an email change
//! applies only through the link mailed to the new address (alike for a taken one) and the old
//! address can undo it, ending every session; reset links go only to verified addresses.

use std::sync::Arc;

use api::ApiError;
use api::auth::{LoginRequest, LoginResponse, SessionStatus, StepUpProof};
use api::personal::{DataSubject, PersonalDataApi};
use api::users::{NewUser, Role, UpdateUser, UsersApi as _};
use auth::AuthService;
use auth::service::{AuthError, ClientInfo};
use auth::totp::{self, TotpSecret};
use platform::cache::MemoryCache;
use platform::db::Database;
use platform::identity::Identity;
use serde_json::Value;
use test_support::{ReceivedMail, read_mail_dir, wait};
use users::service::{Actor, UpdateError};
use uuid::Uuid;

use super::end_sessions::{account, events, service_on};

const PASSWORD: &str = "canary correct horse battery staple";

fn still_clock() -> Arc<dyn platform::clock::Clock> {
    Arc::new(platform::clock::ManualClock::new(time::OffsetDateTime::now_utc()))
}

async fn mails_to(dir: &std::path::Path, to: &str, subject: &str, count: usize) -> Vec<ReceivedMail> {
    let what = format!("{count} mails \"{subject}…\" to {to}");
    wait::until_some(&what, || async {
        let found: Vec<ReceivedMail> = read_mail_dir(dir)
            .into_iter()
            .filter(|m| m.header("to") == Some(to) && m.header("subject").is_some_and(|s| s.starts_with(subject)))
            .collect();
        (found.len() >= count).then_some(found)
    })
    .await
}

/// The token of the link to `page` in `mail`.
fn token_for(mail: &ReceivedMail, page: &str) -> String {
    let marker = format!("/{page}#token=");
    let line = mail.body.lines().find(|l| l.contains(&marker)).unwrap_or_else(|| panic!("a {page} link"));
    line[line.find(&marker).unwrap() + marker.len()..].to_string()
}

fn caller(user_id: Uuid, role: Role) -> Identity {
    Identity {
        user_id,
        role,
        session_id: Uuid::now_v7(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

async fn session_of(svc: &AuthService, email: &str) -> Uuid {
    let req = LoginRequest { email: email.into(), password: PASSWORD.into() };
    let LoginResponse::Tokens(t) = svc.login(req, ClientInfo::default()).await.unwrap() else { panic!("no 2FA here") };
    use base64::Engine as _;
    let claims = t.access_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().parse().unwrap()
}

fn password(p: &str) -> Option<StepUpProof> {
    Some(StepUpProof::Password(p.into()))
}

fn is(e: &AuthError, want: &ApiError) -> bool {
    matches!(e, AuthError::Api(got) if got == want)
}

/// An enabled TOTP factor for `user`, written the way enrolment stores it; returns the seed.
async fn enrol(db: &Database, user: Uuid) -> TotpSecret {
    let store = auth::store(db);
    let secret = TotpSecret::generate();
    let kek = platform::crypto::SealingKey::new(&[7; 32]).unwrap();
    let sealed = kek.seal(secret.as_bytes(), format!("auth_totp:{user}").as_bytes());
    let now = time::OffsetDateTime::now_utc();
    store.put_pending_totp(user, &sealed, now).await.unwrap();
    let event = platform::bus::Event::new("auth.mfa_enabled", user, Some(user), now, serde_json::json!({}));
    let hashes = vec![totp::hash_recovery_code("aaaa-bbbb-cccc")];
    assert!(store.enable_totp(user, now.unix_timestamp() / 30 - 2, &hashes, now, &event).await.unwrap());
    secret
}

async fn step_up_needs_a_fresh_proof_counted_like_a_login(db: Database) {
    let (svc, _) = service_on(&db, Arc::new(MemoryCache::default()), still_clock()).await;
    let (user, email) = account(&svc).await;
    assert!(is(&svc.verify_step_up(user, None, None).await.unwrap_err(), &ApiError::StepUpRequired));
    assert!(is(
        &svc.verify_step_up(user, password("not the password at all").as_ref(), None).await.unwrap_err(),
        &ApiError::StepUpFailed
    ));
    svc.verify_step_up(user, password(PASSWORD).as_ref(), None).await.unwrap();
    // A code is no proof for an account that has a password, and is not even checked.
    let code = Some(StepUpProof::Code("123456".into()));
    assert!(is(&svc.verify_step_up(user, code.as_ref(), None).await.unwrap_err(), &ApiError::StepUpFailed));

    // Wrong proofs count like failed logins: free ones, then the account waits, logins too.
    let free = (1..).find(|n| auth::domain::login_delay(*n) > time::Duration::ZERO).unwrap();
    for _ in 0..free {
        let e = svc.verify_step_up(user, password("still not the password").as_ref(), None).await.unwrap_err();
        assert!(is(&e, &ApiError::StepUpFailed), "{e:?}");
    }
    assert!(matches!(svc.verify_step_up(user, password(PASSWORD).as_ref(), None).await, Err(AuthError::Throttled(_))));
    let req = LoginRequest { email, password: PASSWORD.into() };
    assert!(matches!(svc.login(req, ClientInfo::default()).await, Err(AuthError::Throttled(_))));
    assert_eq!(events(&db, "auth.password_check_failed").await.len(), usize::try_from(free).unwrap() + 1);
}

async fn a_passwordless_account_steps_up_with_a_single_use_code(db: Database) {
    let (svc, _) = service_on(&db, Arc::new(MemoryCache::default()), still_clock()).await;
    let users = super::users_on(&db, Arc::new(platform::clock::SystemClock)).await;
    let bare = Uuid::now_v7();
    let new =
        NewUser { id: bare, email: format!("{}@example.com", bare.simple()), name: "Bare".into(), role: Role::User };
    users.create_user(new).await.unwrap();
    // No factor yet: nothing proves it.
    let code = |c: &str| Some(StepUpProof::Code(c.into()));
    assert!(is(&svc.verify_step_up(bare, code("123456").as_ref(), None).await.unwrap_err(), &ApiError::StepUpFailed));
    assert!(is(
        &svc.verify_step_up(bare, password(PASSWORD).as_ref(), None).await.unwrap_err(),
        &ApiError::StepUpFailed
    ));
    let secret = enrol(&db, bare).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let current = totp::code_at(&secret, now);
    svc.verify_step_up(bare, code(&current).as_ref(), None).await.unwrap();
    assert!(
        is(&svc.verify_step_up(bare, code(&current).as_ref(), None).await.unwrap_err(), &ApiError::StepUpFailed),
        "a code works once"
    );
    svc.verify_step_up(bare, code("AAAA-BBBB-CCCC").as_ref(), None).await.expect("a recovery code, once");
    assert!(is(
        &svc.verify_step_up(bare, code("aaaa-bbbb-cccc").as_ref(), None).await.unwrap_err(),
        &ApiError::StepUpFailed
    ));
    let failed = events(&db, "auth.step_up_failed").await;
    assert!(failed.len() >= 3 && failed.iter().all(|e| !e.to_string().contains(&current)), "{failed:?}");
}

async fn recovery_codes_and_admin_reset_need_the_proof(db: Database) {
    let (svc, mail) = service_on(&db, Arc::new(MemoryCache::default()), still_clock()).await;
    let (user, email) = account(&svc).await;
    let sid = session_of(&svc, &email).await;
    let me = caller(user, Role::User);
    // TOTP setup needs the proof too; a correct one starts enrolment.
    assert!(is(&svc.totp_setup(&me, None, None).await.unwrap_err(), &ApiError::StepUpRequired));
    svc.totp_setup(&me, password(PASSWORD).as_ref(), None).await.unwrap();
    assert!(matches!(
        svc.regenerate_recovery_codes(&me, password(PASSWORD).as_ref(), None).await,
        Err(AuthError::Conflict(_))
    ));
    enrol(&db, user).await;
    assert!(is(&svc.regenerate_recovery_codes(&me, None, None).await.unwrap_err(), &ApiError::StepUpRequired));
    let wrong = password("not the password at all");
    assert!(is(&svc.regenerate_recovery_codes(&me, wrong.as_ref(), None).await.unwrap_err(), &ApiError::StepUpFailed));
    let codes = svc.regenerate_recovery_codes(&me, password(PASSWORD).as_ref(), None).await.unwrap().recovery_codes;
    assert_eq!(codes.len(), 10);
    let store = auth::store(&db);
    let at = time::OffsetDateTime::now_utc();
    assert!(
        !store.use_recovery_code(user, totp::hash_recovery_code("aaaa-bbbb-cccc"), at).await.unwrap(),
        "old codes die"
    );
    assert!(store.use_recovery_code(user, totp::hash_recovery_code(&codes[0]), at).await.unwrap());
    mails_to(&mail, &email, "New recovery codes", 1).await;
    // Disabling needs the proof as well.
    assert!(is(&svc.totp_disable(&me, None, None).await.unwrap_err(), &ApiError::StepUpRequired));

    // An admin resets the factor: only with the admin's own proof; the user's sessions end, the
    // event names the admin, the user is mailed.
    let (admin_id, _) = account(&svc).await;
    let admin = caller(admin_id, Role::Admin);
    assert!(matches!(
        svc.admin_reset_mfa(&me, user, password(PASSWORD).as_ref(), None).await,
        Err(AuthError::Api(ApiError::Forbidden))
    ));
    assert!(is(&svc.admin_reset_mfa(&admin, user, None, None).await.unwrap_err(), &ApiError::StepUpRequired));
    svc.admin_reset_mfa(&admin, user, password(PASSWORD).as_ref(), None).await.unwrap();
    assert!(store.totp(user).await.unwrap().is_none());
    assert!(!svc.session_active(sid).await.unwrap(), "the user's sessions ended");
    let reset = events(&db, "auth.mfa_reset").await;
    assert_eq!(reset, vec![serde_json::json!({ "user_id": user, "admin_id": admin_id })]);
    mails_to(&mail, &email, "An administrator turned off two-step verification", 1).await;
    assert!(matches!(
        svc.admin_reset_mfa(&admin, user, password(PASSWORD).as_ref(), None).await,
        Err(AuthError::Conflict(_))
    ));
}

async fn an_email_change_applies_only_through_its_link_and_can_be_undone(db: Database) {
    let (svc, mail) = service_on(&db, Arc::new(MemoryCache::default()), Arc::new(platform::clock::SystemClock)).await;
    let users = super::users_on(&db, Arc::new(platform::clock::SystemClock)).await;
    users.connect_sessions(svc.clone());
    let (user, old_email) = account(&svc).await;
    let verify = token_for(&mails_to(&mail, &old_email, "Confirm your email address", 1).await[0], "verify-email");
    svc.verify_email(&verify).await.unwrap();
    let sid = session_of(&svc, &old_email).await;
    let me = Actor { user_id: user, role: Role::User, client_ip: None };
    let new_email = format!("new-{}@example.com", Uuid::now_v7().simple());
    let change = |email: &str, proof: Option<&str>| UpdateUser {
        email: Some(email.into()),
        current_password: proof.map(str::to_string),
        ..UpdateUser::default()
    };

    // No proof, a wrong one: nothing changes, nothing is mailed.
    let refused = users.update_user(me, user, change(&new_email, None), None).await.unwrap_err();
    assert_eq!(refused, UpdateError::Api(ApiError::StepUpRequired));
    let refused = users.update_user(me, user, change(&new_email, Some("not the password")), None).await.unwrap_err();
    assert_eq!(refused, UpdateError::Api(ApiError::StepUpFailed));
    // With it: the user is unchanged until the link is followed.
    let pending = users.update_user(me, user, change(&new_email, Some(PASSWORD)), None).await.unwrap();
    assert_eq!((pending.email.as_str(), pending.email_verified), (old_email.as_str(), true));
    let link = token_for(&mails_to(&mail, &new_email, "Confirm the new email address", 1).await[0], "confirm-email");

    // A taken address: the same answer; its owner gets a notice without a link.
    let (_, other_email) = account(&svc).await;
    let taken = users.update_user(me, user, change(&other_email, Some(PASSWORD)), None).await.unwrap();
    assert_eq!(taken, pending);
    let notice = mails_to(&mail, &other_email, "Someone tried to use your address", 1).await;
    assert!(!notice[0].body.contains("#token="));

    // The link applies it, verified; it works once.
    svc.confirm_email_change(&link).await.unwrap();
    let now = users.get_user(user).await.unwrap();
    assert_eq!((now.email.as_str(), now.email_verified), (new_email.as_str(), true));
    assert!(matches!(svc.confirm_email_change(&link).await, Err(AuthError::BadToken)));
    assert!(svc.session_active(sid).await.unwrap(), "a confirmed change keeps the sessions");
    // The old address is told, without the new one, with a link that undoes it all.
    let told = mails_to(&mail, &old_email, "The email address of your Trellis account was changed", 1).await;
    assert!(!told[0].body.contains(&new_email));
    let undo = token_for(&told[0], "undo-email-change");
    svc.undo_email_change(&undo).await.unwrap();
    assert_eq!(users.get_user(user).await.unwrap().email, old_email);
    assert!(!svc.session_active(sid).await.unwrap(), "undoing ends every session");
    assert!(matches!(svc.undo_email_change(&undo).await, Err(AuthError::BadToken)));
    assert_eq!(events(&db, "auth.email_change_requested").await.len(), 2);
    assert_eq!(events(&db, "auth.email_changed").await.len(), 1);
    assert_eq!(events(&db, "auth.email_change_undone").await.len(), 1);

    // Taken between the request and the link: a clean conflict, nothing written.
    users.update_user(me, user, change(&new_email, Some(PASSWORD)), None).await.unwrap();
    let link = token_for(&mails_to(&mail, &new_email, "Confirm the new email address", 2).await[1], "confirm-email");
    let (thief, _) = account(&svc).await;
    users.apply_email_change(thief, &new_email).await.unwrap();
    assert!(matches!(svc.confirm_email_change(&link).await, Err(AuthError::Conflict(_))));
    assert_eq!(users.get_user(user).await.unwrap().email, old_email);
    assert_eq!(users.find_by_email(&new_email).await.unwrap().id, thief);
}

async fn a_reset_link_goes_only_to_a_verified_address(db: Database) {
    let (svc, mail) = service_on(&db, Arc::new(MemoryCache::default()), Arc::new(platform::clock::SystemClock)).await;
    let (user, email) = account(&svc).await;
    let resets = || async {
        let subject = DataSubject { user_id: user, email: Some(email.clone()) };
        let tokens = PersonalDataApi::export(&*svc, &subject).await.unwrap().tables["auth_email_tokens"].clone();
        tokens.iter().filter(|t| t["purpose"] == "reset_password").count()
    };
    svc.forgot_password(&email).await.unwrap();
    assert_eq!(resets().await, 0, "an unverified address gets no reset link");
    let verify = token_for(&mails_to(&mail, &email, "Confirm your email address", 1).await[0], "verify-email");
    svc.verify_email(&verify).await.unwrap();
    svc.forgot_password(&email).await.unwrap();
    assert_eq!(resets().await, 1);
    mails_to(&mail, &email, "Reset your Trellis password", 1).await;
}

on_both_backends!(
    step_up_needs_a_fresh_proof_counted_like_a_login,
    a_passwordless_account_steps_up_with_a_single_use_code,
    recovery_codes_and_admin_reset_need_the_proof,
    an_email_change_applies_only_through_its_link_and_can_be_undone,
    a_reset_link_goes_only_to_a_verified_address
);
