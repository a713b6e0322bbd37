//! The SLA and escalation policy file (`config/sla.toml`): targets per priority, VIP and
//! per-team overrides, whether a team's clock follows its business hours, and the
//! escalation ladders. Validated against the routing policy's teams; every mistake is
//! reported with its line, and a file with one is refused whole.

use super::problems::{PolicyError, Problems};
use super::routing::RoutingPolicy;
use crate::domain::{Micros, Priority, SECOND_MICROS};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::Spanned;

/// The policy shipped with Parley.
pub const DEFAULT_SLA: &str = include_str!("../../../config/sla.toml");

/// The targets that apply to one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub first_response: Micros,
    pub next_response: Micros,
    pub resolution: Micros,
    pub escalate_after: Micros,
}

/// What a team's cases escalate to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ladder {
    pub to: Option<String>,
    pub by_intent: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNoAnswer {
    Escalate,
    HandBack,
}

impl OnNoAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Escalate => "escalate",
            Self::HandBack => "hand_back",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPolicy {
    pub levels: HashMap<String, u8>,
    pub management: String,
    pub risk_watchers: BTreeMap<String, Vec<String>>,
    pub on_no_answer: OnNoAnswer,
    pub ladders: HashMap<String, Ladder>,
}

impl EscalationPolicy {
    /// The level of a team (1 when not listed).
    pub fn level(&self, team: &str) -> u8 {
        self.levels.get(team).copied().unwrap_or(1)
    }

    /// The next rung for a case owned by `team` whose main intent is `intent`; `None` at
    /// the top.
    pub fn next_rung(&self, team: &str, intent: Option<&str>) -> Option<&str> {
        if team == self.management {
            return None;
        }
        let ladder = self.ladders.get(team);
        let by_intent = ladder
            .zip(intent)
            .and_then(|(ladder, intent)| ladder.by_intent.get(intent));
        let to = by_intent
            .or_else(|| ladder.and_then(|l| l.to.as_ref()))
            .map(String::as_str)
            .unwrap_or(self.management.as_str());
        (to != team).then_some(to)
    }
}

/// A validated SLA policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    pub warn_at_percent: u8,
    business_hours: bool,
    defaults: [Targets; 4],
    vip: [Partial; 4],
    teams: HashMap<String, TeamSla>,
    pub escalation: EscalationPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Partial {
    first_response: Option<Micros>,
    next_response: Option<Micros>,
    resolution: Option<Micros>,
    escalate_after: Option<Micros>,
}

