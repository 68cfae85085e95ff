//! GDPR export and erasure (`PersonalDataApi`) over real stores, and their internal routes: the
//! export holds the user's rows and nothing of others and names every table of the migrations;
//! erasure deletes what the user alone owns, takes them out of the rest, writes its events and is
//! idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use api::personal::{DataSubject, ErasureReport, PersonalData, PersonalDataApi};
use api::projects::{CreateProject, CreateTask, ProjectRole};
use api::users::Role;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use platform::clock::SystemClock;
use platform::db::{Database, Migrations};
use platform::ids::new_id;
use projects::ProjectsService;
use projects::service::{Actor, PageRequest};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::{Backend, OutboxRow};

crate::backend_suite!(
    export_holds_the_users_rows_and_nothing_of_others,
    export_names_every_table_and_column_of_the_migrations,
    erase_deletes_projects_the_user_alone_owns,
    erase_takes_the_user_out_of_shared_projects,
    erasing_again_changes_nothing,
    erase_deletes_the_users_comments_everywhere,
    internal_routes_export_and_erase,
);

fn service(b: &Backend) -> ProjectsService {
    ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None)
}

fn user() -> Actor {
    Actor { user_id: new_id(), role: Role::User }
}

fn subject(a: Actor) -> DataSubject {
    DataSubject { user_id: a.user_id, email: Some("someone@example.com".into()) }
}

async fn project(svc: &ProjectsService, owner: Actor, name: &str) -> Uuid {
    let input = CreateProject { name: name.into(), description: format!("{name} description") };
    svc.create_project(owner, input).await.unwrap_or_else(|e| panic!("create project: {e}")).id
}

async fn task(svc: &ProjectsService, by: Actor, project_id: Uuid, title: &str) -> Uuid {
    let input = CreateTask {
        title: title.into(),
        description: String::new(),
        status: None,
        priority: None,
        ..Default::default()
    };
    svc.create_task(by, project_id, input).await.unwrap_or_else(|e| panic!("create task: {e}")).id
}

async fn export(svc: &ProjectsService, who: Actor) -> PersonalData {
    svc.export(&subject(who)).await.unwrap_or_else(|e| panic!("export: {e}"))
}

async fn erase(svc: &ProjectsService, who: Actor) -> ErasureReport {
    svc.erase(&subject(who)).await.unwrap_or_else(|e| panic!("erase: {e}"))
}

fn report(projects: u64, project_members: u64, tasks: u64) -> ErasureReport {
    report_with_comments(projects, project_members, tasks, 0)
}

fn report_with_comments(projects: u64, project_members: u64, tasks: u64, comments: u64) -> ErasureReport {
    let tables =
        [("projects", projects), ("project_members", project_members), ("tasks", tasks), ("comments", comments)];
    ErasureReport { tables: tables.into_iter().map(|(t, n)| (t.to_string(), n)).collect() }
}

/// The values of `key` in the rows of `table`, as strings.
fn column(data: &PersonalData, table: &str, key: &str) -> BTreeSet<String> {
    let rows = data.tables.get(table).unwrap_or_else(|| panic!("no table {table} in {data:?}"));
    rows.iter().map(|r| r[key].as_str().map_or_else(|| r[key].to_string(), str::to_string)).collect()
}

fn ids(ids: &[Uuid]) -> BTreeSet<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// Every task of a project, as a member of it sees them.
async fn tasks_of(svc: &ProjectsService, member: Actor, project_id: Uuid) -> Vec<api::projects::Task> {
    let page = PageRequest { limit: Some(100), cursor: None };
    svc.list_tasks(member, project_id, Default::default(), page).await.unwrap_or_else(|e| panic!("{e}")).items
}

