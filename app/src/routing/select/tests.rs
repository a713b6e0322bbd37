#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::policy::KnownTags;
use chrono::TimeZone;

const MIN: i64 = 60 * MICROS_PER_SECOND;

fn madrid(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono_tz::Europe::Madrid
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .timestamp_micros()
}

/// Wednesday 2026-06-17 10:00 in Madrid: every team with office hours is open.
fn open_time() -> i64 {
    madrid(2026, 6, 17, 10, 0)
}

/// Saturday 2026-06-20 10:00 in Madrid.
fn weekend() -> i64 {
    madrid(2026, 6, 20, 10, 0)
}

const POLICY: &str = r#"
[settings]
default_team = "care"

[teams.care]
strategy = "round_robin"
vip_queue = "vip"

[teams.balanced]
strategy = "load_balanced"

[teams.skills]
strategy = "skill_based"
skills = ["refunds", "chargebacks"]

[teams.lang]
strategy = "language_based"
languages = ["en", "ar"]

[teams.vip]
strategy = "vip"

[teams.vip_open]
strategy = "vip"
senior_only_for_vip = false

[teams.finance]
strategy = "load_balanced"
time_zone = "Europe/Madrid"
outside_hours = "team:finance_apac"
[teams.finance.hours]
mon = ["09:00-13:00", "14:00-18:00"]
wed = ["09:00-13:00", "14:00-18:00"]

[teams.finance_apac]
strategy = "load_balanced"
time_zone = "Asia/Singapore"
outside_hours = "team:finance_us"
[teams.finance_apac.hours]
sat = ["09:00-18:00"]

[teams.finance_us]
strategy = "load_balanced"
time_zone = "America/New_York"
outside_hours = "bot"
[teams.finance_us.hours]
sat = ["09:00-18:00"]

[teams.night]
time_zone = "Europe/Madrid"
outside_hours = "bot"
[teams.night.hours]
mon = ["22:00-24:00"]
"#;

