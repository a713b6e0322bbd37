//! The triage taxonomy as data: tag families, their values, cue phrases and labelled
//! examples, deserialised from TOML (`config/triage.toml`).
//!
//! Nothing here is trained or scored; [`TriageConfig::from_toml`] parses and validates,
//! and a failed parse names the line so the caller can refuse a reload and keep the rules
//! already in force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The five tag families of the taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// What the customer wants; several per message.
    Intent,
    /// How fast someone must act; exactly one per message.
    Urgency,
    /// What could hurt the business or the customer; zero or more per message.
    Risk,
    /// Facts from CRM data and history (`vip_customer`, `repeat_contact`, ...); declared
    /// here so rules can name them, never inferred from the text alone.
    CustomerContext,
    /// Detected language (one) and tones (`distressed`, `abusive`, `low_confidence`).
    LanguageAndTone,
}

/// A triage configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TriageConfigError {
    /// The TOML is malformed or has an unknown or mistyped field.
    #[error("triage config line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// The parser's explanation.
        message: String,
    },
    /// The TOML is well formed but inconsistent (an unknown urgency level, a language
    /// that is not declared, an intent without examples, ...).
    #[error("triage config{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// 1-based line of the section at fault, when it can be found.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A line of a labelled corpus file is malformed or uses a label or language the
    /// taxonomy does not declare.
    #[error("{file} line {line}: {message}")]
    Corpus {
        /// Where the corpus came from (a path, or the shipped file's name).
        file: String,
        /// 1-based line at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The whole triage configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriageConfig {
    /// Thresholds and model sizes.
    #[serde(default)]
    pub settings: Settings,
    /// Text normalisation: abbreviations and words that split stacked requests.
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// Languages that may be detected, by ISO 639-1 code.
    pub languages: BTreeMap<String, LanguageConfig>,
    /// Intent values, each with cue phrases and examples.
    pub intents: BTreeMap<String, LabelConfig>,
    /// Risk values, each with cue phrases and examples.
    #[serde(default)]
    pub risks: BTreeMap<String, LabelConfig>,
    /// Urgency levels and the cues that set them.
    pub urgency: UrgencyConfig,
    /// Tone values (besides `low_confidence`, which the classifier sets itself).
    #[serde(default)]
    pub tones: BTreeMap<String, ToneConfig>,
    /// Customer-context values, set from CRM data and history by the router.
    #[serde(default)]
    pub context: ContextConfig,
    /// Messages with no intent and no risk (chit-chat, bare numbers): negatives for every
    /// intent and risk.
    #[serde(default)]
    pub neutral: ExampleSet,
    /// Fully labelled examples, for messages that carry several tags at once.
    #[serde(default)]
    pub labelled: Vec<LabelledExample>,
    /// Which labelled corpus files are trained on besides the examples above.
    #[serde(default)]
    pub corpus: CorpusConfig,
    /// The corpus lines read (the shipped corpus when `corpus.shipped`, then every file
    /// given to [`TriageConfig::add_corpus`]).
    #[serde(skip)]
    pub corpus_examples: Vec<LabelledExample>,
}

/// The labelled corpus: JSONL files of whole messages with all their tags, in the line
/// format `parley triage eval` reads (see `config/triage/LABELS.md`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorpusConfig {
    /// Train on the corpus shipped with Parley (`config/triage/corpus/*.jsonl`, built
    /// into the binary). Its lines that name a label this taxonomy does not have are left
    /// out, so a taxonomy with fewer intents can still use the rest.
    pub shipped: bool,
}

/// One line of a corpus file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusLine {
    text: String,
    language: String,
    #[serde(default)]
    intents: Vec<String>,
    #[serde(default)]
    risk: Vec<String>,
    /// Accepted and ignored so that evaluation files and exported corrections can be used
    /// as they are; urgency is taught by cues, not examples.
    #[serde(default, rename = "urgency")]
    _urgency: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
}

