//! The decision for one message: which rules matched and what each changed.

use super::*;

// ---------------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------------

/// What one matching rule changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Contribution {
    /// Set the owner.
    Owner {
        team: String,
    },
    /// Asked for an owner, too late: `owner_rule` had already made `owner` the owner.
    OwnerIgnored {
        team: String,
        owner: String,
        owner_rule: String,
    },
    Watchers {
        teams: Vec<String>,
    },
    /// Asked for at least this priority.
    Priority {
        asked: Priority,
    },
    /// Set urgency to at least `at_least`.
    Urgency {
        at_least: String,
        from: String,
        to: String,
    },
    /// Raised urgency by `steps` (capped at the top level).
    RaiseUrgency {
        steps: u32,
        from: String,
        to: String,
    },
    Review {
        review: Review,
    },
    Skills {
        skills: Vec<String>,
    },
    Suppress {
        reason: String,
    },
    /// Ended the evaluation.
    Stop,
}

impl fmt::Display for Contribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contribution::Owner { team } => write!(f, "owner {team}"),
            Contribution::OwnerIgnored {
                team,
                owner,
                owner_rule,
            } => write!(
                f,
                "owner {team} ignored (rule \"{owner_rule}\" already made {owner} the owner)"
            ),
            Contribution::Watchers { teams } => write!(f, "watchers {}", teams.join(", ")),
            Contribution::Priority { asked } => write!(f, "priority at least {asked}"),
            Contribution::Urgency { at_least, from, to } => {
                write!(f, "urgency at least {at_least} ({from} -> {to})")
            }
            Contribution::RaiseUrgency { steps, from, to } => {
                write!(f, "urgency raised by {steps} ({from} -> {to})")
            }
            Contribution::Review {
                review: Review::Human,
            } => f.write_str("human review"),
            Contribution::Review {
                review: Review::Automation,
            } => f.write_str("automation allowed"),
            Contribution::Skills { skills } => write!(f, "needs skills {}", skills.join(", ")),
            Contribution::Suppress { reason } => write!(f, "suppress ({reason})"),
            Contribution::Stop => f.write_str("stop (later rules not evaluated)"),
        }
    }
}

/// A rule that matched, and why, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedRule {
    pub name: String,
    pub line: usize,
    /// The tags that satisfied its conditions ("intent billing_complaint (0.91)", ...).
    pub matched_on: Vec<String>,
    pub contributed: Vec<Contribution>,
}

/// The routing decision for one message. Serialisable for the event log and the explain
/// API: [`Decision::reasons`] says the same as the structured fields, in plain English.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The team that owns the case.
    pub owner: String,
    /// The rule that set the owner; `None` when it is a fallback team.
    pub owner_rule: Option<String>,
    /// Teams that see the case without owning it (never includes the owner).
    pub watchers: Vec<String>,
    pub priority: Priority,
    /// Urgency after the rules (a value of the taxonomy's urgency list).
    pub urgency: String,
    pub review: Review,
    pub review_reason: ReviewReason,
    /// Skills the assigned agent needs.
    pub skills: Vec<String>,
    /// The message is recorded but opens no case, for this reason.
    pub suppress: Option<String>,
    /// The rule whose `stop` ended the evaluation.
    pub stopped_by: Option<String>,
    /// Every matching rule, in evaluation order.
    pub matched: Vec<MatchedRule>,
    pub reasons: Vec<String>,
}

