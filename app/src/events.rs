//! Fan-out of committed conversation events to live subscribers (GraphQL subscriptions).
//!
//! Events are published only after the commit that wrote them, so a subscriber never sees
//! something the store does not hold. Within one process this is a broadcast channel; a
//! subscriber that falls too far behind is told so and can re-read the log from the store.

use crate::store::entities::conversation_event;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events a slow subscriber may fall behind by before it misses some.
const SUBSCRIBER_BUFFER: usize = 4096;

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<conversation_event::Model>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self { sender }
    }

    pub fn publish(&self, events: impl IntoIterator<Item = conversation_event::Model>) {
        for event in events {
            // No subscriber is not an error.
            let _ = self.sender.send(Arc::new(event));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<conversation_event::Model>> {
        self.sender.subscribe()
    }
}
