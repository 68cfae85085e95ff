//! The contract of the storage ports (`ProjectStore`, `TaskStore`), written once and checked
//! against every backend: what is written reads back equal, membership scopes listings, keyset
//! pages neither repeat nor skip, tasks append to the end of their column, and every write puts
//! exactly one event in the outbox in the same transaction.

use std::collections::HashSet;
use std::sync::Arc;

use api::projects::{Priority, ProjectRole, TaskStatus};
use platform::bus::Event;
use platform::db::StoreError;
use platform::ids::new_id;
use projects::domain::tasks::Labels;
use projects::domain::{Description, ProjectName, TaskTitle};
use projects::ports::{
    NewProject, NewTask, Placement, ProjectRecord, ProjectScope, SortValue, TaskCursor, TaskEvent, TaskFilter,
    TaskOrder, TaskQuery, TaskRecord, TaskWrite,
};
use serde_json::json;
use uuid::Uuid;

use crate::{Backend, now};

crate::backend_suite!(
    create_and_get_project,
    get_unknown_project_is_not_found,
    listing_is_scoped_by_membership,
    project_pages_have_no_duplicates_or_gaps,
    tasks_append_to_the_end_of_their_column,
    task_pages_follow_columns_and_positions,
    task_on_unknown_project_is_not_found_and_writes_nothing,
    each_write_stores_exactly_one_event,
    a_failed_event_insert_rolls_back_the_project,
    a_failed_event_insert_rolls_back_the_task,
    concurrent_appends_get_distinct_ordered_positions,
);

fn new_project(owner: Uuid, name: &str) -> NewProject {
    NewProject {
        id: new_id(),
        name: ProjectName::parse(name).unwrap_or_else(|e| panic!("{name}: {e}")),
        description: Description::parse("about it").unwrap_or_else(|e| panic!("{e}")),
        owner_id: owner,
        created_at: now(),
    }
}

fn project_event(p: &NewProject) -> Event {
    Event::new(
        "project.created",
        p.id,
        Some(p.owner_id),
        p.created_at,
        json!({ "project_id": p.id, "owner_id": p.owner_id }),
    )
}

async fn create_project(b: &Backend, owner: Uuid, name: &str) -> ProjectRecord {
    let p = new_project(owner, name);
    b.store.create_project(&p, &project_event(&p)).await.unwrap_or_else(|e| panic!("create project: {e}"))
}

fn new_task(project_id: Uuid, by: Uuid, title: &str, status: TaskStatus) -> NewTask {
    NewTask {
        id: new_id(),
        project_id,
        title: TaskTitle::parse(title).unwrap_or_else(|e| panic!("{title}: {e}")),
        description: Description::default(),
        status,
        priority: Priority::High,
        assignee_id: None,
        due_date: None,
        labels: Labels::default(),
        placement: Placement::default(),
        created_by: by,
        created_at: now(),
    }
}

/// A fixed event, whatever the stored task.
fn fixed(e: &Event) -> TaskEvent {
    let e = e.clone();
    Box::new(move |_, _| e)
}

fn done(w: Result<TaskWrite, StoreError>) -> Result<TaskRecord, StoreError> {
    match w? {
        TaskWrite::Done(t) => Ok(t),
        other => Err(StoreError::Internal(format!("not written: {other:?}"))),
    }
}

/// The tasks of a project in board order, of one status if given, after a cursor.
fn page(project_id: Uuid, status: Option<TaskStatus>, after: Option<&TaskRecord>, limit: u32) -> TaskQuery {
    TaskQuery {
        project_id,
        filter: TaskFilter { status, ..TaskFilter::default() },
        order: TaskOrder::default(),
        after: after.map(|t| TaskCursor { value: SortValue::Position(t.status, t.position.clone()), id: t.id }),
        limit,
    }
}

fn task_event(t: &NewTask) -> Event {
    Event::new(
        "task.created",
        t.id,
        Some(t.created_by),
        t.created_at,
        json!({ "task_id": t.id, "project_id": t.project_id, "status": t.status }),
    )
}

async fn create_task(b: &Backend, project_id: Uuid, by: Uuid, title: &str, status: TaskStatus) -> TaskRecord {
    let t = new_task(project_id, by, title, status);
    done(b.store.create_task(&t, fixed(&task_event(&t))).await).unwrap_or_else(|e| panic!("create task: {e}"))
}

async fn all_tasks(b: &Backend, project_id: Uuid) -> Vec<TaskRecord> {
    b.store.list_tasks(&page(project_id, None, None, 1000)).await.unwrap_or_else(|e| panic!("list tasks: {e}"))
}

