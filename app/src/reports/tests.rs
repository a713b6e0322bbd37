//! The property: random event histories folded by the projection, in random batches with
//! the case state stored between them, give the same rollups as a direct computation over
//! each case's raw events.

use super::fold::{CaseState, DIMENSIONS, Rollups, hour_of, is_duration, is_human, metric};
use super::hist::bucket_of;
use super::{ReportCalendar, fold_batch};
use crate::config::ReportSettings;
use crate::domain::Micros;
use crate::store::entities::conversation_event;
use crate::store::reports::CellKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const MINUTE: Micros = 60_000_000;

fn calendar(zone: &str) -> ReportCalendar {
    ReportCalendar::from_settings(&ReportSettings {
        enabled: true,
        time_zone: zone.into(),
        business_days: vec![
            "mon".into(),
            "tue".into(),
            "wed".into(),
            "thu".into(),
            "fri".into(),
        ],
        business_hours: "09:00-17:00".into(),
        batch_size: 100,
    })
    .unwrap()
}

/// A random history of one case: kinds, data, actors, at increasing instants.
fn history(rng: &mut StdRng, start: Micros) -> Vec<(String, Value, String, Micros)> {
    let mut at = start;
    let channel = ["meta-main", "twilio"][rng.gen_range(0..2)];
    let mut out = vec![(
        "created".to_string(),
        json!({ "channel_id": channel }),
        "customer".to_string(),
        at,
    )];
    for _ in 0..rng.gen_range(0..14) {
        // From seconds to days: crosses hour, day, weekend and DST edges.
        at += match rng.gen_range(0..4) {
            0 => rng.gen_range(1..120) * 1_000_000,
            1 => rng.gen_range(1..240) * MINUTE,
            2 => rng.gen_range(1..72) * 60 * MINUTE,
            _ => rng.gen_range(0..1_000_000),
        };
        let agent = rng.gen_range(1..4);
        let intent = ["order_status", "refund"][rng.gen_range(0..2)];
        let language = ["en", "es"][rng.gen_range(0..2)];
        let priority = ["low", "high", "urgent"][rng.gen_range(0..3)];
        let target = ["first_response", "resolution", "next_response"][rng.gen_range(0..3)];
        let (kind, data, actor) = match rng.gen_range(0..16) {
            0 | 1 => (
                "message_in",
                json!({ "kind": "text" }),
                "customer".to_string(),
            ),
            2 | 3 => (
                "message_out",
                json!({ "kind": "text" }),
                format!("agent:{agent}"),
            ),
            4 => (
                "message_out",
                json!({ "kind": "text" }),
                "automation".into(),
            ),
            5 => (
                "assigned",
                json!({ "agent_id": agent, "team_id": rng.gen_range(1..3) }),
                "router".into(),
            ),
            6 => (
                "triaged",
                json!({
                    "intents": [{ "label": intent, "confidence": 0.9 }],
                    "language": { "label": language, "confidence": 0.9 },
                    "decision": { "priority": priority },
                }),
                "router".into(),
            ),
            7 => (
                "status_changed",
                json!({ "from": "in_progress", "to": "resolved" }),
                [format!("agent:{agent}"), "system".into()][rng.gen_range(0..2)].clone(),
            ),
            8 => (
                "status_changed",
                json!({ "from": "in_progress", "to": "pending" }),
                format!("agent:{agent}"),
            ),
            9 => (
                "reopened",
                json!({ "from": "resolved", "to": "assigned" }),
                "customer".into(),
            ),
            10 => (
                "escalated",
                json!({ "trigger": "manual" }),
                format!("agent:{agent}"),
            ),
            11 => (
                "sla_breached",
                json!({ "target": target, "cycle": 0 }),
                "system".into(),
            ),
            12 => ("csat_sent", json!({}), "system".into()),
            13 => (
                "csat_answered",
                json!({ "score": rng.gen_range(1..6) }),
                "customer".into(),
            ),
            14 => ("message_held", json!({}), "automation".into()),
            _ => (
                ["message_approved", "message_rejected"][rng.gen_range(0..2)],
                json!({}),
                format!("agent:{agent}"),
            ),
        };
        out.push((kind.to_string(), data, actor, at));
    }
    out
}

