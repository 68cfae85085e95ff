//! The role gate (RBAC, docs/SECURITY.md AZ-1/AZ-2): one table that names, for every route any
//! Trellis process serves, who may call it. It is the single source of the role × route matrix;
//! `platform::http::enforce_policy` applies it to every service router, and a test walks every
//! router and the OpenAPI document against it.
//!
//! Deny by default: a route that is served but missing here answers 403. Services keep their
//! object-level checks (project membership, "only the user themself"); this table only says which
//! global roles may reach a route at all.
//!
//! Roles: `admin` may do everything, `user` is the standard role, `guest` is read-only: it may
//! read what it can see and manage its own sessions and credentials, nothing else.

use crate::users::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, signed in or not (login, registration, the JWKS, health).
    Public,
    /// Any signed-in caller, guests included (reads, and managing one's own account).
    Authenticated,
    /// Signed-in callers that may change shared data: `user` and `admin`; guests get 403.
    Write,
    /// Administrators only.
    Admin,
    /// Other Trellis services only: the request must have passed the internal-token guard.
    /// Anyone else gets 404, as if the route did not exist.
    Internal,
}

/// What the gate decides for one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 401: the route needs a signed-in caller and there is none.
    Unauthenticated,
    /// 403: the caller's role may not use the route.
    Forbidden,
}

impl Access {
    /// The decision for a caller with `role` (`None`: anonymous). `Internal` routes are decided by
    /// the internal-token guard, not by roles: this says `Forbidden` for every role.
    pub fn decide(self, role: Option<Role>) -> Decision {
        match (self, role) {
            (Access::Public, _) => Decision::Allow,
            (Access::Internal, _) => Decision::Forbidden,
            (_, None) => Decision::Unauthenticated,
            (Access::Authenticated, Some(_)) => Decision::Allow,
            (Access::Write, Some(Role::Admin | Role::User)) => Decision::Allow,
            (Access::Write, Some(Role::Guest)) => Decision::Forbidden,
            (Access::Admin, Some(Role::Admin)) => Decision::Allow,
            (Access::Admin, Some(_)) => Decision::Forbidden,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Write => "write",
            Access::Admin => "admin",
            Access::Internal => "internal",
        }
    }
}

/// One route: its method, its path template exactly as the router declares it, and its access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule { method, path, access }
}

use Access::{Authenticated, Internal, Public, Write};

