//! An order connector for REST order systems and shops: URLs, credential and
//! where each field sits in the JSON answer come from the manifest's
//! `[settings]` (see `plugin.toml` beside this crate).

// Without the wasm export, the plugin type is only used by tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::collections::BTreeMap;

use parley_plugin_sdk::orders::*;
use parley_plugin_sdk::rest::RestApi;
use parley_plugin_sdk::{json, settings};
use serde::Deserialize;
use serde_json::Value;

/// The manifest's `[settings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Base URL of the order API, without a trailing `/`.
    base_url: String,
    /// Path template of one order; `{order_id}` is replaced.
    order_path: String,
    /// Path template of a customer's recent orders; `{wa_id}` and `{limit}`
    /// are replaced.
    recent_path: String,
    /// Header carrying the credential (default `authorization`).
    #[serde(default = "parley_plugin_sdk::rest::default_auth_header")]
    auth_header: String,
    /// Prefix of the credential (default `Bearer`; empty for raw keys).
    #[serde(default = "parley_plugin_sdk::rest::default_auth_scheme")]
    auth_scheme: String,
    /// Name of the secret holding the credential (default `api_token`).
    #[serde(default = "parley_plugin_sdk::rest::default_auth_secret")]
    auth_secret: String,
    /// Where the order object is in a single-order answer (`""` = whole).
    #[serde(default)]
    order_result_path: String,
    /// Where the list of orders is in a recent-orders answer.
    #[serde(default)]
    list_result_path: String,
    /// Paths of order fields.
    #[serde(default)]
    fields: OrderFields,
    /// Paths of order line fields, relative to one line.
    #[serde(default)]
    item_fields: ItemFields,
    /// The order system's status values mapped to the contract's
    /// (`pending`, `processing`, `shipped`, `out-for-delivery`, `delivered`,
    /// `cancelled`, `returned`); unmapped values are guessed from common words.
    #[serde(default)]
    status_map: BTreeMap<String, String>,
}

/// Paths of order fields inside an order object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OrderFields {
    id: String,
    status: String,
    placed_at: String,
    eta: String,
    carrier: String,
    tracking_number: String,
    tracking_url: String,
    total: String,
    currency: String,
    items: String,
}

impl Default for OrderFields {
    fn default() -> Self {
        Self {
            id: "id".into(),
            status: "status".into(),
            placed_at: "placed_at".into(),
            eta: "eta".into(),
            carrier: "carrier".into(),
            tracking_number: "tracking_number".into(),
            tracking_url: "tracking_url".into(),
            total: "total".into(),
            currency: "currency".into(),
            items: "items".into(),
        }
    }
}

/// Paths of order line fields inside one line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ItemFields {
    sku: String,
    name: String,
    quantity: String,
    unit_price: String,
}

impl Default for ItemFields {
    fn default() -> Self {
        Self {
            sku: "sku".into(),
            name: "name".into(),
            quantity: "quantity".into(),
            unit_price: "unit_price".into(),
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
            name: "order system",
        }
    }
}

struct OrdersHttp;

impl Health for OrdersHttp {
    fn check() -> Result<(), PluginError> {
        settings::<Settings>()?.api().check()
    }
}

impl Orders for OrdersHttp {
    fn lookup_order(order_id: String) -> Result<Order, PluginError> {
        let s: Settings = settings()?;
        let body = s.api().get_json(&json::fill_template(
            &s.order_path,
            &[("order_id", &order_id)],
        ))?;
        let order = json::at(&body, &s.order_result_path).ok_or(PluginError::NotFound)?;
        to_order(&s, order)
    }

    fn recent_orders(wa_id: String, limit: u32) -> Result<Vec<Order>, PluginError> {
        let s: Settings = settings()?;
        let path = json::fill_template(
            &s.recent_path,
            &[("wa_id", &wa_id), ("limit", &limit.to_string())],
        );
        let body = match s.api().get_json(&path) {
            // An unknown customer has no orders.
            Err(PluginError::NotFound) => return Ok(Vec::new()),
            other => other?,
        };
        let Some(Value::Array(list)) = json::at(&body, &s.list_result_path) else {
            return Ok(Vec::new());
        };
        list.iter()
            .take(limit as usize)
            .map(|o| to_order(&s, o))
            .collect()
    }
}

