//! The rows the store reads and writes.

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

/// A run's mutable state as history encoded it; the store keeps it opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateBlob {
    pub encoding: i32,
    pub data: Vec<u8>,
}

/// What a run is waiting for, as far as the due-work index is concerned: the earliest moment
/// one of its timers or timeouts (or a delayed dispatch) comes due, and whether a task of it is
/// waiting for a worker. A shard's owner finds its due work through these two columns alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueWork {
    pub wake_time_ms: Option<i64>,
    pub dispatch_pending: bool,
}

/// The plain fields of a run that list queries read and filter on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisibilityFields {
    pub workflow_type: String,
    pub task_queue: String,
    pub status: i32,
    pub start_time_ms: i64,
    pub close_time_ms: i64,
    pub execution_time_ms: i64,
    /// Encoded `Memo` and `SearchAttributes`, when the run has them.
    pub memo: Option<Vec<u8>>,
    pub search_attributes: Option<Vec<u8>>,
    pub parent_workflow_id: String,
    pub parent_run_id: String,
}

#[derive(Debug, Clone)]
pub struct LoadedExecution {
    pub state: StateBlob,
    pub db_version: i64,
    /// The due work stored with the state.
    pub due: DueWork,
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
    /// The encoded task, opaque to the store.
    pub task: Vec<u8>,
}

/// Where a page of wakeups starts: after every run with an earlier or equal wake time, or
/// after one row (the last of the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeAfter {
    Time(i64),
    Row(Wakeup),
}

/// A run found through the due-work index, with the wake time it is indexed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wakeup {
    pub wake_time_ms: i64,
    pub run: ExecutionRef,
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
    pub state: StateBlob,
    pub next_event_id: i64,
    pub visibility: VisibilityFields,
    /// The run's visibility row and values, when they changed.
    pub listing: Option<crate::VisibilityWrite>,
    pub due: DueWork,
    /// The version the row must have now (None: the row must not exist).
    pub expected_db_version: Option<i64>,
    pub events: Vec<HistoryEvent>,
    pub current: CurrentUpdate,
    /// Transfer tasks with their ids, each encoded by history.
    pub new_transfer_tasks: Vec<(i64, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub shard_id: u32,
    pub range_id: i64,
    pub executions: Vec<ExecutionWrite>,
    pub deleted_transfer_tasks: Vec<i64>,
}
