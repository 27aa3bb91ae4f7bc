//! The contracts between Sundial's services: the `HistoryApi` the frontend calls, the
//! `MatchingApi` that history and the frontend call, and the task token both sides read. The
//! in-process implementations are the service objects themselves; a gRPC implementation of the
//! same traits lets the services run as separate processes.

use std::time::Instant;

use async_trait::async_trait;
use prost::Message;
use sundial_common::{Error, Result};
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::history::v1::HistoryEvent;
use sundial_proto::api::workflowservice::v1 as ws;

/// Opaque to clients; Sundial's own encoding of what a task token names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskToken {
    /// 1: workflow task, 2: activity task, 3: query task.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(int64, tag = "5")]
    pub scheduled_event_id: i64,
    #[prost(int32, tag = "6")]
    pub attempt: i32,
    #[prost(string, tag = "7")]
    pub query_id: String,
    #[prost(string, tag = "8")]
    pub activity_id: String,
    #[prost(int64, tag = "9")]
    pub started_event_id: i64,
    /// When the workflow task was started (Unix ms): a speculative task that vanished and the
    /// one after it have the same ids, and only this tells them apart.
    #[prost(int64, tag = "10")]
    pub started_time_ms: i64,
}

pub const TOKEN_WORKFLOW_TASK: i32 = 1;
pub const TOKEN_ACTIVITY_TASK: i32 = 2;
pub const TOKEN_QUERY_TASK: i32 = 3;

impl TaskToken {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![1u8];
        bytes.extend(self.encode_to_vec());
        bytes
    }

    pub fn decode_token(bytes: &[u8]) -> Result<TaskToken> {
        let malformed = || Error::invalid("error deserializing task token");
        let (&version, body) = bytes.split_first().ok_or_else(malformed)?;
        if version != 1 {
            return Err(malformed());
        }
        let token = TaskToken::decode(body).map_err(|_| malformed())?;
        if token.namespace_id.is_empty()
            || token.workflow_id.is_empty()
            || token.run_id.is_empty()
            || !(1..=3).contains(&token.kind)
        {
            return Err(malformed());
        }
        Ok(token)
    }
}

/// A workflow or activity task waiting in matching: it names the run and the attempt; history
/// decides whether it is still current when a poller takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub scheduled_event_id: i64,
    pub attempt: i32,
}

/// What a workflow-task poller receives from matching.
#[derive(Debug, Clone)]
pub enum WorkflowTaskMatch {
    Task(TaskRef),
    /// A query-only task, already built by history; matching adds the token.
    Query {
        query_id: String,
        response: Box<ws::PollWorkflowTaskQueueResponse>,
    },
}

/// A query answered by a worker.
#[derive(Debug, Clone)]
pub enum QueryAnswer {
    Answered(Option<sundial_proto::api::common::v1::Payloads>),
    Failed {
        message: String,
        failure: Option<Box<sundial_proto::api::failure::v1::Failure>>,
    },
    /// The worker answered, but the answer cannot be returned (over the blob size limit): the
    /// caller gets InvalidArgument with this message.
    Refused(String),
}

