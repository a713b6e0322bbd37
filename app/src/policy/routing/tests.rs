#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn known() -> KnownTags {
    KnownTags::default_taxonomy()
}

use crate::policy::test_support::{default_policy, default_policy_text};

fn tags(intents: &[(&str, f32)], urgency: &str) -> TagSet {
    TagSet {
        intents: intents.iter().map(|(l, c)| Scored::new(l, *c)).collect(),
        urgency: urgency.to_string(),
        language: "en".to_string(),
        ..TagSet::default()
    }
}

const SMALL: &str = r#"
[settings]
default_team = "care"
review_team = "review"

[teams.care]
strategy = "round_robin"
languages = ["en", "es"]
skills = ["retention"]

[teams.review]
strategy = "load_balanced"

[teams.finance]
strategy = "skill_based"
skills = ["refunds", "billing"]
time_zone = "Europe/Madrid"
holidays = ["2026-12-25"]
[teams.finance.hours]
mon = ["09:00-13:00", "14:00-18:00"]

[teams.legal]
strategy = "round_robin"

[[rules]]
name = "billing to finance"
when = { intents = ["billing_complaint", "refund_request"] }
then = { owner = "finance", review = "human", skills = ["billing"] }

[[rules]]
name = "legal threat"
when = { risks = ["legal_threat"], min_confidence = 0.5 }
then = { owner = "legal", watchers = ["finance", "care"], urgency = "immediate", review = "human" }

[[rules]]
name = "repeat"
when = { context = ["repeat_contact"] }
then = { raise_urgency = 1, watchers = ["legal"] }

[[rules]]
name = "tracking by bot"
when = { intents = ["order_tracking"] }
then = { review = "automation", priority = "low" }

[[rules]]
name = "spanish vip"
when = { languages = ["es"], context = ["vip_customer"] }
then = { priority = "high", skills = ["retention"] }

[[rules]]
name = "thanks"
when = { intents = ["greeting_or_thanks"], urgency_at_least = "low" }
then = { suppress = "nothing to do", stop = true }

[[rules]]
name = "after stop"
when = { intents = ["greeting_or_thanks"] }
then = { owner = "legal" }
"#;

fn small() -> RoutingPolicy {
    RoutingPolicy::from_toml(SMALL, &known()).unwrap_or_else(|e| panic!("{e}"))
}

/// `SMALL` with `from` replaced by `to` (which must occur).
fn small_with(from: &str, to: &str) -> Result<RoutingPolicy, PolicyError> {
    assert!(SMALL.contains(from), "{from}");
    RoutingPolicy::from_toml(&SMALL.replacen(from, to, 1), &known())
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn single(err: PolicyError) -> Issue {
    assert_eq!(err.issues.len(), 1, "{err}");
    err.issues.into_iter().next().unwrap()
}

// ---- reading ----

#[test]
fn reads_a_small_policy() {
    let p = small();
    assert_eq!(p.settings().default_team, "care");
    assert_eq!(p.settings().review_team, "review");
    assert_eq!(p.settings().repeat_contact_window_secs, 7 * 24 * 3600);
    assert_eq!(p.noise(), &NoiseSettings::default());
    let ids: Vec<&str> = p.iter_teams().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["care", "finance", "legal", "review"]);
    let finance = p.team("finance").unwrap();
    assert_eq!(finance.strategy, Strategy::SkillBased);
    assert_eq!(finance.name, "finance");
    assert_eq!(finance.outside_hours, OutsideHours::Queue);
    assert_eq!(finance.line, line_of(SMALL, "[teams.finance]"));
    assert_eq!(
        p.calendar("finance").unwrap().time_zone_name(),
        "Europe/Madrid"
    );
    assert!(p.calendar("care").unwrap().is_always_open());
    assert!(p.calendar("nope").is_none());
    assert!(p.team("nope").is_none());
    assert_eq!(p.rules().len(), 7);
    assert_eq!(p.rules()[0].name(), "billing to finance");
    assert_eq!(p.rules()[0].line(), line_of(SMALL, "[[rules]]"));
    assert_eq!(p.rules()[0].owner(), Some("finance"));
    assert!(p.rules()[5].stops());
    assert_eq!(p.priority_for_urgency("priority"), Some(Priority::High));
}

