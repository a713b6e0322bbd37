//! `clusterStatus` (admins only): the nodes of a cluster, the shards each owns, how old
//! their leases and heartbeats are. Read from PostgreSQL, so every node answers the same.

use super::{api, principal};
use crate::cluster::leases::{self, NodeStatus, ShardStatus};
use crate::domain::Role;
use crate::error::{ApiError, ErrorCode};
use async_graphql::{Context, Object, SimpleObject};

/// The cluster as the shared database sees it.
#[derive(SimpleObject)]
pub struct ClusterStatus {
    /// Whether this server runs as one node of a cluster (`[cluster] redis_url`).
    pub enabled: bool,
    /// The node that answered.
    pub this_node: Option<String>,
    /// Shards conversations hash to.
    pub shards: i32,
    pub nodes: Vec<ClusterNode>,
}

/// One node that joined the cluster (stopped nodes are listed until removed).
#[derive(SimpleObject)]
pub struct ClusterNode {
    pub node_id: String,
    /// Where the other nodes forward requests for the cases it owns.
    pub address: String,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    /// Milliseconds since its last heartbeat (database clock).
    pub heartbeat_age_ms: i64,
    /// It left cleanly and released its leases.
    pub stopped: bool,
    /// It holds the leader lease (the outbox and the sweeps run there).
    pub leader: bool,
    pub shards_owned: i32,
    pub shards: Vec<ClusterShard>,
}

/// A shard lease held by a node.
#[derive(SimpleObject)]
pub struct ClusterShard {
    pub shard: i32,
    /// The fencing token: incremented at every takeover.
    pub epoch: i64,
    /// Milliseconds since the lease was last renewed.
    pub lease_age_ms: i64,
    /// Not renewed in time: any node may take it over.
    pub expired: bool,
}

impl From<ShardStatus> for ClusterShard {
    fn from(s: ShardStatus) -> Self {
        Self {
            shard: s.shard,
            epoch: s.epoch,
            lease_age_ms: s.lease_age_ms,
            expired: s.expired,
        }
    }
}

impl From<NodeStatus> for ClusterNode {
    fn from(n: NodeStatus) -> Self {
        Self {
            node_id: n.node_id,
            address: n.address,
            started_at_ms: n.started_at_ms,
            heartbeat_age_ms: n.heartbeat_age_ms,
            stopped: n.stopped,
            leader: n.leader,
            shards_owned: n.shards.len() as i32,
            shards: n.shards.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Default)]
pub struct ClusterQuery;

#[Object]
impl ClusterQuery {
    /// The nodes of the cluster and their shard leases (admins only). On a single node:
    /// `enabled: false` and no nodes.
    async fn cluster_status(&self, ctx: &Context<'_>) -> async_graphql::Result<ClusterStatus> {
        if principal(ctx)?.role != Role::Admin {
            return Err(ApiError::new(ErrorCode::Forbidden, "clusterStatus is for admins").into());
        }
        let Some(cluster) = &api(ctx).cluster else {
            return Ok(ClusterStatus {
                enabled: false,
                this_node: None,
                shards: 0,
                nodes: Vec::new(),
            });
        };
        let nodes = leases::cluster_status(cluster.db())
            .await
            .map_err(ApiError::internal)?;
        Ok(ClusterStatus {
            enabled: true,
            this_node: Some(cluster.node_id().to_owned()),
            shards: cluster.shards() as i32,
            nodes: nodes.into_iter().map(Into::into).collect(),
        })
    }
}
