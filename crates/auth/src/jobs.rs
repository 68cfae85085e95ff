//! The auth service's data-lifecycle job, `sessions` (run by `platform::jobs`): what has ended
//! goes, in bounded batches.
//!
//! - Sessions that ended more than the retention ago (30 days by default), with their refresh
//!   tokens. A session ends at the first of: its revocation, its absolute end (`expires_at`),
//!   and its last use plus the idle timeout.
//! - Mailed tokens (`auth_email_tokens`) and second-factor challenges past their expiry: neither
//!   can be used any more, and the hourly token limit counts only unexpired tokens.
//! - Failed-login counters (`auth_login_failures`) whose block ended and whose last failure is
//!   older than the retention: after that long the account starts again with free attempts.

use std::sync::Arc;

use async_trait::async_trait;
use platform::jobs::{Job, JobContext, JobError, JobReport};

use crate::ports::AuthStore;

pub struct SessionsJob {
    store: Arc<dyn AuthStore>,
    retention: time::Duration,
    idle_timeout: time::Duration,
}

impl SessionsJob {
    /// `retention`: how long ended sessions and stale counters are kept; `idle_timeout`: the
    /// sessions' (`auth.session_idle_timeout_days`).
    pub fn new(store: Arc<dyn AuthStore>, retention: time::Duration, idle_timeout: time::Duration) -> Self {
        Self { store, retention, idle_timeout }
    }
}

#[async_trait]
impl Job for SessionsJob {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn description(&self) -> &'static str {
        "delete sessions ended jobs.sessions_retention_days ago with their refresh tokens, expired mailed tokens \
         and second-factor challenges, stale failed-login counters"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let now = ctx.now();
        let before = now - self.retention;
        let idle_before = before - self.idle_timeout;
        loop {
            let (sessions, tokens) = self.store.purge_sessions(before, idle_before, ctx.batch_size()).await?;
            ctx.progress("refresh_tokens", tokens).await?;
            ctx.progress("sessions", sessions).await?;
            if sessions < ctx.batch_size() as u64 {
                break;
            }
        }
        ctx.drain("email_tokens", |limit| self.store.purge_email_tokens(now, limit)).await?;
        ctx.drain("mfa_challenges", |limit| self.store.purge_mfa_challenges(now, limit)).await?;
        ctx.drain("login_failures", |limit| self.store.purge_login_failures(before, limit)).await?;
        Ok(ctx.report())
    }
}
