//! Parley's integration tests: one binary (one link), the real application on port 0
//! against a fresh database, SQLite and PostgreSQL, with a fake Graph API for Meta and
//! fake Twilio and CRM servers for the plugins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod audit;
mod cluster;
mod cluster_bus;
mod consent;
mod corrections;
mod crash;
mod csat;
mod demo;
mod erasure;
mod governance;
mod graphql;
mod inbox;
mod inbox_e2e;
mod intake;
mod layers;
mod lifecycle;
mod macros;
mod media;
mod notifications;
mod outbound;
mod plugins;
mod reports;
mod roles;
mod routing;
mod schema;
mod search;
mod sla;
mod telemetry;
mod templates;
mod typed;
mod window;
