//! The authorization matrix of the projects service against the real binary (docs/SECURITY.md AZ-2,
//! AZ-3, AZ-11): every route of `projects::http::routes()` × (owner, editor, viewer, non-member,
//! guest, admin) with the status written out in [`TABLE`]; then "user B cannot touch user A's
//! objects": B calls every id-taking route with A's ids (and mixes of A's and B's) and gets 404
//! each time, exactly as for an id that does not exist, A finds everything unchanged, search as B
//! finds none of A's objects; and the refusals are in the log with who asked. All-in-one here, and
//! on PostgreSQL, Redis and S3 in `distributed_one_process_per_service`.

use std::collections::BTreeSet;

use reqwest::{Client, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{Trellis, run_with_stdin};

const OWNER: usize = 0;
const EDITOR: usize = 1;
const VIEWER: usize = 2;
const GUEST: usize = 4;
// 3 is the non-member, 5 the admin.
/// User B of "B cannot touch A's objects" (A is the owner): a `user` who is a member of none of
/// the matrix's projects, in `World::tokens` after the six callers.
const INTRUDER: usize = 6;
const CALLERS: [&str; 6] = ["owner", "editor", "viewer", "non-member", "guest", "admin"];

/// What a row's call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The shared project, task, comment and attachment, all made by the owner; the project has
    /// the editor, the viewer and the guest (a viewer) as members.
    Shared,
    /// An object of the route's kind made by the owner for this call alone (destructive calls):
    /// a project with the editor, the viewer, the guest and one more user as members, or a task,
    /// comment or attachment in the shared project.
    Fresh,
    /// The other member (neither of the six callers, a viewer) of a fresh project.
    OtherMember,
    /// The caller as a member of a fresh project (leaving it, promoting oneself).
    Themself,
}

/// One row: a route, what it acts on, and the status each caller gets, in the order of
/// [`CALLERS`].
struct Row {
    method: &'static str,
    route: &'static str,
    on: On,
    expect: [u16; 6],
}

const fn row(method: &'static str, route: &'static str, on: On, expect: [u16; 6]) -> Row {
    Row { method, route, on, expect }
}

use On::{Fresh, OtherMember, Shared, Themself};

/// The matrix. A guest is a viewer member of every project here, and read-only everywhere: its
/// 403s on writing routes come from the role gate. Admins are members of nothing and act with
/// owner authority, but change only their own comments.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    //                                                                        owner editor viewer non-m guest admin
    row("GET",    "/api/projects",                              Shared,      [200,  200,   200,   200,  200,  200]),
    row("POST",   "/api/projects",                              Shared,      [201,  201,   201,   201,  403,  201]),
    row("GET",    "/api/projects/{id}",                         Shared,      [200,  200,   200,   404,  200,  200]),
    row("PATCH",  "/api/projects/{id}",                         Shared,      [200,  200,   403,   404,  403,  200]),
    row("DELETE", "/api/projects/{id}",                         Fresh,       [204,  403,   403,   404,  403,  204]),
    row("GET",    "/api/projects/{id}/members",                 Shared,      [200,  200,   200,   404,  200,  200]),
    row("POST",   "/api/projects/{id}/members",                 Fresh,       [201,  403,   403,   404,  403,  201]),
    row("GET",    "/api/projects/{id}/members/{user_id}",       Shared,      [200,  200,   200,   404,  200,  200]),
    row("PATCH",  "/api/projects/{id}/members/{user_id}",       OtherMember, [200,  403,   403,   404,  403,  200]),
    // Promoting oneself to owner; an admin is no member to change.
    row("PATCH",  "/api/projects/{id}/members/{user_id}",       Themself,    [200,  403,   403,   404,  403,  404]),
    row("DELETE", "/api/projects/{id}/members/{user_id}",       OtherMember, [204,  403,   403,   404,  403,  204]),
    // Leaving: the last owner cannot (409); a guest may; an admin is no member to remove.
    row("DELETE", "/api/projects/{id}/members/{user_id}",       Themself,    [409,  204,   204,   404,  204,  404]),
    row("GET",    "/api/projects/{id}/tasks",                   Shared,      [200,  200,   200,   404,  200,  200]),
    row("POST",   "/api/projects/{id}/tasks",                   Shared,      [201,  201,   403,   404,  403,  201]),
    row("GET",    "/api/tasks/{id}",                            Shared,      [200,  200,   200,   404,  200,  200]),
    row("PATCH",  "/api/tasks/{id}",                            Shared,      [200,  200,   403,   404,  403,  200]),
    row("DELETE", "/api/tasks/{id}",                            Fresh,       [204,  204,   403,   404,  403,  204]),
    row("GET",    "/api/tasks/{id}/comments",                   Shared,      [200,  200,   200,   404,  200,  200]),
    row("POST",   "/api/tasks/{id}/comments",                   Shared,      [201,  201,   403,   404,  403,  201]),
    // The comment is the owner's: only its author changes it; its author, owners and admins delete it.
    row("GET",    "/api/comments/{id}",                         Shared,      [200,  200,   200,   404,  200,  200]),
    row("PATCH",  "/api/comments/{id}",                         Shared,      [200,  403,   403,   404,  403,  403]),
    row("DELETE", "/api/comments/{id}",                         Fresh,       [204,  403,   403,   404,  403,  204]),
    row("GET",    "/api/search",                                Shared,      [200,  200,   200,   200,  200,  200]),
    row("GET",    "/api/tasks/{id}/attachments",                Shared,      [200,  200,   200,   404,  200,  200]),
    row("POST",   "/api/tasks/{id}/attachments",                Shared,      [201,  201,   403,   404,  403,  201]),
    row("GET",    "/api/attachments/{id}",                      Shared,      [200,  200,   200,   404,  200,  200]),
    row("GET",    "/api/attachments/{id}/link",                 Shared,      [200,  200,   200,   404,  200,  200]),
    // The attachment is the owner's: owners, editors, its uploader and admins delete it.
    row("DELETE", "/api/attachments/{id}",                      Fresh,       [204,  204,   403,   404,  403,  204]),
];

