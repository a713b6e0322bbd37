//! Requests to a conversation actor, what they answer, and the handle that delivers them.
//!
//! Every other actor (the router, the SLA clock, the escalation actor), the intake and
//! the API reach a case through [`Conversations`] with one of the request types below,
//! without knowing where or how its actor runs: the conversation module implements
//! [`Deliver`] (one actor per live case on this node), and placement across nodes plugs
//! in at the same seam.

use crate::domain::inbound::InboundMessage;
use crate::domain::outbound::Origin;
use crate::domain::{Actor as Who, Authority, ConversationKey, Micros, TicketStatus};
use crate::store::StoreError;
use crate::store::conversations::ChangeApplied;
use crate::store::entities::held_message;
use crate::store::noise::SuppressionRecorded;
use actix::Message;
use futures::future::BoxFuture;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConversationError {
    #[error("conversation {0} is closed")]
    Closed(i64),
    #[error("a conversation cannot move from {from} to {to}")]
    InvalidTransition {
        from: TicketStatus,
        to: TicketStatus,
    },
    #[error("the store failed: {0}")]
    Store(String),
    #[error("the conversation actor failed while handling this request and was restarted")]
    Panicked,
    #[error("the conversation actor is unavailable")]
    Unavailable,
    /// This node no longer owns the case's shard (another node took it over): the write
    /// was refused and the request belongs to the owner.
    #[error("this node no longer owns the conversation; the request goes to its owner")]
    NotOwner,
    #[error(
        "conversation {conversation_id} is assigned to agent {assignee}; only they or a supervisor may reply until it is transferred"
    )]
    NotAssignee { conversation_id: i64, assignee: i64 },
    #[error("conversation {0} was assigned meanwhile")]
    AlreadyAssigned(i64),
    #[error("{agent_name} is typing in this conversation")]
    Collision { agent_id: i64, agent_name: String },
    /// Free-form messages are refused outside the customer service window, before any
    /// provider is called.
    #[error(
        "the 24-hour customer service window of conversation {conversation_id} {}; a free-form message cannot be sent, only an approved template",
        match closed_at { Some(_) => "has closed", None => "never opened" }
    )]
    WindowClosed {
        conversation_id: i64,
        closed_at: Option<Micros>,
    },
    #[error("the customer has withdrawn consent to {purpose} messages")]
    ConsentWithdrawn { purpose: String },
    #[error(
        "conversation {conversation_id} is owned by {team}, the top of its escalation ladder; name the team to send it to"
    )]
    TopOfLadder { conversation_id: i64, team: String },
    #[error("conversation {conversation_id} already escalated for {trigger}")]
    AlreadyEscalated {
        conversation_id: i64,
        trigger: String,
    },
    #[error("held message {held_id} was already {status}; nothing was sent again")]
    AlreadyDecided { held_id: i64, status: String },
    #[error(
        "held message {held_id} waits for a {approver} or above; the {role} role may not decide it"
    )]
    NotApprover {
        held_id: i64,
        approver: String,
        role: String,
    },
    #[error("{0}")]
    InvalidEdit(String),
    /// A macro's variable has no value on this case; nothing was sent or changed.
    #[error("macro {name:?}: {reason}")]
    MacroValueMissing { name: String, reason: String },
    /// The caller's role may do this in general, but not to this case (it is someone
    /// else's, or it is their own draft to approve).
    #[error("{0}")]
    NotYours(String),
}

impl From<StoreError> for ConversationError {
    fn from(error: StoreError) -> Self {
        if error.is_fenced() {
            return Self::NotOwner;
        }
        Self::Store(error.to_string())
    }
}

/// The case clock says something of this case came due (an SLA alarm, a survey, closing
/// the loop): record what is due.
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SlaCheck {
    pub conversation_id: i64,
    /// The contact's consent to surveys, read just before.
    pub surveys_allowed: bool,
}

