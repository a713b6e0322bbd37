//! Search through GraphQL: full text over customer and agent messages, notes and contact
//! names in English, Spanish, Arabic and Hindi (Devanagari and romanised), filters,
//! ranking, snippets and pagination, the same answers on SQLite and PostgreSQL; a
//! contact's earlier cases; typed custom fields on contacts.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

const SEARCH: &str = "query($q: String!, $f: SearchFilter, $n: Int, $a: String) {
    searchConversations(query: $q, filter: $f, first: $n, after: $a) {
        terms
        edges { cursor node { score matched matchedId snippet
            conversation { id status priority language contact { waId name } } } }
        pageInfo { hasNextPage endCursor } } }";

/// What each customer of the fixture writes (WhatsApp id, message id, text).
const FIXTURE: &[(&str, &str, &str)] = &[
    (
        "15550000001",
        "wamid.s1",
        "I was charged twice, a double charge on my card",
    ),
    (
        "15550000002",
        "wamid.s2",
        "¿Dónde está mi pedido? Necesito el reembolso",
    ),
    (
        "15550000003",
        "wamid.s3",
        "أريد استرجاع المبلغ، تم خصم المبلغ مرتين",
    ),
    ("15550000004", "wamid.s4", "मेरा पैसा वापस करो। ऑर्डर नहीं मिला"),
    (
        "15550000005",
        "wamid.s5",
        "mera paisa wapas karo, order nahi mila",
    ),
    (
        "15550000006",
        "wamid.s6",
        "Double charge again! Double charge on the same order",
    ),
    (
        "15550000007",
        "wamid.s7",
        "<script>alert(1)</script> where is my refund & receipt?",
    ),
    ("15550000008", "wamid.s8", "Não recebi a fatura do pedido"),
];

/// The queries compared across databases, with the customers each must find, best first.
const QUERIES: &[(&str, &[&str])] = &[
    ("double charge", &["15550000006", "15550000001"]),
    ("DONDE esta", &["15550000002"]),
    ("reembolso", &["15550000002"]),
    // Without the hamza the customer wrote.
    ("اريد المبلغ", &["15550000003"]),
    ("पैसा वापस", &["15550000004"]),
    ("paisa wapas", &["15550000005"]),
    ("nao recebi", &["15550000008"]),
    // The note on the first customer's case says refund too.
    ("refund", &["15550000007", "15550000001"]),
    ("fatima", &["15550000009"]),
    ("vip pending", &["15550000001"]),
    ("charged twice card", &["15550000001"]),
    ("nothing matches this", &[]),
];

/// Writes the fixture: the customers' messages, an agent's note, and a customer named
/// Fatima (contact names are searchable).
async fn write_fixture(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for (wa_id, wamid, text) in FIXTURE {
        ids.push(customer_writes(app, wa_id, wamid, text).await);
        app.clock.advance(Duration::from_secs(60));
    }
    let named = text_webhook("15550000009", "wamid.s9", "hello there", 1_700_000_000)
        .replace("Kerry Fisher", "Fátima Zahra");
    assert_eq!(app.post_webhook(&named).await.status(), 200);
    ids.push(conversation_holding(app, "15550000009", "wamid.s9").await);
    let noted = app
        .graphql(
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"Customer is VIP; refund pending\") { id } }",
            json!({ "c": ids[0] }),
        )
        .await;
    assert!(noted["data"]["addNote"].is_object(), "{noted}");
    ids
}

async fn search(app: &TestApp, query: &str, filter: Value, first: i32) -> Value {
    let answer = app
        .graphql(
            SEARCH,
            json!({ "q": query, "f": filter, "n": first, "a": Value::Null }),
        )
        .await;
    let found = answer["data"]["searchConversations"].clone();
    assert!(found.is_object(), "search {query:?} failed: {answer}");
    found
}

fn customers(found: &Value) -> Vec<String> {
    found["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["node"]["conversation"]["contact"]["waId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// What a search answers, without the ids and cursors a database gives out.
async fn answers(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for (query, _) in QUERIES {
        let found = search(app, query, Value::Null, 20).await;
        let hits: Vec<Value> = found["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                json!({
                    "waId": e["node"]["conversation"]["contact"]["waId"],
                    "score": e["node"]["score"],
                    "matched": e["node"]["matched"],
                    "snippet": e["node"]["snippet"],
                })
            })
            .collect();
        all.push(json!({ "query": query, "terms": found["terms"], "hits": hits }));
    }
    all
}

