//! Message templates: what may be sent outside the customer service window. A template
//! has a name, language variants, a category, a body with numbered placeholders and typed
//! variables, and versions. Its definition is checked before it is stored, and the values
//! of a send are checked against it before anything is called.

use serde::{Deserialize, Serialize};

/// Meta's template categories.
pub const CATEGORIES: [&str; 3] = ["marketing", "utility", "authentication"];

/// The category as a static string (the gate keeps it), if it is one of Meta's.
pub fn category(s: &str) -> Option<&'static str> {
    CATEGORIES.into_iter().find(|c| *c == s)
}

/// Longest template body Meta accepts.
const MAX_BODY_CHARS: usize = 1024;

/// One typed variable, in placeholder order (`{{1}}` is the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    /// `text`, `number`, `currency` (`12.50 USD`) or `date` (`2026-12-01`).
    #[serde(rename = "type")]
    pub kind: String,
}

const VARIABLE_KINDS: [&str; 4] = ["text", "number", "currency", "date"];

/// A template definition, as written by its author.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub language: String,
    pub category: String,
    pub body: String,
    pub variables: Vec<Variable>,
}

/// What is wrong with a definition or with the values of a send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Invalid(String),
    #[error("missing variables: {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    #[error("unknown variables: {}", .0.join(", "))]
    ExtraVariables(Vec<String>),
    #[error("variable {name} must be {kind}: {value:?} is not")]
    WrongType {
        name: String,
        kind: String,
        value: String,
    },
}

impl Definition {
    /// Checks the definition against Meta's rules and itself: a lower-case name, a
    /// language code, a known category, a body within the limit whose placeholders are
    /// exactly `{{1}}`..`{{n}}` for its `n` distinct, typed variables.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let invalid = |m: String| Err(TemplateError::Invalid(m));
        if self.name.is_empty()
            || self.name.len() > 512
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return invalid(format!(
                "template name {:?} must be lower-case letters, digits and underscores",
                self.name
            ));
        }
        if !is_language_code(&self.language) {
            return invalid(format!(
                "language {:?} is not a code such as en, es or pt_BR",
                self.language
            ));
        }
        if category(&self.category).is_none() {
            return invalid(format!(
                "category {:?} is not marketing, utility or authentication",
                self.category
            ));
        }
        if self.body.trim().is_empty() || self.body.chars().count() > MAX_BODY_CHARS {
            return invalid(format!(
                "the body must have between 1 and {MAX_BODY_CHARS} characters"
            ));
        }
        let mut names = std::collections::HashSet::new();
        for variable in &self.variables {
            if variable.name.trim().is_empty() || !names.insert(variable.name.as_str()) {
                return invalid(format!(
                    "variable names must be given and distinct ({:?})",
                    variable.name
                ));
            }
            if !VARIABLE_KINDS.contains(&variable.kind.as_str()) {
                return invalid(format!(
                    "variable {} has type {:?}; use text, number, currency or date",
                    variable.name, variable.kind
                ));
            }
        }
        let placeholders = placeholders(&self.body);
        let expected: Vec<usize> = (1..=self.variables.len()).collect();
        let mut found = placeholders.clone();
        found.sort_unstable();
        found.dedup();
        if found != expected {
            return invalid(format!(
                "the body's placeholders {:?} must be {{{{1}}}}..{{{{{}}}}}, one per variable",
                placeholders,
                self.variables.len()
            ));
        }
        Ok(())
    }
}

fn is_language_code(code: &str) -> bool {
    let (lang, region) = match code.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (code, None),
    };
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
}

/// The numbers of the `{{n}}` placeholders in the body, in order.
fn placeholders(body: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        if let Ok(n) = rest[..end].trim().parse() {
            found.push(n);
        }
        rest = &rest[end + 2..];
    }
    found
}

/// The values of a send checked against the variables: none missing, none unknown, each
/// of its type. Answers them in placeholder order.
pub fn check_values(
    variables: &[Variable],
    values: &[(String, String)],
) -> Result<Vec<String>, TemplateError> {
    let extra: Vec<String> = values
        .iter()
        .filter(|(name, _)| !variables.iter().any(|v| &v.name == name))
        .map(|(name, _)| name.clone())
        .collect();
    if !extra.is_empty() {
        return Err(TemplateError::ExtraVariables(extra));
    }
    let missing: Vec<String> = variables
        .iter()
        .filter(|v| {
            !values
                .iter()
                .any(|(name, value)| name == &v.name && !value.trim().is_empty())
        })
        .map(|v| v.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(TemplateError::MissingVariables(missing));
    }
    variables
        .iter()
        .map(|variable| {
            let value = values
                .iter()
                .find(|(name, _)| name == &variable.name)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            let ok = match variable.kind.as_str() {
                "number" => value.parse::<f64>().is_ok_and(f64::is_finite),
                "currency" => value.split_once(' ').is_some_and(|(amount, code)| {
                    amount.parse::<f64>().is_ok_and(f64::is_finite)
                        && code.len() == 3
                        && code.bytes().all(|b| b.is_ascii_uppercase())
                }),
                "date" => chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d").is_ok(),
                _ => value.chars().count() <= 1024 && !value.contains("\n\n\n\n\n"),
            };
            if ok {
                Ok(value)
            } else {
                Err(TemplateError::WrongType {
                    name: variable.name.clone(),
                    kind: variable.kind.clone(),
                    value,
                })
            }
        })
        .collect()
}

