//! What both task adapters share: the SQL of a task list (one statement for any filter, sort
//! and cursor, with the few dialect differences spelled per backend) and where a moved task's
//! new rank comes from.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{priority_code, status_code};
use crate::ports::{NewTask, SortValue, TaskChange, TaskCursor, TaskQuery, TaskRecord, TaskSort};
use crate::rank::{MAX_LEN, rank_after, rank_between};

/// The task columns in the order both adapters' `task_record` read them.
pub(crate) const TASK_COLUMNS: &str = "id, project_id, title, description, status, priority, assignee_id, \
                                       due_date, labels, position, created_by, created_at, updated_at";

/// The row of a new task at `position`.
pub(crate) fn new_record(t: &NewTask, position: String) -> TaskRecord {
    TaskRecord {
        id: t.id,
        project_id: t.project_id,
        title: t.title.as_str().to_string(),
        description: t.description.as_str().to_string(),
        status: t.status,
        priority: t.priority,
        assignee_id: t.assignee_id,
        due_date: t.due_date,
        labels: t.labels.as_slice().to_vec(),
        position,
        created_by: t.created_by,
        created_at: t.created_at,
        updated_at: t.created_at,
    }
}

/// `current` with `c`'s fields written (its position still the current one).
pub(crate) fn changed_record(c: &TaskChange, current: &TaskRecord) -> TaskRecord {
    TaskRecord {
        title: c.title.clone(),
        description: c.description.clone(),
        status: c.status,
        priority: c.priority,
        assignee_id: c.assignee_id,
        due_date: c.due_date,
        labels: c.labels.clone(),
        updated_at: c.updated_at,
        ..current.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter of a list statement, converted to the driver's type by each adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Uuid(Uuid),
    Small(i16),
    Text(String),
    Date(Option<Date>),
    Time(OffsetDateTime),
    Int(i64),
}

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    /// Adds a parameter; its placeholder.
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    /// The due-date sort key of an expression that may be NULL: missing dates last in the
    /// direction of the sort (the migrations index exactly these expressions).
    fn due_key(&self, expr: &str, descending: bool) -> String {
        match (self.dialect, descending) {
            (Dialect::Sqlite, false) => format!("COALESCE({expr}, '~')"),
            (Dialect::Sqlite, true) => format!("COALESCE({expr}, '')"),
            (Dialect::Postgres, false) => format!("COALESCE({expr}, 'infinity'::date)"),
            (Dialect::Postgres, true) => format!("COALESCE({expr}, '-infinity'::date)"),
        }
    }
}

/// The statement and parameters of one page of `q`.
pub(crate) fn list_sql(q: &TaskQuery, dialect: Dialect) -> (String, Vec<Param>) {
    let mut b = Builder { dialect, params: Vec::new() };
    let f = &q.filter;
    let mut conditions = vec![format!("project_id = {}", b.bind(Param::Uuid(q.project_id)))];
    if let Some(s) = f.status {
        conditions.push(format!("status = {}", b.bind(Param::Small(status_code(s)))));
    }
    if let Some(a) = f.assignee_id {
        conditions.push(format!("assignee_id = {}", b.bind(Param::Uuid(a))));
    }
    if let Some(p) = f.priority {
        conditions.push(format!("priority = {}", b.bind(Param::Small(priority_code(p)))));
    }
    if let Some(label) = &f.label {
        let p = b.bind(Param::Text(label.clone()));
        conditions.push(match dialect {
            Dialect::Sqlite => format!("EXISTS (SELECT 1 FROM json_each(tasks.labels) WHERE json_each.value = {p})"),
            Dialect::Postgres => format!("labels @> jsonb_build_array({p}::text)"),
        });
    }
    if let Some(d) = f.due_before {
        conditions.push(format!("due_date < {}", b.bind(Param::Date(Some(d)))));
    }
    if let Some(d) = f.due_after {
        conditions.push(format!("due_date > {}", b.bind(Param::Date(Some(d)))));
    }
    if let Some(text) = &f.q {
        // Lowercased here; the columns in SQL (SQLite's lower() folds ASCII letters only).
        let p = b.bind(Param::Text(text.to_lowercase()));
        conditions.push(match dialect {
            Dialect::Sqlite => format!("(instr(lower(title), {p}) > 0 OR instr(lower(description), {p}) > 0)"),
            Dialect::Postgres => format!("(strpos(lower(title), {p}) > 0 OR strpos(lower(description), {p}) > 0)"),
        });
    }
    let desc = q.order.descending;
    let keys: Vec<String> = match q.order.sort {
        TaskSort::Position => vec!["status".into(), "position".into(), "id".into()],
        TaskSort::DueDate => vec![b.due_key("due_date", desc), "id".into()],
        TaskSort::Priority => vec!["priority".into(), "id".into()],
        TaskSort::CreatedAt => vec!["created_at".into(), "id".into()],
        TaskSort::UpdatedAt => vec!["updated_at".into(), "id".into()],
    };
    if let Some(TaskCursor { value, id }) = &q.after {
        let mut values = match value {
            SortValue::Position(s, p) => vec![b.bind(Param::Small(status_code(*s))), b.bind(Param::Text(p.clone()))],
            SortValue::DueDate(d) => {
                let p = b.bind(Param::Date(*d));
                let p = match dialect {
                    Dialect::Postgres => format!("{p}::date"),
                    Dialect::Sqlite => p,
                };
                vec![b.due_key(&p, desc)]
            }
            SortValue::Priority(p) => vec![b.bind(Param::Small(priority_code(*p)))],
            SortValue::Time(t) => vec![b.bind(Param::Time(*t))],
        };
        values.push(b.bind(Param::Uuid(*id)));
        let op = if desc { "<" } else { ">" };
        conditions.push(format!("({}) {op} ({})", keys.join(", "), values.join(", ")));
    }
    let dir = if desc { " DESC" } else { "" };
    let order: Vec<String> = keys.iter().map(|k| format!("{k}{dir}")).collect();
    let limit = b.bind(Param::Int(i64::from(q.limit)));
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE {} ORDER BY {} LIMIT {limit}",
        conditions.join(" AND "),
        order.join(", ")
    );
    (sql, b.params)
}

