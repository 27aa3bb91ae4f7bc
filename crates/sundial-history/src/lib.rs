//! The history service: owns the shards and the runs in them. For every request it locks the
//! run, loads its mutable state (cached), asks `sundial-history-core` for the transition,
//! persists events, state and tasks in one fenced write, then hands tasks to matching, the timer
//! queue and the transfer queue. Depends on the core, the store and the `sundial-rpc` traits;
//! never on another service crate.

// Deprecated fields and policies are still sent by SDKs and honoured by Temporal.
#![allow(deprecated)]

mod api;
mod engine;
mod responses;
mod shard;
mod timers;
mod transfer;
mod update_api;
mod updates;

pub use engine::{CustomSearchAttributes, EagerPolicy, HistoryConfig, HistoryService};
pub use shard::ShardOwnership;
pub use updates::UpdateLimits;
