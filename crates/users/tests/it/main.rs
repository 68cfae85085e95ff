//! The users service on SQLite and PostgreSQL: role and status changes by administrators end the
//! user's sessions (through `SessionsApi`) and are audited through the outbox; non-admins cannot
//! make them; the last active administrator stays; `If-Match` and concurrent writers are honoured;
//! the flags the auth service sets (`email_verified`, `mfa_enabled`); and, in `pii.rs`, personal
//! data at rest, search, preferences, export, erasure and key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::sync::{Arc, Mutex};

use api::ApiError;
use api::auth::{SessionEndReason, SessionsApi};
use api::users::{NewUser, Role, UpdateUser, User, UserStatus, UsersApi};
use async_trait::async_trait;
use platform::clock::SystemClock;
use platform::db::{Database, StoreError};
use users::UsersService;
use users::pii::PiiKeys;
use users::service::{Actor, UpdateError, etag};
use uuid::Uuid;

/// The password every test account has, as far as the `Sessions` stand-in is concerned.
const PASSWORD: &str = "correct horse battery staple";

/// The auth side of the seam: records what it was asked to end, or fails as if auth were down.
#[derive(Default)]
struct Sessions {
    ended: Mutex<Vec<(Uuid, SessionEndReason)>>,
    emails_changed: Mutex<Vec<(Uuid, String)>>,
    down: bool,
}

#[async_trait]
impl SessionsApi for Sessions {
    async fn end_all_sessions(&self, user_id: Uuid, reason: SessionEndReason) -> Result<u32, ApiError> {
        if self.down {
            return Err(ApiError::Unavailable("auth is down".into()));
        }
        self.ended.lock().unwrap().push((user_id, reason));
        Ok(1)
    }

    async fn check_password(&self, _user_id: Uuid, password: &str) -> Result<(), ApiError> {
        if password == PASSWORD { Ok(()) } else { Err(ApiError::Unauthorized) }
    }

    async fn email_changed(&self, user_id: Uuid, old_email: &str) -> Result<(), ApiError> {
        self.emails_changed.lock().unwrap().push((user_id, old_email.to_string()));
        Ok(())
    }

    /// Records the request as (user, new address); the real service mails the link.
    async fn request_email_change(&self, req: &api::auth::EmailChangeRequest) -> Result<(), ApiError> {
        self.emails_changed.lock().unwrap().push((req.user_id, req.new_email.clone()));
        Ok(())
    }
}

impl Sessions {
    fn ended(&self) -> Vec<(Uuid, SessionEndReason)> {
        self.ended.lock().unwrap().clone()
    }
}

/// The projects side of the seam: who shares a project with whom, set by each test.
#[derive(Default)]
struct People(Mutex<Vec<Vec<Uuid>>>);

impl People {
    /// `members` share a project.
    fn project(&self, members: &[Uuid]) {
        self.0.lock().unwrap().push(members.to_vec());
    }
}

#[async_trait]
impl api::projects::ProjectPeople for People {
    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, ApiError> {
        let projects = self.0.lock().unwrap();
        Ok(projects.iter().filter(|p| p.contains(&user)).flatten().copied().collect())
    }
}

struct Backend {
    db: Database,
    svc: Arc<UsersService>,
    sessions: Arc<Sessions>,
    holder: Arc<pii::Holder>,
    people: Arc<People>,
    _guard: Box<dyn Any + Send>,
}

fn service(
    db: &Database,
    keys: Arc<PiiKeys>,
    sessions: &Arc<Sessions>,
    holder: &Arc<pii::Holder>,
    people: &Arc<People>,
) -> Arc<UsersService> {
    let svc = Arc::new(UsersService::new(users::store(db), keys, Arc::new(SystemClock), None));
    svc.connect_sessions(sessions.clone());
    svc.connect_personal_data(vec![("other", holder.clone())]);
    svc.connect_people(people.clone());
    svc
}

impl Backend {
    async fn with(db: Database, guard: Box<dyn Any + Send>, sessions: Sessions) -> Backend {
        db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
        db.migrate(&users::MIGRATIONS).await.unwrap();
        let sessions = Arc::new(sessions);
        let holder = Arc::new(pii::Holder::default());
        let people = Arc::new(People::default());
        let svc = service(&db, pii::keys(&[1]), &sessions, &holder, &people);
        Backend { db, svc, sessions, holder, people, _guard: guard }
    }