/// Matching as history and the frontend call it. Every call can fail (`Unavailable` when
/// matching cannot be reached), so that a network can come between the services: history keeps
/// a task whose add failed and adds it again, and a failed poll reaches the worker as an error.
#[async_trait]
pub trait MatchingApi: Send + Sync + 'static {
    /// Queues a workflow task. For a sticky queue whose worker has not polled recently, the
    /// task is refused (`Ok(false)`) so history can send it to the normal queue instead.
    async fn add_workflow_task(
        &self,
        task_queue: &str,
        task: TaskRef,
        sticky: bool,
    ) -> Result<bool>;
    async fn add_activity_task(&self, task_queue: &str, task: TaskRef) -> Result<()>;
    /// Waits for a workflow task until `deadline`; `None` means the poll ends empty.
    async fn poll_workflow_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        sticky: bool,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<WorkflowTaskMatch>>;
    async fn poll_activity_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<TaskRef>>;
    /// Hands a query task to a poller of the queue and waits for the answer until `deadline`.
    async fn query(
        &self,
        namespace_id: &str,
        task_queue: &str,
        response: ws::PollWorkflowTaskQueueResponse,
        deadline: Instant,
    ) -> Result<QueryAnswer>;
    async fn respond_query(&self, query_id: &str, answer: QueryAnswer) -> Result<()>;
    /// Ends the polls waiting on a worker's sticky queue.
    async fn shutdown_worker(&self, namespace_id: &str, sticky_task_queue: &str) -> Result<()>;
    /// Every partition of a queue (root first), for DescribeTaskQueue.
    async fn describe_task_queue(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<Vec<PartitionDescription>>;
    /// How many partitions polls of a queue are spread over now (ListTaskQueuePartitions).
    async fn read_partitions(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<usize>;
}

/// One partition of a task queue as matching sees it.
#[derive(Debug, Clone, Default)]
pub struct PartitionDescription {
    /// 0 is the root partition, named like the queue; partition n is `/_sys/<queue>/<n>`.
    pub index: usize,
    /// Pollers that polled this partition in the last five minutes.
    pub pollers: Vec<sundial_proto::api::taskqueue::v1::PollerInfo>,
    /// Tasks waiting in this partition for a poller.
    pub backlog: i64,
    /// Tasks ever added to this partition since the process started.
    pub added: i64,
    /// When the oldest waiting task was added.
    pub oldest_backlog: Option<std::time::SystemTime>,
}

/// The name of partition `index` of `task_queue`, as Temporal spells it.
pub fn partition_name(task_queue: &str, index: usize) -> String {
    if index == 0 {
        task_queue.to_string()
    } else {
        format!("/_sys/{task_queue}/{index}")
    }
}

/// Splits a partition name into its queue and index; a plain name is partition 0.
pub fn parse_partition_name(name: &str) -> (&str, usize) {
    if let Some(rest) = name.strip_prefix("/_sys/")
        && let Some((queue, index)) = rest.rsplit_once('/')
        && let Ok(index) = index.parse::<usize>()
        && !queue.is_empty()
    {
        return (queue, index);
    }
    (name, 0)
}

/// The namespace a request is for, resolved by the frontend.
#[derive(Debug, Clone)]
pub struct NamespaceRef {
    pub id: String,
    pub name: String,
}

/// The parent of a child run being started (what Temporal's history service receives as
/// `ParentExecutionInfo`).
#[derive(Debug, Clone)]
pub struct ParentExecutionInfo {
    pub namespace_id: String,
    pub namespace: String,
    pub execution: WorkflowExecution,
    pub initiated_event_id: i64,
    /// The root of the parent's tree; the parent itself when it has no parent.
    pub root: Option<WorkflowExecution>,
}

/// How one operation of an update-with-start ended when the whole did not succeed.
#[derive(Debug, Clone)]
pub enum OperationStatus {
    /// It was done (the start, when only the update failed).
    Ok,
    /// It was not tried because the other operation failed.
    Aborted,
    Failed(Error),
}

/// What update-with-start (`ExecuteMultiOperation` with a start and an update) did.
#[derive(Debug, Clone)]
pub enum UpdateWithStart {
    Done {
        start: Box<ws::StartWorkflowExecutionResponse>,
        update: Box<ws::UpdateWorkflowExecutionResponse>,
    },
    Failed {
        start: OperationStatus,
        update: OperationStatus,
    },
}

#[async_trait]
pub trait HistoryApi: Send + Sync + 'static {
    async fn start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
    ) -> Result<ws::StartWorkflowExecutionResponse>;
    async fn signal_with_start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWithStartWorkflowExecutionRequest,
    ) -> Result<ws::SignalWithStartWorkflowExecutionResponse>;
    async fn signal_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
    ) -> Result<()>;
    async fn request_cancel_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
    ) -> Result<()>;
    async fn terminate_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::TerminateWorkflowExecutionRequest,
    ) -> Result<()>;
    async fn describe_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::DescribeWorkflowExecutionRequest,
    ) -> Result<ws::DescribeWorkflowExecutionResponse>;
    async fn get_workflow_execution_history(
        &self,
        namespace: &NamespaceRef,
        request: ws::GetWorkflowExecutionHistoryRequest,
        deadline: Instant,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse>;
    async fn query_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<ws::QueryWorkflowResponse>;

    /// Admits a workflow update (or joins the one with its id) and waits, at most until the
    /// server's long-poll interval or `deadline`, for the stage the request asks for.
    async fn update_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<ws::UpdateWorkflowExecutionResponse>;
    /// Update-with-start: applies the update to the workflow's running run when the start
    /// would not make a new one (the same start request, policy USE_EXISTING, or the update
    /// already known there), else starts a run with the update admitted before it is written.
    /// Waits as `update_workflow_execution` waits.
    async fn update_with_start(
        &self,
        namespace: &NamespaceRef,
        start: ws::StartWorkflowExecutionRequest,
        update: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<UpdateWithStart>;
    /// Waits for an update that was admitted before, as `update_workflow_execution` waits.
    async fn poll_workflow_execution_update(
        &self,
        namespace: &NamespaceRef,
        request: ws::PollWorkflowExecutionUpdateRequest,
        deadline: Instant,
    ) -> Result<ws::PollWorkflowExecutionUpdateResponse>;

    /// A poller took this workflow task from matching: record it started and build the response.
    async fn record_workflow_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollWorkflowTaskQueueRequest,
    ) -> Result<ws::PollWorkflowTaskQueueResponse>;
    async fn respond_workflow_task_completed(
        &self,
        namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskCompletedRequest,
    ) -> Result<ws::RespondWorkflowTaskCompletedResponse>;
    async fn reset_sticky_task_queue(
        &self,
        namespace: &NamespaceRef,
        execution: sundial_proto::api::common::v1::WorkflowExecution,
    ) -> Result<()>;
    async fn respond_workflow_task_failed(
        &self,
        namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskFailedRequest,
    ) -> Result<()>;

    async fn record_activity_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollActivityTaskQueueRequest,
    ) -> Result<ws::PollActivityTaskQueueResponse>;
    async fn record_activity_task_heartbeat(
        &self,
        token: TaskToken,
        details: Option<sundial_proto::api::common::v1::Payloads>,
    ) -> Result<ws::RecordActivityTaskHeartbeatResponse>;
    async fn respond_activity_task_completed(
        &self,
        token: TaskToken,
        result: Option<sundial_proto::api::common::v1::Payloads>,
        identity: String,
    ) -> Result<()>;
    async fn respond_activity_task_failed(
        &self,
        token: TaskToken,
        failure: sundial_proto::api::failure::v1::Failure,
        last_heartbeat_details: Option<sundial_proto::api::common::v1::Payloads>,
        identity: String,
    ) -> Result<()>;
    async fn respond_activity_task_canceled(
        &self,
        token: TaskToken,
        details: Option<sundial_proto::api::common::v1::Payloads>,
        identity: String,
    ) -> Result<()>;
    /// The token of the started attempt of an activity, found by its activity id (the `...ById` RPCs).
    async fn activity_token_by_id(
        &self,
        namespace: &NamespaceRef,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<TaskToken>;

    // Cross-run work: a run's transfer queue asks the owner of another run's shard (which may
    // be another host). Each is idempotent for the request id the caller derives from its
    // initiating event, so a retry after a lost answer changes nothing.

    /// Starts a child run of `parent`.
    async fn start_child_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        parent: ParentExecutionInfo,
    ) -> Result<ws::StartWorkflowExecutionResponse>;
    /// Delivers a signal another workflow (`source`) sent; its event names the sender.
    async fn signal_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
        source: WorkflowExecution,
    ) -> Result<()>;
    /// Requests cancellation on behalf of another workflow (`source`, whose event
    /// `initiated_event_id` asked for it). A target that has closed is `NotFound`.
    async fn request_cancel_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
        source: WorkflowExecution,
        initiated_event_id: i64,
    ) -> Result<()>;
    /// Tells a parent run that its child (started by event `initiated_event_id`) closed with
    /// `close_event` (Temporal's `RecordChildExecutionCompleted`). A parent that has closed or
    /// gone is `NotFound`.
    async fn record_child_execution_completed(
        &self,
        parent_namespace_id: &str,
        parent: WorkflowExecution,
        initiated_event_id: i64,
        child_run_id: String,
        close_event: HistoryEvent,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_garbage() {
        let token = TaskToken {
            kind: TOKEN_ACTIVITY_TASK,
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            scheduled_event_id: 5,
            attempt: 2,
            ..Default::default()
        };
        assert_eq!(TaskToken::decode_token(&token.encode()).unwrap(), token);
        for garbage in [&b""[..], b"\x00", b"\x01\xff\xff", b"hello world"] {
            let error = TaskToken::decode_token(garbage).unwrap_err();
            assert_eq!(error.to_string(), "error deserializing task token");
        }
    }
}
