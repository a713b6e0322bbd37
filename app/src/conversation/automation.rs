//! What the conversation flow asks the plugins: the CRM enriches the contact of a new
//! case, and the order system answers "where is my order?" automatically.
//!
//! Neither may hold up intake or lose a message. The CRM is asked inside the step that
//! opens a case, so triage and routing see the answer (a VIP goes to the VIP desk at
//! once); it costs that case at most the plugin's timeout. The order question is answered
//! after the customer's message is committed, off the actor's mailbox, and comes back as
//! an [`AutomationOutcome`] that is planned and written like any other change. Whatever
//! fails stops automation on that case and leaves it with a human, with the reason and
//! what was tried in the event log.

use crate::conversation::ConversationError;
use crate::conversation::lifecycle::{self, Replier, ReplyAuthority};
pub use crate::domain::order::{mask, order_ids};
use crate::domain::{Actor, ConversationKey, Micros, TicketStatus};
use crate::plugins::bindings::v0_1::types::{CustomerProfile, Order, OrderStatus};
use crate::plugins::{ConnectorError, Connectors};
use crate::store::conversations::{ActorState, ContactEnrichment, ConversationChange, NewEvent};
use crate::store::entities::conversation;
use serde_json::{Value, json};

/// The intent the order automation answers.
pub const ORDER_TRACKING: &str = "order_tracking";

/// What the CRM said about a contact.
#[derive(Debug)]
pub enum Enrichment {
    Found(Box<CustomerProfile>),
    /// The CRM works but does not know the customer.
    Unknown,
    Failed(ConnectorError),
}

/// Asks the CRM about the contact.
pub async fn enrich(connectors: &Connectors, wa_id: &str) -> Enrichment {
    match connectors.lookup_customer(wa_id).await {
        Ok(profile) => Enrichment::Found(Box::new(profile)),
        Err(error) if error.is_not_found() => Enrichment::Unknown,
        Err(error) => Enrichment::Failed(error),
    }
}

impl Enrichment {
    /// Whether the CRM says the customer is a VIP.
    pub fn vip(&self) -> bool {
        matches!(self, Enrichment::Found(profile) if profile.vip)
    }

    /// Adds the answer to the change that opens the case: stored on the contact, written
    /// to the case's event log before the triage it informed; a failure takes automation
    /// off the case.
    pub fn attach(self, change: &mut ConversationChange) {
        let event = self.record(change);
        let at = change
            .events
            .iter()
            .position(|e| e.kind == "triaged")
            .unwrap_or(change.events.len());
        change.events.insert(at, event);
    }

    fn record(self, change: &mut ConversationChange) -> NewEvent {
        match self {
            Enrichment::Found(profile) => {
                let profile = profile_json(&profile);
                let event = NewEvent {
                    kind: "contact_enriched",
                    data: json!({
                        "found": true,
                        "vip": profile["vip"],
                        "tier": profile["tier"],
                        "plan": profile["plan"],
                    }),
                    actor: Actor::Automation.label(),
                };
                change.enrichment = Some(ContactEnrichment {
                    profile: Some(profile.to_string()),
                });
                event
            }
            Enrichment::Unknown => {
                change.enrichment = Some(ContactEnrichment { profile: None });
                NewEvent {
                    kind: "contact_enriched",
                    data: json!({ "found": false }),
                    actor: Actor::Automation.label(),
                }
            }
            Enrichment::Failed(error) => {
                let c = &mut change.conversation;
                let stopped = c.review.as_deref() == Some("automation");
                if stopped {
                    c.review = Some("human".into());
                }
                NewEvent {
                    kind: "enrichment_failed",
                    data: json!({
                        "connector": error.connector.label(),
                        "code": error.code(),
                        "reason": error.fallback_reason(),
                        "automation_stopped": stopped,
                    }),
                    actor: Actor::Automation.label(),
                }
            }
        }
    }
}

/// The profile as Parley stores and shows it.
pub fn profile_json(p: &CustomerProfile) -> Value {
    json!({
        "external_id": p.external_id,
        "name": p.name,
        "email": p.email,
        "phone": p.phone,
        "vip": p.vip,
        "tier": p.tier,
        "plan": p.plan,
        "attributes": p.attributes.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "history_summary": p.history_summary,
        "profile_url": p.profile_url,
    })
}

