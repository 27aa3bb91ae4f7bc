//! The workflow execution family: start, signals, cancel requests, termination, timeouts, the
//! close events and the runs that follow them (continue-as-new and retry).

use sundial_common::{Error, Result};
use sundial_proto::api::common::v1::{Memo, Payloads, SearchAttributes};
use sundial_proto::api::enums::v1::{
    ContinueAsNewInitiator, EventType, RetryState, WorkflowExecutionStatus, WorkflowTaskFailedCause,
};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    HistoryEvent, UpsertWorkflowSearchAttributesEventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes, WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes, WorkflowPropertiesModifiedEventAttributes,
};
use sundial_proto::api::sdk::v1::UserMetadata;
use sundial_proto::prost_types::Duration;

use crate::ctx::{Env, Mutation, NewRun, Transition};
use crate::state::{ExecutionInfo, MutableState};
use crate::tasks::{Task, TaskType};
use crate::util::{duration, duration_ms, present_duration, timestamp, timestamp_ms};
use crate::{retry, workflow_task};

/// A new run: the started event attributes as requested, before timeout normalisation.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub request_id: String,
    pub attributes: WorkflowExecutionStartedEventAttributes,
    /// Delay before the first workflow task (start delay, retry or continue-as-new backoff).
    pub first_task_backoff_ms: i64,
    /// Signal written right after the started event (signal-with-start).
    pub signal: Option<WorkflowExecutionSignaledEventAttributes>,
    /// Summary and details from the starter, carried by the started event.
    pub user_metadata: Option<UserMetadata>,
}

/// Effective timeouts of a run, as Temporal normalises them.
fn normalise_timeouts(attributes: &mut WorkflowExecutionStartedEventAttributes, env: &Env) {
    let (run_ms, task_ms) = run_and_task_timeouts_ms(
        attributes.workflow_execution_timeout.as_ref(),
        attributes.workflow_run_timeout.as_ref(),
        attributes.workflow_task_timeout.as_ref(),
        env,
    );
    // A run timeout given as zero stays present (a child's always is), as in Temporal.
    attributes.workflow_run_timeout = if attributes.workflow_run_timeout.is_some() {
        present_duration(run_ms)
    } else {
        duration(run_ms)
    };
    attributes.workflow_task_timeout = duration(task_ms);
}

/// The effective run and workflow task timeouts in ms (run 0: none): the run timeout capped by
/// the execution timeout, the task timeout defaulted, then capped by the maximum and the run.
fn run_and_task_timeouts_ms(
    execution: Option<&Duration>,
    run: Option<&Duration>,
    task: Option<&Duration>,
    env: &Env,
) -> (i64, i64) {
    let execution_ms = duration_ms(execution);
    let mut run_ms = duration_ms(run);
    if execution_ms > 0 && (run_ms == 0 || run_ms > execution_ms) {
        run_ms = execution_ms;
    }
    let mut task_ms = duration_ms(task);
    if task_ms == 0 {
        task_ms = env.limits.default_workflow_task_timeout_ms;
    }
    task_ms = task_ms.min(env.limits.max_workflow_task_timeout_ms);
    if run_ms > 0 {
        task_ms = task_ms.min(run_ms);
    }
    (run_ms, task_ms)
}

/// A child's run and task timeouts as its initiated event records them, both present (a zero
/// run timeout meaning none), as Temporal normalises them when the command is accepted.
pub(crate) fn child_timeouts(
    execution: Option<&Duration>,
    run: Option<&Duration>,
    task: Option<&Duration>,
    env: &Env,
) -> (Option<Duration>, Option<Duration>) {
    let (run_ms, task_ms) = run_and_task_timeouts_ms(execution, run, task, env);
    (present_duration(run_ms), present_duration(task_ms))
}

