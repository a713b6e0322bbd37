//! The CRM and the order connector the configuration names (`plugins.crm`,
//! `plugins.orders`), as the conversation flow calls them.
//!
//! Callers ask a question ("who is this customer?", "where is order
//! A-10023?") without knowing which plugin answers it. Every failure, from
//! "no CRM is configured" to a timeout or an open circuit breaker, is a
//! [`ConnectorError`] that says which connector failed and carries the reason
//! to attach when the case falls back to a human.

use std::fmt;
use std::sync::Arc;

use crate::plugins::bindings::v0_1::types::{CustomerKey, CustomerProfile, Order};
use crate::plugins::error::{PluginError, ReportedError};
use crate::plugins::registry::PluginRegistry;

/// Which connector a question goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// The CRM connector (`world crm-connector`).
    Crm,
    /// The order connector (`world order-connector`).
    Orders,
}

impl Connector {
    /// How operators and agents call it.
    pub fn label(self) -> &'static str {
        match self {
            Connector::Crm => "CRM",
            Connector::Orders => "order system",
        }
    }
}

/// A question a connector could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", connector.label())]
pub struct ConnectorError {
    /// The connector asked.
    pub connector: Connector,
    /// Why it could not answer.
    #[source]
    pub error: PluginError,
}

impl ConnectorError {
    /// The stable error code (`plugin_timeout`, `plugin_not_configured`, ...).
    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// The back end answered that the customer or order does not exist: the
    /// connector works, there is simply nothing to show.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.error,
            PluginError::Reported {
                error: ReportedError::NotFound,
                ..
            }
        )
    }

    /// The reason to attach when the case goes to a human instead
    /// ("CRM unavailable: plugin crm-http did not finish within 3000 ms").
    pub fn fallback_reason(&self) -> String {
        let label = self.connector.label();
        match &self.error {
            PluginError::NotConfigured { .. } => format!("no {label} is configured"),
            PluginError::Reported {
                error: ReportedError::NotFound,
                ..
            } => format!("not found in the {label}"),
            error => format!("{label} unavailable: {error}"),
        }
    }
}

/// The configured CRM and order connectors. Cheap to clone.
#[derive(Clone)]
pub struct Connectors {
    registry: Arc<PluginRegistry>,
    crm: Option<String>,
    orders: Option<String>,
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectors")
            .field("crm", &self.crm)
            .field("orders", &self.orders)
            .finish_non_exhaustive()
    }
}

impl Connectors {
    /// The connectors with the given plugin ids (`None`: not configured). The
    /// plugins are looked up at each call, so a plugin loaded, replaced or
    /// removed at run time is seen at once.
    pub fn new(registry: Arc<PluginRegistry>, crm: Option<String>, orders: Option<String>) -> Self {
        Self {
            registry,
            crm,
            orders,
        }
    }

    /// The registry the connectors come from.
    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }

    /// Whether a CRM plugin is configured (it may still be missing or failing).
    pub fn has_crm(&self) -> bool {
        self.crm.is_some()
    }

    /// Whether an order plugin is configured.
    pub fn has_orders(&self) -> bool {
        self.orders.is_some()
    }

    fn id(&self, connector: Connector) -> Result<&str, ConnectorError> {
        let id = match connector {
            Connector::Crm => self.crm.as_deref(),
            Connector::Orders => self.orders.as_deref(),
        };
        id.ok_or(ConnectorError {
            connector,
            error: PluginError::NotConfigured {
                connector: connector.label(),
            },
        })
    }

    /// Looks a customer up in the CRM by WhatsApp id (digits only).
    pub async fn lookup_customer(&self, wa_id: &str) -> Result<CustomerProfile, ConnectorError> {
        self.lookup_customer_by(CustomerKey::WaId(wa_id.to_owned()))
            .await
    }

    /// Looks a customer up in the CRM by WhatsApp id or phone number.
    pub async fn lookup_customer_by(
        &self,
        key: CustomerKey,
    ) -> Result<CustomerProfile, ConnectorError> {
        let connector = Connector::Crm;
        let wrap = |error| ConnectorError { connector, error };
        let crm = self.registry.crm(self.id(connector)?).map_err(wrap)?;
        crm.lookup_customer(key).await.map_err(wrap)
    }

    /// Looks one order up by the id the customer quotes (`A-10023`).
    pub async fn lookup_order(&self, order_id: &str) -> Result<Order, ConnectorError> {
        let connector = Connector::Orders;
        let wrap = |error| ConnectorError { connector, error };
        let orders = self.registry.orders(self.id(connector)?).map_err(wrap)?;
        orders.lookup_order(order_id).await.map_err(wrap)
    }

    /// The customer's most recent orders, newest first, at most `limit`.
    pub async fn recent_orders(
        &self,
        wa_id: &str,
        limit: u32,
    ) -> Result<Vec<Order>, ConnectorError> {
        let connector = Connector::Orders;
        let wrap = |error| ConnectorError { connector, error };
        let orders = self.registry.orders(self.id(connector)?).map_err(wrap)?;
        orders.recent_orders(wa_id, limit).await.map_err(wrap)
    }
}
