//! Custom fields on contacts: admins define them (a key, a label, a type), agents fill
//! them in. A value is checked against its field's type once, here, and kept in one
//! canonical text form: numbers as written by Rust's `f64` display, booleans as
//! `true`/`false`, dates as `YYYY-MM-DD`, an enum as one of its options.

use std::fmt;

/// The type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Boolean,
    Date,
    Enum,
}

/// Longest text value a field holds.
pub const MAX_TEXT_VALUE_CHARS: usize = 1000;
/// Most options an enum field has.
pub const MAX_OPTIONS: usize = 100;

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Enum => "enum",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            "enum" => Self::Enum,
            _ => return None,
        })
    }
}

/// Why a field definition or a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error(
        "a field key is 1 to 40 lowercase letters, digits or underscores, starting with a letter"
    )]
    BadKey,
    #[error("an enum field needs 1 to {MAX_OPTIONS} distinct, non-empty options")]
    BadOptions,
    #[error("only enum fields have options")]
    UnexpectedOptions,
    #[error("{key} is a {kind} field: {why}")]
    BadValue {
        key: String,
        kind: &'static str,
        why: String,
    },
}

/// Checks a field key: `order_count`, `tier`, `birthday`.
pub fn check_key(key: &str) -> Result<(), FieldError> {
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && key.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(()).ok_or(FieldError::BadKey)
}

/// Checks an enum's options (trimmed, distinct, non-empty); other kinds take none.
pub fn check_options(kind: FieldKind, options: &[String]) -> Result<Vec<String>, FieldError> {
    if kind != FieldKind::Enum {
        return if options.is_empty() {
            Ok(Vec::new())
        } else {
            Err(FieldError::UnexpectedOptions)
        };
    }
    let mut clean: Vec<String> = Vec::with_capacity(options.len());
    for option in options {
        let option = option.trim();
        if option.is_empty() || option.chars().count() > 100 || clean.iter().any(|o| o == option) {
            return Err(FieldError::BadOptions);
        }
        clean.push(option.to_owned());
    }
    if clean.is_empty() || clean.len() > MAX_OPTIONS {
        return Err(FieldError::BadOptions);
    }
    Ok(clean)
}

/// The canonical form of `value` for a field of `kind`, or why it does not fit.
pub fn canonical_value(
    key: &str,
    kind: FieldKind,
    options: &[String],
    value: &str,
) -> Result<String, FieldError> {
    let refuse = |why: &str| FieldError::BadValue {
        key: key.to_owned(),
        kind: kind.as_str(),
        why: why.to_owned(),
    };
    let value = value.trim();
    match kind {
        FieldKind::Text => {
            if value.chars().count() > MAX_TEXT_VALUE_CHARS {
                return Err(refuse(&format!(
                    "at most {MAX_TEXT_VALUE_CHARS} characters"
                )));
            }
            Ok(value.to_owned())
        }
        FieldKind::Number => match value.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n.to_string()),
            _ => Err(refuse("expected a number such as 12 or 4.5")),
        },
        FieldKind::Boolean => match value {
            "true" => Ok("true".into()),
            "false" => Ok("false".into()),
            _ => Err(refuse("expected true or false")),
        },
        FieldKind::Date => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| refuse("expected a date as YYYY-MM-DD")),
        FieldKind::Enum => options
            .iter()
            .find(|o| o.as_str() == value)
            .cloned()
            .ok_or_else(|| refuse(&format!("expected one of {}", options.join(", ")))),
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_type() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            canonical_value("n", FieldKind::Number, &none, " 4.50 ").unwrap(),
            "4.5"
        );
        assert!(canonical_value("n", FieldKind::Number, &none, "four").is_err());
        assert!(canonical_value("n", FieldKind::Number, &none, "NaN").is_err());
        assert!(canonical_value("b", FieldKind::Boolean, &none, "yes").is_err());
        assert_eq!(
            canonical_value("d", FieldKind::Date, &none, "2026-02-28").unwrap(),
            "2026-02-28"
        );
        assert!(canonical_value("d", FieldKind::Date, &none, "2026-02-30").is_err());
        let tiers = vec!["gold".to_owned(), "silver".to_owned()];
        assert!(canonical_value("t", FieldKind::Enum, &tiers, "bronze").is_err());
        assert_eq!(
            canonical_value("t", FieldKind::Enum, &tiers, "gold").unwrap(),
            "gold"
        );
    }

    #[test]
    fn keys_and_options_are_checked() {
        assert!(check_key("order_count").is_ok());
        assert!(check_key("Order").is_err());
        assert!(check_key("1st").is_err());
        assert!(check_options(FieldKind::Enum, &[]).is_err());
        assert!(check_options(FieldKind::Enum, &["a".into(), "a".into()]).is_err());
        assert!(check_options(FieldKind::Text, &["a".into()]).is_err());
    }
}
