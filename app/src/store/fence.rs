//! Fencing tokens: a write made on behalf of a shard's owner commits only while that
//! owner still holds the shard's lease with the same epoch.
//!
//! The check runs inside the write's own transaction: `SELECT ... FOR KEY SHARE` on the
//! lease row. A lease renewal (an `UPDATE` of non-key columns) does not wait for it; a
//! takeover locks the row `FOR UPDATE` first, so it waits for every transaction that
//! checked the old epoch to commit or roll back, and every check after it sees the new
//! epoch. A node paused past its lease and resumed therefore cannot commit anything
//! once another node took its shard over: its writes are refused here.
//!
//! A node paused in the middle of such a transaction would hold the lock, and stall the
//! takeover, for as long as it stays paused; so the check also tells PostgreSQL to end
//! the transaction once it has sat idle for [`IDLE_LIMIT`] (a live writer never pauses
//! that long between two statements), and takeovers wait for a lock only briefly.

use super::WriteOp;
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use std::sync::Arc;

/// How long a fenced transaction may sit idle before PostgreSQL ends it (and with it
/// the lock that holds back a takeover).
pub const IDLE_LIMIT: &str = "5s";

/// The error text of a refused write (carried in `DbErr::Custom`).
pub const FENCED: &str = "fenced: this node no longer holds the shard's lease";

/// Counts refused writes (once per write, however often the writer retried it); set by
/// the cluster module, whose metric it is.
pub static ON_REFUSED: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// A shard (or the leader lease, shard -1) as held by one node with one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub shard: i32,
    /// 0: not held (every write is refused).
    pub epoch: i64,
    pub node_id: Arc<str>,
}

impl Fence {
    /// Fails with [`FENCED`] unless the lease is still this node's with this epoch; locks
    /// the lease row against a takeover until the transaction ends.
    pub async fn check(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        let held = if self.epoch == 0 {
            None
        } else {
            txn.query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 AS held, \
                 set_config('idle_in_transaction_session_timeout', $4, true) AS idle_limit \
                 FROM shard_leases \
                 WHERE shard = $1 AND node_id = $2 AND epoch = $3 FOR KEY SHARE",
                [
                    self.shard.into(),
                    self.node_id.to_string().into(),
                    self.epoch.into(),
                    IDLE_LIMIT.into(),
                ],
            ))
            .await?
        };
        if held.is_none() {
            tracing::warn!(
                shard = self.shard,
                epoch = self.epoch,
                "A write with a stale shard lease was refused."
            );
            return Err(DbErr::Custom(FENCED.into()));
        }
        Ok(())
    }
}

/// `op`, committed only under `fence`.
pub struct Fenced<O> {
    pub fence: Fence,
    pub op: O,
}

impl<O: WriteOp> WriteOp for Fenced<O> {
    type Output = O::Output;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        // Built first (it runs only when awaited), so that `O` need not be `Sync`.
        let op = self.op.apply(txn);
        let fence = &self.fence;
        Box::pin(async move {
            fence.check(txn).await?;
            op.await
        })
    }
}

impl super::StoreError {
    /// Whether the write was refused by its fence.
    pub fn is_fenced(&self) -> bool {
        match self {
            Self::Db(DbErr::Custom(reason)) => reason == FENCED,
            Self::Commit(reason) => reason.contains(FENCED),
            _ => false,
        }
    }
}
