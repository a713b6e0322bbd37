//! The outbound gate's policy: every message Parley would send, whoever or whatever wrote
//! it, is put to [`ApprovalPolicy::evaluate`] by its conversation actor before it reaches
//! the outbox. It answers allow, hold for approval (and by which role), or block, and says
//! why.
//!
//! - **Consent**: the contact's consent to the message's purpose, read at send time.
//! - **Customer service window**: free-form messages only while the 24-hour window is
//!   open; outside it only a template may be sent. Refused before any provider is called.
//! - **Approval boundaries** (`config/approvals.toml`): declarative rules over the triage
//!   tags of the case's latest customer message, the customer's tier, the message's origin,
//!   the amounts it mentions and its template category. A matching rule holds the message
//!   for a person of the named role. The boundary is evaluated for every message, so a
//!   thread that turns into a dispute holds the very next automated message.
//!
//! The gate is pure and allocation-light: it runs inside the conversation actor's step,
//! between planning a change and writing it.

use super::problems::{KnownTags, PolicyError, Problems};
use crate::domain::consent::Purpose;
use crate::domain::outbound::{Hold, Origin};
use crate::domain::{Micros, Role};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use toml::Spanned;

/// The message the gate looks at.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    pub origin: Origin,
    pub purpose: Purpose,
    /// `Some(category)` for a template (`utility`, `marketing`, `authentication`), which
    /// may be sent outside the service window; `None` for a free-form message.
    pub template_category: Option<&'a str>,
    pub text: &'a str,
}

/// What the gate knows about the case and the contact at send time.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The case's triage gist (the latest customer message's tags), as stored.
    pub triage: Option<&'a str>,
    pub vip: bool,
    /// The contact's consent to the message's purpose, read just before.
    pub consent: bool,
    /// When the case's customer service window closes (or closed); `None`: the customer
    /// never wrote.
    pub window_closes_at: Option<Micros>,
    pub now: Micros,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Hold(Hold),
    Block(Block),
}

/// Why a message may not be sent at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Block {
    /// The contact withdrew (or never gave) consent to this purpose.
    NoConsent { purpose: Purpose },
    /// A free-form message outside the customer service window: a template is needed.
    WindowClosed { closed_at: Option<Micros> },
}

/// The tags of the case's latest customer message, as the gate reads them.
#[derive(Debug, Default, Deserialize)]
struct Gist {
    #[serde(default)]
    intents: Vec<Label>,
    urgency: Option<Label>,
    #[serde(default)]
    risks: Vec<Label>,
    #[serde(default)]
    tones: Vec<Label>,
    #[serde(default)]
    low_confidence: bool,
    #[serde(default)]
    context: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Label {
    label: String,
}

/// The validated boundaries. Cheap to query; replaced whole on reload.
#[derive(Debug, Clone)]
pub struct ApprovalPolicy {
    boundaries: Vec<Boundary>,
}

#[derive(Debug, Clone)]
struct Boundary {
    name: String,
    why: String,
    intents: Vec<String>,
    risks: Vec<String>,
    urgencies: Vec<String>,
    tones: Vec<String>,
    low_confidence: Option<bool>,
    vip: Option<bool>,
    origins: Vec<Origin>,
    min_amount: Option<f64>,
    template_categories: Vec<String>,
    approver: Role,
}

impl Boundary {
    fn matches<'a>(&self, message: &Outbound<'_>, gist: &'a Gist, vip: bool, amount: f64) -> bool {
        fn any<'l>(wanted: &[String], mut present: impl Iterator<Item = &'l str>) -> bool {
            wanted.is_empty() || present.any(|p| wanted.iter().any(|w| w == p))
        }
        let labels = |list: &'a [Label]| list.iter().map(|l| l.label.as_str());
        self.origins.contains(&message.origin)
            && any(&self.intents, labels(&gist.intents))
            && any(&self.risks, labels(&gist.risks))
            && any(
                &self.urgencies,
                gist.urgency.iter().map(|l| l.label.as_str()),
            )
            && any(&self.tones, labels(&gist.tones))
            && self
                .low_confidence
                .is_none_or(|wanted| wanted == gist.low_confidence)
            && self.vip.is_none_or(|wanted| wanted == vip)
            && self.min_amount.is_none_or(|min| amount >= min)
            && (self.template_categories.is_empty()
                || message
                    .template_category
                    .is_some_and(|c| self.template_categories.iter().any(|w| w == c)))
    }
}

