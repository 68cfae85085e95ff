//! The task use cases: create with every field, read, change (fields and moves between and
//! within columns), delete, and lists with filters, sorts and keyset cursors. Anyone who may see
//! the project reads its tasks; owners and editors (and admins) write them; everyone else gets
//! 404 for everything in a project they may not see.

use std::sync::{Arc, Mutex};

use api::projects::{CreateTask, Page, Priority, Task, TaskStatus, UpdateTask};
use api::users::Role;
use api::{ApiError, FieldError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::crypto::sha256;
use platform::ids::new_id;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::members::{if_match_holds, project_etag};
use super::{Actor, ChangeError, PageRequest, ProjectsService, bad_cursor, paginate, task_dto};
use crate::cache::Key;
use crate::domain::tasks::{Labels, parse_date};
use crate::domain::{Description, TaskTitle, can_write_tasks};
use crate::events;
use crate::ports::{
    NewTask, Placement, SortValue, TaskChange, TaskCursor, TaskEvent, TaskFilter, TaskOrder, TaskQuery, TaskRecord,
    TaskSort, TaskWrite,
};
use crate::rank::is_valid_rank;
use crate::store::{priority_code, priority_from_code, status_code, status_from_code};

/// The entity tag of a task's current version (the same scheme as projects').
pub fn task_etag(updated_at: OffsetDateTime) -> String {
    project_etag(updated_at)
}

/// How a task list is filtered and sorted (`GET /api/projects/{id}/tasks`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskListQuery {
    pub filter: TaskFilter,
    pub order: TaskOrder,
}

/// How often a PATCH without `If-Match` is re-applied to a task that changed meanwhile.
const ATTEMPTS: usize = 3;

fn field_error(field: &str, e: impl ToString) -> FieldError {
    FieldError::new(field, e.to_string())
}

/// The whole task as a live client needs it.
/// The fields whose values differ between two versions of a task.
fn changed_fields(old: &TaskRecord, new: &TaskRecord) -> Vec<&'static str> {
    let mut f = Vec::new();
    let checks = [
        ("title", old.title != new.title),
        ("description", old.description != new.description),
        ("status", old.status != new.status),
        ("priority", old.priority != new.priority),
        ("assignee_id", old.assignee_id != new.assignee_id),
        ("due_date", old.due_date != new.due_date),
        ("labels", old.labels != new.labels),
        ("position", old.position != new.position),
    ];
    for (name, changed) in checks {
        if changed {
            f.push(name);
        }
    }
    f
}

fn neighbour_error(field: &'static str) -> ApiError {
    let message = if field == "before_id" {
        "must be a task of the target column (right after after_id when both are given)"
    } else {
        "must be a task of the target column"
    };
    ApiError::Invalid(vec![FieldError::new(field, message)])
}

fn not_member_error() -> ApiError {
    ApiError::Invalid(vec![FieldError::new("assignee_id", "must be a member of the project who is not a guest")])
}

/// The ids of a column's tasks that a write re-ranked, as its event saw them.
#[derive(Debug, Clone, Default)]
struct Moved(Arc<Mutex<Vec<Uuid>>>);

impl Moved {
    /// Their cache keys.
    fn keys(&self) -> Vec<Key> {
        self.0.lock().map(|ids| ids.iter().copied().map(Key::Task).collect()).unwrap_or_default()
    }
}

/// `event`, noting the tasks of a rebalanced column so that their cache entries can go.
fn tracking(event: TaskEvent) -> (TaskEvent, Moved) {
    let moved = Moved::default();
    let sink = moved.clone();
    let wrapped: TaskEvent = Box::new(move |t, column| {
        if let Ok(mut ids) = sink.0.lock() {
            ids.extend(column.iter().map(|(id, _)| *id));
        }
        event(t, column)
    });
    (wrapped, moved)
}

