//! One actor step: load the case, plan the change, pass the outbound gate, persist,
//! then tell the router, the SLA clock and subscribers.

use super::{ConversationActor, Plan, SlaActors, approval, automation};
use crate::actors::conversation::{ConversationError, Stepped};
use crate::domain::consent::{KeywordRequest, Purpose};
use crate::domain::outbound::Origin;
use crate::domain::{Actor as Who, ConversationKey, Micros, TicketStatus};
use crate::policy::approvals as gate;
use crate::routing::router::CaseUpdated;
use crate::store::consent::{ConsentContact, RecordConsent};
use crate::store::conversations::{ActorState, ChangeApplied, ConversationChange};
use crate::store::entities::conversation;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use actix::prelude::*;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tracing::Instrument;

impl ConversationActor {
    /// Runs one step: load state if needed, plan the change, persist it, publish its
    /// events and tell the router. The actor's mailbox waits until the step is done
    /// (messages stay in order). A panic anywhere in the step restarts the actor instead
    /// of killing its thread.
    pub(super) fn step_plan<F>(
        &mut self,
        span: tracing::Span,
        committed: Option<std::time::Instant>,
        connect: Connect,
        plan: F,
    ) -> ResponseActFuture<Self, Result<Stepped, ConversationError>>
    where
        F: FnOnce(&ActorState, Micros) -> Result<Plan, ConversationError> + Send + 'static,
    {
        self.last_activity = self.deps.clock.now();
        let deps = self.deps.clone();
        // Fenced on a cluster node: each write commits only while this node owns the case.
        let store = self.store.clone();
        let key = self.key.clone();
        let cached = self.state.clone();
        let work = async move {
            let mut state = match cached {
                Some(state) => state,
                None => store.load_actor_state(&key).await?,
            };
            let mut now = deps.clock.now();
            if let Some((request, keyword, message_ref)) = connect.consent {
                record_keyword(&store, &key, (request, keyword), message_ref, now).await?;
                state.consent = None;
            }
            if let Some(purpose) = connect.sends
                && !consent_for(&store, &mut state, purpose).await?
            {
                return Err(ConversationError::ConsentWithdrawn {
                    purpose: purpose.as_str().to_owned(),
                });
            }
            let enrichment =
                if connect.crm && automation::needs_enrichment(&state, now, deps.crm_refresh) {
                    let enrichment = automation::enrich(&deps.connectors, &key.wa_id).await;
                    state.contact_vip |= enrichment.vip();
                    now = deps.clock.now();
                    Some(enrichment)
                } else {
                    None
                };
            match plan(&state, now)? {
                Plan::Suppress { record } => {
                    let reason = record.suppression.reason;
                    let recorded = store.write(record).await?;
                    if !recorded.duplicate {
                        metrics()
                            .noise_suppressed
                            .with_label_values(&[reason])
                            .inc();
                    }
                    Ok::<_, ConversationError>((
                        state,
                        Stepped::Suppressed { reason, recorded },
                        None,
                    ))
                }
                Plan::Change { mut change, needs } => {
                    let engine = deps.routing.engine.current();
                    if change.outbox.is_some() {
                        pass_gate(&store, &engine, &mut state, &mut change, now).await?;
                    }
                    if let Some(enrichment) = enrichment {
                        enrichment.attach(&mut change);
                    }
                    if deps.sla.is_some() {
                        super::timers::track(
                            &mut change,
                            &engine,
                            &deps.timers,
                            state.contact_vip,
                            now,
                        );
                    }
                    let before = state.live.as_ref().map(|c| (c.id, c.sla_due_at));
                    let enriched = change.enrichment.is_some();
                    let suppressed = change.suppression.as_ref().map(|s| s.reason);
                    let triaged = needs.is_some();
                    let queues_send = change.outbox.as_ref().is_some_and(|o| o.held.is_none())
                        || change
                            .decision
                            .as_ref()
                            .is_some_and(|d| d.status == approval::APPROVED);
                    let decided = change.decision.as_ref().map(|d| d.held_id);
                    let applied = match store.apply_change(*change).await {
                        Err(StoreError::Db(sea_orm::DbErr::Custom(reason)))
                            if reason == crate::store::conversations::HELD_ALREADY_DECIDED =>
                        {
                            return Err(ConversationError::AlreadyDecided {
                                held_id: decided.unwrap_or_default(),
                                status: "decided by someone else meanwhile".into(),
                            });
                        }
                        other => other?,
                    };
                    if !applied.duplicate {
                        if let Some(committed) = committed {
                            metrics()
                                .ingest_apply_lag_seconds
                                .observe(committed.elapsed().as_secs_f64());
                            metrics().messages.with_label_values(&["inbound"]).inc();
                        }
                        if let Some(reason) = suppressed {
                            metrics()
                                .noise_suppressed
                                .with_label_values(&[reason])
                                .inc();
                        }
                        if let Some(sla) = &deps.sla {
                            follow_sla(sla, &key, &applied, before, triaged, &engine);
                        }
                        deps.routing.router.do_send(CaseUpdated {
                            key: key.clone(),
                            conversation: applied.conversation.clone(),
                            needs,
                        });
                    }
                    deps.events.publish(applied.events.iter().cloned());
                    if queues_send {
                        deps.outbox_wakeup.notify_one();
                    }
                    let mut next = state;
                    if !applied.duplicate {
                        next.contact_id = Some(applied.contact_id);
                        next.live = (applied.conversation.status != TicketStatus::Closed.as_str())
                            .then(|| applied.conversation.clone());
                        if triaged {
                            remember_intents(&mut next, &applied.conversation, now);
                        }
                        if enriched {
                            next.crm_fetched_at = Some(now);
                        }
                    }
                    let question = (connect.orders && triaged && !applied.duplicate)
                        .then(|| {
                            automation::OrderQuestion::from_case(
                                &applied.conversation,
                                &key,
                                applied.message.as_ref().and_then(|m| m.text.as_deref()),
                            )
                        })
                        .flatten();
                    Ok((next, Stepped::Applied(Box::new(applied)), question))
                }
            }
        };
        let guarded = AssertUnwindSafe(work.instrument(span)).catch_unwind();
        Box::pin(guarded.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(Ok((next, stepped, question))) => {
                act.state = Some(next);
                if let Some(question) = question {
                    act.ask_order_system(question, ctx);
                }
                Ok(stepped)
            }
            Ok(Err(ConversationError::NotOwner)) => {
                // Another node owns the case now: this actor's copy may be stale and none
                // of its writes can commit. It stops; the request goes to the owner.
                tracing::warn!(channel = %act.key.channel_id, "A conversation actor lost its shard; stopping it.");
                act.passivate_now();
                ctx.stop();
                Err(ConversationError::NotOwner)
            }
            Ok(Err(error)) => {
                // After a store failure the store may hold something newer than our copy:
                // reload next time. A refused request changed nothing.
                if matches!(error, ConversationError::Store(_)) {
                    act.state = None;
                }
                Err(error)
            }
            Err(_) => {
                tracing::error!(channel = %act.key.channel_id, "Conversation actor panicked; restarting it.");
                ctx.stop();
                Err(ConversationError::Panicked)
            }
        }))
    }

    /// A step that changes the case (every request but a customer message), after the
    /// checks `connect` asks for (a send's consent).
    pub(super) fn step<F>(
        &mut self,
        span: tracing::Span,
        connect: Connect,
        plan: F,
    ) -> AtomicResponse<Self, Result<ChangeApplied, ConversationError>>
    where
        F: FnOnce(&ActorState, Micros) -> Result<ConversationChange, ConversationError>
            + Send
            + 'static,
    {
        let stepped = self.step_plan(span, None, connect, move |state, now| {
            plan(state, now).map(Plan::from)
        });
        AtomicResponse::new(Box::pin(
            stepped.map(|result, _, _| result.and_then(Stepped::into_change)),
        ))
    }
}

