//! The role gate's table test (docs/SECURITY.md AZ-1, AZ-2): every route of every router and every
//! operation of the served OpenAPI document has exactly one rule in `api::policy::POLICY` and
//! every rule a route; and for every rule × {anonymous, guest, user, admin} the real binary
//! answers as the rule says: 401 for anonymous on a signed-in route, 403 from the role gate for a
//! role that may not, anything else for a role that may.

use std::collections::BTreeSet;

use api::policy::{Access, Decision, PLANNED, POLICY};
use api::users::Role;
use reqwest::{Client, Method, StatusCode, header};
use serde_json::{Value, json};

type Route = (String, String);

/// `(method, path)` pairs of an axum router, read from its `Debug` form: the route ids with their
/// paths, and each route's `Allow` header (the methods it serves; `HEAD` follows `GET`). Axum
/// has no public route listing; if its `Debug` form ever changes, this finds no routes and the
/// test fails loudly rather than passing on nothing.
pub fn routes_of<S>(router: &axum::Router<S>) -> BTreeSet<Route> {
    let dump = format!("{router:?}");
    // The routes proper; the fallback router lists axum's catch-all, which no rule is for.
    let dump = dump.split("fallback_router").next().unwrap_or_default().to_string();
    let mut paths = std::collections::HashMap::new();
    let mut methods = std::collections::HashMap::new();
    for (i, _) in dump.match_indices("RouteId(") {
        let rest = &dump[i + "RouteId(".len()..];
        let Some((id, after)) = rest.split_once(')') else { continue };
        if let Some(path) = after.strip_prefix(": \"") {
            paths.insert(id.to_string(), path[..path.find('"').unwrap_or(0)].to_string());
        } else if after.starts_with(": MethodRouter(") {
            let allow = after.find("allow_header: Bytes(b\"").map(|j| &after[j + "allow_header: Bytes(b\"".len()..]);
            let allow = allow.map(|a| a[..a.find('"').unwrap_or(0)].to_string()).unwrap_or_default();
            methods.insert(id.to_string(), allow);
        }
    }
    let mut out = BTreeSet::new();
    for (id, path) in &paths {
        let allow = methods.get(id).unwrap_or_else(|| panic!("no methods found for {path} in {dump}"));
        for m in allow.split(',').filter(|m| !m.is_empty() && *m != "HEAD") {
            out.insert((m.to_string(), path.clone()));
        }
    }
    out
}

/// Every route any Trellis process serves: each service's public and internal routers, the
/// gateway's own and the operations routes.
fn served_routes() -> BTreeSet<Route> {
    let mut all = BTreeSet::new();
    let mut add = |name: &str, routes: BTreeSet<Route>| {
        assert!(!routes.is_empty(), "found no routes in the {name} router: has axum's Debug form changed?");
        for r in routes {
            assert!(all.insert(r.clone()), "{} {} is served twice", r.0, r.1);
        }
    };
    add("auth", routes_of(&auth::http::routes()));
    add("auth internal", routes_of(&auth::http::internal_routes()));
    add("users", routes_of(&users::http::routes()));
    add("users internal", routes_of(&users::http::internal_routes()));
    add("projects", routes_of(&projects::http::routes()));
    add("projects internal", routes_of(&projects::http::internal_routes()));
    add("worker", routes_of(&worker::http::routes()));
    add("worker live", routes_of(&worker::live::routes()));
    add("gateway", routes_of(&gateway::openapi_routes(String::new())));
    add("operations", routes_of(&platform::http::health_routes(platform::http::Readiness::default())));
    all
}

fn table() -> BTreeSet<Route> {
    POLICY.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect()
}

fn planned(r: &Route) -> bool {
    PLANNED.iter().any(|(m, p)| *m == r.0 && *p == r.1)
}

#[test]
fn every_route_has_exactly_one_rule_and_every_rule_a_route() {
    let served = served_routes();
    let table = table();
    assert_eq!(table.len(), POLICY.len(), "a route has two rules");
    let unruled: Vec<_> = served.difference(&table).collect();
    assert!(
        unruled.is_empty(),
        "routes without a rule in api::policy::POLICY (deny by default answers 403): {unruled:?}"
    );
    let missing: Vec<_> = table.difference(&served).filter(|r| !planned(r)).collect();
    assert!(missing.is_empty(), "rules for routes nobody serves: {missing:?}");
    let arrived: Vec<_> = PLANNED.iter().filter(|(m, p)| served.contains(&(m.to_string(), p.to_string()))).collect();
    assert!(arrived.is_empty(), "these routes exist now: remove them from api::policy::PLANNED: {arrived:?}");
}

