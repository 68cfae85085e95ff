//! Tasks over real stores: every field and bound on create, PATCH (absent vs null), moves within
//! and between columns, the rare rebalance, ETag / If-Match, delete, events, every filter and
//! sort, keyset pages under concurrent inserts and deletes, and a constant statement count.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use api::ApiError;
use api::projects::{AddMember, CreateProject, CreateTask, Priority, ProjectRole, Task, TaskStatus, UpdateTask};
use api::users::{Role, UserStatus};
use platform::clock::SystemClock;
use platform::ids::new_id;
use projects::ProjectsService;
use projects::rank::MAX_LEN;
use projects::service::{Actor, ChangeError, PageRequest, TaskFilter, TaskListQuery, TaskOrder, TaskSort, task_etag};
use serde_json::json;
use uuid::Uuid;

use crate::Backend;
use crate::members::Directory;

crate::backend_suite!(
    create_with_every_field,
    create_collects_every_field_error,
    create_places_before_or_after_a_neighbour,
    read_is_for_those_who_see_the_project,
    patch_leaves_absent_fields_and_clears_nulls,
    only_owners_editors_and_admins_write,
    moves_within_and_between_columns,
    bad_neighbours_are_invalid,
    repeated_moves_into_one_gap_rebalance_the_column,
    if_match_guards_patch_and_delete,
    a_stale_concurrent_write_loses,
    delete_removes_the_task_with_an_event,
    every_filter,
    every_sort_both_directions_with_ties,
    pages_stay_exact_under_concurrent_inserts_and_deletes,
    a_cursor_belongs_to_its_list,
    a_list_runs_a_constant_number_of_statements,
);

struct World {
    svc: ProjectsService,
    users: Arc<Directory>,
    owner: Actor,
    editor: Actor,
    viewer: Actor,
    p: Uuid,
}

async fn world(b: &Backend) -> World {
    let svc = ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None);
    let users = Arc::new(Directory::default());
    svc.connect_users(users.clone());
    let owner = users.add(Role::User, UserStatus::Active);
    let editor = users.add(Role::User, UserStatus::Active);
    let viewer = users.add(Role::User, UserStatus::Active);
    let p =
        svc.create_project(owner, CreateProject { name: "Board".into(), description: String::new() }).await.unwrap();
    let p = p.id;
    svc.add_member(owner, p, AddMember { user_id: editor.user_id, role: ProjectRole::Editor }).await.unwrap();
    svc.add_member(owner, p, AddMember { user_id: viewer.user_id, role: ProjectRole::Viewer }).await.unwrap();
    World { svc, users, owner, editor, viewer, p }
}

fn titled(title: &str) -> CreateTask {
    CreateTask { title: title.into(), ..Default::default() }
}

impl World {
    async fn task(&self, input: CreateTask) -> Task {
        self.svc.create_task(self.owner, self.p, input).await.unwrap()
    }

    async fn patch(&self, id: Uuid, input: UpdateTask) -> Result<Task, ChangeError> {
        self.svc.update_task(self.owner, id, input, None).await
    }

    async fn list(&self, list: TaskListQuery) -> Vec<Task> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = PageRequest { limit: Some(100), cursor };
            let page = self.svc.list_tasks(self.owner, self.p, list.clone(), page).await.unwrap();
            out.extend(page.items);
            let Some(next) = page.next_cursor else { return out };
            cursor = Some(next);
        }
    }

    /// The board: (status, title) in list order.
    async fn board(&self) -> Vec<(TaskStatus, String)> {
        self.list(TaskListQuery::default()).await.into_iter().map(|t| (t.status, t.title)).collect()
    }

    async fn titles(&self, list: TaskListQuery) -> Vec<String> {
        self.list(list).await.into_iter().map(|t| t.title).collect()
    }
}