/// The dimension values of a case after its first `upto` events (inclusive), read
/// directly from them.
fn dims_at(events: &[&conversation_event::Model], upto: usize) -> BTreeMap<&'static str, String> {
    let mut dims = BTreeMap::from([
        ("all", String::new()),
        ("team", "none".to_string()),
        ("agent", "none".to_string()),
        ("priority", "none".to_string()),
        ("intent", "none".to_string()),
        ("language", "none".to_string()),
    ]);
    let first: Value = serde_json::from_str(&events[0].data).unwrap();
    dims.insert("channel", first["channel_id"].as_str().unwrap().to_string());
    for e in &events[..=upto] {
        let data: Value = serde_json::from_str(&e.data).unwrap();
        match e.kind.as_str() {
            "assigned" => {
                dims.insert(
                    "agent",
                    data["agent_id"]
                        .as_i64()
                        .map_or("none".into(), |a| a.to_string()),
                );
                if let Some(team) = data["team_id"].as_i64() {
                    dims.insert("team", team.to_string());
                }
            }
            "triaged" => {
                dims.insert(
                    "priority",
                    data["decision"]["priority"].as_str().unwrap().into(),
                );
                dims.insert(
                    "intent",
                    data["intents"][0]["label"].as_str().unwrap().into(),
                );
                dims.insert(
                    "language",
                    data["language"]["label"].as_str().unwrap().into(),
                );
            }
            _ => {}
        }
    }
    dims
}

/// The rollups computed straight from each case's events, one metric at a time.
fn direct(calendar: &ReportCalendar, events: &[conversation_event::Model]) -> Rollups {
    let mut cases: BTreeMap<i64, Vec<&conversation_event::Model>> = BTreeMap::new();
    for e in events {
        cases.entry(e.conversation_id).or_default().push(e);
    }
    let mut rollups = Rollups::default();
    let mut put =
        |case: &[&conversation_event::Model], at_index: usize, name: &str, value: Option<i64>| {
            let at = case[at_index].created_at;
            for (dim, v) in dims_at(case, at_index) {
                assert!(DIMENSIONS.contains(&dim));
                let cell = rollups
                    .cells
                    .entry(CellKey {
                        metric: name.to_string(),
                        dim: dim.to_string(),
                        value: v,
                        hour: hour_of(calendar.zone, at),
                    })
                    .or_default();
                cell.count += 1;
                if let Some(value) = value {
                    cell.total += value;
                    if is_duration(name) {
                        cell.histogram[bucket_of(value)] += 1;
                    }
                }
            }
        };
    let business = &calendar.business;
    for case in cases.values() {
        let created = case[0].created_at;
        let data = |i: usize| -> Value { serde_json::from_str(&case[i].data).unwrap() };
        let human_out = |i: usize| case[i].kind == "message_out" && is_human(&case[i].actor);
        let resolved = |i: usize| case[i].kind == "status_changed" && data(i)["to"] == "resolved";
        let breached_before = |i: usize, target: &str| {
            (0..i).any(|j| case[j].kind == "sla_breached" && data(j)["target"] == target)
        };
        put(case, 0, metric::CREATED, None);
        if let Some(i) = (0..case.len()).find(|&i| human_out(i)) {
            let at = case[i].created_at;
            put(case, i, metric::FIRST_RESPONSE, Some(at - created));
            put(
                case,
                i,
                metric::FIRST_RESPONSE_BH,
                Some(business.open_micros_between(created, at)),
            );
            if !breached_before(i, "first_response") {
                put(case, i, metric::SLA_MET_FIRST_RESPONSE, None);
            }
        }
        for i in 0..case.len() {
            let at = case[i].created_at;
            if human_out(i) {
                let boundary = (0..i).rev().find(|&j| human_out(j) || resolved(j));
                let lower = boundary.map_or(0, |b| b + 1);
                let wait = (lower..i).find(|&j| {
                    matches!(case[j].kind.as_str(), "created" | "message_in" | "reopened")
                });
                if let Some(j) = wait {
                    let since = case[j].created_at;
                    put(case, i, metric::REPLY, Some(at - since));
                    put(
                        case,
                        i,
                        metric::REPLY_BH,
                        Some(business.open_micros_between(since, at)),
                    );
                }
            }
            if resolved(i) {
                put(case, i, metric::RESOLVED, None);
                put(case, i, metric::RESOLUTION, Some(at - created));
                put(
                    case,
                    i,
                    metric::RESOLUTION_BH,
                    Some(business.open_micros_between(created, at)),
                );
                if !breached_before(i, "resolution") {
                    put(case, i, metric::SLA_MET_RESOLUTION, None);
                }
                let replies = (0..i).filter(|&j| human_out(j)).count();
                if replies == 0 {
                    put(case, i, metric::RESOLVED_UNASSISTED, None);
                }
                if replies == 1 && !(0..i).any(|j| case[j].kind == "reopened") {
                    put(case, i, metric::RESOLVED_ONE_TOUCH, None);
                }
                if !is_human(&case[i].actor) {
                    put(case, i, metric::RESOLVED_AUTO, None);
                }
            }
            let simple = match case[i].kind.as_str() {
                "reopened" => Some(metric::REOPENED),
                "escalated" => Some(metric::ESCALATED),
                "csat_sent" => Some(metric::CSAT_SENT),
                "message_held" => Some(metric::HELD),
                "message_approved" => Some(metric::HELD_APPROVED),
                "message_rejected" => Some(metric::HELD_REJECTED),
                _ => None,
            };
            if let Some(name) = simple {
                put(case, i, name, None);
            }
            if case[i].kind == "csat_answered" {
                let score = data(i)["score"].as_i64().unwrap();
                put(case, i, metric::CSAT, Some(score));
                if score >= 4 {
                    put(case, i, metric::CSAT_POSITIVE, None);
                }
            }
            if case[i].kind == "sla_breached" {
                let target = data(i)["target"].as_str().unwrap().to_string();
                if !breached_before(i, &target) {
                    match target.as_str() {
                        "first_response" => put(case, i, metric::SLA_BREACHED_FIRST_RESPONSE, None),
                        "resolution" => put(case, i, metric::SLA_BREACHED_RESOLUTION, None),
                        _ => {}
                    }
                }
            }
        }
    }
    rollups
}

