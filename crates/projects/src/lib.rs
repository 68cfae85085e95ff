//! The projects service: projects, their membership with roles (owner, editor, viewer), their
//! tasks, and the comments and attachments on tasks. It owns the `projects`, `project_members`,
//! `tasks`, `comments` and `attachments` tables (and, on SQLite, the search index
//! `search_docs`/`search_fts`); other services reach it only through its HTTP API (and, later,
//! an `api::projects` trait), never through its tables.
//!
//! # Invariants
//! - Every project has exactly one owner at creation: its creator, stored both as
//!   `projects.owner_id` and as a `project_members` row with role `owner`.
//! - Visibility: a project and its tasks are visible to its members and to global admins only.
//!   To anyone else they do not exist (404, never 403), so ids cannot be probed; the refusal
//!   is logged with who asked (`authorization denied`, docs/SECURITY.md AZ-11).
//! - Writes: project owners and editors may write tasks; global admins may write everywhere; the
//!   global `guest` role is read-only everywhere (403), whatever its project role.
//! - Every write stores its event in the outbox in the same transaction. Events carry ids, kinds,
//!   the names of the fields that changed, versions and the actor's id, never user-written text
//!   nor personal data ([`events`], the only place they are built): `task.created` and
//!   `task.updated` carry the task without its title, description, labels and due date (and
//!   `fields`, plus the column's new positions when it was rebalanced), `task.deleted` its ids;
//!   a live client refetches what an event names.
//! - Task writes are compare-and-set on `updated_at` (`ETag`, `If-Match`; 412 when stale) and
//!   an assignee must be a project member (checked in the write's transaction) who is not a
//!   global guest (asked of the users service).
//! - Personal data (GDPR, [`api::personal::PersonalDataApi`]): the export names every table of
//!   the service; erasure deletes the projects the user alone owns and takes the user out of the
//!   others, keeping `created_by` as a pseudonymous id ([`domain::plan_erasure`]).
//! - Task `position` is a lexicographic rank ([`rank`]) unique within (project, status): a task
//!   list ordered by position is the board column's order, and inserting between two tasks never
//!   renumbers the others.
//!   Only when a gap is used up (a rank would exceed [`rank::MAX_LEN`]) is that one column
//!   given fresh ranks, in the same transaction.
//! - A task list is one statement whatever its filters, sort and page size (no N+1; a test
//!   counts statements with `platform::db::Database::statements`); its cursor encodes the sort
//!   key, the id tiebreaker and a digest of the sort and filters.
//! - Ids are UUIDv7, so ordering by id is ordering by creation; lists are keyset-paginated.
//! - Comments (`comments`, [`service`]'s comment use cases): members read them; owners and
//!   editors write them (a viewer is read-only, comments included; guests are viewers at most);
//!   only the author changes one, and only while still an owner or editor; the author, project
//!   owners and admins delete. `comment.created`, `comment.updated` (both with the comment but
//!   not its body) and `comment.deleted` (ids) go to the outbox in the write's transaction.
//! - Search ([`ports::SearchStore`]): the full-text index (PostgreSQL generated `tsvector`
//!   columns, SQLite FTS5 maintained by triggers) changes in the same transaction as the text;
//!   the user's query is reduced to words ([`domain::search`]) before any backend syntax is built,
//!   and visibility is a condition of the query itself.
//! - Attachments ([`service::attachments`]): bytes in object storage under a server-made key
//!   `attachments/{project}/{id}`, metadata in `attachments`; an object is written before its
//!   row and deleted after it, and objects left without a row are swept.
//!   With a malware scanner ([`scanner`], clamd) new files are quarantined until scanned;
//!   downloads of S3 objects are short-lived presigned redirects (docs/SECURITY.md UP-3, UP-5).
//! - Every POST honours `Idempotency-Key` (`platform::http::idempotency`, layered in [`router`]):
//!   a repeated request replays the first answer instead of writing twice.
//!
//! # Layout
//! [`domain`] and [`rank`] are pure; [`service`] holds the use cases over the [`ports`];
//! [`store`] has one adapter per backend (SQLite, PostgreSQL) and the migrations; [`http`] maps
//! the API of docs/API.md onto the service, and serves the internal personal-data routes;
//! [`invalidation`] keeps the cache of every instance in step with the others' writes (events).

pub mod cache;
pub mod domain;
pub mod events;
/// Property checks of the parsers of untrusted input, for the proptest suites and the cargo-fuzz
/// targets in fuzz/ (built with `--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod invalidation;
pub mod ports;
pub mod rank;
pub mod scanner;
pub mod service;
pub mod store;

pub use http::{internal_router, router};
pub use ports::{PersonalDataStore, ProjectStore, ProjectsStore, TaskStore};
pub use service::ProjectsService;
pub use store::{MIGRATIONS, store};
