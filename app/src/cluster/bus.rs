//! What a node shares with the others of its cluster (committed events, presence
//! changes, cache invalidations), and the [`Relay`] the parts of a node hand them to.
//! The Redis side that carries them is [`crate::node::bus`]; on a single node the relay
//! does nothing.

use crate::domain::presence::Presence;
use crate::store::entities::conversation_event;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Another node's presence change on a conversation: an agent's new presence, or `None`
/// when it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresenceChange {
    pub conversation_id: i64,
    pub agent_id: i64,
    pub presence: Option<Presence>,
}

/// A change made through one node that every other node must take into account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invalidation {
    /// The triage, routing, SLA and approval files were reloaded.
    PoliciesReloaded,
    /// A plugin was loaded (or replaced) from this manifest.
    PluginLoaded { manifest_path: String },
    /// A plugin was removed.
    PluginRemoved { id: String },
    /// A contact's consent, flags or data changed: live conversations read it again.
    ContactChanged {
        wa_id: String,
        /// Set when the contact was blocked or unblocked (the noise filter's list).
        blocked: Option<bool>,
    },
    /// Invalidations may have been missed (Redis was away): drop every cache.
    Everything,
}

/// What a node hands to the cluster (through a [`Relay`]).
#[derive(Debug)]
pub enum Outgoing {
    Events(Vec<Arc<conversation_event::Model>>),
    Presence(PresenceChange),
    Invalidation(Invalidation),
}

/// The way in to the cluster stream for the parts of a node that change shared state;
/// does nothing on a single node.
#[derive(Clone, Default)]
pub struct Relay(Option<mpsc::UnboundedSender<Outgoing>>);

impl Relay {
    /// A relay for a single node: everything stays local.
    pub fn none() -> Self {
        Self(None)
    }

    /// A relay whose changes go to `sender` (the cluster bus's publisher).
    pub fn to(sender: mpsc::UnboundedSender<Outgoing>) -> Self {
        Self(Some(sender))
    }

    fn send(&self, outgoing: Outgoing) {
        if let Some(sender) = &self.0 {
            // The publisher only stops with the process.
            let _ = sender.send(outgoing);
        }
    }

    pub(crate) fn events(&self, events: Vec<Arc<conversation_event::Model>>) {
        if !events.is_empty() {
            self.send(Outgoing::Events(events));
        }
    }

    pub fn presence(&self, change: PresenceChange) {
        self.send(Outgoing::Presence(change));
    }

    /// Tells the other nodes to drop or reload what `invalidation` names.
    pub fn invalidate(&self, invalidation: Invalidation) {
        self.send(Outgoing::Invalidation(invalidation));
    }
}