/// Thresholds and model sizes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Characters of a message that are looked at; the rest is ignored (bounds the work
    /// on huge or binary input).
    pub max_chars: usize,
    /// The hashed feature space has `2^hash_bits` dimensions.
    pub hash_bits: u32,
    /// Passes over the examples when training.
    pub epochs: u32,
    /// Initial step size of the training.
    pub learning_rate: f32,
    /// An intent is reported at or above this confidence.
    pub intent_threshold: f32,
    /// A risk is reported at or above this confidence.
    pub risk_threshold: f32,
    /// Below this best confidence the message is tagged `low_confidence`.
    pub low_confidence_below: f32,
    /// Logit added when a label's cue phrase is present.
    pub cue_weight: f32,
    /// Logit added when one of a label's weak cue phrases is present.
    pub weak_cue_weight: f32,
    /// Language reported when nothing else can be told (emoji only, digits only).
    pub default_language: String,
    /// Share of the examples held out of a probe model to calibrate confidences and
    /// choose each label's threshold (0 turns calibration off: every label is reported
    /// at `intent_threshold` or `risk_threshold`).
    pub validation_share: f32,
    /// Recall on the held-out share that the threshold of each `recall_first` risk keeps
    /// (a missed fraud report or legal threat costs more than a second look). Such a
    /// threshold never rises above `risk_threshold`.
    pub risk_recall_target: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_chars: 2000,
            hash_bits: 18,
            epochs: 14,
            learning_rate: 0.4,
            intent_threshold: 0.5,
            risk_threshold: 0.5,
            low_confidence_below: 0.6,
            cue_weight: 4.0,
            weak_cue_weight: 1.5,
            default_language: "en".to_owned(),
            validation_share: 0.0,
            risk_recall_target: 0.95,
        }
    }
}

/// Text normalisation rules.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Token replacements applied after lowercasing (`blm` -> `belum`, `pls` -> `please`).
    pub abbreviations: BTreeMap<String, String>,
    /// Words that separate stacked requests ("and", "also", "aur", "dan"): each part is
    /// scored on its own as well as the whole message.
    pub split_words: Vec<String>,
}

/// One language that may be detected.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// Human-readable name.
    pub name: String,
    /// Frequent function words that are strong evidence for this language in short texts.
    pub markers: Vec<String>,
}

/// Examples grouped by language code.
pub type ExampleSet = BTreeMap<String, Vec<String>>;

/// One intent or risk value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// What the value means, for people reading the taxonomy.
    pub description: String,
    /// Urgency this value brings: for an intent, the level of a message whose intents are
    /// this one; for a risk, the lowest level of a message carrying it.
    pub urgency: Option<String>,
    /// High-precision phrases. Words match exactly after normalisation; `word*` matches a
    /// prefix, `*word` a suffix, `*word*` anywhere in a word; words of a phrase must come
    /// in order, with at most two other words between them.
    pub cues: Vec<String>,
    /// Phrases that make the value more likely without deciding it alone.
    pub weak_cues: Vec<String>,
    /// Risks always present when this intent is (e.g. `cancellation` implies `churn_risk`).
    pub implies_risks: Vec<String>,
    /// Reported only when no other intent is (e.g. `greeting_or_thanks`).
    pub solo: bool,
    /// For a risk: its threshold is chosen to keep `settings.risk_recall_target` on the
    /// held-out share (a missed one costs more than a second look: fraud, legal threats).
    /// Otherwise the threshold with the best F1 is used.
    pub recall_first: bool,
    /// Intents dropped when this one is reported with a higher confidence (cancelling an
    /// appointment is `appointment_change`, not `cancellation`).
    pub overrides: Vec<String>,
    /// Example messages by language code.
    pub examples: ExampleSet,
    /// The shapes of a report that decide this value when no single phrase does (see
    /// [`ShapeConfig`]).
    pub shapes: Vec<ShapeConfig>,
}

/// The shape of a report: phrases of several kinds that together mean a label although
/// none of them does alone ("I never" with "charge": an unrecognised transaction; "from
/// support" with "code": impersonation asking for a code).
///
/// The shape is present when every group in `all` has at least one phrase in the
/// message (same phrase syntax as cues, in any order, anywhere in the message). Its
/// `weight` is added to the label's score: positive shapes raise it; a negative shape
/// (vocabulary without the risk: an insult with "thief" about a late refund) lowers it
/// only when no positive shape of the same label is present.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeConfig {
    /// What the shape stands for, for people reading the taxonomy.
    pub name: String,
    /// Groups of phrases; one phrase of every group must be present.
    pub all: Vec<Vec<String>>,
    /// Added to the label's score (log-odds) when the shape is present.
    pub weight: f32,
}