async fn export_holds_the_users_rows_and_nothing_of_others(b: &Backend) {
    let svc = service(b);
    let (alice, bob, carol) = (user(), user(), user());
    let own = project(&svc, alice, "Alice's own").await;
    let own_task = task(&svc, alice, own, "Alice writes").await;
    let bobs = project(&svc, bob, "Bob's").await;
    b.add_member(bobs, alice.user_id, ProjectRole::Editor).await;
    let created_in_bobs = task(&svc, alice, bobs, "Alice in Bob's").await;
    let assigned_in_bobs = task(&svc, bob, bobs, "Bob's for Alice").await;
    b.assign(assigned_in_bobs, alice.user_id).await;
    let bobs_own_task = task(&svc, bob, bobs, "Bob's alone").await;
    let carols = project(&svc, carol, "Carol's secret").await;
    let carols_task = task(&svc, carol, carols, "Carol's task").await;
    b.add_member(carols, bob.user_id, ProjectRole::Viewer).await;

    let data = export(&svc, alice).await;
    assert_eq!(
        data.tables.keys().map(String::as_str).collect::<Vec<_>>(),
        ["attachments", "comments", "project_members", "projects", "tasks"]
    );
    assert_eq!(column(&data, "projects", "id"), ids(&[own, bobs]));
    assert_eq!(column(&data, "projects", "name"), ["Alice's own", "Bob's"].map(String::from).into());
    assert_eq!(column(&data, "project_members", "project_id"), ids(&[own, bobs]));
    assert_eq!(column(&data, "project_members", "user_id"), ids(&[alice.user_id]), "only Alice's memberships");
    assert_eq!(column(&data, "project_members", "role"), ["editor", "owner"].map(String::from).into());
    assert_eq!(column(&data, "tasks", "id"), ids(&[own_task, created_in_bobs, assigned_in_bobs]));
    let assigned = data.tables["tasks"].iter().find(|t| t["id"] == json!(assigned_in_bobs));
    assert_eq!(
        assigned.map(|t| (&t["assignee_id"], &t["created_by"])),
        Some((&json!(alice.user_id), &json!(bob.user_id)))
    );
    let own_row = data.tables["projects"].iter().find(|p| p["id"] == json!(own)).cloned().unwrap_or_default();
    assert_eq!(own_row["owner_id"], json!(alice.user_id));
    assert_eq!(own_row["description"], json!("Alice's own description"));
    assert!(own_row["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 UTC: {own_row}");

    let text = serde_json::to_string(&data).unwrap_or_default();
    for foreign in [carols, carols_task, bobs_own_task, carol.user_id] {
        assert!(!text.contains(&foreign.to_string()), "{foreign} leaked into {text}");
    }
    assert!(!text.contains("Carol") && !text.contains("Bob's alone"), "{text}");

    // Someone with nothing here: every table, no rows.
    let nobody = export(&svc, user()).await;
    assert_eq!(nobody.tables.len(), 5);
    assert!(nobody.tables.values().all(Vec::is_empty), "{nobody:?}");
}

/// The names of the tables `migrations` create on `db`'s backend (`CREATE TABLE [IF NOT EXISTS] x`).
fn created_tables(migrations: &Migrations, db: &Database) -> BTreeSet<String> {
    let list = match db {
        Database::Sqlite(_) => migrations.sqlite,
        Database::Postgres(_) => migrations.postgres,
    };
    let mut names = BTreeSet::new();
    for m in list {
        let words: Vec<String> = m.sql.split_whitespace().map(str::to_lowercase).collect();
        for (i, w) in words.windows(2).enumerate() {
            if w[0] == "create" && w[1] == "table" {
                let rest = &words[i + 2..];
                let name =
                    if rest.starts_with(&["if".into(), "not".into(), "exists".into()]) { &rest[3] } else { &rest[0] };
                names.insert(name.split('(').next().unwrap_or_default().trim_matches('"').to_string());
            }
        }
    }
    names
}

/// A table added to the projects migrations must join the export (with all its columns), or
/// this test fails: the catalog is the list, not a copy of it.
async fn export_names_every_table_and_column_of_the_migrations(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let p = project(&svc, alice, "Everything").await;
    let t = task(&svc, alice, p, "One of each").await;
    b.assign(t, alice.user_id).await;
    svc.create_comment(alice, t, api::projects::CreateComment { body: "Mine".into() })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // An attachment's row (its object does not matter to the export).
    let a = new_id();
    let row = projects::ports::AttachmentRecord {
        id: a,
        task_id: t,
        project_id: p,
        uploaded_by: alice.user_id,
        filename: "f.txt".into(),
        content_type: "text/plain; charset=utf-8".into(),
        size: 1,
        object_key: format!("attachments/{p}/{a}"),
        created_at: crate::now(),
        status: api::projects::AttachmentStatus::Rejected,
        scan: api::projects::AttachmentScan::Infected,
        threat: Some("Test.Signature".into()),
    };
    let event = platform::bus::Event::new("attachment.created", a, None, crate::now(), json!({}));
    b.store.create_attachment(&row, &event).await.unwrap_or_else(|e| panic!("attachment row: {e}"));
    let data = export(&svc, alice).await;

    // The catalog's tables, less the migration ledger and the tables of other migration sets
    // (the platform's outbox), are this crate's: exactly what its migrations create.
    let mut ours = b.tables().await;
    ours.remove("schema_migrations");
    for other in created_tables(&platform::outbox::MIGRATIONS, &b.db) {
        ours.remove(&other);
    }
    assert_eq!(ours, created_tables(&projects::MIGRATIONS, &b.db), "catalog vs the projects migrations");
    // SQLite's search index maps documents to integer rowids: ids of projects, tasks and
    // comments only (no user id, no text), each row following its document. Not data about anyone.
    ours.remove("search_docs");
    assert!(ours.len() >= 3, "{ours:?}");

    for table in &ours {
        let rows = data.tables.get(table).unwrap_or_else(|| panic!("table {table} is missing from the export"));
        assert!(!rows.is_empty(), "the seed should give {table} a row for the user");
        let columns = b.columns(table).await;
        for row in rows {
            let keys: BTreeSet<String> = row.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            assert_eq!(keys, columns, "the exported {table} row should carry every column");
        }
    }
    let extra: Vec<_> = data.tables.keys().filter(|t| !ours.contains(*t)).collect();
    assert!(extra.is_empty(), "the export names tables that do not exist: {extra:?}");
}

fn outbox_since(rows: &[OutboxRow], before: usize) -> Vec<OutboxRow> {
    rows[before..].to_vec()
}

async fn erase_deletes_projects_the_user_alone_owns(b: &Backend) {
    let svc = service(b);
    let (alice, bob) = (user(), user());
    let sole = project(&svc, alice, "Alice alone").await;
    b.add_member(sole, bob.user_id, ProjectRole::Editor).await;
    task(&svc, alice, sole, "first").await;
    let bobs_task_there = task(&svc, bob, sole, "second").await;
    b.assign(bobs_task_there, alice.user_id).await;
    let bobs = project(&svc, bob, "Bob's").await;
    let bobs_task = task(&svc, bob, bobs, "kept").await;
    let before = b.outbox().await.len();

    // Two tasks deleted with the project (the assignment goes with them: not counted twice).
    assert_eq!(erase(&svc, alice).await, report(1, 2, 2));
    assert_eq!(svc.get_project(bob, sole).await, Err(api::ApiError::NotFound));
    assert_eq!(b.count("projects").await, 1);
    assert_eq!(b.count("project_members").await, 1, "only Bob's membership of his own project");
    assert_eq!(tasks_of(&svc, bob, bobs).await.iter().map(|t| t.id).collect::<Vec<_>>(), [bobs_task]);
    assert_eq!(b.count("tasks").await, 1);

    let events = outbox_since(&b.outbox().await, before);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, "project.deleted");
    assert_eq!((events[0].aggregate_id, events[0].actor_id), (sole, None));
    assert_eq!(events[0].data, json!({ "project_id": sole }));
}

