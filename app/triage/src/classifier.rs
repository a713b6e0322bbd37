//! The triage classifier: intents (several), urgency (one), risks (several), language
//! (one) and tones of one message, each with a confidence in `[0, 1]`.
//!
//! [`Classifier::train`] builds everything from a [`TriageConfig`]: one-vs-rest logistic
//! regression for intents, risks and languages over hashed word and character n-grams of
//! the configured examples, and lexicons of the configured cue phrases. Scoring adds a
//! cue's weight to the model's logit, so a cue decides when the model is unsure and the
//! model generalises where no cue was written. Stacked requests ("where is my order and
//! I also want an invoice") are found by scoring each part of the message as well as the
//! whole. Urgency and tones follow from cues, intents and risks as configured.
//!
//! A trained classifier is immutable, `Send + Sync`, and is rebuilt on reload.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::calibration::{self, LabelCalibration, Objective};
use crate::language::LanguageIdentifier;
use crate::model::{Example, Features, LinearModel, Training, features};
use crate::taxonomy::{
    LOW_CONFIDENCE_TONE, LabelConfig, Settings, TriageConfig, TriageConfigError,
};
use crate::text::{Lexicon, Normalizer, Token, TokenKind};

/// A tag value with its confidence in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The value, as named in the taxonomy.
    pub label: String,
    /// How sure the classifier is, from 0 to 1.
    pub confidence: f32,
}

/// Everything triage says about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Intents at or above the intent threshold, most confident first (may be empty).
    pub intents: Vec<Scored>,
    /// The one urgency level.
    pub urgency: Scored,
    /// Risks at or above the risk threshold, most confident first.
    pub risks: Vec<Scored>,
    /// The detected language (ISO 639-1).
    pub language: Scored,
    /// Tones, including `low_confidence` when set.
    pub tones: Vec<Scored>,
    /// The classifier is unsure: the message must go to human review with this output.
    pub low_confidence: bool,
    /// The three best intents whatever their confidence, for the reviewer.
    pub candidates: Vec<Scored>,
}

impl Classification {
    /// Whether the intent is among the reported ones.
    pub fn has_intent(&self, label: &str) -> bool {
        self.intents.iter().any(|s| s.label == label)
    }

    /// Whether the risk is among the reported ones.
    pub fn has_risk(&self, label: &str) -> bool {
        self.risks.iter().any(|s| s.label == label)
    }
}

/// A family of independent labels: a model and the cue phrases.
#[derive(Debug)]
struct Head {
    labels: Vec<String>,
    max_bonus: f32,
    model: LinearModel,
    lexicon: Lexicon,
    shapes: Vec<Shape>,
    /// Per label: raw score to confidence, and the confidence it is reported at.
    calibration: Vec<LabelCalibration>,
}

/// A compiled [`crate::taxonomy::ShapeConfig`]: its phrases point at their group.
#[derive(Debug)]
struct Shape {
    label: usize,
    groups: usize,
    weight: f32,
    lexicon: Lexicon,
}

impl Shape {
    fn present(&self, tokens: &[Token]) -> bool {
        let mut seen = vec![false; self.groups];
        self.lexicon.find(tokens, |group, _, _| {
            if let Some(s) = seen.get_mut(group) {
                *s = true;
            }
        });
        seen.iter().all(|s| *s)
    }
}