fn refusal(w: TaskWrite) -> Result<TaskRecord, ApiError> {
    match w {
        TaskWrite::Done(t) => Ok(t),
        TaskWrite::NotMember => Err(not_member_error()),
        TaskWrite::BadNeighbour(field) => Err(neighbour_error(field)),
        TaskWrite::Stale => Err(ApiError::Conflict("the task changed meanwhile".into())),
    }
}

impl ProjectsService {
    /// Whether `assignee` may be assigned in `project`: a member, and not a global guest (asked
    /// of the users service). The store checks the membership again inside its transaction.
    async fn check_assignee(&self, project: Uuid, assignee: Uuid) -> Result<Option<FieldError>, ApiError> {
        let membership = self.projects.get_project(project, assignee).await?.member_role;
        if membership.is_none() {
            return Ok(Some(FieldError::new("assignee_id", "must be a member of the project")));
        }
        match self.users()?.get_user(assignee).await {
            Ok(u) if u.role != Role::Guest => Ok(None),
            Ok(_) => Ok(Some(FieldError::new("assignee_id", "a guest cannot be assigned tasks"))),
            Err(ApiError::NotFound) => Ok(Some(FieldError::new("assignee_id", "is not a user"))),
            Err(e) => Err(e),
        }
    }

    /// The task and the actor's effective role in its project; 404 when they may not see it.
    pub(super) async fn visible_task(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<(TaskRecord, api::projects::ProjectRole), ApiError> {
        let task = self.cache.task(id, || self.tasks.get_task(id)).await?;
        let (_, role) = self.visible_project(actor, task.project_id).await?;
        Ok((task, role))
    }

    /// `POST /api/projects/{id}/tasks`: by owners and editors; every field error in one 422.
    /// Default status `todo`, priority `medium`, placed at the end of its column.
    pub async fn create_task(&self, actor: Actor, project_id: Uuid, input: CreateTask) -> Result<Task, ApiError> {
        let (_, role) = self.visible_project(actor, project_id).await?;
        if !can_write_tasks(role) {
            return Err(ApiError::Forbidden);
        }
        let mut errors = Vec::new();
        let title = TaskTitle::parse(&input.title).map_err(|e| errors.push(field_error("title", e))).ok();
        let description =
            Description::parse(&input.description).map_err(|e| errors.push(field_error("description", e))).ok();
        let due_date = match input.due_date.as_deref().map(parse_date).transpose() {
            Ok(d) => d,
            Err(e) => {
                errors.push(field_error("due_date", e));
                None
            }
        };
        let labels = Labels::parse(&input.labels).map_err(|e| errors.push(field_error("labels", e))).ok();
        if input.before_id.is_some() && input.before_id == input.after_id {
            errors.push(FieldError::new("before_id", "must differ from after_id"));
        }
        if let Some(a) = input.assignee_id
            && let Some(e) = self.check_assignee(project_id, a).await?
        {
            errors.push(e);
        }
        let (Some(title), Some(description), Some(labels), true) = (title, description, labels, errors.is_empty())
        else {
            return Err(ApiError::Invalid(errors));
        };
        let now = self.now();
        let task = NewTask {
            id: new_id(),
            project_id,
            title,
            description,
            status: input.status.unwrap_or(TaskStatus::Todo),
            priority: input.priority.unwrap_or(Priority::Medium),
            assignee_id: input.assignee_id,
            due_date,
            labels,
            placement: Placement { before: input.before_id, after: input.after_id },
            created_by: actor.user_id,
            created_at: now,
        };
        let actor_id = actor.user_id;
        let (event, moved) = tracking(Box::new(move |t, column| events::task_created(actor_id, t, column)));
        let record = refusal(self.tasks.create_task(&task, event).await?)?;
        self.cache.invalidate(&moved.keys()).await;
        self.written();
        Ok(task_dto(record))
    }

    /// `GET /api/tasks/{id}`: for anyone who may see its project.
    pub async fn get_task(&self, actor: Actor, id: Uuid) -> Result<Task, ApiError> {
        Ok(task_dto(self.visible_task(actor, id).await?.0))
    }

    /// `PATCH /api/tasks/{id}`: by owners and editors. Absent fields stay; `assignee_id` and
    /// `due_date` may be cleared with `null`; `status` and/or `before_id`/`after_id` move the
    /// task. With `If-Match` a stale version is 412; without, the change is re-applied to the
    /// newest version (a few times, then 409).
    pub async fn update_task(
        &self,
        actor: Actor,
        id: Uuid,
        input: UpdateTask,
        if_match: Option<&str>,
    ) -> Result<Task, ChangeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (current, role) = self.visible_task(actor, id).await?;
            if !can_write_tasks(role) {
                return Err(ApiError::Forbidden.into());
            }
            if !if_match_holds(if_match, &task_etag(current.updated_at)) {
                return Err(ChangeError::PreconditionFailed);
            }
            let Some(change) = self.task_change(&current, &input).await? else {
                return Ok(task_dto(current));
            };
            let (actor_id, old) = (actor.user_id, current.clone());
            let (event, moved) = tracking(Box::new(move |t, column| {
                events::task_updated(actor_id, t, &changed_fields(&old, t), column)
            }));
            let written = self.tasks.update_task(&change, event).await?;
            // Written or stale, the entry read is outdated (a stale one may have come from the
            // cache: the next attempt reads afresh); so are the rows of a rebalanced column.
            let mut keys = moved.keys();
            keys.push(Key::Task(id));
            self.cache.invalidate(&keys).await;
            match written {
                TaskWrite::Stale if if_match.is_some() => return Err(ChangeError::PreconditionFailed),
                TaskWrite::Stale if attempt < ATTEMPTS => continue,
                other => {
                    let record = refusal(other)?;
                    self.written();
                    return Ok(task_dto(record));
                }
            }
        }
    }

    /// The write `input` asks of `current`, every field error in one 422; `None` when it changes
    /// nothing.
    async fn task_change(&self, current: &TaskRecord, input: &UpdateTask) -> Result<Option<TaskChange>, ApiError> {
        let mut errors = Vec::new();
        let mut title = current.title.clone();
        if let Some(raw) = &input.title {
            match TaskTitle::parse(raw) {
                Ok(t) => t.as_str().clone_into(&mut title),
                Err(e) => errors.push(field_error("title", e)),
            }
        }
        let mut description = current.description.clone();
        if let Some(raw) = &input.description {
            match Description::parse(raw) {
                Ok(d) => d.as_str().clone_into(&mut description),
                Err(e) => errors.push(field_error("description", e)),
            }
        }
        let mut due_date = current.due_date;
        if let Some(raw) = &input.due_date {
            match raw.as_deref().map(parse_date).transpose() {
                Ok(d) => due_date = d,
                Err(e) => errors.push(field_error("due_date", e)),
            }
        }
        let mut labels = current.labels.clone();
        if let Some(raw) = &input.labels {
            match Labels::parse(raw) {
                Ok(l) => labels = l.into_vec(),
                Err(e) => errors.push(field_error("labels", e)),
            }
        }
        let placement = (input.before_id.is_some() || input.after_id.is_some())
            .then_some(Placement { before: input.before_id, after: input.after_id });
        if [input.before_id, input.after_id].contains(&Some(current.id)) {
            let field = if input.before_id == Some(current.id) { "before_id" } else { "after_id" };
            errors.push(FieldError::new(field, "must name another task"));
        } else if input.before_id.is_some() && input.before_id == input.after_id {
            errors.push(FieldError::new("before_id", "must differ from after_id"));
        }
        let assignee_id = input.assignee_id.unwrap_or(current.assignee_id);
        let check_assignee = assignee_id != current.assignee_id && assignee_id.is_some();
        if check_assignee
            && let Some(a) = assignee_id
            && let Some(e) = self.check_assignee(current.project_id, a).await?
        {
            errors.push(e);
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let change = TaskChange {
            id: current.id,
            project_id: current.project_id,
            title,
            description,
            status: input.status.unwrap_or(current.status),
            priority: input.priority.unwrap_or(current.priority),
            assignee_id,
            due_date,
            labels,
            placement,
            check_assignee,
            read_at: current.updated_at,
            updated_at: self.now(),
        };
        let unchanged = change.placement.is_none()
            && change.title == current.title
            && change.description == current.description
            && change.status == current.status
            && change.priority == current.priority
            && change.assignee_id == current.assignee_id
            && change.due_date == current.due_date
            && change.labels == current.labels;
        Ok((!unchanged).then_some(change))
    }

    /// `DELETE /api/tasks/{id}`: by owners and editors.
    pub async fn delete_task(&self, actor: Actor, id: Uuid, if_match: Option<&str>) -> Result<(), ChangeError> {
        let (task, role) = self.visible_task(actor, id).await?;
        if !can_write_tasks(role) {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &task_etag(task.updated_at)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let now = self.now();
        let event = events::task_deleted(actor.user_id, &task, now);
        let deleted = self.tasks.delete_task(id, task.updated_at, &event).await?;
        self.cache.invalidate(&[Key::Task(id)]).await;
        if !deleted {
            return Err(if if_match.is_some() {
                ChangeError::PreconditionFailed
            } else {
                ApiError::Conflict("the task changed meanwhile; read it again and retry".into()).into()
            });
        }
        self.written();
        Ok(())
    }

    /// `GET /api/projects/{id}/tasks`: a page of the project's tasks for its members and admins.
    pub async fn list_tasks(
        &self,
        actor: Actor,
        project_id: Uuid,
        list: TaskListQuery,
        page: PageRequest,
    ) -> Result<Page<Task>, ApiError> {
        let limit = page.limit()?;
        let fingerprint = fingerprint(&list);
        let after = page.cursor.as_deref().map(|c| decode_cursor(c, &list, &fingerprint)).transpose()?;
        self.visible_project(actor, project_id).await?;
        let TaskListQuery { filter, order } = list;
        let query = TaskQuery { project_id, filter, order, after, limit: limit + 1 };
        let rows = self.tasks.list_tasks(&query).await?;
        Ok(paginate(rows, limit, |t| encode_cursor(t, order.sort, &fingerprint), task_dto))
    }
}

/// A short digest of the sort and filters a cursor belongs to: a cursor of another list is 422.
pub(crate) fn fingerprint(list: &TaskListQuery) -> String {
    let f = &list.filter;
    let text = format!(
        "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        list.order.sort,
        list.order.descending,
        f.status,
        f.assignee_id,
        f.priority,
        f.label,
        f.due_before,
        f.due_after,
        f.q
    );
    URL_SAFE_NO_PAD.encode(&sha256(text.as_bytes())[..9])
}

fn sort_name(s: TaskSort) -> &'static str {
    match s {
        TaskSort::Position => "position",
        TaskSort::DueDate => "due_date",
        TaskSort::Priority => "priority",
        TaskSort::CreatedAt => "created_at",
        TaskSort::UpdatedAt => "updated_at",
    }
}