/// What a customer message's step does besides planning the change: ask plugins, record
/// a consent keyword.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Look the contact up in the CRM before triaging a new case.
    pub(super) crm: bool,
    /// Put an order question that automation may answer to the order system.
    pub(super) orders: bool,
    /// A STOP/START keyword to record in the consent ledger first, with the message's
    /// `channel:provider id`.
    pub(super) consent: Option<(KeywordRequest, &'static str, String)>,
    /// The step sends a message for this purpose: the contact's consent is checked first.
    pub(super) sends: Option<Purpose>,
}

/// After a committed change: schedule the case's next SLA alarm (when it moved), count
/// the alarms recorded, and hand escalation triggers to the escalation actor.
fn follow_sla(
    sla: &SlaActors,
    key: &ConversationKey,
    applied: &ChangeApplied,
    before: Option<(i64, Option<Micros>)>,
    triaged: bool,
    engine: &crate::policy::Policies,
) {
    use crate::sla::escalation::{EscalationTriggered, Trigger, triage_triggers};
    let case = &applied.conversation;
    if let Some((previous, _)) = before.filter(|(id, _)| *id != case.id) {
        sla.clock.do_send(crate::sla::deadlines::Schedule {
            conversation_id: previous,
            due: None,
        });
    }
    if before != Some((case.id, case.sla_due_at)) {
        sla.clock.do_send(crate::sla::deadlines::Schedule {
            conversation_id: case.id,
            due: case.sla_due_at,
        });
    }
    let mut triggers = Vec::new();
    for event in &applied.events {
        let counted = matches!(
            event.kind.as_str(),
            "escalated" | "status_changed" | "csat_answered"
        ) || event.kind.starts_with("sla_");
        if !counted {
            continue;
        }
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        if event.kind == "escalated" {
            let trigger = data["trigger"].as_str().unwrap_or_default();
            metrics()
                .escalations
                .with_label_values(&[
                    trigger.split(':').next().unwrap_or_default(),
                    &data["to_level"].to_string(),
                ])
                .inc();
        }
        if event.kind == "status_changed" && data["auto"] == true {
            metrics()
                .auto_closures
                .with_label_values(&[data["to"].as_str().unwrap_or_default()])
                .inc();
        }
        if event.kind == "csat_answered" {
            metrics()
                .csat_answers
                .with_label_values(&[&data["score"].to_string()])
                .inc();
        }
        let Some(alarm) = event.kind.strip_prefix("sla_") else {
            continue;
        };
        let target = data["target"].as_str().unwrap_or_default();
        metrics()
            .sla_alarms
            .with_label_values(&[target, alarm])
            .inc();
        if event.kind == crate::sla::ledger::AlarmKind::Escalate.event_kind() {
            triggers.push(match target {
                "first_response" => Trigger::NoFirstResponse,
                "handover" => Trigger::NoAnswer,
                "next_response" => Trigger::SlaBreach {
                    target: "next_response",
                },
                _ => Trigger::SlaBreach {
                    target: "resolution",
                },
            });
        }
    }
    if triaged {
        let opens_case = applied
            .events
            .iter()
            .any(|e| e.kind == "created" || e.kind == "reopened");
        triggers.extend(triage_triggers(case, engine, opens_case));
    }
    for trigger in triggers {
        sla.escalation.do_send(EscalationTriggered {
            key: key.clone(),
            conversation_id: case.id,
            trigger,
            by: Who::System,
            authority: crate::domain::Authority::System,
        });
    }
}

