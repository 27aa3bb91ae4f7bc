//! The pure workflow state machine: mutable state, one apply function per event type, the
//! handling of every command and of every fired task. Given a state, a request and an `Env`, it
//! returns a `Transition` (new events and tasks). It never reads the clock, configuration or
//! storage, and depends only on `sundial-common` and `sundial-proto`.

// Fields that Temporal marks deprecated are still sent by the SDKs and still recorded by Temporal.
#![allow(deprecated)]

mod activity;
mod apply;
mod child;
mod commands;
mod ctx;
mod external;
mod replay;
pub mod retry;
pub mod state;
pub mod tasks;
mod timer;
pub mod update;
pub mod util;
mod workflow;
mod workflow_task;

pub use activity::{
    ActivityStarted, activity_timeout, cancel_activity, complete_activity, fail_activity,
    heartbeat_activity, record_activity_started,
};
pub use apply::apply_event;
pub use child::{child_closed, child_start_failed, child_started};
pub use commands::{CompleteWorkflowTask, WorkflowTaskCompletion, complete_workflow_task};
pub use ctx::{Env, Limits, NewRun, Transition};
pub use external::{external_cancel_result, external_signal_result};
pub use replay::{Due, due, rebuild_tasks, replay};
pub use timer::fire_timer;
pub use workflow::{
    StartRequest, backoff_fired, new_execution, request_cancel, run_timeout, signal, terminate,
};
pub use workflow_task::{
    Poller, RecordedWorkflowTask, SPECULATIVE_SCHEDULE_TO_START_MS, fail_workflow_task,
    history_suffix_for_transient, record_workflow_task_started, schedule_for_update,
    workflow_task_timeout,
};

#[cfg(test)]
mod tests;
