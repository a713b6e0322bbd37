//! Fan-out of committed conversation events to live subscribers (GraphQL subscriptions).
//!
//! Events are published only after the commit that wrote them, so a subscriber never sees
//! something the store does not hold. Within one process this is a broadcast channel; a
//! subscriber that falls too far behind is told so and can re-read the log from the store.
//!
//! In a cluster the bus also hands what this node commits to the cluster stream, and takes
//! in what other nodes committed ([`EventBus::deliver_remote`]); every event reaches local
//! subscribers once, whichever way (or ways) it arrived. While the cluster stream cannot
//! be read, this node's own events are held back too ([`EventBus::hold_local`]) and every
//! event reaches subscribers from the log in id order, so a conversation's events never
//! arrive out of order because one node heard of them later than another.

use crate::cluster::bus::Relay;
use crate::store::entities::conversation_event;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events a slow subscriber may fall behind by before it misses some.
const SUBSCRIBER_BUFFER: usize = 4096;

/// Event ids remembered to deliver each event once in a cluster (where an event can come
/// from the stream and from a catch-up read of the log).
const REMEMBERED_IDS: usize = 50_000;

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<conversation_event::Model>>,
    cluster: Option<Arc<ClusterSide>>,
}

struct ClusterSide {
    relay: Relay,
    delivered: Mutex<Delivered>,
    /// Set while the cluster stream cannot be read: local events then reach subscribers
    /// from the log with everyone else's, in id order.
    held: AtomicBool,
}

/// The ids delivered lately: the newest [`REMEMBERED_IDS`], and a floor at or below which
/// everything counts as delivered.
#[derive(Default)]
struct Delivered {
    ids: BTreeSet<i64>,
    floor: i64,
}

impl Delivered {
    /// True when `id` is new (and now remembered).
    fn first_time(&mut self, id: i64) -> bool {
        if id <= self.floor || !self.ids.insert(id) {
            return false;
        }
        while self.ids.len() > REMEMBERED_IDS {
            if let Some(oldest) = self.ids.pop_first() {
                self.floor = oldest;
            }
        }
        true
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            sender,
            cluster: None,
        }
    }

    /// A bus whose events also go to the other nodes through `relay`.
    pub fn clustered(relay: Relay) -> Self {
        Self {
            cluster: Some(Arc::new(ClusterSide {
                relay,
                delivered: Mutex::new(Delivered::default()),
                held: AtomicBool::new(false),
            })),
            ..Self::new()
        }
    }

    pub fn publish(&self, events: impl IntoIterator<Item = conversation_event::Model>) {
        let Some(cluster) = &self.cluster else {
            for event in events {
                // No subscriber is not an error.
                let _ = self.sender.send(Arc::new(event));
            }
            return;
        };
        let mut shared = Vec::new();
        {
            let held = cluster.held.load(Ordering::SeqCst);
            let mut delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                let event = Arc::new(event);
                if !held && delivered.first_time(event.id) {
                    let _ = self.sender.send(event.clone());
                }
                shared.push(event);
            }
        }
        cluster.relay.events(shared);
    }

    /// Delivers an event committed by another node to this node's subscribers, unless it
    /// was delivered already; true when it was new.
    pub fn deliver_remote(&self, event: Arc<conversation_event::Model>) -> bool {
        let first = match &self.cluster {
            Some(cluster) => cluster
                .delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first_time(event.id),
            None => true,
        };
        if first {
            let _ = self.sender.send(event);
        }
        first
    }

    /// Holds this node's own events back from its subscribers (`true`) while the cluster
    /// stream cannot be read, so that they are delivered from the log in id order with
    /// the other nodes' events; `false` delivers them at once again.
    pub fn hold_local(&self, hold: bool) {
        if let Some(cluster) = &self.cluster {
            cluster.held.store(hold, Ordering::SeqCst);
        }
    }

    /// Where a catch-up read of the log may start, at the earliest, without delivering
    /// anything twice: the highest id forgotten. `None` outside a cluster.
    pub fn catch_up_floor(&self) -> Option<i64> {
        self.cluster.as_ref().map(|cluster| {
            cluster
                .delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .floor
        })
    }

    /// Counts every event up to `id` as delivered: those logged before this node joined
    /// are no catch-up's business.
    pub fn count_delivered_up_to(&self, id: i64) {
        if let Some(cluster) = &self.cluster {
            let mut delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
            delivered.floor = delivered.floor.max(id);
            let kept = delivered.ids.split_off(&(id + 1));
            delivered.ids = kept;
        }
    }

    /// The highest id delivered so far (0 for none).
    pub fn highest_delivered(&self) -> i64 {
        self.cluster.as_ref().map_or(0, |cluster| {
            let delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
            delivered.ids.last().copied().unwrap_or(delivered.floor)
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<conversation_event::Model>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64) -> conversation_event::Model {
        conversation_event::Model {
            id,
            conversation_id: 1,
            kind: "note_added".into(),
            data: "{}".into(),
            actor: "system".into(),
            created_at: 0,
        }
    }

    #[test]
    fn an_event_arriving_twice_is_delivered_once() {
        let bus = EventBus::clustered(Relay::none());
        let mut receiver = bus.subscribe();
        bus.publish([event(1), event(2)]);
        assert!(!bus.deliver_remote(Arc::new(event(2))));
        assert!(bus.deliver_remote(Arc::new(event(3))));
        assert!(!bus.deliver_remote(Arc::new(event(3))));
        let ids: Vec<i64> = std::iter::from_fn(|| receiver.try_recv().ok())
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(bus.highest_delivered(), 3);
        bus.count_delivered_up_to(10);
        assert!(!bus.deliver_remote(Arc::new(event(9))));
        assert_eq!(bus.highest_delivered(), 10);
        assert!(bus.deliver_remote(Arc::new(event(11))));
    }

    #[test]
    fn held_local_events_wait_for_the_log_and_keep_its_order() {
        let bus = EventBus::clustered(Relay::none());
        let mut receiver = bus.subscribe();
        bus.publish([event(1)]);
        bus.hold_local(true);
        // Committed here while another node's 2 is not heard of yet.
        bus.publish([event(3)]);
        assert!(receiver.try_recv().is_ok_and(|e| e.id == 1));
        assert!(receiver.try_recv().is_err(), "3 waits for the log");
        // The log read delivers both, in id order.
        for id in [2, 3] {
            assert!(bus.deliver_remote(Arc::new(event(id))));
        }
        bus.hold_local(false);
        bus.publish([event(4)]);
        let ids: Vec<i64> = std::iter::from_fn(|| receiver.try_recv().ok())
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [2, 3, 4]);
    }

    #[test]
    fn forgotten_ids_count_as_delivered() {
        let mut delivered = Delivered::default();
        for id in 1..=(REMEMBERED_IDS as i64 + 10) {
            assert!(delivered.first_time(id));
        }
        assert_eq!(delivered.floor, 10);
        assert!(!delivered.first_time(5));
        assert!(delivered.first_time(REMEMBERED_IDS as i64 + 11));
    }
}
