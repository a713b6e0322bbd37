//! Media both ways, through the real server: an inbound file fetched from a fake Graph
//! API in Meta's two steps and checked (sha256, size, type), loaded through a signed URL
//! that expires and cannot be altered, refused to auditors, an upload sent exactly once
//! however often its send is retried, erased with its contact, and kept in an S3 store.

use crate::helpers::*;
use parley::clock::Clock;
use parley::domain::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

const CUSTOMER: &str = "4917612345001";
/// A few bytes that stand for a JPEG (the type is what the provider says it is).
const PHOTO: &[u8] = b"\xff\xd8\xff\xe0 a photo of a broken parcel \xff\xd9";

const MEDIA_QUERY: &str = r#"query($id: ID!) { conversation(id: $id) { messages(first: 50) { edges { node {
    id kind text media { id kind mimeType size fileName caption sha256 fetchState failureReason url } } } } } }"#;

/// Meta's first step answers where the bytes are; the second gives them, to the bearer
/// of the channel's token only.
async fn meta_serves_media(app: &TestApp, media_id: &str, bytes: &[u8], sha256: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{media_id}")))
        .and(header("authorization", "Bearer test-access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/download/{media_id}", app.meta.uri()),
            "mime_type": "image/jpeg",
            "sha256": sha256,
            "file_size": bytes.len(),
            "id": media_id,
        })))
        .mount(&app.meta)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/download/{media_id}")))
        .and(header("authorization", "Bearer test-access-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(bytes.to_vec()),
        )
        .mount(&app.meta)
        .await;
}

/// A customer's photo webhook; answers the conversation holding it.
async fn customer_sends_photo(app: &TestApp, wamid: &str, media_id: &str, sha256: &str) -> String {
    let timestamp = (app.clock.now() / 1_000_000).to_string();
    let body = message_webhook(
        CUSTOMER,
        json!({ "from": CUSTOMER, "id": wamid, "timestamp": timestamp, "type": "image",
                "image": { "id": media_id, "mime_type": "image/jpeg", "sha256": sha256, "caption": "the box" } }),
    );
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    conversation_holding(app, CUSTOMER, wamid).await
}

/// The media of the conversation's first image message.
async fn photo_media(app: &TestApp, conversation_id: &str) -> Value {
    let answer = app
        .graphql(MEDIA_QUERY, json!({ "id": conversation_id }))
        .await;
    answer["data"]["conversation"]["messages"]["edges"]
        .as_array()
        .and_then(|edges| edges.iter().find(|e| e["node"]["kind"] == "image"))
        .map(|e| e["node"]["media"].clone())
        .unwrap_or_else(|| panic!("no image message: {answer}"))
}

async fn media_reaches(app: &TestApp, conversation_id: &str, state: &str) -> Value {
    eventually_some(&format!("the photo is {state}"), || async {
        let media = photo_media(app, conversation_id).await;
        (media["fetchState"] == state).then_some(media)
    })
    .await
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn a_photo_is_fetched_in_two_steps_and_loaded_through_a_signed_url(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sha = hex_sha256(PHOTO);
    meta_serves_media(&app, "MEDIA-1", PHOTO, &sha).await;
    let id = customer_sends_photo(&app, "wamid.photo1", "MEDIA-1", &sha).await;
    let media = media_reaches(&app, &id, "STORED").await;
    assert_eq!(media["kind"], "IMAGE");
    assert_eq!(media["mimeType"], "image/jpeg");
    assert_eq!(media["size"], PHOTO.len());
    assert_eq!(media["sha256"], sha);
    assert_eq!(media["caption"], "the box");

    // A browser loads the URL without a token.
    let url = media["url"].as_str().expect("a signed URL").to_owned();
    assert!(
        url.starts_with(&format!("/media/{}?", media["id"].as_str().unwrap())),
        "{url}"
    );
    let response = reqwest::get(format!("{}{url}", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline"),
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), PHOTO);
    assert!(
        audit_actions(&app)
            .await
            .contains(&"media.downloaded".to_owned())
    );

    // An altered URL is refused, whatever was changed.
    let tampered_sig = format!("{}0", &url[..url.len() - 1]);
    let tampered_sig = if tampered_sig == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        tampered_sig
    };
    let longer = url.replace("exp=", "exp=9");
    let other_file = url.replacen(
        &format!("/media/{}", media["id"].as_str().unwrap()),
        "/media/999999",
        1,
    );
    for altered in [tampered_sig, longer, other_file] {
        let response = reqwest::get(format!("{}{altered}", app.address))
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{altered}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "media_url_invalid", "{body}");
    }

    // Past its lifetime (300 s by default), the same URL is refused.
    app.clock.advance(Duration::from_secs(301));
    let response = reqwest::get(format!("{}{url}", app.address)).await.unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "media_url_expired", "{body}");
}

