//! sea-orm entities, one per table of `parley-migrations`. Instants are microseconds since
//! the Unix epoch; enums are stored as their snake_case names.

pub mod agent;
pub mod api_token;
pub mod audit_entry;
pub mod consent_event;
pub mod contact;
pub mod contact_field;
pub mod contact_field_value;
pub mod conversation;
pub mod conversation_event;
pub mod csat_response;
pub mod dead_letter;
pub mod held_message;
pub mod inbox;
pub mod macro_entry;
pub mod media;
pub mod message;
pub mod message_status;
pub mod noise_cluster;
pub mod note;
pub mod outbox;
pub mod search_document;
pub mod server_secret;
pub mod suppression;
pub mod team;
pub mod template;
