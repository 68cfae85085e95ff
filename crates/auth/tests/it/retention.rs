//! The `sessions` job on SQLite and PostgreSQL: what has ended is deleted, with rows on either
//! side of every cutoff (a minute inside, a minute outside) to show exactly what goes.

use std::sync::Arc;

use auth::jobs::SessionsJob;
use auth::ports::{AuthStore, EmailTokenPurpose, MfaChallenge, NewEmailToken, NewSession};
use platform::clock::ManualClock;
use platform::crypto::sha256;
use platform::db::{Database, StoreError};
use platform::jobs::{JobRunner, RunOutcome};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{event, now, ready};

async fn session_at(store: &Arc<dyn AuthStore>, token: &str, at: OffsetDateTime) -> Uuid {
    let (id, user) = (Uuid::now_v7(), Uuid::now_v7());
    let s = NewSession {
        id,
        user_id: user,
        refresh_hash: sha256(token.as_bytes()),
        user_agent: None,
        ip: None,
        created_at: at,
        expires_at: at + Duration::days(30),
        amr: vec!["pwd".into()],
    };
    store.create_session(&s, &event("auth.login_succeeded", user)).await.unwrap();
    id
}

async fn run(db: &Database, store: &Arc<dyn AuthStore>, at: OffsetDateTime) -> platform::jobs::JobReport {
    let job = SessionsJob::new(store.clone(), Duration::days(30), Duration::days(7));
    let runner = JobRunner::new(db, Arc::new(ManualClock::new(at))).with_batch_size(2);
    match runner.run(&job, tokio::sync::watch::channel(false).1).await.unwrap() {
        RunOutcome::Ran(report) => report,
        other => panic!("the job did not run: {other:?}"),
    }
}

pub(crate) async fn sessions_job_deletes_what_ended_and_keeps_the_rest(db: Database) {
    let store = ready(&db).await;
    db.migrate(&platform::jobs::MIGRATIONS).await.unwrap();
    let base = now();
    // The job runs at `run_at`: sessions ended before `cutoff` go; idle ones ended 7 days after
    // their last use.
    let run_at = base + Duration::days(100);
    let cutoff = run_at - Duration::days(30);
    let idle_cutoff = cutoff - Duration::days(7);
    let min = Duration::minutes(1);
    let mut gone = Vec::new();
    let mut kept = Vec::new();

    // Revoked: recently used, far from expiry.
    for (token, revoked_at, list) in [("r-old", cutoff - min, &mut gone), ("r-new", cutoff + min, &mut kept)] {
        let id = session_at(&store, token, cutoff - Duration::days(1)).await;
        let user = store.session(id).await.unwrap().user_id;
        store.revoke_sessions(user, Some(id), revoked_at, &event("auth.logout", user)).await.unwrap();
        list.push(id);
    }
    // Past the absolute end (30 days after creation), used recently: two refresh tokens each.
    for (token, created, list) in [
        ("e-old", cutoff - Duration::days(30) - min, &mut gone),
        ("e-new", cutoff - Duration::days(30) + min, &mut kept),
    ] {
        let id = session_at(&store, token, created).await;
        let next = format!("{token}-2");
        assert!(
            store.rotate_refresh(id, sha256(token.as_bytes()), sha256(next.as_bytes()), cutoff - min).await.unwrap()
        );
        list.push(id);
    }
    // Idle: never used after login.
    for (token, created, list) in [("i-old", idle_cutoff - min, &mut gone), ("i-new", idle_cutoff + min, &mut kept)] {
        list.push(session_at(&store, token, created).await);
    }

    // Mailed tokens and challenges: expired before the run or not.
    let user = Uuid::now_v7();
    for (token, expires) in [("mail-old", run_at - min), ("mail-new", run_at + min)] {
        let t = NewEmailToken {
            token_hash: sha256(token.as_bytes()),
            user_id: user,
            purpose: EmailTokenPurpose::VerifyEmail,
            created_at: base,
            expires_at: expires,
        };
        assert!(store.issue_email_token(&t, base, 10, &event("auth.token_issued", user)).await.unwrap());
    }
    for (token, expires) in [("mfa-old", run_at - min), ("mfa-new", run_at + min)] {
        let ch = MfaChallenge {
            token_hash: sha256(token.as_bytes()),
            user_id: user,
            user_agent: None,
            ip: None,
            created_at: base,
            expires_at: expires,
            attempts: 0,
            used_at: None,
        };
        store.create_mfa_challenge(&ch).await.unwrap();
    }
    // Failure counters: last failure before the cutoff or after; one still blocked past it.
    fn no_block(_: u32) -> Duration {
        Duration::ZERO
    }
    fn long_block(_: u32) -> Duration {
        Duration::hours(3)
    }
    store.record_failure(sha256(b"k-old"), cutoff - min, no_block).await.unwrap();
    store.record_failure(sha256(b"k-new"), cutoff + min, no_block).await.unwrap();
    store.record_failure(sha256(b"k-blocked"), cutoff - Duration::hours(2), long_block).await.unwrap();

    let report = run(&db, &store, run_at).await;
    assert_eq!(report.get("sessions"), 3, "{report:?}");
    assert_eq!(report.get("refresh_tokens"), 4, "one token each, two for the refreshed one: {report:?}");
    assert_eq!((report.get("email_tokens"), report.get("mfa_challenges")), (1, 1), "{report:?}");
    assert_eq!(report.get("login_failures"), 1, "{report:?}");

    for id in gone {
        assert!(matches!(store.session(id).await, Err(StoreError::NotFound)), "session {id} should be gone");
    }
    for id in &kept {
        store.session(*id).await.unwrap_or_else(|e| panic!("session {id} should stay: {e}"));
    }
    for token in ["r-old", "e-old", "e-old-2", "i-old"] {
        assert_eq!(
            store.find_refresh(sha256(token.as_bytes())).await.unwrap(),
            auth::ports::RefreshLookup::Unknown,
            "{token}"
        );
    }
    for token in ["r-new", "e-new", "e-new-2", "i-new"] {
        assert_ne!(
            store.find_refresh(sha256(token.as_bytes())).await.unwrap(),
            auth::ports::RefreshLookup::Unknown,
            "{token}"
        );
    }
    let owner = |t: &'static str| {
        let store = store.clone();
        async move { store.email_token_owner(sha256(t.as_bytes()), EmailTokenPurpose::VerifyEmail, base).await.unwrap() }
    };
    assert_eq!((owner("mail-old").await, owner("mail-new").await), (None, Some(user)));
    assert!(store.mfa_challenge(sha256(b"mfa-old")).await.unwrap().is_none());
    assert!(store.mfa_challenge(sha256(b"mfa-new")).await.unwrap().is_some());
    assert!(store.failures(sha256(b"k-old")).await.unwrap().is_none());
    assert!(store.failures(sha256(b"k-new")).await.unwrap().is_some());
    assert!(store.failures(sha256(b"k-blocked")).await.unwrap().is_some(), "a block not yet over stays");

    let again = run(&db, &store, run_at).await;
    assert_eq!(again.items.values().sum::<u64>(), 0, "a second run finds nothing: {again:?}");
    assert_eq!(kept.len(), 3);
}

on_both_backends!(sessions_job_deletes_what_ended_and_keeps_the_rest);
