//! Text normalisation and cue-phrase matching, shared by every triage component.
//!
//! Customers write "pleeeease", "dónde", "أين", "ऑर्डर", "blm", "😡😡". Normalisation turns a
//! message into comparable tokens: lowercase, compatibility decomposition with Latin
//! diacritics removed, Arabic letter variants and diacritics unified, Arabic-Indic and
//! Devanagari digits as ASCII, letters repeated three times or more collapsed, apostrophes
//! dropped, configured abbreviations expanded, and emoji and `?`/`!` kept as tokens of their
//! own. Work is bounded by a character cap so huge or binary input stays cheap.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

/// Most tokens looked at in one message (with the character cap, bounds the work).
pub const MAX_TOKENS: usize = 400;

/// What a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Letters and digits.
    Word,
    /// `?`, `??`, `!` or `!!` (repeats of two or more collapse to two).
    Punct,
    /// An emoji or other symbol.
    Symbol,
}

/// One normalised token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Normalised text.
    pub text: String,
    /// What it is made of.
    pub kind: TokenKind,
}

/// Script of a character, as far as triage cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Latin letters.
    Latin,
    /// Arabic letters.
    Arabic,
    /// Devanagari letters.
    Devanagari,
    /// Any other letter.
    Other,
}

/// Script of a letter, or `None` for non-letters.
pub fn script_of(c: char) -> Option<Script> {
    match c {
        '\u{0600}'..='\u{06FF}'
        | '\u{0750}'..='\u{077F}'
        | '\u{FB50}'..='\u{FDFF}'
        | '\u{FE70}'..='\u{FEFF}' => {
            if c.is_alphabetic() {
                Some(Script::Arabic)
            } else {
                None
            }
        }
        '\u{0900}'..='\u{097F}' => Some(Script::Devanagari),
        c if c.is_ascii_alphabetic() => Some(Script::Latin),
        '\u{00C0}'..='\u{024F}' => Some(Script::Latin),
        c if c.is_alphabetic() => Some(Script::Other),
        _ => None,
    }
}

/// Turns raw text into tokens according to the configured abbreviations.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    abbreviations: HashMap<String, Vec<String>>,
}

impl Normalizer {
    /// A normaliser expanding the given abbreviations (keys are normalised too).
    pub fn new<'a>(abbreviations: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let plain = Normalizer::default();
        let abbreviations = abbreviations
            .into_iter()
            .filter_map(|(from, to)| {
                let from = plain.tokens(from, usize::MAX).into_iter().next()?.text;
                let to = plain
                    .tokens(to, usize::MAX)
                    .into_iter()
                    .map(|t| t.text)
                    .collect();
                Some((from, to))
            })
            .collect();
        Normalizer { abbreviations }
    }

    /// Tokens of the first `max_chars` characters of `text`.
    pub fn tokens(&self, text: &str, max_chars: usize) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut word = String::new();
        let mut last: Option<char> = None;
        let mut run = 0usize;
        let chars = text
            .chars()
            .take(max_chars)
            .flat_map(char::to_lowercase)
            .nfkd()
            .filter_map(fold_char);
        for c in chars {
            if tokens.len() >= MAX_TOKENS {
                break;
            }
            if is_word_char(c) {
                // Letters stretched for emphasis ("pleeeease", "soooo") collapse to one.
                if Some(c) == last && !c.is_ascii_digit() {
                    run += 1;
                    if run == 3 {
                        word.pop();
                        continue;
                    }
                    if run > 3 {
                        continue;
                    }
                } else {
                    run = 1;
                }
                last = Some(c);
                word.push(c);
                continue;
            }
            self.flush(&mut word, &mut tokens);
            last = None;
            run = 0;
            match c {
                '?' | '!' => {
                    let repeat: String = [c, c].iter().collect();
                    match tokens.last_mut() {
                        Some(t) if t.kind == TokenKind::Punct && t.text.starts_with(c) => {
                            t.text = repeat
                        }
                        _ => tokens.push(Token {
                            text: c.to_string(),
                            kind: TokenKind::Punct,
                        }),
                    }
                }
                // A repeated emoji ("😡😡😡") is one token.
                c if is_symbol(c)
                    && tokens
                        .last()
                        .is_none_or(|t| t.kind != TokenKind::Symbol || !t.text.starts_with(c)) =>
                {
                    tokens.push(Token {
                        text: c.to_string(),
                        kind: TokenKind::Symbol,
                    });
                }
                _ => {}
            }
        }
        self.flush(&mut word, &mut tokens);
        tokens.truncate(MAX_TOKENS);
        tokens
    }

    fn flush(&self, word: &mut String, tokens: &mut Vec<Token>) {
        if word.is_empty() {
            return;
        }
        let mut text = std::mem::take(word);
        // Indonesian reduplication written with a digit: "temen2" means "temen-temen".
        if text.len() > 3
            && text.ends_with('2')
            && text[..text.len() - 1].chars().all(char::is_alphabetic)
        {
            text.pop();
        }
        match self.abbreviations.get(&text) {
            Some(expansion) => tokens.extend(expansion.iter().map(|t| Token {
                text: t.clone(),
                kind: TokenKind::Word,
            })),
            None => tokens.push(Token {
                text,
                kind: TokenKind::Word,
            }),
        }
    }
}

