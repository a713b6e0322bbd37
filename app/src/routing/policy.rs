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
use chrono::Weekday;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;
use toml::Spanned;

// ---------------------------------------------------------------------------------------
// Inputs: the taxonomy and the tags of one message
// ---------------------------------------------------------------------------------------

/// The tag values triage can produce, from the triage taxonomy. The policy refuses any
/// value not listed here, so a typo in `routing.toml` never silently matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownTags {
    pub intents: Vec<String>,
    pub risks: Vec<String>,
    /// Ordered from the lowest to the highest level.
    pub urgencies: Vec<String>,
    /// ISO 639-1 codes.
    pub languages: Vec<String>,
    pub tones: Vec<String>,
    /// Customer context values (`vip_customer`, `repeat_contact`, ...).
    pub contexts: Vec<String>,
}

impl KnownTags {
    /// The default taxonomy Parley ships (see the domain documentation). The server should
    /// build its `KnownTags` from the triage configuration it actually loaded.
    pub fn default_taxonomy() -> KnownTags {
        match crate::triage::TriageConfig::from_toml(crate::triage::DEFAULT_CONFIG) {
            Ok(config) => crate::routing::engine::known_tags(&config),
            // The shipped taxonomy is checked by its own tests; an empty set refuses every
            // tag name rather than accepting a wrong one.
            Err(_) => KnownTags::default(),
        }
    }
}

/// One tag with the classifier's confidence (0 to 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub label: String,
    pub confidence: f32,
}

impl Scored {
    pub fn new(label: &str, confidence: f32) -> Scored {
        Scored {
            label: label.to_string(),
            confidence,
        }
    }
}

/// Everything routing knows about one message: triage's output plus the customer context
/// the server adds (VIP, repeat contact, ...). Values outside the taxonomy are ignored
/// (and mentioned in the decision's reasons).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagSet {
    pub intents: Vec<Scored>,
    pub risks: Vec<Scored>,
    pub urgency: String,
    /// ISO 639-1; empty when unknown.
    pub language: String,
    pub tones: Vec<String>,
    pub context: Vec<String>,
    pub low_confidence: bool,
}

// ---------------------------------------------------------------------------------------
// The validated configuration
// ---------------------------------------------------------------------------------------

/// `[settings]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Owner of a case when no rule names one.
    pub default_team: String,
    /// Owner of a low-confidence case when no rule names one.
    pub review_team: String,
    /// A new case from the same contact within this window is marked `repeat_contact`.
    pub repeat_contact_window_secs: u64,
}

/// What to do with an acknowledgement ("ok", "thanks") that arrives after resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckAfterResolution {
    /// Close the resolved case (the customer confirmed).
    Close,
    /// Record it and do nothing (it does not reopen the case).
    Ignore,
}

/// `[noise]`: parsed and validated here, implemented by the server's noise filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoiseSettings {
    /// More messages than this from one contact within the window are rate-limited.
    pub rate_limit_messages: u32,
    pub rate_limit_window_secs: u64,
    /// The same near-duplicate text from this many distinct contacts within the window
    /// becomes a cluster.
    pub cluster_min_contacts: u32,
    pub cluster_window_secs: u64,
    /// Texts with fewer words are never clustered.
    pub cluster_min_words: u32,
    pub suppress_spam: bool,
    pub ack_after_resolution: AckAfterResolution,
}

impl Default for NoiseSettings {
    fn default() -> Self {
        NoiseSettings {
            rate_limit_messages: 20,
            rate_limit_window_secs: 60,
            cluster_min_contacts: 3,
            cluster_window_secs: 3600,
            cluster_min_words: 5,
            suppress_spam: true,
            ack_after_resolution: AckAfterResolution::Close,
        }
    }
}

/// How a team chooses an agent (see [`super::select`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    RoundRobin,
    LoadBalanced,
    SkillBased,
    LanguageBased,
    Vip,
}

impl Strategy {
    const ALL: [Strategy; 5] = [
        Strategy::RoundRobin,
        Strategy::LoadBalanced,
        Strategy::SkillBased,
        Strategy::LanguageBased,
        Strategy::Vip,
    ];