/// Creates a run: its state and first events (started, the optional signal, and the first
/// workflow task unless a backoff delays it).
pub fn new_execution(env: &Env, request: StartRequest) -> Result<(MutableState, Transition)> {
    let mut attributes = request.attributes;
    normalise_timeouts(&mut attributes, env);
    attributes.workflow_id = request.workflow_id.clone();
    attributes.original_execution_run_id = request.run_id.clone();
    if attributes.first_execution_run_id.is_empty() {
        attributes.first_execution_run_id = request.run_id.clone();
    }
    if attributes.attempt == 0 {
        attributes.attempt = 1;
    }
    if attributes.workflow_execution_expiration_time.is_none() {
        let execution_ms = duration_ms(attributes.workflow_execution_timeout.as_ref());
        if execution_ms > 0 {
            attributes.workflow_execution_expiration_time = timestamp(env.now_ms + execution_ms);
        }
    }
    attributes.first_workflow_task_backoff = present_duration(request.first_task_backoff_ms);
    if let Some(task_queue) = attributes.task_queue.as_mut() {
        task_queue.kind = sundial_proto::api::enums::v1::TaskQueueKind::Normal as i32;
    }
    let mut state = MutableState {
        info: Some(ExecutionInfo {
            namespace_id: request.namespace_id,
            workflow_id: request.workflow_id,
            run_id: request.run_id,
            next_event_id: 1,
            start_request_id: request.request_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut mutation = Mutation::new(&mut state, env);
    mutation.metadata = request.user_metadata;
    mutation.add(Attributes::WorkflowExecutionStartedEventAttributes(
        attributes,
    ));
    if !request.request_id.is_empty() {
        mutation.state.info_mut().request_ids.insert(
            request.request_id,
            EventType::WorkflowExecutionStarted as i32,
        );
    }
    if let Some(signal) = request.signal {
        mutation.add(Attributes::WorkflowExecutionSignaledEventAttributes(signal));
    }
    let info = mutation.state.info().clone();
    if request.first_task_backoff_ms > 0 {
        mutation.task(Task::new(
            TaskType::WorkflowBackoff,
            env.now_ms + request.first_task_backoff_ms,
            0,
        ));
    } else {
        workflow_task::schedule(&mut mutation, 1);
    }
    if info.run_expiration_ms > 0 {
        mutation.task(Task::new(
            TaskType::WorkflowRunTimeout,
            info.run_expiration_ms,
            0,
        ));
    }
    let transition = mutation.finish();
    Ok((state, transition))
}

pub(crate) fn apply_started(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &WorkflowExecutionStartedEventAttributes,
) {
    let start_ms = timestamp_ms(event.event_time.as_ref());
    let info = state.info.get_or_insert_with(ExecutionInfo::default);
    info.workflow_id = attributes.workflow_id.clone();
    info.run_id = attributes.original_execution_run_id.clone();
    info.first_execution_run_id = attributes.first_execution_run_id.clone();
    info.workflow_type = attributes
        .workflow_type
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    info.task_queue = attributes
        .task_queue
        .as_ref()
        .map(|q| q.name.clone())
        .unwrap_or_default();
    info.status = WorkflowExecutionStatus::Running as i32;
    info.start_time_ms = start_ms;
    let backoff_ms = duration_ms(attributes.first_workflow_task_backoff.as_ref());
    info.execution_time_ms = start_ms + backoff_ms;
    info.backoff_pending = backoff_ms > 0;
    info.run_timeout_ms = duration_ms(attributes.workflow_run_timeout.as_ref());
    info.execution_timeout_ms = duration_ms(attributes.workflow_execution_timeout.as_ref());
    info.workflow_task_timeout_ms = duration_ms(attributes.workflow_task_timeout.as_ref());
    info.execution_expiration_ms =
        timestamp_ms(attributes.workflow_execution_expiration_time.as_ref());
    let mut run_expiration = if info.run_timeout_ms > 0 {
        start_ms + info.run_timeout_ms
    } else {
        0
    };
    if info.execution_expiration_ms > 0
        && (run_expiration == 0 || info.execution_expiration_ms < run_expiration)
    {
        run_expiration = info.execution_expiration_ms;
    }
    info.run_expiration_ms = run_expiration;
    info.memo = attributes.memo.clone();
    info.search_attributes = attributes.search_attributes.clone();
    info.last_completion_result = attributes.last_completion_result.clone();
    info.started = Some(attributes.clone());
    info.user_metadata = event.user_metadata.clone();
}

pub(crate) fn apply_closed(state: &mut MutableState, event: &HistoryEvent, new_run_id: &str) {
    let status = match event.event_type() {
        EventType::WorkflowExecutionCompleted => WorkflowExecutionStatus::Completed,
        EventType::WorkflowExecutionFailed => WorkflowExecutionStatus::Failed,
        EventType::WorkflowExecutionTimedOut => WorkflowExecutionStatus::TimedOut,
        EventType::WorkflowExecutionCanceled => WorkflowExecutionStatus::Canceled,
        EventType::WorkflowExecutionTerminated => WorkflowExecutionStatus::Terminated,
        _ => WorkflowExecutionStatus::ContinuedAsNew,
    };
    let info = state.info_mut();
    info.status = status as i32;
    info.close_time_ms = timestamp_ms(event.event_time.as_ref());
    info.close_event = Some(event.clone());
    info.new_execution_run_id = new_run_id.to_string();
    info.backoff_pending = false;
    state.workflow_task = None;
}

pub(crate) fn apply_signaled(
    state: &mut MutableState,
    attributes: &WorkflowExecutionSignaledEventAttributes,
) {
    let info = state.info_mut();
    info.signal_count += 1;
    if !attributes.request_id.is_empty() {
        info.request_ids.insert(
            attributes.request_id.clone(),
            EventType::WorkflowExecutionSignaled as i32,
        );
    }
}

pub(crate) fn apply_upsert_search_attributes(
    state: &mut MutableState,
    attributes: &UpsertWorkflowSearchAttributesEventAttributes,
) {
    let Some(upserted) = attributes.search_attributes.as_ref() else {
        return;
    };
    let current = state
        .info_mut()
        .search_attributes
        .get_or_insert_with(SearchAttributes::default);
    merge_search_attributes(current, upserted);
}

/// An upsert merged into a run's map key by key; JSON `null` or an empty list removes a key.
pub(crate) fn merge_search_attributes(current: &mut SearchAttributes, upserted: &SearchAttributes) {
    for (key, value) in &upserted.indexed_fields {
        if value.data.is_empty() || value.data == b"null" || value.data == b"[]" {
            current.indexed_fields.remove(key);
        } else {
            current.indexed_fields.insert(key.clone(), value.clone());
        }
    }
}

pub(crate) fn apply_properties_modified(
    state: &mut MutableState,
    attributes: &WorkflowPropertiesModifiedEventAttributes,
) {
    let Some(upserted) = attributes.upserted_memo.as_ref() else {
        return;
    };
    let current = state.info_mut().memo.get_or_insert_with(Memo::default);
    for (key, value) in &upserted.fields {
        if value.data.is_empty() {
            current.fields.remove(key);
        } else {
            current.fields.insert(key.clone(), value.clone());
        }
    }
}

fn require_running(state: &MutableState) -> Result<()> {
    if state.is_running() {
        Ok(())
    } else {
        Err(Error::not_found("workflow execution already completed"))
    }
}

/// Schedules a workflow task when the run needs one and none is pending.
pub(crate) fn ensure_workflow_task(mutation: &mut Mutation) {
    if mutation.state.workflow_task.is_none()
        && !mutation.state.info().backoff_pending
        && mutation.state.is_running()
    {
        workflow_task::schedule(mutation, 1);
    }
}

pub fn signal(
    state: &mut MutableState,
    env: &Env,
    attributes: WorkflowExecutionSignaledEventAttributes,
) -> Result<Transition> {
    require_running(state)?;
    if !attributes.request_id.is_empty()
        && state
            .info()
            .request_ids
            .contains_key(&attributes.request_id)
    {
        return Ok(Transition::default());
    }
    if state.info().signal_count >= env.limits.max_signals_per_execution {
        return Err(Error::invalid(
            "exceeded workflow execution limit for signal events",
        ));
    }
    let mut mutation = Mutation::new(state, env);
    mutation.add(Attributes::WorkflowExecutionSignaledEventAttributes(
        attributes,
    ));
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// Records a cancel request. Closed runs and repeated requests are successful no-ops.
pub fn request_cancel(
    state: &mut MutableState,
    env: &Env,
    attributes: WorkflowExecutionCancelRequestedEventAttributes,
    request_id: &str,
) -> Result<Transition> {
    if !state.is_running() || state.info().cancel_requested {
        return Ok(Transition::default());
    }
    if !request_id.is_empty() && state.info().request_ids.contains_key(request_id) {
        return Ok(Transition::default());
    }
    let mut mutation = Mutation::new(state, env);
    mutation.add(Attributes::WorkflowExecutionCancelRequestedEventAttributes(
        attributes,
    ));
    if !request_id.is_empty() {
        mutation.state.info_mut().request_ids.insert(
            request_id.to_string(),
            EventType::WorkflowExecutionCancelRequested as i32,
        );
    }
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

pub fn terminate(
    state: &mut MutableState,
    env: &Env,
    reason: String,
    details: Option<Payloads>,
    identity: String,
) -> Result<Transition> {
    require_running(state)?;
    let mut mutation = Mutation::new(state, env);
    terminate_in(&mut mutation, reason, details, identity);
    Ok(mutation.finish())
}

/// Termination inside a larger transition: a started workflow task is failed first, buffered
/// events are flushed, then the terminated event closes the run.
pub(crate) fn terminate_in(
    mutation: &mut Mutation,
    reason: String,
    details: Option<Payloads>,
    identity: String,
) {
    if mutation.state.started_workflow_task().is_some() {
        workflow_task::fail_started(
            mutation,
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            String::new(),
        );
    }
    mutation.flush_buffered();
    close(
        mutation,
        Attributes::WorkflowExecutionTerminatedEventAttributes(
            WorkflowExecutionTerminatedEventAttributes {
                reason,
                details,
                identity,
            },
        ),
    );
}

/// The run or execution timeout fired.
pub fn run_timeout(state: &mut MutableState, env: &Env) -> Result<Transition> {
    if !state.is_running() {
        return Ok(Transition::default());
    }
    let expiration = state.info().run_expiration_ms;
    if expiration == 0 || expiration > env.now_ms {
        return Ok(Transition::default());
    }
    let mut mutation = Mutation::new(state, env);
    if mutation.state.started_workflow_task().is_some() {
        workflow_task::fail_started(
            &mut mutation,
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            String::new(),
        );
    }
    mutation.flush_buffered();
    let retry_run = retry_successor(&mutation, None, true);
    let new_run_id = retry_run
        .as_ref()
        .map(|(run, _)| run.run_id.clone())
        .unwrap_or_default();
    let retry_state = match &retry_run {
        Some(_) => RetryState::InProgress,
        None => retry_refusal(&mutation, None, true),
    };
    close(
        &mut mutation,
        Attributes::WorkflowExecutionTimedOutEventAttributes(
            WorkflowExecutionTimedOutEventAttributes {
                retry_state: retry_state as i32,
                new_execution_run_id: new_run_id,
            },
        ),
    );
    if let Some((request, _)) = retry_run {
        start_successor(&mut mutation, request)?;
    }
    Ok(mutation.finish())
}

/// The first-workflow-task backoff is over: schedule the first workflow task.
pub fn backoff_fired(state: &mut MutableState, env: &Env) -> Result<Transition> {
    if !state.is_running() || !state.info().backoff_pending {
        return Ok(Transition::default());
    }
    let mut mutation = Mutation::new(state, env);
    mutation.state.info_mut().backoff_pending = false;
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// Writes a close event and the tasks every close needs.
pub(crate) fn close(mutation: &mut Mutation, attributes: Attributes) {
    mutation.add(attributes);
    let info = mutation.state.info();
    let has_parent = info
        .started
        .as_ref()
        .is_some_and(|started| started.parent_workflow_execution.is_some());
    let now = mutation.now();
    let is_continue_as_new = info.status == WorkflowExecutionStatus::ContinuedAsNew as i32;
    let is_retrying = !info.new_execution_run_id.is_empty();
    // A child that continues as new or retries reports only when its chain ends.
    if has_parent && !is_continue_as_new && !is_retrying {
        mutation.task(Task::new(TaskType::NotifyParent, now, 0));
    }
    if !mutation.state.children.is_empty() {
        mutation.task(Task::new(TaskType::ParentClosePolicy, now, 0));
    }
}

/// A retry run for a failed or timed-out run, when its retry policy allows one.
pub(crate) fn retry_successor(
    mutation: &Mutation,
    failure: Option<&Failure>,
    timed_out: bool,
) -> Option<(StartRequest, i64)> {
    let info = mutation.state.info();
    let started = info.started.as_ref()?;
    let policy = started.retry_policy.as_ref()?;
    let timeout_type =
        timed_out.then_some(sundial_proto::api::enums::v1::TimeoutType::StartToClose);
    let delay_ms = retry::next_delay(
        policy,
        started.attempt,
        failure,
        timeout_type,
        mutation.now(),
        info.execution_expiration_ms,
    )
    .ok()?;
    let mut attributes = started.clone();
    attributes.attempt = started.attempt + 1;
    attributes.initiator = ContinueAsNewInitiator::Retry as i32;
    attributes.continued_execution_run_id = info.run_id.clone();
    attributes.continued_failure = failure.cloned();
    attributes.parent_workflow_execution = started.parent_workflow_execution.clone();
    attributes.memo = info.memo.clone();
    attributes.search_attributes = info.search_attributes.clone();
    attributes.first_workflow_task_backoff = None;
    let request = StartRequest {
        namespace_id: info.namespace_id.clone(),
        workflow_id: info.workflow_id.clone(),
        run_id: (mutation.env.new_id)(),
        request_id: String::new(),
        attributes,
        first_task_backoff_ms: delay_ms,
        signal: None,
        user_metadata: None,
    };
    Some((request, delay_ms))
}

pub(crate) fn retry_refusal(
    mutation: &Mutation,
    failure: Option<&Failure>,
    timed_out: bool,
) -> RetryState {
    let info = mutation.state.info();
    let Some(started) = info.started.as_ref() else {
        return RetryState::RetryPolicyNotSet;
    };
    let Some(policy) = started.retry_policy.as_ref() else {
        return RetryState::RetryPolicyNotSet;
    };
    let timeout_type =
        timed_out.then_some(sundial_proto::api::enums::v1::TimeoutType::StartToClose);
    match retry::next_delay(
        policy,
        started.attempt,
        failure,
        timeout_type,
        mutation.now(),
        info.execution_expiration_ms,
    ) {
        Ok(_) => RetryState::InProgress,
        Err(state) => state,
    }
}

/// Creates the run that follows this one in the same transition.
pub(crate) fn start_successor(mutation: &mut Mutation, mut request: StartRequest) -> Result<()> {
    let info = mutation.state.info();
    if let Some(started) = info.started.as_ref() {
        request.attributes.first_execution_run_id = started.first_execution_run_id.clone();
        request.attributes.workflow_execution_expiration_time =
            started.workflow_execution_expiration_time;
        request.attributes.parent_workflow_namespace = started.parent_workflow_namespace.clone();
        request.attributes.parent_workflow_namespace_id =
            started.parent_workflow_namespace_id.clone();
        request.attributes.parent_workflow_execution = started.parent_workflow_execution.clone();
        request.attributes.parent_initiated_event_id = started.parent_initiated_event_id;
        request.attributes.root_workflow_execution = started.root_workflow_execution.clone();
        if request.attributes.workflow_execution_timeout.is_none() {
            request.attributes.workflow_execution_timeout = started.workflow_execution_timeout;
        }
    }
    let (state, transition) = new_execution(mutation.env, request)?;
    mutation.out.new_run = Some(Box::new(NewRun { state, transition }));
    Ok(())
}