async fn erase_takes_the_user_out_of_shared_projects(b: &Backend) {
    let svc = service(b);
    let (alice, bob, carol, dave) = (user(), user(), user(), user());
    let shared = project(&svc, alice, "Shared").await;
    b.add_member(shared, bob.user_id, ProjectRole::Owner).await;
    b.add_member(shared, carol.user_id, ProjectRole::Owner).await;
    b.add_member(shared, dave.user_id, ProjectRole::Editor).await;
    let by_alice = task(&svc, alice, shared, "written by Alice").await;
    let for_alice = task(&svc, bob, shared, "for Alice").await;
    b.assign(for_alice, alice.user_id).await;
    let for_dave = task(&svc, bob, shared, "for Dave").await;
    b.assign(for_dave, dave.user_id).await;
    // Alice is an editor of Carol's project, where Carol stays the owner.
    let carols = project(&svc, carol, "Carol's").await;
    b.add_member(carols, alice.user_id, ProjectRole::Editor).await;
    let in_carols = task(&svc, alice, carols, "Alice's in Carol's").await;
    let before = b.outbox().await.len();

    // projects: Shared's owner moved; members: Alice's two; tasks: one unassigned.
    assert_eq!(erase(&svc, alice).await, report(1, 2, 1));

    let kept = svc.get_project(bob, shared).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.owner_id, bob.user_id, "the oldest other owner inherits owner_id");
    assert_eq!(svc.get_project(alice, shared).await, Err(api::ApiError::NotFound), "Alice is no member any more");
    assert_eq!(svc.get_project(alice, carols).await, Err(api::ApiError::NotFound));
    assert_eq!(svc.get_project(carol, carols).await.map(|p| p.owner_id), Ok(carol.user_id));
    assert_eq!(b.count("project_members").await, 4, "Bob, Carol, Dave in Shared; Carol in hers");

    let tasks: BTreeMap<Uuid, api::projects::Task> =
        tasks_of(&svc, bob, shared).await.into_iter().map(|t| (t.id, t)).collect();
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[&by_alice].created_by, alice.user_id, "created tasks stay, under the pseudonymous id");
    assert_eq!(tasks[&for_alice].assignee_id, None, "unassigned");
    assert_eq!(tasks[&for_dave].assignee_id, Some(dave.user_id), "others' assignments untouched");
    let carols_tasks = tasks_of(&svc, carol, carols).await;
    assert_eq!(carols_tasks.iter().map(|t| (t.id, t.created_by)).collect::<Vec<_>>(), [(in_carols, alice.user_id)]);

    let mut events = outbox_since(&b.outbox().await, before);
    events.sort_by_key(|e| e.aggregate_id);
    let expected = {
        let mut e = vec![
            (
                shared,
                json!({ "project_id": shared, "user_id": alice.user_id, "change": "removed", "owner_id": bob.user_id }),
            ),
            (carols, json!({ "project_id": carols, "user_id": alice.user_id, "change": "removed" })),
        ];
        e.sort_by_key(|(id, _)| *id);
        e
    };
    assert_eq!(
        events.iter().map(|e| (e.event_type.as_str(), e.aggregate_id, e.actor_id, &e.data)).collect::<Vec<_>>(),
        expected.iter().map(|(id, data)| ("member.changed", *id, None, data)).collect::<Vec<_>>()
    );
}

