//! The users service's data-lifecycle job, `erased-users` (run by `platform::jobs`): the row an
//! erasure leaves (no personal data, no data key) is deleted once the erasure finished more than
//! `users.purge_after_days` ago (30 by default). Until then a repeated DELETE or a resumed erasure
//! still finds it; after, the user's id is simply unknown, which the web shows as "Deleted user"
//! like an erased one. No table references `users` by foreign key but `user_search_tokens`
//! (already emptied by the erasure; it cascades); other services hold the id without a key.

use std::sync::Arc;

use async_trait::async_trait;
use platform::jobs::{Job, JobContext, JobError, JobReport};

use crate::ports::UserStore;

pub struct ErasedUsersJob {
    store: Arc<dyn UserStore>,
    after: time::Duration,
}

impl ErasedUsersJob {
    pub fn new(store: Arc<dyn UserStore>, after: time::Duration) -> Self {
        Self { store, after }
    }
}

#[async_trait]
impl Job for ErasedUsersJob {
    fn name(&self) -> &'static str {
        "erased-users"
    }

    fn description(&self) -> &'static str {
        "delete the rows of users erased more than users.purge_after_days ago"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let before = ctx.now() - self.after;
        ctx.drain("users", |limit| self.store.purge_erased(before, limit)).await?;
        Ok(ctx.report())
    }
}
