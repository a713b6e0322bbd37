//! An agent's presence on a conversation (viewing or typing), as the collision detector
//! and the cluster bus carry it.

use super::{Micros, SECOND_MICROS};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Viewing,
    Typing,
}

impl PresenceState {
    /// How long a report lasts without a refresh.
    pub fn ttl(self) -> Micros {
        match self {
            Self::Viewing => 60 * SECOND_MICROS,
            Self::Typing => 10 * SECOND_MICROS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub agent_id: i64,
    pub agent_name: String,
    pub state: PresenceState,
    pub since: Micros,
    pub expires_at: Micros,
}
