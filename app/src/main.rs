//! The `parley` command.

use clap::{Parser, Subcommand};
use parley::api::auth::generate_token;
use parley::clock::{Clock, SystemClock};
use parley::config::Settings;
use parley::domain::Role;
use parley::startup::Application;
use parley::store::Store;
use parley::store::directory::CreateToken;
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
    /// Classifies messages with the triage model (config/triage.toml).
    Triage {
        #[command(subcommand)]
        command: TriageCommand,
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
    },
    /// Reads JSONL lines with a "text" on stdin; writes one JSON classification per line.
    Classify {
        #[arg(long)]
        taxonomy: Option<PathBuf>,
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
        Command::Triage { command } => {
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
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    agent_id,
                },
        } => create_token(settings, name, role, agent_id).await,
        Command::Schema | Command::Triage { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parley: {error:#}");
            ExitCode::FAILURE
        }
    }
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

async fn create_token(
    settings: Settings,
    name: String,
    role: String,
    agent_id: Option<i64>,
) -> anyhow::Result<()> {
    let role = Role::parse(&role).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown role {role:?}: use admin, supervisor, agent, integration or auditor"
        )
    })?;
    if name.trim().is_empty() {
        anyhow::bail!("the token name is empty");
    }
    let store = Store::connect(&settings.database).await?;
    if store.is_sqlite() || settings.database.migrate_on_start {
        store.migrate().await?;
    }
    let (token, token_hash) = generate_token();
    let created = store
        .write(CreateToken {
            by: "cli".into(),
            name: name.clone(),
            role,
            agent_id,
            token_hash,
            now: SystemClock.now(),
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
    let taxonomy = match &command {
        TriageCommand::Eval { taxonomy, .. } | TriageCommand::Classify { taxonomy } => {
            taxonomy.clone()
        }
    };
    let text = match &taxonomy {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        None => parley::triage::DEFAULT_CONFIG.to_owned(),
    };
    let config = TriageConfig::from_toml(&text)?;
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
    }
    Ok(())
}