impl Head {
    fn new(
        labels: &[(&String, &LabelConfig)],
        normalizer: &Normalizer,
        settings: &Settings,
        examples: &[Example<'_>],
        training: Training,
        threshold: f32,
    ) -> Self {
        let mut lexicon = Lexicon::default();
        for (i, (_, label)) in labels.iter().enumerate() {
            for cue in &label.cues {
                lexicon.add(normalizer, cue, i, settings.cue_weight);
            }
            for cue in &label.weak_cues {
                lexicon.add(normalizer, cue, i, settings.weak_cue_weight);
            }
        }
        let mut shapes = Vec::new();
        for (i, (_, label)) in labels.iter().enumerate() {
            for shape in &label.shapes {
                let mut lexicon = Lexicon::default();
                for (group, phrases) in shape.all.iter().enumerate() {
                    for phrase in phrases {
                        lexicon.add(normalizer, phrase, group, 1.0);
                    }
                }
                shapes.push(Shape {
                    label: i,
                    groups: shape.all.len(),
                    weight: shape.weight,
                    lexicon,
                });
            }
        }
        Head {
            labels: labels.iter().map(|(name, _)| (*name).clone()).collect(),
            max_bonus: settings.cue_weight * 1.5,
            model: LinearModel::train(labels.len(), examples, training),
            lexicon,
            shapes,
            calibration: vec![LabelCalibration::identity(threshold); labels.len()],
        }
    }

    /// Calibrated confidence of every label.
    fn probabilities(&self, whole: &Features, parts: &[Features], tokens: &[Token]) -> Vec<f32> {
        self.scores(whole, parts, tokens)
            .into_iter()
            .zip(&self.calibration)
            .map(|(score, c)| c.confidence(score))
            .collect()
    }

    /// Raw score of every label: the best logit over the whole message and its parts,
    /// plus the strongest cue present and the shapes that match.
    fn scores(&self, whole: &Features, parts: &[Features], tokens: &[Token]) -> Vec<f32> {
        let mut z = self.model.logits(whole);
        for part in parts {
            for (best, candidate) in z.iter_mut().zip(self.model.logits(part)) {
                *best = best.max(candidate);
            }
        }
        let mut bonus = vec![0.0f32; self.labels.len()];
        self.lexicon.find(tokens, |label, weight, _| {
            if let Some(b) = bonus.get_mut(label) {
                *b += weight;
            }
        });
        // Several weak cues add up; no pile of cues is worth more than one cue and a half.
        let mut raised = vec![0.0f32; self.labels.len()];
        let mut lowered = vec![0.0f32; self.labels.len()];
        for shape in &self.shapes {
            if shape.present(tokens) {
                if shape.weight > 0.0 {
                    raised[shape.label] = raised[shape.label].max(shape.weight);
                } else {
                    lowered[shape.label] = lowered[shape.label].min(shape.weight);
                }
            }
        }
        z.iter()
            .zip(&bonus)
            .enumerate()
            .map(|(i, (z, b))| {
                let shape = if raised[i] > 0.0 {
                    raised[i]
                } else {
                    lowered[i]
                };
                z + b.min(self.max_bonus) + shape
            })
            .collect()
    }

    fn reported(&self, label: usize, confidence: f32) -> bool {
        confidence >= self.calibration[label].threshold
    }
}

/// One label's calibration, as [`Classifier::calibration`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibratedLabel {
    /// `intent` or `risk`.
    pub family: String,
    /// The label.
    pub label: String,
    /// Platt scaling: confidence = σ(slope · score + offset).
    pub slope: f32,
    /// See `slope`.
    pub offset: f32,
    /// The label is reported at or above this confidence.
    pub threshold: f32,
}

/// Labels of one training text; `None` means the family is unknown for it.
struct TrainingText {
    tokens: Vec<Token>,
    features: Features,
    language: String,
    intents: Option<Vec<usize>>,
    risks: Option<Vec<usize>>,
    /// Held out of the probe model and used to calibrate it.
    validation: bool,
}

/// One in this many examples (picked by a hash of the text, so the split is the same on
/// every start) is held out to calibrate confidences and choose thresholds.
fn in_validation_split(text: &str, share: f32) -> bool {
    if share <= 0.0 {
        return false;
    }
    // FNV-1a: stable across builds and platforms, unlike the standard hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % 1000) < (share.min(1.0) * 1000.0) as u64
}

/// The trained triage classifier.
#[derive(Debug)]
pub struct Classifier {
    normalizer: Normalizer,
    max_chars: usize,
    bits: u32,
    low_confidence_below: f32,
    split_words: HashSet<String>,
    intents: Head,
    risks: Head,
    language: LanguageIdentifier,
    solo: Vec<bool>,
    overrides: Vec<Vec<usize>>,
    intent_urgency: Vec<Option<usize>>,
    risk_urgency: Vec<Option<usize>>,
    implied_risks: Vec<Vec<usize>>,
    urgency_levels: Vec<String>,
    urgency_default: usize,
    urgency_cues: Lexicon,
    urgency_raise: Lexicon,
    tones: Vec<(String, Vec<usize>)>,
    tone_cues: Lexicon,
}