    /// A new service over the same database, as after a restart, with `keys`.
    fn restart(&mut self, keys: Arc<PiiKeys>) {
        self.svc = service(&self.db, keys, &self.sessions, &self.holder, &self.people);
    }

    async fn sqlite(sessions: Sessions) -> Backend {
        let t = test_support::TestSqlite::new().await;
        Backend::with(t.db.clone(), Box::new(t), sessions).await
    }

    async fn postgres(sessions: Sessions) -> Backend {
        let t = test_support::TestPostgres::new().await;
        Backend::with(t.db.clone(), Box::new(t), sessions).await
    }

    async fn user(&self, role: Role) -> User {
        let id = Uuid::now_v7();
        let new = NewUser { id, email: format!("{}@example.com", id.simple()), name: "Someone".into(), role };
        self.svc.create_user(new).await.unwrap()
    }

    async fn patch(&self, actor: &User, target: &User, patch: UpdateUser) -> Result<User, UpdateError> {
        self.svc
            .update_user(Actor { user_id: actor.id, role: actor.role, client_ip: None }, target.id, patch, None)
            .await
    }

    /// The outbox rows: (type, aggregate id, actor id, data).
    async fn outbox(&self) -> Vec<(String, Uuid, Option<Uuid>, serde_json::Value)> {
        const SQL: &str = "SELECT event_type, aggregate_id, actor_id, data FROM outbox ORDER BY seq";
        let rows = match &self.db {
            Database::Sqlite(db) => {
                db.read(|c| {
                    let mut stmt = c.prepare(SQL)?;
                    let rows = stmt.query_map([], |r| {
                        let data: String = r.get(3)?;
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, serde_json::from_str(&data).unwrap()))
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .await
            }
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    let rows = client.query(SQL, &[]).await.map_err(platform::db::postgres::map_err)?;
                    Ok::<_, StoreError>(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
                }
                .await
            }
        };
        rows.unwrap()
    }

    async fn events_of(&self, kind: &str) -> Vec<(Uuid, Option<Uuid>, serde_json::Value)> {
        self.outbox().await.into_iter().filter(|e| e.0 == kind).map(|e| (e.1, e.2, e.3)).collect()
    }
}

/// A role change with the admin's step-up proof.
fn role(r: Role) -> UpdateUser {
    UpdateUser { role: Some(r), current_password: Some(PASSWORD.into()), ..UpdateUser::default() }
}

/// A status change with the admin's step-up proof.
fn status(s: UserStatus) -> UpdateUser {
    UpdateUser { status: Some(s), current_password: Some(PASSWORD.into()), ..UpdateUser::default() }
}

/// Step-up: an admin's change of a role or status needs the admin's own current password with
/// the request; without it (403 `step_up_required`) or with a wrong one (401 `step_up_failed`)
/// nothing changes, no session ends and no event is written.
async fn role_and_status_changes_need_the_admins_password(b: Backend) {
    let admin = b.user(Role::Admin).await;
    let u = b.user(Role::User).await;
    let bare = |p: UpdateUser| UpdateUser { current_password: None, ..p };
    let wrong = |p: UpdateUser| UpdateUser { current_password: Some("not it".into()), ..p };
    let empty = |p: UpdateUser| UpdateUser { current_password: Some(String::new()), ..p };
    for patch in [role(Role::Admin), status(UserStatus::Inactive)] {
        let err = b.patch(&admin, &u, bare(patch.clone())).await.unwrap_err();
        assert_eq!(err, UpdateError::Api(ApiError::StepUpRequired));
        let err = b.patch(&admin, &u, empty(patch.clone())).await.unwrap_err();
        assert_eq!(err, UpdateError::Api(ApiError::StepUpRequired));
        let err = b.patch(&admin, &u, wrong(patch.clone())).await.unwrap_err();
        assert_eq!(err, UpdateError::Api(ApiError::StepUpFailed));
    }
    let now = b.svc.get_user(u.id).await.unwrap();
    assert_eq!((now.role, now.status), (Role::User, UserStatus::Active), "nothing changed");
    assert!(b.sessions.ended().is_empty(), "no session ended");
    assert!(b.events_of("users.role_changed").await.is_empty() && b.events_of("users.status_changed").await.is_empty());
    // A rename needs no proof; a no-op role "change" neither.
    let rename = UpdateUser { name: Some("Renamed".into()), ..UpdateUser::default() };
    b.patch(&admin, &u, rename).await.unwrap();
    b.patch(&admin, &u, bare(role(Role::User))).await.unwrap();
    // With the proof, it goes through.
    assert_eq!(b.patch(&admin, &u, role(Role::Guest)).await.unwrap().role, Role::Guest);
}

/// Two admins, the only ones, demote (or deactivate, or erase) each other at the same moment,
/// through the service: exactly one change passes and one active admin remains.
async fn admins_demoting_each_other_at_once_leave_one(b: Backend) {
    let count_active = |b: &Backend| {
        let store = users::store(&b.db);
        async move { store.active_admins().await.unwrap() }
    };
    for round in 0..6 {
        let x = b.user(Role::Admin).await;
        let y = b.user(Role::Admin).await;
        let svc = b.svc.clone();
        let act = move |actor: User, target: User| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let a = Actor { user_id: actor.id, role: actor.role, client_ip: None };
                match round % 3 {
                    0 => svc.update_user(a, target.id, role(Role::User), None).await.map(|_| ()),
                    1 => svc.update_user(a, target.id, status(UserStatus::Inactive), None).await.map(|_| ()),
                    _ => svc.erase(a, target.id, Some(PASSWORD)).await.map_err(UpdateError::Api),
                }
            })
        };
        let (rx, ry) = tokio::join!(act(x.clone(), y.clone()), act(y.clone(), x.clone()));
        let results = [rx.unwrap(), ry.unwrap()];
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 1, "round {round}: exactly one passes: {results:?}");
        let refused = results.iter().find_map(|r| r.clone().err()).unwrap();
        assert!(matches!(refused, UpdateError::Api(ApiError::Conflict(_))), "round {round}: {refused:?}");
        assert_eq!(count_active(&b).await, 1, "round {round}: one active admin remains");
        // Make room for the next round: the survivor steps down without the guard.
        let store = users::store(&b.db);
        for u in [&x, &y] {
            let cur = store.get(u.id).await.unwrap();
            if cur.role == Role::Admin && cur.status == UserStatus::Active {
                let mut next = cur.clone();
                next.role = Role::User;
                next.updated_at = cur.updated_at + time::Duration::milliseconds(1);
                store.update(&next, &cur, None, false, &[]).await.unwrap();
            }
        }
        assert_eq!(count_active(&b).await, 0);
    }
}

