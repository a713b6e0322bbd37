//! Coalescing of small, uniform writes into one operation per commit.
//!
//! The writer already shares one commit among concurrent callers; a [`Batcher`] goes one
//! step further for writes that arrive in floods (one inbox row per webhook, one row per
//! delivery status, a customer message landing on its case): it gathers every item queued
//! while the previous batch was being committed and hands them to the writer as a single
//! operation, which writes them with multi-row statements. Each caller still gets its own
//! result, after the commit.
//!
//! A batch that fails as a whole (one bad item, a statement the database refuses) is
//! written again item by item, each in a commit of its own, so one bad item fails alone and
//! its neighbours are stored as they would have been on their own.

use super::{StoreError, WriteOp, Writer};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A write made of many independent items, answered item by item.
pub trait BatchOp: WriteOp<Output = Vec<Self::ItemOutput>> {
    type Item: Clone + Send + Sync + 'static;
    type ItemOutput: Send + 'static;
    /// The operation writing `items` together. The batcher keeps its own handle on them
    /// to write them one by one if the batch fails.
    fn from_items(items: Arc<Vec<Self::Item>>) -> Self;
}

type Queued<O> = (
    <O as BatchOp>::Item,
    oneshot::Sender<Result<<O as BatchOp>::ItemOutput, StoreError>>,
);

pub struct Batcher<O: BatchOp> {
    queue: mpsc::UnboundedSender<Queued<O>>,
}

impl<O: BatchOp> Clone for Batcher<O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<O: BatchOp> Batcher<O> {
    /// Starts the batching task in front of `writer` (on the writer's own thread when it
    /// has one). It holds the writer, not the store, so that dropping every store handle
    /// stops it and then the writer.
    pub fn start(writer: Writer, max_items: usize) -> Self {
        let (queue, queued) = mpsc::unbounded_channel::<Queued<O>>();
        writer
            .clone()
            .spawn(run::<O>(writer, queued, max_items.max(1)));
        Self { queue }
    }

    /// Queues `item` for the next batch and waits until that batch is committed.
    pub async fn submit(&self, item: O::Item) -> Result<O::ItemOutput, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run<O: BatchOp>(
    writer: Writer,
    mut queued: mpsc::UnboundedReceiver<Queued<O>>,
    max_items: usize,
) {
    let mut batch = Vec::with_capacity(max_items);
    while queued.recv_many(&mut batch, max_items).await > 0 {
        let (items, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let items = Arc::new(items);
        let outcome = writer.write(O::from_items(items.clone())).await;
        let reason = match outcome {
            Ok(outputs) if outputs.len() == replies.len() => {
                for (reply, output) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(output));
                }
                continue;
            }
            Ok(outputs) => format!("{} results for {} items", outputs.len(), replies.len()),
            Err(error) => error.to_string(),
        };
        if replies.len() == 1 {
            // Alone already: its error is its own.
            for reply in replies {
                let _ = reply.send(Err(StoreError::Commit(reason.clone())));
            }
            continue;
        }
        // Whatever failed, each item gets its own chance (and its own error).
        tracing::warn!(error = %reason, size = replies.len(), op = std::any::type_name::<O>(), "A batch failed; writing its items one by one.");
        let alone = items
            .iter()
            .map(|item| writer.write(O::from_items(Arc::new(vec![item.clone()]))));
        let answers = futures::future::join_all(alone).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            let answer = answer.and_then(|mut outputs| {
                outputs
                    .pop()
                    .filter(|_| outputs.is_empty())
                    .ok_or_else(|| StoreError::Commit("a write of one item answered none".into()))
            });
            let _ = reply.send(answer);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use sea_orm::{DatabaseTransaction, DbErr};

    /// Doubles numbers; a batch holding a negative one fails as a whole.
    struct Doubles(Arc<Vec<i64>>);

    /// The largest batch written, to check the items were written together first.
    static LARGEST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl BatchOp for Doubles {
        type Item = i64;
        type ItemOutput = i64;
        fn from_items(items: Arc<Vec<i64>>) -> Self {
            Self(items)
        }
    }

    impl WriteOp for Doubles {
        type Output = Vec<i64>;
        fn apply<'a>(
            &'a self,
            _: &'a DatabaseTransaction,
        ) -> BoxFuture<'a, Result<Vec<i64>, DbErr>> {
            Box::pin(async move {
                LARGEST.fetch_max(self.0.len(), std::sync::atomic::Ordering::SeqCst);
                if self.0.iter().any(|n| *n < 0) {
                    return Err(DbErr::Custom("negative".into()));
                }
                Ok(self.0.iter().map(|n| n * 2).collect())
            })
        }
    }

    #[tokio::test]
    async fn one_bad_item_fails_alone_and_its_batch_neighbours_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        // Queued before the batcher first looks: one batch of four.
        let (queue, queued) = mpsc::unbounded_channel();
        let mut replies = Vec::new();
        for n in [1, -2, 3, 4] {
            let (reply, answer) = oneshot::channel();
            queue.send((n, reply)).unwrap();
            replies.push(answer);
        }
        store
            .writer()
            .spawn(run::<Doubles>(store.writer(), queued, 64));
        let mut answers = Vec::new();
        for answer in replies {
            answers.push(answer.await.unwrap());
        }
        assert_eq!(LARGEST.load(std::sync::atomic::Ordering::SeqCst), 4);
        assert_eq!(answers[0].as_ref().unwrap(), &2);
        assert!(answers[1].is_err());
        assert_eq!(answers[2].as_ref().unwrap(), &6);
        assert_eq!(answers[3].as_ref().unwrap(), &8);
    }
}
