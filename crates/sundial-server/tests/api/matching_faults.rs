//! Matching can fail (it will sit behind a network): history keeps a task whose add failed and
//! adds it again, and a poll that matching cannot serve reaches the worker as Unavailable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use sundial_common::{Error, Result};
use sundial_proto::api::enums::v1::EventType as E;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::{MatchingApi, PartitionDescription, QueryAnswer, TaskRef, WorkflowTaskMatch};
use sundial_server::WrapMatching;

use crate::common::*;

/// The real matching, unreachable while `down` is set.
struct Unreachable {
    inner: Arc<dyn MatchingApi>,
    down: Arc<AtomicBool>,
    refused_adds: Arc<AtomicUsize>,
}

impl Unreachable {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Unavailable("matching is unreachable".into()))
        } else {
            Ok(())
        }
    }

    fn check_add(&self) -> Result<()> {
        self.check().inspect_err(|_| {
            self.refused_adds.fetch_add(1, Ordering::SeqCst);
        })
    }
}

#[async_trait]
impl MatchingApi for Unreachable {
    async fn add_workflow_task(
        &self,
        task_queue: &str,
        task: TaskRef,
        sticky: bool,
    ) -> Result<bool> {
        self.check_add()?;
        self.inner.add_workflow_task(task_queue, task, sticky).await
    }

    async fn add_activity_task(&self, task_queue: &str, task: TaskRef) -> Result<()> {
        self.check_add()?;
        self.inner.add_activity_task(task_queue, task).await
    }

    async fn poll_workflow_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        sticky: bool,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<WorkflowTaskMatch>> {
        self.check()?;
        self.inner
            .poll_workflow_task(namespace_id, task_queue, sticky, identity, deadline)
            .await
    }

    async fn poll_activity_task(
        &self,
        namespace_id: &str,
        task_queue: &str,
        identity: &str,
        deadline: Instant,
    ) -> Result<Option<TaskRef>> {
        self.check()?;
        self.inner
            .poll_activity_task(namespace_id, task_queue, identity, deadline)
            .await
    }

    async fn query(
        &self,
        namespace_id: &str,
        task_queue: &str,
        response: ws::PollWorkflowTaskQueueResponse,
        deadline: Instant,
    ) -> Result<QueryAnswer> {
        self.check()?;
        self.inner
            .query(namespace_id, task_queue, response, deadline)
            .await
    }

    async fn respond_query(&self, query_id: &str, answer: QueryAnswer) -> Result<()> {
        self.check()?;
        self.inner.respond_query(query_id, answer).await
    }

    async fn shutdown_worker(&self, namespace_id: &str, sticky_task_queue: &str) -> Result<()> {
        self.check()?;
        self.inner
            .shutdown_worker(namespace_id, sticky_task_queue)
            .await
    }

    async fn describe_task_queue(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<Vec<PartitionDescription>> {
        self.check()?;
        self.inner
            .describe_task_queue(namespace_id, task_queue, activity)
            .await
    }

    async fn read_partitions(
        &self,
        namespace_id: &str,
        task_queue: &str,
        activity: bool,
    ) -> Result<usize> {
        self.check()?;
        self.inner
            .read_partitions(namespace_id, task_queue, activity)
            .await
    }
}

#[tokio::test]
async fn tasks_matching_refused_are_added_again_and_polls_fail_cleanly() {
    let down = Arc::new(AtomicBool::new(false));
    let refused_adds = Arc::new(AtomicUsize::new(0));
    let (flag, refused) = (down.clone(), refused_adds.clone());
    let server = TestServer::start_with(move |options| {
        options.wrap_matching = Some(WrapMatching(Arc::new(move |inner| {
            Arc::new(Unreachable {
                inner,
                down: flag.clone(),
                refused_adds: refused.clone(),
            })
        })));
    })
    .await;
    let mut client = server.client.clone();

    // The start is durable, so it succeeds; its workflow task cannot be queued yet.
    down.store(true, Ordering::SeqCst);
    let run_id = start(&mut client, "wf-matching-down", "q-matching-down").await;
    assert!(refused_adds.load(Ordering::SeqCst) >= 1);
    let error = client
        .poll_workflow_task_queue(with_timeout(
            ws::PollWorkflowTaskQueueRequest {
                namespace: "default".into(),
                task_queue: task_queue("q-matching-down"),
                identity: "w".into(),
                ..Default::default()
            },
            5,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    assert!(error.message().contains("matching"), "{error:?}");

    // Matching is back: the kept task arrives.
    down.store(false, Ordering::SeqCst);
    let task = poll_workflow_task(&mut client, "q-matching-down").await;
    assert_eq!(task.workflow_execution.as_ref().unwrap().run_id, run_id);

    // The same for an activity scheduled while matching is away.
    down.store(true, Ordering::SeqCst);
    let before = refused_adds.load(Ordering::SeqCst);
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a", "q-matching-down", 30, None)],
    )
    .await
    .unwrap();
    assert!(refused_adds.load(Ordering::SeqCst) > before);
    down.store(false, Ordering::SeqCst);
    let activity = poll_activity_task(&mut client, "q-matching-down").await;
    complete_activity(&mut client, &activity.task_token, "done")
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-matching-down").await;
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    let events = history(&mut client, "wf-matching-down", &run_id).await;
    assert_eq!(types(&events).last(), Some(&E::WorkflowExecutionCompleted));
    assert_eq!(
        types(&events)
            .iter()
            .filter(|t| **t == E::ActivityTaskScheduled)
            .count(),
        1
    );
}
