//! A subscription to conversation events that can resume: the events logged after the
//! last one a client saw, read from the database, then the live ones, each once.

use crate::store::Store;
use crate::store::entities::conversation_event;
use futures::Stream;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events read from the log per page while catching up.
const PAGE: u64 = 500;

type Event = Arc<conversation_event::Model>;

struct Feed {
    store: Store,
    live: broadcast::Receiver<Event>,
    /// One conversation's events, or all.
    only: Option<i64>,
    /// While catching up: the last event read from the log.
    reading_after: Option<i64>,
    ready: VecDeque<Event>,
    /// Events read from the log, not to be delivered again when they come live.
    replayed: HashSet<i64>,
}

/// Events of `only` (or of all conversations) logged after `after`, then live ones. The
/// live subscription is taken first, so nothing committed during the catch-up is missed.
pub fn events_after(
    store: Store,
    live: broadcast::Receiver<Event>,
    only: Option<i64>,
    after: Option<i64>,
) -> impl Stream<Item = Event> {
    let feed = Feed {
        store,
        live,
        only,
        reading_after: after,
        ready: VecDeque::new(),
        replayed: HashSet::new(),
    };
    futures::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((event, feed))
    })
}

impl Feed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if let Some(after) = self.reading_after {
                let page = match self.only {
                    Some(id) => self.store.events_page(id, Some(after), PAGE).await,
                    None => self.store.events_after(after, PAGE).await,
                };
                let page = match page {
                    Ok(page) => page,
                    Err(error) => {
                        // The client resumes from the last event it got.
                        tracing::error!(error = %error, "Reading the event log for a resuming subscriber failed; the subscription ends.");
                        return None;
                    }
                };
                self.reading_after = page
                    .last()
                    .map(|e| e.id)
                    .filter(|_| page.len() as u64 == PAGE);
                for event in page {
                    self.replayed.insert(event.id);
                    self.ready.push_back(Arc::new(event));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if self.only.is_none_or(|id| id == event.conversation_id) => {
                    if !self.replayed.remove(&event.id) {
                        return Some(event);
                    }
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "A subscriber fell behind; it can resume from its last event id."
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