/// Move a case up its escalation ladder (decided by the escalation actor).
#[derive(Message, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct Escalate {
    pub conversation_id: i64,
    /// `manager_request`, `sla_breach:resolution`, `agent`...
    pub trigger: String,
    pub reason: Option<String>,
    pub to_team: String,
    pub to_team_id: Option<i64>,
    pub level: u8,
    /// Teams that watch the case from now on.
    pub watchers: Vec<String>,
    /// What the receiver reads.
    pub packet: serde_json::Value,
    pub by: Who,
    /// Whose ownership rules apply.
    pub authority: Authority,
    /// Refused when the case already escalated for this trigger.
    pub once: bool,
}

/// A customer message to apply, in the order the intake received it.
#[derive(Message, Clone)]
#[rtype(result = "Result<Stepped, ConversationError>")]
pub struct CustomerMessageArrived {
    pub message: Arc<InboundMessage>,
    /// When the webhook holding it was durably committed (clock time).
    pub received_at: Micros,
    /// The same instant on the monotonic clock, for the apply-lag metric.
    pub committed: std::time::Instant,
    pub span: tracing::Span,
    /// Applied again from a dead letter at an admin's request: in a cluster it goes to
    /// the case's owner (messages from the inbox are applied there in the first place).
    pub redriven: bool,
}

/// An agent's (or integration's) text reply.
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SendReply {
    pub conversation_id: i64,
    pub text: String,
    pub by: Who,
    pub agent_id: Option<i64>,
    pub authority: ReplyAuthority,
    /// A supervisor replies even though another agent is typing.
    pub force: bool,
    /// Who wrote the text: a person, an integration on its own, an AI draft sent as is.
    pub origin: Origin,
    /// An uploaded file to send, with the text as its caption.
    pub media: Option<crate::domain::media::AttachedMedia>,
}

/// A macro applied to a case: its body rendered for the case, sent, and its actions taken,
/// all in one change.
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct ApplyMacro {
    pub conversation_id: i64,
    pub chosen: crate::domain::macros::MacroToApply,
    pub by: Who,
    pub agent_id: Option<i64>,
    /// The applying agent's name, for `{{agent.name}}`.
    pub agent_name: Option<String>,
    /// The contact's name as stored, for `{{contact.name}}` when the actor does not hold it.
    pub contact_name: Option<String>,
    pub reply_authority: ReplyAuthority,
    /// Whose ownership rules apply to the actions.
    pub authority: Authority,
    pub origin: Origin,
}

/// An approved template to the customer (checked and rendered by the caller).
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SendTemplate {
    pub conversation_id: i64,
    pub template: TemplateSend,
    pub by: Who,
    pub agent_id: Option<i64>,
    pub authority: ReplyAuthority,
    pub origin: Origin,
}

/// Approve (optionally with an edit) or reject a message the gate held.
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct DecideHeld {
    pub held: held_message::Model,
    pub decision: Decision,
    pub by: Who,
    pub role: crate::domain::Role,
    /// The agent who wrote the held message, when a person did: they may not approve
    /// their own AI draft.
    pub drafted_by: Option<i64>,
}

/// Give the case to an agent and/or team (`agent_id: None` unassigns).
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct AssignConversation {
    pub conversation_id: i64,
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    pub by: Who,
    /// Whose ownership rules apply.
    pub authority: Authority,
    /// Set by the router: why this agent (kept in the event); such an assignment is
    /// refused if the case was assigned meanwhile.
    pub explanation: Option<serde_json::Value>,
}

#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct ChangeStatus {
    pub conversation_id: i64,
    pub to: TicketStatus,
    pub by: Who,
    /// Whose ownership rules apply.
    pub authority: Authority,
}

#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct AddNote {
    pub conversation_id: i64,
    pub body: String,
    pub by: Who,
    /// Agents the note mentions (`@Name`): told through `notifications`.
    #[serde(default)]
    pub mentions: Vec<i64>,
}

