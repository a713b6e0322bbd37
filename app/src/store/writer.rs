//! Group commit: one writer task, one connection, many callers.
//!
//! Callers hand in typed [`WriteOp`]s. The writer takes everything queued, applies it in
//! one transaction and commits once, so a burst of concurrent webhooks shares one fsync;
//! while one commit is on disk the next batch forms by itself, with no timer to tune.
//! Each caller is answered only after the commit that holds its operation succeeded.
//! If any operation of a batch fails, the batch is rolled back and each operation is
//! retried alone, so one bad write never fails its neighbours.

use super::StoreError;
use futures::FutureExt;
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// One unit of work for the writer. `apply` may be called more than once (a batch that
/// fails is replayed operation by operation), so it must not consume its input.
pub trait WriteOp: Send + 'static {
    type Output: Send + 'static;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>>;
}

trait Job: Send {
    /// Applies the operation; false when it failed (its error is kept for the caller).
    fn apply<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, bool>;
    /// Answers the caller with the outcome of the commit.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Pending<O: WriteOp> {
    op: O,
    output: Option<Result<O::Output, DbErr>>,
    reply: oneshot::Sender<Result<O::Output, StoreError>>,
    span: tracing::Span,
}

impl<O: WriteOp> Job for Pending<O> {
    fn apply<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, bool> {
        let span = tracing::debug_span!(parent: &self.span, "store.write", op = std::any::type_name::<O>());
        Box::pin(
            async move {
                // A panicking operation fails alone; the writer, and every other caller,
                // carry on.
                let result = match AssertUnwindSafe(self.op.apply(txn)).catch_unwind().await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::error!(
                            op = std::any::type_name::<O>(),
                            "A write operation panicked."
                        );
                        Err(DbErr::Custom("the write operation panicked".into()))
                    }
                };
                let ok = result.is_ok();
                self.output = Some(result);
                ok
            }
            .instrument(span),
        )
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (commit, self.output) {
            (Err(error), _) => Err(StoreError::Commit(error)),
            (Ok(()), Some(Ok(output))) => Ok(output),
            (Ok(()), Some(Err(error))) => Err(StoreError::Db(error)),
            (Ok(()), None) => Err(StoreError::Commit("operation was never applied".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
    /// The runtime of a writer on a thread of its own (see [`Writer::start_on_thread`]).
    runtime: Option<tokio::runtime::Handle>,
}

impl Writer {
    /// Starts the writer of one database on the current runtime; `name` labels its
    /// metrics (`main`, `inbox`).
    pub fn start(db: DatabaseConnection, max_batch: usize, name: &'static str) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(db, jobs, max_batch.max(1), name));
        Self {
            queue,
            runtime: None,
        }
    }

    /// Starts the writer on a thread (and runtime) of its own, so that its round trips
    /// to the database never wait for a busy shared thread: for the inbox, whose commits
    /// every acknowledgement waits on. Tasks that feed it ([`Writer::spawn`]) run there
    /// too. The thread ends when every handle is dropped.
    pub fn start_on_thread(
        db: DatabaseConnection,
        max_batch: usize,
        name: &'static str,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (queue, jobs) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("{name}-writer"))
            .spawn(move || runtime.block_on(run(db, jobs, max_batch.max(1), name)))?;
        Ok(Self {
            queue,
            runtime: Some(handle),
        })
    }

    /// Spawns a task next to the writer: on its own thread if it has one.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    pub async fn write<O: WriteOp>(&self, op: O) -> Result<O::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            op,
            output: None,
            reply,
            span: tracing::Span::current(),
        };
        self.queue
            .send(Box::new(job))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(
    db: DatabaseConnection,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>,
    max_batch: usize,
    name: &'static str,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        crate::telemetry::metrics()
            .group_commit_batch_size
            .observe(batch.len() as f64);
        commit_batch(&db, std::mem::take(&mut batch), name).await;
    }
    tracing::info!("Writer stopped: every handle was dropped.");
}

async fn commit_batch(db: &DatabaseConnection, mut batch: Vec<Box<dyn Job>>, name: &'static str) {
    let txn = match db.begin().await {
        Ok(txn) => txn,
        Err(error) => {
            tracing::error!(error = %error, "Could not begin a write transaction.");
            for job in batch {
                job.finish(Err(error.to_string()));
            }
            return;
        }
    };
    let started = std::time::Instant::now();
    let mut all_applied = true;
    for job in batch.iter_mut() {
        if !job.apply(&txn).await {
            all_applied = false;
            break;
        }
    }
    let phases = &crate::telemetry::metrics().store_write_seconds;
    phases
        .with_label_values(&[name, "apply"])
        .observe(started.elapsed().as_secs_f64());
    if all_applied {
        let committing = std::time::Instant::now();
        let outcome = txn.commit().await.map_err(|e| e.to_string());
        phases
            .with_label_values(&[name, "commit"])
            .observe(committing.elapsed().as_secs_f64());
        if let Err(error) = &outcome {
            tracing::error!(error = %error, size = batch.len(), "A group commit failed.");
        }
        for job in batch {
            job.finish(outcome.clone());
        }
        return;
    }
    // Isolate the failure: replay each operation in a transaction of its own.
    if let Err(error) = txn.rollback().await {
        tracing::error!(error = %error, "Could not roll back a failed batch.");
    }
    for mut job in batch {
        let txn = match db.begin().await {
            Ok(txn) => txn,
            Err(error) => {
                job.finish(Err(error.to_string()));
                continue;
            }
        };
        if job.apply(&txn).await {
            let outcome = txn.commit().await.map_err(|e| e.to_string());
            job.finish(outcome);
        } else {
            let _ = txn.rollback().await;
            job.finish(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseSettings, SqliteSynchronous};
    use crate::store::Store;

    struct Panics;
    impl WriteOp for Panics {
        type Output = ();
        fn apply<'a>(&'a self, _: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
            Box::pin(async { panic!("injected") })
        }
    }

    struct Answers(i64);
    impl WriteOp for Answers {
        type Output = i64;
        fn apply<'a>(&'a self, _: &'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> {
            Box::pin(async move { Ok(self.0) })
        }
    }

    #[tokio::test]
    async fn a_panicking_operation_fails_alone_and_the_writer_carries_on() {
        let settings = DatabaseSettings {
            url: "sqlite::memory:".into(),
            inbox_url: None,
            max_connections: 1,
            sqlite_synchronous: SqliteSynchronous::Full,
            migrate_on_start: false,
            group_commit_max_batch: 8,
        };
        let store = Store::connect(&settings).await.unwrap();
        let (bad, good) = tokio::join!(store.write(Panics), store.write(Answers(7)));
        assert!(bad.is_err());
        assert_eq!(good.unwrap(), 7);
        assert_eq!(store.write(Answers(8)).await.unwrap(), 8);
    }
}
