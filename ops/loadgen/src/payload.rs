//! Webhook bodies, generated and signed before the timed phase: Meta's Cloud API JSON, or
//! Twilio's form-encoded webhooks for a transport channel ([`Format`]).
//!
//! A plan is the whole run laid out in advance: one signed body per request plus the key
//! (wamid, or wamid and status) that Parley must record for it. Generating and signing up
//! front keeps the sender's CPU on sending, which matters on a machine whose cores are
//! shared with the server under test.
//!
//! The mix imitates one business number: inbound text messages from a fixed population of
//! customers (each customer's messages carry increasing timestamps, in send order), and
//! status callbacks (`sent` → `delivered` → `read`) for the business's outbound messages,
//! each outbound message's statuses in order.

use std::collections::VecDeque;
use std::fmt::Write as _;

use anyhow::{Context, Result, ensure};
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::Sha256;

/// First customer wa_id; customer `k` is `FIRST_WA_ID + k`.
const FIRST_WA_ID: u64 = 16_505_550_000;
/// The WhatsApp Business Account id placed in `entry[].id`.
const WABA_ID: &str = "102290129340398";
/// Allocation unit for the arena the bodies are written into.
const ARENA_CHUNK: usize = 1 << 20;
/// Simulated production pace, used only to spread the payload timestamps.
const EVENTS_PER_SECOND: u64 = 1_000;

/// Phrases customers write; cycled to fill a text body of the requested size.
const PHRASES: &[&str] = &[
    "Hi, my order has not arrived yet. ",
    "Does it come in another color? ",
    "I was charged twice for the same order, please check. ",
    "Can I change my appointment to Thursday afternoon? ",
    "The app keeps logging me out since the last update. ",
    "Where is my refund? It has been ten days. ",
    "Thanks, that solved it! ",
    "Is the store open on Sunday? ",
];

/// What Parley must record for one acknowledged request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExpectedRecord {
    /// An inbound message: a row in `messages` with this `provider_message_id`.
    Message { wamid: String },
    /// A status callback: a row in `message_statuses` with this id and status.
    Status {
        wamid: String,
        status: DeliveryStatus,
    },
}

/// The statuses Meta reports for an outbound message, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
        }
    }

    fn next(self) -> Option<DeliveryStatus> {
        match self {
            DeliveryStatus::Sent => Some(DeliveryStatus::Delivered),
            DeliveryStatus::Delivered => Some(DeliveryStatus::Read),
            DeliveryStatus::Read => None,
        }
    }
}

/// One request ready to go on the wire.
#[derive(Debug, Clone)]
pub struct SignedBody {
    pub body: Bytes,
    /// Value of the format's signature header (`X-Hub-Signature-256: sha256=<hex>`, or
    /// `X-Twilio-Signature: <base64>`).
    pub signature: HeaderValue,
}

/// How the bodies are written and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Meta's Cloud API: JSON, HMAC-SHA256 of the body in `X-Hub-Signature-256`.
    CloudApi,
    /// Twilio's WhatsApp webhooks: form-encoded, HMAC-SHA1 of `public_url` followed by
    /// the parameters sorted by name (base64) in `X-Twilio-Signature`; message ids are
    /// the same `wamid.LG...` keys, so verification is unchanged.
    Twilio {
        /// The URL Twilio would have called, as the server's channel knows it.
        public_url: String,
    },
}

impl Format {
    pub fn signature_header(&self) -> &'static str {
        match self {
            Format::CloudApi => "x-hub-signature-256",
            Format::Twilio { .. } => "x-twilio-signature",
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Format::CloudApi => "application/json",
            Format::Twilio { .. } => "application/x-www-form-urlencoded",
        }
    }
}

/// The account id in Twilio bodies.
const TWILIO_ACCOUNT_SID: &str = "ACb0000000000000000000000000000000";

/// Settings of the generated traffic.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Embedded in every wamid so runs never collide (`wamid.LG<run_id>-<n>`).
    pub run_id: String,
    pub requests: usize,
    /// Share of requests that are inbound messages, 0 to 100; the rest are statuses.
    pub message_percent: f64,
    pub customers: u32,
    pub text_bytes: usize,
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// The signing secret: the channel's app secret (Cloud API) or auth token (Twilio).
    pub app_secret: String,
    pub format: Format,
    pub seed: u64,
    /// Unix time of the first payload's `timestamp`.
    pub start_unix: u64,
}

/// The whole run, generated in advance.
#[derive(Debug, Default)]
pub struct Plan {
    pub requests: Vec<SignedBody>,
    /// `records[i]` is what request `i` must produce once processed.
    pub records: Vec<ExpectedRecord>,
    pub messages: usize,
    pub statuses: usize,
    pub body_bytes: u64,
}

