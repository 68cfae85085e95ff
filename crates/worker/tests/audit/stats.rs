//! `GET /api/admin/stats`: known entries per day and week, the edges of the range, what counts as
//! a completed task, archived entries no longer counted, input errors and the role gate.

use api::audit::StatsPeriod;
use api::users::Role;
use axum::http::StatusCode;
use platform::bus::Event;
use platform::ids::new_id;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::{date, datetime};
use uuid::Uuid;
use worker::stats::StatsRange;

use super::{Backend, get};

test_support::backend_suite!(counts_per_day_and_week, route_checks_its_input);

/// The week of Monday 2024-03-04 and the next, with entries just outside on both sides.
async fn fortnight(b: &Backend) -> [Uuid; 3] {
    let (a, bob, c) = (new_id(), new_id(), new_id());
    let (project, task) = (new_id(), new_id());
    let status = |status: &str, fields: Value| json!({"task": {"id": task, "status": status}, "fields": fields});
    let entries: Vec<(&str, Option<Uuid>, OffsetDateTime, Value)> = vec![
        ("user.created", Some(new_id()), datetime!(2024-03-03 23:59:59.999 UTC), json!({})),
        ("user.created", Some(a), datetime!(2024-03-04 00:00 UTC), json!({"user_id": a})),
        ("project.created", Some(a), datetime!(2024-03-04 10:00 UTC), json!({"project_id": project})),
        ("task.created", Some(a), datetime!(2024-03-04 10:01 UTC), json!({"task": {"id": task, "status": "todo"}})),
        ("task.updated", Some(bob), datetime!(2024-03-04 23:59:59.999999 UTC), status("done", json!(["status"]))),
        // Not completions: the status did not change, or it changed to something else.
        ("task.updated", Some(bob), datetime!(2024-03-05 09:00 UTC), status("done", json!(["title"]))),
        ("task.updated", Some(bob), datetime!(2024-03-05 09:30 UTC), status("doing", json!(["status"]))),
        ("auth.login_failed", None, datetime!(2024-03-06 08:00 UTC), json!({"user_id": c})),
        ("user.created", Some(c), datetime!(2024-03-11 12:00 UTC), json!({"user_id": c})),
        ("auth.login_succeeded", Some(a), datetime!(2024-03-11 12:05 UTC), json!({"user_id": a})),
        ("task.updated", Some(c), datetime!(2024-03-17 23:59 UTC), status("done", json!(["status", "position"]))),
        ("task.created", Some(c), datetime!(2024-03-18 00:00 UTC), json!({})),
    ];
    let w = b.worker();
    for (kind, actor, at, data) in entries {
        assert!(w.handle(&Event::new(kind, new_id(), actor, at, data)).await.unwrap());
    }
    [a, bob, c]
}

fn counts(b: &api::audit::StatsBucket) -> [u64; 5] {
    [b.signups, b.active_users, b.projects_created, b.tasks_created, b.tasks_completed]
}

