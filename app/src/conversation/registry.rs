//! The registry of live conversation actors: one per contact on a business number,
//! started on demand on one of a fixed set of threads, stopped when idle.

use super::{ActorDeps, ConversationActor, ForgetState};
use crate::actors::conversation::{ConversationError, Deliver, Reply, Request};
use crate::domain::ConversationKey;
use crate::routing::noise::RateWindow;
use actix::prelude::*;
use dashmap::DashMap;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) struct Entry {
    pub(super) addr: Addr<ConversationActor>,
    /// Requests handed to this actor and not yet answered; it may stop only at zero.
    pub(super) inflight: Arc<AtomicUsize>,
}

pub(super) struct RegistryInner {
    pub(super) actors: DashMap<ConversationKey, Entry>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    deps: Arc<ActorDeps>,
}

/// Finds or starts the actor of a conversation key and delivers messages to it.
#[derive(Clone)]
pub struct ConversationRegistry {
    inner: Arc<RegistryInner>,
}

struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConversationRegistry {
    /// Starts `threads` actor threads. Must be called inside a running actix system.
    pub fn start(deps: ActorDeps, threads: usize) -> Self {
        let arbiters = (0..threads.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Self {
            inner: Arc::new(RegistryInner {
                actors: DashMap::new(),
                arbiters,
                next_arbiter: AtomicUsize::new(0),
                deps: Arc::new(deps),
            }),
        }
    }

    /// Stops every actor thread (at shutdown): the actors' state is in the store.
    pub fn stop(&self) {
        self.inner.actors.clear();
        for arbiter in &self.inner.arbiters {
            arbiter.stop();
        }
    }

    /// Actors currently running.
    pub fn live_actors(&self) -> usize {
        self.inner.actors.len()
    }

    /// Makes the live actors of a contact reload their state before their next message
    /// (after an admin changed the contact: VIP, blocked).
    pub fn forget_contact_state(&self, wa_id: &str) {
        for entry in self.inner.actors.iter() {
            if entry.key().wa_id == wa_id {
                entry.value().addr.do_send(ForgetState);
            }
        }
    }

    /// Makes every live conversation read its contact's state again (after another node
    /// changed contacts this node may not have heard about).
    pub fn forget_all_contact_state(&self) {
        for entry in self.inner.actors.iter() {
            entry.value().addr.do_send(ForgetState);
        }
    }

    pub fn is_live(&self, key: &ConversationKey) -> bool {
        self.inner.actors.contains_key(key)
    }

    fn spawn(&self, key: &ConversationKey) -> Entry {
        let n = self.inner.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.inner.arbiters.len();
        let inflight = Arc::new(AtomicUsize::new(0));
        let deps = &self.inner.deps;
        // Fenced with the epoch held now: if the shard changes hands later, even back to
        // this node, this actor's writes are refused and a fresh actor takes over.
        let store = match &deps.cluster {
            Some(cluster) => deps.store.fenced(cluster.fence_for(key)),
            None => deps.store.clone(),
        };
        let actor = ConversationActor {
            key: key.clone(),
            store,
            deps: self.inner.deps.clone(),
            state: None,
            last_activity: self.inner.deps.clock.now(),
            inflight: inflight.clone(),
            registry: Arc::downgrade(&self.inner),
            rate: RateWindow::default(),
        };
        let addr = match self.inner.arbiters.get(n) {
            Some(arbiter) => Supervisor::start_in_arbiter(arbiter, move |_| actor),
            None => Supervisor::start(move |_| actor),
        };
        Entry { addr, inflight }
    }

    fn checkout(&self, key: &ConversationKey) -> (Addr<ConversationActor>, InflightGuard) {
        let mut entry = self
            .inner
            .actors
            .entry(key.clone())
            .or_insert_with(|| self.spawn(key));
        if !entry.addr.connected() {
            *entry = self.spawn(key);
        }
        entry.inflight.fetch_add(1, Ordering::SeqCst);
        (entry.addr.clone(), InflightGuard(entry.inflight.clone()))
    }

    /// Delivers `message` to the actor of `key`, starting it if needed, and waits for its
    /// answer. A message that reaches an actor just as it stops is delivered again to its
    /// successor.
    pub async fn send<M, R>(
        &self,
        key: &ConversationKey,
        message: M,
    ) -> Result<R, ConversationError>
    where
        M: Message<Result = Result<R, ConversationError>> + Clone + Send + 'static,
        R: Send + 'static,
        ConversationActor: Handler<M>,
    {
        for _ in 0..3 {
            let (addr, guard) = self.checkout(key);
            let answer = addr.send(message.clone()).await;
            drop(addr);
            drop(guard);
            match answer {
                Ok(result) => return result,
                Err(MailboxError::Closed) => continue,
                Err(MailboxError::Timeout) => return Err(ConversationError::Unavailable),
            }
        }
        Err(ConversationError::Unavailable)
    }
}

impl Deliver for ConversationRegistry {
    fn deliver(
        &self,
        key: ConversationKey,
        request: Request,
    ) -> BoxFuture<'static, Result<Reply, ConversationError>> {
        let registry = self.clone();
        Box::pin(async move {
            let applied = |result: Result<_, ConversationError>| {
                result.map(|applied| Reply::Applied(Box::new(applied)))
            };
            match request {
                Request::Arrived(m) => registry.send(&key, m).await.map(Reply::Stepped),
                Request::Reply(m) => applied(registry.send(&key, m).await),
                Request::Template(m) => applied(registry.send(&key, m).await),
                Request::Decide(m) => applied(registry.send(&key, *m).await),
                Request::Assign(m) => applied(registry.send(&key, m).await),
                Request::Status(m) => applied(registry.send(&key, m).await),
                Request::Note(m) => applied(registry.send(&key, m).await),
                Request::Correct(m) => applied(registry.send(&key, *m).await),
                Request::Macro(m) => applied(registry.send(&key, *m).await),
                Request::SlaCheck(m) => applied(registry.send(&key, m).await),
                Request::Escalate(m) => applied(registry.send(&key, m).await),
                Request::WindowRefused(m) => applied(registry.send(&key, m).await),
                Request::Panic(m) => applied(registry.send(&key, m).await),
            }
        })
    }
}
