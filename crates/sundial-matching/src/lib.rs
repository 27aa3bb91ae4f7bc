//! Task queues: hands workflow tasks, activity tasks and queries to waiting pollers (sync
//! match) or keeps them until one polls. Queues live in memory: history owns durability and
//! re-adds every pending task when it loads a run, so a restart loses nothing. A task handed to
//! a poll that has gone away goes back to the queue instead of being lost.
//!
//! A normal task queue is split into partitions, as in Temporal: partition 0 is the root,
//! partition n is `/_sys/<queue>/<n>`. Adds go to the write partitions and polls start at the
//! read partitions, in turn (Temporal picks at random), with both counts read live from
//! `matching.numTaskqueueWritePartitions` / `ReadPartitions`. As in Temporal, an idle poll
//! waits at the root too (poll forwarding), so any waiting poller takes any new task; a poll
//! that finds its own partition empty takes from the root and then from the other partitions
//! (Temporal's child partitions forward their backlog to the root). Because of that last step,
//! a task in a partition beyond the read count (read lowered below write) is still dispatched,
//! where Temporal would leave it until the partition is read again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use sundial_common::{Error, Result, new_uuid};
use sundial_proto::api::taskqueue::v1::PollerInfo;
use sundial_proto::api::workflowservice::v1::PollWorkflowTaskQueueResponse;
use sundial_rpc::{
    MatchingApi, PartitionDescription, QueryAnswer, TaskRef, WorkflowTaskMatch,
    parse_partition_name,
};
use tokio::sync::oneshot;

/// A sticky queue with no poll for this long has lost its worker.
const STICKY_WORKER_MEMORY: Duration = Duration::from_secs(10);

/// How long a queue remembers a poller for "no poller seen recently".
const POLLER_MEMORY: Duration = Duration::from_secs(20);

/// How long DescribeTaskQueue lists a poller after its last poll.
const POLLER_LISTED_FOR: Duration = Duration::from_secs(300);

/// How many partitions a normal task queue has now. Read on every add and poll.
pub trait PartitionCounts: Send + Sync + 'static {
    /// (read, write) partition counts; values below 1 count as 1.
    fn partitions(&self, namespace_id: &str, task_queue: &str, activity: bool) -> (usize, usize);
}

/// The same counts for every queue.
pub struct FixedPartitions {
    pub read: usize,
    pub write: usize,
}

impl PartitionCounts for FixedPartitions {
    fn partitions(&self, _: &str, _: &str, _: bool) -> (usize, usize) {
        (self.read, self.write)
    }
}

#[derive(Debug)]
enum Item {
    Workflow(WorkflowTaskMatch),
    Activity(TaskRef),
    /// Ends a poll with an empty answer (worker shutdown).
    Wake,
}

#[derive(Default)]
struct Partition {
    items: VecDeque<(Item, Instant)>,
    poller_identities: HashMap<String, SystemTime>,
    added: i64,
}

/// All partitions of one queue, with the polls waiting on it.
#[derive(Default)]
struct Family {
    partitions: Vec<Partition>,
    /// Waiting polls and the partition each started at.
    pollers: VecDeque<(usize, oneshot::Sender<Item>)>,
    last_poll: Option<Instant>,
    next_read: usize,
    next_write: usize,
}

impl Family {
    fn partition(&mut self, index: usize) -> &mut Partition {
        if self.partitions.len() <= index {
            self.partitions.resize_with(index + 1, Partition::default);
        }
        &mut self.partitions[index]
    }

    fn pick(next: &mut usize, count: usize) -> usize {
        let index = *next % count.max(1);
        *next = next.wrapping_add(1);
        index
    }

    /// Gives an item to the first poller still waiting, or keeps it in `partition`.
    fn offer(&mut self, partition: usize, mut item: Item) {
        if !matches!(item, Item::Wake) {
            self.partition(partition).added += 1;
        }
        while let Some((_, poller)) = self.pollers.pop_front() {
            match poller.send(item) {
                Ok(()) => return,
                Err(returned) => item = returned,
            }
        }
        if !matches!(item, Item::Wake) {
            self.partition(partition)
                .items
                .push_back((item, Instant::now()));
        }
    }

    /// Takes a waiting item for a poll that started at `first`: its own partition, then the
    /// root, then the others. Items `keep` rejects are dropped.
    fn take(&mut self, first: usize, keep: impl Fn(&Item) -> bool) -> Option<Item> {
        let count = self.partitions.len();
        let order = std::iter::once(first)
            .chain(std::iter::once(0))
            .chain(1..count)
            .filter(|&index| index < count);
        for (position, index) in order.enumerate() {
            if position > 0 && index == first {
                continue;
            }
            while let Some((item, _)) = self.partitions[index].items.pop_front() {
                if keep(&item) {
                    return Some(item);
                }
            }
        }
        None
    }
}

