//! Configuration: `config/default.toml` (compiled in) < `--config FILE` <
//! `PARLEY_SECTION__KEY` environment variables. Unknown keys are refused so that a typo
//! never silently falls back to a default. Secrets are never printed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The defaults shipped with Parley, documented key by key in the file itself.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub conversations: ConversationSettings,
    pub outbound: OutboundSettings,
    pub graphql: GraphqlSettings,
    pub telemetry: TelemetrySettings,
    pub routing: RoutingSettings,
    pub plugins: PluginSettings,
    pub sla: SlaSettings,
    pub csat: CsatSettings,
    pub templates: TemplateSettings,
    pub retention: RetentionSettings,
    pub reports: ReportSettings,
    pub cluster: ClusterSettings,
    pub media: MediaSettings,
    /// `[texts.<language>]`: the closing message and the survey in other languages.
    #[serde(default)]
    pub texts: std::collections::BTreeMap<String, crate::domain::texts::TextsOverride>,
    #[serde(default)]
    pub channels: Vec<ChannelSettings>,
}

/// Several nodes on one PostgreSQL, coordinated through Redis. Without `redis_url`
/// Parley is one node, exactly as without this section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://host:port`: join the cluster of nodes sharing this Redis and the
    /// `[database] url` (PostgreSQL only).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// This node's name in leases and `clusterStatus`; empty: host name and pid.
    #[serde(default)]
    pub node_id: String,
    /// Conversations hash to this many shards, each owned by one node at a time. Every
    /// node of a cluster must use the same number.
    pub shards: u32,
    /// A shard lease not renewed for this long (database clock) may be taken over.
    pub lease_secs: u64,
    /// How often an owner renews its leases and looks for orphaned shards.
    pub heartbeat_ms: u64,
    /// Where the other nodes reach this one (`http://host:port`) with requests for the
    /// cases it owns; empty: `http://127.0.0.1:` and the port this node listens on.
    #[serde(default)]
    pub advertise_url: String,
    /// Every Redis key of this cluster starts with this (several clusters, or test runs,
    /// can share one Redis).
    pub key_prefix: String,
}