async fn search_finds_words_in_every_language_ranked_with_marked_snippets(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    write_fixture(&app).await;
    for (query, expected) in QUERIES {
        let found = search(&app, query, Value::Null, 20).await;
        assert_eq!(customers(&found), *expected, "query {query:?}: {found}");
    }

    let double = search(&app, "double charge", Value::Null, 20).await;
    let best = &double["edges"][0]["node"];
    assert_eq!(
        best["score"], 4,
        "two of each word beat one of each: {double}"
    );
    assert_eq!(double["edges"][1]["node"]["score"], 2, "{double}");
    assert_eq!(
        best["snippet"],
        "<mark>Double</mark> <mark>charge</mark> again! <mark>Double</mark> <mark>charge</mark> on the same order"
    );
    assert_eq!(best["matched"], "MESSAGE");

    let spanish = search(&app, "está pedido", Value::Null, 20).await;
    assert_eq!(
        spanish["edges"][0]["node"]["snippet"],
        "¿Dónde <mark>está</mark> mi <mark>pedido</mark>? Necesito el reembolso"
    );
    assert_eq!(spanish["terms"], json!(["esta", "pedido"]));
    let arabic = search(&app, "اريد", Value::Null, 20).await;
    assert_eq!(
        arabic["edges"][0]["node"]["snippet"],
        "<mark>أريد</mark> استرجاع المبلغ، تم خصم المبلغ مرتين"
    );
    let hindi = search(&app, "वापस", Value::Null, 20).await;
    assert_eq!(
        hindi["edges"][0]["node"]["snippet"],
        "मेरा पैसा <mark>वापस</mark> करो। ऑर्डर नहीं मिला"
    );
    // What a customer wrote is escaped; only the marks are markup.
    let escaped = search(&app, "refund", Value::Null, 20).await;
    assert_eq!(
        escaped["edges"][0]["node"]["snippet"],
        "&lt;script&gt;alert(1)&lt;/script&gt; where is my <mark>refund</mark> &amp; receipt?"
    );
    let note = search(&app, "vip", Value::Null, 20).await;
    assert_eq!(note["edges"][0]["node"]["matched"], "NOTE", "{note}");
    let name = search(&app, "fatima", Value::Null, 20).await;
    assert_eq!(
        name["edges"][0]["node"]["matched"], "CONTACT_NAME",
        "{name}"
    );
    assert_eq!(
        name["edges"][0]["node"]["snippet"],
        "<mark>Fátima</mark> Zahra"
    );

    // An agent's reply is searchable as soon as it is stored.
    let id = app.conversation_id_of("15550000008").await;
    app.meta_accepts_sends().await;
    reply(&app, &id, "Enviamos a fatura por email hoje").await;
    let agent = search(&app, "fatura email", Value::Null, 20).await;
    assert_eq!(customers(&agent), ["15550000008"], "{agent}");
}

