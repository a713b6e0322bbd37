//! The fetch worker: brings the files customers send into the blob store.
//!
//! For a Cloud API channel it follows Meta's two steps: `GET {api_base}/{media-id}` with
//! the channel's token answers `{url, mime_type, sha256, file_size}`, then `GET url` with
//! the same token gives the bytes. The download URL expires after about five minutes, so
//! a file is fetched as soon as its message is committed (the worker is woken by the
//! message's event) and each retry asks for a fresh URL. A file of a transport channel
//! (Twilio's `MediaUrl`) is one plain `GET` of the URL the plugin gave.
//!
//! Network failures, 429 and 5xx are retried with backoff up to `fetch_max_attempts`; a
//! refusal (a 4xx, a file too large for its kind, a MIME type not allowed, a sha256 that
//! does not match Meta's) fails the file at once. Either way the failure and its reason
//! are on the file's row, shown with the message. The worker also deletes the bytes of
//! erased files.

use super::Media;
use crate::clock::SharedClock;
use crate::config::{ChannelSettings, Settings};
use crate::domain::media::{MediaKind, mime_essence};
use crate::events::EventBus;
use crate::store::Store;
use crate::store::entities::media;
use crate::store::media::{FetchOutcome, ForgetBlob, RecordFetch};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the worker looks for work even when nothing woke it (a safety net).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Erased files whose bytes are deleted per round.
const ERASED_PER_ROUND: u64 = 100;

/// What one attempt came to, before it is recorded.
enum Attempt {
    Stored {
        mime_type: String,
        size: i64,
        sha256: String,
        blob_key: String,
    },
    /// Worth another try (the network, the provider's 429 or 5xx, the blob store).
    Retryable(String),
    /// Refused for good.
    Refused(String),
}

/// Meta's answer to `GET /{media-id}`.
#[derive(Deserialize)]
struct MediaInfo {
    url: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    file_size: Option<serde_json::Value>,
}

pub struct MediaWorker {
    store: Store,
    clock: SharedClock,
    media: Arc<Media>,
    channels: HashMap<String, ChannelSettings>,
    http: reqwest::Client,
    events: EventBus,
}

