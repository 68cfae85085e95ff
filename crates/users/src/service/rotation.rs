//! Re-encryption under the newest key-encryption key (`trellis keys rotate-pii`): each user gets a
//! new data key wrapped by the current KEK and their fields sealed again, in batches, each batch
//! one transaction. Resumable by construction: a batch reads the rows still on another version,
//! so a restart carries on where the last committed batch ended. Rows written by the service
//! meanwhile are skipped by a compare-and-set and picked up by a later batch.

use api::ApiError;

use super::UsersService;
use crate::pii::{Column, WrappedKey};
use crate::ports::StoredUser;

/// Progress of a re-encryption batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyBatch {
    /// Rows read on an older key version.
    pub read: u64,
    /// Rows re-encrypted (the others changed meanwhile and are read again by a later batch).
    pub written: u64,
}

impl UsersService {
    /// Users whose data key is still wrapped by an older KEK.
    pub async fn count_stale_keys(&self) -> Result<u64, ApiError> {
        Ok(self.store.count_stale_keys(self.keys.current_version()).await?)
    }

    /// Re-encrypts up to `limit` users under the current KEK. `read == 0` means done.
    pub async fn rekey_batch(&self, limit: u32) -> Result<RekeyBatch, ApiError> {
        let current = self.keys.current_version();
        let rows = self.store.stale_keys(current, limit).await?;
        let mut pairs = Vec::with_capacity(rows.len());
        for read in rows {
            pairs.push((self.reseal(&read)?, read));
        }
        let written = if pairs.is_empty() { 0 } else { self.store.rekey(&pairs).await? };
        Ok(RekeyBatch { read: pairs.len() as u64, written })
    }

    /// The row under a new data key wrapped by the current KEK, every field sealed again.
    fn reseal(&self, read: &StoredUser) -> Result<StoredUser, ApiError> {
        let fail = |e| super::pii_failure(read.id, e);
        let Some(wrapped) = &read.data_key else { return Ok(read.clone()) };
        let old = self
            .keys
            .unwrap(read.id, &WrappedKey { version: read.key_version, bytes: wrapped.clone() })
            .map_err(fail)?;
        let (new, wrapped) = self.keys.new_data_key(read.id);
        let reseal = |col: Column, v: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, ApiError> {
            v.as_deref().map(|b| old.open(col, b).map(|plain| new.seal(col, &plain))).transpose().map_err(fail)
        };
        Ok(StoredUser {
            email: reseal(Column::Email, &read.email)?,
            name: reseal(Column::Name, &read.name)?,
            preferences: reseal(Column::Preferences, &read.preferences)?,
            data_key: Some(wrapped.bytes),
            key_version: wrapped.version,
            ..read.clone()
        })
    }
}
