//! The GraphQL endpoint over HTTP and WebSocket, and GraphiQL.
//!
//! The token is checked before anything else: a request without a valid one is answered
//! 401 without its body being read. A body is then read up to `[graphql] max_body_bytes`
//! (413 `payload_too_large` past it) and must be JSON; multipart requests (file uploads)
//! are refused with 415 `unsupported_media_type`, since no operation takes a file.
//!
//! A WebSocket must send `connection_init` within `[graphql] connection_init_timeout_secs`
//! or is closed (4408, as `graphql-transport-ws` says); once it is in, its token is checked
//! again every `token_recheck_secs`, and the socket is closed (4403) as soon as the token is
//! revoked or expired.

use super::auth::{self, Principal};
use super::{ParleySchema, unauthenticated};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::error::{ApiError, ErrorCode, HttpError};
use crate::store::Store;
use actix::{
    Actor, ActorContext, ActorFutureExt, ActorStreamExt, AsyncContext, ContextFutureSpawner,
    StreamHandler, WrapFuture, WrapStream,
};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use actix_web_actors::ws::{self, CloseCode, CloseReason, Message, ProtocolError};
use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource, WebSocket, WebSocketProtocols, WsMessage,
};
use async_graphql::{Data, Schema};
use futures::channel::mpsc;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the endpoint needs besides the schema.
pub struct Gate {
    pub store: Store,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
}

fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
}

/// `POST /graphql`.
pub async fn graphql(
    schema: web::Data<ParleySchema>,
    gate: web::Data<Gate>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let who = match auth::authenticate(&gate.store, authorization(&req), gate.clock.now()).await {
        Ok(who) => who,
        Err(error) if error.code == ErrorCode::Unauthenticated => return unauthenticated(error),
        Err(error) => return HttpError(error).error_response(),
    };
    let request = match read_request(&req, payload, gate.settings.graphql.max_body_bytes).await {
        Ok(request) => request,
        Err(error) => return graphql_error(error),
    };
    let mut response = schema.execute(request.data(who)).await;
    // Errors raised before any resolver ran (syntax, validation, depth and complexity
    // limits, argument types) get a code too, like every other error: a value refused by
    // an argument's validator (a text over its length limit) is `invalid_input`.
    for error in &mut response.errors {
        let code = if error.message.starts_with("Invalid value for argument")
            || error.message.starts_with("Failed to parse")
        {
            "invalid_input"
        } else {
            "invalid_query"
        };
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code);
        }
    }
    let response: async_graphql_actix_web::GraphQLResponse = response.into();
    actix_web::Responder::respond_to(response, &req).map_into_boxed_body()
}

/// A refused request, in GraphQL's shape, with the status of its code.
fn graphql_error(error: ApiError) -> HttpResponse {
    HttpResponse::build(error.code.http_status()).json(serde_json::json!({
        "errors": [{ "message": error.message, "extensions": { "code": error.code.as_str() } }]
    }))
}

/// The operation in the body: JSON, at most `limit` bytes.
async fn read_request(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<async_graphql::Request, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "multipart requests are not accepted (no operation takes a file); send application/json",
        ));
    }
    let body = crate::ingest::read_body(req, payload, limit, "GraphQL requests").await?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("the body is not a GraphQL request in JSON: {e}"),
        )
    })
}

pub async fn graphiql(settings: web::Data<Arc<Settings>>) -> HttpResponse {
    if !settings.http.graphiql {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .finish(),
        )
}

/// GraphQL over WebSocket (`graphql-transport-ws`, and the older `graphql-ws`). The token
/// comes from the upgrade request's Authorization header or from `connection_init`'s
/// payload (`{"Authorization": "Bearer ..."}`), since browsers cannot set headers.
pub async fn graphql_ws(
    schema: web::Data<ParleySchema>,
    gate: web::Data<Gate>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let protocol = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
        .ok_or_else(|| {
            HttpError(ApiError::new(
                ErrorCode::InvalidInput,
                "ask for the graphql-transport-ws (or graphql-ws) subprotocol",
            ))
        })?;
    let socket = SubscriptionSocket {
        schema: Schema::clone(&schema),
        gate: gate.into_inner(),
        header: authorization(&req).map(str::to_owned),
        protocol,
        last_heartbeat: Instant::now(),
        messages: None,
        caller: Arc::default(),
        continuation: Vec::new(),
    };
    ws::WsResponseBuilder::new(socket, &req, payload)
        .protocols(&ALL_WEBSOCKET_PROTOCOLS)
        .start()
}

/// How often the server pings, and how long a silent client is kept.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One WebSocket connection: frames in, the GraphQL protocol in between, frames out.
struct SubscriptionSocket {
    schema: ParleySchema,
    gate: Arc<Gate>,
    /// The upgrade request's Authorization header, used when `connection_init` has none.
    header: Option<String>,
    protocol: WebSocketProtocols,
    last_heartbeat: Instant,
    messages: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Set once `connection_init` authenticated someone.
    caller: Arc<Mutex<Option<Principal>>>,
    continuation: Vec<u8>,
}