/// A task list's cursor, base64url of `<fingerprint> <sort> <id> <key…>`: the last task's sort
/// key and id (the tiebreaker), and what list it belongs to.
fn encode_cursor(t: &TaskRecord, sort: TaskSort, fingerprint: &str) -> String {
    let key = match sort {
        TaskSort::Position => format!("{} {}", status_code(t.status), t.position),
        TaskSort::DueDate => t.due_date.map_or_else(|| "-".to_string(), |d| d.to_string()),
        TaskSort::Priority => priority_code(t.priority).to_string(),
        TaskSort::CreatedAt => (t.created_at.unix_timestamp_nanos()).to_string(),
        TaskSort::UpdatedAt => (t.updated_at.unix_timestamp_nanos()).to_string(),
    };
    URL_SAFE_NO_PAD.encode(format!("{fingerprint} {} {} {key}", sort_name(sort), t.id.simple()))
}

pub(crate) fn decode_cursor(s: &str, list: &TaskListQuery, fingerprint: &str) -> Result<TaskCursor, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
    let mut parts = text.split(' ');
    let (Some(fp), Some(sort), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_cursor());
    };
    if fp != fingerprint || sort != sort_name(list.order.sort) {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "cursor",
            "belongs to a list with another sort or other filters",
        )]));
    }
    let id = Uuid::try_parse(id).map_err(|_| bad_cursor())?;
    let key: Vec<&str> = parts.collect();
    let time = |k: &str| {
        k.parse::<i128>()
            .ok()
            .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
            .map(SortValue::Time)
            .ok_or_else(bad_cursor)
    };
    let value = match (list.order.sort, key.as_slice()) {
        (TaskSort::Position, [code, rank]) if is_valid_rank(rank) => {
            let status = code.parse().ok().and_then(status_from_code).ok_or_else(bad_cursor)?;
            SortValue::Position(status, (*rank).to_string())
        }
        (TaskSort::DueDate, ["-"]) => SortValue::DueDate(None),
        (TaskSort::DueDate, [d]) => SortValue::DueDate(Some(parse_date(d).map_err(|_| bad_cursor())?)),
        (TaskSort::Priority, [p]) => {
            SortValue::Priority(p.parse().ok().and_then(priority_from_code).ok_or_else(bad_cursor)?)
        }
        (TaskSort::CreatedAt | TaskSort::UpdatedAt, [t]) => time(t)?,
        _ => return Err(bad_cursor()),
    };
    Ok(TaskCursor { value, id })
}