impl ClusterSettings {
    /// Whether this node joins a cluster.
    pub fn enabled(&self) -> bool {
        self.redis_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty())
    }

    /// The configured node id, or `host-pid`.
    pub fn node_id(&self) -> String {
        if !self.node_id.trim().is_empty() {
            return self.node_id.trim().to_string();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    }

    fn validate(&self, database_url: &str) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if !database_url.starts_with("postgres") {
            return Err(ConfigError::Inconsistent(
                "cluster.redis_url is set but database.url is not PostgreSQL: a cluster shares one \
                 PostgreSQL database (SQLite is one node's file); use postgres://... or remove \
                 [cluster] redis_url"
                    .into(),
            ));
        }
        if self.shards == 0 || self.shards > 4096 {
            return Err(ConfigError::Inconsistent(format!(
                "cluster.shards must be between 1 and 4096, not {}",
                self.shards
            )));
        }
        if self.key_prefix.trim().is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(ConfigError::Inconsistent(
                "cluster.key_prefix must be a non-empty word without spaces".into(),
            ));
        }
        if self.lease_secs < 2
            || self.heartbeat_ms == 0
            || self.heartbeat_ms >= self.lease_secs * 1000 / 2
        {
            return Err(ConfigError::Inconsistent(
                "cluster.lease_secs must be at least 2 and cluster.heartbeat_ms under half of it"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The SLA clock and escalations (targets and ladders are in the SLA policy file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// Off: no SLA ledger, alarms or automatic escalations (a baseline for measuring what
    /// the clock costs).
    pub enabled: bool,
}

/// Where the triage taxonomy and the routing policy are read from (and re-read on reload).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Triage, noise filter and routing of customer messages. Off, messages are stored on
    /// their case untouched (used to measure what triage costs).
    pub enabled: bool,
    /// Empty: the built-in `config/triage.toml`.
    pub triage_file: String,
    /// Labelled corpus files (JSONL, see `config/triage/LABELS.md`) trained on besides
    /// the examples of the triage file and, when it says so, the shipped corpus.
    #[serde(default)]
    pub triage_corpus: Vec<String>,
    /// Empty: the built-in `config/routing.toml`.
    pub rules_file: String,
    /// Empty: the built-in `config/sla.toml`.
    #[serde(default)]
    pub sla_file: String,
    /// Empty: the built-in `config/approvals.toml`.
    #[serde(default)]
    pub approvals_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    /// Where `/metrics` is served: empty, on `bind` with everything else; an address, on
    /// a listener of its own (and not on `bind`), for a scraper on a private network.
    #[serde(default)]
    pub metrics_bind: String,
    pub graphiql: bool,
    pub workers: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    /// Where the webhook inbox lives; unset: see [`DatabaseSettings::inbox_url`].
    #[serde(default)]
    pub inbox_url: Option<String>,
    pub max_connections: u32,
    pub sqlite_synchronous: SqliteSynchronous,
    pub migrate_on_start: bool,
    pub group_commit_max_batch: usize,
}

impl DatabaseSettings {
    /// The webhook inbox's database: `inbox_url` when set; otherwise, for an SQLite file,
    /// a second file beside it (`parley.db` -> `parley-inbox.db`, same options), since
    /// SQLite lets one writer at a time into a file and acknowledging a webhook must not
    /// wait behind the processing of earlier ones; for PostgreSQL (and an in-memory
    /// SQLite database) the main database.
    pub fn inbox_url(&self) -> String {
        if let Some(url) = self.inbox_url.as_deref().filter(|u| !u.trim().is_empty()) {
            return url.to_owned();
        }
        let Some(rest) = self.url.strip_prefix("sqlite:") else {
            return self.url.clone();
        };
        let (scheme, rest) = match rest.strip_prefix("//") {
            Some(rest) => ("sqlite://", rest),
            None => ("sqlite:", rest),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
            return self.url.clone();
        }
        let file = std::path::Path::new(path);
        let inbox = match (file.file_stem(), file.extension()) {
            (Some(stem), Some(ext)) => file.with_file_name(format!(
                "{}-inbox.{}",
                stem.to_string_lossy(),
                ext.to_string_lossy()
            )),
            _ => std::path::PathBuf::from(format!("{path}-inbox")),
        };
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{scheme}{}{query}", inbox.display())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub idle_timeout_secs: u64,
    pub reopen_window_secs: u64,
    pub actor_threads: usize,
    pub max_apply_attempts: u32,
    /// A PENDING case with no customer answer for this long gets `closing_message` and is
    /// resolved (marked automatic); 0 never does.
    #[serde(default)]
    pub pending_close_after_secs: u64,
    #[serde(default)]
    pub closing_message: String,
}

/// How long each kind of personal data is kept, in days (0: until the contact is erased).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Raw webhook bodies, once processed.
    pub webhook_payloads_days: u32,
    pub dead_letters_days: u32,
    /// What customers and agents wrote, on cases closed this long ago.
    pub message_text_days: u32,
    /// The texts of held messages decided this long ago.
    pub held_messages_days: u32,
    /// Media files (both ways) on cases closed this long ago.
    pub media_days: u32,
    /// Time between two sweeps (service clock), at least 60.
    pub sweep_interval_secs: u64,
}

/// Media files: where their bytes are kept, what is accepted, how inbound files are
/// fetched and how long a signed download URL lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// `local` (a directory) or `s3` (any S3-compatible store).
    pub backend: MediaBackend,
    /// The directory of the `local` backend (created if missing).
    pub dir: PathBuf,
    /// The `s3` backend's bucket, endpoint (empty: AWS), region and credentials.
    pub s3_bucket: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: SecretString,
    /// Let the endpoint be plain `http://` (a local stand-in).
    pub s3_allow_http: bool,
    /// The key that signs download URLs; empty: one generated once and kept in the
    /// database (shared by every node of a cluster).
    pub url_secret: SecretString,
    /// How long a signed URL lives when the client does not say, and at most.
    pub url_ttl_secs: u64,
    pub max_url_ttl_secs: u64,
    /// Largest file accepted per kind, in bytes (Meta's own limits by default).
    pub max_image_bytes: u64,
    pub max_audio_bytes: u64,
    pub max_video_bytes: u64,
    pub max_document_bytes: u64,
    pub max_sticker_bytes: u64,
    /// MIME types accepted in either direction (parameters such as `; codecs=opus` are
    /// ignored when matching).
    pub allowed_mime_types: Vec<String>,
    /// Attempts to fetch an inbound file before it is marked failed, and the backoff
    /// between them (doubled each time, capped).
    pub fetch_max_attempts: u32,
    pub fetch_initial_backoff_ms: u64,
    pub fetch_max_backoff_ms: u64,
    /// Time allowed for one call to the provider while fetching or uploading.
    pub request_timeout_ms: u64,
    /// Files fetched at the same time.
    pub fetch_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaBackend {
    Local,
    S3,
}

impl MediaSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == MediaBackend::S3 && self.s3_bucket.trim().is_empty() {
            return Err(ConfigError::Inconsistent(
                "media.backend is s3 but media.s3_bucket is empty".into(),
            ));
        }
        if self.url_ttl_secs == 0 || self.url_ttl_secs > self.max_url_ttl_secs {
            return Err(ConfigError::Inconsistent(
                "media.url_ttl_secs must be between 1 and media.max_url_ttl_secs".into(),
            ));
        }
        if self.fetch_max_attempts == 0 || self.fetch_concurrency == 0 {
            return Err(ConfigError::Inconsistent(
                "media.fetch_max_attempts and media.fetch_concurrency must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The reporting projection (hourly rollups folded from the event log).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Off: nothing folds the log while serving (`parley reports rebuild` still does).
    pub enabled: bool,
    /// The IANA time zone whose hours, days and weeks the rollups follow.
    pub time_zone: String,
    /// Weekdays (`mon` .. `sun`) that count for business-hours durations.
    pub business_days: Vec<String>,
    /// Opening hours of those days (`"09:00-17:00"`), in `time_zone`.
    pub business_hours: String,
    /// Events folded per transaction.
    pub batch_size: u64,
    /// The KPI targets; empty: the built-in `config/kpi.toml`.
    pub kpi_file: String,
}

/// Message templates (the registry is in the database).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// The language variant sent when the contact's language has none.
    pub fallback_language: String,
}

/// The satisfaction survey sent after a case is resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsatSettings {
    pub enabled: bool,
    /// Wait after RESOLVED before asking, in seconds (300 to 900).
    pub delay_secs: u64,
    /// The question, sent with 1 to 5 to choose from.
    pub question: String,
    /// Asked once after a score of 1 to 3.
    pub follow_up: String,
    /// An approved template to ask with outside the 24-hour window; empty: no survey
    /// outside it.
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub template_language: String,
}

impl CsatSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(300..=900).contains(&self.delay_secs) {
            return Err(ConfigError::Inconsistent(format!(
                "csat.delay_secs must be between 300 and 900 (5 to 15 minutes), not {}",
                self.delay_secs
            )));
        }
        for (name, text) in [("question", &self.question), ("follow_up", &self.follow_up)] {
            if text.trim().is_empty() || text.chars().count() > 1024 {
                return Err(ConfigError::Inconsistent(format!(
                    "csat.{name} must be 1 to 1024 characters"
                )));
            }
        }
        if !self.template.is_empty() && self.template_language.is_empty() {
            return Err(ConfigError::Inconsistent(
                "csat.template_language is needed with csat.template".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub request_timeout_ms: u64,
    pub concurrency: usize,
    /// Messages one business number sends per second (its throughput tier).
    #[serde(default = "default_messages_per_second")]
    pub messages_per_second: u32,
    /// Messages to one customer at once before the pair rate applies.
    #[serde(default = "default_pair_burst")]
    pub pair_burst: u32,
    /// Then one message to that customer per this interval (0: no pair pacing).
    #[serde(default = "default_pair_interval_ms")]
    pub pair_interval_ms: u64,
}

fn default_messages_per_second() -> u32 {
    80
}

fn default_pair_burst() -> u32 {
    10
}

fn default_pair_interval_ms() -> u64 {
    6000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    pub depth_limit: usize,
    pub complexity_limit: usize,
    pub max_page_size: usize,
    /// Largest GraphQL request body (and WebSocket message) accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds a WebSocket may stay open without sending `connection_init`.
    pub connection_init_timeout_secs: u64,
    /// Seconds between checks that an open WebSocket's token is still in force.
    pub token_recheck_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_filter: String,
    pub json_logs: bool,
    pub service_name: String,
}

/// One WhatsApp channel, by `kind`: Meta's Cloud API spoken natively, or a provider
/// reached through a transport plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelSettings {
    WhatsappCloud(CloudChannelSettings),
    Transport(TransportChannelSettings),
}

impl ChannelSettings {
    /// The `{channel_id}` of `/webhooks/{channel_id}`.
    pub fn id(&self) -> &str {
        match self {
            Self::WhatsappCloud(c) => &c.id,
            Self::Transport(c) => &c.id,
        }
    }
}

/// A Meta app and the business numbers it serves (`kind = "whatsapp_cloud"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudChannelSettings {
    /// The `{channel_id}` of `/webhooks/{channel_id}`.
    pub id: String,
    /// Meta app secret: the key of `X-Hub-Signature-256`.
    pub app_secret: SecretString,
    /// The token typed into Meta's webhook settings, echoed in the subscription handshake.
    pub verify_token: SecretString,
    /// Bearer token for the Graph API.
    pub access_token: SecretString,
    /// Graph API base, for example `https://graph.facebook.com/v21.0`.
    pub api_base: String,
    /// Business phone number ids served by this app.
    pub phone_number_ids: Vec<String>,
}

/// A provider reached through a transport plugin (`kind = "transport"`): the plugin
/// verifies and parses its webhooks and sends the replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportChannelSettings {
    /// The `{channel_id}` of `/webhooks/{channel_id}`.
    pub id: String,
    /// Id of the transport plugin (its manifest's `id`).
    pub plugin: String,
    /// Scheme, host and port (and path prefix, behind a proxy) under which the provider
    /// reaches Parley, for example `https://parley.example.com`. Providers such as Twilio
    /// sign the full URL they call, so the plugin verifies against this base followed by
    /// the request's path and query, not against the address Parley listens on.
    pub public_base_url: String,
}

impl CloudChannelSettings {
    /// An empty app secret would let anyone sign webhooks; a plain-http Graph API base
    /// would send the access token in clear (allowed only on loopback, for local fakes).
    fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        let id = &self.id;
        if self.app_secret.expose_secret().trim().is_empty() {
            return Err(ConfigError::Inconsistent(format!(
                "channel {id:?}: app_secret is empty; webhooks could not be verified"
            )));
        }
        let url = reqwest::Url::parse(&self.api_base).map_err(|_| {
            ConfigError::Inconsistent(format!("channel {id:?}: api_base is not a URL"))
        })?;
        let loopback = url.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" if url.host().is_some() => Ok(()),
            "http" if loopback => Ok(()),
            _ => Err(ConfigError::Inconsistent(format!(
                "channel {id:?}: api_base must be an https URL (plain http only on loopback)"
            ))),
        }
    }
}