fn policy() -> RoutingPolicy {
    RoutingPolicy::from_toml(POLICY, &KnownTags::default_taxonomy())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn agent(id: i64, team: &str) -> AgentView {
    AgentView {
        id,
        name: format!("agent{id}"),
        team: team.to_string(),
        skills: Vec::new(),
        languages: vec!["en".to_string()],
        capacity: 5,
        load: 0,
        presence: Presence::Online,
        senior: false,
        last_assigned_at: 0,
    }
}

fn needs() -> CaseNeeds {
    CaseNeeds::default()
}

fn report(outcome: &RouteOutcome, id: i64) -> &CandidateReport {
    outcome
        .candidates
        .iter()
        .find(|c| c.agent_id == id)
        .unwrap()
}

fn has(reasons: &[String], needle: &str) -> bool {
    reasons.iter().any(|r| r.contains(needle))
}

#[test]
fn round_robin_takes_turns() {
    let p = policy();
    let now = open_time();
    let mut agents: Vec<AgentView> = (1..=3).map(|i| agent(i, "care")).collect();
    agents[0].last_assigned_at = now - 5 * MIN;
    agents[1].last_assigned_at = now - 30 * MIN;
    agents[2].last_assigned_at = now - 30 * MIN;
    let out = route(&p, "care", &needs(), &agents, now);
    // Agents 2 and 3 tie on the turn; the lower id wins.
    assert_eq!(out.action, RouteAction::Assign(2));
    assert_eq!(out.team, "care");
    assert!(has(&report(&out, 2).reasons, "round-robin turn"));
    assert!(has(
        &report(&out, 1).reasons,
        "not its turn; agent2 was assigned less recently (30 min ago vs 5 min ago)"
    ));
    assert!(has(&report(&out, 3).reasons, "same turn as agent2"));
    assert!(report(&out, 2).chosen);
    assert_eq!(report(&out, 2).score, 30.0);
    // After agent 2 takes the case, agent 3 is next, then agent 1.
    agents[1].last_assigned_at = now;
    assert_eq!(
        route(&p, "care", &needs(), &agents, now).action,
        RouteAction::Assign(3)
    );
    agents[2].last_assigned_at = now;
    assert_eq!(
        route(&p, "care", &needs(), &agents, now).action,
        RouteAction::Assign(1)
    );
}

#[test]
fn base_eligibility() {
    let p = policy();
    let now = open_time();
    let mut agents: Vec<AgentView> = (1..=4).map(|i| agent(i, "care")).collect();
    agents[0].presence = Presence::Offline;
    agents[1].presence = Presence::Away;
    agents[2].load = 5;
    agents.push(agent(9, "balanced"));
    let out = route(&p, "care", &needs(), &agents, now);
    assert_eq!(out.action, RouteAction::Assign(4));
    assert_eq!(out.candidates.len(), 4, "only agents of the final team");
    assert_eq!(report(&out, 1).reasons, vec!["offline"]);
    assert_eq!(report(&out, 2).reasons, vec!["away"]);
    assert_eq!(report(&out, 3).reasons, vec!["at capacity 5/5"]);
    assert!(!report(&out, 3).eligible);
    assert_eq!(report(&out, 3).score, 0.0);
    agents[3].load = 7;
    agents[3].capacity = 7;
    let out = route(&p, "care", &needs(), &agents, now);
    assert_eq!(
        out.action,
        RouteAction::Queue {
            reason:
                "no online agent with capacity in care (4 agents: 1 offline, 1 away, 2 at capacity)"
                    .into()
        }
    );
    assert!(has(&out.steps, "no online agent with capacity in care"));
    let out = route(&p, "balanced", &needs(), &[], now);
    assert_eq!(
        out.action,
        RouteAction::Queue {
            reason: "no agent in balanced".into()
        }
    );
}

#[test]
fn load_balanced_prefers_free_capacity() {
    let p = policy();
    let now = open_time();
    let mut a = agent(1, "balanced");
    a.capacity = 5;
    a.load = 3; // 2 free
    let mut b = agent(2, "balanced");
    b.capacity = 3;
    b.load = 0; // 3 free
    let mut c = agent(3, "balanced");
    c.capacity = 6;
    c.load = 3; // 3 free, half
    let out = route(
        &p,
        "balanced",
        &needs(),
        &[a.clone(), b.clone(), c.clone()],
        now,
    );
    assert_eq!(out.action, RouteAction::Assign(2));
    assert!(has(
        &report(&out, 2).reasons,
        "most free capacity (3 of 3 free)"
    ));
    assert!(has(
        &report(&out, 1).reasons,
        "less free capacity (2 free vs 3)"
    ));
    assert!(has(
        &report(&out, 3).reasons,
        "smaller share of capacity free (3/6 vs 3/3)"
    ));
    assert_eq!(report(&out, 2).score, 4.0);
    assert_eq!(report(&out, 3).score, 3.5);
    // Same free capacity and share: least recently assigned, then lowest id.
    let mut d = agent(4, "balanced");
    d.capacity = 3;
    d.last_assigned_at = now - MIN;
    b.last_assigned_at = now - 10 * MIN;
    let out = route(&p, "balanced", &needs(), &[d.clone(), b.clone()], now);
    assert_eq!(out.action, RouteAction::Assign(2));
    assert!(has(&report(&out, 4).reasons, "assigned less recently"));
    d.last_assigned_at = b.last_assigned_at;
    let out = route(&p, "balanced", &needs(), &[d, b], now);
    assert_eq!(out.action, RouteAction::Assign(2));
    assert!(has(&report(&out, 4).reasons, "tied with agent2"));
}

#[test]
fn skill_based_requires_every_skill() {
    let p = policy();
    let now = open_time();
    let mut a = agent(1, "skills");
    a.skills = vec!["refunds".into()];
    let mut b = agent(2, "skills");
    b.skills = vec!["refunds".into(), "chargebacks".into()];
    b.load = 4;
    let case = CaseNeeds {
        skills: vec!["refunds".into(), "chargebacks".into()],
        ..needs()
    };
    let out = route(&p, "skills", &case, &[a.clone(), b.clone()], now);
    assert_eq!(out.action, RouteAction::Assign(2));
    assert_eq!(report(&out, 1).reasons, vec!["lacks skill chargebacks"]);
    assert!(has(
        &report(&out, 2).reasons,
        "has skills refunds, chargebacks"
    ));
    b.load = 5;
    let out = route(&p, "skills", &case, &[a, b], now);
    match &out.action {
        RouteAction::Queue { reason } => assert_eq!(
            reason,
            "no online agent with capacity in skills has skills refunds, chargebacks (1 available agents do not)"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_strategies_prefer_skills_and_language() {
    let p = policy();
    let now = open_time();
    let mut a = agent(1, "balanced");
    a.capacity = 10;
    let mut b = agent(2, "balanced");
    b.languages = vec!["ar".into()];
    let case = CaseNeeds {
        language: Some("ar".into()),
        ..needs()
    };
    let out = route(&p, "balanced", &case, &[a.clone(), b.clone()], now);
    assert_eq!(out.action, RouteAction::Assign(2));
    assert!(has(
        &report(&out, 1).reasons,
        "does not speak ar; agent2 does"
    ));
    assert!(report(&out, 1).score > report(&out, 2).score);
    // Nobody available speaks it: someone still takes the case.
    b.presence = Presence::Offline;
    let out = route(&p, "balanced", &case, &[a, b], now);
    assert_eq!(out.action, RouteAction::Assign(1));
    assert!(has(
        &report(&out, 1).reasons,
        "does not speak ar (no eligible agent who does)"
    ));
}

#[test]
fn language_based_requires_the_language() {
    let p = policy();
    let now = open_time();
    let mut a = agent(1, "lang");
    a.capacity = 10;
    let mut b = agent(2, "lang");
    b.languages = vec!["ar".into(), "en".into()];
    b.load = 4;
    let case = CaseNeeds {
        language: Some("ar".into()),
        ..needs()
    };
    let out = route(&p, "lang", &case, &[a.clone(), b.clone()], now);
    assert_eq!(out.action, RouteAction::Assign(2));
    assert_eq!(report(&out, 1).reasons, vec!["does not speak ar"]);
    assert!(has(&report(&out, 2).reasons, "speaks ar"));
    // Unknown language: anyone; the most free capacity wins.
    let out = route(&p, "lang", &needs(), &[a.clone(), b.clone()], now);
    assert_eq!(out.action, RouteAction::Assign(1));
    // A language nobody available speaks: queue, with the reason.
    let case = CaseNeeds {
        language: Some("hi".into()),
        ..needs()
    };
    let out = route(&p, "lang", &case, &[a, b], now);
    assert!(matches!(&out.action, RouteAction::Queue { reason } if reason.contains("speaks hi")));
    assert!(has(&out.steps, "lang does not list language hi"));
}

#[test]
fn vip_cases_go_to_the_vip_queue_and_seniors() {
    let p = policy();
    let now = open_time();
    let mut agents = vec![agent(1, "care"), agent(2, "vip"), agent(3, "vip")];
    agents[2].senior = true;
    agents[2].load = 4;
    let vip = CaseNeeds {
        vip: true,
        ..needs()
    };
    let out = route(&p, "care", &vip, &agents, now);
    assert_eq!(out.team, "vip");
    assert_eq!(out.action, RouteAction::Assign(3));
    assert!(has(&out.steps, "VIP case: care sends VIP cases to vip"));
    assert_eq!(out.candidates.len(), 2);
    assert!(has(&report(&out, 2).reasons, "not senior (VIP case)"));
    assert!(has(&report(&out, 3).reasons, "senior (VIP case)"));
    // Non-VIP cases in a vip team are load balanced.
    let out = route(&p, "vip", &needs(), &agents, now);
    assert_eq!(out.action, RouteAction::Assign(2));
    // No senior available: queue.
    agents[2].presence = Presence::Away;
    let out = route(&p, "care", &vip, &agents, now);
    assert!(
        matches!(&out.action, RouteAction::Queue { reason } if reason.contains("is senior (VIP case)")),
        "{out:?}"
    );
    // Without senior_only_for_vip, seniors are preferred but not required.
    let mut open = vec![agent(5, "vip_open"), agent(6, "vip_open")];
    open[1].senior = true;
    open[1].load = 4;
    let out = route(&p, "vip_open", &vip, &open, now);
    assert_eq!(out.action, RouteAction::Assign(6));
    assert!(has(
        &report(&out, 5).reasons,
        "not senior; agent6 is (VIP case)"
    ));
    open[1].presence = Presence::Offline;
    assert_eq!(
        route(&p, "vip_open", &vip, &open, now).action,
        RouteAction::Assign(5)
    );
}

#[test]
fn closed_team_follows_the_outside_hours_chain() {
    let p = policy();
    let agents = vec![
        agent(1, "finance"),
        agent(2, "finance_apac"),
        agent(3, "finance_us"),
    ];
    // Saturday 10:00 in Madrid = 16:00 in Singapore: finance_apac is open.
    let out = route(&p, "finance", &needs(), &agents, weekend());
    assert_eq!(out.team, "finance_apac");
    assert_eq!(out.action, RouteAction::Assign(2));
    assert_eq!(
        out.steps[0],
        "finance is closed (Europe/Madrid, opens Mon 09:00); routed to finance_apac which is open"
    );
    // Saturday 20:00 in Madrid: Singapore closed (02:00 Sunday), New York open (14:00).
    let evening = madrid(2026, 6, 20, 20, 0);
    let out = route(&p, "finance", &needs(), &agents, evening);
    assert_eq!(out.team, "finance_us");
    assert_eq!(out.action, RouteAction::Assign(3));
    assert!(out.steps[1].starts_with("finance_apac is closed (Asia/Singapore"));
    assert!(out.steps[1].ends_with("routed to finance_us which is open"));
    // Sunday 10:00 in Madrid: everything closed; finance_us says bot: held on finance.
    let sunday = madrid(2026, 6, 21, 10, 0);
    let out = route(&p, "finance", &needs(), &agents, sunday);
    assert_eq!(out.team, "finance");
    match &out.action {
        RouteAction::HoldForBot { reason } => {
            assert!(
                reason.starts_with(
                    "finance is closed (Europe/Madrid, opens Mon 09:00); finance_apac is closed"
                ),
                "{reason}"
            );
            assert!(
                reason.ends_with("held for automation until finance opens"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.candidates.len(), 1);
    assert!(!out.candidates[0].eligible);
    assert!(has(
        &out.candidates[0].reasons,
        "not assigned: finance is closed"
    ));
    // Open: no redirection at all.
    let out = route(&p, "finance", &needs(), &agents, open_time());
    assert_eq!(out.team, "finance");
    assert_eq!(out.action, RouteAction::Assign(1));
}

#[test]
fn closed_team_queues_or_holds() {
    let text = POLICY.replace(
        "outside_hours = \"team:finance_apac\"",
        "outside_hours = \"queue\"",
    );
    let p = RoutingPolicy::from_toml(&text, &KnownTags::default_taxonomy()).unwrap();
    let agents = vec![agent(1, "finance")];
    let out = route(&p, "finance", &needs(), &agents, weekend());
    assert_eq!(
        out.action,
        RouteAction::Queue {
            reason: "finance is closed (Europe/Madrid, opens Mon 09:00); queued until it opens"
                .into()
        }
    );
    let out = route(
        &policy(),
        "night",
        &needs(),
        &[agent(7, "night")],
        weekend(),
    );
    assert!(
        matches!(&out.action, RouteAction::HoldForBot { reason } if reason.contains("opens Mon 22:00"))
    );
    // Far openings carry the date.
    let christmas = POLICY.replace(
        "outside_hours = \"team:finance_apac\"",
        "outside_hours = \"queue\"\nholidays = [\"2026-06-22\", \"2026-06-24\"]",
    );
    let p = RoutingPolicy::from_toml(&christmas, &KnownTags::default_taxonomy()).unwrap();
    let out = route(&p, "finance", &needs(), &agents, weekend());
    assert!(
        matches!(&out.action, RouteAction::Queue { reason } if reason.contains("opens Mon 2026-06-29 09:00")),
        "{out:?}"
    );
}

#[test]
fn unknown_team_queues() {
    let out = route(
        &policy(),
        "nowhere",
        &needs(),
        &[agent(1, "nowhere")],
        open_time(),
    );
    assert!(
        matches!(&out.action, RouteAction::Queue { reason } if reason.contains("not in the routing policy"))
    );
    assert_eq!(out.candidates.len(), 1);
}

#[test]
fn outcome_serialises_and_is_deterministic() {
    let p = policy();
    let agents: Vec<AgentView> = (1..=20)
        .map(|i| {
            let mut a = agent(i, "balanced");
            a.load = (i % 4) as u32;
            a.last_assigned_at = open_time() - i * MIN;
            a
        })
        .collect();
    let first = route(&p, "balanced", &needs(), &agents, open_time());
    for _ in 0..5 {
        assert_eq!(route(&p, "balanced", &needs(), &agents, open_time()), first);
    }
    let json = serde_json::to_value(&first).unwrap();
    // Most free capacity (load 0: agents 4, 8, ..., 20), then least recently assigned.
    assert_eq!(json["action"]["assign"], 20);
    assert_eq!(json["candidates"].as_array().unwrap().len(), 20);
    let back: RouteOutcome = serde_json::from_value(json).unwrap();
    assert_eq!(back, first);
    let queue = serde_json::to_value(RouteAction::Queue { reason: "r".into() }).unwrap();
    assert_eq!(queue["queue"]["reason"], "r");
}

#[test]
fn needs_from_a_decision() {
    let p = crate::policy::test_support::default_policy();
    let tags = TagSet {
        intents: vec![crate::policy::routing::Scored::new("account_access", 0.9)],
        urgency: "normal".into(),
        language: "ar".into(),
        context: vec!["vip_customer".into()],
        ..TagSet::default()
    };
    let decision = p.decide(&tags);
    let case = CaseNeeds::for_case(&decision, &tags);
    assert_eq!(case.language.as_deref(), Some("ar"));
    assert!(case.vip);
    assert_eq!(case.skills, vec!["identity_verification"]);
}

#[test]
fn default_policy_routes_vip_at_night_to_tier1() {
    let p = crate::policy::test_support::default_policy();
    let mut senior = agent(1, "vip_desk");
    senior.senior = true;
    let agents = vec![senior, agent(2, "tier1_care")];
    let vip = CaseNeeds {
        vip: true,
        language: Some("en".into()),
        ..needs()
    };
    // Wednesday 12:00 Dubai: the VIP desk is open.
    let noon = chrono_tz::Asia::Dubai
        .with_ymd_and_hms(2026, 6, 17, 12, 0, 0)
        .single()
        .unwrap()
        .timestamp_micros();
    let out = route(&p, "tier1_care", &vip, &agents, noon);
    assert_eq!(out.action, RouteAction::Assign(1));
    // 23:00 Dubai: closed; its outside_hours sends the case back to tier1_care.
    let night = noon + 11 * 60 * MIN;
    let out = route(&p, "tier1_care", &vip, &agents, night);
    assert_eq!(out.team, "tier1_care");
    assert_eq!(out.action, RouteAction::Assign(2));
    assert!(has(
        &out.steps,
        "vip_desk is closed (Asia/Dubai, opens Thu 08:00); routed to tier1_care which is open"
    ));
}

fn ago(at: i64, now: i64) -> String {
    let mut out = String::new();
    write_ago(&mut out, at, now);
    out
}

#[test]
fn numbers_print_in_decimal() {
    for n in [0, 7, 10, 59, 1234567, i64::MAX] {
        let mut out = String::new();
        push_number(&mut out, n);
        assert_eq!(out, n.to_string());
    }
}

#[test]
fn ago_formats() {
    let now = 10_000 * 60 * MIN;
    assert_eq!(ago(0, now), "never assigned");
    assert_eq!(ago(now, now), "just now");
    assert_eq!(ago(now - 12 * MIN, now), "12 min ago");
    assert_eq!(ago(now - 185 * MIN, now), "3 h 5 min ago");
    assert_eq!(ago(now - 3 * 1440 * MIN, now), "3 d ago");
}

/// Timing of `decide` and `route`, for information (no assertion). Run with
/// `cargo test --release -- --ignored --nocapture bench_`. Reports the best of 40
/// batches, which filters out the noise of a shared machine.
#[test]
#[ignore]
fn bench_decide_and_route() {
    use crate::policy::routing::Scored;
    use std::hint::black_box;
    use std::time::{Duration, Instant};
    fn best_of(rounds: u32, mut f: impl FnMut()) -> Duration {
        (0..40)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..rounds {
                    f();
                }
                start.elapsed() / rounds
            })
            .min()
            .unwrap()
    }
    let p = crate::policy::test_support::default_policy();
    let busy = TagSet {
        intents: vec![
            Scored::new("billing_complaint", 0.91),
            Scored::new("refund_request", 0.4),
        ],
        risks: vec![Scored::new("churn_risk", 0.6)],
        urgency: "normal".into(),
        language: "es".into(),
        tones: vec!["distressed".into()],
        context: vec!["repeat_contact".into()],
        low_confidence: false,
    };
    let matched = p.decide(&busy).matched.len();
    let t = best_of(5_000, || {
        black_box(p.decide(black_box(&busy)));
    });
    println!(
        "decide ({} rules, {matched} matched): {t:?}",
        p.rules().len()
    );
    let simple = TagSet {
        intents: vec![Scored::new("order_tracking", 0.9)],
        urgency: "normal".into(),
        language: "en".into(),
        ..TagSet::default()
    };
    let t = best_of(5_000, || {
        black_box(p.decide(black_box(&simple)));
    });
    println!("decide (order_tracking, 1 matched): {t:?}");

    let now = open_time();
    let langs = ["en", "es", "pt", "ar", "hi", "id"];
    let agents: Vec<AgentView> = (0..200)
        .map(|i| AgentView {
            id: i,
            name: format!("Agent {i}"),
            team: "tier1_care".into(),
            skills: vec![
                "orders".into(),
                if i % 3 == 0 {
                    "identity_verification".into()
                } else {
                    "returns".into()
                },
            ],
            languages: vec!["en".into(), langs[(i % 6) as usize].into()],
            capacity: 5,
            load: (i % 6) as u32,
            presence: if i % 7 == 0 {
                Presence::Away
            } else {
                Presence::Online
            },
            senior: i % 10 == 0,
            last_assigned_at: now - i * MIN,
        })
        .collect();
    let case = CaseNeeds {
        language: Some("ar".into()),
        skills: vec!["identity_verification".into()],
        vip: false,
    };
    let t = best_of(500, || {
        black_box(route(&p, "tier1_care", &case, black_box(&agents), now));
    });
    println!("route (200 agents, load_balanced): {t:?}");
    let finance: Vec<AgentView> = agents
        .iter()
        .cloned()
        .map(|mut a| {
            a.team = "finance".into();
            a.skills = vec!["billing".into()];
            a
        })
        .collect();
    let case = CaseNeeds {
        language: Some("es".into()),
        skills: vec!["billing".into()],
        vip: false,
    };
    let t = best_of(500, || {
        black_box(route(&p, "finance", &case, black_box(&finance), now));
    });
    println!("route (200 agents, skill_based): {t:?}");
    let rr: Vec<AgentView> = agents
        .iter()
        .cloned()
        .map(|mut a| {
            a.team = "engineering_incident".into();
            a
        })
        .collect();
    let t = best_of(500, || {
        black_box(route(
            &p,
            "engineering_incident",
            &needs(),
            black_box(&rr),
            now,
        ));
    });
    println!("route (200 agents, round_robin): {t:?}");
}
