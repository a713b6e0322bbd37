//! Choosing an agent inside the owning team, explainably.
//!
//! This module owns the *agent-level* step of routing: given the owner the policy decided
//! ([`crate::policy::routing::Decision::owner`]), what the case needs ([`CaseNeeds`]), a snapshot
//! of the agents ([`AgentView`]) and the current instant, [`route`] decides where the case
//! goes and says why, agent by agent. It is pure and deterministic (no clock, no
//! randomness): the same inputs give the same outcome, so an outcome can be replayed and
//! explained later. Presence, load and capacity bookkeeping belong to the server.
//!
//! ## Steps
//!
//! 1. **VIP redirection.** A VIP case of a team with a `vip_queue` goes to that team (once;
//!    whatever the strategy).
//! 2. **Hours.** If the team is closed, its `outside_hours` applies: `queue` (wait for the
//!    opening), `bot` (hold for automation), or `team:<id>`, followed while the teams on
//!    the chain are closed. When no team on the chain is open, the case stays on the team
//!    where the chain started, queued or held as the last closed team says.
//! 3. **Eligibility.** An agent must be `Online` with `load < capacity`. The strategy adds
//!    hard requirements: `skill_based` needs every needed skill, `language_based` the
//!    case's language (when known), `vip` a senior agent for VIP cases when
//!    `senior_only_for_vip`.
//! 4. **Choice.** Among eligible agents, those that fit the case best come first: fewer
//!    missing skills, then speaking the case's language, then (VIP cases in a `vip` team)
//!    seniority; what a strategy does not require, it still prefers. Then the strategy's
//!    order: `round_robin` takes the agent assigned least recently; the others take the
//!    most free capacity, then the largest share of capacity free, then the least recently
//!    assigned. Remaining ties go to the lowest id.
//!
//! Nobody eligible means `Queue` with a reason naming what was missing. Every agent of the
//! final team gets a [`CandidateReport`], chosen or not, with its reasons.
//!
//! Cost: one pass over the agents to evaluate and pick, one to explain; no sorting.

use crate::policy::routing::{Decision, OutsideHours, RoutingPolicy, Strategy, TagSet, Team};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Write as _;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Whether an agent can take work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Away,
    Offline,
}

/// A snapshot of one agent, as the server sees it at routing time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: i64,
    pub name: String,
    /// The team the agent works in (a team id of the policy).
    pub team: String,
    pub skills: Vec<String>,
    /// ISO 639-1 codes.
    pub languages: Vec<String>,
    /// Cases the agent may hold at once.
    pub capacity: u32,
    /// Cases the agent holds now.
    pub load: u32,
    pub presence: Presence,
    pub senior: bool,
    /// Microseconds since the Unix epoch; 0 (or less) when never assigned.
    pub last_assigned_at: i64,
}

/// What the case asks of the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseNeeds {
    /// The customer's language (ISO 639-1), when known.
    pub language: Option<String>,
    pub skills: Vec<String>,
    pub vip: bool,
}

impl CaseNeeds {
    /// The needs of a case from its decision (skills) and tags (language, and VIP from
    /// the `vip_customer` context value).
    pub fn for_case(decision: &Decision, tags: &TagSet) -> CaseNeeds {
        CaseNeeds {
            language: Some(tags.language.clone()).filter(|l| !l.is_empty()),
            skills: decision.skills.clone(),
            vip: tags.context.iter().any(|c| c == "vip_customer"),
        }
    }
}

/// Where the case goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Assign to this agent id.
    Assign(i64),
    /// Wait in the final team's queue.
    Queue { reason: String },
    /// Hold for automation until the team opens.
    HoldForBot { reason: String },
}

/// Why one agent of the final team was or was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub agent_id: i64,
    pub name: String,
    pub eligible: bool,
    pub chosen: bool,
    pub reasons: Vec<String>,
    /// The strategy's own measure, higher is better: minutes since the last assignment for
    /// `round_robin`; free capacity plus the fraction of capacity free for the others.
    /// 0 for ineligible agents. Fit (skills, language, seniority) is compared before it.
    pub score: f64,
}

/// The outcome of routing one case, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteOutcome {
    /// The team that holds the case (after VIP and time-based redirection).
    pub team: String,
    pub action: RouteAction,
    /// What happened, in order, in plain English.
    pub steps: Vec<String>,
    /// Every agent of the final team, in input order.
    pub candidates: Vec<CandidateReport>,
}

