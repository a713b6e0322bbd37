//! Who is looking at or typing in a conversation right now: the collision detector.
//!
//! Inboxes report an agent's presence on a conversation (viewing, typing, or gone) and
//! refresh it while it lasts; an entry lapses on its own after a short time so a closed
//! browser tab never blocks anyone. Every change is published to GraphQL subscribers, and
//! a reply is refused while another agent is typing in the same conversation.
//!
//! In a cluster each node's board is a replica: a change made here goes to the other
//! nodes through the cluster bus (and into Redis, with an expiry), and theirs come back
//! through [`PresenceBoard::apply_remote`], so a collision is seen whichever node each
//! agent is connected to.

use crate::cluster::bus::{PresenceChange, Relay};
use crate::domain::Micros;
pub use crate::domain::presence::{Presence, PresenceState};
use dashmap::DashMap;
use tokio::sync::broadcast;

/// Everyone present on one conversation, after a change.
#[derive(Debug, Clone)]
pub struct PresenceUpdate {
    pub conversation_id: i64,
    pub present: Vec<Presence>,
}

pub struct PresenceBoard {
    conversations: DashMap<i64, Vec<Presence>>,
    updates: broadcast::Sender<PresenceUpdate>,
    relay: Relay,
}

impl Default for PresenceBoard {
    fn default() -> Self {
        Self::with_relay(Relay::none())
    }
}

impl PresenceBoard {
    /// A board whose changes also go to the other nodes of a cluster.
    pub fn with_relay(relay: Relay) -> Self {
        Self {
            conversations: DashMap::new(),
            updates: broadcast::channel(1024).0,
            relay,
        }
    }

    /// Applies another node's change (an agent's presence, or its end) and publishes who
    /// is present now to this node's subscribers.
    pub fn apply_remote(&self, change: PresenceChange, now: Micros) {
        let present = {
            let mut entry = self
                .conversations
                .entry(change.conversation_id)
                .or_default();
            entry.retain(|p| p.expires_at > now && p.agent_id != change.agent_id);
            if let Some(presence) = change.presence.filter(|p| p.expires_at > now) {
                entry.push(presence);
            }
            entry.clone()
        };
        if present.is_empty() {
            self.conversations
                .remove_if(&change.conversation_id, |_, list| list.is_empty());
        }
        let _ = self.updates.send(PresenceUpdate {
            conversation_id: change.conversation_id,
            present,
        });
    }

    /// Sets (or with `None` clears) an agent's presence on a conversation and publishes
    /// who is present now.
    pub fn set(
        &self,
        conversation_id: i64,
        agent_id: i64,
        agent_name: &str,
        state: Option<PresenceState>,
        now: Micros,
    ) -> Vec<Presence> {
        let (present, mine) = {
            let mut entry = self.conversations.entry(conversation_id).or_default();
            entry.retain(|p| p.expires_at > now && p.agent_id != agent_id);
            let since = entry
                .iter()
                .find(|p| p.agent_id == agent_id)
                .map_or(now, |p| p.since);
            let mine = state.map(|state| Presence {
                agent_id,
                agent_name: agent_name.to_owned(),
                state,
                since,
                expires_at: now + state.ttl(),
            });
            entry.extend(mine.clone());
            (entry.clone(), mine)
        };
        self.relay.presence(PresenceChange {
            conversation_id,
            agent_id,
            presence: mine,
        });
        if present.is_empty() {
            self.conversations
                .remove_if(&conversation_id, |_, list| list.is_empty());
        }
        // Nobody listening is fine.
        let _ = self.updates.send(PresenceUpdate {
            conversation_id,
            present: present.clone(),
        });
        present
    }

    /// Who is present on a conversation now.
    pub fn present(&self, conversation_id: i64, now: Micros) -> Vec<Presence> {
        self.conversations
            .get(&conversation_id)
            .map(|list| {
                list.iter()
                    .filter(|p| p.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Another agent typing in the conversation, if any.
    pub fn typing_other_than(
        &self,
        conversation_id: i64,
        agent_id: Option<i64>,
        now: Micros,
    ) -> Option<Presence> {
        self.present(conversation_id, now)
            .into_iter()
            .find(|p| p.state == PresenceState::Typing && Some(p.agent_id) != agent_id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PresenceUpdate> {
        self.updates.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SECOND_MICROS;

    #[test]
    fn typing_lapses_and_is_per_agent() {
        let board = PresenceBoard::default();
        board.set(1, 10, "Ana", Some(PresenceState::Typing), 0);
        board.set(1, 11, "Bo", Some(PresenceState::Viewing), 0);
        assert_eq!(
            board.typing_other_than(1, Some(11), 1).map(|p| p.agent_id),
            Some(10)
        );
        assert!(board.typing_other_than(1, Some(10), 1).is_none());
        assert!(board.typing_other_than(2, Some(11), 1).is_none());
        // Ten seconds without a refresh: Ana no longer blocks anyone.
        assert!(
            board
                .typing_other_than(1, Some(11), 11 * SECOND_MICROS)
                .is_none()
        );
        assert_eq!(board.present(1, 11 * SECOND_MICROS).len(), 1);
    }

    #[test]
    fn clearing_publishes_the_remaining_agents() {
        let board = PresenceBoard::default();
        let mut updates = board.subscribe();
        board.set(5, 10, "Ana", Some(PresenceState::Viewing), 0);
        board.set(5, 10, "Ana", None, 1);
        let first = updates.try_recv().map(|u| u.present.len()).ok();
        let second = updates.try_recv().map(|u| u.present.len()).ok();
        assert_eq!((first, second), (Some(1), Some(0)));
        assert!(board.present(5, 2).is_empty());
    }
}
