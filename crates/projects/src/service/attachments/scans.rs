//! The malware scan of quarantined attachments (docs/SECURITY.md UP-5).
//!
//! [`ProjectsService::scan_quarantined`] takes every `quarantined` row in id order, streams its
//! object from storage to the [`MalwareScanner`](crate::scanner::MalwareScanner) and ends the
//! quarantine in one transaction with its event: `available` (`attachment.available`), or
//! `rejected` (`attachment.rejected`, then the object is deleted; the sweep takes it should that
//! fail). The write is conditional on the row still being quarantined, so two processes scanning
//! the same row, or a delete meanwhile, do no harm. When the scanner cannot be reached the pass
//! stops and the rows stay quarantined (never released unscanned);
//! [`ProjectsService::run_attachment_scanner`] runs a pass at start (rows a crash left
//! quarantined), after each upload, and every `retry` while rows wait.

use std::sync::Arc;
use std::time::Duration;

use api::ApiError;
use api::projects::{AttachmentScan, AttachmentStatus};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, path::Path as ObjectPath};

use super::storage_error;
use crate::ProjectsService;
use crate::ports::AttachmentRecord;
use crate::scanner::{ScanError, Verdict};

/// How many quarantined rows are read at once.
const BATCH: u32 = 50;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanPass {
    pub available: u64,
    pub rejected: u64,
    /// Rows left quarantined (the scanner or storage failed); a later pass retries them.
    pub waiting: u64,
}

impl ProjectsService {
    /// Scans every quarantined attachment once. Without a scanner connected, does nothing.
    pub async fn scan_quarantined(&self) -> Result<ScanPass, ApiError> {
        let objects = self.object_storage()?;
        let Some(scanner) = objects.scanner.get() else { return Ok(ScanPass::default()) };
        let mut pass = ScanPass::default();
        let mut after = None;
        loop {
            let rows = self.attachments.quarantined_attachments(after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for (i, row) in rows.iter().enumerate() {
                let path = ObjectPath::from(row.object_key.as_str());
                let verdict = match objects.store.get(&path).await {
                    Ok(got) => scanner.scan(got.into_stream().map_err(std::io::Error::other).boxed()).await,
                    Err(e) => Err(ScanError::Unavailable(format!("object storage: {e}"))),
                };
                match verdict {
                    Ok(Verdict::Clean) => {
                        if self.end_quarantine(row, AttachmentStatus::Available, AttachmentScan::Clean, None).await? {
                            pass.available += 1;
                        }
                    }
                    Ok(Verdict::Infected(name)) => {
                        if self.reject(row, &name).await? {
                            pass.rejected += 1;
                        }
                    }
                    Err(ScanError::TooLarge { limit }) => {
                        // Never scannable, so never released.
                        let why = format!("unscannable: larger than the scanner's limit of {limit} bytes");
                        if self.reject(row, &why).await? {
                            pass.rejected += 1;
                        }
                    }
                    Err(e @ ScanError::Unavailable(_)) => {
                        tracing::warn!(error = %e, attachment_id = %row.id, "attachments stay quarantined until the scanner is back");
                        pass.waiting += (rows.len() - i) as u64;
                        return Ok(pass);
                    }
                    Err(e @ ScanError::Failed(_)) => {
                        tracing::warn!(error = %e, attachment_id = %row.id, "scan failed; the attachment stays quarantined");
                        pass.waiting += 1;
                    }
                }
            }
        }
        Ok(pass)
    }

    async fn reject(&self, row: &AttachmentRecord, threat: &str) -> Result<bool, ApiError> {
        tracing::warn!(attachment_id = %row.id, threat, "malware scan rejected an attachment");
        if !self.end_quarantine(row, AttachmentStatus::Rejected, AttachmentScan::Infected, Some(threat)).await? {
            return Ok(false);
        }
        let objects = self.object_storage()?;
        match objects.store.delete(&ObjectPath::from(row.object_key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                // A rejected row does not keep its object from the sweep.
                tracing::warn!(error = %storage_error(e), key = row.object_key, "rejected object left for the sweep");
            }
        }
        Ok(true)
    }

    async fn end_quarantine(
        &self,
        row: &AttachmentRecord,
        status: AttachmentStatus,
        scan: AttachmentScan,
        threat: Option<&str>,
    ) -> Result<bool, ApiError> {
        let event = crate::events::attachment_scanned(row, status, scan, threat, self.now());
        let done = self.attachments.finish_scan(row.id, status, scan, threat, &event).await?;
        if done {
            self.written();
        }
        Ok(done)
    }

    /// Scans quarantined attachments at start, after each upload, and every `retry` until
    /// `stop` turns true. Returns at once without a scanner.
    pub async fn run_attachment_scanner(
        self: Arc<Self>,
        retry: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let Ok(objects) = self.object_storage() else { return };
        if objects.scanner.get().is_none() {
            return;
        }
        loop {
            match self.scan_quarantined().await {
                Ok(ScanPass { available: 0, rejected: 0, waiting: 0 }) => {}
                Ok(pass) => tracing::info!(?pass, "attachment scan"),
                Err(e) => tracing::warn!(error = %e, "attachment scan failed"),
            }
            tokio::select! {
                _ = objects.scan_wake.notified() => {}
                _ = tokio::time::sleep(retry) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
