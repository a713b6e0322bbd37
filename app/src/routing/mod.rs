//! Routing: who owns a case, who watches it, who works it, and why.
//!
//! The routing rules themselves (teams, hours, strategies, the rule language) are a
//! declarative file read by [`crate::policy::routing`]; this module acts on them.
//!
//! - [`select`]: choosing an agent inside a team by its strategy, explaining every
//!   candidate.
//! - [`apply`]: what a decision does to a case.
//! - [`noise`]: blocked contacts and near-duplicate clusters shared across contacts.
//! - [`presence`]: who is viewing or typing in a conversation (collision detection).
//! - [`router`]: the actor that holds agents' load and the teams' queues and assigns.

pub mod apply;
pub mod noise;
pub mod presence;
pub mod router;
pub mod select;

use actix::Addr;
use std::sync::Arc;

/// What conversation actors and the API share for triage and routing.
pub struct Routing {
    /// The policies in force (taxonomy, routing rules, SLA, approvals).
    pub engine: crate::policy::PolicyHandle,
    pub noise: noise::NoiseState,
    pub presence: Arc<presence::PresenceBoard>,
    pub router: Addr<router::RouterActor>,
    /// Where the policy files are read from on reload.
    pub sources: crate::policy::PolicySources,
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
