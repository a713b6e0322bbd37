//! The reference plugins from `plugins/dist/` (built by `plugins/build.sh`)
//! against fake back ends on 127.0.0.1.

use std::path::PathBuf;

use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::plugins::{
    CustomerKey, DeliveryState, InboundHttpRequest, InboundItem, OrderStatus, OutboundContent,
    OutboundMessage, PluginError, PluginRegistry, ReportedError, StaticSecrets, TemplateMessage,
};

/// A built reference plugin; fails with a clear message when it is missing.
fn dist(name: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/dist"))
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run plugins/build.sh first",
        path.display()
    );
    path
}

async fn crm_registry(server: &MockServer, dir: &PluginDir, base_url: &str) -> PluginRegistry {
    let registry = registry(StaticSecrets::new().with("crm-http", "api_token", "s3cret"));
    let settings = format!(
        r#"allowed_hosts = ["{origin}"]
secrets = ["api_token"]
[settings]
base_url = "{base_url}"
lookup_by_wa_id = "/customers?whatsapp={{wa_id}}"
result_path = "/data/0"
vip_tiers = ["gold"]
[settings.fields]
name = "full_name"
plan = "subscription.plan"
[settings.fields.attributes]
Company = "company.name"
"#,
        origin = server.uri(),
    );
    let manifest = dir.manifest(
        "crm-http",
        "crm-connector@0.1",
        &dist("crm-http"),
        &settings,
    );
    registry.load(&manifest).await.unwrap();
    registry
}

#[tokio::test]
async fn crm_http_maps_a_customer_from_the_crm() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .and(query_param("whatsapp", "4915112345678"))
        .and(header("authorization", "Bearer s3cret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{
                "id": 42,
                "full_name": "Ana Souza",
                "tier": "gold",
                "subscription": {"plan": "business"},
                "company": {"name": "ACME"}
            }]
        })))
        .mount(&server)
        .await;
    let dir = PluginDir::new();
    let registry = crm_registry(&server, &dir, &server.uri()).await;
    let crm = registry.crm("crm-http").unwrap();
    crm.handle().health_check().await.unwrap();

    let profile = crm
        .lookup_customer(CustomerKey::WaId("4915112345678".into()))
        .await
        .unwrap();
    assert_eq!(profile.external_id.as_deref(), Some("42"));
    assert_eq!(profile.name.as_deref(), Some("Ana Souza"));
    assert!(profile.vip, "gold is a VIP tier");
    assert_eq!(profile.plan.as_deref(), Some("business"));
    assert_eq!(
        profile.attributes,
        vec![("Company".to_owned(), "ACME".to_owned())]
    );
    let status = registry.status("crm-http").unwrap();
    assert_eq!((status.stats.calls, status.stats.errors), (2, 0));
    assert!(status.stats.p50_ms.is_some());
}

