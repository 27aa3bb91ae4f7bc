//! The activity family: scheduling (from the command), the lazily written started event,
//! completion, failure with retries, cancellation, heartbeats and the four timeouts.

use sundial_common::{Error, Result};
use sundial_proto::api::common::v1::Payloads;
use sundial_proto::api::enums::v1::{RetryState, TimeoutType};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    ActivityTaskCancelRequestedEventAttributes, ActivityTaskCanceledEventAttributes,
    ActivityTaskCompletedEventAttributes, ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes, ActivityTaskStartedEventAttributes,
    ActivityTaskTimedOutEventAttributes, HistoryEvent,
};

use crate::ctx::{Env, Mutation, Transition};
use crate::retry;
use crate::state::{ActivityInfo, MutableState};
use crate::tasks::{Task, TaskType};
use crate::util::{check_duration, duration_ms, timeout_failure, timestamp_ms};
use crate::workflow::ensure_workflow_task;

const STALE_TOKEN: &str =
    "invalid activityID or activity already timed out or invoking workflow is completed";

/// An activity's four timeouts after Temporal's normalisation, in milliseconds; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityTimeouts {
    pub schedule_to_close_ms: i64,
    pub schedule_to_start_ms: i64,
    pub start_to_close_ms: i64,
    pub heartbeat_ms: i64,
}

/// Validates and normalises the timeouts of a ScheduleActivityTask command as Temporal does
/// (probed on 1.32), given the run timeout (0: none):
/// - a negative timeout is refused, checked in the order schedule-to-close, schedule-to-start,
///   start-to-close, heartbeat; a zero timeout counts as unset;
/// - with a schedule-to-close timeout, schedule-to-start and start-to-close default to it and are
///   capped by it; with only start-to-close, schedule-to-close (and an unset schedule-to-start)
///   become the run timeout; with neither it is refused;
/// - every timeout is capped by a finite run timeout, and the heartbeat timeout by start-to-close.
pub fn normalise_timeouts(
    attributes: &sundial_proto::api::command::v1::ScheduleActivityTaskCommandAttributes,
    run_timeout_ms: i64,
) -> std::result::Result<ActivityTimeouts, String> {
    check_duration(
        "ScheduleToCloseTimeout",
        attributes.schedule_to_close_timeout.as_ref(),
    )?;
    check_duration(
        "ScheduleToStartTimeout",
        attributes.schedule_to_start_timeout.as_ref(),
    )?;
    check_duration(
        "StartToCloseTimeout",
        attributes.start_to_close_timeout.as_ref(),
    )?;
    check_duration("HeartbeatTimeout", attributes.heartbeat_timeout.as_ref())?;
    let mut schedule_to_close = duration_ms(attributes.schedule_to_close_timeout.as_ref());
    let mut schedule_to_start = duration_ms(attributes.schedule_to_start_timeout.as_ref());
    let mut start_to_close = duration_ms(attributes.start_to_close_timeout.as_ref());
    let mut heartbeat = duration_ms(attributes.heartbeat_timeout.as_ref());
    let capped = |value: i64, cap: i64| if value > 0 { value.min(cap) } else { cap };
    if schedule_to_close > 0 {
        schedule_to_start = capped(schedule_to_start, schedule_to_close);
        start_to_close = capped(start_to_close, schedule_to_close);
    } else if start_to_close > 0 {
        schedule_to_close = run_timeout_ms;
        if schedule_to_start == 0 {
            schedule_to_start = run_timeout_ms;
        }
    } else {
        let type_name = attributes
            .activity_type
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or("");
        return Err(format!(
            "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId={} ActivityType={type_name}",
            attributes.activity_id
        ));
    }
    if run_timeout_ms > 0 {
        for value in [
            &mut schedule_to_close,
            &mut schedule_to_start,
            &mut start_to_close,
            &mut heartbeat,
        ] {
            *value = (*value).min(run_timeout_ms);
        }
    }
    Ok(ActivityTimeouts {
        schedule_to_close_ms: schedule_to_close,
        schedule_to_start_ms: schedule_to_start,
        start_to_close_ms: start_to_close,
        heartbeat_ms: heartbeat.min(start_to_close),
    })
}

