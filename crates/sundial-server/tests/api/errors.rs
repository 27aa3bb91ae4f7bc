use std::time::Duration;

use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::workflowservice::v1 as ws;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn bad_input_gets_clear_statuses() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();

    let mut unknown_namespace = start_request("wf", "q");
    unknown_namespace.namespace = "missing".into();
    let error = client
        .start_workflow_execution(unknown_namespace)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(
        detail_type(&error).as_deref(),
        Some("NamespaceNotFoundFailure")
    );

    let error = client
        .start_workflow_execution(start_request("", "q"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let error = client
        .start_workflow_execution(start_request(&"x".repeat(1001), "q"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);

    let mut too_big = start_request("wf-big", "q");
    too_big.input = payloads(&"y".repeat(2 * 1024 * 1024 + 10));
    let error = client.start_workflow_execution(too_big).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.message(), "Blob data size exceeds limit.");

    // Temporal accepts policy values it does not know, and so does Sundial.
    let mut unknown_policy = start_request("wf-policy", "q-policies");
    unknown_policy.workflow_id_reuse_policy = 99;
    assert!(
        client
            .start_workflow_execution(unknown_policy)
            .await
            .unwrap()
            .into_inner()
            .started
    );
    let mut bad_combination = start_request("wf-policy-2", "q-policies");
    bad_combination.workflow_id_reuse_policy =
        sundial_proto::api::enums::v1::WorkflowIdReusePolicy::RejectDuplicate as i32;
    bad_combination.workflow_id_conflict_policy =
        sundial_proto::api::enums::v1::WorkflowIdConflictPolicy::TerminateExisting as i32;
    assert_eq!(
        client
            .start_workflow_execution(bad_combination)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    for token in [vec![], b"garbage".to_vec(), vec![1, 255, 255, 255]] {
        let error = client
            .respond_activity_task_completed(ws::RespondActivityTaskCompletedRequest {
                namespace: "default".into(),
                task_token: token,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(error.message(), "error deserializing task token");
    }

    let error = client
        .get_workflow_execution_history(ws::GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "nobody".into(),
                run_id: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(error.message(), "workflow not found for ID: nobody");
    assert_eq!(detail_type(&error).as_deref(), Some("NotFoundFailure"));

    let error = client
        .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "nobody".into(),
                run_id: "not-a-uuid".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);

    // Long polls need a deadline, and a long enough one.
    let poll = ws::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: task_queue("q"),
        ..Default::default()
    };
    let error = client
        .poll_workflow_task_queue(poll.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut short = tonic::Request::new(poll.clone());
    short.set_timeout(Duration::from_millis(500));
    assert_eq!(
        client
            .poll_workflow_task_queue(short)
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    // An empty poll answers before the client's deadline with no task.
    let mut patient = tonic::Request::new(poll);
    patient.set_timeout(Duration::from_secs(3));
    let response = client
        .poll_workflow_task_queue(patient)
        .await
        .unwrap()
        .into_inner();
    assert!(response.task_token.is_empty());
}

#[tokio::test]
async fn too_large_history_terminates_the_run() {
    let server = TestServer::start_with(|options| options.limits.history_count_error = 8).await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-huge", "q-huge").await;
    let execution = Some(WorkflowExecution {
        workflow_id: "wf-huge".into(),
        run_id: run_id.clone(),
    });
    let mut refusal = None;
    for index in 0..20 {
        let outcome = client
            .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: execution.clone(),
                signal_name: format!("s{index}"),
                ..Default::default()
            })
            .await;
        if let Err(status) = outcome {
            refusal = Some((index, status));
            break;
        }
    }
    let (index, status) = refusal.expect("the history limit must stop the signals");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "Workflow history count exceeds limit.");
    // Events 1-2 plus six signals reach the limit of 8; the ninth write terminates instead.
    assert_eq!(index, 6);
    let events = history(&mut client, "wf-huge", &run_id).await;
    assert_eq!(
        events.last().unwrap().event_type(),
        sundial_proto::api::enums::v1::EventType::WorkflowExecutionTerminated
    );
    assert_eq!(events.len(), 9);
}

#[tokio::test]
async fn namespace_rate_limit_answers_resource_exhausted() {
    let server = TestServer::start_with(|options| {
        options.rate_limits = sundial_frontend::rate_limit::RateLimits {
            rps: 0.0,
            namespace_rps: 5.0,
            global_namespace_rps: 0.0,
        };
    })
    .await;
    let mut client = server.client.clone();
    let mut refused = None;
    for index in 0..20 {
        if let Err(status) = client
            .start_workflow_execution(start_request(&format!("wf-rate-{index}"), "q"))
            .await
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("the namespace limit must refuse some of 20 quick requests");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        detail_type(&status).as_deref(),
        Some("ResourceExhaustedFailure")
    );
    // Another namespace has its own budget.
    let mut other = start_request("wf-other", "q");
    other.namespace = "other".into();
    client.start_workflow_execution(other).await.unwrap();
}

#[tokio::test]
async fn by_id_completions_check_the_blob_limit() {
    let server = TestServer::start_with(|options| options.limits.blob_size_error = 100).await;
    let mut client = server.client.clone();
    start(&mut client, "wf-byid-blob", "q-byid-blob").await;
    let task = poll_workflow_task(&mut client, "q-byid-blob").await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-byid-blob", 30, None)],
    )
    .await
    .unwrap();
    poll_activity_task(&mut client, "q-byid-blob").await;
    let heartbeat = client
        .record_activity_task_heartbeat_by_id(ws::RecordActivityTaskHeartbeatByIdRequest {
            namespace: "default".into(),
            workflow_id: "wf-byid-blob".into(),
            activity_id: "a1".into(),
            details: payloads(&"d".repeat(200)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(heartbeat.code(), Code::InvalidArgument);
    let completed = client
        .respond_activity_task_completed_by_id(ws::RespondActivityTaskCompletedByIdRequest {
            namespace: "default".into(),
            workflow_id: "wf-byid-blob".into(),
            activity_id: "a1".into(),
            result: payloads(&"r".repeat(200)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(completed.code(), Code::InvalidArgument);
    assert_eq!(completed.message(), "Blob data size exceeds limit.");
    // A result within the limit still completes the activity.
    client
        .respond_activity_task_completed_by_id(ws::RespondActivityTaskCompletedByIdRequest {
            namespace: "default".into(),
            workflow_id: "wf-byid-blob".into(),
            activity_id: "a1".into(),
            result: payloads("ok"),
            ..Default::default()
        })
        .await
        .unwrap();
}
