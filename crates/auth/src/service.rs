//! Use cases of the auth service: registration, login and the signing-key ring.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::auth::{Jwks, KeySource, LoginRequest, RegisterRequest, TokenResponse};
use api::users::{NewUser, Role, User, UserStatus, UsersApi};
use api::{ApiError, FieldError};
use async_trait::async_trait;
use platform::bus::Event;
use platform::clock::Clock;
use platform::crypto::{SealingKey, random_token, sha256};
use platform::identity::AccessClaims;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain;
use crate::keys::{self, SigningKey};
use crate::passwords::{HashError, PasswordHasher};
use crate::ports::{AuthStore, NewSession, StoredKey};

/// Settings of the auth service.
pub struct AuthSettings {
    /// The `iss` of every token, matched exactly by verifiers.
    pub issuer: String,
    /// The `aud` of every token.
    pub audience: String,
    pub access_token_ttl: Duration,
    pub session_lifetime: Duration,
    pub password_min_len: usize,
    pub hasher: PasswordHasher,
    /// Seals private signing keys at rest.
    pub key_encryption_key: SealingKey,
}

/// What can go wrong in auth use cases, beyond `ApiError`s from other services.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Saturated => AuthError::Busy,
            HashError::Failed(m) => AuthError::Api(ApiError::Internal(m)),
        }
    }
}

impl From<platform::db::StoreError> for AuthError {
    fn from(e: platform::db::StoreError) -> Self {
        AuthError::Api(e.into())
    }
}

pub struct AuthService {
    store: Arc<dyn AuthStore>,
    users: Arc<dyn UsersApi>,
    settings: AuthSettings,
    clock: Arc<dyn Clock>,
    keys: RwLock<Vec<Arc<SigningKey>>>,
    outbox_waker: Option<Arc<Notify>>,
}

