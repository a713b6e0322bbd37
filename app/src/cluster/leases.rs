//! Shard leases in PostgreSQL, kept by one heartbeat task per node.
//!
//! Each heartbeat (every `heartbeat_ms`) records the node as alive, renews every lease
//! it holds (`expires_at = now() + lease_secs`, the database's clock, never the node's),
//! hands back shards above its fair share (shards / live nodes, rounded up) and claims
//! free or expired shards up to it, and the leader lease when nobody holds it. A claim
//! locks the lease row `FOR UPDATE` and increments its epoch: it waits for every write
//! still checking the old epoch (briefly: see [`crate::store::fence`]), and refuses
//! every one after it. A clean stop releases the node's leases at once; a killed node's
//! leases expire after `lease_secs`.

use super::{Cluster, LEADER_SHARD, metrics};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};
use std::time::Duration;

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn shard_epoch(row: &QueryResult) -> Result<(i32, i64), DbErr> {
    Ok((row.try_get("", "shard")?, row.try_get("", "epoch")?))
}

impl Cluster {
    fn lease_secs(&self) -> f64 {
        self.settings.lease_secs as f64
    }

    /// One heartbeat: alive, renew, rebalance, claim. Returns the shards gained.
    pub async fn heartbeat(&self) -> Result<Vec<i32>, DbErr> {
        let db = &self.db;
        let node = self.node_id.to_string();
        db.execute(statement(
            "INSERT INTO cluster_nodes (node_id, address, started_at, heartbeat_at) \
             VALUES ($1, $2, now(), now()) \
             ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, \
             heartbeat_at = now(), stopped_at = NULL",
            [node.clone().into(), self.address.clone().into()],
        ))
        .await?;
        let renewed = db
            .query_all(statement(
                "UPDATE shard_leases SET renewed_at = now(), \
                 expires_at = now() + make_interval(secs => $2) \
                 WHERE node_id = $1 RETURNING shard, epoch",
                [node.clone().into(), self.lease_secs().into()],
            ))
            .await?;
        let mut held = std::collections::HashMap::new();
        for row in &renewed {
            let (shard, epoch) = shard_epoch(row)?;
            held.insert(shard, epoch);
        }
        // Whatever was not renewed was taken over while this node was away.
        for shard in (0..self.settings.shards as i32).chain([LEADER_SHARD]) {
            let epoch = held.get(&shard).copied().unwrap_or(0);
            if self.epoch(shard) != epoch {
                if epoch == 0 {
                    tracing::warn!(shard, "A shard lease was lost to another node.");
                }
                self.set_epoch(shard, epoch);
            }
        }

        let live: i64 = db
            .query_one(statement(
                "SELECT count(*) AS live FROM cluster_nodes WHERE stopped_at IS NULL \
                 AND heartbeat_at > now() - make_interval(secs => $1)",
                [self.lease_secs().into()],
            ))
            .await?
            .map(|row| row.try_get("", "live"))
            .transpose()?
            .unwrap_or(1);
        let shards = i64::from(self.settings.shards);
        let fair = (shards + live.max(1) - 1) / live.max(1);
        let mut owned = self.owned_shards();
        let mut gained = Vec::new();
        if owned.len() as i64 > fair {
            let excess: Vec<i32> = owned.split_off(fair as usize);
            self.release(&excess).await?;
            tracing::info!(
                released = excess.len(),
                live,
                "Shards handed over to balance the cluster."
            );
        } else if (owned.len() as i64) < fair {
            let wanted = fair - owned.len() as i64;
            let free = db
                .query_all(statement(
                    "SELECT s AS shard FROM generate_series(0, $1 - 1) AS s \
                     WHERE NOT EXISTS (SELECT 1 FROM shard_leases l \
                     WHERE l.shard = s AND l.expires_at > now()) \
                     ORDER BY random() LIMIT $2",
                    [(shards as i32).into(), wanted.into()],
                ))
                .await?;
            for row in free {
                let shard: i32 = row.try_get("", "shard")?;
                if let Some(epoch) = self.claim(shard).await? {
                    self.set_epoch(shard, epoch);
                    gained.push(shard);
                }
            }
        }
        if !self.is_leader()
            && let Some(epoch) = self.claim(LEADER_SHARD).await?
        {
            tracing::info!(epoch, "This node is the leader now.");
            self.set_epoch(LEADER_SHARD, epoch);
            gained.push(LEADER_SHARD);
        }
        metrics().shards_owned.set(self.owned_shards().len() as i64);
        if !gained.is_empty() {
            let _ = self.gained.send(gained.clone());
        }
        Ok(gained)
    }

