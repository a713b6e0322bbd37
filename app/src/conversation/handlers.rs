//! The conversation actor's handlers: one per request, each planning its change with
//! the pure functions of this module's submodules and running it as one step.

use super::step::Connect;
use super::{ConversationActor, Plan, approval, automation, lifecycle, triage};
use crate::actors::conversation::*;
use crate::domain::consent::{Purpose, keyword_request};
use crate::store::conversations::ChangeApplied;
use actix::prelude::*;
use automation::AutomationOutcome;
use tracing::Instrument;

impl ConversationActor {
    /// Asks the order system off the mailbox (later messages are not held up); the
    /// answer comes back to this actor as an [`AutomationOutcome`].
    pub(super) fn ask_order_system(
        &self,
        question: automation::OrderQuestion,
        ctx: &mut Context<Self>,
    ) {
        let connectors = self.deps.connectors.clone();
        let span = tracing::info_span!(
            "automation.order_status",
            conversation_id = question.conversation_id
        );
        let asked = async move { automation::answer_order_question(&connectors, question).await }
            .instrument(span);
        ctx.spawn(
            asked
                .into_actor(self)
                .map(|outcome, _, ctx| ctx.notify(outcome)),
        );
    }
}

impl Handler<AutomationOutcome> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, outcome: AutomationOutcome, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.automation",
            conversation_id = outcome.conversation_id
        );
        let key = self.key.clone();
        let connect = Connect::default();
        let stepped = self.step_plan(span, None, connect, move |state, now| {
            automation::plan_outcome(state, &key, &outcome, now).map(Plan::from)
        });
        AtomicResponse::new(Box::pin(stepped.map(|result, act, _| {
            let result = result.and_then(Stepped::into_change);
            if let Err(error) = &result {
                tracing::warn!(channel = %act.key.channel_id, error = %error, "Automation outcome not applied.");
            }
            result
        })))
    }
}

impl Handler<CustomerMessageArrived> for ConversationActor {
    type Result = AtomicResponse<Self, Result<Stepped, ConversationError>>;

    fn handle(&mut self, msg: CustomerMessageArrived, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(parent: &msg.span, "conversation.apply", kind = msg.message.kind.as_str());
        let key = self.key.clone();
        let reopen_window = self.deps.reopen_window;
        let routing = self.deps.routing.clone();
        let engine = routing.engine.current();
        let noise = engine.routing.noise();
        let now = self.deps.clock.now();
        let rate_limited =
            self.rate
                .exceeded(now, noise.rate_limit_messages, noise.rate_limit_window_secs);
        let message = msg.message.clone();
        let received_at = msg.received_at;
        let connectors = &self.deps.connectors;
        let blocked = routing.noise.is_blocked(&key.wa_id);
        let keyword = msg.message.text.as_deref().and_then(keyword_request);
        let spam = || {
            noise.suppress_spam
                && msg
                    .message
                    .text
                    .as_deref()
                    .is_some_and(|t| crate::triage::noise::spam_score(t).is_spam())
        };
        let connect = Connect {
            // Noise the filter will set aside costs no CRM call: blocked, over the rate
            // limit, or spam by its text.
            crm: connectors.has_crm() && !rate_limited && !blocked && !spam(),
            orders: connectors.has_orders(),
            consent: keyword.filter(|_| !blocked).map(|(request, keyword)| {
                let message_ref = format!("{}:{}", key.channel_id, msg.message.provider_message_id);
                (request, keyword, message_ref)
            }),
            sends: None,
        };
        let stepped = self.step_plan(span, Some(msg.committed), connect, move |state, now| {
            Ok(triage::plan_arrival(triage::Arrival {
                state,
                key: &key,
                message: &message,
                received_at,
                now,
                reopen_window,
                rate_limited,
                keyword,
                routing: &routing,
                engine: &engine,
            }))
        });
        AtomicResponse::new(stepped)
    }
}

impl Handler<SendReply> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SendReply, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!("conversation.reply", conversation_id = msg.conversation_id);
        let presence = self.deps.routing.presence.clone();
        self.step(span, Connect::default(), move |state, now| {
            let supervisor = msg.authority == lifecycle::ReplyAuthority::Supervisor;
            if !(msg.force && supervisor)
                && let Some(typing) =
                    presence.typing_other_than(msg.conversation_id, msg.agent_id, now)
            {
                return Err(ConversationError::Collision {
                    agent_id: typing.agent_id,
                    agent_name: typing.agent_name,
                });
            }
            let replier = lifecycle::Replier {
                actor: &msg.by,
                agent_id: msg.agent_id,
                authority: msg.authority,
            };
            match &msg.media {
                Some(media) => lifecycle::plan_media_reply(
                    state,
                    &key,
                    msg.conversation_id,
                    Some(msg.text.as_str()).filter(|t| !t.trim().is_empty()),
                    media,
                    replier,
                    now,
                ),
                None => {
                    lifecycle::plan_reply(state, &key, msg.conversation_id, &msg.text, replier, now)
                }
            }
            .map(|mut change| {
                if let Some(outbox) = change.outbox.as_mut() {
                    outbox.origin = msg.origin;
                }
                change
            })
        })
    }
}

