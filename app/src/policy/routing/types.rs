//! What the rules look at (a message's tags) and what a team is, as validated.

use super::*;

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
    pub(super) const ALL: [Strategy; 5] = [
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
