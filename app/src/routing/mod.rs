//! Routing: who owns a case, who watches it, who works it, and why.
pub mod noise;
pub mod presence;