#[test]
fn syntax_error_has_its_line() {
    let text = "[settings]\ndefault_team = \"care\n\n[teams.care]\n";
    let issue = single(RoutingPolicy::from_toml(text, &known()).unwrap_err());
    assert_eq!(issue.line, 2);
    let text = SMALL.replace("strategy = \"skill_based\"", "strategy = skill_based");
    let issue = single(RoutingPolicy::from_toml(&text, &known()).unwrap_err());
    assert_eq!(issue.line, line_of(SMALL, "strategy = \"skill_based\""));
}

#[test]
fn typo_in_an_intent() {
    let err = small_with(
        "\"billing_complaint\", \"refund_request\"",
        "\"biling_complaint\", \"refund_request\"",
    )
    .unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "billing_complaint"));
    assert_eq!(issue.column, 21);
    assert!(
        issue.message.starts_with(
            "rule \"billing to finance\": unknown intent \"biling_complaint\" (known: "
        ) && issue.message.contains("order_tracking"),
        "{}",
        issue.message
    );
    assert!(
        issue
            .message
            .contains("did you mean \"billing_complaint\"?")
    );
    assert!(
        issue
            .to_string()
            .starts_with(&format!("line {}, column 21: rule", issue.line))
    );
}

#[test]
fn unknown_team_in_a_rule() {
    let err = small_with("owner = \"legal\"", "owner = \"legl\"").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "owner = \"legal\""));
    assert!(
        issue
            .message
            .contains("rule \"legal threat\": owner: unknown team \"legl\"")
    );
    assert!(issue.message.contains("did you mean \"legal\"?"));
    let err = small_with(
        "watchers = [\"finance\", \"care\"]",
        "watchers = [\"finance\", \"kare\"]",
    )
    .unwrap_err();
    assert!(
        single(err)
            .message
            .contains("watchers: unknown team \"kare\"")
    );
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let err = small_with(
        "strategy = \"round_robin\"\nlanguages",
        "stratgy = \"round_robin\"\nlanguages",
    )
    .unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "strategy = \"round_robin\""));
    assert!(
        issue.message.contains("unknown field `stratgy`"),
        "{}",
        issue.message
    );
    let err = small_with("then = { raise_urgency = 1", "then = { raise = 1").unwrap_err();
    assert_eq!(single(err).line, line_of(SMALL, "raise_urgency = 1"));
    let err = small_with("[settings]", "[setting]").unwrap_err();
    assert_eq!(single(err).line, line_of(SMALL, "[settings]"));
    let err = small_with("mon = [", "monday = [").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "mon = ["));
    assert!(issue.message.contains("`monday`"));
}

#[test]
fn overlapping_periods_and_bad_calendars() {
    let err = small_with("\"14:00-18:00\"", "\"12:00-18:00\"").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "mon = ["));
    assert!(
        issue.message.contains(
            "team \"finance\": hours.mon: periods \"09:00-13:00\" and \"12:00-18:00\" overlap on mon"
        ),
        "{}",
        issue.message
    );
    let err = small_with("\"14:00-18:00\"", "\"18:00-14:00\"").unwrap_err();
    assert!(single(err).message.contains("does not end after it starts"));
    let err = small_with("\"14:00-18:00\"", "\"14h-18h\"").unwrap_err();
    assert!(single(err).message.contains("malformed period"));
    let err = small_with("Europe/Madrid", "Europe/Madird").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "Europe/Madrid"));
    assert!(
        issue
            .message
            .contains("unknown time zone \"Europe/Madird\"")
    );
    let err = small_with("[\"2026-12-25\"]", "[\"2026-12-25\", \"2026-12-25\"]").unwrap_err();
    assert!(
        single(err)
            .message
            .contains("holiday 2026-12-25 is listed twice")
    );
    let err = small_with("time_zone = \"Europe/Madrid\"\n", "").unwrap_err();
    assert!(single(err).message.contains("need a time_zone"));
}

