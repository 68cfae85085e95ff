//! Full-text search over real stores: relevance (a title match above a body-only match), every
//! kind of result, visibility (two users; admins and guests), the index kept in step by updates
//! and deletes in the same transaction, hostile queries, pages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use api::ApiError;
use api::projects::{ProjectRole, SearchKind, SearchResult, UpdateComment, UpdateProject};
use api::users::Role;
use projects::ProjectsService;
use projects::service::{Actor, PageRequest};
use uuid::Uuid;

use crate::Backend;
use crate::comments::{exec, project, say, service, task, user};

crate::backend_suite!(
    a_title_match_ranks_above_a_body_only_match,
    finds_each_kind_with_its_ids_title_and_snippet,
    never_returns_rows_of_projects_the_caller_is_not_a_member_of,
    the_index_stays_in_step_with_updates_and_deletes,
    hostile_queries_are_answered_without_error,
    results_page_by_cursor_without_repeats,
    search_over_http,
);

async fn find(svc: &ProjectsService, who: Actor, q: &str) -> Vec<SearchResult> {
    svc.search(who, q, PageRequest { limit: Some(100), cursor: None })
        .await
        .unwrap_or_else(|e| panic!("{q:?}: {e:?}"))
        .items
}

fn ids(results: &[SearchResult]) -> BTreeSet<Uuid> {
    results.iter().map(|r| r.id).collect()
}

async fn a_title_match_ranks_above_a_body_only_match(b: &Backend) {
    let svc = service(b);
    let ada = user(Role::User);
    let p = project(&svc, ada, "Garden", "").await;
    // The body-only match comes first in time and mentions the word more often.
    let body_only = task(&svc, ada, p, "Water the beds", "the nebula nebula nebula of weeds").await;
    let titled = task(&svc, ada, p, "Nebula", "a long description about something else entirely").await;
    let in_comment = task(&svc, ada, p, "Compost", "").await;
    svc.create_comment(ada, in_comment, say("nebula again")).await.unwrap();
    let found = find(&svc, ada, "nebula").await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0].id, titled, "{found:?}");
    assert!(found[0].rank > found[1].rank && found[1].rank >= found[2].rank, "{found:?}");
    assert!(found.iter().any(|r| r.id == body_only));
}

async fn finds_each_kind_with_its_ids_title_and_snippet(b: &Backend) {
    let svc = service(b);
    let ada = user(Role::User);
    let p = project(&svc, ada, "Zephyr launch", "Everything about the zephyr").await;
    let t = task(&svc, ada, p, "Fuel the zephyr", "Check the valves first").await;
    let c = svc.create_comment(ada, t, say("The valves look fine.\nThe zephyr waits.")).await.unwrap();
    let found = find(&svc, ada, "Zephyr").await;
    let kinds: BTreeSet<_> = found.iter().map(|r| (format!("{:?}", r.kind), r.id)).collect();
    let expected: BTreeSet<_> =
        [("Project", p), ("Task", t), ("Comment", c.id)].into_iter().map(|(k, id)| (k.to_string(), id)).collect();
    assert_eq!(kinds, expected);
    for r in &found {
        assert_eq!(r.project_id, p);
        match r.kind {
            SearchKind::Project => assert_eq!((r.task_id, r.title.as_str()), (None, "Zephyr launch")),
            SearchKind::Task => assert_eq!((r.task_id, r.title.as_str()), (Some(t), "Fuel the zephyr")),
            SearchKind::Comment => {
                assert_eq!((r.task_id, r.title.as_str()), (Some(t), "Fuel the zephyr"), "a comment shows its task");
                assert_eq!(r.snippet, "The valves look fine. The zephyr waits.");
            }
        }
    }
    // The last word is a prefix; every word must occur; case does not matter.
    assert_eq!(ids(&find(&svc, ada, "VALV").await), [t, c.id].into());
    assert_eq!(ids(&find(&svc, ada, "valves fine").await), [c.id].into());
    assert!(find(&svc, ada, "valves missing").await.is_empty());
    // Labels are searched too.
    exec(
        b,
        "UPDATE tasks SET labels = '[\"urgent\",\"hardware\"]' WHERE id = ?1",
        "UPDATE tasks SET labels = '[\"urgent\",\"hardware\"]' WHERE id = $1",
        t,
    )
    .await;
    assert_eq!(ids(&find(&svc, ada, "hardware").await), [t].into());
}

