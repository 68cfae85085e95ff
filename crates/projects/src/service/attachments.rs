//! Attachments: files of a task, their bytes in object storage (`object_store`: a local folder
//! all-in-one, an S3-compatible bucket distributed), their metadata in `attachments`.
//!
//! - **Upload** (owners and editors of the task's project): the body is streamed, never held
//!   whole: its first [`SNIFF_LEN`] bytes decide the type ([`classify`]: magic bytes and
//!   extension must agree, 415 otherwise), then every piece goes on to a multipart upload (5 MiB
//!   parts, one in flight while the next fills: at most ~10 MiB per upload in memory, whatever
//!   the file's size). Passing the size limit (default 25 MiB) stops the upload at once with 413
//!   and the parts sent are aborted. The key is server-made, `attachments/{project}/{id}`.
//!   The object is written first; the row and `attachment.created` commit after; if that
//!   commit fails (the task was deleted meanwhile, the database is down) the object is deleted.
//! - **Download** (members): authorization first, then the object's bytes streamed.
//! - **Delete** (the uploader, owners, editors, admins): the row and `attachment.deleted`
//!   commit, then the object is deleted; if that fails the sweep takes it later.
//! - **Sweep** ([`ProjectsService::sweep_attachments`]): objects whose row is gone are deleted:
//!   at once when their project is gone, else once older than [`ORPHAN_GRACE`] (an upload in
//!   progress has its object before its row). Deleting a project sweeps its prefix right after
//!   the commit, so a deleted project leaves no object; rows that go with a task or an erased
//!   user's project (cascades) are swept by [`ProjectsService::run_attachment_sweeper`].
//! - **Quarantine** ([`scans`], docs/SECURITY.md UP-5): with a [`MalwareScanner`] connected, a new
//!   row is `quarantined` (`scan: pending`) and not downloadable (409) until the scanner marks it
//!   `available` or `rejected` (object deleted). Without one, rows are `available` at once with
//!   `scan: none`, never claimed to be scanned.
//! - **Presigned downloads** (UP-3): with a [`Signer`] connected (S3), a download is a `303` to a
//!   GET URL signed for at most [`MAX_PRESIGN_TTL`], carrying the disposition and type as
//!   `response-content-*` overrides; the local folder store keeps streaming through the service.
//! - **ETag**: an attachment never changes, so its `ETag` is its id (`"<id>"`, [`attachment_etag`]);
//!   deletes honour `If-Match` (412).

mod scans;

pub use scans::ScanPass;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use api::ApiError;
use api::projects::{Attachment, Page};
use api::projects::{AttachmentScan, AttachmentStatus};
use api::users::Role;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, WriteMultipart, path::Path as ObjectPath,
};
use platform::db::StoreError;
use platform::ids::new_id;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Actor, PageRequest, ProjectsService, decode_project_cursor, encode_project_cursor, invalid, paginate, rfc3339,
};
use crate::domain::attachments::{AttachmentName, SNIFF_LEN, TextCheck, TypeRefusal, classify, content_disposition};
use crate::domain::can_write_tasks;
use crate::ports::AttachmentRecord;
use crate::scanner::MalwareScanner;
use crate::service::members::{ChangeError, if_match_holds};

/// The size limit when the settings name none: 25 MiB.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;

/// How old an object without a row must be before a sweep deletes it while its project exists.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(15 * 60);

/// The multipart upload's part size (S3's smallest but for the last part).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// The longest life of a presigned download URL (docs/SECURITY.md UP-3).
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(300);

/// Object storage as the service uses it.
pub(crate) struct Objects {
    store: Arc<dyn ObjectStore>,
    max_bytes: u64,
    /// The malware scanner; none all-in-one without clamd (files are then never scanned).
    scanner: OnceLock<Arc<dyn MalwareScanner>>,
    /// Signs download URLs, and their life (S3 only).
    presign: OnceLock<(Arc<dyn Signer>, Duration)>,
    /// Poked after an upload, so the scanner takes it at once.
    scan_wake: tokio::sync::Notify,
}

