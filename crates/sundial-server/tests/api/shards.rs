//! History's shards: acquired and released while the server runs, given up when another owner
//! takes them, and cross-run work sent through `HistoryApi` (so that another host can own the
//! other run).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sundial_common::{Error, Result};
use sundial_proto::api::command::v1::{
    RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes, StartChildWorkflowExecutionCommandAttributes,
    command,
};
use sundial_proto::api::common::v1::{Payloads, WorkflowExecution, WorkflowType};
use sundial_proto::api::enums::v1::{CommandType, EventType as E};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::HistoryEvent;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::{HistoryApi, NamespaceRef, ParentExecutionInfo, TaskRef, TaskToken};
use sundial_server::WrapHistory;

use crate::common::*;

async fn namespace_id(client: &mut Client) -> String {
    client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("describe namespace")
        .into_inner()
        .namespace_info
        .expect("namespace info")
        .id
}

fn describe(workflow_id: &str) -> ws::DescribeWorkflowExecutionRequest {
    ws::DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.into(),
            run_id: String::new(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_shard_stops_serving_and_picks_up_its_timers_when_acquired_again() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let running = server.server.as_ref().unwrap();
    let history = running.history();
    assert_eq!(history.held_shards(), vec![1, 2, 3, 4]);
    let ns = namespace_id(&mut client).await;
    let run_id = start(&mut client, "wf-released", "q-released").await;
    let task = poll_workflow_task(&mut client, "q-released").await;
    complete(&mut client, &task.task_token, vec![start_timer("t", 1000)])
        .await
        .unwrap();
    assert_eq!(history.timers_in_memory(), 1);

    // Nothing is owned any more: every shard is let go, and a request is refused.
    history.set_ownership(Arc::new(|_| false));
    for shard in 1..=4 {
        history.release_shard(shard);
    }
    assert!(history.held_shards().is_empty());
    assert_eq!(history.timers_in_memory(), 0);
    let error = client
        .describe_workflow_execution(describe("wf-released"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");

    // The timer's time passes while no shard is held: it does not fire.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stored = running
        .store()
        .read_history(&ns, &run_id, 1, i64::MAX, 1000)
        .await
        .unwrap();
    assert!(
        !types(&stored).contains(&E::TimerFired),
        "{:?}",
        types(&stored)
    );

    // Owned and acquired again: the recovery finds the overdue timer through the index.
    history.set_ownership(Arc::new(|_| true));
    for shard in 1..=4 {
        history.acquire_shard(shard).await.unwrap();
    }
    assert_eq!(history.held_shards(), vec![1, 2, 3, 4]);
    let task = poll_workflow_task(&mut client, "q-released").await;
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    let events = history_of(&mut client, "wf-released", &run_id).await;
    assert!(types(&events).contains(&E::TimerFired));
    assert_eq!(types(&events).last(), Some(&E::WorkflowExecutionCompleted));
}

async fn history_of(client: &mut Client, workflow_id: &str, run_id: &str) -> Vec<HistoryEvent> {
    crate::common::history(client, workflow_id, run_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_acquired_by_another_owner_is_given_up_then_taken_back_on_demand() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let running = server.server.as_ref().unwrap();
    let history = running.history();
    let ns = namespace_id(&mut client).await;
    let run_id = start(&mut client, "wf-stolen", "q-stolen").await;
    let shard = sundial_common::shard_for(&ns, "wf-stolen", 4);
    let task = poll_workflow_task(&mut client, "q-stolen").await;

    // Another owner acquires the shard (as a second history host would): this process's next
    // write of it is fenced, the caller is told to retry, and the shard is given up.
    running.store().acquire_shard(shard).await.unwrap();
    let error = complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    let held = history.held_shards();
    assert!(!held.contains(&shard), "{held:?}");
    assert_eq!(held.len(), 3);

    // Nothing retries the lost shard by itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!history.held_shards().contains(&shard));

    // This process should still own it (the policy says every shard), so the retry acquires it
    // again (fencing the other owner in turn) and succeeds: the failed write changed nothing.
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    assert!(history.held_shards().contains(&shard));
    let events = history_of(&mut client, "wf-stolen", &run_id).await;
    assert_eq!(
        types(&events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionCompleted,
        ]
    );
}

/// History as its cross-run work sees it: each cross-run call fails once with Unavailable (as a
/// remote host can) before it goes through, and is counted.
struct FlakyPeer {
    inner: Arc<dyn HistoryApi>,
    starts: AtomicUsize,
    signals: AtomicUsize,
    cancels: AtomicUsize,
    child_closes: AtomicUsize,
}

fn first_fails(counter: &AtomicUsize) -> Result<()> {
    if counter.fetch_add(1, Ordering::SeqCst) == 0 {
        Err(Error::Unavailable("history host unreachable".into()))
    } else {
        Ok(())
    }
}

#[async_trait]
impl HistoryApi for FlakyPeer {
    async fn update_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::UpdateWorkflowExecutionRequest,
        deadline: std::time::Instant,
    ) -> Result<ws::UpdateWorkflowExecutionResponse> {
        self.inner
            .update_workflow_execution(namespace, request, deadline)
            .await
    }
    async fn poll_workflow_execution_update(
        &self,
        namespace: &NamespaceRef,
        request: ws::PollWorkflowExecutionUpdateRequest,
        deadline: std::time::Instant,
    ) -> Result<ws::PollWorkflowExecutionUpdateResponse> {
        self.inner
            .poll_workflow_execution_update(namespace, request, deadline)
            .await
    }
    async fn start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        self.inner
            .start_workflow_execution(namespace, request)
            .await
    }
    async fn update_with_start(
        &self,
        namespace: &NamespaceRef,
        start: ws::StartWorkflowExecutionRequest,
        update: ws::UpdateWorkflowExecutionRequest,
        deadline: std::time::Instant,
    ) -> Result<sundial_rpc::UpdateWithStart> {
        self.inner
            .update_with_start(namespace, start, update, deadline)
            .await
    }
    async fn signal_with_start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWithStartWorkflowExecutionRequest,
    ) -> Result<ws::SignalWithStartWorkflowExecutionResponse> {
        self.inner
            .signal_with_start_workflow_execution(namespace, request)
            .await
    }
    async fn signal_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
    ) -> Result<()> {
        self.inner
            .signal_workflow_execution(namespace, request)
            .await
    }
    async fn request_cancel_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
    ) -> Result<()> {
        self.inner
            .request_cancel_workflow_execution(namespace, request)
            .await
    }
    async fn terminate_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::TerminateWorkflowExecutionRequest,
    ) -> Result<()> {
        self.inner
            .terminate_workflow_execution(namespace, request)
            .await
    }
    async fn describe_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::DescribeWorkflowExecutionRequest,
    ) -> Result<ws::DescribeWorkflowExecutionResponse> {
        self.inner
            .describe_workflow_execution(namespace, request)
            .await
    }
    async fn get_workflow_execution_history(
        &self,
        namespace: &NamespaceRef,
        request: ws::GetWorkflowExecutionHistoryRequest,
        deadline: Instant,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse> {
        self.inner
            .get_workflow_execution_history(namespace, request, deadline)
            .await
    }
    async fn query_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<ws::QueryWorkflowResponse> {
        self.inner
            .query_workflow(namespace, request, deadline)
            .await
    }
    async fn record_workflow_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollWorkflowTaskQueueRequest,
    ) -> Result<ws::PollWorkflowTaskQueueResponse> {
        self.inner
            .record_workflow_task_started(namespace, task, request)
            .await
    }
    async fn respond_workflow_task_completed(
        &self,
        namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskCompletedRequest,
    ) -> Result<ws::RespondWorkflowTaskCompletedResponse> {
        self.inner
            .respond_workflow_task_completed(namespace, token, request)
            .await
    }
    async fn reset_sticky_task_queue(
        &self,
        namespace: &NamespaceRef,
        execution: WorkflowExecution,
    ) -> Result<()> {
        self.inner
            .reset_sticky_task_queue(namespace, execution)
            .await
    }
    async fn respond_workflow_task_failed(
        &self,
        namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskFailedRequest,
    ) -> Result<()> {
        self.inner
            .respond_workflow_task_failed(namespace, token, request)
            .await
    }
    async fn record_activity_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollActivityTaskQueueRequest,
    ) -> Result<ws::PollActivityTaskQueueResponse> {
        self.inner
            .record_activity_task_started(namespace, task, request)
            .await
    }
    async fn record_activity_task_heartbeat(
        &self,
        token: TaskToken,
        details: Option<Payloads>,
    ) -> Result<ws::RecordActivityTaskHeartbeatResponse> {
        self.inner
            .record_activity_task_heartbeat(token, details)
            .await
    }
    async fn respond_activity_task_completed(
        &self,
        token: TaskToken,
        result: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        self.inner
            .respond_activity_task_completed(token, result, identity)
            .await
    }
    async fn respond_activity_task_failed(
        &self,
        token: TaskToken,
        failure: Failure,
        last_heartbeat_details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        self.inner
            .respond_activity_task_failed(token, failure, last_heartbeat_details, identity)
            .await
    }
    async fn respond_activity_task_canceled(
        &self,
        token: TaskToken,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        self.inner
            .respond_activity_task_canceled(token, details, identity)
            .await
    }
    async fn activity_token_by_id(
        &self,
        namespace: &NamespaceRef,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<TaskToken> {
        self.inner
            .activity_token_by_id(namespace, workflow_id, run_id, activity_id)
            .await
    }
    async fn start_child_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        parent: ParentExecutionInfo,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        first_fails(&self.starts)?;
        self.inner
            .start_child_workflow_execution(namespace, request, parent)
            .await
    }
    async fn signal_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
        source: WorkflowExecution,
    ) -> Result<()> {
        first_fails(&self.signals)?;
        self.inner
            .signal_from_workflow(namespace, request, source)
            .await
    }
    async fn request_cancel_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
        source: WorkflowExecution,
        initiated_event_id: i64,
    ) -> Result<()> {
        first_fails(&self.cancels)?;
        self.inner
            .request_cancel_from_workflow(namespace, request, source, initiated_event_id)
            .await
    }
    async fn record_child_execution_completed(
        &self,
        parent_namespace_id: &str,
        parent: WorkflowExecution,
        initiated_event_id: i64,
        child_run_id: String,
        close_event: HistoryEvent,
    ) -> Result<()> {
        first_fails(&self.child_closes)?;
        self.inner
            .record_child_execution_completed(
                parent_namespace_id,
                parent,
                initiated_event_id,
                child_run_id,
                close_event,
            )
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_run_work_goes_through_the_history_api_and_survives_its_failures() {
    let peer: Arc<std::sync::Mutex<Option<Arc<FlakyPeer>>>> = Default::default();
    let made = peer.clone();
    let server = TestServer::start_with(move |options| {
        options.wrap_history = Some(WrapHistory(Arc::new(move |inner| {
            let flaky = Arc::new(FlakyPeer {
                inner,
                starts: AtomicUsize::new(0),
                signals: AtomicUsize::new(0),
                cancels: AtomicUsize::new(0),
                child_closes: AtomicUsize::new(0),
            });
            *made.lock().unwrap() = Some(flaky.clone());
            flaky
        })));
    })
    .await;
    let flaky = peer.lock().unwrap().clone().expect("history wrapped");
    let mut client = server.client.clone();
    let target_run = start(&mut client, "wf-peer-target", "q-peer-target").await;
    let parent_run = start(&mut client, "wf-peer-parent", "q-peer").await;
    let task = poll_workflow_task(&mut client, "q-peer").await;
    let child = command(
        CommandType::StartChildWorkflowExecution,
        command::Attributes::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                namespace: "default".into(),
                workflow_id: "wf-peer-child".into(),
                workflow_type: Some(WorkflowType {
                    name: "Child".into(),
                }),
                task_queue: task_queue("q-peer"),
                ..Default::default()
            },
        ),
    );
    let signal = command(
        CommandType::SignalExternalWorkflowExecution,
        command::Attributes::SignalExternalWorkflowExecutionCommandAttributes(
            SignalExternalWorkflowExecutionCommandAttributes {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: "wf-peer-target".into(),
                    run_id: String::new(),
                }),
                signal_name: "poke".into(),
                input: payloads("hello"),
                ..Default::default()
            },
        ),
    );
    let cancel = command(
        CommandType::RequestCancelExternalWorkflowExecution,
        command::Attributes::RequestCancelExternalWorkflowExecutionCommandAttributes(
            RequestCancelExternalWorkflowExecutionCommandAttributes {
                namespace: "default".into(),
                workflow_id: "wf-peer-target".into(),
                reason: "done with it".into(),
                ..Default::default()
            },
        ),
    );
    complete(&mut client, &task.task_token, vec![child, signal, cancel])
        .await
        .unwrap();

    // Serve the child (it completes) and the parent until it has seen the child close.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut parent_done = false;
    while !parent_done && Instant::now() < deadline {
        let task = poll_workflow_task(&mut client, "q-peer").await;
        let execution = task.workflow_execution.clone().unwrap();
        let seen = types(&task.history.clone().unwrap().events);
        if execution.workflow_id == "wf-peer-child" {
            complete(
                &mut client,
                &task.task_token,
                vec![complete_workflow("child")],
            )
            .await
            .unwrap();
        } else if seen.contains(&E::ChildWorkflowExecutionCompleted)
            && seen.contains(&E::ExternalWorkflowExecutionSignaled)
            && seen.contains(&E::ExternalWorkflowExecutionCancelRequested)
        {
            complete(
                &mut client,
                &task.task_token,
                vec![complete_workflow("parent")],
            )
            .await
            .unwrap();
            parent_done = true;
        } else {
            complete(&mut client, &task.task_token, vec![])
                .await
                .unwrap();
        }
    }
    assert!(
        parent_done,
        "the parent never saw its child close and its signal and cancel land"
    );

    // Each kind of cross-run work went through the API, failed once and was tried again.
    assert_eq!(flaky.starts.load(Ordering::SeqCst), 2);
    assert_eq!(flaky.signals.load(Ordering::SeqCst), 2);
    assert_eq!(flaky.child_closes.load(Ordering::SeqCst), 2);
    assert_eq!(flaky.cancels.load(Ordering::SeqCst), 2);

    let parent = history_of(&mut client, "wf-peer-parent", &parent_run).await;
    let seen = types(&parent);
    for (event, count) in [
        (E::ChildWorkflowExecutionStarted, 1),
        (E::ChildWorkflowExecutionCompleted, 1),
        (E::ExternalWorkflowExecutionSignaled, 1),
        (E::ExternalWorkflowExecutionCancelRequested, 1),
    ] {
        assert_eq!(
            seen.iter().filter(|t| **t == event).count(),
            count,
            "{seen:?}"
        );
    }
    // The signal reached its target once, naming the parent as its sender.
    let target = history_of(&mut client, "wf-peer-target", &target_run).await;
    let signals: Vec<_> = target
        .iter()
        .filter_map(|event| match &event.attributes {
            Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(signals.len(), 1);
    let cancels: Vec<_> = target
        .iter()
        .filter_map(|event| match &event.attributes {
            Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(a)) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].cause, "done with it");
    assert!(cancels[0].external_initiated_event_id > 0);
    assert_eq!(
        signals[0]
            .external_workflow_execution
            .as_ref()
            .map(|e| e.workflow_id.as_str()),
        Some("wf-peer-parent")
    );
}
