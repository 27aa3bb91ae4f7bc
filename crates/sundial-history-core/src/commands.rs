//! RespondWorkflowTaskCompleted: validates the command sequence, turns each command into its
//! events and tasks, and fails the workflow task (or terminates the run) on a bad command, with
//! Temporal's rules for which failures are recorded.

use std::collections::HashMap;

use sundial_common::{Error, Result};
use sundial_proto::api::command::v1::{Command, command::Attributes as C};
use sundial_proto::api::common::v1::{
    MeteringMetadata, Payload, Payloads, SearchAttributes, WorkerVersionStamp,
};
use sundial_proto::api::deployment::v1::WorkerDeploymentVersion;
use sundial_proto::api::enums::v1::{
    ContinueAsNewInitiator, ParentClosePolicy, RetryState, TaskQueueKind, TimeoutType,
    WorkflowIdReusePolicy, WorkflowTaskFailedCause,
};
use sundial_proto::api::history::v1::history_event::Attributes as A;
use sundial_proto::api::history::v1::*;
use sundial_proto::api::sdk::v1::WorkflowTaskCompletedMetadata;
use sundial_proto::api::taskqueue::v1::TaskQueue;
use sundial_visibility::SaType;
use sundial_visibility::validate as sa_check;

use crate::activity::schedule_attempt_tasks;
use crate::ctx::{Env, Mutation, Transition};
use crate::state::MutableState;
use crate::tasks::{Task, TaskType};
use crate::update::{BadMessage, PendingUpdate, UpdateResult, UpdateWork, only_rejections};
use crate::util::{duration_ms, payloads_size, present_duration, server_failure, valid_duration};
use crate::workflow::{
    StartRequest, close, retry_refusal, retry_successor, start_successor, terminate_in,
};
use crate::workflow_task::RecordedWorkflowTask;
use crate::{retry, workflow_task};

const MINIMAL_RUN_INTERVAL_MS: i64 = 1000;

/// A worker's completion of its workflow task.
#[derive(Debug, Clone, Default)]
pub struct CompleteWorkflowTask {
    pub scheduled_event_id: i64,
    pub attempt: i32,
    pub commands: Vec<Command>,
    pub identity: String,
    pub binary_checksum: String,
    pub sdk_metadata: Option<WorkflowTaskCompletedMetadata>,
    pub force_create_new_workflow_task: bool,
    /// Name and id of the run's namespace: commands may only target it.
    pub namespace: String,
    /// The namespace's custom search attributes (name -> type), which commands may set.
    pub custom_search_attributes: HashMap<String, SaType>,
    /// The worker's sticky queue and its schedule-to-start timeout; `None` turns stickiness off.
    pub sticky: Option<(String, i64)>,
    /// Whether activities scheduled with `request_eager_execution` are started at once and
    /// handed back in the response (`system.enableActivityEagerExecution`).
    pub eager_activities: bool,
    /// What the worker says of its build, stamped into the completed event as given.
    pub worker_version: Option<WorkerVersionStamp>,
    pub metering_metadata: Option<MeteringMetadata>,
    pub deployment_name: String,
    /// Set only for a worker on deployment versioning, as Temporal stamps it.
    pub deployment_version: Option<WorkerDeploymentVersion>,
    pub versioning_behavior: i32,
    /// The worker asks for the next workflow task in the response (`return_new_workflow_task`):
    /// one that this completion schedules is started at once for it, as Temporal does.
    pub return_new_workflow_task: bool,
    /// The protocol messages of the completion (update acceptances, rejections, responses).
    pub messages: Vec<sundial_proto::api::protocol::v1::Message>,
    /// The updates the history service holds for the run (admitted or sent, not answered).
    pub updates: Vec<PendingUpdate>,
    /// The worker's `discard_speculative_workflow_task_with_events` capability.
    pub discard_speculative_with_events: bool,
}

/// Most events a speculative task may have shipped after the last completed task and still
/// vanish (`history.discardSpeculativeWorkflowTaskMaximumEventsCount`).
const DISCARD_SPECULATIVE_MAX_EVENTS: i64 = 10;

/// The outcome: what to persist, and the error to return to the worker even though something
/// may have been recorded (a failed workflow task is recorded and reported).
#[derive(Debug, Clone, Default)]
pub struct WorkflowTaskCompletion {
    pub transition: Transition,
    pub error: Option<Error>,
    /// Activities started eagerly by this completion, for the response's `activity_tasks`.
    pub eager_activities: Vec<crate::state::ActivityInfo>,
    /// The next workflow task, started for the worker that completed this one.
    pub new_workflow_task: Option<RecordedWorkflowTask>,
    /// What happened to updates, in order (only when the completion was recorded).
    pub updates: Vec<UpdateResult>,
    /// Set when a speculative task vanished: the worker rolls its history back to this event.
    pub reset_history_event_id: i64,
    /// The server failed the task: the updates sent on it are aborted, not sent again.
    pub abort_sent_updates: bool,
}

/// A command that cannot be applied: the failure cause, and whether the run is terminated.
struct CommandError {
    cause: WorkflowTaskFailedCause,
    message: String,
    terminate: bool,
}

impl From<BadMessage> for CommandError {
    fn from(error: BadMessage) -> Self {
        CommandError {
            cause: WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
            message: error.message,
            terminate: error.too_large,
        }
    }
}

fn bad(cause: WorkflowTaskFailedCause, message: impl Into<String>) -> CommandError {
    CommandError {
        cause,
        message: message.into(),
        terminate: false,
    }
}

fn too_large(cause: WorkflowTaskFailedCause) -> CommandError {
    CommandError {
        cause,
        message: "Blob data size exceeds limit.".into(),
        terminate: true,
    }
}

