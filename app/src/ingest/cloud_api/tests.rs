#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            "../../../../tests/fixtures/cloud_api/",
            $name,
            ".json"
        ))
    };
}

/// Every fixture, for the tests that must hold whatever the payload.
const FIXTURES: [(&str, &str); 22] = [
    ("text", fixture!("text")),
    ("image", fixture!("image")),
    ("audio", fixture!("audio")),
    ("video", fixture!("video")),
    ("document", fixture!("document")),
    ("sticker", fixture!("sticker")),
    ("location", fixture!("location")),
    ("contacts", fixture!("contacts")),
    (
        "interactive_button_reply",
        fixture!("interactive_button_reply"),
    ),
    ("interactive_list_reply", fixture!("interactive_list_reply")),
    ("button", fixture!("button")),
    ("reaction", fixture!("reaction")),
    ("reaction_removed", fixture!("reaction_removed")),
    ("reply_with_context", fixture!("reply_with_context")),
    ("forwarded", fixture!("forwarded")),
    ("unsupported", fixture!("unsupported")),
    ("status_sent", fixture!("status_sent")),
    ("status_delivered", fixture!("status_delivered")),
    ("status_read", fixture!("status_read")),
    ("status_failed", fixture!("status_failed")),
    (
        "mixed_batch_with_one_bad_message",
        fixture!("mixed_batch_with_one_bad_message"),
    ),
    ("template_status_update", fixture!("template_status_update")),
];

const PHONE_NUMBER_ID: &str = "106540352242922";
const CUSTOMER: &str = "16315551234";

fn parse(body: &str) -> WebhookBatch {
    parse_webhook(body.as_bytes()).unwrap()
}

fn only_message(body: &str) -> InboundMessage {
    let batch = parse(body);
    assert!(batch.rejected.is_empty(), "rejected: {:?}", batch.rejected);
    assert!(batch.statuses.is_empty());
    assert_eq!(batch.messages.len(), 1);
    batch.messages.into_iter().next().unwrap()
}

fn only_status(body: &str) -> StatusUpdate {
    let batch = parse(body);
    assert!(batch.rejected.is_empty(), "rejected: {:?}", batch.rejected);
    assert!(batch.messages.is_empty());
    assert_eq!(batch.statuses.len(), 1);
    batch.statuses.into_iter().next().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// A one-change webhook whose value is `metadata` plus `extra`.
fn webhook(extra: Value) -> String {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "16505553333", "phone_number_id": PHONE_NUMBER_ID},
    });
    if let (Value::Object(value), Value::Object(extra)) = (&mut value, extra) {
        value.extend(extra);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    })
    .to_string()
}

/// A webhook from the customer carrying `messages`, with one contact.
fn from_customer(messages: Value) -> String {
    webhook(json!({
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": CUSTOMER}],
        "messages": messages,
    }))
}

fn message(kind: &str, payload: Value) -> Value {
    let mut message = json!({
        "from": CUSTOMER,
        "id": "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzRUIwMDAwMDAwMDAwMDAwMDAwMAA=",
        "timestamp": "1669233778",
        "type": kind,
    });
    if let Value::Object(message) = &mut message {
        message.insert(kind.to_owned(), payload);
    }
    message
}

#[test]
fn meta_text_example_is_read_in_full() {
    let message = only_message(fixture!("text"));
    assert_eq!(
        message,
        InboundMessage {
            phone_number_id: PHONE_NUMBER_ID.into(),
            wa_id: CUSTOMER.into(),
            profile_name: Some("Kerry Fisher".into()),
            provider_message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
                .into(),
            sent_at: at(1_669_233_778),
            kind: MessageKind::Text,
            text: Some("this is a text message".into()),
            content: MessageContent::Text {
                body: "this is a text message".into()
            },
            context: None,
            errors: vec![],
        }
    );
}

#[test]
fn image_keeps_its_media_id_hash_and_caption() {
    let message = only_message(fixture!("image"));
    assert_eq!(message.kind, MessageKind::Image);
    assert_eq!(message.text.as_deref(), Some("This is a caption"));
    assert_eq!(
        message.content,
        MessageContent::Media {
            media_id: "2754859441498128".into(),
            mime_type: Some("image/jpeg".into()),
            sha256: Some("81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3".into()),
            caption: Some("This is a caption".into()),
            filename: None,
            voice: None,
            animated: None,
        }
    );
}

