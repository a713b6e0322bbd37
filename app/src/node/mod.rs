//! This process as one node of a cluster: the parts that carry work and changes between
//! nodes, wired in at start-up. Ownership (which node holds which shard) and the
//! contracts the rest of the node uses are in [`crate::cluster`]; this module sits above
//! everything whose work it carries.
//!
//! - [`bus`]: the Redis stream, the shared outbound pacing and the roll of live nodes.
//! - [`deliver`]: requests for a case owned elsewhere, forwarded to its owner.
//! - [`inbox`]: pending webhooks applied by the owners of their cases.

pub mod bus;
pub mod deliver;
pub mod inbox;