/// The search attributes a command sets, checked in the order of Temporal's workflow-task
/// handler: every name known and each value of its type (else the task fails with
/// `BAD_SEARCH_ATTRIBUTES`, a value's message wrapped by `context`), and the sizes (else the run
/// is terminated with `size_cause`). `merged` is the run's map after the command, for upserts.
fn check_search_attributes(
    request: &CompleteWorkflowTask,
    limits: &crate::Limits,
    attributes: Option<&SearchAttributes>,
    merged: Option<&SearchAttributes>,
    size_cause: WorkflowTaskFailedCause,
    context: impl Fn(String) -> String,
) -> std::result::Result<(), CommandError> {
    let Some(attributes) = attributes else {
        return Ok(());
    };
    let custom = &request.custom_search_attributes;
    sa_check::check_names(attributes, &request.namespace, custom)
        .map_err(|message| bad(WorkflowTaskFailedCause::BadSearchAttributes, message))?;
    sa_check::check_values(attributes, custom, &limits.search_attributes).map_err(|message| {
        bad(
            WorkflowTaskFailedCause::BadSearchAttributes,
            context(message),
        )
    })?;
    sa_check::check_size(merged.unwrap_or(attributes), &limits.search_attributes).map_err(
        |message| CommandError {
            cause: size_cause,
            message,
            terminate: true,
        },
    )
}

