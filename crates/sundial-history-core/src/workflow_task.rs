//! The workflow task family: scheduling, starting, failing and timing out workflow tasks, the
//! transient task that retries leave out of history, and its synthesized events.

use sundial_common::{Error, Result};
use sundial_proto::api::common::v1::WorkerVersionStamp;
use sundial_proto::api::enums::v1::{
    EventType, SuggestContinueAsNewReason, TaskQueueKind, TimeoutType, WorkflowTaskFailedCause,
};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    HistoryEvent, WorkflowTaskCompletedEventAttributes, WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
};
use sundial_proto::api::taskqueue::v1::TaskQueue;

use crate::apply::event_type_of;
use crate::ctx::{Env, Mutation, Transition};
use crate::state::{MutableState, WorkflowTaskInfo};
use crate::tasks::{Task, TaskType};
use crate::util::{duration, duration_ms, timestamp, timestamp_ms};

pub(crate) fn apply_scheduled(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &WorkflowTaskScheduledEventAttributes,
) {
    let scheduled_ms = timestamp_ms(event.event_time.as_ref());
    let task_queue = attributes.task_queue.clone().unwrap_or_default();
    state.info_mut().backoff_pending = false;
    state.workflow_task = Some(WorkflowTaskInfo {
        scheduled_event_id: event.event_id,
        attempt: attributes.attempt.max(1),
        scheduled_time_ms: scheduled_ms,
        original_scheduled_time_ms: scheduled_ms,
        task_queue: task_queue.name,
        task_queue_kind: task_queue.kind,
        timeout_ms: duration_ms(attributes.start_to_close_timeout.as_ref()),
        ..Default::default()
    });
}

pub(crate) fn apply_started(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &WorkflowTaskStartedEventAttributes,
) {
    if let Some(task) = state.workflow_task.as_mut() {
        task.started_event_id = event.event_id;
        task.started_time_ms = timestamp_ms(event.event_time.as_ref());
        task.request_id = attributes.request_id.clone();
        task.identity = attributes.identity.clone();
    }
}

pub(crate) fn apply_completed(
    state: &mut MutableState,
    attributes: &WorkflowTaskCompletedEventAttributes,
) {
    let info = state.info_mut();
    info.last_completed_wft_started_id = attributes.started_event_id;
    info.most_recent_worker_version_stamp = attributes.worker_version.clone();
    info.worker_deployment_name = attributes.worker_deployment_name.clone();
    state.workflow_task = None;
}

/// Start-to-close timeout of a workflow task attempt: the base timeout for the first three
/// attempts, then growing by 5 s × 2^(attempt−4) up to the retry cap.
fn attempt_timeout_ms(base_ms: i64, attempt: i32, env: &Env) -> i64 {
    if attempt < 4 {
        return base_ms;
    }
    let growth = 5_000i64.saturating_mul(1i64 << (attempt - 4).min(20));
    (base_ms + growth).min(env.limits.workflow_task_retry_max_interval_ms)
}

/// Schedules a workflow task. Attempt 1 is written to history; a retry (attempt > 1) is
/// transient: it reserves the next event ids and is written only if it completes.
pub(crate) fn schedule(mutation: &mut Mutation, attempt: i32) {
    let info = mutation.state.info();
    let normal_queue = info.task_queue.clone();
    let sticky = !info.sticky_task_queue.is_empty();
    let sticky_timeout_ms = info.sticky_schedule_to_start_ms;
    let (task_queue, kind, normal_name) = if sticky {
        (
            info.sticky_task_queue.clone(),
            TaskQueueKind::Sticky,
            normal_queue.clone(),
        )
    } else {
        (normal_queue.clone(), TaskQueueKind::Normal, String::new())
    };
    let timeout_ms = attempt_timeout_ms(info.workflow_task_timeout_ms, attempt, mutation.env);
    let now = mutation.now();
    let scheduled_event_id;
    if attempt <= 1 {
        scheduled_event_id = mutation.add(Attributes::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(TaskQueue {
                    name: task_queue.clone(),
                    kind: kind as i32,
                    normal_name: normal_name.clone(),
                }),
                start_to_close_timeout: duration(timeout_ms),
                attempt: 1,
            },
        ));
    } else {
        scheduled_event_id = mutation.state.info().next_event_id;
        mutation.state.workflow_task = Some(WorkflowTaskInfo {
            scheduled_event_id,
            attempt,
            scheduled_time_ms: now,
            original_scheduled_time_ms: now,
            task_queue: task_queue.clone(),
            task_queue_kind: kind as i32,
            timeout_ms,
            transient: true,
            ..Default::default()
        });
    }
    let mut task = Task::new(TaskType::WorkflowTask, now, scheduled_event_id);
    task.attempt = attempt.max(1);
    task.task_queue = task_queue;
    task.sticky = sticky;
    task.normal_task_queue = normal_queue;
    mutation.task(task);
    if sticky && sticky_timeout_ms > 0 {
        let mut timeout = Task::new(
            TaskType::WorkflowTaskTimeout,
            now + sticky_timeout_ms,
            scheduled_event_id,
        );
        timeout.attempt = attempt.max(1);
        timeout.timeout_type = TimeoutType::ScheduleToStart as i32;
        mutation.task(timeout);
    }
}