async fn never_returns_rows_of_projects_the_caller_is_not_a_member_of(b: &Backend) {
    let svc = service(b);
    let (ada, bob) = (user(Role::User), user(Role::User));
    let adas = project(&svc, ada, "Secret orchard", "apples").await;
    let adas_task = task(&svc, ada, adas, "Secret graft", "").await;
    let adas_comment = svc.create_comment(ada, adas_task, say("secret scion")).await.unwrap();
    let bobs = project(&svc, bob, "Open field", "secret too").await;
    assert_eq!(ids(&find(&svc, bob, "secret").await), [bobs].into(), "only his own");
    assert_eq!(ids(&find(&svc, ada, "secret").await), [adas, adas_task, adas_comment.id].into());
    // Many matches elsewhere do not crowd out the caller's (visibility is in the query, not a filter after a LIMIT).
    for i in 0..25 {
        task(&svc, ada, adas, &format!("secret {i}"), "").await;
    }
    let page = svc.search(bob, "secret", PageRequest { limit: Some(5), cursor: None }).await.unwrap();
    assert_eq!(ids(&page.items), [bobs].into());
    let admin = user(Role::Admin);
    assert_eq!(find(&svc, admin, "secret").await.len(), 29, "admins see every project");
    let guest = user(Role::Guest);
    assert!(find(&svc, guest, "secret").await.is_empty());
    b.add_member(bobs, guest.user_id, ProjectRole::Viewer).await;
    assert_eq!(ids(&find(&svc, guest, "secret").await), [bobs].into(), "guests: their member projects");
}

async fn the_index_stays_in_step_with_updates_and_deletes(b: &Backend) {
    let svc = service(b);
    let ada = user(Role::User);
    let p = project(&svc, ada, "Alpha", "first words").await;
    let rename = UpdateProject { name: Some("Bravo".into()), description: Some("second words".into()) };
    svc.update_project(ada, p, rename, None).await.unwrap();
    assert!(find(&svc, ada, "alpha").await.is_empty());
    assert!(find(&svc, ada, "first").await.is_empty());
    assert_eq!(ids(&find(&svc, ada, "bravo").await), [p].into());
    assert_eq!(ids(&find(&svc, ada, "second").await), [p].into());

    let t = task(&svc, ada, p, "Charlie", "").await;
    exec(b, "UPDATE tasks SET title = 'Delta' WHERE id = ?1", "UPDATE tasks SET title = 'Delta' WHERE id = $1", t)
        .await;
    assert!(find(&svc, ada, "charlie").await.is_empty());
    assert_eq!(ids(&find(&svc, ada, "delta").await), [t].into());

    let c = svc.create_comment(ada, t, say("echo")).await.unwrap();
    svc.update_comment(ada, c.id, UpdateComment { body: "foxtrot".into() }, None).await.unwrap();
    assert!(find(&svc, ada, "echo").await.is_empty());
    assert_eq!(ids(&find(&svc, ada, "foxtrot").await), [c.id].into());
    svc.delete_comment(ada, c.id, None).await.unwrap();
    assert!(find(&svc, ada, "foxtrot").await.is_empty());

    let c2 = svc.create_comment(ada, t, say("golf")).await.unwrap();
    assert_eq!(ids(&find(&svc, ada, "golf").await), [c2.id].into());
    exec(b, "DELETE FROM tasks WHERE id = ?1", "DELETE FROM tasks WHERE id = $1", t).await;
    assert!(find(&svc, ada, "golf").await.is_empty(), "the comment went with its task, and out of the index");
    assert!(find(&svc, ada, "delta").await.is_empty());
    svc.delete_project(ada, p, None).await.unwrap();
    assert!(find(&svc, user(Role::Admin), "bravo").await.is_empty());
}

