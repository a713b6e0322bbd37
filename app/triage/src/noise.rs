//! Noise primitives: acknowledgements, spam and scam scoring, near-duplicate fingerprints.
//!
//! Pure functions over text. The router decides what to do with their answers (close the
//! loop, suppress, cluster) and records every suppression with its reason; nothing here
//! keeps state or counts.

use serde::Serialize;

use crate::text::{Normalizer, Token, TokenKind};

/// Characters of a message looked at by the noise checks.
const NOISE_MAX_CHARS: usize = 2000;

/// Words that acknowledge ("ok", "gracias", "shukriya", "makasih", "شكرا"), normalised
/// (lowercase, no diacritics, Arabic letter variants unified).
const ACK_WORDS: &[&str] = &[
    // English
    "ok",
    "okay",
    "okey",
    "oki",
    "okie",
    "k",
    "kk",
    "okk",
    "thanks",
    "thank",
    "thx",
    "thnx",
    "thnks",
    "tks",
    "ty",
    "tysm",
    "cheers",
    "great",
    "cool",
    "perfect",
    "fine",
    "noted",
    "alright",
    "sure",
    "yes",
    "yep",
    "yeah",
    "nice",
    "good",
    "lovely",
    "awesome",
    "appreciated",
    "appreciate",
    "received",
    "understood",
    "bye",
    "worries",
    "sounds",
    // Spanish
    "gracias",
    "vale",
    "listo",
    "perfecto",
    "genial",
    "entendido",
    "dale",
    "bueno",
    "sale",
    "amable",
    "si",
    // Portuguese
    "obrigado",
    "obrigada",
    "obg",
    "brigado",
    "brigada",
    "valeu",
    "vlw",
    "blz",
    "beleza",
    "certo",
    "combinado",
    "entendi",
    "sim",
    "show",
    // Hindi (romanised and Devanagari)
    "shukriya",
    "sukriya",
    "dhanyavad",
    "dhanyawad",
    "thik",
    "theek",
    "haan",
    "han",
    "accha",
    "acha",
    "achha",
    "ji",
    "धनयवाद",
    "धन्यवाद",
    "शुक्रिया",
    "ठीक",
    "हाँ",
    "अच्छा",
    // Indonesian
    "makasih",
    "makasi",
    "mksh",
    "mks",
    "trims",
    "kasih",
    "trimakasih",
    "terimakasih",
    "oke",
    "okee",
    "siap",
    "sip",
    "baik",
    "iya",
    "y",
    "ya",
    // Arabic
    "شكرا",
    "شكرن",
    "مشكور",
    "مشكوره",
    "تسلم",
    "تسلمي",
    "يسلمو",
    "اوكي",
    "اوك",
    "تمام",
    "طيب",
    "ماشي",
    "جزيلا",
    "العافيه",
    "تم",
    "حاضر",
    "مرسي",
    "اوكيه",
];

/// Words allowed around an acknowledgement without making one alone ("thank *you so
/// much*", "*no* worries", "ok *bhai*", "makasih *kak*").
const ACK_FILLER: &[&str] = &[
    "you",
    "u",
    "so",
    "much",
    "a",
    "lot",
    "very",
    "it",
    "got",
    "no",
    "problem",
    "all",
    "set",
    "done",
    "mate",
    "and",
    "muchas",
    "mil",
    "de",
    "nada",
    "ya",
    "muy",
    "tudo",
    "bem",
    "muito",
    "ta",
    "hai",
    "bhai",
    "bhaiya",
    "sir",
    "madam",
    "mam",
    "बहुत",
    "है",
    "जी",
    "kak",
    "ka",
    "min",
    "gan",
    "banyak",
    "terima",
    "sudah",
    "الله",
    "يعطيك",
    "خلاص",
];

/// Emoji that acknowledge.
const ACK_SYMBOLS: &[&str] = &[
    "👍", "🙏", "👌", "❤", "♥", "😊", "🙂", "😀", "😁", "✅", "✔", "🤝", "💯", "👏", "😃", "😄",
    "🥰", "😍", "💙", "💚",
];

/// Most words an acknowledgement has ("ok thank you so much bhai" is six).
const ACK_MAX_WORDS: usize = 6;

