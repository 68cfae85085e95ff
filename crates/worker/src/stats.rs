//! Usage statistics for administrators (`GET /api/admin/stats`), counted from the worker's own
//! audit log (the worker reads no other service's tables), per UTC day or ISO week:
//!
//! - `signups`: `user.created` (the users service writes it for every account: registration,
//!   `trellis admin create-user`, the bootstrap administrator);
//! - `active_users`: distinct `actor_id` of any entry in the period (logins, writes, reads that
//!   leave an event); the totals count distinct users over the whole range, not a sum;
//! - `projects_created`: `project.created`; `tasks_created`: `task.created`;
//! - `tasks_completed`: `task.updated` whose `fields` list `status` and whose `task.status` is
//!   `done` (the projects service writes the whole task and the changed field names; the log keeps
//!   both, they are ids and descriptors).
//!
//! Entries archived to object storage (older than the retention, a year by default) are gone from
//! the table and count as nothing. Ranges scan `audit_log_occurred` (occurred_at).

use api::FieldError;
use api::audit::{AdminStats, StatsBucket, StatsPeriod, StatsTotals};
use platform::db::{Database, StoreError};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Duration};

use crate::audit::AuditLog;

/// The most buckets one answer holds.
pub const MAX_BUCKETS: i64 = 366;
const DATE: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// `YYYY-MM-DD`, or None when `s` is not a date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, DATE).ok()
}

fn fmt_date(d: Date) -> String {
    d.format(DATE).unwrap_or_else(|_| d.to_string())
}

/// A resolved range: whole buckets from `from` (a bucket's first day) to `to` (a bucket's last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRange {
    pub period: StatsPeriod,
    pub from: Date,
    pub to: Date,
}

impl StatsRange {
    /// The range a request asks for. `to` defaults to `today`, `from` to 30 days or 12 weeks
    /// before it; both move to the start and end of their bucket (weeks start on Monday). At most
    /// [`MAX_BUCKETS`] buckets, `from` not after `to`; errors name the field.
    pub fn resolve(
        period: StatsPeriod,
        from: Option<Date>,
        to: Option<Date>,
        today: Date,
    ) -> Result<StatsRange, FieldError> {
        let step = step(period);
        let start = |d: Date| match period {
            StatsPeriod::Day => Some(d),
            StatsPeriod::Week => d.checked_sub(Duration::days(i64::from(d.weekday().number_days_from_monday()))),
        };
        let out_of_range = |field: &str| FieldError::new(field, "is out of range");
        let last = start(to.unwrap_or(today)).ok_or_else(|| out_of_range("to"))?;
        let to = last.checked_add(Duration::days(step - 1)).ok_or_else(|| out_of_range("to"))?;
        let default_buckets = if period == StatsPeriod::Day { 30 } else { 12 };
        let from = match from {
            Some(f) => start(f),
            None => last.checked_sub(Duration::days(step * (default_buckets - 1))),
        }
        .ok_or_else(|| out_of_range("from"))?;
        if from > last {
            return Err(FieldError::new("from", "must not be after to"));
        }
        let range = StatsRange { period, from, to };
        if range.buckets() > MAX_BUCKETS {
            return Err(FieldError::new(
                "from",
                format!("the range holds {} periods; at most {MAX_BUCKETS}", range.buckets()),
            ));
        }
        Ok(range)
    }

    pub fn buckets(&self) -> i64 {
        ((self.to - self.from).whole_days() + 1) / step(self.period)
    }
}

fn step(period: StatsPeriod) -> i64 {
    match period {
        StatsPeriod::Day => 1,
        StatsPeriod::Week => 7,
    }
}

/// Counts of one bucket as the query gives them: index, signups, active, projects, tasks, completed.
type Counts = (i64, [i64; 5]);

const SQLITE_BUCKETS: &str = "SELECT CAST(julianday(substr(occurred_at, 1, 10)) - julianday(?1) AS INTEGER) / ?2 AS b,
    SUM(action = 'user.created'), COUNT(DISTINCT actor_id), SUM(action = 'project.created'),
    SUM(action = 'task.created'),
    SUM(CASE WHEN action = 'task.updated' AND json_valid(data) THEN
        json_extract(data, '$.task.status') = 'done'
        AND EXISTS (SELECT 1 FROM json_each(data, '$.fields') WHERE value = 'status') ELSE 0 END)
    FROM audit_log WHERE occurred_at >= ?3 AND occurred_at < ?4 GROUP BY b";
const SQLITE_ACTIVE: &str =
    "SELECT COUNT(DISTINCT actor_id) FROM audit_log WHERE occurred_at >= ?1 AND occurred_at < ?2";