/// The body with its placeholders filled, as the customer reads it.
pub fn render(body: &str, values: &[String]) -> String {
    let mut text = body.to_owned();
    for (i, value) in values.iter().enumerate() {
        text = text.replace(&format!("{{{{{}}}}}", i + 1), value);
    }
    text
}

/// The Cloud API request of a template send.
pub fn payload(name: &str, language: &str, values: &[String]) -> serde_json::Value {
    let mut template = serde_json::json!({ "name": name, "language": { "code": language } });
    if !values.is_empty() {
        template["components"] = serde_json::json!([{
            "type": "body",
            "parameters": values.iter().map(|v| serde_json::json!({ "type": "text", "text": v })).collect::<Vec<_>>(),
        }]);
    }
    serde_json::json!({ "type": "template", "template": template })
}

/// The languages to look for, best first: the one asked for, else the contact's
/// (`es` also finds `es_MX`), else the fallback.
pub fn language_preference(
    asked: Option<&str>,
    contact: Option<&str>,
    fallback: &str,
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for language in [asked, contact, Some(fallback)].into_iter().flatten() {
        if !language.is_empty() && !order.iter().any(|l| l == language) {
            order.push(language.to_owned());
        }
    }
    order
}

/// Whether a variant's language answers a preference (`es` answers `es` and `es_MX`).
pub fn language_matches(variant: &str, wanted: &str) -> bool {
    variant == wanted
        || (!wanted.contains('_')
            && variant
                .split_once('_')
                .is_some_and(|(lang, _)| lang == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(body: &str, variables: &[(&str, &str)]) -> Definition {
        Definition {
            name: "order_update".into(),
            language: "en_US".into(),
            category: "utility".into(),
            body: body.into(),
            variables: variables
                .iter()
                .map(|(n, k)| Variable {
                    name: (*n).into(),
                    kind: (*k).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn definitions_follow_the_rules() {
        let good = definition(
            "Hi {{1}}, order {{2}} arrives on {{3}}.",
            &[("name", "text"), ("order", "text"), ("day", "date")],
        );
        assert_eq!(good.validate(), Ok(()));
        for bad in [
            definition("Hi {{1}}", &[]),
            definition("Hi {{1}} {{3}}", &[("a", "text"), ("b", "text")]),
            definition("Hi", &[("a", "text")]),
            definition("Hi {{1}}", &[("a", "colour")]),
            definition("Hi {{1}} {{2}}", &[("a", "text"), ("a", "text")]),
        ] {
            assert!(bad.validate().is_err(), "{:?}", bad.body);
        }
        let mut named = good.clone();
        named.name = "Order Update".into();
        assert!(named.validate().is_err());
        let mut language = good.clone();
        language.language = "english".into();
        assert!(language.validate().is_err());
        let mut category = good;
        category.category = "promo".into();
        assert!(category.validate().is_err());
    }

    #[test]
    fn values_are_checked_for_presence_and_type() {
        let variables = vec![
            Variable {
                name: "order".into(),
                kind: "text".into(),
            },
            Variable {
                name: "total".into(),
                kind: "currency".into(),
            },
            Variable {
                name: "day".into(),
                kind: "date".into(),
            },
        ];
        let v = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            check_values(
                &variables,
                &v(&[
                    ("day", "2026-12-03"),
                    ("order", "****4821"),
                    ("total", "12.50 USD")
                ])
            ),
            Ok(vec![
                "****4821".into(),
                "12.50 USD".into(),
                "2026-12-03".into()
            ])
        );
        assert_eq!(
            check_values(&variables, &v(&[("order", "x"), ("day", "2026-12-03")])),
            Err(TemplateError::MissingVariables(vec!["total".into()]))
        );
        assert_eq!(
            check_values(
                &variables,
                &v(&[
                    ("order", "x"),
                    ("total", "1 USD"),
                    ("day", "2026-12-03"),
                    ("coupon", "X")
                ])
            ),
            Err(TemplateError::ExtraVariables(vec!["coupon".into()]))
        );
        assert!(matches!(
            check_values(
                &variables,
                &v(&[
                    ("order", "x"),
                    ("total", "12 dollars"),
                    ("day", "2026-12-03")
                ])
            ),
            Err(TemplateError::WrongType { .. })
        ));
    }

    #[test]
    fn the_payload_and_the_text_carry_the_values() {
        let values = vec!["****4821".to_owned()];
        assert_eq!(
            render("Order {{1}} shipped.", &values),
            "Order ****4821 shipped."
        );
        let payload = payload("order_update", "es", &values);
        assert_eq!(payload["template"]["language"]["code"], "es");
        assert_eq!(
            payload["template"]["components"][0]["parameters"][0]["text"],
            "****4821"
        );
    }

    #[test]
    fn the_contacts_language_is_preferred_then_the_fallback() {
        assert_eq!(
            language_preference(None, Some("es"), "en"),
            ["es".to_owned(), "en".to_owned()]
        );
        assert!(language_matches("es_MX", "es"));
        assert!(!language_matches("es_MX", "es_ES"));
        assert!(language_matches("en", "en"));
    }
}