fn fields(e: ApiError) -> Vec<String> {
    match e {
        ApiError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

fn change_fields(e: ChangeError) -> Vec<String> {
    match e {
        ChangeError::Api(e) => fields(e),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

fn sorted(sort: TaskSort, descending: bool) -> TaskListQuery {
    TaskListQuery { order: TaskOrder { sort, descending }, ..Default::default() }
}

fn filtered(filter: TaskFilter) -> TaskListQuery {
    TaskListQuery { filter, ..Default::default() }
}

async fn create_with_every_field(b: &Backend) {
    let w = world(b).await;
    let input = CreateTask {
        title: "  Plant  ".into(),
        description: "# Beds\n\n- tomatoes".into(),
        status: Some(TaskStatus::InProgress),
        priority: Some(Priority::Urgent),
        assignee_id: Some(w.editor.user_id),
        due_date: Some("2030-04-01".into()),
        labels: vec![" garden ".into(), "spring".into(), "garden".into()],
        ..Default::default()
    };
    let t = w.svc.create_task(w.editor, w.p, input).await.unwrap();
    assert_eq!((t.title.as_str(), t.description.as_str()), ("Plant", "# Beds\n\n- tomatoes"));
    assert_eq!((t.status, t.priority), (TaskStatus::InProgress, Priority::Urgent));
    assert_eq!(t.assignee_id, Some(w.editor.user_id));
    assert_eq!(t.due_date.as_deref(), Some("2030-04-01"));
    assert_eq!(t.labels, vec!["garden".to_string(), "spring".to_string()]);
    assert_eq!((t.project_id, t.created_by), (w.p, w.editor.user_id));
    assert_eq!(w.svc.get_task(w.viewer, t.id).await.unwrap(), t, "reads back as created");
    let event = b.outbox().await.into_iter().find(|e| e.event_type == "task.created").unwrap();
    assert_eq!(event.aggregate_id, t.id);
    assert_eq!(event.actor_id, Some(w.editor.user_id));
    let shown = json!({
        "id": t.id, "project_id": w.p, "status": t.status, "priority": t.priority, "assignee_id": t.assignee_id,
        "position": t.position, "created_by": t.created_by, "updated_at": serde_json::to_value(&t).unwrap()["updated_at"],
    });
    let data = json!({ "project_id": w.p, "task_id": t.id, "task": shown });
    assert_eq!(event.data, data, "the task without its text (title, description, labels, due date)");
    // The bounds: 200-character titles, 10,000-character descriptions, 20 labels of 50.
    let labels: Vec<String> = (0..20).map(|i| format!("{i:0>50}")).collect();
    let max = CreateTask { title: "t".repeat(200), description: "d".repeat(10_000), labels, ..Default::default() };
    assert_eq!(w.task(max).await.labels.len(), 20);
}

async fn create_collects_every_field_error(b: &Backend) {
    let w = world(b).await;
    let stranger = w.users.add(Role::User, UserStatus::Active);
    let input = CreateTask {
        title: "t".repeat(201),
        description: "a\u{0}b".into(),
        due_date: Some("2030-02-30".into()),
        labels: (0..21).map(|i| i.to_string()).collect(),
        assignee_id: Some(stranger.user_id),
        ..Default::default()
    };
    let e = w.svc.create_task(w.owner, w.p, input).await.unwrap_err();
    assert_eq!(fields(e), ["title", "description", "due_date", "labels", "assignee_id"]);
    // A guest, even a member, is never an assignee; nor is someone without an account.
    let guest = w.users.add(Role::Guest, UserStatus::Active);
    w.svc.add_member(w.owner, w.p, AddMember { user_id: guest.user_id, role: ProjectRole::Viewer }).await.unwrap();
    for who in [guest.user_id, new_id()] {
        let input = CreateTask { assignee_id: Some(who), ..titled("x") };
        assert_eq!(fields(w.svc.create_task(w.owner, w.p, input).await.unwrap_err()), ["assignee_id"]);
    }
    for labels in [vec![" ".to_string()], vec!["x".repeat(51)], vec!["a\nb".to_string()]] {
        let input = CreateTask { labels, ..titled("x") };
        assert_eq!(fields(w.svc.create_task(w.owner, w.p, input).await.unwrap_err()), ["labels"]);
    }
    assert_eq!(b.count("tasks").await, 0, "nothing half-written");
}

async fn create_places_before_or_after_a_neighbour(b: &Backend) {
    let w = world(b).await;
    let a = w.task(titled("a")).await;
    let c = w.task(titled("c")).await;
    w.task(CreateTask { after_id: Some(a.id), ..titled("b") }).await;
    w.task(CreateTask { before_id: Some(a.id), ..titled("0") }).await;
    w.task(CreateTask { after_id: Some(c.id), ..titled("d") }).await;
    let done = w.task(CreateTask { status: Some(TaskStatus::Done), ..titled("z") }).await;
    let titles: Vec<String> = w.board().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["0", "a", "b", "c", "d", "z"]);
    // A neighbour of another column is refused.
    let e = w.svc.create_task(w.owner, w.p, CreateTask { before_id: Some(done.id), ..titled("x") }).await;
    assert_eq!(fields(e.unwrap_err()), ["before_id"]);
}

async fn read_is_for_those_who_see_the_project(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("secret")).await;
    assert_eq!(w.svc.get_task(w.viewer, t.id).await.unwrap().id, t.id);
    let stranger = w.users.add(Role::User, UserStatus::Active);
    assert_eq!(w.svc.get_task(stranger, t.id).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(w.svc.get_task(w.owner, new_id()).await.unwrap_err(), ApiError::NotFound);
    let admin = Actor { user_id: new_id(), role: Role::Admin };
    assert_eq!(w.svc.get_task(admin, t.id).await.unwrap().id, t.id);
    // Writes by strangers are 404 too, never 403.
    let e = w.svc.update_task(stranger, t.id, UpdateTask::default(), None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::NotFound));
    assert_eq!(w.svc.delete_task(stranger, t.id, None).await.unwrap_err(), ChangeError::Api(ApiError::NotFound));
}

async fn patch_leaves_absent_fields_and_clears_nulls(b: &Backend) {
    let w = world(b).await;
    let input = CreateTask {
        assignee_id: Some(w.editor.user_id),
        due_date: Some("2030-01-01".into()),
        labels: vec!["x".into()],
        ..titled("one")
    };
    let t = w.task(input).await;
    let renamed = w.patch(t.id, UpdateTask { title: Some("two".into()), ..Default::default() }).await.unwrap();
    assert_eq!(renamed.title, "two");
    assert_eq!((renamed.assignee_id, renamed.due_date.as_deref()), (Some(w.editor.user_id), Some("2030-01-01")));
    assert_eq!((renamed.labels.clone(), renamed.position.clone()), (t.labels.clone(), t.position.clone()));
    assert!(renamed.updated_at > t.updated_at);
    let cleared = UpdateTask { assignee_id: Some(None), due_date: Some(None), ..Default::default() };
    let cleared = w.patch(t.id, cleared).await.unwrap();
    assert_eq!((cleared.assignee_id, cleared.due_date), (None, None));
    assert_eq!(cleared.title, "two");
    let set = UpdateTask {
        description: Some("more".into()),
        priority: Some(Priority::Low),
        labels: Some(vec!["b".into(), "a".into(), "b".into()]),
        due_date: Some(Some("2031-12-31".into())),
        assignee_id: Some(Some(w.owner.user_id)),
        ..Default::default()
    };
    let set = w.patch(t.id, set).await.unwrap();
    assert_eq!((set.description.as_str(), set.priority), ("more", Priority::Low));
    assert_eq!(set.labels, ["b", "a"]);
    assert_eq!((set.due_date.as_deref(), set.assignee_id), (Some("2031-12-31"), Some(w.owner.user_id)));
    // Nothing to change: no write, no event.
    let before = b.outbox().await.len();
    let same = w.patch(t.id, UpdateTask { title: Some(" two ".into()), ..Default::default() }).await.unwrap();
    assert_eq!(same, set);
    assert_eq!(b.outbox().await.len(), before);
    // Every bad field at once; nothing written.
    let bad = UpdateTask {
        title: Some(String::new()),
        due_date: Some(Some("tomorrow".into())),
        labels: Some(vec![String::new()]),
        assignee_id: Some(Some(new_id())),
        ..Default::default()
    };
    assert_eq!(change_fields(w.patch(t.id, bad).await.unwrap_err()), ["title", "due_date", "labels", "assignee_id"]);
    assert_eq!(w.svc.get_task(w.owner, t.id).await.unwrap(), set);
    // The events name the fields that changed and carry the task without its text.
    let updates: Vec<_> = b.outbox().await.into_iter().filter(|e| e.event_type == "task.updated").collect();
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0].data["fields"], json!(["title"]));
    assert_eq!(updates[1].data["fields"], json!(["assignee_id", "due_date"]));
    assert_eq!(updates[2].data["fields"], json!(["description", "priority", "assignee_id", "due_date", "labels"]));
    let task = &updates[2].data["task"];
    assert_eq!((&task["id"], &task["assignee_id"]), (&json!(set.id), &json!(set.assignee_id)));
    assert_eq!((&task["status"], &task["priority"]), (&json!(set.status), &json!(set.priority)));
    for text in ["title", "description", "labels", "due_date"] {
        assert!(task.get(text).is_none(), "{text} in {task}");
    }
}