fn to_order(s: &Settings, order: &Value) -> Result<Order, PluginError> {
    let f = &s.fields;
    let id = json::text(order, &f.id)
        .ok_or_else(|| PluginError::Other(format!("order has no id at {:?}", f.id)))?;
    let status_text = json::text(order, &f.status);
    let items = match json::at(order, &f.items) {
        Some(Value::Array(lines)) => lines.iter().map(|l| to_item(&s.item_fields, l)).collect(),
        _ => Vec::new(),
    };
    let currency = json::text(order, &f.currency);
    Ok(Order {
        id,
        status: status_text
            .as_deref()
            .map_or(OrderStatus::Unknown, |t| normalize_status(&s.status_map, t)),
        status_text,
        placed_at: json::text(order, &f.placed_at),
        eta: json::text(order, &f.eta),
        carrier: json::text(order, &f.carrier),
        tracking_number: json::text(order, &f.tracking_number),
        tracking_url: json::text(order, &f.tracking_url),
        total: json::text(order, &f.total).map(|amount| Money {
            amount,
            currency: currency.clone(),
        }),
        items,
    })
}

fn to_item(f: &ItemFields, line: &Value) -> OrderItem {
    OrderItem {
        sku: json::text(line, &f.sku),
        name: json::text(line, &f.name).unwrap_or_default(),
        quantity: json::unsigned(line, &f.quantity)
            .and_then(|q| u32::try_from(q).ok())
            .unwrap_or(1),
        unit_price: json::text(line, &f.unit_price).map(|amount| Money {
            amount,
            currency: None,
        }),
    }
}

/// The contract's status for the order system's `text`.
fn normalize_status(map: &BTreeMap<String, String>, text: &str) -> OrderStatus {
    let key = text.to_ascii_lowercase();
    let name = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        .map_or(key.as_str(), |(_, v)| v.as_str());
    match name.replace('_', "-").as_str() {
        "pending" | "new" | "on-hold" | "awaiting-payment" | "created" => OrderStatus::Pending,
        "processing" | "paid" | "confirmed" | "packed" | "picking" => OrderStatus::Processing,
        "shipped" | "in-transit" | "dispatched" | "fulfilled" => OrderStatus::Shipped,
        "out-for-delivery" => OrderStatus::OutForDelivery,
        "delivered" | "completed" => OrderStatus::Delivered,
        "cancelled" | "canceled" | "voided" => OrderStatus::Cancelled,
        "returned" | "refunded" => OrderStatus::Returned,
        _ => OrderStatus::Unknown,
    }
}

#[cfg(target_arch = "wasm32")]
parley_plugin_sdk::export_plugin!(OrdersHttp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_the_field_mapping_and_status_map() {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "base_url": "https://shop.example.com",
            "order_path": "/orders/{order_id}",
            "recent_path": "/customers/{wa_id}/orders?limit={limit}",
            "fields": {"id": "number", "status": "state", "eta": "shipping.eta", "tracking_number": "shipping.tracking"},
            "item_fields": {"name": "title", "quantity": "qty"},
            "status_map": {"awaiting_pickup": "processing"}
        }))
        .unwrap();
        let order = serde_json::json!({
            "number": "A-10023", "state": "awaiting_pickup", "total": "59.90", "currency": "EUR",
            "shipping": {"eta": "2025-06-02", "tracking": "JJD000"},
            "items": [{"title": "Kettle", "qty": 2, "sku": "K-1"}]
        });
        let o = to_order(&s, &order).unwrap();
        assert_eq!(o.id, "A-10023");
        assert_eq!(o.status, OrderStatus::Processing);
        assert_eq!(o.status_text.as_deref(), Some("awaiting_pickup"));
        assert_eq!(o.eta.as_deref(), Some("2025-06-02"));
        assert_eq!(o.tracking_number.as_deref(), Some("JJD000"));
        assert_eq!(
            o.total,
            Some(Money {
                amount: "59.90".into(),
                currency: Some("EUR".into())
            })
        );
        assert_eq!(o.items[0].name, "Kettle");
        assert_eq!(o.items[0].quantity, 2);
    }

    #[test]
    fn common_status_words_are_recognized() {
        let none = BTreeMap::new();
        assert_eq!(normalize_status(&none, "In_Transit"), OrderStatus::Shipped);
        assert_eq!(normalize_status(&none, "delivered"), OrderStatus::Delivered);
        assert_eq!(normalize_status(&none, "weird"), OrderStatus::Unknown);
    }
}