impl Partial {
    fn over(self, base: Targets) -> Targets {
        let first_response = self.first_response.unwrap_or(base.first_response);
        Targets {
            first_response,
            // Next response follows an overridden first response unless set itself.
            next_response: self.next_response.unwrap_or(
                if self.first_response.is_some() && base.next_response == base.first_response {
                    first_response
                } else {
                    base.next_response
                },
            ),
            resolution: self.resolution.unwrap_or(base.resolution),
            escalate_after: self.escalate_after.unwrap_or(base.escalate_after),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct TeamSla {
    business_hours: Option<bool>,
    targets: [Partial; 4],
}

fn slot(priority: Priority) -> usize {
    priority as usize
}

impl SlaPolicy {
    /// The targets for a case of `priority` owned by `team`, for a VIP customer or not.
    pub fn targets(&self, priority: Priority, team: Option<&str>, vip: bool) -> Targets {
        let i = slot(priority);
        let mut targets = self.defaults[i];
        if vip {
            targets = self.vip[i].over(targets);
        }
        if let Some(team) = team.and_then(|t| self.teams.get(t)) {
            targets = team.targets[i].over(targets);
        }
        targets
    }

    /// Whether `team`'s clock counts only its business hours.
    pub fn business_hours(&self, team: Option<&str>) -> bool {
        team.and_then(|t| self.teams.get(t))
            .and_then(|t| t.business_hours)
            .unwrap_or(self.business_hours)
    }

    /// Reads and validates the file against the routing policy's teams.
    pub fn from_toml(text: &str, routing: &RoutingPolicy) -> Result<SlaPolicy, PolicyError> {
        let mut problems = Problems::new(text);
        let raw: RawSla = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                problems.at(err.span().unwrap_or(0..0), err.message().trim().to_string());
                return Err(problems.into_error());
            }
        };
        let mut read = Reader { problems, routing };
        let settings = raw.settings.unwrap_or_default();
        let warn_at_percent = match settings.warn_at_percent {
            Some(p) if !(1..=99).contains(p.get_ref()) => {
                read.problems.at(
                    p.span(),
                    format!(
                        "warn_at_percent must be between 1 and 99, not {}",
                        p.get_ref()
                    ),
                );
                75
            }
            Some(p) => *p.get_ref() as u8,
            None => 75,
        };
        let mut defaults = [Targets {
            first_response: 0,
            next_response: 0,
            resolution: 0,
            escalate_after: 0,
        }; 4];
        for priority in Priority::ALL {
            let name = priority.as_str();
            match raw.targets.get(name) {
                Some(t) => {
                    let partial = read.partial(t);
                    let missing: Vec<&str> = [
                        ("first_response", partial.first_response),
                        ("resolution", partial.resolution),
                        ("escalate_after", partial.escalate_after),
                    ]
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                    if !missing.is_empty() {
                        read.problems.at(
                            t.span(),
                            format!("[targets.{name}] needs {}", missing.join(", ")),
                        );
                    }
                    let first_response = partial.first_response.unwrap_or(SECOND_MICROS);
                    defaults[slot(priority)] = Targets {
                        first_response,
                        next_response: partial.next_response.unwrap_or(first_response),
                        resolution: partial.resolution.unwrap_or(SECOND_MICROS),
                        escalate_after: partial.escalate_after.unwrap_or(SECOND_MICROS),
                    };
                }
                None => read.problems.at(0..0, format!("missing [targets.{name}]")),
            }
        }
        for name in raw.targets.keys().chain(raw.vip.keys()) {
            if Priority::parse(name).is_none() {
                read.problems.at(
                    0..0,
                    format!("unknown priority `{name}` (low, medium, high or urgent)"),
                );
            }
        }
        let mut vip = [Partial::default(); 4];
        for (name, t) in &raw.vip {
            if let Some(priority) = Priority::parse(name) {
                vip[slot(priority)] = read.partial(t);
            }
        }
        let mut teams = HashMap::new();
        for (id, team) in &raw.teams {
            read.team(id, team.span());
            let mut sla = TeamSla {
                business_hours: team.get_ref().business_hours,
                ..TeamSla::default()
            };
            for (name, t) in &team.get_ref().targets {
                match Priority::parse(name) {
                    Some(priority) => sla.targets[slot(priority)] = read.partial(t),
                    None => read.problems.at(
                        t.span(),
                        format!("unknown priority `{name}` (low, medium, high or urgent)"),
                    ),
                }
            }
            teams.insert(id.clone(), sla);
        }
        let escalation = read.escalation(raw.escalation);
        read.problems.finish()?;
        Ok(SlaPolicy {
            warn_at_percent,
            business_hours: settings.business_hours.unwrap_or(true),
            defaults,
            vip,
            teams,
            escalation,
        })
    }
}

struct Reader<'a> {
    problems: Problems<'a>,
    routing: &'a RoutingPolicy,
}