#[test]
fn unknown_strategy_and_outside_hours() {
    let err = small_with("\"skill_based\"", "\"skills_based\"").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "skill_based"));
    assert!(issue.message.contains("unknown strategy \"skills_based\""));
    assert!(issue.message.contains("did you mean \"skill_based\"?"));
    let err = small_with(
        "strategy = \"skill_based\"",
        "strategy = \"skill_based\"\noutside_hours = \"wait\"",
    )
    .unwrap_err();
    assert!(
        single(err)
            .message
            .contains("outside_hours \"wait\" is not")
    );
    let err = small_with(
        "strategy = \"skill_based\"",
        "strategy = \"skill_based\"\noutside_hours = \"team:nobody\"",
    )
    .unwrap_err();
    assert!(
        single(err)
            .message
            .contains("outside_hours: unknown team \"nobody\"")
    );
    let err = small_with(
        "strategy = \"skill_based\"",
        "strategy = \"skill_based\"\noutside_hours = \"team:finance\"",
    )
    .unwrap_err();
    assert!(single(err).message.contains("to itself"));
}

#[test]
fn outside_hours_loops_are_refused() {
    let text = SMALL
        .replace(
            "strategy = \"skill_based\"",
            "strategy = \"skill_based\"\noutside_hours = \"team:legal\"",
        )
        .replace(
            "[teams.legal]\nstrategy = \"round_robin\"",
            "[teams.legal]\nstrategy = \"round_robin\"\noutside_hours = \"team:finance\"",
        );
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    assert_eq!(err.issues.len(), 2, "{err}");
    assert!(
        err.issues[0]
            .message
            .contains("finance -> legal -> finance")
    );
    assert!(err.issues[1].message.contains("legal -> finance -> legal"));
    assert_eq!(err.issues[0].line, line_of(&text, "team:legal"));
    // A chain that ends is fine.
    let text = SMALL.replace(
        "strategy = \"skill_based\"",
        "strategy = \"skill_based\"\noutside_hours = \"team:legal\"",
    );
    let p = RoutingPolicy::from_toml(&text, &known()).unwrap();
    assert_eq!(
        p.team("finance").unwrap().outside_hours,
        OutsideHours::Team("legal".into())
    );
}

#[test]
fn vip_queue_validation() {
    let err = small_with("[teams.care]\n", "[teams.care]\nvip_queue = \"vipp\"\n").unwrap_err();
    assert!(
        single(err)
            .message
            .contains("vip_queue: unknown team \"vipp\"")
    );
    let text = SMALL
        .replace("[teams.care]\n", "[teams.care]\nvip_queue = \"legal\"\n")
        .replace("[teams.legal]\n", "[teams.legal]\nvip_queue = \"review\"\n");
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    assert!(single(err).message.contains("applied once"));
    let err = small_with(
        "[teams.legal]\nstrategy = \"round_robin\"",
        "[teams.legal]\nstrategy = \"round_robin\"\nsenior_only_for_vip = true",
    )
    .unwrap_err();
    assert!(
        single(err)
            .message
            .contains("only applies to strategy = \"vip\"")
    );
    let p = small_with(
        "[teams.legal]\nstrategy = \"round_robin\"",
        "[teams.legal]\nstrategy = \"vip\"",
    )
    .unwrap();
    assert!(p.team("legal").unwrap().senior_only_for_vip);
}

