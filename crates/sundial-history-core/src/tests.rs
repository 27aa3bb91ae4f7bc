//! Core tests with no runtime: a request goes in, events and tasks come out. Histories are
//! compared in a compact text form, one event type per entry.

use std::cell::Cell;

use proptest::prelude::*;
use sundial_proto::api::command::v1::{Command, command::Attributes as C};
use sundial_proto::api::command::v1::{
    CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes,
};
use sundial_proto::api::common::v1::{ActivityType, WorkflowType};
use sundial_proto::api::enums::v1::{TaskQueueKind, TimeoutType, WorkflowTaskFailedCause};
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    HistoryEvent, WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
};
use sundial_proto::api::taskqueue::v1::TaskQueue;

use crate::state::MutableState;
use crate::tasks::TaskType;
use crate::update::{PendingUpdate, UpdateResult, unprocessed_update_failure};
use crate::util::{duration, duration_ms};
use crate::*;

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn next_id() -> String {
    COUNTER.with(|counter| {
        counter.set(counter.get() + 1);
        format!("00000000-0000-0000-0000-{:012}", counter.get())
    })
}

struct Fixture {
    limits: Limits,
    now_ms: i64,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            limits: Limits::default(),
            now_ms: 1_700_000_000_000,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            now_ms: self.now_ms,
            limits: &self.limits,
            new_id: &next_id_sync,
        }
    }
}

fn next_id_sync() -> String {
    next_id()
}

fn start_request(
    run_timeout_ms: i64,
    execution_timeout_ms: i64,
    task_timeout_ms: i64,
    backoff_ms: i64,
) -> StartRequest {
    StartRequest {
        namespace_id: "ns".into(),
        workflow_id: "wf".into(),
        run_id: "11111111-1111-1111-1111-111111111111".into(),
        request_id: "req".into(),
        attributes: WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(WorkflowType { name: "W".into() }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            workflow_run_timeout: duration(run_timeout_ms),
            workflow_execution_timeout: duration(execution_timeout_ms),
            workflow_task_timeout: duration(task_timeout_ms),
            ..Default::default()
        },
        first_task_backoff_ms: backoff_ms,
        signal: None,
        user_metadata: None,
    }
}

/// The compact text form: event types without the common prefix.
fn text(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            event
                .event_type()
                .as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_string()
        })
        .collect()
}

fn started(fixture: &Fixture) -> (MutableState, Vec<HistoryEvent>) {
    let (state, transition) = new_execution(&fixture.env(), start_request(0, 0, 0, 0)).unwrap();
    (state, transition.events)
}

fn take_task(
    state: &mut MutableState,
    fixture: &Fixture,
    history: &mut Vec<HistoryEvent>,
) -> (i64, i32) {
    let task = state
        .workflow_task
        .clone()
        .expect("a workflow task is scheduled");
    let recorded = record_workflow_task_started(
        state,
        &fixture.env(),
        task.scheduled_event_id,
        task.attempt,
        Poller {
            request_id: "r",
            identity: "w",
            ..Default::default()
        },
    )
    .unwrap();
    history.extend(recorded.transition.events);
    (task.scheduled_event_id, task.attempt)
}

/// A completion of workflow task `task` in namespace `default`.
fn completion(task: (i64, i32), commands: Vec<Command>) -> CompleteWorkflowTask {
    CompleteWorkflowTask {
        scheduled_event_id: task.0,
        attempt: task.1,
        commands,
        namespace: "default".into(),
        ..Default::default()
    }
}

fn complete_with(
    state: &mut MutableState,
    fixture: &Fixture,
    task: (i64, i32),
    commands: Vec<Command>,
) -> WorkflowTaskCompletion {
    complete_workflow_task(state, &fixture.env(), completion(task, commands)).unwrap()
}

fn timer(id: &str, ms: i64) -> Command {
    Command {
        command_type: 3,
        attributes: Some(C::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: id.into(),
                start_to_fire_timeout: duration(ms),
            },
        )),
        ..Default::default()
    }
}

