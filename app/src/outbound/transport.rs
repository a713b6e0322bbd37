//! Sending through a transport plugin: the outbox's Cloud API shaped payload becomes
//! the contract's `outbound-message`, and the plugin's answer becomes the same
//! [`CallOutcome`] the Graph API client gives, so the worker's retry rules hold for
//! both: `retryable` and `rate-limited` are retried, `window-closed` and `permanent`
//! fail the message, and a call that may have reached the provider (a timeout, a
//! crash midway) is never repeated.

use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use super::graph_api::CallOutcome;
use crate::config::TransportChannelSettings;
use crate::plugins::{
    InteractiveButtons, OutboundContent, OutboundMessage, PluginError, PluginRegistry, ReplyButton,
    ReportedError, TemplateMessage,
};
use crate::store::entities::outbox;
use crate::store::outbox::callback_data;

/// Error code of a message refused because the customer-service window is closed; the
/// API explains it like Meta's 131047.
pub const WINDOW_CLOSED: &str = "window_closed";

/// Sends outbox jobs through transport plugins.
#[derive(Clone)]
pub struct TransportSender {
    plugins: Arc<PluginRegistry>,
}

impl TransportSender {
    pub fn new(plugins: Arc<PluginRegistry>) -> Self {
        Self { plugins }
    }

    pub async fn send(
        &self,
        channel: &TransportChannelSettings,
        job: &outbox::Model,
    ) -> CallOutcome {
        let message = match outbound_message(job) {
            Ok(message) => message,
            Err(title) => {
                return CallOutcome::Permanent {
                    code: "payload_invalid".into(),
                    title,
                };
            }
        };
        let sent = match self.plugins.transport(&channel.plugin) {
            Ok(transport) => transport.send(message).await,
            Err(error) => Err(error),
        };
        match sent {
            Ok(provider_message_id) if !provider_message_id.is_empty() => {
                CallOutcome::Sent(provider_message_id)
            }
            Ok(_) => CallOutcome::Unknown(
                "the transport plugin reported the send without a provider message id".into(),
            ),
            Err(error) => outcome_of(error),
        }
    }
}

/// What a failed plugin send means for the outbox.
pub fn outcome_of(error: PluginError) -> CallOutcome {
    let title = error.to_string();
    match error {
        PluginError::Reported { error, .. } => match error {
            ReportedError::Retryable(_) => CallOutcome::Retryable {
                error: title,
                retry_after: None,
            },
            ReportedError::RateLimited(ms) => CallOutcome::Retryable {
                error: title,
                retry_after: ms.map(|ms| Duration::from_millis(u64::from(ms))),
            },
            ReportedError::WindowClosed => CallOutcome::Permanent {
                code: WINDOW_CLOSED.into(),
                title,
            },
            other => CallOutcome::Permanent {
                code: PluginError::Reported {
                    plugin: String::new(),
                    error: other,
                }
                .code()
                .into(),
                title,
            },
        },
        // Refused before the plugin ran: nothing reached the provider.
        PluginError::CircuitOpen { retry_in_ms, .. } => CallOutcome::Retryable {
            error: title,
            retry_after: Some(Duration::from_millis(retry_in_ms)),
        },
        PluginError::NotLoaded { .. } | PluginError::Instantiation { .. } => {
            CallOutcome::Retryable {
                error: title,
                retry_after: None,
            }
        }
        // The plugin ran and may have called the provider before it stopped.
        PluginError::Timeout { .. }
        | PluginError::Trap { .. }
        | PluginError::OutOfMemory { .. }
        | PluginError::Host(_) => CallOutcome::Unknown(title),
        error => CallOutcome::Permanent {
            code: error.code().into(),
            title,
        },
    }
}

// The outbox payload is the Cloud API's message object (without `to` and the envelope
// fields the Graph API client adds); only the kinds a transport can carry are read.

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<TextPart>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    template: Option<Template>,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Deserialize)]
struct TextPart {
    body: String,
}

#[derive(Deserialize)]
struct Context {
    message_id: String,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    header: Option<InteractiveText>,
    body: InteractiveText,
    #[serde(default)]
    footer: Option<InteractiveText>,
    action: InteractiveAction,
}

#[derive(Deserialize)]
struct InteractiveText {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct InteractiveAction {
    #[serde(default)]
    buttons: Vec<ActionButton>,
}

#[derive(Deserialize)]
struct ActionButton {
    reply: ActionReply,
}

#[derive(Deserialize)]
struct ActionReply {
    id: String,
    title: String,
}

#[derive(Deserialize)]
struct Template {
    name: String,
    language: TemplateLanguage,
    #[serde(default)]
    components: Vec<TemplateComponent>,
    /// Parley's own addition for providers that name templates by an id of theirs
    /// (Twilio's Content SID); Meta never sees it.
    #[serde(default)]
    provider_template_id: Option<String>,
}

#[derive(Deserialize)]
struct TemplateLanguage {
    code: String,
}

#[derive(Deserialize)]
struct TemplateComponent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    parameters: Vec<TemplateParameter>,
}

#[derive(Deserialize)]
struct TemplateParameter {
    #[serde(default)]
    text: Option<String>,
}