#[test]
fn rule_validation() {
    let err = small_with("when = { context = [\"repeat_contact\"] }", "when = { }").unwrap_err();
    let issue = single(err);
    assert_eq!(issue.line, line_of(SMALL, "repeat_contact"));
    assert!(issue.message.contains("rule \"repeat\": `when` is empty"));
    let err = small_with(
        "then = { raise_urgency = 1, watchers = [\"legal\"] }",
        "then = {}",
    )
    .unwrap_err();
    assert!(single(err).message.contains("`then` is empty"));
    let err = small_with("name = \"repeat\"", "name = \"billing to finance\"").unwrap_err();
    let issue = single(err);
    assert!(issue.message.contains(&format!(
        "already used by the rule on line {}",
        line_of(SMALL, "[[rules]]")
    )));
    let err = small_with("urgency = \"immediate\"", "urgency = \"critical\"").unwrap_err();
    assert!(single(err).message.contains("unknown urgency \"critical\""));
    let err = small_with("priority = \"high\"", "priority = \"highest\"").unwrap_err();
    assert!(single(err).message.contains("unknown priority \"highest\""));
    let err = small_with("review = \"automation\"", "review = \"bot\"").unwrap_err();
    assert!(single(err).message.contains("review \"bot\" is not"));
    let err = small_with("skills = [\"billing\"]", "skills = [\"biling\"]").unwrap_err();
    assert!(single(err).message.contains("unknown skill \"biling\""));
    let err = small_with("min_confidence = 0.5", "min_confidence = 1.5").unwrap_err();
    assert!(single(err).message.contains("not between 0 and 1"));
    let err = small_with(
        "context = [\"repeat_contact\"] }",
        "context = [\"repeat_contact\"], min_confidence = 0.3 }",
    )
    .unwrap_err();
    assert!(single(err).message.contains("lists neither"));
    let err = small_with("languages = [\"es\"]", "languages = [\"sp\"]").unwrap_err();
    assert!(single(err).message.contains("unknown language \"sp\""));
    let err = small_with("context = [\"vip_customer\"]", "context = [\"vip\"]").unwrap_err();
    assert!(single(err).message.contains("unknown context \"vip\""));
    let err = small_with("intents = [\"order_tracking\"]", "intents = []").unwrap_err();
    assert!(single(err).message.contains("empty list"));
    let err = small_with("raise_urgency = 1", "raise_urgency = 0").unwrap_err();
    assert!(single(err).message.contains("at least 1"));
    let err = small_with("suppress = \"nothing to do\"", "suppress = \" \"").unwrap_err();
    assert!(single(err).message.contains("needs a reason"));
    let err = small_with("[teams.care]\n", "[teams.care]\nlanguages = [\"xx\"]\n").unwrap_err();
    // Duplicate key `languages` in the same table is a TOML error.
    assert_eq!(err.issues.len(), 1);
}

#[test]
fn all_problems_are_reported_in_line_order() {
    let text = SMALL
        .replace("\"billing_complaint\"", "\"biling\"")
        .replacen("owner = \"legal\"", "owner = \"legl\"", 1)
        .replace("default_team = \"care\"", "default_team = \"kare\"");
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    let lines: Vec<usize> = err.issues.iter().map(|i| i.line).collect();
    assert_eq!(
        lines,
        vec![
            line_of(&text, "default_team"),
            line_of(&text, "biling"),
            line_of(&text, "legl")
        ]
    );
    assert_eq!(err.line(), lines[0]);
    assert_eq!(err.to_string().lines().count(), 3);
}

#[test]
fn settings_and_noise() {
    let err = RoutingPolicy::from_toml("[teams.a]\n", &known()).unwrap_err();
    assert!(single(err).message.contains("missing [settings]"));
    let text = format!(
        "{SMALL}\n[noise]\nrate_limit_messages = 5\ncluster_min_contacts = 4\nack_after_resolution = \"ignore\"\nsuppress_spam = false\n"
    );
    let p = RoutingPolicy::from_toml(&text, &known()).unwrap();
    assert_eq!(p.noise().rate_limit_messages, 5);
    assert_eq!(p.noise().rate_limit_window_secs, 60);
    assert_eq!(p.noise().cluster_min_contacts, 4);
    assert_eq!(p.noise().cluster_min_words, 5);
    assert!(!p.noise().suppress_spam);
    assert_eq!(p.noise().ack_after_resolution, AckAfterResolution::Ignore);
    let text = format!(
        "{SMALL}\n[noise]\ncluster_min_contacts = 1\nack_after_resolution = \"reopen\"\nrate_limit_window_secs = -3\n"
    );
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    assert_eq!(single(err).line, line_of(&text, "-3"));
    let text =
        format!("{SMALL}\n[noise]\ncluster_min_contacts = 1\nack_after_resolution = \"reopen\"\n");
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    assert_eq!(err.issues.len(), 2);
    let text = format!("{SMALL}\n[noise]\nburst = 3\n");
    let err = RoutingPolicy::from_toml(&text, &known()).unwrap_err();
    assert!(single(err).message.contains("unknown field `burst`"));
    let p = small_with(
        "review_team = \"review\"\n",
        "repeat_contact_window_secs = 3600\n",
    )
    .unwrap();
    assert_eq!(p.settings().review_team, "care");
    assert_eq!(p.settings().repeat_contact_window_secs, 3600);
}