/// How long a speculative task waits on a normal queue for a poller before it is written to
/// history and timed out (Temporal's constant; a sticky queue uses the sticky timeout).
pub const SPECULATIVE_SCHEDULE_TO_START_MS: i64 = 5_000;

/// Schedules a speculative task: one that exists to carry workflow updates to the worker. Like a
/// transient task it reserves the next event ids without writing them; unlike one, it is
/// attempt 1 and always has a schedule-to-start timeout.
pub(crate) fn schedule_speculative(mutation: &mut Mutation) {
    let info = mutation.state.info();
    let normal_queue = info.task_queue.clone();
    let sticky = !info.sticky_task_queue.is_empty();
    let (task_queue, kind, to_start_ms) = if sticky {
        (
            info.sticky_task_queue.clone(),
            TaskQueueKind::Sticky,
            info.sticky_schedule_to_start_ms,
        )
    } else {
        (
            normal_queue.clone(),
            TaskQueueKind::Normal,
            SPECULATIVE_SCHEDULE_TO_START_MS,
        )
    };
    let timeout_ms = attempt_timeout_ms(info.workflow_task_timeout_ms, 1, mutation.env);
    let scheduled_event_id = info.next_event_id;
    let now = mutation.now();
    mutation.state.workflow_task = Some(WorkflowTaskInfo {
        scheduled_event_id,
        attempt: 1,
        scheduled_time_ms: now,
        original_scheduled_time_ms: now,
        task_queue: task_queue.clone(),
        task_queue_kind: kind as i32,
        timeout_ms,
        transient: true,
        speculative: true,
        ..Default::default()
    });
    let mut task = Task::new(TaskType::WorkflowTask, now, scheduled_event_id);
    task.attempt = 1;
    task.task_queue = task_queue;
    task.sticky = sticky;
    task.normal_task_queue = normal_queue;
    mutation.task(task);
    if to_start_ms > 0 {
        let mut timeout = Task::new(
            TaskType::WorkflowTaskTimeout,
            now + to_start_ms,
            scheduled_event_id,
        );
        timeout.attempt = 1;
        timeout.timeout_type = TimeoutType::ScheduleToStart as i32;
        mutation.task(timeout);
    }
}

/// A speculative task about to carry updates (`admit`): the run's next workflow task, created
/// now when none is pending. Nothing is created during a first-task backoff: the update rides
/// on the first task.
pub fn schedule_for_update(state: &mut MutableState, env: &Env) -> Transition {
    if !state.is_running() || state.workflow_task.is_some() || state.info().backoff_pending {
        return Transition::default();
    }
    let mut mutation = Mutation::new(state, env);
    schedule_speculative(&mut mutation);
    mutation.finish()
}

/// The poller that takes a workflow task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Poller<'a> {
    pub request_id: &'a str,
    pub identity: &'a str,
    /// Polled the run's sticky queue.
    pub sticky: bool,
    /// The build id the worker reports (`worker_version_capabilities`), stamped into the started
    /// event as Temporal does for workers that are not on worker-deployment versioning.
    pub worker_version: Option<&'a WorkerVersionStamp>,
}