#[test]
fn voice_note_is_audio_with_the_voice_flag_and_no_text() {
    let message = only_message(fixture!("audio"));
    assert_eq!(message.kind, MessageKind::Audio);
    assert_eq!(message.text, None);
    let MessageContent::Media {
        media_id,
        mime_type,
        voice,
        ..
    } = message.content
    else {
        panic!("expected media, got {:?}", message.content);
    };
    assert_eq!(media_id, "1003383421387256");
    assert_eq!(mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(voice, Some(true));
}

#[test]
fn video_caption_becomes_the_text() {
    let message = only_message(fixture!("video"));
    assert_eq!(message.kind, MessageKind::Video);
    assert_eq!(
        message.text.as_deref(),
        Some("Here is the damage on arrival")
    );
    assert!(matches!(
        message.content,
        MessageContent::Media { ref media_id, .. } if media_id == "1214365296077390"
    ));
}

#[test]
fn document_keeps_its_filename_and_caption() {
    let message = only_message(fixture!("document"));
    assert_eq!(message.kind, MessageKind::Document);
    assert_eq!(message.text.as_deref(), Some("Invoice for order 5521"));
    let MessageContent::Media {
        filename,
        mime_type,
        caption,
        ..
    } = message.content
    else {
        panic!("expected media, got {:?}", message.content);
    };
    assert_eq!(filename.as_deref(), Some("lucky-shrub-invoice.pdf"));
    assert_eq!(mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(caption.as_deref(), Some("Invoice for order 5521"));
}

#[test]
fn sticker_keeps_its_animated_flag() {
    let message = only_message(fixture!("sticker"));
    assert_eq!(message.kind, MessageKind::Sticker);
    assert_eq!(message.text, None);
    assert!(matches!(
        message.content,
        MessageContent::Media { animated: Some(false), ref mime_type, .. }
            if mime_type.as_deref() == Some("image/webp")
    ));
}

#[test]
fn location_keeps_coordinates_name_address_and_url() {
    let message = only_message(fixture!("location"));
    assert_eq!(message.kind, MessageKind::Location);
    assert_eq!(
        message.content,
        MessageContent::Location {
            latitude: 37.483307,
            longitude: -122.148981,
            name: Some("Main Street Beach".into()),
            address: Some("1 Hacker Way, Menlo Park, CA 94025".into()),
            url: Some("https://foursquare.com/v/4d7031d35b5df7744".into()),
        }
    );
}

#[test]
fn shared_contact_cards_are_kept_as_sent() {
    let message = only_message(fixture!("contacts"));
    assert_eq!(message.kind, MessageKind::Contacts);
    let MessageContent::Contacts { contacts } = &message.content else {
        panic!("expected contacts, got {:?}", message.content);
    };
    assert_eq!(contacts[0]["name"]["formatted_name"], "Kerry Fisher");
    assert_eq!(contacts[0]["phones"][0]["wa_id"], "19405551234");
    // The sender's profile name comes from the change's contacts, not the cards.
    assert_eq!(message.profile_name.as_deref(), Some("Kerry Fisher"));
}

#[test]
fn button_reply_text_is_the_chosen_title() {
    let message = only_message(fixture!("interactive_button_reply"));
    assert_eq!(message.kind, MessageKind::Interactive);
    assert_eq!(message.text.as_deref(), Some("Cancel"));
    assert_eq!(
        message.content,
        MessageContent::Interactive {
            reply_type: "button_reply".into(),
            id: "cancel-button".into(),
            title: "Cancel".into(),
            description: None,
        }
    );
    let context = message.context.unwrap();
    assert_eq!(
        context.message_id.as_deref(),
        Some("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=")
    );
}

#[test]
fn list_reply_keeps_id_title_and_description() {
    let message = only_message(fixture!("interactive_list_reply"));
    assert_eq!(message.kind, MessageKind::Interactive);
    assert_eq!(message.text.as_deref(), Some("Priority Mail Express"));
    assert_eq!(
        message.content,
        MessageContent::Interactive {
            reply_type: "list_reply".into(),
            id: "priority_express".into(),
            title: "Priority Mail Express".into(),
            description: Some("Next Day to 2 Days".into()),
        }
    );
}

#[test]
fn template_quick_reply_keeps_its_payload_and_text() {
    let message = only_message(fixture!("button"));
    assert_eq!(message.kind, MessageKind::Button);
    assert_eq!(message.text.as_deref(), Some("Reschedule"));
    assert_eq!(
        message.content,
        MessageContent::Button {
            payload: Some("reschedule_appointment".into()),
            text: "Reschedule".into(),
        }
    );
    assert!(message.context.is_some());
}

#[test]
fn reaction_keeps_the_emoji_and_the_message_reacted_to() {
    let message = only_message(fixture!("reaction"));
    assert_eq!(message.kind, MessageKind::Reaction);
    assert_eq!(message.text.as_deref(), Some("\u{1F44D}"));
    assert_eq!(
        message.content,
        MessageContent::Reaction {
            message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUZBMTQ1RjRDNDI2RTk1OUQ3MgA=".into(),
            emoji: Some("\u{1F44D}".into()),
        }
    );
}

#[test]
fn reaction_without_emoji_is_a_removal() {
    let message = only_message(fixture!("reaction_removed"));
    assert_eq!(message.kind, MessageKind::Reaction);
    assert_eq!(message.text, None);
    assert!(matches!(
        message.content,
        MessageContent::Reaction { emoji: None, .. }
    ));
}

#[test]
fn reaction_with_empty_emoji_is_a_removal() {
    let body = from_customer(json!([message(
        "reaction",
        json!({"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUZBMTQ1RjRDNDI2RTk1OUQ3MgA=", "emoji": ""})
    )]));
    let message = only_message(&body);
    assert_eq!(message.text, None);
    assert!(matches!(
        message.content,
        MessageContent::Reaction { emoji: None, .. }
    ));
}

#[test]
fn reply_carries_the_quoted_message_and_its_sender() {
    let message = only_message(fixture!("reply_with_context"));
    assert_eq!(message.text.as_deref(), Some("Yes, this order please"));
    assert_eq!(
        message.context,
        Some(ReplyContext {
            message_id: Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0NDlFMzM2QjEzRjFDNkE4QjYA".into()),
            from: Some("16505553333".into()),
            forwarded: false,
            frequently_forwarded: false,
        })
    );
}

#[test]
fn forwarded_message_is_flagged_without_a_reply() {
    let message = only_message(fixture!("forwarded"));
    assert_eq!(
        message.context,
        Some(ReplyContext {
            message_id: None,
            from: None,
            forwarded: true,
            frequently_forwarded: false,
        })
    );
}

#[test]
fn frequently_forwarded_message_also_counts_as_forwarded() {
    let mut text = message("text", json!({"body": "Forwarded many times"}));
    text["context"] = json!({"frequently_forwarded": true});
    let message = only_message(&from_customer(json!([text])));
    let context = message.context.unwrap();
    assert!(context.forwarded);
    assert!(context.frequently_forwarded);
}

#[test]
fn unsupported_message_keeps_the_provider_errors() {
    let message = only_message(fixture!("unsupported"));
    assert_eq!(message.kind, MessageKind::Unsupported);
    assert_eq!(message.content, MessageContent::Unsupported);
    assert_eq!(message.text, None);
    assert_eq!(
        message.errors,
        vec![ProviderError {
            code: 131051,
            title: "Message type unknown".into(),
            message: Some("Message type unknown".into()),
            details: Some("Message type is currently not supported.".into()),
        }]
    );
}

#[test]
fn legacy_unknown_message_reads_details_outside_error_data() {
    let body = from_customer(json!([{
        "from": CUSTOMER,
        "id": "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzRUIwMDAwMDAwMDAwMDAwMDAwMQA=",
        "timestamp": "1669233778",
        "type": "unknown",
        "errors": [{"code": 131051, "details": "Message type is not currently supported", "title": "Unsupported message type"}],
    }]));
    let message = only_message(&body);
    assert_eq!(message.kind, MessageKind::Unsupported);
    assert_eq!(message.errors[0].title, "Unsupported message type");
    assert_eq!(
        message.errors[0].details.as_deref(),
        Some("Message type is not currently supported")
    );
    assert_eq!(message.errors[0].message, None);
}

#[test]
fn unmodeled_type_is_kept_as_other_with_its_raw_object() {
    let order = message(
        "order",
        json!({"catalog_id": "194836987003835", "product_items": [{"product_retailer_id": "di9ozbzfi4", "quantity": 1, "item_price": 30, "currency": "USD"}]}),
    );
    let message = only_message(&from_customer(json!([order.clone()])));
    assert_eq!(message.kind, MessageKind::Other);
    assert_eq!(message.text, None);
    assert_eq!(message.sent_at, at(1_669_233_778));
    assert_eq!(message.profile_name.as_deref(), Some("Kerry Fisher"));
    assert_eq!(
        message.content,
        MessageContent::Other {
            provider_type: "order".into(),
            raw: order,
        }
    );
}

#[test]
fn flow_answer_is_kept_as_other() {
    let flow = message(
        "interactive",
        json!({"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"flow_token\": \"x\"}"}}),
    );
    let message = only_message(&from_customer(json!([flow])));
    assert_eq!(message.kind, MessageKind::Other);
    assert!(matches!(
        message.content,
        MessageContent::Other { ref provider_type, .. } if provider_type == "interactive"
    ));
}

#[test]
fn sent_status_keeps_callback_data_and_recipient() {
    let status = only_status(fixture!("status_sent"));
    assert_eq!(
        status,
        StatusUpdate {
            phone_number_id: PHONE_NUMBER_ID.into(),
            provider_message_id: "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBJDOTg3NjU0RjMyMUFCQkM1REEA"
                .into(),
            status: DeliveryStatus::Sent,
            at: at(1_669_233_960),
            recipient_id: Some(CUSTOMER.into()),
            errors: vec![],
            callback_data: Some("parley:msg:8f14e45f-ceea-467f-a0e6-0b3b2f5c1d2e".into()),
        }
    );
}

#[test]
fn delivered_and_read_statuses_are_recognised() {
    let delivered = only_status(fixture!("status_delivered"));
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.at, at(1_669_233_962));
    let read = only_status(fixture!("status_read"));
    assert_eq!(read.status, DeliveryStatus::Read);
    assert_eq!(read.at, at(1_669_233_990));
    assert!(read.errors.is_empty());
}

