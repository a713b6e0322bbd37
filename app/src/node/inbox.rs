//! Pending webhooks applied by the owners of their conversations (see
//! [`crate::cluster::inbox`] for how they are woken).

use crate::cluster::Cluster;
use crate::cluster::inbox::INBOX_CHANNEL;
use crate::ingest::dispatcher::Dispatcher;
use std::sync::Arc;
use std::time::Duration;

/// Pending rows are looked at this often even without a wake-up.
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// Applies pending inbox rows of this node's shards, woken by `NOTIFY`, by shards gained,
/// or every [`SCAN_EVERY`].
pub async fn apply_pending(cluster: Arc<Cluster>, dispatcher: Dispatcher, database_url: String) {
    let mut gains = cluster.subscribe_gains();
    let mut listener = None;
    loop {
        if listener.is_none() {
            match sqlx::postgres::PgListener::connect(&database_url).await {
                Ok(mut l) => match l.listen(INBOX_CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(error) => {
                        tracing::warn!(error = %error, "Could not listen for pending webhooks; polling.")
                    }
                },
                Err(error) => {
                    tracing::warn!(error = %error, "Could not listen for pending webhooks; polling.")
                }
            }
        }
        if let Err(error) = dispatcher.apply_pending_owned().await {
            tracing::warn!(error = %error, "Could not read pending webhooks; retrying.");
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            ok = notified => {
                if !ok {
                    listener = None;
                }
            }
            _ = gains.recv() => {}
            _ = tokio::time::sleep(SCAN_EVERY) => {}
        }
    }
}
