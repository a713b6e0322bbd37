//! Closing the loop and the satisfaction survey, as pure functions over what a
//! conversation actor knows: when the case clock says so, survey a resolved case,
//! resolve a case left PENDING with a closing message, close a resolved case after its
//! reopen window; when the customer answers a survey, record the score (and one comment
//! after a low score) without treating it as a new support request.

use super::lifecycle::{outbound_message, status_changed, text_outbox, unchanged};
use crate::domain::consent::Purpose;
use crate::domain::inbound::{InboundMessage, MessageContent, MessageKind};
use crate::domain::outbound::Origin;
use crate::domain::texts::CustomerTexts;
use crate::domain::{Actor, ConversationKey, Micros, TicketStatus};
use crate::store::conversations::{
    ActorState, ConversationChange, CsatRecord, NewEvent, NewOutbox,
};
use crate::store::entities::conversation;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// When the survey is sent and how (what it says is in the case's language: see
/// [`CustomerTexts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Wait after RESOLVED before asking.
    pub after: Micros,
    /// An approved template (name, language) for outside the 24-hour window.
    pub template: Option<(String, String)>,
}

/// Where a case's survey stands (`conversations.csat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyStage {
    /// Asked; waiting for a score.
    Surveyed,
    /// Not asked, for the reason recorded.
    Skipped,
    /// Scored 4 or 5.
    Answered,
    /// Scored 1 to 3; the follow-up question is about to be asked (by the case clock).
    ScoredLow,
    /// Scored 1 to 3; the follow-up question was asked.
    AwaitingComment,
    /// The follow-up was answered.
    Commented,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyState {
    pub stage: SurveyStage,
    pub at: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub fn survey_state(case: &conversation::Model) -> Option<SurveyState> {
    serde_json::from_str(case.csat.as_deref()?).ok()
}

fn set_state(case: &mut conversation::Model, state: &SurveyState) {
    case.csat = serde_json::to_string(state).ok();
}

fn window_open(case: &conversation::Model, now: Micros) -> bool {
    case.service_window_closes_at()
        .is_some_and(|closes| now < closes)
}

/// Surveys a resolved case, or records why not.
pub fn plan_survey(
    state: &ActorState,
    key: &ConversationKey,
    case: &conversation::Model,
    survey: &Survey,
    texts: &CustomerTexts,
    surveys_allowed: bool,
    now: Micros,
) -> ConversationChange {
    let mut change = unchanged(state, case.clone(), now);
    let open = window_open(case, now);
    let skip = if case.first_response_at.is_none() {
        // Noise and spam set aside, or a case resolved without a word to the customer.
        Some("nobody_answered")
    } else if !surveys_allowed {
        Some("opted_out")
    } else if !open && survey.template.is_none() {
        Some("window_closed")
    } else {
        None
    };
    if let Some(reason) = skip {
        set_state(
            &mut change.conversation,
            &SurveyState {
                stage: SurveyStage::Skipped,
                at: now,
                score: None,
                reason: Some(reason.into()),
            },
        );
        change.events.push(NewEvent {
            kind: "csat_skipped",
            data: json!({ "reason": reason }),
            actor: Actor::System.label(),
        });
        return change;
    }
    let (via, payload) = match (open, &survey.template) {
        (false, Some((name, language))) => (
            "template",
            json!({
                "type": "template",
                "template": { "name": name, "language": { "code": language } },
            }),
        ),
        _ => (
            "interactive",
            json!({
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": { "text": texts.csat_question },
                    "action": {
                        "button": texts.csat_button,
                        "sections": [{
                            "title": texts.csat_section,
                            "rows": texts.csat_choices.iter().enumerate().rev().map(|(i, title)| json!({
                                "id": format!("csat:{}:{}", case.id, i + 1),
                                "title": title,
                            })).collect::<Vec<_>>(),
                        }],
                    },
                },
            }),
        ),
    };
    change.message = Some(outbound_message(
        if via == "template" {
            "template"
        } else {
            "interactive"
        },
        &texts.csat_question,
    ));
    change.outbox = Some(NewOutbox {
        recipient: key.wa_id.clone(),
        payload: payload.to_string(),
        origin: Origin::Survey,
        purpose: Purpose::Surveys,
        template_category: (via == "template").then_some("utility"),
        held: None,
    });
    set_state(
        &mut change.conversation,
        &SurveyState {
            stage: SurveyStage::Surveyed,
            at: now,
            score: None,
            reason: None,
        },
    );
    change.events.push(NewEvent {
        kind: "csat_sent",
        data: json!({ "via": via, "question": texts.csat_question }),
        actor: Actor::System.label(),
    });
    change.csat = Some(CsatRecord::Surveyed {
        agent_id: case.assignee_id,
        team_id: case.team_id,
        via,
    });
    change
}