    /// Takes `shard` if it is free or its lease expired; answers the new epoch.
    async fn claim(&self, shard: i32) -> Result<Option<i64>, DbErr> {
        let txn = self.db.begin().await?;
        // A write still checking the old epoch holds the row; a heartbeat does not wait
        // long for it (it has leases to renew) and tries again at the next beat.
        txn.execute(statement(
            "SELECT set_config('lock_timeout', $1, true)",
            [format!("{}ms", (self.settings.heartbeat_ms / 2).max(50)).into()],
        ))
        .await?;
        let current = match txn
            .query_one(statement(
                "SELECT epoch, expires_at <= now() AS free FROM shard_leases \
                 WHERE shard = $1 FOR UPDATE",
                [shard.into()],
            ))
            .await
        {
            Ok(current) => current,
            Err(error) if error.to_string().contains("lock timeout") => {
                tracing::info!(
                    shard,
                    "A write under the shard's old lease is still open; claiming it later."
                );
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let node = self.node_id.to_string();
        let claimed = match current {
            None => txn
                .query_one(statement(
                    "INSERT INTO shard_leases \
                     (shard, node_id, epoch, acquired_at, renewed_at, expires_at) \
                     VALUES ($1, $2, 1, now(), now(), now() + make_interval(secs => $3)) \
                     ON CONFLICT (shard) DO NOTHING RETURNING shard, epoch",
                    [shard.into(), node.into(), self.lease_secs().into()],
                ))
                .await?
                .map(|row| shard_epoch(&row))
                .transpose()?,
            Some(row) if row.try_get::<bool>("", "free")? => {
                let claimed = txn
                    .query_one(statement(
                        "UPDATE shard_leases SET node_id = $2, epoch = epoch + 1, \
                         acquired_at = now(), renewed_at = now(), \
                         expires_at = now() + make_interval(secs => $3) \
                         WHERE shard = $1 RETURNING shard, epoch",
                        [shard.into(), node.into(), self.lease_secs().into()],
                    ))
                    .await?
                    .map(|row| shard_epoch(&row))
                    .transpose()?;
                if claimed.is_some() {
                    metrics().takeovers.inc();
                }
                claimed
            }
            Some(_) => None,
        };
        txn.commit().await?;
        Ok(claimed.map(|(_, epoch)| epoch))
    }

    /// Hands `shards` back at once: forgotten here first (new work goes to their next
    /// owner), then expired in the database, and no longer this node's, so its writes
    /// under them are refused from now on.
    async fn release(&self, shards: &[i32]) -> Result<(), DbErr> {
        for &shard in shards {
            self.set_epoch(shard, 0);
        }
        let list = shards
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",");
        if list.is_empty() {
            return Ok(());
        }
        self.db
            .execute(statement(
                &format!(
                    "UPDATE shard_leases SET node_id = '', expires_at = now() \
                     WHERE node_id = $1 AND shard IN ({list})"
                ),
                [self.node_id.to_string().into()],
            ))
            .await?;
        Ok(())
    }

    /// At a clean stop: every lease (the leader's too) handed back at once, the node
    /// marked stopped.
    pub async fn leave(&self) -> Result<(), DbErr> {
        let mut all = self.owned_shards();
        if self.is_leader() {
            all.push(LEADER_SHARD);
        }
        self.release(&all).await?;
        self.db
            .execute(statement(
                "UPDATE cluster_nodes SET stopped_at = now() WHERE node_id = $1",
                [self.node_id.to_string().into()],
            ))
            .await?;
        metrics().shards_owned.set(0);
        tracing::info!(shards = all.len(), "Shard leases released.");
        Ok(())
    }

    /// Heartbeats until the process stops. A failed heartbeat is logged and retried at the
    /// next beat; leases not renewed in time expire and are taken over, and this node's
    /// writes under them are refused by their fence.
    pub async fn keep_leases(self: std::sync::Arc<Self>) {
        let beat = Duration::from_millis(self.settings.heartbeat_ms);
        loop {
            if let Err(error) = self.heartbeat().await {
                tracing::warn!(error = %error, "Cluster heartbeat failed; retrying.");
            }
            tokio::time::sleep(beat).await;
        }
    }
}

/// The token nodes present to each other on forwarded requests, created by the first
/// node in the database they share.
pub async fn cluster_token(db: &DatabaseConnection) -> Result<String, DbErr> {
    let fresh: [u8; 32] = rand::random();
    db.execute(statement(
        "INSERT INTO cluster_secret (id, token) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        [hex::encode(fresh).into()],
    ))
    .await?;
    db.query_one(statement(
        "SELECT token FROM cluster_secret WHERE id = 1",
        [],
    ))
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("cluster_secret".into()))?
    .try_get("", "token")
}