/// A person's correction of what triage said about a case, with why: intents and risks
/// added or removed (the routing policy decides again on the corrected tags, as it
/// would on a triage result) and/or the priority set. Kept as an event, and as a
/// labelled example for the taxonomy (`parley triage export-corrections`).
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct CorrectTriage {
    pub conversation_id: i64,
    pub tags: Option<TagCorrection>,
    pub priority: Option<crate::domain::Priority>,
    pub reason: String,
    pub by: Who,
    /// Whose ownership rules apply.
    pub authority: Authority,
}

/// Tags a person adds to a case or takes off it (labels of the taxonomy in force).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TagCorrection {
    pub add_intents: Vec<String>,
    pub remove_intents: Vec<String>,
    pub add_risks: Vec<String>,
    pub remove_risks: Vec<String>,
}

/// The provider refused a free-form message to this case as outside the customer service
/// window (Meta's 131047): the window is closed from `at` until the customer writes again.
#[derive(Message, Clone, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct WindowRefused {
    pub conversation_id: i64,
    /// The refused message.
    pub message_id: i64,
    pub at: Micros,
}

/// Makes the actor panic inside a handler: exercises supervision in tests and drills.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
#[doc(hidden)]
pub struct InjectPanic;

/// What one actor step did: a change to the case, or a message set aside as noise.
#[derive(Debug, Clone)]
pub enum Stepped {
    Applied(Box<ChangeApplied>),
    Suppressed {
        reason: &'static str,
        recorded: SuppressionRecorded,
    },
}

impl Stepped {
    /// The change a step applied; a step that only recorded noise is an error here.
    pub fn into_change(self) -> Result<ChangeApplied, ConversationError> {
        match self {
            Self::Applied(applied) => Ok(*applied),
            Self::Suppressed { .. } => Err(ConversationError::Store(
                "a request was recorded as noise".into(),
            )),
        }
    }
}

/// Who is replying, for the ownership rule: only the assignee, or someone who supervises,
/// may reply to an assigned case until it is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReplyAuthority {
    /// An agent: bound by assignment.
    Agent,
    /// A supervisor, an admin or an integration: may reply to any case.
    Supervisor,
}

/// A template send, checked and rendered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TemplateSend {
    pub name: String,
    pub language: String,
    pub version: i32,
    pub category: String,
    /// The body as the customer reads it.
    pub text: String,
    pub payload: serde_json::Value,
}

/// What the approver of a held message decided.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Decision {
    /// Send it; with `text`, send that instead (the original is kept).
    Approve {
        text: Option<String>,
    },
    Reject {
        reason: String,
    },
}

/// Every request a conversation actor takes, as one value (so that a request can be
/// delivered wherever the case's actor runs).
#[derive(Clone)]
pub enum Request {
    Arrived(CustomerMessageArrived),
    Reply(SendReply),
    Macro(Box<ApplyMacro>),
    Template(SendTemplate),
    Decide(Box<DecideHeld>),
    Assign(AssignConversation),
    Status(ChangeStatus),
    Note(AddNote),
    Correct(Box<CorrectTriage>),
    SlaCheck(SlaCheck),
    Escalate(Escalate),
    WindowRefused(WindowRefused),
    Panic(InjectPanic),
}

/// What a conversation actor answered.
pub enum Reply {
    Stepped(Stepped),
    Applied(Box<ChangeApplied>),
}

/// Delivers requests to the actors of conversations.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `request` to the actor of `key` (starting it if needed) and waits for its
    /// answer.
    fn deliver(
        &self,
        key: ConversationKey,
        request: Request,
    ) -> BoxFuture<'static, Result<Reply, ConversationError>>;
}

/// A request with the answer it expects.
pub trait ConversationRequest: Send + 'static {
    type Output: Send + 'static;
    fn into_request(self) -> Request;
    fn output(reply: Reply) -> Result<Self::Output, ConversationError>;
}

