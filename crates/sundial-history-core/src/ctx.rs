//! The context of one transition: what the core may know of the world (`Env`), what it returns
//! (`Transition`), and the `Mutation` through which every event is added, applied and buffered.

use prost::Message;
use sundial_proto::api::enums::v1::EventType;
use sundial_proto::api::history::v1::{HistoryEvent, history_event::Attributes};
use sundial_proto::api::sdk::v1::UserMetadata;

use crate::apply::{apply_event, event_type_of};
use crate::state::MutableState;
use crate::tasks::Task;
use crate::util;

/// Limits and defaults that come from configuration, read once per transition.
#[derive(Debug, Clone)]
pub struct Limits {
    pub default_workflow_task_timeout_ms: i64,
    pub max_workflow_task_timeout_ms: i64,
    pub max_id_length: usize,
    pub blob_size_error: usize,
    pub blob_size_warn: usize,
    pub memo_size_error: usize,
    pub history_count_error: i64,
    pub history_size_error: i64,
    pub history_count_suggest_continue_as_new: i64,
    pub history_size_suggest_continue_as_new: i64,
    pub max_signals_per_execution: i64,
    pub max_pending_activities: usize,
    pub max_pending_children: usize,
    pub max_pending_signals: usize,
    pub max_pending_cancels: usize,
    pub default_retry_initial_interval_ms: i64,
    pub default_retry_backoff_coefficient: f64,
    pub default_retry_maximum_interval_factor: i64,
    pub workflow_task_retry_max_interval_ms: i64,
    /// `frontend.searchAttributes{NumberOfKeys,SizeOfValue,TotalSize}Limit`.
    pub search_attributes: sundial_visibility::validate::SaLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_workflow_task_timeout_ms: 10_000,
            max_workflow_task_timeout_ms: 120_000,
            max_id_length: 1000,
            blob_size_error: 2 * 1024 * 1024,
            blob_size_warn: 512 * 1024,
            memo_size_error: 2 * 1024 * 1024,
            history_count_error: 51_200,
            history_size_error: 50 * 1024 * 1024,
            history_count_suggest_continue_as_new: 4096,
            history_size_suggest_continue_as_new: 4 * 1024 * 1024,
            max_signals_per_execution: 10_000,
            max_pending_activities: 2000,
            max_pending_children: 2000,
            max_pending_signals: 2000,
            max_pending_cancels: 2000,
            default_retry_initial_interval_ms: 1000,
            default_retry_backoff_coefficient: 2.0,
            default_retry_maximum_interval_factor: 100,
            workflow_task_retry_max_interval_ms: 600_000,
            search_attributes: Default::default(),
        }
    }
}

/// Everything the core may learn from outside: the time, the limits, and fresh ids.
pub struct Env<'a> {
    pub now_ms: i64,
    pub limits: &'a Limits,
    pub new_id: &'a (dyn Fn() -> String + Sync),
}

/// A new run created by the same transition (continue-as-new, retry, cron).
#[derive(Debug, Clone)]
pub struct NewRun {
    pub state: MutableState,
    pub transition: Transition,
}

/// What a transition produced, to be persisted in one write with the mutated state.
#[derive(Debug, Clone, Default)]
pub struct Transition {
    /// Events to append to history, in order, with their ids assigned.
    pub events: Vec<HistoryEvent>,
    pub tasks: Vec<Task>,
    pub new_run: Option<Box<NewRun>>,
}

pub(crate) struct Mutation<'s, 'e> {
    pub state: &'s mut MutableState,
    pub env: &'e Env<'e>,
    pub out: Transition,
    /// User metadata for the next event written (the first event of a command, or a run's
    /// started event).
    pub metadata: Option<UserMetadata>,
}

