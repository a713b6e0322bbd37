//! Requests for a case whose shard another node owns, forwarded to that node.
//!
//! [`ClusterDeliver`] sits where the registry of local actors sits on a single node
//! (behind [`Conversations`]): a request for a case this node owns goes to the local
//! actor; any other is posted to the owner's advertised address (`POST /cluster/deliver`,
//! authenticated by the token the nodes share in the database), where it is applied by
//! the owner's actor in arrival order with every other request for that case. A request
//! is sent again only when it certainly was not applied (the owner could not be
//! reached, or answered that it no longer owns the case); an answer lost on the way back
//! is reported as `unavailable`, never retried, so nothing is applied twice.
//!
//! SLA checks are never forwarded: the clock of the owner fires them.

use crate::actors::conversation::{
    AddNote, ApplyMacro, AssignConversation, ChangeStatus, ConversationError, CorrectTriage,
    CustomerMessageArrived, DecideHeld, Deliver, Escalate, Reply, Request, SendReply, SendTemplate,
    Stepped, WindowRefused,
};
use crate::cluster::{Cluster, metrics};
use crate::domain::ConversationKey;
use crate::domain::inbound::InboundMessage;
use crate::store::conversations::ChangeApplied;
use crate::store::noise::SuppressionRecorded;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header carrying the cluster token.
const TOKEN_HEADER: &str = "x-parley-cluster-token";
/// Pause before looking for the owner again (a shard between two owners).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Longest a forwarded request may take on the owner (it may queue behind others).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as it travels between nodes.
#[derive(Serialize, Deserialize)]
enum Forwarded {
    Reply(SendReply),
    Template(SendTemplate),
    Decide(Box<DecideHeld>),
    Assign(AssignConversation),
    Status(ChangeStatus),
    Note(AddNote),
    Correct(Box<CorrectTriage>),
    Escalate(Escalate),
    WindowRefused(WindowRefused),
    Macro(Box<ApplyMacro>),
    /// A customer message applied again from a dead letter.
    Redriven {
        message: Box<InboundMessage>,
        received_at: i64,
    },
}

impl Forwarded {
    /// The forwardable form of `request`; `None` for those applied only where they arise
    /// (customer messages come from the inbox on the owner, SLA checks from its clock),
    /// but a message re-driven from a dead letter goes to the owner like any request.
    fn from_request(request: Request) -> Option<Self> {
        Some(match request {
            Request::Reply(m) => Self::Reply(m),
            Request::Template(m) => Self::Template(m),
            Request::Decide(m) => Self::Decide(m),
            Request::Assign(m) => Self::Assign(m),
            Request::Status(m) => Self::Status(m),
            Request::Note(m) => Self::Note(m),
            Request::Correct(m) => Self::Correct(m),
            Request::Escalate(m) => Self::Escalate(m),
            Request::WindowRefused(m) => Self::WindowRefused(m),
            Request::Macro(m) => Self::Macro(m),
            Request::Arrived(m) if m.redriven => Self::Redriven {
                message: Box::new(m.message.as_ref().clone()),
                received_at: m.received_at,
            },
            Request::Arrived(_) | Request::SlaCheck(_) | Request::Panic(_) => return None,
        })
    }

    fn into_request(self) -> Request {
        match self {
            Self::Reply(m) => Request::Reply(m),
            Self::Template(m) => Request::Template(m),
            Self::Decide(m) => Request::Decide(m),
            Self::Assign(m) => Request::Assign(m),
            Self::Status(m) => Request::Status(m),
            Self::Note(m) => Request::Note(m),
            Self::Correct(m) => Request::Correct(m),
            Self::Escalate(m) => Request::Escalate(m),
            Self::WindowRefused(m) => Request::WindowRefused(m),
            Self::Macro(m) => Request::Macro(m),
            Self::Redriven {
                message,
                received_at,
            } => Request::Arrived(CustomerMessageArrived {
                message: Arc::new(*message),
                received_at,
                committed: Instant::now(),
                span: tracing::Span::current(),
                redriven: true,
            }),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    key: ConversationKey,
    request: Forwarded,
}

#[derive(Serialize, Deserialize)]
enum Answer {
    Applied(Box<ChangeApplied>),
    /// A forwarded customer message the owner recorded as noise (its reason stays there).
    Suppressed(SuppressionRecorded),
    Refused(ConversationError),
}

/// Delivers requests to the node owning each case.
pub struct ClusterDeliver {
    cluster: Arc<Cluster>,
    local: Arc<dyn Deliver>,
    http: reqwest::Client,
    token: String,
}

impl ClusterDeliver {
    pub fn new(
        cluster: Arc<Cluster>,
        local: Arc<dyn Deliver>,
        token: String,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            cluster,
            local,
            http: reqwest::Client::builder()
                .timeout(FORWARD_TIMEOUT)
                .build()?,
            token,
        })
    }

