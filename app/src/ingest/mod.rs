//! Intake: provider webhooks in, durably, exactly once.
//!
//! `POST /webhooks/{channel_id}` checks the signature over the raw bytes before parsing
//! anything, stores the payload in the inbox (group commit, fsync) and only then answers
//! 200. Everything else happens after the answer, from the inbox: the [`dispatcher`]
//! parses the payload and hands each message to its conversation actor and each status
//! to the store. A crash between the two is replayed from the inbox at start-up; a
//! redelivered payload or message is recognised and recorded once.

pub mod cloud_api;
pub mod dispatcher;
pub mod signature;

use crate::clock::SharedClock;
use crate::config::{ChannelSettings, Settings};
use crate::error::{ApiError, ErrorCode, HttpError};
use crate::store::Store;
use crate::store::batcher::Batcher;
use crate::store::inbox::{InboxInsert, InsertInbox, NewInboxRow};
use crate::telemetry::metrics;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

/// What the webhook handlers share.
pub struct Intake {
    pub settings: Arc<Settings>,
    /// Stores webhook bodies, many per statement.
    pub inbox: Batcher<InsertInbox>,
    pub clock: SharedClock,
    pub dispatcher: dispatcher::Dispatcher,
}

/// Most webhook bodies stored by one statement.
pub const WEBHOOKS_PER_BATCH: usize = 512;

impl Intake {
    pub fn new(
        settings: Arc<Settings>,
        store: &Store,
        clock: SharedClock,
        dispatcher: dispatcher::Dispatcher,
    ) -> Self {
        Self {
            settings,
            inbox: Batcher::start(store.clone(), WEBHOOKS_PER_BATCH),
            clock,
            dispatcher,
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/{channel_id}")
            .route(web::get().to(verify_subscription))
            .route(web::post().to(receive)),
    );
}

fn channel<'a>(intake: &'a Intake, id: &str) -> Result<&'a ChannelSettings, ApiError> {
    intake.settings.channel(id).ok_or_else(|| {
        metrics()
            .webhooks
            .with_label_values(&["unknown", "unknown_channel"])
            .inc();
        ApiError::new(
            ErrorCode::ChannelNotFound,
            format!("no channel {id:?} is configured"),
        )
    })
}

/// Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token` matches.
#[tracing::instrument(skip_all, fields(channel = %path.as_str()))]
async fn verify_subscription(
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    intake: web::Data<Intake>,
) -> Result<HttpResponse, HttpError> {
    let channel = channel(&intake, &path)?;
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query
        .get("hub.verify_token")
        .map(String::as_str)
        .unwrap_or_default();
    let expected = channel.verify_token.expose_secret();
    if mode != Some("subscribe")
        || !signature::constant_time_eq(token.as_bytes(), expected.as_bytes())
    {
        tracing::warn!("Webhook subscription refused: wrong mode or verify token.");
        return Err(ApiError::new(
            ErrorCode::VerifyTokenInvalid,
            "hub.mode or hub.verify_token is wrong",
        )
        .into());
    }
    let challenge = query.get("hub.challenge").cloned().unwrap_or_default();
    tracing::info!("Webhook subscription verified.");
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body(challenge))
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("webhook bodies are limited to {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("could not read the body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Receives a webhook: verify, store durably, answer, then process.
async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    intake: web::Data<Intake>,
) -> Result<HttpResponse, HttpError> {
    let arrived = std::time::Instant::now();
    let span = tracing::info_span!("intake.webhook", channel = %path.as_str(), inbox_id = tracing::field::Empty);
    let channel_id = path.into_inner();
    let result = async {
        let channel = channel(&intake, &channel_id)?;
        let body = match read_body(&req, payload, intake.settings.http.max_body_bytes).await {
            Ok(body) => body,
            Err(error) => {
                metrics().webhooks.with_label_values(&[channel_id.as_str(), "too_large"]).inc();
                return Err(error.into());
            }
        };
        let header = req.headers().get("x-hub-signature-256").and_then(|v| v.to_str().ok());
        if let Err(reason) = signature::verify_meta(header, channel.app_secret.expose_secret().as_bytes(), &body) {
            metrics().webhooks.with_label_values(&[channel_id.as_str(), "signature_invalid"]).inc();
            tracing::warn!(reason, "Webhook refused: bad signature.");
            return Err(ApiError::new(ErrorCode::SignatureInvalid, format!("X-Hub-Signature-256 {reason}")).into());
        }
        let received_at = intake.clock.now();
        let stored = intake
            .inbox
            .submit(NewInboxRow {
                channel_id: channel_id.clone(),
                body_sha256: hex::encode(Sha256::digest(&body)),
                body: body.clone(),
                received_at,
            })
            .await
            .map_err(|error| {
                tracing::error!(error = %error, "Webhook could not be stored; the provider will retry.");
                ApiError::new(ErrorCode::Unavailable, "the webhook could not be stored; retry later")
            })?;
        match stored {
            InboxInsert::Stored(inbox_id) => {
                tracing::Span::current().record("inbox_id", inbox_id);
                metrics().webhooks.with_label_values(&[channel_id.as_str(), "accepted"]).inc();
                intake.dispatcher.dispatch(dispatcher::InboxItem {
                    inbox_id,
                    channel_id: channel_id.clone(),
                    body,
                    received_at,
                    committed: std::time::Instant::now(),
                    span: tracing::Span::current(),
                });
            }
            InboxInsert::Duplicate(_) => {
                metrics().webhooks.with_label_values(&[channel_id.as_str(), "duplicate"]).inc();
                tracing::debug!("Redelivered webhook: already stored.");
            }
        }
        Ok::<_, HttpError>(HttpResponse::Ok().finish())
    }
    .instrument(span)
    .await;
    metrics()
        .webhook_ack_seconds
        .observe(arrived.elapsed().as_secs_f64());
    result
}