impl MediaWorker {
    pub fn new(
        store: Store,
        clock: SharedClock,
        media: Arc<Media>,
        settings: &Settings,
        events: EventBus,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.media.request_timeout_ms))
            .build()?;
        Ok(Self {
            store,
            clock,
            media,
            channels: settings
                .channels
                .iter()
                .map(|c| (c.id().to_owned(), c.clone()))
                .collect(),
            http,
            events,
        })
    }

    /// Runs until the process stops.
    pub async fn run(self) {
        let mut wakeups = self.events.subscribe();
        loop {
            self.delete_erased().await;
            let now = self.clock.now();
            let limit = (self.media.settings.fetch_concurrency * 4).max(1) as u64;
            let due = match self.store.due_fetches(now, limit).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(error = %error, "Could not read the media fetch queue.");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            if due.is_empty() {
                let next = self.store.next_fetch_due().await.ok().flatten();
                let timer = match next {
                    Some(at) => self.clock.sleep_until(at),
                    None => Box::pin(futures::future::pending()),
                };
                tokio::select! {
                    _ = wakeups.recv() => {
                        // One look serves every event that came meanwhile.
                        while wakeups.try_recv().is_ok() {}
                    }
                    _ = timer => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            }
            futures::stream::iter(due)
                .for_each_concurrent(self.media.settings.fetch_concurrency, |file| {
                    self.fetch(file)
                })
                .await;
        }
    }

    async fn delete_erased(&self) {
        let erased = match self.store.erased_blobs(ERASED_PER_ROUND).await {
            Ok(erased) => erased,
            Err(error) => {
                tracing::error!(error = %error, "Could not read the erased media files.");
                return;
            }
        };
        for file in erased {
            let Some(key) = &file.blob_key else { continue };
            if let Err(error) = self.media.blobs.delete(key).await {
                tracing::warn!(media_id = file.id, error = %error, "Could not delete an erased media file; retried later.");
                continue;
            }
            let forget = ForgetBlob {
                media_id: file.id,
                now: self.clock.now(),
            };
            if let Err(error) = self.store.write(forget).await {
                tracing::error!(media_id = file.id, error = %error, "Could not record a deleted media file.");
            }
        }
    }

    #[tracing::instrument(skip_all, fields(media_id = file.id, kind = %file.kind))]
    async fn fetch(&self, file: media::Model) {
        let attempt = self.attempt(&file).await;
        let number = file.attempts as u32 + 1;
        let outcome = match attempt {
            Attempt::Stored {
                mime_type,
                size,
                sha256,
                blob_key,
            } => FetchOutcome::Stored {
                mime_type,
                size,
                sha256,
                blob_key,
            },
            Attempt::Retryable(reason) if number < self.media.settings.fetch_max_attempts => {
                FetchOutcome::Retry {
                    next_attempt_at: self.clock.now() + self.backoff(number).as_micros() as i64,
                    reason,
                }
            }
            Attempt::Retryable(reason) => FetchOutcome::Failed {
                reason: format!("gave up after {number} attempts: {reason}"),
            },
            Attempt::Refused(reason) => FetchOutcome::Failed { reason },
        };
        match &outcome {
            FetchOutcome::Stored { size, .. } => {
                tracing::info!(size, "Media file fetched.")
            }
            FetchOutcome::Retry { reason, .. } => {
                tracing::warn!(attempt = number, reason = %reason, "Media fetch failed; retried later.")
            }
            FetchOutcome::Failed { reason } => {
                tracing::warn!(reason = %reason, "Media fetch failed for good.")
            }
        }
        let record = RecordFetch {
            media_id: file.id,
            outcome,
            now: self.clock.now(),
        };
        if let Err(error) = self.store.write(record).await {
            tracing::error!(error = %error, "Could not record a media fetch; it is tried again.");
        }
    }

    async fn attempt(&self, file: &media::Model) -> Attempt {
        let Some(provider_id) = file.provider_media_id.as_deref() else {
            return Attempt::Refused("the message names no media".into());
        };
        let kind = MediaKind::parse(&file.kind).unwrap_or(MediaKind::Document);
        let limit = self.media.limits.max_bytes(kind);
        let (response, expected_sha, declared_mime) = match self.channels.get(&file.channel_id) {
            Some(ChannelSettings::WhatsappCloud(cloud)) => {
                let token = cloud.access_token.expose_secret();
                let info_url = format!("{}/{provider_id}", cloud.api_base.trim_end_matches('/'));
                let info: MediaInfo = match self.get(&info_url, Some(token)).await {
                    Ok(response) => match response.json().await {
                        Ok(info) => info,
                        Err(error) => {
                            return Attempt::Retryable(format!(
                                "the media lookup's answer was not understood: {error}"
                            ));
                        }
                    },
                    Err(attempt) => return attempt,
                };
                if let Some(size) = info.file_size.as_ref().and_then(size_of)
                    && let Err(refused) = self.media.limits.check_size(kind, size)
                {
                    return Attempt::Refused(refused.to_string());
                }
                let expected = info.sha256.or_else(|| file.expected_sha256.clone());
                let mime = info.mime_type.or_else(|| file.mime_type.clone());
                match self.get(&info.url, Some(token)).await {
                    Ok(response) => (response, expected, mime),
                    Err(attempt) => return attempt,
                }
            }
            Some(ChannelSettings::Transport(_)) => match self.get(provider_id, None).await {
                Ok(response) => {
                    let mime = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                        .or_else(|| file.mime_type.clone());
                    (response, None, mime)
                }
                Err(attempt) => return attempt,
            },
            None => {
                return Attempt::Refused(format!(
                    "channel {:?} is not configured",
                    file.channel_id
                ));
            }
        };
        let Some(mime) = declared_mime else {
            return Attempt::Refused("the provider gave no MIME type".into());
        };
        if let Err(refused) = self.media.limits.check_mime(&mime) {
            return Attempt::Refused(refused.to_string());
        }
        let bytes = match read_capped(response, limit).await {
            Ok(bytes) => bytes,
            Err(attempt) => return attempt,
        };
        if let Err(refused) = self.media.limits.check_size(kind, bytes.len() as u64) {
            return Attempt::Refused(refused.to_string());
        }
        let digest = Sha256::digest(&bytes);
        let sha256 = hex::encode(digest);
        if let Some(expected) = expected_sha.filter(|e| !e.is_empty())
            && !same_hash(&expected, &digest)
        {
            return Attempt::Refused(format!(
                "sha256 mismatch: the provider said {expected}, the file hashes to {sha256}"
            ));
        }
        let blob_key = format!("inbound/{}", file.id);
        let size = bytes.len() as i64;
        if let Err(error) = self.media.blobs.put(&blob_key, bytes).await {
            return Attempt::Retryable(error.to_string());
        }
        Attempt::Stored {
            mime_type: mime_essence(&mime),
            size,
            sha256,
            blob_key,
        }
    }

    /// A GET that succeeded, or what its failure means.
    async fn get(&self, url: &str, token: Option<&str>) -> Result<reqwest::Response, Attempt> {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| Attempt::Retryable(format!("the call failed: {error}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let reason = format!("HTTP {status} {detail}").trim().to_owned();
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Attempt::Retryable(reason))
        } else {
            Err(Attempt::Refused(reason))
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let settings = &self.media.settings;
        let exp = settings
            .fetch_initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
        Duration::from_millis(exp.min(settings.fetch_max_backoff_ms))
    }
}

/// Reads a body, refusing it as soon as it passes `limit` bytes.
async fn read_capped(response: reqwest::Response, limit: u64) -> Result<Bytes, Attempt> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(Attempt::Refused(format!(
            "the file is {length} bytes, more than the {limit} allowed"
        )));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|error| Attempt::Retryable(format!("the download broke off: {error}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Attempt::Refused(format!(
                "the file is more than the {limit} bytes allowed"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Meta's `file_size` comes as a number or a string of digits.
fn size_of(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether `expected` (hex, or base64 as some webhooks send it) names `digest`.
fn same_hash(expected: &str, digest: &[u8]) -> bool {
    let expected = expected.trim();
    if let Ok(bytes) = hex::decode(expected)
        && bytes == digest
    {
        return true;
    }
    base64::engine::general_purpose::STANDARD
        .decode(expected)
        .is_ok_and(|bytes| bytes == digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_matched_in_hex_or_base64() {
        let digest = Sha256::digest(b"parcel photo");
        assert!(same_hash(&hex::encode(digest), &digest));
        assert!(same_hash(
            &base64::engine::general_purpose::STANDARD.encode(digest),
            &digest
        ));
        assert!(!same_hash(&hex::encode(Sha256::digest(b"other")), &digest));
    }
}