/// The due date of a list filter, 422 naming the parameter when it is not `YYYY-MM-DD`.
pub fn filter_date(field: &str, raw: &str) -> Result<Date, FieldError> {
    parse_date(raw).map_err(|e| field_error(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TaskRecord {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1_234_567);
        TaskRecord {
            id: new_id(),
            project_id: new_id(),
            title: "t".into(),
            description: String::new(),
            status: TaskStatus::InProgress,
            priority: Priority::High,
            assignee_id: None,
            due_date: None,
            labels: vec![],
            position: "i001".into(),
            created_by: new_id(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn cursors_round_trip_for_every_sort() {
        let t = record();
        for sort in
            [TaskSort::Position, TaskSort::DueDate, TaskSort::Priority, TaskSort::CreatedAt, TaskSort::UpdatedAt]
        {
            let list = TaskListQuery { order: TaskOrder { sort, descending: true }, ..Default::default() };
            let fp = fingerprint(&list);
            let cursor = decode_cursor(&encode_cursor(&t, sort, &fp), &list, &fp);
            let cursor = cursor.unwrap_or_else(|e| panic!("{sort:?}: {e:?}"));
            assert_eq!(cursor.id, t.id);
        }
    }

    #[test]
    fn a_cursor_of_another_list_is_refused() {
        let t = record();
        let by_priority =
            TaskListQuery { order: TaskOrder { sort: TaskSort::Priority, descending: false }, ..Default::default() };
        let c = encode_cursor(&t, TaskSort::Priority, &fingerprint(&by_priority));
        let mut descending = by_priority.clone();
        descending.order.descending = true;
        let mut filtered = by_priority.clone();
        filtered.filter.q = Some("x".into());
        for other in [descending, filtered, TaskListQuery::default()] {
            assert!(matches!(decode_cursor(&c, &other, &fingerprint(&other)), Err(ApiError::Invalid(_))));
        }
        for junk in ["", "!!", "AAAA"] {
            assert!(decode_cursor(junk, &by_priority, &fingerprint(&by_priority)).is_err());
        }
    }

    #[test]
    fn changed_fields_name_what_differs() {
        let a = record();
        let mut b = a.clone();
        b.title = "u".into();
        b.position = "j".into();
        b.updated_at += time::Duration::seconds(1);
        assert_eq!(changed_fields(&a, &b), vec!["title", "position"]);
    }
}