async fn erasing_again_changes_nothing(b: &Backend) {
    let svc = service(b);
    let (alice, bob) = (user(), user());
    let sole = project(&svc, alice, "Alone").await;
    task(&svc, alice, sole, "goes").await;
    let shared = project(&svc, bob, "Shared").await;
    b.add_member(shared, alice.user_id, ProjectRole::Owner).await;
    let stays = task(&svc, alice, shared, "stays").await;
    let assigned = task(&svc, bob, shared, "assigned").await;
    b.assign(assigned, alice.user_id).await;

    assert_eq!(erase(&svc, alice).await, report(1, 2, 2));
    let counts = [b.count("projects").await, b.count("project_members").await, b.count("tasks").await];
    let outbox = b.outbox().await;
    let tasks_before = tasks_of(&svc, bob, shared).await;

    assert_eq!(erase(&svc, alice).await, report(0, 0, 0), "every table named, zero rows");
    assert_eq!([b.count("projects").await, b.count("project_members").await, b.count("tasks").await], counts);
    assert_eq!(b.outbox().await, outbox, "no second event");
    assert_eq!(tasks_of(&svc, bob, shared).await, tasks_before, "not even updated_at moved");

    // What is left about Alice: the task she wrote, under her pseudonymous id.
    let left = export(&svc, alice).await;
    assert_eq!(column(&left, "tasks", "id"), ids(&[stays]));
    assert!(left.tables["projects"].is_empty() && left.tables["project_members"].is_empty(), "{left:?}");
}

