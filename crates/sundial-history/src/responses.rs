//! Building API responses from mutable state and stored history.

use prost::Message;
use sundial_common::{Error, Result, WorkflowKey};
use sundial_history_core::state::MutableState;
use sundial_history_core::util::{present_duration, timestamp};
use sundial_proto::api::activity::v1::ActivityOptions;
use sundial_proto::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use sundial_proto::api::enums::v1::{PendingActivityState, TaskQueueKind};
use sundial_proto::api::history::v1::HistoryEvent;
use sundial_proto::api::taskqueue::v1::TaskQueue;
use sundial_proto::api::workflow::v1 as wf;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::prost_types::Timestamp;

use crate::engine::Inner;

pub(crate) const MAX_PAGE_SIZE: usize = 256;

/// Go's zero `time.Time` in Unix seconds, which Temporal writes for an unset expiration time.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Where a history read continues.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoryToken {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(int64, tag = "2")]
    pub next_event_id: i64,
}

impl HistoryToken {
    pub(crate) fn parse(bytes: &[u8], run_id: &str) -> Result<Option<HistoryToken>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let token =
            HistoryToken::decode(bytes).map_err(|_| Error::invalid("Invalid NextPageToken."))?;
        if token.run_id != run_id || token.next_event_id < 1 {
            return Err(Error::invalid("Invalid NextPageToken."));
        }
        Ok(Some(token))
    }
}

/// Reads events `[from, to)` one page at a time; returns the page and the token for the rest.
pub(crate) async fn read_page(
    inner: &Inner,
    key: &WorkflowKey,
    from: i64,
    to: i64,
    page_size: usize,
) -> Result<(Vec<HistoryEvent>, Vec<u8>)> {
    if from >= to {
        return Ok((Vec::new(), Vec::new()));
    }
    let events = inner.read_events(key, from, to, page_size).await?;
    let last = events
        .last()
        .map(|event| event.event_id)
        .unwrap_or(from - 1);
    let token = if last + 1 < to {
        HistoryToken {
            run_id: key.run_id.clone(),
            next_event_id: last + 1,
        }
        .encode_to_vec()
    } else {
        Vec::new()
    };
    Ok((events, token))
}

pub(crate) fn normal_task_queue(state: &MutableState) -> TaskQueue {
    TaskQueue {
        name: state.info().task_queue.clone(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}

pub(crate) fn execution(state: &MutableState) -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: state.info().workflow_id.clone(),
        run_id: state.info().run_id.clone(),
    }
}

pub(crate) fn workflow_type(state: &MutableState) -> WorkflowType {
    WorkflowType {
        name: state.info().workflow_type.clone(),
    }
}

pub(crate) fn execution_info(state: &MutableState) -> wf::WorkflowExecutionInfo {
    let info = state.info();
    let started = info.started.clone().unwrap_or_default();
    wf::WorkflowExecutionInfo {
        execution: Some(execution(state)),
        r#type: Some(workflow_type(state)),
        start_time: timestamp(info.start_time_ms),
        close_time: if info.close_time_ms > 0 {
            timestamp(info.close_time_ms)
        } else {
            None
        },
        status: info.status,
        history_length: info.next_event_id - 1,
        parent_namespace_id: started.parent_workflow_namespace_id.clone(),
        parent_execution: started.parent_workflow_execution.clone(),
        execution_time: timestamp(info.execution_time_ms),
        memo: Some(info.memo.clone().unwrap_or_default()),
        // Temporal sends these messages even when they are empty, and the Go SDK reads
        // them without checking.
        search_attributes: Some(info.search_attributes.clone().unwrap_or_default()),
        auto_reset_points: Some(Default::default()),
        task_queue: info.task_queue.clone(),
        history_size_bytes: info.history_size_bytes,
        execution_duration: if info.close_time_ms > 0 {
            present_duration(info.close_time_ms - info.execution_time_ms)
        } else {
            None
        },
        root_execution: started
            .root_workflow_execution
            .clone()
            .or_else(|| Some(execution(state))),
        first_run_id: info.first_execution_run_id.clone(),
        most_recent_worker_version_stamp: info.most_recent_worker_version_stamp.clone(),
        worker_deployment_name: info.worker_deployment_name.clone(),
        ..Default::default()
    }
}