#[test]
fn columns_count_characters() {
    let text = SMALL
        .replace("name = \"repeat\"", "name = \"répété ✓\"")
        .replace(
            "context = [\"repeat_contact\"] }",
            "context = [\"répété\"] }",
        );
    let issue = single(RoutingPolicy::from_toml(&text, &known()).unwrap_err());
    assert!(
        issue
            .message
            .starts_with("rule \"répété ✓\": unknown context \"répété\"")
    );
    assert_eq!(issue.column, 21);
}

// ---- deciding ----

#[test]
fn first_owner_wins_and_watchers_merge() {
    let p = small();
    let mut t = tags(&[("billing_complaint", 0.9)], "normal");
    t.risks = vec![Scored::new("legal_threat", 0.8)];
    t.context = vec!["repeat_contact".into()];
    let d = p.decide(&t);
    assert_eq!(d.owner, "finance");
    assert_eq!(d.owner_rule.as_deref(), Some("billing to finance"));
    // legal's own owner request is recorded as ignored; watchers exclude the owner.
    assert_eq!(d.watchers, vec!["care", "legal"]);
    assert_eq!(d.urgency, "immediate");
    assert_eq!(d.priority, Priority::Urgent);
    assert_eq!(d.review, Review::Human);
    assert_eq!(
        d.review_reason,
        ReviewReason::Rule("billing to finance".into())
    );
    assert_eq!(d.skills, vec!["billing"]);
    let names: Vec<&str> = d.matched.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["billing to finance", "legal threat", "repeat"]);
    assert_eq!(
        d.matched[1].contributed[0],
        Contribution::OwnerIgnored {
            team: "legal".into(),
            owner: "finance".into(),
            owner_rule: "billing to finance".into()
        }
    );
    assert_eq!(d.matched[1].matched_on, vec!["risk legal_threat (0.80)"]);
    // "immediate" is the top level: raising it further changes nothing.
    assert_eq!(
        d.matched[2].contributed[1],
        Contribution::RaiseUrgency {
            steps: 1,
            from: "immediate".into(),
            to: "immediate".into()
        }
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("already made finance the owner"))
    );
}

#[test]
fn rule_order_decides_the_owner() {
    // Swap the first two rules: the legal rule now owns.
    let text = SMALL.replacen("name = \"billing to finance\"", "name = \"tmp\"", 1);
    let text = text.replace(
        "when = { intents = [\"billing_complaint\", \"refund_request\"] }\nthen = { owner = \"finance\", review = \"human\", skills = [\"billing\"] }",
        "when = { risks = [\"legal_threat\"] }\nthen = { owner = \"legal\" }",
    );
    let p = RoutingPolicy::from_toml(&text, &known()).unwrap();
    let mut t = tags(&[("billing_complaint", 0.9)], "normal");
    t.risks = vec![Scored::new("legal_threat", 0.8)];
    assert_eq!(p.decide(&t).owner, "legal");
}

