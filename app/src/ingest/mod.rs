//! Intake: provider webhooks in, durably, exactly once.
//!
//! `POST /webhooks/{channel_id}` checks the signature over the raw bytes before parsing
//! anything, stores the payload in the inbox (group commit, fsync) and only then answers
//! 200. Everything else happens after the answer, from the inbox: the [`dispatcher`]
//! parses the payload and hands each message to its conversation actor and each status
//! to the store. A crash between the two is replayed from the inbox at start-up; a
//! redelivered payload or message is recognised and recorded once.
//!
//! A [`transport`] channel takes the same path; only the check before the write differs:
//! its transport plugin verifies and parses the request, and what it parsed is stored
//! with the raw request.

pub mod cloud_api;
pub mod dispatcher;
pub mod signature;
pub mod transport;

use crate::clock::SharedClock;
use crate::config::{ChannelSettings, CloudChannelSettings, Settings, TransportChannelSettings};
use crate::error::{ApiError, ErrorCode, HttpError};
use crate::plugins::{self, PluginError, PluginRegistry, ReportedError};
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
    /// Where transport channels find their plugin.
    pub plugins: Arc<PluginRegistry>,
}

/// Most webhook bodies stored by one statement.
pub const WEBHOOKS_PER_BATCH: usize = 512;

impl Intake {
    pub fn new(
        settings: Arc<Settings>,
        store: &Store,
        clock: SharedClock,
        dispatcher: dispatcher::Dispatcher,
        plugins: Arc<PluginRegistry>,
    ) -> Self {
        Self {
            settings,
            inbox: Batcher::start(store.inbox_writer(), WEBHOOKS_PER_BATCH),
            clock,
            dispatcher,
            plugins,
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
    let channel = match channel(&intake, &path)? {
        ChannelSettings::WhatsappCloud(cloud) => cloud,
        ChannelSettings::Transport(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "this is a transport channel: it has no subscription handshake",
            )
            .into());
        }
    };
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

/// The body of a request, refused (`payload_too_large`) as soon as it is declared or
/// found to be longer than `limit` bytes; `what` names the requests in the error.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{what} are limited to {limit} bytes"),
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

/// What the inbox stores for one verified webhook.
struct Verified {
    /// The bytes stored: the raw body (Cloud API) or an envelope around it (transport).
    stored: Bytes,
    /// SHA-256 of the raw body: a redelivery has the same one.
    body_sha256: String,
}

/// Meta's check: `X-Hub-Signature-256` over the raw body.
fn verify_cloud(
    req: &HttpRequest,
    channel: &CloudChannelSettings,
    body: Bytes,
) -> Result<Verified, ApiError> {
    let header = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(reason) =
        signature::verify_meta(header, channel.app_secret.expose_secret().as_bytes(), &body)
    {
        metrics()
            .webhooks
            .with_label_values(&[channel.id.as_str(), "signature_invalid"])
            .inc();
        tracing::warn!(reason, "Webhook refused: bad signature.");
        return Err(ApiError::new(
            ErrorCode::SignatureInvalid,
            format!("X-Hub-Signature-256 {reason}"),
        ));
    }
    Ok(Verified {
        body_sha256: hex::encode(Sha256::digest(&body)),
        stored: body,
    })
}

/// A transport plugin's check: it verifies the request as its provider signs it (over
/// the public URL) and parses it; the parsed items are stored with the request.
async fn verify_transport(
    req: &HttpRequest,
    channel: &TransportChannelSettings,
    plugins: &PluginRegistry,
    body: Bytes,
    received_at: crate::domain::Micros,
) -> Result<Verified, ApiError> {
    let count = |outcome: &str| {
        metrics()
            .webhooks
            .with_label_values(&[channel.id.as_str(), outcome])
            .inc();
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());
    let request = plugins::InboundHttpRequest {
        method: req.method().as_str().to_ascii_uppercase(),
        url: channel.public_url(&path_and_query),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let parsed = match plugins.transport(&channel.plugin) {
        Ok(transport) => transport.verify_and_parse(request.clone()).await,
        Err(error) => Err(error),
    };
    let received_at = crate::clock::micros_to_datetime(received_at);
    let batch = match parsed {
        Ok(items) => transport::batch_from_items(items, received_at),
        Err(PluginError::Reported {
            error: ReportedError::Unauthorized(reason),
            ..
        }) => {
            count("signature_invalid");
            tracing::warn!(plugin = %channel.plugin, reason = %reason, "Webhook refused by its transport plugin: bad signature.");
            return Err(ApiError::new(
                ErrorCode::SignatureInvalid,
                format!("the request's signature does not verify: {reason}"),
            ));
        }
        // Signed, but not understood: kept like an unreadable Cloud API item, so that
        // the provider stops redelivering it and an operator can look at it.
        Err(PluginError::Reported {
            error: ReportedError::Permanent(reason),
            ..
        }) => crate::domain::inbound::WebhookBatch {
            rejected: vec![crate::domain::inbound::RejectedItem {
                path: "request".to_owned(),
                reason: format!("the transport plugin cannot read it: {reason}"),
            }],
            ..Default::default()
        },
        Err(error) => {
            count("plugin_unavailable");
            tracing::error!(plugin = %channel.plugin, error = %error, code = error.code(), "Webhook not taken: its transport plugin failed; the provider will retry.");
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the channel's transport plugin cannot take webhooks now ({}); retry later",
                    error.code()
                ),
            ));
        }
    };
    let envelope = transport::TransportEnvelope::new(&channel.plugin, &request, batch);
    let stored = envelope.to_bytes().map_err(ApiError::internal)?;
    Ok(Verified {
        body_sha256: hex::encode(Sha256::digest(&body)),
        stored: Bytes::from(stored),
    })
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
        let body = match read_body(
            &req,
            payload,
            intake.settings.http.max_body_bytes,
            "webhook bodies",
        )
        .await {
            Ok(body) => body,
            Err(error) => {
                metrics().webhooks.with_label_values(&[channel_id.as_str(), "too_large"]).inc();
                return Err(error.into());
            }
        };
        let received_at = intake.clock.now();
        let verified = match channel {
            ChannelSettings::WhatsappCloud(cloud) => verify_cloud(&req, cloud, body)?,
            ChannelSettings::Transport(transport) => {
                verify_transport(&req, transport, &intake.plugins, body, received_at).await?
            }
        };
        let stored = intake
            .inbox
            .submit(NewInboxRow {
                channel_id: channel_id.clone(),
                body_sha256: verified.body_sha256,
                body: verified.stored.clone(),
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
                    body: verified.stored,
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
