//! The README's role table is the tested truth: this test reads the table and, for every
//! row and role, sets a fresh case up as the row describes and asks the server as a token
//! of that role (acting as an agent of its own). "yes" must be done; "no" must be refused
//! with `forbidden` or `not_assignee`. Any other answer fails the test.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

on_both_databases!(the_readme_role_table_is_what_the_server_does);

const ROLES: [Role; 5] = [
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::Integration,
    Role::Auditor,
];

/// The table's rows: (what, [yes/no per role in `ROLES` order]).
fn readme_table() -> Vec<(String, [bool; 5])> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let mut lines = readme.lines().skip_while(|l| {
        !l.starts_with("| what | admin | supervisor | agent | integration | auditor |")
    });
    assert!(lines.next().is_some(), "the README has no role table");
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "a role table row has six cells: {line}");
            let mut allowed = [false; 5];
            for (i, cell) in cells[1..].iter().enumerate() {
                allowed[i] = match *cell {
                    "yes" => true,
                    "no" => false,
                    other => panic!("role table cell {other:?} is neither yes nor no: {line}"),
                };
            }
            (cells[0].to_owned(), allowed)
        })
        .collect()
}

struct World {
    app: TestApp,
    /// The agent each role's token acts as.
    agents: HashMap<Role, String>,
    tokens: HashMap<Role, String>,
    /// An admin token acting as the same agent as each role's token (the same person).
    same_person_admin: HashMap<Role, String>,
    other_agent: String,
    other_agent_admin: String,
    other_team: String,
    serial: AtomicUsize,
}

