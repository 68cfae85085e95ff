//! The use cases over real stores: who may see and change what (members, non-members, guests,
//! admins), validation, cursors, and the outbox waker.

use std::sync::Arc;

use api::ApiError;
use api::projects::{CreateProject, CreateTask, Priority, ProjectRole, TaskStatus};
use api::users::Role;
use futures::FutureExt as _;
use platform::clock::SystemClock;
use platform::ids::new_id;
use projects::ProjectsService;
use projects::service::{Actor, PageRequest, TaskFilter, TaskListQuery};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    creator_owns_the_project,
    guests_cannot_create_projects,
    guest_members_can_read_but_not_write,
    viewers_cannot_create_tasks_but_editors_can,
    non_members_get_not_found_for_the_project_and_its_tasks,
    admins_see_and_write_everything,
    invalid_input_names_every_bad_field,
    project_cursor_walks_all_pages,
    task_defaults_and_cursor_pages,
    bad_cursors_and_limits_are_invalid,
    committed_writes_wake_the_outbox_relay,
);

fn service(b: &Backend) -> ProjectsService {
    ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None)
}

fn user() -> Actor {
    Actor { user_id: new_id(), role: Role::User }
}

fn guest() -> Actor {
    Actor { user_id: new_id(), role: Role::Guest }
}

fn admin() -> Actor {
    Actor { user_id: new_id(), role: Role::Admin }
}

fn new_project(name: &str) -> CreateProject {
    CreateProject { name: name.into(), description: String::new() }
}

fn new_task(title: &str) -> CreateTask {
    CreateTask { title: title.into(), description: String::new(), status: None, priority: None, ..Default::default() }
}

async fn project(svc: &ProjectsService, owner: Actor, name: &str) -> Uuid {
    svc.create_project(owner, new_project(name)).await.unwrap_or_else(|e| panic!("create project: {e}")).id
}

async fn creator_owns_the_project(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let p = svc
        .create_project(alice, CreateProject { name: " Apollo ".into(), description: "Moon".into() })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.name.as_str(), p.description.as_str()), ("Apollo", "Moon"));
    assert_eq!(p.owner_id, alice.user_id);
    assert_eq!(p.role, ProjectRole::Owner);
    assert_eq!(svc.get_project(alice, p.id).await, Ok(p.clone()), "reads back as created");
    let listed = svc.list_projects(alice, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.items, vec![p]);
    assert_eq!(listed.next_cursor, None);
}

async fn guests_cannot_create_projects(b: &Backend) {
    let svc = service(b);
    assert_eq!(svc.create_project(guest(), new_project("Nope")).await, Err(ApiError::Forbidden));
    assert_eq!(b.count("projects").await, 0);
    assert_eq!(b.outbox().await.len(), 0);
}

async fn guest_members_can_read_but_not_write(b: &Backend) {
    let svc = service(b);
    let owner = user();
    let p = project(&svc, owner, "Shared").await;
    svc.create_task(owner, p, new_task("existing")).await.unwrap_or_else(|e| panic!("{e}"));
    let g = guest();
    // Even an editor membership does not let a guest write.
    b.add_member(p, g.user_id, ProjectRole::Editor).await;

    assert_eq!(svc.create_task(g, p, new_task("mine")).await, Err(ApiError::Forbidden));
    let seen = svc.get_project(g, p).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.role, ProjectRole::Viewer, "a guest's effective role is viewer");
    let tasks = svc.list_tasks(g, p, Default::default(), PageRequest::default()).await;
    assert_eq!(tasks.map(|t| t.items.len()), Ok(1));
    assert_eq!(b.count("tasks").await, 1);

    // A guest who is not a member learns nothing, not even that writing is forbidden.
    assert_eq!(svc.create_task(guest(), p, new_task("x")).await, Err(ApiError::NotFound));
}