/// After a low score: the one follow-up question (inside the window; the answer just
/// reopened it).
pub fn plan_follow_up(
    state: &ActorState,
    key: &ConversationKey,
    case: &conversation::Model,
    texts: &CustomerTexts,
    now: Micros,
) -> ConversationChange {
    let mut change = unchanged(state, case.clone(), now);
    let survey = survey_state(case);
    change.message = Some(outbound_message("text", &texts.csat_follow_up));
    change.outbox = Some(NewOutbox {
        purpose: Purpose::Surveys,
        ..text_outbox(&key.wa_id, &texts.csat_follow_up, Origin::Survey)
    });
    change.events.push(NewEvent {
        kind: "csat_follow_up_sent",
        data: json!({ "question": texts.csat_follow_up }),
        actor: Actor::System.label(),
    });
    set_state(
        &mut change.conversation,
        &SurveyState {
            stage: SurveyStage::AwaitingComment,
            at: now,
            score: survey.and_then(|s| s.score),
            reason: None,
        },
    );
    change
}

/// A PENDING case the customer never answered: the closing message (inside the window)
/// and RESOLVED, marked automatic.
pub fn plan_pending_timeout(
    state: &ActorState,
    key: &ConversationKey,
    case: &conversation::Model,
    closing_message: &str,
    now: Micros,
) -> ConversationChange {
    let mut change = unchanged(state, case.clone(), now);
    let open = window_open(case, now);
    if open {
        change.message = Some(outbound_message("text", closing_message));
        change.outbox = Some(text_outbox(&key.wa_id, closing_message, Origin::Closing));
        change.events.push(NewEvent {
            kind: "message_out",
            data: json!({ "kind": "text", "auto": "closing_message" }),
            actor: Actor::System.label(),
        });
    }
    let mut event = status_changed(
        &case.status,
        TicketStatus::Resolved,
        &Actor::System,
        Some("no answer from the customer"),
    );
    event.data["auto"] = json!(true);
    event.data["closing_message_sent"] = json!(open);
    change.events.push(event);
    let c = &mut change.conversation;
    c.status = TicketStatus::Resolved.as_str().into();
    c.resolved_at = Some(now);
    c.last_activity_at = now;
    change
}

/// A RESOLVED case whose reopen window has passed: CLOSED, marked automatic.
pub fn plan_close_resolved(
    state: &ActorState,
    case: &conversation::Model,
    now: Micros,
) -> ConversationChange {
    let mut change = unchanged(state, case.clone(), now);
    let mut event = status_changed(
        &case.status,
        TicketStatus::Closed,
        &Actor::System,
        Some("the reopen window passed"),
    );
    event.data["auto"] = json!(true);
    change.events.push(event);
    change.conversation.status = TicketStatus::Closed.as_str().into();
    change.conversation.closed_at = Some(now);
    change
}