impl TransportChannelSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why: &str| {
            ConfigError::Inconsistent(format!(
                "channel {:?}: public_base_url {:?} {why}",
                self.id, self.public_base_url
            ))
        };
        let url =
            reqwest::Url::parse(&self.public_base_url).map_err(|_| invalid("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("must be an http or https URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        if self.plugin.trim().is_empty() {
            return Err(ConfigError::Inconsistent(format!(
                "channel {:?} names no transport plugin",
                self.id
            )));
        }
        Ok(())
    }

    /// The URL the provider called for a request whose path and query are `path_and_query`
    /// (`/webhooks/twilio-main?x=1`).
    pub fn public_url(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.public_base_url.trim_end_matches('/')
        )
    }
}

/// The WebAssembly plugin host: which plugins to load, where to watch for more, which
/// serve as the CRM and the order connector, their limits and their secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Manifests (`plugin.toml`) loaded at start.
    pub manifests: Vec<PathBuf>,
    /// A directory watched for plugins: every `*.toml` in it and every `*/plugin.toml`
    /// below it is loaded when it appears or changes (the component file too), and
    /// removed when it disappears.
    #[serde(default)]
    pub watch_dir: Option<PathBuf>,
    /// The only directory `loadPlugin` takes manifests from (relative paths are taken
    /// inside it); unset: the watched directory, and without one `loadPlugin` is off.
    #[serde(default)]
    pub load_dir: Option<PathBuf>,
    /// How often the watched directory is looked at.
    pub watch_interval_ms: u64,
    /// Id of the plugin that serves as the CRM connector.
    #[serde(default)]
    pub crm: Option<String>,
    /// Id of the plugin that serves as the order connector.
    #[serde(default)]
    pub orders: Option<String>,
    /// A contact's CRM profile is looked up again for a new case after this long.
    pub crm_refresh_secs: u64,
    /// Most plugin calls running at once, across all plugins.
    pub max_concurrent_calls: u32,
    /// Ceiling for any manifest's `memory_limit_mb`.
    pub max_memory_mb: u32,
    /// Largest HTTP response body a plugin may receive.
    pub max_response_bytes: usize,
    /// Consecutive failures after which a plugin's calls fail fast.
    pub breaker_failures: u32,
    /// How long calls fail fast before one is let through to test recovery.
    pub breaker_cool_down_secs: u64,
    /// Secret values by plugin id and secret name; a plugin reads only the names its
    /// manifest lists. Ids and names match case-insensitively, with `-` and `_` alike.
    #[serde(default)]
    pub secrets: HashMap<String, HashMap<String, SecretString>>,
}

