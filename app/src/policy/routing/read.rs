//! Reading `[settings]`, `[noise]` and `[[rules]]`, with the line of every mistake.

use super::*;

pub(super) fn read_settings(
    policy: &RoutingPolicy,
    raw: Spanned<RawSettings>,
    problems: &mut Problems<'_>,
) -> Settings {
    let raw = raw.into_inner();
    let check_team = |team: &Spanned<String>, key: &str, problems: &mut Problems<'_>| {
        if policy.team(team.get_ref()).is_none() {
            problems.at(
                team.span(),
                format!(
                    "[settings] {key}: {}",
                    unknown_value("team", team.get_ref(), &team_ids(policy))
                ),
            );
        }
    };
    check_team(&raw.default_team, "default_team", problems);
    if let Some(review) = &raw.review_team {
        check_team(review, "review_team", problems);
    }
    let window = match &raw.repeat_contact_window_secs {
        Some(w) if *w.get_ref() == 0 => {
            problems.at(
                w.span(),
                "[settings] repeat_contact_window_secs must be at least 1",
            );
            1
        }
        Some(w) => *w.get_ref(),
        None => 7 * 24 * 3600,
    };
    Settings {
        default_team: raw.default_team.get_ref().clone(),
        review_team: raw
            .review_team
            .map_or_else(|| raw.default_team.get_ref().clone(), |r| r.into_inner()),
        repeat_contact_window_secs: window,
    }
}

pub(super) fn team_ids(policy: &RoutingPolicy) -> Vec<String> {
    policy.teams.iter().map(|t| t.id.clone()).collect()
}

pub(super) fn read_noise(raw: RawNoise, problems: &mut Problems<'_>) -> NoiseSettings {
    let defaults = NoiseSettings::default();
    pub(super) fn at_least<T: Copy + PartialOrd + fmt::Display>(
        value: &Option<Spanned<T>>,
        min: T,
        default: T,
        key: &str,
        problems: &mut Problems<'_>,
    ) -> T {
        match value {
            None => default,
            Some(v) if *v.get_ref() < min => {
                problems.at(v.span(), format!("[noise] {key} must be at least {min}"));
                default
            }
            Some(v) => *v.get_ref(),
        }
    }
    let ack_after_resolution = match &raw.ack_after_resolution {
        None => defaults.ack_after_resolution,
        Some(v) => match v.get_ref().as_str() {
            "close" => AckAfterResolution::Close,
            "ignore" => AckAfterResolution::Ignore,
            other => {
                problems.at(
                    v.span(),
                    format!(
                        "[noise] ack_after_resolution \"{other}\" is not \"close\" or \"ignore\""
                    ),
                );
                defaults.ack_after_resolution
            }
        },
    };
    NoiseSettings {
        rate_limit_messages: at_least(
            &raw.rate_limit_messages,
            1,
            defaults.rate_limit_messages,
            "rate_limit_messages",
            problems,
        ),
        rate_limit_window_secs: at_least(
            &raw.rate_limit_window_secs,
            1,
            defaults.rate_limit_window_secs,
            "rate_limit_window_secs",
            problems,
        ),
        cluster_min_contacts: at_least(
            &raw.cluster_min_contacts,
            2,
            defaults.cluster_min_contacts,
            "cluster_min_contacts",
            problems,
        ),
        cluster_window_secs: at_least(
            &raw.cluster_window_secs,
            1,
            defaults.cluster_window_secs,
            "cluster_window_secs",
            problems,
        ),
        cluster_min_words: raw.cluster_min_words.unwrap_or(defaults.cluster_min_words),
        suppress_spam: raw.suppress_spam.unwrap_or(defaults.suppress_spam),
        ack_after_resolution,
    }
}