/// Puts the change's outbound message through the gate: consent for its purpose (read
/// now), the service window, and the approval boundaries over the case's latest tags.
/// Blocked: the step is refused with the reason. Held: the message is stored, marked
/// held, and waits in the approval queue instead of the outbox; it does not count as a
/// response until it is approved.
async fn pass_gate(
    store: &Store,
    engine: &crate::policy::Policies,
    state: &mut ActorState,
    change: &mut ConversationChange,
    now: Micros,
) -> Result<(), ConversationError> {
    let Some(outbox) = change.outbox.as_ref() else {
        return Ok(());
    };
    let consent = consent_for(store, state, outbox.purpose).await?;
    let case = &change.conversation;
    let started = std::time::Instant::now();
    let verdict = engine.approvals.evaluate(
        &gate::Outbound {
            origin: outbox.origin,
            purpose: outbox.purpose,
            template_category: outbox.template_category,
            text: change
                .message
                .as_ref()
                .and_then(|m| m.text.as_deref())
                .unwrap_or_default(),
        },
        &gate::Context {
            triage: case.triage.as_deref(),
            vip: state.contact_vip,
            consent,
            window_closes_at: case.service_window_closes_at(),
            now,
        },
    );
    let label = match &verdict {
        gate::Verdict::Allow => "allow",
        gate::Verdict::Hold(_) => "hold",
        gate::Verdict::Block(_) => "block",
    };
    let origin = outbox.origin;
    metrics()
        .outbound_gate
        .with_label_values(&[origin.as_str(), label])
        .inc();
    metrics()
        .outbound_gate_seconds
        .observe(started.elapsed().as_secs_f64());
    match verdict {
        gate::Verdict::Allow => Ok(()),
        // A case resolving on its own still resolves; only its closing message stays.
        gate::Verdict::Block(block) if origin == Origin::Closing => {
            let reason = match block {
                gate::Block::NoConsent { .. } => "no_consent",
                gate::Block::WindowClosed { .. } => "window_closed",
            };
            approval::drop_blocked(change, state, reason);
            Ok(())
        }
        gate::Verdict::Block(gate::Block::NoConsent { purpose }) => {
            Err(ConversationError::ConsentWithdrawn {
                purpose: purpose.as_str().to_owned(),
            })
        }
        gate::Verdict::Block(gate::Block::WindowClosed { closed_at }) => {
            Err(ConversationError::WindowClosed {
                conversation_id: case.id,
                closed_at,
            })
        }
        gate::Verdict::Hold(hold) => {
            approval::hold(change, state, hold);
            Ok(())
        }
    }
}

