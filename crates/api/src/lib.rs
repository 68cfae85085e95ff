//! Types every service and client agrees on: the public DTOs of docs/API.md, roles, and the `*Api`
//! traits through which services reach each other (locally or over HTTP, never through tables).
//!
//! This crate knows serde and OpenAPI schemas but no web framework, database or runtime.

pub mod audit;
pub mod auth;
pub mod error;
pub mod internal;
pub mod personal;
pub mod policy;
pub mod projects;
pub mod users;

pub use error::{ApiError, FieldError};