/// Temporal's Go-style name of a cause: `BadStartTimerAttributes`.
fn cause_name(cause: WorkflowTaskFailedCause) -> String {
    let raw = cause
        .as_str_name()
        .trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_");
    raw.split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn is_close_command(command: &Command) -> bool {
    matches!(
        command.attributes,
        Some(C::CompleteWorkflowExecutionCommandAttributes(_))
            | Some(C::FailWorkflowExecutionCommandAttributes(_))
            | Some(C::CancelWorkflowExecutionCommandAttributes(_))
            | Some(C::ContinueAsNewWorkflowExecutionCommandAttributes(_))
    )
}

fn json_string(text: &str) -> Payload {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("encoding".to_string(), b"json/plain".to_vec());
    Payload {
        metadata,
        data: format!("\"{text}\"").into_bytes(),
        ..Default::default()
    }
}

pub fn complete_workflow_task(
    state: &mut MutableState,
    env: &Env,
    request: CompleteWorkflowTask,
) -> Result<WorkflowTaskCompletion> {
    let task = workflow_task::require_started(state, request.scheduled_event_id, request.attempt)?;
    // A close command must be the last one; otherwise nothing is recorded.
    for (index, command) in request.commands.iter().enumerate() {
        if command.attributes.is_none() && command.command_type != 14 {
            return Err(Error::invalid(format!(
                "unknown command type: {}",
                command.command_type
            )));
        }
        if is_close_command(command) && index + 1 != request.commands.len() {
            let names: Vec<String> = request
                .commands
                .iter()
                .map(|c| c.command_type().as_str_name().to_string())
                .collect();
            return Err(Error::invalid(format!(
                "invalid command sequence: [{}], command {} must be the last command.",
                names.join(", "),
                command.command_type().as_str_name()
            )));
        }
    }
    let closing = request.commands.iter().any(is_close_command);
    if closing && !state.buffered_events.is_empty() {
        let mut mutation = Mutation::new(state, env);
        workflow_task::fail_in_completion(
            &mut mutation,
            WorkflowTaskFailedCause::UnhandledCommand,
            server_failure("UnhandledCommand", false),
            request.identity.clone(),
        );
        return Ok(WorkflowTaskCompletion {
            transition: mutation.finish(),
            error: Some(Error::invalid("UnhandledCommand")),
            ..Default::default()
        });
    }
    let snapshot = state.clone();
    if let Some(result) = discard_speculative(state, env, &request, &task) {
        match result {
            Ok(completion) => return Ok(completion),
            Err(error) => {
                *state = snapshot;
                return Ok(fail_completion(state, env, &request, &task, error));
            }
        }
    }
    let outcome = {
        let mut mutation = Mutation::new(state, env);
        let mut work = UpdateWork::new(&request.messages, &request.updates);
        match apply_completion(&mut mutation, &request, &mut work) {
            Ok(()) => Ok((mutation.finish(), work.results)),
            Err(error) => Err(error),
        }
    };
    let error = match outcome {
        Ok((mut transition, updates)) => {
            let eager_activities = if request.eager_activities {
                let requested: Vec<&str> = request
                    .commands
                    .iter()
                    .filter_map(|command| match &command.attributes {
                        Some(C::ScheduleActivityTaskCommandAttributes(attributes))
                            if attributes.request_eager_execution =>
                        {
                            Some(attributes.activity_id.as_str())
                        }
                        _ => None,
                    })
                    .collect();
                crate::activity::start_eager(
                    state,
                    env,
                    &mut transition,
                    &requested,
                    &request.identity,
                )?
            } else {
                Vec::new()
            };
            let new_workflow_task = if request.return_new_workflow_task {
                start_inline(state, env, &request, &mut transition)?
            } else {
                None
            };
            return Ok(WorkflowTaskCompletion {
                transition,
                error: None,
                eager_activities,
                new_workflow_task,
                updates,
                ..Default::default()
            });
        }
        Err(error) => error,
    };
    // A bad command throws away everything this completion did.
    *state = snapshot;
    Ok(fail_completion(state, env, &request, &task, error))
}

/// A speculative task the worker answered with nothing but rejections (or nothing at all), no
/// command, and no new event since the last completed task (a few with the worker's
/// capability) vanishes: nothing is written, and the worker rolls back to the last completed
/// task. `None` when the completion does not qualify.
fn discard_speculative(
    state: &mut MutableState,
    env: &Env,
    request: &CompleteWorkflowTask,
    task: &crate::state::WorkflowTaskInfo,
) -> Option<std::result::Result<WorkflowTaskCompletion, CommandError>> {
    let last_completed = state.info().last_completed_wft_started_id;
    let shipped = task.scheduled_event_id - (last_completed + 2);
    let quiet = shipped == 0
        || (request.discard_speculative_with_events
            && (0..=DISCARD_SPECULATIVE_MAX_EVENTS).contains(&shipped));
    if !task.speculative
        || !request.commands.is_empty()
        || request.force_create_new_workflow_task
        || !state.buffered_events.is_empty()
        || last_completed == 0
        || !quiet
        || !only_rejections(&request.messages)
    {
        return None;
    }
    let mut mutation = Mutation::new(state, env);
    let mut work = UpdateWork::new(&request.messages, &request.updates);
    let blob_limit = env.limits.blob_size_error;
    if let Err(error) = work.process_rest(&mut mutation, blob_limit) {
        return Some(Err(error.into()));
    }
    work.reject_unanswered();
    mutation.state.workflow_task = None;
    if work.waiting_for_a_task() {
        workflow_task::schedule_speculative(&mut mutation);
    }
    Some(Ok(WorkflowTaskCompletion {
        transition: mutation.finish(),
        updates: work.results,
        reset_history_event_id: last_completed,
        ..Default::default()
    }))
}

/// Records a completion that failed on a bad command or message.
fn fail_completion(
    state: &mut MutableState,
    env: &Env,
    request: &CompleteWorkflowTask,
    task: &crate::state::WorkflowTaskInfo,
    error: CommandError,
) -> WorkflowTaskCompletion {
    // The caller's error, the failed event's failure and a termination's reason all say the
    // same, cause first, as in Temporal.
    let message = format!("{}: {}", cause_name(error.cause), error.message);
    let mut mutation = Mutation::new(state, env);
    if error.terminate {
        workflow_task::fail_started(
            &mut mutation,
            error.cause,
            Some(server_failure(&message, false)),
            request.identity.clone(),
        );
        mutation.state.workflow_task = None;
        terminate_in(
            &mut mutation,
            message.clone(),
            None,
            "history-service".into(),
        );
    } else if task.attempt == 1 {
        workflow_task::fail_in_completion(
            &mut mutation,
            error.cause,
            server_failure(&message, false),
            request.identity.clone(),
        );
    }
    WorkflowTaskCompletion {
        transition: mutation.finish(),
        error: Some(Error::invalid(message)),
        abort_sent_updates: true,
        ..Default::default()
    }
}

fn apply_completion(
    mutation: &mut Mutation,
    request: &CompleteWorkflowTask,
    work: &mut UpdateWork,
) -> std::result::Result<(), CommandError> {
    let task = mutation
        .state
        .started_workflow_task()
        .cloned()
        .expect("checked by the caller");
    workflow_task::materialize_transient(mutation);
    let completed_id = mutation.add(A::WorkflowTaskCompletedEventAttributes(
        WorkflowTaskCompletedEventAttributes {
            scheduled_event_id: task.scheduled_event_id,
            started_event_id: task.started_event_id,
            identity: request.identity.clone(),
            binary_checksum: request.binary_checksum.clone(),
            sdk_metadata: request.sdk_metadata.clone(),
            worker_version: request.worker_version.clone(),
            metering_metadata: request.metering_metadata,
            worker_deployment_name: request.deployment_name.clone(),
            deployment_version: request.deployment_version.clone(),
            versioning_behavior: request.versioning_behavior,
            ..Default::default()
        },
    ));
    {
        let info = mutation.state.info_mut();
        match &request.sticky {
            Some((queue, timeout_ms)) => {
                info.sticky_task_queue = queue.clone();
                info.sticky_schedule_to_start_ms = *timeout_ms;
            }
            None => {
                info.sticky_task_queue.clear();
                info.sticky_schedule_to_start_ms = 0;
            }
        }
    }
    let mut need_workflow_task = request.force_create_new_workflow_task;
    let blob_limit = mutation.env.limits.blob_size_error;
    for command in &request.commands {
        if !mutation.state.is_running() {
            break;
        }
        if let Some(C::ProtocolMessageCommandAttributes(attributes)) = &command.attributes {
            work.process_by_id(mutation, &attributes.message_id, blob_limit)?;
            continue;
        }
        // The command's metadata goes on the first event it writes.
        mutation.metadata = command.user_metadata.clone();
        need_workflow_task |= apply_command(mutation, request, command, completed_id)?;
        mutation.metadata = None;
    }
    if !mutation.state.is_running() {
        // Updates still pending are aborted by the history service when the run closes.
        return Ok(());
    }
    work.process_rest(mutation, blob_limit)?;
    if !mutation.state.is_running() {
        return Ok(());
    }
    if !request.force_create_new_workflow_task {
        work.reject_unanswered();
    }
    let before = mutation.out.events.len();
    mutation.flush_buffered();
    if mutation.out.events.len() > before || need_workflow_task {
        workflow_task::schedule(mutation, 1);
    } else if work.waiting_for_a_task() {
        // Updates arrived while this task ran: a speculative task carries them.
        workflow_task::schedule_speculative(mutation);
    }
    Ok(())
}

/// Starts the workflow task a successful completion scheduled, for the worker that asked for it
/// in the response: its started event joins the completion's write, and it is not dispatched.
fn start_inline(
    state: &mut MutableState,
    env: &Env,
    request: &CompleteWorkflowTask,
    transition: &mut Transition,
) -> Result<Option<RecordedWorkflowTask>> {
    let Some(task) = state
        .workflow_task
        .clone()
        .filter(|task| task.started_event_id == 0 && (!task.transient || task.speculative))
    else {
        return Ok(None);
    };
    let request_id = (env.new_id)();
    let mut recorded = workflow_task::record_workflow_task_started(
        state,
        env,
        task.scheduled_event_id,
        task.attempt,
        workflow_task::Poller {
            request_id: &request_id,
            identity: &request.identity,
            sticky: task.task_queue_kind == TaskQueueKind::Sticky as i32,
            worker_version: request.worker_version.as_ref(),
        },
    )?;
    // Neither a dispatch nor a schedule-to-start timeout: the task is already started.
    transition.tasks.retain(|queued| {
        !(queued.event_id == task.scheduled_event_id
            && (queued.kind() == Some(TaskType::WorkflowTask)
                || (queued.kind() == Some(TaskType::WorkflowTaskTimeout)
                    && queued.timeout_type == TimeoutType::ScheduleToStart as i32)))
    });
    let started = std::mem::take(&mut recorded.transition);
    transition.events.extend(started.events);
    transition.tasks.extend(started.tasks);
    // The worker has the run: it gets the events after the task it just completed.
    recorded.partial_history = true;
    Ok(Some(recorded))
}

/// Applies one command. Returns whether it requires a new workflow task.
fn apply_command(
    mutation: &mut Mutation,
    request: &CompleteWorkflowTask,
    command: &Command,
    completed_id: i64,
) -> std::result::Result<bool, CommandError> {
    use WorkflowTaskFailedCause as Cause;
    let limits = mutation.env.limits;
    let max_id = limits.max_id_length;
    match command.attributes.as_ref() {
        Some(C::ScheduleActivityTaskCommandAttributes(attributes)) => {
            schedule_activity(mutation, attributes, completed_id)?;
        }
        Some(C::RequestCancelActivityTaskCommandAttributes(attributes)) => {
            return request_cancel_activity(mutation, attributes.scheduled_event_id, completed_id);
        }
        Some(C::StartTimerCommandAttributes(attributes)) => {
            if attributes.timer_id.is_empty() {
                return Err(bad(
                    Cause::BadStartTimerAttributes,
                    "TimerId is not set on StartTimerCommand.",
                ));
            }
            if attributes.timer_id.len() > max_id {
                return Err(bad(
                    Cause::BadStartTimerAttributes,
                    "TimerId exceeds length limit.",
                ));
            }
            if !valid_duration(attributes.start_to_fire_timeout.as_ref()) {
                return Err(bad(
                    Cause::BadStartTimerAttributes,
                    "An invalid StartToFireTimeout is set on StartTimerCommand.",
                ));
            }
            if mutation.state.timers.contains_key(&attributes.timer_id) {
                return Err(bad(
                    Cause::StartTimerDuplicateId,
                    format!(
                        "invalid history builder state for action: add-timer-started-event, TimerID: {}",
                        attributes.timer_id
                    ),
                ));
            }
            mutation.add(A::TimerStartedEventAttributes(
                TimerStartedEventAttributes {
                    timer_id: attributes.timer_id.clone(),
                    start_to_fire_timeout: attributes.start_to_fire_timeout,
                    workflow_task_completed_event_id: completed_id,
                },
            ));
            let timer = mutation
                .state
                .timers
                .get(&attributes.timer_id)
                .cloned()
                .expect("just started");
            mutation.task(crate::timer::timer_task(&timer));
        }
        Some(C::CancelTimerCommandAttributes(attributes)) => {
            cancel_timer(
                mutation,
                &attributes.timer_id,
                completed_id,
                &request.identity,
            )?;
        }
        Some(C::CompleteWorkflowExecutionCommandAttributes(attributes)) => {
            if payloads_size(attributes.result.as_ref()) > limits.blob_size_error {
                return Err(too_large(Cause::BadCompleteWorkflowExecutionAttributes));
            }
            close(
                mutation,
                A::WorkflowExecutionCompletedEventAttributes(
                    WorkflowExecutionCompletedEventAttributes {
                        result: attributes.result.clone(),
                        workflow_task_completed_event_id: completed_id,
                        new_execution_run_id: String::new(),
                    },
                ),
            );
        }
        Some(C::FailWorkflowExecutionCommandAttributes(attributes)) => {
            let Some(failure) = attributes.failure.as_ref() else {
                return Err(bad(
                    Cause::BadFailWorkflowExecutionAttributes,
                    "Failure is not set on FailWorkflowExecutionCommand.",
                ));
            };
            let successor = retry_successor(mutation, Some(failure), false);
            let retry_state = if successor.is_some() {
                RetryState::InProgress
            } else {
                retry_refusal(mutation, Some(failure), false)
            };
            close(
                mutation,
                A::WorkflowExecutionFailedEventAttributes(WorkflowExecutionFailedEventAttributes {
                    failure: Some(failure.clone()),
                    retry_state: retry_state as i32,
                    workflow_task_completed_event_id: completed_id,
                    new_execution_run_id: successor
                        .as_ref()
                        .map(|(run, _)| run.run_id.clone())
                        .unwrap_or_default(),
                }),
            );
            if let Some((run, _)) = successor {
                start_successor(mutation, run).map_err(|error| {
                    bad(Cause::BadFailWorkflowExecutionAttributes, error.to_string())
                })?;
            }
        }
        Some(C::CancelWorkflowExecutionCommandAttributes(attributes)) => {
            close(
                mutation,
                A::WorkflowExecutionCanceledEventAttributes(
                    WorkflowExecutionCanceledEventAttributes {
                        workflow_task_completed_event_id: completed_id,
                        details: attributes.details.clone(),
                    },
                ),
            );
        }
        Some(C::ContinueAsNewWorkflowExecutionCommandAttributes(attributes)) => {
            continue_as_new(mutation, request, attributes, completed_id)?;
        }
        Some(C::StartChildWorkflowExecutionCommandAttributes(attributes)) => {
            start_child(mutation, request, attributes, completed_id)?;
        }
        Some(C::SignalExternalWorkflowExecutionCommandAttributes(attributes)) => {
            let execution = attributes.execution.clone().unwrap_or_default();
            if execution.workflow_id.is_empty() {
                return Err(bad(
                    Cause::BadSignalWorkflowExecutionAttributes,
                    "WorkflowId is not set on SignalExternalWorkflowExecutionCommand.",
                ));
            }
            if attributes.signal_name.is_empty() {
                return Err(bad(
                    Cause::BadSignalWorkflowExecutionAttributes,
                    "SignalName is not set on SignalExternalWorkflowExecutionCommand.",
                ));
            }
            if !attributes.namespace.is_empty() && attributes.namespace != request.namespace {
                return Err(bad(
                    Cause::BadSignalWorkflowExecutionAttributes,
                    "cross namespace commands are not allowed",
                ));
            }
            if payloads_size(attributes.input.as_ref()) > limits.blob_size_error {
                return Err(too_large(Cause::BadSignalWorkflowExecutionAttributes));
            }
            if mutation.state.signals_out.len() >= limits.max_pending_signals {
                return Err(bad(
                    Cause::PendingSignalsLimitExceeded,
                    "the number of pending signals to external workflows has reached the limit",
                ));
            }
            let namespace_id = mutation.state.info().namespace_id.clone();
            let id = mutation.add(A::SignalExternalWorkflowExecutionInitiatedEventAttributes(
                SignalExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    namespace: request.namespace.clone(),
                    namespace_id,
                    workflow_execution: Some(execution),
                    signal_name: attributes.signal_name.clone(),
                    input: attributes.input.clone(),
                    control: attributes.control.clone(),
                    child_workflow_only: attributes.child_workflow_only,
                    header: attributes.header.clone(),
                },
            ));
            mutation.task(Task::new(TaskType::SignalExternal, mutation.now(), id));
        }
        Some(C::RequestCancelExternalWorkflowExecutionCommandAttributes(attributes)) => {
            if attributes.workflow_id.is_empty() {
                return Err(bad(
                    Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
                    "WorkflowId is not set on RequestCancelExternalWorkflowExecutionCommand.",
                ));
            }
            if !attributes.namespace.is_empty() && attributes.namespace != request.namespace {
                return Err(bad(
                    Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
                    "cross namespace commands are not allowed",
                ));
            }
            if mutation.state.cancels_out.len() >= limits.max_pending_cancels {
                return Err(bad(
                    Cause::PendingRequestCancelLimitExceeded,
                    "the number of pending requests to cancel external workflows has reached the limit",
                ));
            }
            let namespace_id = mutation.state.info().namespace_id.clone();
            let id = mutation.add(
                A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                        workflow_task_completed_event_id: completed_id,
                        namespace: request.namespace.clone(),
                        namespace_id,
                        workflow_execution: Some(
                            sundial_proto::api::common::v1::WorkflowExecution {
                                workflow_id: attributes.workflow_id.clone(),
                                run_id: attributes.run_id.clone(),
                            },
                        ),
                        control: attributes.control.clone(),
                        child_workflow_only: attributes.child_workflow_only,
                        reason: attributes.reason.clone(),
                    },
                ),
            );
            mutation.task(Task::new(TaskType::CancelExternal, mutation.now(), id));
        }
        Some(C::RecordMarkerCommandAttributes(attributes)) => {
            if attributes.marker_name.is_empty() {
                return Err(bad(
                    Cause::BadRecordMarkerAttributes,
                    "MarkerName is not set on RecordMarkerCommand.",
                ));
            }
            if attributes.marker_name.len() > max_id {
                return Err(bad(
                    Cause::BadRecordMarkerAttributes,
                    "MarkerName exceeds length limit.",
                ));
            }
            let size: usize = attributes
                .details
                .values()
                .map(|p| payloads_size(Some(p)))
                .sum();
            if size > limits.blob_size_error {
                return Err(too_large(Cause::BadRecordMarkerAttributes));
            }
            mutation.add(A::MarkerRecordedEventAttributes(
                MarkerRecordedEventAttributes {
                    marker_name: attributes.marker_name.clone(),
                    details: attributes.details.clone(),
                    workflow_task_completed_event_id: completed_id,
                    header: attributes.header.clone(),
                    failure: attributes.failure.clone(),
                },
            ));
        }
        Some(C::UpsertWorkflowSearchAttributesCommandAttributes(attributes)) => {
            let fields = attributes
                .search_attributes
                .as_ref()
                .map(|sa| sa.indexed_fields.len())
                .unwrap_or(0);
            if fields == 0 {
                return Err(bad(
                    WorkflowTaskFailedCause::BadSearchAttributes,
                    "IndexedFields is empty on command.",
                ));
            }
            let mut merged = mutation
                .state
                .info()
                .search_attributes
                .clone()
                .unwrap_or_default();
            crate::workflow::merge_search_attributes(
                &mut merged,
                attributes
                    .search_attributes
                    .as_ref()
                    .expect("checked above"),
            );
            check_search_attributes(
                request,
                limits,
                attributes.search_attributes.as_ref(),
                Some(&merged),
                WorkflowTaskFailedCause::BadSearchAttributes,
                |message| message,
            )?;
            mutation.add(A::UpsertWorkflowSearchAttributesEventAttributes(
                UpsertWorkflowSearchAttributesEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    search_attributes: attributes.search_attributes.clone(),
                },
            ));
        }
        Some(C::ModifyWorkflowPropertiesCommandAttributes(attributes)) => {
            let fields = attributes
                .upserted_memo
                .as_ref()
                .map(|memo| memo.fields.len())
                .unwrap_or(0);
            if fields == 0 {
                return Err(bad(
                    Cause::BadModifyWorkflowPropertiesAttributes,
                    "UpsertedMemo.Fields is empty on command.",
                ));
            }
            mutation.add(A::WorkflowPropertiesModifiedEventAttributes(
                WorkflowPropertiesModifiedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    upserted_memo: attributes.upserted_memo.clone(),
                },
            ));
        }
        Some(C::ProtocolMessageCommandAttributes(_)) => {
            // Handled by the caller, with the message it names.
        }
        _ => {
            return Err(bad(
                Cause::BadBinary,
                format!(
                    "unsupported command type: {}",
                    command.command_type().as_str_name()
                ),
            ));
        }
    }
    Ok(false)
}