/// The contact's consent to `purpose`: read from the ledger (every purpose at once) the
/// first time this actor needs it, then kept in its state until it changes. A contact
/// Parley has not stored yet has the purpose's default.
async fn consent_for(
    store: &Store,
    state: &mut ActorState,
    purpose: Purpose,
) -> Result<bool, StoreError> {
    if state.consent.is_none()
        && let Some(contact_id) = state.contact_id
    {
        let current = store.consent_of(contact_id).await?;
        state.consent = Some(Purpose::ALL.map(|p| {
            current
                .iter()
                .find(|c| c.purpose == p)
                .is_some_and(|c| c.granted)
        }));
    }
    Ok(
        match (
            &state.consent,
            Purpose::ALL.iter().position(|p| *p == purpose),
        ) {
            (Some(flags), Some(i)) => flags[i],
            _ => purpose.granted_by_default(),
        },
    )
}

/// Writes a customer's STOP/START keyword to the consent ledger (and the audit log).
async fn record_keyword(
    store: &Store,
    key: &ConversationKey,
    (request, keyword): (KeywordRequest, &'static str),
    message_ref: String,
    now: Micros,
) -> Result<(), ConversationError> {
    let recorded = store
        .write(RecordConsent {
            contact: ConsentContact::WaId(key.wa_id.clone()),
            purposes: request.purposes().to_vec(),
            granted: request.granted(),
            source: "keyword",
            detail: Some(keyword.to_owned()),
            message_ref: Some(message_ref),
            actor: Who::Customer.label(),
            at: now,
        })
        .await?;
    recorded.map_err(|e| ConversationError::Store(e.to_string()))?;
    Ok(())
}

/// Intents remembered per contact for repeat-contact detection.
const REMEMBERED_INTENTS: usize = 32;

fn remember_intents(state: &mut ActorState, conversation: &conversation::Model, now: Micros) {
    let Some(triage) = conversation.triage.as_deref() else {
        return;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(triage) else {
        return;
    };
    for intent in value["intents"].as_array().into_iter().flatten() {
        if let Some(label) = intent["label"].as_str() {
            state.recent_intents.push((label.to_owned(), now));
        }
    }
    let excess = state
        .recent_intents
        .len()
        .saturating_sub(REMEMBERED_INTENTS);
    state.recent_intents.drain(..excess);
}