    /// The configuration name (`"round_robin"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LoadBalanced => "load_balanced",
            Strategy::SkillBased => "skill_based",
            Strategy::LanguageBased => "language_based",
            Strategy::Vip => "vip",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a case that reaches a team while it is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideHours {
    /// Wait in the team's queue until it opens.
    Queue,
    /// Hold for automation until the team opens.
    Bot,
    /// Route to this other team if it is open (its own `outside_hours` applies if not).
    Team(String),
}

impl fmt::Display for OutsideHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutsideHours::Queue => f.write_str("queue"),
            OutsideHours::Bot => f.write_str("bot"),
            OutsideHours::Team(team) => write!(f, "team:{team}"),
        }
    }
}

/// One `[teams.<id>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: String,
    /// Display name (the id when not configured).
    pub name: String,
    pub strategy: Strategy,
    /// ISO 639-1 languages the team serves (empty: not declared).
    pub languages: Vec<String>,
    /// Skills the team's agents cover; rules may only ask for skills some team lists.
    pub skills: Vec<String>,
    pub calendar: Calendar,
    pub outside_hours: OutsideHours,
    /// Team that takes this team's VIP cases.
    pub vip_queue: Option<String>,
    /// With strategy `vip`: VIP cases only go to senior agents.
    pub senior_only_for_vip: bool,
    /// Line of the team's table in the policy file.
    pub line: usize,
}

pub use crate::domain::Priority;

/// Who may answer: a human reviews every outbound message, or automation may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    Human,
    Automation,
}

impl Review {
    pub fn as_str(self) -> &'static str {
        match self {
            Review::Human => "human",
            Review::Automation => "automation",
        }
    }
}

impl fmt::Display for Review {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision's review mode is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The classifier was unsure: a human reviews, with the model output attached.
    LowConfidence,
    /// This rule asked for it.
    Rule(String),
    /// No matching rule allowed automation.
    Default,
}

// ---------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------

