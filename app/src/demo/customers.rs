//! The demo's simulated customers: what they write, in which language, and when. Each
//! message reaches Parley as Meta would send it, a signed webhook.

use super::APP_SECRET;
use super::graph::{PHOTO_ID_PREFIX, REFUSING_RECIPIENT};
use super::photo;
use crate::ingest::signature::sign_meta;
use serde_json::{Value, json};
use std::time::Duration;

/// What a simulated customer sends.
pub enum Says {
    Text(&'static str),
    /// A photo: the webhook names it by media id, Parley fetches it from the fake Graph
    /// API ([`super::photo`]) and the inbox shows it.
    Photo {
        caption: &'static str,
    },
}

/// One scripted message.
pub struct Line {
    pub wa_id: &'static str,
    pub name: &'static str,
    pub says: Says,
    /// Hours before now that Meta stamps the message with (a late delivery).
    pub stamped_hours_ago: i64,
    /// Pace steps to wait before the next line (0: at once, for the spam wave).
    pub then_wait: u32,
}

const fn text(wa_id: &'static str, name: &'static str, says: &'static str) -> Line {
    Line {
        wa_id,
        name,
        says: Says::Text(says),
        stamped_hours_ago: 0,
        then_wait: 1,
    }
}

const fn spam(wa_id: &'static str) -> Line {
    Line {
        wa_id,
        name: "Promo",
        says: Says::Text(
            "CONGRATULATIONS!!! You WON a free iPhone 15. Claim now at http://bit.ly/fr33-ph0ne before it expires!!!",
        ),
        stamped_hours_ago: 0,
        then_wait: 0,
    }
}

/// The double-charge customer; the demo's assistant drafts a reply to them that waits for
/// a supervisor's approval.
pub const DOUBLE_CHARGE: &str = "34600000002";

/// The script, in order. The same people write again on later rounds.
pub const SCRIPT: &[Line] = &[
    text(
        "15550000001",
        "Kerry Fisher",
        "Hi! Where is my order A-10024? It was supposed to arrive on Monday.",
    ),
    text(
        DOUBLE_CHARGE,
        "Lucía Romero",
        "Hola, me cobraron dos veces el mismo pedido en la tarjeta. Necesito que me devuelvan el dinero.",
    ),
    Line {
        wa_id: "919800000003",
        name: "Priya Sharma",
        says: Says::Photo {
            caption: "मेरा लैंप टूटा हुआ आया है, बॉक्स भी फटा था। The lamp arrived broken.",
        },
        stamped_hours_ago: 0,
        then_wait: 1,
    },
    text(
        "447700000004",
        "James Whitfield",
        "This is the third time I'm writing. If the refund isn't on my card by Friday my lawyer will be in touch and I'll file a chargeback.",
    ),
    spam("2348000000051"),
    spam("2348000000052"),
    spam("2348000000053"),
    spam("2348000000054"),
    Line {
        then_wait: 1,
        ..spam("2348000000055")
    },
    text(
        "966500000006",
        "نورة العتيبي",
        "السلام عليكم، طلبي لم يصل بعد. متى سيصل؟ رقم الطلب A-10031",
    ),
    text(
        "6281200000007",
        "Budi Santoso",
        "Kak, aplikasinya lagi down ya? Dari tadi tidak bisa login.",
    ),
    text(
        "5511900000008",
        "Mariana Costa",
        "Muito obrigada pela ajuda de ontem, chegou tudo certinho! 😊",
    ),
    Line {
        wa_id: REFUSING_RECIPIENT,
        name: "Omar Haddad",
        says: Says::Text("Hello, can you change the delivery address of my order?"),
        stamped_hours_ago: 26,
        then_wait: 1,
    },
    text(
        "15550000001",
        "Kerry Fisher",
        "Any news on A-10024? The tracking page hasn't changed since Saturday.",
    ),
];

/// The webhook Meta would send for `line`; `round` makes message ids unique across rounds.
pub fn webhook(line: &Line, round: u32, index: usize) -> String {
    let wamid = format!("wamid.DEMO-IN-{round}-{index}");
    let stamped = chrono::Utc::now().timestamp() - line.stamped_hours_ago * 3600;
    let mut message = json!({
        "from": line.wa_id,
        "id": wamid,
        "timestamp": stamped.to_string(),
    });
    match &line.says {
        Says::Text(body) => {
            message["type"] = json!("text");
            message["text"] = json!({ "body": body });
        }
        Says::Photo { caption } => {
            message["type"] = json!("image");
            message["image"] = json!({
                "id": format!("{PHOTO_ID_PREFIX}{round}-{index}"),
                "mime_type": photo::MIME_TYPE,
                "sha256": photo::sha256(),
                "caption": caption
            });
        }
    }
    envelope(line, message).to_string()
}

fn envelope(line: &Line, message: Value) -> Value {
    super::webhook(json!({
        "contacts": [{ "profile": { "name": line.name }, "wa_id": line.wa_id }],
        "messages": [message]
    }))
}

/// Posts the script to `webhook_url` at `pace` per step, round after round, until the
/// task is dropped. `on_line` hears of each line once Parley took it in.
pub async fn run(
    http: reqwest::Client,
    webhook_url: String,
    pace: Duration,
    mut on_line: impl FnMut(&'static Line),
) {
    let mut round = 0;
    loop {
        round += 1;
        for (index, line) in SCRIPT.iter().enumerate() {
            let body = webhook(line, round, index);
            let sent = http
                .post(&webhook_url)
                .header(
                    "X-Hub-Signature-256",
                    sign_meta(APP_SECRET.as_bytes(), body.as_bytes()),
                )
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => on_line(line),
                Ok(response) => {
                    tracing::warn!(status = %response.status(), "Parley refused a demo webhook.")
                }
                Err(error) => tracing::warn!(error = %error, "A demo webhook was not delivered."),
            }
            tokio::time::sleep(pace * line.then_wait).await;
        }
        // A pause between rounds, so the inbox can be read.
        tokio::time::sleep(pace * 12).await;
    }
}
