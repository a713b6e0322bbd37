//! `plugin.toml`: what a plugin is and what it may do.
//!
//! The manifest is the plugin's whole grant of capabilities: the hosts it may
//! call, the secrets it may read, how long and how much memory a call may
//! take. Anything not granted here is refused at run time.
//!
//! ```toml
//! id = "crm-http"                       # unique among loaded plugins
//! version = "0.1.0"                     # the plugin's own version
//! world = "crm-connector@0.1"           # WIT world and contract version
//! component = "crm-http.wasm"           # relative to this file
//! allowed_hosts = ["https://crm.example.com", "https://*.example.net:8443"]
//! secrets = ["api_token"]
//! timeout_ms = 3000
//! memory_limit_mb = 32
//!
//! [settings]                            # free-form, handed to the plugin as JSON
//! base_url = "https://crm.example.com/api"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugins::error::PluginError;

/// Largest `timeout_ms` a manifest may ask for.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// `timeout_ms` when the manifest does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// Largest manifest file read.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// `memory_limit_mb` when the manifest does not say.
pub const DEFAULT_MEMORY_LIMIT_MB: u32 = 32;

/// A parsed and validated `plugin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique id of the plugin: lower-case letters, digits and `-`, at most
    /// 64 characters. Configuration and logs refer to the plugin by it.
    pub id: String,
    /// The plugin's own version, shown to operators (e.g. `1.4.2`).
    pub version: String,
    /// The WIT world the component implements and the contract version it was
    /// built against: `crm-connector@0.1`, `order-connector@0.1` or
    /// `transport@0.1` (a patch level such as `@0.1.0` is accepted).
    pub world: String,
    /// Path of the component file, relative to the manifest (or absolute).
    pub component: PathBuf,
    /// Origins the plugin may call through the host's `http-request`:
    /// `[scheme://]host[:port]`, where the scheme defaults to `https`, the port
    /// to the scheme's default, `:*` allows any port, and a host `*.example.com`
    /// allows every subdomain of `example.com` (not `example.com` itself).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Names of the secrets the plugin may read with `secret(name)`. Values
    /// come from Parley's configuration, never from the manifest.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Deadline of one call in milliseconds, host requests included
    /// (1 to 60000; default 3000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most linear memory one call may use, in MiB (1 up to the host's
    /// ceiling; default 32).
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u32,
    /// Free-form settings handed to the plugin as a JSON object by the
    /// host's `settings()` import (TOML dates become RFC 3339 strings).
    #[serde(default)]
    pub settings: toml::Table,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_memory_limit_mb() -> u32 {
    DEFAULT_MEMORY_LIMIT_MB
}

/// A manifest together with where it was read from.
#[derive(Debug, Clone)]
pub struct LocatedManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest file.
    pub path: PathBuf,
    /// The world, parsed.
    pub world: WorldRef,
    /// The allowed hosts, parsed.
    pub allowed_hosts: Vec<HostPattern>,
}

impl LocatedManifest {
    /// Reads and validates a manifest file.
    pub fn read(path: &Path) -> Result<Self, PluginError> {
        use std::io::Read;
        let invalid = |reason: String| PluginError::Manifest {
            path: path.to_owned(),
            reason,
        };
        let file =
            std::fs::File::open(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("cannot read it: {e}")))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "it is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| invalid("it is not UTF-8 text".into()))?;
        Self::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` locates the component.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PluginError> {
        let invalid = |reason: String| PluginError::Manifest {
            path: path.to_owned(),
            reason,
        };
        // Where the TOML is wrong, never what it says: the error reaches API callers, and
        // the file may be anything.
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
            invalid(format!(
                "it is not a valid manifest (TOML error at line {line}; `parley plugin check` lists the keys)"
            ))
        })?;
        validate_id(&manifest.id).map_err(invalid)?;
        if manifest.version.trim().is_empty() {
            return Err(invalid("`version` is empty".to_owned()));
        }
        let world = WorldRef::parse(&manifest.world).map_err(invalid)?;
        if !(1..=MAX_TIMEOUT_MS).contains(&manifest.timeout_ms) {
            return Err(invalid(format!(
                "`timeout_ms` must be between 1 and {MAX_TIMEOUT_MS}"
            )));
        }
        if manifest.memory_limit_mb == 0 {
            return Err(invalid("`memory_limit_mb` must be at least 1".to_owned()));
        }
        let allowed_hosts = manifest
            .allowed_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        for name in &manifest.secrets {
            if name.is_empty() || name.len() > 128 {
                return Err(invalid(format!(
                    "secret name {name:?} is empty or too long"
                )));
            }
        }
        Ok(Self {
            manifest,
            path: path.to_owned(),
            world,
            allowed_hosts,
        })
    }

    /// The component file, resolved against the manifest's directory.
    pub fn component_path(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) => dir.join(&self.manifest.component),
            None => self.manifest.component.clone(),
        }
    }

    /// The settings table as the JSON object the plugin receives.
    pub fn settings_json(&self) -> String {
        let value = serde_json::Value::Object(
            self.manifest
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        );
        value.to_string()
    }
}

fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`id` {id:?} must be 1 to 64 lower-case letters, digits or `-`"
        ))
    }
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The kinds of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorldKind {
    /// `world crm-connector`.
    CrmConnector,
    /// `world order-connector`.
    OrderConnector,
    /// `world transport`.
    Transport,
}

impl WorldKind {
    /// The world's name in WIT.
    pub fn wit_name(self) -> &'static str {
        match self {
            WorldKind::CrmConnector => "crm-connector",
            WorldKind::OrderConnector => "order-connector",
            WorldKind::Transport => "transport",
        }
    }
}

impl fmt::Display for WorldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// A world and the contract version (`major.minor`) a plugin was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldRef {
    /// Which world.
    pub kind: WorldKind,
    /// Contract major version.
    pub major: u32,
    /// Contract minor version.
    pub minor: u32,
}

impl WorldRef {
    /// Parses `name@major.minor` (a trailing `.patch` is accepted and ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`world` {text:?} must look like `crm-connector@0.1`");
        let (name, version) = text.split_once('@').ok_or_else(bad)?;
        let kind = match name {
            "crm-connector" => WorldKind::CrmConnector,
            "order-connector" => WorldKind::OrderConnector,
            "transport" => WorldKind::Transport,
            _ => {
                return Err(format!(
                    "`world` {name:?} is unknown; expected crm-connector, order-connector or transport"
                ));
            }
        };
        let mut parts = version.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        match parts.next() {
            None => {}
            Some(patch) if patch.parse::<u32>().is_ok() && parts.next().is_none() => {}
            Some(_) => return Err(bad()),
        }
        Ok(Self { kind, major, minor })
    }
}

impl fmt::Display for WorldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}.{}", self.kind, self.major, self.minor)
    }
}

/// One entry of `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: HostMatch,
    /// `None` allows any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// Any strict subdomain of the given domain.
    SubdomainsOf(String),
}