fn schedule_activity(
    mutation: &mut Mutation,
    attributes: &sundial_proto::api::command::v1::ScheduleActivityTaskCommandAttributes,
    completed_id: i64,
) -> std::result::Result<(), CommandError> {
    use WorkflowTaskFailedCause as Cause;
    let limits = mutation.env.limits;
    let cause = Cause::BadScheduleActivityAttributes;
    // Temporal's order: task queue, ids, retry policy, lengths, then the timeouts.
    let task_queue_name = match attributes.task_queue.as_ref() {
        None => return Err(bad(cause, "taskQueue is not set")),
        Some(queue) if queue.name.is_empty() => return Err(bad(cause, "missing task queue name")),
        Some(queue) => queue.name.as_str(),
    };
    if attributes.activity_id.is_empty() {
        return Err(bad(cause, "activityId is not set"));
    }
    let type_name = attributes
        .activity_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or("");
    if type_name.is_empty() {
        return Err(bad(cause, "activityType is not set"));
    }
    let retry_policy = retry::with_defaults(attributes.retry_policy.clone(), limits);
    retry::validate(&retry_policy).map_err(|message| bad(cause, message))?;
    for (name, value) in [
        ("activityId", attributes.activity_id.as_str()),
        ("activityType", type_name),
        ("taskQueue", task_queue_name),
    ] {
        if value.len() > limits.max_id_length {
            return Err(bad(
                cause,
                format!(
                    "{name} exceeds length limit. Length={} Limit={}",
                    value.len(),
                    limits.max_id_length
                ),
            ));
        }
    }
    let run_timeout_ms = mutation.state.info().run_timeout_ms;
    let timeouts = crate::activity::normalise_timeouts(attributes, run_timeout_ms)
        .map_err(|message| bad(cause, message))?;
    if payloads_size(attributes.input.as_ref()) > limits.blob_size_error {
        return Err(too_large(cause));
    }
    if mutation
        .state
        .activities
        .values()
        .any(|a| a.activity_id == attributes.activity_id)
    {
        return Err(bad(
            Cause::ScheduleActivityDuplicateId,
            format!(
                "Activity with ID {} already exists.",
                attributes.activity_id
            ),
        ));
    }
    if mutation.state.activities.len() >= limits.max_pending_activities {
        return Err(bad(
            Cause::PendingActivitiesLimitExceeded,
            "the number of pending activities has reached the limit",
        ));
    }
    let mut task_queue = attributes.task_queue.clone().unwrap_or_default();
    if task_queue.kind == 0 {
        task_queue.kind = sundial_proto::api::enums::v1::TaskQueueKind::Normal as i32;
    }
    let id = mutation.add(A::ActivityTaskScheduledEventAttributes(
        ActivityTaskScheduledEventAttributes {
            activity_id: attributes.activity_id.clone(),
            activity_type: attributes.activity_type.clone(),
            task_queue: Some(task_queue),
            header: attributes.header.clone(),
            input: attributes.input.clone(),
            schedule_to_close_timeout: present_duration(timeouts.schedule_to_close_ms),
            schedule_to_start_timeout: present_duration(timeouts.schedule_to_start_ms),
            start_to_close_timeout: present_duration(timeouts.start_to_close_ms),
            heartbeat_timeout: present_duration(timeouts.heartbeat_ms),
            workflow_task_completed_event_id: completed_id,
            retry_policy: Some(retry_policy),
            use_workflow_build_id: attributes.use_workflow_build_id,
            priority: attributes.priority.clone(),
        },
    ));
    let activity = mutation
        .state
        .activities
        .get(&id)
        .cloned()
        .expect("just scheduled");
    let now = mutation.now();
    schedule_attempt_tasks(mutation, &activity, now);
    if activity.schedule_to_close_ms > 0 {
        let mut timeout = Task::new(
            TaskType::ActivityTimeout,
            now + activity.schedule_to_close_ms,
            id,
        );
        timeout.attempt = 1;
        timeout.timeout_type = sundial_proto::api::enums::v1::TimeoutType::ScheduleToClose as i32;
        mutation.task(timeout);
    }
    Ok(())
}