/// Confidence of an urgency set by an explicit cue or a risk.
const URGENCY_FROM_CUE: f32 = 0.9;
/// Confidence of an urgency that follows from the intents alone.
const URGENCY_FROM_INTENT: f32 = 0.7;
/// Lowest probability of an intent reported because it clearly beats the others.
const FALLBACK_MIN: f32 = 0.2;
/// How many times the second best the best intent must be to be reported under the threshold.
const FALLBACK_MARGIN: f32 = 1.5;
/// Confidence of the default urgency.
const URGENCY_DEFAULT: f32 = 0.5;
/// Bounds of a threshold chosen for its F1 (intents, and risks that are not recall first).
/// The held-out share is written like the rest of the corpus, so the F1 it prefers is
/// optimistic about how far down a label can be trusted on text nobody here wrote: a
/// label is reported only when, calibrated, it is at least as likely as not.
const INTENT_THRESHOLD_MIN: f32 = 0.5;
const INTENT_THRESHOLD_MAX: f32 = 0.75;
/// Lowest threshold of a recall-first risk.
const RISK_THRESHOLD_MIN: f32 = 0.25;

/// Every example of the configuration (per-label examples, neutral messages, labelled
/// messages and the corpus), tokenised and hashed once.
fn training_texts(config: &TriageConfig, normalizer: &Normalizer) -> Vec<TrainingText> {
    let s = &config.settings;
    let intent_index = |name: &str| config.intents.keys().position(|n| n.as_str() == name);
    let risk_index = |name: &str| config.risks.keys().position(|n| n.as_str() == name);
    let mut texts: Vec<TrainingText> = Vec::new();
    let mut add =
        |text: &str, language: &str, intents: Option<Vec<usize>>, risks: Option<Vec<usize>>| {
            let tokens = normalizer.tokens(text, s.max_chars);
            texts.push(TrainingText {
                features: features(&tokens, s.hash_bits),
                tokens,
                language: language.to_owned(),
                intents,
                risks,
                validation: in_validation_split(text, s.validation_share),
            });
        };
    for (i, label) in config.intents.values().enumerate() {
        for (language, examples) in &label.examples {
            for text in examples {
                add(text, language, Some(vec![i]), Some(Vec::new()));
            }
        }
    }
    for (r, label) in config.risks.values().enumerate() {
        for (language, examples) in &label.examples {
            for text in examples {
                add(text, language, None, Some(vec![r]));
            }
        }
    }
    for (language, examples) in &config.neutral {
        for text in examples {
            add(text, language, Some(Vec::new()), Some(Vec::new()));
        }
    }
    for example in config.labelled.iter().chain(&config.corpus_examples) {
        let intents = example
            .intents
            .iter()
            .filter_map(|n| intent_index(n))
            .collect();
        let risks = example.risks.iter().filter_map(|n| risk_index(n)).collect();
        add(&example.text, &example.language, Some(intents), Some(risks));
    }
    texts
}

impl Classifier {
    /// Trains a classifier from a validated configuration.
    ///
    /// When `settings.validation_share` is above zero, a probe classifier is first trained
    /// without that share of the examples and scored on it, to calibrate every label's
    /// confidence and choose its threshold (see [`crate::calibration`]); the classifier
    /// returned is then trained on every example and uses that calibration.
    pub fn train(config: &TriageConfig) -> Result<Self, TriageConfigError> {
        let s = &config.settings;
        let normalizer = Normalizer::new(&config.normalize.abbreviations);
        let texts = training_texts(config, &normalizer);
        let everything: Vec<&TrainingText> = texts.iter().collect();
        let held_out: Vec<&TrainingText> = texts.iter().filter(|t| t.validation).collect();
        if held_out.is_empty() {
            return Self::build(config, normalizer, &everything);
        }
        let rest: Vec<&TrainingText> = texts.iter().filter(|t| !t.validation).collect();
        // The probe and the classifier are independent: train them side by side.
        let (classifier, probe) = std::thread::scope(|scope| {
            let probe = scope.spawn(|| Self::build(config, normalizer.clone(), &rest));
            let classifier = Self::build(config, normalizer.clone(), &everything);
            let probe = probe
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (classifier, probe)
        });
        let (mut classifier, probe) = (classifier?, probe?);
        classifier.intents.calibration = probe.calibrate(
            &probe.intents,
            &held_out,
            |t| t.intents.as_ref(),
            |_| Objective::F1 {
                min: INTENT_THRESHOLD_MIN,
                max: INTENT_THRESHOLD_MAX,
            },
            s.intent_threshold,
        );
        classifier.risks.calibration = probe.calibrate(
            &probe.risks,
            &held_out,
            |t| t.risks.as_ref(),
            |r| match config.risks.values().nth(r) {
                Some(risk) if risk.recall_first => Objective::Recall {
                    target: s.risk_recall_target,
                    min: RISK_THRESHOLD_MIN,
                    max: s.risk_threshold,
                },
                _ => Objective::F1 {
                    min: INTENT_THRESHOLD_MIN,
                    max: INTENT_THRESHOLD_MAX,
                },
            },
            s.risk_threshold,
        );
        Ok(classifier)
    }