#[test]
fn min_confidence_filters_tags() {
    let p = small();
    let mut t = tags(&[], "normal");
    t.risks = vec![Scored::new("legal_threat", 0.4)];
    let d = p.decide(&t);
    assert!(d.matched.is_empty());
    assert_eq!(d.owner, "care");
    assert!(d.reasons.contains(&"no rule matched".to_string()));
    t.risks[0].confidence = 0.5;
    assert_eq!(p.decide(&t).owner, "legal");
}

#[test]
fn and_across_keys_or_within_lists() {
    let p = small();
    let mut t = tags(&[("product_question", 0.9)], "normal");
    t.language = "es".into();
    assert!(p.decide(&t).matched.is_empty());
    t.context = vec!["vip_customer".into()];
    let d = p.decide(&t);
    assert_eq!(d.matched.len(), 1);
    assert_eq!(d.priority, Priority::High);
    assert_eq!(
        d.matched[0].matched_on,
        vec!["language es", "context vip_customer"]
    );
    t.language = "en".into();
    assert!(p.decide(&t).matched.is_empty());
    // OR within the intents list.
    let d = p.decide(&tags(&[("refund_request", 0.7)], "low"));
    assert_eq!(d.owner, "finance");
}

#[test]
fn review_defaults_and_automation() {
    let p = small();
    let d = p.decide(&tags(&[("order_tracking", 0.95)], "normal"));
    assert_eq!(d.review, Review::Automation);
    assert_eq!(d.priority, Priority::Low.max(Priority::Medium));
    assert_eq!(d.owner, "care");
    assert!(d.owner_rule.is_none());
    let d = p.decide(&tags(&[("product_question", 0.95)], "normal"));
    assert_eq!(d.review, Review::Human);
    assert_eq!(d.review_reason, ReviewReason::Default);
    // Human beats automation.
    let d = p.decide(&tags(
        &[("order_tracking", 0.9), ("refund_request", 0.8)],
        "normal",
    ));
    assert_eq!(d.review, Review::Human);
    // Low confidence: human review, review team owns when no rule does.
    let mut t = tags(&[("order_tracking", 0.3)], "normal");
    t.low_confidence = true;
    let d = p.decide(&t);
    assert_eq!(d.review, Review::Human);
    assert_eq!(d.review_reason, ReviewReason::LowConfidence);
    assert_eq!(d.owner, "review");
    assert!(d.reasons.iter().any(|r| r.contains("confidence is low")));
    // ... but a rule's owner still wins.
    let mut t = tags(&[("billing_complaint", 0.3)], "normal");
    t.low_confidence = true;
    let d = p.decide(&t);
    assert_eq!(d.owner, "finance");
    assert_eq!(d.review_reason, ReviewReason::LowConfidence);
}

#[test]
fn priority_and_urgency_merge() {
    let p = small();
    let mut t = tags(&[("order_tracking", 0.9)], "priority");
    t.context = vec!["repeat_contact".into()];
    let d = p.decide(&t);
    // Tracking asks for low priority, but urgency (raised to immediate) maps to urgent.
    assert_eq!(d.urgency, "immediate");
    assert_eq!(d.priority, Priority::Urgent);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("urgency priority raised to immediate"))
    );
    let d = p.decide(&tags(&[("order_tracking", 0.9)], "low"));
    assert_eq!(d.priority, Priority::Low);
    assert_eq!(d.urgency, "low");
    let mut t = tags(&[("product_question", 0.9)], "low");
    t.language = "es".into();
    t.context = vec!["vip_customer".into()];
    let d = p.decide(&t);
    assert_eq!(d.priority, Priority::High);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("priority high: asked by rule \"spanish vip\""))
    );
}

#[test]
fn stop_and_suppress() {
    let p = small();
    let d = p.decide(&tags(&[("greeting_or_thanks", 0.9)], "low"));
    assert_eq!(d.suppress.as_deref(), Some("nothing to do"));
    assert_eq!(d.stopped_by.as_deref(), Some("thanks"));
    // "after stop" would have set owner legal.
    assert_eq!(d.owner, "care");
    assert_eq!(d.matched.len(), 1);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("later rules were not evaluated"))
    );
    assert!(d.reasons.iter().any(|r| r.contains("suppressed")));
}