/// Whether a message only acknowledges ("?", "ok", "okk", "thanks", "👍", "gracias",
/// "obrigado", "shukriya", "makasih", "شكرا"): after resolution it closes the loop
/// instead of reopening the case.
pub fn is_acknowledgement(text: &str) -> bool {
    let tokens = Normalizer::default().tokens(text, NOISE_MAX_CHARS);
    if tokens.is_empty() {
        // Punctuation only ("?", "...") is not a new request.
        return !text.trim().is_empty();
    }
    let words = tokens.iter().filter(|t| t.kind == TokenKind::Word).count();
    if words > ACK_MAX_WORDS {
        return false;
    }
    let mut acknowledging = false;
    for token in &tokens {
        match token.kind {
            TokenKind::Word if ACK_WORDS.contains(&token.text.as_str()) => acknowledging = true,
            TokenKind::Word if ACK_FILLER.contains(&token.text.as_str()) => {}
            TokenKind::Symbol if ACK_SYMBOLS.contains(&token.text.as_str()) => acknowledging = true,
            TokenKind::Punct if token.text.starts_with('?') && words == 0 => acknowledging = true,
            TokenKind::Punct if token.text.starts_with('!') => {}
            _ => return false,
        }
    }
    acknowledging
}

/// Why a message looks like spam or a scam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamReason {
    /// Contains a link.
    Link,
    /// Contains a shortened link (bit.ly, tinyurl, ...).
    ShortLink,
    /// Promises a prize, gift or win ("you won", "ganaste", "selamat anda").
    PrizeBait,
    /// Promises money or returns ("earn $500 a day", "double your money").
    MoneyBait,
    /// Mentions crypto currencies or trading.
    Crypto,
    /// Pressure to act now ("act now", "expires today", "limited time").
    Pressure,
    /// A call to click or tap ("click here", "clique aqui").
    ClickBait,
    /// Asks for a code, password or card details.
    CredentialRequest,
    /// Shouts: mostly capital letters.
    Shouting,
}

impl SpamReason {
    /// How much this reason alone says, from 0 to 1.
    fn weight(self) -> f32 {
        match self {
            SpamReason::Link => 0.25,
            SpamReason::ShortLink => 0.45,
            SpamReason::PrizeBait => 0.55,
            SpamReason::MoneyBait => 0.45,
            SpamReason::Crypto => 0.4,
            SpamReason::Pressure => 0.3,
            SpamReason::ClickBait => 0.4,
            SpamReason::CredentialRequest => 0.35,
            SpamReason::Shouting => 0.1,
        }
    }
}

/// A spam score with the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpamAssessment {
    /// From 0 (clean) to 1 (certainly spam); reasons combine as independent evidence.
    pub score: f32,
    /// What was found.
    pub reasons: Vec<SpamReason>,
}

/// Score at or above which a message is treated as spam.
pub const SPAM_THRESHOLD: f32 = 0.7;

impl SpamAssessment {
    /// Whether the score reaches [`SPAM_THRESHOLD`].
    pub fn is_spam(&self) -> bool {
        self.score >= SPAM_THRESHOLD
    }
}

