//! Configuration: `config/default.toml` (compiled in) < `--config FILE` <
//! `PARLEY_SECTION__KEY` environment variables. Unknown keys are refused so that a typo
//! never silently falls back to a default. Secrets are never printed.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::Path;

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
    #[serde(default)]
    pub channels: Vec<ChannelSettings>,
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
    /// Empty: the built-in `config/routing.toml`.
    pub rules_file: String,
}

impl RoutingSettings {
    pub fn sources(&self) -> crate::routing::engine::EngineSources {
        let path = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
        crate::routing::engine::EngineSources {
            triage: path(&self.triage_file),
            routing: path(&self.rules_file),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    pub graphiql: bool,
    pub workers: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub sqlite_synchronous: SqliteSynchronous,
    pub migrate_on_start: bool,
    pub group_commit_max_batch: usize,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub request_timeout_ms: u64,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    pub depth_limit: usize,
    pub complexity_limit: usize,
    pub max_page_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_filter: String,
    pub json_logs: bool,
    pub service_name: String,
}

/// One WhatsApp channel: a Meta app and the business numbers it serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    /// The `{channel_id}` of `/webhooks/{channel_id}`.
    pub id: String,
    pub kind: ChannelKind,
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

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    WhatsappCloud,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is invalid: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("configuration is invalid: {0}")]
    Inconsistent(String),
}

impl Settings {
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
            if channel.id.is_empty()
                || !channel
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Inconsistent(format!(
                    "channel id {:?} must be non-empty and use only letters, digits, '-' and '_'",
                    channel.id
                )));
            }
            if !seen.insert(channel.id.as_str()) {
                return Err(ConfigError::Inconsistent(format!(
                    "channel id {:?} is configured twice",
                    channel.id
                )));
            }
            if channel.phone_number_ids.is_empty() {
                return Err(ConfigError::Inconsistent(format!(
                    "channel {:?} lists no phone_number_ids",
                    channel.id
                )));
            }
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
        self.channels.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
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
    fn unknown_keys_are_refused() {
        let error = Settings::from_toml("[http]\nbnid = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("bnid"), "{error}");
    }

    #[test]
    fn a_channel_without_numbers_is_refused() {
        let error = Settings::from_toml(
            "[[channels]]\nid = \"a\"\nkind = \"whatsapp_cloud\"\napp_secret = \"s\"\nverify_token = \"v\"\naccess_token = \"t\"\napi_base = \"http://x\"\nphone_number_ids = []\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("phone_number_ids"));
    }
}