async fn only_owners_editors_and_admins_write(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("t")).await;
    let rename = |s: &str| UpdateTask { title: Some(s.into()), ..Default::default() };
    let e = w.svc.update_task(w.viewer, t.id, rename("v"), None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::Forbidden));
    assert_eq!(w.svc.delete_task(w.viewer, t.id, None).await.unwrap_err(), ChangeError::Api(ApiError::Forbidden));
    let guest = w.users.add(Role::Guest, UserStatus::Active);
    w.svc.add_member(w.owner, w.p, AddMember { user_id: guest.user_id, role: ProjectRole::Viewer }).await.unwrap();
    let e = w.svc.update_task(guest, t.id, rename("g"), None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::Forbidden));
    assert_eq!(w.svc.update_task(w.editor, t.id, rename("e"), None).await.unwrap().title, "e");
    let admin = Actor { user_id: new_id(), role: Role::Admin };
    assert_eq!(w.svc.update_task(admin, t.id, rename("a"), None).await.unwrap().title, "a");
    w.svc.delete_task(w.editor, t.id, None).await.unwrap();
}

async fn moves_within_and_between_columns(b: &Backend) {
    let w = world(b).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        ids.push(w.task(titled(name)).await.id);
    }
    let (a, _, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let positions_before: Vec<String> =
        w.list(TaskListQuery::default()).await.into_iter().map(|t| t.position).collect();
    // d to the top, then c after a: only the moved task's position changes.
    w.patch(d, UpdateTask { before_id: Some(a), ..Default::default() }).await.unwrap();
    w.patch(c, UpdateTask { after_id: Some(a), ..Default::default() }).await.unwrap();
    let board: Vec<String> = w.board().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(board, ["d", "a", "c", "b"]);
    let after = w.list(TaskListQuery::default()).await;
    assert_eq!(after[1].position, positions_before[0], "a kept its rank");
    assert_eq!(after[3].position, positions_before[1], "b kept its rank");
    // A status change alone appends to the end of the new column.
    w.patch(a, UpdateTask { status: Some(TaskStatus::Done), ..Default::default() }).await.unwrap();
    w.patch(d, UpdateTask { status: Some(TaskStatus::Done), ..Default::default() }).await.unwrap();
    // A status change with a placement goes there.
    w.patch(c, UpdateTask { status: Some(TaskStatus::Done), before_id: Some(a), ..Default::default() }).await.unwrap();
    let board = w.board().await;
    let expected = [(TaskStatus::Todo, "b"), (TaskStatus::Done, "c"), (TaskStatus::Done, "a"), (TaskStatus::Done, "d")];
    assert_eq!(board, expected.map(|(s, t)| (s, t.to_string())));
    // Between two neighbours.
    w.patch(d, UpdateTask { after_id: Some(c), before_id: Some(a), ..Default::default() }).await.unwrap();
    let titles: Vec<String> = w.board().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["b", "c", "d", "a"]);
    // Moving a task to where it already is keeps its rank.
    let d_before = w.svc.get_task(w.owner, d).await.unwrap();
    let same = w.patch(d, UpdateTask { after_id: Some(c), ..Default::default() }).await.unwrap();
    assert_eq!(same.position, d_before.position);
    let moved: Vec<_> = b.outbox().await.into_iter().filter(|e| e.event_type == "task.updated").collect();
    assert_eq!(moved[0].data["fields"], json!(["position"]));
    // a went to an empty column, whose first rank is the one it had.
    assert_eq!(moved[2].data["fields"], json!(["status"]));
    assert_eq!(moved[4].data["fields"], json!(["status", "position"]));
}