const SHORTENERS: &[&str] = &[
    "bit.ly", "tinyurl", "t.co/", "goo.gl", "cutt.ly", "is.gd", "rb.gy", "s.id/", "shorturl",
    "tiny.cc",
];
const PRIZE: &[&str] = &[
    "you won",
    "you have won",
    "you've won",
    "youve won",
    "winner",
    "congratulations",
    "congrats you",
    "prize",
    "lottery",
    "lucky draw",
    "gift card",
    "free iphone",
    "claim your",
    "claim now",
    "ganaste",
    "has ganado",
    "ganador",
    "premio",
    "sorteo",
    "você ganhou",
    "voce ganhou",
    "ganhou um",
    "prêmio",
    "premio",
    "sorteio",
    "parabéns",
    "selamat anda",
    "anda menang",
    "pemenang",
    "hadiah",
    "undian",
    "jeeta",
    "jeete",
    "inaam",
    "इनाम",
    "जीत",
    "lottery",
    "ربحت",
    "جائزة",
    "مبروك لقد",
    "فزت",
    "سحب",
];
const MONEY: &[&str] = &[
    "earn $",
    "earn money",
    "make money",
    "per day",
    "a day from home",
    "work from home",
    "double your",
    "investment",
    "guaranteed return",
    "profit",
    "ganar dinero",
    "ganhe dinheiro",
    "renda extra",
    "penghasilan",
    "cuan",
    "modal kecil",
    "ghar baithe",
    "kamao",
    "paisa kamaye",
    "ربح يومي",
    "استثمار",
    "loan approved",
    "pinjaman",
    "préstamo",
    "empréstimo",
];
const CRYPTO: &[&str] = &[
    "bitcoin",
    "btc",
    "crypto",
    "usdt",
    "ethereum",
    "binance",
    "forex",
    "trading signal",
    "airdrop",
    "nft",
    "kripto",
    "عملات رقمية",
];
const PRESSURE: &[&str] = &[
    "act now",
    "limited time",
    "expires today",
    "expire today",
    "last chance",
    "only today",
    "within 24 hours",
    "immediately",
    "urgente",
    "solo hoy",
    "últimas horas",
    "só hoje",
    "ultima chance",
    "hari ini saja",
    "segera",
    "terbatas",
    "abhi",
    "jaldi",
    "عاجل",
    "فقط اليوم",
];
const CLICK: &[&str] = &[
    "click here",
    "click the link",
    "click this link",
    "tap here",
    "visit link",
    "haz clic",
    "haga clic",
    "entra al link",
    "clique aqui",
    "clica no link",
    "acesse o link",
    "klik link",
    "klik disini",
    "klik di sini",
    "yahan click",
    "link pe click",
    "اضغط هنا",
    "اضغط على الرابط",
];
const CREDENTIALS: &[&str] = &[
    "verify your account",
    "confirm your account",
    "send your otp",
    "share the otp",
    "your password",
    "card number",
    "cvv",
    "pin number",
    "kode otp",
    "kode verifikasi",
    "código de verificação",
    "codigo de verificacion",
    "otp bhejo",
    "otp share",
    "رمز التحقق",
    "الرقم السري",
];

/// Scores how much a message looks like spam or a scam, with reasons.
pub fn spam_score(text: &str) -> SpamAssessment {
    let capped: String = text.chars().take(NOISE_MAX_CHARS).collect();
    let lower = capped.to_lowercase();
    let mut reasons = Vec::new();
    let contains_any = |list: &[&str]| list.iter().any(|p| lower.contains(p));
    if lower.contains("http://")
        || lower.contains("https://")
        || lower.contains("www.")
        || lower.contains("wa.me/")
    {
        reasons.push(SpamReason::Link);
    }
    if contains_any(SHORTENERS) {
        reasons.push(SpamReason::ShortLink);
    }
    if contains_any(PRIZE) {
        reasons.push(SpamReason::PrizeBait);
    }
    if contains_any(MONEY) {
        reasons.push(SpamReason::MoneyBait);
    }
    if contains_any(CRYPTO) {
        reasons.push(SpamReason::Crypto);
    }
    if contains_any(PRESSURE) {
        reasons.push(SpamReason::Pressure);
    }
    if contains_any(CLICK) {
        reasons.push(SpamReason::ClickBait);
    }
    if contains_any(CREDENTIALS) {
        reasons.push(SpamReason::CredentialRequest);
    }
    let letters: Vec<char> = capped.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 20
        && letters.iter().filter(|c| c.is_uppercase()).count() * 10 >= letters.len() * 7
    {
        reasons.push(SpamReason::Shouting);
    }
    let clean: f32 = reasons.iter().map(|r| 1.0 - r.weight()).product();
    SpamAssessment {
        score: 1.0 - clean,
        reasons,
    }
}

/// A 64-bit SimHash of a text's normalised character shingles: near-duplicate texts
/// (the same scam with another name, link or amount) have fingerprints a few bits apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Fingerprint(pub u64);

/// Characters per shingle.
const SHINGLE: usize = 4;
/// Most differing bits for two fingerprints to count as the same text.
pub const NEAR_DUPLICATE_BITS: u32 = 10;

