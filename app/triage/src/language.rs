//! Language identification for short customer messages.
//!
//! Three sources of evidence, combined:
//! - the script: Arabic letters mean `ar`, Devanagari means `hi`, when the configuration
//!   declares those languages;
//! - the `whatlang` crate, restricted to the configured languages it knows, trusted in
//!   proportion to its own confidence and to the length of the text;
//! - a model trained on the configured examples plus the configured marker words, which
//!   is what recognises romanised Hindi ("mera refund kab aayega", no crate does) and
//!   two-word messages where trigram statistics say little.
//!
//! Codes are ISO 639-1; romanised Hindi is `hi`.

use std::collections::HashMap;

use crate::classifier::Scored;
use crate::model::{Example, Features, LinearModel, Training, probability};
use crate::taxonomy::TriageConfig;
use crate::text::{Normalizer, Script, Token, TokenKind, script_of};

/// Weight of one marker word found in the text, in logits.
const MARKER_WEIGHT: f32 = 1.2;
/// Most marker evidence counted for one language, in logits.
const MARKER_CAP: f32 = 3.6;
/// Texts shorter than this (in letters) give `whatlang` little say.
const WHATLANG_MIN_LETTERS: usize = 20;

/// Identifies the language of a message among the configured ones.
#[derive(Debug)]
pub struct LanguageIdentifier {
    codes: Vec<String>,
    model: LinearModel,
    markers: HashMap<String, Vec<usize>>,
    default: usize,
    arabic: Option<usize>,
    devanagari: Option<usize>,
    detector: whatlang::Detector,
    whatlang_index: HashMap<whatlang::Lang, usize>,
}

impl LanguageIdentifier {
    /// Trains the identifier from the configuration's examples. `examples` pairs the
    /// features of every configured example with its language code.
    pub fn train(
        config: &TriageConfig,
        normalizer: &Normalizer,
        examples: &[(&Features, &str)],
        training: Training,
    ) -> Self {
        let codes: Vec<String> = config.languages.keys().cloned().collect();
        let index = |code: &str| codes.iter().position(|c| c == code);
        let labels: Vec<[usize; 1]> = examples
            .iter()
            .map(|(_, code)| [index(code).unwrap_or(usize::MAX)])
            .collect();
        let training_set: Vec<Example<'_>> = examples
            .iter()
            .zip(&labels)
            .filter(|(_, l)| l[0] != usize::MAX)
            .map(|((features, _), l)| Example {
                features,
                labels: l,
            })
            .collect();
        let model = LinearModel::train(codes.len(), &training_set, training);
        let mut markers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (_, language)) in config.languages.iter().enumerate() {
            for marker in &language.markers {
                for token in normalizer.tokens(marker, usize::MAX) {
                    let entry = markers.entry(token.text).or_default();
                    if !entry.contains(&i) {
                        entry.push(i);
                    }
                }
            }
        }
        let whatlang_index: HashMap<whatlang::Lang, usize> = codes
            .iter()
            .enumerate()
            .filter_map(|(i, code)| whatlang_lang(code).map(|lang| (lang, i)))
            .collect();
        let detector = whatlang::Detector::with_allowlist(whatlang_index.keys().copied().collect());
        LanguageIdentifier {
            default: index(&config.settings.default_language).unwrap_or(0),
            arabic: index("ar"),
            devanagari: index("hi"),
            codes,
            model,
            markers,
            detector,
            whatlang_index,
        }
    }

    /// The language of a message, with a confidence. `text` is the raw (already capped)
    /// message, `tokens` and `features` its normalised forms.
    pub fn identify(&self, text: &str, tokens: &[Token], features: &Features) -> Scored {
        let mut latin = 0usize;
        let mut arabic = 0usize;
        let mut devanagari = 0usize;
        for c in text.chars() {
            match script_of(c) {
                Some(Script::Latin) => latin += 1,
                Some(Script::Arabic) => arabic += 1,
                Some(Script::Devanagari) => devanagari += 1,
                _ => {}
            }
        }
        let letters = latin + arabic + devanagari;
        if letters == 0 {
            return self.scored(self.default, 0.3);
        }
        for (count, language) in [(arabic, self.arabic), (devanagari, self.devanagari)] {
            if let Some(language) = language
                && count * 2 >= letters
            {
                return self.scored(language, 0.9 + 0.1 * count as f32 / letters as f32);
            }
        }
        let mut z = self.model.logits(features);
        // Only Latin-script languages compete from here on.
        for (i, score) in z.iter_mut().enumerate() {
            if Some(i) == self.arabic {
                *score = f32::NEG_INFINITY;
            }
        }
        let mut evidence = vec![0.0f32; self.codes.len()];
        for token in tokens.iter().filter(|t| t.kind == TokenKind::Word) {
            if let Some(languages) = self.markers.get(&token.text) {
                let share = MARKER_WEIGHT / languages.len() as f32;
                for &l in languages {
                    evidence[l] += share;
                }
            }
        }
        for (score, e) in z.iter_mut().zip(&evidence) {
            *score += e.min(MARKER_CAP);
        }
        if latin >= WHATLANG_MIN_LETTERS
            && let Some(info) = self.detector.detect(text)
            && let Some(&l) = self.whatlang_index.get(&info.lang())
        {
            let length = (latin as f32 / 60.0).min(1.0);
            z[l] += 2.5 * info.confidence() as f32 * length;
        }
        let (best, top) =
            z.iter()
                .enumerate()
                .fold((self.default, f32::NEG_INFINITY), |acc, (i, &s)| {
                    if s > acc.1 { (i, s) } else { acc }
                });
        if top == f32::NEG_INFINITY {
            return self.scored(self.default, 0.3);
        }
        let second = z
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != best)
            .map(|(_, &s)| s)
            .fold(f32::NEG_INFINITY, f32::max);
        // Confidence from the margin between the two best languages.
        let confidence = if second == f32::NEG_INFINITY {
            0.9
        } else {
            probability((top - second) * 1.5)
        };
        self.scored(best, confidence.clamp(0.0, 1.0))
    }

    fn scored(&self, index: usize, confidence: f32) -> Scored {
        Scored {
            label: self.codes.get(index).cloned().unwrap_or_default(),
            confidence: confidence.min(1.0),
        }
    }
}

/// The `whatlang` language of an ISO 639-1 code, for the languages it knows well.
fn whatlang_lang(code: &str) -> Option<whatlang::Lang> {
    use whatlang::Lang;
    Some(match code {
        "en" => Lang::Eng,
        "es" => Lang::Spa,
        "pt" => Lang::Por,
        "id" => Lang::Ind,
        "fr" => Lang::Fra,
        "de" => Lang::Deu,
        "it" => Lang::Ita,
        "nl" => Lang::Nld,
        "tr" => Lang::Tur,
        "tl" => Lang::Tgl,
        "vi" => Lang::Vie,
        // Hindi and Arabic are told by their script; romanised Hindi by the trained model.
        _ => return None,
    })
}