async fn bad_neighbours_are_invalid(b: &Backend) {
    let w = world(b).await;
    let a = w.task(titled("a")).await;
    let b2 = w.task(titled("b")).await;
    let c = w.task(titled("c")).await;
    let d = w.task(titled("d")).await;
    let done = w.task(CreateTask { status: Some(TaskStatus::Done), ..titled("done") }).await;
    let other = w.svc.create_project(w.owner, CreateProject { name: "Other".into(), description: String::new() });
    let other = other.await.unwrap();
    let elsewhere = w.svc.create_task(w.owner, other.id, titled("elsewhere")).await.unwrap();
    let cases = [
        (UpdateTask { before_id: Some(done.id), ..Default::default() }, "before_id"),
        (UpdateTask { after_id: Some(elsewhere.id), ..Default::default() }, "after_id"),
        (UpdateTask { after_id: Some(new_id()), ..Default::default() }, "after_id"),
        (UpdateTask { before_id: Some(a.id), ..Default::default() }, "before_id"),
        (UpdateTask { status: Some(TaskStatus::Done), before_id: Some(c.id), ..Default::default() }, "before_id"),
        // For d, a and c are not neighbours (b is between them).
        (UpdateTask { after_id: Some(a.id), before_id: Some(c.id), ..Default::default() }, "before_id"),
    ];
    for (patch, field) in cases {
        let target = match (patch.before_id, patch.after_id) {
            (Some(x), _) if x == a.id => a.id,
            (Some(_), Some(_)) => d.id,
            _ => b2.id,
        };
        let e = w.patch(target, patch.clone()).await.err().unwrap_or_else(|| panic!("{patch:?} was accepted"));
        assert_eq!(change_fields(e), [field]);
    }
    let board: Vec<String> = w.board().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(board, ["a", "b", "c", "d", "done"], "nothing moved");
}