impl Reader<'_> {
    fn duration(&mut self, value: &Option<Spanned<String>>, field: &str) -> Option<Micros> {
        let value = value.as_ref()?;
        match parse_duration(value.get_ref()) {
            Ok(0) => {
                self.problems
                    .at(value.span(), format!("{field} must be longer than zero"));
                None
            }
            Ok(micros) => Some(micros),
            Err(message) => {
                self.problems
                    .at(value.span(), format!("{field}: {message}"));
                None
            }
        }
    }

    fn partial(&mut self, raw: &Spanned<RawTargets>) -> Partial {
        let t = raw.get_ref();
        Partial {
            first_response: self.duration(&t.first_response, "first_response"),
            next_response: self.duration(&t.next_response, "next_response"),
            resolution: self.duration(&t.resolution, "resolution"),
            escalate_after: self.duration(&t.escalate_after, "escalate_after"),
        }
    }

    fn team(&mut self, id: &str, span: Range<usize>) -> bool {
        let known = self.routing.team(id).is_some();
        if !known {
            self.problems
                .at(span, format!("no team `{id}` in the routing policy"));
        }
        known
    }

    fn spanned_team(&mut self, name: &Spanned<String>) -> String {
        self.team(name.get_ref(), name.span());
        name.get_ref().clone()
    }

    fn escalation(&mut self, raw: Option<RawEscalation>) -> EscalationPolicy {
        let raw = raw.unwrap_or_default();
        let management = match &raw.management {
            Some(name) => self.spanned_team(name),
            None => {
                self.problems.at(
                    0..0,
                    "[escalation] needs `management` (the top of every ladder)",
                );
                String::new()
            }
        };
        let mut levels = HashMap::new();
        for (team, level) in &raw.levels {
            self.team(team, level.span());
            if !(1..=4).contains(level.get_ref()) {
                self.problems.at(
                    level.span(),
                    format!("level of `{team}` must be 1 to 4, not {}", level.get_ref()),
                );
            }
            levels.insert(team.clone(), (*level.get_ref()).clamp(1, 4) as u8);
        }
        let mut risk_watchers = BTreeMap::new();
        for (risk, teams) in &raw.risk_watchers {
            if let Some(message) = self.routing.unknown_risk(risk) {
                self.problems.at(teams.span(), message);
            }
            let names = teams
                .get_ref()
                .iter()
                .map(|t| self.spanned_team(t))
                .collect();
            risk_watchers.insert(risk.clone(), names);
        }
        let on_no_answer = match raw
            .on_no_answer
            .as_ref()
            .map(|v| (v.get_ref().as_str(), v.span()))
        {
            None | Some(("escalate", _)) => OnNoAnswer::Escalate,
            Some(("hand_back", _)) => OnNoAnswer::HandBack,
            Some((other, span)) => {
                self.problems.at(
                    span,
                    format!("on_no_answer is \"escalate\" or \"hand_back\", not \"{other}\""),
                );
                OnNoAnswer::Escalate
            }
        };
        let mut ladders = HashMap::new();
        for (team, ladder) in &raw.ladder {
            self.team(team, ladder.span());
            let to = ladder.get_ref().to.as_ref().map(|t| self.spanned_team(t));
            let by_intent = ladder
                .get_ref()
                .by_intent
                .iter()
                .map(|(intent, to)| {
                    if let Some(message) = self.routing.unknown_intent(intent) {
                        self.problems.at(to.span(), message);
                    }
                    (intent.clone(), self.spanned_team(to))
                })
                .collect();
            ladders.insert(team.clone(), Ladder { to, by_intent });
        }
        EscalationPolicy {
            levels,
            management,
            risk_watchers,
            on_no_answer,
            ladders,
        }
    }
}

/// Reads "90s", "15m", "4h", "1d" or combinations ("1h30m") into microseconds.
pub fn parse_duration(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "cannot read \"{text}\" (write e.g. \"90s\", \"15m\", \"4h\", \"1d\")"
                ));
            }
        };
        let n: i64 = number
            .parse()
            .map_err(|_| format!("cannot read \"{text}\": a number must come before `{c}`"))?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("\"{text}\" is too long"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "cannot read \"{text}\": the number {number} has no unit (s, m, h or d)"
        ));
    }
    total
        .checked_mul(SECOND_MICROS)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

