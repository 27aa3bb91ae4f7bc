//! Task queues: hands workflow tasks, activity tasks and queries to waiting pollers (sync
//! match) or keeps them until one polls. Queues live in memory: history owns durability and
//! re-adds every pending task when it loads a run, so a restart loses nothing. A task handed to
//! a poll that has gone away goes back to the queue instead of being lost.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use sundial_common::{Error, Result, new_uuid};
use sundial_proto::api::taskqueue::v1::PollerInfo;
use sundial_proto::api::workflowservice::v1::PollWorkflowTaskQueueResponse;
use sundial_rpc::{MatchingApi, QueryAnswer, TaskRef, WorkflowTaskMatch};
use tokio::sync::oneshot;

/// A sticky queue with no poll for this long has lost its worker.
const STICKY_WORKER_MEMORY: Duration = Duration::from_secs(10);

/// How long a queue remembers a poller for "no poller seen recently".
const POLLER_MEMORY: Duration = Duration::from_secs(20);

#[derive(Debug)]
enum Item {
    Workflow(WorkflowTaskMatch),
    Activity(TaskRef),
    /// Ends a poll with an empty answer (worker shutdown).
    Wake,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    pollers: VecDeque<oneshot::Sender<Item>>,
    last_poll: Option<Instant>,
    poller_identities: HashMap<String, SystemTime>,
}

impl Queue {
    /// Gives an item to the first poller still waiting, or keeps it.
    fn offer(&mut self, mut item: Item) {
        while let Some(poller) = self.pollers.pop_front() {
            match poller.send(item) {
                Ok(()) => return,
                Err(returned) => item = returned,
            }
        }
        if !matches!(item, Item::Wake) {
            self.items.push_back(item);
        }
    }
}

type QueueKey = (String, String, bool);

#[derive(Default)]
pub struct Matching {
    queues: Mutex<HashMap<QueueKey, Arc<Mutex<Queue>>>>,
    queries: Mutex<HashMap<String, oneshot::Sender<QueryAnswer>>>,
}

/// A poll in progress. If it is dropped after an item was handed to it but before the item was
/// taken, the item goes back to the front of its queue.
struct PendingPoll {
    receiver: oneshot::Receiver<Item>,
    queue: Arc<Mutex<Queue>>,
}

impl Drop for PendingPoll {
    fn drop(&mut self) {
        self.receiver.close();
        if let Ok(item) = self.receiver.try_recv()
            && !matches!(item, Item::Wake)
        {
            let mut queue = self.queue.lock();
            queue.items.push_front(item);
        }
    }
}

impl Matching {
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, namespace_id: &str, task_queue: &str, activity: bool) -> Arc<Mutex<Queue>> {
        let key = (namespace_id.to_string(), task_queue.to_string(), activity);
        self.queues.lock().entry(key).or_default().clone()
    }

    async fn poll(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
        identity: &str,
        deadline: Instant,
    ) -> Option<Item> {
        let queue = self.queue(namespace_id, task_queue, activity);
        let receiver = {
            let mut locked = queue.lock();
            locked.last_poll = Some(Instant::now());
            locked
                .poller_identities
                .insert(identity.to_string(), SystemTime::now());
            loop {
                match locked.items.pop_front() {
                    Some(Item::Workflow(WorkflowTaskMatch::Query { query_id, .. }))
                        if !self.queries.lock().contains_key(&query_id) =>
                    {
                        continue;
                    }
                    Some(item) => return Some(item),
                    None => break,
                }
            }
            let (sender, receiver) = oneshot::channel();
            locked.pollers.push_back(sender);
            receiver
        };
        let mut pending = PendingPoll {
            receiver,
            queue: queue.clone(),
        };
        let outcome = tokio::time::timeout_at(deadline.into(), &mut pending.receiver).await;
        match outcome {
            // Woken by ShutdownWorker: the worker is leaving, so this poll does not count as seen.
            Ok(Ok(Item::Wake)) => None,
            Ok(Ok(item)) => {
                queue.lock().last_poll = Some(Instant::now());
                Some(item)
            }
            // Timed out: the drop guard returns anything that raced in.
            _ => {
                queue.lock().last_poll = Some(Instant::now());
                None
            }
        }
    }

    fn add(&self, namespace_id: &str, task_queue: &str, activity: bool, item: Item) {
        let queue = self.queue(namespace_id, task_queue, activity);
        queue.lock().offer(item);
    }
}