/// Whether the contact should be looked up before its new case is triaged.
pub fn needs_enrichment(state: &ActorState, now: Micros, refresh: Micros) -> bool {
    state.live.is_none() && state.crm_fetched_at.is_none_or(|at| now - at >= refresh)
}

/// A customer's order question, ready to put to the order system.
#[derive(Debug, Clone)]
pub struct OrderQuestion {
    pub conversation_id: i64,
    pub wa_id: String,
    pub text: String,
}

impl OrderQuestion {
    /// The question in a freshly triaged case, when automation may answer it.
    pub fn from_case(
        conversation: &conversation::Model,
        key: &ConversationKey,
        text: Option<&str>,
    ) -> Option<Self> {
        if conversation.review.as_deref() != Some("automation") {
            return None;
        }
        let gist: Value = serde_json::from_str(conversation.triage.as_deref()?).ok()?;
        let asks = gist["intents"]
            .as_array()?
            .iter()
            .any(|i| i["label"] == ORDER_TRACKING);
        asks.then(|| Self {
            conversation_id: conversation.id,
            wa_id: key.wa_id.clone(),
            text: text.unwrap_or_default().to_owned(),
        })
    }
}

/// What the order automation found, to be written by the conversation's actor.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "Result<crate::store::conversations::ChangeApplied, ConversationError>")]
pub struct AutomationOutcome {
    pub conversation_id: i64,
    /// Each lookup made and how it ended, for the agent who takes over.
    pub tried: Vec<String>,
    pub result: Result<AnsweredOrder, String>,
}

/// An order found for the customer and the reply composed from it.
#[derive(Debug, Clone)]
pub struct AnsweredOrder {
    pub masked_id: String,
    pub status: &'static str,
    pub reply: String,
}

/// How many of the sender's own recent orders an order id they quote is looked for in.
pub const OWN_ORDERS_CHECKED: u32 = 50;

/// Asks the order system about the customer's order: by the ids quoted in the message,
/// else the customer's latest order.
///
/// Only the sender's own orders are answered about. An order connector of the 0.1.0
/// world answers `lookup-order` for any id and its order record does not say whose it
/// is, so a quoted id is answered only when it is among the sender's own recent orders
/// (`recent-orders` for the sender's number, the last [`OWN_ORDERS_CHECKED`]); any other
/// id is never looked up, and the case goes to a human when no quoted id is theirs.
pub async fn answer_order_question(
    connectors: &Connectors,
    question: OrderQuestion,
) -> AutomationOutcome {
    let mut tried = Vec::new();
    let mut failure = None;
    let mut found = None;
    let quoted = order_ids(&question.text);
    let own = match connectors
        .recent_orders(&question.wa_id, OWN_ORDERS_CHECKED)
        .await
    {
        Ok(orders) => orders,
        Err(error) if error.is_not_found() => {
            tried.push("customer unknown to the order system".to_owned());
            Vec::new()
        }
        Err(error) => {
            tried.push(format!("recent orders: {}", error.code()));
            failure = Some(error.fallback_reason());
            Vec::new()
        }
    };
    for id in quoted.iter().take_while(|_| failure.is_none()) {
        if !own.iter().any(|order| same_order(&order.id, id)) {
            tried.push(format!(
                "order {}: not among the customer's orders",
                mask(id)
            ));
            continue;
        }
        match connectors.lookup_order(id).await {
            Ok(order) => {
                tried.push(format!("order {} found", mask(id)));
                found = Some(order);
                break;
            }
            Err(error) if error.is_not_found() => {
                tried.push(format!("order {}: not found", mask(id)));
            }
            Err(error) => {
                tried.push(format!("order {}: {}", mask(id), error.code()));
                failure = Some(error.fallback_reason());
                break;
            }
        }
    }
    // Without a quoted id, the customer's latest order is the one they mean; with one, a
    // different order of theirs is not an answer.
    if quoted.is_empty() && failure.is_none() {
        match own.into_iter().next() {
            Some(order) => {
                tried.push("latest order of the customer found".to_owned());
                found = Some(order);
            }
            None => tried.push("no recent orders for the customer".to_owned()),
        }
    }
    let result = match (found, failure) {
        (Some(order), _) => Ok(AnsweredOrder {
            masked_id: mask(&order.id),
            status: status_name(order.status),
            reply: order_reply(&order),
        }),
        (None, Some(reason)) => Err(reason),
        (None, None) => Err("no order of this customer could be identified".to_owned()),
    };
    AutomationOutcome {
        conversation_id: question.conversation_id,
        tried,
        result,
    }
}

