//! The attachment routes: upload (multipart/form-data, read as a stream), list, download and
//! delete. The upload route bounds its own body: a declared length above the limit is 413
//! before anything is read, and the stream is cut with 413 as soon as the file passes the limit
//! (the global body limits leave this route alone: `platform::http::streams_body`).
//!
//! An attachment's `ETag` is its id (it never changes): sent with the 201 and every download,
//! and honoured by `If-Match` on delete. A download of an attachment still being scanned, or
//! rejected by the scan, is 409; with S3 storage a download is a `303 See Other` to a presigned
//! URL, with the local folder store the bytes are streamed.

use std::sync::Arc;

use api::projects::{Attachment, AttachmentLink, Page};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use platform::http::{Authenticated, Json, Problem};

use super::{ListQuery, Svc, created, if_match, list_query, page_request, path_id, tagged};
use crate::ProjectsService;
use crate::service::{Actor, AttachmentError, DownloadBody, attachment_etag};

/// What a multipart body may hold besides the file: boundaries and part headers.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub(crate) fn routes() -> Router<Arc<ProjectsService>> {
    Router::new()
        .route("/api/tasks/{id}/attachments", get(list_attachments).post(upload_attachment))
        .route("/api/attachments/{id}", get(download_attachment).delete(delete_attachment))
        .route("/api/attachments/{id}/link", get(download_link))
}

impl From<AttachmentError> for Problem {
    fn from(e: AttachmentError) -> Self {
        match e {
            AttachmentError::TooLarge { limit } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the file is larger than {limit} bytes"))
            }
            AttachmentError::UnsupportedType(r) => Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, r.to_string()),
            AttachmentError::Malformed(m) => Problem::bad_request(m),
            AttachmentError::Api(e) => e.into(),
        }
    }
}

fn multipart_error(e: multer::Error, limit: u64) -> AttachmentError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            AttachmentError::TooLarge { limit }
        }
        other => AttachmentError::Malformed(other.to_string()),
    }
}

/// The form of an upload, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file; its part's `filename` names it. The type is sniffed from its bytes.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[utoipa::path(post, path = "/api/tasks/{id}/attachments", tag = "projects", params(("id" = Uuid, Path)),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment,
               description = "stored; `status` is `quarantined` until the malware scan ends (with a scanner), \
                              else `available` with `scan: none`"),
              (status = 400, description = "not a readable multipart form"),
              (status = 403, description = "viewers and guests cannot upload"),
              (status = 404, description = "no such task, or not a member"),
              (status = 413, description = "larger than the limit (default 25 MiB)"),
              (status = 415, description = "not an accepted type, or content and extension disagree"),
              (status = 422, description = "no `file` part, or a bad file name")))]
async fn upload_attachment(
    State(svc): Svc,
    Authenticated(who): Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Response, Problem> {
    let task_id = path_id(path)?;
    let limit = svc.max_attachment_bytes();
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(AttachmentError::TooLarge { limit }.into());
    }
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected multipart/form-data"))?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limit.saturating_add(MULTIPART_OVERHEAD)));
    let mut form = multer::Multipart::with_constraints(req.into_body().into_data_stream(), boundary, constraints);
    let field = match form.next_field().await.map_err(|e| multipart_error(e, limit))? {
        Some(f) if f.name() == Some("file") => f,
        Some(_) => return Err(Problem::bad_request("the form must hold one part, `file`")),
        None => return Err(Problem::invalid(vec![api::FieldError::new("file", "is required")])),
    };
    let filename = field
        .file_name()
        .map(str::to_string)
        .ok_or_else(|| Problem::invalid(vec![api::FieldError::new("file", "needs a file name")]))?;
    let body = field.map(|piece| piece.map_err(|e| multipart_error(e, limit))).boxed();
    let attachment = svc.upload_attachment(Actor::from(&who), task_id, &filename, body).await?;
    let tag = attachment_etag(attachment.id);
    Ok(tagged(created(format!("/api/attachments/{}", attachment.id), attachment), &tag))
}

#[utoipa::path(get, path = "/api/tasks/{id}/attachments", tag = "projects",
    params(("id" = Uuid, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Attachment>), (status = 404, description = "no such task, or not a member")))]
async fn list_attachments(
    State(svc): Svc,
    Authenticated(who): Authenticated,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Attachment>>, Problem> {
    let task_id = path_id(path)?;
    let page = page_request(&list_query(q)?)?;
    Ok(Json(svc.list_attachments(Actor::from(&who), task_id, page).await?))
}

#[utoipa::path(get, path = "/api/attachments/{id}", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the file's bytes, as an attachment of its sniffed type (local storage)",
               content_type = "application/octet-stream"),
              (status = 303, description = "S3 storage: `Location` is a presigned GET of the object, valid 5 minutes at most"),
              (status = 404, description = "no such attachment, or not a member"),
              (status = 409, description = "still being scanned for malware, or rejected by the scan")))]
async fn download_attachment(
    State(svc): Svc,
    Authenticated(who): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    let d = svc.download_attachment(Actor::from(&who), id).await?;
    let tag = attachment_etag(d.attachment.id);
    let body = match d.body {
        DownloadBody::Stream(body) => body,
        DownloadBody::Redirect(url) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            let h = res.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_str(&url).map_err(Problem::internal)?);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            return Ok(tagged(res, &tag));
        }
    };
    let mut res = Body::from_stream(body).into_response();
    let h: &mut HeaderMap = res.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&d.attachment.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.attachment.size));
    h.insert(header::CONTENT_DISPOSITION, value(&d.content_disposition));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    Ok(tagged(res, &tag))
}

/// Where a browser gets the file: the presigned URL itself (S3) instead of a `303` that a page's
/// `fetch` could not follow across origins, or `null` (local storage: download the bytes).
#[utoipa::path(get, path = "/api/attachments/{id}/link", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 200, body = AttachmentLink),
              (status = 404, description = "no such attachment, or not a member"),
              (status = 409, description = "still being scanned for malware, or rejected by the scan")))]
async fn download_link(
    State(svc): Svc,
    Authenticated(who): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    let d = svc.download_attachment(Actor::from(&who), id).await?;
    let link = match d.body {
        DownloadBody::Redirect(url) => {
            AttachmentLink { url: Some(url), expires_in: svc.presign_ttl().map(|t| t.as_secs()) }
        }
        // The store's stream is dropped unread.
        DownloadBody::Stream(_) => AttachmentLink { url: None, expires_in: None },
    };
    let mut res = Json(link).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(res)
}

#[utoipa::path(delete, path = "/api/attachments/{id}", tag = "projects",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the attachment's `ETag`")),
    responses((status = 204, description = "deleted, with its object"),
              (status = 412, description = "If-Match names another attachment's ETag"),
              (status = 403, description = "only its uploader, owners, editors and admins delete"),
              (status = 404, description = "no such attachment, or not a member")))]
async fn delete_attachment(
    State(svc): Svc,
    Authenticated(who): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let id = path_id(path)?;
    svc.delete_attachment(Actor::from(&who), id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI paths of the attachment routes.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(upload_attachment, list_attachments, download_attachment, download_link, delete_attachment))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}
