//! What REST connectors share: a base URL from the settings, a credential from a
//! secret presented in a header, and JSON answers.
//!
//! A connector's settings keep these as plain fields (so that `deny_unknown_fields`
//! still catches typos) with the defaults below, and hand them to [`RestApi`]:
//!
//! ```ignore
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     base_url: String,
//!     #[serde(default = "parley_plugin_sdk::rest::default_auth_header")]
//!     auth_header: String,
//!     #[serde(default = "parley_plugin_sdk::rest::default_auth_scheme")]
//!     auth_scheme: String,
//!     #[serde(default = "parley_plugin_sdk::rest::default_auth_secret")]
//!     auth_secret: String,
//! }
//! ```

use serde_json::Value;

use crate::{PluginError, http, log, secret};

/// `auth_header` when the settings do not say: `authorization`.
pub fn default_auth_header() -> String {
    "authorization".into()
}

/// `auth_scheme` when the settings do not say: `Bearer` (`""` sends the secret as is).
pub fn default_auth_scheme() -> String {
    "Bearer".into()
}

/// `auth_secret` when the settings do not say: the secret named `api_token`.
pub fn default_auth_secret() -> String {
    "api_token".into()
}

/// A REST back end as a connector's settings describe it.
#[derive(Debug, Clone, Copy)]
pub struct RestApi<'a> {
    /// Base URL, e.g. `https://crm.example.com/api/v1`.
    pub base_url: &'a str,
    /// Header carrying the credential.
    pub auth_header: &'a str,
    /// Prefix of the credential (`Bearer`), or `""`.
    pub auth_scheme: &'a str,
    /// Name of the secret holding the credential.
    pub auth_secret: &'a str,
    /// What the back end is, for log lines: `CRM`, `order system`.
    pub name: &'a str,
}

impl RestApi<'_> {
    /// `misconfigured` unless the base URL is an http(s) URL.
    pub fn check(&self) -> Result<(), PluginError> {
        if self.base_url.starts_with("https://") || self.base_url.starts_with("http://") {
            Ok(())
        } else {
            Err(PluginError::Misconfigured(
                "`base_url` must be an http(s) URL".into(),
            ))
        }
    }

    /// `GET {base_url}{path}` with the credential, as JSON. A status that is not a
    /// success becomes the matching error (404 `not-found`, 5xx `retryable`, ...).
    pub fn get_json(&self, path: &str) -> Result<Value, PluginError> {
        let mut request =
            http::Request::get(format!("{}{path}", self.base_url.trim_end_matches('/')))
                .header("accept", "application/json");
        // A missing secret is only an error if the back end wants one: it answers 401.
        match secret(self.auth_secret) {
            Ok(token) => {
                let value = if self.auth_scheme.is_empty() {
                    token
                } else {
                    format!("{} {token}", self.auth_scheme)
                };
                request = request.header(self.auth_header, value);
            }
            Err(e) => log::debug(&format!(
                "calling the {} without a credential: {e:?}",
                self.name
            )),
        }
        request.send()?.error_for_status()?.json()
    }
}
