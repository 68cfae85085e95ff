//! Cache invalidation across instances: every process running the projects service takes every
//! instance's events and tombstones the
//! [`EntityCache`](crate::cache::EntityCache) entries each event names. The safety net for a
//! write whose own invalidation failed (a Redis blip): the writing process retries its failed
//! keys before it reads the cache again, but other processes sharing the Redis could read the old
//! entry until that retry; now they stop once the event arrives (the relay's lag, milliseconds).
//!
//! What an event names ([`keys`]): `task.updated` the task, `task.created` and `task.updated`
//! the tasks of a rebalanced column (`rebalanced`), `task.deleted` the task, `project.updated`
//! and `project.deleted` the project (a created project or task has no entry yet),
//! `member.changed` the membership and the project (its `owner_id` may have moved). Comments and
//! attachments are not cached, so their events name nothing. A removed member's tasks lose
//! their assignee in the same transaction, but `member.changed` does not list them: those task
//! entries are invalidated by the writing process only.
//!
//! A tombstone written twice is the same tombstone, so redeliveries need no processed-event
//! table. A failed tombstone joins the process's pending invalidations (retried before its next
//! cache read), so the event is acknowledged either way.
//!
//! Every instance listens as a broadcast subscriber (`EventBus::subscribe_broadcast`): each
//! tombstones through its own cache connection, so one instance's broken link to Redis does not
//! keep the entry alive, and nothing is left on the broker when an instance goes away. Broadcast
//! delivery is at most once (a listener more than 10,000 events behind loses the oldest): the
//! entries' 15-minute expiry bounds what a lost event can leave.

use std::sync::Arc;

use platform::bus::{Event, EventBus};
use platform::consumer::{HandleError, Handler};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::ProjectsService;
use crate::cache::Key;

/// The name of the listener in logs and metrics.
pub const LISTENER: &str = "projects-cache";

fn id_at(v: &Value, key: &str) -> Option<Uuid> {
    v.get(key).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
}

/// The cache entries `event` names.
pub fn keys(event: &Event) -> Vec<Key> {
    let data = &event.data;
    let kind = event.event_type.as_str();
    let mut keys = Vec::new();
    match kind {
        "task.created" | "task.updated" => {
            // A new task has no entry yet (a tombstone would only keep it out of the cache).
            if kind == "task.updated"
                && let Some(id) = data.get("task").and_then(|t| id_at(t, "id"))
            {
                keys.push(Key::Task(id));
            }
            let column = data.get("rebalanced").and_then(Value::as_array);
            keys.extend(column.into_iter().flatten().filter_map(|r| id_at(r, "id")).map(Key::Task));
        }
        "task.deleted" => keys.extend(id_at(data, "task_id").map(Key::Task)),
        "project.updated" | "project.deleted" => keys.extend(id_at(data, "project_id").map(Key::Project)),
        "member.changed" => {
            if let Some(project) = id_at(data, "project_id") {
                keys.push(Key::Project(project));
                if let Some(user) = id_at(data, "user_id") {
                    keys.push(Key::Member { project, user });
                }
            }
        }
        _ => {}
    }
    keys
}

/// The consumer: tombstones what each event names in this process's cache.
pub struct CacheInvalidation(pub Arc<ProjectsService>);

#[async_trait::async_trait]
impl Handler for CacheInvalidation {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let keys = keys(event);
        if !keys.is_empty() {
            self.0.entity_cache().invalidate(&keys).await;
        }
        Ok(())
    }
}

/// Subscribes `svc`'s cache to every instance's events, until `shutdown`.
pub async fn spawn(
    svc: Arc<ProjectsService>,
    bus: Arc<dyn EventBus>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let source = platform::consumer::Source::Broadcast(LISTENER.into());
    platform::consumer::spawn(bus, source, Arc::new(CacheInvalidation(svc)), shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, data: Value) -> Event {
        Event::new(kind, Uuid::from_u128(9), None, time::OffsetDateTime::now_utc(), data)
    }

    #[test]
    fn events_name_the_entries_they_change() {
        let (p, t, u, r) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4));
        let moved = json!({"task": {"id": t}, "fields": ["position"], "rebalanced": [{"id": r, "position": "b"}]});
        assert_eq!(keys(&event("task.updated", moved)), [Key::Task(t), Key::Task(r)]);
        assert!(keys(&event("task.created", json!({"task": {"id": t}}))).is_empty(), "nothing cached yet");
        let squeezed = json!({"task": {"id": t}, "rebalanced": [{"id": r, "position": "b"}]});
        assert_eq!(keys(&event("task.created", squeezed)), [Key::Task(r)]);
        assert_eq!(keys(&event("task.deleted", json!({"task_id": t, "project_id": p}))), [Key::Task(t)]);
        for kind in ["project.updated", "project.deleted"] {
            assert_eq!(keys(&event(kind, json!({"project_id": p}))), [Key::Project(p)]);
        }
        assert!(keys(&event("project.created", json!({"project_id": p}))).is_empty());
        let member = json!({"project_id": p, "user_id": u, "change": "removed"});
        assert_eq!(keys(&event("member.changed", member)), [Key::Project(p), Key::Member { project: p, user: u }]);
        let comment = json!({"comment_id": r, "task_id": t, "project_id": p});
        assert!(keys(&event("comment.created", comment)).is_empty(), "comments are not cached");
        assert!(keys(&event("task.updated", json!({"task": "garbage"}))).is_empty());
    }
}
