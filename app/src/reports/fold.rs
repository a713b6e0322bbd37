//! The projection's fold: one case's state and one event in, observations out.
//!
//! An observation is a number at an instant (a case created, a wait answered after so
//! long, a survey scored 4) under the case's dimensions as they are when it happens
//! (team, agent, channel, priority, intent, language). [`Rollups`] adds observations up
//! per local hour, metric and dimension value. The fold reads only event kinds, data and
//! actors, never the mutable rows, so a replay of the log gives the same rollups.

use super::hist::{BUCKETS, Histogram, bucket_of};
use crate::domain::Micros;
use crate::policy::calendar::Calendar;
use crate::store::reports::{CellKey, RollupCell};
use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every metric the projection keeps. Durations have a histogram; the rest count (and
/// `csat` sums its scores).
pub mod metric {
    pub const CREATED: &str = "created";
    pub const FIRST_RESPONSE: &str = "first_response";
    pub const FIRST_RESPONSE_BH: &str = "first_response_bh";
    pub const REPLY: &str = "reply";
    pub const REPLY_BH: &str = "reply_bh";
    pub const RESOLUTION: &str = "resolution";
    pub const RESOLUTION_BH: &str = "resolution_bh";
    pub const RESOLVED: &str = "resolved";
    /// Resolutions of cases no person ever replied to (automation or self-service).
    pub const RESOLVED_UNASSISTED: &str = "resolved_unassisted";
    /// Resolutions after exactly one human reply and no reopening.
    pub const RESOLVED_ONE_TOUCH: &str = "resolved_one_touch";
    /// Resolutions by the case clock (the system, not a person).
    pub const RESOLVED_AUTO: &str = "resolved_auto";
    pub const REOPENED: &str = "reopened";
    pub const ESCALATED: &str = "escalated";
    pub const SLA_MET_FIRST_RESPONSE: &str = "sla_met_first_response";
    pub const SLA_BREACHED_FIRST_RESPONSE: &str = "sla_breached_first_response";
    pub const SLA_MET_RESOLUTION: &str = "sla_met_resolution";
    pub const SLA_BREACHED_RESOLUTION: &str = "sla_breached_resolution";
    pub const CSAT_SENT: &str = "csat_sent";
    /// Answered surveys; `total` is the sum of the scores.
    pub const CSAT: &str = "csat";
    /// Answers of 4 or 5.
    pub const CSAT_POSITIVE: &str = "csat_positive";
    pub const HELD: &str = "held";
    pub const HELD_APPROVED: &str = "held_approved";
    pub const HELD_REJECTED: &str = "held_rejected";
}

/// The dimensions a figure can be broken down by (`all` has the one value `""`).
pub const DIMENSIONS: [&str; 7] = [
    "all", "team", "agent", "channel", "priority", "intent", "language",
];

/// Written for a dimension the case does not have (yet): no team, no agent.
pub const NONE: &str = "none";

/// What the fold remembers of a case between events (kept in `report_cases.state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    pub created_at: Micros,
    pub channel: String,
    pub team_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub priority: Option<String>,
    pub intent: Option<String>,
    pub language: Option<String>,
    /// The oldest customer message no person has answered yet.
    pub waiting_since: Option<Micros>,
    pub first_response_at: Option<Micros>,
    pub human_replies: u32,
    pub reopens: u32,
    pub resolved_at: Option<Micros>,
    /// SLA targets breached since the case was created.
    pub breached: Vec<String>,
}

impl CaseState {
    fn dimension(&self, dim: &str) -> String {
        let id = |v: Option<i64>| v.map_or_else(|| NONE.to_string(), |v| v.to_string());
        let text = |v: &Option<String>| v.clone().unwrap_or_else(|| NONE.to_string());
        match dim {
            "team" => id(self.team_id),
            "agent" => id(self.agent_id),
            "channel" => self.channel.clone(),
            "priority" => text(&self.priority),
            "intent" => text(&self.intent),
            "language" => text(&self.language),
            _ => String::new(),
        }
    }
}

/// One event as the fold reads it.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub id: i64,
    pub conversation_id: i64,
    pub kind: &'a str,
    pub data: &'a Value,
    pub actor: &'a str,
    pub at: Micros,
}

/// A person wrote it (an agent, or a token acting for someone).
pub fn is_human(actor: &str) -> bool {
    actor.starts_with("agent:") || actor.starts_with("token:")
}

/// One number at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub metric: &'static str,
    pub at: Micros,
    /// A duration (for metrics with a histogram) or a score.
    pub value: Option<i64>,
}