/// A set of small integer ids (tag values of one family).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn insert(&mut self, id: u32) {
        let word = (id / 64) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    fn contains(&self, id: u32) -> bool {
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// The values of one tag family, numbered in taxonomy order.
#[derive(Debug, Clone, Default)]
struct Vocab {
    family: &'static str,
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    fn new(family: &'static str, values: &[String]) -> Vocab {
        let mut vocab = Vocab {
            family,
            ..Vocab::default()
        };
        for value in values {
            if !vocab.ids.contains_key(value) {
                vocab.ids.insert(value.clone(), vocab.names.len() as u32);
                vocab.names.push(value.clone());
            }
        }
        vocab
    }

    fn id(&self, label: &str) -> Option<u32> {
        self.ids.get(label).copied()
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }

    /// "unknown intent "x" (known: a, b; did you mean "y"?)"
    fn unknown(&self, label: &str) -> String {
        unknown_value(self.family, label, &self.names)
    }
}

fn unknown_value(family: &str, label: &str, known: &[String]) -> String {
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    match suggest(label, known) {
        Some(close) => {
            format!("unknown {family} \"{label}\" (known: {list}; did you mean \"{close}\"?)")
        }
        None => format!("unknown {family} \"{label}\" (known: {list})"),
    }
}

/// The closest known value, when it is close enough to be a typo.
fn suggest<'a>(label: &str, known: &'a [String]) -> Option<&'a str> {
    let limit = (label.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(label, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A message's tags as ids (unknown values dropped).
struct Resolved {
    intents: Vec<(u32, f32)>,
    risks: Vec<(u32, f32)>,
    urgency: u32,
    language: Option<u32>,
    tones: Vec<u32>,
    context: Vec<u32>,
    low_confidence: bool,
}

/// The compiled `when` of a rule.
#[derive(Debug, Clone, Default)]
struct When {
    intents: Option<Bits>,
    risks: Option<Bits>,
    min_confidence: Option<f32>,
    urgency_at_least: Option<u32>,
    languages: Option<Bits>,
    tones: Option<Bits>,
    context: Option<Bits>,
    low_confidence: Option<bool>,
}

impl When {
    fn scored_ok(&self, mask: &Bits, &(id, confidence): &(u32, f32)) -> bool {
        mask.contains(id) && self.min_confidence.is_none_or(|min| confidence >= min)
    }

    fn matches(&self, t: &Resolved) -> bool {
        if self
            .low_confidence
            .is_some_and(|want| want != t.low_confidence)
        {
            return false;
        }
        if self.urgency_at_least.is_some_and(|min| t.urgency < min) {
            return false;
        }
        if let Some(mask) = &self.languages
            && !t.language.is_some_and(|id| mask.contains(id))
        {
            return false;
        }
        if let Some(mask) = &self.intents
            && !t.intents.iter().any(|s| self.scored_ok(mask, s))
        {
            return false;
        }
        if let Some(mask) = &self.risks
            && !t.risks.iter().any(|s| self.scored_ok(mask, s))
        {
            return false;
        }
        if let Some(mask) = &self.tones
            && !t.tones.iter().any(|&id| mask.contains(id))
        {
            return false;
        }
        if let Some(mask) = &self.context
            && !t.context.iter().any(|&id| mask.contains(id))
        {
            return false;
        }
        true
    }

    /// What made a matching rule match, in plain words.
    fn describe(&self, t: &Resolved, p: &RoutingPolicy) -> Vec<String> {
        let mut on = Vec::new();
        let scored = |family: &str, name: &str, confidence: f32| {
            let mut text = String::with_capacity(family.len() + name.len() + 8);
            text.push_str(family);
            text.push(' ');
            text.push_str(name);
            text.push_str(" (");
            push_confidence(&mut text, confidence);
            text.push(')');
            text
        };
        if let Some(mask) = &self.intents {
            for s in t.intents.iter().filter(|s| self.scored_ok(mask, s)) {
                on.push(scored("intent", p.intents.name(s.0), s.1));
            }
        }
        if let Some(mask) = &self.risks {
            for s in t.risks.iter().filter(|s| self.scored_ok(mask, s)) {
                on.push(scored("risk", p.risks.name(s.0), s.1));
            }
        }
        if let Some(min) = self.urgency_at_least {
            on.push(format!(
                "urgency {} (at least {})",
                p.urgencies.name(t.urgency),
                p.urgencies.name(min)
            ));
        }
        if let Some(id) = t.language.filter(|_| self.languages.is_some()) {
            on.push(format!("language {}", p.languages.name(id)));
        }
        if let Some(mask) = &self.tones {
            for &id in t.tones.iter().filter(|&&id| mask.contains(id)) {
                on.push(format!("tone {}", p.tones.name(id)));
            }
        }
        if let Some(mask) = &self.context {
            for &id in t.context.iter().filter(|&&id| mask.contains(id)) {
                on.push(format!("context {}", p.contexts.name(id)));
            }
        }
        match self.low_confidence {
            Some(true) => on.push("low confidence".into()),
            Some(false) => on.push("confident classification".into()),
            None => {}
        }
        on
    }
}

/// Appends a confidence as "0.91" (two decimals, clamped to 0..=1; "?" when not a number),
/// without the cost of float formatting.
fn push_confidence(out: &mut String, confidence: f32) {
    if confidence.is_nan() {
        out.push('?');
        return;
    }
    let hundredths = (confidence.clamp(0.0, 1.0) * 100.0).round() as u32;
    if hundredths >= 100 {
        out.push_str("1.00");
        return;
    }
    out.push_str("0.");
    out.push(char::from(b'0' + (hundredths / 10) as u8));
    out.push(char::from(b'0' + (hundredths % 10) as u8));
}

/// The compiled `then` of a rule.
#[derive(Debug, Clone, Default)]
struct Then {
    owner: Option<String>,
    watchers: Vec<String>,
    priority: Option<Priority>,
    urgency: Option<u32>,
    raise_urgency: u32,
    review: Option<Review>,
    skills: Vec<String>,
    suppress: Option<String>,
    stop: bool,
}

/// One compiled `[[rules]]` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    line: usize,
    when: When,
    then: Then,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Line of the rule's `[[rules]]` header.
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn owner(&self) -> Option<&str> {
        self.then.owner.as_deref()
    }

    pub fn watchers(&self) -> &[String] {
        &self.then.watchers
    }

    pub fn skills(&self) -> &[String] {
        &self.then.skills
    }

    pub fn review(&self) -> Option<Review> {
        self.then.review
    }

    pub fn stops(&self) -> bool {
        self.then.stop
    }
}

// ---------------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------------

/// What one matching rule changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Contribution {
    /// Set the owner.
    Owner {
        team: String,
    },
    /// Asked for an owner, too late: `owner_rule` had already made `owner` the owner.
    OwnerIgnored {
        team: String,
        owner: String,
        owner_rule: String,
    },
    Watchers {
        teams: Vec<String>,
    },
    /// Asked for at least this priority.
    Priority {
        asked: Priority,
    },
    /// Set urgency to at least `at_least`.
    Urgency {
        at_least: String,
        from: String,
        to: String,
    },
    /// Raised urgency by `steps` (capped at the top level).
    RaiseUrgency {
        steps: u32,
        from: String,
        to: String,
    },
    Review {
        review: Review,
    },
    Skills {
        skills: Vec<String>,
    },
    Suppress {
        reason: String,
    },
    /// Ended the evaluation.
    Stop,
}