#[test]
fn failed_status_carries_its_errors() {
    let status = only_status(fixture!("status_failed"));
    assert_eq!(status.status, DeliveryStatus::Failed);
    assert_eq!(
        status.errors,
        vec![ProviderError {
            code: 131047,
            title: "Re-engagement message".into(),
            message: Some("Re-engagement message".into()),
            details: Some(
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                    .into()
            ),
        }]
    );
}

#[test]
fn played_status_of_a_voice_message_is_understood() {
    let body = webhook(json!({"statuses": [
        {"id": "wamid.A", "status": "played", "timestamp": "1669233990", "recipient_id": CUSTOMER},
    ]}));
    let batch = parse(&body);
    assert_eq!(batch.statuses[0].status, DeliveryStatus::Played);
    assert!(batch.rejected.is_empty());
}

#[test]
fn unknown_status_value_rejects_only_that_status() {
    let body = webhook(json!({"statuses": [
        {"id": "wamid.A", "status": "exploded", "timestamp": "1669233990", "recipient_id": CUSTOMER},
        {"id": "wamid.B", "status": "read", "timestamp": "1669233991", "recipient_id": CUSTOMER},
    ]}));
    let batch = parse(&body);
    assert_eq!(batch.statuses.len(), 1);
    assert_eq!(batch.statuses[0].provider_message_id, "wamid.B");
    assert_eq!(batch.rejected.len(), 1);
    assert_eq!(
        batch.rejected[0].path,
        "entry[0].changes[0].value.statuses[0]"
    );
    assert!(
        batch.rejected[0].reason.contains("exploded"),
        "{}",
        batch.rejected[0].reason
    );
}