async fn a_file_whose_sha256_does_not_match_is_refused_and_shown_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let wrong = hex_sha256(b"some other file");
    meta_serves_media(&app, "MEDIA-2", PHOTO, &wrong).await;
    let id = customer_sends_photo(&app, "wamid.photo2", "MEDIA-2", &wrong).await;
    let media = media_reaches(&app, &id, "FAILED").await;
    let reason = media["failureReason"].as_str().unwrap();
    assert!(reason.contains("sha256 mismatch"), "{reason}");
    assert!(media["url"].is_null());
    assert!(
        !app.media_dir.join("inbound").exists()
            || std::fs::read_dir(app.media_dir.join("inbound"))
                .unwrap()
                .next()
                .is_none()
    );
}

async fn a_file_too_large_for_its_kind_is_refused(backend: Backend) {
    let Some(app) = spawn_app_with(backend, "[media]\nmax_image_bytes = 16\n").await else {
        return;
    };
    let sha = hex_sha256(PHOTO);
    meta_serves_media(&app, "MEDIA-3", PHOTO, &sha).await;
    let id = customer_sends_photo(&app, "wamid.photo3", "MEDIA-3", &sha).await;
    let media = media_reaches(&app, &id, "FAILED").await;
    let reason = media["failureReason"].as_str().unwrap();
    assert!(reason.contains("more than the 16"), "{reason}");

    // An upload past the limit is refused before it is kept.
    let response = app
        .client
        .post(format!("{}/media", app.address))
        .bearer_auth(&app.admin_token)
        .header("content-type", "image/jpeg")
        .body(PHOTO.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // So is a type outside the allow-list.
    let response = app
        .client
        .post(format!("{}/media", app.address))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/x-msdownload")
        .body(b"MZ".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

async fn an_auditor_gets_no_media_url(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sha = hex_sha256(PHOTO);
    meta_serves_media(&app, "MEDIA-4", PHOTO, &sha).await;
    let id = customer_sends_photo(&app, "wamid.photo4", "MEDIA-4", &sha).await;
    media_reaches(&app, &id, "STORED").await;
    let auditor = app.token(Role::Auditor, None).await;
    let answer = app
        .graphql_as(&auditor, MEDIA_QUERY, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&answer), "forbidden", "{answer}");
    assert!(!answer.to_string().contains("/media/"), "{answer}");
    // An agent who may read the conversation gets one.
    let agent = app.token(Role::Agent, None).await;
    let answer = app
        .graphql_as(&agent, MEDIA_QUERY, json!({ "id": id }))
        .await;
    assert!(answer.to_string().contains("/media/"), "{answer}");
}

/// The Graph API's message endpoint: throttled once, then accepting.
struct ThrottledOnce(Arc<AtomicUsize>);

impl Respond for ThrottledOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => ResponseTemplate::new(429).set_body_json(json!({
                "error": { "message": "Rate limit hit", "code": 130429 }
            })),
            n => ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "messages": [{ "id": format!("wamid.MEDIA-OUT{n}") }]
            })),
        }
    }
}

async fn an_uploaded_file_is_sent_once_even_when_its_send_is_retried(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let uploads = Arc::new(AtomicUsize::new(0));
    let counter = uploads.clone();
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_NUMBER_ID}/media")))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(json!({ "id": format!("UPLOADED-{n}") }))
        })
        .mount(&app.meta)
        .await;
    let sends = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ThrottledOnce(sends.clone()))
        .mount(&app.meta)
        .await;
    let id = customer_writes(&app, CUSTOMER, "wamid.m1", "Do you have the manual?").await;

    let guide = b"%PDF-1.4 the assembly guide";
    let response = app
        .client
        .post(format!("{}/media?fileName=guide.pdf", app.address))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/pdf")
        .body(guide.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["kind"], "DOCUMENT");
    assert_eq!(uploaded["sha256"], hex_sha256(guide));

    let answer = app
        .graphql(
            "mutation($c: ID!, $m: ID!) { sendReply(conversationId: $c, text: \"Here it is\", mediaId: $m) { id kind text media { fileName fetchState } } }",
            json!({ "c": id, "m": uploaded["id"] }),
        )
        .await;
    let message = answer["data"]["sendReply"].clone();
    assert_eq!(message["kind"], "document", "{answer}");
    assert_eq!(message["media"]["fileName"], "guide.pdf");
    let message_id = message["id"].as_str().unwrap().to_owned();

    // The first send is throttled; the retry comes after the backoff.
    eventually("the first send is throttled", || async {
        queued_retry(&app, &message_id).await.is_some()
    })
    .await;
    app.clock.advance(Duration::from_secs(5));
    message_reaches(&app, &id, &message_id, "SENT").await;
    assert_eq!(
        uploads.load(Ordering::SeqCst),
        1,
        "the file was uploaded once"
    );
    assert_eq!(sends.load(Ordering::SeqCst), 2);
    let sent = sent_payloads(&app).await;
    let last = sent.last().unwrap();
    assert_eq!(last["type"], "document");
    assert_eq!(last["document"]["id"], "UPLOADED-1");
    assert_eq!(last["document"]["caption"], "Here it is");
    assert_eq!(last["document"]["filename"], "guide.pdf");
    assert!(last.get("parley_media").is_none(), "{last}");

    // An upload goes out once: attaching it again is refused.
    let again = app
        .graphql(
            "mutation($c: ID!, $m: ID!) { sendReply(conversationId: $c, text: \"\", mediaId: $m) { id } }",
            json!({ "c": id, "m": uploaded["id"] }),
        )
        .await;
    assert_eq!(error_code(&again), "media_not_usable", "{again}");
}