async fn repeated_moves_into_one_gap_rebalance_the_column(b: &Backend) {
    let w = world(b).await;
    let first = w.task(titled("first")).await;
    let (x, y) = (w.task(titled("x")).await, w.task(titled("y")).await);
    let last = w.task(titled("last")).await;
    // Alternately move x and y right after `first`: the gap between first and the other halves
    // every time, so ranks grow until the store rebalances the column.
    let mut longest = 0;
    for i in 0..200 {
        let moving = if i % 2 == 0 { y.id } else { x.id };
        let t = w.patch(moving, UpdateTask { after_id: Some(first.id), ..Default::default() }).await.unwrap();
        assert!(t.position.len() <= MAX_LEN, "{} is longer than {MAX_LEN}", t.position);
        longest = longest.max(t.position.len());
        let expected = if i % 2 == 0 { ["first", "y", "x", "last"] } else { ["first", "x", "y", "last"] };
        let titles: Vec<String> = w.board().await.into_iter().map(|(_, t)| t).collect();
        assert_eq!(titles, expected, "order after move {i}");
    }
    assert!(longest > 20, "ranks grew before the rebalance ({longest})");
    let events = b.outbox().await;
    let rebalanced: Vec<_> = events.iter().filter(|e| e.data.get("rebalanced").is_some()).collect();
    assert!(!rebalanced.is_empty(), "the column was rebalanced");
    let column = rebalanced[0].data["rebalanced"].as_array().unwrap();
    assert_eq!(column.len(), 4, "the event lists the whole column's new positions");
    assert!(column.iter().all(|p| p["position"].as_str().unwrap().len() <= 8));
    // The last's rank came from the rebalance, and the other column was left alone.
    let tasks = w.list(TaskListQuery::default()).await;
    assert!(tasks.iter().all(|t| t.position.len() <= MAX_LEN));
    assert_ne!(tasks[3].position, last.position);
}

async fn if_match_guards_patch_and_delete(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("t")).await;
    let old = task_etag(t.updated_at);
    let rename = |s: &str| UpdateTask { title: Some(s.into()), ..Default::default() };
    let renamed = w.svc.update_task(w.owner, t.id, rename("u"), Some(&old)).await.unwrap();
    let e = w.svc.update_task(w.owner, t.id, rename("v"), Some(&old)).await.unwrap_err();
    assert_eq!(e, ChangeError::PreconditionFailed);
    assert_eq!(w.svc.delete_task(w.owner, t.id, Some(&old)).await.unwrap_err(), ChangeError::PreconditionFailed);
    assert_eq!(w.svc.get_task(w.owner, t.id).await.unwrap().title, "u");
    let tag = task_etag(renamed.updated_at);
    assert!(w.svc.update_task(w.owner, t.id, rename("w"), Some("*")).await.is_ok());
    assert_eq!(w.svc.delete_task(w.owner, t.id, Some(&tag)).await.unwrap_err(), ChangeError::PreconditionFailed);
    let current = w.svc.get_task(w.owner, t.id).await.unwrap();
    w.svc.delete_task(w.owner, t.id, Some(&task_etag(current.updated_at))).await.unwrap();
}

async fn a_stale_concurrent_write_loses(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("t")).await;
    let tag = task_etag(t.updated_at);
    // Many writers read the same version at once: with If-Match, exactly one wins.
    let svc = Arc::new(w.svc);
    let mut handles = Vec::new();
    for i in 0..8 {
        let (svc, tag, owner) = (Arc::clone(&svc), tag.clone(), w.owner);
        handles.push(tokio::spawn(async move {
            let patch = UpdateTask { title: Some(format!("writer {i}")), ..Default::default() };
            svc.update_task(owner, t.id, patch, Some(&tag)).await
        }));
    }
    let mut wins = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(task) => wins.push(task.title),
            Err(e) => assert_eq!(e, ChangeError::PreconditionFailed),
        }
    }
    assert_eq!(wins.len(), 1, "one writer wins: {wins:?}");
    assert_eq!(svc.get_task(w.owner, t.id).await.unwrap().title, wins[0]);
    let updates = b.outbox().await.into_iter().filter(|e| e.event_type == "task.updated").count();
    assert_eq!(updates, 1);
}

async fn delete_removes_the_task_with_an_event(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("t")).await;
    let keep = w.task(titled("keep")).await;
    w.svc.delete_task(w.editor, t.id, None).await.unwrap();
    assert_eq!(w.svc.get_task(w.owner, t.id).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(w.svc.delete_task(w.owner, t.id, None).await.unwrap_err(), ChangeError::Api(ApiError::NotFound));
    assert_eq!(w.list(TaskListQuery::default()).await.into_iter().map(|t| t.id).collect::<Vec<_>>(), [keep.id]);
    let event = b.outbox().await.into_iter().find(|e| e.event_type == "task.deleted").unwrap();
    assert_eq!((event.aggregate_id, event.actor_id), (t.id, Some(w.editor.user_id)));
    assert_eq!(event.data, json!({ "task_id": t.id, "project_id": w.p, "status": "todo" }));
}