/// A request body.
enum Body {
    None,
    Json(Value),
    /// A multipart form with one part, `file`, of this name and text.
    Upload(&'static str, String),
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn id(&self) -> String {
        let v = self.json();
        v["id"].as_str().unwrap_or_else(|| panic!("an id in {} {v}", self.status)).to_string()
    }

    fn is_problem(&self) -> bool {
        self.content_type.starts_with("application/problem+json")
    }

    /// The answer as the client sees it but for its request id: what must not tell an existing
    /// object the caller may not see from one that does not exist.
    fn shape(&self) -> (StatusCode, Value) {
        let mut v = self.json();
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        (self.status, v)
    }
}

async fn send(http: &Client, base: &str, token: &str, method: &str, path: &str, body: Body) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{base}{path}")).bearer_auth(token);
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Upload(name, text) => {
            let boundary = "trellis-matrix-7c1e";
            let form = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
            );
            req.header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(form)
        }
    };
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = |h: header::HeaderName| res.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
    let etag = text(header::ETAG);
    Answer { status, content_type, etag, bytes: res.bytes().await.unwrap().to_vec() }
}

/// The deployment, the six callers (tokens and ids, in the order of [`CALLERS`], then
/// [`INTRUDER`]), one more user and the owner's shared objects.
struct World {
    http: Client,
    base: String,
    tokens: Vec<String>,
    ids: Vec<String>,
    other_member: String,
    project: String,
    task: String,
    comment: String,
    attachment: String,
}

impl World {
    async fn call(&self, who: usize, method: &str, path: &str, body: Body) -> Answer {
        send(&self.http, &self.base, &self.tokens[who], method, path, body).await
    }

    /// `method path` as the owner, which must answer `status`.
    async fn owner(&self, method: &str, path: &str, body: Body, status: StatusCode) -> Answer {
        let a = self.call(OWNER, method, path, body).await;
        assert_eq!(a.status, status, "{method} {path} as the owner: {}", a.json());
        a
    }