impl<'s, 'e> Mutation<'s, 'e> {
    pub fn new(state: &'s mut MutableState, env: &'e Env<'e>) -> Self {
        Mutation {
            state,
            env,
            out: Transition::default(),
            metadata: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.env.now_ms
    }

    pub fn task(&mut self, task: Task) {
        self.out.tasks.push(task);
    }

    /// Adds an event: buffered while a workflow task is started (for the event kinds Temporal
    /// buffers), written otherwise. Returns the event id, or 0 when buffered.
    pub fn add(&mut self, attributes: Attributes) -> i64 {
        let buffered = is_bufferable(&attributes) && self.state.started_workflow_task().is_some();
        if !buffered && !is_workflow_task_event(&attributes) {
            self.drop_transient_scheduled_task();
        }
        let mut event = HistoryEvent {
            event_time: util::timestamp(self.now()),
            event_type: event_type_of(&attributes) as i32,
            attributes: Some(attributes),
            user_metadata: self.metadata.take(),
            ..Default::default()
        };
        if buffered {
            apply_event(self.state, &event);
            self.state.buffered_events.push(event);
            return 0;
        }
        self.write(&mut event);
        event.event_id
    }

    /// Adds an event that is written with the buffered events, after the events of the
    /// commands being processed (Temporal orders an immediate activity cancellation so).
    pub fn add_deferred(&mut self, attributes: Attributes) {
        let event = HistoryEvent {
            event_time: util::timestamp(self.now()),
            event_type: event_type_of(&attributes) as i32,
            attributes: Some(attributes),
            ..Default::default()
        };
        apply_event(self.state, &event);
        self.state.buffered_events.push(event);
    }

    /// Assigns the next event id to an event and applies it.
    fn write(&mut self, event: &mut HistoryEvent) {
        let info = self.state.info_mut();
        event.event_id = info.next_event_id;
        info.last_event_task_id += 1;
        event.task_id = info.last_event_task_id;
        info.history_size_bytes += event.encoded_len() as i64;
        apply_event(self.state, event);
        self.out.events.push(event.clone());
    }

    /// Writes the buffered events, fixing up the ids of started events that outcomes refer to.
    pub fn flush_buffered(&mut self) {
        let buffered = std::mem::take(&mut self.state.buffered_events);
        let mut activity_started: Vec<(i64, i64)> = Vec::new();
        let mut child_started: Vec<(i64, i64)> = Vec::new();
        for mut event in buffered {
            use Attributes as A;
            match event.attributes.as_mut() {
                Some(A::ActivityTaskCompletedEventAttributes(a)) if a.started_event_id == 0 => {
                    a.started_event_id = lookup(&activity_started, a.scheduled_event_id);
                }
                Some(A::ActivityTaskFailedEventAttributes(a)) if a.started_event_id == 0 => {
                    a.started_event_id = lookup(&activity_started, a.scheduled_event_id);
                }
                Some(A::ActivityTaskTimedOutEventAttributes(a)) if a.started_event_id == 0 => {
                    a.started_event_id = lookup(&activity_started, a.scheduled_event_id);
                }
                Some(A::ActivityTaskCanceledEventAttributes(a)) if a.started_event_id == 0 => {
                    a.started_event_id = lookup(&activity_started, a.scheduled_event_id);
                }
                Some(A::ChildWorkflowExecutionCompletedEventAttributes(a))
                    if a.started_event_id == 0 =>
                {
                    a.started_event_id = lookup(&child_started, a.initiated_event_id);
                }
                Some(A::ChildWorkflowExecutionFailedEventAttributes(a))
                    if a.started_event_id == 0 =>
                {
                    a.started_event_id = lookup(&child_started, a.initiated_event_id);
                }
                Some(A::ChildWorkflowExecutionCanceledEventAttributes(a))
                    if a.started_event_id == 0 =>
                {
                    a.started_event_id = lookup(&child_started, a.initiated_event_id);
                }
                Some(A::ChildWorkflowExecutionTimedOutEventAttributes(a))
                    if a.started_event_id == 0 =>
                {
                    a.started_event_id = lookup(&child_started, a.initiated_event_id);
                }
                Some(A::ChildWorkflowExecutionTerminatedEventAttributes(a))
                    if a.started_event_id == 0 =>
                {
                    a.started_event_id = lookup(&child_started, a.initiated_event_id);
                }
                _ => {}
            }
            // Buffered events were applied when they arrived; writing only assigns their ids.
            let info = self.state.info_mut();
            event.event_id = info.next_event_id;
            info.next_event_id += 1;
            info.last_event_task_id += 1;
            event.task_id = info.last_event_task_id;
            info.history_size_bytes += event.encoded_len() as i64;
            match event.attributes.as_ref() {
                Some(A::ActivityTaskStartedEventAttributes(a)) => {
                    activity_started.push((a.scheduled_event_id, event.event_id));
                }
                Some(A::ChildWorkflowExecutionStartedEventAttributes(a)) => {
                    child_started.push((a.initiated_event_id, event.event_id));
                    if let Some(child) = self.state.children.get_mut(&a.initiated_event_id) {
                        child.started_event_id = event.event_id;
                    }
                }
                _ => {}
            }
            self.out.events.push(event);
        }
    }

    /// A transient (retried) workflow task that is only scheduled has reserved the next event
    /// ids without writing them. An event written now takes those ids, so the retried task is
    /// dropped and the caller schedules a fresh one (attempt 1), as Temporal does.
    fn drop_transient_scheduled_task(&mut self) {
        if self
            .state
            .workflow_task
            .as_ref()
            .is_some_and(|task| task.speculative && task.started_event_id == 0)
        {
            // A speculative task becomes a normal one: its scheduled event is written first, at
            // the id it reserved.
            crate::workflow_task::materialize_transient(self);
            return;
        }
        let transient_scheduled = self
            .state
            .workflow_task
            .as_ref()
            .is_some_and(|task| task.transient && task.started_event_id == 0);
        if transient_scheduled {
            self.state.workflow_task = None;
        }
    }

    pub fn finish(self) -> Transition {
        self.out
    }
}

fn lookup(pairs: &[(i64, i64)], key: i64) -> i64 {
    pairs
        .iter()
        .find(|(candidate, _)| *candidate == key)
        .map(|(_, value)| *value)
        .unwrap_or(0)
}

fn is_workflow_task_event(attributes: &Attributes) -> bool {
    matches!(
        event_type_of(attributes),
        EventType::WorkflowTaskScheduled
            | EventType::WorkflowTaskStarted
            | EventType::WorkflowTaskCompleted
            | EventType::WorkflowTaskFailed
            | EventType::WorkflowTaskTimedOut
    )
}

/// Events that wait for the started workflow task to finish before they are written.
fn is_bufferable(attributes: &Attributes) -> bool {
    matches!(
        event_type_of(attributes),
        EventType::WorkflowExecutionSignaled
            | EventType::WorkflowExecutionCancelRequested
            | EventType::ActivityTaskStarted
            | EventType::ActivityTaskCompleted
            | EventType::ActivityTaskFailed
            | EventType::ActivityTaskTimedOut
            | EventType::ActivityTaskCanceled
            | EventType::TimerFired
            | EventType::StartChildWorkflowExecutionFailed
            | EventType::ChildWorkflowExecutionStarted
            | EventType::ChildWorkflowExecutionCompleted
            | EventType::ChildWorkflowExecutionFailed
            | EventType::ChildWorkflowExecutionCanceled
            | EventType::ChildWorkflowExecutionTimedOut
            | EventType::ChildWorkflowExecutionTerminated
            | EventType::SignalExternalWorkflowExecutionFailed
            | EventType::ExternalWorkflowExecutionSignaled
            | EventType::RequestCancelExternalWorkflowExecutionFailed
            | EventType::ExternalWorkflowExecutionCancelRequested
    )
}