#[test]
fn one_bad_message_leaves_the_rest_of_the_batch_intact() {
    let batch = parse(fixture!("mixed_batch_with_one_bad_message"));
    let kinds: Vec<_> = batch.messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MessageKind::Text, MessageKind::Image]);
    assert_eq!(batch.statuses.len(), 1);
    assert_eq!(batch.statuses[0].status, DeliveryStatus::Read);
    assert_eq!(batch.rejected.len(), 1);
    assert_eq!(
        batch.rejected[0].path,
        "entry[0].changes[0].value.messages[1]"
    );
    assert!(
        batch.rejected[0].reason.contains("yesterday"),
        "{}",
        batch.rejected[0].reason
    );
    assert_eq!(batch.ignored_changes, 0);
}

#[test]
fn template_status_update_is_read_for_the_registry() {
    let batch = parse(fixture!("template_status_update"));
    assert_eq!(batch.ignored_changes, 0);
    assert_eq!(batch.template_statuses.len(), 1);
    assert_eq!(batch.template_statuses[0].name, "csat_request");
    assert_eq!(batch.template_statuses[0].event, "APPROVED");
    assert!(batch.messages.is_empty());
    assert!(batch.statuses.is_empty());
    assert!(batch.rejected.is_empty());
}

#[test]
fn change_without_phone_number_id_is_rejected_alone() {
    let good = json!({"value": {"metadata": {"phone_number_id": PHONE_NUMBER_ID}, "messages": [message("text", json!({"body": "hi"}))]}, "field": "messages"});
    let no_id = json!({"value": {"metadata": {"display_phone_number": "16505553333"}, "messages": [message("text", json!({"body": "lost"}))]}, "field": "messages"});
    let no_metadata = json!({"value": {"statuses": []}, "field": "messages"});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [no_id, good, no_metadata]}]});
    let batch = parse(&body.to_string());
    assert_eq!(batch.messages.len(), 1);
    assert_eq!(batch.messages[0].text.as_deref(), Some("hi"));
    let paths: Vec<_> = batch.rejected.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["entry[0].changes[0]", "entry[0].changes[2]"]);
    assert!(batch.rejected[0].reason.contains("phone_number_id"));
}