async fn an_admin_changes_a_role_and_the_sessions_end(b: Backend) {
    let admin = b.user(Role::Admin).await;
    let u = b.user(Role::User).await;
    let changed = b.patch(&admin, &u, role(Role::Guest)).await.unwrap();
    assert_eq!(changed.role, Role::Guest);
    assert!(changed.updated_at > u.updated_at);
    assert_eq!(b.svc.get_user(u.id).await.unwrap(), changed, "stored as answered (same ETag)");
    assert_eq!(
        b.sessions.ended(),
        vec![(u.id, SessionEndReason::RoleChanged), (u.id, SessionEndReason::RoleChanged)],
        "ended before the change and once more after it"
    );
    let events = b.events_of("users.role_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, u.id);
    assert_eq!(events[0].1, Some(admin.id), "the actor is recorded");
    assert_eq!(events[0].2, serde_json::json!({"user_id": u.id, "from": "user", "to": "guest"}));
    assert!(b.events_of("users.status_changed").await.is_empty());

    // Deactivation is a status change with its own reason and event.
    b.patch(&admin, &u, status(UserStatus::Inactive)).await.unwrap();
    assert_eq!(b.sessions.ended().last(), Some(&(u.id, SessionEndReason::StatusChanged)));
    let events = b.events_of("users.status_changed").await;
    assert_eq!(events[0].2, serde_json::json!({"user_id": u.id, "from": "active", "to": "inactive"}));
    assert_eq!(b.svc.get_user(u.id).await.unwrap().status, UserStatus::Inactive);

    // The same values again change nothing and end nothing.
    let before = b.sessions.ended().len();
    b.patch(&admin, &u, status(UserStatus::Inactive)).await.unwrap();
    assert_eq!(b.sessions.ended().len(), before);
    assert_eq!(b.events_of("users.status_changed").await.len(), 1);
}

async fn only_admins_change_roles_and_users_rename_only_themselves(b: Backend) {
    let u = b.user(Role::User).await;
    let guest = b.user(Role::Guest).await;
    for actor in [&u, &guest] {
        for patch in [role(Role::Admin), status(UserStatus::Active)] {
            let err = b.patch(actor, actor, patch).await.unwrap_err();
            assert_eq!(err, UpdateError::Api(ApiError::Forbidden), "{:?} on themself", actor.role);
        }
    }
    let rename = |name: &str| UpdateUser { name: Some(name.into()), ..UpdateUser::default() };
    assert_eq!(b.patch(&u, &guest, rename("Mallory")).await.unwrap_err(), UpdateError::Api(ApiError::Forbidden));
    let renamed = b.patch(&u, &u, rename("  Ada King ")).await.unwrap();
    assert_eq!(renamed.name, "Ada King");
    assert_eq!(renamed.role, Role::User);
    let bad = b.patch(&u, &u, rename("")).await.unwrap_err();
    assert!(matches!(bad, UpdateError::Api(ApiError::Invalid(ref e)) if e[0].field == "name"), "{bad:?}");
    assert!(b.sessions.ended().is_empty(), "a rename ends no session");
    assert_eq!(b.events_of("users.profile_updated").await.len(), 1);
    assert!(b.events_of("users.role_changed").await.is_empty());
    let admin = b.user(Role::Admin).await;
    assert_eq!(b.patch(&admin, &u, rename("Ada")).await.unwrap().name, "Ada", "admins rename anyone");
    let nobody = User { id: Uuid::now_v7(), ..u.clone() };
    assert_eq!(b.patch(&admin, &nobody, role(Role::User)).await.unwrap_err(), UpdateError::Api(ApiError::NotFound));
}

async fn the_last_active_admin_cannot_be_demoted_or_deactivated(b: Backend) {
    let a = b.user(Role::Admin).await;
    for patch in [role(Role::User), status(UserStatus::Inactive), status(UserStatus::Deleted)] {
        let err = b.patch(&a, &a, patch).await.unwrap_err();
        assert!(matches!(err, UpdateError::Api(ApiError::Conflict(_))), "{err:?}");
    }
    assert!(b.sessions.ended().is_empty(), "a refused change ends no session");
    let other = b.user(Role::Admin).await;
    b.patch(&a, &other, status(UserStatus::Inactive)).await.unwrap();
    let err = b.patch(&a, &a, role(Role::Guest)).await.unwrap_err();
    assert!(matches!(err, UpdateError::Api(ApiError::Conflict(_))), "an inactive admin does not count: {err:?}");
    b.patch(&a, &other, status(UserStatus::Active)).await.unwrap();
    let demoted = b.patch(&a, &a, role(Role::User)).await.unwrap();
    assert_eq!(demoted.role, Role::User, "with another active admin, an admin may step down");
}

async fn concurrent_demotions_leave_an_admin(b: Backend) {
    use users::ports::UpdateOutcome::{LastAdmin, Updated};
    let store = users::store(&b.db);
    for round in 0..5 {
        // x and y are the only active admins; each is demoted at the same time as the other.
        let x = b.user(Role::Admin).await;
        let y = b.user(Role::Admin).await;
        let (x_row, y_row) = (store.get(x.id).await.unwrap(), store.get(y.id).await.unwrap());
        let demote = |read: &users::ports::StoredUser| {
            let (store, read, mut next) = (store.clone(), read.clone(), read.clone());
            next.role = Role::User;
            next.updated_at = read.updated_at + time::Duration::milliseconds(1);
            tokio::spawn(async move { store.update(&next, &read, None, true, &[]).await.unwrap() })
        };
        let (rx, ry) = tokio::join!(demote(&x_row), demote(&y_row));
        let mut outcomes = [rx.unwrap(), ry.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [LastAdmin, Updated], "round {round}: exactly one demotion passes");
        assert_eq!(store.active_admins().await.unwrap(), 1);
        // Make room for the next round: the survivor steps down without the guard.
        for u in [&x, &y] {
            let cur = store.get(u.id).await.unwrap();
            if cur.role == Role::Admin {
                let mut next = cur.clone();
                next.role = Role::User;
                next.updated_at = cur.updated_at + time::Duration::milliseconds(1);
                assert_eq!(store.update(&next, &cur, None, false, &[]).await.unwrap(), Updated);
            }
        }
        assert_eq!(store.active_admins().await.unwrap(), 0);
    }
}

async fn if_match_and_stale_writes(b: Backend) {
    let admin = b.user(Role::Admin).await;
    let u = b.user(Role::User).await;
    let actor = Actor { user_id: admin.id, role: admin.role, client_ip: None };
    let tag = etag(&u);
    let stale = b.svc.update_user(actor, u.id, role(Role::Guest), Some("\"0\"")).await.unwrap_err();
    assert_eq!(stale, UpdateError::PreconditionFailed);
    assert!(b.sessions.ended().is_empty(), "a refused change ends no session");
    let changed = b.svc.update_user(actor, u.id, role(Role::Guest), Some(&tag)).await.unwrap();
    assert_ne!(etag(&changed), tag, "a change makes a new version");
    let again = b.svc.update_user(actor, u.id, role(Role::User), Some(&tag)).await.unwrap_err();
    assert_eq!(again, UpdateError::PreconditionFailed, "the old tag is stale now");
    b.svc.update_user(actor, u.id, role(Role::User), Some("*")).await.unwrap();

    // A writer that read an older version loses, whatever it writes.
    let store = users::store(&b.db);
    let read = store.get(u.id).await.unwrap();
    let mut older = read.clone();
    older.updated_at = u.updated_at;
    let mut next = read.clone();
    next.name = None;
    let outcome = store.update(&next, &older, None, false, &[]).await.unwrap();
    assert_eq!(outcome, users::ports::UpdateOutcome::Stale);
    assert_eq!(b.svc.get_user(u.id).await.unwrap().name, "Someone");
}

async fn no_change_when_sessions_cannot_be_ended(b: Backend) {
    let admin = b.user(Role::Admin).await;
    let u = b.user(Role::User).await;
    let err = b.patch(&admin, &u, role(Role::Admin)).await.unwrap_err();
    assert!(matches!(err, UpdateError::Api(ApiError::Unavailable(_))), "{err:?}");
    assert_eq!(b.svc.get_user(u.id).await.unwrap().role, Role::User, "fail closed: the role stays");
    assert!(b.events_of("users.role_changed").await.is_empty());
}

/// The flags the auth service keeps in the profile: marking an email verified is idempotent and
/// carries its event only when something changed; `mfa_enabled` follows the second factor; an
/// unknown user is `NotFound` for both.
async fn flags_set_by_the_auth_service(b: Backend) {
    let u = b.user(Role::User).await;
    assert!(!u.email_verified && !u.mfa_enabled);
    b.svc.set_email_verified(u.id).await.unwrap();
    b.svc.set_email_verified(u.id).await.unwrap();
    assert!(b.svc.get_user(u.id).await.unwrap().email_verified);
    assert_eq!(b.events_of("user.updated").await.len(), 1, "one event, for the one change");

    b.svc.set_mfa_enabled(u.id, true).await.unwrap();
    assert!(b.svc.get_user(u.id).await.unwrap().mfa_enabled);
    b.svc.set_mfa_enabled(u.id, false).await.unwrap();
    assert!(!b.svc.get_user(u.id).await.unwrap().mfa_enabled);

    let unknown = Uuid::now_v7();
    assert!(matches!(b.svc.set_email_verified(unknown).await, Err(ApiError::NotFound)));
    assert!(matches!(b.svc.set_mfa_enabled(unknown, true).await, Err(ApiError::NotFound)));
}

macro_rules! on_both_backends {
    ($($check:ident: $sessions:expr),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(Backend::sqlite($sessions).await).await; })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(Backend::postgres($sessions).await).await; })*
        }
    };
}

on_both_backends!(
    an_admin_changes_a_role_and_the_sessions_end: Sessions::default(),
    only_admins_change_roles_and_users_rename_only_themselves: Sessions::default(),
    the_last_active_admin_cannot_be_demoted_or_deactivated: Sessions::default(),
    concurrent_demotions_leave_an_admin: Sessions::default(),
    role_and_status_changes_need_the_admins_password: Sessions::default(),
    admins_demoting_each_other_at_once_leave_one: Sessions::default(),
    if_match_and_stale_writes: Sessions::default(),
    no_change_when_sessions_cannot_be_ended: Sessions { down: true, ..Sessions::default() },
    flags_set_by_the_auth_service: Sessions::default(),
    erased_users_are_purged_after_their_delay: Sessions::default(),
);

mod retention;
use retention::erased_users_are_purged_after_their_delay;

mod pii;
