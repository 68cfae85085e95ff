//! The `ClientIp` extractor: the address of the client a request came from, as a service sees it.
//!
//! The gateway strips any `X-Forwarded-For` a client sends and sets its own from the peer
//! address. A service in the gateway's process reads the peer address; a service in its own
//! process (split mode) is told so with a [`ClientAddress::ForwardedByGateway`] extension and
//! reads the gateway's header, but only on a request the gateway's service credential came with
//! (a [`ServiceCredential`] from the gateway, `trust_only_the_gateway`): a client that reaches
//! the service directly is known by its peer address, whatever it claims.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::ServiceCredential;

/// Where a process takes its clients' addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAddress {
    /// The TCP peer (the process faces clients itself).
    #[default]
    Peer,
    /// The gateway's `X-Forwarded-For` (the process sits behind the gateway).
    ForwardedByGateway,
}

/// The client's IP address, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let source = parts.extensions.get::<ClientAddress>().copied().unwrap_or_default();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientIp(match source {
            ClientAddress::Peer => peer,
            ClientAddress::ForwardedByGateway
                if !parts.extensions.get::<ServiceCredential>().is_some_and(ServiceCredential::from_gateway) =>
            {
                peer
            }
            ClientAddress::ForwardedByGateway => parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|ip| ip.trim().parse().ok())
                .or(peer),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_auth::{Refusal, ServiceCaller};
    use api::internal::Service;
    use axum::http::Request;

    async fn extract(source: Option<ClientAddress>, xff: Option<&str>) -> Option<IpAddr> {
        extract_from(source, xff, Some(Service::Gateway)).await
    }

    async fn extract_from(source: Option<ClientAddress>, xff: Option<&str>, caller: Option<Service>) -> Option<IpAddr> {
        let mut req = Request::builder().uri("/");
        if let Some(v) = xff {
            req = req.header("x-forwarded-for", v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 4000))));
        if let Some(s) = source {
            parts.extensions.insert(s);
        }
        let credential = match caller {
            Some(caller) => Ok(ServiceCaller { caller, audience: Service::Auth }),
            None => Err(Refusal::Missing),
        };
        parts.extensions.insert(ServiceCredential(credential));
        ClientIp::from_request_parts(&mut parts, &()).await.unwrap().0
    }

    #[tokio::test]
    async fn a_client_cannot_choose_its_address_unless_behind_the_gateway() {
        let peer: IpAddr = [10, 0, 0, 9].into();
        assert_eq!(extract(None, Some("203.0.113.5")).await, Some(peer), "facing clients: the peer, not the header");
        assert_eq!(
            extract(Some(ClientAddress::ForwardedByGateway), Some("203.0.113.5")).await,
            "203.0.113.5".parse().ok()
        );
        assert_eq!(extract(Some(ClientAddress::ForwardedByGateway), Some("garbage")).await, Some(peer));
        assert_eq!(extract(Some(ClientAddress::ForwardedByGateway), None).await, Some(peer));
        for caller in [None, Some(Service::Users), Some(Service::Worker)] {
            assert_eq!(
                extract_from(Some(ClientAddress::ForwardedByGateway), Some("203.0.113.5"), caller).await,
                Some(peer),
                "only the gateway's credential makes the header count: {caller:?}"
            );
        }
    }
}