/// Routes a case to an agent of `team` (or a queue). See the module documentation.
pub fn route(
    policy: &RoutingPolicy,
    team: &str,
    needs: &CaseNeeds,
    agents: &[AgentView],
    now: i64,
) -> RouteOutcome {
    let mut steps = Vec::new();
    let Some(requested) = policy.team(team) else {
        let reason = format!("team {team} is not in the routing policy");
        steps.push(reason.clone());
        return RouteOutcome {
            team: team.to_string(),
            candidates: closed_reports(agents, team, &reason),
            action: RouteAction::Queue { reason },
            steps,
        };
    };

    // 1. VIP redirection.
    let mut start = requested;
    if needs.vip
        && let Some(vip) = requested.vip_queue.as_deref().and_then(|v| policy.team(v))
    {
        steps.push(format!(
            "VIP case: {} sends VIP cases to {}",
            requested.id, vip.id
        ));
        start = vip;
    }

    // 2. Hours.
    let (team, held) = follow_hours(policy, start, now, &mut steps);
    if let Some(action) = held {
        let why = match &action {
            RouteAction::Queue { reason } | RouteAction::HoldForBot { reason } => reason.clone(),
            RouteAction::Assign(_) => String::new(),
        };
        return RouteOutcome {
            team: team.id.clone(),
            candidates: closed_reports(agents, &team.id, &why),
            action,
            steps,
        };
    }
    if let Some(lang) = &needs.language
        && !team.languages.is_empty()
        && !team.languages.contains(lang)
    {
        steps.push(format!("{} does not list language {lang}", team.id));
    }

    // 3 and 4. Eligibility and choice.
    let mode = Mode::new(team, needs);
    let in_team = |a: &&AgentView| a.team == team.id;
    let mut members = 0;
    let mut best: Option<Eval<'_>> = None;
    for agent in agents.iter().filter(in_team) {
        members += 1;
        let eval = Eval::new(agent, needs, &mode);
        if eval.eligible()
            && best
                .as_ref()
                .is_none_or(|b| mode.compare(&eval, b) == Ordering::Less)
        {
            best = Some(eval);
        }
    }

    // Agents are evaluated again rather than kept: cheaper than a buffer per call.
    let chosen = best.as_ref();
    let mut texts = Texts::new(needs, chosen.map(|c| c.agent), now);
    let mut candidates = Vec::with_capacity(members);
    for agent in agents.iter().filter(in_team) {
        let eval = Eval::new(agent, needs, &mode);
        let is_chosen = chosen.is_some_and(|c| std::ptr::eq(c.agent, agent));
        candidates.push(mode.report(&eval, chosen, is_chosen, &mut texts));
    }
    let action = match chosen {
        Some(c) => {
            steps.push(format!(
                "assigned to {} (agent {}) by {} in {}",
                c.agent.name, c.agent.id, team.strategy, team.id
            ));
            RouteAction::Assign(c.agent.id)
        }
        None => {
            let evaluated: Vec<Eval<'_>> = agents
                .iter()
                .filter(in_team)
                .map(|a| Eval::new(a, needs, &mode))
                .collect();
            let reason = no_agent_reason(team, &evaluated, needs, &mode);
            steps.push(reason.clone());
            RouteAction::Queue { reason }
        }
    };
    RouteOutcome {
        team: team.id.clone(),
        action,
        steps,
        candidates,
    }
}

/// Follows `outside_hours` from `start`; returns the team that holds the case and, when
/// no team on the chain is open, the queue or hold action.
fn follow_hours<'p>(
    policy: &'p RoutingPolicy,
    start: &'p Team,
    now: i64,
    steps: &mut Vec<String>,
) -> (&'p Team, Option<RouteAction>) {
    let mut current = start;
    let mut visited: Vec<&str> = vec![&start.id];
    let mut closed_notes: Vec<String> = Vec::new();
    loop {
        if current.calendar.is_open(now) {
            return (current, None);
        }
        let closed = closed_note(current, now);
        let next = match &current.outside_hours {
            OutsideHours::Team(next) => policy
                .team(next)
                .filter(|n| !visited.contains(&n.id.as_str())),
            OutsideHours::Queue | OutsideHours::Bot => None,
        };
        if let Some(next) = next {
            if next.calendar.is_open(now) {
                steps.push(format!("{closed}; routed to {} which is open", next.id));
            } else {
                steps.push(format!(
                    "{closed}; outside_hours sends its cases to {}",
                    next.id
                ));
            }
            closed_notes.push(closed);
            visited.push(&next.id);
            current = next;
            continue;
        }
        closed_notes.push(closed);
        let mut reason = closed_notes.join("; ");
        let action = match current.outside_hours {
            OutsideHours::Bot => {
                let _ = write!(reason, "; held for automation until {} opens", start.id);
                RouteAction::HoldForBot { reason }
            }
            _ => {
                if current.id == start.id {
                    reason.push_str("; queued until it opens");
                } else {
                    let _ = write!(reason, "; queued on {} until it opens", start.id);
                }
                RouteAction::Queue { reason }
            }
        };
        steps.push(match &action {
            RouteAction::Queue { reason } | RouteAction::HoldForBot { reason } => reason.clone(),
            RouteAction::Assign(_) => String::new(),
        });
        return (start, Some(action));
    }
}