/// Routes the OpenAPI document leaves out on purpose: service-to-service and operations.
fn undocumented(r: &api::policy::Rule) -> bool {
    r.access == Access::Internal
        || ["/healthz", "/readyz", "/metrics", "/api/openapi.json", "/api/docs", "/api/docs/docs.js"].contains(&r.path)
}

/// The served OpenAPI document names exactly the documented rules that have a route.
pub async fn openapi_matches_the_table(http: &Client, base: &str) {
    let doc: Value = http.get(format!("{base}/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served = served_routes();
    let expected: BTreeSet<Route> = POLICY
        .iter()
        .filter(|r| !undocumented(r))
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .filter(|r| served.contains(r))
        .collect();
    assert_eq!(documented, expected, "the OpenAPI document and the policy table disagree");
}

/// A signed-in caller of one role.
pub struct Login {
    pub role: Role,
    pub email: String,
    pub password: String,
    pub access: String,
}

impl Login {
    pub async fn new(http: &Client, base: &str, role: Role, email: &str, password: &str) -> Login {
        let mut l = Login { role, email: email.into(), password: password.into(), access: String::new() };
        l.refresh(http, base).await;
        l
    }

    async fn refresh(&mut self, http: &Client, base: &str) {
        let res = crate::flow::post_login(http, base, &self.email, &self.password).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "login of the {:?}", self.role);
        let t: Value = res.json().await.unwrap();
        assert_eq!(t["user"]["role"], self.role.as_str());
        self.access = t["access_token"].as_str().unwrap().to_string();
    }
}

/// Every rule × {anonymous, guest, user, admin} against a running deployment.
pub async fn matrix(http: &Client, base: &str, logins: &mut [Login]) {
    let served = served_routes();
    let mut checked = 0;
    for rule in POLICY {
        if !served.contains(&(rule.method.to_string(), rule.path.to_string())) {
            continue; // planned, not built yet; the routers test says when it is
        }
        // Any id will do: the gate decides before the handler looks anything up.
        let path = rule.path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for who in std::iter::once(None).chain((0..logins.len()).map(Some)) {
            let role = who.map(|i| logins[i].role);
            let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
            let mut req = http.request(method.clone(), format!("{base}{path}"));
            if method != Method::GET && method != Method::DELETE {
                req = req.json(&json!({}));
            }
            if let Some(i) = who {
                req = req.bearer_auth(&logins[i].access);
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let gate_denied = status == StatusCode::FORBIDDEN && body["detail"] == platform::http::ROLE_DENIED;
            let what = format!("{} {} as {role:?}: {status} {body}", rule.method, rule.path);
            if rule.access == Access::Internal {
                // A bearer token is no service credential (docs/SECURITY.md GW-6).
                assert_eq!(status, StatusCode::UNAUTHORIZED, "internal routes are for services only: {what}");
                assert_eq!(body["code"], "service_credential_required", "{what}");
                continue;
            }
            match rule.access.decide(role) {
                Decision::Unauthenticated => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                Decision::Forbidden => assert!(gate_denied, "the role gate refuses: {what}"),
                Decision::Allow => {
                    assert!(status != StatusCode::UNAUTHORIZED && !gate_denied, "allowed: {what}");
                    assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "the route is served: {what}");
                }
            }
            checked += 1;
            // Some allowed calls end the caller's session (logout): sign in again.
            if let Some(i) = who
                && crate::flow::me_status(http, base, &logins[i].access).await == StatusCode::UNAUTHORIZED
            {
                logins[i].refresh(http, base).await;
            }
        }
    }
    assert!(checked >= 4 * 20, "the matrix walked {checked} cases");
    // A method the table does not list on a listed path is 405 with the table's methods.
    let res = http.delete(format!("{base}/api/projects")).bearer_auth(&logins[2].access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()[header::ALLOW], "GET, POST");
}