fn request_cancel_activity(
    mutation: &mut Mutation,
    scheduled_event_id: i64,
    completed_id: i64,
) -> std::result::Result<bool, CommandError> {
    let Some(activity) = mutation.state.activities.get(&scheduled_event_id).cloned() else {
        return Err(bad(
            WorkflowTaskFailedCause::BadRequestCancelActivityAttributes,
            format!(
                "invalid history builder state for action: add-activitytask-cancel-requested-event, ScheduledEventID: {scheduled_event_id}"
            ),
        ));
    };
    if activity.cancel_requested {
        return Ok(false);
    }
    let requested_id = mutation.add(A::ActivityTaskCancelRequestedEventAttributes(
        ActivityTaskCancelRequestedEventAttributes {
            scheduled_event_id,
            workflow_task_completed_event_id: completed_id,
        },
    ));
    if activity.started_time_ms == 0 {
        mutation.add_deferred(A::ActivityTaskCanceledEventAttributes(
            ActivityTaskCanceledEventAttributes {
                details: Some(Payloads {
                    payloads: vec![json_string("ACTIVITY_ID_NOT_STARTED")],
                }),
                latest_cancel_requested_event_id: requested_id,
                scheduled_event_id,
                started_event_id: 0,
                identity: String::new(),
                ..Default::default()
            },
        ));
        return Ok(true);
    }
    Ok(false)
}

