//! The file as written (serde), before validation.

use super::*;

// ---------------------------------------------------------------------------------------
// The file as written (serde), before validation
// ---------------------------------------------------------------------------------------

pub(super) type List = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) settings: Option<Spanned<RawSettings>>,
    pub(super) noise: Option<RawNoise>,
    #[serde(default)]
    pub(super) teams: BTreeMap<Spanned<String>, Spanned<RawTeam>>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub(super) default_team: Spanned<String>,
    pub(super) review_team: Option<Spanned<String>>,
    pub(super) repeat_contact_window_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNoise {
    pub(super) rate_limit_messages: Option<Spanned<u32>>,
    pub(super) rate_limit_window_secs: Option<Spanned<u64>>,
    pub(super) cluster_min_contacts: Option<Spanned<u32>>,
    pub(super) cluster_window_secs: Option<Spanned<u64>>,
    pub(super) cluster_min_words: Option<u32>,
    pub(super) suppress_spam: Option<bool>,
    pub(super) ack_after_resolution: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeam {
    pub(super) name: Option<String>,
    pub(super) strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) languages: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) skills: Vec<Spanned<String>>,
    pub(super) time_zone: Option<Spanned<String>>,
    pub(super) hours: Option<Spanned<RawHours>>,
    #[serde(default)]
    pub(super) holidays: Vec<Spanned<String>>,
    pub(super) outside_hours: Option<Spanned<String>>,
    pub(super) vip_queue: Option<Spanned<String>>,
    pub(super) senior_only_for_vip: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHours {
    pub(super) mon: Option<Vec<Spanned<String>>>,
    pub(super) tue: Option<Vec<Spanned<String>>>,
    pub(super) wed: Option<Vec<Spanned<String>>>,
    pub(super) thu: Option<Vec<Spanned<String>>>,
    pub(super) fri: Option<Vec<Spanned<String>>>,
    pub(super) sat: Option<Vec<Spanned<String>>>,
    pub(super) sun: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: Spanned<String>,
    pub(super) when: Spanned<RawWhen>,
    pub(super) then: Spanned<RawThen>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWhen {
    pub(super) intents: List,
    pub(super) risks: List,
    pub(super) urgency_at_least: Option<Spanned<String>>,
    pub(super) languages: List,
    pub(super) tones: List,
    pub(super) context: List,
    pub(super) low_confidence: Option<bool>,
    pub(super) min_confidence: Option<Spanned<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThen {
    pub(super) owner: Option<Spanned<String>>,
    pub(super) watchers: List,
    pub(super) priority: Option<Spanned<String>>,
    pub(super) urgency: Option<Spanned<String>>,
    pub(super) raise_urgency: Option<Spanned<u32>>,
    pub(super) review: Option<Spanned<String>>,
    pub(super) skills: List,
    pub(super) suppress: Option<Spanned<String>>,
    pub(super) stop: Option<bool>,
}
