//! The WhatsApp Cloud API client: `POST {api_base}/{phone_number_id}/messages`.

use crate::config::CloudChannelSettings;
use crate::store::entities::outbox;
use crate::store::outbox::callback_data;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::time::Duration;

/// Provider error codes worth another try: throttling and temporary failures.
const RETRYABLE_CODES: &[i64] = &[1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004];

/// What one call to the provider came to.
#[derive(Debug)]
pub enum CallOutcome {
    Sent(String),
    Retryable {
        error: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        code: String,
        title: String,
    },
    /// The provider may or may not have accepted it.
    Unknown(String),
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

#[derive(Deserialize)]
struct UploadResponse {
    id: String,
}

/// A file to upload to `POST /{phone_number_id}/media`.
pub struct Upload {
    pub bytes: bytes::Bytes,
    pub mime_type: String,
    pub file_name: String,
}

#[derive(Clone)]
pub struct GraphApi {
    http: reqwest::Client,
}

impl GraphApi {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    /// Uploads a file for `phone_number_id`; `Sent` carries the provider's media id. An
    /// upload sends nothing to anyone, so any failure that is not a refusal is retried.
    pub async fn upload_media(
        &self,
        channel: &CloudChannelSettings,
        phone_number_id: &str,
        upload: Upload,
    ) -> CallOutcome {
        let part = match reqwest::multipart::Part::bytes(upload.bytes.to_vec())
            .file_name(upload.file_name)
            .mime_str(&upload.mime_type)
        {
            Ok(part) => part,
            Err(error) => {
                return CallOutcome::Permanent {
                    code: "media_type_invalid".into(),
                    title: error.to_string(),
                };
            }
        };
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", upload.mime_type)
            .part("file", part);
        let url = format!(
            "{}/{}/media",
            channel.api_base.trim_end_matches('/'),
            phone_number_id
        );
        let response = match self
            .http
            .post(&url)
            .bearer_auth(channel.access_token.expose_secret())
            .multipart(form)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => {
                return CallOutcome::Retryable {
                    error: format!("the media upload failed: {error}"),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_str::<UploadResponse>(&text) {
                Ok(uploaded) => CallOutcome::Sent(uploaded.id),
                Err(_) => CallOutcome::Retryable {
                    error: "the media upload's answer was not understood".into(),
                    retry_after: None,
                },
            };
        }
        let error = serde_json::from_str::<ErrorResponse>(&text)
            .ok()
            .map(|e| e.error);
        let code = error.as_ref().map(|e| e.code).unwrap_or_default();
        let title = error
            .map(|e| e.message)
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.is_server_error() || status.as_u16() == 429 || RETRYABLE_CODES.contains(&code) {
            return CallOutcome::Retryable {
                error: format!("media upload: HTTP {status}, code {code}: {title}"),
                retry_after: None,
            };
        }
        CallOutcome::Permanent {
            code: if code == 0 {
                format!("http_{}", status.as_u16())
            } else {
                code.to_string()
            },
            title: format!("the media upload was refused: {title}"),
        }
    }

    pub async fn send(&self, channel: &CloudChannelSettings, job: &outbox::Model) -> CallOutcome {
        let mut body: serde_json::Value = match serde_json::from_str(&job.payload) {
            Ok(body) => body,
            Err(error) => {
                return CallOutcome::Permanent {
                    code: "payload_invalid".into(),
                    title: error.to_string(),
                };
            }
        };
        if let Some(map) = body.as_object_mut() {
            map.insert("messaging_product".into(), "whatsapp".into());
            map.insert("recipient_type".into(), "individual".into());
            map.insert("to".into(), job.recipient.clone().into());
            map.insert(
                "biz_opaque_callback_data".into(),
                callback_data(job.message_id).into(),
            );
        }
        let url = format!(
            "{}/{}/messages",
            channel.api_base.trim_end_matches('/'),
            job.phone_number_id
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(channel.access_token.expose_secret())
            .json(&body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // Refused before anything was sent: safe to try again.
            Err(error) if error.is_connect() => {
                return CallOutcome::Retryable {
                    error: format!("could not connect: {error}"),
                    retry_after: None,
                };
            }
            Err(error) if error.is_timeout() => {
                return CallOutcome::Unknown("the provider did not answer in time".into());
            }
            Err(error) => return CallOutcome::Unknown(format!("the call failed midway: {error}")),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                return CallOutcome::Unknown(format!("the answer could not be read: {error}"));
            }
        };
        if status.is_success() {
            return match serde_json::from_str::<SendResponse>(&text) {
                Ok(SendResponse { messages }) => match messages.into_iter().next() {
                    Some(message) => CallOutcome::Sent(message.id),
                    None => CallOutcome::Unknown(
                        "the provider accepted the call but returned no message id".into(),
                    ),
                },
                Err(_) => CallOutcome::Unknown("the provider's answer was not understood".into()),
            };
        }
        let error = serde_json::from_str::<ErrorResponse>(&text)
            .ok()
            .map(|e| e.error);
        let code = error.as_ref().map(|e| e.code).unwrap_or_default();
        let title = error
            .as_ref()
            .map(
                |e| match e.error_data.as_ref().and_then(|d| d.details.clone()) {
                    Some(details) if !details.is_empty() => format!("{} ({details})", e.message),
                    _ => e.message.clone(),
                },
            )
            .unwrap_or_else(|| format!("HTTP {status}"));
        // A 500 or 504 may come after the message was accepted (the provider failed, or
        // timed out, answering): trying again could send it twice.
        if matches!(status.as_u16(), 500 | 504) {
            return CallOutcome::Unknown(format!("HTTP {status}, code {code}: {title}"));
        }
        if status.is_server_error() || status.as_u16() == 429 || RETRYABLE_CODES.contains(&code) {
            return CallOutcome::Retryable {
                error: format!("HTTP {status}, code {code}: {title}"),
                retry_after,
            };
        }
        let code = if code == 0 {
            format!("http_{}", status.as_u16())
        } else {
            code.to_string()
        };
        CallOutcome::Permanent { code, title }
    }
}
