//! Routing: who owns a case, who watches it, who works it, and why.
//!
//! - [`policy`]: the routing policy file (`config/routing.toml`): teams, their hours and
//!   strategies, and the declarative rules that turn triage tags into consequences
//!   (priority, urgency, owner, watchers, review, suppression). Pure and validated, with
//!   the line of every mistake.
//! - [`calendar`]: business hours per team (time zone, several periods a day, holidays).
//! - [`select`]: choosing an agent inside a team by its strategy, explaining every
//!   candidate.
//! - [`engine`]: the classifier and the policy in force, swapped as one on reload.
//! - [`apply`]: what a decision does to a case.
//! - [`noise`]: blocked contacts and near-duplicate clusters shared across contacts.
//! - [`presence`]: who is viewing or typing in a conversation (collision detection).
//! - [`router`]: the actor that holds agents' load and the teams' queues and assigns.
//! - [`reload`]: reloading taxonomy and rules without a restart, audited.

pub mod apply;
pub mod calendar;
pub mod engine;
pub mod noise;
pub mod policy;
pub mod presence;
pub mod reload;
pub mod router;
pub mod select;

use actix::Addr;
use std::sync::Arc;

/// What conversation actors and the API share for triage and routing.
pub struct Routing {
    pub engine: engine::EngineHandle,
    pub noise: noise::NoiseState,
    pub presence: Arc<presence::PresenceBoard>,
    pub router: Addr<router::RouterActor>,
    pub sources: engine::EngineSources,
    /// Off: messages are stored untouched (no triage, noise filter or routing).
    pub enabled: bool,
    /// The thread the router runs on.
    pub router_thread: actix::ArbiterHandle,
    /// The thread the SLA clock and the escalation actor run on.
    pub sla_thread: actix::ArbiterHandle,
}

impl Routing {
    /// Stops the router's and the SLA clock's threads (at shutdown).
    pub fn stop(&self) {
        self.router_thread.stop();
        self.sla_thread.stop();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod test_support {
    use super::policy::{KnownTags, RoutingPolicy};

    /// The shipped policy.
    pub(crate) fn default_policy_text() -> String {
        super::engine::DEFAULT_ROUTING.to_owned()
    }

    pub(crate) fn default_policy() -> RoutingPolicy {
        RoutingPolicy::from_toml(&default_policy_text(), &KnownTags::default_taxonomy())
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
