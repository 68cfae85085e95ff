//! `KeySource` over HTTP: the JWKS of a remote auth service, for processes that verify tokens but
//! do not run the auth service.

use api::ApiError;
use api::auth::{Jwks, KeySource};
use async_trait::async_trait;
use platform::client::ServiceClient;
use reqwest::Method;

pub struct HttpKeySource(pub ServiceClient);

#[async_trait]
impl KeySource for HttpKeySource {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        self.0.call::<(), Jwks>(Method::GET, "/.well-known/jwks.json", None).await
    }
}