/// Every route of every Trellis process. `HEAD` follows `GET`.
pub const POLICY: &[Rule] = &[
    // auth: credentials and sessions.
    rule("POST", "/auth/register", Public),
    rule("POST", "/auth/login", Public),
    rule("POST", "/auth/login/mfa", Public),
    rule("POST", "/auth/refresh", Public),
    rule("POST", "/auth/verify", Public),
    rule("POST", "/auth/logout", Authenticated),
    rule("POST", "/auth/logout-all", Authenticated),
    rule("GET", "/auth/sessions", Authenticated),
    rule("DELETE", "/auth/sessions/{id}", Authenticated),
    rule("POST", "/auth/password/change", Authenticated),
    rule("POST", "/auth/password/forgot", Public),
    rule("POST", "/auth/password/reset", Public),
    rule("POST", "/auth/email/verify", Public),
    rule("POST", "/auth/email/verify/resend", Authenticated),
    rule("POST", "/auth/mfa/totp/setup", Authenticated),
    rule("POST", "/auth/mfa/totp/enable", Authenticated),
    rule("POST", "/auth/mfa/totp/disable", Authenticated),
    // step-up guarded (the service checks the proof): new recovery codes; an admin removing a
    // user's second factor; the links mailed for an email change (the token is the credential).
    rule("POST", "/auth/mfa/recovery-codes", Authenticated),
    rule("POST", "/auth/users/{id}/mfa/reset", Access::Admin),
    rule("POST", "/auth/email/change/confirm", Public),
    rule("POST", "/auth/email/change/undo", Public),
    rule("GET", "/.well-known/jwks.json", Public),
    // users: the caller, other users (full view for themself and admins, `{id, name}` else);
    // PATCH is open to every signed-in caller because a user may rename themself; role and status
    // changes are admin-only in the service (a property-level check, docs/SECURITY.md AZ-4).
    rule("GET", "/api/users/me", Authenticated),
    rule("GET", "/api/users/{id}", Authenticated),
    rule("PATCH", "/api/users/{id}", Authenticated),
    // search: everyone signed in (non-admins find only active co-members' `{id, name}`, by name);
    // export (POST, with the current password; GET is always 403 step_up_required), erasure and
    // preferences are the user's own (and admins'), checked in the service: a guest may still
    // set their own preferences and erase their own account.
    rule("GET", "/api/users", Authenticated),
    rule("DELETE", "/api/users/{id}", Authenticated),
    rule("GET", "/api/users/{id}/preferences", Authenticated),
    rule("PUT", "/api/users/{id}/preferences", Authenticated),
    rule("GET", "/api/users/{id}/export", Authenticated),
    rule("POST", "/api/users/{id}/export", Authenticated),
    // projects and tasks: guests read what they are members of, but never write.
    rule("GET", "/api/projects", Authenticated),
    rule("POST", "/api/projects", Write),
    rule("GET", "/api/projects/{id}", Authenticated),
    rule("PATCH", "/api/projects/{id}", Write),
    rule("DELETE", "/api/projects/{id}", Write),
    rule("GET", "/api/projects/{id}/members", Authenticated),
    rule("POST", "/api/projects/{id}/members", Write),
    rule("GET", "/api/projects/{id}/members/{user_id}", Authenticated),
    rule("PATCH", "/api/projects/{id}/members/{user_id}", Write),
    // A guest member may still leave a project (the service lets members remove themselves).
    rule("DELETE", "/api/projects/{id}/members/{user_id}", Authenticated),
    rule("GET", "/api/projects/{id}/tasks", Authenticated),
    rule("POST", "/api/projects/{id}/tasks", Write),
    rule("GET", "/api/tasks/{id}", Authenticated),
    rule("PATCH", "/api/tasks/{id}", Write),
    rule("DELETE", "/api/tasks/{id}", Write),
    // comments and search (the service checks membership; owners and editors comment, the
    // author changes, the author, owners and admins delete; guests only read).
    rule("GET", "/api/tasks/{id}/comments", Authenticated),
    rule("POST", "/api/tasks/{id}/comments", Write),
    rule("GET", "/api/comments/{id}", Authenticated),
    rule("PATCH", "/api/comments/{id}", Write),
    rule("DELETE", "/api/comments/{id}", Write),
    rule("GET", "/api/search", Authenticated),
    // attachments: upload and delete write (the uploader, owners, editors, admins: in the
    // service); list and download for members.
    rule("GET", "/api/tasks/{id}/attachments", Authenticated),
    rule("POST", "/api/tasks/{id}/attachments", Write),
    rule("GET", "/api/attachments/{id}", Authenticated),
    rule("GET", "/api/attachments/{id}/link", Authenticated),
    rule("DELETE", "/api/attachments/{id}", Write),
    // admin: the hash-chained audit log and the usage statistics drawn from it (served by the worker).
    rule("GET", "/api/admin/audit-log", Access::Admin),
    rule("GET", "/api/admin/audit-log/verify", Access::Admin),
    rule("GET", "/api/admin/stats", Access::Admin),
    // live updates (served by the worker): the WebSocket authenticates inside its protocol (the
    // token as subprotocol or first message), so the gate lets the upgrade through.
    rule("GET", "/api/ws", Public),
    // gateway: the API description.
    rule("GET", "/api/openapi.json", Public),
    rule("GET", "/api/docs", Public),
    rule("GET", "/api/docs/docs.js", Public),
    // every process: operations.
    rule("GET", "/healthz", Public),
    rule("GET", "/readyz", Public),
    rule("GET", "/metrics", Public),
    // service to service, behind the internal token.
    rule("POST", "/internal/users", Internal),
    rule("POST", "/internal/users/lookup", Internal),
    rule("GET", "/internal/users/{id}", Internal),
    rule("DELETE", "/internal/users/{id}", Internal),
    rule("PUT", "/internal/users/{id}/mfa", Internal),
    rule("POST", "/internal/users/{id}/email-verified", Internal),
    rule("PUT", "/internal/users/{id}/email", Internal),
    rule("GET", "/internal/users/{id}/notifications", Internal),
    rule("GET", "/internal/sessions/{id}", Internal),
    rule("POST", "/internal/sessions/end-all", Internal),
    rule("POST", "/internal/auth/password-check", Internal),
    rule("POST", "/internal/auth/email-changed", Internal),
    rule("POST", "/internal/auth/step-up", Internal),
    rule("POST", "/internal/auth/email-change", Internal),
    rule("POST", "/internal/auth/personal-data/export", Internal),
    rule("POST", "/internal/auth/personal-data/erase", Internal),
    rule("POST", "/internal/projects/personal-data/export", Internal),
    rule("POST", "/internal/projects/personal-data/erase", Internal),
    rule("POST", "/internal/projects/access", Internal),
    rule("GET", "/internal/projects/tasks/{id}", Internal),
    rule("GET", "/internal/projects/comments/{id}", Internal),
    rule("POST", "/internal/projects/co-members", Internal),
];