async fn erasure_removes_the_stored_file(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sha = hex_sha256(PHOTO);
    meta_serves_media(&app, "MEDIA-5", PHOTO, &sha).await;
    let id = customer_sends_photo(&app, "wamid.photo5", "MEDIA-5", &sha).await;
    let media = media_reaches(&app, &id, "STORED").await;
    let file = app
        .media_dir
        .join("inbound")
        .join(media["id"].as_str().unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), PHOTO);
    let url = media["url"].as_str().unwrap().to_owned();

    let answer = app
        .graphql(
            "mutation($w: String!) { eraseContact(waId: $w, reason: \"customer asked\") { mediaFiles } }",
            json!({ "w": CUSTOMER }),
        )
        .await;
    assert_eq!(answer["data"]["eraseContact"]["mediaFiles"], 1, "{answer}");
    eventually("the file is deleted", || async { !file.exists() }).await;
    let media = photo_media(&app, &id).await;
    assert_eq!(media["fetchState"], "ERASED");
    assert!(media["url"].is_null());
    assert!(media["caption"].is_null());
    let response = reqwest::get(format!("{}{url}", app.address)).await.unwrap();
    assert_eq!(response.status(), 404);
}

/// moto's S3 server on a free port, or `None` when it is not installed outside CI.
struct Moto(std::process::Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto() -> Option<Moto> {
    let port = free_port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) => {
            if std::env::var_os("CI").is_some() {
                panic!("moto_server could not start and CI is set: {error}");
            }
            eprintln!(
                "SKIPPED: moto_server is not available ({error}); pip install 'moto[server]'"
            );
            return None;
        }
    };
    let moto = Moto(child, port);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if client.get(&base).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = client
        .put(format!("{base}/parley-media"))
        .send()
        .await
        .expect("moto answers");
    assert!(created.status().is_success(), "bucket not created");
    Some(moto)
}

async fn files_are_kept_in_an_s3_compatible_store(backend: Backend) {
    let Some(moto) = start_moto().await else {
        return;
    };
    let extra = format!(
        "[media]\nbackend = \"s3\"\ns3_bucket = \"parley-media\"\ns3_endpoint = \"http://127.0.0.1:{}\"\ns3_access_key_id = \"test\"\ns3_secret_access_key = \"test\"\ns3_allow_http = true\n",
        moto.1
    );
    let Some(app) = spawn_app_with(backend, &extra).await else {
        return;
    };
    let sha = hex_sha256(PHOTO);
    meta_serves_media(&app, "MEDIA-6", PHOTO, &sha).await;
    let id = customer_sends_photo(&app, "wamid.photo6", "MEDIA-6", &sha).await;
    let media = media_reaches(&app, &id, "STORED").await;
    // Nothing on the local disk: the bytes are in the bucket.
    assert!(!app.media_dir.join("inbound").exists());
    // The bucket lists the file under its key, with its size (objects are private, so
    // the bytes are read back through Parley's signed URL below).
    let listing = reqwest::get(format!(
        "http://127.0.0.1:{}/parley-media?list-type=2",
        moto.1
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let key = format!("<Key>inbound/{}</Key>", media["id"].as_str().unwrap());
    assert!(listing.contains(&key), "{listing}");
    assert!(
        listing.contains(&format!("<Size>{}</Size>", PHOTO.len())),
        "{listing}"
    );
    let url = media["url"].as_str().unwrap();
    let response = reqwest::get(format!("{}{url}", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), PHOTO);
}

on_both_databases!(
    a_photo_is_fetched_in_two_steps_and_loaded_through_a_signed_url,
    a_file_whose_sha256_does_not_match_is_refused_and_shown_failed,
    a_file_too_large_for_its_kind_is_refused,
    an_auditor_gets_no_media_url,
    an_uploaded_file_is_sent_once_even_when_its_send_is_retried,
    erasure_removes_the_stored_file,
    files_are_kept_in_an_s3_compatible_store,
);
