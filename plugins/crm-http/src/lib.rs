//! A CRM connector for REST CRMs: which URL to call, how to authenticate and
//! where each field sits in the JSON answer all come from the manifest's
//! `[settings]` (see `plugin.toml` beside this crate).

// Without the wasm export, the plugin type is only used by tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::collections::BTreeMap;

use parley_plugin_sdk::crm::*;
use parley_plugin_sdk::rest::RestApi;
use parley_plugin_sdk::{json, settings};
use serde::Deserialize;
use serde_json::Value;

/// The manifest's `[settings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Base URL of the CRM API, without a trailing `/`.
    base_url: String,
    /// Path template for a look-up by WhatsApp id; `{wa_id}` is replaced.
    lookup_by_wa_id: String,
    /// Path template for a look-up by phone; `{phone}` is replaced. Defaults to
    /// the WhatsApp id template with `{wa_id}` filled from the phone's digits.
    #[serde(default)]
    lookup_by_phone: Option<String>,
    /// Header carrying the credential (default `authorization`).
    #[serde(default = "parley_plugin_sdk::rest::default_auth_header")]
    auth_header: String,
    /// Prefix of the credential, e.g. `Bearer` (default) or `` for raw keys.
    #[serde(default = "parley_plugin_sdk::rest::default_auth_scheme")]
    auth_scheme: String,
    /// Name of the secret holding the credential (default `api_token`); when
    /// the manifest lists no secrets, requests go without one.
    #[serde(default = "parley_plugin_sdk::rest::default_auth_secret")]
    auth_secret: String,
    /// Where the customer object is in the answer (`""` = the whole answer,
    /// `/data/0` = first element of `data`). Absent, `null` or an empty list
    /// means not found.
    #[serde(default)]
    result_path: String,
    /// Where each profile field is inside the customer object.
    #[serde(default)]
    fields: Fields,
    /// Tier values that make a customer a VIP even without a VIP flag.
    #[serde(default)]
    vip_tiers: Vec<String>,
    /// Link to a customer's page; `{id}` is replaced by the external id.
    #[serde(default)]
    profile_url: Option<String>,
}

/// Paths of profile fields inside the customer object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    external_id: String,
    name: String,
    email: String,
    phone: String,
    vip: String,
    tier: String,
    plan: String,
    history_summary: String,
    /// Extra attributes shown to agents: label -> path.
    attributes: BTreeMap<String, String>,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            external_id: "id".into(),
            name: "name".into(),
            email: "email".into(),
            phone: "phone".into(),
            vip: "vip".into(),
            tier: "tier".into(),
            plan: "plan".into(),
            history_summary: "history_summary".into(),
            attributes: BTreeMap::new(),
        }
    }
}

impl Settings {
    fn api(&self) -> RestApi<'_> {
        RestApi {
            base_url: &self.base_url,
            auth_header: &self.auth_header,
            auth_scheme: &self.auth_scheme,
            auth_secret: &self.auth_secret,
            name: "CRM",
        }
    }
}

struct CrmHttp;

impl Health for CrmHttp {
    fn check() -> Result<(), PluginError> {
        settings::<Settings>()?.api().check()
    }
}

impl Crm for CrmHttp {
    fn lookup_customer(key: CustomerKey) -> Result<CustomerProfile, PluginError> {
        let s: Settings = settings()?;
        let path = match &key {
            CustomerKey::WaId(wa_id) => {
                json::fill_template(&s.lookup_by_wa_id, &[("wa_id", wa_id)])
            }
            CustomerKey::Phone(phone) => match &s.lookup_by_phone {
                Some(t) => json::fill_template(t, &[("phone", phone)]),
                None => {
                    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                    json::fill_template(&s.lookup_by_wa_id, &[("wa_id", &digits)])
                }
            },
        };
        let body = s.api().get_json(&path)?;
        let customer = match json::at(&body, &s.result_path) {
            None => return Err(PluginError::NotFound),
            Some(Value::Array(items)) if items.is_empty() => return Err(PluginError::NotFound),
            Some(Value::Array(items)) => &items[0],
            Some(v) => v,
        };
        Ok(profile(&s, customer))
    }
}

/// Maps a CRM customer object to a profile.
fn profile(s: &Settings, customer: &Value) -> CustomerProfile {
    let f = &s.fields;
    let tier = json::text(customer, &f.tier);
    let vip = json::flag(customer, &f.vip)
        || tier
            .as_deref()
            .is_some_and(|t| s.vip_tiers.iter().any(|v| v.eq_ignore_ascii_case(t)));
    let external_id = json::text(customer, &f.external_id);
    CustomerProfile {
        profile_url: match (&s.profile_url, &external_id) {
            (Some(t), Some(id)) => Some(json::fill_template(t, &[("id", id)])),
            _ => None,
        },
        external_id,
        name: json::text(customer, &f.name),
        email: json::text(customer, &f.email),
        phone: json::text(customer, &f.phone),
        vip,
        tier,
        plan: json::text(customer, &f.plan),
        attributes: f
            .attributes
            .iter()
            .filter_map(|(label, path)| json::text(customer, path).map(|v| (label.clone(), v)))
            .collect(),
        history_summary: json::text(customer, &f.history_summary),
    }
}

// Exported only in the wasm build; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
parley_plugin_sdk::export_plugin!(CrmHttp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_follows_the_field_mapping() {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "base_url": "https://crm.example.com",
            "lookup_by_wa_id": "/customers?wa={wa_id}",
            "fields": {"name": "full_name", "tier": "/segment/name", "attributes": {"Company": "company"}},
            "vip_tiers": ["gold"],
            "profile_url": "https://crm.example.com/c/{id}"
        }))
        .unwrap();
        let customer = serde_json::json!({
            "id": 42, "full_name": "Ana Souza", "segment": {"name": "Gold"}, "company": "ACME", "plan": "pro"
        });
        let p = profile(&s, &customer);
        assert_eq!(p.name.as_deref(), Some("Ana Souza"));
        assert!(p.vip);
        assert_eq!(p.tier.as_deref(), Some("Gold"));
        assert_eq!(p.plan.as_deref(), Some("pro"));
        assert_eq!(
            p.attributes,
            vec![("Company".to_string(), "ACME".to_string())]
        );
        assert_eq!(
            p.profile_url.as_deref(),
            Some("https://crm.example.com/c/42")
        );
    }
}
