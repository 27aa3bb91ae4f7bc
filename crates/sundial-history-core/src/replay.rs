//! Rebuilding mutable state from history alone, and the tasks a loaded run needs again.

use sundial_proto::api::history::v1::HistoryEvent;

use crate::apply::apply_event;
use crate::state::{ExecutionInfo, MutableState};
use crate::tasks::{Task, TaskType};

/// Applies every event in order to an empty state.
pub fn replay(namespace_id: &str, events: &[HistoryEvent]) -> MutableState {
    let mut state = MutableState {
        info: Some(ExecutionInfo {
            namespace_id: namespace_id.to_string(),
            next_event_id: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    for event in events {
        apply_event(&mut state, event);
    }
    state
}

/// What the store's due-work index records for a run: the earliest moment one of its pending
/// tasks must be looked at, and whether a task of it waits for a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    pub wake_ms: Option<i64>,
    pub dispatch_pending: bool,
}

/// The due work of a run whose pending tasks are `tasks` (from `rebuild_tasks`), at `now_ms`.
/// A dispatch that is due goes to matching and needs no wake-up: it only marks the run as
/// waiting for a worker. A delayed dispatch (a retry's backoff) wakes the run at its time, like
/// every timer and timeout.
pub fn due(tasks: &[Task], now_ms: i64) -> Due {
    let mut result = Due::default();
    for task in tasks {
        let Some(kind) = task.kind() else { continue };
        if kind.is_transfer() {
            continue;
        }
        if kind.is_dispatch() {
            result.dispatch_pending = true;
        }
        if task.is_due_dispatch(now_ms) {
            continue;
        }
        result.wake_ms = Some(
            result
                .wake_ms
                .map_or(task.fire_time_ms, |wake| wake.min(task.fire_time_ms)),
        );
    }
    result
}

/// Dispatch and timer tasks implied by a run's state: what must be re-armed after a restart.
/// Transfer tasks are persisted separately and are not rebuilt here.
pub fn rebuild_tasks(state: &MutableState) -> Vec<Task> {
    let mut tasks = Vec::new();
    if !state.is_running() {
        return tasks;
    }
    let info = state.info();
    if info.run_expiration_ms > 0 {
        tasks.push(Task::new(
            TaskType::WorkflowRunTimeout,
            info.run_expiration_ms,
            0,
        ));
    }
    if info.backoff_pending {
        tasks.push(Task::new(
            TaskType::WorkflowBackoff,
            info.execution_time_ms,
            0,
        ));
    }
    if let Some(workflow_task) = state.workflow_task.as_ref() {
        if workflow_task.started_event_id == 0 {
            let mut dispatch =
                Task::new(TaskType::WorkflowTask, 0, workflow_task.scheduled_event_id);
            dispatch.attempt = workflow_task.attempt;
            dispatch.task_queue = workflow_task.task_queue.clone();
            dispatch.sticky = dispatch_is_sticky(workflow_task);
            dispatch.normal_task_queue = info.task_queue.clone();
            tasks.push(dispatch);
            let to_start_ms = if dispatch_is_sticky(workflow_task) {
                info.sticky_schedule_to_start_ms
            } else if workflow_task.speculative {
                crate::workflow_task::SPECULATIVE_SCHEDULE_TO_START_MS
            } else {
                0
            };
            if to_start_ms > 0 {
                let mut timeout = Task::new(
                    TaskType::WorkflowTaskTimeout,
                    workflow_task.scheduled_time_ms + to_start_ms,
                    workflow_task.scheduled_event_id,
                );
                timeout.attempt = workflow_task.attempt;
                timeout.timeout_type =
                    sundial_proto::api::enums::v1::TimeoutType::ScheduleToStart as i32;
                tasks.push(timeout);
            }
        } else {
            let mut timeout = Task::new(
                TaskType::WorkflowTaskTimeout,
                workflow_task.started_time_ms + workflow_task.timeout_ms,
                workflow_task.scheduled_event_id,
            );
            timeout.attempt = workflow_task.attempt;
            timeout.timeout_type = sundial_proto::api::enums::v1::TimeoutType::StartToClose as i32;
            tasks.push(timeout);
        }
    }
    for activity in state.activities.values() {
        tasks.extend(crate::activity::pending_tasks(activity));
    }
    for timer in state.timers.values() {
        tasks.push(crate::timer::timer_task(timer));
    }
    tasks
}

fn dispatch_is_sticky(task: &crate::state::WorkflowTaskInfo) -> bool {
    task.task_queue_kind == sundial_proto::api::enums::v1::TaskQueueKind::Sticky as i32
}