pub(crate) fn apply_scheduled(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &ActivityTaskScheduledEventAttributes,
) {
    let scheduled_ms = timestamp_ms(event.event_time.as_ref());
    state.activities.insert(
        event.event_id,
        ActivityInfo {
            scheduled_event_id: event.event_id,
            scheduled: Some(attributes.clone()),
            attempt: 1,
            first_scheduled_time_ms: scheduled_ms,
            scheduled_time_ms: scheduled_ms,
            activity_id: attributes.activity_id.clone(),
            task_queue: attributes
                .task_queue
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default(),
            schedule_to_start_ms: duration_ms(attributes.schedule_to_start_timeout.as_ref()),
            schedule_to_close_ms: duration_ms(attributes.schedule_to_close_timeout.as_ref()),
            start_to_close_ms: duration_ms(attributes.start_to_close_timeout.as_ref()),
            heartbeat_ms: duration_ms(attributes.heartbeat_timeout.as_ref()),
            ..Default::default()
        },
    );
}

pub(crate) fn apply_started(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &ActivityTaskStartedEventAttributes,
) {
    if let Some(activity) = state.activities.get_mut(&attributes.scheduled_event_id) {
        activity.started_event_id = event.event_id;
        activity.attempt = attributes.attempt;
        if activity.started_time_ms == 0 {
            activity.started_time_ms = timestamp_ms(event.event_time.as_ref());
        }
        activity.request_id = attributes.request_id.clone();
        activity.identity = attributes.identity.clone();
    }
}

pub(crate) fn apply_cancel_requested(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &ActivityTaskCancelRequestedEventAttributes,
) {
    if let Some(activity) = state.activities.get_mut(&attributes.scheduled_event_id) {
        activity.cancel_requested = true;
        activity.cancel_requested_event_id = event.event_id;
    }
}

/// Dispatch and timeout tasks of one attempt, from its scheduled time.
pub(crate) fn schedule_attempt_tasks(
    mutation: &mut Mutation,
    activity: &ActivityInfo,
    dispatch_at_ms: i64,
) {
    let mut dispatch = Task::new(
        TaskType::ActivityTask,
        dispatch_at_ms,
        activity.scheduled_event_id,
    );
    dispatch.attempt = activity.attempt;
    dispatch.task_queue = activity.task_queue.clone();
    mutation.task(dispatch);
    if activity.schedule_to_start_ms > 0 {
        let mut timeout = Task::new(
            TaskType::ActivityTimeout,
            dispatch_at_ms + activity.schedule_to_start_ms,
            activity.scheduled_event_id,
        );
        timeout.attempt = activity.attempt;
        timeout.timeout_type = TimeoutType::ScheduleToStart as i32;
        mutation.task(timeout);
    }
}

/// All timer and dispatch tasks a pending activity needs, as rebuilt when a run is loaded.
pub(crate) fn pending_tasks(activity: &ActivityInfo) -> Vec<Task> {
    let mut tasks = Vec::new();
    let with = |task_type, at, timeout: TimeoutType| {
        let mut task = Task::new(task_type, at, activity.scheduled_event_id);
        task.attempt = activity.attempt;
        task.timeout_type = timeout as i32;
        task.task_queue = activity.task_queue.clone();
        task
    };
    if activity.schedule_to_close_ms > 0 {
        tasks.push(with(
            TaskType::ActivityTimeout,
            activity.first_scheduled_time_ms + activity.schedule_to_close_ms,
            TimeoutType::ScheduleToClose,
        ));
    }
    if activity.started_time_ms == 0 {
        tasks.push(with(
            TaskType::ActivityTask,
            activity.scheduled_time_ms,
            TimeoutType::Unspecified,
        ));
        if activity.schedule_to_start_ms > 0 {
            tasks.push(with(
                TaskType::ActivityTimeout,
                activity.scheduled_time_ms + activity.schedule_to_start_ms,
                TimeoutType::ScheduleToStart,
            ));
        }
    } else {
        if activity.start_to_close_ms > 0 {
            tasks.push(with(
                TaskType::ActivityTimeout,
                activity.started_time_ms + activity.start_to_close_ms,
                TimeoutType::StartToClose,
            ));
        }
        if activity.heartbeat_ms > 0 {
            let last = activity.last_heartbeat_ms.max(activity.started_time_ms);
            tasks.push(with(
                TaskType::ActivityTimeout,
                last + activity.heartbeat_ms,
                TimeoutType::Heartbeat,
            ));
        }
    }
    tasks
}

