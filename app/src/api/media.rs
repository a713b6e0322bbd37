//! The media endpoints: `POST /media` (an authenticated upload, raw body) and
//! `GET /media/{id}?exp=...&by=...&sig=...` (a download through a signed URL, no token).
//!
//! An upload is checked against the MIME allow-list and its kind's size limit before
//! its body is read past the limit, and answers the file's id for `sendReply`. A download
//! checks the URL's signature and expiry (403 `media_url_invalid` / `media_url_expired`
//! otherwise), records in the audit log who it was issued to, and streams the bytes with
//! their stored type, never sniffed.

use super::auth;
use super::endpoint::Gate;
use crate::domain::Permission;
use crate::domain::media::{MediaKind, MediaRefused};
use crate::error::{ApiError, ErrorCode, HttpError};
use crate::media::signing::{SignedQuery, UrlRefused};
use crate::media::{Media, UploadError};
use crate::store::audit::AuditRecord;
use crate::store::entities::media;
use crate::store::media::STORED;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures::StreamExt;
use serde::Deserialize;
use std::sync::Arc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/media", web::post().to(upload))
        .route("/media/{id}", web::get().to(download));
}

fn refuse(error: ApiError) -> HttpResponse {
    HttpError(error).error_response()
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(rename = "fileName")]
    file_name: Option<String>,
}

/// A file as the API shows it.
pub fn describe(file: &media::Model) -> serde_json::Value {
    serde_json::json!({
        "id": file.id.to_string(),
        "kind": file.kind.to_ascii_uppercase(),
        "mimeType": file.mime_type,
        "size": file.size,
        "sha256": file.sha256,
        "fileName": file.file_name,
    })
}

/// `POST /media`: the body is the file, `Content-Type` its type, `?fileName=` its name.
async fn upload(
    gate: web::Data<Gate>,
    media: web::Data<Arc<Media>>,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> HttpResponse {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = match auth::authenticate(&gate.store, authorization, gate.clock.now()).await {
        Ok(who) => who,
        Err(error) => return refuse(error),
    };
    if let Err(error) = who.require(Permission::ReplyToCustomers) {
        return refuse(error);
    }
    let Some(mime) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    else {
        return refuse(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the file's type in Content-Type",
        ));
    };
    if let Err(refused) = media.limits.check_mime(mime) {
        return refuse(refused_error(refused));
    }
    let kind = MediaKind::of_mime(mime);
    let limit = media.limits.max_bytes(kind);
    let body = match crate::ingest::read_body(
        &req,
        payload,
        usize::try_from(limit).unwrap_or(usize::MAX),
        &format!("{} files", kind.as_str()),
    )
    .await
    {
        Ok(body) => body,
        Err(error) => return refuse(error),
    };
    let file_name = query
        .into_inner()
        .file_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if file_name.as_ref().is_some_and(|n| n.chars().count() > 240) {
        return refuse(ApiError::new(
            ErrorCode::InvalidInput,
            "the file name is longer than 240 characters",
        ));
    }
    match media
        .upload(mime, file_name, body, who.actor().label())
        .await
    {
        Ok(file) => HttpResponse::Created().json(describe(&file)),
        Err(UploadError::Refused(refused)) => refuse(refused_error(refused)),
        Err(UploadError::Empty) => {
            refuse(ApiError::new(ErrorCode::InvalidInput, "the file is empty"))
        }
        Err(error) => refuse(ApiError::internal(error)),
    }
}

fn refused_error(refused: MediaRefused) -> ApiError {
    match refused {
        MediaRefused::TooLarge { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, refused.to_string())
        }
        MediaRefused::MimeNotAllowed(_) => {
            ApiError::new(ErrorCode::UnsupportedMediaType, refused.to_string())
        }
    }
}

/// `GET /media/{id}` with a signed query.
#[tracing::instrument(skip_all, fields(media_id = %id))]
async fn download(
    gate: web::Data<Gate>,
    media: web::Data<Arc<Media>>,
    id: web::Path<String>,
    query: web::Query<SignedQuery>,
) -> HttpResponse {
    let Ok(id) = id.parse::<i64>() else {
        return refuse(ApiError::new(
            ErrorCode::MediaNotFound,
            "no such media file",
        ));
    };
    let now = gate.clock.now();
    let by = match media.signer.verify(id, &query, now) {
        Ok(by) => by,
        Err(UrlRefused::Invalid) => {
            return refuse(ApiError::new(
                ErrorCode::MediaUrlInvalid,
                "the URL's signature does not match; ask the API for a new one",
            ));
        }
        Err(UrlRefused::Expired) => {
            return refuse(ApiError::new(
                ErrorCode::MediaUrlExpired,
                "the URL has expired; ask the API for a new one",
            ));
        }
    };
    let file = match gate.store.media(id).await {
        Ok(Some(file)) if file.state == STORED => file,
        Ok(_) => {
            return refuse(ApiError::new(
                ErrorCode::MediaNotFound,
                "no such media file",
            ));
        }
        Err(error) => return refuse(ApiError::internal(error)),
    };
    let Some(key) = file.blob_key.clone() else {
        return refuse(ApiError::new(
            ErrorCode::MediaNotFound,
            "no such media file",
        ));
    };
    let stream = match media.blobs.get(&key).await {
        Ok(stream) => stream,
        Err(error) => return refuse(ApiError::internal(error)),
    };
    let audit = AuditRecord {
        actor: by,
        action: "media.downloaded".into(),
        subject: Some(format!("media:{id}")),
        data: serde_json::json!({
            "message_id": file.message_id,
            "kind": file.kind,
            "size": file.size,
        }),
        at: now,
    };
    if let Err(error) = gate.store.audit(audit).await {
        // Nothing leaves unaudited.
        return refuse(ApiError::internal(error));
    }
    let mime = file
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let disposition = match (&file.file_name, file.kind.as_str()) {
        (Some(name), _) => format!("inline; filename=\"{}\"", safe_file_name(name)),
        (None, kind) => format!("inline; filename=\"{kind}-{id}\""),
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(mime)
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"));
    if let Some(size) = file.size {
        response.no_chunking(size as u64);
    }
    response
        .streaming(stream.map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError)))
}