/// Routes other branches are building while this table already names them. An entry listed here
/// may have no route yet; the table test fails as soon as the route exists, so that the mark is
/// removed and the route is held to the table like any other.
pub const PLANNED: &[(&str, &str)] = &[];

/// The access of `method path` (`path` is the route template, e.g. `/api/projects/{id}`).
pub fn access(method: &str, path: &str) -> Option<Access> {
    let method = if method == "HEAD" { "GET" } else { method };
    POLICY.iter().find(|r| r.method == method && r.path == path).map(|r| r.access)
}

/// The methods the table allows on `path`, for an `Allow` header.
pub fn methods(path: &str) -> Vec<&'static str> {
    POLICY.iter().filter(|r| r.path == path).map(|r| r.method).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_exactly_one_rule() {
        for (i, a) in POLICY.iter().enumerate() {
            assert!(a.path.starts_with('/'), "{a:?}");
            assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&a.method), "{a:?}");
            for b in &POLICY[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "two rules for {} {}", a.method, a.path);
            }
        }
        for (m, p) in PLANNED {
            assert!(access(m, p).is_some(), "planned route {m} {p} has a rule");
        }
    }

    #[test]
    fn the_role_matrix() {
        use Decision::{Allow, Forbidden, Unauthenticated};
        let roles = [None, Some(Role::Guest), Some(Role::User), Some(Role::Admin)];
        let expect = |a: Access| roles.map(|r| a.decide(r));
        assert_eq!(expect(Public), [Allow, Allow, Allow, Allow]);
        assert_eq!(expect(Authenticated), [Unauthenticated, Allow, Allow, Allow]);
        assert_eq!(expect(Write), [Unauthenticated, Forbidden, Allow, Allow]);
        assert_eq!(expect(Access::Admin), [Unauthenticated, Forbidden, Forbidden, Allow]);
        assert_eq!(expect(Internal), [Forbidden, Forbidden, Forbidden, Forbidden]);
    }

    #[test]
    fn lookups_are_exact_and_head_follows_get() {
        assert_eq!(access("POST", "/api/projects"), Some(Write));
        assert_eq!(access("HEAD", "/api/projects"), Some(Authenticated));
        assert_eq!(access("DELETE", "/api/projects"), None);
        assert_eq!(access("GET", "/api/projects/123"), None, "templates, not concrete paths");
        assert_eq!(methods("/api/projects"), vec!["GET", "POST"]);
    }
}