/// What a poller gets after an activity attempt was started.
#[derive(Debug, Clone)]
pub struct ActivityStarted {
    pub transition: Transition,
    pub activity: ActivityInfo,
}

pub fn record_activity_started(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    request_id: &str,
    identity: &str,
) -> Result<ActivityStarted> {
    if !state.is_running() {
        return Err(Error::not_found("workflow execution already completed"));
    }
    let Some(activity) = state.activities.get(&scheduled_event_id).cloned() else {
        return Err(Error::not_found(STALE_TOKEN));
    };
    if activity.attempt != attempt {
        return Err(Error::not_found(STALE_TOKEN));
    }
    if activity.started_time_ms > 0 {
        if activity.request_id == request_id {
            return Ok(ActivityStarted {
                transition: Transition::default(),
                activity,
            });
        }
        return Err(Error::Conflict("activity task already started".into()));
    }
    let mut mutation = Mutation::new(state, env);
    let now = mutation.now();
    let activity = {
        let current = mutation
            .state
            .activities
            .get_mut(&scheduled_event_id)
            .expect("checked above");
        current.started_time_ms = now;
        current.request_id = request_id.to_string();
        current.identity = identity.to_string();
        current.last_heartbeat_ms = 0;
        current.clone()
    };
    for task in pending_tasks(&activity) {
        if task.timeout_type == TimeoutType::StartToClose as i32
            || task.timeout_type == TimeoutType::Heartbeat as i32
        {
            mutation.task(task);
        }
    }
    Ok(ActivityStarted {
        transition: mutation.finish(),
        activity,
    })
}

/// Eager activity dispatch: starts, within the transition that scheduled them, the activities
/// named in `activity_ids` (those a workflow task completion scheduled with
/// `request_eager_execution`). Their dispatch tasks are dropped, since the worker receives them
/// in the completion's response. Like Temporal, nothing is started when the run closed in the
/// same completion, and an activity already cancelled by it is skipped.
pub fn start_eager(
    state: &mut MutableState,
    env: &Env,
    transition: &mut Transition,
    activity_ids: &[&str],
    identity: &str,
) -> Result<Vec<ActivityInfo>> {
    let mut started = Vec::new();
    if activity_ids.is_empty() || !state.is_running() {
        return Ok(started);
    }
    for activity_id in activity_ids {
        let Some((scheduled_event_id, attempt)) = state
            .activities
            .values()
            .find(|activity| {
                activity.started_time_ms == 0
                    && activity
                        .scheduled
                        .as_ref()
                        .is_some_and(|s| s.activity_id == *activity_id)
            })
            .map(|activity| (activity.scheduled_event_id, activity.attempt))
        else {
            continue;
        };
        let Some(dispatch) = transition.tasks.iter().position(|task| {
            task.kind() == Some(TaskType::ActivityTask) && task.event_id == scheduled_event_id
        }) else {
            continue;
        };
        transition.tasks.remove(dispatch);
        let request_id = (env.new_id)();
        let mut recorded = record_activity_started(
            state,
            env,
            scheduled_event_id,
            attempt,
            &request_id,
            identity,
        )?;
        transition.events.append(&mut recorded.transition.events);
        transition.tasks.append(&mut recorded.transition.tasks);
        started.push(recorded.activity);
    }
    Ok(started)
}

/// Finds the started attempt a task token names.
fn started_attempt(
    state: &MutableState,
    scheduled_event_id: i64,
    attempt: i32,
) -> Result<ActivityInfo> {
    if !state.is_running() {
        return Err(Error::not_found("workflow execution already completed"));
    }
    match state.activities.get(&scheduled_event_id) {
        Some(activity) if activity.attempt == attempt && activity.started_time_ms > 0 => {
            Ok(activity.clone())
        }
        _ => Err(Error::not_found(STALE_TOKEN)),
    }
}