/// Maps one decomposed character to its normalised form, or drops it.
fn fold_char(c: char) -> Option<char> {
    Some(match c {
        // Latin combining diacritics, Arabic harakat and tatweel, Devanagari nukta,
        // variation selectors, joiners and skin tones carry no meaning for triage.
        '\u{0300}'..='\u{036F}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0670}'
        | '\u{0640}'
        | '\u{093C}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\''
        | '\u{2019}'
        | '\u{2018}'
        | '`' => return None,
        'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
        'ة' => 'ه',
        'ى' | 'ئ' => 'ي',
        'ؤ' => 'و',
        '؟' => '?',
        '¿' | '¡' => ' ',
        '\u{0660}'..='\u{0669}' => char::from_u32(c as u32 - 0x0660 + '0' as u32).unwrap_or(c),
        '\u{06F0}'..='\u{06F9}' => char::from_u32(c as u32 - 0x06F0 + '0' as u32).unwrap_or(c),
        '\u{0966}'..='\u{096F}' => char::from_u32(c as u32 - 0x0966 + '0' as u32).unwrap_or(c),
        c if c.is_control() => ' ',
        c => c,
    })
}

/// Letters, digits and the combining vowel signs of Devanagari and Arabic.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || ('\u{0900}'..='\u{097F}').contains(&c)
        || ('\u{064B}'..='\u{065F}').contains(&c)
}

/// Emoji and other pictographic symbols, which customers use as words ("📦❓", "😡").
fn is_symbol(c: char) -> bool {
    let u = c as u32;
    (0x2190..=0x2BFF).contains(&u)
        || (0x1F000..=0x1FAFF).contains(&u)
        || c == '$'
        || c == '€'
        || c == '£'
        || c == '₹'
}

