//! Consent: what a contact agreed to be sent, per purpose, and the STOP/START keywords
//! customers use to change it, in the six languages triage understands.

use serde::Serialize;

/// What a message to a contact is for; consent is kept per purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Answers to the customer's own requests.
    Service,
    /// Promotions and announcements (business-initiated).
    Marketing,
    /// Satisfaction surveys (CSAT).
    Surveys,
}

impl Purpose {
    pub const ALL: [Purpose; 3] = [Self::Service, Self::Marketing, Self::Surveys];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Marketing => "marketing",
            Self::Surveys => "surveys",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a contact who never said either way may be sent this: a customer who
    /// writes expects answers and a survey about them; marketing needs an opt-in.
    pub fn granted_by_default(self) -> bool {
        !matches!(self, Self::Marketing)
    }
}

/// What a keyword message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordRequest {
    /// Stop business-initiated messages (marketing and surveys).
    OptOut,
    /// Receive them again.
    OptIn,
}

impl KeywordRequest {
    /// The purposes the request changes; answers to the customer's own requests go on.
    pub fn purposes(self) -> [Purpose; 2] {
        [Purpose::Marketing, Purpose::Surveys]
    }

    pub fn granted(self) -> bool {
        self == Self::OptIn
    }
}

/// Opt-out keywords: English, Spanish, Portuguese, Indonesian, Hindi (Devanagari and
/// romanised), Arabic.
const OPT_OUT: &[&str] = &[
    "stop",
    "stop all",
    "stopall",
    "unsubscribe",
    "opt out",
    "optout",
    "baja",
    "darme de baja",
    "parar",
    "detener",
    "no mas mensajes",
    "sair",
    "descadastrar",
    "cancelar inscricao",
    "nao quero mais",
    "berhenti",
    "henti",
    "stop langganan",
    "berhenti langganan",
    "band karo",
    "band kro",
    "bandh karo",
    "बंद करो",
    "रोको",
    "توقف",
    "الغاء الاشتراك",
    "إلغاء الاشتراك",
    "ايقاف",
    "إيقاف",
];

/// Opt-in keywords, the same languages.
const OPT_IN: &[&str] = &[
    "start",
    "unstop",
    "subscribe",
    "resume",
    "alta",
    "darme de alta",
    "suscribir",
    "reanudar",
    "voltar",
    "retomar",
    "assinar",
    "mulai",
    "langganan",
    "lanjut",
    "shuru karo",
    "shuru",
    "शुरू",
    "शुरू करो",
    "ابدأ",
    "اشتراك",
    "ابدا",
];

/// Longer messages are never keyword messages (the longest keyword in Arabic or
/// Devanagari, with emoji and spaces around it, stays well below).
const MAX_KEYWORD_MESSAGE_BYTES: usize = 160;

/// The keyword a whole message consists of, if it is one: case, accents of the Latin
/// scripts, surrounding punctuation, emoji and extra spaces do not matter ("Stop.",
/// "  STOP!! ", "Cancelar inscrição", "बंद करो 🙏"). A keyword inside a longer sentence
/// ("stop charging me twice") is a support request, not a consent change.
pub fn keyword_request(text: &str) -> Option<(KeywordRequest, &'static str)> {
    // Keywords are short; a long message is a request, and is not copied to find out.
    if text.len() > MAX_KEYWORD_MESSAGE_BYTES {
        return None;
    }
    let normalized = normalize(text);
    if normalized.is_empty() || normalized.len() > 40 {
        return None;
    }
    let find = |list: &[&'static str]| list.iter().copied().find(|k| *k == normalized);
    find(OPT_OUT)
        .map(|k| (KeywordRequest::OptOut, k))
        .or_else(|| find(OPT_IN).map(|k| (KeywordRequest::OptIn, k)))
}

fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .map(|c| {
            if c.is_alphanumeric() || is_combining_mark(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Devanagari vowel signs and the virama are marks, not letters, but part of the word.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0900}'..='\u{0903}' | '\u{093A}'..='\u{094F}' | '\u{0951}'..='\u{0957}' | '\u{0962}'..='\u{0963}')
}

fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_start_are_recognised_in_any_casing_and_the_six_languages() {
        for text in [
            "STOP",
            "  Stop!! ",
            "stop.",
            "Unsubscribe",
            "Baja",
            "Cancelar inscrição",
            "BERHENTI",
            "band karo",
            "बंद करो 🙏",
            "إلغاء الاشتراك",
            "توقف",
        ] {
            assert_eq!(
                keyword_request(text).map(|(r, _)| r),
                Some(KeywordRequest::OptOut),
                "{text:?}"
            );
        }
        for text in ["START", "Start again?", "alta", "Mulai", "शुरू", "ابدأ"] {
            let got = keyword_request(text).map(|(r, _)| r);
            if text == "Start again?" {
                assert_eq!(got, None, "only a whole-message keyword counts");
            } else {
                assert_eq!(got, Some(KeywordRequest::OptIn), "{text:?}");
            }
        }
    }

    #[test]
    fn a_keyword_inside_a_request_is_not_a_consent_change() {
        for text in [
            "stop charging me twice",
            "how do I cancel my order A-10023",
            "cancel",
            "",
            "🙏",
            "please stop",
        ] {
            assert_eq!(keyword_request(text), None, "{text:?}");
        }
        let padded = format!("stop{}", " ".repeat(200));
        assert_eq!(keyword_request(&padded), None);
    }

    #[test]
    fn marketing_needs_an_opt_in_and_keywords_leave_service_alone() {
        assert!(!Purpose::Marketing.granted_by_default());
        assert!(Purpose::Surveys.granted_by_default());
        assert!(
            !KeywordRequest::OptOut
                .purposes()
                .contains(&Purpose::Service)
        );
    }
}