    /// The node holding a live lease on `shard`, and its address.
    async fn owner(&self, shard: i32) -> Option<(String, String)> {
        let row = self
            .cluster
            .db()
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT l.node_id, n.address FROM shard_leases l \
                 JOIN cluster_nodes n ON n.node_id = l.node_id \
                 WHERE l.shard = $1 AND l.expires_at > now()",
                [shard.into()],
            ))
            .await
            .ok()??;
        Some((
            row.try_get("", "node_id").ok()?,
            row.try_get("", "address").ok()?,
        ))
    }

    /// Posts `request` to `address`. `Err(true)` when it certainly was not applied (it may
    /// be sent again), `Err(false)` when that is unknown.
    async fn forward(
        &self,
        address: &str,
        key: &ConversationKey,
        request: Forwarded,
    ) -> Result<Answer, bool> {
        let envelope = Envelope {
            key: key.clone(),
            request,
        };
        let response = self
            .http
            .post(format!("{}/cluster/deliver", address.trim_end_matches('/')))
            .header(TOKEN_HEADER, &self.token)
            .json(&envelope)
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, address, "Forwarding a request to its owner failed.");
                error.is_connect()
            })?;
        if !response.status().is_success() {
            // Refused before it reached an actor (token, body): nothing was applied.
            tracing::warn!(status = %response.status(), address, "The owner refused a forwarded request.");
            return Err(true);
        }
        response.json::<Answer>().await.map_err(|_| false)
    }
}

impl Deliver for ClusterDeliver {
    fn deliver(
        &self,
        key: ConversationKey,
        request: Request,
    ) -> BoxFuture<'static, Result<Reply, ConversationError>> {
        let this = ClusterDeliver {
            cluster: self.cluster.clone(),
            local: self.local.clone(),
            http: self.http.clone(),
            token: self.token.clone(),
        };
        Box::pin(async move {
            let settings = this.cluster.settings();
            // Long enough for an orphaned shard to be taken over.
            let deadline = Instant::now()
                + Duration::from_secs(settings.lease_secs)
                + Duration::from_millis(settings.heartbeat_ms * 2);
            let shard = this.cluster.shard_of(&key);
            loop {
                if this.cluster.owns(&key) {
                    match this.local.deliver(key.clone(), request.clone()).await {
                        Err(ConversationError::NotOwner) if Instant::now() < deadline => {}
                        answer => return answer,
                    }
                } else {
                    let Some(forwarded) = Forwarded::from_request(request.clone()) else {
                        return Err(ConversationError::NotOwner);
                    };
                    match this.owner(shard).await {
                        Some((node, address)) if node != this.cluster.node_id() => {
                            metrics().forwarded.inc();
                            match this.forward(&address, &key, forwarded).await {
                                Ok(Answer::Applied(applied)) => return Ok(Reply::Applied(applied)),
                                Ok(Answer::Suppressed(recorded)) => {
                                    return Ok(Reply::Stepped(Stepped::Suppressed {
                                        reason: "forwarded",
                                        recorded,
                                    }));
                                }
                                Ok(Answer::Refused(ConversationError::NotOwner)) => {}
                                Ok(Answer::Refused(error)) => return Err(error),
                                Err(true) => {}
                                Err(false) => return Err(ConversationError::Unavailable),
                            }
                        }
                        // Nobody holds it (a takeover is under way), or this node does in
                        // the database but has not seen it yet: look again shortly.
                        _ => {}
                    }
                }
                if Instant::now() >= deadline {
                    return Err(ConversationError::Unavailable);
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        })
    }
}

/// What the forwarding endpoint needs.
pub struct Forwarding {
    pub cluster: Arc<Cluster>,
    /// This node's own actors.
    pub local: Arc<dyn Deliver>,
    pub token: String,
}

/// Registers `POST /cluster/deliver` (cluster nodes only).
pub fn routes(forwarding: web::Data<Forwarding>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(forwarding)
            .route("/cluster/deliver", web::post().to(deliver_forwarded));
    }
}

async fn deliver_forwarded(
    request: HttpRequest,
    body: web::Json<Envelope>,
    forwarding: web::Data<Forwarding>,
) -> HttpResponse {
    let presented = request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::ingest::signature::constant_time_eq(
        presented.as_bytes(),
        forwarding.token.as_bytes(),
    ) {
        return HttpResponse::Unauthorized().json(serde_json::json!({
            "error": { "code": "unauthorized", "message": "not a node of this cluster" }
        }));
    }
    let Envelope { key, request } = body.into_inner();
    // Never forwarded again: a node that does not own the case says so, and the sender
    // looks the owner up afresh.
    let answer = if forwarding.cluster.owns(&key) {
        match forwarding.local.deliver(key, request.into_request()).await {
            Ok(Reply::Applied(applied)) => Answer::Applied(applied),
            Ok(Reply::Stepped(Stepped::Applied(applied))) => Answer::Applied(applied),
            Ok(Reply::Stepped(Stepped::Suppressed { recorded, .. })) => {
                Answer::Suppressed(recorded)
            }
            Err(error) => Answer::Refused(error),
        }
    } else {
        Answer::Refused(ConversationError::NotOwner)
    };
    HttpResponse::Ok().json(answer)
}