#[test]
fn value_level_errors_become_account_errors() {
    let body = webhook(json!({"errors": [{
        "code": 130429,
        "title": "Rate limit hit",
        "message": "Rate limit hit",
        "error_data": {"details": "Message failed to send because there were too many messages sent from this phone number in a short period of time"},
        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
    }]}));
    let batch = parse(&body);
    assert!(batch.rejected.is_empty());
    assert_eq!(batch.account_errors.len(), 1);
    assert_eq!(batch.account_errors[0].phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(batch.account_errors[0].error.code, 130429);
    assert_eq!(batch.account_errors[0].error.title, "Rate limit hit");
}

#[test]
fn profile_name_is_matched_by_wa_id_among_several_contacts() {
    let mut second = message("text", json!({"body": "me too"}));
    second["from"] = json!("14155550000");
    let body = webhook(json!({
        "contacts": [
            {"profile": {"name": "Kerry Fisher"}, "wa_id": CUSTOMER},
            {"profile": {"name": "Ana Souza"}, "wa_id": "14155550000"},
        ],
        "messages": [message("text", json!({"body": "hello"})), second],
    }));
    let batch = parse(&body);
    let names: Vec<_> = batch
        .messages
        .iter()
        .map(|m| m.profile_name.as_deref())
        .collect();
    assert_eq!(names, [Some("Kerry Fisher"), Some("Ana Souza")]);
}

#[test]
fn profile_name_falls_back_to_the_only_contact() {
    // Meta warns that a user's wa_id and phone number may differ.
    let body = webhook(json!({
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "5215512345678"}],
        "messages": [{"from": "52155123456789", "id": "wamid.X", "timestamp": "1669233778", "type": "text", "text": {"body": "hola"}}],
    }));
    let message = only_message(&body);
    assert_eq!(message.wa_id, "52155123456789");
    assert_eq!(message.profile_name.as_deref(), Some("Kerry Fisher"));
}

#[test]
fn profile_name_is_absent_when_no_contact_matches_among_several() {
    let body = webhook(json!({
        "contacts": [
            {"profile": {"name": "A"}, "wa_id": "1"},
            {"profile": {"name": "B"}, "wa_id": "2"},
        ],
        "messages": [message("text", json!({"body": "who am I"}))],
    }));
    assert_eq!(only_message(&body).profile_name, None);
    let no_contacts = webhook(json!({"messages": [message("text", json!({"body": "x"}))]}));
    assert_eq!(only_message(&no_contacts).profile_name, None);
}

#[test]
fn malformed_contact_costs_only_the_profile_name() {
    let body = webhook(json!({
        "contacts": ["not a contact"],
        "messages": [message("text", json!({"body": "still here"}))],
    }));
    let message = only_message(&body);
    assert_eq!(message.text.as_deref(), Some("still here"));
    assert_eq!(message.profile_name, None);
}

#[test]
fn body_that_is_not_json_is_a_payload_error() {
    assert!(matches!(
        parse_webhook(b"{\"object\":"),
        Err(PayloadError::NotJson(_))
    ));
    assert!(matches!(parse_webhook(b""), Err(PayloadError::NotJson(_))));
    assert!(matches!(
        parse_webhook(&[0xff, 0xfe]),
        Err(PayloadError::NotJson(_))
    ));
}