const POSTGRES_BUCKETS: &str = "SELECT (substr(occurred_at, 1, 10)::date - $1::date) / $2::int AS b,
    count(*) FILTER (WHERE action = 'user.created'), count(DISTINCT actor_id),
    count(*) FILTER (WHERE action = 'project.created'), count(*) FILTER (WHERE action = 'task.created'),
    count(*) FILTER (WHERE CASE WHEN action = 'task.updated' THEN
        (data::jsonb #>> '{task,status}') = 'done' AND coalesce((data::jsonb -> 'fields') ? 'status', false)
        ELSE false END)
    FROM audit_log WHERE occurred_at >= $3 AND occurred_at < $4 GROUP BY b";
const POSTGRES_ACTIVE: &str =
    "SELECT count(DISTINCT actor_id) FROM audit_log WHERE occurred_at >= $1 AND occurred_at < $2";

impl AuditLog {
    /// Usage per bucket of `range` (see the module docs for what counts).
    pub async fn stats(&self, range: StatsRange) -> Result<AdminStats, StoreError> {
        let internal = |_| StoreError::Internal("stats range out of bounds".into());
        let end = range.to.checked_add(Duration::days(1)).ok_or(()).map_err(internal)?;
        // Stored times are `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which sort as text after the bare date.
        let (lower, upper) = (fmt_date(range.from), fmt_date(end));
        let step = step(range.period);
        let (rows, active): (Vec<Counts>, i64) = match &self.db {
            Database::Sqlite(db) => {
                let from = lower.clone();
                db.read(move |c| {
                    let mut st = c.prepare_cached(SQLITE_BUCKETS)?;
                    let rows = st
                        .query_map(rusqlite::params![from, step, lower, upper], |r| {
                            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?]))
                        })?
                        .collect::<Result<Vec<Counts>, _>>()?;
                    let active = c.prepare_cached(SQLITE_ACTIVE)?.query_row([&lower, &upper], |r| r.get(0))?;
                    Ok((rows, active))
                })
                .await?
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                let step = step as i32;
                let rows = db
                    .query(&client, POSTGRES_BUCKETS, &[&range.from, &step, &lower, &upper])
                    .await?
                    .iter()
                    .map(|r| (i64::from(r.get::<_, i32>(0)), [r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)]))
                    .collect();
                let active = db.query(&client, POSTGRES_ACTIVE, &[&lower, &upper]).await?;
                (rows, active.first().map_or(0, |r| r.get(0)))
            }
        };
        let n = range.buckets();
        let mut counts = vec![[0i64; 5]; n as usize];
        for (b, c) in rows {
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| counts.get_mut(b)) {
                *slot = c;
            }
        }
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut buckets = Vec::with_capacity(counts.len());
        let mut totals = StatsTotals {
            signups: 0,
            active_users: count(active),
            projects_created: 0,
            tasks_created: 0,
            tasks_completed: 0,
        };
        let mut start = range.from;
        for c in counts {
            let b = StatsBucket {
                start: fmt_date(start),
                signups: count(c[0]),
                active_users: count(c[1]),
                projects_created: count(c[2]),
                tasks_created: count(c[3]),
                tasks_completed: count(c[4]),
            };
            totals.signups += b.signups;
            totals.projects_created += b.projects_created;
            totals.tasks_created += b.tasks_created;
            totals.tasks_completed += b.tasks_completed;
            buckets.push(b);
            start = start.checked_add(Duration::days(step)).unwrap_or(start);
        }
        Ok(AdminStats { period: range.period, from: fmt_date(range.from), to: fmt_date(range.to), buckets, totals })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    #[test]
    fn ranges_default_align_and_are_bounded() {
        let today = date!(2024 - 03 - 14); // a Thursday
        let r = StatsRange::resolve(StatsPeriod::Day, None, None, today).unwrap();
        assert_eq!((r.from, r.to, r.buckets()), (date!(2024 - 02 - 14), today, 30));
        let r = StatsRange::resolve(StatsPeriod::Week, None, None, today).unwrap();
        assert_eq!((r.from, r.to, r.buckets()), (date!(2023 - 12 - 25), date!(2024 - 03 - 17), 12));
        let r = StatsRange::resolve(StatsPeriod::Week, Some(date!(2024 - 03 - 06)), Some(today), today).unwrap();
        assert_eq!((r.from, r.to, r.buckets()), (date!(2024 - 03 - 04), date!(2024 - 03 - 17), 2));
        let r = StatsRange::resolve(StatsPeriod::Day, Some(date!(2023 - 03 - 15)), Some(today), today).unwrap();
        assert_eq!(r.buckets(), 366);
        let e = StatsRange::resolve(StatsPeriod::Day, Some(date!(2023 - 03 - 14)), Some(today), today).unwrap_err();
        assert_eq!(e.field, "from");
        let e = StatsRange::resolve(StatsPeriod::Day, Some(date!(2024 - 03 - 15)), Some(today), today).unwrap_err();
        assert!(e.message.contains("after"), "{e:?}");
        assert!(parse_date("2024-02-30").is_none() && parse_date("yesterday").is_none());
    }
}