/// Urgency levels and their cues.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyConfig {
    /// Levels from the lowest to the highest.
    pub levels: Vec<String>,
    /// Level of a message with no intent and no cue.
    pub default: String,
    /// Cue phrases that set at least the given level.
    #[serde(default)]
    pub cues: BTreeMap<String, Vec<String>>,
    /// Cue phrases that raise the level by one step ("asap", "!!").
    #[serde(default)]
    pub raise: Vec<String>,
}

/// One tone value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToneConfig {
    /// What the tone means.
    pub description: String,
    /// Phrases that set the tone.
    pub cues: Vec<String>,
    /// Risks that set the tone (e.g. `abuse` sets `abusive`).
    pub from_risks: Vec<String>,
}

/// Customer-context values.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Values the router may set from CRM data and history.
    pub values: Vec<String>,
}

/// An example carrying every tag of its message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledExample {
    /// The message.
    pub text: String,
    /// Its language code.
    pub language: String,
    /// All its intents (none is allowed).
    #[serde(default)]
    pub intents: Vec<String>,
    /// All its risks.
    #[serde(default)]
    pub risks: Vec<String>,
}

/// What to do with a corpus line naming a label the taxonomy does not have.
#[derive(Debug, Clone, Copy)]
enum UnknownLabels {
    /// Leave the line out (the shipped corpus under a smaller taxonomy).
    Skip,
    /// Refuse the file (a business's own corpus: the label is a typo).
    Refuse,
}

/// The tone the classifier sets itself when it is unsure.
pub const LOW_CONFIDENCE_TONE: &str = "low_confidence";

impl TriageConfig {
    /// Parses and validates a triage configuration. Errors name the line at fault.
    pub fn from_toml(text: &str) -> Result<Self, TriageConfigError> {
        let config: TriageConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_and_column(text, offset);
            TriageConfigError::Syntax {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let mut config = config;
        config.validate(text)?;
        if config.corpus.shipped {
            for (source, text) in crate::SHIPPED_CORPUS {
                config.read_corpus(source, text, UnknownLabels::Skip)?;
            }
        }
        Ok(config)
    }

    /// Adds a labelled corpus file (JSONL, one message with all its tags per line) to the
    /// training examples; returns how many lines it added. A line that is not valid JSON,
    /// or names a label or language the taxonomy does not declare, is refused with its
    /// line number and nothing of the file is added.
    pub fn add_corpus(&mut self, source: &str, text: &str) -> Result<usize, TriageConfigError> {
        self.read_corpus(source, text, UnknownLabels::Refuse)
    }

    fn read_corpus(
        &mut self,
        source: &str,
        text: &str,
        unknown: UnknownLabels,
    ) -> Result<usize, TriageConfigError> {
        let error = |line: usize, message: String| TriageConfigError::Corpus {
            file: source.to_owned(),
            line,
            message,
        };
        let mut read = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let line: CorpusLine =
                serde_json::from_str(raw).map_err(|e| error(number, e.to_string()))?;
            if line.text.trim().is_empty() {
                return Err(error(number, "empty text".to_owned()));
            }
            if !self.languages.contains_key(&line.language) {
                return Err(error(
                    number,
                    format!("undeclared language {:?}", line.language),
                ));
            }
            let stranger = line
                .intents
                .iter()
                .find(|i| !self.intents.contains_key(*i))
                .or_else(|| line.risk.iter().find(|r| !self.risks.contains_key(*r)));
            if let Some(label) = stranger {
                match unknown {
                    UnknownLabels::Skip => continue,
                    UnknownLabels::Refuse => {
                        return Err(error(number, format!("unknown label {label:?}")));
                    }
                }
            }
            read.push(LabelledExample {
                text: line.text,
                language: line.language,
                intents: line.intents,
                risks: line.risk,
            });
        }
        let added = read.len();
        self.corpus_examples.extend(read);
        Ok(added)
    }