impl Handler<ApplyMacro> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: ApplyMacro, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!(
            "conversation.macro",
            conversation_id = msg.conversation_id,
            macro_id = msg.chosen.id
        );
        let presence = self.deps.routing.presence.clone();
        let engine = self.deps.routing.engine.current();
        let stepped = self.step_plan(span, None, Connect::default(), move |state, now| {
            if let Some(typing) = presence.typing_other_than(msg.conversation_id, msg.agent_id, now)
            {
                return Err(ConversationError::Collision {
                    agent_id: typing.agent_id,
                    agent_name: typing.agent_name,
                });
            }
            super::macros::plan_macro(state, &key, &msg, &engine, now)
        });
        AtomicResponse::new(Box::pin(
            stepped.map(|result, _, _| result.and_then(Stepped::into_change)),
        ))
    }
}

impl Handler<SendTemplate> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SendTemplate, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!(
            "conversation.template",
            conversation_id = msg.conversation_id,
            template = %msg.template.name
        );
        self.step(span, Connect::default(), move |state, now| {
            let mut change = lifecycle::plan_template(
                state,
                &key,
                msg.conversation_id,
                &msg.template,
                lifecycle::Replier {
                    actor: &msg.by,
                    agent_id: msg.agent_id,
                    authority: msg.authority,
                },
                now,
            )?;
            if let Some(outbox) = change.outbox.as_mut() {
                outbox.origin = msg.origin;
            }
            Ok(change)
        })
    }
}

impl Handler<DecideHeld> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: DecideHeld, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.approval",
            conversation_id = msg.held.conversation_id,
            held_id = msg.held.id
        );
        let connect = Connect {
            sends: matches!(msg.decision, approval::Decision::Approve { .. })
                .then(|| Purpose::parse(&msg.held.purpose))
                .flatten(),
            ..Connect::default()
        };
        self.step(span, connect, move |state, now| {
            super::ownership::check_decision(&msg.held, &msg.by, msg.drafted_by)?;
            approval::plan_decision(state, &msg.held, &msg.decision, &msg.by, msg.role, now)
        })
    }
}

impl Handler<AssignConversation> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AssignConversation, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.assign", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            let live = lifecycle::live_case(state, msg.conversation_id)?;
            super::ownership::check_assignment(msg.authority, live, msg.agent_id, msg.team_id)?;
            let plan = lifecycle::AssignmentPlan {
                agent_id: msg.agent_id,
                team_id: msg.team_id,
                explanation: msg.explanation.as_ref(),
                if_unassigned: msg.explanation.is_some(),
            };
            lifecycle::plan_assignment(state, msg.conversation_id, plan, &msg.by, now)
        })
    }
}

impl Handler<ChangeStatus> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: ChangeStatus, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.status", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            let live = lifecycle::live_case(state, msg.conversation_id)?;
            super::ownership::check_work(msg.authority, live, "change the status of")?;
            lifecycle::plan_status_change(state, msg.conversation_id, msg.to, &msg.by, now)
        })
    }
}

impl Handler<AddNote> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AddNote, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!("conversation.note", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            lifecycle::plan_note(state, &msg, now)
        })
    }
}

impl Handler<CorrectTriage> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: CorrectTriage, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.correct",
            conversation_id = msg.conversation_id
        );
        let engine = self.deps.routing.engine.current();
        let stepped = self.step_plan(span, None, Connect::default(), move |state, now| {
            super::corrections::plan_correction(state, &msg, &engine, now)
        });
        AtomicResponse::new(Box::pin(
            stepped.map(|result, _, _| result.and_then(Stepped::into_change)),
        ))
    }
}

impl Handler<WindowRefused> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: WindowRefused, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.window_refused",
            conversation_id = msg.conversation_id
        );
        self.step(span, Connect::default(), move |state, now| {
            lifecycle::plan_window_refused(state, &msg, now)
        })
    }
}

impl Handler<SlaCheck> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SlaCheck, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.sla_check",
            conversation_id = msg.conversation_id
        );
        let routing = self.deps.routing.clone();
        let timers = self.deps.timers.clone();
        let key = self.key.clone();
        self.step(span, Connect::default(), move |state, now| {
            let engine = routing.engine.current();
            super::timers::clock_change(
                state,
                &key,
                msg.conversation_id,
                &engine,
                &timers,
                msg.surveys_allowed,
                now,
            )
            .ok_or(ConversationError::Closed(msg.conversation_id))
        })
    }
}

impl Handler<Escalate> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: Escalate, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!("conversation.escalate", conversation_id = msg.conversation_id, trigger = %msg.trigger);
        let routing = self.deps.routing.clone();
        self.step(span, Connect::default(), move |state, now| {
            let live = lifecycle::live_case(state, msg.conversation_id)?;
            super::ownership::check_work(msg.authority, live, "escalate")?;
            let ledger = crate::sla::ledger::SlaLedger::from_json(live.sla.as_deref());
            if msg.once && ledger.escalated_for(&msg.trigger) {
                return Err(ConversationError::AlreadyEscalated {
                    conversation_id: live.id,
                    trigger: msg.trigger.clone(),
                });
            }
            let engine = routing.engine.current();
            let from_team = live.team_id.and_then(|id| engine.team_name(id));
            let from_level = from_team.map_or(1, |t| engine.sla.escalation.level(t));
            let (next, data) =
                crate::sla::escalation::plan_escalation(live, &msg, from_team, from_level);
            let mut change = lifecycle::unchanged(state, next, now);
            change.events.push(crate::store::conversations::NewEvent {
                kind: "escalated",
                data,
                actor: msg.by.label(),
            });
            Ok(change)
        })
    }
}

impl Handler<InjectPanic> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) -> Self::Result {
        self.step(tracing::Span::current(), Connect::default(), |_, _| {
            panic!("injected failure")
        })
    }
}
