//! Reading `[teams.<id>]`: strategies, calendars, outside-hours chains.

use super::*;

// ---------------------------------------------------------------------------------------
// Validation, section by section
// ---------------------------------------------------------------------------------------

/// A team being read, with the spans its cross-references need.
pub(super) struct PendingTeam {
    pub(super) team: Team,
    pub(super) outside_span: Range<usize>,
    pub(super) vip_span: Range<usize>,
}

pub(super) fn read_teams(
    policy: &RoutingPolicy,
    raw: BTreeMap<Spanned<String>, Spanned<RawTeam>>,
    problems: &mut Problems<'_>,
) -> Vec<PendingTeam> {
    let mut teams = Vec::new();
    for (key, raw_team) in raw {
        let id = key.get_ref().clone();
        let key_span = key.span();
        let team_span = raw_team.span();
        let raw_team = raw_team.into_inner();
        let ctx = format!("team \"{id}\"");
        if !is_identifier(&id) {
            problems.at(
                key_span.clone(),
                format!("{ctx}: a team id may only use letters, digits, '_' and '-'"),
            );
        }

        let strategy = match &raw_team.strategy {
            None => Strategy::LoadBalanced,
            Some(s) => match Strategy::ALL.iter().find(|k| k.as_str() == s.get_ref()) {
                Some(k) => *k,
                None => {
                    let names: Vec<String> = Strategy::ALL
                        .iter()
                        .map(|k| k.as_str().to_string())
                        .collect();
                    problems.at(
                        s.span(),
                        format!("{ctx}: {}", unknown_value("strategy", s.get_ref(), &names)),
                    );
                    Strategy::LoadBalanced
                }
            },
        };

        let mut languages = Vec::new();
        for lang in &raw_team.languages {
            if policy.languages.id(lang.get_ref()).is_none() {
                problems.at(
                    lang.span(),
                    format!("{ctx}: {}", policy.languages.unknown(lang.get_ref())),
                );
            } else if !languages.contains(lang.get_ref()) {
                languages.push(lang.get_ref().clone());
            }
        }
        let mut skills: Vec<String> = Vec::new();
        for skill in &raw_team.skills {
            if !is_identifier(skill.get_ref()) {
                problems.at(
                    skill.span(),
                    format!(
                        "{ctx}: skill \"{}\" may only use letters, digits, '_' and '-'",
                        skill.get_ref()
                    ),
                );
            } else if !skills.contains(skill.get_ref()) {
                skills.push(skill.get_ref().clone());
            }
        }

        let calendar = read_calendar(&ctx, &raw_team, problems);

        let (outside_hours, outside_span) = match &raw_team.outside_hours {
            None => (OutsideHours::Queue, key_span.clone()),
            Some(s) => {
                let text = s.get_ref().trim();
                let value = if text == "queue" {
                    OutsideHours::Queue
                } else if text == "bot" {
                    OutsideHours::Bot
                } else if let Some(other) = text.strip_prefix("team:") {
                    OutsideHours::Team(other.trim().to_string())
                } else {
                    problems.at(
                        s.span(),
                        format!(
                            "{ctx}: outside_hours \"{text}\" is not \"queue\", \"bot\" or \"team:<team id>\""
                        ),
                    );
                    OutsideHours::Queue
                };
                (value, s.span())
            }
        };

        let senior_only_for_vip = match &raw_team.senior_only_for_vip {
            None => strategy == Strategy::Vip,
            Some(flag) => {
                if strategy != Strategy::Vip {
                    problems.at(
                        flag.span(),
                        format!(
                            "{ctx}: senior_only_for_vip only applies to strategy = \"vip\" (this team uses {strategy})"
                        ),
                    );
                }
                *flag.get_ref()
            }
        };

        teams.push(PendingTeam {
            team: Team {
                name: raw_team.name.clone().unwrap_or_else(|| id.clone()),
                id,
                strategy,
                languages,
                skills,
                calendar,
                outside_hours,
                vip_queue: raw_team.vip_queue.as_ref().map(|v| v.get_ref().clone()),
                senior_only_for_vip,
                line: problems.line(&team_span),
            },
            outside_span,
            vip_span: raw_team.vip_queue.as_ref().map_or(key_span, |v| v.span()),
        });
    }
    teams
}