async fn search_filters_and_pages_through_ranked_results(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ids = write_fixture(&app).await;

    // Pages follow the ranking.
    let first = search(&app, "double charge", Value::Null, 1).await;
    assert_eq!(customers(&first), ["15550000006"]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let after = first["pageInfo"]["endCursor"].as_str().unwrap();
    let answer = app
        .graphql(
            SEARCH,
            json!({ "q": "double charge", "f": null, "n": 1, "a": after }),
        )
        .await;
    let second = &answer["data"]["searchConversations"];
    assert_eq!(customers(second), ["15550000001"], "{answer}");
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    let bad = app
        .graphql(
            SEARCH,
            json!({ "q": "double", "f": null, "n": 1, "a": "garbage" }),
        )
        .await;
    assert_eq!(error_code(&bad), "invalid_input", "{bad}");

    // Status.
    assert_eq!(
        set_status(&app, &ids[0], "RESOLVED").await["data"]["setConversationStatus"]["status"],
        "RESOLVED"
    );
    let resolved = search(&app, "double charge", json!({ "status": ["RESOLVED"] }), 20).await;
    assert_eq!(customers(&resolved), ["15550000001"]);
    let open = search(
        &app,
        "double charge",
        json!({ "status": ["CREATED", "ASSIGNED", "IN_PROGRESS"] }),
        20,
    )
    .await;
    assert_eq!(customers(&open), ["15550000006"]);

    // Priority and language, as triage set them on the case.
    let case = &first["edges"][0]["node"]["conversation"];
    let priority = case["priority"].as_str().unwrap();
    let same = search(&app, "double charge", json!({ "priority": [priority] }), 20).await;
    assert!(
        customers(&same).contains(&"15550000006".to_owned()),
        "{same}"
    );
    let other = if priority == "URGENT" {
        "LOW"
    } else {
        "URGENT"
    };
    let none = search(&app, "double charge", json!({ "priority": [other] }), 20).await;
    assert!(
        !customers(&none).contains(&"15550000006".to_owned()),
        "{none}"
    );
    if let Some(language) = case["language"].as_str() {
        let lang = search(&app, "double charge", json!({ "language": [language] }), 20).await;
        assert!(
            customers(&lang).contains(&"15550000006".to_owned()),
            "{lang}"
        );
    }
    let lang = search(&app, "double charge", json!({ "language": ["xx"] }), 20).await;
    assert!(customers(&lang).is_empty(), "{lang}");

    // Team and assignee.
    let team = create_team(&app, "Billing").await;
    let agent = create_agent(&app, "Ana", Some(&team)).await;
    let assigned = app
        .graphql(
            "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } }",
            json!({ "c": ids[5], "a": agent }),
        )
        .await;
    assert!(
        assigned["data"]["assignConversation"].is_object(),
        "{assigned}"
    );
    let mine = search(&app, "double charge", json!({ "assigneeId": agent }), 20).await;
    assert_eq!(customers(&mine), ["15550000006"]);
    let unknown_team = search(&app, "double charge", json!({ "teamId": "999999" }), 20).await;
    assert!(customers(&unknown_team).is_empty());

    // Channel, date range, SLA state, tags.
    let channel = search(&app, "double charge", json!({ "channelId": "nope" }), 20).await;
    assert!(customers(&channel).is_empty());
    let future = search(
        &app,
        "double charge",
        json!({ "activeFrom": "2999-01-01T00:00:00Z" }),
        20,
    )
    .await;
    assert!(customers(&future).is_empty());
    let past = search(
        &app,
        "double charge",
        json!({ "openedBefore": "2999-01-01T00:00:00Z", "activeFrom": "2000-01-01T00:00:00Z" }),
        20,
    )
    .await;
    assert_eq!(customers(&past).len(), 2, "{past}");
    let breached = search(&app, "double charge", json!({ "sla": "BREACHED" }), 20).await;
    assert!(customers(&breached).is_empty(), "{breached}");
    let unknown_intent = search(
        &app,
        "double charge",
        json!({ "intents": ["no_such_intent"] }),
        20,
    )
    .await;
    assert!(customers(&unknown_intent).is_empty());
    let tags = app
        .graphql(
            "query($c: ID!) { conversation(id: $c) { intents risks } }",
            json!({ "c": ids[5] }),
        )
        .await;
    if let Some(intent) = tags["data"]["conversation"]["intents"][0].as_str() {
        let tagged = search(&app, "double charge", json!({ "intents": [intent] }), 20).await;
        assert!(
            customers(&tagged).contains(&"15550000006".to_owned()),
            "{tagged}"
        );
    }

    // Bad queries are refused, auditors may not search, agents may.
    let empty = app
        .graphql(SEARCH, json!({ "q": " ¿? ", "f": null, "n": 5, "a": null }))
        .await;
    assert_eq!(error_code(&empty), "invalid_input", "{empty}");
    let auditor = app.token(Role::Auditor, None).await;
    let refused = app
        .graphql_as(
            &auditor,
            SEARCH,
            json!({ "q": "double", "f": null, "n": 5, "a": null }),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let agent_token = app.token(Role::Agent, None).await;
    let allowed = app
        .graphql_as(
            &agent_token,
            SEARCH,
            json!({ "q": "double", "f": null, "n": 5, "a": null }),
        )
        .await;
    assert_eq!(
        customers(&allowed["data"]["searchConversations"]).len(),
        2,
        "{allowed}"
    );
}

async fn erasure_removes_a_contact_from_the_search_index(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    write_fixture(&app).await;
    assert_eq!(
        customers(&search(&app, "paisa wapas", Value::Null, 5).await),
        ["15550000005"]
    );
    let before = app.count("search_documents").await;
    let erased = app
        .graphql(
            "mutation { eraseContact(waId: \"15550000005\", reason: \"asked to be forgotten\") { messages } }",
            Value::Null,
        )
        .await;
    assert!(erased["data"]["eraseContact"].is_object(), "{erased}");
    assert!(customers(&search(&app, "paisa wapas", Value::Null, 5).await).is_empty());
    assert!(customers(&search(&app, "kerry", Value::Null, 20).await).len() >= 2);
    // The message and the contact's name left the index.
    assert_eq!(app.count("search_documents").await, before - 2);
}

/// The same fixture on both databases answers every query with the same cases, scores,
/// order and snippets.
#[actix_rt::test]
async fn search_gives_the_same_answers_on_sqlite_and_postgresql() {
    let sqlite = spawn_app(Backend::Sqlite).await.unwrap();
    let Some(postgres) = spawn_app(Backend::Postgres).await else {
        return;
    };
    write_fixture(&sqlite).await;
    write_fixture(&postgres).await;
    let on_sqlite = answers(&sqlite).await;
    let on_postgres = answers(&postgres).await;
    assert_eq!(on_sqlite, on_postgres);
    let hits: usize = on_sqlite
        .iter()
        .map(|a| a["hits"].as_array().unwrap().len())
        .sum();
    assert!(hits >= 12, "the comparison covers real hits: {on_sqlite:?}");
}

const HISTORY: &str = "query($w: String!, $n: Int, $a: String) { contact(waId: $w) {
    conversations(first: $n, after: $a) {
        edges { cursor node { id status intents risks csat { score }
            resolution { resolvedAt closedAt autoResolved } } }
        pageInfo { hasNextPage endCursor } } } }";