fn cancel_timer(
    mutation: &mut Mutation,
    timer_id: &str,
    completed_id: i64,
    identity: &str,
) -> std::result::Result<(), CommandError> {
    let started_event_id = match mutation.state.timers.get(timer_id) {
        Some(timer) => timer.started_event_id,
        None => {
            // A timer that fired while this task ran: its fired event is still buffered.
            let position = mutation.state.buffered_events.iter().position(|event| {
                matches!(event.attributes.as_ref(), Some(A::TimerFiredEventAttributes(a)) if a.timer_id == timer_id)
            });
            let Some(position) = position else {
                return Err(bad(
                    WorkflowTaskFailedCause::BadCancelTimerAttributes,
                    format!(
                        "invalid history builder state for action: add-timer-canceled-event, TimerID: {timer_id}"
                    ),
                ));
            };
            let event = mutation.state.buffered_events.remove(position);
            match event.attributes {
                Some(A::TimerFiredEventAttributes(a)) => a.started_event_id,
                _ => 0,
            }
        }
    };
    mutation.add(A::TimerCanceledEventAttributes(
        TimerCanceledEventAttributes {
            timer_id: timer_id.to_string(),
            started_event_id,
            workflow_task_completed_event_id: completed_id,
            identity: identity.to_string(),
        },
    ));
    Ok(())
}

