//! The template registry through GraphQL and Meta's template webhooks: drafts, review by
//! role, versions, Meta's verdicts, and sending outside the service window in the
//! contact's language with checked variables, through the same gate as everything else.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(templates_are_governed_and_sent_outside_the_window_with_checked_variables,);

const CREATE: &str = "mutation($i: TemplateInput!) { createTemplate(input: $i) {
    id name language version category status sendable variables { name type } } }";
const STEP: &str = "mutation($id: ID!) { submitTemplate(id: $id) { id status } }";
const APPROVE: &str = "mutation($id: ID!) { approveTemplate(id: $id, note: \"checked wording\") { id status reviewNote sendable } }";
const SEND: &str = "mutation($c: ID!, $n: String!, $v: [TemplateValueInput!]!, $l: String) {
    sendTemplate(conversationId: $c, name: $n, variables: $v, language: $l) { id kind text deliveryStatus } }";

fn order_update(language: &str, body: &str) -> Value {
    json!({ "i": {
        "name": "order_update", "language": language, "category": "UTILITY", "body": body,
        "variables": [{ "name": "order", "type": "TEXT" }, { "name": "day", "type": "DATE" }],
    }})
}

/// Meta's `message_template_status_update` for one template.
fn template_webhook(name: &str, language: &str, event: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1, "changes": [{
        "field": "message_template_status_update",
        "value": {
            "event": event, "message_template_id": 594425479261596_i64,
            "message_template_name": name, "message_template_language": language,
            "reason": if event == "APPROVED" { "NONE" } else { "INCORRECT_CATEGORY" },
        }}]}]})
    .to_string()
}

async fn meta_says(app: &TestApp, name: &str, language: &str, event: &str) {
    let response = app
        .post_webhook(&template_webhook(name, language, event))
        .await;
    assert_eq!(response.status(), 200);
    let wanted = event.to_lowercase();
    eventually(
        &format!("{name}/{language} is {wanted} at Meta"),
        || async {
            let answer = app
                .graphql(
                    "query($n: String) { templates(name: $n) { language metaStatus } }",
                    json!({ "n": name }),
                )
                .await;
            answer["data"]["templates"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|t| t["language"] == language && t["metaStatus"] == wanted.as_str())
            })
        },
    )
    .await;
}

/// The template requests Meta received, newest last.
async fn sent_templates(app: &TestApp) -> Vec<Value> {
    sent_payloads(app)
        .await
        .into_iter()
        .filter(|p| p["type"] == "template")
        .collect()
}

