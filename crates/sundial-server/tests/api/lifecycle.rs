use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::{
    EventType as E, WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use sundial_proto::api::workflowservice::v1 as ws;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn system_info_namespaces_and_health() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let info = client
        .get_system_info(ws::GetSystemInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let capabilities = info.capabilities.unwrap();
    assert!(capabilities.signal_and_query_header && capabilities.sdk_metadata);
    assert!(
        !capabilities.eager_workflow_start,
        "eager start is not served, so it must not be advertised"
    );

    let described = client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.namespace_info.as_ref().unwrap().name, "default");
    assert!(described.namespace_info.unwrap().capabilities.is_some());

    client
        .register_namespace(ws::RegisterNamespaceRequest {
            namespace: "orders".into(),
            description: "d".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = client
        .register_namespace(ws::RegisterNamespaceRequest {
            namespace: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let list = client
        .list_namespaces(ws::ListNamespacesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = list
        .namespaces
        .iter()
        .map(|n| n.namespace_info.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(names, vec!["default", "orders", "other"]);
    let updated = client
        .update_namespace(ws::UpdateNamespaceRequest {
            namespace: "orders".into(),
            update_info: Some(sundial_proto::api::namespace::v1::UpdateNamespaceInfo {
                description: "new".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.namespace_info.unwrap().description, "new");

    let missing = client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        detail_type(&missing).as_deref(),
        Some("NamespaceNotFoundFailure")
    );

    let endpoint = format!("http://{}", server.server.as_ref().unwrap().address);
    let mut health = sundial_proto::health::health_client::HealthClient::connect(endpoint)
        .await
        .unwrap();
    for service in [
        "",
        "temporal.api.workflowservice.v1.WorkflowService",
        "temporal.api.operatorservice.v1.OperatorService",
    ] {
        let status = health
            .check(sundial_proto::health::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.status, 1, "{service:?} is serving");
    }
    let unknown = health
        .check(sundial_proto::health::HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn start_complete_and_read_history() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-basic", "q-basic").await;
    let task = poll_workflow_task(&mut client, "q-basic").await;
    assert_eq!(task.started_event_id, 3);
    assert_eq!(task.previous_started_event_id, 0);
    assert_eq!(
        types(&task.history.unwrap().events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted
        ]
    );
    complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("done")],
    )
    .await
    .unwrap();
    let events = history(&mut client, "wf-basic", &run_id).await;
    assert_eq!(
        types(&events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionCompleted
        ]
    );
    let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let described = client
        .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-basic".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let info = described.workflow_execution_info.unwrap();
    assert_eq!(info.status, WorkflowExecutionStatus::Completed as i32);
    assert_eq!(info.history_length, 5);
    let list = client
        .list_workflow_executions(ws::ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.executions.len(), 1);
    assert_eq!(
        list.executions[0].execution.as_ref().unwrap().run_id,
        run_id
    );
}

#[tokio::test]
async fn start_policies() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let first = start_request("wf-policy", "q-policy");
    let run_id = client
        .start_workflow_execution(first.clone())
        .await
        .unwrap()
        .into_inner()
        .run_id;
    // The same request id is deduplicated.
    let again = client
        .start_workflow_execution(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.run_id, run_id);
    assert!(again.started);
    // A new request conflicts with the running run.
    let conflict = client
        .start_workflow_execution(start_request("wf-policy", "q-policy"))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert_eq!(
        detail_type(&conflict).as_deref(),
        Some("WorkflowExecutionAlreadyStartedFailure")
    );
    assert!(
        conflict.message().contains("already running"),
        "{}",
        conflict.message()
    );
    // USE_EXISTING returns the running run.
    let mut use_existing = start_request("wf-policy", "q-policy");
    use_existing.workflow_id_conflict_policy = WorkflowIdConflictPolicy::UseExisting as i32;
    let existing = client
        .start_workflow_execution(use_existing)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(existing.run_id, run_id);
    assert!(!existing.started);
    // TERMINATE_EXISTING ends the old run and starts a new one.
    let mut terminate = start_request("wf-policy", "q-policy");
    terminate.workflow_id_conflict_policy = WorkflowIdConflictPolicy::TerminateExisting as i32;
    let replaced = client
        .start_workflow_execution(terminate)
        .await
        .unwrap()
        .into_inner();
    assert_ne!(replaced.run_id, run_id);
    let old = history(&mut client, "wf-policy", &run_id).await;
    assert_eq!(
        old.last().unwrap().event_type(),
        E::WorkflowExecutionTerminated
    );
    // REJECT_DUPLICATE refuses once the run is closed.
    client
        .terminate_workflow_execution(ws::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-policy".into(),
                run_id: String::new(),
            }),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut reject = start_request("wf-policy", "q-policy");
    reject.workflow_id_reuse_policy = WorkflowIdReusePolicy::RejectDuplicate as i32;
    assert_eq!(
        client
            .start_workflow_execution(reject)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let mut failed_only = start_request("wf-policy", "q-policy");
    failed_only.workflow_id_reuse_policy = WorkflowIdReusePolicy::AllowDuplicateFailedOnly as i32;
    assert!(
        client
            .start_workflow_execution(failed_only)
            .await
            .unwrap()
            .into_inner()
            .started,
        "terminated runs may be reused"
    );
}

#[tokio::test]
async fn signals_cancel_and_terminate() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-signal", "q-signal").await;
    let execution = Some(WorkflowExecution {
        workflow_id: "wf-signal".into(),
        run_id: run_id.clone(),
    });
    client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution.clone(),
            signal_name: "hello".into(),
            input: payloads("x"),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .request_cancel_workflow_execution(ws::RequestCancelWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution.clone(),
            reason: "stop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-signal").await;
    let seen = types(&task.history.unwrap().events);
    assert_eq!(
        seen,
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowExecutionSignaled,
            E::WorkflowExecutionCancelRequested,
            E::WorkflowTaskStarted
        ]
    );
    client
        .terminate_workflow_execution(ws::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution.clone(),
            reason: "enough".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let events = history(&mut client, "wf-signal", &run_id).await;
    assert_eq!(
        &types(&events)[5..],
        &[E::WorkflowTaskFailed, E::WorkflowExecutionTerminated]
    );
    // Closed runs: signal and terminate are NotFound, a cancel request is a no-op.
    let signal = client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution.clone(),
            signal_name: "late".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(signal.code(), Code::NotFound);
    assert!(signal.message().contains("already completed"));
    client
        .request_cancel_workflow_execution(ws::RequestCancelWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn signal_with_start_starts_then_signals() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let request = ws::SignalWithStartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: "wf-sws".into(),
        workflow_type: Some(sundial_proto::api::common::v1::WorkflowType { name: "T".into() }),
        task_queue: task_queue("q-sws"),
        signal_name: "go".into(),
        signal_input: payloads("s"),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let first = client
        .signal_with_start_workflow_execution(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.started);
    let mut second_request = request.clone();
    second_request.request_id = uuid::Uuid::new_v4().to_string();
    let second = client
        .signal_with_start_workflow_execution(second_request)
        .await
        .unwrap()
        .into_inner();
    assert!(!second.started);
    assert_eq!(second.run_id, first.run_id);
    let events = history(&mut client, "wf-sws", &first.run_id).await;
    assert_eq!(
        types(&events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled,
            E::WorkflowExecutionSignaled
        ]
    );
}
