//! What a customer message does, noise filter and triage included: the plan a
//! conversation actor persists for it.
//!
//! In order: a blocked contact's message is recorded and nothing else; an acknowledgement
//! on a resolved case closes the loop; a message that would open a case is set aside when
//! it is spam, part of a near-duplicate wave from many numbers, or over the contact's rate
//! limit; a message on an open case over the rate limit is kept on the case without being
//! triaged again. Everything else is classified, given its context (VIP, repeat contact)
//! and decided on by the routing policy, and the decision is applied to the case.

use super::Plan;
use super::lifecycle::{self, plan_acknowledgement, plan_customer_message};
use crate::domain::consent::KeywordRequest;
use crate::domain::inbound::{InboundMessage, MessageKind};
use crate::domain::{ConversationKey, Micros, SECOND_MICROS, TicketStatus};
use crate::policy::Policies;
use crate::policy::routing::AckAfterResolution;
use crate::routing::Routing;
use crate::routing::apply::{apply_triage, needs_of};
use crate::routing::noise::{ClusterParams, ClusterVerdict, SuppressReason};
use crate::store::conversations::NewEvent;
use crate::store::conversations::{ActorState, ConversationChange};
use crate::store::noise::{ClusterUpsert, NewSuppression, RecordSuppression};
use crate::telemetry::metrics;
use crate::triage::noise::{is_acknowledgement, spam_score};

/// Everything the plan for one customer message depends on.
pub struct Arrival<'a> {
    pub state: &'a ActorState,
    pub key: &'a ConversationKey,
    pub message: &'a InboundMessage,
    pub received_at: Micros,
    pub now: Micros,
    pub reopen_window: Micros,
    /// The contact is over its rate limit with this message.
    pub rate_limited: bool,
    /// The message is a STOP/START keyword (already in the consent ledger).
    pub keyword: Option<(KeywordRequest, &'static str)>,
    pub routing: &'a Routing,
    pub engine: &'a Policies,
}

impl Arrival<'_> {
    fn suppression(&self, reason: SuppressReason, detail: Option<String>) -> NewSuppression {
        NewSuppression::new(
            &self.key.channel_id,
            &self.key.wa_id,
            Some(&self.message.provider_message_id),
            reason.as_str(),
            detail,
            self.message.text.as_deref(),
        )
    }

    fn suppress(&self, reason: SuppressReason, detail: Option<String>) -> Plan {
        Plan::Suppress {
            record: RecordSuppression {
                suppression: self.suppression(reason, detail),
                cluster: None,
                now: self.now,
            },
        }
    }

    /// The plain lifecycle change for this message, without triage.
    fn lifecycle_change(&self) -> ConversationChange {
        let (arrival, change) = plan_customer_message(
            self.state,
            self.key,
            self.message,
            self.received_at,
            self.now,
            self.reopen_window,
        );
        if arrival == lifecycle::Arrival::Reopen {
            metrics().reopens.inc();
        }
        change
    }

    /// Kept on the open case, recorded as suppressed, not triaged.
    fn keep_untriaged(&self, reason: SuppressReason, detail: Option<String>) -> Plan {
        let mut change = self.lifecycle_change();
        change.suppression = Some(self.suppression(reason, detail));
        change.into()
    }
}

/// Words from which a copied text counts as a chain message even without a scam signal.
const CHAIN_MESSAGE_WORDS: usize = 20;

/// Whether a near-duplicate sent from many numbers is a wave to suppress: it carries a scam
/// signal (a link, bait, a request for codes) or is a long copied text. Short, plain texts
/// ("where is my order 123", "the app is down") are what many customers write at once
/// for real, often about the same outage: they always reach people.
fn looks_like_a_wave(text: &str) -> bool {
    !spam_score(text).reasons.is_empty() || text.split_whitespace().count() >= CHAIN_MESSAGE_WORDS
}

/// Kinds whose text says something worth triaging (a reaction's emoji does not).
fn triageable(message: &InboundMessage) -> bool {
    !matches!(
        message.kind,
        MessageKind::Reaction | MessageKind::Unsupported
    )
}