async fn call(router: &axum::Router, uri: &str, body: &str) -> (StatusCode, String, Value) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let res = router.clone().oneshot(req).await.unwrap_or_else(|e| panic!("{e}"));
    let status = res.status();
    let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, ct, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn internal_routes_export_and_erase(b: &Backend) {
    let svc = Arc::new(service(b));
    let alice = user();
    let p = project(&svc, alice, "Over HTTP").await;
    let router = projects::internal_router(Arc::clone(&svc));
    let body = json!({ "user_id": alice.user_id, "email": null }).to_string();

    let (status, ct, data) = call(&router, "/internal/projects/personal-data/export", &body).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    let data: PersonalData = serde_json::from_value(data).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(column(&data, "projects", "id"), ids(&[p]));

    let (status, _, report_body) = call(&router, "/internal/projects/personal-data/erase", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_value::<ErasureReport>(report_body).ok(), Some(report(1, 1, 0)));
    let (_, _, again) = call(&router, "/internal/projects/personal-data/erase", &body).await;
    assert_eq!(serde_json::from_value::<ErasureReport>(again).ok(), Some(report(0, 0, 0)));

    for bad in
        ["{}", "not json", r#"{"user_id": "x"}"#, r#"{"user_id": "00000000-0000-0000-0000-000000000000", "name": "x"}"#]
    {
        let (status, ct, _) = call(&router, "/internal/projects/personal-data/export", bad).await;
        assert!(status.is_client_error(), "{bad}: {status}");
        assert_eq!(ct, "application/problem+json", "{bad}");
    }
}

async fn erase_deletes_the_users_comments_everywhere(b: &Backend) {
    let svc = service(b);
    let (alice, bob) = (user(), user());
    let say = |body: &str| api::projects::CreateComment { body: body.into() };
    // In Bob's project (kept): Alice's comment goes, Bob's stays.
    let bobs = project(&svc, bob, "Bob's").await;
    b.add_member(bobs, alice.user_id, ProjectRole::Editor).await;
    let t = task(&svc, bob, bobs, "Talk").await;
    let hers = svc.create_comment(alice, t, say("Alice's words")).await.unwrap_or_else(|e| panic!("{e}"));
    let his = svc.create_comment(bob, t, say("Bob's words")).await.unwrap_or_else(|e| panic!("{e}"));
    // In Alice's own project (deleted): every comment goes, Bob's too.
    let own = project(&svc, alice, "Alice's").await;
    b.add_member(own, bob.user_id, ProjectRole::Editor).await;
    let t2 = task(&svc, alice, own, "Hers").await;
    svc.create_comment(bob, t2, say("Bob in Alice's")).await.unwrap_or_else(|e| panic!("{e}"));
    let exported = export(&svc, alice).await;
    assert_eq!(column(&exported, "comments", "id"), ids(&[hers.id]), "only what she wrote");
    assert_eq!(column(&exported, "comments", "body"), ["Alice's words".to_string()].into());
    let before = b.outbox().await.len();

    // projects: hers deleted; members: her two; tasks: one deleted with the project; comments:
    // hers and Bob's in her project.
    assert_eq!(erase(&svc, alice).await, report_with_comments(1, 3, 1, 2));
    assert_eq!(b.count("comments").await, 1);
    let left = svc.list_comments(bob, t, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(left.items.iter().map(|c| c.id).collect::<Vec<_>>(), [his.id]);
    assert!(export(&svc, alice).await.tables["comments"].is_empty());
    let events = outbox_since(&b.outbox().await, before);
    let deleted: Vec<_> = events.iter().filter(|e| e.event_type == "comment.deleted").collect();
    assert_eq!(deleted.len(), 1, "{events:?}");
    assert_eq!((deleted[0].aggregate_id, deleted[0].actor_id), (hers.id, None));
    assert_eq!(deleted[0].data, json!({ "comment_id": hers.id, "task_id": t, "project_id": bobs }));
    assert!(events.iter().all(|e| !e.data.to_string().contains("Alice's words")), "no body in erasure events");
    assert_eq!(erase(&svc, alice).await, report_with_comments(0, 0, 0, 0));
}