/// Folds in random batches, storing each case's state as JSON between batches, as the
/// projection does.
fn folded(
    rng: &mut StdRng,
    calendar: &ReportCalendar,
    events: &[conversation_event::Model],
) -> Rollups {
    let mut stored: BTreeMap<i64, String> = BTreeMap::new();
    let mut total = Rollups::default();
    let mut rest = events;
    while !rest.is_empty() {
        let n = rng.gen_range(1..=rest.len().min(40));
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let mut states: BTreeMap<i64, Option<CaseState>> = batch
            .iter()
            .filter_map(|e| {
                let text = stored.get(&e.conversation_id)?;
                Some((e.conversation_id, Some(serde_json::from_str(text).unwrap())))
            })
            .collect();
        total.merge(fold_batch(calendar, &mut states, batch));
        for (id, state) in states {
            if let Some(state) = state {
                stored.insert(id, serde_json::to_string(&state).unwrap());
            }
        }
    }
    total
}

#[test]
fn folding_random_histories_equals_computing_them_directly() {
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let zone = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"][seed as usize % 4];
        let calendar = calendar(zone);
        // Around the end of daylight saving time in New York and Berlin (2026-10-25/11-01).
        let start = 1_792_800_000_000_000 + rng.gen_range(0..14 * 24 * 60) * MINUTE;
        let mut timeline = Vec::new();
        for case in 1..=rng.gen_range(1..25i64) {
            let opened = start + rng.gen_range(0..3 * 24 * 60) * MINUTE;
            for (kind, data, actor, at) in history(&mut rng, opened) {
                timeline.push((at, case, kind, data, actor));
            }
        }
        // The log's order: by time (ids follow commits).
        timeline.sort_by_key(|t| (t.0, t.1));
        let events: Vec<conversation_event::Model> = timeline
            .into_iter()
            .enumerate()
            .map(
                |(i, (at, case, kind, data, actor))| conversation_event::Model {
                    id: i as i64 + 1,
                    conversation_id: case,
                    kind,
                    data: data.to_string(),
                    actor,
                    created_at: at,
                },
            )
            .collect();
        let expected = direct(&calendar, &events);
        let got = folded(&mut rng, &calendar, &events);
        assert!(!expected.cells.is_empty());
        assert_eq!(
            got.cells.keys().collect::<Vec<_>>(),
            expected.cells.keys().collect::<Vec<_>>(),
            "seed {seed}"
        );
        assert_eq!(got, expected, "seed {seed}");
    }
}

#[test]
fn hours_follow_the_configured_zone() {
    // 2026-03-02 10:40 UTC is 16:10 in Kolkata: its hour starts at 10:30 UTC.
    let at = 1_772_448_000_000_000;
    assert_eq!(hour_of(calendar("Asia/Kolkata").zone, at), at - 10 * MINUTE);
    assert_eq!(hour_of(calendar("UTC").zone, at), at - 40 * MINUTE);
}