    /// Values of one family, in a stable order.
    pub fn values(&self, family: Family) -> Vec<String> {
        match family {
            Family::Intent => self.intents.keys().cloned().collect(),
            Family::Urgency => self.urgency.levels.clone(),
            Family::Risk => self.risks.keys().cloned().collect(),
            Family::CustomerContext => self.context.values.clone(),
            Family::LanguageAndTone => self
                .languages
                .keys()
                .cloned()
                .chain(self.tones.keys().cloned())
                .chain(std::iter::once(LOW_CONFIDENCE_TONE.to_owned()))
                .collect(),
        }
    }

    fn validate(&self, text: &str) -> Result<(), TriageConfigError> {
        let invalid = |needle: &str, message: String| TriageConfigError::Invalid {
            line: line_of(text, needle),
            message,
        };
        let s = &self.settings;
        if !(0.0..0.9).contains(&s.validation_share) {
            return Err(invalid(
                "validation_share",
                format!(
                    "validation_share must be at least 0 and under 0.9, not {}",
                    s.validation_share
                ),
            ));
        }
        if !(s.risk_recall_target > 0.0 && s.risk_recall_target <= 1.0) {
            return Err(invalid(
                "risk_recall_target",
                format!(
                    "risk_recall_target must be above 0 and at most 1, not {}",
                    s.risk_recall_target
                ),
            ));
        }
        if !(10..=22).contains(&s.hash_bits) {
            return Err(invalid(
                "hash_bits",
                format!(
                    "settings.hash_bits must be between 10 and 22, not {}",
                    s.hash_bits
                ),
            ));
        }
        for (name, value) in [
            ("intent_threshold", s.intent_threshold),
            ("risk_threshold", s.risk_threshold),
            ("low_confidence_below", s.low_confidence_below),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(
                    name,
                    format!("settings.{name} must be within 0 and 1"),
                ));
            }
        }
        if s.max_chars == 0 || s.epochs == 0 {
            return Err(invalid(
                "[settings]",
                "settings.max_chars and settings.epochs must be positive".into(),
            ));
        }
        if self.languages.is_empty() {
            return Err(invalid(
                "[languages",
                "at least one language must be declared".into(),
            ));
        }
        if !self.languages.contains_key(&s.default_language) {
            return Err(invalid(
                "default_language",
                format!(
                    "default_language {:?} is not a declared language",
                    s.default_language
                ),
            ));
        }
        if self.intents.is_empty() {
            return Err(invalid(
                "[intents",
                "at least one intent must be declared".into(),
            ));
        }
        let u = &self.urgency;
        if u.levels.is_empty() || !u.levels.contains(&u.default) {
            return Err(invalid(
                "[urgency]",
                format!(
                    "urgency.default {:?} must be one of urgency.levels",
                    u.default
                ),
            ));
        }
        for level in u.cues.keys() {
            if !u.levels.contains(level) {
                return Err(invalid(
                    "[urgency.cues]",
                    format!(
                        "urgency.cues.{level} is not one of urgency.levels {:?}",
                        u.levels
                    ),
                ));
            }
        }
        for (family, labels) in [("intents", &self.intents), ("risks", &self.risks)] {
            for (name, label) in labels {
                let section = format!("[{family}.{name}");
                if let Some(level) = &label.urgency
                    && !u.levels.contains(level)
                {
                    return Err(invalid(
                        &section,
                        format!(
                            "{family}.{name}.urgency {level:?} is not one of {:?}",
                            u.levels
                        ),
                    ));
                }
                for risk in &label.implies_risks {
                    if !self.risks.contains_key(risk) {
                        return Err(invalid(
                            &section,
                            format!("{family}.{name} implies unknown risk {risk:?}"),
                        ));
                    }
                }
                for other in &label.overrides {
                    if family != "intents" || !self.intents.contains_key(other) {
                        return Err(invalid(
                            &section,
                            format!("{family}.{name} overrides unknown intent {other:?}"),
                        ));
                    }
                }
                for lang in label.examples.keys() {
                    if !self.languages.contains_key(lang) {
                        return Err(invalid(
                            &section,
                            format!("{family}.{name} has examples in undeclared language {lang:?}"),
                        ));
                    }
                }
                for shape in &label.shapes {
                    if shape.all.is_empty() || shape.all.iter().any(Vec::is_empty) {
                        return Err(invalid(
                            &section,
                            format!(
                                "{family}.{name} shape {:?} needs phrases in every group",
                                shape.name
                            ),
                        ));
                    }
                    if !shape.weight.is_finite() || shape.weight == 0.0 {
                        return Err(invalid(
                            &section,
                            format!(
                                "{family}.{name} shape {:?} needs a non-zero weight",
                                shape.name
                            ),
                        ));
                    }
                }
                if label.cues.is_empty() && label.examples.values().all(Vec::is_empty) {
                    return Err(invalid(
                        &section,
                        format!("{family}.{name} needs examples or cues to be recognised"),
                    ));
                }
            }
        }
        for (name, tone) in &self.tones {
            for risk in &tone.from_risks {
                if !self.risks.contains_key(risk) {
                    return Err(invalid(
                        &format!("[tones.{name}"),
                        format!("tones.{name} refers to unknown risk {risk:?}"),
                    ));
                }
            }
        }
        for lang in self.neutral.keys() {
            if !self.languages.contains_key(lang) {
                return Err(invalid(
                    "[neutral",
                    format!("neutral examples in undeclared language {lang:?}"),
                ));
            }
        }
        for example in &self.labelled {
            let unknown = example
                .intents
                .iter()
                .find(|i| !self.intents.contains_key(*i))
                .or_else(|| example.risks.iter().find(|r| !self.risks.contains_key(*r)));
            if let Some(label) = unknown {
                return Err(invalid(
                    &example.text,
                    format!(
                        "labelled example {:?} uses unknown label {label:?}",
                        example.text
                    ),
                ));
            }
            if !self.languages.contains_key(&example.language) {
                return Err(invalid(
                    &example.text,
                    format!(
                        "labelled example {:?} has undeclared language {:?}",
                        example.text, example.language
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|offset| line_and_column(text, offset).0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_uses_the_default_taxonomy_names() {
        let config = TriageConfig::from_toml(crate::DEFAULT_CONFIG).unwrap();
        let intents = config.values(Family::Intent);
        for name in [
            "order_tracking",
            "delivery_problem",
            "return_exchange",
            "refund_request",
            "billing_complaint",
            "invoice_request",
            "appointment_change",
            "account_access",
            "technical_issue",
            "product_question",
            "feature_request",
            "cancellation",
            "human_request",
            "greeting_or_thanks",
        ] {
            assert!(intents.contains(&name.to_owned()), "missing intent {name}");
        }
        assert_eq!(
            config.values(Family::Urgency),
            ["low", "normal", "priority", "immediate"]
        );
        let mut risks = config.values(Family::Risk);
        risks.sort();
        assert_eq!(
            risks,
            [
                "abuse",
                "churn_risk",
                "fraud_signal",
                "legal_threat",
                "media_risk",
                "possible_outage"
            ]
        );
        let tones = config.values(Family::LanguageAndTone);
        for name in [
            "en",
            "es",
            "pt",
            "ar",
            "hi",
            "id",
            "distressed",
            "abusive",
            "low_confidence",
        ] {
            assert!(tones.contains(&name.to_owned()), "missing {name}");
        }
        assert_eq!(
            config.values(Family::CustomerContext),
            [
                "vip_customer",
                "repeat_contact",
                "needs_identity_check",
                "template_required"
            ]
        );
    }

    #[test]
    fn a_corpus_line_with_an_unknown_label_or_bad_json_is_refused_with_its_line() {
        let mut config = TriageConfig::from_toml(crate::DEFAULT_CONFIG).unwrap();
        let shipped = config.corpus_examples.len();
        let good = r#"{"text": "need the invoice", "intents": ["invoice_request"], "risk": [], "language": "en"}"#;
        let typo =
            r#"{"text": "need the invoice", "intents": ["invoce_request"], "language": "en"}"#;
        match config.add_corpus("ours.jsonl", &format!("{good}\n\n{typo}\n")) {
            Err(TriageConfigError::Corpus {
                file,
                line,
                message,
            }) => {
                assert_eq!((file.as_str(), line), ("ours.jsonl", 3));
                assert!(message.contains("invoce_request"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match config.add_corpus("ours.jsonl", &format!("{good}\n{{\"text\": ")) {
            Err(TriageConfigError::Corpus { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        let wrong_language = good.replace(r#""en""#, r#""fr""#);
        assert!(config.add_corpus("ours.jsonl", &wrong_language).is_err());
        // Nothing of a refused file was kept; a good one is added whole.
        assert_eq!(config.corpus_examples.len(), shipped);
        assert_eq!(config.add_corpus("ours.jsonl", good).unwrap(), 1);
        assert_eq!(config.corpus_examples.len(), shipped + 1);
        // An evaluation line or an exported correction (with urgency and id) is taken too.
        let exported = r#"{"id": 42, "text": "factura please", "intents": ["invoice_request"], "urgency": "normal", "risk": [], "language": "en"}"#;
        assert_eq!(config.add_corpus("ours.jsonl", exported).unwrap(), 1);
    }

    #[test]
    fn the_shipped_corpus_is_read_only_when_asked_for_and_skips_labels_not_in_the_taxonomy() {
        let config = TriageConfig::from_toml(crate::DEFAULT_CONFIG).unwrap();
        let lines: usize = crate::SHIPPED_CORPUS
            .iter()
            .map(|(_, text)| text.lines().filter(|l| !l.trim().is_empty()).count())
            .sum();
        assert_eq!(config.corpus_examples.len(), lines);
        let off = crate::DEFAULT_CONFIG.replacen("shipped = true", "shipped = false", 1);
        assert!(
            TriageConfig::from_toml(&off)
                .unwrap()
                .corpus_examples
                .is_empty()
        );
        // Without feature_request in the taxonomy its corpus lines are left out.
        let start = crate::DEFAULT_CONFIG
            .find("[intents.feature_request]")
            .unwrap();
        let end = crate::DEFAULT_CONFIG
            .find("[intents.cancellation]")
            .unwrap();
        let smaller = format!(
            "{}{}",
            &crate::DEFAULT_CONFIG[..start],
            &crate::DEFAULT_CONFIG[end..]
        );
        let config = TriageConfig::from_toml(&smaller).unwrap();
        assert!(config.corpus_examples.len() < lines);
        assert!(
            config
                .corpus_examples
                .iter()
                .all(|e| !e.intents.iter().any(|i| i == "feature_request"))
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let text = "[settings]\nmax_chars = 100\nhash_bits = = 3\n";
        match TriageConfig::from_toml(text) {
            Err(TriageConfigError::Syntax { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_field_is_refused_with_its_line() {
        let text =
            crate::DEFAULT_CONFIG.replacen("[settings]\n", "[settings]\nthreshhold = 3\n", 1);
        let err = TriageConfig::from_toml(&text).unwrap_err();
        let expected = text
            .lines()
            .position(|l| l.starts_with("threshhold"))
            .unwrap()
            + 1;
        match err {
            TriageConfigError::Syntax { line, message, .. } => {
                assert_eq!(line, expected);
                assert!(message.contains("threshhold"), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn shape_with_an_empty_group_is_refused() {
        let text = format!(
            "{}\n[intents.warranty_claim]\ncues = [\"warranty\"]\n\n[[intents.warranty_claim.shapes]]\nname = \"broken\"\nweight = 3.0\nall = [[\"broke\"], []]\n",
            crate::DEFAULT_CONFIG
        );
        match TriageConfig::from_toml(&text).unwrap_err() {
            TriageConfigError::Invalid { message, .. } => {
                assert!(message.contains("every group"), "{message}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_urgency_level_is_refused_naming_the_section() {
        let text = format!(
            "{}\n[intents.warranty_claim]\nurgency = \"whenever\"\ncues = [\"warranty\"]\n",
            crate::DEFAULT_CONFIG
        );
        let err = TriageConfig::from_toml(&text).unwrap_err();
        let section = text
            .lines()
            .position(|l| l == "[intents.warranty_claim]")
            .unwrap()
            + 1;
        match err {
            TriageConfigError::Invalid { line, message } => {
                assert_eq!(line, Some(section));
                assert!(message.contains("whenever"));
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