async fn a_contact_shows_their_earlier_cases_newest_first(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let customer = "15550000100";
    let old = customer_writes(&app, customer, "wamid.h1", "My parcel arrived broken").await;
    assert_eq!(
        set_status(&app, &old, "RESOLVED").await["data"]["setConversationStatus"]["status"],
        "RESOLVED"
    );
    assert_eq!(
        set_status(&app, &old, "CLOSED").await["data"]["setConversationStatus"]["status"],
        "CLOSED"
    );
    let new = customer_writes(&app, customer, "wamid.h2", "Where is my invoice?").await;
    assert_ne!(old, new);

    let answer = app
        .graphql(HISTORY, json!({ "w": customer, "n": 1, "a": null }))
        .await;
    let page = &answer["data"]["contact"]["conversations"];
    assert_eq!(page["edges"][0]["node"]["id"], new, "{answer}");
    assert_eq!(page["edges"][0]["node"]["resolution"], Value::Null);
    assert!(page["edges"][0]["node"]["intents"].is_array());
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let after = page["pageInfo"]["endCursor"].as_str().unwrap();
    let answer = app
        .graphql(HISTORY, json!({ "w": customer, "n": 1, "a": after }))
        .await;
    let page = &answer["data"]["contact"]["conversations"];
    let earlier = &page["edges"][0]["node"];
    assert_eq!(earlier["id"], old, "{answer}");
    assert_eq!(earlier["status"], "CLOSED");
    assert!(earlier["resolution"]["resolvedAt"].is_string(), "{answer}");
    assert!(earlier["resolution"]["closedAt"].is_string(), "{answer}");
    assert_eq!(earlier["resolution"]["autoResolved"], false);
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    let bad = app
        .graphql(HISTORY, json!({ "w": customer, "n": 1, "a": "nonsense" }))
        .await;
    assert_eq!(error_code(&bad), "invalid_input", "{bad}");
}

const DEFINE: &str = "mutation($k: String!, $l: String!, $t: ContactFieldType!, $o: [String!]) {
    defineContactField(input: { key: $k, label: $l, type: $t, options: $o }) { key label type options } }";
const SET: &str = "mutation($w: String!, $k: String!, $v: String) {
    setContactField(waId: $w, key: $k, value: $v) {
        fields { key value number boolean date setBy field { type } } } }";