/// The started event, written just before an activity's outcome.
fn add_started_event(mutation: &mut Mutation, activity: &ActivityInfo) -> i64 {
    let started_event_id = mutation.add(Attributes::ActivityTaskStartedEventAttributes(
        ActivityTaskStartedEventAttributes {
            scheduled_event_id: activity.scheduled_event_id,
            identity: activity.identity.clone(),
            request_id: activity.request_id.clone(),
            attempt: activity.attempt,
            last_failure: activity.last_failure.clone(),
            ..Default::default()
        },
    ));
    if let Some(event) = mutation
        .out
        .events
        .last_mut()
        .filter(|event| event.event_id == started_event_id && started_event_id > 0)
    {
        event.event_time = crate::util::timestamp(activity.started_time_ms);
    }
    if let Some(event) = mutation
        .state
        .buffered_events
        .last_mut()
        .filter(|_| started_event_id == 0)
    {
        event.event_time = crate::util::timestamp(activity.started_time_ms);
    }
    started_event_id
}

pub fn complete_activity(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    result: Option<Payloads>,
    identity: String,
) -> Result<Transition> {
    let activity = started_attempt(state, scheduled_event_id, attempt)?;
    let mut mutation = Mutation::new(state, env);
    let started_event_id = add_started_event(&mut mutation, &activity);
    mutation.add(Attributes::ActivityTaskCompletedEventAttributes(
        ActivityTaskCompletedEventAttributes {
            result,
            scheduled_event_id,
            started_event_id,
            identity,
            ..Default::default()
        },
    ));
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// Either schedules the next attempt (no events) or returns why the activity stops retrying.
fn try_retry(
    mutation: &mut Mutation,
    activity: &ActivityInfo,
    failure: &Failure,
    timeout_type: Option<TimeoutType>,
) -> std::result::Result<(), RetryState> {
    if activity.cancel_requested {
        return Err(RetryState::CancelRequested);
    }
    let policy = activity
        .scheduled
        .as_ref()
        .and_then(|scheduled| scheduled.retry_policy.clone())
        .unwrap_or_default();
    let expiration = if activity.schedule_to_close_ms > 0 {
        activity.first_scheduled_time_ms + activity.schedule_to_close_ms
    } else {
        0
    };
    let now = mutation.now();
    let delay_ms = retry::next_delay(
        &policy,
        activity.attempt,
        Some(failure),
        timeout_type,
        now,
        expiration,
    )?;
    let next = {
        let current = mutation
            .state
            .activities
            .get_mut(&activity.scheduled_event_id)
            .expect("activity is pending");
        current.attempt += 1;
        current.scheduled_time_ms = now + delay_ms;
        current.started_time_ms = 0;
        current.request_id.clear();
        current.last_failure = Some(failure.clone());
        current.last_heartbeat_ms = 0;
        current.clone()
    };
    schedule_attempt_tasks(mutation, &next, now + delay_ms);
    Ok(())
}

pub fn fail_activity(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    failure: Failure,
    last_heartbeat_details: Option<Payloads>,
    identity: String,
) -> Result<Transition> {
    let mut activity = started_attempt(state, scheduled_event_id, attempt)?;
    let mut mutation = Mutation::new(state, env);
    if last_heartbeat_details.is_some() {
        let current = mutation
            .state
            .activities
            .get_mut(&scheduled_event_id)
            .expect("checked above");
        current.heartbeat_details = last_heartbeat_details;
    }
    activity.identity = identity.clone();
    match try_retry(&mut mutation, &activity, &failure, None) {
        Ok(()) => {}
        Err(retry_state) => {
            let started_event_id = add_started_event(&mut mutation, &activity);
            mutation.add(Attributes::ActivityTaskFailedEventAttributes(
                ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id,
                    started_event_id,
                    identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                },
            ));
            ensure_workflow_task(&mut mutation);
        }
    }
    Ok(mutation.finish())
}