async fn create_and_get_project(b: &Backend) {
    let owner = new_id();
    let p = new_project(owner, "  Apollo  ");
    let created = b.store.create_project(&p, &project_event(&p)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.id, p.id);
    assert_eq!(created.name, "Apollo");
    assert_eq!(created.description, "about it");
    assert_eq!(created.owner_id, owner);
    assert_eq!(created.created_at, p.created_at);
    assert_eq!(created.updated_at, p.created_at);

    let as_owner = b.store.get_project(p.id, owner).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(as_owner.project, created, "what was written reads back equal, times included");
    assert_eq!(as_owner.member_role, Some(ProjectRole::Owner), "the owner is a member with role owner");

    let as_stranger = b.store.get_project(p.id, new_id()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(as_stranger.project, created);
    assert_eq!(as_stranger.member_role, None);
    assert_eq!(b.count("project_members").await, 1);
}

async fn get_unknown_project_is_not_found(b: &Backend) {
    create_project(b, new_id(), "Other").await;
    assert!(matches!(b.store.get_project(new_id(), new_id()).await, Err(StoreError::NotFound)));
}

async fn listing_is_scoped_by_membership(b: &Backend) {
    let (alice, bob, carol) = (new_id(), new_id(), new_id());
    let a = create_project(b, alice, "Alice's").await;
    let bp = create_project(b, bob, "Bob's").await;
    b.add_member(bp.id, alice, ProjectRole::Viewer).await;

    let ids = |v: Vec<projects::ports::ProjectView>| v.into_iter().map(|v| (v.project.id, v.member_role)).collect();
    let list = |scope| async move { b.store.list_projects(scope, None, 100).await.unwrap_or_else(|e| panic!("{e}")) };

    let of_alice: Vec<_> = ids(list(ProjectScope::MemberOf(alice)).await);
    assert_eq!(of_alice, vec![(a.id, Some(ProjectRole::Owner)), (bp.id, Some(ProjectRole::Viewer))]);
    let of_bob: Vec<_> = ids(list(ProjectScope::MemberOf(bob)).await);
    assert_eq!(of_bob, vec![(bp.id, Some(ProjectRole::Owner))], "bob does not see alice's project");
    let of_carol: Vec<_> = ids(list(ProjectScope::MemberOf(carol)).await);
    assert_eq!(of_carol, vec![], "a non-member sees nothing");

    let all_for_carol: Vec<_> = ids(list(ProjectScope::All { viewer: carol }).await);
    assert_eq!(all_for_carol, vec![(a.id, None), (bp.id, None)], "the full listing has every project");
    let all_for_bob: Vec<_> = ids(list(ProjectScope::All { viewer: bob }).await);
    assert_eq!(all_for_bob, vec![(a.id, None), (bp.id, Some(ProjectRole::Owner))], "with the viewer's roles");
}

async fn project_pages_have_no_duplicates_or_gaps(b: &Backend) {
    let (alice, bob) = (new_id(), new_id());
    let mut mine = Vec::new();
    let mut everything = Vec::new();
    for i in 0..8 {
        let p = create_project(b, alice, &format!("A{i}")).await;
        mine.push(p.id);
        everything.push(p.id);
        // Bob's projects interleave with Alice's in id order.
        everything.push(create_project(b, bob, &format!("B{i}")).await.id);
    }
    for (scope, expected) in
        [(ProjectScope::MemberOf(alice), &mine), (ProjectScope::All { viewer: alice }, &everything)]
    {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = b.store.list_projects(scope, after, 3).await.unwrap_or_else(|e| panic!("{e}"));
            assert!(page.len() <= 3);
            pages += 1;
            let Some(last) = page.last() else { break };
            after = Some(last.project.id);
            seen.extend(page.iter().map(|v| v.project.id));
        }
        assert_eq!(&seen, expected, "pages of {scope:?} in id order, no duplicate, none left out");
        assert_eq!(pages, expected.len().div_ceil(3) + 1, "the page after the last is empty");
    }
}

async fn tasks_append_to_the_end_of_their_column(b: &Backend) {
    let owner = new_id();
    let p = create_project(b, owner, "Board").await;
    let t1 = create_task(b, p.id, owner, "first", TaskStatus::Todo).await;
    let d1 = create_task(b, p.id, owner, "done first", TaskStatus::Done).await;
    let t2 = create_task(b, p.id, owner, "second", TaskStatus::Todo).await;
    let t3 = create_task(b, p.id, owner, "third", TaskStatus::Todo).await;
    let d2 = create_task(b, p.id, owner, "done second", TaskStatus::Done).await;

    assert_eq!(t1.title, "first");
    assert_eq!(t1.priority, Priority::High);
    assert_eq!(t1.labels, Vec::<String>::new());
    assert!(t1.position < t2.position && t2.position < t3.position, "todo column grows at its end");
    assert!(d1.position < d2.position, "done column grows at its end");
    assert_eq!(t1.position, d1.position, "each column starts at the same first rank");

    let listed = all_tasks(b, p.id).await;
    assert_eq!(
        listed,
        vec![t1, t2, t3, d1, d2],
        "by column (todo, in progress, done), then position; equal as written"
    );
}

