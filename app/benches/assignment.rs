//! How long a queued case waits once capacity frees: the real application (SQLite in a
//! temporary directory, router and conversation actors), agents with capacity 1, more
//! cases than agents; then cases are resolved one at a time and the time from the
//! resolution's commit to the next queued case's `assigned` event is measured.
//!
//!     cargo bench -p parley --bench assignment
//!     AGENTS=20 ROUNDS=300 cargo bench -p parley --bench assignment
//!
//! Prints p50, p99 and max; nothing is asserted (the machine may be busy).

use chrono::Utc;
use parley::clock::{Clock, SystemClock};
use parley::config::Settings;
use parley::conversation::{ChangeStatus, CustomerMessageArrived, Stepped};
use parley::domain::inbound::{InboundMessage, MessageContent, MessageKind};
use parley::domain::{Actor, ConversationKey, TicketStatus};
use parley::routing::router::AgentUpdated;
use parley::startup::Application;
use parley::store::directory::{AgentPresence, AgentProfile, CreateAgent};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PHONE: &str = "106540352242922";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(customer: usize) -> ConversationKey {
    ConversationKey {
        channel_id: "bench".into(),
        phone_number_id: PHONE.into(),
        wa_id: format!("{}", 15_550_000_000u64 + customer as u64),
    }
}

fn message(customer: usize, n: usize) -> CustomerMessageArrived {
    let key = key(customer);
    let text = format!("where is my order {}", 40_000 + customer);
    CustomerMessageArrived {
        message: Arc::new(InboundMessage {
            phone_number_id: PHONE.into(),
            wa_id: key.wa_id,
            profile_name: None,
            provider_message_id: format!("wamid.bench.{customer}.{n}"),
            sent_at: Utc::now(),
            kind: MessageKind::Text,
            text: Some(text.clone()),
            content: MessageContent::Text { body: text },
            context: None,
            errors: Vec::new(),
        }),
        received_at: SystemClock.now(),
        committed: Instant::now(),
        span: tracing::Span::none(),
        redriven: false,
    }
}

fn main() {
    let agents = env("AGENTS", 10);
    let rounds = env("ROUNDS", 200);
    let result = actix_rt::System::new().block_on(run(agents, rounds));
    if let Err(error) = result {
        eprintln!("assignment bench failed: {error:#}");
        std::process::exit(1);
    }
}

async fn run(agents: usize, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = Settings::from_toml(&format!(
        r#"
[http]
bind = "127.0.0.1:0"
[database]
url = "sqlite://{}/parley.db?mode=rwc"
[telemetry]
log_filter = "warn"
[[channels]]
id = "bench"
kind = "whatsapp_cloud"
app_secret = "s"
verify_token = "v"
access_token = "a"
api_base = "http://127.0.0.1:9"
phone_number_ids = ["{PHONE}"]
"#,
        dir.path().display()
    ))?;
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    let engine = app.routing.engine.current();
    let team = engine
        .team_id("tier1_care")
        .ok_or_else(|| anyhow::anyhow!("the shipped policy has no tier1_care"))?;
    for n in 0..agents {
        let agent = app
            .store
            .write(CreateAgent {
                name: format!("agent {n}"),
                email: None,
                role: parley::domain::Role::Agent,
                team_id: Some(team),
                profile: AgentProfile {
                    capacity: Some(1),
                    languages: Some(vec!["en".into()]),
                    presence: Some(AgentPresence::Online),
                    ..AgentProfile::default()
                },
                now: SystemClock.now(),
            })
            .await??;
        app.routing.router.do_send(AgentUpdated(agent));
    }
    // Every agent busy, `rounds` cases queued behind them.
    let cases = agents + rounds;
    let mut ids = Vec::with_capacity(cases);
    for customer in 0..cases {
        match app
            .registry
            .send(&key(customer), message(customer, 0))
            .await?
        {
            Stepped::Applied(applied) => ids.push((customer, applied.conversation.id)),
            Stepped::Suppressed { reason, .. } => {
                anyhow::bail!("case {customer} suppressed: {reason}")
            }
        }
    }
    let mut events = app.events.subscribe();
    let assigned = |conversation: i64| {
        let store = app.store.clone();
        async move {
            store
                .conversation(conversation)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.assignee_id)
        }
    };
    // Wait for the first wave of assignments.
    let started = Instant::now();
    loop {
        let mut busy = 0;
        for (_, id) in &ids {
            if assigned(*id).await.is_some() {
                busy += 1;
            }
        }
        if busy >= agents {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "agents never got their first cases"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // Resolve one assigned case; measure until the router's next assignment commits.
        let mut resolvable = None;
        for (customer, id) in &ids {
            if let Some(conversation) = app.store.conversation(*id).await? {
                let open = !matches!(
                    TicketStatus::parse(&conversation.status),
                    Some(TicketStatus::Resolved | TicketStatus::Closed)
                );
                if open && conversation.assignee_id.is_some() {
                    resolvable = Some((*customer, *id));
                    break;
                }
            }
        }
        let Some((customer, id)) = resolvable else {
            anyhow::bail!("no assigned case left to resolve");
        };
        while events.try_recv().is_ok() {}
        let request = ChangeStatus {
            conversation_id: id,
            to: TicketStatus::Resolved,
            by: Actor::System,
            authority: parley::domain::Authority::System,
        };
        app.registry.send(&key(customer), request).await?;
        let freed = Instant::now();
        loop {
            let remaining = Duration::from_secs(10).saturating_sub(freed.elapsed());
            let event = tokio::time::timeout(remaining, events.recv()).await??;
            if event.kind == "assigned" && event.actor == "system" {
                samples.push(freed.elapsed());
                break;
            }
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "queued case assigned after capacity frees ({agents} agents, {rounds} rounds): p50 {:?}  p99 {:?}  max {:?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    app.registry.stop();
    Ok(())
}
