//! The rows the store reads and writes.

use sundial_history_core::state::MutableState;
use sundial_history_core::tasks::Task;
use sundial_proto::api::history::v1::HistoryEvent;

/// A namespace: its name and id plus the encoded `NamespaceInfo`/`NamespaceConfig` the
/// frontend owns.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRecord {
    pub id: String,
    pub name: String,
    /// Encoded `temporal.api.workflowservice.v1.DescribeNamespaceResponse`.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentExecution {
    pub run_id: String,
    /// `WorkflowExecutionStatus` of that run.
    pub status: i32,
    pub start_request_id: String,
}

#[derive(Debug, Clone)]
pub struct LoadedExecution {
    pub state: MutableState,
    pub db_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRef {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
}

#[derive(Debug, Clone)]
pub struct TransferTaskRecord {
    pub shard_id: u32,
    pub task_id: i64,
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub task: Task,
}

#[derive(Debug, Clone)]
pub struct VisibilityRecord {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub status: i32,
    pub start_time_ms: i64,
    pub close_time_ms: i64,
    pub execution_time_ms: i64,
    pub history_length: i64,
    /// Encoded `Memo` and `SearchAttributes`.
    pub memo: Vec<u8>,
    pub search_attributes: Vec<u8>,
    pub parent_workflow_id: String,
    pub parent_run_id: String,
}

/// How the current-run pointer of a workflow id changes.
#[derive(Debug, Clone)]
pub enum CurrentUpdate {
    /// Leave it alone.
    Keep,
    /// Point at this run; `expected_run_id` is the run it must point at now (None: no row).
    Set {
        expected_run_id: Option<String>,
        run_id: String,
        status: i32,
        start_request_id: String,
    },
    /// Update the status of the run it points at (which must be `run_id`).
    Status { run_id: String, status: i32 },
}

/// One execution's part of a write.
#[derive(Debug, Clone)]
pub struct ExecutionWrite {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub state: MutableState,
    /// The version the row must have now (None: the row must not exist).
    pub expected_db_version: Option<i64>,
    pub events: Vec<HistoryEvent>,
    pub current: CurrentUpdate,
    pub new_transfer_tasks: Vec<(i64, Task)>,
}

#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub shard_id: u32,
    pub range_id: i64,
    pub executions: Vec<ExecutionWrite>,
    pub deleted_transfer_tasks: Vec<i64>,
}