async fn task_pages_follow_columns_and_positions(b: &Backend) {
    let owner = new_id();
    let p = create_project(b, owner, "Paged").await;
    let other = create_project(b, owner, "Other").await;
    let mut expected = Vec::new();
    for status in [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Done] {
        for i in 0..4 {
            expected.push(create_task(b, p.id, owner, &format!("{status:?} {i}"), status).await.id);
            create_task(b, other.id, owner, "noise", status).await;
        }
    }
    let mut seen = Vec::new();
    let mut after: Option<TaskRecord> = None;
    loop {
        let rows = b.store.list_tasks(&page(p.id, None, after.as_ref(), 5)).await.unwrap_or_else(|e| panic!("{e}"));
        let Some(last) = rows.last() else { break };
        after = Some(last.clone());
        seen.extend(rows.iter().map(|t| t.id));
    }
    assert_eq!(seen, expected, "pages cross columns without duplicates or gaps, other projects excluded");

    let in_progress = b
        .store
        .list_tasks(&page(p.id, Some(TaskStatus::InProgress), None, 100))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_progress.iter().map(|t| t.id).collect::<Vec<_>>(), expected[4..8].to_vec());
    let rest = b
        .store
        .list_tasks(&page(p.id, Some(TaskStatus::InProgress), Some(&in_progress[1]), 100))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), expected[6..8].to_vec());
}

async fn task_on_unknown_project_is_not_found_and_writes_nothing(b: &Backend) {
    let t = new_task(new_id(), new_id(), "orphan", TaskStatus::Todo);
    assert!(matches!(b.store.create_task(&t, fixed(&task_event(&t))).await, Err(StoreError::NotFound)));
    assert_eq!(b.count("tasks").await, 0);
    assert_eq!(b.outbox().await, vec![]);
}

async fn each_write_stores_exactly_one_event(b: &Backend) {
    let owner = new_id();
    let p = create_project(b, owner, "Events").await;
    let outbox = b.outbox().await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].event_type, "project.created");
    assert_eq!(outbox[0].aggregate_id, p.id);
    assert_eq!(outbox[0].actor_id, Some(owner));
    assert_eq!(outbox[0].data, json!({ "project_id": p.id, "owner_id": owner }));

    let t = create_task(b, p.id, owner, "one", TaskStatus::InProgress).await;
    let outbox = b.outbox().await;
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox[1].event_type, "task.created");
    assert_eq!(outbox[1].aggregate_id, t.id);
    assert_eq!(outbox[1].data, json!({ "task_id": t.id, "project_id": p.id, "status": "in_progress" }));
}

/// The event is inserted last: if the outbox refuses it (here: an event id used twice), the state
/// change must not be there either, which only holds if both share one transaction.
async fn a_failed_event_insert_rolls_back_the_project(b: &Backend) {
    let owner = new_id();
    let first = new_project(owner, "First");
    let event = project_event(&first);
    b.store.create_project(&first, &event).await.unwrap_or_else(|e| panic!("{e}"));
    let second = new_project(owner, "Second");
    let res = b.store.create_project(&second, &event).await;
    assert!(matches!(res, Err(StoreError::Conflict(_))), "{res:?}");
    assert!(matches!(b.store.get_project(second.id, owner).await, Err(StoreError::NotFound)));
    assert_eq!(b.count("projects").await, 1);
    assert_eq!(b.count("project_members").await, 1);
    assert_eq!(b.outbox().await.len(), 1);
}

async fn a_failed_event_insert_rolls_back_the_task(b: &Backend) {
    let owner = new_id();
    let p = create_project(b, owner, "Tasks").await;
    let first = new_task(p.id, owner, "first", TaskStatus::Todo);
    let event = task_event(&first);
    let first = done(b.store.create_task(&first, fixed(&event)).await).unwrap_or_else(|e| panic!("{e}"));
    let second = new_task(p.id, owner, "second", TaskStatus::Todo);
    let res = b.store.create_task(&second, fixed(&event)).await;
    assert!(matches!(res, Err(StoreError::Conflict(_))), "{res:?}");
    assert_eq!(all_tasks(b, p.id).await, vec![first]);
    assert_eq!(b.outbox().await.len(), 2);
}

async fn concurrent_appends_get_distinct_ordered_positions(b: &Backend) {
    let owner = new_id();
    let p = create_project(b, owner, "Busy").await;
    let store = Arc::clone(&b.store);
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let t = new_task(p.id, owner, &format!("t{i}"), TaskStatus::Todo);
                done(store.create_task(&t, fixed(&task_event(&t))).await)
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap_or_else(|e| panic!("join: {e}")).unwrap_or_else(|e| panic!("concurrent append failed: {e}"));
    }
    let tasks = all_tasks(b, p.id).await;
    assert_eq!(tasks.len(), 16);
    let positions: HashSet<_> = tasks.iter().map(|t| t.position.clone()).collect();
    assert_eq!(positions.len(), 16, "every append got its own position");
    assert_eq!(b.outbox().await.len(), 17);
}
