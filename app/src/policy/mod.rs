//! Policy: every declarative file Parley decides by, read, validated and versioned in one
//! place, and swapped as one unit on reload.
//!
//! - the triage taxonomy and its examples (`config/triage.toml`), trained into the
//!   classifier by [`crate::triage`];
//! - [`routing`]: the routing rules (`config/routing.toml`): teams, their [`calendar`]s and
//!   strategies, and the rule language that turns triage tags into consequences;
//! - [`sla`]: SLA targets, business-hours rules and escalation ladders (`config/sla.toml`);
//! - [`approvals`]: which outbound messages wait for a person (`config/approvals.toml`).
//!
//! [`loader`] reads all four files, validates each with the line and column of every
//! mistake and a "did you mean" for near misses ([`problems`]), hashes them (SHA-256), and
//! only then replaces the set in force, in one step, auditing every attempt. A refused file
//! leaves the set in force untouched. Readers take a snapshot ([`PolicyHandle::current`])
//! and use it for a whole message, so a reload never mixes an old taxonomy with new rules.
//!
//! Each consumer receives the typed policy it needs: triage and routing the classifier and
//! [`routing::RoutingPolicy`], the SLA clock [`sla::SlaPolicy`] and the team calendars, the
//! outbound gate [`approvals::ApprovalPolicy`]; none of them reads a file. This module
//! never sends a message, never assigns a case and never touches an actor.

pub mod approvals;
pub mod calendar;
pub mod loader;
pub mod problems;
pub mod routing;
pub mod sla;

pub use loader::{LoadError, LoadedPolicies, PolicySources};
pub use problems::{KnownTags, PolicyError};

use crate::triage::taxonomy::LOW_CONFIDENCE_TONE;
use crate::triage::{Classification, Classifier, Family, TriageConfig};
use approvals::ApprovalPolicy;
use arc_swap::ArcSwap;
use routing::{Decision, RoutingPolicy, Scored as Tag, TagSet};
use sla::SlaPolicy;
use std::collections::HashMap;
use std::sync::Arc;

/// The policies in force: the trained classifier, the routing policy, the SLA policy, the
/// approval boundaries and the database ids of the routing policy's teams.
pub struct Policies {
    /// Shared with other loads of the same triage files (see `loader`).
    pub classifier: Arc<Classifier>,
    pub routing: RoutingPolicy,
    /// SLA targets and escalation ladders, checked against the routing policy's teams.
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

/// What triage says about one message, and what the routing policy makes of it.
#[derive(Debug, Clone)]
pub struct Triaged {
    pub classification: Classification,
    pub tags: TagSet,
    pub decision: Decision,
}

/// The tag values the other files may name, from the taxonomy.
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

impl Policies {
    /// Classifies a text (no context yet).
    pub fn classify(&self, text: &str) -> Classification {
        self.classifier.classify(text)
    }

    /// Applies the routing policy to a classification and the context the router knows.
    pub fn decide(&self, classification: Classification, context: Vec<String>) -> Triaged {
        let tags = tag_set(&classification, context);
        let decision = self.routing.decide(&tags);
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

/// The policies in force, swapped atomically on reload.
#[derive(Clone)]
pub struct PolicyHandle(Arc<ArcSwap<Policies>>);

impl PolicyHandle {
    pub fn new(policies: Policies) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(policies)))
    }

    pub fn current(&self) -> Arc<Policies> {
        self.0.load_full()
    }

    pub fn replace(&self, policies: Policies) {
        self.0.store(Arc::new(policies));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod test_support {
    use super::routing::RoutingPolicy;
    use super::{KnownTags, Policies, PolicySources};

    /// The shipped routing policy.
    pub(crate) fn default_policy_text() -> String {
        super::loader::DEFAULT_ROUTING.to_owned()
    }

    pub(crate) fn default_policy() -> RoutingPolicy {
        RoutingPolicy::from_toml(&default_policy_text(), &KnownTags::default_taxonomy())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every shipped file, read and validated (team ids left empty).
    pub(crate) fn default_policies() -> Policies {
        let texts = PolicySources::default().read().unwrap();
        Policies::build(&texts, 0).unwrap()
    }
}