impl SubscriptionSocket {
    fn caller(&self) -> Option<Principal> {
        self.caller.lock().ok().and_then(|caller| caller.clone())
    }

    fn close(ctx: &mut ws::WebsocketContext<Self>, code: u16, why: &str) {
        ctx.close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(why.to_owned()),
        }));
        ctx.stop();
    }

    /// Closes the socket unless `connection_init` arrived in time.
    fn expect_init(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let wait = Duration::from_secs(self.gate.settings.graphql.connection_init_timeout_secs);
        ctx.run_later(wait, |socket, ctx| {
            if socket.caller().is_none() {
                Self::close(ctx, 4408, "Connection initialisation timeout");
            }
        });
    }

    /// Closes the socket once its token is revoked or expired.
    fn recheck_token(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let every = Duration::from_secs(self.gate.settings.graphql.token_recheck_secs.max(1));
        ctx.run_interval(every, |socket, ctx| {
            let Some(caller) = socket.caller() else {
                return;
            };
            let gate = socket.gate.clone();
            async move {
                gate.store
                    .token_in_force(caller.token_id, gate.clock.now())
                    .await
            }
            .into_actor(socket)
            .map(|in_force, _, ctx| match in_force {
                Ok(true) => {}
                Ok(false) => Self::close(ctx, 4403, "Forbidden: the token is revoked or expired"),
                Err(error) => {
                    tracing::warn!(error = %error, "Could not recheck a WebSocket's token.")
                }
            })
            .spawn(ctx);
        });
    }
}

impl Actor for SubscriptionSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(HEARTBEAT_INTERVAL, |socket, ctx| {
            if socket.last_heartbeat.elapsed() > CLIENT_TIMEOUT {
                ctx.stop();
            }
            ctx.ping(b"");
        });
        self.expect_init(ctx);
        self.recheck_token(ctx);
        let (sender, receiver) = mpsc::unbounded();
        let (gate, header, caller) = (self.gate.clone(), self.header.clone(), self.caller.clone());
        WebSocket::new(self.schema.clone(), receiver, self.protocol)
            .on_connection_init(move |init: serde_json::Value| async move {
                let from_init = ["Authorization", "authorization", "token"]
                    .iter()
                    .find_map(|k| init.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                    .map(|v| {
                        if v.contains(' ') {
                            v
                        } else {
                            format!("Bearer {v}")
                        }
                    });
                let header = from_init.or(header);
                let who = auth::authenticate(&gate.store, header.as_deref(), gate.clock.now())
                    .await
                    .map_err(async_graphql::Error::from)?;
                if let Ok(mut caller) = caller.lock() {
                    *caller = Some(who.clone());
                }
                let mut data = Data::default();
                data.insert(who);
                Ok(data)
            })
            .into_actor(self)
            .map(|response, _, ctx| match response {
                WsMessage::Text(text) => ctx.text(text),
                WsMessage::Close(code, why) => ctx.close(Some(CloseReason {
                    code: code.into(),
                    description: Some(why),
                })),
            })
            .finish()
            .spawn(ctx);
        self.messages = Some(sender);
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for SubscriptionSocket {
    fn handle(&mut self, frame: Result<Message, ProtocolError>, ctx: &mut Self::Context) {
        let Ok(frame) = frame else {
            ctx.stop();
            return;
        };
        let message = match frame {
            Message::Ping(bytes) => {
                self.last_heartbeat = Instant::now();
                ctx.pong(&bytes);
                None
            }
            Message::Pong(_) => {
                self.last_heartbeat = Instant::now();
                None
            }
            Message::Continuation(item) => match item {
                actix_http::ws::Item::FirstText(bytes)
                | actix_http::ws::Item::FirstBinary(bytes) => {
                    self.continuation = bytes.to_vec();
                    None
                }
                actix_http::ws::Item::Continue(bytes) => {
                    self.continuation.extend_from_slice(&bytes);
                    if self.continuation.len() > self.gate.settings.graphql.max_body_bytes {
                        Self::close(ctx, 4413, "Message too large");
                    }
                    None
                }
                actix_http::ws::Item::Last(bytes) => {
                    self.continuation.extend_from_slice(&bytes);
                    Some(std::mem::take(&mut self.continuation))
                }
            },
            Message::Text(text) => Some(text.into_bytes().to_vec()),
            Message::Binary(bytes) => Some(bytes.to_vec()),
            Message::Close(_) => {
                ctx.stop();
                None
            }
            Message::Nop => None,
        };
        if let Some(message) = message
            && let Some(messages) = &self.messages
            && messages.unbounded_send(message).is_err()
        {
            ctx.stop();
        }
    }
}