impl RoutingPolicy {
    /// Applies the rules to one message's tags. See the module documentation.
    pub fn decide(&self, tags: &TagSet) -> Decision {
        let mut reasons = Vec::with_capacity(16);
        let t = self.resolve(tags, &mut reasons);
        let top = self.urgencies.names.len().saturating_sub(1) as u32;
        let classified_urgency = t.urgency;
        let mut urgency = t.urgency;
        let mut owner: Option<&Rule> = None;
        let mut asked_priority: Option<(Priority, &Rule)> = None;
        let mut human_by: Option<&Rule> = None;
        let mut automation_by: Option<&Rule> = None;
        let mut suppress_by: Option<&Rule> = None;
        let mut stopped_by: Option<&Rule> = None;
        let mut urgency_steps: Vec<String> = Vec::new();
        let mut watchers: Vec<String> = Vec::new();
        let mut skills: Vec<String> = Vec::new();
        let mut matched: Vec<MatchedRule> = Vec::new();

        for rule in &self.rules {
            if !rule.when.matches(&t) {
                continue;
            }
            let then = &rule.then;
            let mut contributed = Vec::new();
            if let Some(team) = &then.owner {
                match owner {
                    None => {
                        owner = Some(rule);
                        contributed.push(Contribution::Owner { team: team.clone() });
                    }
                    Some(first) => contributed.push(Contribution::OwnerIgnored {
                        team: team.clone(),
                        owner: first.then.owner.clone().unwrap_or_default(),
                        owner_rule: first.name.clone(),
                    }),
                }
            }
            if !then.watchers.is_empty() {
                for w in &then.watchers {
                    if !watchers.contains(w) {
                        watchers.push(w.clone());
                    }
                }
                contributed.push(Contribution::Watchers {
                    teams: then.watchers.clone(),
                });
            }
            if let Some(asked) = then.priority {
                if asked_priority.is_none_or(|(p, _)| asked > p) {
                    asked_priority = Some((asked, rule));
                }
                contributed.push(Contribution::Priority { asked });
            }
            if let Some(level) = then.urgency {
                let from = urgency;
                urgency = urgency.max(level);
                if urgency != from {
                    urgency_steps.push(format!(
                        "{} -> {} by rule \"{}\" (at least {})",
                        self.urgencies.name(from),
                        self.urgencies.name(urgency),
                        rule.name,
                        self.urgencies.name(level)
                    ));
                }
                contributed.push(Contribution::Urgency {
                    at_least: self.urgencies.name(level).to_string(),
                    from: self.urgencies.name(from).to_string(),
                    to: self.urgencies.name(urgency).to_string(),
                });
            }
            if then.raise_urgency > 0 {
                let from = urgency;
                urgency = urgency.saturating_add(then.raise_urgency).min(top);
                if urgency != from {
                    urgency_steps.push(format!(
                        "{} -> {} by rule \"{}\" (raised by {})",
                        self.urgencies.name(from),
                        self.urgencies.name(urgency),
                        rule.name,
                        then.raise_urgency
                    ));
                }
                contributed.push(Contribution::RaiseUrgency {
                    steps: then.raise_urgency,
                    from: self.urgencies.name(from).to_string(),
                    to: self.urgencies.name(urgency).to_string(),
                });
            }
            if let Some(review) = then.review {
                let slot = match review {
                    Review::Human => &mut human_by,
                    Review::Automation => &mut automation_by,
                };
                slot.get_or_insert(rule);
                contributed.push(Contribution::Review { review });
            }
            if !then.skills.is_empty() {
                for s in &then.skills {
                    if !skills.contains(s) {
                        skills.push(s.clone());
                    }
                }
                contributed.push(Contribution::Skills {
                    skills: then.skills.clone(),
                });
            }
            if let Some(reason) = &then.suppress {
                suppress_by.get_or_insert(rule);
                contributed.push(Contribution::Suppress {
                    reason: reason.clone(),
                });
            }
            if then.stop {
                stopped_by = Some(rule);
                contributed.push(Contribution::Stop);
            }
            matched.push(MatchedRule {
                name: rule.name.clone(),
                line: rule.line,
                matched_on: rule.when.describe(&t, self),
                contributed,
            });
            if then.stop {
                break;
            }
        }

        // Explanations: one line per matched rule, then the outcome field by field.
        if matched.is_empty() {
            reasons.push("no rule matched".to_string());
        }
        for m in &matched {
            let mut line = String::with_capacity(160);
            let _ = write!(line, "rule \"{}\" (line {}) matched on ", m.name, m.line);
            for (i, on) in m.matched_on.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                line.push_str(on);
            }
            line.push_str(": ");
            for (i, c) in m.contributed.iter().enumerate() {
                if i > 0 {
                    line.push_str("; ");
                }
                let _ = write!(line, "{c}");
            }
            reasons.push(line);
        }

        let (review, review_reason) = if t.low_confidence {
            reasons.push("human review: the classifier's confidence is low".to_string());
            (Review::Human, ReviewReason::LowConfidence)
        } else if let Some(rule) = human_by {
            reasons.push(format!("human review: required by rule \"{}\"", rule.name));
            (Review::Human, ReviewReason::Rule(rule.name.clone()))
        } else if let Some(rule) = automation_by {
            reasons.push(format!(
                "automation may answer: allowed by rule \"{}\"",
                rule.name
            ));
            (Review::Automation, ReviewReason::Rule(rule.name.clone()))
        } else {
            reasons.push("human review: no matching rule allows automation".to_string());
            (Review::Human, ReviewReason::Default)
        };

