//! Media files, both ways: the blob store that keeps their bytes, the worker that fetches
//! what customers send, and the signed URLs through which browsers load them.
//!
//! It owns the bytes; the store's `media` rows say what they are. Inbound files are
//! fetched in the background from the rows their messages' commits wrote (never while a
//! webhook waits); uploads are written here by the API, then sent by the outbox worker.
//! It never decides who may see a file: the API checks the caller's role before it signs
//! a URL.

pub mod blobs;
pub mod fetch;
pub mod signing;

use crate::clock::SharedClock;
use crate::config::MediaSettings;
use crate::domain::media::{MediaKind, MediaLimits, MediaRefused, mime_essence};
use crate::store::Store;
use crate::store::entities::media;
use crate::store::media::{KeepSecret, RecordUpload};
use anyhow::Context;
use blobs::{BlobError, BlobStore};
use bytes::Bytes;
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use signing::UrlSigner;

/// The name of the URL-signing key in `server_secrets`.
const URL_SECRET: &str = "media_url";

/// What the API, the fetch worker and the outbox share about media.
pub struct Media {
    pub blobs: BlobStore,
    pub signer: UrlSigner,
    pub limits: MediaLimits,
    pub settings: MediaSettings,
    store: Store,
    clock: SharedClock,
}

/// Why an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Refused(#[from] MediaRefused),
    #[error("the file is empty")]
    Empty,
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Media {
    /// Opens the blob store and loads (or creates, once) the URL-signing key.
    pub async fn start(
        settings: &MediaSettings,
        store: Store,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let blobs = BlobStore::open(settings).context("Failed to open the media blob store")?;
        let configured = settings.url_secret.expose_secret();
        let key = if configured.is_empty() {
            let mut fresh = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut fresh);
            store
                .write(KeepSecret {
                    name: URL_SECRET,
                    value: hex::encode(fresh),
                    now: clock.now(),
                })
                .await
                .context("Failed to load the media URL key")?
        } else {
            configured.to_owned()
        };
        let signer = UrlSigner::new(key.as_bytes())
            .map_err(|_| anyhow::anyhow!("the media URL key cannot key an HMAC"))?;
        Ok(Self {
            blobs,
            signer,
            limits: limits(settings),
            settings: settings.clone(),
            store,
            clock,
        })
    }

    /// A signed path for `file`, valid for `ttl_secs` (capped), issued to `by`.
    pub fn signed_path(&self, file: &media::Model, ttl_secs: Option<u64>, by: &str) -> String {
        let ttl = ttl_secs
            .unwrap_or(self.settings.url_ttl_secs)
            .clamp(1, self.settings.max_url_ttl_secs);
        let expires = self.clock.now() / 1_000_000 + ttl as i64;
        self.signer.sign(file.id, expires, by)
    }

    /// Keeps an uploaded file: checks its type and size, stores the bytes, records it.
    pub async fn upload(
        &self,
        mime_type: &str,
        file_name: Option<String>,
        body: Bytes,
        by: String,
    ) -> Result<media::Model, UploadError> {
        self.limits.check_mime(mime_type)?;
        let kind = MediaKind::of_mime(mime_type);
        self.limits.check_size(kind, body.len() as u64)?;
        if body.is_empty() {
            return Err(UploadError::Empty);
        }
        let sha256 = hex::encode(Sha256::digest(&body));
        let mut random = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut random);
        let blob_key = format!("outbound/{}", hex::encode(random));
        let size = body.len() as i64;
        self.blobs.put(&blob_key, body).await?;
        Ok(self
            .store
            .write(RecordUpload {
                kind,
                mime_type: mime_essence(mime_type),
                size,
                sha256,
                file_name,
                blob_key,
                created_by: by,
                now: self.clock.now(),
            })
            .await?)
    }

    /// The whole of a stored file (for an upload to the provider).
    pub async fn read_all(&self, key: &str) -> Result<Bytes, BlobError> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.blobs.get(key).await?.try_collect().await?;
        Ok(chunks.concat().into())
    }
}

fn limits(settings: &MediaSettings) -> MediaLimits {
    MediaLimits {
        max_image_bytes: settings.max_image_bytes,
        max_audio_bytes: settings.max_audio_bytes,
        max_video_bytes: settings.max_video_bytes,
        max_document_bytes: settings.max_document_bytes,
        max_sticker_bytes: settings.max_sticker_bytes,
        allowed_mime_types: settings
            .allowed_mime_types
            .iter()
            .map(|m| mime_essence(m))
            .collect(),
    }
}
