//! How Parley reads text for search: one normalisation and one word splitter, used both
//! when a text is indexed and when a query is asked, on SQLite and PostgreSQL alike, so
//! the two databases hold the same words and answer the same queries the same way.
//!
//! Normalisation, in order: NFKC (full-width and compatibility forms fold to their plain
//! letters and digits), lowercase, Latin/Greek/Cyrillic accents dropped (`está` = `esta`,
//! `não` = `nao`), Arabic diacritics (harakat), tatweel and hamza carriers folded
//! (`أ إ آ ٱ` = `ا`, `ى` = `ي`, `ة` = `ه`), Arabic-Indic and Persian digits read as ASCII
//! digits. Devanagari keeps its vowel signs and virama: they change the word.
//!
//! A word is a run of letters, digits and combining marks (Unicode general categories L,
//! N and M); everything else separates words. That splits English, Spanish, Portuguese,
//! Indonesian, romanised Hindi, Arabic and Devanagari Hindi at their spaces and
//! punctuation (the danda `।` included). No stemming: `refund` does not find `refunds`
//! (a stemmer per language would make the two databases disagree as soon as one lacks
//! a language).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Words longer than this are cut (a pasted base64 blob is not a word anyone searches).
pub const MAX_WORD_CHARS: usize = 64;