async fn viewers_cannot_create_tasks_but_editors_can(b: &Backend) {
    let svc = service(b);
    let owner = user();
    let p = project(&svc, owner, "Roles").await;
    let (viewer, editor) = (user(), user());
    b.add_member(p, viewer.user_id, ProjectRole::Viewer).await;
    b.add_member(p, editor.user_id, ProjectRole::Editor).await;

    assert_eq!(svc.create_task(viewer, p, new_task("v")).await, Err(ApiError::Forbidden));
    let t = svc.create_task(editor, p, new_task("e")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.created_by, editor.user_id);
    assert_eq!(svc.get_project(viewer, p).await.map(|p| p.role), Ok(ProjectRole::Viewer));
    assert_eq!(svc.get_project(editor, p).await.map(|p| p.role), Ok(ProjectRole::Editor));
    let listed = svc.list_projects(viewer, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.items.iter().map(|p| (p.id, p.role)).collect::<Vec<_>>(), vec![(p, ProjectRole::Viewer)]);
}

async fn non_members_get_not_found_for_the_project_and_its_tasks(b: &Backend) {
    let svc = service(b);
    let owner = user();
    let p = project(&svc, owner, "Private").await;
    svc.create_task(owner, p, new_task("secret")).await.unwrap_or_else(|e| panic!("{e}"));
    let stranger = user();
    let missing = new_id();
    for id in [p, missing] {
        assert_eq!(svc.get_project(stranger, id).await, Err(ApiError::NotFound));
        let tasks = svc.list_tasks(stranger, id, Default::default(), PageRequest::default()).await;
        assert_eq!(tasks.map(|t| t.items.len()), Err(ApiError::NotFound));
        assert_eq!(svc.create_task(stranger, id, new_task("x")).await, Err(ApiError::NotFound));
    }
    let listed = svc.list_projects(stranger, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(listed.items.is_empty());
    assert_eq!(b.count("tasks").await, 1);
}

async fn admins_see_and_write_everything(b: &Backend) {
    let svc = service(b);
    let (alice, bob, root) = (user(), user(), admin());
    let pa = project(&svc, alice, "Alice").await;
    let pb = project(&svc, bob, "Bob").await;
    let mine = project(&svc, root, "Admin's").await;

    let listed = svc.list_projects(root, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        listed.items.iter().map(|p| (p.id, p.role)).collect::<Vec<_>>(),
        vec![(pa, ProjectRole::Owner), (pb, ProjectRole::Owner), (mine, ProjectRole::Owner)],
        "admins list every project, with owner authority"
    );
    assert_eq!(svc.get_project(root, pb).await.map(|p| p.owner_id), Ok(bob.user_id));
    let t = svc.create_task(root, pa, new_task("from admin")).await.unwrap_or_else(|e| panic!("{e}"));
    let tasks = svc.list_tasks(root, pa, Default::default(), PageRequest::default()).await;
    assert_eq!(tasks.map(|p| p.items), Ok(vec![t]));
    // Listing everything did not make the admin a member.
    let of_alice = svc.list_projects(alice, PageRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(of_alice.items.iter().map(|p| p.id).collect::<Vec<_>>(), vec![pa]);
}

async fn invalid_input_names_every_bad_field(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let res = svc.create_project(alice, CreateProject { name: "  ".into(), description: "x".repeat(10_001) }).await;
    let Err(ApiError::Invalid(errors)) = res else { panic!("expected invalid, got {res:?}") };
    assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["name", "description"]);

    let p = project(&svc, alice, "Valid").await;
    let res = svc
        .create_task(
            alice,
            p,
            CreateTask {
                title: "t".repeat(201),
                description: "\u{0}".into(),
                status: None,
                priority: None,
                ..Default::default()
            },
        )
        .await;
    let Err(ApiError::Invalid(errors)) = res else { panic!("expected invalid, got {res:?}") };
    assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["title", "description"]);
    assert_eq!(b.count("tasks").await, 0);
    assert_eq!(b.outbox().await.len(), 1, "only the valid project's event");
}

