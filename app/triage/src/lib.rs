//! Triage: what a customer message is about, how urgent and risky it is, which language
//! it is written in, and whether it is noise.
//!
//! This module owns the text side of steps 2 and 3 of a message's flow (noise filter and
//! triage). It is pure: it reads configuration text handed to it, trains a small model
//! from the labelled examples in that configuration, and classifies strings. It never
//! touches the network, the database or the clock, never downloads a model, and never
//! decides who owns a case: routing, suppression bookkeeping and the audit trail belong to
//! the router, which calls into this module.
//!
//! - [`taxonomy`]: the tag families and their values, read from `config/triage.toml`
//!   (intents, risks, urgency levels, tones, languages, with examples and cue phrases).
//!   A business adds an intent by adding a section; nothing is recompiled.
//! - [`calibration`]: per-label Platt scaling and thresholds fitted on a held-out share
//!   of the examples, so confidences mean what they say and risks are caught recall first.
//! - [`classifier`]: [`Classifier::train`] builds the model from a [`TriageConfig`]
//!   (well under a second for a few thousand examples, so it is simply retrained on
//!   reload) and [`Classifier::classify`] tags one message in microseconds.
//! - [`language`]: language identification (script, the `whatlang` crate, and a model
//!   trained on the configured examples for romanised Hindi and very short texts).
//! - [`noise`]: acknowledgements ("ok", "👍", "shukriya"), spam and scam scoring, and a
//!   SimHash fingerprint that clusters near-duplicate texts sent from many numbers.
//! - [`eval`]: scoring a labelled JSONL file and classifying a JSONL stream, behind the
//!   `parley triage eval` and `parley triage classify` commands.
//!
//! Text is normalised once ([`text`]), hashed into a fixed feature space ([`model`]) and
//! scored by one-vs-rest logistic regression combined with curated cue phrases: the
//! model generalises over slang and misspellings, the cues keep recall high on the risks
//! that must not be missed (legal threats, fraud), and shapes (groups of phrases that
//! together describe a risk: "I never" with "charge", "from support" with "OTP") catch the
//! report that names no risk word, or clear vocabulary used without the risk.

pub mod calibration;
pub mod classifier;
pub mod eval;
pub mod language;
pub mod model;
pub mod noise;
pub mod taxonomy;
pub mod text;

pub use classifier::{Classification, Classifier, Scored};
pub use eval::{EvalError, EvalReport, classify_stream, eval};
pub use taxonomy::{Family, TriageConfig, TriageConfigError};

/// The default taxonomy and examples shipped with Parley (`config/triage.toml`).
///
/// Used by tests and as the fallback when no triage file is configured.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/triage.toml");

/// The labelled corpus shipped with Parley (`config/triage/corpus/*.jsonl`), by file
/// name. A configuration trains on it when its `[corpus]` section says `shipped = true`.
pub const SHIPPED_CORPUS: &[(&str, &str)] = &[
    (
        "config/triage/corpus/ar.jsonl",
        include_str!("../../../config/triage/corpus/ar.jsonl"),
    ),
    (
        "config/triage/corpus/en.jsonl",
        include_str!("../../../config/triage/corpus/en.jsonl"),
    ),
    (
        "config/triage/corpus/es.jsonl",
        include_str!("../../../config/triage/corpus/es.jsonl"),
    ),
    (
        "config/triage/corpus/hi.jsonl",
        include_str!("../../../config/triage/corpus/hi.jsonl"),
    ),
    (
        "config/triage/corpus/id.jsonl",
        include_str!("../../../config/triage/corpus/id.jsonl"),
    ),
    (
        "config/triage/corpus/pt.jsonl",
        include_str!("../../../config/triage/corpus/pt.jsonl"),
    ),
];

/// The shipped configuration, trained once for all of this crate's tests (training on the
/// corpus takes seconds).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn shipped_classifier() -> &'static Classifier {
    static CLASSIFIER: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        Classifier::train(&TriageConfig::from_toml(DEFAULT_CONFIG).unwrap()).unwrap()
    })
}
