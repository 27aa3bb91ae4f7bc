//! Shared vocabulary of every Sundial crate: identifiers, shard hashing, the clock, error codes
//! and log field names. Depends on no other Sundial crate and does no I/O.

pub mod clock;
pub mod error;
pub mod ids;
pub mod log_fields;

pub use clock::{Clock, SystemClock};
pub use error::{Error, ErrorCode, Result};
pub use ids::{WorkflowKey, new_run_id, new_uuid, shard_for};