async fn every_filter(b: &Backend) {
    let w = world(b).await;
    type Spec<'a> = (&'a str, TaskStatus, Priority, Option<Uuid>, Option<&'a str>, &'a [&'a str], &'a str);
    let specs: [Spec<'_>; 5] = [
        ("Alpha", TaskStatus::Todo, Priority::Low, Some(w.editor.user_id), Some("2030-01-10"), &["bug"], "plain"),
        ("beta", TaskStatus::InProgress, Priority::High, None, Some("2030-01-20"), &["bug", "ui"], "Find the MOON"),
        ("Gamma moon", TaskStatus::Done, Priority::High, Some(w.owner.user_id), None, &[], ""),
        ("delta", TaskStatus::Todo, Priority::Urgent, Some(w.editor.user_id), Some("2030-02-01"), &["ui"], ""),
        ("50% off_x", TaskStatus::Todo, Priority::Medium, None, None, &["bugs"], ""),
    ];
    for (title, status, priority, assignee, due, labels, description) in specs {
        let input = CreateTask {
            title: title.into(),
            description: description.into(),
            status: Some(status),
            priority: Some(priority),
            assignee_id: assignee,
            due_date: due.map(str::to_string),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        };
        w.task(input).await;
    }
    let date = |s: &str| projects::service::filter_date("d", s).unwrap();
    let cases: Vec<(TaskFilter, Vec<&str>)> = vec![
        (TaskFilter { status: Some(TaskStatus::Todo), ..Default::default() }, vec!["Alpha", "delta", "50% off_x"]),
        (TaskFilter { assignee_id: Some(w.editor.user_id), ..Default::default() }, vec!["Alpha", "delta"]),
        (TaskFilter { priority: Some(Priority::High), ..Default::default() }, vec!["beta", "Gamma moon"]),
        (TaskFilter { label: Some("bug".into()), ..Default::default() }, vec!["Alpha", "beta"]),
        (TaskFilter { label: Some("ui".into()), ..Default::default() }, vec!["delta", "beta"]),
        (TaskFilter { due_before: Some(date("2030-01-20")), ..Default::default() }, vec!["Alpha"]),
        (TaskFilter { due_after: Some(date("2030-01-10")), ..Default::default() }, vec!["delta", "beta"]),
        (
            TaskFilter {
                due_after: Some(date("2030-01-01")),
                due_before: Some(date("2030-02-01")),
                ..Default::default()
            },
            vec!["Alpha", "beta"],
        ),
        (TaskFilter { q: Some("moon".into()), ..Default::default() }, vec!["beta", "Gamma moon"]),
        (TaskFilter { q: Some("ALPHA".into()), ..Default::default() }, vec!["Alpha"]),
        // Wildcards of LIKE are plain characters.
        (TaskFilter { q: Some("%".into()), ..Default::default() }, vec!["50% off_x"]),
        (TaskFilter { q: Some("_".into()), ..Default::default() }, vec!["50% off_x"]),
        (TaskFilter { status: Some(TaskStatus::Todo), label: Some("ui".into()), ..Default::default() }, vec!["delta"]),
        (TaskFilter { label: Some("nope".into()), ..Default::default() }, vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(w.titles(filtered(filter.clone())).await, expected, "{filter:?}");
    }
}

async fn every_sort_both_directions_with_ties(b: &Backend) {
    let w = world(b).await;
    let specs = [
        ("a", Priority::High, Some("2030-03-01")),
        ("b", Priority::Low, None),
        ("c", Priority::High, Some("2030-01-01")),
        ("d", Priority::Urgent, None),
        ("e", Priority::Low, Some("2030-03-01")),
    ];
    for (title, priority, due) in specs {
        let input = CreateTask { priority: Some(priority), due_date: due.map(str::to_string), ..titled(title) };
        w.task(input).await;
    }
    // Ties go by id (creation order here) in the direction of the sort.
    let cases = [
        (TaskSort::Priority, false, ["b", "e", "a", "c", "d"]),
        (TaskSort::Priority, true, ["d", "c", "a", "e", "b"]),
        // Tasks without a due date come last both ways.
        (TaskSort::DueDate, false, ["c", "a", "e", "b", "d"]),
        (TaskSort::DueDate, true, ["e", "a", "c", "d", "b"]),
        (TaskSort::CreatedAt, false, ["a", "b", "c", "d", "e"]),
        (TaskSort::CreatedAt, true, ["e", "d", "c", "b", "a"]),
        (TaskSort::Position, false, ["a", "b", "c", "d", "e"]),
        (TaskSort::Position, true, ["e", "d", "c", "b", "a"]),
    ];
    for (sort, desc, expected) in cases {
        for limit in [1, 2, 100] {
            let mut titles = Vec::new();
            let mut cursor = None;
            loop {
                let page = PageRequest { limit: Some(limit), cursor };
                let page = w.svc.list_tasks(w.owner, w.p, sorted(sort, desc), page).await.unwrap();
                titles.extend(page.items.into_iter().map(|t| t.title));
                let Some(next) = page.next_cursor else { break };
                cursor = Some(next);
            }
            assert_eq!(titles, expected, "{sort:?} desc={desc} limit={limit}");
        }
    }
    // updated_at follows the latest change.
    let all = w.list(TaskListQuery::default()).await;
    w.patch(all[1].id, UpdateTask { title: Some("b2".into()), ..Default::default() }).await.unwrap();
    w.patch(all[0].id, UpdateTask { title: Some("a2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(w.titles(sorted(TaskSort::UpdatedAt, true)).await, ["a2", "b2", "e", "d", "c"]);
    assert_eq!(w.titles(sorted(TaskSort::UpdatedAt, false)).await, ["c", "d", "e", "b2", "a2"]);
}

async fn pages_stay_exact_under_concurrent_inserts_and_deletes(b: &Backend) {
    let w = world(b).await;
    let statuses = [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Done];
    let priorities = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];
    let make = |i: usize, tag: &str| CreateTask {
        status: Some(statuses[i % 3]),
        priority: Some(priorities[i % 4]),
        due_date: (!i.is_multiple_of(3)).then(|| format!("2030-01-{:02}", 1 + i % 7)),
        ..titled(&format!("{tag}{i}"))
    };
    let mut stable = Vec::new();
    let mut doomed = Vec::new();
    for i in 0..24 {
        let t = w.task(make(i, "s")).await;
        stable.push(t.id);
        if i.is_multiple_of(4) {
            doomed.push(w.task(make(i, "d")).await.id);
        }
    }
    let stable_set: HashSet<Uuid> = stable.iter().copied().collect();
    for (sort, desc) in [
        (TaskSort::Position, false),
        (TaskSort::Position, true),
        (TaskSort::DueDate, false),
        (TaskSort::DueDate, true),
        (TaskSort::Priority, true),
        (TaskSort::CreatedAt, false),
        (TaskSort::UpdatedAt, true),
    ] {
        let list = sorted(sort, desc);
        // The order of the stable tasks before anything changes.
        let expected: Vec<Uuid> =
            w.list(list.clone()).await.into_iter().map(|t| t.id).filter(|id| stable_set.contains(id)).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut round = 0;
        loop {
            let page = PageRequest { limit: Some(4), cursor };
            let page = w.svc.list_tasks(w.owner, w.p, list.clone(), page).await.unwrap();
            seen.extend(page.items.iter().map(|t| t.id));
            // Between pages: new tasks everywhere in the order, and deletions of others (one of
            // them possibly the last row of this page, which the cursor must survive).
            round += 1;
            for k in 0..3 {
                doomed.push(w.task(make(round * 3 + k, "n")).await.id);
            }
            if let Some(victim) = page.items.last().map(|t| t.id).filter(|id| !stable_set.contains(id)) {
                w.svc.delete_task(w.owner, victim, None).await.unwrap();
                doomed.retain(|d| *d != victim);
            } else if let Some(victim) = doomed.pop() {
                w.svc.delete_task(w.owner, victim, None).await.unwrap();
            }
            let Some(next) = page.next_cursor else { break };
            cursor = Some(next);
        }
        let stable_seen: Vec<Uuid> = seen.iter().copied().filter(|id| stable_set.contains(id)).collect();
        assert_eq!(stable_seen, expected, "{sort:?} desc={desc}: every stable task once, in order");
        let unique: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{sort:?} desc={desc}: no task twice");
    }
}

async fn a_cursor_belongs_to_its_list(b: &Backend) {
    let w = world(b).await;
    for i in 0..3 {
        w.task(titled(&format!("t{i}"))).await;
    }
    let page = PageRequest { limit: Some(1), cursor: None };
    let first = w.svc.list_tasks(w.owner, w.p, sorted(TaskSort::Priority, false), page).await.unwrap();
    let cursor = first.next_cursor.unwrap();
    let others = [
        sorted(TaskSort::Priority, true),
        sorted(TaskSort::DueDate, false),
        TaskListQuery {
            filter: TaskFilter { status: Some(TaskStatus::Todo), ..Default::default() },
            order: TaskOrder { sort: TaskSort::Priority, descending: false },
        },
    ];
    for other in others {
        let page = PageRequest { limit: Some(1), cursor: Some(cursor.clone()) };
        let e = w.svc.list_tasks(w.owner, w.p, other, page).await.unwrap_err();
        assert_eq!(fields(e), ["cursor"]);
    }
    let page = PageRequest { limit: Some(1), cursor: Some(cursor) };
    assert!(w.svc.list_tasks(w.owner, w.p, sorted(TaskSort::Priority, false), page).await.is_ok());
}

async fn a_list_runs_a_constant_number_of_statements(b: &Backend) {
    let w = world(b).await;
    let t = w.task(titled("only")).await;
    let count = |list: TaskListQuery, limit: u32| {
        let svc = &w.svc;
        let (owner, p) = (w.owner, w.p);
        async move {
            let before = b.db.statements();
            let page = svc.list_tasks(owner, p, list, PageRequest { limit: Some(limit), cursor: None }).await.unwrap();
            (b.db.statements() - before, page.items.len())
        }
    };
    let (small, n) = count(TaskListQuery::default(), 1).await;
    assert_eq!(n, 1);
    assert!(small > 0, "the counter counts");
    // Many tasks, many assignees and labels: the same number of statements.
    let mut assignees = vec![w.owner.user_id, w.editor.user_id];
    for _ in 0..6 {
        let u = w.users.add(Role::User, UserStatus::Active);
        w.svc.add_member(w.owner, w.p, AddMember { user_id: u.user_id, role: ProjectRole::Editor }).await.unwrap();
        assignees.push(u.user_id);
    }
    for i in 0..40 {
        let input = CreateTask {
            assignee_id: Some(assignees[i % assignees.len()]),
            labels: vec![format!("l{i}"), format!("m{}", i % 5)],
            due_date: Some(format!("2030-02-{:02}", 1 + i % 28)),
            ..titled(&format!("t{i}"))
        };
        w.task(input).await;
    }
    let (big, n) = count(TaskListQuery::default(), 100).await;
    assert_eq!(n, 41);
    assert_eq!(big, small, "statements per list request do not grow with the page");
    let filter = TaskFilter { label: Some("m1".into()), q: Some("t".into()), ..Default::default() };
    let list = TaskListQuery { filter, order: TaskOrder { sort: TaskSort::DueDate, descending: true } };
    let (filtered, n) = count(list, 100).await;
    assert_eq!(n, 8);
    assert_eq!(filtered, small);
    // And a read of one task: as constant.
    let before = b.db.statements();
    w.svc.get_task(w.owner, t.id).await.unwrap();
    assert_eq!(b.db.statements() - before, small, "one task read, one project read");
}

/// SQLite times written before migration 0002 (fractions trimmed) are rewritten with nine
/// digits: they then sort as text, and a compare-and-set against a value read back still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_times_of_before_0002_are_normalized() {
    let t = test_support::TestSqlite::new().await;
    let platform::db::Database::Sqlite(db) = &t.db else { panic!("not SQLite") };
    t.db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    let first = platform::db::Migrations {
        service: projects::MIGRATIONS.service,
        sqlite: &projects::MIGRATIONS.sqlite[..1],
        postgres: &projects::MIGRATIONS.postgres[..1],
    };
    t.db.migrate(&first).await.unwrap();
    let (p, owner) = (new_id(), new_id());
    let (slow, fast) = (new_id(), new_id());
    db.write(move |tx| {
        let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| tx.execute(sql, p).map_err(platform::db::sqlite::map_err);
        run(
            "INSERT INTO projects (id, name, owner_id, created_at, updated_at) VALUES (?1, 'P', ?2, ?3, ?3)",
            &[&p, &owner, &"2030-01-01T00:00:01Z"],
        )?;
        run(
            "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
            &[&p, &owner, &"2030-01-01T00:00:01Z"],
        )?;
        // 01.5 s was written before 01 s as text ('.' < 'Z'); it is later in time.
        for (id, at, rank) in [(slow, "2030-01-01T00:00:01.5Z", "i"), (fast, "2030-01-01T00:00:01Z", "j")] {
            run(
                "INSERT INTO tasks (id, project_id, title, status, priority, position, created_by, created_at, \
                 updated_at) VALUES (?1, ?2, 't', 0, 1, ?3, ?4, ?5, ?5)",
                &[&id, &p, &rank, &owner, &at],
            )?;
        }
        Ok(())
    })
    .await
    .unwrap();
    t.db.migrate(&projects::MIGRATIONS).await.unwrap();
    let store = projects::store(&t.db);
    let svc = ProjectsService::new(store, Arc::new(SystemClock), None);
    let actor = Actor { user_id: owner, role: Role::User };
    let by_created = svc.list_tasks(actor, p, sorted(TaskSort::CreatedAt, false), PageRequest::default()).await;
    let ids: Vec<Uuid> = by_created.unwrap().items.into_iter().map(|t| t.id).collect();
    assert_eq!(ids, [fast, slow], "time order, not the old text order");
    let task = svc.get_task(actor, slow).await.unwrap();
    let tag = task_etag(task.updated_at);
    let patch = UpdateTask { title: Some("u".into()), ..Default::default() };
    assert_eq!(svc.update_task(actor, slow, patch, Some(&tag)).await.unwrap().title, "u");
    let renamed =
        svc.update_project(actor, p, api::projects::UpdateProject { name: Some("Q".into()), description: None }, None);
    assert_eq!(renamed.await.unwrap().name, "Q", "an old project row still matches its read-back time");
}
