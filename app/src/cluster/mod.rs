//! Several Parley nodes on one PostgreSQL and one Redis.
//!
//! PostgreSQL stays the only source of truth; [`bus`] is everything this node shares
//! through Redis, all of it safe to lose: the fan-out of committed events to subscribers
//! on every node, the outbound pacing every node draws from, presence and collision
//! state, and cache invalidations.

pub mod bus;