async fn hostile_queries_are_answered_without_error(b: &Backend) {
    let svc = service(b);
    let ada = user(Role::User);
    let p = project(&svc, ada, "Near the river", "column: value").await;
    for q in [
        "\"",
        "*",
        "NEAR(",
        "near(",
        ":",
        "&|!",
        "\"unbalanced",
        "a\"b",
        "'",
        "''",
        "(",
        ")",
        "-",
        "^",
        "title:river",
        "river*",
        "NOT river",
        "river OR sea",
        "!river",
        "river:*",
        "\\",
        "%",
        "_",
        "\u{0}",
        "AND",
        "ß",
        "🦀",
    ] {
        let res = svc.search(ada, q, PageRequest::default()).await;
        assert!(res.is_ok(), "{q:?}: {res:?}");
    }
    assert_eq!(ids(&find(&svc, ada, "NEAR(").await), [p].into(), "operators are words like any other");
    assert_eq!(ids(&find(&svc, ada, "column:").await), [p].into());
    for bad in ["", &"a".repeat(201)] {
        let Err(ApiError::Invalid(e)) = svc.search(ada, bad, PageRequest::default()).await else { panic!("{bad:?}") };
        assert_eq!(e[0].field, "q");
    }
    let Err(ApiError::Invalid(e)) = svc.search(ada, "x", PageRequest { limit: None, cursor: Some("!".into()) }).await
    else {
        panic!("bad cursor")
    };
    assert_eq!(e[0].field, "cursor");
}

async fn results_page_by_cursor_without_repeats(b: &Backend) {
    let svc = service(b);
    let ada = user(Role::User);
    let p = project(&svc, ada, "Pages", "").await;
    for i in 0..7 {
        task(&svc, ada, p, &format!("kilo {}", "x ".repeat(i)), "").await;
    }
    let all = find(&svc, ada, "kilo").await;
    assert_eq!(all.len(), 7);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = svc.search(ada, "kilo", PageRequest { limit: Some(3), cursor }).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|r| r.id).collect::<Vec<_>>());
}

async fn search_over_http(b: &Backend) {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let svc = std::sync::Arc::new(service(b));
    let ada = user(Role::User);
    let p = project(&svc, ada, "Quartz", "").await;
    let t = task(&svc, ada, p, "Polish the quartz", "").await;
    let router = projects::router(svc);
    let who = platform::identity::Identity {
        user_id: ada.user_id,
        role: ada.role,
        session_id: platform::ids::new_id(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    };
    let get = |uri: String| {
        let (router, who) = (router.clone(), who.clone());
        async move {
            let mut req = Request::builder().uri(uri).body(Body::empty()).unwrap();
            req.extensions_mut().insert(platform::http::Caller(who));
            let res = router.oneshot(req).await.unwrap();
            let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, ct, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
        }
    };
    let (status, _, body) = get("/api/search?q=quar&limit=1".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["items"][0];
    assert_eq!(first["kind"], "project");
    assert_eq!(
        (first["id"].as_str(), first["project_id"].as_str()),
        (Some(p.to_string().as_str()), Some(p.to_string().as_str()))
    );
    assert!(first.get("task_id").is_none() && first["rank"].as_f64().is_some_and(|r| r > 0.0), "{first}");
    assert_eq!(first["title"], "Quartz");
    let cursor = body["next_cursor"].as_str().unwrap().to_string();
    let (_, _, next) = get(format!("/api/search?q=quar&limit=1&cursor={cursor}")).await;
    assert_eq!(next["items"][0]["id"], serde_json::json!(t));
    assert_eq!(next["items"][0]["task_id"], serde_json::json!(t));
    assert_eq!(next["next_cursor"], serde_json::Value::Null);
    let (_, _, hostile) = get("/api/search?q=%22%20NEAR(%20*%20%26%7C!".into()).await;
    assert_eq!(hostile["items"], serde_json::json!([]));
    for uri in [
        "/api/search",
        "/api/search?q=",
        &format!("/api/search?q={}", "a".repeat(201)),
        "/api/search?q=x&limit=0",
        "/api/search?q=x&cursor=zz",
    ] {
        let (status, ct, body) = get(uri.to_string()).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"),
            "{uri}: {body}"
        );
    }
    let (status, _, _) = get("/api/search?q=a&q=b".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