/// What a poller needs to build its response after a workflow task was started.
#[derive(Debug, Clone, Default)]
pub struct RecordedWorkflowTask {
    pub transition: Transition,
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub attempt: i32,
    pub previous_started_event_id: i64,
    pub scheduled_time_ms: i64,
    pub started_time_ms: i64,
    /// Events 1..=started_event_id that are durable (the transient pair is added separately).
    pub next_event_id: i64,
    /// Started from the sticky queue: the worker gets history after `previous_started_event_id`.
    pub partial_history: bool,
}

/// A poller took the workflow task. Repeating it with the same request id rebuilds the same
/// answer; another request id means the task already went to someone else.
pub fn record_workflow_task_started(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    poller: Poller,
) -> Result<RecordedWorkflowTask> {
    let Poller {
        request_id,
        identity,
        sticky: sticky_poll,
        worker_version,
    } = poller;
    if !state.is_running() {
        return Err(Error::not_found("workflow execution already completed"));
    }
    let Some(task) = state.workflow_task.clone() else {
        return Err(Error::not_found("Workflow task not found."));
    };
    if task.scheduled_event_id != scheduled_event_id || task.attempt != attempt {
        return Err(Error::not_found("Workflow task not found."));
    }
    let previous_started_event_id = state.info().last_completed_wft_started_id;
    let task_is_sticky = task.task_queue_kind == TaskQueueKind::Sticky as i32;
    if sticky_poll && !task_is_sticky {
        // The run moved to its normal queue: a sticky poller must not take the task.
        return Err(Error::not_found("Workflow task not found."));
    }
    if task.started_event_id > 0 {
        if task.request_id == request_id {
            return Ok(RecordedWorkflowTask {
                transition: Transition::default(),
                scheduled_event_id,
                started_event_id: task.started_event_id,
                attempt: task.attempt,
                previous_started_event_id,
                scheduled_time_ms: task.scheduled_time_ms,
                started_time_ms: task.started_time_ms,
                next_event_id: state.info().next_event_id,
                partial_history: sticky_poll,
            });
        }
        return Err(Error::Conflict("workflow task already started".into()));
    }
    let mut mutation = Mutation::new(state, env);
    let now = mutation.now();
    if task_is_sticky && !sticky_poll {
        // Taken from the normal queue (no sticky poller): the worker is no longer sticky.
        let info = mutation.state.info_mut();
        info.sticky_task_queue.clear();
        info.sticky_schedule_to_start_ms = 0;
    }
    let started_event_id;
    let reasons = continue_as_new_reasons(mutation.state, env);
    if task.transient {
        started_event_id = scheduled_event_id + 1;
        let history_size = mutation.state.info().history_size_bytes;
        let current = mutation
            .state
            .workflow_task
            .as_mut()
            .expect("checked above");
        current.started_event_id = started_event_id;
        current.started_time_ms = now;
        current.request_id = request_id.to_string();
        current.identity = identity.to_string();
        current.history_size_bytes = history_size;
        current.suggest_continue_as_new_reasons = reasons;
        current.worker_version = worker_version.cloned();
    } else {
        let history_size_bytes = mutation.state.info().history_size_bytes;
        started_event_id = mutation.add(Attributes::WorkflowTaskStartedEventAttributes(
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id,
                identity: identity.to_string(),
                request_id: request_id.to_string(),
                suggest_continue_as_new: !reasons.is_empty(),
                suggest_continue_as_new_reasons: reasons,
                history_size_bytes,
                worker_version: worker_version.cloned(),
                ..Default::default()
            },
        ));
    }
    let mut timeout = Task::new(
        TaskType::WorkflowTaskTimeout,
        now + task.timeout_ms,
        scheduled_event_id,
    );
    timeout.attempt = task.attempt;
    timeout.timeout_type = TimeoutType::StartToClose as i32;
    mutation.task(timeout);
    let next_event_id = mutation.state.info().next_event_id;
    Ok(RecordedWorkflowTask {
        transition: mutation.finish(),
        scheduled_event_id,
        started_event_id,
        attempt: task.attempt,
        previous_started_event_id,
        scheduled_time_ms: task.scheduled_time_ms,
        started_time_ms: now,
        next_event_id,
        partial_history: sticky_poll,
    })
}

