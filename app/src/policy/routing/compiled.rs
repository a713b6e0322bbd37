//! Rules compiled at load time: tag values as small integer ids, list conditions as
//! bit sets, so matching a message allocates nothing.

use super::*;

// ---------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------

/// A set of small integer ids (tag values of one family).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    pub(super) fn insert(&mut self, id: u32) {
        let word = (id / 64) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    pub(super) fn contains(&self, id: u32) -> bool {
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// The values of one tag family, numbered in taxonomy order.
#[derive(Debug, Clone, Default)]
pub(super) struct Vocab {
    pub(super) family: &'static str,
    pub(super) names: Vec<String>,
    pub(super) ids: HashMap<String, u32>,
}

impl Vocab {
    pub(super) fn new(family: &'static str, values: &[String]) -> Vocab {
        let mut vocab = Vocab {
            family,
            ..Vocab::default()
        };
        for value in values {
            if !vocab.ids.contains_key(value) {
                vocab.ids.insert(value.clone(), vocab.names.len() as u32);
                vocab.names.push(value.clone());
            }
        }
        vocab
    }

    pub(super) fn id(&self, label: &str) -> Option<u32> {
        self.ids.get(label).copied()
    }

    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }

    /// "unknown intent "x" (known: a, b; did you mean "y"?)"
    pub(super) fn unknown(&self, label: &str) -> String {
        unknown_value(self.family, label, &self.names)
    }
}

pub(super) fn unknown_value(family: &str, label: &str, known: &[String]) -> String {
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    match suggest(label, known) {
        Some(close) => {
            format!("unknown {family} \"{label}\" (known: {list}; did you mean \"{close}\"?)")
        }
        None => format!("unknown {family} \"{label}\" (known: {list})"),
    }
}

/// A message's tags as ids (unknown values dropped).
pub(super) struct Resolved {
    pub(super) intents: Vec<(u32, f32)>,
    pub(super) risks: Vec<(u32, f32)>,
    pub(super) urgency: u32,
    pub(super) language: Option<u32>,
    pub(super) tones: Vec<u32>,
    pub(super) context: Vec<u32>,
    pub(super) low_confidence: bool,
}

/// The compiled `when` of a rule.
#[derive(Debug, Clone, Default)]
pub(super) struct When {
    pub(super) intents: Option<Bits>,
    pub(super) risks: Option<Bits>,
    pub(super) min_confidence: Option<f32>,
    pub(super) urgency_at_least: Option<u32>,
    pub(super) languages: Option<Bits>,
    pub(super) tones: Option<Bits>,
    pub(super) context: Option<Bits>,
    pub(super) low_confidence: Option<bool>,
}

impl When {
    pub(super) fn scored_ok(&self, mask: &Bits, &(id, confidence): &(u32, f32)) -> bool {
        mask.contains(id) && self.min_confidence.is_none_or(|min| confidence >= min)
    }

    pub(super) fn matches(&self, t: &Resolved) -> bool {
        if self
            .low_confidence
            .is_some_and(|want| want != t.low_confidence)
        {
            return false;
        }
        if self.urgency_at_least.is_some_and(|min| t.urgency < min) {
            return false;
        }
        if let Some(mask) = &self.languages
            && !t.language.is_some_and(|id| mask.contains(id))
        {
            return false;
        }
        if let Some(mask) = &self.intents
            && !t.intents.iter().any(|s| self.scored_ok(mask, s))
        {
            return false;
        }
        if let Some(mask) = &self.risks
            && !t.risks.iter().any(|s| self.scored_ok(mask, s))
        {
            return false;
        }
        if let Some(mask) = &self.tones
            && !t.tones.iter().any(|&id| mask.contains(id))
        {
            return false;
        }
        if let Some(mask) = &self.context
            && !t.context.iter().any(|&id| mask.contains(id))
        {
            return false;
        }
        true
    }

    /// What made a matching rule match, in plain words.
    pub(super) fn describe(&self, t: &Resolved, p: &RoutingPolicy) -> Vec<String> {
        let mut on = Vec::new();
        let scored = |family: &str, name: &str, confidence: f32| {
            let mut text = String::with_capacity(family.len() + name.len() + 8);
            text.push_str(family);
            text.push(' ');
            text.push_str(name);
            text.push_str(" (");
            push_confidence(&mut text, confidence);
            text.push(')');
            text
        };
        if let Some(mask) = &self.intents {
            for s in t.intents.iter().filter(|s| self.scored_ok(mask, s)) {
                on.push(scored("intent", p.intents.name(s.0), s.1));
            }
        }
        if let Some(mask) = &self.risks {
            for s in t.risks.iter().filter(|s| self.scored_ok(mask, s)) {
                on.push(scored("risk", p.risks.name(s.0), s.1));
            }
        }
        if let Some(min) = self.urgency_at_least {
            on.push(format!(
                "urgency {} (at least {})",
                p.urgencies.name(t.urgency),
                p.urgencies.name(min)
            ));
        }
        if let Some(id) = t.language.filter(|_| self.languages.is_some()) {
            on.push(format!("language {}", p.languages.name(id)));
        }
        if let Some(mask) = &self.tones {
            for &id in t.tones.iter().filter(|&&id| mask.contains(id)) {
                on.push(format!("tone {}", p.tones.name(id)));
            }
        }
        if let Some(mask) = &self.context {
            for &id in t.context.iter().filter(|&&id| mask.contains(id)) {
                on.push(format!("context {}", p.contexts.name(id)));
            }
        }
        match self.low_confidence {
            Some(true) => on.push("low confidence".into()),
            Some(false) => on.push("confident classification".into()),
            None => {}
        }
        on
    }
}

/// Appends a confidence as "0.91" (two decimals, clamped to 0..=1; "?" when not a number),
/// without the cost of float formatting.
pub(super) fn push_confidence(out: &mut String, confidence: f32) {
    if confidence.is_nan() {
        out.push('?');
        return;
    }
    let hundredths = (confidence.clamp(0.0, 1.0) * 100.0).round() as u32;
    if hundredths >= 100 {
        out.push_str("1.00");
        return;
    }
    out.push_str("0.");
    out.push(char::from(b'0' + (hundredths / 10) as u8));
    out.push(char::from(b'0' + (hundredths % 10) as u8));
}

/// The compiled `then` of a rule.
#[derive(Debug, Clone, Default)]
pub(super) struct Then {
    pub(super) owner: Option<String>,
    pub(super) watchers: Vec<String>,
    pub(super) priority: Option<Priority>,
    pub(super) urgency: Option<u32>,
    pub(super) raise_urgency: u32,
    pub(super) review: Option<Review>,
    pub(super) skills: Vec<String>,
    pub(super) suppress: Option<String>,
    pub(super) stop: bool,
}

/// One compiled `[[rules]]` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) when: When,
    pub(super) then: Then,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Line of the rule's `[[rules]]` header.
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn owner(&self) -> Option<&str> {
        self.then.owner.as_deref()
    }

    pub fn watchers(&self) -> &[String] {
        &self.then.watchers
    }

    pub fn skills(&self) -> &[String] {
        &self.then.skills
    }

    pub fn review(&self) -> Option<Review> {
        self.then.review
    }

    pub fn stops(&self) -> bool {
        self.then.stop
    }
}