pub(super) fn read_rules(
    policy: &RoutingPolicy,
    raw: Vec<Spanned<RawRule>>,
    problems: &mut Problems<'_>,
) -> Vec<Rule> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::new();
    let all_skills: Vec<String> = {
        let mut all: Vec<String> = Vec::new();
        for team in &policy.teams {
            for s in &team.skills {
                if !all.contains(s) {
                    all.push(s.clone());
                }
            }
        }
        all
    };
    let ids = team_ids(policy);
    for raw_rule in raw {
        let header = raw_rule.span();
        let raw_rule = raw_rule.into_inner();
        let name = raw_rule.name.get_ref().trim().to_string();
        let line = problems.line(&header);
        if name.is_empty() {
            problems.at(raw_rule.name.span(), "a rule needs a non-empty name");
        } else if let Some(first) = seen.get(&name) {
            problems.at(
                raw_rule.name.span(),
                format!("rule name \"{name}\" is already used by the rule on line {first}"),
            );
        } else {
            seen.insert(name.clone(), line);
        }
        let ctx = format!("rule \"{name}\"");
        let when = read_when(policy, &ctx, raw_rule.when, problems);
        let then = read_then(policy, &ctx, raw_rule.then, &ids, &all_skills, problems);
        rules.push(Rule {
            name,
            line,
            when,
            then,
        });
    }
    rules
}

/// Reads one list condition into a bit set of ids, reporting unknown values.
pub(super) fn read_list(
    vocab: &Vocab,
    ctx: &str,
    key: &str,
    list: &List,
    problems: &mut Problems<'_>,
) -> Option<Bits> {
    let list = list.as_ref()?;
    if list.get_ref().is_empty() {
        problems.at(
            list.span(),
            format!("{ctx}: when.{key} is an empty list, which can never match (remove it)"),
        );
        return Some(Bits::default());
    }
    let mut bits = Bits::default();
    for value in list.get_ref() {
        match vocab.id(value.get_ref()) {
            Some(id) => bits.insert(id),
            None => problems.at(
                value.span(),
                format!("{ctx}: {}", vocab.unknown(value.get_ref())),
            ),
        }
    }
    Some(bits)
}

pub(super) fn read_urgency(
    policy: &RoutingPolicy,
    ctx: &str,
    key: &str,
    value: &Option<Spanned<String>>,
    problems: &mut Problems<'_>,
) -> Option<u32> {
    let value = value.as_ref()?;
    match policy.urgencies.id(value.get_ref()) {
        Some(id) => Some(id),
        None => {
            problems.at(
                value.span(),
                format!(
                    "{ctx}: {key}: {}",
                    policy.urgencies.unknown(value.get_ref())
                ),
            );
            None
        }
    }
}

pub(super) fn read_when(
    policy: &RoutingPolicy,
    ctx: &str,
    raw: Spanned<RawWhen>,
    problems: &mut Problems<'_>,
) -> When {
    let span = raw.span();
    let raw = raw.into_inner();
    let empty = raw.intents.is_none()
        && raw.risks.is_none()
        && raw.urgency_at_least.is_none()
        && raw.languages.is_none()
        && raw.tones.is_none()
        && raw.context.is_none()
        && raw.low_confidence.is_none()
        && raw.min_confidence.is_none();
    if empty {
        problems.at(
            span,
            format!(
                "{ctx}: `when` is empty; a rule needs at least one condition (intents, risks, urgency_at_least, languages, tones, context, low_confidence)"
            ),
        );
    }
    let min_confidence = raw.min_confidence.as_ref().map(|m| {
        let value = *m.get_ref();
        if !(0.0..=1.0).contains(&value) {
            problems.at(
                m.span(),
                format!("{ctx}: min_confidence {value} is not between 0 and 1"),
            );
        } else if raw.intents.is_none() && raw.risks.is_none() {
            problems.at(
                m.span(),
                format!(
                    "{ctx}: min_confidence applies to intents and risks, and this rule lists neither"
                ),
            );
        }
        value
    });
    When {
        intents: read_list(&policy.intents, ctx, "intents", &raw.intents, problems),
        risks: read_list(&policy.risks, ctx, "risks", &raw.risks, problems),
        min_confidence,
        urgency_at_least: read_urgency(
            policy,
            ctx,
            "urgency_at_least",
            &raw.urgency_at_least,
            problems,
        ),
        languages: read_list(
            &policy.languages,
            ctx,
            "languages",
            &raw.languages,
            problems,
        ),
        tones: read_list(&policy.tones, ctx, "tones", &raw.tones, problems),
        context: read_list(&policy.contexts, ctx, "context", &raw.context, problems),
        low_confidence: raw.low_confidence,
    }
}