/// A file name fit for a quoted header value: printable ASCII without quotes or
/// backslashes; anything else becomes `_`.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a media file is.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "MediaKind")]
pub enum MediaKindGql {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

/// Where an inbound file's fetch stands (an upload is STORED from the start).
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MediaFetchState {
    /// Not fetched yet (or being retried: see `failureReason`).
    Pending,
    Stored,
    /// Given up: `failureReason` says why.
    Failed,
    /// Removed by erasure or retention.
    Erased,
}

/// A media file of a message: an image, voice note or other audio, video, document or
/// sticker.
pub struct MediaFile(pub media::Model);

#[async_graphql::Object(name = "Media")]
impl MediaFile {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    async fn kind(&self) -> MediaKindGql {
        match MediaKind::parse(&self.0.kind) {
            Some(MediaKind::Image) => MediaKindGql::Image,
            Some(MediaKind::Audio) => MediaKindGql::Audio,
            Some(MediaKind::Video) => MediaKindGql::Video,
            Some(MediaKind::Sticker) => MediaKindGql::Sticker,
            Some(MediaKind::Document) | None => MediaKindGql::Document,
        }
    }
    /// The MIME type as stored (what the provider said, for an inbound file).
    async fn mime_type(&self) -> Option<&str> {
        self.0.mime_type.as_deref()
    }
    /// Bytes, once stored.
    async fn size(&self) -> Option<i64> {
        self.0.size
    }
    async fn file_name(&self) -> Option<&str> {
        self.0.file_name.as_deref()
    }
    async fn caption(&self) -> Option<&str> {
        self.0.caption.as_deref()
    }
    /// Hex SHA-256 of the stored bytes (checked against the provider's for inbound files).
    async fn sha256(&self) -> Option<&str> {
        self.0.sha256.as_deref()
    }
    async fn fetch_state(&self) -> MediaFetchState {
        match self.0.state.as_str() {
            crate::store::media::STORED => MediaFetchState::Stored,
            crate::store::media::FAILED => MediaFetchState::Failed,
            crate::store::media::ERASED => MediaFetchState::Erased,
            _ => MediaFetchState::Pending,
        }
    }
    /// Why the fetch failed (or why the last attempt did, while it is retried).
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }
    /// A short-lived signed path (`/media/{id}?exp=...&by=...&sig=...`) that loads the
    /// file without the bearer token, for `<img src>` or `<audio src>`; null until the
    /// file is stored. The download is audited in the caller's name. `ttlSecs` defaults
    /// to `[media] url_ttl_secs` and is capped at `max_url_ttl_secs`.
    async fn url(
        &self,
        ctx: &async_graphql::Context<'_>,
        ttl_secs: Option<i32>,
    ) -> async_graphql::Result<Option<String>> {
        let who = super::principal(ctx)?;
        who.require(Permission::ReadConversations)?;
        if self.0.state != STORED || self.0.blob_key.is_none() {
            return Ok(None);
        }
        if ttl_secs.is_some_and(|t| t <= 0) {
            return Err(ApiError::new(ErrorCode::InvalidInput, "ttlSecs must be positive").into());
        }
        let media = &super::api(ctx).media;
        Ok(Some(media.signed_path(
            &self.0,
            ttl_secs.map(|t| t as u64),
            &who.actor().label(),
        )))
    }
}

/// Meta's limit on a media message's caption.
const MAX_CAPTION_CHARS: usize = 1024;

/// The upload `media_id` as a reply may attach it, with `caption` as its text: an
/// upload (not a customer's file), stored, not sent before; audio and stickers take no
/// caption.
pub async fn attachable(
    store: &crate::store::Store,
    media_id: i64,
    caption: &str,
) -> Result<crate::domain::media::AttachedMedia, ApiError> {
    let file = store
        .media(media_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MediaNotFound,
                format!("media file {media_id} does not exist"),
            )
        })?;
    if file.direction != crate::store::media::OUTBOUND {
        return Err(ApiError::new(
            ErrorCode::MediaNotUsable,
            format!("media file {media_id} came from a customer; upload the file to send it"),
        ));
    }
    if file.state != STORED || file.message_id.is_some() {
        return Err(ApiError::new(
            ErrorCode::MediaNotUsable,
            format!("media file {media_id} was already sent or erased; upload it again"),
        ));
    }
    let kind = MediaKind::parse(&file.kind).unwrap_or(MediaKind::Document);
    if !caption.trim().is_empty() && matches!(kind, MediaKind::Audio | MediaKind::Sticker) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "a {} is sent without a caption; send the text on its own",
                kind.as_str()
            ),
        ));
    }
    if caption.chars().count() > MAX_CAPTION_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("a caption is at most {MAX_CAPTION_CHARS} characters"),
        ));
    }
    Ok(crate::domain::media::AttachedMedia {
        id: file.id,
        kind,
        mime_type: file.mime_type.unwrap_or_default(),
        file_name: file.file_name,
    })
}