impl ApprovalPolicy {
    /// Evaluates one message. Consent and the window come first: a message that may not
    /// be sent is never put in front of an approver.
    pub fn evaluate(&self, message: &Outbound<'_>, case: &Context<'_>) -> Verdict {
        if !case.consent {
            return Verdict::Block(Block::NoConsent {
                purpose: message.purpose,
            });
        }
        if message.template_category.is_none() {
            let closes_at = case.window_closes_at;
            if closes_at.is_none_or(|closes| case.now >= closes) {
                return Verdict::Block(Block::WindowClosed {
                    closed_at: closes_at,
                });
            }
        }
        if message.origin.is_human()
            && self
                .boundaries
                .iter()
                .all(|b| !b.origins.contains(&Origin::Agent))
        {
            return Verdict::Allow;
        }
        let gist: Gist = case
            .triage
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let vip = case.vip || gist.context.iter().any(|c| c == "vip_customer");
        let amount = largest_amount(message.text).unwrap_or(0.0);
        let mut hold: Option<Hold> = None;
        for boundary in &self.boundaries {
            if !boundary.matches(message, &gist, vip, amount) {
                continue;
            }
            let held = hold.get_or_insert_with(|| Hold {
                approver: boundary.approver,
                boundaries: Vec::new(),
                reasons: Vec::new(),
            });
            if rank(boundary.approver) > rank(held.approver) {
                held.approver = boundary.approver;
            }
            held.boundaries.push(boundary.name.clone());
            held.reasons.push(boundary.why.clone());
        }
        hold.map_or(Verdict::Allow, Verdict::Hold)
    }

    pub fn boundaries(&self) -> usize {
        self.boundaries.len()
    }
}

/// How much a role may approve: a higher rank approves what a lower one may.
pub fn rank(role: Role) -> u8 {
    match role {
        Role::Admin => 3,
        Role::Supervisor => 2,
        Role::Agent => 1,
        _ => 0,
    }
}

/// Whether `role` may decide a message held for `approver`.
pub fn may_approve(role: Role, approver: Role) -> bool {
    rank(role) > 0 && rank(role) >= rank(approver)
}

/// Currency markers an amount may stand next to.
const CURRENCIES: &[&str] = &[
    "$", "€", "£", "₹", "¥", "r$", "rp", "usd", "eur", "gbp", "mxn", "brl", "inr", "idr", "aed",
    "sar", "rs", "rs.",
];

/// The largest amount of money the text mentions: a number written next to a currency
/// marker (`$250`, `250 EUR`, `R$ 1.299,90`, `Rp 150.000`).
pub fn largest_amount(text: &str) -> Option<f64> {
    let lower = text.to_lowercase();
    let bytes = lower.as_bytes();
    let mut best: Option<f64> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b',')
        {
            i += 1;
        }
        let mut end = i;
        while end > start && !bytes[end - 1].is_ascii_digit() {
            end -= 1;
        }
        let before = lower[..start].trim_end();
        let after = lower[end..].trim_start();
        let marked = CURRENCIES.iter().any(|c| {
            before.ends_with(c)
                && before[..before.len() - c.len()]
                    .chars()
                    .next_back()
                    .is_none_or(|ch| !ch.is_alphanumeric() || c.starts_with('$') || !c.is_ascii())
                || after.starts_with(c)
                    && after[c.len()..]
                        .chars()
                        .next()
                        .is_none_or(|ch| !ch.is_alphanumeric())
        });
        if marked && let Some(value) = parse_amount(&lower[start..end]) {
            best = Some(best.map_or(value, |b: f64| b.max(value)));
        }
    }
    best
}