/// "finance is closed (Europe/Madrid, opens Mon 09:00)".
fn closed_note(team: &Team, now: i64) -> String {
    let zone = team.calendar.time_zone_name();
    match team.calendar.next_open(now) {
        Some(at) => format!(
            "{} is closed ({zone}, opens {})",
            team.id,
            team.calendar.local_label(at, now)
        ),
        None => format!("{} is closed ({zone}, no opening hours ahead)", team.id),
    }
}

/// Reports for the agents of a team that takes no assignment now.
fn closed_reports(agents: &[AgentView], team: &str, why: &str) -> Vec<CandidateReport> {
    agents
        .iter()
        .filter(|a| a.team == team)
        .map(|a| {
            let mut reasons = vec![format!("not assigned: {why}")];
            push_state_problems(a, &mut reasons);
            CandidateReport {
                agent_id: a.id,
                name: a.name.clone(),
                eligible: false,
                chosen: false,
                reasons,
                score: 0.0,
            }
        })
        .collect()
}

fn push_state_problems(agent: &AgentView, out: &mut Vec<String>) {
    match agent.presence {
        Presence::Online => {}
        Presence::Away => out.push("away".to_string()),
        Presence::Offline => out.push("offline".to_string()),
    }
    if agent.load >= agent.capacity {
        out.push(format!("at capacity {}/{}", agent.load, agent.capacity));
    }
}

/// How the final team chooses, for this case.
struct Mode {
    strategy: Strategy,
    require_skills: bool,
    require_language: bool,
    /// VIP case in a `vip` team: seniority matters (required or preferred).
    senior_matters: bool,
    require_senior: bool,
}

impl Mode {
    fn new(team: &Team, needs: &CaseNeeds) -> Mode {
        let vip_team = team.strategy == Strategy::Vip && needs.vip;
        Mode {
            strategy: team.strategy,
            require_skills: team.strategy == Strategy::SkillBased,
            require_language: team.strategy == Strategy::LanguageBased,
            senior_matters: vip_team,
            require_senior: vip_team && team.senior_only_for_vip,
        }
    }

    /// `Less` when `a` should be chosen before `b` (both eligible).
    fn compare(&self, a: &Eval<'_>, b: &Eval<'_>) -> Ordering {
        self.fit_order(a, b)
            .then_with(|| self.strategy_order(a, b))
            .then_with(|| a.agent.id.cmp(&b.agent.id))
    }

    fn fit_order(&self, a: &Eval<'_>, b: &Eval<'_>) -> Ordering {
        a.missing_skills
            .cmp(&b.missing_skills)
            .then_with(|| b.speaks.cmp(&a.speaks))
            .then_with(|| {
                if self.senior_matters {
                    b.agent.senior.cmp(&a.agent.senior)
                } else {
                    Ordering::Equal
                }
            })
    }

    fn strategy_order(&self, a: &Eval<'_>, b: &Eval<'_>) -> Ordering {
        match self.strategy {
            Strategy::RoundRobin => a.agent.last_assigned_at.cmp(&b.agent.last_assigned_at),
            _ => b
                .free
                .cmp(&a.free)
                .then_with(|| share_order(b, a))
                .then_with(|| a.agent.last_assigned_at.cmp(&b.agent.last_assigned_at)),
        }
    }

    fn score(&self, eval: &Eval<'_>, now: i64) -> f64 {
        if !eval.eligible() {
            return 0.0;
        }
        match self.strategy {
            Strategy::RoundRobin => {
                let since = now.saturating_sub(eval.agent.last_assigned_at.max(0));
                (since / MICROS_PER_SECOND) as f64 / 60.0
            }
            _ => {
                let capacity = f64::from(eval.agent.capacity.max(1));
                f64::from(eval.free) + f64::from(eval.free) / capacity
            }
        }
    }

