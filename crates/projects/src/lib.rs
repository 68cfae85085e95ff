//! The projects service: projects, their membership with roles (owner, editor, viewer) and their
//! tasks. It owns the `projects`, `project_members` and `tasks` tables; other services reach it
//! only through its HTTP API (and, later, an `api::projects` trait), never through its tables.
//!
//! # Invariants
//! - Every project has exactly one owner at creation: its creator, stored both as
//!   `projects.owner_id` and as a `project_members` row with role `owner`.
//! - Visibility: a project and its tasks are visible to its members and to global admins only.
//!   To anyone else they do not exist (404, never 403), so ids cannot be probed.
//! - Writes: project owners and editors may write tasks; global admins may write everywhere; the
//!   global `guest` role is read-only everywhere (403), whatever its project role.
//! - Every write stores its event (`project.created`, `task.created`; on erasure
//!   `project.deleted`, `member.changed`) in the outbox in the same transaction, carrying ids and
//!   status only.
//! - Personal data (GDPR, [`api::personal::PersonalDataApi`]): the export names every table of
//!   the service; erasure deletes the projects the user alone owns and takes the user out of the
//!   others, keeping `created_by` as a pseudonymous id ([`domain::plan_erasure`]).
//! - Task `position` is a lexicographic rank ([`rank`]) unique within (project, status): a task
//!   list ordered by position is the board column's order, and inserting between two tasks never
//!   renumbers the others.
//! - Ids are UUIDv7, so ordering by id is ordering by creation; lists are keyset-paginated.
//! - Every POST honours `Idempotency-Key` (`platform::http::idempotency`, layered in [`router`]):
//!   a repeated request replays the first answer instead of writing twice.
//!
//! # Layout
//! [`domain`] and [`rank`] are pure; [`service`] holds the use cases over the [`ports`];
//! [`store`] has one adapter per backend (SQLite, PostgreSQL) and the migrations; [`http`] maps
//! the API of API.md onto the service, and serves the internal personal-data routes.

pub mod domain;
pub mod http;
pub mod ports;
pub mod rank;
pub mod service;
pub mod store;

pub use http::{internal_router, router};
pub use ports::{PersonalDataStore, ProjectStore, ProjectsStore, TaskStore};
pub use service::ProjectsService;
pub use store::{MIGRATIONS, store};