    /// A project of the owner with the editor, the viewer, the guest (a viewer) and, when asked,
    /// the other member (a viewer) as members.
    async fn new_project(&self, name: &str, with_other: bool) -> String {
        let p = self.owner("POST", "/api/projects", Body::Json(json!({"name": name})), StatusCode::CREATED).await.id();
        let mut members = vec![(EDITOR, "editor"), (VIEWER, "viewer"), (GUEST, "viewer")]
            .into_iter()
            .map(|(who, role)| (self.ids[who].clone(), role))
            .collect::<Vec<_>>();
        if with_other {
            members.push((self.other_member.clone(), "viewer"));
        }
        for (user, role) in members {
            let body = Body::Json(json!({"user_id": user, "role": role}));
            self.owner("POST", &format!("/api/projects/{p}/members"), body, StatusCode::CREATED).await;
        }
        p
    }

    async fn new_task(&self, project: &str, title: &str) -> String {
        let body = Body::Json(json!({"title": title}));
        self.owner("POST", &format!("/api/projects/{project}/tasks"), body, StatusCode::CREATED).await.id()
    }

    async fn new_comment(&self, task: &str, text: &str) -> String {
        let body = Body::Json(json!({"body": text}));
        self.owner("POST", &format!("/api/tasks/{task}/comments"), body, StatusCode::CREATED).await.id()
    }

    async fn new_attachment(&self, task: &str, text: &str) -> String {
        let body = Body::Upload("notes.txt", text.to_string());
        self.owner("POST", &format!("/api/tasks/{task}/attachments"), body, StatusCode::CREATED).await.id()
    }

    /// The call of `row` for caller `who`: its path and body, with fresh objects made first where
    /// the row says so.
    async fn request(&self, row: &Row, who: usize) -> (String, Body) {
        let (p, t, c, a) = (&self.project, &self.task, &self.comment, &self.attachment);
        let by = CALLERS[who];
        match (row.method, row.route, row.on) {
            ("GET", "/api/projects", Shared) => ("/api/projects".into(), Body::None),
            ("POST", "/api/projects", Shared) => {
                ("/api/projects".into(), Body::Json(json!({"name": format!("Made by the {by}")})))
            }
            ("GET", "/api/projects/{id}", Shared) => (format!("/api/projects/{p}"), Body::None),
            ("PATCH", "/api/projects/{id}", Shared) => {
                (format!("/api/projects/{p}"), Body::Json(json!({"description": format!("Changed by the {by}")})))
            }
            ("DELETE", "/api/projects/{id}", Fresh) => {
                (format!("/api/projects/{}", self.new_project("To delete", false).await), Body::None)
            }
            ("GET", "/api/projects/{id}/members", Shared) => (format!("/api/projects/{p}/members"), Body::None),
            ("POST", "/api/projects/{id}/members", Fresh) => {
                let fresh = self.new_project("To add to", false).await;
                let body = json!({"user_id": self.other_member, "role": "viewer"});
                (format!("/api/projects/{fresh}/members"), Body::Json(body))
            }
            ("GET", "/api/projects/{id}/members/{user_id}", Shared) => {
                (format!("/api/projects/{p}/members/{}", self.ids[OWNER]), Body::None)
            }
            ("PATCH", "/api/projects/{id}/members/{user_id}", OtherMember) => {
                let fresh = self.new_project("To promote in", true).await;
                let path = format!("/api/projects/{fresh}/members/{}", self.other_member);
                (path, Body::Json(json!({"role": "editor"})))
            }
            ("PATCH", "/api/projects/{id}/members/{user_id}", Themself) => {
                let fresh = self.new_project("To take over", false).await;
                let path = format!("/api/projects/{fresh}/members/{}", self.ids[who]);
                (path, Body::Json(json!({"role": "owner"})))
            }
            ("DELETE", "/api/projects/{id}/members/{user_id}", OtherMember) => {
                let fresh = self.new_project("To remove from", true).await;
                (format!("/api/projects/{fresh}/members/{}", self.other_member), Body::None)
            }
            ("DELETE", "/api/projects/{id}/members/{user_id}", Themself) => {
                let fresh = self.new_project("To leave", false).await;
                (format!("/api/projects/{fresh}/members/{}", self.ids[who]), Body::None)
            }
            ("GET", "/api/projects/{id}/tasks", Shared) => (format!("/api/projects/{p}/tasks"), Body::None),
            ("POST", "/api/projects/{id}/tasks", Shared) => {
                (format!("/api/projects/{p}/tasks"), Body::Json(json!({"title": format!("Made by the {by}")})))
            }
            ("GET", "/api/tasks/{id}", Shared) => (format!("/api/tasks/{t}"), Body::None),
            ("PATCH", "/api/tasks/{id}", Shared) => {
                (format!("/api/tasks/{t}"), Body::Json(json!({"title": format!("Zanzibar, changed by the {by}")})))
            }
            ("DELETE", "/api/tasks/{id}", Fresh) => {
                (format!("/api/tasks/{}", self.new_task(p, "To delete").await), Body::None)
            }
            ("GET", "/api/tasks/{id}/comments", Shared) => (format!("/api/tasks/{t}/comments"), Body::None),
            ("POST", "/api/tasks/{id}/comments", Shared) => {
                (format!("/api/tasks/{t}/comments"), Body::Json(json!({"body": format!("Said by the {by}")})))
            }
            ("GET", "/api/comments/{id}", Shared) => (format!("/api/comments/{c}"), Body::None),
            ("PATCH", "/api/comments/{id}", Shared) => {
                (format!("/api/comments/{c}"), Body::Json(json!({"body": format!("Zanzibar, reworded by the {by}")})))
            }
            ("DELETE", "/api/comments/{id}", Fresh) => {
                (format!("/api/comments/{}", self.new_comment(t, "To delete").await), Body::None)
            }
            ("GET", "/api/search", Shared) => ("/api/search?q=zanzibar".into(), Body::None),
            ("GET", "/api/tasks/{id}/attachments", Shared) => (format!("/api/tasks/{t}/attachments"), Body::None),
            ("POST", "/api/tasks/{id}/attachments", Shared) => {
                (format!("/api/tasks/{t}/attachments"), Body::Upload("notes.txt", format!("Filed by the {by}")))
            }
            ("GET", "/api/attachments/{id}", Shared) => (format!("/api/attachments/{a}"), Body::None),
            ("GET", "/api/attachments/{id}/link", Shared) => (format!("/api/attachments/{a}/link"), Body::None),
            ("DELETE", "/api/attachments/{id}", Fresh) => {
                (format!("/api/attachments/{}", self.new_attachment(t, "To delete").await), Body::None)
            }
            (m, r, on) => panic!("the matrix has no request for {m} {r} ({on:?})"),
        }
    }
}