/// Whether two order ids name the same order (ids are compared without case and `#`).
fn same_order(a: &str, b: &str) -> bool {
    let clean = |id: &str| id.trim().trim_start_matches('#').to_ascii_uppercase();
    clean(a) == clean(b)
}

/// Plans what an automation outcome changes on the case: the automated reply (the case
/// then waits on the customer), or the hand-over to a human with what was tried. The
/// boundary is checked again here: if a later message took automation off the case, or
/// the window closed meanwhile, nothing is sent.
pub fn plan_outcome(
    state: &ActorState,
    key: &ConversationKey,
    outcome: &AutomationOutcome,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = lifecycle::live_case(state, outcome.conversation_id)?;
    let closed = matches!(
        TicketStatus::parse(&live.status),
        Some(TicketStatus::Resolved | TicketStatus::Closed)
    );
    let refusal = if live.review.as_deref() != Some("automation") {
        Some("a later message requires human review")
    } else if closed {
        Some("the case was resolved meanwhile")
    } else if live
        .service_window_closes_at()
        .is_none_or(|closes| now >= closes)
    {
        Some("outside the 24-hour customer service window")
    } else {
        None
    };
    let automation = Actor::Automation;
    match (&outcome.result, refusal) {
        (Ok(answer), None) => {
            let mut change = lifecycle::plan_reply(
                state,
                key,
                outcome.conversation_id,
                &answer.reply,
                Replier {
                    actor: &automation,
                    agent_id: None,
                    authority: ReplyAuthority::Supervisor,
                },
                now,
            )?;
            change.events.push(NewEvent {
                kind: "automation_replied",
                data: json!({
                    "automation": "order_status",
                    "order": answer.masked_id,
                    "status": answer.status,
                    "tried": outcome.tried,
                }),
                actor: automation.label(),
            });
            let c = &mut change.conversation;
            if let Some(from) = TicketStatus::parse(&c.status)
                && from.can_move_to(TicketStatus::Pending)
            {
                change.events.push(lifecycle::status_changed(
                    &c.status,
                    TicketStatus::Pending,
                    &automation,
                    Some("automation answered; waiting on the customer"),
                ));
                c.status = TicketStatus::Pending.as_str().into();
            }
            Ok(change)
        }
        (result, refusal) => {
            let reason = match (result, refusal) {
                (_, Some(refusal)) => refusal.to_owned(),
                (Err(reason), None) => reason.clone(),
                (Ok(_), None) => String::new(),
            };
            let mut change = lifecycle::unchanged(state, live.clone(), now);
            change.conversation.review = Some("human".into());
            change.events.push(NewEvent {
                kind: "automation_failed",
                data: json!({
                    "automation": "order_status",
                    "reason": reason,
                    "tried": outcome.tried,
                }),
                actor: automation.label(),
            });
            Ok(change)
        }
    }
}

fn status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Processing => "processing",
        OrderStatus::Shipped => "shipped",
        OrderStatus::OutForDelivery => "out_for_delivery",
        OrderStatus::Delivered => "delivered",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Returned => "returned",
        OrderStatus::Unknown => "unknown",
    }
}

