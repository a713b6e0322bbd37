//! The texts Parley writes to customers itself (the closing message, the satisfaction
//! survey and its follow-up), in each language the taxonomy knows, picked by the case's
//! language: the language of its latest customer message.
//!
//! English comes from `[conversations] closing_message` and `[csat] question` /
//! `follow_up`; `[texts.<language>]` sections give the others (and may override any
//! English text). A text a language leaves out is the default's.

use serde::Deserialize;
use std::collections::BTreeMap;

/// WhatsApp's limits on an interactive list: a row title, the button, a section title.
const ROW_TITLE_MAX: usize = 24;
const BUTTON_MAX: usize = 20;
const SECTION_MAX: usize = 24;
/// Longest text a message may carry here.
const TEXT_MAX: usize = 4096;
/// The survey's scores, 1 to 5.
pub const SCORES: usize = 5;

/// Every text, for one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerTexts {
    /// Sent when a PENDING case the customer never answered is resolved.
    pub closing_message: String,
    pub csat_question: String,
    /// Asked once after a score of 1 to 3.
    pub csat_follow_up: String,
    /// The button that opens the list of scores.
    pub csat_button: String,
    /// The title above the scores.
    pub csat_section: String,
    /// The scores' titles, 1 (worst) to 5.
    pub csat_choices: Vec<String>,
}

