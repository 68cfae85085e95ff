//! The read-through cache over real stores and real caches (in-process and Redis): reads are
//! served from it, every write invalidates what it changed, and a Redis that goes away costs
//! nothing but speed—not a failure, and not a stale answer once it is back.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use api::ApiError;
use api::projects::{AddMember, ChangeMember, CreateProject, CreateTask, ProjectRole, UpdateProject, UpdateTask};
use api::users::{Role, User, UserStatus};
use platform::bus::{Event, EventBus, InProcessBus};
use platform::cache::{Cache, MemoryCache, RedisCache};
use platform::clock::SystemClock;
use platform::db::Database;
use platform::ids::new_id;
use projects::ProjectsService;
use projects::service::{Actor, ChangeError};
use test_support::{TcpProxy, TestRedis, wait};
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    reads_are_served_from_the_cache_until_a_write_invalidates,
    membership_changes_take_effect_at_once,
    tasks_are_cached_and_every_write_invalidates,
    a_redis_outage_falls_back_to_the_database_and_leaves_nothing_stale,
    an_event_drops_the_entries_it_names,
    another_instance_drops_what_a_failed_invalidation_left,
);

/// The caches every test runs over: in-process, and Redis under a prefix of its own.
async fn caches() -> Vec<(Arc<dyn Cache>, Option<TestRedis>)> {
    let redis = TestRedis::new().await;
    let cache: Arc<dyn Cache> = Arc::new(redis.cache().await);
    vec![(Arc::new(MemoryCache::default()), None), (cache, Some(redis))]
}

fn actor(role: Role) -> Actor {
    Actor { user_id: new_id(), role }
}

/// A service whose users port knows `users` as active accounts.
fn service(b: &Backend, cache: Arc<dyn Cache>, users: &[Actor]) -> ProjectsService {
    let svc = ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None).with_cache(cache);
    let now = time::OffsetDateTime::now_utc();
    let directory = users
        .iter()
        .map(|a| User {
            id: a.user_id,
            email: format!("{}@example.com", a.user_id.simple()),
            name: "Someone".into(),
            role: a.role,
            status: UserStatus::Active,
            email_verified: true,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        })
        .collect();
    svc.connect_users(Arc::new(crate::members::Directory::with(directory)));
    svc
}

/// Sets `column` of row `id` of `table` to `value` and bumps its `updated_at`, in the database
/// behind the service's back, as another writer whose invalidation was lost would: a read that
/// still answers the old value was served from the cache.
async fn change_behind_the_back(b: &Backend, table: &'static str, column: &'static str, id: Uuid, value: &str) {
    let value = value.to_string();
    let at = crate::now() + time::Duration::seconds(1);
    let changed = match &b.db {
        Database::Sqlite(db) => {
            // As the SQLite adapter writes times: nine fractional digits, so that they sort.
            let at = at
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
                ))
                .unwrap();
            let sql = format!("UPDATE {table} SET {column} = ?2, updated_at = ?3 WHERE id = ?1");
            db.write(move |tx| {
                tx.execute(&sql, rusqlite::params![id, value, at]).map_err(platform::db::sqlite::map_err)
            })
            .await
        }
        Database::Postgres(db) => {
            let sql = format!("UPDATE {table} SET {column} = $2, updated_at = $3 WHERE id = $1");
            async {
                let client = db.client().await?;
                let n = client.execute(&sql, &[&id, &value, &at]).await.map_err(platform::db::postgres::map_err)?;
                Ok(n as usize)
            }
            .await
        }
    };
    assert_eq!(changed.unwrap(), 1);
}

async fn rename_behind_the_back(b: &Backend, id: Uuid, name: &str) {
    change_behind_the_back(b, "projects", "name", id, name).await;
}

fn named(name: &str) -> CreateProject {
    CreateProject { name: name.into(), description: String::new() }
}

async fn reads_are_served_from_the_cache_until_a_write_invalidates(b: &Backend) {
    for (cache, _redis) in caches().await {
        let owner = actor(Role::User);
        let svc = service(b, cache, &[owner]);
        let p = svc.create_project(owner, named("one")).await.unwrap();
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one");

        rename_behind_the_back(b, p.id, "changed behind the back").await;
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one", "the second read is a cache hit");

        // A write based on the stale entry loses its compare-and-set, and drops the entry.
        let update = || UpdateProject { name: None, description: Some("new".into()) };
        assert!(matches!(
            svc.update_project(owner, p.id, update(), None).await,
            Err(ChangeError::Api(ApiError::Conflict(_)))
        ));
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "changed behind the back", "read afresh");

        // A write through the service invalidates the entry: the next read is the new version.
        svc.update_project(owner, p.id, update(), None).await.unwrap();
        let read = svc.get_project(owner, p.id).await.unwrap();
        assert_eq!((read.name.as_str(), read.description.as_str()), ("changed behind the back", "new"));
        let rename = UpdateProject { name: Some("two".into()), description: None };
        svc.update_project(owner, p.id, rename, None).await.unwrap();
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "two");

        svc.delete_project(owner, p.id, None).await.unwrap();
        assert_eq!(svc.get_project(owner, p.id).await, Err(ApiError::NotFound));
    }
}

