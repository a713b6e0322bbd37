//! The routing policy: `routing.toml` text → a validated [`RoutingPolicy`] → one
//! [`Decision`] per triaged message.
//!
//! This module owns the *configuration* of routing and the *case-level decision*: which
//! team owns a case, who watches it, its priority and urgency, whether a human must review
//! what is sent, which skills it needs and whether it is suppressed. Choosing an agent
//! inside the owning team belongs to [`super::select`]; opening hours arithmetic to
//! [`super::calendar`].
//!
//! ## Reading
//!
//! [`RoutingPolicy::from_toml`] refuses anything doubtful, with the line and column of the
//! offending text: TOML syntax, unknown keys, unknown teams, tag values that are not in the
//! triage taxonomy ([`KnownTags`]), unknown strategies, bad calendars, `outside_hours`
//! chains that loop. All semantic problems found are reported at once, in line order.
//!
//! ## Deciding
//!
//! [`RoutingPolicy::decide`] evaluates the `[[rules]]` in file order against a [`TagSet`]:
//!
//! - a rule matches when every condition of its `when` holds (AND across keys, OR within a
//!   list). Conditions look at the tags as triage produced them, never at what an earlier
//!   rule changed;
//! - the first matching rule that names an `owner` decides the owner; later owners are
//!   recorded as ignored. Without one, a low-confidence case goes to `review_team` and any
//!   other to `default_team`;
//! - watchers are the union of the matching rules' watchers, minus the owner;
//! - urgency starts at the classifier's and moves up, in file order, by each rule's
//!   `urgency` (at least this level) and `raise_urgency` (steps up, capped at the top);
//! - priority is the highest of the final urgency's priority (low→low, normal→medium,
//!   priority→high, immediate→urgent) and every `priority` a matching rule asks for;
//! - review is human when the classification has low confidence or any matching rule asks
//!   for a human; otherwise automation when a matching rule allows it; otherwise human;
//! - skills are the union of the matching rules' skills; the case is suppressed when a
//!   matching rule says so; a matching rule with `stop = true` ends the evaluation.
//!
//! Rules are compiled at load time: tag values become small integer ids and each list
//! condition a bit set, so matching a message against dozens of rules allocates nothing;
//! only matched rules produce (allocated) explanations.

use super::calendar::{Calendar, CalendarBuilder, weekday_key};
#[cfg(test)]
use super::problems::{Issue, edit_distance};
use super::problems::{KnownTags, PolicyError, Problems, is_identifier, suggest};
use chrono::Weekday;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;
use toml::Spanned;

mod compiled;
mod decision;
mod raw;
mod read;
mod teams;
#[cfg(test)]
mod tests;
mod types;

use compiled::*;
pub use decision::*;
use raw::*;
use read::*;
use teams::*;
pub use types::*;

// ---------------------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------------------

/// A validated routing policy. Cheap to share (`Arc`) and to query; replaced whole on
/// reload.
#[derive(Debug, Clone)]
pub struct RoutingPolicy {
    settings: Settings,
    noise: NoiseSettings,
    /// Sorted by id.
    teams: Vec<Team>,
    rules: Vec<Rule>,
    intents: Vocab,
    risks: Vocab,
    urgencies: Vocab,
    languages: Vocab,
    tones: Vocab,
    contexts: Vocab,
    /// Priority of each urgency level.
    urgency_priority: Vec<Priority>,
}

impl RoutingPolicy {
    /// Reads and validates a policy file against the triage taxonomy.
    pub fn from_toml(text: &str, known: &KnownTags) -> Result<RoutingPolicy, PolicyError> {
        let mut problems = Problems::new(text);
        let raw: RawPolicy = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                problems.at(span, err.message().trim().to_string());
                return Err(problems.into_error());
            }
        };
        if known.urgencies.is_empty() {
            problems.at(0..0, "the triage taxonomy has no urgency levels");
            return Err(problems.into_error());
        }

        let mut policy = RoutingPolicy {
            settings: Settings {
                default_team: String::new(),
                review_team: String::new(),
                repeat_contact_window_secs: 7 * 24 * 3600,
            },
            noise: NoiseSettings::default(),
            teams: Vec::new(),
            rules: Vec::new(),
            intents: Vocab::new("intent", &known.intents),
            risks: Vocab::new("risk", &known.risks),
            urgencies: Vocab::new("urgency", &known.urgencies),
            languages: Vocab::new("language", &known.languages),
            tones: Vocab::new("tone", &known.tones),
            contexts: Vocab::new("context", &known.contexts),
            urgency_priority: Vec::new(),
        };
        policy.urgency_priority = priorities_for(&policy.urgencies.names);

        let mut pending = read_teams(&policy, raw.teams, &mut problems);
        check_team_links(&mut pending, &mut problems);
        policy.teams = pending.into_iter().map(|p| p.team).collect();
        policy.teams.sort_by(|a, b| a.id.cmp(&b.id));

        match raw.settings {
            Some(settings) => policy.settings = read_settings(&policy, settings, &mut problems),
            None => problems.at(
                0..0,
                "missing [settings] section (it names at least `default_team`)",
            ),
        }
        if let Some(noise) = raw.noise {
            policy.noise = read_noise(noise, &mut problems);
        }
        policy.rules = read_rules(&policy, raw.rules, &mut problems);
        problems.finish()?;
        Ok(policy)
    }

    /// Why `risk` is not a risk of the taxonomy, or `None` when it is one.
    pub fn unknown_risk(&self, risk: &str) -> Option<String> {
        self.risks
            .id(risk)
            .is_none()
            .then(|| self.risks.unknown(risk))
    }

    /// Why `intent` is not an intent of the taxonomy, or `None` when it is one.
    pub fn unknown_intent(&self, intent: &str) -> Option<String> {
        self.intents
            .id(intent)
            .is_none()
            .then(|| self.intents.unknown(intent))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn noise(&self) -> &NoiseSettings {
        &self.noise
    }

    /// The team with this id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams
            .binary_search_by(|t| t.id.as_str().cmp(id))
            .ok()
            .and_then(|i| self.teams.get(i))
    }

    /// All teams, sorted by id.
    pub fn teams(&self) -> &[Team] {
        &self.teams
    }

    /// Iterates over the teams, sorted by id.
    pub fn iter_teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter()
    }

    /// The business-hours calendar of a team (`None` for an unknown team id).
    pub fn calendar(&self, team: &str) -> Option<&Calendar> {
        self.team(team).map(|t| &t.calendar)
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The urgency levels, lowest first.
    pub fn urgencies(&self) -> &[String] {
        &self.urgencies.names
    }

    /// The SLA priority an urgency level maps to (`None` for an unknown level).
    pub fn priority_for_urgency(&self, urgency: &str) -> Option<Priority> {
        self.urgencies
            .id(urgency)
            .and_then(|id| self.urgency_priority.get(id as usize).copied())
    }
}

/// SLA priority of each urgency level: by name for the usual names, else by rank.
fn priorities_for(urgencies: &[String]) -> Vec<Priority> {
    let n = urgencies.len();
    urgencies
        .iter()
        .enumerate()
        .map(|(i, name)| match name.as_str() {
            "low" => Priority::Low,
            "normal" | "medium" => Priority::Medium,
            "priority" | "high" => Priority::High,
            "immediate" | "urgent" | "critical" => Priority::Urgent,
            _ if n <= 1 => Priority::Medium,
            _ => {
                let rank = (i * 3 + (n - 1) / 2) / (n - 1);
                Priority::ALL[rank.min(3)]
            }
        })
        .collect()
}