async fn counts_per_day_and_week(b: &Backend) {
    fortnight(b).await;
    let today = date!(2024 - 06 - 01);
    let range = StatsRange::resolve(StatsPeriod::Day, Some(date!(2024 - 03 - 04)), Some(date!(2024 - 03 - 17)), today);
    let days = b.log().stats(range.unwrap()).await.unwrap();
    assert_eq!((days.from.as_str(), days.to.as_str(), days.buckets.len()), ("2024-03-04", "2024-03-17", 14));
    assert_eq!(days.buckets[0].start, "2024-03-04");
    assert_eq!(days.buckets[13].start, "2024-03-17");
    let per_day: Vec<[u64; 5]> = days.buckets.iter().map(counts).collect();
    let mut expected = vec![[0; 5]; 14];
    expected[0] = [1, 2, 1, 1, 1];
    expected[1] = [0, 1, 0, 0, 0];
    expected[7] = [1, 2, 0, 0, 0];
    expected[13] = [0, 1, 0, 0, 1];
    assert_eq!(per_day, expected);
    let t = &days.totals;
    assert_eq!(
        [t.signups, t.active_users, t.projects_created, t.tasks_created, t.tasks_completed],
        [2, 3, 1, 1, 2],
        "active users are distinct over the range, not a sum"
    );

    // Weeks start on Monday: a date inside the week selects the whole week.
    let range = StatsRange::resolve(StatsPeriod::Week, Some(date!(2024 - 03 - 06)), Some(date!(2024 - 03 - 12)), today);
    let weeks = b.log().stats(range.unwrap()).await.unwrap();
    assert_eq!((weeks.from.as_str(), weeks.to.as_str()), ("2024-03-04", "2024-03-17"));
    let per_week: Vec<[u64; 5]> = weeks.buckets.iter().map(counts).collect();
    assert_eq!(per_week, [[1, 2, 1, 1, 1], [1, 2, 0, 0, 1]]);
    assert_eq!(weeks.buckets[1].start, "2024-03-11");
    assert_eq!(weeks.totals, days.totals);

    // Archived entries are gone from the table, and from the counts.
    let report = b.log().archive(b.objects.as_ref(), datetime!(2024-03-05 00:00 UTC), 100).await.unwrap();
    assert_eq!(report.entries, 5);
    let range = StatsRange::resolve(StatsPeriod::Week, Some(date!(2024 - 03 - 04)), Some(date!(2024 - 03 - 17)), today);
    let after = b.log().stats(range.unwrap()).await.unwrap();
    assert_eq!(after.buckets.iter().map(counts).collect::<Vec<_>>(), [[0, 1, 0, 0, 0], [1, 2, 0, 0, 1]]);
}

async fn route_checks_its_input(b: &Backend) {
    fortnight(b).await;
    let (status, s) = get(b, Some(Role::Admin), "/api/admin/stats?period=week&from=2024-03-04&to=2024-03-17").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["period"], "week");
    assert_eq!(
        s["buckets"][0],
        json!({"start": "2024-03-04", "signups": 1, "active_users": 2, "projects_created": 1,
        "tasks_created": 1, "tasks_completed": 1})
    );
    assert_eq!(s["totals"]["tasks_completed"], 2);
    // Defaults: the last 30 days, or 12 weeks, up to today (the server's today lies between the
    // dates read before and after the request, which differ only across midnight UTC).
    let before = OffsetDateTime::now_utc().date().to_string();
    let (status, s) = get(b, Some(Role::Admin), "/api/admin/stats").await;
    let after = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        (status, s["period"].clone(), s["buckets"].as_array().unwrap().len()),
        (StatusCode::OK, json!("day"), 30)
    );
    assert!(s["to"] == json!(before) || s["to"] == json!(after), "to {} is today ({before} or {after})", s["to"]);
    let (_, s) = get(b, Some(Role::Admin), "/api/admin/stats?period=week").await;
    assert_eq!(s["buckets"].as_array().unwrap().len(), 12);
    let (_, s) = get(b, Some(Role::Admin), "/api/admin/stats?from=2023-03-18&to=2024-03-17").await;
    assert_eq!(s["buckets"].as_array().unwrap().len(), 366);
    for (uri, field) in [
        ("/api/admin/stats?period=month", "period"),
        ("/api/admin/stats?from=2024-02-30", "from"),
        ("/api/admin/stats?to=tomorrow", "to"),
        ("/api/admin/stats?from=2024-03-18&to=2024-03-17", "from"),
        ("/api/admin/stats?from=2023-03-17&to=2024-03-17", "from"),
    ] {
        let (status, p) = get(b, Some(Role::Admin), uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{uri}: {p}");
    }
    assert_eq!(get(b, Some(Role::Admin), "/api/admin/stats?days=3").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(b, Some(Role::User), "/api/admin/stats").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(b, Some(Role::Guest), "/api/admin/stats").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(b, None, "/api/admin/stats").await.0, StatusCode::UNAUTHORIZED);
}
