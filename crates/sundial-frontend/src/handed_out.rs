//! A task that matching handed to a poll but history has not yet recorded as started. Until it
//! has, the poll owns the task: if recording fails for any reason but the task being stale, or
//! the poll goes away (its client hung up), the task goes back to its queue. Matching keeps
//! nothing of a task it handed out, so without this a task could be stranded with no worker
//! ever seeing it.

use std::sync::Arc;
use std::time::Duration;

use sundial_common::{Error, Result};
use sundial_rpc::{MatchingApi, TaskRef, parse_partition_name};
use tracing::warn;

/// How long a task whose recording failed waits before it goes back: the failure is most
/// likely the database, and pollers should not spin on it meanwhile.
const GIVE_BACK_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub(crate) enum QueueKind {
    Workflow { sticky: bool },
    Activity,
}

pub(crate) struct HandedOut {
    matching: Arc<dyn MatchingApi>,
    task_queue: String,
    kind: QueueKind,
    task: Option<TaskRef>,
}

impl HandedOut {
    pub(crate) fn new(
        matching: &Arc<dyn MatchingApi>,
        task_queue: &str,
        kind: QueueKind,
        task: &TaskRef,
    ) -> Self {
        // A poll may name one partition; the task goes back to the queue, which places it.
        let (queue, _) = parse_partition_name(task_queue);
        HandedOut {
            matching: matching.clone(),
            task_queue: queue.to_string(),
            kind,
            task: Some(task.clone()),
        }
    }

    /// Settles the task with history's answer to recording it started: the response when it
    /// was recorded; `None` when the task was stale (the run moved on: nothing goes back) or
    /// recording failed (the task goes back to its queue after a short delay).
    pub(crate) fn settle<T>(mut self, recorded: Result<T>) -> Option<T> {
        let task = self.task.take()?;
        match recorded {
            Ok(response) => Some(response),
            Err(Error::NotFound(_)) | Err(Error::Conflict(_)) => None,
            Err(error) => {
                warn!(%error, workflow_id = %task.workflow_id, kind = ?self.kind, "recording a task started failed; the task goes back to its queue");
                self.give_back(task, GIVE_BACK_DELAY);
                None
            }
        }
    }

    fn give_back(&self, task: TaskRef, delay: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (matching, task_queue, kind) =
            (self.matching.clone(), self.task_queue.clone(), self.kind);
        runtime.spawn(async move {
            let mut delay = delay;
            for attempt in 1u32.. {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let added = match kind {
                    // A sticky queue whose worker has gone refuses it; the sticky
                    // schedule-to-start timeout then moves the task to the normal queue.
                    QueueKind::Workflow { sticky } => matching
                        .add_workflow_task(&task_queue, task.clone(), sticky)
                        .await
                        .map(|_| ()),
                    QueueKind::Activity => {
                        matching.add_activity_task(&task_queue, task.clone()).await
                    }
                };
                match added {
                    Ok(()) => return,
                    Err(error) => {
                        // Until matching takes it back (the run's row keeps it pending, so a
                        // restart would dispatch it too); backing off to 10 s.
                        if attempt == 1 || attempt % 10 == 0 {
                            warn!(%error, attempt, workflow_id = %task.workflow_id, "matching refused a task given back; trying again");
                        }
                        delay = (delay * 2).clamp(GIVE_BACK_DELAY, Duration::from_secs(10));
                    }
                }
            }
        });
    }
}

impl Drop for HandedOut {
    /// The poll went away while history was recording the task.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.give_back(task, Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn task() -> TaskRef {
        TaskRef {
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            scheduled_event_id: 2,
            attempt: 1,
        }
    }

    async fn poll(matching: &Arc<dyn MatchingApi>, within: Duration) -> Option<TaskRef> {
        matching
            .poll_activity_task("ns", "q", "worker", Instant::now() + within)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_task_goes_back_when_its_poll_goes_away_or_recording_fails() {
        let matching: Arc<dyn MatchingApi> = Arc::new(sundial_matching::Matching::new());
        // The poll went away while history recorded the task: it is back at once.
        drop(HandedOut::new(&matching, "q", QueueKind::Activity, &task()));
        assert_eq!(
            poll(&matching, Duration::from_millis(500)).await,
            Some(task())
        );

        // Recording failed: back after the delay, not before.
        let handed = HandedOut::new(&matching, "/_sys/q/1", QueueKind::Activity, &task());
        let failed: Result<()> = Err(Error::Unavailable("database down".into()));
        assert_eq!(handed.settle(failed), None);
        assert_eq!(poll(&matching, Duration::from_millis(200)).await, None);
        assert_eq!(poll(&matching, Duration::from_secs(3)).await, Some(task()));

        // Started, or stale: nothing comes back.
        let handed = HandedOut::new(&matching, "q", QueueKind::Activity, &task());
        assert_eq!(handed.settle(Ok(7)), Some(7));
        let handed = HandedOut::new(&matching, "q", QueueKind::Activity, &task());
        let stale: Result<()> = Err(Error::not_found("gone"));
        assert_eq!(handed.settle(stale), None);
        assert_eq!(poll(&matching, Duration::from_millis(300)).await, None);
    }
}