pub(super) fn read_calendar(ctx: &str, raw: &RawTeam, problems: &mut Problems<'_>) -> Calendar {
    let mut builder = match &raw.time_zone {
        Some(tz) => match CalendarBuilder::new(tz.get_ref()) {
            Ok(builder) => builder,
            Err(err) => {
                problems.at(tz.span(), format!("{ctx}: {err}"));
                CalendarBuilder::in_zone(chrono_tz::Tz::UTC)
            }
        },
        None => {
            let needs_zone = raw
                .hours
                .as_ref()
                .map(|h| h.span())
                .or_else(|| raw.holidays.first().map(|h| h.span()));
            if let Some(span) = needs_zone {
                problems.at(
                    span,
                    format!(
                        "{ctx}: hours and holidays need a time_zone (an IANA name such as \"Europe/Madrid\")"
                    ),
                );
            }
            CalendarBuilder::in_zone(chrono_tz::Tz::UTC)
        }
    };
    if let Some(hours) = &raw.hours {
        builder.with_hours();
        let hours = hours.get_ref();
        let days = [
            (Weekday::Mon, &hours.mon),
            (Weekday::Tue, &hours.tue),
            (Weekday::Wed, &hours.wed),
            (Weekday::Thu, &hours.thu),
            (Weekday::Fri, &hours.fri),
            (Weekday::Sat, &hours.sat),
            (Weekday::Sun, &hours.sun),
        ];
        for (day, periods) in days {
            for period in periods.iter().flatten() {
                if let Err(err) = builder.add_period(day, period.get_ref()) {
                    problems.at(
                        period.span(),
                        format!("{ctx}: hours.{}: {err}", weekday_key(day)),
                    );
                }
            }
        }
    }
    for holiday in &raw.holidays {
        if let Err(err) = builder.add_holiday(holiday.get_ref()) {
            problems.at(holiday.span(), format!("{ctx}: {err}"));
        }
    }
    builder.build()
}

/// `outside_hours = "team:x"` and `vip_queue` name existing other teams, and
/// `outside_hours` chains end.
pub(super) fn check_team_links(teams: &mut [PendingTeam], problems: &mut Problems<'_>) {
    let ids: Vec<String> = teams.iter().map(|p| p.team.id.clone()).collect();
    let exists = |id: &str| ids.iter().any(|i| i == id);
    for p in teams.iter_mut() {
        let ctx = format!("team \"{}\"", p.team.id);
        if let OutsideHours::Team(other) = &p.team.outside_hours {
            if *other == p.team.id {
                problems.at(
                    p.outside_span.clone(),
                    format!("{ctx}: outside_hours cannot send a team's cases to itself"),
                );
                p.team.outside_hours = OutsideHours::Queue;
            } else if !exists(other) {
                problems.at(
                    p.outside_span.clone(),
                    format!(
                        "{ctx}: outside_hours: {}",
                        unknown_value("team", other, &ids)
                    ),
                );
                p.team.outside_hours = OutsideHours::Queue;
            }
        }
        if let Some(vip) = &p.team.vip_queue {
            if *vip == p.team.id {
                problems.at(
                    p.vip_span.clone(),
                    format!("{ctx}: vip_queue cannot be the team itself"),
                );
                p.team.vip_queue = None;
            } else if !exists(vip) {
                problems.at(
                    p.vip_span.clone(),
                    format!("{ctx}: vip_queue: {}", unknown_value("team", vip, &ids)),
                );
                p.team.vip_queue = None;
            }
        }
    }
    // VIP redirection is applied once: a VIP queue must not redirect again.
    let vip_targets: Vec<(usize, String)> = teams
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.team.vip_queue.clone().map(|v| (i, v)))
        .collect();
    for (i, target) in vip_targets {
        let chained = teams
            .iter()
            .find(|p| p.team.id == target)
            .and_then(|p| p.team.vip_queue.clone());
        if let Some(next) = chained {
            let p = &teams[i];
            problems.at(
                p.vip_span.clone(),
                format!(
                    "team \"{}\": vip_queue {target} has a vip_queue of its own ({next}); VIP redirection is applied once, so point to the final team",
                    p.team.id
                ),
            );
        }
    }
    // outside_hours chains must end.
    let next_of = |id: &str| {
        teams
            .iter()
            .find(|p| p.team.id == id)
            .and_then(|p| match &p.team.outside_hours {
                OutsideHours::Team(next) => Some(next.clone()),
                _ => None,
            })
    };
    for p in teams.iter() {
        let mut path = vec![p.team.id.clone()];
        let mut current = next_of(&p.team.id);
        while let Some(next) = current {
            let looped = path.contains(&next);
            path.push(next.clone());
            if looped {
                if next == p.team.id {
                    problems.at(
                        p.outside_span.clone(),
                        format!(
                            "team \"{}\": outside_hours chain loops: {}",
                            p.team.id,
                            path.join(" -> ")
                        ),
                    );
                }
                break;
            }
            current = next_of(&next);
        }
    }
}