async fn project_cursor_walks_all_pages(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(project(&svc, alice, &format!("P{i}")).await);
        project(&svc, user(), "someone else's").await;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = svc
            .list_projects(alice, PageRequest { limit: Some(2), cursor: cursor.clone() })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        pages += 1;
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 3, "2 + 2 + 1, and no empty page at the end");
    // An exact multiple of the limit has no dangling cursor.
    let page = svc.list_projects(alice, PageRequest { limit: Some(5), cursor: None }).await;
    assert_eq!(page.map(|p| (p.items.len(), p.next_cursor)), Ok((5, None)));
}

async fn task_defaults_and_cursor_pages(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let p = project(&svc, alice, "Board").await;
    let t = svc.create_task(alice, p, new_task("  Write  ")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.title, "Write");
    assert_eq!((t.status, t.priority), (TaskStatus::Todo, Priority::Medium));
    assert_eq!((t.assignee_id, t.due_date.clone(), t.labels.clone()), (None, None, Vec::new()));
    let done = svc
        .create_task(
            alice,
            p,
            CreateTask {
                title: "Shipped".into(),
                description: "it\nworks".into(),
                status: Some(TaskStatus::Done),
                priority: Some(Priority::Urgent),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t2 = svc.create_task(alice, p, new_task("Review")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(t.position < t2.position);

    let first = svc
        .list_tasks(alice, p, Default::default(), PageRequest { limit: Some(2), cursor: None })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.items, vec![t.clone(), t2.clone()]);
    let second = svc
        .list_tasks(alice, p, Default::default(), PageRequest { limit: Some(2), cursor: first.next_cursor })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((second.items, second.next_cursor), (vec![done.clone()], None));

    let only_done = svc
        .list_tasks(
            alice,
            p,
            TaskListQuery {
                filter: TaskFilter { status: Some(TaskStatus::Done), ..Default::default() },
                ..Default::default()
            },
            PageRequest::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only_done.items, vec![done]);
}

async fn bad_cursors_and_limits_are_invalid(b: &Backend) {
    let svc = service(b);
    let alice = user();
    let p = project(&svc, alice, "Cursors").await;
    let invalid_field = |r: Result<_, ApiError>| match r {
        Err(ApiError::Invalid(e)) => e.first().map(|f| f.field.clone()),
        _ => None,
    };
    let bad = PageRequest { limit: None, cursor: Some("not a cursor".into()) };
    assert_eq!(invalid_field(svc.list_projects(alice, bad.clone()).await.map(|_| ())), Some("cursor".into()));
    let res = svc.list_tasks(alice, p, Default::default(), bad).await.map(|_| ());
    assert_eq!(invalid_field(res), Some("cursor".into()));
    let too_many = PageRequest { limit: Some(101), cursor: None };
    assert_eq!(invalid_field(svc.list_projects(alice, too_many).await.map(|_| ())), Some("limit".into()));
    // A project cursor is not a task cursor.
    project(&svc, alice, "Second").await;
    let page = svc.list_projects(alice, PageRequest { limit: Some(1), cursor: None }).await;
    let cursor = page.ok().and_then(|p| p.next_cursor);
    assert!(cursor.is_some());
    let res = svc.list_tasks(alice, p, Default::default(), PageRequest { limit: None, cursor }).await.map(|_| ());
    assert_eq!(invalid_field(res), Some("cursor".into()));
}

async fn committed_writes_wake_the_outbox_relay(b: &Backend) {
    let waker = Arc::new(Notify::new());
    let svc = ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), Some(Arc::clone(&waker)));
    // `notify_one` leaves a permit when nobody waits, and a write calls it before it returns: a
    // wake-up is there to take at once, or there was none (no window to wait through).
    let woken = || waker.notified().now_or_never().is_some();
    let alice = user();
    assert!(!woken(), "nothing written yet");
    let p = project(&svc, alice, "Wake").await;
    assert!(woken(), "creating a project wakes the relay");
    svc.create_task(alice, p, new_task("t")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(woken(), "creating a task wakes the relay");
    assert_eq!(svc.create_task(guest(), p, new_task("t")).await.map(|_| ()), Err(ApiError::NotFound));
    assert_eq!(svc.create_project(guest(), new_project("x")).await.map(|_| ()), Err(ApiError::Forbidden));
    assert!(!woken(), "refused writes do not");
}