/// One part of a cue phrase.
#[derive(Debug, Clone)]
enum Part {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl Part {
    fn matches(&self, token: &str) -> bool {
        match self {
            Part::Exact(p) => token == p,
            Part::Prefix(p) => token.starts_with(p.as_str()),
            Part::Suffix(p) => token.ends_with(p.as_str()),
            Part::Contains(p) => token.contains(p.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
struct Cue {
    parts: Vec<Part>,
    label: usize,
    weight: f32,
}

/// Words allowed between two words of a cue phrase ("where is my order" matches
/// "where is order" and "where the hell is my order" matches "where is my order").
const CUE_GAP: usize = 2;

/// A set of cue phrases, each pointing at a label with a weight, matched in one pass.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    cues: Vec<Cue>,
    exact: HashMap<String, Vec<usize>>,
    prefix: HashMap<String, Vec<usize>>,
    scan: Vec<usize>,
    longest_prefix: usize,
}

impl Lexicon {
    /// Adds a cue phrase (see [`crate::taxonomy::LabelConfig::cues`] for the syntax).
    pub fn add(&mut self, normalizer: &Normalizer, phrase: &str, label: usize, weight: f32) {
        let mut parts = Vec::new();
        for piece in phrase.split_whitespace() {
            let starts = piece.starts_with('*');
            let ends = piece.ends_with('*') && piece.len() > 1;
            let core = piece.trim_matches('*');
            let words: Vec<String> = normalizer
                .tokens(core, usize::MAX)
                .into_iter()
                .map(|t| t.text)
                .collect();
            let count = words.len();
            for (i, word) in words.into_iter().enumerate() {
                let first = i == 0;
                let last = i + 1 == count;
                parts.push(match (starts && first, ends && last) {
                    (true, true) => Part::Contains(word),
                    (true, false) => Part::Suffix(word),
                    (false, true) => Part::Prefix(word),
                    (false, false) => Part::Exact(word),
                });
            }
        }
        let Some(first) = parts.first() else { return };
        let index = self.cues.len();
        match first {
            Part::Exact(w) => self.exact.entry(w.clone()).or_default().push(index),
            Part::Prefix(w) => {
                self.longest_prefix = self.longest_prefix.max(w.len());
                self.prefix.entry(w.clone()).or_default().push(index);
            }
            Part::Suffix(_) | Part::Contains(_) => self.scan.push(index),
        }
        self.cues.push(Cue {
            parts,
            label,
            weight,
        });
    }

    /// Whether no cue was added.
    pub fn is_empty(&self) -> bool {
        self.cues.is_empty()
    }

    /// Calls `hit(label, weight, start_token)` for every cue present in `tokens`.
    pub fn find(&self, tokens: &[Token], mut hit: impl FnMut(usize, f32, usize)) {
        let mut candidates: Vec<usize> = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            candidates.clear();
            let t = token.text.as_str();
            if let Some(list) = self.exact.get(t) {
                candidates.extend(list);
            }
            if !self.prefix.is_empty() {
                for (end, _) in t
                    .char_indices()
                    .skip(1)
                    .chain(std::iter::once((t.len(), ' ')))
                {
                    if end > self.longest_prefix {
                        break;
                    }
                    if let Some(list) = self.prefix.get(&t[..end]) {
                        candidates.extend(list);
                    }
                }
            }
            candidates.extend(
                self.scan
                    .iter()
                    .filter(|&&c| self.cues[c].parts[0].matches(t)),
            );
            for &c in &candidates {
                let cue = &self.cues[c];
                if matches_rest(&cue.parts[1..], &tokens[i + 1..]) {
                    hit(cue.label, cue.weight, i);
                }
            }
        }
    }
}

fn matches_rest(parts: &[Part], tokens: &[Token]) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return true;
    };
    tokens
        .iter()
        .take(CUE_GAP + 1)
        .enumerate()
        .any(|(i, t)| part.matches(&t.text) && matches_rest(rest, &tokens[i + 1..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn words(n: &Normalizer, text: &str) -> Vec<String> {
        n.tokens(text, 1000).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn stretched_letters_collapse_and_diacritics_go() {
        let n = Normalizer::default();
        assert_eq!(
            words(&n, "Pleeeease ¿DÓNDE está?"),
            ["please", "donde", "esta", "?"]
        );
        assert_eq!(words(&n, "okkkk!!!"), ["ok", "!!"]);
    }

    #[test]
    fn arabic_variants_and_digits_are_unified() {
        let n = Normalizer::default();
        assert_eq!(words(&n, "أين طلبيةُ ١٢٣؟"), ["اين", "طلبيه", "123", "?"]);
    }

    #[test]
    fn devanagari_words_keep_their_vowel_signs() {
        let n = Normalizer::default();
        assert_eq!(words(&n, "मेरा ऑर्डर कहाँ है"), ["मेरा", "ऑर्डर", "कहाँ", "है"]);
    }

    #[test]
    fn abbreviations_expand_and_emoji_are_tokens() {
        let from = "blm".to_owned();
        let to = "belum".to_owned();
        let n = Normalizer::new([(&from, &to)]);
        assert_eq!(
            words(&n, "paket blm sampe 😡😡 temen2"),
            ["paket", "belum", "sampe", "😡", "temen"]
        );
    }

    #[test]
    fn cue_phrases_match_with_small_gaps_and_prefixes() {
        let n = Normalizer::default();
        let mut lexicon = Lexicon::default();
        lexicon.add(&n, "where is order", 0, 1.0);
        lexicon.add(&n, "refund*", 1, 1.0);
        lexicon.add(&n, "*محامي*", 2, 1.0);
        let mut hits = Vec::new();
        let tokens = n.tokens("where the hell is my order, refunded? والمحامي", 1000);
        lexicon.find(&tokens, |label, _, _| hits.push(label));
        hits.sort();
        assert_eq!(hits, [0, 1, 2]);
    }

    #[test]
    fn work_is_capped_on_huge_input() {
        let n = Normalizer::default();
        let huge = "a b ".repeat(100_000);
        assert!(n.tokens(&huge, 2000).len() <= MAX_TOKENS);
    }
}
