//! What a plugin can reach from inside: the `host` interface of the contract.
//!
//! Every call gets a fresh [`CallState`] in a fresh `Store`; it carries the
//! plugin's grants (allowed hosts, its own secrets, its settings), the call's
//! deadline and memory limit, and records what went wrong so the runtime can
//! turn a failed call into the right [`PluginError`](crate::plugins::PluginError).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;

use crate::plugins::bindings::v0_1::host::{
    Host, HttpError, HttpResponse, LogLevel, Method, OutgoingRequest,
};
use crate::plugins::manifest::HostPattern;

/// Longest log line a plugin may write; longer ones are cut.
const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// A secret value that never appears in `Debug` output.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(..)")
    }
}

/// What one plugin has been granted by its manifest and Parley's configuration.
#[derive(Debug)]
pub struct Grants {
    /// Origins the plugin may call.
    pub allowed_hosts: Vec<HostPattern>,
    /// The secrets the manifest lists that the configuration provides.
    pub secrets: HashMap<String, SecretValue>,
    /// The manifest's settings as a JSON object.
    pub settings_json: String,
}

/// Memory accounting of one call; denies growth past the manifest's limit.
#[derive(Debug)]
pub(crate) struct CallLimiter {
    memory_limit_bytes: usize,
    pub(crate) memory_exhausted: bool,
}

impl CallLimiter {
    pub(crate) fn new(memory_limit_bytes: usize) -> Self {
        Self {
            memory_limit_bytes,
            memory_exhausted: false,
        }
    }
}

/// Most table elements a call may have (function tables of Rust guests are
/// small; this only stops a table bomb).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit_bytes {
            // An error (not `Ok(false)`) stops the guest at once instead of
            // letting it run its allocation-failure path.
            self.memory_exhausted = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

/// The data of one call's `Store`.
pub(crate) struct CallState {
    pub(crate) plugin_id: Arc<str>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) http: reqwest::Client,
    pub(crate) deadline: Instant,
    pub(crate) limiter: CallLimiter,
    pub(crate) max_response_bytes: usize,
    /// Set when the deadline passed: by the epoch callback while the plugin runs, by
    /// `http-request` when the plugin waited on a back end until then.
    pub(crate) timed_out: bool,
    /// The first origin the plugin was refused during this call.
    pub(crate) denied_origin: Option<String>,
}

impl CallState {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn log_line(&self, level: LogLevel, message: &str) {
        let message = truncate(message, MAX_LOG_LINE_BYTES);
        let plugin = &*self.plugin_id;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `scheme://host:port` of a URL, for checks and messages.
fn origin(url: &Url) -> Option<(String, String, u16)> {
    let host = url.host_str()?.to_owned();
    let port = url.port_or_known_default()?;
    Some((url.scheme().to_owned(), host, port))
}

impl Host for CallState {
    async fn http_request(&mut self, request: OutgoingRequest) -> Result<HttpResponse, HttpError> {
        let url = Url::parse(&request.url).map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidUrl(format!(
                "scheme {} is not allowed",
                url.scheme()
            )));
        }
        let Some((scheme, host, port)) = origin(&url) else {
            return Err(HttpError::InvalidUrl("the URL has no host".to_owned()));
        };
        if !self
            .grants
            .allowed_hosts
            .iter()
            .any(|p| p.allows(&scheme, &host, port))
        {
            let refused = format!("{scheme}://{host}:{port}");
            tracing::warn!(plugin = &*self.plugin_id, origin = %refused, "Plugin was refused a host its manifest does not allow.");
            self.denied_origin.get_or_insert_with(|| refused.clone());
            return Err(HttpError::HostNotAllowed(refused));
        }

        let remaining = self.remaining();
        let mut timeout = remaining;
        if let Some(ms) = request.timeout_ms {
            timeout = timeout.min(Duration::from_millis(u64::from(ms)));
        }
        // Waiting into the call's own deadline (rather than the request's shorter
        // timeout) means the call is out of time, whatever the plugin answers next.
        let bounded_by_deadline = timeout == remaining;
        if timeout.is_zero() {
            self.timed_out = true;
            return Err(HttpError::Timeout);
        }
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url).timeout(timeout);
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let started = Instant::now();
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                if e.is_timeout() && bounded_by_deadline {
                    self.timed_out = true;
                }
                return Err(http_error(e));
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(HttpError::ResponseTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            plugin = &*self.plugin_id,
            host = %host,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Plugin HTTP request answered."
        );
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn log(&mut self, level: LogLevel, message: String) {
        self.log_line(level, &message);
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.grants
            .secrets
            .get(&name)
            .map(|s| s.expose().to_owned())
    }

    fn settings(&mut self) -> String {
        self.grants.settings_json.clone()
    }
}

impl crate::plugins::bindings::v0_1::types::Host for CallState {}

fn http_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_connect() {
        HttpError::ConnectionFailed(e.to_string())
    } else {
        HttpError::Other(e.to_string())
    }
}