async fn membership_changes_take_effect_at_once(b: &Backend) {
    for (cache, _redis) in caches().await {
        let (owner, other) = (actor(Role::User), actor(Role::User));
        let svc = service(b, cache, &[owner, other]);
        let p = svc.create_project(owner, named("team")).await.unwrap();
        // Not a member, twice: the second 404 comes from the cached non-membership.
        for _ in 0..2 {
            assert_eq!(svc.get_project(other, p.id).await, Err(ApiError::NotFound));
        }

        svc.add_member(owner, p.id, AddMember { user_id: other.user_id, role: ProjectRole::Editor }).await.unwrap();
        assert_eq!(svc.get_project(other, p.id).await.unwrap().role, ProjectRole::Editor, "added: visible at once");

        svc.change_member(owner, p.id, other.user_id, ChangeMember { role: ProjectRole::Owner }, None).await.unwrap();
        assert_eq!(svc.get_project(other, p.id).await.unwrap().role, ProjectRole::Owner);

        // The creator leaves: `owner_id` moves to the remaining owner, and the creator is out.
        svc.remove_member(owner, p.id, owner.user_id, None).await.unwrap();
        assert_eq!(svc.get_project(owner, p.id).await, Err(ApiError::NotFound), "removed: invisible at once");
        assert_eq!(svc.get_project(other, p.id).await.unwrap().owner_id, other.user_id, "owner_id is fresh");
    }
}

async fn a_redis_outage_falls_back_to_the_database_and_leaves_nothing_stale(b: &Backend) {
    let redis = TestRedis::new().await;
    let proxy = TcpProxy::start(&redis.address()).await;
    let cache = RedisCache::connect(&redis.url_through(proxy.addr()), &redis.prefix).await.unwrap();
    let owner = actor(Role::User);
    let svc = service(b, Arc::new(cache), &[owner]);
    let p = svc.create_project(owner, named("one")).await.unwrap();
    assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one", "cached now");

    proxy.cut();
    // Reads and writes go on without the cache.
    assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one");
    let rename = UpdateProject { name: Some("two".into()), description: None };
    svc.update_project(owner, p.id, rename, None).await.unwrap();
    assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "two");

    proxy.restore();
    // Redis still holds "one": the invalidation that failed is retried (at most once a second)
    // before the cache is read again, so every answer is the database's "two", before the retry
    // as after it.
    let direct = redis.cache().await;
    let key = format!("projects:p:{}", p.id);
    wait::until("the failed invalidation retried once Redis was back (its tombstone in Redis)", || async {
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "two", "never the entry of before the outage");
        direct.get(&key).await.unwrap().as_deref() == Some(&b""[..])
    })
    .await;
    assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "two");
}

async fn retitle_behind_the_back(b: &Backend, id: Uuid, title: &str) {
    change_behind_the_back(b, "tasks", "title", id, title).await;
}

async fn tasks_are_cached_and_every_write_invalidates(b: &Backend) {
    for (cache, _redis) in caches().await {
        let (owner, member) = (actor(Role::User), actor(Role::User));
        let svc = service(b, cache, &[owner, member]);
        let p = svc.create_project(owner, named("board")).await.unwrap();
        svc.add_member(owner, p.id, AddMember { user_id: member.user_id, role: ProjectRole::Editor }).await.unwrap();
        let input = CreateTask { title: "one".into(), assignee_id: Some(member.user_id), ..Default::default() };
        let t = svc.create_task(owner, p.id, input).await.unwrap();
        assert_eq!(svc.get_task(member, t.id).await.unwrap().title, "one");

        retitle_behind_the_back(b, t.id, "behind").await;
        assert_eq!(svc.get_task(member, t.id).await.unwrap().title, "one", "served from the cache");

        // A change based on the cached version loses its compare-and-set and is re-applied to a
        // fresh read; afterwards the cache answers the new version.
        let change = UpdateTask { priority: Some(api::projects::Priority::Urgent), ..Default::default() };
        let updated = svc.update_task(member, t.id, change, None).await.unwrap();
        assert_eq!((updated.title.as_str(), updated.priority), ("behind", api::projects::Priority::Urgent));
        let read = svc.get_task(owner, t.id).await.unwrap();
        assert_eq!((read.title.as_str(), read.priority), ("behind", api::projects::Priority::Urgent));

        // Removing the assignee from the project unassigns the task: the cache knows at once.
        assert_eq!(svc.get_task(owner, t.id).await.unwrap().assignee_id, Some(member.user_id));
        svc.remove_member(owner, p.id, member.user_id, None).await.unwrap();
        assert_eq!(svc.get_task(owner, t.id).await.unwrap().assignee_id, None, "unassigned, not a cached assignee");
        assert_eq!(svc.get_task(member, t.id).await, Err(ApiError::NotFound), "and the member lost access");

        svc.delete_task(owner, t.id, None).await.unwrap();
        assert_eq!(svc.get_task(owner, t.id).await, Err(ApiError::NotFound), "deleted: not served from the cache");
    }
}