    /// Scores the held-out examples with this (probe) classifier's `head` and fits each
    /// label's calibration on them.
    fn calibrate(
        &self,
        head: &Head,
        held_out: &[&TrainingText],
        labels_of: fn(&TrainingText) -> Option<&Vec<usize>>,
        objective: impl Fn(usize) -> Objective,
        fallback: f32,
    ) -> Vec<LabelCalibration> {
        let mut scores: Vec<calibration::Scores> = vec![Vec::new(); head.labels.len()];
        for text in held_out {
            let Some(expected) = labels_of(text) else {
                continue;
            };
            let parts: Vec<Features> = self
                .parts(&text.tokens)
                .into_iter()
                .map(|p| features(p, self.bits))
                .collect();
            let raw = head.scores(&text.features, &parts, &text.tokens);
            for (label, score) in raw.into_iter().enumerate() {
                scores[label].push((score, expected.contains(&label)));
            }
        }
        scores
            .iter()
            .enumerate()
            .map(|(label, s)| calibration::fit(s, objective(label), fallback))
            .collect()
    }

    /// Builds the heads, language identifier and lexicons from the given examples, with
    /// every label at its configured threshold.
    fn build(
        config: &TriageConfig,
        normalizer: Normalizer,
        texts: &[&TrainingText],
    ) -> Result<Self, TriageConfigError> {
        let s = &config.settings;
        let intent_labels: Vec<(&String, &LabelConfig)> = config.intents.iter().collect();
        let risk_labels: Vec<(&String, &LabelConfig)> = config.risks.iter().collect();
        let level = |name: &Option<String>| -> Result<Option<usize>, TriageConfigError> {
            match name {
                None => Ok(None),
                Some(n) => config
                    .urgency
                    .levels
                    .iter()
                    .position(|l| l == n)
                    .map(Some)
                    .ok_or_else(|| TriageConfigError::Invalid {
                        line: None,
                        message: format!("unknown urgency level {n:?}"),
                    }),
            }
        };
        let risk_index = |name: &str| risk_labels.iter().position(|(n, _)| n.as_str() == name);
        let intent_index = |name: &str| intent_labels.iter().position(|(n, _)| n.as_str() == name);

        let training = Training {
            epochs: s.epochs,
            learning_rate: s.learning_rate,
            bits: s.hash_bits,
        };
        let examples_of = |pick: fn(&TrainingText) -> &Option<Vec<usize>>| -> Vec<Example<'_>> {
            texts
                .iter()
                .filter_map(|t| {
                    pick(t).as_ref().map(|labels| Example {
                        features: &t.features,
                        labels,
                    })
                })
                .collect()
        };
        let intents = Head::new(
            &intent_labels,
            &normalizer,
            s,
            &examples_of(|t| &t.intents),
            training,
            s.intent_threshold,
        );
        let risks = Head::new(
            &risk_labels,
            &normalizer,
            s,
            &examples_of(|t| &t.risks),
            training,
            s.risk_threshold,
        );
        let by_language: Vec<(&Features, &str)> = texts
            .iter()
            .map(|t| (&t.features, t.language.as_str()))
            .collect();
        let language = LanguageIdentifier::train(config, &normalizer, &by_language, training);

