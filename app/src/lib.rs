//! Parley: a WhatsApp-first customer-support server.
//!
//! One message's path: [`ingest`] verifies and durably stores a provider webhook, then
//! hands each message to its [`conversation`] actor, which owns the ticket lifecycle and
//! persists through [`store`]; [`api`] serves GraphQL to inboxes and dashboards; replies
//! leave through the [`outbound`] outbox. [`startup::Application`] wires it all.

pub mod actors;
pub mod api;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conversation;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod ingest;
pub mod media;
pub mod node;
pub mod outbound;
pub mod plugins;
pub mod policy;
pub mod reports;
pub mod routing;
pub mod sla;
pub mod startup;
pub mod store;
pub mod telemetry;
pub use parley_triage as triage;