/// The contract's message for an outbox job; the error says why it cannot be sent.
pub fn outbound_message(job: &outbox::Model) -> Result<OutboundMessage, String> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| format!("the queued message cannot be read: {e}"))?;
    let content = match payload.kind.as_str() {
        "text" => OutboundContent::Text(payload.text.ok_or("a text message without `text`")?.body),
        "interactive" => {
            let interactive = payload
                .interactive
                .ok_or("an interactive message without `interactive`")?;
            if interactive.kind != "button" {
                return Err(format!(
                    "interactive {:?} messages cannot be sent through a transport plugin",
                    interactive.kind
                ));
            }
            OutboundContent::Buttons(InteractiveButtons {
                header: interactive.header.and_then(|h| h.text),
                body: interactive.body.text.unwrap_or_default(),
                footer: interactive.footer.and_then(|f| f.text),
                buttons: interactive
                    .action
                    .buttons
                    .into_iter()
                    .map(|b| ReplyButton {
                        id: b.reply.id,
                        title: b.reply.title,
                    })
                    .collect(),
            })
        }
        "template" => {
            let template = payload
                .template
                .ok_or("a template message without `template`")?;
            OutboundContent::Template(TemplateMessage {
                name: template.name,
                language: template.language.code,
                parameters: template
                    .components
                    .into_iter()
                    .filter(|c| c.kind == "body")
                    .flat_map(|c| c.parameters)
                    .map(|p| p.text.unwrap_or_default())
                    .collect(),
                provider_template_id: template.provider_template_id,
            })
        }
        other => {
            return Err(format!(
                "{other:?} messages cannot be sent through a transport plugin"
            ));
        }
    };
    Ok(OutboundMessage {
        to_wa_id: job.recipient.clone(),
        sender: Some(job.phone_number_id.clone()).filter(|s| !s.is_empty()),
        content,
        reply_to: payload.context.map(|c| c.message_id),
        // Stable across retries of the same message.
        idempotency_key: Some(callback_data(job.message_id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(payload: serde_json::Value) -> outbox::Model {
        outbox::Model {
            id: 1,
            message_id: 7,
            channel_id: "twilio-main".into(),
            phone_number_id: "+14155238886".into(),
            recipient: "4915112345678".into(),
            payload: payload.to_string(),
            state: "queued".into(),
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            provider_media_id: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_queued_text_reply_becomes_the_contracts_message() {
        let message = outbound_message(&job(serde_json::json!({
            "type": "text", "text": { "preview_url": false, "body": "On its way" },
            "context": { "message_id": "SM1" }
        })))
        .unwrap();
        assert_eq!(message.content, OutboundContent::Text("On its way".into()));
        assert_eq!(message.to_wa_id, "4915112345678");
        assert_eq!(message.sender.as_deref(), Some("+14155238886"));
        assert_eq!(message.reply_to.as_deref(), Some("SM1"));
        assert_eq!(message.idempotency_key.as_deref(), Some("parley:7"));
    }

    #[test]
    fn templates_and_buttons_are_carried_and_other_kinds_refused() {
        let template = outbound_message(&job(serde_json::json!({
            "type": "template",
            "template": { "name": "order_update", "language": { "code": "en" },
              "components": [{ "type": "body", "parameters": [{ "type": "text", "text": "A-1" }] }] }
        })))
        .unwrap();
        let OutboundContent::Template(t) = template.content else {
            panic!("not a template")
        };
        assert_eq!(
            (t.name.as_str(), t.parameters),
            ("order_update", vec!["A-1".to_owned()])
        );

        let buttons = outbound_message(&job(serde_json::json!({
            "type": "interactive",
            "interactive": { "type": "button", "body": { "text": "Resolved?" },
              "action": { "buttons": [{ "type": "reply", "reply": { "id": "yes", "title": "Yes" } }] } }
        })))
        .unwrap();
        assert!(matches!(buttons.content, OutboundContent::Buttons(b) if b.buttons[0].id == "yes"));

        let error = outbound_message(&job(serde_json::json!({ "type": "sticker" }))).unwrap_err();
        assert!(error.contains("sticker"), "{error}");
    }

    #[test]
    fn plugin_errors_map_to_the_outboxs_semantics() {
        let reported = |error| PluginError::Reported {
            plugin: "twilio".into(),
            error,
        };
        assert!(matches!(
            outcome_of(reported(ReportedError::RateLimited(Some(7000)))),
            CallOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            outcome_of(reported(ReportedError::Retryable("503".into()))),
            CallOutcome::Retryable { .. }
        ));
        assert!(matches!(
            outcome_of(reported(ReportedError::WindowClosed)),
            CallOutcome::Permanent { code, .. } if code == WINDOW_CLOSED
        ));
        assert!(matches!(
            outcome_of(reported(ReportedError::Permanent("invalid number".into()))),
            CallOutcome::Permanent { code, .. } if code == "plugin_permanent"
        ));
        // The plugin may have reached the provider: never resent.
        assert!(matches!(
            outcome_of(PluginError::Timeout {
                plugin: "twilio".into(),
                timeout_ms: 5000
            }),
            CallOutcome::Unknown(_)
        ));
        // Refused before running: safe to try again.
        assert!(matches!(
            outcome_of(PluginError::CircuitOpen {
                plugin: "twilio".into(),
                retry_in_ms: 1000
            }),
            CallOutcome::Retryable { .. }
        ));
    }
}
