//! The routing table: which service owns which paths, and how each is reached.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;

use crate::proxy::Proxy;

/// The services a `trellis` process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    Gateway,
    Auth,
    Users,
    Projects,
    Worker,
}

impl ServiceName {
    pub fn all() -> [ServiceName; 5] {
        [ServiceName::Gateway, ServiceName::Auth, ServiceName::Users, ServiceName::Projects, ServiceName::Worker]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Auth => "auth",
            ServiceName::Users => "users",
            ServiceName::Projects => "projects",
            ServiceName::Worker => "worker",
        }
    }

    /// Path prefixes this service owns behind the gateway (the worker: the admin audit log, the
    /// usage statistics drawn from it, and live updates).
    pub fn public_paths(self) -> &'static [&'static str] {
        match self {
            ServiceName::Auth => &["/auth", "/.well-known"],
            ServiceName::Users => &["/api/users"],
            ServiceName::Projects => {
                &["/api/projects", "/api/tasks", "/api/comments", "/api/attachments", "/api/search"]
            }
            ServiceName::Worker => &["/api/admin/audit-log", "/api/admin/stats", "/api/ws"],
            ServiceName::Gateway => &[],
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::all()
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| format!("unknown service {s:?}; expected one of gateway, auth, users, projects, worker"))
    }
}

/// How the gateway reaches one service.
pub enum Backend {
    /// The service runs in this process: its router is merged in.
    Local(Router),
    /// The service runs elsewhere: requests are proxied to these base URLs, round-robin.
    Remote(Vec<String>),
}

pub struct Backends {
    pub auth: Backend,
    pub users: Backend,
    pub projects: Backend,
    pub worker: Backend,
}

pub(crate) fn assemble(backends: Backends, proxy: &Arc<Proxy>) -> anyhow::Result<Router> {
    let mut router = Router::new();
    for (name, backend) in [
        (ServiceName::Auth, backends.auth),
        (ServiceName::Users, backends.users),
        (ServiceName::Projects, backends.projects),
        (ServiceName::Worker, backends.worker),
    ] {
        router = match backend {
            Backend::Local(r) => router.merge(r),
            Backend::Remote(bases) => {
                let upstream = proxy.upstream(name, bases)?;
                let mut r = router;
                for prefix in name.public_paths() {
                    let handler = {
                        let (proxy, upstream) = (proxy.clone(), upstream.clone());
                        move |req| {
                            let (proxy, upstream) = (proxy.clone(), upstream.clone());
                            async move { proxy.forward(&upstream, req).await }
                        }
                    };
                    r = r.route(prefix, any(handler.clone())).route(&format!("{prefix}/{{*rest}}"), any(handler));
                }
                r
            }
        };
    }
    Ok(router)
}

#[cfg(test)]
mod tests {
    use super::ServiceName;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for n in ServiceName::all() {
            assert_eq!(n.as_str().parse::<ServiceName>().unwrap(), n);
        }
        assert!("billing".parse::<ServiceName>().is_err());
    }
}