impl CustomerTexts {
    /// English, with the configured closing message, question and follow-up.
    pub fn english(closing_message: &str, question: &str, follow_up: &str) -> Self {
        Self {
            closing_message: closing_message.to_owned(),
            csat_question: question.to_owned(),
            csat_follow_up: follow_up.to_owned(),
            csat_button: "Rate us".into(),
            csat_section: "Your rating".into(),
            csat_choices: [
                "1 - Very poor",
                "2 - Poor",
                "3 - Okay",
                "4 - Good",
                "5 - Excellent",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// `[texts.<language>]`: the texts of one language; what is left out is the default's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextsOverride {
    pub closing_message: Option<String>,
    pub csat_question: Option<String>,
    pub csat_follow_up: Option<String>,
    pub csat_button: Option<String>,
    pub csat_section: Option<String>,
    pub csat_choices: Option<Vec<String>>,
}

/// The texts of every configured language, and the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalizedTexts {
    default: CustomerTexts,
    languages: BTreeMap<String, CustomerTexts>,
}

impl Default for LocalizedTexts {
    fn default() -> Self {
        Self {
            default: CustomerTexts::english("", "", ""),
            languages: BTreeMap::new(),
        }
    }
}

impl LocalizedTexts {
    /// The default texts with each language's overrides on top, checked against
    /// WhatsApp's limits; the error names the language and the text at fault.
    pub fn new(
        default: CustomerTexts,
        overrides: &BTreeMap<String, TextsOverride>,
    ) -> Result<Self, String> {
        let mut languages = BTreeMap::new();
        for (language, given) in overrides {
            let code = language.trim().to_ascii_lowercase();
            let well_formed =
                (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase());
            if !well_formed {
                return Err(format!(
                    "[texts.{language}]: name the language by its ISO 639-1 code (es, hi, ar, ...)"
                ));
            }
            let pick = |own: &Option<String>, default: &String| {
                own.clone().unwrap_or_else(|| default.clone())
            };
            let texts = CustomerTexts {
                closing_message: pick(&given.closing_message, &default.closing_message),
                csat_question: pick(&given.csat_question, &default.csat_question),
                csat_follow_up: pick(&given.csat_follow_up, &default.csat_follow_up),
                csat_button: pick(&given.csat_button, &default.csat_button),
                csat_section: pick(&given.csat_section, &default.csat_section),
                csat_choices: given
                    .csat_choices
                    .clone()
                    .unwrap_or_else(|| default.csat_choices.clone()),
            };
            check(&texts).map_err(|problem| format!("[texts.{language}] {problem}"))?;
            languages.insert(code, texts);
        }
        let default = languages.get("en").cloned().unwrap_or(default);
        Ok(Self { default, languages })
    }

    /// The texts for a case whose customer writes `language` (ISO 639-1, or a locale
    /// such as `es_MX` or `pt-BR`); the default for an unknown or missing language.
    pub fn for_language(&self, language: Option<&str>) -> &CustomerTexts {
        language
            .map(|l| l.trim().to_ascii_lowercase())
            .and_then(|l| {
                let base = l.split(['_', '-']).next().unwrap_or_default().to_owned();
                self.languages.get(&l).or_else(|| self.languages.get(&base))
            })
            .unwrap_or(&self.default)
    }

    /// The configured languages.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }
}

fn check(texts: &CustomerTexts) -> Result<(), String> {
    let chars = |s: &str| s.chars().count();
    for (name, text) in [
        ("closing_message", &texts.closing_message),
        ("csat_question", &texts.csat_question),
        ("csat_follow_up", &texts.csat_follow_up),
    ] {
        if text.trim().is_empty() || chars(text) > TEXT_MAX {
            return Err(format!("{name}: must have 1 to {TEXT_MAX} characters"));
        }
    }
    if texts.csat_button.trim().is_empty() || chars(&texts.csat_button) > BUTTON_MAX {
        return Err(format!(
            "csat_button: must have 1 to {BUTTON_MAX} characters"
        ));
    }
    if texts.csat_section.trim().is_empty() || chars(&texts.csat_section) > SECTION_MAX {
        return Err(format!(
            "csat_section: must have 1 to {SECTION_MAX} characters"
        ));
    }
    if texts.csat_choices.len() != SCORES {
        return Err(format!(
            "csat_choices: give {SCORES} titles, for the scores 1 to {SCORES}"
        ));
    }
    if let Some(long) = texts
        .csat_choices
        .iter()
        .find(|c| c.trim().is_empty() || chars(c) > ROW_TITLE_MAX)
    {
        return Err(format!(
            "csat_choices: {long:?} must have 1 to {ROW_TITLE_MAX} characters (WhatsApp's limit for a list row)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english() -> CustomerTexts {
        CustomerTexts::english("Closing now.", "How did we do?", "What went wrong?")
    }

    #[test]
    fn a_language_falls_back_to_its_base_then_to_the_default() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "es".to_owned(),
            TextsOverride {
                csat_question: Some("¿Qué tal lo hicimos?".into()),
                ..TextsOverride::default()
            },
        );
        let texts = LocalizedTexts::new(english(), &overrides).unwrap();
        assert_eq!(
            texts.for_language(Some("es_MX")).csat_question,
            "¿Qué tal lo hicimos?"
        );
        // What Spanish leaves out is the default's.
        assert_eq!(
            texts.for_language(Some("es")).closing_message,
            "Closing now."
        );
        assert_eq!(
            texts.for_language(Some("sw")).csat_question,
            "How did we do?"
        );
        assert_eq!(texts.for_language(None).csat_question, "How did we do?");
    }

    #[test]
    fn texts_over_whatsapps_limits_are_refused_with_the_language() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "pt".to_owned(),
            TextsOverride {
                csat_choices: Some(vec!["1".into(), "2".into()]),
                ..TextsOverride::default()
            },
        );
        let error = LocalizedTexts::new(english(), &overrides).unwrap_err();
        assert!(error.contains("[texts.pt] csat_choices"), "{error}");
        overrides.insert(
            "pt".to_owned(),
            TextsOverride {
                csat_button: Some("Avalie o nosso atendimento agora".into()),
                ..TextsOverride::default()
            },
        );
        let error = LocalizedTexts::new(english(), &overrides).unwrap_err();
        assert!(error.contains("csat_button"), "{error}");
        overrides.clear();
        overrides.insert("Spanish".to_owned(), TextsOverride::default());
        assert!(LocalizedTexts::new(english(), &overrides).is_err());
    }
}