/// Reads `1,299.90`, `1.299,90`, `150.000` and `250` alike: the last separator followed
/// by exactly two digits is the decimal point; every other separator groups thousands.
fn parse_amount(raw: &str) -> Option<f64> {
    let last_sep = raw.rfind(['.', ',']);
    let (whole, cents) = match last_sep {
        Some(at) if raw.len() - at - 1 == 2 => (&raw[..at], &raw[at + 1..]),
        _ => (raw, ""),
    };
    let digits: String = whole.chars().filter(char::is_ascii_digit).collect();
    format!("{digits}.{}", if cents.is_empty() { "0" } else { cents })
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// Reading the file
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    #[serde(default)]
    boundary: Vec<Spanned<RawBoundary>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoundary {
    name: Spanned<String>,
    why: Option<String>,
    #[serde(default)]
    intents: Vec<Spanned<String>>,
    #[serde(default)]
    risks: Vec<Spanned<String>>,
    #[serde(default)]
    urgency: Vec<Spanned<String>>,
    #[serde(default)]
    tones: Vec<Spanned<String>>,
    low_confidence: Option<bool>,
    vip: Option<bool>,
    #[serde(default)]
    origins: Vec<Spanned<String>>,
    min_amount: Option<Spanned<f64>>,
    #[serde(default)]
    template_categories: Vec<Spanned<String>>,
    approver: Option<Spanned<String>>,
}

/// Template categories Meta defines.
const TEMPLATE_CATEGORIES: &[&str] = &["marketing", "utility", "authentication"];

impl ApprovalPolicy {
    /// Reads and validates the boundaries against the taxonomy in force; every mistake is
    /// reported with its line and column.
    pub fn from_toml(text: &str, known: &KnownTags) -> Result<ApprovalPolicy, PolicyError> {
        let mut problems = Problems::new(text);
        let raw: RawApprovals = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                problems.at(err.span().unwrap_or(0..0), err.message().trim().to_string());
                return Err(problems.into_error());
            }
        };
        let mut boundaries = Vec::with_capacity(raw.boundary.len());
        let mut names = std::collections::HashSet::new();
        for spanned in raw.boundary {
            let span = spanned.span();
            let raw = spanned.into_inner();
            let name = raw.name.get_ref().trim().to_owned();
            if name.is_empty() {
                problems.at(raw.name.span(), "a boundary needs a name");
            } else if !names.insert(name.clone()) {
                problems.at(raw.name.span(), format!("boundary {name:?} is named twice"));
            }
            let mut vocab = |list: Vec<Spanned<String>>, allowed: &[String], family: &str| {
                list.into_iter()
                    .filter_map(|v| {
                        let ok = allowed.iter().any(|a| a == v.get_ref());
                        if !ok {
                            problems.at(
                                v.span(),
                                format!("unknown {family} {:?} (not in the taxonomy)", v.get_ref()),
                            );
                        }
                        ok.then(|| v.into_inner())
                    })
                    .collect::<Vec<_>>()
            };
            let intents = vocab(raw.intents, &known.intents, "intent");
            let risks = vocab(raw.risks, &known.risks, "risk");
            let urgencies = vocab(raw.urgency, &known.urgencies, "urgency");
            let tones = vocab(raw.tones, &known.tones, "tone");
            let categories: Vec<String> = TEMPLATE_CATEGORIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect();
            let template_categories =
                vocab(raw.template_categories, &categories, "template category");
            let origins = if raw.origins.is_empty() {
                Origin::ALL.into_iter().filter(|o| !o.is_human()).collect()
            } else {
                raw.origins
                    .iter()
                    .filter_map(|o| {
                        let parsed = Origin::parse(o.get_ref());
                        if parsed.is_none() {
                            problems.at(
                                o.span(),
                                format!(
                                    "unknown origin {:?}: use agent, integration, automation, ai_draft, survey or closing",
                                    o.get_ref()
                                ),
                            );
                        }
                        parsed
                    })
                    .collect()
            };
            let min_amount = raw.min_amount.and_then(|m| {
                let ok = m.get_ref().is_finite() && *m.get_ref() >= 0.0;
                if !ok {
                    problems.at(m.span(), "min_amount must be a number of 0 or more");
                }
                ok.then(|| *m.get_ref())
            });
            let approver = match &raw.approver {
                None => Role::Supervisor,
                Some(role) => match Role::parse(role.get_ref()).filter(|r| rank(*r) > 0) {
                    Some(r) => r,
                    None => {
                        problems.at(
                            role.span(),
                            format!(
                                "unknown approver {:?}: use agent, supervisor or admin",
                                role.get_ref()
                            ),
                        );
                        Role::Supervisor
                    }
                },
            };
            let conditions = intents.len()
                + risks.len()
                + urgencies.len()
                + tones.len()
                + template_categories.len()
                + usize::from(raw.low_confidence.is_some())
                + usize::from(raw.vip.is_some())
                + usize::from(min_amount.is_some());
            if conditions == 0 {
                problems.at(
                    span_start(&span),
                    format!("boundary {name:?} names no condition; it would hold every message"),
                );
            }
            boundaries.push(Boundary {
                why: raw.why.unwrap_or_else(|| format!("boundary {name}")),
                name,
                intents,
                risks,
                urgencies,
                tones,
                low_confidence: raw.low_confidence,
                vip: raw.vip,
                origins,
                min_amount,
                template_categories,
                approver,
            });
        }
        problems.finish()?;
        Ok(ApprovalPolicy { boundaries })
    }
}