        let (owner, owner_rule) = match owner.and_then(|r| r.then.owner.as_ref().map(|o| (o, r))) {
            Some((team, rule)) => {
                reasons.push(format!("owner {team}: set by rule \"{}\"", rule.name));
                (team.clone(), Some(rule.name.clone()))
            }
            None if t.low_confidence => {
                let team = &self.settings.review_team;
                reasons.push(format!(
                    "owner {team}: the review team takes low-confidence cases no rule assigned"
                ));
                (team.clone(), None)
            }
            None => {
                let team = &self.settings.default_team;
                reasons.push(format!(
                    "owner {team}: the default team (no rule set an owner)"
                ));
                (team.clone(), None)
            }
        };
        watchers.retain(|w| *w != owner);
        if !watchers.is_empty() {
            reasons.push(format!("watched by {}", watchers.join(", ")));
        }

        let urgency_name = self.urgencies.name(urgency).to_string();
        if urgency_steps.is_empty() {
            reasons.push(format!("urgency {urgency_name} as classified"));
        } else {
            reasons.push(format!(
                "urgency {} raised to {urgency_name}: {}",
                self.urgencies.name(classified_urgency),
                urgency_steps.join(", ")
            ));
        }
        let from_urgency = self
            .urgency_priority
            .get(urgency as usize)
            .copied()
            .unwrap_or(Priority::Medium);
        let priority = match asked_priority {
            Some((asked, rule)) if asked > from_urgency => {
                reasons.push(format!(
                    "priority {asked}: asked by rule \"{}\" (urgency {urgency_name} alone gives {from_urgency})",
                    rule.name
                ));
                asked
            }
            _ => {
                reasons.push(format!(
                    "priority {from_urgency}: from urgency {urgency_name}"
                ));
                from_urgency
            }
        };
        if !skills.is_empty() {
            reasons.push(format!("needs skills {}", skills.join(", ")));
        }
        let suppress = suppress_by.and_then(|rule| {
            let reason = rule.then.suppress.clone()?;
            reasons.push(format!(
                "suppressed (recorded, no case opened): {reason} (rule \"{}\")",
                rule.name
            ));
            Some(reason)
        });
        if let Some(rule) = stopped_by {
            reasons.push(format!(
                "rule \"{}\" stopped the evaluation: later rules were not evaluated",
                rule.name
            ));
        }

        Decision {
            owner,
            owner_rule,
            watchers,
            priority,
            urgency: urgency_name,
            review,
            review_reason,
            skills,
            suppress,
            stopped_by: stopped_by.map(|r| r.name.clone()),
            matched,
            reasons,
        }
    }

    /// The message's tags as ids; values outside the taxonomy are dropped with a reason.
    fn resolve(&self, tags: &TagSet, reasons: &mut Vec<String>) -> Resolved {
        let mut scored = |vocab: &Vocab, list: &[Scored]| -> Vec<(u32, f32)> {
            let mut out = Vec::with_capacity(list.len());
            for s in list {
                match vocab.id(&s.label) {
                    Some(id) => out.push((id, s.confidence)),
                    None => reasons.push(format!(
                        "{} \"{}\" is not in the taxonomy; ignored",
                        vocab.family, s.label
                    )),
                }
            }
            out
        };
        let intents = scored(&self.intents, &tags.intents);
        let risks = scored(&self.risks, &tags.risks);
        let mut plain = |vocab: &Vocab, list: &[String]| -> Vec<u32> {
            let mut out = Vec::with_capacity(list.len());
            for label in list {
                match vocab.id(label) {
                    Some(id) => out.push(id),
                    None => reasons.push(format!(
                        "{} \"{label}\" is not in the taxonomy; ignored",
                        vocab.family
                    )),
                }
            }
            out
        };
        let tones = plain(&self.tones, &tags.tones);
        let context = plain(&self.contexts, &tags.context);
        let urgency = match self.urgencies.id(&tags.urgency) {
            Some(id) => id,
            None => {
                reasons.push(format!(
                    "urgency \"{}\" is not in the taxonomy; treated as {}",
                    tags.urgency,
                    self.urgencies.name(0)
                ));
                0
            }
        };
        let language = self.languages.id(&tags.language);
        Resolved {
            intents,
            risks,
            urgency,
            language,
            tones,
            context,
            low_confidence: tags.low_confidence,
        }
    }
}