#[async_trait]
impl MatchingApi for Matching {
    async fn add_workflow_task(&self, task_queue: &str, task: TaskRef, sticky: bool) -> bool {
        let namespace_id = task.namespace_id.clone();
        let queue = self.queue(&namespace_id, task_queue, false);
        let mut locked = queue.lock();
        if sticky {
            let worker_present = !locked.pollers.is_empty()
                || locked
                    .last_poll
                    .is_some_and(|last| last.elapsed() < STICKY_WORKER_MEMORY);
            if !worker_present {
                return false;
            }
        }
        locked.offer(Item::Workflow(WorkflowTaskMatch::Task(task)));
        true
    }

    async fn add_activity_task(&self, task_queue: &str, task: TaskRef) {
        let namespace_id = task.namespace_id.clone();
        self.add(&namespace_id, task_queue, true, Item::Activity(task));
    }

    async fn poll_workflow_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        _sticky: bool,
        identity: &str,
        deadline: Instant,
    ) -> Option<WorkflowTaskMatch> {
        loop {
            match self
                .poll(namespace_id, task_queue, false, identity, deadline)
                .await?
            {
                Item::Workflow(WorkflowTaskMatch::Query { query_id, .. })
                    if !self.queries.lock().contains_key(&query_id) =>
                {
                    continue;
                }
                Item::Workflow(found) => return Some(found),
                _ => continue,
            }
        }
    }

    async fn poll_activity_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        identity: &str,
        deadline: Instant,
    ) -> Option<TaskRef> {
        loop {
            match self
                .poll(namespace_id, task_queue, true, identity, deadline)
                .await?
            {
                Item::Activity(task) => return Some(task),
                _ => continue,
            }
        }
    }

    async fn query(
        &self,
        namespace_id: &str,
        task_queue: &str,
        response: PollWorkflowTaskQueueResponse,
        deadline: Instant,
    ) -> Result<QueryAnswer> {
        let queue = self.queue(namespace_id, task_queue, false);
        let seen_recently = {
            let locked = queue.lock();
            !locked.pollers.is_empty()
                || locked
                    .last_poll
                    .is_some_and(|last| last.elapsed() < POLLER_MEMORY)
        };
        if !seen_recently {
            return Err(Error::FailedPrecondition(
                "no poller seen for task queue recently, worker may be down".into(),
            ));
        }
        let query_id = new_uuid();
        let (sender, receiver) = oneshot::channel();
        self.queries.lock().insert(query_id.clone(), sender);
        self.add(
            namespace_id,
            task_queue,
            false,
            Item::Workflow(WorkflowTaskMatch::Query {
                query_id: query_id.clone(),
                response: Box::new(response),
            }),
        );
        let outcome = tokio::time::timeout_at(deadline.into(), receiver).await;
        self.queries.lock().remove(&query_id);
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(Error::DeadlineExceeded(
                "query timed out before a worker answered".into(),
            )),
        }
    }

    async fn respond_query(&self, query_id: &str, answer: QueryAnswer) -> Result<()> {
        let Some(sender) = self.queries.lock().remove(query_id) else {
            return Err(Error::not_found("query task not found, or already expired"));
        };
        let _ = sender.send(answer);
        Ok(())
    }

    async fn shutdown_worker(&self, namespace_id: &str, sticky_task_queue: &str) {
        let queue = self.queue(namespace_id, sticky_task_queue, false);
        let mut locked = queue.lock();
        // The worker is gone: its sticky queue takes no more tasks until it polls again.
        locked.last_poll = None;
        while let Some(poller) = locked.pollers.pop_front() {
            let _ = poller.send(Item::Wake);
        }
    }

    async fn describe_task_queue(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Vec<PollerInfo> {
        let queue = self.queue(namespace_id, task_queue, activity);
        let locked = queue.lock();
        locked
            .poller_identities
            .iter()
            .filter(|(_, seen)| {
                seen.elapsed()
                    .map(|age| age < Duration::from_secs(300))
                    .unwrap_or(false)
            })
            .map(|(identity, seen)| {
                let since_epoch = seen
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                PollerInfo {
                    identity: identity.clone(),
                    last_access_time: Some(sundial_proto::prost_types::Timestamp {
                        seconds: since_epoch.as_secs() as i64,
                        nanos: since_epoch.subsec_nanos() as i32,
                    }),
                    rate_per_second: 0.0,
                    ..Default::default()
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64) -> TaskRef {
        TaskRef {
            namespace_id: "ns".into(),
            workflow_id: format!("wf-{id}"),
            run_id: "run".into(),
            scheduled_event_id: id,
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn backlog_then_poll_in_order() {
        let matching = Matching::new();
        matching.add_activity_task("q", task(1)).await;
        matching.add_activity_task("q", task(2)).await;
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            matching.poll_activity_task("ns", "q", "w", deadline).await,
            Some(task(1))
        );
        assert_eq!(
            matching.poll_activity_task("ns", "q", "w", deadline).await,
            Some(task(2))
        );
        let short = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            matching.poll_activity_task("ns", "q", "w", short).await,
            None
        );
    }

    #[tokio::test]
    async fn waiting_poller_gets_task() {
        let matching = Arc::new(Matching::new());
        let poller = {
            let matching = matching.clone();
            tokio::spawn(async move {
                matching
                    .poll_activity_task("ns", "q", "w", Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        while matching.queue("ns", "q", true).lock().pollers.is_empty() {
            tokio::task::yield_now().await;
        }
        matching.add_activity_task("q", task(7)).await;
        assert_eq!(poller.await.unwrap(), Some(task(7)));
    }

    #[tokio::test]
    async fn abandoned_poll_returns_its_task() {
        let matching = Arc::new(Matching::new());
        let poller = {
            let matching = matching.clone();
            tokio::spawn(async move {
                matching
                    .poll_activity_task("ns", "q", "w", Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        while matching.queue("ns", "q", true).lock().pollers.is_empty() {
            tokio::task::yield_now().await;
        }
        // The poll goes away; a task offered to it afterwards must not be lost.
        poller.abort();
        let _ = poller.await;
        matching.add_activity_task("q", task(9)).await;
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            matching.poll_activity_task("ns", "q", "w", deadline).await,
            Some(task(9))
        );
    }

    #[tokio::test]
    async fn query_without_pollers_fails_fast() {
        let matching = Matching::new();
        let error = matching
            .query(
                "ns",
                "q",
                PollWorkflowTaskQueueResponse::default(),
                Instant::now() + Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::FailedPrecondition(_)));
    }

    #[tokio::test]
    async fn shutdown_ends_sticky_polls() {
        let matching = Arc::new(Matching::new());
        let poller = {
            let matching = matching.clone();
            tokio::spawn(async move {
                matching
                    .poll_workflow_task(
                        "ns",
                        "sticky",
                        true,
                        "w",
                        Instant::now() + Duration::from_secs(30),
                    )
                    .await
            })
        };
        while matching
            .queue("ns", "sticky", false)
            .lock()
            .pollers
            .is_empty()
        {
            tokio::task::yield_now().await;
        }
        matching.shutdown_worker("ns", "sticky").await;
        assert!(poller.await.unwrap().is_none());
    }
}