impl World {
    async fn new(app: TestApp) -> Self {
        app.meta_accepts_sends().await;
        let mut agents = HashMap::new();
        let mut tokens = HashMap::new();
        let mut same_person_admin = HashMap::new();
        for role in ROLES {
            let agent = create_agent(&app, &format!("{role} person"), None).await;
            let id: i64 = agent.parse().unwrap();
            tokens.insert(role, app.token(role, Some(id)).await);
            same_person_admin.insert(role, app.token(Role::Admin, Some(id)).await);
            agents.insert(role, agent);
        }
        let other_agent = create_agent(&app, "Someone else", None).await;
        let other_agent_admin = app
            .token(Role::Admin, Some(other_agent.parse().unwrap()))
            .await;
        let other_team = create_team(&app, "Elsewhere").await;
        Self {
            app,
            agents,
            tokens,
            same_person_admin,
            other_agent,
            other_agent_admin,
            other_team,
            serial: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> usize {
        self.serial.fetch_add(1, Ordering::SeqCst)
    }

    /// A new customer's new case; answers (conversation id, customer number).
    async fn fresh_case(&self, text: &str) -> (String, String) {
        let n = self.next();
        let wa_id = format!("4477009{n:05}");
        let case = customer_writes(&self.app, &wa_id, &format!("wamid.ROLES{n}"), text).await;
        (case, wa_id)
    }

    async fn assign(&self, case: &str, agent: &str) {
        let answer = self
            .app
            .graphql(
                "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id } }",
                json!({ "c": case, "a": agent }),
            )
            .await;
        assert!(answer["errors"].is_null(), "setup assignment: {answer}");
    }

    /// An AI draft on a refund case, sent by `token` and held for a supervisor.
    async fn held_draft(&self, token: &str) -> String {
        let (case, _) = self.fresh_case("I want a refund for my order").await;
        let sent = self
            .app
            .graphql_as(
                token,
                "mutation($c: ID!) { sendReply(conversationId: $c, text: \"We will refund you.\", aiDraft: true) { deliveryStatus } }",
                json!({ "c": case }),
            )
            .await;
        assert_eq!(
            sent["data"]["sendReply"]["deliveryStatus"], "HELD",
            "setup draft: {sent}"
        );
        let held = self
            .app
            .graphql(
                "query($c: ID!) { heldMessages(conversationId: $c) { id } }",
                json!({ "c": case }),
            )
            .await;
        held["data"]["heldMessages"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no held message: {held}"))
            .to_owned()
    }

    async fn set_offline(&self, agent: &str) {
        let answer = self
            .app
            .graphql(
                "mutation($a: ID) { setAgentStatus(agentId: $a, status: OFFLINE) { id } }",
                json!({ "a": agent }),
            )
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }

    /// Sets the row up and asks as `role`; answers the server's answer.
    async fn attempt(&self, what: &str, role: Role) -> Value {
        let token = &self.tokens[&role];
        let mine = &self.agents[&role];
        let app = &self.app;
        let ask = |query: &'static str, variables: Value| async move {
            app.graphql_as(token, query, variables).await
        };
        const NOTE: &str =
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"checked\") { id } }";
        const REPLY: &str =
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"On it.\") { id } }";
        const TAKE: &str = "mutation($c: ID!, $a: ID, $t: ID) { assignConversation(conversationId: $c, agentId: $a, teamId: $t) { id } }";
        const CLOSE: &str = "mutation($c: ID!) { setConversationStatus(conversationId: $c, status: CLOSED) { id } }";
        const ESCALATE: &str = "mutation($c: ID!) { escalateConversation(conversationId: $c, reason: \"needs finance\", toTeam: \"finance\") { id } }";
        const APPROVE: &str = "mutation($i: ID!) { approveMessage(id: $i) { status } }";
        const ONLINE: &str =
            "mutation($a: ID) { setAgentStatus(agentId: $a, status: ONLINE) { id } }";
        match what {
            "read conversations" => {
                ask(
                    "{ conversations(first: 1) { edges { node { id } } } }",
                    json!({}),
                )
                .await
            }
            "write an internal note" => {
                let (case, _) = self.fresh_case("hello").await;
                ask(NOTE, json!({ "c": case })).await
            }
            "reply to an unassigned case" => {
                let (case, _) = self.fresh_case("hello").await;
                ask(REPLY, json!({ "c": case })).await
            }
            "reply to a case assigned to another agent" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, &self.other_agent).await;
                ask(REPLY, json!({ "c": case })).await
            }
            "take an unassigned case" => {
                let (case, _) = self.fresh_case("hello").await;
                ask(TAKE, json!({ "c": case, "a": mine })).await
            }
            "take a case assigned to another agent" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, &self.other_agent).await;
                ask(TAKE, json!({ "c": case, "a": mine })).await
            }
            "move their own case to another team" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, mine).await;
                ask(TAKE, json!({ "c": case, "a": mine, "t": self.other_team })).await
            }
            "close their own case" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, mine).await;
                ask(CLOSE, json!({ "c": case })).await
            }
            "close an unassigned case" => {
                let (case, _) = self.fresh_case("hello").await;
                ask(CLOSE, json!({ "c": case })).await
            }
            "close a case assigned to another agent" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, &self.other_agent).await;
                ask(CLOSE, json!({ "c": case })).await
            }
            "escalate their own case" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, mine).await;
                ask(ESCALATE, json!({ "c": case })).await
            }
            "escalate an unassigned case" => {
                let (case, _) = self.fresh_case("hello").await;
                ask(ESCALATE, json!({ "c": case })).await
            }
            "escalate a case assigned to another agent" => {
                let (case, _) = self.fresh_case("hello").await;
                self.assign(&case, &self.other_agent).await;
                ask(ESCALATE, json!({ "c": case })).await
            }
            "approve an AI draft someone else sent" => {
                let held = self.held_draft(&self.other_agent_admin).await;
                ask(APPROVE, json!({ "i": held })).await
            }
            "approve an AI draft they sent" => {
                let held = self.held_draft(&self.same_person_admin[&role]).await;
                ask(APPROVE, json!({ "i": held })).await
            }
            "read the audit log" => {
                ask("{ auditLog(first: 1) { entries { id } } }", json!({})).await
            }
            "create teams" => {
                let name = format!("Team {}", self.next());
                app.graphql_as(
                    token,
                    "mutation($n: String!) { createTeam(name: $n) { id } }",
                    json!({ "n": name }),
                )
                .await
            }
            "create agents" => {
                ask(
                    "mutation { createAgent(input: { name: \"New person\", role: AGENT }) { id } }",
                    json!({}),
                )
                .await
            }
            "list, create and revoke API tokens" => ask("{ apiTokens { id } }", json!({})).await,
            "read dead letters" => ask("{ deadLetters(first: 1) { id } }", json!({})).await,
            "see and load plugins" => ask("{ plugins { id } }", json!({})).await,
            "block contacts" => {
                let wa_id = format!("4488009{:05}", self.next());
                app.graphql_as(
                    token,
                    "mutation($w: String!) { blockContact(waId: $w, reason: \"spam\") { waId } }",
                    json!({ "w": wa_id }),
                )
                .await
            }
            "reload the routing rules" => {
                ask("mutation { reloadRouting { rulesSha256 } }", json!({})).await
            }
            "erase a contact's data" => {
                let (_, wa_id) = self.fresh_case("hello").await;
                app.graphql_as(
                    token,
                    "mutation($w: String!) { eraseContact(waId: $w, reason: \"asked\") { __typename } }",
                    json!({ "w": wa_id }),
                )
                .await
            }
            "go online themselves" => {
                let answer = ask(ONLINE, json!({})).await;
                self.set_offline(mine).await;
                answer
            }
            "put another agent online" => {
                let answer = ask(ONLINE, json!({ "a": self.other_agent })).await;
                self.set_offline(&self.other_agent).await;
                answer
            }
            other => panic!("the README's role table has a row the test does not know: {other:?}"),
        }
    }
}

async fn the_readme_role_table_is_what_the_server_does(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let world = World::new(app).await;
    let table = readme_table();
    assert!(table.len() >= 20, "the role table lost rows: {table:?}");
    let mut wrong = Vec::new();
    for (what, allowed) in &table {
        for (role, expected) in ROLES.iter().zip(allowed) {
            let answer = world.attempt(what, *role).await;
            let done = answer["errors"].is_null();
            let code = error_code(&answer);
            if !done && code != "forbidden" && code != "not_assignee" {
                panic!("{what} as {role}: neither done nor refused: {answer}");
            }
            if done != *expected {
                wrong.push(format!(
                    "{what} as {role}: README says {}, the server {}: {answer}",
                    if *expected { "yes" } else { "no" },
                    if done { "did it" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