    fn report(
        &self,
        eval: &Eval<'_>,
        chosen: Option<&Eval<'_>>,
        is_chosen: bool,
        ctx: &mut Texts<'_>,
    ) -> CandidateReport {
        let agent = eval.agent;
        let mut reasons = Vec::new();
        if !eval.eligible() {
            push_state_problems(agent, &mut reasons);
            if self.require_skills && eval.missing_skills > 0 {
                reasons.push(ctx.lacks(eval));
            }
            if self.require_language && !eval.speaks {
                reasons.push(ctx.cached(Text::NoLanguage));
            }
            if self.require_senior && !agent.senior {
                reasons.push("not senior (VIP case)".to_string());
            }
        } else if is_chosen {
            reasons.push(self.chosen_reason(eval, ctx.now));
            let needs = ctx.needs;
            if !needs.skills.is_empty() {
                if eval.missing_skills == 0 {
                    reasons.push(format!("has skills {}", needs.skills.join(", ")));
                } else {
                    let mut text = ctx.lacks(eval);
                    text.push_str(" (no eligible agent has them all)");
                    reasons.push(text);
                }
            }
            if let Some(lang) = &needs.language {
                reasons.push(if eval.speaks {
                    format!("speaks {lang}")
                } else {
                    format!("does not speak {lang} (no eligible agent who does)")
                });
            }
            if self.senior_matters && agent.senior {
                reasons.push("senior (VIP case)".to_string());
            }
        } else if let Some(chosen) = chosen {
            reasons.reserve_exact(1);
            reasons.push(self.lost_reason(eval, chosen, ctx));
        }
        CandidateReport {
            agent_id: agent.id,
            name: agent.name.clone(),
            eligible: eval.eligible(),
            chosen: is_chosen,
            reasons,
            score: self.score(eval, ctx.now),
        }
    }

    fn chosen_reason(&self, eval: &Eval<'_>, now: i64) -> String {
        let agent = eval.agent;
        let mut text = String::with_capacity(64);
        match self.strategy {
            Strategy::RoundRobin => {
                text.push_str("chosen: round-robin turn (least recently assigned, ");
                write_ago(&mut text, agent.last_assigned_at, now);
                text.push(')');
            }
            _ => {
                let _ = write!(
                    text,
                    "chosen: most free capacity ({} of {} free)",
                    eval.free, agent.capacity
                );
            }
        }
        text
    }

    /// Why an eligible agent lost to the chosen one: the first criterion that differs.
    fn lost_reason(&self, eval: &Eval<'_>, chosen: &Eval<'_>, ctx: &mut Texts<'_>) -> String {
        let (a, c) = (eval.agent, chosen.agent);
        if eval.missing_skills != chosen.missing_skills {
            if eval.missing_skills == ctx.needs.skills.len() {
                return ctx.cached(Text::LacksAllVersusChosen);
            }
            let mut text = ctx.lacks(eval);
            let _ = write!(text, "; {} has more of the needed skills", c.name);
            return text;
        }
        if eval.speaks != chosen.speaks {
            return ctx.cached(Text::NoLanguageVersusChosen);
        }
        if self.senior_matters && a.senior != c.senior {
            return ctx.cached(Text::NotSeniorVersusChosen);
        }
        let mut text = String::with_capacity(96);
        let now = ctx.now;
        match self.strategy {
            Strategy::RoundRobin => {
                if a.last_assigned_at != c.last_assigned_at {
                    text.push_str(ctx.prefix(Text::NotItsTurn));
                    write_ago(&mut text, a.last_assigned_at, now);
                    text.push(')');
                } else {
                    let _ = write!(
                        text,
                        "round-robin: same turn as {}, who has a lower id",
                        c.name
                    );
                }
            }
            _ => {
                if eval.free != chosen.free {
                    return ctx.less_free(eval.free, chosen.free);
                } else if share_order(eval, chosen) != Ordering::Equal {
                    let _ = write!(
                        text,
                        "lower score than {}: smaller share of capacity free ({}/{} vs {}/{})",
                        c.name, eval.free, a.capacity, chosen.free, c.capacity
                    );
                } else if a.last_assigned_at != c.last_assigned_at {
                    text.push_str(ctx.prefix(Text::SameFreeAssignedLater));
                    write_ago(&mut text, a.last_assigned_at, now);
                    text.push(')');
                } else {
                    let _ = write!(text, "tied with {}, who has a lower id", c.name);
                }
            }
        }
        text
    }
}

