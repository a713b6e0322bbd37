//! The `parley` command.

use clap::{Parser, Subcommand};
use parley::api::auth::generate_token;
use parley::clock::{Clock, SystemClock};
use parley::config::Settings;
use parley::domain::Role;
use parley::startup::Application;
use parley::store::Store;
use parley::store::tokens::{CreateToken, RevokeToken};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "WhatsApp-first customer-support server"
)]
struct Cli {
    /// Configuration file layered over config/default.toml (environment variables
    /// PARLEY_SECTION__KEY override both).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server (migrates an SQLite database by itself).
    Serve,
    /// Runs Parley with a simulated WhatsApp number and customers writing in, and prints
    /// the one URL of its inbox (no Meta account needed; `--config` is not read).
    Demo {
        /// Where the demo's SQLite databases are kept between runs.
        #[arg(long, default_value = "data-demo")]
        data_dir: PathBuf,
        /// Where the inbox and the API listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Milliseconds between two customer messages.
        #[arg(long, default_value_t = 4000)]
        pace_ms: u64,
    },
    /// Brings the database schema up to date.
    Migrate,
    /// Manages API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Prints the GraphQL schema (SDL) that schema/schema.graphql publishes.
    Schema,
    /// Works with WebAssembly plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Works with the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Works with the reporting projection.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Classifies messages with the triage model (config/triage.toml).
    Triage {
        #[command(subcommand)]
        command: TriageCommand,
    },
    /// Works with dead letters: items the intake could not apply.
    DeadLetter {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Asks the running server to apply a dead letter again (GraphQL
    /// `redriveDeadLetter`), with the admin token read from the first line of standard
    /// input (kept out of the process list). Prints the dead letter's source once applied.
    Redrive {
        id: i64,
        /// The server's base URL; by default the configured listener on this machine.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum TriageCommand {
    /// Scores a labelled JSONL file: per-label precision, recall and F1, macro averages
    /// and the most frequent confusions, the same per language, and a risk confusion
    /// table, as JSON on stdout.
    Eval {
        /// Lines like {"text": "...", "intents": [...], "urgency": "...", "risk": [...], "language": "hi"}.
        file: PathBuf,
        /// A triage configuration other than the shipped one.
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// A labelled corpus file to train on as well (repeatable).
        #[arg(long)]
        corpus: Vec<PathBuf>,
    },
    /// Reads JSONL lines with a "text" on stdin; writes one JSON classification per line.
    Classify {
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// A labelled corpus file to train on as well (repeatable).
        #[arg(long)]
        corpus: Vec<PathBuf>,
    },
    /// Writes the tag corrections agents made (`setTags`) as labelled JSONL, the lines
    /// `triage eval` reads: the case's latest customer message with the intents and
    /// risks after the correction. Reads the configured database.
    ExportCorrections {
        /// Only corrections logged after this event id (the last line's id, to go on
        /// from an earlier export).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Empties the report rollups and folds the whole event log into them again.
    Rebuild,
    /// Writes the report figures of a period to standard output, one line per step.
    Export {
        /// First instant (RFC 3339, e.g. 2026-01-01T00:00:00Z), rounded down to the hour.
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// End, exclusive (RFC 3339).
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
        /// Only csv.
        #[arg(long, default_value = "csv")]
        format: String,
        /// hour, day, week or month.
        #[arg(long, default_value = "day")]
        interval: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks the audit log's hash chain from its first entry. Prints a JSON report
    /// naming the first broken entry; exits with 1 when the chain is broken.
    Verify,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validates a plugin before it is deployed: the manifest, the component against its
    /// world and Parley's imports, the secrets the configuration provides, and a smoke
    /// call of `health.check`. Prints a JSON report; exits with 1 when the plugin is not
    /// fit to deploy.
    Check {
        /// The plugin's manifest, `plugin.toml`.
        manifest: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Creates a token and prints it, alone on the last line, once.
    Create {
        #[arg(long)]
        name: String,
        /// admin, supervisor, agent, integration or auditor.
        #[arg(long)]
        role: String,
        /// The agent this token acts as (for people using an inbox).
        #[arg(long)]
        agent_id: Option<i64>,
        /// Days until the token stops working (it never expires when omitted).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Lists every token (never the tokens themselves): id, name, role, agent, state.
    List,
    /// Revokes a token: it stops working at once, open WebSockets included.
    Revoke {
        /// The token's id (see `token list`).
        id: i64,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => {
            print!("{}", parley::api::sdl());
            return ExitCode::SUCCESS;
        }
        Command::Demo {
            data_dir,
            bind,
            pace_ms,
        } => {
            return demo(parley::demo::DemoOptions {
                data_dir,
                bind,
                pace: std::time::Duration::from_millis(pace_ms.max(1)),
            })
            .await;
        }
        Command::Triage { command }
            if !matches!(command, TriageCommand::ExportCorrections { .. }) =>
        {
            return match triage(command) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("parley: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("parley: {error}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = parley::telemetry::init(&settings.telemetry);
    let result = match cli.command {
        Command::Serve => serve(settings).await,
        Command::Plugin {
            command: PluginCommand::Check { manifest },
        } => return check_plugin(&settings, &manifest).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => return verify_audit(&settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Reports {
            command: ReportsCommand::Rebuild,
        } => rebuild_reports(settings).await,
        Command::Reports {
            command:
                ReportsCommand::Export {
                    from,
                    to,
                    format,
                    interval,
                },
        } => export_reports(settings, from, to, &format, &interval).await,
        Command::Token { command } => tokens(settings, command).await,
        Command::DeadLetter {
            command: DeadLetterCommand::Redrive { id, url },
        } => redrive_dead_letter(&settings, id, url).await,
        Command::Triage {
            command: TriageCommand::ExportCorrections { after },
        } => export_corrections(&settings, after).await,
        Command::Schema | Command::Triage { .. } | Command::Demo { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parley: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `parley dead-letter redrive ID`: the running server applies the dead letter (only it
/// holds the conversations' actors), as an admin's `redriveDeadLetter` would.
async fn redrive_dead_letter(
    settings: &Settings,
    id: i64,
    url: Option<String>,
) -> anyhow::Result<()> {
    let mut token = String::new();
    std::io::stdin().read_line(&mut token)?;
    let token = token.trim();
    anyhow::ensure!(!token.is_empty(), "give an admin token on standard input");
    let url = url.unwrap_or_else(|| {
        let port = settings.http.bind.rsplit(':').next().unwrap_or("8080");
        format!("http://127.0.0.1:{port}")
    });
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", url.trim_end_matches('/')))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "query": "mutation($id: ID!) { redriveDeadLetter(id: $id) }",
            "variables": { "id": id.to_string() },
        }))
        .send()
        .await?
        .json()
        .await?;
    if let Some(error) = answer["errors"].get(0) {
        anyhow::bail!(
            "{} ({})",
            error["message"].as_str().unwrap_or("the server refused"),
            error["extensions"]["code"].as_str().unwrap_or("error")
        );
    }
    println!(
        "dead letter {id} ({}) applied",
        answer["data"]["redriveDeadLetter"]
            .as_str()
            .unwrap_or_default()
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.channels.is_empty() {
        eprintln!(
            "parley: no channel is configured; add a [[channels]] section (see README) to receive webhooks."
        );
    }
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    eprintln!("parley: listening on port {}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}

/// `parley demo`: quiet logs (warnings only, unless RUST_LOG says otherwise), so that
/// the URL to open stays in sight.
async fn demo(options: parley::demo::DemoOptions) -> ExitCode {
    let quiet = parley::config::TelemetrySettings {
        log_filter: "warn".into(),
        json_logs: false,
        service_name: "parley-demo".into(),
    };
    let _telemetry = parley::telemetry::init(&quiet);
    match parley::demo::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parley: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `parley reports rebuild`: prints the events folded and the time it took.
async fn rebuild_reports(settings: Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    let projection =
        parley::reports::Projection::new(store, Arc::new(SystemClock), &settings.reports)?;
    let started = std::time::Instant::now();
    let events = projection.rebuild().await?;
    println!(
        "{}",
        serde_json::json!({ "events": events, "seconds": started.elapsed().as_secs_f64() })
    );
    Ok(())
}

/// `parley triage export-corrections`: labelled JSONL on standard output.
async fn export_corrections(settings: &Settings, after: i64) -> anyhow::Result<()> {
    use std::io::Write;
    let store = Store::connect(&settings.database).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = after;
    loop {
        let (examples, last) = store.tag_corrections(after, 500).await?;
        for example in &examples {
            serde_json::to_writer(&mut out, example)?;
            out.write_all(b"\n")?;
        }
        match last {
            Some(last) => after = last,
            None => break,
        }
    }
    out.flush()?;
    Ok(())
}

/// `parley reports export`: the figures of each step as CSV on standard output.
async fn export_reports(
    settings: Settings,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    format: &str,
    interval: &str,
) -> anyhow::Result<()> {
    use parley::reports::figures::{Figures, Interval, Scope};
    anyhow::ensure!(format == "csv", "--format must be csv");
    let interval = match interval {
        "hour" => Interval::Hour,
        "day" => Interval::Day,
        "week" => Interval::Week,
        "month" => Interval::Month,
        other => anyhow::bail!("--interval must be hour, day, week or month, not {other:?}"),
    };
    let hour = 3_600_000_000;
    let (from, to) = (
        from.timestamp_micros().div_euclid(hour) * hour,
        to.timestamp_micros(),
    );
    anyhow::ensure!(to > from, "--to must be after --from");
    let store = Store::connect(&settings.database).await?;
    let calendar = parley::reports::ReportCalendar::from_settings(&settings.reports)?;
    let kpis = parley::reports::load_kpis(&settings.reports)?;
    let figures = Figures::new(store, calendar, kpis);
    print!(
        "{}",
        figures
            .export_csv(&Scope::everything(from, to), interval)
            .await?
    );
    Ok(())
}

/// `parley audit verify`: the chain report on standard output, as JSON.
async fn verify_audit(settings: &Settings) -> ExitCode {
    let report = match Store::connect(&settings.database).await {
        Ok(store) => store.verify_audit_chain().await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            match &report.first_broken {
                None => ExitCode::SUCCESS,
                Some(broken) => {
                    eprintln!(
                        "parley: the audit chain is broken at entry {} ({})",
                        broken.id, broken.reason
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("parley: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `parley plugin check`: the report on standard output, as JSON.
async fn check_plugin(settings: &Settings, manifest: &std::path::Path) -> ExitCode {
    use parley::plugins::{PluginRuntime, SecretSource, check};
    use serde_json::json;
    let runtime = match PluginRuntime::new(settings.plugins.runtime_config()) {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => {
            eprintln!("parley: {error}");
            return ExitCode::FAILURE;
        }
    };
    let secrets: Arc<dyn SecretSource> = Arc::new(settings.plugins.secret_source());
    let error_json =
        |e: &parley::plugins::PluginError| json!({ "code": e.code(), "message": e.to_string() });
    let (passed, report) = match check(&runtime, &secrets, manifest).await {
        Ok(report) => {
            let passed = report.passed();
            (
                passed,
                json!({
                    "passed": passed,
                    "manifest": manifest.display().to_string(),
                    "id": report.id,
                    "version": report.version,
                    "world": report.world.to_string(),
                    "component": report.component_path.display().to_string(),
                    "component_bytes": report.component_bytes,
                    "prepare_ms": report.prepare_time.as_secs_f64() * 1000.0,
                    "missing_secrets": report.missing_secrets,
                    "smoke_call": {
                        "call": "health.check",
                        "ok": report.smoke.is_ok(),
                        "error": report.smoke.as_ref().err().map(error_json),
                        "ms": report.smoke_time.as_secs_f64() * 1000.0,
                    },
                }),
            )
        }
        Err(error) => (
            false,
            json!({
                "passed": false,
                "manifest": manifest.display().to_string(),
                "error": error_json(&error),
            }),
        ),
    };
    let printed = serde_json::to_string_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|text| {
            use std::io::Write as _;
            writeln!(std::io::stdout().lock(), "{text}")
        });
    if let Err(error) = printed {
        eprintln!("parley: cannot print the report: {error}");
        return ExitCode::FAILURE;
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    eprintln!("parley: the database schema is up to date.");
    Ok(())
}

async fn tokens(settings: Settings, command: TokenCommand) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database).await?;
    if store.is_sqlite() || settings.database.migrate_on_start {
        store.migrate().await?;
    }
    match command {
        TokenCommand::Create {
            name,
            role,
            agent_id,
            expires_in_days,
        } => create_token(&store, name, role, agent_id, expires_in_days).await,
        TokenCommand::List => {
            let now = SystemClock.now();
            println!("id\tname\trole\tagent\tstate");
            for token in store.tokens().await? {
                let state = if token.revoked_at.is_some() {
                    "revoked".to_owned()
                } else if !token.in_force(now) {
                    "expired".to_owned()
                } else if let Some(at) = token.expires_at {
                    format!(
                        "expires {}",
                        parley::clock::micros_to_datetime(at).to_rfc3339()
                    )
                } else {
                    "active".to_owned()
                };
                let agent = token.agent_id.map_or("-".to_owned(), |id| id.to_string());
                println!(
                    "{}\t{}\t{}\t{agent}\t{state}",
                    token.id, token.name, token.role
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let revoked = store
                .write(RevokeToken {
                    by: "cli".into(),
                    id,
                    now: SystemClock.now(),
                })
                .await?;
            match revoked {
                Some(_) => {
                    println!("Token {id} is revoked.");
                    Ok(())
                }
                None => anyhow::bail!("no token has id {id}"),
            }
        }
    }
}

async fn create_token(
    store: &Store,
    name: String,
    role: String,
    agent_id: Option<i64>,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let role = Role::parse(&role).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown role {role:?}: use admin, supervisor, agent, integration or auditor"
        )
    })?;
    if name.trim().is_empty() {
        anyhow::bail!("the token name is empty");
    }
    let now = SystemClock.now();
    let expires_at = expires_in_days.map(|days| now + i64::from(days) * 86_400 * 1_000_000);
    let (token, token_hash) = generate_token();
    let created = store
        .write(CreateToken {
            by: "cli".into(),
            name: name.clone(),
            role,
            agent_id,
            token_hash,
            expires_at,
            now,
        })
        .await??;
    println!(
        "Created API token {} ({name}) with role {role}. It is shown once; keep it safe:",
        created.id
    );
    println!("{token}");
    Ok(())
}

fn triage(command: TriageCommand) -> anyhow::Result<()> {
    use parley::triage::{Classifier, TriageConfig};
    use std::io::BufReader;
    let (taxonomy, corpus) = match &command {
        TriageCommand::Eval {
            taxonomy, corpus, ..
        }
        | TriageCommand::Classify { taxonomy, corpus } => (taxonomy.clone(), corpus.clone()),
        TriageCommand::ExportCorrections { .. } => (None, Vec::new()),
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
    };
    let text = match &taxonomy {
        Some(path) => read(path)?,
        None => parley::triage::DEFAULT_CONFIG.to_owned(),
    };
    let mut config = TriageConfig::from_toml(&text)?;
    for path in &corpus {
        config.add_corpus(&path.display().to_string(), &read(path)?)?;
    }
    let classifier = Classifier::train(&config)?;
    match command {
        TriageCommand::Eval { file, .. } => {
            let input = std::fs::File::open(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let report = parley::triage::eval(&classifier, BufReader::new(input))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        TriageCommand::Classify { .. } => {
            let stdout = std::io::stdout();
            parley::triage::classify_stream(&classifier, std::io::stdin().lock(), stdout.lock())?;
        }
        TriageCommand::ExportCorrections { .. } => {
            anyhow::bail!("export-corrections reads the database (run through main)")
        }
    }
    Ok(())
}