/// A node of the cluster as `clusterStatus` shows it.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node_id: String,
    pub address: String,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub heartbeat_age_ms: i64,
    pub stopped: bool,
    pub leader: bool,
    pub shards: Vec<ShardStatus>,
}

#[derive(Debug, Clone)]
pub struct ShardStatus {
    pub shard: i32,
    pub epoch: i64,
    /// Since the lease was last renewed.
    pub lease_age_ms: i64,
    pub expired: bool,
}

/// Every node and the leases it holds, read from the database.
pub async fn cluster_status(db: &DatabaseConnection) -> Result<Vec<NodeStatus>, DbErr> {
    let nodes = db
        .query_all(statement(
            "SELECT node_id, address, \
             (extract(epoch FROM started_at) * 1000)::bigint AS started_ms, \
             (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint AS age, \
             stopped_at IS NOT NULL AS stopped FROM cluster_nodes ORDER BY node_id",
            [],
        ))
        .await?;
    let leases = db
        .query_all(statement(
            "SELECT shard, node_id, epoch, \
             (extract(epoch FROM now() - renewed_at) * 1000)::bigint AS age, \
             expires_at <= now() AS expired FROM shard_leases ORDER BY shard",
            [],
        ))
        .await?;
    let mut out = Vec::with_capacity(nodes.len());
    for row in nodes {
        out.push(NodeStatus {
            node_id: row.try_get("", "node_id")?,
            address: row.try_get("", "address")?,
            started_at_ms: row.try_get("", "started_ms")?,
            heartbeat_age_ms: row.try_get("", "age")?,
            stopped: row.try_get("", "stopped")?,
            leader: false,
            shards: Vec::new(),
        });
    }
    for row in leases {
        let node_id: String = row.try_get("", "node_id")?;
        let Some(node) = out.iter_mut().find(|n| n.node_id == node_id) else {
            continue;
        };
        let shard = ShardStatus {
            shard: row.try_get("", "shard")?,
            epoch: row.try_get("", "epoch")?,
            lease_age_ms: row.try_get("", "age")?,
            expired: row.try_get("", "expired")?,
        };
        if shard.shard == LEADER_SHARD {
            node.leader = !shard.expired;
        } else {
            node.shards.push(shard);
        }
    }
    Ok(out)
}