impl fmt::Display for Contribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contribution::Owner { team } => write!(f, "owner {team}"),
            Contribution::OwnerIgnored {
                team,
                owner,
                owner_rule,
            } => write!(
                f,
                "owner {team} ignored (rule \"{owner_rule}\" already made {owner} the owner)"
            ),
            Contribution::Watchers { teams } => write!(f, "watchers {}", teams.join(", ")),
            Contribution::Priority { asked } => write!(f, "priority at least {asked}"),
            Contribution::Urgency { at_least, from, to } => {
                write!(f, "urgency at least {at_least} ({from} -> {to})")
            }
            Contribution::RaiseUrgency { steps, from, to } => {
                write!(f, "urgency raised by {steps} ({from} -> {to})")
            }
            Contribution::Review {
                review: Review::Human,
            } => f.write_str("human review"),
            Contribution::Review {
                review: Review::Automation,
            } => f.write_str("automation allowed"),
            Contribution::Skills { skills } => write!(f, "needs skills {}", skills.join(", ")),
            Contribution::Suppress { reason } => write!(f, "suppress ({reason})"),
            Contribution::Stop => f.write_str("stop (later rules not evaluated)"),
        }
    }
}

/// A rule that matched, and why, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedRule {
    pub name: String,
    pub line: usize,
    /// The tags that satisfied its conditions ("intent billing_complaint (0.91)", ...).
    pub matched_on: Vec<String>,
    pub contributed: Vec<Contribution>,
}

/// The routing decision for one message. Serialisable for the event log and the explain
/// API: [`Decision::reasons`] says the same as the structured fields, in plain English.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The team that owns the case.
    pub owner: String,
    /// The rule that set the owner; `None` when it is a fallback team.
    pub owner_rule: Option<String>,
    /// Teams that see the case without owning it (never includes the owner).
    pub watchers: Vec<String>,
    pub priority: Priority,
    /// Urgency after the rules (a value of the taxonomy's urgency list).
    pub urgency: String,
    pub review: Review,
    pub review_reason: ReviewReason,
    /// Skills the assigned agent needs.
    pub skills: Vec<String>,
    /// The message is recorded but opens no case, for this reason.
    pub suppress: Option<String>,
    /// The rule whose `stop` ended the evaluation.
    pub stopped_by: Option<String>,
    /// Every matching rule, in evaluation order.
    pub matched: Vec<MatchedRule>,
    pub reasons: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A policy file that cannot be used: every problem found, in line order (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub issues: Vec<Issue>,
}