/// Reads `read` until it answers `want` (the consumer runs on its own task); fails after
/// [`wait::default_limit`], naming what it waited for.
async fn eventually<F, Fut>(what: &str, want: &str, read: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    wait::until(&format!("{what} to read {want:?}"), || async { read().await == want }).await;
}

/// The cross-instance consumer on both caches: entries changed elsewhere (behind this process's
/// back, as a write whose invalidation never reached this cache) stay cached until an event
/// naming them is consumed, and not after.
async fn an_event_drops_the_entries_it_names(b: &Backend) {
    for (cache, _redis) in caches().await {
        let owner = actor(Role::User);
        let svc = Arc::new(service(b, cache, &[owner]));
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let consumer = projects::invalidation::spawn(svc.clone(), bus.clone(), stopped).await;
        let p = svc.create_project(owner, named("one")).await.unwrap();
        let t = svc.create_task(owner, p.id, CreateTask { title: "one".into(), ..Default::default() }).await.unwrap();
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one");
        assert_eq!(svc.get_task(owner, t.id).await.unwrap().title, "one");

        rename_behind_the_back(b, p.id, "two").await;
        retitle_behind_the_back(b, t.id, "two").await;
        assert_eq!(svc.get_project(owner, p.id).await.unwrap().name, "one", "cached");
        assert_eq!(svc.get_task(owner, t.id).await.unwrap().title, "one", "cached");

        let at = time::OffsetDateTime::now_utc();
        let named_by = [
            Event::new("project.updated", p.id, None, at, serde_json::json!({ "project_id": p.id })),
            Event::new("task.updated", t.id, None, at, serde_json::json!({ "task": { "id": t.id } })),
        ];
        for e in &named_by {
            bus.publish(e).await.unwrap();
        }
        eventually("the project", "two", || async { svc.get_project(owner, p.id).await.unwrap().name }).await;
        eventually("the task", "two", || async { svc.get_task(owner, t.id).await.unwrap().title }).await;
        stop.send(true).unwrap();
        consumer.await.unwrap();
    }
}

/// Process A's invalidation fails (its Redis link is cut); process B, sharing the Redis, reads
/// A's old entries until the relay delivers A's events to B's consumer, which tombstones them.
async fn another_instance_drops_what_a_failed_invalidation_left(b: &Backend) {
    let redis = TestRedis::new().await;
    let proxy = TcpProxy::start(&redis.address()).await;
    let owner = actor(Role::User);
    let through_proxy = RedisCache::connect(&redis.url_through(proxy.addr()), &redis.prefix).await.unwrap();
    let a = service(b, Arc::new(through_proxy), &[owner]);
    let reader = Arc::new(service(b, Arc::new(redis.cache().await), &[owner]));
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = projects::invalidation::spawn(reader.clone(), bus.clone(), stopped).await;
    let relay = platform::outbox::Relay::new(b.db.clone(), bus.clone());

    // Nothing is relayed before B has cached: an event still on its way could otherwise drop
    // B's entries at any moment, and "B reads A's stale entry" below would be luck.
    let p = a.create_project(owner, named("one")).await.unwrap();
    let t = a.create_task(owner, p.id, CreateTask { title: "one".into(), ..Default::default() }).await.unwrap();
    assert_eq!(reader.get_project(owner, p.id).await.unwrap().name, "one");
    assert_eq!(reader.get_task(owner, t.id).await.unwrap().title, "one", "B cached both");

    proxy.cut();
    let rename = UpdateProject { name: Some("two".into()), description: None };
    a.update_project(owner, p.id, rename, None).await.unwrap();
    let retitle = UpdateTask { title: Some("two".into()), ..Default::default() };
    a.update_task(owner, t.id, retitle, None).await.unwrap();
    assert_eq!(reader.get_project(owner, p.id).await.unwrap().name, "one", "B reads A's stale entry");
    assert_eq!(reader.get_task(owner, t.id).await.unwrap().title, "one", "B reads A's stale entry");

    // A's Redis link stays cut; the events reach B through the bus: the two creations (which
    // name no entry) and the two changes.
    assert_eq!(relay.run_once().await.unwrap().published, 4);
    eventually("B's project", "two", || async { reader.get_project(owner, p.id).await.unwrap().name }).await;
    eventually("B's task", "two", || async { reader.get_task(owner, t.id).await.unwrap().title }).await;
    stop.send(true).unwrap();
    consumer.await.unwrap();
}