#[test]
fn body_that_is_not_an_object_is_a_payload_error() {
    assert!(matches!(
        parse_webhook(b"[]"),
        Err(PayloadError::NotAnObject)
    ));
    assert!(matches!(
        parse_webhook(b"\"whatsapp_business_account\""),
        Err(PayloadError::NotAnObject)
    ));
}

#[test]
fn other_webhook_objects_are_payload_errors() {
    let err = parse_webhook(br#"{"object": "page", "entry": []}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "webhook `object` is \"page\", expected \"whatsapp_business_account\""
    );
    assert!(matches!(
        parse_webhook(br#"{"entry": []}"#),
        Err(PayloadError::WrongObject(_))
    ));
    assert!(matches!(
        parse_webhook(br#"{"object": 7, "entry": []}"#),
        Err(PayloadError::WrongObject(_))
    ));
}

#[test]
fn body_without_an_entry_array_is_a_payload_error() {
    for body in [
        r#"{"object": "whatsapp_business_account"}"#,
        r#"{"object": "whatsapp_business_account", "entry": {}}"#,
        r#"{"object": "whatsapp_business_account", "entry": null}"#,
    ] {
        assert!(
            matches!(parse_webhook(body.as_bytes()), Err(PayloadError::NoEntries)),
            "{body}"
        );
    }
}

#[test]
fn empty_entry_array_is_an_empty_batch() {
    let batch = parse(r#"{"object": "whatsapp_business_account", "entry": []}"#);
    assert_eq!(batch, WebhookBatch::default());
}

#[test]
fn malformed_entry_is_rejected_and_the_next_entry_is_kept() {
    let good: Value = serde_json::from_str(fixture!("text")).unwrap();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": ["oops", {"id": "1"}, good["entry"][0]],
    });
    let batch = parse(&body.to_string());
    assert_eq!(batch.messages.len(), 1);
    let paths: Vec<_> = batch.rejected.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["entry[0]", "entry[1]"]);
}

#[test]
fn bad_timestamps_reject_only_their_message() {
    let mut not_digits = message("text", json!({"body": "a"}));
    not_digits["timestamp"] = json!("2022-11-23T20:02:58Z");
    let mut out_of_range = message("text", json!({"body": "b"}));
    out_of_range["timestamp"] = json!("99999999999999999");
    let mut missing = message("text", json!({"body": "c"}));
    missing.as_object_mut().unwrap().remove("timestamp");
    let mut numeric = message("text", json!({"body": "d"}));
    numeric["timestamp"] = json!(1_669_233_778);
    let body = from_customer(json!([not_digits, out_of_range, missing, numeric]));
    let batch = parse(&body);
    assert_eq!(batch.messages.len(), 1);
    assert_eq!(batch.messages[0].text.as_deref(), Some("d"));
    assert_eq!(batch.messages[0].sent_at, at(1_669_233_778));
    let paths: Vec<_> = batch.rejected.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "entry[0].changes[0].value.messages[0]",
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[0].value.messages[2]",
        ]
    );
    assert!(
        batch.rejected[2].reason.contains("timestamp"),
        "{}",
        batch.rejected[2].reason
    );
}

#[test]
fn message_without_its_payload_object_is_rejected() {
    let body = from_customer(json!([
        {"from": CUSTOMER, "id": "wamid.Y", "timestamp": "1669233778", "type": "image"},
        {"from": CUSTOMER, "id": "wamid.Z", "timestamp": "1669233778", "type": "interactive",
         "interactive": {"type": "button_reply"}},
        {"id": "wamid.W", "timestamp": "1669233778", "type": "text", "text": {"body": "no sender"}},
    ]));
    let batch = parse(&body);
    assert!(batch.messages.is_empty());
    assert_eq!(batch.rejected.len(), 3);
    assert!(
        batch.rejected[0].reason.contains("image"),
        "{}",
        batch.rejected[0].reason
    );
    assert!(
        batch.rejected[2].reason.contains("from"),
        "{}",
        batch.rejected[2].reason
    );
}

#[test]
fn message_without_a_type_is_rejected() {
    let body =
        from_customer(json!([{"from": CUSTOMER, "id": "wamid.V", "timestamp": "1669233778"}]));
    let batch = parse(&body);
    assert!(batch.messages.is_empty());
    assert!(
        batch.rejected[0].reason.contains("type"),
        "{}",
        batch.rejected[0].reason
    );
}