/// Applies one event to its case (created by `created`), returning what it adds to the
/// figures. Events of cases the projection never saw created are ignored.
pub fn apply(
    state: &mut Option<CaseState>,
    event: &Event<'_>,
    business: &Calendar,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut put = |metric: &'static str, value: Option<i64>| {
        out.push(Observation {
            metric,
            at: event.at,
            value,
        })
    };
    let at = event.at;
    if event.kind == "created" {
        *state = Some(CaseState {
            created_at: at,
            channel: event.data["channel_id"]
                .as_str()
                .unwrap_or(NONE)
                .to_string(),
            waiting_since: Some(at),
            ..CaseState::default()
        });
        put(metric::CREATED, None);
        return out;
    }
    let Some(case) = state.as_mut() else {
        return out;
    };
    match event.kind {
        "message_in" => {
            case.waiting_since.get_or_insert(at);
        }
        "message_out" if is_human(event.actor) => {
            if case.first_response_at.is_none() {
                case.first_response_at = Some(at);
                put(metric::FIRST_RESPONSE, Some(at - case.created_at));
                put(
                    metric::FIRST_RESPONSE_BH,
                    Some(business.open_micros_between(case.created_at, at)),
                );
                put(sla_outcome(case, "first_response"), None);
            }
            if let Some(since) = case.waiting_since.take() {
                put(metric::REPLY, Some(at - since));
                put(
                    metric::REPLY_BH,
                    Some(business.open_micros_between(since, at)),
                );
            }
            case.human_replies += 1;
        }
        "assigned" => {
            case.agent_id = event.data["agent_id"].as_i64();
            if let Some(team) = event.data["team_id"].as_i64() {
                case.team_id = Some(team);
            }
        }
        "owner_changed" => {
            if let Some(team) = event.data["to_team_id"].as_i64() {
                case.team_id = Some(team);
            }
        }
        "triaged" => {
            if let Some(p) = event.data["decision"]["priority"].as_str() {
                case.priority = Some(p.to_string());
            }
            if let Some(intent) = event.data["intents"][0]["label"].as_str() {
                case.intent = Some(intent.to_string());
            }
            if let Some(language) = event.data["language"]["label"].as_str() {
                case.language = Some(language.to_string());
            }
        }
        "status_changed" if event.data["to"] == "resolved" => {
            case.resolved_at = Some(at);
            case.waiting_since = None;
            put(metric::RESOLVED, None);
            put(metric::RESOLUTION, Some(at - case.created_at));
            put(
                metric::RESOLUTION_BH,
                Some(business.open_micros_between(case.created_at, at)),
            );
            put(sla_outcome(case, "resolution"), None);
            if case.human_replies == 0 {
                put(metric::RESOLVED_UNASSISTED, None);
            }
            if case.human_replies == 1 && case.reopens == 0 {
                put(metric::RESOLVED_ONE_TOUCH, None);
            }
            if !is_human(event.actor) {
                put(metric::RESOLVED_AUTO, None);
            }
        }
        "reopened" => {
            case.reopens += 1;
            case.resolved_at = None;
            case.waiting_since.get_or_insert(at);
            put(metric::REOPENED, None);
        }
        "escalated" => put(metric::ESCALATED, None),
        "sla_breached" => {
            if let Some(target) = event.data["target"].as_str()
                && !case.breached.iter().any(|t| t == target)
            {
                case.breached.push(target.to_string());
                match target {
                    "first_response" => put(metric::SLA_BREACHED_FIRST_RESPONSE, None),
                    "resolution" => put(metric::SLA_BREACHED_RESOLUTION, None),
                    _ => {}
                }
            }
        }
        "csat_sent" => put(metric::CSAT_SENT, None),
        "csat_answered" => {
            if let Some(score) = event.data["score"].as_i64() {
                put(metric::CSAT, Some(score));
                if score >= 4 {
                    put(metric::CSAT_POSITIVE, None);
                }
            }
        }
        "message_held" => put(metric::HELD, None),
        "message_approved" => put(metric::HELD_APPROVED, None),
        "message_rejected" => put(metric::HELD_REJECTED, None),
        _ => {}
    }
    out
}

/// Met, unless the target was breached before (a breach is counted when it happens; the
/// met side when the promise is kept), so each case counts once per target.
fn sla_outcome(case: &CaseState, target: &str) -> &'static str {
    let breached = case.breached.iter().any(|t| t == target);
    match (target, breached) {
        ("first_response", false) => metric::SLA_MET_FIRST_RESPONSE,
        ("first_response", true) => "",
        ("resolution", false) => metric::SLA_MET_RESOLUTION,
        _ => "",
    }
}

/// Metrics whose value is a duration, kept as a histogram.
pub fn is_duration(metric: &str) -> bool {
    matches!(
        metric,
        metric::FIRST_RESPONSE
            | metric::FIRST_RESPONSE_BH
            | metric::REPLY
            | metric::REPLY_BH
            | metric::RESOLUTION
            | metric::RESOLUTION_BH
    )
}

/// The start of the local hour holding `at`, as an instant (the rollups' hour key).
pub fn hour_of(zone: Tz, at: Micros) -> Micros {
    let local = zone.timestamp_micros(at).single().map_or(0, |t| {
        i64::from(t.minute()) * 60_000_000
            + i64::from(t.second()) * 1_000_000
            + i64::from(t.nanosecond() / 1000)
    });
    at - local
}

/// Observations added up per (metric, dimension, value, local hour).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollups {
    pub cells: BTreeMap<CellKey, RollupCell>,
}

impl Rollups {
    pub fn add(&mut self, zone: Tz, case: &CaseState, observation: &Observation) {
        if observation.metric.is_empty() {
            return;
        }
        let hour = hour_of(zone, observation.at);
        for dim in DIMENSIONS {
            let key = CellKey {
                metric: observation.metric.to_string(),
                dim: dim.to_string(),
                value: case.dimension(dim),
                hour,
            };
            let cell = self.cells.entry(key).or_default();
            cell.count += 1;
            if let Some(value) = observation.value {
                cell.total += value;
                if is_duration(observation.metric) {
                    cell.histogram[bucket_of(value)] += 1;
                }
            }
        }
    }

    pub fn merge(&mut self, other: Rollups) {
        for (key, cell) in other.cells {
            self.cells.entry(key).or_default().merge(&cell);
        }
    }
}

/// An empty histogram.
pub fn empty_histogram() -> Histogram {
    [0; BUCKETS]
}
