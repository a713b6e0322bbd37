//! Loading and reloading the triage taxonomy and the routing policy.
//!
//! Both files are read, the classifier trained and the policy validated before anything
//! changes; the policy's teams are created in the store if new; then the engine is swapped
//! in one step. Every attempt, accepted or refused, is written to the audit log with who
//! asked and the SHA-256 of both files, so "which rules were in force at 14:02" has an
//! answer. A refused reload leaves the engine in force untouched.

use super::engine::{Engine, EngineError, EngineHandle, EngineSources};
use crate::domain::Micros;
use crate::store::audit::AuditRecord;
use crate::store::directory::EnsureTeams;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Invalid(#[from] EngineError),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("training was interrupted")]
    Interrupted,
}

/// What is in force after a load.
#[derive(Debug, Clone)]
pub struct LoadedEngine {
    pub triage_sha256: String,
    pub routing_sha256: String,
    pub sla_sha256: String,
    pub approvals_sha256: String,
    pub teams: usize,
    pub rules: usize,
    pub intents: usize,
    pub loaded_at: Micros,
}

/// Reads, trains and validates both files, and makes sure the policy's teams exist.
pub async fn build(
    sources: &EngineSources,
    store: &Store,
    now: Micros,
) -> Result<Engine, ReloadError> {
    let texts = sources.read()?;
    let mut engine = tokio::task::spawn_blocking(move || Engine::build(&texts, now))
        .await
        .map_err(|_| ReloadError::Interrupted)??;
    let names = engine.policy.teams().iter().map(|t| t.id.clone()).collect();
    engine.team_ids = store
        .write(EnsureTeams { names, now })
        .await?
        .into_iter()
        .collect();
    Ok(engine)
}

fn summary(engine: &Engine) -> LoadedEngine {
    LoadedEngine {
        triage_sha256: engine.triage_sha256.clone(),
        routing_sha256: engine.routing_sha256.clone(),
        sla_sha256: engine.sla_sha256.clone(),
        approvals_sha256: engine.approvals_sha256.clone(),
        teams: engine.policy.teams().len(),
        rules: engine.policy.rules().len(),
        intents: engine.classifier.intent_labels().len(),
        loaded_at: engine.loaded_at,
    }
}

/// Reloads the engine in force; audited whether it succeeds or not.
pub async fn reload(
    handle: &EngineHandle,
    sources: &EngineSources,
    store: &Store,
    actor: String,
    now: Micros,
) -> Result<LoadedEngine, ReloadError> {
    match build(sources, store, now).await {
        Ok(engine) => {
            let loaded = summary(&engine);
            handle.replace(engine);
            metrics()
                .routing_reloads
                .with_label_values(&["applied"])
                .inc();
            store
                .audit(AuditRecord {
                    actor,
                    action: "routing.reloaded".into(),
                    subject: Some("routing".into()),
                    data: json!({
                        "triage_sha256": loaded.triage_sha256,
                        "routing_sha256": loaded.routing_sha256,
                        "sla_sha256": loaded.sla_sha256,
                        "approvals_sha256": loaded.approvals_sha256,
                        "teams": loaded.teams,
                        "rules": loaded.rules,
                        "intents": loaded.intents,
                    }),
                    at: now,
                })
                .await?;
            tracing::info!(
                rules = loaded.rules,
                teams = loaded.teams,
                "Triage and routing reloaded."
            );
            Ok(loaded)
        }
        Err(error) => {
            metrics()
                .routing_reloads
                .with_label_values(&["refused"])
                .inc();
            tracing::warn!(error = %error, "Reload refused; the rules in force stay.");
            store
                .audit(AuditRecord {
                    actor,
                    action: "routing.reload_refused".into(),
                    subject: Some("routing".into()),
                    data: json!({ "error": error.to_string() }),
                    at: now,
                })
                .await?;
            Err(error)
        }
    }
}

/// The first load at start-up (a bad file stops Parley from starting, with the line).
pub async fn load(
    sources: &EngineSources,
    store: &Store,
    now: Micros,
) -> Result<(EngineHandle, LoadedEngine), ReloadError> {
    let engine = build(sources, store, now).await?;
    let loaded = summary(&engine);
    Ok((EngineHandle::new(engine), loaded))
}
