//! Which service may call which `/internal/*` route (docs/SECURITY.md AZ-5, GW-6): the second
//! half of the role gate for service-to-service calls. `api::policy` marks a route `Internal`;
//! this table names, for each such route, the one service that owns it and the services that call
//! it, and nothing else may. `platform::http::internal` applies it to the caller a signed service
//! credential names (`platform::service_auth`): no credential or a bad one is 401, a service not
//! listed here is 403. A test holds the table and the `Internal` rules of `api::policy` to each
//! other, so a new internal route is refused to everyone until it is listed here.

use std::fmt;
use std::str::FromStr;

/// A Trellis service, as a caller or as the owner of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Gateway,
    Auth,
    Users,
    Projects,
    Worker,
}

impl Service {
    pub const ALL: [Service; 5] = [Service::Gateway, Service::Auth, Service::Users, Service::Projects, Service::Worker];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Auth => "auth",
            Service::Users => "users",
            Service::Projects => "projects",
            Service::Worker => "worker",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown service {s:?}"))
    }
}

/// One internal route: its method and template exactly as `api::policy` has them, the service
/// that serves it, and the services allowed to call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub owner: Service,
    pub callers: &'static [Service],
}

const fn route(method: &'static str, path: &'static str, owner: Service, callers: &'static [Service]) -> InternalRoute {
    InternalRoute { method, path, owner, callers }
}

use Service::{Auth, Gateway, Projects, Users, Worker};

/// Every internal route with its callers: the real ones, found in the composition root
/// (`crates/trellis/src/app.rs`, who gets which `Http*Client`).
pub const INTERNAL_ROUTES: &[InternalRoute] = &[
    // users: auth registers, signs in (lookup by email), records the second factor, verified
    // emails and confirmed email changes; projects names members and adds them by exact email;
    // the worker mails notifications.
    route("POST", "/internal/users", Users, &[Auth]),
    route("POST", "/internal/users/lookup", Users, &[Auth, Projects]),
    route("GET", "/internal/users/{id}", Users, &[Auth, Projects, Worker]),
    route("DELETE", "/internal/users/{id}", Users, &[Auth]),
    route("PUT", "/internal/users/{id}/mfa", Users, &[Auth]),
    route("POST", "/internal/users/{id}/email-verified", Users, &[Auth]),
    route("PUT", "/internal/users/{id}/email", Users, &[Auth]),
    route("GET", "/internal/users/{id}/notifications", Users, &[Worker]),
    // auth: every process without the auth service checks sessions when verifying tokens; the
    // users service ends sessions on role or status changes, checks passwords and step-up proofs,
    // starts and reports email changes and gathers personal data.
    route("GET", "/internal/sessions/{id}", Auth, &[Gateway, Users, Projects, Worker]),
    route("POST", "/internal/sessions/end-all", Auth, &[Users]),
    route("POST", "/internal/auth/password-check", Auth, &[Users]),
    route("POST", "/internal/auth/email-changed", Auth, &[Users]),
    route("POST", "/internal/auth/step-up", Auth, &[Users]),
    route("POST", "/internal/auth/email-change", Auth, &[Users]),
    route("POST", "/internal/auth/personal-data/export", Auth, &[Users]),
    route("POST", "/internal/auth/personal-data/erase", Auth, &[Users]),
    // projects: personal data and co-members (search visibility) for the users service; project
    // access for the worker (live updates and notifications).
    route("POST", "/internal/projects/personal-data/export", Projects, &[Users]),
    route("POST", "/internal/projects/personal-data/erase", Projects, &[Users]),
    route("POST", "/internal/projects/access", Projects, &[Worker]),
    // the current task or comment, for the worker's notification mails (events carry no text).
    route("GET", "/internal/projects/tasks/{id}", Projects, &[Worker]),
    route("GET", "/internal/projects/comments/{id}", Projects, &[Worker]),
    route("POST", "/internal/projects/co-members", Projects, &[Users]),
];

/// The entry of `method path` (`path` the route template; `HEAD` follows `GET`).
pub fn internal_route(method: &str, path: &str) -> Option<&'static InternalRoute> {
    let method = if method == "HEAD" { "GET" } else { method };
    INTERNAL_ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether `caller` may call `method path`; `false` for a route the table does not list.
pub fn may_call(method: &str, path: &str, caller: Service) -> bool {
    internal_route(method, path).is_some_and(|r| r.callers.contains(&caller))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Access, POLICY};

    #[test]
    fn every_internal_rule_of_the_policy_names_its_callers_and_nothing_else_is_listed() {
        for rule in POLICY.iter().filter(|r| r.access == Access::Internal) {
            assert!(
                internal_route(rule.method, rule.path).is_some(),
                "{} {} is Internal in api::policy but has no callers in api::internal::INTERNAL_ROUTES",
                rule.method,
                rule.path
            );
        }
        for (i, r) in INTERNAL_ROUTES.iter().enumerate() {
            assert_eq!(crate::policy::access(r.method, r.path), Some(Access::Internal), "{r:?}");
            assert!(!r.callers.is_empty(), "{r:?}");
            assert!(!r.callers.contains(&r.owner), "a service calls its own routes in process: {r:?}");
            assert!(r.path.starts_with("/internal/"), "{r:?}");
            for s in &INTERNAL_ROUTES[i + 1..] {
                assert!(!(r.method == s.method && r.path == s.path), "two entries for {} {}", r.method, r.path);
            }
        }
    }

    #[test]
    fn each_route_belongs_to_the_service_its_path_names() {
        for r in INTERNAL_ROUTES {
            let owner = match r.path.split('/').nth(2) {
                Some("users") => Users,
                Some("sessions" | "auth") => Auth,
                Some("projects") => Projects,
                other => panic!("unexpected internal path {other:?}"),
            };
            assert_eq!(r.owner, owner, "{r:?}");
        }
    }

    #[test]
    fn least_privilege_where_it_matters() {
        assert!(may_call("POST", "/internal/auth/password-check", Users));
        for s in [Gateway, Projects, Worker] {
            assert!(!may_call("POST", "/internal/auth/password-check", s), "{s}");
            assert!(!may_call("POST", "/internal/auth/personal-data/erase", s), "{s}");
        }
        assert!(may_call("HEAD", "/internal/sessions/{id}", Gateway));
        assert!(!may_call("POST", "/internal/projects/access", Gateway));
        assert!(!may_call("POST", "/internal/users", Gateway));
        assert!(!may_call("GET", "/internal/nowhere", Auth), "an unlisted route admits nobody");
        for s in Service::ALL {
            assert_eq!(s.as_str().parse::<Service>(), Ok(s));
        }
        assert!("admin".parse::<Service>().is_err());
    }
}