/// Texts that many candidate reports of one routing share, built once on first use.
#[derive(Clone, Copy)]
enum Text {
    /// "lacks skill X" for an agent missing every needed skill.
    LacksAll,
    LacksAllVersusChosen,
    NoLanguage,
    NoLanguageVersusChosen,
    NotSeniorVersusChosen,
    /// "round-robin: not its turn; X was assigned less recently (5 min ago vs " (the
    /// agent's own time follows).
    NotItsTurn,
    /// "same free capacity as X, who was assigned less recently (5 min ago vs ".
    SameFreeAssignedLater,
}

struct Texts<'a> {
    needs: &'a CaseNeeds,
    chosen: Option<&'a AgentView>,
    now: i64,
    cache: [Option<String>; 7],
    less_free: Vec<(u32, String)>,
}

impl<'a> Texts<'a> {
    fn new(needs: &'a CaseNeeds, chosen: Option<&'a AgentView>, now: i64) -> Texts<'a> {
        Texts {
            needs,
            chosen,
            now,
            cache: Default::default(),
            less_free: Vec::new(),
        }
    }

    /// "lower score than X: less free capacity (2 free vs 5)", shared by every agent with
    /// the same free capacity.
    fn less_free(&mut self, free: u32, chosen_free: u32) -> String {
        if let Some((_, text)) = self.less_free.iter().find(|(f, _)| *f == free) {
            return text.clone();
        }
        let chosen = self.chosen.map_or("?", |c| c.name.as_str());
        let text =
            format!("lower score than {chosen}: less free capacity ({free} free vs {chosen_free})");
        if self.less_free.len() < 64 {
            self.less_free.push((free, text.clone()));
        }
        text
    }

    fn cached(&mut self, text: Text) -> String {
        let slot = text as usize;
        if let Some(done) = &self.cache[slot] {
            return done.clone();
        }
        let chosen = self.chosen.map_or("?", |c| c.name.as_str());
        let language = self.needs.language.as_deref().unwrap_or("?");
        let made = match text {
            Text::LacksAll => {
                let mut out = String::with_capacity(48);
                write_lacks(&mut out, self.needs, None);
                out
            }
            Text::LacksAllVersusChosen => {
                let mut out = self.cached(Text::LacksAll);
                let _ = write!(out, "; {chosen} has more of the needed skills");
                out
            }
            Text::NoLanguage => format!("does not speak {language}"),
            Text::NoLanguageVersusChosen => {
                format!("does not speak {language}; {chosen} does")
            }
            Text::NotSeniorVersusChosen => format!("not senior; {chosen} is (VIP case)"),
            Text::NotItsTurn | Text::SameFreeAssignedLater => {
                let mut out = String::with_capacity(96);
                out.push_str(if matches!(text, Text::NotItsTurn) {
                    "round-robin: not its turn; "
                } else {
                    "same free capacity as "
                });
                out.push_str(chosen);
                out.push_str(if matches!(text, Text::NotItsTurn) {
                    " was assigned less recently ("
                } else {
                    ", who was assigned less recently ("
                });
                write_ago(
                    &mut out,
                    self.chosen.map_or(0, |c| c.last_assigned_at),
                    self.now,
                );
                out.push_str(" vs ");
                out
            }
        };
        self.cache[slot] = Some(made.clone());
        made
    }

    /// A cached text, borrowed (to be continued by the caller).
    fn prefix(&mut self, text: Text) -> &str {
        let slot = text as usize;
        if self.cache[slot].is_none() {
            self.cached(text);
        }
        self.cache[slot].as_deref().unwrap_or("")
    }

    /// "lacks skill X" / "lacks skills X, Y" for this agent.
    fn lacks(&mut self, eval: &Eval<'_>) -> String {
        if eval.missing_skills == self.needs.skills.len() {
            return self.cached(Text::LacksAll);
        }
        let mut out = String::with_capacity(48);
        write_lacks(&mut out, self.needs, Some(eval.agent));
        out
    }
}

fn write_lacks(out: &mut String, needs: &CaseNeeds, agent: Option<&AgentView>) {
    let missing = |s: &&String| agent.is_none_or(|a| !a.skills.contains(s));
    let count = needs.skills.iter().filter(missing).count();
    out.push_str(if count == 1 {
        "lacks skill "
    } else {
        "lacks skills "
    });
    for (i, skill) in needs.skills.iter().filter(missing).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(skill);
    }
}

