//! Waking the owners of pending webhooks, and tasks that run on the leader only. The
//! owners' side is [`crate::node::inbox`].
//!
//! Any node stores any webhook and acknowledges it after the commit, as a single node
//! does; it applies at once the messages of cases it owns. A message of a case owned
//! elsewhere leaves its inbox row pending, and the node says so on PostgreSQL's
//! `parley_inbox` channel (`NOTIFY`). Every node listens there and, woken or not (every
//! [`crate::node::inbox::SCAN_EVERY`], and whenever it gains shards), reads the pending rows and applies the
//! messages of its own cases. The work is always read from PostgreSQL, so a lost wake-up
//! only delays it, and a message applied twice is recorded once (its unique key).

use super::Cluster;
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The channel wake-ups about pending inbox rows travel on.
pub const INBOX_CHANNEL: &str = "parley_inbox";
/// Wakes the owners of pending work (best effort: they also look on their own).
pub async fn wake_owners(store: &Store) {
    use sea_orm::ConnectionTrait;
    let notify = format!("NOTIFY {INBOX_CHANNEL}");
    if let Err(error) = store.inbox_db().execute_unprepared(&notify).await {
        tracing::debug!(error = %error, "Could not wake the owners of pending webhooks.");
    }
}

/// Runs `task` while this node holds the leader lease, with a store whose writes are
/// fenced by it; stops it when the lease is lost and starts it again when regained.
/// Without a cluster, `task` simply runs.
pub fn spawn_on_leader<F, Fut>(
    cluster: Option<Arc<Cluster>>,
    store: Store,
    name: &'static str,
    task: F,
) where
    F: Fn(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(cluster) = cluster else {
        tokio::spawn(task(store));
        return;
    };
    tokio::spawn(async move {
        let beat = Duration::from_millis(cluster.settings().heartbeat_ms.max(50));
        loop {
            let Some(fence) = cluster.leader_fence() else {
                tokio::time::sleep(beat).await;
                continue;
            };
            tracing::info!(task = name, epoch = fence.epoch, "Leader task started.");
            let running = tokio::spawn(task(store.fenced(fence.clone())));
            while cluster.leader_fence().as_ref() == Some(&fence) && !running.is_finished() {
                tokio::time::sleep(beat / 2).await;
            }
            running.abort();
            tracing::warn!(task = name, "Leader task stopped: the leader lease moved.");
        }
    });
}