#[test]
fn unknown_tags_are_ignored_with_a_reason() {
    let p = small();
    let mut t = tags(&[("bug_report", 0.9)], "whenever");
    t.tones = vec!["sarcastic".into()];
    let d = p.decide(&t);
    assert_eq!(d.urgency, "low");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("intent \"bug_report\" is not in the taxonomy"))
    );
    assert!(d.reasons.iter().any(|r| r.contains("treated as low")));
    assert!(d.reasons.iter().any(|r| r.contains("tone \"sarcastic\"")));
}

#[test]
fn decision_serialises() {
    let p = small();
    let mut t = tags(&[("billing_complaint", 0.9)], "normal");
    t.context = vec!["repeat_contact".into()];
    let d = p.decide(&t);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["owner"], "finance");
    assert_eq!(json["priority"], "high");
    assert_eq!(json["review"], "human");
    assert_eq!(json["review_reason"]["rule"], "billing to finance");
    assert_eq!(
        json["matched"][1]["contributed"][1]["kind"],
        "raise_urgency"
    );
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn priorities_for_custom_urgency_scales() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        priorities_for(&names(&["low", "normal", "priority", "immediate"])),
        vec![
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent
        ]
    );
    assert_eq!(
        priorities_for(&names(&["p3", "p2", "p1"])),
        vec![Priority::Low, Priority::High, Priority::Urgent]
    );
    assert_eq!(priorities_for(&names(&["only"])), vec![Priority::Medium]);
}

#[test]
fn policy_and_decision_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RoutingPolicy>();
    shareable::<Decision>();
    shareable::<PolicyError>();
}

#[test]
fn confidences_print_with_two_decimals() {
    let print = |c: f32| {
        let mut out = String::new();
        push_confidence(&mut out, c);
        out
    };
    assert_eq!(print(0.914), "0.91");
    assert_eq!(print(0.05), "0.05");
    assert_eq!(print(0.999), "1.00");
    assert_eq!(print(1.5), "1.00");
    assert_eq!(print(-1.0), "0.00");
    assert_eq!(print(f32::NAN), "?");
}

#[test]
fn edit_distance_and_suggestions() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    let known = vec!["finance".to_string(), "legal".to_string()];
    assert_eq!(suggest("finanse", &known), Some("finance"));
    assert_eq!(suggest("marketing", &known), None);
}

// ---- the shipped policy ----

#[test]
fn default_policy_parses_every_rule() {
    let p = default_policy();
    let text = default_policy_text();
    let headers = text.lines().filter(|l| l.trim() == "[[rules]]").count();
    assert!(headers >= 15);
    assert_eq!(p.rules().len(), headers);
    for rule in p.rules() {
        let header = text.lines().nth(rule.line() - 1).unwrap();
        assert_eq!(header.trim(), "[[rules]]", "{}", rule.name());
    }
    for id in [
        "tier1_care",
        "finance",
        "engineering_incident",
        "comms_pr",
        "trust_safety",
        "management",
        "vip_desk",
    ] {
        assert!(p.team(id).is_some(), "{id}");
    }
    assert_eq!(p.settings().default_team, "tier1_care");
    assert_eq!(p.settings().review_team, "tier1_care");
    assert_eq!(
        p.team("tier1_care").unwrap().vip_queue.as_deref(),
        Some("vip_desk")
    );
    assert_eq!(p.team("finance").unwrap().strategy, Strategy::SkillBased);
    assert!(p.calendar("trust_safety").unwrap().is_always_open());
    assert!(p.calendar("engineering_incident").unwrap().is_always_open());
    // Every intent and risk of the taxonomy is mentioned by some rule.
    for value in known().intents.iter().chain(&known().risks) {
        assert!(text.contains(&format!("\"{value}\"")), "{value}");
    }
}