#[test]
fn template_status_updates_are_read_and_bad_ones_rejected() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update", "value": {
            "event": "APPROVED", "message_template_id": 594425479261596_i64,
            "message_template_name": "order_update", "message_template_language": "en_US",
            "reason": "NONE", "message_template_category": "UTILITY"}},
        {"field": "message_template_status_update", "value": {"event": "REJECTED"}},
    ]}]});
    let batch = parse_webhook(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        batch.template_statuses,
        [TemplateStatusUpdate {
            event: "APPROVED".into(),
            name: "order_update".into(),
            language: "en_US".into(),
            meta_template_id: Some("594425479261596".into()),
            reason: None,
        }]
    );
    assert_eq!(batch.rejected.len(), 1);
    assert_eq!(batch.rejected[0].path, "entry[0].changes[1]");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut text = message("text", json!({"body": "hi", "preview_url": false}));
    text["referral"] = json!({"source_url": "https://fb.me/3cr4Wqqkv", "source_type": "ad"});
    text["identity"] = json!({"acknowledged": true, "created_timestamp": 1602532300000_u64});
    let body = webhook(json!({
        "contacts": [{"profile": {"name": "Kerry Fisher", "username": "kerry"}, "wa_id": CUSTOMER, "user_id": "US.13491208655302741918"}],
        "messages": [text],
        "something_new": {"nested": [1, 2, 3]},
    }));
    assert_eq!(only_message(&body).text.as_deref(), Some("hi"));
}

#[test]
fn every_fixture_is_a_whatsapp_webhook() {
    for (name, body) in FIXTURES {
        let batch = parse_webhook(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected_rejections = usize::from(name == "mixed_batch_with_one_bad_message");
        assert_eq!(
            batch.rejected.len(),
            expected_rejections,
            "{name}: {:?}",
            batch.rejected
        );
        for message in &batch.messages {
            assert_eq!(message.phone_number_id, PHONE_NUMBER_ID, "{name}");
            assert_eq!(message.wa_id, CUSTOMER, "{name}");
            assert_eq!(
                message.profile_name.as_deref(),
                Some("Kerry Fisher"),
                "{name}"
            );
        }
    }
}

#[test]
fn truncated_or_corrupted_bodies_never_panic() {
    for (_, body) in FIXTURES {
        let bytes = body.as_bytes();
        for end in 0..bytes.len() {
            let _ = parse_webhook(&bytes[..end]);
        }
        // Swap structural characters and digits for others, one position at a time.
        for i in (0..bytes.len()).step_by(3) {
            for replacement in [b'"', b'0', b'[', b'}', b'x', b'-'] {
                let mut corrupted = bytes.to_vec();
                corrupted[i] = replacement;
                let _ = parse_webhook(&corrupted);
            }
        }
    }
}

#[test]
fn wrong_shapes_anywhere_are_rejections_not_panics() {
    let shapes = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!("x"),
        json!([]),
        json!({}),
        json!([null, {}]),
    ];
    for shape in &shapes {
        let bodies = [
            json!({"object": "whatsapp_business_account", "entry": [shape]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [shape]}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": shape}]}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": shape, "value": {}}]}]}),
            serde_json::from_str(&webhook(json!({"metadata": shape}))).unwrap(),
            serde_json::from_str(&webhook(
                json!({"contacts": shape, "messages": [message("text", json!({"body": "x"}))]}),
            ))
            .unwrap(),
            serde_json::from_str(&webhook(json!({"messages": [shape]}))).unwrap(),
            serde_json::from_str(&webhook(json!({"statuses": [shape]}))).unwrap(),
            serde_json::from_str(&webhook(json!({"errors": [shape]}))).unwrap(),
            serde_json::from_str(&webhook(
                json!({"messages": [message("text", shape.clone())]}),
            ))
            .unwrap(),
            serde_json::from_str(&webhook(
                json!({"messages": [message("reaction", shape.clone())]}),
            ))
            .unwrap(),
            serde_json::from_str(&webhook(
                json!({"messages": [message("interactive", shape.clone())]}),
            ))
            .unwrap(),
        ];
        for body in bodies {
            let _ = parse_webhook(body.to_string().as_bytes());
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let body = format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(matches!(
        parse_webhook(body.as_bytes()),
        Err(PayloadError::NotJson(_))
    ));
}