/// The score a message gives to the survey of `conversation_id`, if it is an answer.
fn score_of(message: &InboundMessage, conversation_id: i64) -> Option<i32> {
    let parse = |text: &str| -> Option<i32> {
        let text = text.trim();
        let text = text.strip_suffix("/5").unwrap_or(text).trim();
        let digit = text
            .chars()
            .next()
            .filter(|_| text.chars().count() == 1 || text.split_once(" - ").is_some())?;
        let score = digit.to_digit(10)? as i32;
        (1..=5).contains(&score).then_some(score)
    };
    match &message.content {
        MessageContent::Interactive { id, title, .. } => {
            let prefix = format!("csat:{conversation_id}:");
            match id.strip_prefix(&prefix) {
                Some(n) => n.parse().ok().filter(|n| (1..=5).contains(n)),
                None => parse(title),
            }
        }
        MessageContent::Button { payload, text } => payload
            .as_deref()
            .and_then(|p| p.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .filter(|n| (1..=5).contains(n))
            .or_else(|| parse(text)),
        _ if message.kind == MessageKind::Text => message.text.as_deref().and_then(parse),
        _ => None,
    }
}

/// A customer's answer to the survey of their resolved case: the score, or the comment
/// after a low score. `None` when the message is something else (it is then handled as
/// any customer message: it may reopen the case).
pub fn plan_answer(
    state: &ActorState,
    message: &InboundMessage,
    received_at: Micros,
    now: Micros,
) -> Option<ConversationChange> {
    let case = state.live.as_ref()?;
    if TicketStatus::parse(&case.status) != Some(TicketStatus::Resolved) {
        return None;
    }
    let survey = survey_state(case)?;
    let mut change = unchanged(state, case.clone(), now);
    change.message = Some(super::lifecycle::inbound_message(message, received_at));
    change
        .conversation
        .customer_wrote(message.sent_at.timestamp_micros(), received_at);
    match survey.stage {
        SurveyStage::Surveyed => {
            let score = score_of(message, case.id)?;
            change.events.push(NewEvent {
                kind: "csat_answered",
                data: json!({
                    "score": score,
                    "agent_id": case.assignee_id,
                    "team_id": case.team_id,
                }),
                actor: Actor::Customer.label(),
            });
            change.csat = Some(CsatRecord::Answered { score });
            let low = score <= 3;
            set_state(
                &mut change.conversation,
                &SurveyState {
                    stage: if low {
                        SurveyStage::ScoredLow
                    } else {
                        SurveyStage::Answered
                    },
                    at: now,
                    score: Some(score),
                    reason: None,
                },
            );
            Some(change)
        }
        SurveyStage::AwaitingComment => {
            let comment = message.text.as_deref()?.trim();
            if comment.is_empty() || score_of(message, case.id).is_some() {
                return None;
            }
            change.events.push(NewEvent {
                kind: "csat_comment",
                data: json!({ "comment": comment }),
                actor: Actor::Customer.label(),
            });
            change.csat = Some(CsatRecord::Commented {
                comment: comment.to_owned(),
            });
            set_state(
                &mut change.conversation,
                &SurveyState {
                    stage: SurveyStage::Commented,
                    at: now,
                    score: survey.score,
                    reason: None,
                },
            );
            Some(change)
        }
        SurveyStage::Skipped
        | SurveyStage::ScoredLow
        | SurveyStage::Answered
        | SurveyStage::Commented => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn message(kind: MessageKind, text: Option<&str>, content: MessageContent) -> InboundMessage {
        InboundMessage {
            phone_number_id: "1065".into(),
            wa_id: "16315551234".into(),
            profile_name: None,
            provider_message_id: "wamid.1".into(),
            sent_at: chrono::DateTime::from_timestamp(1_669_233_778, 0).unwrap_or_default(),
            kind,
            text: text.map(str::to_owned),
            content,
            context: None,
            errors: vec![],
        }
    }

    fn text(body: &str) -> InboundMessage {
        message(
            MessageKind::Text,
            Some(body),
            MessageContent::Text { body: body.into() },
        )
    }

    #[test]
    fn scores_come_from_list_replies_buttons_and_typed_digits() {
        let reply = message(
            MessageKind::Interactive,
            Some("4 - Good"),
            MessageContent::Interactive {
                reply_type: "list_reply".into(),
                id: "csat:7:4".into(),
                title: "4 - Good".into(),
                description: None,
            },
        );
        assert_eq!(score_of(&reply, 7), Some(4));
        assert_eq!(score_of(&text(" 2 "), 7), Some(2));
        assert_eq!(score_of(&text("5/5"), 7), Some(5));
        assert_eq!(score_of(&text("6"), 7), None);
        assert_eq!(score_of(&text("2 days ago my order"), 7), None);
        assert_eq!(score_of(&text("hello"), 7), None);
    }
}