/// Client details recorded with a session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl AuthService {
    /// Builds the service and loads the signing keys, generating the first one if there is none.
    pub async fn start(
        store: Arc<dyn AuthStore>,
        users: Arc<dyn UsersApi>,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
        outbox_waker: Option<Arc<Notify>>,
    ) -> anyhow::Result<Arc<AuthService>> {
        let svc = AuthService { store, users, settings, clock, keys: RwLock::new(Vec::new()), outbox_waker };
        svc.load_keys().await?;
        if svc.keys.read().unwrap_or_else(|e| e.into_inner()).is_empty() {
            svc.add_key().await?;
        }
        Ok(Arc::new(svc))
    }

    fn aad(kid: &str) -> Vec<u8> {
        format!("auth_signing_keys:{kid}").into_bytes()
    }

    async fn load_keys(&self) -> anyhow::Result<()> {
        let mut loaded = Vec::new();
        for stored in self.store.active_keys().await? {
            let der =
                self.settings.key_encryption_key.open(&stored.private_key, &Self::aad(&stored.kid)).map_err(|_| {
                    anyhow::anyhow!("signing key {} cannot be opened: wrong key-encryption key?", stored.kid)
                })?;
            loaded.push(Arc::new(SigningKey::from_pkcs8(&stored.kid, &der)?));
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Generates a key, stores it sealed, and makes it the current one.
    pub async fn add_key(&self) -> anyhow::Result<()> {
        let key = tokio::task::spawn_blocking(SigningKey::generate).await??;
        let sealed = self.settings.key_encryption_key.seal(&key.to_pkcs8()?, &Self::aad(&key.kid));
        let stored = StoredKey { kid: key.kid.clone(), private_key: sealed, created_at: self.clock.now() };
        self.store.insert_key(&stored, &key.jwk.n, &key.jwk.e).await?;
        tracing::info!(kid = %key.kid, "generated a signing key");
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(0, Arc::new(key));
        Ok(())
    }

    fn current_key(&self) -> Result<Arc<SigningKey>, ApiError> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
            .ok_or_else(|| ApiError::Internal("no signing key".into()))
    }

    fn wake_relay(&self) {
        if let Some(w) = &self.outbox_waker {
            w.notify_one();
        }
    }

    pub async fn register(&self, req: RegisterRequest) -> Result<User, AuthError> {
        let local_part = req.email.split('@').next().unwrap_or_default().to_string();
        let mut context: Vec<&str> = vec!["trellis", &local_part];
        context.extend(req.name.split_whitespace());
        if let Err(r) = domain::check_password(&req.password, self.settings.password_min_len, &context) {
            return Err(
                ApiError::Invalid(vec![FieldError::new("password", format!("{} ({})", r.message, r.code))]).into()
            );
        }
        let hash = self.settings.hasher.hash(&req.password).await?;
        let id = platform::ids::new_id();
        let user = self.users.create_user(NewUser { id, email: req.email, name: req.name, role: Role::User }).await?;
        if let Err(e) = self.store.insert_credential(id, &hash, self.clock.now()).await {
            // Leave no account without a password behind.
            if let Err(cleanup) = self.users.discard_new_user(id).await {
                tracing::error!(user_id = %id, error = %cleanup, "could not discard a half-registered user");
            }
            return Err(e.into());
        }
        tracing::info!(user_id = %id, "user registered");
        Ok(user)
    }

    pub async fn login(&self, req: LoginRequest, client: ClientInfo) -> Result<TokenResponse, AuthError> {
        let user = match self.users.find_by_email(&req.email).await {
            Ok(u) => u,
            Err(ApiError::NotFound) => {
                self.settings.hasher.verify_dummy(&req.password).await?;
                tracing::info!(outcome = "unknown_account", "login failed");
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        let hash = match self.store.password_hash(user.id).await {
            Ok(h) => Some(h),
            Err(platform::db::StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = match &hash {
            Some(h) => self.settings.hasher.verify(&req.password, h).await?,
            None => {
                self.settings.hasher.verify_dummy(&req.password).await?;
                false
            }
        };
        let now = self.clock.now();
        if !ok || user.status != UserStatus::Active {
            let event = Event::new("auth.login_failed", user.id, None, now, json!({ "user_id": user.id }));
            self.store.record_event(&event).await?;
            self.wake_relay();
            tracing::info!(user_id = %user.id, outcome = "rejected", "login failed");
            return Err(AuthError::InvalidCredentials);
        }
        let refresh_token = random_token();
        let session = NewSession {
            id: platform::ids::new_id(),
            user_id: user.id,
            refresh_hash: sha256(refresh_token.as_bytes()),
            user_agent: client.user_agent.map(|ua| ua.chars().take(512).collect()),
            ip: client.ip,
            created_at: now,
            expires_at: now + self.settings.session_lifetime,
        };
        let event = Event::new(
            "auth.login_succeeded",
            user.id,
            Some(user.id),
            now,
            json!({ "user_id": user.id, "session_id": session.id }),
        );
        self.store.create_session(&session, &event).await?;
        self.wake_relay();
        let access_token = self.issue_access_token(&user, session.id)?;
        tracing::info!(user_id = %user.id, session_id = %session.id, "login succeeded");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.settings.access_token_ttl.as_secs(),
            refresh_token,
            user,
        })
    }

    fn issue_access_token(&self, user: &User, session_id: Uuid) -> Result<String, ApiError> {
        let now = self.clock.now().unix_timestamp();
        let ttl = i64::try_from(self.settings.access_token_ttl.as_secs()).unwrap_or(900);
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: user.id,
            aud: self.settings.audience.clone(),
            exp: now + ttl,
            iat: now,
            jti: platform::ids::new_id().to_string(),
            sid: session_id,
            role: user.role,
        };
        self.current_key()?.sign(&claims).map_err(|e| ApiError::Internal(e.to_string()))
    }

    pub fn public_keys(&self) -> Jwks {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys::jwks(keys.iter().map(|k| k.as_ref()))
    }
}

#[async_trait]
impl KeySource for AuthService {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        Ok(self.public_keys())
    }
}
