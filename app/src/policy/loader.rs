//! Reading, validating, versioning and reloading the declarative files.
//!
//! Every file is read, the classifier trained and each policy validated before anything
//! changes; the routing policy's teams are created in the store if new; then the set in
//! force is swapped in one step. Every attempt, accepted or refused, is written to the
//! audit log with who asked and the SHA-256 of each file, so "which rules were in force at
//! 14:02" has an answer. A refused reload leaves the set in force untouched.

use super::approvals::ApprovalPolicy;
use super::routing::RoutingPolicy;
use super::sla::SlaPolicy;
use super::{Policies, PolicyError, PolicyHandle, known_tags};
use crate::domain::Micros;
use crate::store::audit::AuditRecord;
use crate::store::directory::EnsureTeams;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use crate::triage::{Classifier, TriageConfig, TriageConfigError};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The routing policy shipped with Parley (`config/routing.toml`).
pub const DEFAULT_ROUTING: &str = include_str!("../../../config/routing.toml");
pub use super::sla::DEFAULT_SLA;
/// The approval boundaries shipped with Parley (`config/approvals.toml`).
pub const DEFAULT_APPROVALS: &str = include_str!("../../../config/approvals.toml");

/// A file that cannot be used, with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {error}")]
    Triage {
        path: String,
        error: TriageConfigError,
    },
    /// A corpus file's line at fault (the error names the file).
    #[error("{0}")]
    Corpus(TriageConfigError),
    #[error("{path}: {error}")]
    Routing { path: String, error: PolicyError },
    #[error("{path}: {error}")]
    Sla { path: String, error: PolicyError },
    #[error("{path}: {error}")]
    Approvals { path: String, error: PolicyError },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("training was interrupted")]
    Interrupted,
}

/// Where each file comes from; `None` means the built-in default.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    pub triage: Option<PathBuf>,
    /// Labelled corpus files trained on besides the triage file's examples.
    pub corpus: Vec<PathBuf>,
    pub routing: Option<PathBuf>,
    pub sla: Option<PathBuf>,
    pub approvals: Option<PathBuf>,
}

/// The text of every file, and where it came from.
#[derive(Debug, Clone)]
pub struct PolicyTexts {
    pub triage: String,
    pub triage_source: String,
    /// Each corpus file's path and text.
    pub corpus: Vec<(String, String)>,
    pub routing: String,
    pub routing_source: String,
    pub sla: String,
    pub sla_source: String,
    pub approvals: String,
    pub approvals_source: String,
}

fn read(path: &Option<PathBuf>, default: &str) -> Result<(String, String), LoadError> {
    match path {
        None => Ok((default.to_owned(), "built-in".to_owned())),
        Some(path) => std::fs::read_to_string(path)
            .map(|text| (text, path.display().to_string()))
            .map_err(|error| LoadError::Read {
                path: path.display().to_string(),
                error,
            }),
    }
}

impl PolicySources {
    /// The files `[routing]` names (empty names: the built-in defaults).
    pub fn from_settings(settings: &crate::config::RoutingSettings) -> Self {
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        Self {
            triage: path(&settings.triage_file),
            corpus: settings.triage_corpus.iter().map(PathBuf::from).collect(),
            routing: path(&settings.rules_file),
            sla: path(&settings.sla_file),
            approvals: path(&settings.approvals_file),
        }
    }