/// Registers a `user` account; returns its email and password.
async fn register(http: &Client, base: &str, name: &str, tag: &str) -> (String, String) {
    let (email, password) = (format!("{name}.{tag}@example.com"), format!("canary-password-{tag}"));
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "registration of {name}");
    (email, password)
}

/// Signs in; returns the access token and the user's id.
async fn sign_in(http: &Client, base: &str, email: &str, password: &str) -> (String, String) {
    let token = crate::flow::login_tokens(http, base, email, password).await.access;
    let me: Value =
        http.get(format!("{base}/api/users/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    (token, me["id"].as_str().unwrap().to_string())
}

/// Every served route of the projects service has a row, and every row a served route.
fn table_covers_every_route() {
    let served = crate::policy::routes_of(&projects::http::routes());
    assert!(served.len() >= 20, "the projects router lists {} routes", served.len());
    let rows: BTreeSet<(String, String)> = TABLE.iter().map(|r| (r.method.into(), r.route.into())).collect();
    let missing: Vec<_> = served.difference(&rows).collect();
    assert!(missing.is_empty(), "routes of the projects service without a row in the matrix: {missing:?}");
    let stale: Vec<_> = rows.difference(&served).collect();
    assert!(stale.is_empty(), "rows of the matrix for routes nobody serves: {stale:?}");
}

/// The administrator `TRELLIS_ADMIN_EMAIL`/`PASSWORD` of the deployments here.
pub const ADMIN: (&str, &str) = ("root@example.com", "canary granite harbour lighthouse keeper");
/// The global guest [`create_guest`] makes.
const GUEST_LOGIN: (&str, &str) = ("matrix.guest@example.com", "canary orchard meadow lantern keeper");

/// Makes the global guest of the matrix with `trellis admin create-user` (before or while the
/// deployment configured by `env` runs).
pub async fn create_guest(cwd: &std::path::Path, env: &[(&str, String)]) {
    let args = ["admin", "create-user", "--email", GUEST_LOGIN.0, "--name", "Guest", "--role", "guest"];
    let (code, _, err) = run_with_stdin(cwd, &args, env, &format!("{}\n", GUEST_LOGIN.1)).await;
    assert_eq!(code, Some(0), "{err}");
}

/// What the log must show of a run of [`matrix`].
pub struct Outcome {
    /// A's project.
    project: String,
    /// The ids of the six callers and B.
    ids: Vec<String>,
    tokens: Vec<String>,
    /// How many refusals B got on A's objects.
    refusals: usize,
}

#[tokio::test]
async fn projects_authorization_matrix_and_foreign_objects() {
    let dir = tempfile::tempdir().unwrap();
    create_guest(dir.path(), &[]).await;
    let env = vec![
        ("TRELLIS_ADMIN_EMAIL", ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", ADMIN.1.to_string()),
        // Admin actions here are about something else than 2FA (that is attack_admin_mfa.rs): a
        // password-only administrator may act.
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".to_string()),
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000".to_string()),
    ];
    let app = Trellis::start("matrix", dir.path(), &[], &env).await;
    let outcome = matrix(&app.base).await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert_refusals_logged(&log, &outcome);
}

/// The matrix and "B cannot touch A's objects" against the deployment at `base`, whose
/// administrator is [`ADMIN`] and whose guest [`create_guest`] made.
pub async fn matrix(base: &str) -> Outcome {
    table_covers_every_route();
    let http = crate::flow::client();
    let base = base.to_string();
    let tag = uuid::Uuid::now_v7().simple().to_string();

    let mut credentials = Vec::new();
    for name in ["owner", "editor", "viewer", "outsider"] {
        credentials.push(register(&http, &base, name, &tag).await);
    }
    credentials.push((GUEST_LOGIN.0.to_string(), GUEST_LOGIN.1.to_string()));
    credentials.push((ADMIN.0.to_string(), ADMIN.1.to_string()));
    let (mut tokens, mut ids) = (Vec::new(), Vec::new());
    for (email, password) in &credentials {
        let (token, id) = sign_in(&http, &base, email, password).await;
        tokens.push(token);
        ids.push(id);
    }
    let other = register(&http, &base, "other", &tag).await;
    let other_member = sign_in(&http, &base, &other.0, &other.1).await.1;
    let intruder = register(&http, &base, "intruder", &tag).await;
    let (token, id) = sign_in(&http, &base, &intruder.0, &intruder.1).await;
    tokens.push(token);
    ids.push(id);

    let mut w = World {
        http: http.clone(),
        base: base.clone(),
        tokens,
        ids,
        other_member,
        project: String::new(),
        task: String::new(),
        comment: String::new(),
        attachment: String::new(),
    };
    w.project = w.new_project("Zanzibar orchard", false).await;
    w.task = w.new_task(&w.project, "Zanzibar harvest").await;
    w.comment = w.new_comment(&w.task, "Zanzibar figs are ripe").await;
    w.attachment = w.new_attachment(&w.task, "the owner's notes").await;

    // The matrix: every row × every caller, every mismatch listed at once.
    let mut wrong = Vec::new();
    for row in TABLE {
        let access = api::policy::access(row.method, row.route).expect("every projects route has a policy rule");
        for (who, name) in CALLERS.iter().enumerate() {
            let (path, body) = w.request(row, who).await;
            let a = w.call(who, row.method, &path, body).await;
            let what = format!("{} {} ({:?}) as the {name}", row.method, row.route, row.on);
            if a.status.as_u16() != row.expect[who] {
                wrong.push(format!("{what}: expected {}, got {} {}", row.expect[who], a.status, a.json()));
                continue;
            }
            if a.status.is_client_error() && !a.is_problem() {
                wrong.push(format!("{what}: {} is not problem+json ({})", a.status, a.content_type));
            }
            // A guest's 403 on a writing route is the role gate's; every other 403 the service's.
            let gate = a.status == StatusCode::FORBIDDEN && a.json()["detail"] == platform::http::ROLE_DENIED;
            let gate_expected =
                a.status == StatusCode::FORBIDDEN && who == GUEST && access == api::policy::Access::Write;
            if gate != gate_expected {
                wrong.push(format!("{what}: role gate {gate}, expected {gate_expected}: {}", a.json()));
            }
        }
    }
    assert!(wrong.is_empty(), "the authorization matrix differs in {} cases:\n{}", wrong.len(), wrong.join("\n"));

    let refusals = foreign_objects(&w).await;
    Outcome { project: w.project.clone(), ids: w.ids.clone(), tokens: w.tokens.clone(), refusals }
}

/// AZ-11: every refusal of B's is logged with who asked and the project they may not see; the
/// service's own 403s are logged like the role gate's; no password or token is in the log.
pub fn assert_refusals_logged(log: &str, o: &Outcome) {
    let denied: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("authorization denied"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let of_b = denied.iter().filter(|v| v["fields"]["user_id"] == o.ids[INTRUDER]).collect::<Vec<_>>();
    assert_eq!(of_b.len(), o.refusals, "each refusal of B on A's objects is logged once:\n{log}");
    assert!(of_b.iter().all(|v| v["fields"]["project_id"] == o.project && v["fields"]["role"] == "user"), "{of_b:?}");
    assert!(
        denied.iter().any(|v| v["fields"]["user_id"] == o.ids[VIEWER]
            && v["fields"]["by"] == "service"
            && v["fields"]["method"] == "PATCH"
            && v["fields"]["route"] == "/api/tasks/{id}"),
        "the viewer's refused task change is logged:\n{log}"
    );
    assert!(
        denied.iter().any(|v| v["fields"]["user_id"] == o.ids[GUEST] && v["fields"]["role"] == "guest"),
        "the guest's refusals are logged"
    );
    assert!(!log.contains("canary"), "no password reaches the logs");
    for t in &o.tokens {
        assert!(!log.contains(t.as_str()), "no access token reaches the logs");
    }
}

/// Everything A (the owner) can read of their objects: each answer's status, `ETag` and bytes.
async fn snapshot(w: &World) -> Vec<(String, StatusCode, Option<String>, Vec<u8>)> {
    let (p, t, c, a) = (&w.project, &w.task, &w.comment, &w.attachment);
    let mut out = Vec::new();
    for path in [
        format!("/api/projects/{p}"),
        format!("/api/projects/{p}/members"),
        format!("/api/projects/{p}/tasks"),
        format!("/api/tasks/{t}"),
        format!("/api/tasks/{t}/comments"),
        format!("/api/comments/{c}"),
        format!("/api/tasks/{t}/attachments"),
        format!("/api/attachments/{a}"),
    ] {
        let ans = w.call(OWNER, "GET", &path, Body::None).await;
        assert_eq!(ans.status, StatusCode::OK, "A reads {path}");
        out.push((path, ans.status, ans.etag, ans.bytes));
    }
    out
}

/// "User B cannot touch user A's objects" (AZ-3): B (the [`INTRUDER`], owner of a project of their
/// own) calls every id-taking route with A's ids, and mixes of A's and B's; every answer is 404,
/// the same as for an id that names nothing. A then finds everything unchanged, and search as B
/// finds none of A's objects. Returns how many refusals B got on A's objects.
async fn foreign_objects(w: &World) -> usize {
    const B: usize = INTRUDER;
    let (pa, ta, ca, fa) = (w.project.clone(), w.task.clone(), w.comment.clone(), w.attachment.clone());
    let (a_id, b_id) = (w.ids[OWNER].clone(), w.ids[B].clone());
    let b_call = |method: &'static str, path: String, body: Value| async move {
        let body = if body.is_null() { Body::None } else { Body::Json(body) };
        w.call(B, method, &path, body).await
    };
    let pb = b_call("POST", "/api/projects".into(), json!({"name": "Marrakesh market"})).await.id();
    let tb = b_call("POST", format!("/api/projects/{pb}/tasks"), json!({"title": "Marrakesh spices"})).await.id();
    let cb = b_call("POST", format!("/api/tasks/{tb}/comments"), json!({"body": "Marrakesh saffron"})).await;
    assert_eq!(cb.status, StatusCode::CREATED);
    let upload = w.call(B, "POST", &format!("/api/tasks/{tb}/attachments"), Body::Upload("b.txt", "B's".into())).await;
    assert_eq!(upload.status, StatusCode::CREATED);

    let before = snapshot(w).await;
    let none = Value::Null;
    // (method, path with A's ids, the same path with an id that names nothing, body)
    let nothing = uuid::Uuid::now_v7().to_string();
    let calls: Vec<(&str, String, String, Value)> = vec![
        ("GET", format!("/api/projects/{pa}"), format!("/api/projects/{nothing}"), none.clone()),
        ("PATCH", format!("/api/projects/{pa}"), format!("/api/projects/{nothing}"), json!({"name": "Taken"})),
        ("DELETE", format!("/api/projects/{pa}"), format!("/api/projects/{nothing}"), none.clone()),
        ("GET", format!("/api/projects/{pa}/members"), format!("/api/projects/{nothing}/members"), none.clone()),
        (
            "POST",
            format!("/api/projects/{pa}/members"),
            format!("/api/projects/{nothing}/members"),
            json!({"user_id": b_id, "role": "owner"}),
        ),
        (
            "GET",
            format!("/api/projects/{pa}/members/{a_id}"),
            format!("/api/projects/{nothing}/members/{a_id}"),
            none.clone(),
        ),
        (
            "PATCH",
            format!("/api/projects/{pa}/members/{a_id}"),
            format!("/api/projects/{nothing}/members/{a_id}"),
            json!({"role": "viewer"}),
        ),
        (
            "PATCH",
            format!("/api/projects/{pa}/members/{b_id}"),
            format!("/api/projects/{nothing}/members/{b_id}"),
            json!({"role": "owner"}),
        ),
        (
            "DELETE",
            format!("/api/projects/{pa}/members/{a_id}"),
            format!("/api/projects/{nothing}/members/{a_id}"),
            none.clone(),
        ),
        (
            "DELETE",
            format!("/api/projects/{pa}/members/{b_id}"),
            format!("/api/projects/{nothing}/members/{b_id}"),
            none.clone(),
        ),
        ("GET", format!("/api/projects/{pa}/tasks"), format!("/api/projects/{nothing}/tasks"), none.clone()),
        (
            "POST",
            format!("/api/projects/{pa}/tasks"),
            format!("/api/projects/{nothing}/tasks"),
            json!({"title": "Planted"}),
        ),
        (
            "POST",
            format!("/api/projects/{pa}/tasks"),
            format!("/api/projects/{nothing}/tasks"),
            json!({"title": "Planted", "after_id": tb}),
        ),
        ("GET", format!("/api/tasks/{ta}"), format!("/api/tasks/{nothing}"), none.clone()),
        ("PATCH", format!("/api/tasks/{ta}"), format!("/api/tasks/{nothing}"), json!({"title": "Taken"})),
        ("PATCH", format!("/api/tasks/{ta}"), format!("/api/tasks/{nothing}"), json!({"before_id": tb})),
        ("PATCH", format!("/api/tasks/{ta}"), format!("/api/tasks/{nothing}"), json!({"assignee_id": b_id})),
        ("DELETE", format!("/api/tasks/{ta}"), format!("/api/tasks/{nothing}"), none.clone()),
        ("GET", format!("/api/tasks/{ta}/comments"), format!("/api/tasks/{nothing}/comments"), none.clone()),
        (
            "POST",
            format!("/api/tasks/{ta}/comments"),
            format!("/api/tasks/{nothing}/comments"),
            json!({"body": "Planted"}),
        ),
        ("GET", format!("/api/comments/{ca}"), format!("/api/comments/{nothing}"), none.clone()),
        ("PATCH", format!("/api/comments/{ca}"), format!("/api/comments/{nothing}"), json!({"body": "Taken"})),
        ("DELETE", format!("/api/comments/{ca}"), format!("/api/comments/{nothing}"), none.clone()),
        ("GET", format!("/api/tasks/{ta}/attachments"), format!("/api/tasks/{nothing}/attachments"), none.clone()),
        ("GET", format!("/api/attachments/{fa}"), format!("/api/attachments/{nothing}"), none.clone()),
        ("DELETE", format!("/api/attachments/{fa}"), format!("/api/attachments/{nothing}"), none.clone()),
    ];
    let mut wrong = Vec::new();
    let mut refusals = 0;
    let mut check = |what: String, got: &Answer, unknown: &Answer| {
        if got.status != StatusCode::NOT_FOUND || !got.is_problem() {
            wrong.push(format!("{what}: {} {} ({})", got.status, got.json(), got.content_type));
        } else if got.shape() != unknown.shape() {
            wrong.push(format!("{what}: {} differs from an unknown id's {}", got.json(), unknown.json()));
        } else {
            refusals += 1;
        }
    };
    for (method, path, unknown_path, body) in &calls {
        let got = b_call(method, path.clone(), body.clone()).await;
        let unknown = b_call(method, unknown_path.clone(), body.clone()).await;
        check(format!("B: {method} {path} {body}"), &got, &unknown);
    }
    let upload = |task: String| async move {
        w.call(B, "POST", &format!("/api/tasks/{task}/attachments"), Body::Upload("x.txt", "planted".into())).await
    };
    check(format!("B: upload to A's task {ta}"), &upload(ta.clone()).await, &upload(nothing.clone()).await);
    // B's own project: A is no member of it, whatever A's id says elsewhere.
    for (method, body) in [("PATCH", json!({"role": "viewer"})), ("DELETE", none.clone())] {
        let got = b_call(method, format!("/api/projects/{pb}/members/{a_id}"), body.clone()).await;
        let unknown = b_call(method, format!("/api/projects/{pb}/members/{nothing}"), body).await;
        if got.status != StatusCode::NOT_FOUND || got.shape() != unknown.shape() {
            wrong.push(format!("B: {method} A as a member of B's project: {} {}", got.status, got.json()));
        }
    }
    // B's own task next to, or assigned to, A's: refused as for an id that names nothing (422).
    for (field, body) in [
        ("before_id", json!({"before_id": ta})),
        ("after_id", json!({"after_id": ta})),
        ("assignee_id", json!({"assignee_id": a_id})),
    ] {
        let mut unknown_body = body.clone();
        unknown_body[field] = json!(nothing);
        let got = b_call("PATCH", format!("/api/tasks/{tb}"), body.clone()).await;
        let unknown = b_call("PATCH", format!("/api/tasks/{tb}"), unknown_body).await;
        if got.status != StatusCode::UNPROCESSABLE_ENTITY || got.shape() != unknown.shape() {
            wrong.push(format!("B: PATCH B's task {body}: {} {} vs {}", got.status, got.json(), unknown.json()));
        }
    }
    let got =
        b_call("POST", format!("/api/projects/{pb}/tasks"), json!({"title": "Next to A's", "after_id": ta})).await;
    if got.status != StatusCode::UNPROCESSABLE_ENTITY {
        wrong.push(format!("B: a task of B's after A's: {} {}", got.status, got.json()));
    }
    assert!(wrong.is_empty(), "B reached A's objects in {} cases:\n{}", wrong.len(), wrong.join("\n"));

    // A finds everything as it was: same ETags, same bytes.
    let after = snapshot(w).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "A's {} changed while B tried", b.0);
    }
    // Search: B finds their own objects and none of A's; A finds A's.
    let search = |who: usize, q: &'static str| async move {
        let ans = w.call(who, "GET", &format!("/api/search?q={q}"), Body::None).await;
        assert_eq!(ans.status, StatusCode::OK);
        ans.json()["items"].as_array().unwrap().clone()
    };
    let of_a = search(OWNER, "zanzibar").await;
    assert!(of_a.len() >= 3, "A finds the project, the task and the comment: {of_a:?}");
    assert!(search(B, "zanzibar").await.is_empty(), "B finds nothing of A's");
    assert!(search(B, "zanz").await.is_empty(), "not by a prefix either");
    let of_b = search(B, "marrakesh").await;
    assert!(of_b.len() >= 3, "B finds their own: {of_b:?}");
    assert!(of_b.iter().all(|h| h["project_id"] == pb.as_str()), "{of_b:?}");
    refusals
}
