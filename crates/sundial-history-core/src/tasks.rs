//! Work that a transition leaves behind: dispatches to matching, timers, and transfer tasks that
//! act on other executions. Every task names the event it was made for, so that a task that
//! fires after the state moved on is recognised as stale and dropped.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum TaskType {
    /// Hand the workflow task `event_id` (attempt) to matching.
    WorkflowTask = 1,
    /// Hand the activity `event_id` (attempt) to matching, at `fire_time_ms` for retries.
    ActivityTask = 2,
    /// Workflow task `event_id` (attempt) timed out; `timeout_type` says which timeout.
    WorkflowTaskTimeout = 3,
    /// Activity `event_id` (attempt) timeout of `timeout_type`.
    ActivityTimeout = 4,
    /// User timer `timer_id` started by event `event_id` fires.
    UserTimer = 5,
    /// The run (or the chain) reaches its timeout.
    WorkflowRunTimeout = 6,
    /// The first workflow task backoff (start delay, cron, retry, continue-as-new) is over.
    WorkflowBackoff = 7,
    /// Start the child initiated by `event_id`.
    StartChild = 8,
    /// Signal the external workflow initiated by `event_id`.
    SignalExternal = 9,
    /// Request cancellation of the external workflow initiated by `event_id`.
    CancelExternal = 10,
    /// Report this run's close to its parent.
    NotifyParent = 11,
    /// Apply the parent close policy to the children still pending.
    ParentClosePolicy = 12,
}

impl TaskType {
    pub fn from_i32(value: i32) -> Option<Self> {
        Some(match value {
            1 => TaskType::WorkflowTask,
            2 => TaskType::ActivityTask,
            3 => TaskType::WorkflowTaskTimeout,
            4 => TaskType::ActivityTimeout,
            5 => TaskType::UserTimer,
            6 => TaskType::WorkflowRunTimeout,
            7 => TaskType::WorkflowBackoff,
            8 => TaskType::StartChild,
            9 => TaskType::SignalExternal,
            10 => TaskType::CancelExternal,
            11 => TaskType::NotifyParent,
            12 => TaskType::ParentClosePolicy,
            _ => return None,
        })
    }

    /// A task handed to a worker through matching (a workflow or activity task).
    pub fn is_dispatch(self) -> bool {
        matches!(self, TaskType::WorkflowTask | TaskType::ActivityTask)
    }

    /// Tasks that act on other executions and must survive a crash as rows of their own.
    /// Dispatches and timers are rebuilt from mutable state when a run is loaded.
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            TaskType::StartChild
                | TaskType::SignalExternal
                | TaskType::CancelExternal
                | TaskType::NotifyParent
                | TaskType::ParentClosePolicy
        )
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Task {
    #[prost(int32, tag = "1")]
    pub task_type: i32,
    /// When the task is due, in Unix milliseconds (0: now).
    #[prost(int64, tag = "2")]
    pub fire_time_ms: i64,
    #[prost(int64, tag = "3")]
    pub event_id: i64,
    #[prost(int32, tag = "4")]
    pub attempt: i32,
    #[prost(string, tag = "5")]
    pub timer_id: String,
    /// `TimeoutType` value for timeout tasks.
    #[prost(int32, tag = "6")]
    pub timeout_type: i32,
    #[prost(string, tag = "7")]
    pub task_queue: String,
    /// A workflow task dispatched to a worker's sticky queue; `normal_task_queue` is where it
    /// goes when no sticky poller is there.
    #[prost(bool, tag = "8")]
    pub sticky: bool,
    #[prost(string, tag = "9")]
    pub normal_task_queue: String,
}

impl Task {
    pub fn new(task_type: TaskType, fire_time_ms: i64, event_id: i64) -> Self {
        Task {
            task_type: task_type as i32,
            fire_time_ms,
            event_id,
            ..Default::default()
        }
    }

    pub fn kind(&self) -> Option<TaskType> {
        TaskType::from_i32(self.task_type)
    }

    /// A workflow or activity task whose time has come: it goes to matching now, not to a timer.
    pub fn is_due_dispatch(&self, now_ms: i64) -> bool {
        self.kind().is_some_and(TaskType::is_dispatch) && self.fire_time_ms <= now_ms
    }
}