pub(super) fn read_then(
    policy: &RoutingPolicy,
    ctx: &str,
    raw: Spanned<RawThen>,
    ids: &[String],
    all_skills: &[String],
    problems: &mut Problems<'_>,
) -> Then {
    let span = raw.span();
    let raw = raw.into_inner();
    let empty = raw.owner.is_none()
        && raw.watchers.is_none()
        && raw.priority.is_none()
        && raw.urgency.is_none()
        && raw.raise_urgency.is_none()
        && raw.review.is_none()
        && raw.skills.is_none()
        && raw.suppress.is_none()
        && raw.stop.is_none();
    if empty {
        problems.at(
            span,
            format!("{ctx}: `then` is empty; the rule would do nothing"),
        );
    }
    let team = |value: &Spanned<String>, key: &str, problems: &mut Problems<'_>| {
        if policy.team(value.get_ref()).is_some() {
            Some(value.get_ref().clone())
        } else {
            problems.at(
                value.span(),
                format!(
                    "{ctx}: {key}: {}",
                    unknown_value("team", value.get_ref(), ids)
                ),
            );
            None
        }
    };
    let owner = raw.owner.as_ref().and_then(|o| team(o, "owner", problems));
    let mut watchers = Vec::new();
    for w in raw.watchers.iter().flat_map(|l| l.get_ref()) {
        if let Some(w) = team(w, "watchers", problems)
            && !watchers.contains(&w)
        {
            watchers.push(w);
        }
    }
    let priority = raw.priority.as_ref().and_then(|p| {
        let found = Priority::ALL.iter().find(|k| k.as_str() == p.get_ref());
        if found.is_none() {
            let names: Vec<String> = Priority::ALL.iter().map(|k| k.to_string()).collect();
            problems.at(
                p.span(),
                format!("{ctx}: {}", unknown_value("priority", p.get_ref(), &names)),
            );
        }
        found.copied()
    });
    let urgency = read_urgency(policy, ctx, "urgency", &raw.urgency, problems);
    let raise_urgency = match &raw.raise_urgency {
        Some(r) if *r.get_ref() == 0 => {
            problems.at(
                r.span(),
                format!(
                    "{ctx}: raise_urgency must be at least 1 (remove it to leave urgency alone)"
                ),
            );
            0
        }
        Some(r) => *r.get_ref(),
        None => 0,
    };
    let review = raw
        .review
        .as_ref()
        .and_then(|r| match r.get_ref().as_str() {
            "human" => Some(Review::Human),
            "automation" => Some(Review::Automation),
            other => {
                problems.at(
                    r.span(),
                    format!("{ctx}: review \"{other}\" is not \"human\" or \"automation\""),
                );
                None
            }
        });
    let mut skills = Vec::new();
    for s in raw.skills.iter().flat_map(|l| l.get_ref()) {
        if all_skills.contains(s.get_ref()) {
            if !skills.contains(s.get_ref()) {
                skills.push(s.get_ref().clone());
            }
        } else {
            problems.at(
                s.span(),
                format!(
                    "{ctx}: {} (a skill must be listed in some team's `skills`)",
                    unknown_value("skill", s.get_ref(), all_skills)
                ),
            );
        }
    }
    let suppress = raw.suppress.as_ref().and_then(|s| {
        let reason = s.get_ref().trim();
        if reason.is_empty() {
            problems.at(
                s.span(),
                format!("{ctx}: suppress needs a reason (it is shown in reports)"),
            );
            None
        } else {
            Some(reason.to_string())
        }
    });
    Then {
        owner,
        watchers,
        priority,
        urgency,
        raise_urgency,
        review,
        skills,
        suppress,
        stop: raw.stop.unwrap_or(false),
    }
}