pub fn cancel_activity(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    details: Option<Payloads>,
    identity: String,
) -> Result<Transition> {
    let activity = started_attempt(state, scheduled_event_id, attempt)?;
    let mut mutation = Mutation::new(state, env);
    let started_event_id = add_started_event(&mut mutation, &activity);
    mutation.add(Attributes::ActivityTaskCanceledEventAttributes(
        ActivityTaskCanceledEventAttributes {
            details,
            latest_cancel_requested_event_id: activity.cancel_requested_event_id,
            scheduled_event_id,
            started_event_id,
            identity,
            ..Default::default()
        },
    ));
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// Records a heartbeat; returns the transition (a new heartbeat timer) and whether cancellation
/// was requested.
pub fn heartbeat_activity(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    details: Option<Payloads>,
) -> Result<(Transition, bool)> {
    let activity = started_attempt(state, scheduled_event_id, attempt)?;
    let mut mutation = Mutation::new(state, env);
    let now = mutation.now();
    {
        let current = mutation
            .state
            .activities
            .get_mut(&scheduled_event_id)
            .expect("checked above");
        current.last_heartbeat_ms = now;
        if details.is_some() {
            current.heartbeat_details = details;
        }
    }
    if activity.heartbeat_ms > 0 {
        let mut timeout = Task::new(
            TaskType::ActivityTimeout,
            now + activity.heartbeat_ms,
            scheduled_event_id,
        );
        timeout.attempt = activity.attempt;
        timeout.timeout_type = TimeoutType::Heartbeat as i32;
        mutation.task(timeout);
    }
    Ok((mutation.finish(), activity.cancel_requested))
}

/// An activity timer fired. Stale timers (other attempt, wrong phase, not yet due) do nothing.
pub fn activity_timeout(
    state: &mut MutableState,
    env: &Env,
    scheduled_event_id: i64,
    attempt: i32,
    timeout_type: TimeoutType,
) -> Result<Transition> {
    if !state.is_running() {
        return Ok(Transition::default());
    }
    let Some(activity) = state.activities.get(&scheduled_event_id).cloned() else {
        return Ok(Transition::default());
    };
    let now = env.now_ms;
    let due = match timeout_type {
        TimeoutType::ScheduleToClose => {
            activity.schedule_to_close_ms > 0
                && activity.first_scheduled_time_ms + activity.schedule_to_close_ms <= now
        }
        TimeoutType::ScheduleToStart => {
            activity.attempt == attempt
                && activity.started_time_ms == 0
                && activity.schedule_to_start_ms > 0
                && activity.scheduled_time_ms + activity.schedule_to_start_ms <= now
        }
        TimeoutType::StartToClose => {
            activity.attempt == attempt
                && activity.started_time_ms > 0
                && activity.start_to_close_ms > 0
                && activity.started_time_ms + activity.start_to_close_ms <= now
        }
        TimeoutType::Heartbeat => {
            let last = activity.last_heartbeat_ms.max(activity.started_time_ms);
            activity.attempt == attempt
                && activity.started_time_ms > 0
                && activity.heartbeat_ms > 0
                && last + activity.heartbeat_ms <= now
        }
        TimeoutType::Unspecified => false,
    };
    if !due {
        return Ok(Transition::default());
    }
    let mut mutation = Mutation::new(state, env);
    let name = match timeout_type {
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::StartToClose => "StartToClose",
        _ => "Heartbeat",
    };
    let mut failure = timeout_failure(
        timeout_type as i32,
        format!("activity {name} timeout"),
        activity.heartbeat_details.clone(),
    );
    let retry_state = match try_retry(&mut mutation, &activity, &failure, Some(timeout_type)) {
        Ok(()) => return Ok(mutation.finish()),
        Err(retry_state) => retry_state,
    };
    if retry_state == RetryState::Timeout
        && matches!(
            timeout_type,
            TimeoutType::StartToClose | TimeoutType::Heartbeat
        )
    {
        failure = timeout_failure(
            TimeoutType::ScheduleToClose as i32,
            "Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying",
            activity.heartbeat_details.clone(),
        );
    }
    failure.cause = activity
        .last_failure
        .clone()
        .filter(|_| timeout_type == TimeoutType::ScheduleToClose)
        .map(Box::new);
    let started_event_id = if activity.started_time_ms > 0 {
        add_started_event(&mut mutation, &activity)
    } else {
        0
    };
    mutation.add(Attributes::ActivityTaskTimedOutEventAttributes(
        ActivityTaskTimedOutEventAttributes {
            failure: Some(failure),
            scheduled_event_id,
            started_event_id,
            retry_state: retry_state as i32,
        },
    ));
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}