impl Plan {
    /// The wamid prefix shared by every payload of a run.
    pub fn wamid_prefix(run_id: &str) -> String {
        format!("wamid.LG{run_id}-")
    }
}

/// An outbound message whose later statuses are still to be reported.
struct PendingOutbound {
    wamid: String,
    customer: u32,
    next: DeliveryStatus,
}

/// Builds every body of the run and signs it with the channel's app secret.
pub fn generate(settings: &PlanSettings) -> Result<Plan> {
    ensure!(settings.customers > 0, "at least one customer is needed");
    ensure!(
        (0.0..=100.0).contains(&settings.message_percent),
        "message share must be between 0 and 100 %"
    );
    ensure!(
        settings.run_id.chars().all(|c| c.is_ascii_alphanumeric()),
        "run id must be ASCII letters and digits"
    );
    let mac = Hmac::<Sha256>::new_from_slice(settings.app_secret.as_bytes())
        .context("Failed to key HMAC-SHA256 with the app secret")?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let prefix = Plan::wamid_prefix(&settings.run_id);
    let text = filler_text(settings.text_bytes);
    let message_share = settings.message_percent / 100.0;

    let mut plan = Plan {
        requests: Vec::with_capacity(settings.requests),
        records: Vec::with_capacity(settings.requests),
        ..Plan::default()
    };
    let mut arena = BytesMut::with_capacity(ARENA_CHUNK);
    let mut scratch = String::with_capacity(1024 + settings.text_bytes);
    let mut pending: VecDeque<PendingOutbound> = VecDeque::new();
    let mut next_inbound = 0u64;
    let mut next_outbound = 0u64;

    for i in 0..settings.requests {
        scratch.clear();
        let timestamp = settings.start_unix + i as u64 / EVENTS_PER_SECOND;
        let record = if rng.gen_bool(message_share) {
            let customer = rng.gen_range(0..settings.customers);
            let wamid = format!("{prefix}{next_inbound}");
            next_inbound += 1;
            // Vary where the text starts so bodies are not byte-identical.
            let shift = (i * 7) % text.len().max(1);
            let body_text = rotate(&text, shift);
            match &settings.format {
                Format::CloudApi => write_message(
                    &mut scratch,
                    settings,
                    customer,
                    &wamid,
                    timestamp,
                    &body_text,
                )?,
                Format::Twilio { .. } => {
                    twilio_message(&mut scratch, settings, customer, &wamid, &body_text)
                }
            }
            plan.messages += 1;
            ExpectedRecord::Message { wamid }
        } else {
            // A third of the callbacks open a new outbound message ("sent"); the others
            // advance the oldest one still in flight, so each message's statuses stay in order.
            let advance = !pending.is_empty() && rng.gen_range(0..3) != 0;
            let (wamid, customer, status) = if advance {
                let mut out = pending
                    .pop_front()
                    .context("pending outbound queue unexpectedly empty")?;
                let status = out.next;
                let wamid = out.wamid.clone();
                let customer = out.customer;
                if let Some(next) = status.next() {
                    out.next = next;
                    pending.push_back(out);
                }
                (wamid, customer, status)
            } else {
                let customer = rng.gen_range(0..settings.customers);
                let wamid = format!("{prefix}o{next_outbound}");
                next_outbound += 1;
                pending.push_back(PendingOutbound {
                    wamid: wamid.clone(),
                    customer,
                    next: DeliveryStatus::Delivered,
                });
                (wamid, customer, DeliveryStatus::Sent)
            };
            match &settings.format {
                Format::CloudApi => {
                    write_status(&mut scratch, settings, customer, &wamid, status, timestamp)?
                }
                Format::Twilio { .. } => twilio_status(&mut scratch, customer, &wamid, status),
            }
            plan.statuses += 1;
            ExpectedRecord::Status { wamid, status }
        };

        let body = scratch.as_bytes();
        let signature = match &settings.format {
            Format::CloudApi => {
                let mut signer = mac.clone();
                signer.update(body);
                format!("sha256={}", hex::encode(signer.finalize().into_bytes()))
            }
            Format::Twilio { public_url } => {
                twilio_signature(&settings.app_secret, public_url, body)?
            }
        };

        let needed = body.len() + signature.len();
        if arena.capacity() - arena.len() < needed {
            arena.reserve(ARENA_CHUNK.max(needed));
        }
        arena.extend_from_slice(body);
        let body_bytes = arena.split().freeze();
        arena.extend_from_slice(signature.as_bytes());
        let signature = HeaderValue::from_maybe_shared(arena.split().freeze())
            .context("Failed to build the signature header")?;

        plan.body_bytes += body_bytes.len() as u64;
        plan.requests.push(SignedBody {
            body: body_bytes,
            signature,
        });
        plan.records.push(record);
    }
    Ok(plan)
}

