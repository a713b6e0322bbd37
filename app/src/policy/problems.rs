//! What every declarative file shares: the problems found while reading one (each with
//! its line and column, all reported at once, in line order, with a "did you mean" for
//! near misses), and the tag values the triage taxonomy allows the others to name.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;

/// The tag values triage can produce, from the triage taxonomy. The policy refuses any
/// value not listed here, so a typo in `routing.toml` never silently matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownTags {
    pub intents: Vec<String>,
    pub risks: Vec<String>,
    /// Ordered from the lowest to the highest level.
    pub urgencies: Vec<String>,
    /// ISO 639-1 codes.
    pub languages: Vec<String>,
    pub tones: Vec<String>,
    /// Customer context values (`vip_customer`, `repeat_contact`, ...).
    pub contexts: Vec<String>,
}

impl KnownTags {
    /// The default taxonomy Parley ships (see the domain documentation). The server should
    /// build its `KnownTags` from the triage configuration it actually loaded.
    pub fn default_taxonomy() -> KnownTags {
        match crate::triage::TriageConfig::from_toml(crate::triage::DEFAULT_CONFIG) {
            Ok(config) => super::known_tags(&config),
            // The shipped taxonomy is checked by its own tests; an empty set refuses every
            // tag name rather than accepting a wrong one.
            Err(_) => KnownTags::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A policy file that cannot be used: every problem found, in line order (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub issues: Vec<Issue>,
}

impl PolicyError {
    /// Line of the first problem.
    pub fn line(&self) -> usize {
        self.issues.first().map_or(0, |i| i.line)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Collects problems with their positions.
pub(crate) struct Problems<'a> {
    pub(crate) text: &'a str,
    pub(crate) line_starts: Vec<usize>,
    pub(crate) issues: Vec<Issue>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(text: &'a str) -> Problems<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Problems {
            text,
            line_starts,
            issues: Vec::new(),
        }
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.issues.push(Issue {
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), PolicyError> {
        if self.issues.is_empty() {
            return Ok(());
        }
        Err(self.into_error())
    }

    pub(crate) fn into_error(mut self) -> PolicyError {
        self.issues.sort_by_key(|i| (i.line, i.column));
        PolicyError {
            issues: self.issues,
        }
    }
}

pub(crate) fn is_identifier(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The closest known value, when it is close enough to be a typo.
pub(crate) fn suggest<'a>(label: &str, known: &'a [String]) -> Option<&'a str> {
    let limit = (label.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(label, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}
