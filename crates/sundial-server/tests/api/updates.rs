//! Workflow updates on the wire, with the test playing the worker: the request message a task
//! carries, acceptance and response events, a rejection that leaves no trace (and the reset
//! id that tells the worker so), the server's rejection of an update the worker ignored, bad
//! messages, waits, dedupe, and what a closing run does to pending updates.

use std::time::Duration;

use prost::Message as _;
use sundial_proto::api::command::v1::{Command, ProtocolMessageCommandAttributes, command};
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::{
    CommandType, EventType as E, UpdateWorkflowExecutionLifecycleStage as Stage,
};
use sundial_proto::api::failure::v1::{Failure, failure::FailureInfo};
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::protocol::v1::{Message, message::SequencingId};
use sundial_proto::api::update::v1::{
    Acceptance, Input, Meta, Outcome, Rejection, Request, Response, UpdateRef, WaitPolicy, outcome,
};
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::prost_types::Any;
use tonic::Code;

use crate::common::*;

fn update_request(
    workflow_id: &str,
    update_id: &str,
    arg: &str,
    stage: Stage,
) -> ws::UpdateWorkflowExecutionRequest {
    ws::UpdateWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: workflow_id.into(),
            run_id: String::new(),
        }),
        wait_policy: Some(WaitPolicy {
            lifecycle_stage: stage as i32,
        }),
        request: Some(Request {
            meta: Some(Meta {
                update_id: update_id.into(),
                identity: "caller".into(),
            }),
            input: Some(Input {
                name: "add".into(),
                args: payloads(arg),
                header: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Sends an update in the background, as a caller waiting for `stage` would.
fn send_update(
    client: &Client,
    workflow_id: &str,
    update_id: &str,
    stage: Stage,
) -> tokio::task::JoinHandle<Result<ws::UpdateWorkflowExecutionResponse, tonic::Status>> {
    let mut client = client.clone();
    let request = update_request(workflow_id, update_id, "arg", stage);
    tokio::spawn(async move {
        client
            .update_workflow_execution(with_timeout(request, 30))
            .await
            .map(|response| response.into_inner())
    })
}

fn any<M: prost::Message>(name: &str, message: &M) -> Option<Any> {
    Some(Any {
        type_url: format!("type.googleapis.com/temporal.api.update.v1.{name}"),
        value: message.encode_to_vec(),
    })
}

fn request_of(message: &Message) -> Request {
    Request::decode(message.body.as_ref().unwrap().value.as_slice()).unwrap()
}

fn event_id_of(message: &Message) -> i64 {
    match message.sequencing_id {
        Some(SequencingId::EventId(id)) => id,
        other => panic!("unexpected sequencing id {other:?}"),
    }
}

fn acceptance(request_message: &Message) -> Message {
    Message {
        id: format!("{}/accept", request_message.id),
        protocol_instance_id: request_message.protocol_instance_id.clone(),
        sequencing_id: None,
        body: any(
            "Acceptance",
            &Acceptance {
                accepted_request_message_id: request_message.id.clone(),
                accepted_request_sequencing_event_id: event_id_of(request_message),
                accepted_request: Some(request_of(request_message)),
            },
        ),
    }
}

fn response(request_message: &Message, result: &str) -> Message {
    Message {
        id: format!("{}/complete", request_message.id),
        protocol_instance_id: request_message.protocol_instance_id.clone(),
        sequencing_id: None,
        body: any(
            "Response",
            &Response {
                meta: Some(Meta {
                    update_id: request_message.protocol_instance_id.clone(),
                    identity: String::new(),
                }),
                outcome: Some(Outcome {
                    value: Some(outcome::Value::Success(payloads(result).unwrap())),
                }),
            },
        ),
    }
}

fn rejection(request_message: &Message, why: &str) -> Message {
    Message {
        id: format!("{}/reject", request_message.id),
        protocol_instance_id: request_message.protocol_instance_id.clone(),
        sequencing_id: None,
        body: any(
            "Rejection",
            &Rejection {
                rejected_request_message_id: request_message.id.clone(),
                rejected_request_sequencing_event_id: event_id_of(request_message),
                rejected_request: Some(request_of(request_message)),
                failure: Some(Failure {
                    message: why.into(),
                    ..Default::default()
                }),
            },
        ),
    }
}

fn protocol_command(message: &Message) -> Command {
    command(
        CommandType::ProtocolMessage,
        command::Attributes::ProtocolMessageCommandAttributes(ProtocolMessageCommandAttributes {
            message_id: message.id.clone(),
        }),
    )
}

/// Completes a task with `messages`, each named by a `PROTOCOL_MESSAGE` command, in order.
async fn respond_with_protocol(
    client: &mut Client,
    token: &[u8],
    messages: &[&Message],
) -> Result<ws::RespondWorkflowTaskCompletedResponse, tonic::Status> {
    let commands = messages
        .iter()
        .map(|message| protocol_command(message))
        .collect();
    let messages = messages.iter().map(|message| (*message).clone()).collect();
    respond(client, token, commands, messages).await
}

async fn respond(
    client: &mut Client,
    token: &[u8],
    commands: Vec<Command>,
    messages: Vec<Message>,
) -> Result<ws::RespondWorkflowTaskCompletedResponse, tonic::Status> {
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: token.to_vec(),
            commands,
            messages,
            identity: "test-worker".into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner())
}

/// A started run whose first workflow task completed with no command (idle: E1-E4).
async fn idle_run(client: &mut Client, workflow_id: &str, queue: &str) -> String {
    let run_id = start(client, workflow_id, queue).await;
    let task = poll_workflow_task(client, queue).await;
    complete(client, &task.task_token, vec![]).await.unwrap();
    run_id
}

fn success_text(outcome: &Option<Outcome>) -> String {
    match outcome.as_ref().and_then(|o| o.value.as_ref()) {
        Some(outcome::Value::Success(p)) => String::from_utf8(p.payloads[0].data.clone()).unwrap(),
        other => panic!("expected a success outcome, got {other:?}"),
    }
}

fn failure_of(outcome: &Option<Outcome>) -> Failure {
    match outcome.as_ref().and_then(|o| o.value.as_ref()) {
        Some(outcome::Value::Failure(f)) => f.clone(),
        other => panic!("expected a failure outcome, got {other:?}"),
    }
}

async fn poll_update(
    client: &mut Client,
    workflow_id: &str,
    update_id: &str,
) -> Result<ws::PollWorkflowExecutionUpdateResponse, tonic::Status> {
    client
        .poll_workflow_execution_update(with_timeout(
            ws::PollWorkflowExecutionUpdateRequest {
                namespace: "default".into(),
                update_ref: Some(UpdateRef {
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: workflow_id.into(),
                        run_id: String::new(),
                    }),
                    update_id: update_id.into(),
                }),
                identity: "caller".into(),
                wait_policy: Some(WaitPolicy {
                    lifecycle_stage: Stage::Completed as i32,
                }),
            },
            30,
        ))
        .await
        .map(|response| response.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_delivered_accepted_and_completed() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = idle_run(&mut client, "wf-upd", "q-upd").await;
    let call = send_update(&client, "wf-upd", "u1", Stage::Completed);
    let task = poll_workflow_task(&mut client, "q-upd").await;
    assert_eq!(
        (task.started_event_id, task.previous_started_event_id),
        (6, 3)
    );
    let events = task.history.clone().unwrap().events;
    assert_eq!(
        &types(&events)[4..],
        &[E::WorkflowTaskScheduled, E::WorkflowTaskStarted],
        "the speculative task's events are in the response"
    );
    assert_eq!((events[4].event_id, events[5].event_id), (5, 6));
    assert_eq!(task.messages.len(), 1);
    let message = &task.messages[0];
    assert_eq!(message.id, "u1/request");
    assert_eq!(message.protocol_instance_id, "u1");
    assert_eq!(event_id_of(message), 5);
    assert_eq!(request_of(message).input.unwrap().name, "add");
    let accept = acceptance(message);
    let done = response(message, "one");
    respond_with_protocol(&mut client, &task.task_token, &[&accept, &done])
        .await
        .unwrap();
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.stage, Stage::Completed as i32);
    assert_eq!(success_text(&answer.outcome), "\"one\"");
    let update_ref = answer.update_ref.unwrap();
    assert_eq!(update_ref.update_id, "u1");
    assert_eq!(update_ref.workflow_execution.unwrap().run_id, run_id);
    let events = history(&mut client, "wf-upd", &run_id).await;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionUpdateAccepted,
            E::WorkflowExecutionUpdateCompleted
        ]
    );
    match events[7].attributes.as_ref() {
        Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => {
            assert_eq!(a.protocol_instance_id, "u1");
            assert_eq!(a.accepted_request_message_id, "u1/request");
            assert_eq!(a.accepted_request_sequencing_event_id, 5);
            assert!(a.accepted_request.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    match events[8].attributes.as_ref() {
        Some(Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a)) => {
            assert_eq!(a.accepted_event_id, 8);
            assert_eq!(a.meta.as_ref().unwrap().update_id, "u1");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The same id again: the stored outcome, whatever the arguments, and no new work.
    let again = client
        .update_workflow_execution(update_request("wf-upd", "u1", "other", Stage::Completed))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(success_text(&again.outcome), "\"one\"");
    let polled = poll_update(&mut client, "wf-upd", "u1").await.unwrap();
    assert_eq!(polled.stage, Stage::Completed as i32);
    assert_eq!(success_text(&polled.outcome), "\"one\"");
    assert_eq!(history(&mut client, "wf-upd", &run_id).await.len(), 9);
    // A restart keeps what is durable: the completed update is still known.
    drop(client);
    let mut server = server;
    server.restart().await;
    let mut client = server.client.clone();
    let polled = poll_update(&mut client, "wf-upd", "u1").await.unwrap();
    assert_eq!(success_text(&polled.outcome), "\"one\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_ignored_updates_leave_no_trace() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = idle_run(&mut client, "wf-rej", "q-rej").await;
    let call = send_update(&client, "wf-rej", "u2", Stage::Completed);
    let task = poll_workflow_task(&mut client, "q-rej").await;
    let reply = respond(
        &mut client,
        &task.task_token,
        vec![],
        vec![rejection(&task.messages[0], "not now")],
    )
    .await
    .unwrap();
    assert_eq!(reply.reset_history_event_id, 3);
    assert!(reply.workflow_task.is_none());
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.stage, Stage::Completed as i32);
    assert_eq!(failure_of(&answer.outcome).message, "not now");
    assert_eq!(
        history(&mut client, "wf-rej", &run_id).await.len(),
        4,
        "a rejected update on an idle run writes nothing"
    );
    let error = poll_update(&mut client, "wf-rej", "u2").await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(error.message(), "update \"u2\" not found");
    // The id is forgotten: sent again, it is a new update. Ignored by the worker, the server
    // rejects it.
    let call = send_update(&client, "wf-rej", "u2", Stage::Completed);
    let task = poll_workflow_task(&mut client, "q-rej").await;
    assert_eq!(task.messages[0].protocol_instance_id, "u2");
    let reply = respond(&mut client, &task.task_token, vec![], vec![])
        .await
        .unwrap();
    assert_eq!(reply.reset_history_event_id, 3);
    let failure = failure_of(&call.await.unwrap().unwrap().outcome);
    assert_eq!(
        failure.message,
        "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker."
    );
    assert_eq!(failure.source, "Server");
    match failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            assert_eq!(info.r#type, "UnprocessedUpdate");
            assert!(info.non_retryable);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(history(&mut client, "wf-rej", &run_id).await.len(), 4);
    // A rejection with a command is written: the task is kept.
    let call = send_update(&client, "wf-rej", "u3", Stage::Completed);
    let task = poll_workflow_task(&mut client, "q-rej").await;
    let reply = respond(
        &mut client,
        &task.task_token,
        vec![start_timer("t", 60_000)],
        vec![rejection(&task.messages[0], "no")],
    )
    .await
    .unwrap();
    assert_eq!(reply.reset_history_event_id, 0);
    call.await.unwrap().unwrap();
    let events = history(&mut client, "wf-rej", &run_id).await;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::TimerStarted
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_requests_are_checked() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    idle_run(&mut client, "wf-chk", "q-chk").await;
    let check = |mut request: ws::UpdateWorkflowExecutionRequest,
                 change: fn(&mut ws::UpdateWorkflowExecutionRequest)| {
        change(&mut request);
        request
    };
    let cases: Vec<(ws::UpdateWorkflowExecutionRequest, Code, &str)> = vec![
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.workflow_execution = None
            }),
            Code::InvalidArgument,
            "WorkflowId is not set on request.",
        ),
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.request.as_mut().unwrap().meta = None
            }),
            Code::InvalidArgument,
            "Update meta is not set on request.",
        ),
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.request.as_mut().unwrap().input = None
            }),
            Code::InvalidArgument,
            "Update input is not set on request.",
        ),
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.request
                    .as_mut()
                    .unwrap()
                    .input
                    .as_mut()
                    .unwrap()
                    .name
                    .clear()
            }),
            Code::InvalidArgument,
            "Update name is not set on request.",
        ),
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.request.as_mut().unwrap().meta.as_mut().unwrap().update_id = "u".repeat(1001)
            }),
            Code::InvalidArgument,
            "UpdateId length exceeds limit.",
        ),
        (
            update_request("wf-chk", "x", "a", Stage::Admitted),
            Code::PermissionDenied,
            "UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not supported.",
        ),
        (
            update_request("nope", "x", "a", Stage::Completed),
            Code::NotFound,
            "workflow not found for ID: nope",
        ),
        (
            check(update_request("wf-chk", "x", "a", Stage::Completed), |r| {
                r.namespace = "no-such-namespace".into()
            }),
            Code::NotFound,
            "Namespace no-such-namespace is not found.",
        ),
    ];
    for (request, code, message) in cases {
        let error = client.update_workflow_execution(request).await.unwrap_err();
        assert_eq!((error.code(), error.message()), (code, message));
        if code == Code::PermissionDenied {
            assert_eq!(
                detail_type(&error).as_deref(),
                Some("PermissionDeniedFailure")
            );
        }
    }
    let run_id = start(&mut client, "wf-chk-closed", "q-chk").await;
    client
        .terminate_workflow_execution(ws::TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-chk-closed".into(),
                run_id,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let error = client
        .update_workflow_execution(update_request("wf-chk-closed", "x", "a", Stage::Completed))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::NotFound, "workflow execution already completed")
    );
    assert_eq!(detail_type(&error).as_deref(), Some("NotFoundFailure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_fail_the_task_and_abort_the_update() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = idle_run(&mut client, "wf-bad", "q-bad").await;
    let call = send_update(&client, "wf-bad", "u4", Stage::Completed);
    let task = poll_workflow_task(&mut client, "q-bad").await;
    // A response to an update that was never accepted.
    let done = response(&task.messages[0], "x");
    let error = respond_with_protocol(&mut client, &task.task_token, &[&done])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(
        error.message(),
        "BadUpdateWorkflowExecutionMessage: invalid state transition attempted for Update u4: received *update.Response message while in state Sent"
    );
    let aborted = call.await.unwrap().unwrap_err();
    assert_eq!(aborted.code(), Code::FailedPrecondition);
    assert_eq!(
        aborted.message(),
        "Unable to perform workflow execution update due to unexpected workflow task failure."
    );
    assert_eq!(
        detail_type(&aborted).as_deref(),
        Some("WorkflowNotReadyFailure")
    );
    let events = history(&mut client, "wf-bad", &run_id).await;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskFailed,
            E::WorkflowTaskScheduled,
        ],
        "a failed speculative task is written; the retry is transient and shown last"
    );
    // The retry carries nothing; a command naming an absent message fails it too.
    let task = poll_workflow_task(&mut client, "q-bad").await;
    assert!(task.messages.is_empty());
    let missing = Message {
        id: "nope".into(),
        ..Default::default()
    };
    let error = respond(
        &mut client,
        &task.task_token,
        vec![protocol_command(&missing)],
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.message(),
        "BadUpdateWorkflowExecutionMessage: ProtocolMessageCommand referenced absent message ID nope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_task_carries_an_update_admitted_during_a_task() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-inl", "q-inl").await;
    let first = poll_workflow_task(&mut client, "q-inl").await;
    let call = send_update(&client, "wf-inl", "u5", Stage::Accepted);
    // Admitted while the first task runs: nothing is scheduled for it yet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(history(&mut client, "wf-inl", &run_id).await.len(), 3);
    let reply = client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: first.task_token.clone(),
            identity: "test-worker".into(),
            return_new_workflow_task: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let task = reply
        .workflow_task
        .expect("the speculative task, started for this worker");
    assert_eq!(
        types(&task.history.unwrap().events),
        &[
            E::WorkflowTaskCompleted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted
        ]
    );
    assert_eq!(task.messages.len(), 1);
    assert_eq!(event_id_of(&task.messages[0]), 5);
    let accept = acceptance(&task.messages[0]);
    respond_with_protocol(&mut client, &task.task_token, &[&accept])
        .await
        .unwrap();
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.stage, Stage::Accepted as i32);
    assert!(answer.outcome.is_none());
    // The run completes with the update accepted but not completed: it fails, without an event.
    let task_for_close = client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-inl".into(),
                run_id: run_id.clone(),
            }),
            signal_name: "go".into(),
            ..Default::default()
        })
        .await;
    task_for_close.unwrap();
    let waiting = tokio::spawn({
        let mut client = client.clone();
        async move { poll_update(&mut client, "wf-inl", "u5").await }
    });
    let task = poll_workflow_task(&mut client, "q-inl").await;
    complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("done")],
    )
    .await
    .unwrap();
    let polled = waiting.await.unwrap().unwrap();
    let failure = failure_of(&polled.outcome);
    assert_eq!(
        failure.message,
        "Workflow Update failed because the Workflow completed before the Update completed."
    );
    let again = poll_update(&mut client, "wf-inl", "u5").await.unwrap();
    assert_eq!(failure_of(&again.outcome).message, failure.message);
    let events = history(&mut client, "wf-inl", &run_id).await;
    assert!(!types(&events).contains(&E::WorkflowExecutionUpdateCompleted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_runs_abort_pending_updates() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    // Completed while an update waits: the caller is told the update was aborted.
    start(&mut client, "wf-close", "q-close").await;
    let task = poll_workflow_task(&mut client, "q-close").await;
    let call = send_update(&client, "wf-close", "u6", Stage::Completed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("done")],
    )
    .await
    .unwrap();
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (
            Code::NotFound,
            "workflow update was aborted by closing workflow"
        )
    );
    // Continued as new: retryable, so the SDK sends it again to the new run.
    start(&mut client, "wf-can", "q-can").await;
    let task = poll_workflow_task(&mut client, "q-can").await;
    let call = send_update(&client, "wf-can", "u7", Stage::Completed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let continue_as_new = command(
        CommandType::ContinueAsNewWorkflowExecution,
        command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
            sundial_proto::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes {
                workflow_type: task.workflow_type.clone(),
                task_queue: task_queue("q-can"),
                ..Default::default()
            },
        ),
    );
    complete(&mut client, &task.task_token, vec![continue_as_new])
        .await
        .unwrap();
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert_eq!(
        error.message(),
        "workflow operation can not be applied because workflow is closing"
    );
    // Sent again, it lands on the new run and its first task.
    let call = send_update(&client, "wf-can", "u7", Stage::Accepted);
    let task = poll_workflow_task(&mut client, "q-can").await;
    assert_eq!(task.messages.len(), 1);
    assert_eq!(event_id_of(&task.messages[0]), 2);
    let accept = acceptance(&task.messages[0]);
    respond(&mut client, &task.task_token, vec![], vec![accept])
        .await
        .unwrap();
    assert_eq!(call.await.unwrap().unwrap().stage, Stage::Accepted as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_end_at_the_long_poll_or_the_deadline_and_limits_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.yaml");
    std::fs::write(
        &path,
        "history.longPollExpirationInterval:\n  - value: 1s\nhistory.maxInFlightUpdates:\n  - value: 2\n",
    )
    .unwrap();
    let server = TestServer::start_with(|options| {
        options.dynamic_config = Some(format!("file://{}", path.display()));
    })
    .await;
    let mut client = server.client.clone();
    idle_run(&mut client, "wf-wait", "q-wait-nobody").await;
    // No worker: the server's wait ends first, with the stage reached.
    let answer = client
        .update_workflow_execution(with_timeout(
            update_request("wf-wait", "u8", "a", Stage::Completed),
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.stage, Stage::Admitted as i32);
    assert!(answer.outcome.is_none());
    // The caller's deadline first: DEADLINE_EXCEEDED.
    let mut request = tonic::Request::new(update_request("wf-wait", "u8", "a", Stage::Completed));
    request.set_timeout(Duration::from_millis(300));
    let error = client.update_workflow_execution(request).await.unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded);
    // u8 is still in flight; one more fits, the third is refused.
    client
        .update_workflow_execution(with_timeout(
            update_request("wf-wait", "u9", "a", Stage::Accepted),
            10,
        ))
        .await
        .unwrap();
    let error = client
        .update_workflow_execution(with_timeout(
            update_request("wf-wait", "u10", "a", Stage::Accepted),
            10,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert_eq!(
        error.message(),
        "limit on number of concurrent in-flight updates has been reached (2)"
    );
    // Both admitted updates ride on one task, in admission order.
    let task = poll_workflow_task(&mut client, "q-wait-nobody").await;
    let ids: Vec<&str> = task
        .messages
        .iter()
        .map(|message| message.protocol_instance_id.as_str())
        .collect();
    assert_eq!(ids, ["u8", "u9"]);
}

fn multi_request(
    start: ws::StartWorkflowExecutionRequest,
    update: ws::UpdateWorkflowExecutionRequest,
) -> ws::ExecuteMultiOperationRequest {
    use ws::execute_multi_operation_request::{Operation, operation};
    ws::ExecuteMultiOperationRequest {
        namespace: "default".into(),
        operations: vec![
            Operation {
                operation: Some(operation::Operation::StartWorkflow(start)),
            },
            Operation {
                operation: Some(operation::Operation::UpdateWorkflow(update)),
            },
        ],
        ..Default::default()
    }
}

/// The per-operation statuses of a failed update-with-start: (code, message, detail type).
fn operation_statuses(status: &tonic::Status) -> Vec<(i32, String, String)> {
    use sundial_proto::api::errordetails::v1::MultiOperationExecutionFailure;
    let decoded = sundial_proto::google_rpc::Status::decode(status.details()).unwrap();
    assert_eq!(decoded.details.len(), 1);
    assert!(
        decoded.details[0]
            .type_url
            .ends_with("errordetails.v1.MultiOperationExecutionFailure")
    );
    let failure =
        MultiOperationExecutionFailure::decode(decoded.details[0].value.as_slice()).unwrap();
    failure
        .statuses
        .into_iter()
        .map(|status| {
            let detail = status
                .details
                .first()
                .map(|any| any.type_url.rsplit('.').next().unwrap_or("").to_string())
                .unwrap_or_default();
            (status.code, status.message, detail)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_start_puts_the_update_in_the_first_task() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let request = multi_request(
        start_request("wf-uws", "q-uws"),
        update_request("wf-uws", "u-start", "arg", Stage::Completed),
    );
    let call = {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .execute_multi_operation(with_timeout(request, 30))
                .await
                .map(|response| response.into_inner())
        })
    };
    let task = poll_workflow_task(&mut client, "q-uws").await;
    assert_eq!(task.started_event_id, 3, "a normal first task");
    assert_eq!(task.messages.len(), 1);
    assert_eq!(event_id_of(&task.messages[0]), 2);
    let accept = acceptance(&task.messages[0]);
    let done = response(&task.messages[0], "started");
    respond_with_protocol(&mut client, &task.task_token, &[&accept, &done])
        .await
        .unwrap();
    let answer = call.await.unwrap().unwrap();
    use ws::execute_multi_operation_response::response::Response as R;
    let (start, update) = match (
        answer.responses[0].response.clone(),
        answer.responses[1].response.clone(),
    ) {
        (Some(R::StartWorkflow(start)), Some(R::UpdateWorkflow(update))) => (start, update),
        other => panic!("unexpected responses {other:?}"),
    };
    assert!(start.started);
    assert_eq!(start.status, 1, "running");
    assert_eq!(update.stage, Stage::Completed as i32);
    assert_eq!(success_text(&update.outcome), "\"started\"");
    assert_eq!(
        update
            .update_ref
            .unwrap()
            .workflow_execution
            .unwrap()
            .run_id,
        start.run_id
    );
    let events = history(&mut client, "wf-uws", &start.run_id).await;
    assert_eq!(
        &types(&events)[3..],
        &[
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionUpdateAccepted,
            E::WorkflowExecutionUpdateCompleted
        ]
    );

    // Again with the same update id: its outcome, no new run, whatever the conflict policy.
    let again = client
        .execute_multi_operation(with_timeout(
            multi_request(
                start_request("wf-uws", "q-uws"),
                update_request("wf-uws", "u-start", "arg", Stage::Completed),
            ),
            30,
        ))
        .await
        .unwrap()
        .into_inner();
    match (&again.responses[0].response, &again.responses[1].response) {
        (Some(R::StartWorkflow(s)), Some(R::UpdateWorkflow(u))) => {
            assert!(!s.started);
            assert_eq!(s.run_id, start.run_id);
            assert_eq!(success_text(&u.outcome), "\"started\"");
        }
        other => panic!("unexpected responses {other:?}"),
    }

    // A new update id under policy FAIL: the start fails, the update is aborted.
    let conflict = client
        .execute_multi_operation(with_timeout(
            multi_request(
                start_request("wf-uws", "q-uws"),
                update_request("wf-uws", "u-other", "arg", Stage::Completed),
            ),
            30,
        ))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert_eq!(
        conflict.message(),
        "Update-with-Start could not be executed."
    );
    let statuses = operation_statuses(&conflict);
    assert_eq!(statuses[0].0, Code::AlreadyExists as i32);
    assert_eq!(statuses[0].2, "WorkflowExecutionAlreadyStartedFailure");
    assert_eq!(
        statuses[1],
        (
            Code::Aborted as i32,
            "Operation was aborted.".to_string(),
            "MultiOperationExecutionAborted".to_string()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_start_checks_each_operation() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    // Not exactly [start, update]: a plain error.
    let mut swapped = multi_request(
        start_request("wf-uwc", "q-uwc"),
        update_request("wf-uwc", "u", "arg", Stage::Completed),
    );
    swapped.operations.reverse();
    let error = client.execute_multi_operation(swapped).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(
        error.message(),
        "Operations have to be exactly [Start, Update]."
    );
    assert!(error.details().is_empty());

    let check = |start: ws::StartWorkflowExecutionRequest,
                 update: ws::UpdateWorkflowExecutionRequest| {
        let mut client = client.clone();
        async move {
            let error = client
                .execute_multi_operation(multi_request(start, update))
                .await
                .unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument);
            assert_eq!(error.message(), "Update-with-Start could not be executed.");
            operation_statuses(&error)
        }
    };
    let update = || update_request("wf-uwc", "u", "arg", Stage::Completed);
    let mut cron = start_request("wf-uwc", "q-uwc");
    cron.cron_schedule = "* * * * *".into();
    let statuses = check(cron, update()).await;
    assert_eq!(
        (statuses[0].0, statuses[0].1.as_str()),
        (Code::InvalidArgument as i32, "CronSchedule is not allowed.")
    );
    assert_eq!(statuses[1].0, Code::Aborted as i32);

    let mut eager = start_request("wf-uwc", "q-uwc");
    eager.request_eager_execution = true;
    let statuses = check(eager, update()).await;
    assert_eq!(statuses[0].1, "RequestEagerExecution is not supported.");

    let mut with_run = update();
    with_run.workflow_execution.as_mut().unwrap().run_id = uuid::Uuid::new_v4().to_string();
    let statuses = check(start_request("wf-uwc", "q-uwc"), with_run).await;
    assert_eq!(statuses[0].0, Code::Aborted as i32);
    assert_eq!(
        (statuses[1].0, statuses[1].1.as_str()),
        (Code::InvalidArgument as i32, "RunId is not allowed.")
    );

    let statuses = check(
        start_request("wf-uwc", "q-uwc"),
        update_request("wf-other", "u", "arg", Stage::Completed),
    )
    .await;
    assert_eq!(statuses[0].0, Code::Aborted as i32);
    assert_eq!(
        statuses[1].1,
        "WorkflowId is not consistent with previous operation(s)."
    );

    let mut nameless = update();
    nameless
        .request
        .as_mut()
        .unwrap()
        .input
        .as_mut()
        .unwrap()
        .name = String::new();
    let statuses = check(start_request("wf-uwc", "q-uwc"), nameless).await;
    assert_eq!(statuses[1].1, "Update name is not set on request.");

    // Nothing was started by any of them.
    let describe = client
        .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-uwc".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(describe.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_speculative_task_cannot_complete_the_next_one() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    idle_run(&mut client, "wf-stale", "q-stale").await;
    let first_call = send_update(&client, "wf-stale", "u1", Stage::Completed);
    let first = poll_workflow_task(&mut client, "q-stale").await;
    let no = rejection(&first.messages[0], "no");
    respond(&mut client, &first.task_token, vec![], vec![no])
        .await
        .unwrap();
    assert!(first_call.await.unwrap().is_ok());
    // The next speculative task has the same ids; only its started time differs.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second_call = send_update(&client, "wf-stale", "u2", Stage::Completed);
    let second = poll_workflow_task(&mut client, "q-stale").await;
    assert_eq!(
        (second.started_event_id, second.attempt),
        (first.started_event_id, first.attempt)
    );
    let accept = acceptance(&second.messages[0]);
    let stale = respond_with_protocol(&mut client, &first.task_token, &[&accept])
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::NotFound);
    assert_eq!(stale.message(), "Workflow task not found.");
    let done = response(&second.messages[0], "two");
    respond_with_protocol(&mut client, &second.task_token, &[&accept, &done])
        .await
        .unwrap();
    let answer = second_call.await.unwrap().unwrap();
    assert_eq!(success_text(&answer.outcome), "\"two\"");
}
