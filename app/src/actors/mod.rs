//! The contracts between actors: the requests they exchange and the handles that deliver
//! them, kept apart from the actors themselves so that any actor can reach another
//! without importing it (the router, the SLA clock and the escalation actor ask
//! conversation actors for changes; conversation actors, higher up, tell them about
//! committed changes through their own message types).

pub mod conversation;

pub use conversation::{ConversationError, ConversationRequest, Conversations};
