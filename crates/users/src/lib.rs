//! The users service: profiles, preferences, search, and the user's rights over their data
//! (export, erasure). It owns the `users` and `user_search_tokens` tables; other services reach
//! it only through `api::users::UsersApi` (this crate's `UsersService` in process,
//! `HttpUsersClient` across processes).
//!
//! Invariants: email, name and preferences are stored only sealed with the user's data key
//! (`pii`); an email is normalized (trimmed, lowercased) and unique by its blind index; names are
//! 1–100 characters without control characters; an erased user keeps a row with no personal data
//! and no data key, so that what others still hold of theirs stays attributed to "Deleted user".

pub mod client;
pub mod domain;
/// Property checks of the parsers of untrusted input, for the proptest suites and the cargo-fuzz
/// targets in fuzz/ (built with `--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod jobs;
pub mod pii;
pub mod ports;
pub mod preferences;
pub mod service;
pub mod store;

pub use client::HttpUsersClient;
pub use http::{internal_router, router};
pub use service::UsersService;
pub use store::{MIGRATIONS, store};