fn span_start(span: &Range<usize>) -> Range<usize> {
    span.start..span.start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::loader::DEFAULT_APPROVALS;
    const HOUR_MICROS: Micros = 3600 * crate::domain::SECOND_MICROS;

    fn known() -> KnownTags {
        let config = crate::triage::TriageConfig::from_toml(crate::triage::DEFAULT_CONFIG).unwrap();
        crate::policy::known_tags(&config)
    }

    fn policy() -> ApprovalPolicy {
        ApprovalPolicy::from_toml(DEFAULT_APPROVALS, &known()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn gist(intent: &str, risks: &[&str]) -> String {
        serde_json::json!({
            "intents": [{ "label": intent, "confidence": 0.9 }],
            "urgency": { "label": "normal", "confidence": 0.8 },
            "risks": risks.iter().map(|r| serde_json::json!({ "label": r, "confidence": 0.9 })).collect::<Vec<_>>(),
            "tones": [],
            "low_confidence": false,
            "context": [],
        })
        .to_string()
    }

    fn message(origin: Origin, text: &str) -> Outbound<'_> {
        Outbound {
            origin,
            purpose: Purpose::Service,
            template_category: None,
            text,
        }
    }

    fn case(triage: &str) -> Context<'_> {
        Context {
            triage: Some(triage),
            vip: false,
            consent: true,
            window_closes_at: Some(24 * HOUR_MICROS),
            now: HOUR_MICROS,
        }
    }

    #[test]
    fn automation_is_held_on_a_dispute_and_a_person_is_not() {
        let policy = policy();
        let dispute = gist("billing_complaint", &[]);
        let held = policy.evaluate(
            &message(Origin::Automation, "Your refund is on its way"),
            &case(&dispute),
        );
        let Verdict::Hold(hold) = held else {
            panic!("{held:?}")
        };
        assert_eq!(hold.approver, Role::Supervisor);
        assert!(hold.boundaries.contains(&"billing_dispute".to_owned()));
        assert_eq!(
            policy.evaluate(&message(Origin::Agent, "Let me check"), &case(&dispute)),
            Verdict::Allow
        );
        let routine = gist("order_tracking", &[]);
        assert_eq!(
            policy.evaluate(
                &message(Origin::Automation, "Order ****4821 is shipped"),
                &case(&routine)
            ),
            Verdict::Allow
        );
        let threat = gist("order_tracking", &["legal_threat"]);
        assert!(matches!(
            policy.evaluate(&message(Origin::Survey, "How did we do?"), &case(&threat)),
            Verdict::Hold(_)
        ));
    }

    #[test]
    fn consent_and_the_window_block_before_any_boundary() {
        let policy = policy();
        let routine = gist("order_tracking", &[]);
        let mut no_consent = case(&routine);
        no_consent.consent = false;
        assert_eq!(
            policy.evaluate(&message(Origin::Agent, "hi"), &no_consent),
            Verdict::Block(Block::NoConsent {
                purpose: Purpose::Service
            })
        );
        let mut late = case(&routine);
        late.now = 25 * HOUR_MICROS;
        assert_eq!(
            policy.evaluate(&message(Origin::Agent, "hi"), &late),
            Verdict::Block(Block::WindowClosed {
                closed_at: Some(24 * HOUR_MICROS)
            })
        );
        let template = Outbound {
            template_category: Some("utility"),
            ..message(Origin::Survey, "rate us")
        };
        assert_eq!(policy.evaluate(&template, &late), Verdict::Allow);
    }

    #[test]
    fn amounts_are_read_next_to_currency_markers_only() {
        assert_eq!(largest_amount("We refund $250 today"), Some(250.0));
        assert_eq!(largest_amount("R$ 1.299,90 credited"), Some(1299.9));
        assert_eq!(largest_amount("Rp 150.000 or 20 EUR"), Some(150000.0));
        assert_eq!(largest_amount("€1,299.90"), Some(1299.9));
        assert_eq!(largest_amount("order 48213 ships in 2 days"), None);
        assert_eq!(largest_amount("gr8 deals"), None);
    }

    #[test]
    fn a_large_amount_from_automation_is_held() {
        let text = format!(
            "{DEFAULT_APPROVALS}\n[[boundary]]\nname = \"big_money\"\nmin_amount = 500\napprover = \"admin\"\n"
        );
        let policy = ApprovalPolicy::from_toml(&text, &known()).unwrap();
        let routine = gist("order_tracking", &[]);
        let Verdict::Hold(hold) = policy.evaluate(
            &message(Origin::Integration, "A $900 credit"),
            &case(&routine),
        ) else {
            panic!("not held")
        };
        // The stricter boundary decides who approves; both are named.
        assert_eq!(hold.approver, Role::Admin);
        assert_eq!(hold.boundaries, ["large_amount", "big_money"]);
        assert_eq!(
            policy.evaluate(
                &message(Origin::Integration, "A $90 credit"),
                &case(&routine)
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn mistakes_in_the_file_are_refused_with_their_position() {
        let bad = "[[boundary]]\nname = \"x\"\nintents = [\"billing_complain\"]\norigins = [\"robot\"]\napprover = \"integration\"\n\n[[boundary]]\nname = \"empty\"\n";
        let error = ApprovalPolicy::from_toml(bad, &known())
            .unwrap_err()
            .to_string();
        for expected in [
            "line 3",
            "unknown intent \"billing_complain\"",
            "unknown origin \"robot\"",
            "unknown approver \"integration\"",
            "boundary \"empty\" names no condition",
        ] {
            assert!(error.contains(expected), "{expected} in {error}");
        }
        assert!(ApprovalPolicy::from_toml("[[boundary]]\nnme = 1\n", &known()).is_err());
    }

    #[test]
    fn a_higher_role_approves_what_a_lower_one_may() {
        assert!(may_approve(Role::Admin, Role::Supervisor));
        assert!(may_approve(Role::Supervisor, Role::Supervisor));
        assert!(!may_approve(Role::Agent, Role::Supervisor));
        assert!(!may_approve(Role::Integration, Role::Agent));
    }
}
