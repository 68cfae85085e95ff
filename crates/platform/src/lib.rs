//! Ports shared by every service, each with an embedded and a distributed adapter, and the
//! cross-cutting HTTP plumbing (problem+json errors, request ids, trace context, metrics).
//!
//! # Layout
//! - [`db`]: `Database` over SQLite (embedded) or PostgreSQL (distributed), typed store errors,
//!   migrations.
//! - [`cache`]: `Cache` over memory (moka) or Redis.
//! - [`bus`]: `EventBus` in-process or over RabbitMQ; [`outbox`] writes events in the same
//!   transaction as the state change and relays them; [`consumer`] is the consume loop every
//!   consumer group runs (ack, nack with backoff, resubscribe).
//! - [`objects`]: object storage over a local folder or S3 (the `object_store` crate).
//! - [`identity`]: who is calling: access-token verification against a `KeySource`.
//! - [`http`]: errors as `application/problem+json`, the JSON extractor, middleware, health.
//! - [`client`]: the HTTP client one service uses to call another; [`service_auth`]: the
//!   per-service credentials it signs its calls with and services verify.
//! - [`mail`]: `Mailer` over SMTP (lettre) or into `.eml` files in a folder.
//! - [`jobs`]: data-lifecycle jobs run once per cluster under a database lease, and their scheduler.
//! - [`telemetry`], [`clock`], [`ids`], [`crypto`]: the small shared pieces.

pub mod bus;
pub mod cache;
pub mod client;
pub mod clock;
pub mod consumer;
pub mod crypto;
pub mod db;
pub mod http;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod objects;
pub mod outbox;
pub mod service_auth;
pub mod telemetry;