type QueueKey = (String, String, bool);

pub struct Matching {
    queues: Mutex<HashMap<QueueKey, Arc<Mutex<Family>>>>,
    queries: Mutex<HashMap<String, oneshot::Sender<QueryAnswer>>>,
    partitions: Box<dyn PartitionCounts>,
}

impl Default for Matching {
    fn default() -> Self {
        Self::new()
    }
}

/// A poll in progress. If it is dropped after an item was handed to it but before the item was
/// taken, the item goes back to the front of the partition the poll started at.
struct PendingPoll {
    receiver: oneshot::Receiver<Item>,
    family: Arc<Mutex<Family>>,
    partition: usize,
}

impl Drop for PendingPoll {
    fn drop(&mut self) {
        self.receiver.close();
        if let Ok(item) = self.receiver.try_recv()
            && !matches!(item, Item::Wake)
        {
            let mut family = self.family.lock();
            family
                .partition(self.partition)
                .items
                .push_front((item, Instant::now()));
        }
    }
}

impl Matching {
    /// Matching with one partition per queue.
    pub fn new() -> Self {
        Self::with_partitions(Box::new(FixedPartitions { read: 1, write: 1 }))
    }

    pub fn with_partitions(partitions: Box<dyn PartitionCounts>) -> Self {
        Matching {
            queues: Mutex::default(),
            queries: Mutex::default(),
            partitions,
        }
    }

    fn family(&self, namespace_id: &str, task_queue: &str, activity: bool) -> Arc<Mutex<Family>> {
        let key = (namespace_id.to_string(), task_queue.to_string(), activity);
        self.queues.lock().entry(key).or_default().clone()
    }

    /// (read, write) partitions of a queue; sticky queues have one.
    fn counts(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
        sticky: bool,
    ) -> (usize, usize) {
        if sticky {
            return (1, 1);
        }
        let (read, write) = self
            .partitions
            .partitions(namespace_id, task_queue, activity);
        (read.max(1), write.max(1))
    }

    fn is_live(&self, item: &Item) -> bool {
        match item {
            Item::Workflow(WorkflowTaskMatch::Query { query_id, .. }) => {
                self.queries.lock().contains_key(query_id)
            }
            _ => true,
        }
    }

    async fn poll(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
        sticky: bool,
        identity: &str,
        deadline: Instant,
    ) -> Option<Item> {
        let (read, _) = self.counts(namespace_id, task_queue, activity, sticky);
        let family = self.family(namespace_id, task_queue, activity);
        let (receiver, partition) = {
            let mut locked = family.lock();
            locked.last_poll = Some(Instant::now());
            let partition = Family::pick(&mut locked.next_read, read);
            locked
                .partition(partition)
                .poller_identities
                .insert(identity.to_string(), SystemTime::now());
            if let Some(item) = locked.take(partition, |item| self.is_live(item)) {
                return Some(item);
            }
            let (sender, receiver) = oneshot::channel();
            locked.pollers.push_back((partition, sender));
            (receiver, partition)
        };
        let mut pending = PendingPoll {
            receiver,
            family: family.clone(),
            partition,
        };
        let outcome = tokio::time::timeout_at(deadline.into(), &mut pending.receiver).await;
        match outcome {
            // Woken by ShutdownWorker: the worker is leaving, so this poll does not count as seen.
            Ok(Ok(Item::Wake)) => None,
            Ok(Ok(item)) => {
                family.lock().last_poll = Some(Instant::now());
                Some(item)
            }
            // Timed out: the drop guard returns anything that raced in.
            _ => {
                family.lock().last_poll = Some(Instant::now());
                None
            }
        }
    }

    fn add(&self, namespace_id: &str, task_queue: &str, activity: bool, item: Item) {
        let (_, write) = self.counts(namespace_id, task_queue, activity, false);
        let family = self.family(namespace_id, task_queue, activity);
        let mut locked = family.lock();
        let partition = Family::pick(&mut locked.next_write, write);
        locked.offer(partition, item);
    }
}

fn poller_info(identity: &str, seen: SystemTime) -> PollerInfo {
    let since_epoch = seen
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    PollerInfo {
        identity: identity.to_string(),
        last_access_time: Some(sundial_proto::prost_types::Timestamp {
            seconds: since_epoch.as_secs() as i64,
            nanos: since_epoch.subsec_nanos() as i32,
        }),
        rate_per_second: 0.0,
        ..Default::default()
    }
}

