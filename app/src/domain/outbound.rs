//! Outbound messages: who wrote one, and why one waits for a person before it is sent.

use super::Role;
use serde::{Deserialize, Serialize};

/// Who or what wrote an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A person: an agent, a supervisor, an admin.
    Agent,
    /// An API client acting on its own (a bot, an external system).
    Integration,
    /// Parley's automation answering from a source of truth (order status).
    Automation,
    /// A model-written draft proposed for sending.
    AiDraft,
    /// The satisfaction survey.
    Survey,
    /// The message that closes an unanswered pending case.
    Closing,
}

impl Origin {
    pub const ALL: [Origin; 6] = [
        Self::Agent,
        Self::Integration,
        Self::Automation,
        Self::AiDraft,
        Self::Survey,
        Self::Closing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Integration => "integration",
            Self::Automation => "automation",
            Self::AiDraft => "ai_draft",
            Self::Survey => "survey",
            Self::Closing => "closing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Only a person's own message crosses a boundary without approval.
    pub fn is_human(self) -> bool {
        self == Self::Agent
    }
}

/// Why a message waits for approval, and who may give it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hold {
    /// The least role that may approve (the highest any matching boundary names).
    pub approver: Role,
    /// The boundaries that matched, in file order.
    pub boundaries: Vec<String>,
    /// One sentence per boundary, for the approver.
    pub reasons: Vec<String>,
}