// ---------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    settings: Option<RawSettings>,
    #[serde(default)]
    targets: BTreeMap<String, Spanned<RawTargets>>,
    #[serde(default)]
    vip: BTreeMap<String, Spanned<RawTargets>>,
    #[serde(default)]
    teams: BTreeMap<String, Spanned<RawTeam>>,
    escalation: Option<RawEscalation>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    warn_at_percent: Option<Spanned<u32>>,
    business_hours: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    first_response: Option<Spanned<String>>,
    next_response: Option<Spanned<String>>,
    resolution: Option<Spanned<String>>,
    escalate_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    business_hours: Option<bool>,
    #[serde(default)]
    targets: BTreeMap<String, Spanned<RawTargets>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    #[serde(default)]
    levels: BTreeMap<String, Spanned<u32>>,
    management: Option<Spanned<String>>,
    #[serde(default)]
    risk_watchers: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    on_no_answer: Option<Spanned<String>>,
    #[serde(default)]
    ladder: BTreeMap<String, Spanned<RawLadder>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLadder {
    to: Option<Spanned<String>>,
    #[serde(default)]
    by_intent: BTreeMap<String, Spanned<String>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::policy::test_support::default_policy;

    const MINUTE: Micros = 60 * SECOND_MICROS;

    fn shipped() -> SlaPolicy {
        SlaPolicy::from_toml(DEFAULT_SLA, &default_policy()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_shipped_policy_has_the_domain_defaults() {
        let policy = shipped();
        let urgent = policy.targets(Priority::Urgent, None, false);
        assert_eq!(urgent.first_response, 5 * MINUTE);
        assert_eq!(urgent.next_response, 5 * MINUTE);
        assert_eq!(urgent.resolution, 60 * MINUTE);
        assert_eq!(urgent.escalate_after, 10 * MINUTE);
        let low = policy.targets(Priority::Low, Some("tier1_care"), false);
        assert_eq!(
            (low.first_response, low.resolution, low.escalate_after),
            (240 * MINUTE, 1440 * MINUTE, 480 * MINUTE)
        );
        assert_eq!(policy.warn_at_percent, 75);
        assert!(policy.business_hours(Some("finance")));
    }

    #[test]
    fn vip_and_team_overrides_apply_in_that_order() {
        let text = format!(
            "{DEFAULT_SLA}\n[teams.finance]\nbusiness_hours = false\n[teams.finance.targets.high]\nresolution = \"1h\"\n"
        );
        let policy = SlaPolicy::from_toml(&text, &default_policy()).unwrap();
        let vip = policy.targets(Priority::High, Some("finance"), true);
        assert_eq!(vip.first_response, 5 * MINUTE, "VIP first response");
        assert_eq!(vip.resolution, 60 * MINUTE, "the team's resolution wins");
        assert!(!policy.business_hours(Some("finance")));
        assert!(policy.business_hours(Some("tier1_care")));
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let cases = [
            (
                "first_response = \"5m\"",
                "first_response = \"0m\"",
                "longer than zero",
                0,
            ),
            (
                "first_response = \"5m\"",
                "first_response = \"5 minutes\"",
                "cannot read",
                0,
            ),
            (
                "warn_at_percent = 75",
                "warn_at_percent = 100",
                "between 1 and 99",
                0,
            ),
            (
                "warn_at_percent = 75",
                "warm_at_percent = 75",
                "unknown field",
                0,
            ),
            (
                "[escalation.ladder.tier1_care]\nto = \"management\"",
                "[escalation.ladder.tier1_care]\nto = \"managment\"",
                "no team `managment`",
                0,
            ),
            (
                "billing_complaint = \"finance\", refund",
                "billing_complaint = \"finanse\", refund",
                "no team `finanse`",
                0,
            ),
            (
                "billing_complaint = \"finance\", refund",
                "biling_complaint = \"finance\", refund",
                "did you mean \"billing_complaint\"",
                0,
            ),
            ("legal_threat = [", "legal_treat = [", "unknown risk", 0),
        ];
        for (good, bad, expected, line) in cases {
            assert!(DEFAULT_SLA.contains(good), "{good}");
            let text = DEFAULT_SLA.replacen(good, bad, 1);
            let shown = SlaPolicy::from_toml(&text, &default_policy())
                .unwrap_err()
                .to_string();
            assert!(shown.contains(expected), "{bad}: {shown}");
            let want_line = if line > 0 {
                line
            } else {
                let at = text.find(bad.lines().last().unwrap_or(bad)).unwrap();
                text[..at].lines().count() + usize::from(text[..at].ends_with('\n'))
            };
            assert!(
                shown.contains(&format!("line {want_line},")),
                "{bad}: {shown}"
            );
        }
    }

    #[test]
    fn a_team_override_for_an_unknown_team_is_refused() {
        let text = format!("{DEFAULT_SLA}\n[teams.financ]\nbusiness_hours = true\n");
        let shown = SlaPolicy::from_toml(&text, &default_policy())
            .unwrap_err()
            .to_string();
        assert!(shown.contains("no team `financ`"), "{shown}");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s"), Ok(90 * SECOND_MICROS));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("1d"), Ok(1440 * MINUTE));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn ladders_send_cases_up_by_intent_then_to_management() {
        let escalation = shipped().escalation;
        assert_eq!(
            escalation.next_rung("tier1_care", Some("billing_complaint")),
            Some("finance")
        );
        assert_eq!(
            escalation.next_rung("tier1_care", Some("greeting_or_thanks")),
            Some("management")
        );
        assert_eq!(escalation.next_rung("finance", None), Some("management"));
        assert_eq!(escalation.next_rung("management", None), None);
        assert_eq!(escalation.level("engineering_incident"), 3);
    }
}