/// The positions a task goes between in its column (`None`: the column's start or end).
pub(crate) type Gap = (Option<String>, Option<String>);

/// A gap, or the field (`before_id`, `after_id`) whose task is not a neighbour in the column.
pub(crate) type GapOrBadNeighbour = Result<Gap, &'static str>;

/// Whether a move within its own column leaves the task where it is: it already sits in the gap
/// (so its rank stays, rather than churn for a drop onto its own place).
pub(crate) fn already_there(same_column: bool, position: &str, (lo, hi): &Gap) -> bool {
    same_column && lo.as_deref().is_none_or(|lo| lo < position) && hi.as_deref().is_none_or(|hi| position < hi)
}

/// The rank for a task in `gap`, or `None` when the gap is used up and the column must be
/// rebalanced once the task is in it.
pub(crate) fn rank_in((lo, hi): &Gap) -> Option<String> {
    match hi {
        None => Some(rank_after(lo.as_deref())),
        Some(hi) => match slot(lo.as_deref(), Some(hi)) {
            Slot::Rank(r) => Some(r),
            Slot::Rebalance => None,
        },
    }
}

/// Where a task goes between the positions `lo` and `hi` (`None`: the column's start or end).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Rank(String),
    /// The gap is used up (the new rank would be longer than [`MAX_LEN`], or there is none):
    /// the column is rewritten with fresh ranks.
    Rebalance,
}

fn slot(lo: Option<&str>, hi: Option<&str>) -> Slot {
    match rank_between(lo, hi) {
        Some(r) if r.len() <= MAX_LEN => Slot::Rank(r),
        _ => Slot::Rebalance,
    }
}

/// The column's ids in their new order: `ids` (the column without the task, in order) with
/// `task` inserted just after the task at position `lo` (`None`: at the start).
pub(crate) fn reordered(column: Vec<(Uuid, String)>, task: Uuid, lo: Option<&str>) -> Vec<Uuid> {
    let at = lo.map_or(0, |lo| column.iter().take_while(|(_, p)| p.as_str() <= lo).count());
    let mut ids: Vec<Uuid> = column.into_iter().map(|(id, _)| id).collect();
    ids.insert(at, task);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{TaskFilter, TaskOrder};

    fn query(sort: TaskSort, descending: bool, after: Option<TaskCursor>) -> TaskQuery {
        TaskQuery {
            project_id: Uuid::nil(),
            filter: TaskFilter::default(),
            order: TaskOrder { sort, descending },
            after,
            limit: 10,
        }
    }

    #[test]
    fn placeholders_follow_the_dialect_and_the_parameters() {
        let cursor = TaskCursor { value: SortValue::DueDate(None), id: Uuid::nil() };
        let (sql, params) = list_sql(&query(TaskSort::DueDate, true, Some(cursor.clone())), Dialect::Postgres);
        assert!(
            sql.contains("(COALESCE(due_date, '-infinity'::date), id) < (COALESCE($2::date, '-infinity'::date), $3)"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY COALESCE(due_date, '-infinity'::date) DESC, id DESC LIMIT $4"), "{sql}");
        assert_eq!(params.len(), 4);
        let (sql, _) = list_sql(&query(TaskSort::DueDate, false, Some(cursor)), Dialect::Sqlite);
        assert!(sql.contains("(COALESCE(due_date, '~'), id) > (COALESCE(?2, '~'), ?3)"), "{sql}");
    }

    #[test]
    fn slots_and_rebalancing() {
        assert_eq!(slot(Some("a"), Some("c")), Slot::Rank("b".into()));
        assert_eq!(slot(Some("c"), Some("a")), Slot::Rebalance);
        // Between two adjacent 32-character ranks the next one has 33: rebalance.
        let (lo, hi) = (format!("a{}1", "0".repeat(30)), format!("a{}2", "0".repeat(30)));
        assert_eq!(slot(Some(&lo), Some(&hi)), Slot::Rebalance);
        let (lo, hi) = (format!("a{}1", "0".repeat(29)), format!("a{}2", "0".repeat(29)));
        assert!(matches!(slot(Some(&lo), Some(&hi)), Slot::Rank(r) if r.len() == 32));
    }

    #[test]
    fn reordered_inserts_after_lo() {
        let (a, b, t) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(9));
        let col = || vec![(a, "a".to_string()), (b, "b".to_string())];
        assert_eq!(reordered(col(), t, None), vec![t, a, b]);
        assert_eq!(reordered(col(), t, Some("a")), vec![a, t, b]);
        assert_eq!(reordered(col(), t, Some("b")), vec![a, b, t]);
    }
}
