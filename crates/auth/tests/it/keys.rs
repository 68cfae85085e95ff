//! The signing-key lifecycle on SQLite and PostgreSQL, through the auth service and its store:
//! first key, rotation with a publication delay, overlap, retirement (with their outbox events),
//! scheduled and algorithm-change rotation, concurrent replicas, and migration 6 keeping the keys
//! made before it.

use std::sync::Arc;
use std::time::Duration;

use api::auth::{LoginRequest, LoginResponse, RegisterRequest};
use auth::keys::{SigningAlgorithm, SigningKey};
use auth::service::{ClientInfo, KeySettings, KeyState, RotationReason};
use auth::{AuthService, AuthSettings};
use base64::Engine as _;
use platform::cache::MemoryCache;
use platform::clock::{Clock, ManualClock};
use platform::crypto::SealingKey;
use platform::db::{Database, Migrations};
use platform::identity::{TokenVerifier, VerifyError};
use time::OffsetDateTime;
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(900);
const CHECK: Duration = Duration::from_secs(60);

fn settings(algorithm: SigningAlgorithm) -> AuthSettings {
    super::service_settings(KeySettings {
        algorithm,
        rotation: Duration::from_secs(30 * 86_400),
        check_interval: CHECK,
    })
    .0
}

struct Replica {
    svc: Arc<AuthService>,
}

async fn replica(db: &Database, clock: Arc<ManualClock>, algorithm: SigningAlgorithm) -> Replica {
    let users = super::users_on(db, clock.clone()).await;
    let svc = AuthService::start(
        auth::store(db),
        users.clone(),
        settings(algorithm),
        clock,
        None,
        Arc::new(MemoryCache::default()),
    )
    .await
    .unwrap();
    Replica { svc }
}

fn delay() -> Duration {
    KeySettings { check_interval: CHECK, ..Default::default() }.activation_delay()
}

fn clock() -> Arc<ManualClock> {
    let t = OffsetDateTime::now_utc();
    Arc::new(ManualClock::new(t.replace_microsecond(t.microsecond()).unwrap()))
}

fn advance(clock: &ManualClock, by: Duration) {
    clock.advance(time::Duration::try_from(by).unwrap());
}

/// A fresh verifier over the replica's JWKS (as a process that just started would be).
fn verifier(r: &Replica) -> TokenVerifier {
    TokenVerifier::new(
        r.svc.clone(),
        r.svc.clone(),
        Arc::new(MemoryCache::default()),
        "https://trellis.test",
        "trellis",
    )
}

/// Logs a new user in and returns the access token.
async fn token(r: &Replica) -> String {
    let email = format!("{}@example.com", Uuid::now_v7());
    let password = "canary correct horse battery".to_string();
    r.svc
        .register(RegisterRequest { email: email.clone(), password: password.clone(), name: "Key Tester".into() }, None)
        .await
        .unwrap();
    match r.svc.login(LoginRequest { email, password }, ClientInfo::default()).await.unwrap() {
        LoginResponse::Tokens(t) => t.access_token,
        LoginResponse::MfaRequired(_) => panic!("no second factor here"),
    }
}

fn kid_of(token: &str) -> String {
    let head = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&head).unwrap()["kid"].as_str().unwrap().to_string()
}

fn published(r: &Replica) -> Vec<String> {
    r.svc.public_keys().keys.into_iter().map(|k| k.kid).collect()
}

async fn states(r: &Replica) -> Vec<(String, KeyState)> {
    r.svc.key_list().await.unwrap().into_iter().map(|k| (k.kid, k.state)).collect()
}

/// Event types in the outbox, in order, that concern signing keys.
async fn key_events(db: &Database) -> Vec<(String, serde_json::Value)> {
    let sql = "SELECT event_type, data FROM outbox WHERE event_type LIKE 'auth.signing_key%' ORDER BY seq";
    match db {
        Database::Sqlite(db) => db
            .read(move |c| {
                let mut stmt = c.prepare(sql)?;
                let rows = stmt.query_map([], |r| {
                    let data: String = r.get(1)?;
                    Ok((r.get::<_, String>(0)?, serde_json::from_str(&data).unwrap()))
                })?;
                rows.collect()
            })
            .await
            .unwrap(),
        Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            client.query(sql, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
        }
    }
}

