//! The triage engine in force: the trained classifier, the routing policy, and the database
//! ids of the policy's teams, swapped as one unit on reload.
//!
//! Readers take a snapshot ([`EngineHandle::current`]) and use it for a whole message, so
//! a reload never mixes an old taxonomy with new rules. A reload reads both files, trains
//! and validates everything before swapping; a file with a mistake is refused with the
//! line at fault and the engine in force stays.

use crate::outbound::gate::ApprovalPolicy;
use crate::routing::policy::{
    Decision, KnownTags, PolicyError, RoutingPolicy, Scored as Tag, TagSet,
};
use crate::sla::policy::SlaPolicy;
use crate::triage::taxonomy::LOW_CONFIDENCE_TONE;
use crate::triage::{Classification, Classifier, Family, TriageConfig, TriageConfigError};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The routing policy shipped with Parley (`config/routing.toml`).
pub const DEFAULT_ROUTING: &str = include_str!("../../../config/routing.toml");

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {error}")]
    Triage {
        path: String,
        error: TriageConfigError,
    },
    #[error("{path}: {error}")]
    Policy { path: String, error: PolicyError },
    #[error("{path}: {error}")]
    Sla { path: String, error: PolicyError },
    #[error("{path}: {error}")]
    Approvals { path: String, error: PolicyError },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

/// Where the engine's two files come from; `None` means the built-in default.
#[derive(Debug, Clone, Default)]
pub struct EngineSources {
    pub triage: Option<PathBuf>,
    pub routing: Option<PathBuf>,
    pub sla: Option<PathBuf>,
    pub approvals: Option<PathBuf>,
}

/// The text of both files, and where they came from.
#[derive(Debug, Clone)]
pub struct EngineTexts {
    pub triage: String,
    pub triage_source: String,
    pub routing: String,
    pub routing_source: String,
    pub sla: String,
    pub sla_source: String,
    pub approvals: String,
    pub approvals_source: String,
}

fn read(path: &Option<PathBuf>, default: &str) -> Result<(String, String), EngineError> {
    match path {
        None => Ok((default.to_owned(), "built-in".to_owned())),
        Some(path) => std::fs::read_to_string(path)
            .map(|text| (text, path.display().to_string()))
            .map_err(|error| EngineError::Read {
                path: path.display().to_string(),
                error,
            }),
    }
}

impl EngineSources {
    pub fn read(&self) -> Result<EngineTexts, EngineError> {
        let (triage, triage_source) = read(&self.triage, crate::triage::DEFAULT_CONFIG)?;
        let (routing, routing_source) = read(&self.routing, DEFAULT_ROUTING)?;
        let (sla, sla_source) = read(&self.sla, crate::sla::policy::DEFAULT_SLA)?;
        let (approvals, approvals_source) =
            read(&self.approvals, crate::outbound::gate::DEFAULT_APPROVALS)?;
        Ok(EngineTexts {
            approvals,
            approvals_source,
            triage,
            triage_source,
            routing,
            routing_source,
            sla,
            sla_source,
        })
    }
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Everything triage and routing decide with.
pub struct Engine {
    pub classifier: Classifier,
    pub policy: RoutingPolicy,
    /// SLA targets and escalation ladders, checked against the policy's teams.
    pub sla: SlaPolicy,
    /// Which outbound messages wait for a person's approval.
    pub approvals: ApprovalPolicy,
    /// Policy team id (`[teams.<id>]`) to the team's database id.
    pub team_ids: HashMap<String, i64>,
    pub triage_sha256: String,
    pub routing_sha256: String,
    pub sla_sha256: String,
    pub approvals_sha256: String,
    pub loaded_at: i64,
}

/// What triage says about one message, and what the policy makes of it.
#[derive(Debug, Clone)]
pub struct Triaged {
    pub classification: Classification,
    pub tags: TagSet,
    pub decision: Decision,
}

/// The tag values the policy may name, from the taxonomy.
pub fn known_tags(config: &TriageConfig) -> KnownTags {
    KnownTags {
        intents: config.values(Family::Intent),
        risks: config.values(Family::Risk),
        urgencies: config.values(Family::Urgency),
        languages: config.languages.keys().cloned().collect(),
        tones: config
            .tones
            .keys()
            .cloned()
            .chain(std::iter::once(LOW_CONFIDENCE_TONE.to_owned()))
            .collect(),
        contexts: config.values(Family::CustomerContext),
    }
}

impl Engine {
    /// Trains the classifier and validates the policy against its taxonomy. Team ids are
    /// filled in by the caller once the teams exist in the database.
    pub fn build(texts: &EngineTexts, now: i64) -> Result<Engine, EngineError> {
        let triage_error = |error| EngineError::Triage {
            path: texts.triage_source.clone(),
            error,
        };
        let config = TriageConfig::from_toml(&texts.triage).map_err(triage_error)?;
        let classifier = Classifier::train(&config).map_err(triage_error)?;
        let known = known_tags(&config);
        let approvals = ApprovalPolicy::from_toml(&texts.approvals, &known).map_err(|error| {
            EngineError::Approvals {
                path: texts.approvals_source.clone(),
                error,
            }
        })?;
        let policy = RoutingPolicy::from_toml(&texts.routing, &known).map_err(|error| {
            EngineError::Policy {
                path: texts.routing_source.clone(),
                error,
            }
        })?;
        let sla = SlaPolicy::from_toml(&texts.sla, &policy).map_err(|error| EngineError::Sla {
            path: texts.sla_source.clone(),
            error,
        })?;
        Ok(Engine {
            classifier,
            policy,
            sla,
            approvals,
            team_ids: HashMap::new(),
            triage_sha256: sha(&texts.triage),
            routing_sha256: sha(&texts.routing),
            sla_sha256: sha(&texts.sla),
            approvals_sha256: sha(&texts.approvals),
            loaded_at: now,
        })
    }

    /// Classifies a text (no context yet).
    pub fn classify(&self, text: &str) -> Classification {
        self.classifier.classify(text)
    }

    /// Applies the policy to a classification and the context the router knows.
    pub fn decide(&self, classification: Classification, context: Vec<String>) -> Triaged {
        let tags = tag_set(&classification, context);
        let decision = self.policy.decide(&tags);
        Triaged {
            classification,
            tags,
            decision,
        }
    }

    pub fn team_id(&self, team: &str) -> Option<i64> {
        self.team_ids.get(team).copied()
    }

    /// The policy id of a team, from its database id.
    pub fn team_name(&self, id: i64) -> Option<&str> {
        self.team_ids
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.as_str())
    }
}

fn tag_set(c: &Classification, context: Vec<String>) -> TagSet {
    let tag = |s: &crate::triage::Scored| Tag {
        label: s.label.clone(),
        confidence: s.confidence,
    };
    TagSet {
        intents: c.intents.iter().map(tag).collect(),
        risks: c.risks.iter().map(tag).collect(),
        urgency: c.urgency.label.clone(),
        language: c.language.label.clone(),
        tones: c.tones.iter().map(|t| t.label.clone()).collect(),
        context,
        low_confidence: c.low_confidence,
    }
}

/// The engine in force, swapped atomically on reload.
#[derive(Clone)]
pub struct EngineHandle(Arc<ArcSwap<Engine>>);

impl EngineHandle {
    pub fn new(engine: Engine) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(engine)))
    }

    pub fn current(&self) -> Arc<Engine> {
        self.0.load_full()
    }

    pub fn replace(&self, engine: Engine) {
        self.0.store(Arc::new(engine));
    }
}
