//! The blob store: where the bytes of media files live. A local directory by default, or
//! any S3-compatible store; both through `object_store`, so the rest of Parley never
//! knows which.

use crate::config::{MediaBackend, MediaSettings};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("could not create the media directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
}

/// Handle to the blob store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
}

impl BlobStore {
    pub fn open(settings: &MediaSettings) -> Result<Self, BlobError> {
        let inner: Arc<dyn ObjectStore> = match settings.backend {
            MediaBackend::Local => {
                std::fs::create_dir_all(&settings.dir).map_err(|source| BlobError::Directory {
                    path: settings.dir.display().to_string(),
                    source,
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&settings.dir)?)
            }
            MediaBackend::S3 => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&settings.s3_bucket)
                    .with_region(&settings.s3_region)
                    .with_allow_http(settings.s3_allow_http);
                if !settings.s3_endpoint.is_empty() {
                    builder = builder.with_endpoint(&settings.s3_endpoint);
                }
                if !settings.s3_access_key_id.is_empty() {
                    builder = builder
                        .with_access_key_id(&settings.s3_access_key_id)
                        .with_secret_access_key(settings.s3_secret_access_key.expose_secret());
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { inner })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.inner
            .put(&Path::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// The bytes under `key`, as a stream of chunks.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, BlobError>> + use<>, BlobError> {
        let found = self.inner.get(&Path::from(key)).await?;
        Ok(found
            .into_stream()
            .map(|chunk| chunk.map_err(BlobError::from)))
    }

    /// Whether anything is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.inner.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the bytes under `key`; nothing there is not an error (a delete repeated
    /// after a crash).
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