/// Computes the `X-Hub-Signature-256` value for a body.
pub fn sign(app_secret: &str, body: &[u8]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .context("Failed to key HMAC-SHA256 with the app secret")?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Computes the `X-Twilio-Signature` value for a form-encoded body sent to `url`.
pub fn twilio_signature(auth_token: &str, url: &str, body: &[u8]) -> Result<String> {
    use base64::Engine as _;
    let mut params: Vec<(String, String)> = form_pairs(body);
    params.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .context("Failed to key HMAC-SHA1 with the auth token")?;
    mac.update(url.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Percent-encodes one form value (`application/x-www-form-urlencoded`).
fn form_encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// Decodes a form body the generator wrote (names and values as sent).
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |part: &str| -> String {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn write_form(out: &mut String, params: &[(&str, &str)]) {
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode(out, name);
        out.push('=');
        form_encode(out, value);
    }
}

fn twilio_message(out: &mut String, settings: &PlanSettings, customer: u32, sid: &str, text: &str) {
    let wa = wa_id(customer).to_string();
    write_form(
        out,
        &[
            ("MessageSid", sid),
            ("SmsMessageSid", sid),
            ("AccountSid", TWILIO_ACCOUNT_SID),
            ("From", &format!("whatsapp:+{wa}")),
            (
                "To",
                &format!("whatsapp:+{}", settings.display_phone_number),
            ),
            ("Body", text),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("ProfileName", &format!("Customer {customer}")),
            ("WaId", &wa),
            ("SmsStatus", "received"),
            ("MessageType", "text"),
            ("ApiVersion", "2010-04-01"),
        ],
    );
}

fn twilio_status(out: &mut String, customer: u32, sid: &str, status: DeliveryStatus) {
    write_form(
        out,
        &[
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", TWILIO_ACCOUNT_SID),
            ("MessageStatus", status.as_str()),
            ("SmsStatus", status.as_str()),
            ("To", &format!("whatsapp:+{}", wa_id(customer))),
            ("ChannelPrefix", "whatsapp"),
            ("ApiVersion", "2010-04-01"),
        ],
    );
}

fn wa_id(customer: u32) -> u64 {
    FIRST_WA_ID + u64::from(customer)
}

fn write_envelope_start(out: &mut String, settings: &PlanSettings) -> Result<()> {
    write!(
        out,
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA_ID}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"{}","phone_number_id":"{}"}},"#,
        settings.display_phone_number, settings.phone_number_id
    )?;
    Ok(())
}

const ENVELOPE_END: &str = r#"},"field":"messages"}]}]}"#;

fn write_message(
    out: &mut String,
    settings: &PlanSettings,
    customer: u32,
    wamid: &str,
    timestamp: u64,
    text: &str,
) -> Result<()> {
    let wa = wa_id(customer);
    write_envelope_start(out, settings)?;
    write!(
        out,
        r#""contacts":[{{"profile":{{"name":"Customer {customer}"}},"wa_id":"{wa}"}}],"messages":[{{"from":"{wa}","id":"{wamid}","timestamp":"{timestamp}","text":{{"body":"{text}"}},"type":"text"}}]"#
    )?;
    out.push_str(ENVELOPE_END);
    Ok(())
}

fn write_status(
    out: &mut String,
    settings: &PlanSettings,
    customer: u32,
    wamid: &str,
    status: DeliveryStatus,
    timestamp: u64,
) -> Result<()> {
    let wa = wa_id(customer);
    write_envelope_start(out, settings)?;
    write!(
        out,
        r#""statuses":[{{"id":"{wamid}","status":"{}","timestamp":"{timestamp}","recipient_id":"{wa}""#,
        status.as_str()
    )?;
    // Meta attaches conversation and pricing details to `sent` and `delivered`.
    if status != DeliveryStatus::Read {
        write!(
            out,
            r#","conversation":{{"id":"{:032x}","origin":{{"type":"service"}}}},"pricing":{{"billable":true,"pricing_model":"CBP","category":"service"}}"#,
            wa
        )?;
    }
    out.push_str("}]");
    out.push_str(ENVELOPE_END);
    Ok(())
}

/// ASCII text of exactly `len` bytes with nothing that needs JSON escaping.
fn filler_text(len: usize) -> String {
    let mut text = String::with_capacity(len + 64);
    let mut i = 0;
    while text.len() < len {
        text.push_str(PHRASES[i % PHRASES.len()]);
        i += 1;
    }
    text.truncate(len);
    text
}

