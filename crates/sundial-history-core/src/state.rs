//! Mutable state of one workflow run, persisted as a protobuf blob. Fields derived from history
//! events are set only by the apply functions; the rest (attempt bookkeeping, heartbeats) are
//! runtime facts that history does not carry.

use std::collections::BTreeMap;

use sundial_proto::api::common::v1::{Memo, Payloads, SearchAttributes, WorkerVersionStamp};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::{
    ActivityTaskScheduledEventAttributes, HistoryEvent,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes, WorkflowExecutionStartedEventAttributes,
};
use sundial_proto::api::sdk::v1::UserMetadata;

/// Blob encoding tag stored beside every persisted state, so the format can evolve.
pub const STATE_ENCODING_V1: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct MutableState {
    #[prost(message, optional, tag = "1")]
    pub info: Option<ExecutionInfo>,
    #[prost(btree_map = "int64, message", tag = "2")]
    pub activities: BTreeMap<i64, ActivityInfo>,
    #[prost(btree_map = "string, message", tag = "3")]
    pub timers: BTreeMap<String, TimerInfo>,
    #[prost(btree_map = "int64, message", tag = "4")]
    pub children: BTreeMap<i64, ChildInfo>,
    #[prost(btree_map = "int64, message", tag = "5")]
    pub signals_out: BTreeMap<i64, ExternalInfo>,
    #[prost(btree_map = "int64, message", tag = "6")]
    pub cancels_out: BTreeMap<i64, ExternalInfo>,
    #[prost(message, optional, tag = "7")]
    pub workflow_task: Option<WorkflowTaskInfo>,
    /// Events that arrived while a workflow task was started; written when it finishes.
    #[prost(message, repeated, tag = "8")]
    pub buffered_events: Vec<HistoryEvent>,
    /// Workflow updates accepted on this run (completed or not), by update id. Updates that are
    /// only admitted live in the history service's memory; rejected ones are never stored.
    #[prost(btree_map = "string, message", tag = "9")]
    pub updates: BTreeMap<String, UpdateInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateInfo {
    #[prost(int64, tag = "1")]
    pub accepted_event_id: i64,
    /// 0 until the worker's response is written; its outcome is read from that event.
    #[prost(int64, tag = "2")]
    pub completed_event_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionInfo {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(string, tag = "4")]
    pub first_execution_run_id: String,
    #[prost(string, tag = "5")]
    pub workflow_type: String,
    #[prost(string, tag = "6")]
    pub task_queue: String,
    /// `WorkflowExecutionStatus` value.
    #[prost(int32, tag = "7")]
    pub status: i32,
    #[prost(int64, tag = "8")]
    pub start_time_ms: i64,
    #[prost(int64, tag = "9")]
    pub execution_time_ms: i64,
    #[prost(int64, tag = "10")]
    pub close_time_ms: i64,
    #[prost(int64, tag = "11")]
    pub run_timeout_ms: i64,
    #[prost(int64, tag = "12")]
    pub execution_timeout_ms: i64,
    #[prost(int64, tag = "13")]
    pub workflow_task_timeout_ms: i64,
    /// Absolute end of the run (0: none).
    #[prost(int64, tag = "14")]
    pub run_expiration_ms: i64,
    /// Absolute end of the whole chain (0: none).
    #[prost(int64, tag = "15")]
    pub execution_expiration_ms: i64,
    #[prost(message, optional, tag = "16")]
    pub started: Option<WorkflowExecutionStartedEventAttributes>,
    #[prost(message, optional, tag = "17")]
    pub memo: Option<Memo>,
    #[prost(message, optional, tag = "18")]
    pub search_attributes: Option<SearchAttributes>,
    #[prost(bool, tag = "19")]
    pub cancel_requested: bool,
    #[prost(int64, tag = "20")]
    pub signal_count: i64,
    /// Request ids that acted on this run, with the event type each produced.
    #[prost(btree_map = "string, int32", tag = "21")]
    pub request_ids: BTreeMap<String, i32>,
    #[prost(int64, tag = "22")]
    pub next_event_id: i64,
    /// Started event of the last completed workflow task (0: none).
    #[prost(int64, tag = "23")]
    pub last_completed_wft_started_id: i64,
    #[prost(int64, tag = "24")]
    pub history_size_bytes: i64,
    #[prost(string, tag = "25")]
    pub sticky_task_queue: String,
    #[prost(int64, tag = "26")]
    pub sticky_schedule_to_start_ms: i64,
    #[prost(message, optional, tag = "27")]
    pub close_event: Option<HistoryEvent>,
    #[prost(string, tag = "28")]
    pub start_request_id: String,
    /// The run a close event hands over to (continue-as-new, retry, cron).
    #[prost(string, tag = "29")]
    pub new_execution_run_id: String,
    /// True while a first-workflow-task backoff is pending.
    #[prost(bool, tag = "30")]
    pub backoff_pending: bool,
    #[prost(int64, tag = "31")]
    pub last_event_task_id: i64,
    /// Result of the last successful run of the chain (cron), passed to the next run.
    #[prost(message, optional, tag = "32")]
    pub last_completion_result: Option<Payloads>,
    /// The summary and details the starter attached to the run, returned as given.
    #[prost(message, optional, tag = "33")]
    pub user_metadata: Option<UserMetadata>,
    /// The build id stamp and deployment name of the last completed workflow task.
    #[prost(message, optional, tag = "34")]
    pub most_recent_worker_version_stamp: Option<WorkerVersionStamp>,
    #[prost(string, tag = "35")]
    pub worker_deployment_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTaskInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    /// 0 until a poller starts the task.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(int64, tag = "4")]
    pub scheduled_time_ms: i64,
    #[prost(int64, tag = "5")]
    pub started_time_ms: i64,
    #[prost(string, tag = "6")]
    pub task_queue: String,
    /// `TaskQueueKind` value of the queue it was scheduled on.
    #[prost(int32, tag = "7")]
    pub task_queue_kind: i32,
    #[prost(int64, tag = "8")]
    pub timeout_ms: i64,
    #[prost(string, tag = "9")]
    pub request_id: String,
    #[prost(string, tag = "10")]
    pub identity: String,
    /// A retried task whose scheduled/started events are not in history yet.
    #[prost(bool, tag = "11")]
    pub transient: bool,
    #[prost(int64, tag = "12")]
    pub original_scheduled_time_ms: i64,
    #[prost(int64, tag = "13")]
    pub history_size_bytes: i64,
    /// `SuggestContinueAsNewReason` values given when a transient task was started.
    #[prost(int32, repeated, tag = "14")]
    pub suggest_continue_as_new_reasons: Vec<i32>,
    /// The build id stamp of the worker that started a transient task.
    #[prost(message, optional, tag = "15")]
    pub worker_version: Option<WorkerVersionStamp>,
    /// A task created only to carry workflow updates (with `transient`: its events are not in
    /// history). If the worker rejects every update and sends no command, it leaves no trace;
    /// otherwise, or when anything else happens to the run first, its events are written.
    #[prost(bool, tag = "16")]
    pub speculative: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(message, optional, tag = "2")]
    pub scheduled: Option<ActivityTaskScheduledEventAttributes>,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(int64, tag = "4")]
    pub first_scheduled_time_ms: i64,
    #[prost(int64, tag = "5")]
    pub scheduled_time_ms: i64,
    /// 0 while not started.
    #[prost(int64, tag = "6")]
    pub started_time_ms: i64,
    #[prost(string, tag = "7")]
    pub request_id: String,
    #[prost(string, tag = "8")]
    pub identity: String,
    #[prost(int64, tag = "9")]
    pub last_heartbeat_ms: i64,
    #[prost(message, optional, tag = "10")]
    pub heartbeat_details: Option<Payloads>,
    #[prost(message, optional, tag = "11")]
    pub last_failure: Option<Failure>,
    #[prost(bool, tag = "12")]
    pub cancel_requested: bool,
    #[prost(int64, tag = "13")]
    pub cancel_requested_event_id: i64,
    /// Set when the started event has been written (replay, or buffered with the outcome).
    #[prost(int64, tag = "14")]
    pub started_event_id: i64,
    #[prost(string, tag = "15")]
    pub activity_id: String,
    #[prost(string, tag = "16")]
    pub task_queue: String,
    #[prost(int64, tag = "17")]
    pub schedule_to_start_ms: i64,
    #[prost(int64, tag = "18")]
    pub schedule_to_close_ms: i64,
    #[prost(int64, tag = "19")]
    pub start_to_close_ms: i64,
    #[prost(int64, tag = "20")]
    pub heartbeat_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimerInfo {
    #[prost(string, tag = "1")]
    pub timer_id: String,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int64, tag = "3")]
    pub expiry_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildInfo {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    /// 0 until the child has started.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(string, tag = "5")]
    pub namespace: String,
    #[prost(message, optional, tag = "6")]
    pub initiated: Option<StartChildWorkflowExecutionInitiatedEventAttributes>,
    #[prost(string, tag = "7")]
    pub create_request_id: String,
    /// The metadata of the command that started the child, which its own run carries.
    #[prost(message, optional, tag = "8")]
    pub user_metadata: Option<UserMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExternalInfo {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub request_id: String,
    #[prost(message, optional, tag = "3")]
    pub signal: Option<SignalExternalWorkflowExecutionInitiatedEventAttributes>,
    #[prost(message, optional, tag = "4")]
    pub cancel: Option<RequestCancelExternalWorkflowExecutionInitiatedEventAttributes>,
}

impl MutableState {
    pub fn info(&self) -> &ExecutionInfo {
        self.info
            .as_ref()
            .expect("mutable state always carries execution info")
    }

    pub fn info_mut(&mut self) -> &mut ExecutionInfo {
        self.info
            .as_mut()
            .expect("mutable state always carries execution info")
    }

    pub fn is_running(&self) -> bool {
        self.info().status == sundial_proto::api::enums::v1::WorkflowExecutionStatus::Running as i32
    }

    /// The started workflow task, if one is in flight.
    pub fn started_workflow_task(&self) -> Option<&WorkflowTaskInfo> {
        self.workflow_task
            .as_ref()
            .filter(|task| task.started_event_id > 0)
    }
}