macro_rules! request {
    ($message:ident => $variant:ident $(, $wrap:path)?) => {
        impl ConversationRequest for $message {
            type Output = ChangeApplied;
            fn into_request(self) -> Request {
                Request::$variant($($wrap)?(self))
            }
            fn output(reply: Reply) -> Result<ChangeApplied, ConversationError> {
                match reply {
                    Reply::Applied(applied) => Ok(*applied),
                    Reply::Stepped(stepped) => stepped.into_change(),
                }
            }
        }
    };
}

impl ConversationRequest for CustomerMessageArrived {
    type Output = Stepped;
    fn into_request(self) -> Request {
        Request::Arrived(self)
    }
    fn output(reply: Reply) -> Result<Stepped, ConversationError> {
        match reply {
            Reply::Stepped(stepped) => Ok(stepped),
            Reply::Applied(applied) => Ok(Stepped::Applied(applied)),
        }
    }
}
request!(SendReply => Reply);
request!(ApplyMacro => Macro, Box::new);
request!(SendTemplate => Template);
request!(DecideHeld => Decide, Box::new);
request!(AssignConversation => Assign);
request!(ChangeStatus => Status);
request!(AddNote => Note);
request!(CorrectTriage => Correct, Box::new);
request!(SlaCheck => SlaCheck);
request!(Escalate => Escalate);
request!(WindowRefused => WindowRefused);
request!(InjectPanic => Panic);

/// The handle every actor and endpoint reaches conversations through. Cheap to clone.
#[derive(Clone)]
pub struct Conversations(Arc<dyn Deliver>);

impl Conversations {
    pub fn new(deliver: Arc<dyn Deliver>) -> Self {
        Self(deliver)
    }

    /// Delivers `request` to the actor of `key` and waits for its answer.
    pub async fn ask<R: ConversationRequest>(
        &self,
        key: &ConversationKey,
        request: R,
    ) -> Result<R::Output, ConversationError> {
        let reply = self.0.deliver(key.clone(), request.into_request()).await?;
        R::output(reply)
    }

    /// Closes the service window of every case in `events` with a send the provider
    /// refused as outside it (131047, or a transport's `window_closed`), whether the
    /// refusal came as the send's answer or later as a `failed` status callback.
    pub async fn record_window_refusals(
        &self,
        store: &crate::store::Store,
        events: &[crate::store::entities::conversation_event::Model],
        at: Micros,
    ) {
        for event in events {
            let Some(message_id) = refused_outside_window(event) else {
                continue;
            };
            let conversation_id = event.conversation_id;
            let refused = match store.conversation_key(conversation_id).await {
                Ok(Some((key, _))) => {
                    let refused = WindowRefused {
                        conversation_id,
                        message_id,
                        at,
                    };
                    self.ask(&key, refused).await.map(drop)
                }
                Ok(None) => Ok(()),
                Err(error) => Err(error.into()),
            };
            if let Err(error) = refused {
                tracing::warn!(error = %error, conversation_id, "The provider's closing of the service window was not recorded on the case.");
            }
        }
    }
}

/// Error codes of a free-form message refused as outside the customer service window:
/// Meta's, and the one a transport plugin's `window-closed` maps to.
const WINDOW_REFUSALS: &[&str] = &["131047", "window_closed"];

/// The message whose send `event` reports refused as outside the service window.
fn refused_outside_window(
    event: &crate::store::entities::conversation_event::Model,
) -> Option<i64> {
    // Most status events are not failures: only those are parsed.
    if event.kind != "message_status" || !event.data.contains("\"failed\"") {
        return None;
    }
    let data: serde_json::Value = serde_json::from_str(&event.data).ok()?;
    let code = data["error"]["code"].as_str()?;
    (data["status"] == "failed" && WINDOW_REFUSALS.contains(&code))
        .then(|| data["message_id"].as_i64())
        .flatten()
}