impl Fingerprint {
    /// Fingerprint of a text. Digits are folded together so that amounts, phone numbers
    /// and codes do not tell copies apart; an empty text has fingerprint 0.
    pub fn of(text: &str) -> Fingerprint {
        let tokens: Vec<Token> = Normalizer::default().tokens(text, NOISE_MAX_CHARS);
        let chars: Vec<char> = tokens
            .iter()
            .flat_map(|t| {
                t.text
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c })
                    .chain(std::iter::once(' '))
            })
            .collect();
        if chars.is_empty() {
            return Fingerprint(0);
        }
        let mut counts = [0i32; 64];
        let mut add = |window: &[char]| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &c in window {
                h ^= u64::from(u32::from(c));
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^= h >> 29;
            h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 32;
            for (bit, count) in counts.iter_mut().enumerate() {
                *count += if h >> bit & 1 == 1 { 1 } else { -1 };
            }
        };
        if chars.len() <= SHINGLE {
            add(&chars);
        } else {
            chars.windows(SHINGLE).for_each(&mut add);
        }
        let bits = counts.iter().enumerate().fold(
            0u64,
            |acc, (bit, &c)| if c > 0 { acc | 1 << bit } else { acc },
        );
        Fingerprint(bits)
    }

    /// Number of differing bits.
    pub fn distance(self, other: Fingerprint) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// Whether two fingerprints are within [`NEAR_DUPLICATE_BITS`] of each other.
    pub fn similar(self, other: Fingerprint) -> bool {
        self.distance(other) <= NEAR_DUPLICATE_BITS
    }
}

/// Whether two texts are near-duplicates.
pub fn similar(a: &str, b: &str) -> bool {
    Fingerprint::of(a).similar(Fingerprint::of(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn short_thanks_and_ok_in_every_language_are_acknowledgements() {
        for text in [
            "?",
            "ok",
            "okk",
            "Okkkk 👍",
            "thanks!",
            "thx",
            "👍",
            "🙏🙏",
            "gracias",
            "muchas gracias!!",
            "obrigado",
            "valeu",
            "shukriya",
            "ok thank you bhai",
            "makasih kak",
            "oke siap",
            "شكرا",
            "شكراً جزيلاً",
            "धन्यवाद",
            "thank you so much",
        ] {
            assert!(is_acknowledgement(text), "{text}");
        }
    }

    #[test]
    fn requests_are_not_acknowledgements() {
        for text in [
            "",
            "ok but where is my order",
            "thanks, I still need a refund",
            "no",
            "?? refund",
            "😡",
            "help",
        ] {
            assert!(!is_acknowledgement(text), "{text}");
        }
    }

    #[test]
    fn prize_scam_with_short_link_is_spam_with_reasons() {
        let a = spam_score(
            "CONGRATULATIONS!!! You won a FREE iPhone 15. Click here to claim now: bit.ly/xyz123 expires today",
        );
        assert!(a.is_spam(), "{a:?}");
        assert!(a.reasons.contains(&SpamReason::PrizeBait));
        assert!(a.reasons.contains(&SpamReason::ShortLink));
        let b = spam_score(
            "Selamat anda menang undian hadiah 50 juta, klik link berikut https://hadiah-resmi.xyz",
        );
        assert!(b.is_spam(), "{b:?}");
        let c = spam_score(
            "Invest in bitcoin and double your money in 24h, guaranteed return, wa.me/123",
        );
        assert!(c.is_spam(), "{c:?}");
    }

    #[test]
    fn ordinary_support_messages_are_not_spam() {
        for text in [
            "where is my order #4411?",
            "me cobraron dos veces",
            "here is the receipt https://shop.example/r/1",
            "मेरा रिफंड कब आएगा",
        ] {
            assert!(!spam_score(text).is_spam(), "{text}");
        }
    }

    #[test]
    fn same_scam_from_many_numbers_clusters_into_one_fingerprint() {
        let base = Fingerprint::of(
            "Dear customer, your account will be suspended. Verify now at http://secure-login.example/a81 and send the code 4471",
        );
        let variant = Fingerprint::of(
            "Dear Customer, your account will be suspended!! Verify now at http://secure-login.example/b92 and send the code 9013",
        );
        assert!(base.similar(variant), "distance {}", base.distance(variant));
        let unrelated = Fingerprint::of(
            "hi, my parcel arrived damaged and the box was open, can I get a replacement please",
        );
        assert!(
            !base.similar(unrelated),
            "distance {}",
            base.distance(unrelated)
        );
        assert!(similar(
            "ganhe dinheiro em casa 500 reais por dia",
            "GANHE dinheiro em casa 800 reais por dia!!"
        ));
    }
}