async fn custom_fields_are_typed_and_bad_values_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let customer = "15550000200";
    customer_writes(&app, customer, "wamid.f1", "Hi").await;
    let agent = app.token(Role::Agent, None).await;
    let supervisor = app.token(Role::Supervisor, None).await;

    let refused = app
        .graphql_as(
            &supervisor,
            DEFINE,
            json!({ "k": "tier", "l": "Tier", "t": "ENUM", "o": ["gold", "silver"] }),
        )
        .await;
    assert_eq!(
        error_code(&refused),
        "forbidden",
        "only admins define fields"
    );
    for (key, label, kind, options) in [
        ("tier", "Tier", "ENUM", json!(["gold", "silver"])),
        ("orders", "Orders", "NUMBER", Value::Null),
        ("newsletter", "Newsletter", "BOOLEAN", Value::Null),
        ("customer_since", "Customer since", "DATE", Value::Null),
        ("account", "Account", "TEXT", Value::Null),
    ] {
        let defined = app
            .graphql(
                DEFINE,
                json!({ "k": key, "l": label, "t": kind, "o": options }),
            )
            .await;
        assert_eq!(
            defined["data"]["defineContactField"]["type"], kind,
            "{defined}"
        );
    }
    for (vars, code) in [
        (
            json!({ "k": "Bad Key", "l": "x", "t": "TEXT", "o": null }),
            "invalid_input",
        ),
        (
            json!({ "k": "size", "l": "Size", "t": "ENUM", "o": [] }),
            "invalid_input",
        ),
        (
            json!({ "k": "size", "l": "Size", "t": "TEXT", "o": ["a"] }),
            "invalid_input",
        ),
        (
            json!({ "k": "tier", "l": "Tier", "t": "NUMBER", "o": null }),
            "name_taken",
        ),
    ] {
        let answer = app.graphql(DEFINE, vars.clone()).await;
        assert_eq!(error_code(&answer), code, "{vars}: {answer}");
    }

    for (key, value) in [
        ("tier", "gold"),
        ("orders", "12"),
        ("newsletter", "true"),
        ("customer_since", "2024-02-29"),
        ("account", "ACME <ltd>"),
    ] {
        let set = app
            .graphql_as(&agent, SET, json!({ "w": customer, "k": key, "v": value }))
            .await;
        assert!(set["data"]["setContactField"].is_object(), "{key}: {set}");
    }
    for (key, value, code) in [
        ("tier", "bronze", "contact_field_value_invalid"),
        ("orders", "twelve", "contact_field_value_invalid"),
        ("newsletter", "yes", "contact_field_value_invalid"),
        (
            "customer_since",
            "2023-02-29",
            "contact_field_value_invalid",
        ),
        ("missing", "x", "contact_field_not_found"),
    ] {
        let answer = app
            .graphql_as(&agent, SET, json!({ "w": customer, "k": key, "v": value }))
            .await;
        assert_eq!(error_code(&answer), code, "{key}={value}: {answer}");
    }
    let unknown = app
        .graphql_as(
            &agent,
            SET,
            json!({ "w": "15559999999", "k": "tier", "v": "gold" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "contact_not_found", "{unknown}");
    let auditor = app.token(Role::Auditor, None).await;
    let answer = app
        .graphql_as(
            &auditor,
            SET,
            json!({ "w": customer, "k": "tier", "v": "gold" }),
        )
        .await;
    assert_eq!(error_code(&answer), "forbidden");

    let read = app
        .graphql(
            "query($w: String!) { contact(waId: $w) { fields { key value number boolean date field { type } } } }",
            json!({ "w": customer }),
        )
        .await;
    let fields = &read["data"]["contact"]["fields"];
    assert_eq!(
        *fields,
        json!([
            { "key": "tier", "value": "gold", "number": null, "boolean": null, "date": null, "field": { "type": "ENUM" } },
            { "key": "orders", "value": "12", "number": 12.0, "boolean": null, "date": null, "field": { "type": "NUMBER" } },
            { "key": "newsletter", "value": "true", "number": null, "boolean": true, "date": null, "field": { "type": "BOOLEAN" } },
            { "key": "customer_since", "value": "2024-02-29", "number": null, "boolean": null, "date": "2024-02-29", "field": { "type": "DATE" } },
            { "key": "account", "value": "ACME <ltd>", "number": null, "boolean": null, "date": null, "field": { "type": "TEXT" } },
        ]),
        "{read}"
    );
    // Null clears a value.
    let cleared = app
        .graphql_as(
            &agent,
            SET,
            json!({ "w": customer, "k": "account", "v": null }),
        )
        .await;
    assert_eq!(
        cleared["data"]["setContactField"]["fields"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "{cleared}"
    );
}

on_both_databases!(
    search_finds_words_in_every_language_ranked_with_marked_snippets,
    search_filters_and_pages_through_ranked_results,
    erasure_removes_a_contact_from_the_search_index,
    a_contact_shows_their_earlier_cases_newest_first,
    custom_fields_are_typed_and_bad_values_are_refused,
);
