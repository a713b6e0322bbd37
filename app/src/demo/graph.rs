//! The demo's stand-in for Meta's Graph API: it accepts sends like
//! `POST /{version}/{phone_number_id}/messages` does, then reports each message
//! delivered and read through status webhooks signed with the app secret, as Meta does.
//! It serves the customers' photos in Meta's two steps, to the channel's token only:
//! `GET /{version}/{media_id}` answers where the bytes are (with their type, size and
//! sha256), `GET /download/{media_id}` gives them.
//! Sends to [`REFUSING_RECIPIENT`] are refused as outside the 24-hour window (131047);
//! Parley refuses free-form replies to that customer itself first (`window_closed`), since
//! by Meta's clock they last wrote more than a day ago.

use super::{ACCESS_TOKEN, APP_SECRET, photo};
use crate::ingest::signature::sign_meta;
use actix_web::dev::Server;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The simulated customer whose replies Meta refuses (they last wrote over a day ago).
pub const REFUSING_RECIPIENT: &str = "971500000009";

/// Media ids of the customers' photos start with this; each is served the same photo.
pub const PHOTO_ID_PREFIX: &str = "demo-media-";

struct FakeMeta {
    sent: AtomicU64,
    /// Parley's webhook URL, known once Parley listens.
    webhook: watch::Receiver<Option<String>>,
    http: reqwest::Client,
    /// Delay before `delivered`; `read` follows after twice as long.
    delivery_delay: Duration,
    /// `http://127.0.0.1:{port}`, for the download URLs of media lookups.
    base: String,
}

/// The fake Graph API, listening on a loopback port.
pub struct FakeGraphApi {
    pub port: u16,
    webhook: watch::Sender<Option<String>>,
    sent: Arc<FakeMeta>,
}

impl FakeGraphApi {
    /// Binds the server; it serves once the returned `Server` is polled.
    pub fn start(delivery_delay: Duration) -> anyhow::Result<(Self, Server)> {
        let (webhook, receiver) = watch::channel(None);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let meta = Arc::new(FakeMeta {
            sent: AtomicU64::new(0),
            webhook: receiver,
            http: reqwest::Client::new(),
            delivery_delay,
            base: format!("http://127.0.0.1:{port}"),
        });
        let data = web::Data::from(meta.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/{version}/{phone}/messages", web::post().to(send))
                // Before the lookup, which would take `download` for a version.
                .route("/download/{media_id}", web::get().to(download))
                .route("/{version}/{media_id}", web::get().to(media_info))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        Ok((
            Self {
                port,
                webhook,
                sent: meta,
            },
            server,
        ))
    }

    /// The `api_base` a channel uses to reach this server.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/v21.0", self.port)
    }

    /// Where status webhooks go from now on.
    pub fn deliver_to(&self, webhook_url: String) {
        self.webhook.send_replace(Some(webhook_url));
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> u64 {
        self.sent.sent.load(Ordering::Relaxed)
    }
}

async fn send(meta: web::Data<FakeMeta>, body: web::Json<Value>) -> HttpResponse {
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    if to == REFUSING_RECIPIENT {
        return HttpResponse::BadRequest().json(json!({
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                },
                "fbtrace_id": "DemoTrace"
            }
        }));
    }
    let n = meta.sent.fetch_add(1, Ordering::Relaxed) + 1;
    let wamid = format!("wamid.DEMO{n:06}");
    let meta = meta.into_inner();
    let reported = wamid.clone();
    tokio::spawn(async move {
        for (status, wait) in [("delivered", 1), ("read", 2)] {
            tokio::time::sleep(meta.delivery_delay * wait).await;
            let Some(url) = meta.webhook.borrow().clone() else {
                return;
            };
            let payload = status_webhook(&reported, status, &to).to_string();
            let sent = meta
                .http
                .post(&url)
                .header(
                    "X-Hub-Signature-256",
                    sign_meta(APP_SECRET.as_bytes(), payload.as_bytes()),
                )
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await;
            if let Err(error) = sent {
                tracing::warn!(error = %error, "The demo's status webhook was not delivered.");
                return;
            }
        }
    });
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": body["to"], "wa_id": body["to"] }],
        "messages": [{ "id": wamid }]
    }))
}

/// Meta answers a call without the channel's token with 401 and an OAuth error.
fn unauthorized(req: &HttpRequest) -> Option<HttpResponse> {
    let expected = format!("Bearer {ACCESS_TOKEN}");
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (given != Some(expected.as_str())).then(|| {
        HttpResponse::Unauthorized().json(json!({
            "error": { "message": "Invalid OAuth access token.", "type": "OAuthException",
                       "code": 190, "fbtrace_id": "DemoTrace" }
        }))
    })
}

fn no_such_media(media_id: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": { "message": format!("Unsupported get request. Object with ID '{media_id}' does not exist"),
                   "type": "GraphMethodException", "code": 100, "fbtrace_id": "DemoTrace" }
    }))
}

/// Step one: where a customer's photo is, what it is and its hash.
async fn media_info(
    meta: web::Data<FakeMeta>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    if let Some(refused) = unauthorized(&req) {
        return refused;
    }
    let (_, media_id) = path.into_inner();
    if !media_id.starts_with(PHOTO_ID_PREFIX) {
        return no_such_media(&media_id);
    }
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{}/download/{media_id}", meta.base),
        "mime_type": photo::MIME_TYPE,
        "sha256": photo::sha256(),
        "file_size": photo::png().len(),
        "id": media_id,
    }))
}

/// Step two: the bytes.
async fn download(req: HttpRequest, media_id: web::Path<String>) -> HttpResponse {
    if let Some(refused) = unauthorized(&req) {
        return refused;
    }
    if !media_id.starts_with(PHOTO_ID_PREFIX) {
        return no_such_media(&media_id);
    }
    HttpResponse::Ok()
        .content_type(photo::MIME_TYPE)
        .body(photo::png())
}

fn status_webhook(wamid: &str, status: &str, recipient: &str) -> Value {
    super::webhook(json!({
        "statuses": [{
            "id": wamid,
            "status": status,
            "timestamp": chrono::Utc::now().timestamp().to_string(),
            "recipient_id": recipient
        }]
    }))
}