fn rotate(text: &str, shift: usize) -> String {
    // Filler text is ASCII, so any byte offset is a char boundary.
    let (head, tail) = text.split_at(shift.min(text.len()));
    let mut out = String::with_capacity(text.len());
    out.push_str(tail);
    out.push_str(head);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(requests: usize) -> PlanSettings {
        PlanSettings {
            run_id: "t1".into(),
            requests,
            message_percent: 30.0,
            customers: 50,
            text_bytes: 100,
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            app_secret: "secret".into(),
            format: Format::CloudApi,
            seed: 7,
            start_unix: 1_750_000_000,
        }
    }

    #[test]
    fn bodies_are_valid_meta_json_and_correctly_signed() -> Result<()> {
        let plan = generate(&settings(500))?;
        assert_eq!(plan.requests.len(), 500);
        for (req, record) in plan.requests.iter().zip(&plan.records) {
            let expected = sign("secret", &req.body)?;
            assert_eq!(req.signature.to_str()?, expected);
            let v: serde_json::Value = serde_json::from_slice(&req.body)?;
            let value = &v["entry"][0]["changes"][0]["value"];
            assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
            match record {
                ExpectedRecord::Message { wamid } => {
                    assert_eq!(value["messages"][0]["id"], wamid.as_str());
                    let text = value["messages"][0]["text"]["body"]
                        .as_str()
                        .context("text body")?;
                    assert_eq!(text.len(), 100);
                }
                ExpectedRecord::Status { wamid, status } => {
                    assert_eq!(value["statuses"][0]["id"], wamid.as_str());
                    assert_eq!(value["statuses"][0]["status"], status.as_str());
                }
            }
        }
        Ok(())
    }

    #[test]
    fn twilio_bodies_carry_the_same_keys_and_twilios_signature() -> Result<()> {
        let url = "https://parley.example.com/webhooks/twilio-bench";
        let plan = generate(&PlanSettings {
            format: Format::Twilio {
                public_url: url.into(),
            },
            ..settings(200)
        })?;
        for (req, record) in plan.requests.iter().zip(&plan.records) {
            let params = form_pairs(&req.body);
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            match record {
                ExpectedRecord::Message { wamid } => {
                    assert_eq!(get("MessageSid"), Some(wamid.as_str()));
                    assert_eq!(get("Body").map(str::len), Some(100));
                }
                ExpectedRecord::Status { wamid, status } => {
                    assert_eq!(get("MessageSid"), Some(wamid.as_str()));
                    assert_eq!(get("MessageStatus"), Some(status.as_str()));
                }
            }
            assert_eq!(
                req.signature.to_str()?,
                twilio_signature("secret", url, &req.body)?
            );
        }
        // Twilio's documented example.
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234&From=%2B14158675310&To=%2B18005551212";
        assert_eq!(
            twilio_signature("12345", "https://example.com/myapp.php?foo=1&bar=2", body)?,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
        Ok(())
    }

    #[test]
    fn mix_follows_the_requested_share() -> Result<()> {
        let plan = generate(&settings(20_000))?;
        let share = plan.messages as f64 / 20_000.0;
        assert!((share - 0.30).abs() < 0.02, "message share {share}");
        assert_eq!(plan.messages + plan.statuses, 20_000);
        Ok(())
    }

    #[test]
    fn keys_are_unique_and_statuses_come_in_order() -> Result<()> {
        let plan = generate(&settings(20_000))?;
        let mut seen = std::collections::HashSet::new();
        let mut last_status: std::collections::HashMap<&str, DeliveryStatus> =
            std::collections::HashMap::new();
        for record in &plan.records {
            assert!(seen.insert(record.clone()), "duplicate {record:?}");
            if let ExpectedRecord::Status { wamid, status } = record {
                let previous = last_status.insert(wamid, *status);
                let expected_previous = match status {
                    DeliveryStatus::Sent => None,
                    DeliveryStatus::Delivered => Some(DeliveryStatus::Sent),
                    DeliveryStatus::Read => Some(DeliveryStatus::Delivered),
                };
                assert_eq!(previous, expected_previous, "{wamid}");
            }
        }
        Ok(())
    }

    #[test]
    fn same_seed_gives_same_bodies() -> Result<()> {
        let a = generate(&settings(100))?;
        let b = generate(&settings(100))?;
        assert!(
            a.requests
                .iter()
                .zip(&b.requests)
                .all(|(x, y)| x.body == y.body)
        );
        Ok(())
    }
}