#[test]
fn default_charged_twice_and_nobody_replied() {
    let p = default_policy();
    let mut t = tags(&[("billing_complaint", 0.91)], "normal");
    t.context = vec!["repeat_contact".into()];
    let d = p.decide(&t);
    assert_eq!(d.owner, "finance");
    assert_eq!(d.review, Review::Human);
    assert_eq!(d.urgency, "priority");
    assert_eq!(d.priority, Priority::High);
    assert!(d.skills.contains(&"billing".to_string()));
}

#[test]
fn default_thread_turning_into_a_legal_threat() {
    let p = default_policy();
    let first = p.decide(&tags(&[("order_tracking", 0.93)], "normal"));
    assert_eq!(first.owner, "tier1_care");
    assert_eq!(first.review, Review::Automation);
    let mut later = tags(&[("order_tracking", 0.7)], "normal");
    later.risks = vec![Scored::new("legal_threat", 0.88)];
    let d = p.decide(&later);
    assert_eq!(d.owner, "management");
    assert_eq!(d.review, Review::Human);
    assert_eq!(d.urgency, "immediate");
    assert_eq!(d.priority, Priority::Urgent);
    assert!(d.watchers.contains(&"comms_pr".to_string()));
}

#[test]
fn default_media_risk() {
    let p = default_policy();
    let mut t = tags(&[("delivery_problem", 0.8)], "normal");
    t.risks = vec![Scored::new("media_risk", 0.9)];
    let d = p.decide(&t);
    assert_eq!(d.owner, "comms_pr");
    assert!(d.watchers.contains(&"management".to_string()));
    assert_eq!(d.review, Review::Human);
    assert_eq!(d.urgency, "immediate");
}

#[test]
fn default_automation_only_where_allowed() {
    let p = default_policy();
    for intent in ["order_tracking", "product_question", "appointment_change"] {
        let d = p.decide(&tags(&[(intent, 0.9)], "normal"));
        assert_eq!(d.review, Review::Automation, "{intent}");
        let mut risky = tags(&[(intent, 0.9)], "normal");
        risky.risks = vec![Scored::new("fraud_signal", 0.9)];
        assert_eq!(
            p.decide(&risky).review,
            Review::Human,
            "{intent} with fraud"
        );
        let mut unsure = tags(&[(intent, 0.4)], "normal");
        unsure.low_confidence = true;
        assert_eq!(
            p.decide(&unsure).review,
            Review::Human,
            "{intent} low confidence"
        );
    }
    for intent in [
        "billing_complaint",
        "refund_request",
        "cancellation",
        "account_access",
        "human_request",
    ] {
        assert_eq!(
            p.decide(&tags(&[(intent, 0.9)], "normal")).review,
            Review::Human,
            "{intent}"
        );
    }
}

#[test]
fn default_account_access_needs_identity_check() {
    let p = default_policy();
    let d = p.decide(&tags(&[("account_access", 0.9)], "normal"));
    assert_eq!(d.skills, vec!["identity_verification"]);
    assert_eq!(d.review, Review::Human);
    let mut t = tags(&[("order_tracking", 0.9)], "normal");
    t.context = vec!["needs_identity_check".into()];
    let d = p.decide(&t);
    assert!(d.skills.contains(&"identity_verification".to_string()));
    assert_eq!(d.review, Review::Human);
}

#[test]
fn default_risks_route_to_their_teams() {
    let p = default_policy();
    for (risk, owner) in [
        ("fraud_signal", "trust_safety"),
        ("abuse", "trust_safety"),
        ("possible_outage", "engineering_incident"),
    ] {
        let mut t = tags(&[("technical_issue", 0.6)], "normal");
        t.risks = vec![Scored::new(risk, 0.9)];
        let d = p.decide(&t);
        assert_eq!(d.owner, owner, "{risk}");
        assert_eq!(d.review, Review::Human);
    }
    let d = p.decide(&tags(&[("invoice_request", 0.9)], "low"));
    assert_eq!(d.owner, "finance");
    let d = p.decide(&tags(&[("technical_issue", 0.9)], "normal"));
    assert_eq!(d.owner, "engineering_incident");
}
