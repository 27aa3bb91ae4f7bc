//! Field names for structured logs, defined once so every crate spells them alike.

pub const NAMESPACE: &str = "namespace";
pub const WORKFLOW_ID: &str = "workflow_id";
pub const RUN_ID: &str = "run_id";
pub const SHARD_ID: &str = "shard_id";
pub const TASK_QUEUE: &str = "task_queue";