#[async_trait]
impl MatchingApi for Matching {
    async fn add_workflow_task(
        &self,
        task_queue: &str,
        task: TaskRef,
        sticky: bool,
    ) -> Result<bool> {
        let namespace_id = task.namespace_id.clone();
        let (_, write) = self.counts(&namespace_id, task_queue, false, sticky);
        let family = self.family(&namespace_id, task_queue, false);
        let mut locked = family.lock();
        if sticky {
            let worker_present = !locked.pollers.is_empty()
                || locked
                    .last_poll
                    .is_some_and(|last| last.elapsed() < STICKY_WORKER_MEMORY);
            if !worker_present {
                return Ok(false);
            }
        }
        let partition = Family::pick(&mut locked.next_write, write);
        locked.offer(partition, Item::Workflow(WorkflowTaskMatch::Task(task)));
        Ok(true)
    }

    async fn add_activity_task(&self, task_queue: &str, task: TaskRef) -> Result<()> {
        let namespace_id = task.namespace_id.clone();
        self.add(&namespace_id, task_queue, true, Item::Activity(task));
        Ok(())
    }

    async fn poll_workflow_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        sticky: bool,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<WorkflowTaskMatch>> {
        loop {
            let Some(item) = self
                .poll(namespace_id, task_queue, false, sticky, identity, deadline)
                .await
            else {
                return Ok(None);
            };
            match item {
                Item::Workflow(WorkflowTaskMatch::Query { query_id, .. })
                    if !self.queries.lock().contains_key(&query_id) =>
                {
                    continue;
                }
                Item::Workflow(found) => return Ok(Some(found)),
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
    ) -> Result<Option<TaskRef>> {
        loop {
            let Some(item) = self
                .poll(namespace_id, task_queue, true, false, identity, deadline)
                .await
            else {
                return Ok(None);
            };
            match item {
                Item::Activity(task) => return Ok(Some(task)),
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
        let family = self.family(namespace_id, task_queue, false);
        let seen_recently = {
            let locked = family.lock();
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

    async fn shutdown_worker(&self, namespace_id: &str, sticky_task_queue: &str) -> Result<()> {
        let family = self.family(namespace_id, sticky_task_queue, false);
        let mut locked = family.lock();
        // The worker is gone: its sticky queue takes no more tasks until it polls again.
        locked.last_poll = None;
        while let Some((_, poller)) = locked.pollers.pop_front() {
            let _ = poller.send(Item::Wake);
        }
        Ok(())
    }

    async fn describe_task_queue(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<Vec<PartitionDescription>> {
        let (queue, _) = parse_partition_name(task_queue);
        let (read, write) = self.counts(namespace_id, queue, activity, false);
        let family = self.family(namespace_id, queue, activity);
        let mut locked = family.lock();
        locked.partition(read.max(write) - 1);
        let now = Instant::now();
        let wall_now = SystemTime::now();
        Ok(locked
            .partitions
            .iter()
            .enumerate()
            .map(|(index, partition)| PartitionDescription {
                index,
                pollers: partition
                    .poller_identities
                    .iter()
                    .filter(|(_, seen)| {
                        seen.elapsed()
                            .map(|age| age < POLLER_LISTED_FOR)
                            .unwrap_or(false)
                    })
                    .map(|(identity, seen)| poller_info(identity, *seen))
                    .collect(),
                backlog: partition.items.len() as i64,
                added: partition.added,
                oldest_backlog: partition
                    .items
                    .front()
                    .map(|(_, at)| wall_now - now.duration_since(*at)),
            })
            .collect())
    }

    async fn read_partitions(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<usize> {
        Ok(self.counts(namespace_id, task_queue, activity, false).0)
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
        matching.add_activity_task("q", task(1)).await.unwrap();
        matching.add_activity_task("q", task(2)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            matching
                .poll_activity_task("ns", "q", "w", deadline)
                .await
                .unwrap(),
            Some(task(1))
        );
        assert_eq!(
            matching
                .poll_activity_task("ns", "q", "w", deadline)
                .await
                .unwrap(),
            Some(task(2))
        );
        let short = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            matching
                .poll_activity_task("ns", "q", "w", short)
                .await
                .unwrap(),
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
                    .unwrap()
            })
        };
        while matching.family("ns", "q", true).lock().pollers.is_empty() {
            tokio::task::yield_now().await;
        }
        matching.add_activity_task("q", task(7)).await.unwrap();
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
                    .unwrap()
            })
        };
        while matching.family("ns", "q", true).lock().pollers.is_empty() {
            tokio::task::yield_now().await;
        }
        // The poll goes away; a task offered to it afterwards must not be lost.
        poller.abort();
        let _ = poller.await;
        matching.add_activity_task("q", task(9)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            matching
                .poll_activity_task("ns", "q", "w", deadline)
                .await
                .unwrap(),
            Some(task(9))
        );
    }

    fn partitioned(read: usize, write: usize) -> Matching {
        Matching::with_partitions(Box::new(FixedPartitions { read, write }))
    }

    async fn backlogs(matching: &Matching) -> Vec<i64> {
        matching
            .describe_task_queue("ns", "q", true)
            .await
            .unwrap()
            .iter()
            .map(|partition| partition.backlog)
            .collect()
    }

    #[tokio::test]
    async fn adds_spread_over_write_partitions() {
        let matching = partitioned(4, 4);
        for id in 0..8 {
            matching.add_activity_task("q", task(id)).await.unwrap();
        }
        assert_eq!(backlogs(&matching).await, vec![2, 2, 2, 2]);
        let one = partitioned(1, 1);
        for id in 0..8 {
            one.add_activity_task("q", task(id)).await.unwrap();
        }
        assert_eq!(backlogs(&one).await, vec![8]);
    }

    #[tokio::test]
    async fn every_partition_is_drained_even_beyond_the_read_count() {
        // Read lowered below write: Temporal would strand partitions 1..3; Sundial does not.
        let matching = partitioned(1, 4);
        for id in 0..8 {
            matching.add_activity_task("q", task(id)).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut taken = Vec::new();
        while let Some(task) = matching
            .poll_activity_task("ns", "q", "w", deadline)
            .await
            .unwrap()
        {
            taken.push(task.scheduled_event_id);
        }
        taken.sort();
        assert_eq!(taken, (0..8).collect::<Vec<_>>());
        assert_eq!(backlogs(&matching).await, vec![0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_waiting_poll_takes_a_task_added_to_another_partition() {
        let matching = Arc::new(partitioned(4, 4));
        // Four polls start at partitions 0..3 and wait; four adds land on partitions 0..3.
        let polls: Vec<_> = (0..4)
            .map(|_| {
                let matching = matching.clone();
                tokio::spawn(async move {
                    matching
                        .poll_activity_task("ns", "q", "w", Instant::now() + Duration::from_secs(5))
                        .await
                        .unwrap()
                })
            })
            .collect();
        while matching.family("ns", "q", true).lock().pollers.len() < 4 {
            tokio::task::yield_now().await;
        }
        // Skip partition 0 so every task lands on a partition whose own poll is not first.
        matching.family("ns", "q", true).lock().next_write = 1;
        for id in 0..4 {
            matching.add_activity_task("q", task(id)).await.unwrap();
        }
        let mut taken = Vec::new();
        for poll in polls {
            taken.push(poll.await.unwrap().unwrap().scheduled_event_id);
        }
        taken.sort();
        assert_eq!(taken, vec![0, 1, 2, 3]);
        assert_eq!(backlogs(&matching).await, vec![0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn pollers_are_listed_by_the_partition_they_polled() {
        let matching = partitioned(2, 2);
        let short = Instant::now() + Duration::from_millis(5);
        matching
            .poll_activity_task("ns", "q", "a", short)
            .await
            .unwrap();
        let short = Instant::now() + Duration::from_millis(5);
        matching
            .poll_activity_task("ns", "q", "b", short)
            .await
            .unwrap();
        let described = matching
            .describe_task_queue("ns", "/_sys/q/1", true)
            .await
            .unwrap();
        let names: Vec<Vec<String>> = described
            .iter()
            .map(|partition| {
                partition
                    .pollers
                    .iter()
                    .map(|p| p.identity.clone())
                    .collect()
            })
            .collect();
        assert_eq!(names, vec![vec!["a".to_string()], vec!["b".to_string()]]);
        assert_eq!(matching.read_partitions("ns", "q", true).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn sticky_queues_have_one_partition() {
        let matching = partitioned(4, 4);
        // A recent poll makes the sticky worker present.
        let short = Instant::now() + Duration::from_millis(1);
        matching
            .poll_workflow_task("ns", "sticky", true, "w", short)
            .await
            .unwrap();
        for id in 0..3 {
            assert!(
                matching
                    .add_workflow_task("sticky", task(id), true)
                    .await
                    .unwrap()
            );
        }
        let family = matching.family("ns", "sticky", false);
        let locked = family.lock();
        assert_eq!(locked.partitions.len(), 1);
        assert_eq!(locked.partitions[0].items.len(), 3);
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
                    .unwrap()
            })
        };
        while matching
            .family("ns", "sticky", false)
            .lock()
            .pollers
            .is_empty()
        {
            tokio::task::yield_now().await;
        }
        matching.shutdown_worker("ns", "sticky").await.unwrap();
        assert!(poller.await.unwrap().is_none());
    }
}