/// Why the worker should continue as new, as the started event tells it: the history's size in
/// bytes and its length (the started event's id) against the namespace's suggestion limits, in
/// Temporal's order.
fn continue_as_new_reasons(state: &MutableState, env: &Env) -> Vec<i32> {
    let info = state.info();
    let mut reasons = Vec::new();
    if info.history_size_bytes >= env.limits.history_size_suggest_continue_as_new {
        reasons.push(SuggestContinueAsNewReason::HistorySizeTooLarge as i32);
    }
    if info.next_event_id >= env.limits.history_count_suggest_continue_as_new {
        reasons.push(SuggestContinueAsNewReason::TooManyHistoryEvents as i32);
    }
    reasons
}

/// The scheduled and started events of a transient workflow task, which are shown to pollers
/// and history readers but are not durable until the task completes.
pub fn history_suffix_for_transient(state: &MutableState) -> Vec<HistoryEvent> {
    let Some(task) = state.workflow_task.as_ref().filter(|task| task.transient) else {
        return Vec::new();
    };
    let mut events = vec![scheduled_event(task)];
    if task.started_event_id > 0 {
        events.push(started_event(task));
    }
    events
}

fn scheduled_event(task: &WorkflowTaskInfo) -> HistoryEvent {
    let attributes =
        Attributes::WorkflowTaskScheduledEventAttributes(WorkflowTaskScheduledEventAttributes {
            task_queue: Some(TaskQueue {
                name: task.task_queue.clone(),
                kind: task.task_queue_kind,
                normal_name: String::new(),
            }),
            start_to_close_timeout: duration(task.timeout_ms),
            attempt: task.attempt,
        });
    HistoryEvent {
        event_id: task.scheduled_event_id,
        event_time: timestamp(task.scheduled_time_ms),
        event_type: event_type_of(&attributes) as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

fn started_event(task: &WorkflowTaskInfo) -> HistoryEvent {
    let attributes =
        Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
            scheduled_event_id: task.scheduled_event_id,
            identity: task.identity.clone(),
            request_id: task.request_id.clone(),
            history_size_bytes: task.history_size_bytes,
            suggest_continue_as_new: !task.suggest_continue_as_new_reasons.is_empty(),
            suggest_continue_as_new_reasons: task.suggest_continue_as_new_reasons.clone(),
            worker_version: task.worker_version.clone(),
            ..Default::default()
        });
    HistoryEvent {
        event_id: task.started_event_id,
        event_time: timestamp(task.started_time_ms),
        event_type: EventType::WorkflowTaskStarted as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

/// Writes the events of a transient task that is completing, so the completion can follow them.
pub(crate) fn materialize_transient(mutation: &mut Mutation) {
    let Some(task) = mutation
        .state
        .workflow_task
        .clone()
        .filter(|task| task.transient)
    else {
        return;
    };
    let mut events = vec![scheduled_event(&task)];
    if task.started_event_id > 0 {
        events.push(started_event(&task));
    }
    for event in &mut events {
        let info = mutation.state.info_mut();
        info.last_event_task_id += 1;
        event.task_id = info.last_event_task_id;
        info.next_event_id = event.event_id + 1;
        mutation.out.events.push(event.clone());
    }
    if let Some(current) = mutation.state.workflow_task.as_mut() {
        current.transient = false;
        current.speculative = false;
    }
}

/// Checks that a completion or failure is for the started workflow task.
pub(crate) fn require_started(
    state: &MutableState,
    scheduled_event_id: i64,
    attempt: i32,
) -> Result<WorkflowTaskInfo> {
    if !state.is_running() {
        return Err(Error::not_found("Workflow task not found."));
    }
    match state.started_workflow_task() {
        Some(task) if task.scheduled_event_id == scheduled_event_id && task.attempt == attempt => {
            Ok(task.clone())
        }
        _ => Err(Error::not_found("Workflow task not found.")),
    }
}

/// Fails the started workflow task. A transient task fails silently; otherwise the failed
/// event is written. Buffered events are flushed by the caller.
pub(crate) fn fail_started(
    mutation: &mut Mutation,
    cause: WorkflowTaskFailedCause,
    failure: Option<Failure>,
    identity: String,
) {
    let Some(task) = mutation.state.started_workflow_task().cloned() else {
        return;
    };
    if task.speculative {
        // A failed speculative task is written to history, and then its failure.
        materialize_transient(mutation);
    } else if task.transient {
        mutation.state.workflow_task = None;
        return;
    }
    mutation.add(Attributes::WorkflowTaskFailedEventAttributes(
        WorkflowTaskFailedEventAttributes {
            scheduled_event_id: task.scheduled_event_id,
            started_event_id: task.started_event_id,
            cause: cause as i32,
            failure,
            identity,
            ..Default::default()
        },
    ));
}

/// After a failure or timeout: flush what was buffered and schedule the retry. With new events
/// the retry is a fresh attempt 1; otherwise it is the next, transient attempt.
fn retry_after_failure(mutation: &mut Mutation, failed_attempt: i32) {
    let was_sticky = clear_sticky(mutation);
    let before = mutation.out.events.len();
    mutation.flush_buffered();
    let flushed = mutation.out.events.len() > before;
    if !mutation.state.is_running() {
        return;
    }
    if flushed || was_sticky {
        // A failure while sticky starts over at attempt 1 on the normal queue, as Temporal does.
        schedule(mutation, 1);
    } else {
        schedule(mutation, failed_attempt + 1);
    }
}

/// Clears the sticky queue; returns whether one was set.
pub(crate) fn clear_sticky(mutation: &mut Mutation) -> bool {
    let info = mutation.state.info_mut();
    let was_sticky = !info.sticky_task_queue.is_empty();
    info.sticky_task_queue.clear();
    info.sticky_schedule_to_start_ms = 0;
    was_sticky
}

pub fn fail_workflow_task(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    cause: WorkflowTaskFailedCause,
    failure: Option<Failure>,
    identity: String,
) -> Result<Transition> {
    let task = require_started(state, scheduled_event_id, attempt)?;
    let mut mutation = Mutation::new(state, env);
    fail_started(&mut mutation, cause, failure, identity);
    mutation.state.workflow_task = None;
    retry_after_failure(&mut mutation, task.attempt);
    Ok(mutation.finish())
}

/// A failure recorded during completion handling (bad command): fail, flush, retry.
pub(crate) fn fail_in_completion(
    mutation: &mut Mutation,
    cause: WorkflowTaskFailedCause,
    failure: Failure,
    identity: String,
) {
    let attempt = mutation
        .state
        .started_workflow_task()
        .map(|task| task.attempt)
        .unwrap_or(1);
    fail_started(mutation, cause, Some(failure), identity);
    mutation.state.workflow_task = None;
    retry_after_failure(mutation, attempt);
}

pub fn workflow_task_timeout(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    timeout_type: TimeoutType,
) -> Result<Transition> {
    let Some(task) = state.workflow_task.clone() else {
        return Ok(Transition::default());
    };
    if !state.is_running()
        || task.scheduled_event_id != scheduled_event_id
        || task.attempt != attempt
    {
        return Ok(Transition::default());
    }
    if timeout_type == TimeoutType::StartToClose && task.started_event_id == 0 {
        return Ok(Transition::default());
    }
    if timeout_type == TimeoutType::ScheduleToStart {
        let sticky = task.task_queue_kind == TaskQueueKind::Sticky as i32;
        if task.started_event_id > 0 || !(sticky || task.speculative) {
            return Ok(Transition::default());
        }
        // Nobody took it from the sticky queue (or took a speculative task at all): time it out
        // and move the run to its normal queue. A speculative task is written first.
        let mut mutation = Mutation::new(state, env);
        if task.speculative {
            materialize_transient(&mut mutation);
        }
        if !task.transient || task.speculative {
            mutation.add(Attributes::WorkflowTaskTimedOutEventAttributes(
                WorkflowTaskTimedOutEventAttributes {
                    scheduled_event_id: task.scheduled_event_id,
                    started_event_id: 0,
                    timeout_type: timeout_type as i32,
                },
            ));
        }
        mutation.state.workflow_task = None;
        clear_sticky(&mut mutation);
        schedule(&mut mutation, task.attempt);
        return Ok(mutation.finish());
    }
    let mut mutation = Mutation::new(state, env);
    if task.speculative {
        materialize_transient(&mut mutation);
    }
    if !task.transient || task.speculative {
        mutation.add(Attributes::WorkflowTaskTimedOutEventAttributes(
            WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: task.scheduled_event_id,
                started_event_id: task.started_event_id,
                timeout_type: timeout_type as i32,
            },
        ));
    }
    mutation.state.workflow_task = None;
    retry_after_failure(&mut mutation, task.attempt);
    Ok(mutation.finish())
}