/// Normalises one character run (already NFKC and lowercase) for indexing.
fn fold(c: char) -> Option<char> {
    match c {
        // Combining diacritical marks (Latin, Greek, Cyrillic accents after NFD).
        '\u{0300}'..='\u{036F}' => None,
        // Arabic harakat, hamza above/below, superscript alef, tatweel.
        '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => None,
        'ٱ' => Some('ا'),
        'ى' | 'ی' => Some('ي'),
        'ة' => Some('ه'),
        'ک' => Some('ك'),
        '٠'..='٩' => char::from_u32(c as u32 - 0x0660 + u32::from(b'0')),
        '۰'..='۹' => char::from_u32(c as u32 - 0x06F0 + u32::from(b'0')),
        _ => Some(c),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The normalised form of a text: what its words are made of.
pub fn normalize(text: &str) -> String {
    let lowered: String = text.nfkc().flat_map(char::to_lowercase).collect();
    lowered.nfd().filter_map(fold).nfc().collect()
}

/// The normalised words of a text, in order (repeats kept).
pub fn words(text: &str) -> Vec<String> {
    split(&normalize(text))
}

fn split(normalized: &str) -> Vec<String> {
    normalized
        .split(|c: char| !is_word_char(c))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// What a text is indexed as: its words, separated by single spaces.
pub fn index_terms(text: &str) -> String {
    words(text).join(" ")
}

/// The distinct words of a query, in the order asked.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(query) {
        if !terms.contains(&word) {
            terms.push(word);
        }
    }
    terms
}

/// How often each of `terms` occurs in indexed `terms_text`; `None` when one is missing.
pub fn term_counts(terms_text: &str, terms: &[String]) -> Option<Vec<u32>> {
    let mut counts = vec![0u32; terms.len()];
    for word in terms_text.split(' ') {
        if let Some(i) = terms.iter().position(|t| t == word) {
            counts[i] += 1;
        }
    }
    counts.iter().all(|n| *n > 0).then_some(counts)
}

/// An excerpt of `text` around its first word among `terms`, HTML-escaped, with every
/// matching word wrapped in `<mark>`; at most about `max_chars` characters of text.
pub fn snippet(text: &str, terms: &[String], max_chars: usize) -> String {
    // The words of the original text with their byte spans, so that the marks go around
    // what the customer wrote, not around its normalised form.
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    let mut start: Option<usize> = None;
    let close = |from: usize, to: usize, spans: &mut Vec<(usize, usize, bool)>| {
        let hit = split(&normalize(&text[from..to]))
            .iter()
            .any(|w| terms.contains(w));
        spans.push((from, to, hit));
    };
    for (at, c) in text.char_indices() {
        // A word as the original text spells it: letters, marks and digits, including
        // compatibility forms that normalise to them.
        let word_char = is_word_char(c) || c.nfkc().any(is_word_char);
        match (word_char, start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                close(from, at, &mut spans);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        close(from, text.len(), &mut spans);
    }

    let first_hit = spans.iter().find(|s| s.2).map_or(0, |s| s.0);
    // Start a few words before the first hit, at a word boundary.
    let lead = max_chars / 3;
    let mut begin = 0;
    for span in spans.iter().filter(|s| s.0 <= first_hit) {
        if text[span.0..first_hit].chars().count() <= lead {
            begin = span.0;
            break;
        }
    }
    // Nothing but punctuation before the first word is kept as it is.
    if spans.first().is_some_and(|s| s.0 == begin) {
        begin = 0;
    }
    let mut end = text[begin..]
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(at, _)| begin + at);
    // Never cut a word in two at the end.
    if let Some(span) = spans.iter().find(|s| s.0 < end && s.1 > end) {
        end = span.1;
    }

    let mut out = String::with_capacity(end - begin + 32);
    if begin > 0 {
        out.push('…');
    }
    let mut at = begin;
    for &(from, to, hit) in spans.iter().filter(|s| s.2 && s.0 >= begin && s.1 <= end) {
        escape_into(&mut out, &text[at..from]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[from..to]);
        out.push_str("</mark>");
        at = to;
        debug_assert!(hit);
    }
    escape_into(&mut out, &text[at..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_accents_and_case_fold() {
        assert_eq!(
            words("¿Dónde está mi PEDIDO?"),
            ["donde", "esta", "mi", "pedido"]
        );
        assert_eq!(
            words("Não recebi o reembolso"),
            ["nao", "recebi", "o", "reembolso"]
        );
    }

    #[test]
    fn arabic_forms_fold_to_one_spelling() {
        // Hamza on alef, ta marbuta, alef maqsura, harakat and tatweel.
        assert_eq!(
            words("أُريدُ استرجاع الفاتورة"),
            words("اريد استرجاع الفاتوره")
        );
        assert_eq!(words("مـــرحبا"), ["مرحبا"]);
        assert_eq!(words("على"), ["علي"]);
        assert_eq!(words("طلب ١٢٣"), ["طلب", "123"]);
    }

    #[test]
    fn devanagari_keeps_its_vowel_signs_and_splits_at_the_danda() {
        assert_eq!(
            words("मेरा पैसा वापस करो। धन्यवाद"),
            ["मेरा", "पैसा", "वापस", "करो", "धन्यवाद"]
        );
        assert_ne!(words("पैसा"), words("पसा"));
    }

    #[test]
    fn compatibility_forms_fold() {
        assert_eq!(words("ＲＥＦＵＮＤ ﬁle"), ["refund", "file"]);
    }

    #[test]
    fn counts_need_every_term() {
        let terms = query_terms("double charge");
        assert_eq!(
            term_counts("i was double charged double", &terms),
            None,
            "charged is not charge"
        );
        assert_eq!(
            term_counts("double charge and double", &terms),
            Some(vec![2, 1])
        );
    }

    #[test]
    fn snippets_mark_the_original_words_and_escape_the_rest() {
        let terms = query_terms("esta pedido");
        assert_eq!(
            snippet("¿Dónde <b>está</b> mi pedido?", &terms, 200),
            "¿Dónde &lt;b&gt;<mark>está</mark>&lt;/b&gt; mi <mark>pedido</mark>?"
        );
        let long = format!(
            "{} refund please {}",
            "word ".repeat(100),
            "tail ".repeat(100)
        );
        let cut = snippet(&long, &query_terms("refund"), 60);
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(cut.contains("<mark>refund</mark>"), "{cut}");
        assert!(cut.chars().count() < 90, "{cut}");
    }
}