impl PolicyError {
    /// Line of the first problem.
    pub fn line(&self) -> usize {
        self.issues.first().map_or(0, |i| i.line)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The file as written (serde), before validation
// ---------------------------------------------------------------------------------------

type List = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    settings: Option<Spanned<RawSettings>>,
    noise: Option<RawNoise>,
    #[serde(default)]
    teams: BTreeMap<Spanned<String>, Spanned<RawTeam>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    default_team: Spanned<String>,
    review_team: Option<Spanned<String>>,
    repeat_contact_window_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    rate_limit_messages: Option<Spanned<u32>>,
    rate_limit_window_secs: Option<Spanned<u64>>,
    cluster_min_contacts: Option<Spanned<u32>>,
    cluster_window_secs: Option<Spanned<u64>>,
    cluster_min_words: Option<u32>,
    suppress_spam: Option<bool>,
    ack_after_resolution: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: Option<String>,
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    languages: Vec<Spanned<String>>,
    #[serde(default)]
    skills: Vec<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    hours: Option<Spanned<RawHours>>,
    #[serde(default)]
    holidays: Vec<Spanned<String>>,
    outside_hours: Option<Spanned<String>>,
    vip_queue: Option<Spanned<String>>,
    senior_only_for_vip: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    mon: Option<Vec<Spanned<String>>>,
    tue: Option<Vec<Spanned<String>>>,
    wed: Option<Vec<Spanned<String>>>,
    thu: Option<Vec<Spanned<String>>>,
    fri: Option<Vec<Spanned<String>>>,
    sat: Option<Vec<Spanned<String>>>,
    sun: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    when: Spanned<RawWhen>,
    then: Spanned<RawThen>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    intents: List,
    risks: List,
    urgency_at_least: Option<Spanned<String>>,
    languages: List,
    tones: List,
    context: List,
    low_confidence: Option<bool>,
    min_confidence: Option<Spanned<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThen {
    owner: Option<Spanned<String>>,
    watchers: List,
    priority: Option<Spanned<String>>,
    urgency: Option<Spanned<String>>,
    raise_urgency: Option<Spanned<u32>>,
    review: Option<Spanned<String>>,
    skills: List,
    suppress: Option<Spanned<String>>,
    stop: Option<bool>,
}

/// Collects problems with their positions.
pub(crate) struct Problems<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    issues: Vec<Issue>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(text: &'a str) -> Problems<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Problems {
            text,
            line_starts,
            issues: Vec::new(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.issues.push(Issue {
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), PolicyError> {
        if self.issues.is_empty() {
            return Ok(());
        }
        Err(self.into_error())
    }

    pub(crate) fn into_error(mut self) -> PolicyError {
        self.issues.sort_by_key(|i| (i.line, i.column));
        PolicyError {
            issues: self.issues,
        }
    }
}

fn is_identifier(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

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

    /// Applies the rules to one message's tags. See the module documentation.
    pub fn decide(&self, tags: &TagSet) -> Decision {
        let mut reasons = Vec::with_capacity(16);
        let t = self.resolve(tags, &mut reasons);
        let top = self.urgencies.names.len().saturating_sub(1) as u32;
        let classified_urgency = t.urgency;
        let mut urgency = t.urgency;
        let mut owner: Option<&Rule> = None;
        let mut asked_priority: Option<(Priority, &Rule)> = None;
        let mut human_by: Option<&Rule> = None;
        let mut automation_by: Option<&Rule> = None;
        let mut suppress_by: Option<&Rule> = None;
        let mut stopped_by: Option<&Rule> = None;
        let mut urgency_steps: Vec<String> = Vec::new();
        let mut watchers: Vec<String> = Vec::new();
        let mut skills: Vec<String> = Vec::new();
        let mut matched: Vec<MatchedRule> = Vec::new();

        for rule in &self.rules {
            if !rule.when.matches(&t) {
                continue;
            }
            let then = &rule.then;
            let mut contributed = Vec::new();
            if let Some(team) = &then.owner {
                match owner {
                    None => {
                        owner = Some(rule);
                        contributed.push(Contribution::Owner { team: team.clone() });
                    }
                    Some(first) => contributed.push(Contribution::OwnerIgnored {
                        team: team.clone(),
                        owner: first.then.owner.clone().unwrap_or_default(),
                        owner_rule: first.name.clone(),
                    }),
                }
            }
            if !then.watchers.is_empty() {
                for w in &then.watchers {
                    if !watchers.contains(w) {
                        watchers.push(w.clone());
                    }
                }
                contributed.push(Contribution::Watchers {
                    teams: then.watchers.clone(),
                });
            }
            if let Some(asked) = then.priority {
                if asked_priority.is_none_or(|(p, _)| asked > p) {
                    asked_priority = Some((asked, rule));
                }
                contributed.push(Contribution::Priority { asked });
            }
            if let Some(level) = then.urgency {
                let from = urgency;
                urgency = urgency.max(level);
                if urgency != from {
                    urgency_steps.push(format!(
                        "{} -> {} by rule \"{}\" (at least {})",
                        self.urgencies.name(from),
                        self.urgencies.name(urgency),
                        rule.name,
                        self.urgencies.name(level)
                    ));
                }
                contributed.push(Contribution::Urgency {
                    at_least: self.urgencies.name(level).to_string(),
                    from: self.urgencies.name(from).to_string(),
                    to: self.urgencies.name(urgency).to_string(),
                });
            }
            if then.raise_urgency > 0 {
                let from = urgency;
                urgency = urgency.saturating_add(then.raise_urgency).min(top);
                if urgency != from {
                    urgency_steps.push(format!(
                        "{} -> {} by rule \"{}\" (raised by {})",
                        self.urgencies.name(from),
                        self.urgencies.name(urgency),
                        rule.name,
                        then.raise_urgency
                    ));
                }
                contributed.push(Contribution::RaiseUrgency {
                    steps: then.raise_urgency,
                    from: self.urgencies.name(from).to_string(),
                    to: self.urgencies.name(urgency).to_string(),
                });
            }
            if let Some(review) = then.review {
                let slot = match review {
                    Review::Human => &mut human_by,
                    Review::Automation => &mut automation_by,
                };
                slot.get_or_insert(rule);
                contributed.push(Contribution::Review { review });
            }
            if !then.skills.is_empty() {
                for s in &then.skills {
                    if !skills.contains(s) {
                        skills.push(s.clone());
                    }
                }
                contributed.push(Contribution::Skills {
                    skills: then.skills.clone(),
                });
            }
            if let Some(reason) = &then.suppress {
                suppress_by.get_or_insert(rule);
                contributed.push(Contribution::Suppress {
                    reason: reason.clone(),
                });
            }
            if then.stop {
                stopped_by = Some(rule);
                contributed.push(Contribution::Stop);
            }
            matched.push(MatchedRule {
                name: rule.name.clone(),
                line: rule.line,
                matched_on: rule.when.describe(&t, self),
                contributed,
            });
            if then.stop {
                break;
            }
        }

        // Explanations: one line per matched rule, then the outcome field by field.
        if matched.is_empty() {
            reasons.push("no rule matched".to_string());
        }
        for m in &matched {
            let mut line = String::with_capacity(160);
            let _ = write!(line, "rule \"{}\" (line {}) matched on ", m.name, m.line);
            for (i, on) in m.matched_on.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                line.push_str(on);
            }
            line.push_str(": ");
            for (i, c) in m.contributed.iter().enumerate() {
                if i > 0 {
                    line.push_str("; ");
                }
                let _ = write!(line, "{c}");
            }
            reasons.push(line);
        }

        let (review, review_reason) = if t.low_confidence {
            reasons.push("human review: the classifier's confidence is low".to_string());
            (Review::Human, ReviewReason::LowConfidence)
        } else if let Some(rule) = human_by {
            reasons.push(format!("human review: required by rule \"{}\"", rule.name));
            (Review::Human, ReviewReason::Rule(rule.name.clone()))
        } else if let Some(rule) = automation_by {
            reasons.push(format!(
                "automation may answer: allowed by rule \"{}\"",
                rule.name
            ));
            (Review::Automation, ReviewReason::Rule(rule.name.clone()))
        } else {
            reasons.push("human review: no matching rule allows automation".to_string());
            (Review::Human, ReviewReason::Default)
        };

        let (owner, owner_rule) = match owner.and_then(|r| r.then.owner.as_ref().map(|o| (o, r))) {
            Some((team, rule)) => {
                reasons.push(format!("owner {team}: set by rule \"{}\"", rule.name));
                (team.clone(), Some(rule.name.clone()))
            }
            None if t.low_confidence => {
                let team = &self.settings.review_team;
                reasons.push(format!(
                    "owner {team}: the review team takes low-confidence cases no rule assigned"
                ));
                (team.clone(), None)
            }
            None => {
                let team = &self.settings.default_team;
                reasons.push(format!(
                    "owner {team}: the default team (no rule set an owner)"
                ));
                (team.clone(), None)
            }
        };
        watchers.retain(|w| *w != owner);
        if !watchers.is_empty() {
            reasons.push(format!("watched by {}", watchers.join(", ")));
        }

        let urgency_name = self.urgencies.name(urgency).to_string();
        if urgency_steps.is_empty() {
            reasons.push(format!("urgency {urgency_name} as classified"));
        } else {
            reasons.push(format!(
                "urgency {} raised to {urgency_name}: {}",
                self.urgencies.name(classified_urgency),
                urgency_steps.join(", ")
            ));
        }
        let from_urgency = self
            .urgency_priority
            .get(urgency as usize)
            .copied()
            .unwrap_or(Priority::Medium);
        let priority = match asked_priority {
            Some((asked, rule)) if asked > from_urgency => {
                reasons.push(format!(
                    "priority {asked}: asked by rule \"{}\" (urgency {urgency_name} alone gives {from_urgency})",
                    rule.name
                ));
                asked
            }
            _ => {
                reasons.push(format!(
                    "priority {from_urgency}: from urgency {urgency_name}"
                ));
                from_urgency
            }
        };
        if !skills.is_empty() {
            reasons.push(format!("needs skills {}", skills.join(", ")));
        }
        let suppress = suppress_by.and_then(|rule| {
            let reason = rule.then.suppress.clone()?;
            reasons.push(format!(
                "suppressed (recorded, no case opened): {reason} (rule \"{}\")",
                rule.name
            ));
            Some(reason)
        });
        if let Some(rule) = stopped_by {
            reasons.push(format!(
                "rule \"{}\" stopped the evaluation: later rules were not evaluated",
                rule.name
            ));
        }

        Decision {
            owner,
            owner_rule,
            watchers,
            priority,
            urgency: urgency_name,
            review,
            review_reason,
            skills,
            suppress,
            stopped_by: stopped_by.map(|r| r.name.clone()),
            matched,
            reasons,
        }
    }

    /// The message's tags as ids; values outside the taxonomy are dropped with a reason.
    fn resolve(&self, tags: &TagSet, reasons: &mut Vec<String>) -> Resolved {
        let mut scored = |vocab: &Vocab, list: &[Scored]| -> Vec<(u32, f32)> {
            let mut out = Vec::with_capacity(list.len());
            for s in list {
                match vocab.id(&s.label) {
                    Some(id) => out.push((id, s.confidence)),
                    None => reasons.push(format!(
                        "{} \"{}\" is not in the taxonomy; ignored",
                        vocab.family, s.label
                    )),
                }
            }
            out
        };
        let intents = scored(&self.intents, &tags.intents);
        let risks = scored(&self.risks, &tags.risks);
        let mut plain = |vocab: &Vocab, list: &[String]| -> Vec<u32> {
            let mut out = Vec::with_capacity(list.len());
            for label in list {
                match vocab.id(label) {
                    Some(id) => out.push(id),
                    None => reasons.push(format!(
                        "{} \"{label}\" is not in the taxonomy; ignored",
                        vocab.family
                    )),
                }
            }
            out
        };
        let tones = plain(&self.tones, &tags.tones);
        let context = plain(&self.contexts, &tags.context);
        let urgency = match self.urgencies.id(&tags.urgency) {
            Some(id) => id,
            None => {
                reasons.push(format!(
                    "urgency \"{}\" is not in the taxonomy; treated as {}",
                    tags.urgency,
                    self.urgencies.name(0)
                ));
                0
            }
        };
        let language = self.languages.id(&tags.language);
        Resolved {
            intents,
            risks,
            urgency,
            language,
            tones,
            context,
            low_confidence: tags.low_confidence,
        }
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

// ---------------------------------------------------------------------------------------
// Validation, section by section
// ---------------------------------------------------------------------------------------

/// A team being read, with the spans its cross-references need.
struct PendingTeam {
    team: Team,
    outside_span: Range<usize>,
    vip_span: Range<usize>,
}

fn read_teams(
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

fn read_calendar(ctx: &str, raw: &RawTeam, problems: &mut Problems<'_>) -> Calendar {
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
fn check_team_links(teams: &mut [PendingTeam], problems: &mut Problems<'_>) {
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

fn read_settings(
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

fn team_ids(policy: &RoutingPolicy) -> Vec<String> {
    policy.teams.iter().map(|t| t.id.clone()).collect()
}

fn read_noise(raw: RawNoise, problems: &mut Problems<'_>) -> NoiseSettings {
    let defaults = NoiseSettings::default();
    fn at_least<T: Copy + PartialOrd + fmt::Display>(
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

fn read_rules(
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
fn read_list(
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

fn read_urgency(
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

fn read_when(
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

fn read_then(
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn known() -> KnownTags {
        KnownTags::default_taxonomy()
    }

    use crate::routing::test_support::{default_policy, default_policy_text};

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
        let err =
            small_with("when = { context = [\"repeat_contact\"] }", "when = { }").unwrap_err();
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
        let text = format!(
            "{SMALL}\n[noise]\ncluster_min_contacts = 1\nack_after_resolution = \"reopen\"\n"
        );
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
}