impl HostPattern {
    /// Parses `[scheme://]host[:port|:*]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allowed host {text:?}: {why}");
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("https".to_owned(), text),
        };
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(bad("scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(bad("only scheme, host and port are allowed"));
        }
        // An IPv6 literal keeps its brackets; the port follows the last `:`.
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => {
                let port = match &rest[i + 1..] {
                    "*" => None,
                    p => Some(p.parse::<u16>().map_err(|_| bad("invalid port"))?),
                };
                (&rest[..i], port)
            }
            _ => (rest, Some(default_port)),
        };
        let host = host.to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("host is empty"));
        }
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                HostMatch::SubdomainsOf(domain.to_owned())
            }
            _ if host.contains('*') => return Err(bad("`*` is only allowed as `*.domain`")),
            _ => HostMatch::Exact(host),
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) {
            return false;
        }
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match &self.host {
            HostMatch::Exact(h) => *h == host,
            HostMatch::SubdomainsOf(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_consider_scheme_host_and_port() {
        let p = HostPattern::parse("api.example.com").unwrap();
        assert!(p.allows("https", "api.example.com", 443));
        assert!(p.allows("https", "API.example.com", 443));
        assert!(!p.allows("http", "api.example.com", 80));
        assert!(!p.allows("https", "api.example.com", 8443));
        assert!(!p.allows("https", "api.example.com.evil.net", 443));

        let p = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(p.allows("http", "127.0.0.1", 8080));
        assert!(!p.allows("http", "127.0.0.1", 8081));

        let p = HostPattern::parse("https://*.example.com:*").unwrap();
        assert!(p.allows("https", "a.example.com", 1234));
        assert!(p.allows("https", "a.b.example.com", 443));
        assert!(!p.allows("https", "example.com", 443));
        assert!(!p.allows("https", "badexample.com", 443));
    }

    #[test]
    fn bad_host_patterns_are_refused() {
        for bad in [
            "ftp://x.com",
            "https://x.com/path",
            "*",
            "a.*.com",
            "https://:80",
            "x.com:99999",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_with_unknown_field_is_refused() {
        let text = "id = \"x\"\nversion = \"1\"\nworld = \"crm-connector@0.1\"\ncomponent = \"x.wasm\"\ncolour = \"red\"\n";
        let err = LocatedManifest::parse(text, Path::new("/p/plugin.toml")).unwrap_err();
        assert_eq!(err.code(), "plugin_manifest_invalid");
    }

    #[test]
    fn manifest_defaults_and_settings_become_json() {
        let text = r#"
            id = "crm-http"
            version = "0.1.0"
            world = "crm-connector@0.1.0"
            component = "crm-http.wasm"
            [settings]
            base_url = "https://crm.example.com"
            retries = 2
            [settings.fields]
            name = "full_name"
        "#;
        let m = LocatedManifest::parse(text, Path::new("/p/plugin.toml")).unwrap();
        assert_eq!(m.manifest.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(m.world.kind, WorldKind::CrmConnector);
        assert_eq!(m.component_path(), Path::new("/p/crm-http.wasm"));
        let json: serde_json::Value = serde_json::from_str(&m.settings_json()).unwrap();
        assert_eq!(json["fields"]["name"], "full_name");
        assert_eq!(json["retries"], 2);
    }

    #[test]
    fn world_refs_parse_with_and_without_patch() {
        assert_eq!(
            WorldRef::parse("transport@0.1").unwrap().to_string(),
            "transport@0.1"
        );
        assert!(WorldRef::parse("transport").is_err());
        assert!(WorldRef::parse("mailer@0.1").is_err());
        assert!(WorldRef::parse("transport@0.1.0.0").is_err());
    }
}
