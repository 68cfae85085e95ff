//! The auth service: credentials, sessions and access tokens. It owns the `auth_*` tables and
//! the signing keys; it reaches user profiles only through `api::users::UsersApi`.
//!
//! Invariants: passwords are stored only as bcrypt over an HMAC-SHA-256 pre-hash with a server
//! pepper (nothing past 72 bytes is ignored); bcrypt runs on a bounded pool off the async runtime;
//! private signing keys are stored sealed with the key-encryption key and never leave this
//! service; refresh tokens are stored as SHA-256 hashes only.

pub mod browser;
pub mod client;
pub mod device;
pub mod domain;
/// Property checks of the parsers of untrusted input, for the proptest suites and the cargo-fuzz
/// targets in fuzz/ (built with `--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod ipthrottle;
pub mod jobs;
pub mod keys;
pub mod passwords;
pub mod ports;
pub mod service;
pub mod store;
pub mod totp;

pub use client::{HttpKeySource, HttpSessionStatus, HttpSessionsClient};
pub use http::{internal_router, router};
pub use service::{AuthService, AuthSettings};
pub use store::{MIGRATIONS, store};