pub async fn rotation_overlaps_then_retires(db: Database) {
    let clock = clock();
    let r = replica(&db, clock.clone(), SigningAlgorithm::ES256).await;
    let k1 = match states(&r).await.as_slice() {
        [(kid, KeyState::Current)] => kid.clone(),
        other => panic!("first start makes exactly one current key: {other:?}"),
    };
    let events = key_events(&db).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].0.as_str(), events[0].1["reason"].as_str()), ("auth.signing_key_rotated", Some("initial")));
    assert_eq!(events[0].1["kid"], k1.as_str());
    let old_token = token(&r).await;
    assert_eq!(kid_of(&old_token), k1);

    // A rotation publishes the new key at once but signs with it only after the delay.
    let (k2, active_from) = r.svc.rotate_key(RotationReason::Manual).await.unwrap().expect("rotated");
    assert_eq!(active_from, clock.now() + delay());
    assert_eq!(states(&r).await, vec![(k2.clone(), KeyState::Next), (k1.clone(), KeyState::Current)]);
    assert_eq!(published(&r), vec![k2.clone(), k1.clone()]);
    assert_eq!(kid_of(&token(&r).await), k1, "the new key does not sign before every replica has it");

    // Then it signs; the old key stays published, its tokens verify.
    advance(&clock, delay());
    r.svc.maintain_keys().await.unwrap();
    assert_eq!(states(&r).await, vec![(k2.clone(), KeyState::Current), (k1.clone(), KeyState::Previous)]);
    let new_token = token(&r).await;
    assert_eq!(kid_of(&new_token), k2);
    let v = verifier(&r);
    assert!(v.verify(&old_token).await.is_ok(), "overlap: the old key's tokens verify");
    assert!(v.verify(&new_token).await.is_ok());
    let retires = r.svc.key_list().await.unwrap()[1].retires_at.unwrap();
    assert_eq!(retires, active_from + TTL + auth::service::RETIRE_LEEWAY);

    // One second before: still published. At the time: retired, with its event, once.
    advance(&clock, TTL + auth::service::RETIRE_LEEWAY - Duration::from_secs(1));
    r.svc.maintain_keys().await.unwrap();
    assert_eq!(published(&r), vec![k2.clone(), k1.clone()]);
    advance(&clock, Duration::from_secs(1));
    r.svc.maintain_keys().await.unwrap();
    r.svc.maintain_keys().await.unwrap();
    assert_eq!(published(&r), vec![k2.clone()]);
    assert_eq!(states(&r).await, vec![(k2.clone(), KeyState::Current), (k1.clone(), KeyState::Retired)]);
    let events: Vec<String> = key_events(&db).await.into_iter().map(|(t, d)| format!("{t} {}", d["kid"])).collect();
    assert_eq!(
        events,
        [
            format!("auth.signing_key_rotated \"{k1}\""),
            format!("auth.signing_key_rotated \"{k2}\""),
            format!("auth.signing_key_retired \"{k1}\"")
        ]
    );
    // The old token's signature and expiry (by the wall clock) are still fine: only the key's
    // retirement rejects it.
    assert_eq!(verifier(&r).verify(&old_token).await, Err(VerifyError::Invalid), "a retired key's token");
    assert!(verifier(&r).verify(&new_token).await.is_ok());
}

pub async fn rotation_follows_the_schedule_and_the_configured_algorithm(db: Database) {
    let clock = clock();
    let r = replica(&db, clock.clone(), SigningAlgorithm::ES256).await;
    let first = states(&r).await[0].0.clone();
    advance(&clock, Duration::from_secs(30 * 86_400 - 60));
    r.svc.maintain_keys().await.unwrap();
    assert_eq!(states(&r).await.len(), 1, "not due before 30 days");
    advance(&clock, Duration::from_secs(60));
    r.svc.maintain_keys().await.unwrap();
    let list = r.svc.key_list().await.unwrap();
    assert_eq!(list.len(), 2, "due at 30 days");
    assert_eq!((list[0].alg.as_str(), list[1].kid.as_str()), ("ES256", first.as_str()));
    let events = key_events(&db).await;
    assert_eq!(events.last().unwrap().1["reason"], "scheduled");

    // A replica configured for EdDSA replaces the ES256 key, but not one made within the hour
    // (a rolling update must not flap between algorithms).
    let eddsa = replica(&db, clock.clone(), SigningAlgorithm::EdDSA).await;
    assert_eq!(eddsa.svc.key_list().await.unwrap().len(), 2, "the newest key is younger than an hour");
    advance(&clock, auth::service::ALGORITHM_SWITCH_HOLD);
    eddsa.svc.maintain_keys().await.unwrap();
    let list = eddsa.svc.key_list().await.unwrap();
    assert_eq!(list[0].alg, "EdDSA");
    assert_eq!(key_events(&db).await.last().unwrap().1["reason"], "algorithm_changed");
    // Once the new key signs, tokens are EdDSA and verify against the published JWK.
    advance(&clock, delay());
    eddsa.svc.maintain_keys().await.unwrap();
    let t = token(&eddsa).await;
    assert_eq!(kid_of(&t), list[0].kid);
    assert!(verifier(&eddsa).verify(&t).await.is_ok());
    // The ES256 replica, reloading, signs with the EdDSA key too (every replica signs with the
    // newest key) and does not rotate back within the hour.
    r.svc.maintain_keys().await.unwrap();
    assert_eq!(kid_of(&token(&r).await), list[0].kid);
    assert_eq!(r.svc.key_list().await.unwrap()[0].kid, list[0].kid);
}