fn continue_as_new(
    mutation: &mut Mutation,
    request: &CompleteWorkflowTask,
    attributes: &sundial_proto::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes,
    completed_id: i64,
) -> std::result::Result<(), CommandError> {
    let cause = WorkflowTaskFailedCause::BadContinueAsNewAttributes;
    let limits = mutation.env.limits;
    if payloads_size(attributes.input.as_ref()) > limits.blob_size_error {
        return Err(too_large(cause));
    }
    if let Some(policy) = attributes.retry_policy.as_ref() {
        retry::validate(policy).map_err(|message| bad(cause, message))?;
    }
    let info = mutation.state.info().clone();
    check_search_attributes(
        request,
        limits,
        attributes.search_attributes.as_ref(),
        None,
        cause,
        |message| {
            let queue = attributes.task_queue.as_ref().map(|q| q.name.as_str());
            format!(
                "invalid SearchAttributes on ContinueAsNewWorkflowExecutionCommand: {message}. \
                 WorkflowType={} TaskQueue={}",
                attributes
                    .workflow_type
                    .as_ref()
                    .map(|t| t.name.as_str())
                    .unwrap_or(""),
                queue.unwrap_or(""),
            )
        },
    )?;
    let started = info.started.clone().unwrap_or_default();
    let workflow_type = attributes
        .workflow_type
        .clone()
        .filter(|t| !t.name.is_empty())
        .or(started.workflow_type.clone());
    let task_queue = attributes
        .task_queue
        .clone()
        .filter(|q| !q.name.is_empty())
        .unwrap_or_else(|| TaskQueue {
            name: info.task_queue.clone(),
            kind: 1,
            normal_name: String::new(),
        });
    let run_timeout = attributes
        .workflow_run_timeout
        .or(started.workflow_run_timeout);
    let task_timeout = attributes
        .workflow_task_timeout
        .or(started.workflow_task_timeout);
    let initiator = if attributes.initiator == 0 {
        ContinueAsNewInitiator::Workflow as i32
    } else {
        attributes.initiator
    };
    let new_run_id = (mutation.env.new_id)();
    // Runs of one workflow id start at least a second apart (Temporal's minimal reuse interval).
    let lived_ms = mutation.now() - info.start_time_ms;
    let backoff_ms = duration_ms(attributes.backoff_start_interval.as_ref())
        .max(MINIMAL_RUN_INTERVAL_MS - lived_ms);
    let new_attributes = WorkflowExecutionStartedEventAttributes {
        workflow_type: workflow_type.clone(),
        task_queue: Some(task_queue.clone()),
        input: attributes.input.clone(),
        workflow_run_timeout: run_timeout,
        workflow_task_timeout: task_timeout,
        continued_execution_run_id: info.run_id.clone(),
        initiator,
        continued_failure: attributes.failure.clone(),
        last_completion_result: attributes.last_completion_result.clone(),
        retry_policy: attributes.retry_policy.clone(),
        attempt: if initiator == ContinueAsNewInitiator::Retry as i32 {
            started.attempt + 1
        } else {
            1
        },
        cron_schedule: attributes.cron_schedule.clone(),
        memo: attributes.memo.clone(),
        search_attributes: attributes.search_attributes.clone(),
        header: attributes.header.clone(),
        ..Default::default()
    };
    close(
        mutation,
        A::WorkflowExecutionContinuedAsNewEventAttributes(
            WorkflowExecutionContinuedAsNewEventAttributes {
                new_execution_run_id: new_run_id.clone(),
                workflow_type,
                task_queue: Some(task_queue),
                input: attributes.input.clone(),
                workflow_run_timeout: run_timeout,
                workflow_task_timeout: task_timeout,
                workflow_task_completed_event_id: completed_id,
                backoff_start_interval: attributes.backoff_start_interval,
                // The event keeps the command's initiator as given (unset for the workflow's own).
                initiator: attributes.initiator,
                failure: attributes.failure.clone(),
                last_completion_result: attributes.last_completion_result.clone(),
                header: attributes.header.clone(),
                memo: attributes.memo.clone(),
                search_attributes: attributes.search_attributes.clone(),
                ..Default::default()
            },
        ),
    );
    let request = StartRequest {
        namespace_id: info.namespace_id.clone(),
        workflow_id: info.workflow_id.clone(),
        run_id: new_run_id,
        request_id: String::new(),
        attributes: new_attributes,
        first_task_backoff_ms: backoff_ms,
        signal: None,
        user_metadata: None,
    };
    start_successor(mutation, request).map_err(|error| bad(cause, error.to_string()))
}

