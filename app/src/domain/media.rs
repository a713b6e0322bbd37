//! Media files: their kinds, and what is accepted (size per kind, MIME allow-list).

use serde::{Deserialize, Serialize};

/// What a media file is to WhatsApp; each kind has its own size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] = [
        Self::Image,
        Self::Audio,
        Self::Video,
        Self::Document,
        Self::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a file of this MIME type is sent as (`image/webp` is a sticker, as on
    /// WhatsApp; anything not image, audio or video goes as a document).
    pub fn of_mime(mime: &str) -> Self {
        let essence = mime_essence(mime);
        if essence == "image/webp" {
            Self::Sticker
        } else if essence.starts_with("image/") {
            Self::Image
        } else if essence.starts_with("audio/") {
            Self::Audio
        } else if essence.starts_with("video/") {
            Self::Video
        } else {
            Self::Document
        }
    }
}

/// An uploaded file attached to an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedMedia {
    /// Parley's id of the upload.
    pub id: i64,
    pub kind: MediaKind,
    pub mime_type: String,
    pub file_name: Option<String>,
}

/// A MIME type without its parameters, lower-cased: `audio/ogg; codecs=opus` is
/// `audio/ogg`.
pub fn mime_essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// What files are accepted, both ways.
#[derive(Debug, Clone)]
pub struct MediaLimits {
    pub max_image_bytes: u64,
    pub max_audio_bytes: u64,
    pub max_video_bytes: u64,
    pub max_document_bytes: u64,
    pub max_sticker_bytes: u64,
    /// MIME essences, lower-cased.
    pub allowed_mime_types: Vec<String>,
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefused {
    #[error("the {kind} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        kind: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("files of type {0:?} are not accepted")]
    MimeNotAllowed(String),
}

impl MediaLimits {
    pub fn max_bytes(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Image => self.max_image_bytes,
            MediaKind::Audio => self.max_audio_bytes,
            MediaKind::Video => self.max_video_bytes,
            MediaKind::Document => self.max_document_bytes,
            MediaKind::Sticker => self.max_sticker_bytes,
        }
    }

    /// The largest file of any kind.
    pub fn largest(&self) -> u64 {
        MediaKind::ALL
            .into_iter()
            .map(|k| self.max_bytes(k))
            .max()
            .unwrap_or(0)
    }

    pub fn check_mime(&self, mime: &str) -> Result<(), MediaRefused> {
        let essence = mime_essence(mime);
        if self.allowed_mime_types.contains(&essence) {
            Ok(())
        } else {
            Err(MediaRefused::MimeNotAllowed(essence))
        }
    }

    pub fn check_size(&self, kind: MediaKind, size: u64) -> Result<(), MediaRefused> {
        let limit = self.max_bytes(kind);
        if size > limit {
            Err(MediaRefused::TooLarge {
                kind: kind.as_str(),
                size,
                limit,
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MediaLimits {
        MediaLimits {
            max_image_bytes: 10,
            max_audio_bytes: 20,
            max_video_bytes: 20,
            max_document_bytes: 30,
            max_sticker_bytes: 5,
            allowed_mime_types: vec!["image/jpeg".into(), "audio/ogg".into()],
        }
    }

    #[test]
    fn a_mime_type_with_parameters_is_matched_by_its_essence() {
        assert!(limits().check_mime("audio/ogg; codecs=opus").is_ok());
        assert!(limits().check_mime("Image/JPEG").is_ok());
        assert_eq!(
            limits().check_mime("application/x-msdownload"),
            Err(MediaRefused::MimeNotAllowed(
                "application/x-msdownload".into()
            ))
        );
    }

    #[test]
    fn each_kind_has_its_own_size_limit() {
        assert!(limits().check_size(MediaKind::Image, 10).is_ok());
        assert!(limits().check_size(MediaKind::Image, 11).is_err());
        assert!(limits().check_size(MediaKind::Sticker, 6).is_err());
        assert_eq!(limits().largest(), 30);
    }

    #[test]
    fn the_kind_follows_the_mime_type() {
        assert_eq!(MediaKind::of_mime("image/png"), MediaKind::Image);
        assert_eq!(MediaKind::of_mime("image/webp"), MediaKind::Sticker);
        assert_eq!(
            MediaKind::of_mime("audio/ogg; codecs=opus"),
            MediaKind::Audio
        );
        assert_eq!(MediaKind::of_mime("application/pdf"), MediaKind::Document);
    }
}