pub async fn concurrent_replicas_rotate_once(db: Database) {
    let clock = clock();
    let replicas = [
        replica(&db, clock.clone(), SigningAlgorithm::EdDSA).await,
        replica(&db, clock.clone(), SigningAlgorithm::EdDSA).await,
        replica(&db, clock.clone(), SigningAlgorithm::EdDSA).await,
        replica(&db, clock.clone(), SigningAlgorithm::EdDSA).await,
    ];
    assert_eq!(replicas[3].svc.key_list().await.unwrap().len(), 1, "later replicas found the first key");
    advance(&clock, Duration::from_secs(30 * 86_400));
    let mut racers = Vec::new();
    for r in &replicas {
        let svc = r.svc.clone();
        racers.push(tokio::spawn(async move { svc.maintain_keys().await.unwrap() }));
    }
    for r in racers {
        r.await.unwrap();
    }
    assert_eq!(replicas[0].svc.key_list().await.unwrap().len(), 2, "four replicas due at once rotate once");
    let rotated = key_events(&db).await.iter().filter(|(_, d)| d["reason"] == "scheduled").count();
    assert_eq!(rotated, 1);
    // Every replica publishes the same keys.
    for r in &replicas {
        assert_eq!(published(r), published(&replicas[0]));
    }
    // The store's check directly: an insert expecting a stale newest key changes nothing.
    let store = auth::store(&db);
    let stale = store.all_keys().await.unwrap().last().unwrap().kid.clone();
    let mut row = store.all_keys().await.unwrap()[0].clone();
    row.kid = Uuid::now_v7().to_string();
    let event =
        platform::bus::Event::new("auth.signing_key_rotated", Uuid::now_v7(), None, clock.now(), serde_json::json!({}));
    assert!(!store.insert_key(&row, Some(&stale), &event).await.unwrap());
    assert!(!store.insert_key(&row, None, &event).await.unwrap());
    assert_eq!(store.all_keys().await.unwrap().len(), 2);
}

/// Migrations 1–3 only, a key stored the old way (RSA n/e columns), then the rest: the key is kept
/// and still verifies the tokens it signed.
pub async fn migration_keeps_existing_keys(db: Database) {
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    let before = Migrations {
        service: auth::MIGRATIONS.service,
        sqlite: &auth::MIGRATIONS.sqlite[..3],
        postgres: &auth::MIGRATIONS.postgres[..3],
    };
    db.migrate(&before).await.unwrap();
    let legacy = SigningKey::generate(SigningAlgorithm::RS256).unwrap();
    let sealed = SealingKey::new(&super::KEK)
        .unwrap()
        .seal(&legacy.to_pkcs8().unwrap(), format!("auth_signing_keys:{}", legacy.kid).as_bytes());
    let (kid, n, e) = (legacy.kid.clone(), legacy.jwk.n.clone().unwrap(), legacy.jwk.e.clone().unwrap());
    let made = OffsetDateTime::now_utc() - time::Duration::days(2);
    match &db {
        Database::Sqlite(s) => s
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO auth_signing_keys (kid, alg, private_key, n, e, created_at) VALUES (?1, 'RS256', ?2, ?3, ?4, ?5)",
                    rusqlite::params![kid, sealed, n, e, made.format(&time::format_description::well_known::Rfc3339).unwrap()],
                )
                .map_err(platform::db::sqlite::map_err)?;
                Ok(())
            })
            .await
            .unwrap(),
        Database::Postgres(p) => {
            p.client()
                .await
                .unwrap()
                .execute(
                    "INSERT INTO auth_signing_keys (kid, alg, private_key, n, e, created_at) VALUES ($1, 'RS256', $2, $3, $4, $5)",
                    &[&kid, &sealed, &n, &e, &made],
                )
                .await
                .unwrap();
        }
    }
    let r = replica(&db, clock(), SigningAlgorithm::RS256).await;
    let jwks = r.svc.public_keys();
    assert_eq!(jwks.keys, vec![legacy.jwk.clone()], "the legacy key is kept, current, and not rotated");
    let stored = auth::store(&db).all_keys().await.unwrap();
    let jwk: api::auth::Jwk = serde_json::from_str(&stored[0].public_jwk).unwrap();
    assert_eq!(jwk, legacy.jwk, "its public JWK was filled in from n and e");
    assert_eq!(stored[0].active_from, stored[0].created_at);
    assert_eq!(kid_of(&token(&r).await), legacy.kid);
}

on_both_backends!(
    rotation_overlaps_then_retires,
    rotation_follows_the_schedule_and_the_configured_algorithm,
    concurrent_replicas_rotate_once,
    migration_keeps_existing_keys
);