fn start_child(
    mutation: &mut Mutation,
    request: &CompleteWorkflowTask,
    attributes: &sundial_proto::api::command::v1::StartChildWorkflowExecutionCommandAttributes,
    completed_id: i64,
) -> std::result::Result<(), CommandError> {
    let cause = WorkflowTaskFailedCause::BadStartChildExecutionAttributes;
    let limits = mutation.env.limits;
    if attributes.workflow_id.is_empty() {
        return Err(bad(
            cause,
            "Required field WorkflowId is not set on command.",
        ));
    }
    let type_name = attributes
        .workflow_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or("");
    if type_name.is_empty() {
        return Err(bad(
            cause,
            "Required field WorkflowType is not set on command.",
        ));
    }
    if attributes.workflow_id.len() > limits.max_id_length || type_name.len() > limits.max_id_length
    {
        return Err(bad(
            cause,
            "WorkflowId or WorkflowType exceeds length limit.",
        ));
    }
    if !attributes.namespace.is_empty() && attributes.namespace != request.namespace {
        return Err(bad(cause, "cross namespace commands are not allowed"));
    }
    check_search_attributes(
        request,
        limits,
        attributes.search_attributes.as_ref(),
        None,
        cause,
        |message| {
            format!(
                "invalid SearchAttributes on StartChildWorkflowCommand: {message}. WorkflowId={} \
                 WorkflowType={type_name} Namespace={}",
                attributes.workflow_id, request.namespace
            )
        },
    )?;
    for timeout in [
        &attributes.workflow_execution_timeout,
        &attributes.workflow_run_timeout,
        &attributes.workflow_task_timeout,
    ] {
        if !valid_duration(timeout.as_ref()) {
            return Err(bad(
                cause,
                "An invalid timeout is set on StartChildWorkflowExecutionCommand.",
            ));
        }
    }
    if let Some(policy) = attributes.retry_policy.as_ref() {
        retry::validate(policy).map_err(|message| bad(cause, message))?;
    }
    if payloads_size(attributes.input.as_ref()) > limits.blob_size_error {
        return Err(too_large(cause));
    }
    if mutation.state.children.len() >= limits.max_pending_children {
        return Err(bad(
            WorkflowTaskFailedCause::PendingChildWorkflowsLimitExceeded,
            "the number of pending child workflow executions has reached the limit",
        ));
    }
    let info = mutation.state.info().clone();
    let task_queue = attributes
        .task_queue
        .clone()
        .filter(|q| !q.name.is_empty())
        .unwrap_or_else(|| TaskQueue {
            name: info.task_queue.clone(),
            kind: 1,
            normal_name: String::new(),
        });
    let parent_close_policy = if attributes.parent_close_policy == 0 {
        ParentClosePolicy::Terminate as i32
    } else {
        attributes.parent_close_policy
    };
    let reuse_policy = if attributes.workflow_id_reuse_policy == 0 {
        WorkflowIdReusePolicy::AllowDuplicate as i32
    } else {
        attributes.workflow_id_reuse_policy
    };
    let (run_timeout, task_timeout) = crate::workflow::child_timeouts(
        attributes.workflow_execution_timeout.as_ref(),
        attributes.workflow_run_timeout.as_ref(),
        attributes.workflow_task_timeout.as_ref(),
        mutation.env,
    );
    let id = mutation.add(A::StartChildWorkflowExecutionInitiatedEventAttributes(
        StartChildWorkflowExecutionInitiatedEventAttributes {
            namespace: request.namespace.clone(),
            namespace_id: info.namespace_id.clone(),
            workflow_id: attributes.workflow_id.clone(),
            workflow_type: attributes.workflow_type.clone(),
            task_queue: Some(task_queue),
            input: attributes.input.clone(),
            workflow_execution_timeout: attributes.workflow_execution_timeout,
            workflow_run_timeout: run_timeout,
            workflow_task_timeout: task_timeout,
            parent_close_policy,
            control: attributes.control.clone(),
            workflow_task_completed_event_id: completed_id,
            workflow_id_reuse_policy: reuse_policy,
            retry_policy: attributes.retry_policy.clone(),
            cron_schedule: attributes.cron_schedule.clone(),
            header: attributes.header.clone(),
            memo: attributes.memo.clone(),
            search_attributes: attributes.search_attributes.clone(),
            priority: attributes.priority.clone(),
            ..Default::default()
        },
    ));
    let request_id = format!("{}-child-{}", info.run_id, id);
    if let Some(child) = mutation.state.children.get_mut(&id) {
        child.create_request_id = request_id;
    }
    mutation.task(Task::new(TaskType::StartChild, mutation.now(), id));
    Ok(())
}