        let u = &config.urgency;
        let mut urgency_cues = Lexicon::default();
        for (name, cues) in &u.cues {
            let Some(l) = level(&Some(name.clone()))? else {
                continue;
            };
            for cue in cues {
                urgency_cues.add(&normalizer, cue, l, 1.0);
            }
        }
        let mut urgency_raise = Lexicon::default();
        for cue in &u.raise {
            urgency_raise.add(&normalizer, cue, 0, 1.0);
        }
        let mut tone_cues = Lexicon::default();
        let mut tones = Vec::new();
        for (i, (name, tone)) in config.tones.iter().enumerate() {
            for cue in &tone.cues {
                tone_cues.add(&normalizer, cue, i, 1.0);
            }
            tones.push((
                name.clone(),
                tone.from_risks
                    .iter()
                    .filter_map(|r| risk_index(r))
                    .collect(),
            ));
        }

        Ok(Classifier {
            max_chars: s.max_chars,
            bits: s.hash_bits,
            low_confidence_below: s.low_confidence_below,
            split_words: config
                .normalize
                .split_words
                .iter()
                .flat_map(|w| normalizer.tokens(w, usize::MAX))
                .map(|t| t.text)
                .collect(),
            solo: intent_labels.iter().map(|(_, l)| l.solo).collect(),
            overrides: intent_labels
                .iter()
                .map(|(_, l)| l.overrides.iter().filter_map(|o| intent_index(o)).collect())
                .collect(),
            intent_urgency: intent_labels
                .iter()
                .map(|(_, l)| level(&l.urgency))
                .collect::<Result<_, _>>()?,
            risk_urgency: risk_labels
                .iter()
                .map(|(_, l)| level(&l.urgency))
                .collect::<Result<_, _>>()?,
            implied_risks: intent_labels
                .iter()
                .map(|(_, l)| {
                    l.implies_risks
                        .iter()
                        .filter_map(|r| risk_index(r))
                        .collect()
                })
                .collect(),
            urgency_default: u.levels.iter().position(|l| *l == u.default).unwrap_or(0),
            urgency_levels: u.levels.clone(),
            urgency_cues,
            urgency_raise,
            tones,
            tone_cues,
            intents,
            risks,
            language,
            normalizer,
        })
    }

    /// Every intent's and risk's calibration: how its raw score becomes a confidence and
    /// the confidence it is reported at.
    pub fn calibration(&self) -> Vec<CalibratedLabel> {
        let of = |family: &'static str, head: &Head| {
            head.labels
                .iter()
                .zip(&head.calibration)
                .map(move |(label, c)| CalibratedLabel {
                    family: family.to_owned(),
                    label: label.clone(),
                    slope: c.a,
                    offset: c.b,
                    threshold: c.threshold,
                })
                .collect::<Vec<_>>()
        };
        let mut all = of("intent", &self.intents);
        all.extend(of("risk", &self.risks));
        all
    }

    /// Intent values, in the order the classifier knows them.
    pub fn intent_labels(&self) -> &[String] {
        &self.intents.labels
    }

    /// Risk values, in the order the classifier knows them.
    pub fn risk_labels(&self) -> &[String] {
        &self.risks.labels
    }

    /// Tags one message. Never fails: empty, huge, binary or emoji-only text gets a
    /// classification too (usually `low_confidence`), and only the first
    /// `settings.max_chars` characters are looked at.
    pub fn classify(&self, text: &str) -> Classification {
        let capped = match text.char_indices().nth(self.max_chars) {
            Some((end, _)) => &text[..end],
            None => text,
        };
        let tokens = self.normalizer.tokens(capped, self.max_chars);
        let whole = features(&tokens, self.bits);
        let parts: Vec<Features> = self
            .parts(&tokens)
            .into_iter()
            .map(|p| features(p, self.bits))
            .collect();

        let intent_p = self.intents.probabilities(&whole, &parts, &tokens);
        let mut intents: Vec<(usize, f32)> = intent_p
            .iter()
            .copied()
            .enumerate()
            .filter(|&(i, p)| self.intents.reported(i, p))
            .collect();
        let risk_p = self.risks.probabilities(&whole, &parts, &tokens);
        let mut risks: Vec<(usize, f32)> = risk_p
            .iter()
            .copied()
            .enumerate()
            .filter(|&(r, p)| self.risks.reported(r, p))
            .collect();
        if intents.is_empty()
            && risks.is_empty()
            && let Some(best) = self.clear_winner(&intent_p)
        {
            // Unsure but not ambiguous: report the best intent; it stays low_confidence.
            intents.push(best);
        }
        if intents.iter().any(|(i, _)| !self.solo[*i]) {
            intents.retain(|(i, _)| !self.solo[*i]);
        }
        let probabilities = &intent_p;
        let overridden: Vec<usize> = intents
            .iter()
            .flat_map(|&(i, p)| {
                self.overrides[i]
                    .iter()
                    .copied()
                    .filter(move |&o| probabilities.get(o).is_some_and(|&q| q < p))
            })
            .collect();
        intents.retain(|(i, _)| !overridden.contains(i));
        intents.sort_by(|a, b| b.1.total_cmp(&a.1));
        for &(i, p) in &intents {
            for &r in &self.implied_risks[i] {
                match risks.iter_mut().find(|(existing, _)| *existing == r) {
                    Some(existing) => existing.1 = existing.1.max(p),
                    None => risks.push((r, p)),
                }
            }
        }
        risks.sort_by(|a, b| b.1.total_cmp(&a.1));

        let urgency = self.urgency(&tokens, &intents, &risks);
        let language = self.language.identify(capped, &tokens, &whole);

        let best = intents
            .first()
            .map(|i| i.1)
            .into_iter()
            .chain(risks.first().map(|r| r.1))
            .fold(0.0f32, f32::max);
        let low_confidence = best < self.low_confidence_below;
        let mut tone_hits = vec![0.0f32; self.tones.len()];
        self.tone_cues.find(&tokens, |t, _, _| {
            if let Some(hit) = tone_hits.get_mut(t) {
                *hit = URGENCY_FROM_CUE;
            }
        });
        let mut tones: Vec<Scored> = Vec::new();
        for (t, (name, from_risks)) in self.tones.iter().enumerate() {
            let from_risk = risks
                .iter()
                .filter(|(r, _)| from_risks.contains(r))
                .map(|r| r.1)
                .fold(0.0f32, f32::max);
            let confidence = tone_hits[t].max(from_risk);
            if confidence > 0.0 {
                tones.push(Scored {
                    label: name.clone(),
                    confidence,
                });
            }
        }
        if low_confidence {
            tones.push(Scored {
                label: LOW_CONFIDENCE_TONE.to_owned(),
                confidence: 1.0 - best,
            });
        }

        let mut ranked: Vec<(usize, f32)> = intent_p.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let named = |head: &Head, (i, p): (usize, f32)| Scored {
            label: head.labels[i].clone(),
            confidence: p,
        };
        Classification {
            intents: intents
                .into_iter()
                .map(|x| named(&self.intents, x))
                .collect(),
            urgency,
            risks: risks.into_iter().map(|x| named(&self.risks, x)).collect(),
            language,
            tones,
            low_confidence,
            candidates: ranked
                .into_iter()
                .take(3)
                .map(|x| named(&self.intents, x))
                .collect(),
        }
    }

    /// The best intent when it stands out from the others although it is under the
    /// threshold: at least [`FALLBACK_MIN`] and [`FALLBACK_MARGIN`] times the second.
    fn clear_winner(&self, p: &[f32]) -> Option<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (best, second) = (ranked.first()?, ranked.get(1).map_or(0.0, |s| s.1));
        (best.1 >= FALLBACK_MIN && best.1 >= FALLBACK_MARGIN * second).then_some(*best)
    }

    /// Parts of a message separated by `?`, `!` and the configured split words, when
    /// there is more than one.
    fn parts<'t>(&self, tokens: &'t [Token]) -> Vec<&'t [Token]> {
        let mut parts = Vec::new();
        let mut start = 0;
        for (i, token) in tokens.iter().enumerate() {
            let boundary = token.kind == TokenKind::Punct || self.split_words.contains(&token.text);
            if boundary {
                if i > start {
                    parts.push(&tokens[start..i]);
                }
                start = i + 1;
            }
        }
        if start < tokens.len() && start > 0 {
            parts.push(&tokens[start..]);
        }
        if parts.len() < 2 {
            parts.clear();
        }
        parts
    }

    fn urgency(
        &self,
        tokens: &[Token],
        intents: &[(usize, f32)],
        risks: &[(usize, f32)],
    ) -> Scored {
        let (mut level, mut confidence) = if intents.is_empty() {
            (self.urgency_default, URGENCY_DEFAULT)
        } else {
            let level = intents
                .iter()
                .map(|(i, _)| self.intent_urgency[*i].unwrap_or(self.urgency_default))
                .max();
            (level.unwrap_or(self.urgency_default), URGENCY_FROM_INTENT)
        };
        let mut floor: Option<usize> = None;
        let mut lower: Option<usize> = None;
        self.urgency_cues.find(tokens, |l, _, _| {
            if l >= self.urgency_default {
                floor = floor.max(Some(l));
            } else {
                lower = Some(lower.map_or(l, |x: usize| x.min(l)));
            }
        });
        for (r, _) in risks {
            if let Some(l) = self.risk_urgency[*r] {
                floor = floor.max(Some(l));
            }
        }
        match (floor, lower) {
            (Some(f), _) if f >= level => {
                level = f;
                confidence = URGENCY_FROM_CUE;
            }
            (None, Some(l)) => {
                level = l;
                confidence = URGENCY_FROM_CUE;
            }
            _ => {}
        }
        let mut raised = false;
        self.urgency_raise.find(tokens, |_, _, _| raised = true);
        if raised && level >= self.urgency_default && level + 1 < self.urgency_levels.len() {
            level += 1;
            confidence = URGENCY_FROM_CUE;
        }
        Scored {
            label: self.urgency_levels.get(level).cloned().unwrap_or_default(),
            confidence,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::shipped_classifier as classifier;

    fn intents(c: &Classification) -> Vec<&str> {
        c.intents.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn classifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Classifier>();
    }

    #[test]
    fn romanised_hindi_refund_is_hindi_refund_request() {
        let c = classifier().classify("mera refund kab aayega??");
        assert!(c.has_intent("refund_request"), "{c:?}");
        assert_eq!(c.language.label, "hi");
    }

    #[test]
    fn english_slang_order_question_is_order_tracking() {
        let c = classifier().classify("where tf is my order");
        assert_eq!(intents(&c), ["order_tracking"], "{c:?}");
        assert_eq!(c.language.label, "en");
    }

    #[test]
    fn informal_indonesian_parcel_question_is_order_tracking() {
        let c = classifier().classify("kak paket saya blm sampe");
        assert!(c.has_intent("order_tracking"), "{c:?}");
        assert_eq!(c.language.label, "id");
    }

    #[test]
    fn double_charge_without_reply_is_a_billing_complaint_with_raised_urgency() {
        let c = classifier().classify("your app charged me twice and nobody replied");
        assert!(c.has_intent("billing_complaint"), "{c:?}");
        assert!(
            matches!(c.urgency.label.as_str(), "priority" | "immediate"),
            "{c:?}"
        );
    }

    #[test]
    fn fraud_described_without_fraud_words_is_a_fraud_signal_in_every_language() {
        for text in [
            "there is a debit of 75 on my statement from you and i never bought it",
            "my daughter used my card on your site without asking",
            "a woman said she was from your support team and wanted the otp",
            "got a message that i won a prize, just need to pay a small fee",
            "alguém mudou a senha da minha conta, não fui eu",
            "me cobraron 800 pesos y yo no hice esa compra",
            "ye payment maine nahi kiya bhai, 2000 rs kat gaye",
            "ada transaksi 300rb di kartu, bukan saya yang belanja",
            "انسحب مبلغ من بطاقتي وانا ما اشتريت شي",
            "aapke naam se link aaya hai jo card ka pin maang raha hai",
        ] {
            let c = classifier().classify(text);
            assert!(c.has_risk("fraud_signal"), "{text}: {c:?}");
            assert_eq!(c.urgency.label, "immediate", "{text}");
        }
    }

    #[test]
    fn fraud_vocabulary_without_a_report_is_not_a_fraud_signal() {
        for text in [
            "you cheats, where is my refund after 3 weeks",
            "kalian maling, dana refund saya mana",
            "chor log ho tum, mera refund kab aayega",
            "ladrones, devuelvan mi dinero",
            "how can i tell if an sms is really from you or fake",
            "i never received my order",
        ] {
            let c = classifier().classify(text);
            assert!(!c.has_risk("fraud_signal"), "{text}: {c:?}");
        }
    }

    #[test]
    fn asking_the_bank_to_reverse_a_payment_is_a_legal_threat() {
        for text in [
            "le avisé a mi banco para que haga el contracargo",
            "i've asked my bank to reverse the payment",
        ] {
            let c = classifier().classify(text);
            assert!(c.has_risk("legal_threat"), "{text}: {c:?}");
        }
    }

    #[test]
    fn stacked_requests_get_both_intents() {
        let c = classifier().classify("where is my order and I also want an invoice");
        assert!(c.has_intent("order_tracking"), "{c:?}");
        assert!(c.has_intent("invoice_request"), "{c:?}");
    }

    #[test]
    fn lawyer_or_chargeback_threat_is_a_legal_threat_in_every_language() {
        for text in [
            "I'm calling my lawyer and filing a chargeback",
            "voy a demandarlos, ya tengo abogado",
            "vou processar vocês, já falei com meu advogado",
            "سأرفع عليكم قضية عن طريق المحامي",
            "main consumer court me case kar dunga",
            "मैं आप पर केस करूंगा, वकील से बात हो गई है",
            "sy akan tempuh jalur hukum lewat pengacara",
        ] {
            let c = classifier().classify(text);
            assert!(c.has_risk("legal_threat"), "{text}: {c:?}");
            assert_ne!(c.urgency.label, "low", "{text}");
        }
    }

    #[test]
    fn unauthorised_charge_is_a_fraud_signal() {
        for text in [
            "someone hacked my account and bought stuff",
            "me hicieron un cargo que yo no autoricé, es una estafa",
            "caí num golpe, alguém usou meu cartão",
            "kisi ne mera account hack kar liya",
        ] {
            let c = classifier().classify(text);
            assert!(c.has_risk("fraud_signal"), "{text}: {c:?}");
        }
    }

    #[test]
    fn thanks_alone_is_greeting_but_not_next_to_a_request() {
        let c = classifier().classify("thanks a lot!");
        assert_eq!(intents(&c), ["greeting_or_thanks"], "{c:?}");
        assert_eq!(c.urgency.label, "low");
        let c = classifier().classify("hi, where is my order?");
        assert!(!c.has_intent("greeting_or_thanks"), "{c:?}");
    }

    #[test]
    fn ending_a_subscription_is_churn_but_cancelling_a_mistaken_order_is_not() {
        let c = classifier().classify("cancel my subscription, i'm switching to netflix");
        assert!(c.has_intent("cancellation"), "{c:?}");
        assert!(c.has_risk("churn_risk"), "{c:?}");
        for text in [
            "i ordered the wrong size 5 min ago, cancel that order pls",
            "galti se order ho gaya, cancel kar do",
        ] {
            let c = classifier().classify(text);
            assert!(c.has_intent("cancellation"), "{text}: {c:?}");
            assert!(!c.has_risk("churn_risk"), "{text}: {c:?}");
        }
    }

    #[test]
    fn script_decides_arabic_and_devanagari() {
        assert_eq!(classifier().classify("وين الطلب حقي").language.label, "ar");
        assert_eq!(
            classifier().classify("मेरा पैसा वापस करो").language.label,
            "hi"
        );
    }

    #[test]
    fn bad_input_classifies_without_panic_and_flags_low_confidence() {
        let huge = "refund ".repeat(3000);
        let binary: String = (0u8..=255).map(char::from).collect();
        for text in [
            "",
            "   ",
            "😀😀😀",
            "\u{202E}\u{202D}",
            &huge,
            &binary,
            "\u{0000}\u{FFFD}\u{FFFF}",
        ] {
            let c = classifier().classify(text);
            assert!((0.0..=1.0).contains(&c.language.confidence));
            assert!(
                c.intents
                    .iter()
                    .all(|s| (0.0..=1.0).contains(&s.confidence))
            );
        }
        assert!(classifier().classify("").low_confidence);
    }

    #[test]
    fn a_business_can_add_an_intent_without_code() {
        let text = format!(
            "{}\n[intents.warranty_claim]\ncues = [\"warranty\", \"garantia\"]\nexamples.en = [\"is this still under warranty\", \"my warranty claim was ignored\", \"i want to make a warranty claim\", \"the blender broke after 3 months, warranty please\", \"does the warranty cover a cracked screen\", \"how do i claim the 2 year warranty\"]\n",
            crate::DEFAULT_CONFIG
        );
        let config = TriageConfig::from_toml(&text).unwrap();
        let classifier = Classifier::train(&config).unwrap();
        let c = classifier.classify("the screen died, is it covered by warranty?");
        assert!(c.has_intent("warranty_claim"), "{c:?}");
    }
}