    pub fn read(&self) -> Result<PolicyTexts, LoadError> {
        let (triage, triage_source) = read(&self.triage, crate::triage::DEFAULT_CONFIG)?;
        let corpus = self
            .corpus
            .iter()
            .map(|path| read(&Some(path.clone()), "").map(|(text, source)| (source, text)))
            .collect::<Result<_, _>>()?;
        let (routing, routing_source) = read(&self.routing, DEFAULT_ROUTING)?;
        let (sla, sla_source) = read(&self.sla, DEFAULT_SLA)?;
        let (approvals, approvals_source) = read(&self.approvals, DEFAULT_APPROVALS)?;
        Ok(PolicyTexts {
            triage,
            triage_source,
            corpus,
            routing,
            routing_source,
            sla,
            sla_source,
            approvals,
            approvals_source,
        })
    }
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Classifiers trained lately, by the SHA-256 of what they were trained from.
///
/// Training on the corpus takes seconds. A reload that leaves the triage files as they
/// are, and every node of one process (`parley demo`, the tests), reuse the classifier
/// already trained: training is deterministic, so the same files give the same one.
/// The last [`TRAINED_KEPT`] are kept.
static TRAINED: Mutex<Vec<(String, Arc<Classifier>)>> = Mutex::new(Vec::new());
const TRAINED_KEPT: usize = 3;

fn trained(sha256: &str, config: &TriageConfig) -> Result<Arc<Classifier>, TriageConfigError> {
    let cached = |kept: &Vec<(String, Arc<Classifier>)>| {
        kept.iter()
            .find(|(key, _)| key == sha256)
            .map(|(_, classifier)| Arc::clone(classifier))
    };
    if let Some(classifier) = cached(&TRAINED.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(classifier);
    }
    // Trained outside the lock: two loads of different files do not wait on each other.
    let classifier = Arc::new(Classifier::train(config)?);
    let mut kept = TRAINED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(other) = cached(&kept) {
        return Ok(other);
    }
    kept.insert(0, (sha256.to_owned(), Arc::clone(&classifier)));
    kept.truncate(TRAINED_KEPT);
    Ok(classifier)
}

/// The triage file's SHA-256, or, with corpus files, the SHA-256 over it and each corpus
/// file's path and text: a changed corpus is a changed classifier.
fn triage_sha(texts: &PolicyTexts) -> String {
    if texts.corpus.is_empty() {
        return sha(&texts.triage);
    }
    let mut hasher = Sha256::new();
    hasher.update(texts.triage.as_bytes());
    for (source, text) in &texts.corpus {
        hasher.update([0]);
        hasher.update(source.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())
}

impl Policies {
    /// Trains the classifier and validates every policy against its taxonomy (and the SLA
    /// policy against the routing policy's teams). Team ids are filled in by the caller
    /// once the teams exist in the database.
    pub fn build(texts: &PolicyTexts, now: i64) -> Result<Policies, LoadError> {
        Self::build_over(texts, now, None)
    }

    /// Like [`Policies::build`], keeping the classifier of the policies in force when the
    /// triage files are the ones it was trained from (a reload of the routing rules, or
    /// another node's reload, does not train again).
    pub fn build_over(
        texts: &PolicyTexts,
        now: i64,
        in_force: Option<&Policies>,
    ) -> Result<Policies, LoadError> {
        let triage_error = |error| LoadError::Triage {
            path: texts.triage_source.clone(),
            error,
        };
        let mut config = TriageConfig::from_toml(&texts.triage).map_err(triage_error)?;
        for (source, text) in &texts.corpus {
            config.add_corpus(source, text).map_err(LoadError::Corpus)?;
        }
        let triage_sha256 = triage_sha(texts);
        let classifier = match in_force.filter(|p| p.triage_sha256 == triage_sha256) {
            Some(in_force) => Arc::clone(&in_force.classifier),
            None => trained(&triage_sha256, &config).map_err(triage_error)?,
        };
        let known = known_tags(&config);
        let approvals = ApprovalPolicy::from_toml(&texts.approvals, &known).map_err(|error| {
            LoadError::Approvals {
                path: texts.approvals_source.clone(),
                error,
            }
        })?;
        let routing = RoutingPolicy::from_toml(&texts.routing, &known).map_err(|error| {
            LoadError::Routing {
                path: texts.routing_source.clone(),
                error,
            }
        })?;
        let sla = SlaPolicy::from_toml(&texts.sla, &routing).map_err(|error| LoadError::Sla {
            path: texts.sla_source.clone(),
            error,
        })?;
        Ok(Policies {
            classifier,
            routing,
            sla,
            approvals,
            team_ids: HashMap::new(),
            triage_sha256,
            routing_sha256: sha(&texts.routing),
            sla_sha256: sha(&texts.sla),
            approvals_sha256: sha(&texts.approvals),
            loaded_at: now,
        })
    }
}

impl LoadError {
    /// A file was wrong (as opposed to the store failing): the caller's mistake.
    pub fn is_invalid(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Interrupted)
    }
}

/// What is in force after a load.
#[derive(Debug, Clone)]
pub struct LoadedPolicies {
    pub triage_sha256: String,
    pub routing_sha256: String,
    pub sla_sha256: String,
    pub approvals_sha256: String,
    pub teams: usize,
    pub rules: usize,
    pub intents: usize,
    pub loaded_at: Micros,
}

/// Reads, trains and validates every file, and makes sure the routing policy's teams exist.
pub async fn build(
    sources: &PolicySources,
    store: &Store,
    now: Micros,
    in_force: Option<Arc<Policies>>,
) -> Result<Policies, LoadError> {
    let texts = sources.read()?;
    let mut policies =
        tokio::task::spawn_blocking(move || Policies::build_over(&texts, now, in_force.as_deref()))
            .await
            .map_err(|_| LoadError::Interrupted)??;
    let names = policies
        .routing
        .teams()
        .iter()
        .map(|t| t.id.clone())
        .collect();
    policies.team_ids = store
        .write(EnsureTeams { names, now })
        .await?
        .into_iter()
        .collect();
    Ok(policies)
}

fn summary(policies: &Policies) -> LoadedPolicies {
    LoadedPolicies {
        triage_sha256: policies.triage_sha256.clone(),
        routing_sha256: policies.routing_sha256.clone(),
        sla_sha256: policies.sla_sha256.clone(),
        approvals_sha256: policies.approvals_sha256.clone(),
        teams: policies.routing.teams().len(),
        rules: policies.routing.rules().len(),
        intents: policies.classifier.intent_labels().len(),
        loaded_at: policies.loaded_at,
    }
}

/// Reloads the policies in force; audited whether it succeeds or not.
pub async fn reload(
    handle: &PolicyHandle,
    sources: &PolicySources,
    store: &Store,
    actor: String,
    now: Micros,
) -> Result<LoadedPolicies, LoadError> {
    match build(sources, store, now, Some(handle.current())).await {
        Ok(policies) => {
            let loaded = summary(&policies);
            handle.replace(policies);
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

/// Reads the policies again on this node after another node of the cluster reloaded them
/// (that node audited the reload; this one only follows).
pub async fn refresh(
    handle: &PolicyHandle,
    sources: &PolicySources,
    store: &Store,
    now: Micros,
) -> Result<LoadedPolicies, LoadError> {
    let policies = build(sources, store, now, Some(handle.current())).await?;
    let loaded = summary(&policies);
    handle.replace(policies);
    Ok(loaded)
}

/// The first load at start-up (a bad file stops Parley from starting, with the line).
pub async fn load(
    sources: &PolicySources,
    store: &Store,
    now: Micros,
) -> Result<(PolicyHandle, LoadedPolicies), LoadError> {
    let policies = build(sources, store, now, None).await?;
    let loaded = summary(&policies);
    Ok((PolicyHandle::new(policies), loaded))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_with_the_same_triage_files_keeps_the_trained_classifier() {
        let texts = PolicySources::default().read().unwrap();
        let first = Policies::build(&texts, 0).unwrap();
        let again = Policies::build_over(&texts, 1, Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&first.classifier, &again.classifier));

        // A changed corpus is a changed classifier.
        let mut changed = texts.clone();
        changed.corpus.push((
            "ours.jsonl".to_owned(),
            r#"{"text": "zorblax pls", "intents": ["invoice_request"], "language": "en"}"#
                .to_owned(),
        ));
        let other = Policies::build_over(&changed, 2, Some(&first)).unwrap();
        assert_ne!(other.triage_sha256, first.triage_sha256);
        assert!(!Arc::ptr_eq(&first.classifier, &other.classifier));
    }
}
