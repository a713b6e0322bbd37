//! `parley_cluster_redis_*`: what this node's Redis side is doing, registered beside the
//! process's other metrics.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use std::sync::OnceLock;

pub struct BusMetrics {
    /// 1 while the last Redis command succeeded.
    pub up: IntGauge,
    /// Nodes that announced themselves in the last few seconds, this one included.
    pub nodes: IntGauge,
    /// Work done without Redis, by what (`pacing_pair`, `pacing_throughput`, `publish`,
    /// `read`).
    pub fallbacks: IntCounterVec,
    /// Stream entries written, by kind (`event`, `presence`, `invalidation`, `catch_up`).
    pub published: IntCounterVec,
    /// Stream entries from other nodes taken in, by kind.
    pub received: IntCounterVec,
    /// Events read back from the database after Redis lost some.
    pub caught_up: IntCounter,
}

fn build() -> Result<BusMetrics, prometheus::Error> {
    let metrics = BusMetrics {
        up: IntGauge::new(
            "cluster_redis_up",
            "1 while Redis answers this node's commands, 0 when the last one failed",
        )?,
        nodes: IntGauge::new(
            "cluster_redis_nodes",
            "Nodes seen alive through Redis (this one included); pacing shares divide by it",
        )?,
        fallbacks: IntCounterVec::new(
            Opts::new(
                "cluster_redis_fallbacks_total",
                "Operations done without Redis because it did not answer, by what (pacing_pair, pacing_throughput, publish, read)",
            ),
            &["what"],
        )?,
        published: IntCounterVec::new(
            Opts::new(
                "cluster_redis_published_total",
                "Entries this node wrote to the cluster stream, by kind",
            ),
            &["kind"],
        )?,
        received: IntCounterVec::new(
            Opts::new(
                "cluster_redis_received_total",
                "Entries of other nodes this node took from the cluster stream, by kind",
            ),
            &["kind"],
        )?,
        caught_up: IntCounter::new(
            "cluster_redis_caught_up_events_total",
            "Events read back from the database after Redis lost or missed them",
        )?,
    };
    let registry = &crate::telemetry::metrics().registry;
    registry.register(Box::new(metrics.up.clone()))?;
    registry.register(Box::new(metrics.nodes.clone()))?;
    registry.register(Box::new(metrics.fallbacks.clone()))?;
    registry.register(Box::new(metrics.published.clone()))?;
    registry.register(Box::new(metrics.received.clone()))?;
    registry.register(Box::new(metrics.caught_up.clone()))?;
    Ok(metrics)
}

/// The bus's metrics, registered on first use.
pub fn bus_metrics() -> &'static BusMetrics {
    static METRICS: OnceLock<BusMetrics> = OnceLock::new();
    METRICS.get_or_init(|| match build() {
        Ok(metrics) => metrics,
        // Only reachable through a programming error in the definitions above.
        Err(error) => panic!("cluster metric definitions are invalid: {error}"),
    })
}
