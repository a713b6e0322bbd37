//! Applies the invalidations other nodes publish: the change was made (and audited) on
//! the node that took the request; this node only drops or reloads its own copy.

use super::Invalidation;
use crate::clock::SharedClock;
use crate::conversation::{ConversationRegistry, SlaActors};
use crate::plugins::PluginRegistry;
use crate::policy::loader;
use crate::routing::Routing;
use crate::store::Store;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The caches of a node that other nodes' changes make stale.
pub struct Caches {
    pub routing: Arc<Routing>,
    pub plugins: Arc<PluginRegistry>,
    pub registry: ConversationRegistry,
    pub sla: Option<SlaActors>,
    pub store: Store,
    pub clock: SharedClock,
}

/// Runs until the bus stops, applying each invalidation in the order it came.
pub async fn run(caches: Caches, mut invalidations: broadcast::Receiver<Invalidation>) {
    loop {
        match invalidations.recv().await {
            Ok(invalidation) => caches.apply(invalidation).await,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                caches.apply(Invalidation::Everything).await;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Caches {
    #[tracing::instrument(skip_all, fields(invalidation = ?invalidation))]
    pub async fn apply(&self, invalidation: Invalidation) {
        match invalidation {
            Invalidation::PoliciesReloaded => self.reload_policies().await,
            Invalidation::PluginLoaded { manifest_path } => {
                if let Err(error) = self.plugins.load(Path::new(&manifest_path)).await {
                    tracing::warn!(error = %error, code = error.code(), "A plugin another node loaded does not load here.");
                }
            }
            Invalidation::PluginRemoved { id } => {
                self.plugins.remove(&id);
            }
            Invalidation::ContactChanged { wa_id, blocked } => {
                if let Some(blocked) = blocked {
                    self.routing.noise.set_blocked(&wa_id, blocked);
                }
                self.registry.forget_contact_state(&wa_id);
            }
            Invalidation::Everything => {
                self.reload_policies().await;
                match self.store.blocked_wa_ids().await {
                    Ok(blocked) => {
                        for wa_id in blocked {
                            self.routing.noise.set_blocked(&wa_id, true);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "Could not read blocked contacts again.")
                    }
                }
                self.registry.forget_all_contact_state();
            }
        }
    }

    async fn reload_policies(&self) {
        let now = self.clock.now();
        match loader::refresh(
            &self.routing.engine,
            &self.routing.sources,
            &self.store,
            now,
        )
        .await
        {
            Ok(_) => {
                if let Some(sla) = &self.sla {
                    sla.clock.do_send(crate::sla::deadlines::RecheckAll);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Policies reloaded on another node do not load here; the ones in force stay.")
            }
        }
    }
}