#[tokio::test]
async fn crm_http_reports_unknown_customers_and_crm_outages_as_typed_errors() {
    let server = MockServer::start().await;
    Mock::given(query_param("whatsapp", "111"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(query_param("whatsapp", "222"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(query_param("whatsapp", "333"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    let dir = PluginDir::new();
    let registry = crm_registry(&server, &dir, &server.uri()).await;
    let crm = registry.crm("crm-http").unwrap();
    let reported = |r: Result<_, PluginError>| match r {
        Err(PluginError::Reported { error, .. }) => error,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reported(crm.lookup_customer(CustomerKey::WaId("111".into())).await),
        ReportedError::NotFound
    );
    assert!(matches!(
        reported(crm.lookup_customer(CustomerKey::WaId("222".into())).await),
        ReportedError::Retryable(_)
    ));
    assert_eq!(
        reported(crm.lookup_customer(CustomerKey::WaId("333".into())).await),
        ReportedError::RateLimited(Some(7000))
    );
}

#[tokio::test]
async fn crm_http_cannot_reach_a_host_outside_its_manifest() {
    let server = MockServer::start().await;
    let dir = PluginDir::new();
    // Allowed: the fake CRM's origin. Configured: another port.
    let registry = crm_registry(&server, &dir, "http://127.0.0.1:9").await;
    let outcome = registry
        .crm("crm-http")
        .unwrap()
        .lookup_customer(CustomerKey::WaId("1".into()))
        .await;
    match outcome {
        Err(PluginError::HostNotAllowed { origin, .. }) => assert_eq!(origin, "http://127.0.0.1:9"),
        other => panic!("{other:?}"),
    }
}

pub(super) const TWILIO_TOKEN: &str = "twilio-auth-token";
const WEBHOOK_URL: &str = "https://parley.example.com/webhooks/twilio-main";

pub(super) async fn twilio_registry(server: &MockServer, dir: &PluginDir) -> PluginRegistry {
    let registry = registry(StaticSecrets::new().with("twilio", "auth_token", TWILIO_TOKEN));
    let settings = format!(
        r#"allowed_hosts = ["{uri}"]
secrets = ["auth_token"]
[settings]
account_sid = "AC123"
api_base = "{uri}"
default_sender = "+14155238886"
"#,
        uri = server.uri(),
    );
    let manifest = dir.manifest("twilio", "transport@0.1", &dist("twilio"), &settings);
    registry.load(&manifest).await.unwrap();
    registry
}

/// A webhook as Twilio would send it, signed with `token`.
pub(super) fn twilio_webhook(token: &str, params: &[(&str, &str)]) -> InboundHttpRequest {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(WEBHOOK_URL.as_bytes());
    for (k, v) in &sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    InboundHttpRequest {
        method: "POST".into(),
        url: WEBHOOK_URL.into(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-twilio-signature".into(), signature),
        ],
        body: body.into_bytes(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn twilio_verifies_and_parses_inbound_messages_and_statuses() {
    let server = MockServer::start().await;
    let dir = PluginDir::new();
    let registry = twilio_registry(&server, &dir).await;
    let twilio = registry.transport("twilio").unwrap();
    twilio.handle().health_check().await.unwrap();

    let message = twilio_webhook(
        TWILIO_TOKEN,
        &[
            ("MessageSid", "SM0001"),
            ("AccountSid", "AC123"),
            ("From", "whatsapp:+4915112345678"),
            ("To", "whatsapp:+14155238886"),
            ("Body", "Where is my order A-10023?"),
            ("ProfileName", "Ana"),
            ("WaId", "4915112345678"),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/media/ME1"),
            ("MediaContentType0", "image/jpeg"),
        ],
    );
    let items = twilio.verify_and_parse(message.clone()).await.unwrap();
    let [InboundItem::Message(m)] = items.as_slice() else {
        panic!("{items:?}")
    };
    assert_eq!(m.provider_message_id, "SM0001");
    assert_eq!(m.from_wa_id, "4915112345678");
    assert_eq!(m.text.as_deref(), Some("Where is my order A-10023?"));
    assert_eq!(m.media[0].url, "https://api.twilio.com/media/ME1");

    let status = twilio_webhook(
        TWILIO_TOKEN,
        &[
            ("MessageSid", "SM0002"),
            ("MessageStatus", "read"),
            ("To", "whatsapp:+4915112345678"),
        ],
    );
    let items = twilio.verify_and_parse(status).await.unwrap();
    let [InboundItem::Status(s)] = items.as_slice() else {
        panic!("{items:?}")
    };
    assert_eq!(s.state, DeliveryState::Read);

    // Forged: signed with another token. Refused, and not held against the plugin.
    let forged = twilio_webhook("not-the-token", &[("MessageSid", "SM0003"), ("Body", "hi")]);
    let outcome = twilio.verify_and_parse(forged).await;
    assert!(
        matches!(
            outcome,
            Err(PluginError::Reported {
                error: ReportedError::Unauthorized(_),
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(
        registry.status("twilio").unwrap().health,
        crate::plugins::PluginHealth::Healthy
    );
}

#[tokio::test]
async fn twilio_sends_through_the_messages_resource_and_maps_its_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        // base64("AC123:twilio-auth-token")
        .and(header(
            "authorization",
            "Basic QUMxMjM6dHdpbGlvLWF1dGgtdG9rZW4=",
        ))
        .and(body_string_contains("To=whatsapp%3A%2B4915112345678"))
        .and(body_string_contains("Body=Your+order+ships+today"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SMabc", "status": "queued"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Body=late"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code": 63016, "message": "Failed to send freeform message because you are outside the allowed window.", "status": 400
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("ContentSid=HX42"))
        .and(body_string_contains(
            "ContentVariables=%7B%221%22%3A%22A-10023%22%7D",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SMtpl"})))
        .mount(&server)
        .await;
    let dir = PluginDir::new();
    let registry = twilio_registry(&server, &dir).await;
    let twilio = registry.transport("twilio").unwrap();
    let text = |body: &str| OutboundMessage {
        to_wa_id: "4915112345678".into(),
        sender: None,
        content: OutboundContent::Text(body.into()),
        reply_to: None,
        idempotency_key: None,
    };
    assert_eq!(
        twilio.send(text("Your order ships today")).await.unwrap(),
        "SMabc"
    );
    let outcome = twilio.send(text("late")).await;
    assert!(
        matches!(
            outcome,
            Err(PluginError::Reported {
                error: ReportedError::WindowClosed,
                ..
            })
        ),
        "{outcome:?}"
    );
    let template = OutboundMessage {
        content: OutboundContent::Template(TemplateMessage {
            name: "order_update".into(),
            language: "en".into(),
            parameters: vec!["A-10023".into()],
            provider_template_id: Some("HX42".into()),
        }),
        ..text("")
    };
    assert_eq!(twilio.send(template).await.unwrap(), "SMtpl");
}

#[tokio::test]
async fn orders_http_looks_up_orders_and_recent_orders() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/A-10023"))
        .and(header("x-api-key", "shop-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"order": {
            "number": "A-10023", "fulfillment_status": "in_transit", "total_price": "59.90", "currency": "EUR",
            "shipping": {"carrier": "DHL", "tracking_number": "JJD000", "estimated_delivery": "2025-06-02"},
            "line_items": [{"title": "Kettle", "quantity": 1, "sku": "K-1", "price": "59.90"}]
        }})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/NOPE"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("customer_whatsapp", "4915112345678"))
        .and(query_param("limit", "5"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"orders": [
                {"number": "A-2", "fulfillment_status": "delivered"},
                {"number": "A-1", "fulfillment_status": "cancelled"}
            ]})),
        )
        .mount(&server)
        .await;
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new().with("orders-http", "api_token", "shop-key"));
    let settings = format!(
        r#"allowed_hosts = ["{uri}"]
secrets = ["api_token"]
[settings]
base_url = "{uri}"
order_path = "/orders/{{order_id}}"
recent_path = "/orders?customer_whatsapp={{wa_id}}&limit={{limit}}"
auth_header = "x-api-key"
auth_scheme = ""
order_result_path = "/order"
list_result_path = "/orders"
[settings.fields]
id = "number"
status = "fulfillment_status"
eta = "shipping.estimated_delivery"
carrier = "shipping.carrier"
tracking_number = "shipping.tracking_number"
total = "total_price"
items = "line_items"
[settings.item_fields]
name = "title"
unit_price = "price"
"#,
        uri = server.uri(),
    );
    let manifest = dir.manifest(
        "orders-http",
        "order-connector@0.1",
        &dist("orders-http"),
        &settings,
    );
    registry.load(&manifest).await.unwrap();
    let orders = registry.orders("orders-http").unwrap();

    let order = orders.lookup_order("A-10023").await.unwrap();
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.eta.as_deref(), Some("2025-06-02"));
    assert_eq!(order.carrier.as_deref(), Some("DHL"));
    assert_eq!(order.items[0].name, "Kettle");
    assert_eq!(
        order.total.as_ref().map(|m| m.amount.as_str()),
        Some("59.90")
    );

    let outcome = orders.lookup_order("NOPE").await;
    assert!(
        matches!(
            outcome,
            Err(PluginError::Reported {
                error: ReportedError::NotFound,
                ..
            })
        ),
        "{outcome:?}"
    );

    let recent = orders.recent_orders("4915112345678", 5).await.unwrap();
    let summary: Vec<(&str, OrderStatus)> =
        recent.iter().map(|o| (o.id.as_str(), o.status)).collect();
    assert_eq!(
        summary,
        vec![
            ("A-2", OrderStatus::Delivered),
            ("A-1", OrderStatus::Cancelled)
        ]
    );
}

#[tokio::test]
async fn a_plugin_sees_only_the_secrets_its_manifest_lists() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer s3cret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "Ana"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let dir = PluginDir::new();
    // The configuration holds a token for crm-http and one for another
    // plugin, but this manifest lists no secrets.
    let registry = registry(
        StaticSecrets::new()
            .with("crm-http", "api_token", "s3cret")
            .with("twilio", "auth_token", "other"),
    );
    let settings = format!(
        "allowed_hosts = [\"{uri}\"]\n[settings]\nbase_url = \"{uri}\"\nlookup_by_wa_id = \"/c/{{wa_id}}\"\n",
        uri = server.uri()
    );
    let manifest = dir.manifest(
        "crm-http",
        "crm-connector@0.1",
        &dist("crm-http"),
        &settings,
    );
    registry.load(&manifest).await.unwrap();
    let outcome = registry
        .crm("crm-http")
        .unwrap()
        .lookup_customer(CustomerKey::WaId("1".into()))
        .await;
    assert!(
        matches!(
            outcome,
            Err(PluginError::Reported {
                error: ReportedError::Unauthorized(_),
                ..
            })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn shipped_manifests_fit_their_components_and_pass_check() {
    let registry = registry(StaticSecrets::new());
    let secrets: std::sync::Arc<dyn crate::plugins::SecretSource> =
        std::sync::Arc::new(StaticSecrets::new().with("twilio", "auth_token", "token"));
    for name in ["crm-http", "orders-http", "twilio"] {
        let manifest = dist(name).with_extension("toml");
        let report = crate::plugins::check(registry.runtime(), &secrets, &manifest)
            .await
            .unwrap();
        assert_eq!(report.id, name);
        // crm-http and orders-http list `api_token`, which this test leaves out.
        assert!(report.smoke.is_ok(), "{name}: {:?}", report.smoke);
    }
}