impl PluginSettings {
    /// The plugin runtime's limits.
    pub fn runtime_config(&self) -> crate::plugins::RuntimeConfig {
        crate::plugins::RuntimeConfig {
            max_concurrent_calls: self.max_concurrent_calls,
            max_memory_mb: self.max_memory_mb,
            max_response_bytes: self.max_response_bytes,
        }
    }

    /// When a plugin's circuit breaker opens, and for how long.
    pub fn breaker_config(&self) -> crate::plugins::BreakerConfig {
        crate::plugins::BreakerConfig {
            failure_threshold: self.breaker_failures,
            cool_down: std::time::Duration::from_secs(self.breaker_cool_down_secs),
        }
    }

    /// The configured secrets, for the plugin host.
    pub fn secret_source(&self) -> crate::plugins::StaticSecrets {
        let mut secrets = crate::plugins::StaticSecrets::new();
        for (plugin, names) in &self.secrets {
            for (name, value) in names {
                secrets = secrets.with(plugin, name, value.expose_secret());
            }
        }
        secrets
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("plugins.watch_interval_ms", self.watch_interval_ms),
            (
                "plugins.max_concurrent_calls",
                u64::from(self.max_concurrent_calls),
            ),
            ("plugins.max_memory_mb", u64::from(self.max_memory_mb)),
            ("plugins.breaker_failures", u64::from(self.breaker_failures)),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Inconsistent(format!(
                    "{key} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is invalid: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("configuration is invalid: {0}")]
    Inconsistent(String),
}

impl Settings {
    /// The texts Parley writes to customers itself, per language (checked).
    pub fn customer_texts(&self) -> Result<crate::domain::texts::LocalizedTexts, ConfigError> {
        use crate::domain::texts::{CustomerTexts, LocalizedTexts};
        let english = CustomerTexts::english(
            &self.conversations.closing_message,
            &self.csat.question,
            &self.csat.follow_up,
        );
        LocalizedTexts::new(english, &self.texts).map_err(ConfigError::Inconsistent)
    }

    /// Reads the layers: defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(
            config::Environment::with_prefix("PARLEY")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses the layers from TOML text instead of files (tests, tools).
    pub fn from_toml(overrides: &str) -> Result<Self, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(overrides, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for channel in &self.channels {
            let id = channel.id();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Inconsistent(format!(
                    "channel id {id:?} must be non-empty and use only letters, digits, '-' and '_'"
                )));
            }
            if !seen.insert(id) {
                return Err(ConfigError::Inconsistent(format!(
                    "channel id {id:?} is configured twice"
                )));
            }
            match channel {
                ChannelSettings::WhatsappCloud(cloud) if cloud.phone_number_ids.is_empty() => {
                    return Err(ConfigError::Inconsistent(format!(
                        "channel {id:?} lists no phone_number_ids"
                    )));
                }
                ChannelSettings::WhatsappCloud(cloud) => cloud.validate()?,
                ChannelSettings::Transport(transport) => transport.validate()?,
            }
        }
        self.plugins.validate()?;
        self.csat.validate()?;
        self.cluster.validate(&self.database.url)?;
        self.media.validate()?;
        self.customer_texts()?;
        let closing = &self.conversations.closing_message;
        if self.conversations.pending_close_after_secs > 0
            && (closing.trim().is_empty()
                || closing.chars().count() > crate::domain::MAX_TEXT_CHARS)
        {
            return Err(ConfigError::Inconsistent(
                "conversations.closing_message must be 1 to 4096 characters when pending_close_after_secs is set".into(),
            ));
        }
        if self.database.group_commit_max_batch == 0 {
            return Err(ConfigError::Inconsistent(
                "database.group_commit_max_batch must be at least 1".into(),
            ));
        }
        if self.graphql.max_page_size == 0 {
            return Err(ConfigError::Inconsistent(
                "graphql.max_page_size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn channel(&self, id: &str) -> Option<&ChannelSettings> {
        self.channels.iter().find(|c| c.id() == id)
    }
}

#[cfg(test)]
mod tests {
    fn database(url: &str, inbox_url: Option<&str>) -> DatabaseSettings {
        DatabaseSettings {
            url: url.into(),
            inbox_url: inbox_url.map(str::to_owned),
            max_connections: 1,
            sqlite_synchronous: SqliteSynchronous::Full,
            migrate_on_start: true,
            group_commit_max_batch: 1,
        }
    }

    #[test]
    fn an_sqlite_file_keeps_its_inbox_in_a_second_file_beside_it() {
        let inbox = |url: &str| database(url, None).inbox_url();
        assert_eq!(
            inbox("sqlite://data/parley.db?mode=rwc"),
            "sqlite://data/parley-inbox.db?mode=rwc"
        );
        assert_eq!(
            inbox("sqlite:///var/lib/p/main.sqlite"),
            "sqlite:///var/lib/p/main-inbox.sqlite"
        );
        assert_eq!(inbox("sqlite:parley"), "sqlite:parley-inbox");
        assert_eq!(inbox("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            inbox("postgres://postgres@127.0.0.1/parley"),
            "postgres://postgres@127.0.0.1/parley"
        );
        assert_eq!(
            database("sqlite://a.db", Some("sqlite://b.db")).inbox_url(),
            "sqlite://b.db"
        );
    }

    use super::*;

    #[test]
    fn shipped_defaults_parse_and_have_no_channel() {
        let settings = Settings::from_toml("").unwrap();
        assert!(settings.channels.is_empty());
        assert_eq!(
            settings.database.sqlite_synchronous,
            SqliteSynchronous::Full
        );
    }

    #[test]
    fn the_shipped_texts_cover_every_language_of_the_taxonomy() {
        let settings = Settings::from_toml("").unwrap();
        let texts = settings.customer_texts().unwrap();
        let shipped: Vec<&str> = texts.languages().collect();
        assert_eq!(shipped, ["ar", "es", "hi", "id", "pt"]);
        // A user's section is merged over the shipped one; a bad one stops the start.
        let settings = Settings::from_toml("[texts.es]\ncsat_question = \"¿Qué tal?\"\n").unwrap();
        let texts = settings.customer_texts().unwrap();
        assert_eq!(texts.for_language(Some("es")).csat_question, "¿Qué tal?");
        assert_eq!(texts.for_language(Some("es")).csat_button, "Valorar");
        let error = Settings::from_toml(
            "[texts.es]\ncsat_choices = [\"1\", \"2\", \"3\", \"4\", \"5 - Absolutamente excelente\"]\n",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("[texts.es] csat_choices"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = Settings::from_toml("[http]\nbnid = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("bnid"), "{error}");
    }

    #[test]
    fn a_channel_without_numbers_is_refused() {
        let error = Settings::from_toml(
            "[[channels]]\nid = \"a\"\nkind = \"whatsapp_cloud\"\napp_secret = \"s\"\nverify_token = \"v\"\naccess_token = \"t\"\napi_base = \"https://x\"\nphone_number_ids = []\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("phone_number_ids"));
    }

    #[test]
    fn a_cluster_on_sqlite_is_refused_and_one_on_postgres_is_taken() {
        let cluster = "[cluster]\nredis_url = \"redis://127.0.0.1:6379\"\n";
        let error = Settings::from_toml(cluster).unwrap_err();
        assert!(error.to_string().contains("PostgreSQL"), "{error}");
        let settings = Settings::from_toml(&format!(
            "[database]\nurl = \"postgres://postgres@127.0.0.1/parley\"\n{cluster}"
        ))
        .unwrap();
        assert!(settings.cluster.enabled());
        assert!(!settings.cluster.node_id().is_empty());
        assert!(!Settings::from_toml("").unwrap().cluster.enabled());
    }

    #[test]
    fn graphiql_is_off_unless_turned_on() {
        assert!(!Settings::from_toml("").unwrap().http.graphiql);
    }

    #[test]
    fn an_empty_app_secret_and_a_plain_http_graph_api_are_refused() {
        let channel = |secret: &str, base: &str| {
            format!(
                "[[channels]]\nid = \"a\"\nkind = \"whatsapp_cloud\"\napp_secret = \"{secret}\"\nverify_token = \"v\"\naccess_token = \"t\"\napi_base = \"{base}\"\nphone_number_ids = [\"1\"]\n"
            )
        };
        let error =
            Settings::from_toml(&channel(" ", "https://graph.facebook.com/v21.0")).unwrap_err();
        assert!(error.to_string().contains("app_secret"), "{error}");
        let error =
            Settings::from_toml(&channel("s", "http://graph.facebook.com/v21.0")).unwrap_err();
        assert!(error.to_string().contains("api_base"), "{error}");
        for base in [
            "http://127.0.0.1:9/v21.0",
            "http://localhost:8080",
            "https://graph.facebook.com/v21.0",
        ] {
            assert!(Settings::from_toml(&channel("s", base)).is_ok(), "{base}");
        }
    }

    const TRANSPORT: &str =
        "[[channels]]\nid = \"twilio-main\"\nkind = \"transport\"\nplugin = \"twilio\"\n";

    #[test]
    fn a_transport_channel_names_its_plugin_and_public_url() {
        let settings = Settings::from_toml(&format!(
            "{TRANSPORT}public_base_url = \"https://parley.example.com/\"\n"
        ))
        .unwrap();
        let Some(ChannelSettings::Transport(channel)) = settings.channel("twilio-main") else {
            panic!("{:?}", settings.channels)
        };
        assert_eq!(channel.plugin, "twilio");
        assert_eq!(
            channel.public_url("/webhooks/twilio-main?bodySHA256=ab"),
            "https://parley.example.com/webhooks/twilio-main?bodySHA256=ab"
        );
    }

    #[test]
    fn a_transport_channel_with_a_bad_url_or_a_cloud_key_is_refused() {
        let error = Settings::from_toml(&format!(
            "{TRANSPORT}public_base_url = \"parley.example.com\"\n"
        ))
        .unwrap_err();
        assert!(error.to_string().contains("public_base_url"), "{error}");
        let error = Settings::from_toml(&format!(
            "{TRANSPORT}public_base_url = \"https://p.example\"\napp_secret = \"s\"\n"
        ))
        .unwrap_err();
        assert!(error.to_string().contains("app_secret"), "{error}");
    }

    #[test]
    fn plugin_secrets_are_found_however_the_id_is_written() {
        use crate::plugins::SecretSource;
        let settings =
            Settings::from_toml("[plugins.secrets.crm-http]\napi_token = \"t0ken\"\n").unwrap();
        let secrets = settings.plugins.secret_source();
        for (id, name) in [("crm-http", "api_token"), ("CRM_HTTP", "API-TOKEN")] {
            let found = secrets.secret(id, name).map(|s| s.expose().to_owned());
            assert_eq!(found.as_deref(), Some("t0ken"), "{id} {name}");
        }
        assert!(secrets.secret("twilio", "api_token").is_none());
        assert!(
            !format!("{settings:?}").contains("t0ken"),
            "secrets are never printed"
        );
    }
}