pub(crate) fn describe(state: &MutableState) -> ws::DescribeWorkflowExecutionResponse {
    let info = state.info();
    let started = info.started.clone().unwrap_or_default();
    let pending_activities = state
        .activities
        .values()
        .map(|activity| {
            let scheduled = activity.scheduled.clone().unwrap_or_default();
            let activity_state = if activity.cancel_requested {
                PendingActivityState::CancelRequested
            } else if activity.started_time_ms > 0 {
                PendingActivityState::Started
            } else {
                PendingActivityState::Scheduled
            };
            wf::PendingActivityInfo {
                activity_id: activity.activity_id.clone(),
                activity_type: scheduled
                    .activity_type
                    .clone()
                    .or(Some(ActivityType::default())),
                state: activity_state as i32,
                heartbeat_details: activity.heartbeat_details.clone(),
                last_heartbeat_time: if activity.last_heartbeat_ms > 0 {
                    timestamp(activity.last_heartbeat_ms)
                } else {
                    None
                },
                last_started_time: if activity.started_time_ms > 0 {
                    timestamp(activity.started_time_ms)
                } else {
                    None
                },
                attempt: activity.attempt,
                maximum_attempts: scheduled
                    .retry_policy
                    .as_ref()
                    .map(|p| p.maximum_attempts)
                    .unwrap_or(0),
                scheduled_time: timestamp(activity.scheduled_time_ms),
                expiration_time: if activity.schedule_to_close_ms > 0 {
                    timestamp(activity.first_scheduled_time_ms + activity.schedule_to_close_ms)
                } else {
                    None
                },
                last_failure: activity.last_failure.clone(),
                last_worker_identity: activity.identity.clone(),
                activity_options: Some(ActivityOptions {
                    // Temporal leaves the kind unset here and names the queue twice.
                    task_queue: scheduled.task_queue.clone().map(|queue| TaskQueue {
                        kind: 0,
                        normal_name: queue.name.clone(),
                        ..queue
                    }),
                    schedule_to_close_timeout: scheduled.schedule_to_close_timeout,
                    schedule_to_start_timeout: scheduled.schedule_to_start_timeout,
                    start_to_close_timeout: scheduled.start_to_close_timeout,
                    heartbeat_timeout: scheduled.heartbeat_timeout,
                    retry_policy: scheduled.retry_policy.clone(),
                    priority: scheduled.priority.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let pending_children = state
        .children
        .values()
        .map(|child| {
            let initiated = child.initiated.clone().unwrap_or_default();
            wf::PendingChildExecutionInfo {
                workflow_id: child.workflow_id.clone(),
                run_id: child.run_id.clone(),
                workflow_type_name: initiated.workflow_type.map(|t| t.name).unwrap_or_default(),
                initiated_id: child.initiated_event_id,
                parent_close_policy: initiated.parent_close_policy,
            }
        })
        .collect();
    let pending_workflow_task =
        state
            .workflow_task
            .as_ref()
            .map(|task| wf::PendingWorkflowTaskInfo {
                state: if task.started_event_id > 0 { 2 } else { 1 },
                scheduled_time: timestamp(task.scheduled_time_ms),
                original_scheduled_time: timestamp(task.original_scheduled_time_ms),
                started_time: if task.started_event_id > 0 {
                    timestamp(task.started_time_ms)
                } else {
                    None
                },
                attempt: task.attempt,
            });
    ws::DescribeWorkflowExecutionResponse {
        execution_config: Some(wf::WorkflowExecutionConfig {
            task_queue: Some(normal_task_queue(state)),
            workflow_execution_timeout: started.workflow_execution_timeout,
            workflow_run_timeout: started.workflow_run_timeout,
            default_workflow_task_timeout: started.workflow_task_timeout,
            user_metadata: info.user_metadata.clone(),
        }),
        workflow_execution_info: Some(execution_info(state)),
        pending_activities,
        pending_children,
        pending_workflow_task,
        workflow_extended_info: Some(wf::WorkflowExecutionExtendedInfo {
            execution_expiration_time: if info.execution_expiration_ms > 0 {
                timestamp(info.execution_expiration_ms)
            } else {
                None
            },
            // Without a run timeout Temporal reports Go's zero time (0001-01-01T00:00:00Z).
            run_expiration_time: if info.run_expiration_ms > 0 {
                timestamp(info.run_expiration_ms)
            } else {
                Some(Timestamp {
                    seconds: GO_ZERO_TIME_SECONDS,
                    nanos: 0,
                })
            },
            cancel_requested: info.cancel_requested,
            original_start_time: timestamp(info.start_time_ms),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The activity task a worker receives, from a poll or eagerly in a workflow task completion.
pub(crate) fn activity_task(
    key: &WorkflowKey,
    namespace_name: &str,
    workflow_type: &WorkflowType,
    execution: &WorkflowExecution,
    activity: &sundial_history_core::state::ActivityInfo,
) -> ws::PollActivityTaskQueueResponse {
    let scheduled = activity.scheduled.clone().unwrap_or_default();
    let token = sundial_rpc::TaskToken {
        kind: sundial_rpc::TOKEN_ACTIVITY_TASK,
        namespace_id: key.namespace_id.clone(),
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
        scheduled_event_id: activity.scheduled_event_id,
        attempt: activity.attempt,
        activity_id: activity.activity_id.clone(),
        ..Default::default()
    };
    ws::PollActivityTaskQueueResponse {
        task_token: token.encode(),
        workflow_namespace: namespace_name.to_string(),
        workflow_type: Some(workflow_type.clone()),
        workflow_execution: Some(execution.clone()),
        activity_type: scheduled.activity_type,
        activity_id: activity.activity_id.clone(),
        header: scheduled.header,
        input: scheduled.input,
        heartbeat_details: activity.heartbeat_details.clone(),
        scheduled_time: timestamp(activity.first_scheduled_time_ms),
        current_attempt_scheduled_time: timestamp(activity.scheduled_time_ms),
        started_time: timestamp(activity.started_time_ms),
        attempt: activity.attempt,
        schedule_to_close_timeout: scheduled.schedule_to_close_timeout,
        start_to_close_timeout: scheduled.start_to_close_timeout,
        heartbeat_timeout: scheduled.heartbeat_timeout,
        retry_policy: scheduled.retry_policy,
        priority: scheduled.priority,
        ..Default::default()
    }
}