fn activity(id: &str, start_to_close_ms: i64) -> Command {
    Command {
        command_type: 1,
        attributes: Some(C::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: id.into(),
                activity_type: Some(ActivityType { name: "A".into() }),
                task_queue: Some(TaskQueue {
                    name: "q".into(),
                    kind: 1,
                    normal_name: String::new(),
                }),
                start_to_close_timeout: duration(start_to_close_ms),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn complete_command() -> Command {
    Command {
        command_type: 4,
        attributes: Some(C::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: None },
        )),
        ..Default::default()
    }
}

fn signal_attributes(name: &str) -> WorkflowExecutionSignaledEventAttributes {
    WorkflowExecutionSignaledEventAttributes {
        signal_name: name.into(),
        ..Default::default()
    }
}

#[test]
fn start_writes_started_and_first_task() {
    let fixture = Fixture::new();
    let (state, transition) = new_execution(&fixture.env(), start_request(0, 0, 0, 0)).unwrap();
    assert_eq!(
        text(&transition.events),
        ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    );
    assert_eq!(transition.tasks.len(), 1);
    assert_eq!(transition.tasks[0].kind(), Some(TaskType::WorkflowTask));
    assert_eq!(state.info().next_event_id, 3);
    assert_eq!(state.info().workflow_task_timeout_ms, 10_000);
}

#[test]
fn timeouts_are_normalised() {
    let fixture = Fixture::new();
    let (state, _) = new_execution(&fixture.env(), start_request(0, 30_000, 0, 0)).unwrap();
    assert_eq!(state.info().run_timeout_ms, 30_000);
    assert_eq!(state.info().workflow_task_timeout_ms, 10_000);
    let (state, _) = new_execution(&fixture.env(), start_request(0, 0, 300_000, 0)).unwrap();
    assert_eq!(state.info().workflow_task_timeout_ms, 120_000);
    let (state, _) = new_execution(&fixture.env(), start_request(5_000, 0, 0, 0)).unwrap();
    assert_eq!(
        state.info().workflow_task_timeout_ms,
        5_000,
        "the task timeout is capped at the run timeout"
    );
}

#[test]
fn start_delay_defers_the_first_task_and_signals_do_not_schedule_it() {
    let fixture = Fixture::new();
    let (mut state, transition) =
        new_execution(&fixture.env(), start_request(0, 0, 0, 2_000)).unwrap();
    assert_eq!(text(&transition.events), ["WORKFLOW_EXECUTION_STARTED"]);
    assert_eq!(transition.tasks[0].kind(), Some(TaskType::WorkflowBackoff));
    let signaled = signal(&mut state, &fixture.env(), signal_attributes("early")).unwrap();
    assert_eq!(text(&signaled.events), ["WORKFLOW_EXECUTION_SIGNALED"]);
    let fired = backoff_fired(&mut state, &fixture.env()).unwrap();
    assert_eq!(text(&fired.events), ["WORKFLOW_TASK_SCHEDULED"]);
}

#[test]
fn activity_timeouts_are_normalised_and_retry_policy_filled() {
    let fixture = Fixture::new();
    let (mut state, _) = new_execution(&fixture.env(), start_request(60_000, 0, 0, 0)).unwrap();
    let mut history = Vec::new();
    let task = take_task(&mut state, &fixture, &mut history);
    let completion = complete_with(&mut state, &fixture, task, vec![activity("a", 5_000)]);
    let scheduled =
        completion
            .transition
            .events
            .iter()
            .find_map(|event| match event.attributes.as_ref() {
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Some(a.clone()),
                _ => None,
            });
    let scheduled = scheduled.expect("activity scheduled");
    assert_eq!(
        duration_ms(scheduled.schedule_to_close_timeout.as_ref()),
        60_000
    );
    assert_eq!(
        duration_ms(scheduled.schedule_to_start_timeout.as_ref()),
        60_000
    );
    assert_eq!(
        duration_ms(scheduled.start_to_close_timeout.as_ref()),
        5_000
    );
    let policy = scheduled.retry_policy.unwrap();
    assert_eq!(duration_ms(policy.initial_interval.as_ref()), 1_000);
    assert_eq!(duration_ms(policy.maximum_interval.as_ref()), 100_000);
    assert_eq!(policy.maximum_attempts, 0);
}

fn eager(command: Command) -> Command {
    let mut command = command;
    if let Some(C::ScheduleActivityTaskCommandAttributes(attributes)) = command.attributes.as_mut()
    {
        attributes.request_eager_execution = true;
    }
    command
}

fn complete_eager(
    state: &mut MutableState,
    fixture: &Fixture,
    task: (i64, i32),
    commands: Vec<Command>,
    enabled: bool,
) -> WorkflowTaskCompletion {
    let request = CompleteWorkflowTask {
        identity: "worker-1".into(),
        eager_activities: enabled,
        ..completion(task, commands)
    };
    complete_workflow_task(state, &fixture.env(), request).unwrap()
}

fn dispatches(transition: &Transition) -> Vec<i64> {
    transition
        .tasks
        .iter()
        .filter(|task| task.kind() == Some(TaskType::ActivityTask))
        .map(|task| task.event_id)
        .collect()
}

#[test]
fn eager_activities_start_in_the_completing_transition() {
    let fixture = Fixture::new();
    let (mut state, _) = started(&fixture);
    let mut history = Vec::new();
    let task = take_task(&mut state, &fixture, &mut history);
    let commands = vec![eager(activity("a", 5_000)), activity("b", 5_000)];
    let completion = complete_eager(&mut state, &fixture, task, commands, true);
    assert_eq!(completion.eager_activities.len(), 1);
    let a = &completion.eager_activities[0];
    assert_eq!(a.scheduled.as_ref().unwrap().activity_id, "a");
    assert!(a.started_time_ms > 0);
    assert_eq!(a.identity, "worker-1");
    // Only `b` goes to matching; `a` has its start-to-close timer instead.
    let b = state
        .activities
        .values()
        .find(|x| x.scheduled.as_ref().unwrap().activity_id == "b")
        .unwrap();
    assert_eq!(
        dispatches(&completion.transition),
        vec![b.scheduled_event_id]
    );
    assert!(completion.transition.tasks.iter().any(|task| {
        task.kind() == Some(TaskType::ActivityTimeout)
            && task.event_id == a.scheduled_event_id
            && task.timeout_type == TimeoutType::StartToClose as i32
    }));
    // The started event stays unwritten until the attempt ends, as for polled activities.
    assert!(
        !text(&completion.transition.events)
            .iter()
            .any(|e| e.contains("ActivityTaskStarted"))
    );
    assert!(state.activities[&a.scheduled_event_id].started_time_ms > 0);
}

#[test]
fn eager_activities_off_or_run_closed_dispatch_normally() {
    let fixture = Fixture::new();
    let (mut state, _) = started(&fixture);
    let mut history = Vec::new();
    let task = take_task(&mut state, &fixture, &mut history);
    let completion = complete_eager(
        &mut state,
        &fixture,
        task,
        vec![eager(activity("a", 5_000))],
        false,
    );
    assert!(completion.eager_activities.is_empty());
    assert_eq!(dispatches(&completion.transition).len(), 1);

    let (mut state, _) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let commands = vec![eager(activity("a", 5_000)), complete_command()];
    let completion = complete_eager(&mut state, &fixture, task, commands, true);
    assert!(completion.eager_activities.is_empty());
    assert!(!state.is_running());
}

#[test]
fn events_during_a_started_task_are_buffered_then_flushed() {
    let fixture = Fixture::new();
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let signaled = signal(&mut state, &fixture.env(), signal_attributes("s")).unwrap();
    assert!(
        signaled.events.is_empty(),
        "a signal during a started task is buffered"
    );
    let completion = complete_with(&mut state, &fixture, task, vec![timer("t", 1000)]);
    assert!(completion.error.is_none());
    assert_eq!(
        text(&completion.transition.events),
        [
            "WORKFLOW_TASK_COMPLETED",
            "TIMER_STARTED",
            "WORKFLOW_EXECUTION_SIGNALED",
            "WORKFLOW_TASK_SCHEDULED"
        ]
    );
    let ids: Vec<i64> = completion
        .transition
        .events
        .iter()
        .map(|event| event.event_id)
        .collect();
    assert_eq!(ids, [4, 5, 6, 7]);
}

#[test]
fn close_with_buffered_events_is_unhandled() {
    let fixture = Fixture::new();
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    signal(&mut state, &fixture.env(), signal_attributes("s")).unwrap();
    let completion = complete_with(&mut state, &fixture, task, vec![complete_command()]);
    assert_eq!(completion.error.unwrap().to_string(), "UnhandledCommand");
    assert_eq!(
        text(&completion.transition.events),
        [
            "WORKFLOW_TASK_FAILED",
            "WORKFLOW_EXECUTION_SIGNALED",
            "WORKFLOW_TASK_SCHEDULED"
        ]
    );
    assert!(state.is_running());
}

#[test]
fn repeated_failures_stay_out_of_history() {
    let fixture = Fixture::new();
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let failed = fail_workflow_task(
        &mut state,
        &fixture.env(),
        task.0,
        task.1,
        WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
        None,
        "w".into(),
    )
    .unwrap();
    assert_eq!(text(&failed.events), ["WORKFLOW_TASK_FAILED"]);
    let retry = take_task(&mut state, &fixture, &mut history);
    assert_eq!(retry, (5, 2));
    assert_eq!(history_suffix_for_transient(&state).len(), 2);
    let failed = fail_workflow_task(
        &mut state,
        &fixture.env(),
        retry.0,
        retry.1,
        WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
        None,
        "w".into(),
    )
    .unwrap();
    assert!(
        failed.events.is_empty(),
        "a transient failure writes nothing"
    );
    let third = take_task(&mut state, &fixture, &mut history);
    assert_eq!(third, (5, 3));
    let completion = complete_with(&mut state, &fixture, third, vec![timer("t", 10)]);
    assert_eq!(
        text(&completion.transition.events),
        [
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "TIMER_STARTED"
        ]
    );
    assert_eq!(completion.transition.events[0].event_id, 5);
}

#[test]
fn bad_command_at_attempt_one_fails_the_task_and_keeps_nothing_else() {
    let fixture = Fixture::new();
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let completion = complete_with(
        &mut state,
        &fixture,
        task,
        vec![timer("ok", 10), timer("", 10)],
    );
    assert_eq!(
        completion.error.unwrap().to_string(),
        "BadStartTimerAttributes: TimerId is not set on StartTimerCommand."
    );
    assert_eq!(
        text(&completion.transition.events),
        ["WORKFLOW_TASK_FAILED"]
    );
    assert!(
        state.timers.is_empty(),
        "the valid timer of the failed completion is thrown away"
    );
    assert_eq!(state.workflow_task.as_ref().unwrap().attempt, 2);
}

fn json(text: &str) -> sundial_proto::api::common::v1::Payload {
    sundial_proto::api::common::v1::Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: text.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn search_attributes(
    entries: &[(&str, &str)],
) -> Option<sundial_proto::api::common::v1::SearchAttributes> {
    Some(sundial_proto::api::common::v1::SearchAttributes {
        indexed_fields: entries
            .iter()
            .map(|(name, value)| (name.to_string(), json(value)))
            .collect(),
    })
}

/// A completion in a namespace whose custom attributes are `CustInt` (Int) and `CustKw`
/// (Keyword).
fn complete_in_namespace(
    state: &mut MutableState,
    fixture: &Fixture,
    task: (i64, i32),
    command: Command,
) -> WorkflowTaskCompletion {
    let mut request = completion(task, vec![command]);
    request.custom_search_attributes = [
        ("CustInt".to_string(), sundial_visibility::SaType::Int),
        ("CustKw".to_string(), sundial_visibility::SaType::Keyword),
    ]
    .into();
    complete_workflow_task(state, &fixture.env(), request).unwrap()
}

#[test]
fn commands_set_only_known_attributes_of_their_type() {
    use sundial_proto::api::command::v1::{
        ContinueAsNewWorkflowExecutionCommandAttributes,
        StartChildWorkflowExecutionCommandAttributes,
        UpsertWorkflowSearchAttributesCommandAttributes,
    };
    let upsert = |entries: &[(&str, &str)]| Command {
        command_type: 14,
        attributes: Some(C::UpsertWorkflowSearchAttributesCommandAttributes(
            UpsertWorkflowSearchAttributesCommandAttributes {
                search_attributes: search_attributes(entries),
            },
        )),
        ..Default::default()
    };
    let continue_as_new = Command {
        command_type: 9,
        attributes: Some(C::ContinueAsNewWorkflowExecutionCommandAttributes(
            ContinueAsNewWorkflowExecutionCommandAttributes {
                search_attributes: search_attributes(&[("NoSuchSA", "1")]),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let child = Command {
        command_type: 11,
        attributes: Some(C::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: "kid".into(),
                workflow_type: Some(WorkflowType { name: "K".into() }),
                search_attributes: search_attributes(&[("CustInt", "\"x\"")]),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let cases: [(Command, &str, WorkflowTaskFailedCause); 4] = [
        (
            upsert(&[("NoSuchSA", "1")]),
            "BadSearchAttributes: Namespace default has no mapping defined for search attribute \
             NoSuchSA",
            WorkflowTaskFailedCause::BadSearchAttributes,
        ),
        (
            upsert(&[("CustKw", "3")]),
            "BadSearchAttributes: invalid value for search attribute CustKw of type Keyword: 3",
            WorkflowTaskFailedCause::BadSearchAttributes,
        ),
        (
            continue_as_new,
            "BadSearchAttributes: Namespace default has no mapping defined for search attribute \
             NoSuchSA",
            WorkflowTaskFailedCause::BadSearchAttributes,
        ),
        (
            child,
            "BadSearchAttributes: invalid SearchAttributes on StartChildWorkflowCommand: invalid \
             value for search attribute CustInt of type Int: x. WorkflowId=kid WorkflowType=K \
             Namespace=default",
            WorkflowTaskFailedCause::BadSearchAttributes,
        ),
    ];
    for (command, message, cause) in cases {
        let fixture = Fixture::new();
        let (mut state, mut history) = started(&fixture);
        let task = take_task(&mut state, &fixture, &mut history);
        let completion = complete_in_namespace(&mut state, &fixture, task, command);
        assert_eq!(completion.error.unwrap().to_string(), message);
        let failed = &completion.transition.events[0];
        let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = &failed.attributes else {
            panic!("the task fails: {:?}", text(&completion.transition.events));
        };
        assert_eq!(failed.cause, cause as i32);
    }

    // A valid upsert is recorded; one that makes the run's map too large terminates it.
    let fixture = Fixture::new();
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let done = complete_in_namespace(&mut state, &fixture, task, upsert(&[("CustInt", "5")]));
    assert!(done.error.is_none(), "{:?}", done.error);
    assert_eq!(
        text(&done.transition.events),
        [
            "WORKFLOW_TASK_COMPLETED",
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"
        ]
    );
    let mut fixture = Fixture::new();
    fixture.limits.search_attributes.max_total_size = 40;
    let (mut state, mut history) = started(&fixture);
    let task = take_task(&mut state, &fixture, &mut history);
    let big = format!("\"{}\"", "k".repeat(30));
    let done = complete_in_namespace(&mut state, &fixture, task, upsert(&[("CustKw", &big)]));
    assert!(
        done.error
            .unwrap()
            .to_string()
            .contains("total size of search attributes"),
    );
    assert_eq!(
        text(&done.transition.events).last().map(String::as_str),
        Some("WORKFLOW_EXECUTION_TERMINATED")
    );
}

#[derive(Debug, Clone)]
enum Step {
    Signal,
    TakeTask,
    CompleteWithTimer,
    CompleteWithActivity,
    FailTask,
    FireTimers,
    FinishActivities,
    AdvanceTime,
    /// An update arrives (a speculative task is made when the run has none).
    Update,
    /// The started task accepts and completes every update sent on it.
    AcceptUpdates,
    /// The started task rejects every update sent on it, with no command.
    RejectUpdates,
    /// A speculative task nobody took times out to start.
    SpeculativeTimeout,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Signal),
        3 => Just(Step::TakeTask),
        1 => Just(Step::CompleteWithTimer),
        1 => Just(Step::CompleteWithActivity),
        1 => Just(Step::FailTask),
        1 => Just(Step::FireTimers),
        1 => Just(Step::FinishActivities),
        1 => Just(Step::AdvanceTime),
        3 => Just(Step::Update),
        2 => Just(Step::AcceptUpdates),
        1 => Just(Step::RejectUpdates),
        1 => Just(Step::SpeculativeTimeout),
    ]
}

fn update_body<M: prost::Message>(name: &str, body: &M) -> Option<prost_types::Any> {
    Some(prost_types::Any {
        type_url: format!("type.googleapis.com/temporal.api.update.v1.{name}"),
        value: body.encode_to_vec(),
    })
}

/// The acceptance and the response of update `update_id` (sequenced after `event_id`), and
/// the `PROTOCOL_MESSAGE` commands naming them.
fn accept_and_complete(
    update: &PendingUpdate,
    event_id: i64,
) -> (Vec<sundial_proto::api::protocol::v1::Message>, Vec<Command>) {
    use sundial_proto::api::command::v1::ProtocolMessageCommandAttributes;
    use sundial_proto::api::protocol::v1::Message;
    use sundial_proto::api::update::v1::{Acceptance, Meta, Outcome, Response, outcome};
    let id = &update.update_id;
    let accept = Message {
        id: format!("{id}/accept"),
        protocol_instance_id: id.clone(),
        body: update_body(
            "Acceptance",
            &Acceptance {
                accepted_request_message_id: format!("{id}/request"),
                accepted_request_sequencing_event_id: event_id,
                accepted_request: Some(update.request.clone()),
            },
        ),
        ..Default::default()
    };
    let complete = Message {
        id: format!("{id}/complete"),
        protocol_instance_id: id.clone(),
        body: update_body(
            "Response",
            &Response {
                meta: Some(Meta {
                    update_id: id.clone(),
                    identity: String::new(),
                }),
                outcome: Some(Outcome {
                    value: Some(outcome::Value::Success(Default::default())),
                }),
            },
        ),
        ..Default::default()
    };
    let commands = [&accept, &complete]
        .iter()
        .map(|message| Command {
            command_type: sundial_proto::api::enums::v1::CommandType::ProtocolMessage as i32,
            attributes: Some(C::ProtocolMessageCommandAttributes(
                ProtocolMessageCommandAttributes {
                    message_id: message.id.clone(),
                },
            )),
            ..Default::default()
        })
        .collect();
    (vec![accept, complete], commands)
}

/// What the history service's registry would hold: updates admitted and not yet answered.
#[derive(Default)]
struct Updates {
    next: u32,
    pending: Vec<PendingUpdate>,
}

impl Updates {
    /// The updates a completion of the started task is handed; marks nothing.
    fn for_completion(&self) -> Vec<PendingUpdate> {
        self.pending.clone()
    }

    /// Applies a completion's results: answered updates leave; the rest stay, not on a task.
    fn apply(&mut self, results: &[UpdateResult]) {
        let answered: Vec<&str> = results
            .iter()
            .filter_map(|result| match result {
                UpdateResult::Completed { update_id, .. }
                | UpdateResult::Rejected { update_id, .. } => Some(update_id.as_str()),
                UpdateResult::Accepted { .. } => None,
            })
            .collect();
        self.pending
            .retain(|update| !answered.contains(&update.update_id.as_str()));
        for update in &mut self.pending {
            update.sent_on_this_task = false;
        }
    }
}

/// The part of mutable state that history determines.
fn projection(state: &MutableState) -> String {
    let info = state.info();
    let task = state
        .workflow_task
        .as_ref()
        .filter(|task| !task.transient)
        .map(|task| (task.scheduled_event_id, task.started_event_id));
    format!(
        "next={} status={} signals={} last_completed={} timers={:?} activities={:?} task={:?} updates={:?}",
        info.next_event_id,
        info.status,
        info.signal_count,
        info.last_completed_wft_started_id,
        state.timers.keys().collect::<Vec<_>>(),
        state.activities.keys().collect::<Vec<_>>(),
        task,
        state
            .updates
            .iter()
            .map(|(id, info)| (id.clone(), info.accepted_event_id, info.completed_event_id))
            .collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever happened, replaying the written history rebuilds the same state.
    #[test]
    fn replay_rebuilds_live_state(steps in proptest::collection::vec(step(), 1..40)) {
        let mut fixture = Fixture::new();
        let (mut state, mut history) = started(&fixture);
        let mut timer_index = 0;
        let mut updates = Updates::default();
        for step in steps {
            let env_events = match step {
                Step::Signal => signal(&mut state, &fixture.env(), signal_attributes("s")).map(|t| t.events).unwrap_or_default(),
                Step::TakeTask => match state.workflow_task.clone().filter(|task| task.started_event_id == 0) {
                    Some(task) => record_workflow_task_started(&mut state, &fixture.env(), task.scheduled_event_id, task.attempt, Poller { request_id: "r", identity: "w", ..Default::default() })
                        .map(|recorded| {
                            // Every unanswered update goes out on the task that starts.
                            for update in &mut updates.pending {
                                update.sent = true;
                                update.sent_on_this_task = true;
                            }
                            recorded.transition.events
                        })
                        .unwrap_or_default(),
                    None => Vec::new(),
                },
                Step::CompleteWithTimer | Step::CompleteWithActivity => match state.started_workflow_task().cloned() {
                    Some(task) => {
                        timer_index += 1;
                        let command = if matches!(step, Step::CompleteWithTimer) { timer(&format!("t{timer_index}"), 100) } else { activity(&format!("a{timer_index}"), 1000) };
                        let mut request = completion((task.scheduled_event_id, task.attempt), vec![command]);
                        request.updates = updates.for_completion();
                        let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
                        updates.apply(&done.updates);
                        done.transition.events
                    }
                    None => Vec::new(),
                },
                Step::Update => {
                    if state.is_running() {
                        updates.next += 1;
                        updates.pending.push(pending_update(&format!("u{}", updates.next), false));
                        schedule_for_update(&mut state, &fixture.env()).events
                    } else {
                        Vec::new()
                    }
                }
                Step::AcceptUpdates | Step::RejectUpdates => match state.started_workflow_task().cloned() {
                    Some(task) => {
                        let sent: Vec<PendingUpdate> = updates.pending.iter().filter(|u| u.sent_on_this_task).cloned().collect();
                        let mut request = completion((task.scheduled_event_id, task.attempt), vec![]);
                        for update in &sent {
                            if matches!(step, Step::AcceptUpdates) {
                                let (messages, commands) = accept_and_complete(update, task.started_event_id - 1);
                                request.messages.extend(messages);
                                request.commands.extend(commands);
                            } else {
                                request.messages.push(rejection(&update.update_id));
                            }
                        }
                        request.updates = updates.for_completion();
                        request.discard_speculative_with_events = true;
                        let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
                        prop_assert!(done.error.is_none(), "{:?}", done.error);
                        updates.apply(&done.updates);
                        done.transition.events
                    }
                    None => Vec::new(),
                },
                Step::SpeculativeTimeout => match state.workflow_task.clone().filter(|task| task.speculative && task.started_event_id == 0) {
                    Some(task) => {
                        fixture.now_ms += SPECULATIVE_SCHEDULE_TO_START_MS;
                        workflow_task_timeout(&mut state, &fixture.env(), task.scheduled_event_id, task.attempt, TimeoutType::ScheduleToStart).unwrap().events
                    }
                    None => Vec::new(),
                },
                Step::FailTask => match state.started_workflow_task().cloned() {
                    // The updates it carried go out again on the next task.
                    Some(task) => {
                        for update in &mut updates.pending {
                            update.sent_on_this_task = false;
                        }
                        fail_workflow_task(&mut state, &fixture.env(), task.scheduled_event_id, task.attempt, WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure, None, "w".into()).map(|t| t.events).unwrap_or_default()
                    }
                    None => Vec::new(),
                },
                Step::FireTimers => {
                    let mut events = Vec::new();
                    for timer in state.timers.values().cloned().collect::<Vec<_>>() {
                        if let Ok(transition) = fire_timer(&mut state, &fixture.env(), &timer.timer_id, timer.started_event_id) {
                            events.extend(transition.events);
                        }
                    }
                    events
                }
                Step::FinishActivities => {
                    let mut events = Vec::new();
                    for activity in state.activities.values().cloned().collect::<Vec<_>>() {
                        let env = fixture.env();
                        if let Ok(started) = record_activity_started(&mut state, &env, activity.scheduled_event_id, activity.attempt, "ar", "w") {
                            events.extend(started.transition.events);
                            if let Ok(done) = complete_activity(&mut state, &env, activity.scheduled_event_id, activity.attempt, None, "w".into()) {
                                events.extend(done.events);
                            }
                        }
                    }
                    events
                }
                Step::AdvanceTime => {
                    fixture.now_ms += 1000;
                    Vec::new()
                }
            };
            history.extend(env_events);
        }
        let ids: Vec<i64> = history.iter().map(|event| event.event_id).collect();
        prop_assert_eq!(ids, (1..=history.len() as i64).collect::<Vec<_>>(), "event ids are dense");
        // Whatever has fired or finished in history is no longer pending.
        for event in &history {
            match event.attributes.as_ref() {
                Some(Attributes::TimerFiredEventAttributes(a)) => {
                    prop_assert!(state.timers.get(&a.timer_id).is_none_or(|t| t.started_event_id != a.started_event_id));
                }
                Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                    prop_assert!(!state.activities.contains_key(&a.scheduled_event_id));
                }
                _ => {}
            }
        }
        if state.buffered_events.is_empty() {
            let replayed = replay("ns", &history);
            prop_assert_eq!(projection(&replayed), projection(&state));
        }
    }
}

fn started_attributes(
    events: &[HistoryEvent],
) -> sundial_proto::api::history::v1::WorkflowTaskStartedEventAttributes {
    events
        .iter()
        .rev()
        .find_map(|event| match event.attributes.as_ref() {
            Some(Attributes::WorkflowTaskStartedEventAttributes(a)) => Some(a.clone()),
            _ => None,
        })
        .expect("a workflow task started event")
}

#[test]
fn started_event_suggests_continue_as_new_with_reasons() {
    use sundial_proto::api::enums::v1::SuggestContinueAsNewReason as Reason;
    let mut fixture = Fixture::new();
    let (mut state, _) = started(&fixture);
    let mut history = Vec::new();
    take_task(&mut state, &fixture, &mut history);
    let quiet = started_attributes(&history);
    assert!(!quiet.suggest_continue_as_new);
    assert!(quiet.suggest_continue_as_new_reasons.is_empty());
    assert!(quiet.history_size_bytes > 0);

    // The count limit compares the started event's own id (3 here), as Temporal does.
    fixture.limits.history_count_suggest_continue_as_new = 3;
    let (mut state, _) = started(&fixture);
    let mut history = Vec::new();
    take_task(&mut state, &fixture, &mut history);
    let by_count = started_attributes(&history);
    assert!(by_count.suggest_continue_as_new);
    assert_eq!(
        by_count.suggest_continue_as_new_reasons,
        [Reason::TooManyHistoryEvents as i32]
    );

    fixture.limits.history_size_suggest_continue_as_new = 1;
    let (mut state, _) = started(&fixture);
    let mut history = Vec::new();
    take_task(&mut state, &fixture, &mut history);
    assert_eq!(
        started_attributes(&history).suggest_continue_as_new_reasons,
        [
            Reason::HistorySizeTooLarge as i32,
            Reason::TooManyHistoryEvents as i32
        ]
    );

    // A retried (transient) task carries the advice in its synthesized started event too.
    fixture.limits.history_count_suggest_continue_as_new = 4096;
    let task = state.workflow_task.clone().unwrap();
    fail_workflow_task(
        &mut state,
        &fixture.env(),
        task.scheduled_event_id,
        task.attempt,
        WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
        None,
        "w".into(),
    )
    .unwrap();
    let retry = state.workflow_task.clone().unwrap();
    assert!(retry.transient);
    record_workflow_task_started(
        &mut state,
        &fixture.env(),
        retry.scheduled_event_id,
        retry.attempt,
        Poller {
            request_id: "r2",
            identity: "w",
            ..Default::default()
        },
    )
    .unwrap();
    let suffix = history_suffix_for_transient(&state);
    assert_eq!(
        started_attributes(&suffix).suggest_continue_as_new_reasons,
        [Reason::HistorySizeTooLarge as i32]
    );
}

/// The ScheduleActivityTask attributes with the given timeouts in ms (`None`: unset).
fn timeouts_command(
    schedule_to_close: Option<i64>,
    schedule_to_start: Option<i64>,
    start_to_close: Option<i64>,
    heartbeat: Option<i64>,
) -> ScheduleActivityTaskCommandAttributes {
    let set = |ms: Option<i64>| {
        ms.map(|ms| sundial_proto::prost_types::Duration {
            seconds: ms / 1000,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        })
    };
    ScheduleActivityTaskCommandAttributes {
        activity_id: "act-1".into(),
        activity_type: Some(ActivityType { name: "A".into() }),
        schedule_to_close_timeout: set(schedule_to_close),
        schedule_to_start_timeout: set(schedule_to_start),
        start_to_close_timeout: set(start_to_close),
        heartbeat_timeout: set(heartbeat),
        ..Default::default()
    }
}

/// Temporal 1.32's normalisation (the differential suite's s34 records the same cases on the
/// wire): (s2c, s2s, stc, hb) in, run timeout, and the four values out.
#[test]
fn activity_timeout_normalisation_matches_temporal() {
    use crate::activity::{ActivityTimeouts, normalise_timeouts};
    let s = |seconds: i64| Some(seconds * 1000);
    const S: i64 = 1000;
    #[allow(clippy::type_complexity)]
    let cases: [(
        (Option<i64>, Option<i64>, Option<i64>, Option<i64>),
        i64,
        [i64; 4],
    ); 14] = [
        // Only start-to-close: schedule-to-close is the run timeout, or none.
        ((None, None, s(60), None), 0, [0, 0, 60 * S, 0]),
        (
            (None, None, s(60), None),
            120 * S,
            [120 * S, 120 * S, 60 * S, 0],
        ),
        // A zero duration counts as unset.
        ((Some(0), Some(0), s(60), Some(0)), 0, [0, 0, 60 * S, 0]),
        // Only schedule-to-close: the others default to it, then the run timeout caps all.
        ((s(50), None, None, None), 0, [50 * S, 50 * S, 50 * S, 0]),
        (
            (s(1000), None, None, None),
            120 * S,
            [120 * S, 120 * S, 120 * S, 0],
        ),
        (
            (None, None, s(1000), None),
            120 * S,
            [120 * S, 120 * S, 120 * S, 0],
        ),
        // Start-to-close and schedule-to-start are capped by schedule-to-close.
        ((s(50), None, s(100), None), 0, [50 * S, 50 * S, 50 * S, 0]),
        ((s(50), s(100), None, None), 0, [50 * S, 50 * S, 50 * S, 0]),
        (
            (s(100), s(10), s(20), None),
            0,
            [100 * S, 10 * S, 20 * S, 0],
        ),
        // Without schedule-to-close, schedule-to-start is kept even above start-to-close.
        ((None, s(1000), s(60), None), 0, [0, 1000 * S, 60 * S, 0]),
        (
            (None, s(1000), s(60), None),
            120 * S,
            [120 * S, 120 * S, 60 * S, 0],
        ),
        // The heartbeat timeout is capped by start-to-close.
        ((None, None, s(60), s(100)), 0, [0, 0, 60 * S, 60 * S]),
        ((None, None, s(60), s(10)), 0, [0, 0, 60 * S, 10 * S]),
        // Fractions are kept.
        ((None, None, Some(1_500), Some(500)), 0, [0, 0, 1_500, 500]),
    ];
    for ((s2c, s2s, stc, hb), run_ms, want) in cases {
        let got = normalise_timeouts(&timeouts_command(s2c, s2s, stc, hb), run_ms)
            .unwrap_or_else(|error| panic!("{s2c:?} {s2s:?} {stc:?} {hb:?}: {error}"));
        let want = ActivityTimeouts {
            schedule_to_close_ms: want[0],
            schedule_to_start_ms: want[1],
            start_to_close_ms: want[2],
            heartbeat_ms: want[3],
        };
        assert_eq!(got, want, "{s2c:?} {s2s:?} {stc:?} {hb:?} run {run_ms} ms");
    }

    let refused = |command: ScheduleActivityTaskCommandAttributes, run: i64| {
        normalise_timeouts(&command, run).unwrap_err()
    };
    let needs = "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId=act-1 ActivityType=A";
    assert_eq!(refused(timeouts_command(None, None, None, None), 0), needs);
    // Neither schedule-to-start, nor a heartbeat, nor a finite run timeout stands in.
    assert_eq!(
        refused(timeouts_command(None, s(5), None, s(5)), 120_000),
        needs
    );
    let mut negative = timeouts_command(None, None, s(60), None);
    negative.heartbeat_timeout = Some(sundial_proto::prost_types::Duration {
        seconds: -1,
        nanos: 0,
    });
    assert_eq!(
        refused(negative.clone(), 0),
        "invalid HeartbeatTimeout: negative duration"
    );
    // Checked in Temporal's order: schedule-to-close first.
    negative.schedule_to_close_timeout = negative.heartbeat_timeout;
    assert_eq!(
        refused(negative, 0),
        "invalid ScheduleToCloseTimeout: negative duration"
    );
}

#[test]
fn due_work_follows_the_run() {
    let fixture = Fixture::new();
    let now = fixture.now_ms;
    let due_now = |state: &MutableState, at: i64| due(&rebuild_tasks(state), at);
    // A new run waits for a worker, and wakes for its run timeout.
    let (mut state, _) = new_execution(&fixture.env(), start_request(60_000, 0, 0, 0)).unwrap();
    assert_eq!(
        due_now(&state, now),
        Due {
            wake_ms: Some(now + 60_000),
            dispatch_pending: true
        }
    );
    // Started, its task's start-to-close timeout comes first.
    let mut history = Vec::new();
    let task = take_task(&mut state, &fixture, &mut history);
    assert_eq!(
        due_now(&state, now),
        Due {
            wake_ms: Some(now + 10_000),
            dispatch_pending: false
        }
    );
    // A timer and an activity: the activity waits for a worker, the timer wakes the run.
    complete_with(
        &mut state,
        &fixture,
        task,
        vec![timer("t", 5_000), activity("a", 30_000)],
    );
    assert_eq!(
        due_now(&state, now),
        Due {
            wake_ms: Some(now + 5_000),
            dispatch_pending: true
        }
    );
    // A dispatch that is not due yet (a retry's backoff) wakes the run at its time instead.
    let activity = state.activities.values_mut().next().unwrap();
    activity.scheduled_time_ms = now + 2_000;
    assert_eq!(due_now(&state, now).wake_ms, Some(now + 2_000));
    assert_eq!(due_now(&state, now + 2_000).wake_ms, Some(now + 5_000));
    assert!(due_now(&state, now + 2_000).dispatch_pending);
    // A closed run has nothing due.
    let closed = MutableState {
        info: Some(crate::state::ExecutionInfo {
            status: 2,
            ..state.info().clone()
        }),
        ..state.clone()
    };
    assert_eq!(due_now(&closed, now), Due::default());
}

/// A run whose first task completed with a timer: open, idle, nothing scheduled.
fn idle_after_first_task(fixture: &Fixture) -> (MutableState, Vec<HistoryEvent>) {
    let (mut state, mut history) = started(fixture);
    let task = take_task(&mut state, fixture, &mut history);
    let completion = complete_with(&mut state, fixture, task, vec![timer("t", 60_000)]);
    history.extend(completion.transition.events);
    assert!(state.workflow_task.is_none());
    (state, history)
}

fn pending_update(update_id: &str, sent_on_this_task: bool) -> PendingUpdate {
    PendingUpdate {
        update_id: update_id.into(),
        request: sundial_proto::api::update::v1::Request {
            meta: Some(sundial_proto::api::update::v1::Meta {
                update_id: update_id.into(),
                identity: "client".into(),
            }),
            input: Some(sundial_proto::api::update::v1::Input {
                name: "u".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        sent: sent_on_this_task,
        sent_on_this_task,
    }
}

fn rejection(update_id: &str) -> sundial_proto::api::protocol::v1::Message {
    use prost::Message as _;
    let body = sundial_proto::api::update::v1::Rejection {
        rejected_request_message_id: format!("{update_id}/request"),
        failure: Some(sundial_proto::api::failure::v1::Failure {
            message: "no".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    sundial_proto::api::protocol::v1::Message {
        id: format!("{update_id}/reject"),
        protocol_instance_id: update_id.into(),
        body: Some(prost_types::Any {
            type_url: "type.googleapis.com/temporal.api.update.v1.Rejection".into(),
            value: body.encode_to_vec(),
        }),
        ..Default::default()
    }
}

#[test]
fn speculative_task_writes_nothing_until_it_times_out_to_start() {
    let mut fixture = Fixture::new();
    let (mut state, history) = idle_after_first_task(&fixture);
    let next_event_id = state.info().next_event_id;
    let scheduled = schedule_for_update(&mut state, &fixture.env());
    assert!(
        scheduled.events.is_empty(),
        "a speculative task is not written"
    );
    let task = state.workflow_task.clone().unwrap();
    assert!(task.speculative && task.transient);
    assert_eq!((task.scheduled_event_id, task.attempt), (next_event_id, 1));
    let timeout = scheduled
        .tasks
        .iter()
        .find(|task| task.task_type == TaskType::WorkflowTaskTimeout as i32)
        .expect("a schedule-to-start timeout");
    assert_eq!(
        timeout.fire_time_ms,
        fixture.now_ms + SPECULATIVE_SCHEDULE_TO_START_MS
    );
    assert_eq!(timeout.timeout_type, TimeoutType::ScheduleToStart as i32);
    // A second admission while it waits schedules nothing more.
    assert_eq!(
        schedule_for_update(&mut state, &fixture.env()).tasks.len(),
        0
    );

    fixture.now_ms += SPECULATIVE_SCHEDULE_TO_START_MS;
    let timed_out = workflow_task_timeout(
        &mut state,
        &fixture.env(),
        task.scheduled_event_id,
        1,
        TimeoutType::ScheduleToStart,
    )
    .unwrap();
    assert_eq!(
        text(&timed_out.events),
        [
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_TIMED_OUT",
            "WORKFLOW_TASK_SCHEDULED"
        ],
        "the task is written, timed out, and a normal one scheduled"
    );
    assert_eq!(timed_out.events[0].event_id, next_event_id);
    let retry = state.workflow_task.clone().unwrap();
    assert!(!retry.speculative && !retry.transient);
    assert_eq!(retry.scheduled_event_id, next_event_id + 2);
    assert_eq!(history.len() as i64 + 3, retry.scheduled_event_id);
}

#[test]
fn speculative_task_started_in_time_is_not_timed_out_to_start() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let late = workflow_task_timeout(
        &mut state,
        &fixture.env(),
        task.0,
        task.1,
        TimeoutType::ScheduleToStart,
    )
    .unwrap();
    assert!(late.events.is_empty() && late.tasks.is_empty());
    assert!(state.workflow_task.as_ref().unwrap().speculative);
}

#[test]
fn speculative_task_answered_only_with_rejections_vanishes() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    let before = state.info().next_event_id;
    let last_completed = state.info().last_completed_wft_started_id;
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let mut request = completion(task, vec![]);
    request.messages = vec![rejection("u1")];
    request.updates = vec![pending_update("u1", true)];
    // The task shipped the timer's event again: only a worker that says it copes with that
    // gets the task discarded (Temporal's `discard_speculative_workflow_task_with_events`).
    let mut without = state.clone();
    let written = complete_workflow_task(&mut without, &fixture.env(), request.clone()).unwrap();
    assert_eq!(
        text(&written.transition.events),
        [
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED"
        ]
    );
    request.discard_speculative_with_events = true;
    let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert!(done.error.is_none());
    assert!(done.transition.events.is_empty(), "nothing is written");
    assert_eq!(done.reset_history_event_id, last_completed);
    assert!(matches!(
        done.updates.as_slice(),
        [UpdateResult::Rejected { update_id, .. }] if update_id == "u1"
    ));
    assert!(state.workflow_task.is_none());
    assert_eq!(state.info().next_event_id, before, "event ids are reused");
}

#[test]
fn speculative_task_with_a_command_is_written() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    let before = state.info().next_event_id;
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let mut request = completion(task, vec![timer("t2", 1_000)]);
    request.messages = vec![rejection("u1")];
    request.updates = vec![pending_update("u1", true)];
    let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert!(done.error.is_none());
    assert_eq!(
        text(&done.transition.events),
        [
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "TIMER_STARTED"
        ]
    );
    assert_eq!(done.transition.events[0].event_id, before);
    assert_eq!(done.reset_history_event_id, 0);
}

#[test]
fn an_update_the_worker_ignores_is_rejected_by_the_server() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let mut request = completion(task, vec![]);
    request.updates = vec![pending_update("u1", true), pending_update("u2", false)];
    request.discard_speculative_with_events = true;
    let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert!(done.transition.events.is_empty());
    match done.updates.as_slice() {
        [UpdateResult::Rejected { update_id, failure }] => {
            assert_eq!(update_id, "u1");
            assert_eq!(failure, &unprocessed_update_failure());
        }
        other => panic!("unexpected results {other:?}"),
    }
    // u2 arrived after the task was sent: it gets a new speculative task.
    assert!(state.workflow_task.as_ref().unwrap().speculative);
}

#[test]
fn accepted_and_completed_updates_are_written_and_replayed() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let update = pending_update("u1", true);
    let (messages, commands) = accept_and_complete(&update, history.len() as i64);
    let mut request = completion(task, commands);
    request.messages = messages;
    request.updates = vec![update];
    let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert!(done.error.is_none());
    assert_eq!(
        text(&done.transition.events),
        [
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "WORKFLOW_EXECUTION_UPDATE_COMPLETED"
        ],
        "an accepted speculative task is written"
    );
    assert!(matches!(
        done.updates.as_slice(),
        [
            UpdateResult::Accepted { .. },
            UpdateResult::Completed { .. }
        ]
    ));
    history.extend(done.transition.events);
    let info = state.updates.get("u1").expect("the update is in state");
    assert_eq!((info.accepted_event_id, info.completed_event_id), (9, 10));
    assert_eq!(projection(&replay("ns", &history)), projection(&state));

    // Accepted again: a bad message, and the task fails with nothing else kept.
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let again = pending_update("u1", true);
    let (messages, commands) = accept_and_complete(&again, 11);
    let mut request = completion(task, commands);
    request.messages = messages;
    let failed = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert_eq!(
        failed.error.unwrap().to_string(),
        "BadUpdateWorkflowExecutionMessage: invalid state transition attempted for Update u1: received *update.Acceptance message while in state Completed"
    );
    assert!(failed.abort_sent_updates);
}

#[test]
fn closing_with_an_update_accepted_and_not_completed() {
    let fixture = Fixture::new();
    let (mut state, mut history) = idle_after_first_task(&fixture);
    schedule_for_update(&mut state, &fixture.env());
    let task = take_task(&mut state, &fixture, &mut history);
    let update = pending_update("u1", true);
    let (mut messages, mut commands) = accept_and_complete(&update, history.len() as i64);
    // Accept only, then complete the run in the same task.
    messages.truncate(1);
    commands.truncate(1);
    commands.push(complete_command());
    let mut request = completion(task, commands);
    request.messages = messages;
    request.updates = vec![update];
    let done = complete_workflow_task(&mut state, &fixture.env(), request).unwrap();
    assert!(done.error.is_none());
    assert_eq!(
        text(&done.transition.events)[3..],
        [
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "WORKFLOW_EXECUTION_COMPLETED"
        ]
    );
    assert!(!state.is_running());
    let info = state.updates.get("u1").unwrap();
    assert_eq!(info.completed_event_id, 0, "accepted, never completed");
}