pub fn plan_arrival(a: Arrival<'_>) -> Plan {
    // An answer to the satisfaction survey of a resolved case is recorded there; it is
    // not a new support request.
    if let Some(change) = super::csat::plan_answer(a.state, a.message, a.received_at, a.now) {
        return change.into();
    }
    if !a.routing.enabled {
        return a.lifecycle_change().into();
    }
    if a.routing.noise.is_blocked(&a.key.wa_id) {
        return a.suppress(SuppressReason::BlockedContact, None);
    }
    let noise = a.engine.routing.noise();
    let text = a.message.text.as_deref().unwrap_or_default();
    let live_status = a
        .state
        .live
        .as_ref()
        .and_then(|c| TicketStatus::parse(&c.status));
    let resolved = live_status == Some(TicketStatus::Resolved);
    let open_case = matches!(
        live_status,
        Some(s) if !matches!(s, TicketStatus::Resolved | TicketStatus::Closed)
    );
    if let Some((request, keyword)) = a.keyword {
        // The consent ledger has it (written before this plan); on an open case the
        // message stays visible to its agent, otherwise it opens nothing.
        let detail = Some(format!(
            "{keyword} ({})",
            if request.granted() {
                "opt-in"
            } else {
                "opt-out"
            }
        ));
        return if open_case {
            let mut change = a.lifecycle_change();
            change.suppression = Some(a.suppression(SuppressReason::ConsentKeyword, detail));
            change.events.push(NewEvent {
                kind: "consent_changed",
                data: serde_json::json!({
                    "granted": request.granted(),
                    "purposes": request.purposes(),
                    "keyword": keyword,
                }),
                actor: crate::domain::Actor::Customer.label(),
            });
            change.into()
        } else {
            a.suppress(SuppressReason::ConsentKeyword, detail)
        };
    }
    if resolved && is_acknowledgement(text) {
        if noise.ack_after_resolution == AckAfterResolution::Close
            && let Some(mut change) = plan_acknowledgement(a.state, a.message, a.received_at, a.now)
        {
            change.suppression = Some(a.suppression(SuppressReason::AckAfterResolution, None));
            return change.into();
        }
        return a.suppress(SuppressReason::AckAfterResolution, None);
    }
    if !open_case {
        // Would open (or reopen) a case: the noise checks guard the human queues.
        if a.rate_limited {
            return a.suppress(SuppressReason::RateLimited, None);
        }
        if noise.suppress_spam && !text.is_empty() {
            let spam = spam_score(text);
            if spam.is_spam() {
                let detail = serde_json::json!({ "score": spam.score, "reasons": spam.reasons });
                return a.suppress(SuppressReason::Spam, Some(detail.to_string()));
            }
        }
        let params = ClusterParams {
            min_contacts: noise.cluster_min_contacts,
            window: i64::try_from(noise.cluster_window_secs)
                .unwrap_or(i64::MAX / SECOND_MICROS)
                .saturating_mul(SECOND_MICROS),
            min_words: noise.cluster_min_words as usize,
        };
        if let ClusterVerdict::Cluster {
            contacts,
            messages,
            first_seen,
            sample,
            fingerprint,
        } = a.routing.noise.observe(text, &a.key.wa_id, a.now, params)
            && looks_like_a_wave(text)
        {
            return Plan::Suppress {
                record: RecordSuppression {
                    suppression: a.suppression(
                        SuppressReason::DuplicateCluster,
                        Some(format!("{contacts} numbers sent this text")),
                    ),
                    cluster: Some(ClusterUpsert {
                        fingerprint: fingerprint.0,
                        sample,
                        reason: SuppressReason::DuplicateCluster.as_str(),
                        contacts,
                        messages,
                        first_seen_at: first_seen,
                    }),
                    now: a.now,
                },
            };
        }
    } else if a.rate_limited {
        return a.keep_untriaged(SuppressReason::RateLimited, None);
    }
    if !triageable(a.message) {
        return a.lifecycle_change().into();
    }

    let classification = a.engine.classify(text);
    let context = context_of(&a, &classification);
    let triaged = a.engine.decide(classification, context);
    if let Some(reason) = &triaged.decision.suppress {
        return if open_case {
            a.keep_untriaged(SuppressReason::Rule, Some(reason.clone()))
        } else {
            a.suppress(SuppressReason::Rule, Some(reason.clone()))
        };
    }
    let needs = needs_of(&triaged, a.state.contact_vip);
    let mut change = a.lifecycle_change();
    apply_triage(&mut change, &triaged, a.engine, &needs);
    metrics()
        .triaged
        .with_label_values(&[triaged.decision.review.as_str()])
        .inc();
    Plan::Change {
        change: Box::new(change),
        needs: Some(needs),
    }
}

/// Facts about the customer the text alone cannot give: VIP (from the CRM or an admin)
/// and repeat contact (they wrote about the same thing recently).
fn context_of(a: &Arrival<'_>, classification: &crate::triage::Classification) -> Vec<String> {
    let mut context = Vec::new();
    if a.state.contact_vip {
        context.push("vip_customer".to_owned());
    }
    let window = i64::try_from(a.engine.routing.settings().repeat_contact_window_secs)
        .unwrap_or(i64::MAX / SECOND_MICROS)
        .saturating_mul(SECOND_MICROS);
    let repeat = classification.intents.iter().any(|intent| {
        intent.label != "greeting_or_thanks"
            && a.state
                .recent_intents
                .iter()
                .any(|(label, at)| *label == intent.label && a.now.saturating_sub(*at) <= window)
    });
    if repeat {
        context.push("repeat_contact".to_owned());
    }
    context
}