/// The approved reply pattern for an order status, from the order system's answer.
pub fn order_reply(order: &Order) -> String {
    let id = mask(&order.id);
    let mut reply = match order.status {
        OrderStatus::Pending => {
            format!("Your order {id} has been received and is awaiting processing.")
        }
        OrderStatus::Processing => format!("Your order {id} is being prepared for shipping."),
        OrderStatus::Shipped => format!("Your order {id} has shipped."),
        OrderStatus::OutForDelivery => format!("Your order {id} is out for delivery today."),
        OrderStatus::Delivered => format!("Your order {id} was delivered."),
        OrderStatus::Cancelled => format!("Your order {id} was cancelled."),
        OrderStatus::Returned => format!("Your order {id} was returned."),
        OrderStatus::Unknown => format!(
            "Your order {id} has the status \"{}\".",
            order.status_text.as_deref().unwrap_or("unknown")
        ),
    };
    let open = !matches!(
        order.status,
        OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Returned
    );
    if open && let Some(eta) = &order.eta {
        reply.push_str(&format!(" Estimated delivery: {}.", eta_date(eta)));
    }
    match (&order.carrier, &order.tracking_number) {
        (Some(carrier), Some(number)) => {
            reply.push_str(&format!(" Tracking: {carrier} {number}."));
        }
        (None, Some(number)) => reply.push_str(&format!(" Tracking number: {number}.")),
        _ => {}
    }
    if let Some(url) = &order.tracking_url {
        reply.push_str(&format!(" Follow it here: {url}"));
    }
    reply.push_str(" Reply here if you need anything else.");
    reply
}

/// The date of an RFC 3339 date or date-time, as it came otherwise.
fn eta_date(eta: &str) -> &str {
    match eta.get(..10) {
        Some(date) if eta.len() > 10 && eta.as_bytes().get(10) == Some(&b'T') => date,
        _ => eta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SECOND_MICROS;

    fn order(status: OrderStatus) -> Order {
        Order {
            id: "A-10023".into(),
            status,
            status_text: Some("in_transit".into()),
            placed_at: None,
            eta: Some("2026-12-03T18:00:00Z".into()),
            carrier: Some("DHL".into()),
            tracking_number: Some("JD0140".into()),
            tracking_url: None,
            total: None,
            items: Vec::new(),
        }
    }

    #[test]
    fn order_ids_are_words_with_four_digits_phone_numbers_last() {
        assert_eq!(
            order_ids("where tf is my order #A-10023?? call me 4915112345678"),
            vec!["A-10023", "4915112345678"]
        );
        assert_eq!(order_ids("mera order 4821XYZ kab aayega"), vec!["4821XYZ"]);
        assert!(order_ids("where is my order??").is_empty());
        assert!(order_ids("order 123 of 2").is_empty());
        assert_eq!(order_ids("A-1001 A-1001 B-2002 C-3003 D-4004").len(), 3);
    }

    #[test]
    fn only_a_new_case_of_a_contact_not_looked_up_lately_asks_the_crm() {
        let day = 24 * 3600 * SECOND_MICROS;
        let mut state = ActorState::default();
        assert!(needs_enrichment(&state, 10 * day, day));
        state.crm_fetched_at = Some(9 * day + 1);
        assert!(!needs_enrichment(&state, 10 * day, day));
        state.crm_fetched_at = Some(9 * day);
        assert!(needs_enrichment(&state, 10 * day, day));
        let key = ConversationKey {
            channel_id: "meta".into(),
            phone_number_id: "1".into(),
            wa_id: "4915112345678".into(),
        };
        state.live = Some(lifecycle::new_conversation(&key, 1, 0));
        assert!(!needs_enrichment(&state, 10 * day, day));
    }

    #[test]
    fn identifiers_are_masked_to_their_last_four() {
        assert_eq!(mask("A-10023"), "****0023");
        assert_eq!(mask("12"), "****12");
    }

    #[test]
    fn the_reply_names_status_eta_and_tracking_from_the_order_system() {
        let reply = order_reply(&order(OrderStatus::Shipped));
        assert_eq!(
            reply,
            "Your order ****0023 has shipped. Estimated delivery: 2026-12-03. \
             Tracking: DHL JD0140. Reply here if you need anything else."
        );
        let delivered = order_reply(&order(OrderStatus::Delivered));
        assert!(!delivered.contains("Estimated"), "{delivered}");
        let unknown = order_reply(&order(OrderStatus::Unknown));
        assert!(unknown.contains("\"in_transit\""), "{unknown}");
    }
}