/// `a`'s share of capacity free compared with `b`'s (`Greater` when `a` has more), exact.
fn share_order(a: &Eval<'_>, b: &Eval<'_>) -> Ordering {
    let lhs = u64::from(a.free) * u64::from(b.agent.capacity.max(1));
    let rhs = u64::from(b.free) * u64::from(a.agent.capacity.max(1));
    lhs.cmp(&rhs)
}

/// "never assigned", "just now", "12 min ago", "3 h 5 min ago", "2 d ago".
fn write_ago(out: &mut String, at: i64, now: i64) {
    if at <= 0 {
        out.push_str("never assigned");
        return;
    }
    let minutes = now.saturating_sub(at) / (60 * MICROS_PER_SECOND);
    match minutes {
        i64::MIN..=0 => out.push_str("just now"),
        1..=59 => {
            push_number(out, minutes);
            out.push_str(" min ago");
        }
        60..=1439 => {
            push_number(out, minutes / 60);
            out.push_str(" h ");
            push_number(out, minutes % 60);
            out.push_str(" min ago");
        }
        _ => {
            push_number(out, minutes / 1440);
            out.push_str(" d ago");
        }
    }
}

/// Appends a non-negative number in decimal (the formatting machinery is slow for the
/// hundreds of short texts one routing writes).
fn push_number(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut n = n.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// One agent against the case.
struct Eval<'a> {
    agent: &'a AgentView,
    online: bool,
    has_room: bool,
    free: u32,
    missing_skills: usize,
    speaks: bool,
    /// Fails a requirement of the strategy.
    blocked: bool,
}

impl<'a> Eval<'a> {
    fn new(agent: &'a AgentView, needs: &CaseNeeds, mode: &Mode) -> Eval<'a> {
        let missing_skills = needs
            .skills
            .iter()
            .filter(|s| !agent.skills.contains(s))
            .count();
        let speaks = needs
            .language
            .as_ref()
            .is_none_or(|l| agent.languages.contains(l));
        let blocked = (mode.require_skills && missing_skills > 0)
            || (mode.require_language && !speaks)
            || (mode.require_senior && !agent.senior);
        Eval {
            agent,
            online: agent.presence == Presence::Online,
            has_room: agent.load < agent.capacity,
            free: agent.capacity.saturating_sub(agent.load),
            missing_skills,
            speaks,
            blocked,
        }
    }

    fn available(&self) -> bool {
        self.online && self.has_room
    }

    fn eligible(&self) -> bool {
        self.available() && !self.blocked
    }
}

/// "no online agent with capacity in finance (3 agents: 1 offline, 2 at capacity)", or
/// what the available agents lacked.
fn no_agent_reason(team: &Team, evaluated: &[Eval<'_>], needs: &CaseNeeds, mode: &Mode) -> String {
    if evaluated.is_empty() {
        return format!("no agent in {}", team.id);
    }
    let available: Vec<&Eval<'_>> = evaluated.iter().filter(|e| e.available()).collect();
    if available.is_empty() {
        let count = |f: &dyn Fn(&Eval<'_>) -> bool| evaluated.iter().filter(|e| f(e)).count();
        let offline = count(&|e| e.agent.presence == Presence::Offline);
        let away = count(&|e| e.agent.presence == Presence::Away);
        let full = count(&|e| e.online && !e.has_room);
        let mut parts = Vec::new();
        if offline > 0 {
            parts.push(format!("{offline} offline"));
        }
        if away > 0 {
            parts.push(format!("{away} away"));
        }
        if full > 0 {
            parts.push(format!("{full} at capacity"));
        }
        return format!(
            "no online agent with capacity in {} ({} agents: {})",
            team.id,
            evaluated.len(),
            parts.join(", ")
        );
    }
    let mut lacking = Vec::new();
    if mode.require_skills {
        lacking.push(format!("has skills {}", needs.skills.join(", ")));
    }
    if mode.require_language {
        lacking.push(format!(
            "speaks {}",
            needs.language.as_deref().unwrap_or("?")
        ));
    }
    if mode.require_senior {
        lacking.push("is senior (VIP case)".to_string());
    }
    format!(
        "no online agent with capacity in {} {} ({} available agents do not)",
        team.id,
        lacking.join(" and "),
        available.len()
    )
}

#[cfg(test)]
mod tests;
