//! Coalescing of small, uniform writes into one statement per commit.
//!
//! The writer already shares one commit among concurrent callers; a [`Batcher`] goes one
//! step further for writes that arrive in floods (one inbox row per webhook, one row per
//! delivery status): it gathers every item queued while the previous batch was being
//! committed and hands them to the writer as a single operation, which writes them with
//! multi-row statements. Each caller still gets its own result, after the commit.

use super::{StoreError, WriteOp, Writer};
use tokio::sync::{mpsc, oneshot};

/// A write made of many independent items, answered item by item.
pub trait BatchOp: WriteOp<Output = Vec<Self::ItemOutput>> {
    type Item: Send + 'static;
    type ItemOutput: Send + 'static;
    fn from_items(items: Vec<Self::Item>) -> Self;
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
    /// Starts the batching task in front of `writer`.
    pub fn start(writer: Writer, max_items: usize) -> Self {
        let (queue, mut queued) = mpsc::unbounded_channel::<Queued<O>>();
        let max_items = max_items.max(1);
        let feeder = writer.clone();
        feeder.spawn(async move {
            let mut batch = Vec::with_capacity(max_items);
            while queued.recv_many(&mut batch, max_items).await > 0 {
                let (items, replies): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                match writer.write(O::from_items(items)).await {
                    Ok(outputs) if outputs.len() == replies.len() => {
                        for (reply, output) in replies.into_iter().zip(outputs) {
                            let _ = reply.send(Ok(output));
                        }
                    }
                    Ok(outputs) => {
                        let error = format!(
                            "a batch of {} items answered {} results",
                            replies.len(),
                            outputs.len()
                        );
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Commit(error.clone())));
                        }
                    }
                    Err(error) => {
                        let error = error.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Commit(error.clone())));
                        }
                    }
                }
            }
        });
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
