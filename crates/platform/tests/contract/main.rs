//! Contract suites for the platform's ports: each suite is written once against the port's trait
//! and run against both adapters, the distributed ones on real servers (PostgreSQL, Redis,
//! RabbitMQ, an S3-compatible moto server, an aiosmtpd SMTP server), never mocks. An unreachable server fails the test
//! with its address; nothing is skipped.
//!
//! # Layout
//! - [`cache`]: `Cache` on `MemoryCache` and `RedisCache`.
//! - [`bus`]: `EventBus` on `InProcessBus` and `RabbitMqBus`.
//! - [`objects`]: `ObjectStore` on a local folder and an S3 bucket.
//! - [`db`]: `Database` migrations, typed errors and ping on SQLite and PostgreSQL.
//! - [`mail`]: `Mailer` on `FileMailer` and `SmtpMailer` (against a real aiosmtpd server).
//! - [`mail_queue`]: the durable `MailQueue` on SQLite and PostgreSQL in front of an SMTP server
//!   that is down at first.
//! - [`outbox`]: the transactional outbox and its relay, per database and per bus.
//! - [`idempotency`]: `Idempotency-Key` through a router, on SQLite and PostgreSQL.
//! - [`jobs`]: job leases and the platform's data-lifecycle jobs, on SQLite and PostgreSQL.
//! - [`support`]: bounded waits and the adapter fixtures shared by the suites.

// Tests may unwrap: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bus;
mod cache;
mod db;
mod idempotency;
mod jobs;
mod mail;
mod mail_queue;
mod objects;
mod outbox;
mod support;
