//! Order ids as customers quote them, and as Parley shows them back.

/// At most this many order ids are tried from one message.
pub const MAX_ORDER_IDS: usize = 3;

/// Order ids quoted in a message: words with at least four digits (`A-10023`, `#10023`,
/// `4821XYZ`), most plausible first.
pub fn order_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '#')) {
        let word = word.trim_matches(|c| c == '-' || c == '#');
        let digits = word.chars().filter(char::is_ascii_digit).count();
        if (4..=32).contains(&word.len())
            && digits >= 4
            && !word.contains('#')
            && !ids.iter().any(|id| id == word)
        {
            ids.push(word.to_owned());
        }
    }
    // Phone-number-like runs of ten or more digits are the least likely order ids.
    ids.sort_by_key(|id| id.len() >= 10 && id.chars().all(|c| c.is_ascii_digit()));
    ids.truncate(MAX_ORDER_IDS);
    ids
}

/// An identifier shown to the customer with all but its last four characters hidden.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}