async fn templates_are_governed_and_sent_outside_the_window_with_checked_variables(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let supervisor = app.token(Role::Supervisor, None).await;
    let agent = app.token(Role::Agent, None).await;

    // Agents may not write templates; a malformed one is refused with its reason.
    let refused = app
        .graphql_as(
            &agent,
            CREATE,
            order_update("en", "Order {{1}} arrives {{2}}."),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let bad = app
        .graphql_as(
            &supervisor,
            CREATE,
            order_update("en", "Order {{1}} arrives."),
        )
        .await;
    assert_eq!(error_code(&bad), "invalid_input", "{bad}");

    // A supervisor drafts and submits; only an admin approves.
    let created = app
        .graphql_as(
            &supervisor,
            CREATE,
            order_update("en", "Your order {{1}} arrives on {{2}}."),
        )
        .await;
    let en = created["data"]["createTemplate"].clone();
    assert_eq!(en["status"], "draft", "{created}");
    assert_eq!(en["version"], 1);
    let en_id = en["id"].as_str().unwrap().to_owned();
    let submitted = app
        .graphql_as(&supervisor, STEP, json!({ "id": en_id }))
        .await;
    assert_eq!(submitted["data"]["submitTemplate"]["status"], "submitted");
    let forbidden = app
        .graphql_as(&supervisor, APPROVE, json!({ "id": en_id }))
        .await;
    assert_eq!(error_code(&forbidden), "forbidden", "{forbidden}");
    let approved = app.graphql(APPROVE, json!({ "id": en_id })).await;
    assert_eq!(approved["data"]["approveTemplate"]["status"], "approved");
    assert_eq!(
        approved["data"]["approveTemplate"]["sendable"], false,
        "Meta has not approved it yet"
    );
    let again = app.graphql(APPROVE, json!({ "id": en_id })).await;
    assert_eq!(error_code(&again), "invalid_template_transition", "{again}");

    // The Spanish variant, then Meta's verdicts by webhook.
    let es = app
        .graphql_as(
            &supervisor,
            CREATE,
            order_update("es", "Tu pedido {{1}} llega el {{2}}."),
        )
        .await["data"]["createTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.graphql_as(&supervisor, STEP, json!({ "id": es })).await;
    app.graphql(APPROVE, json!({ "id": es })).await;
    meta_says(&app, "order_update", "en", "APPROVED").await;
    meta_says(&app, "order_update", "es", "APPROVED").await;

    // A Spanish-speaking customer; a day later the window has closed.
    let id = customer_writes(
        &app,
        "5215512340000",
        "wamid.t1",
        "hola, dónde está mi pedido? no ha llegado",
    )
    .await;
    app.clock.advance(Duration::from_secs(25 * 3600));
    let free_form = app
        .graphql(
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"hola\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&free_form), "window_closed", "{free_form}");

    // Variables are checked before anything is called.
    for (values, mentions) in [
        (json!([{ "name": "order", "value": "****4821" }]), "day"),
        (
            json!([{ "name": "order", "value": "****4821" }, { "name": "day", "value": "2026-12-03" }, { "name": "coupon", "value": "X" }]),
            "coupon",
        ),
        (
            json!([{ "name": "order", "value": "****4821" }, { "name": "day", "value": "tomorrow" }]),
            "day",
        ),
    ] {
        let answer = app
            .graphql(
                SEND,
                json!({ "c": id, "n": "order_update", "v": values, "l": null }),
            )
            .await;
        assert_eq!(
            error_code(&answer),
            "template_variables_invalid",
            "{answer}"
        );
        assert!(answer.to_string().contains(mentions), "{answer}");
    }
    let unknown = app
        .graphql(
            SEND,
            json!({ "c": id, "n": "no_such_template", "v": [], "l": null }),
        )
        .await;
    assert_eq!(error_code(&unknown), "template_not_approved", "{unknown}");

    // In the contact's language, outside the window.
    let values =
        json!([{ "name": "day", "value": "2026-12-03" }, { "name": "order", "value": "****4821" }]);
    let sent = app
        .graphql(
            SEND,
            json!({ "c": id, "n": "order_update", "v": values, "l": null }),
        )
        .await;
    let message = &sent["data"]["sendTemplate"];
    assert_eq!(message["kind"], "template", "{sent}");
    assert_eq!(message["text"], "Tu pedido ****4821 llega el 2026-12-03.");
    message_reaches(&app, &id, message["id"].as_str().unwrap(), "SENT").await;
    let request = sent_templates(&app).await.pop().unwrap();
    assert_eq!(request["template"]["language"]["code"], "es", "{request}");
    assert_eq!(
        request["template"]["components"][0]["parameters"],
        json!([{ "type": "text", "text": "****4821" }, { "type": "text", "text": "2026-12-03" }])
    );

    // Meta pauses the Spanish variant: the fallback language goes instead.
    meta_says(&app, "order_update", "es", "PAUSED").await;
    let fallback = app
        .graphql(
            SEND,
            json!({ "c": id, "n": "order_update", "v": values, "l": null }),
        )
        .await;
    assert_eq!(
        fallback["data"]["sendTemplate"]["text"], "Your order ****4821 arrives on 2026-12-03.",
        "{fallback}"
    );

    // A marketing template needs the contact's opt-in.
    let promo = app
        .graphql_as(
            &supervisor,
            CREATE,
            json!({ "i": { "name": "winter_sale", "language": "en", "category": "MARKETING",
                "body": "Our winter sale starts today.", "variables": [] } }),
        )
        .await["data"]["createTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.graphql_as(&supervisor, STEP, json!({ "id": promo }))
        .await;
    app.graphql(APPROVE, json!({ "id": promo })).await;
    meta_says(&app, "winter_sale", "en", "APPROVED").await;
    let no_opt_in = app
        .graphql(
            SEND,
            json!({ "c": id, "n": "winter_sale", "v": [], "l": null }),
        )
        .await;
    assert_eq!(error_code(&no_opt_in), "consent_withdrawn", "{no_opt_in}");

    // Every step of the workflow is in the audit trail, with who took it.
    let actions = audit_actions(&app).await;
    for expected in [
        "template.created",
        "template.submitted",
        "template.approved",
        "template.meta_status",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} in {actions:?}"
        );
    }
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}
