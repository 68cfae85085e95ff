//! The users service: profiles and their lookup. It owns the `users` table; other services reach
//! it only through `api::users::UsersApi` (this crate's `UsersService` in process, `HttpUsersClient`
//! across processes).
//!
//! Invariants: an email is stored normalized (trimmed, lowercased) and is unique; names are
//! 1–100 characters without control characters.

pub mod client;
pub mod domain;
pub mod http;
pub mod ports;
pub mod preferences;
pub mod service;
pub mod store;

pub use client::HttpUsersClient;
pub use http::{internal_router, router};
pub use service::UsersService;
pub use store::{MIGRATIONS, store};
