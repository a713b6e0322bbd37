//! Macros (canned responses): the variables a body may name, rendering a body for one
//! case, and the actions a macro takes with its reply. Checked here once, at the edge: a
//! macro naming an unknown variable is never stored, and a value missing on a case stops
//! the whole application before anything is sent or changed.

use super::{Priority, TicketStatus};
use serde::{Deserialize, Serialize};

/// A value a macro body may name as `{{name}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    /// The contact's profile name.
    ContactName,
    /// The contact's WhatsApp number.
    ContactPhone,
    /// The name of the agent applying the macro.
    AgentName,
    /// The case's number.
    ConversationId,
}

impl Variable {
    pub const ALL: [Variable; 4] = [
        Self::ContactName,
        Self::ContactPhone,
        Self::AgentName,
        Self::ConversationId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactName => "contact.name",
            Self::ContactPhone => "contact.phone",
            Self::AgentName => "agent.name",
            Self::ConversationId => "conversation.id",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    #[error("unknown variable {{{{{name}}}}}; macros may use {known}")]
    UnknownVariable { name: String, known: String },
    #[error("a placeholder opened with {{{{ is never closed")]
    Unclosed,
    #[error("{{{{{0}}}}} has no value on this conversation")]
    MissingValue(&'static str),
}

/// The pieces of a body: literal text and variables, in order.
enum Piece<'a> {
    Text(&'a str),
    Var(Variable),
}

fn pieces(body: &str) -> Result<Vec<Piece<'_>>, MacroError> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(MacroError::Unclosed)?;
        let name = after[..end].trim();
        let var = Variable::parse(name).ok_or_else(|| MacroError::UnknownVariable {
            name: name.to_owned(),
            known: Variable::ALL
                .iter()
                .map(|v| format!("{{{{{}}}}}", v.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        out.push(Piece::Var(var));
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Refuses a body that names a variable Parley does not know.
pub fn check_body(body: &str) -> Result<(), MacroError> {
    pieces(body).map(|_| ())
}

/// The body with every variable replaced by `value`'s answer; the first variable without
/// a value is an error.
pub fn render(
    body: &str,
    value: impl Fn(Variable) -> Option<String>,
) -> Result<String, MacroError> {
    let mut out = String::with_capacity(body.len());
    for piece in pieces(body)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(var) => {
                let v = value(var)
                    .filter(|v| !v.trim().is_empty())
                    .ok_or(MacroError::MissingValue(var.as_str()))?;
                out.push_str(&v);
            }
        }
    }
    Ok(out)
}

/// A body in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub language: String,
    pub body: String,
}

/// The body for a case: the first variant answering the languages of `preference`
/// (best first), else the macro's own body.
pub fn pick_body<'a>(default: &'a str, variants: &'a [Variant], preference: &[String]) -> &'a str {
    preference
        .iter()
        .find_map(|wanted| {
            variants
                .iter()
                .find(|v| super::template::language_matches(&v.language, wanted))
        })
        .map_or(default, |v| v.body.as_str())
}

/// What a macro does to the case with its reply, all in the same change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TicketStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_agent_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Intents to tag the case with (taxonomy labels); the rules decide again, as after
    /// a person's correction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_intents: Vec<String>,
    /// Risks to tag the case with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_risks: Vec<String>,
}

impl Actions {
    /// Whether the macro tags the case.
    pub fn tags(&self) -> bool {
        !self.add_intents.is_empty() || !self.add_risks.is_empty()
    }
}

/// The macro as the caller found it, with the languages to try for the case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MacroToApply {
    pub id: i64,
    pub name: String,
    pub body: String,
    pub variants: Vec<Variant>,
    pub actions: Actions,
    /// Used when no variant answers the contact's language (`[templates] fallback_language`).
    pub fallback_language: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_render_and_unknown_ones_are_refused() {
        let body = "Hi {{contact.name}}, {{ agent.name }} here.";
        assert_eq!(check_body(body), Ok(()));
        let rendered = render(body, |v| match v {
            Variable::ContactName => Some("Ana".into()),
            Variable::AgentName => Some("Bo".into()),
            _ => None,
        });
        assert_eq!(rendered.as_deref(), Ok("Hi Ana, Bo here."));
        assert!(matches!(
            check_body("Hi {{contact.nickname}}"),
            Err(MacroError::UnknownVariable { name, .. }) if name == "contact.nickname"
        ));
        assert_eq!(check_body("Hi {{contact.name"), Err(MacroError::Unclosed));
    }

    #[test]
    fn a_missing_value_names_its_variable() {
        assert_eq!(
            render("Hi {{contact.name}}", |_| None),
            Err(MacroError::MissingValue("contact.name"))
        );
    }

    #[test]
    fn the_variant_of_the_preferred_language_is_picked() {
        let variants = vec![Variant {
            language: "es".into(),
            body: "Hola".into(),
        }];
        assert_eq!(pick_body("Hello", &variants, &["es".into()]), "Hola");
        assert_eq!(
            pick_body("Hello", &variants, &["fr".into(), "en".into()]),
            "Hello"
        );
    }
}
