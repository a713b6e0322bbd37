//! Sends that carry a file. The queued provider request names Parley's upload under
//! [`MEDIA_KEY`]; before the Cloud API call the file is uploaded to
//! `POST /{phone_number_id}/media` and the provider's id kept on the send
//! ([`RecordProviderMedia`], committed before the message call), so a retried send never
//! uploads the file twice. The request then names the file by that id.

use super::graph_api::{CallOutcome, GraphApi, Upload};
use crate::clock::SharedClock;
use crate::config::CloudChannelSettings;
use crate::media::Media;
use crate::store::Store;
use crate::store::entities::outbox;
use crate::store::media::STORED;
use crate::store::outbox::RecordProviderMedia;
use serde_json::Value;

/// The key of a queued request that names the upload to attach: `{"id": n, "kind": k}`.
pub const MEDIA_KEY: &str = "parley_media";

/// The upload a queued request names, if any: (Parley's media id, kind).
pub fn attached(payload: &Value) -> Option<(i64, String)> {
    let media = payload.get(MEDIA_KEY)?;
    Some((
        media.get("id")?.as_i64()?,
        media.get("kind")?.as_str()?.to_owned(),
    ))
}

/// The send with its file uploaded and named by the provider's id; or what stopped it.
pub async fn with_uploaded_media(
    api: &GraphApi,
    media: &Media,
    store: &Store,
    clock: &SharedClock,
    channel: &CloudChannelSettings,
    mut job: outbox::Model,
) -> Result<outbox::Model, CallOutcome> {
    let Ok(mut payload) = serde_json::from_str::<Value>(&job.payload) else {
        return Ok(job);
    };
    let Some((media_id, kind)) = attached(&payload) else {
        return Ok(job);
    };
    let provider_id = match job.provider_media_id.clone() {
        Some(id) => id,
        None => {
            let provider_id = upload(api, media, store, channel, &job, media_id).await?;
            let record = RecordProviderMedia {
                outbox_id: job.id,
                provider_media_id: provider_id.clone(),
                now: clock.now(),
            };
            // Not kept, not sent: the next attempt uploads again rather than risk
            // a send whose file the record does not know.
            store
                .write(record)
                .await
                .map_err(|error| CallOutcome::Retryable {
                    error: format!("could not keep the uploaded file's id: {error}"),
                    retry_after: None,
                })?;
            provider_id
        }
    };
    if let Value::Object(map) = &mut payload {
        map.remove(MEDIA_KEY);
        let object = map
            .entry(kind.clone())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(object) = object {
            object.insert("id".into(), Value::String(provider_id.clone()));
        }
    }
    job.payload = payload.to_string();
    job.provider_media_id = Some(provider_id);
    Ok(job)
}

async fn upload(
    api: &GraphApi,
    media: &Media,
    store: &Store,
    channel: &CloudChannelSettings,
    job: &outbox::Model,
    media_id: i64,
) -> Result<String, CallOutcome> {
    let gone = || CallOutcome::Permanent {
        code: "media_not_found".into(),
        title: format!("media file {media_id} is no longer stored"),
    };
    let file = match store.media(media_id).await {
        Ok(Some(file)) if file.state == STORED => file,
        Ok(_) => return Err(gone()),
        Err(error) => {
            return Err(CallOutcome::Retryable {
                error: error.to_string(),
                retry_after: None,
            });
        }
    };
    let key = file.blob_key.clone().ok_or_else(gone)?;
    let bytes = media
        .read_all(&key)
        .await
        .map_err(|error| CallOutcome::Retryable {
            error: format!("could not read the file: {error}"),
            retry_after: None,
        })?;
    let upload = Upload {
        bytes,
        mime_type: file
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        file_name: file
            .file_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", file.kind, file.id)),
    };
    match api
        .upload_media(channel, &job.phone_number_id, upload)
        .await
    {
        CallOutcome::Sent(id) => Ok(id),
        other => Err(other),
    }
}