/// Why an upload was refused beyond the usual errors.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// 413: the file passed the size limit (nothing was kept).
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// 415: the file is of no accepted type, or not of the type its name says.
    #[error(transparent)]
    UnsupportedType(#[from] TypeRefusal),
    /// 400: the request body is not a readable multipart form.
    #[error("malformed upload: {0}")]
    Malformed(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StoreError> for AttachmentError {
    fn from(e: StoreError) -> Self {
        AttachmentError::Api(e.into())
    }
}

/// A download: the metadata, the `Content-Disposition` and where the bytes come from.
pub struct Download {
    pub attachment: Attachment,
    pub content_disposition: String,
    pub body: DownloadBody,
}

/// The bytes of a download.
pub enum DownloadBody {
    /// Streamed through the service as they arrive from storage.
    Stream(BoxStream<'static, Result<Bytes, object_store::Error>>),
    /// A presigned URL of the object, valid for a few minutes at most.
    Redirect(String),
}

/// The `ETag` of an attachment: its id, as it never changes.
pub fn attachment_etag(id: Uuid) -> String {
    format!("\"{id}\"")
}

fn storage_error(e: object_store::Error) -> ApiError {
    tracing::warn!(error = %e, "object storage failed");
    ApiError::Unavailable("object storage is unavailable".into())
}

fn attachment_dto(a: AttachmentRecord) -> Attachment {
    Attachment {
        id: a.id,
        task_id: a.task_id,
        project_id: a.project_id,
        filename: a.filename,
        content_type: a.content_type,
        size: a.size,
        uploaded_by: a.uploaded_by,
        created_at: a.created_at,
        status: a.status,
        scan: a.scan,
    }
}

/// An `attachments` row with every column (GDPR export).
fn attachment_row(a: &AttachmentRecord) -> Result<Value, ApiError> {
    Ok(json!({
        "id": a.id,
        "task_id": a.task_id,
        "project_id": a.project_id,
        "uploaded_by": a.uploaded_by,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "object_key": a.object_key,
        "created_at": rfc3339(a.created_at)?,
        "status": a.status,
        "scan": a.scan,
        "threat": a.threat,
    }))
}

/// The project and attachment ids of a key `attachments/{project}/{id}`.
fn parse_key(key: &str) -> Option<(Uuid, Uuid)> {
    let mut parts = key.strip_prefix("attachments/")?.split('/');
    let project = Uuid::parse_str(parts.next()?).ok()?;
    let id = Uuid::parse_str(parts.next()?).ok()?;
    parts.next().is_none().then_some((project, id))
}

impl ProjectsService {
    /// Connects object storage and sets the attachment size limit. Until then attachment use
    /// cases answer 503.
    pub fn connect_objects(&self, store: Arc<dyn ObjectStore>, max_bytes: u64) {
        let objects = Objects {
            store,
            max_bytes,
            scanner: OnceLock::new(),
            presign: OnceLock::new(),
            scan_wake: tokio::sync::Notify::new(),
        };
        if self.objects.set(objects).is_err() {
            tracing::warn!("object storage was already connected");
        }
    }

    /// Connects the malware scanner (after [`ProjectsService::connect_objects`]): from now on
    /// uploads are quarantined until [`ProjectsService::run_attachment_scanner`] scans them.
    pub fn connect_scanner(&self, scanner: Arc<dyn MalwareScanner>) -> Result<(), ApiError> {
        let objects = self.object_storage()?;
        objects.scanner.set(scanner).map_err(|_| ApiError::Internal("a scanner was already connected".into()))
    }

    /// Makes downloads `303` redirects to URLs signed by `signer` for `ttl` (at most
    /// [`MAX_PRESIGN_TTL`]), after [`ProjectsService::connect_objects`] of the same store.
    pub fn presign_downloads(&self, signer: Arc<dyn Signer>, ttl: Duration) -> Result<(), ApiError> {
        let objects = self.object_storage()?;
        if ttl.is_zero() || ttl > MAX_PRESIGN_TTL {
            return Err(ApiError::Internal(format!("presigned URLs live 1 s to {MAX_PRESIGN_TTL:?}, not {ttl:?}")));
        }
        objects.presign.set((signer, ttl)).map_err(|_| ApiError::Internal("a signer was already connected".into()))
    }

    /// How long a presigned download URL lives (None: downloads stream through the service).
    pub fn presign_ttl(&self) -> Option<Duration> {
        self.object_storage().ok()?.presign.get().map(|(_, ttl)| *ttl)
    }

    /// The attachment size limit in bytes.
    pub fn max_attachment_bytes(&self) -> u64 {
        self.objects.get().map_or(DEFAULT_MAX_ATTACHMENT_BYTES, |o| o.max_bytes)
    }

    fn object_storage(&self) -> Result<&Objects, ApiError> {
        self.objects.get().ok_or_else(|| ApiError::Unavailable("object storage is not connected".into()))
    }

    /// `POST /api/tasks/{id}/attachments`: stores the file `body` (its pieces as they arrive)
    /// named `filename`, for owners and editors of the task's project.
    pub async fn upload_attachment<S>(
        &self,
        actor: Actor,
        task_id: Uuid,
        filename: &str,
        mut body: S,
    ) -> Result<Attachment, AttachmentError>
    where
        S: Stream<Item = Result<Bytes, AttachmentError>> + Send + Unpin,
    {
        let objects = self.object_storage()?;
        let project_id = self.attachments.task_project(task_id).await?;
        let (_, role) = self.visible_project(actor, project_id).await?;
        if !can_write_tasks(role) {
            return Err(ApiError::Forbidden.into());
        }
        let name = AttachmentName::parse(filename).map_err(|e| invalid("file", format!("file name {e}")))?;
        let max = objects.max_bytes;
        let too_large = AttachmentError::TooLarge { limit: max };

        // The first bytes decide the type, before anything is stored.
        let mut head = Vec::new();
        while head.len() < SNIFF_LEN {
            let Some(piece) = body.next().await else { break };
            head.extend_from_slice(&piece?);
            if head.len() as u64 > max {
                return Err(too_large);
            }
        }
        let (content_type, is_text) = classify(&name, &head[..head.len().min(SNIFF_LEN)])?;
        let mut text = is_text.then(TextCheck::default);
        if let Some(check) = &mut text
            && !check.feed(&head)
        {
            return Err(TypeRefusal::NotText.into());
        }

        let id = new_id();
        let key = format!("attachments/{project_id}/{id}");
        let path = ObjectPath::from(key.as_str());
        // Presigned downloads come straight from the bucket: the object carries the headers
        // too (the `response-content-*` overrides of the URL are S3's; not every server has them).
        let mut options = PutMultipartOptions::default();
        if objects.presign.get().is_some() {
            options.attributes = Attributes::from_iter([
                (Attribute::ContentType, content_type.to_string()),
                (Attribute::ContentDisposition, content_disposition(&name)),
                (Attribute::CacheControl, "private, no-store".to_string()),
            ]);
        }
        let upload = objects.store.put_multipart_opts(&path, options).await.map_err(storage_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut size = head.len() as u64;
        writer.write(&head);
        drop(head);
        let streamed: Result<(), AttachmentError> = async {
            loop {
                // One part in flight while the next fills: the client waits for storage.
                writer.wait_for_capacity(1).await.map_err(storage_error)?;
                let Some(piece) = body.next().await else { break };
                let piece = piece?;
                size += piece.len() as u64;
                if size > max {
                    return Err(AttachmentError::TooLarge { limit: max });
                }
                if let Some(check) = &mut text
                    && !check.feed(&piece)
                {
                    return Err(TypeRefusal::NotText.into());
                }
                writer.put(piece);
            }
            if text.as_ref().is_some_and(|c| !c.finish()) {
                return Err(TypeRefusal::NotText.into());
            }
            Ok(())
        }
        .await;
        if let Err(e) = streamed {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, key, "cannot abort a refused upload");
            }
            return Err(e);
        }
        writer.finish().await.map_err(storage_error)?;

        let scanned = objects.scanner.get().is_some();
        let (status, scan) = if scanned {
            (AttachmentStatus::Quarantined, AttachmentScan::Pending)
        } else {
            (AttachmentStatus::Available, AttachmentScan::None)
        };
        let record = AttachmentRecord {
            status,
            scan,
            threat: None,
            id,
            task_id,
            project_id,
            uploaded_by: actor.user_id,
            filename: name.as_str().to_string(),
            content_type: content_type.to_string(),
            size,
            object_key: key,
            created_at: self.now(),
        };
        let event = crate::events::attachment_created(actor.user_id, &record);
        if let Err(e) = self.attachments.create_attachment(&record, &event).await {
            // No row, so no object either.
            if let Err(del) = objects.store.delete(&path).await {
                tracing::warn!(error = %del, key = record.object_key, "cannot delete the object of a failed upload");
            }
            return Err(e.into());
        }
        self.written();
        if scanned {
            objects.scan_wake.notify_one();
        }
        Ok(attachment_dto(record))
    }

    /// `GET /api/tasks/{id}/attachments`: the task's attachments, for members, oldest first.
    pub async fn list_attachments(
        &self,
        actor: Actor,
        task_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<Attachment>, ApiError> {
        let limit = page.limit()?;
        let after = page.cursor.as_deref().map(decode_project_cursor).transpose()?;
        let project_id = self.attachments.task_project(task_id).await?;
        self.visible_project(actor, project_id).await?;
        let rows = self.attachments.list_attachments(task_id, after, limit + 1).await?;
        Ok(paginate(rows, limit, |a| encode_project_cursor(a.id), attachment_dto))
    }

    /// `GET /api/attachments/{id}`: for members of its project, once it is `available`, a
    /// presigned URL (S3) or the bytes from storage.
    pub async fn download_attachment(&self, actor: Actor, id: Uuid) -> Result<Download, ApiError> {
        let record = self.attachments.get_attachment(id).await?;
        self.visible_project(actor, record.project_id).await?;
        match record.status {
            AttachmentStatus::Available => {}
            AttachmentStatus::Quarantined => {
                return Err(ApiError::Conflict("the file is being scanned for malware; try again shortly".into()));
            }
            AttachmentStatus::Rejected => {
                return Err(ApiError::Conflict("the malware scan rejected the file; it was deleted".into()));
            }
        }
        let objects = self.object_storage()?;
        let content_disposition = AttachmentName::parse(&record.filename)
            .map_or_else(|_| "attachment".to_string(), |n| content_disposition(&n));
        if let Some((signer, ttl)) = objects.presign.get() {
            let options = SignedUrlOptions::new().with_query([
                ("response-content-disposition", content_disposition.as_str()),
                ("response-content-type", record.content_type.as_str()),
                ("response-cache-control", "private, no-store"),
            ]);
            let path = ObjectPath::from(record.object_key.as_str());
            let url = signer
                .signed_url_opts(object_store::signer::Method::GET, &path, *ttl, &options)
                .await
                .map_err(storage_error)?
                .to_string();
            return Ok(Download {
                attachment: attachment_dto(record),
                content_disposition,
                body: DownloadBody::Redirect(url),
            });
        }
        let got = match objects.store.get(&ObjectPath::from(record.object_key.as_str())).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(key = record.object_key, "an attachment's object is missing");
                return Err(ApiError::NotFound);
            }
            Err(e) => return Err(storage_error(e)),
        };
        Ok(Download {
            attachment: attachment_dto(record),
            content_disposition,
            body: DownloadBody::Stream(got.into_stream()),
        })
    }

    /// `DELETE /api/attachments/{id}`: by its uploader, the project's owners and editors, and
    /// admins, if `if_match` (when given) names it. The row goes first, then the object.
    pub async fn delete_attachment(&self, actor: Actor, id: Uuid, if_match: Option<&str>) -> Result<(), ChangeError> {
        let record = self.attachments.get_attachment(id).await?;
        let (_, role) = self.visible_project(actor, record.project_id).await?;
        let allowed = can_write_tasks(role) || actor.role == Role::Admin || record.uploaded_by == actor.user_id;
        if !allowed || actor.role == Role::Guest {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &attachment_etag(id)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let objects = self.object_storage()?;
        let event = crate::events::attachment_deleted(actor.user_id, &record, self.now());
        self.attachments.delete_attachment(id, &event).await?;
        self.written();
        match objects.store.delete(&ObjectPath::from(record.object_key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(error = %e, key = record.object_key, "object left for the attachment sweep"),
        }
        Ok(())
    }

    /// Deletes the objects under `attachments/` (only `attachments/{project}/` with `project`)
    /// that have no row: at once when their project is gone, else once older than
    /// [`ORPHAN_GRACE`]. Returns how many it deleted.
    pub async fn sweep_attachments(&self, project: Option<Uuid>) -> Result<u64, ApiError> {
        let objects = self.object_storage()?;
        let prefix = ObjectPath::from(project.map_or_else(|| "attachments".into(), |p| format!("attachments/{p}")));
        let cutoff = (self.now() - ORPHAN_GRACE).unix_timestamp();
        let mut project_gone: HashMap<Uuid, bool> = HashMap::new();
        let mut deleted = 0;
        let mut batches = objects.store.list(Some(&prefix)).try_chunks(500);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| storage_error(e.1))?;
            let keyed: Vec<_> =
                batch.into_iter().filter_map(|m| parse_key(m.location.as_ref()).map(|k| (k, m))).collect();
            let ids: Vec<Uuid> = keyed.iter().map(|((_, id), _)| *id).collect();
            let existing = self.attachments.existing_attachments(&ids).await?;
            for ((project_id, id), meta) in keyed {
                if existing.contains(&id) {
                    continue;
                }
                let gone = match project_gone.get(&project_id) {
                    Some(g) => *g,
                    None => {
                        let g = match self.projects.get_project(project_id, Uuid::nil()).await {
                            Ok(_) => false,
                            Err(StoreError::NotFound) => true,
                            Err(e) => return Err(e.into()),
                        };
                        project_gone.insert(project_id, g);
                        g
                    }
                };
                if gone || meta.last_modified.timestamp() < cutoff {
                    match objects.store.delete(&meta.location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                        Err(e) => return Err(storage_error(e)),
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// After a project was deleted: its objects go too (failures are logged; the periodic
    /// sweep retries).
    pub(crate) async fn project_deleted(&self, project_id: Uuid) {
        if self.objects.get().is_none() {
            return;
        }
        if let Err(e) = self.sweep_attachments(Some(project_id)).await {
            tracing::warn!(error = %e, %project_id, "the deleted project's attachments are left for the next sweep");
        }
    }

    /// Sweeps every `every` until `stop` turns true: objects whose rows went with a task, an
    /// erased user's project, or a delete whose object deletion failed.
    pub async fn run_attachment_sweeper(
        self: Arc<Self>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match self.sweep_attachments(None).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "attachment sweep"),
                Err(e) => tracing::warn!(error = %e, "attachment sweep failed"),
            }
        }
    }

    /// The `attachments` rows `user` uploaded (GDPR export).
    pub(crate) async fn attachment_rows(&self, user: Uuid) -> Result<Vec<Value>, ApiError> {
        self.attachments.attachments_uploaded_by(user).await?.iter().map(attachment_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_in_their_own_shape() {
        let (p, a) = (new_id(), new_id());
        assert_eq!(parse_key(&format!("attachments/{p}/{a}")), Some((p, a)));
        for bad in [format!("attachments/{p}"), format!("attachments/{p}/{a}/x"), format!("other/{p}/{a}"), "x".into()]
        {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }
}
