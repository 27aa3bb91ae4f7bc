use sundial_proto::api::common::v1::{RetryPolicy, WorkflowExecution};
use sundial_proto::api::enums::v1::{EventType as E, RetryState};
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::prost_types::Duration as ProtoDuration;
use tonic::Code;

use crate::common::*;

fn failure(message: &str, failure_type: &str) -> Option<sundial_proto::api::failure::v1::Failure> {
    Some(sundial_proto::api::failure::v1::Failure {
        message: message.into(),
        failure_info: Some(
            sundial_proto::api::failure::v1::failure::FailureInfo::ApplicationFailureInfo(
                sundial_proto::api::failure::v1::ApplicationFailureInfo {
                    r#type: failure_type.into(),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    })
}

fn fast_retry(max_attempts: i32) -> Option<RetryPolicy> {
    Some(RetryPolicy {
        initial_interval: Some(ProtoDuration {
            seconds: 0,
            nanos: 100_000_000,
        }),
        backoff_coefficient: 1.0,
        maximum_attempts: max_attempts,
        non_retryable_error_types: vec!["Fatal".into()],
        ..Default::default()
    })
}

#[tokio::test]
async fn activity_completes_with_lazy_started_event() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-act", "q-act").await;
    let task = poll_workflow_task(&mut client, "q-act").await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-act", 10, None)],
    )
    .await
    .unwrap();
    let activity = poll_activity_task(&mut client, "q-act").await;
    assert_eq!(activity.activity_id, "a1");
    assert_eq!(activity.attempt, 1);
    assert_eq!(activity.input, payloads("activity-input"));
    // Started is not written while the attempt runs.
    let events = history(&mut client, "wf-act", &run_id).await;
    assert_eq!(types(&events).last(), Some(&E::ActivityTaskScheduled));
    match events[4].attributes.as_ref() {
        Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
            let policy = a
                .retry_policy
                .as_ref()
                .expect("activities always get a retry policy");
            assert_eq!(policy.backoff_coefficient, 2.0);
            assert_eq!(policy.maximum_interval.as_ref().unwrap().seconds, 100);
        }
        other => panic!("unexpected {other:?}"),
    }
    complete_activity(&mut client, &activity.task_token, "result")
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-act").await;
    let events = task.history.unwrap().events;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::ActivityTaskScheduled,
            E::ActivityTaskStarted,
            E::ActivityTaskCompleted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted
        ]
    );
    // Completing twice is refused.
    let again = client
        .respond_activity_task_completed(ws::RespondActivityTaskCompletedRequest {
            namespace: "default".into(),
            task_token: activity.task_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

#[tokio::test]
async fn activity_retries_then_stops_on_non_retryable() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-retry", "q-retry").await;
    let task = poll_workflow_task(&mut client, "q-retry").await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-retry", 10, fast_retry(5))],
    )
    .await
    .unwrap();
    let first = poll_activity_task(&mut client, "q-retry").await;
    client
        .respond_activity_task_failed(ws::RespondActivityTaskFailedRequest {
            namespace: "default".into(),
            task_token: first.task_token,
            failure: failure("transient", "Transient"),
            last_heartbeat_details: payloads("progress"),
            ..Default::default()
        })
        .await
        .unwrap();
    let second = poll_activity_task(&mut client, "q-retry").await;
    assert_eq!(second.attempt, 2);
    assert_eq!(second.heartbeat_details, payloads("progress"));
    client
        .respond_activity_task_failed(ws::RespondActivityTaskFailedRequest {
            namespace: "default".into(),
            task_token: second.task_token,
            failure: failure("fatal", "Fatal"),
            ..Default::default()
        })
        .await
        .unwrap();
    let events = history(&mut client, "wf-retry", &run_id).await;
    assert_eq!(
        &types(&events)[4..7],
        &[
            E::ActivityTaskScheduled,
            E::ActivityTaskStarted,
            E::ActivityTaskFailed
        ]
    );
    match (events[5].attributes.as_ref(), events[6].attributes.as_ref()) {
        (
            Some(Attributes::ActivityTaskStartedEventAttributes(started)),
            Some(Attributes::ActivityTaskFailedEventAttributes(failed)),
        ) => {
            assert_eq!(started.attempt, 2);
            assert_eq!(started.last_failure.as_ref().unwrap().message, "transient");
            assert_eq!(failed.retry_state, RetryState::NonRetryableFailure as i32);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn heartbeat_reports_cancellation() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-hb", "q-hb").await;
    let task = poll_workflow_task(&mut client, "q-hb").await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-hb", 30, None)],
    )
    .await
    .unwrap();
    let activity = poll_activity_task(&mut client, "q-hb").await;
    let beat = client
        .record_activity_task_heartbeat(ws::RecordActivityTaskHeartbeatRequest {
            namespace: "default".into(),
            task_token: activity.task_token.clone(),
            details: payloads("50%"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!beat.cancel_requested);
    client
        .request_cancel_workflow_execution(ws::RequestCancelWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-hb".into(),
                run_id: run_id.clone(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-hb").await;
    let cancel = command(
        sundial_proto::api::enums::v1::CommandType::RequestCancelActivityTask,
        sundial_proto::api::command::v1::command::Attributes::RequestCancelActivityTaskCommandAttributes(
            sundial_proto::api::command::v1::RequestCancelActivityTaskCommandAttributes { scheduled_event_id: 5 },
        ),
    );
    complete(&mut client, &task.task_token, vec![cancel])
        .await
        .unwrap();
    let beat = client
        .record_activity_task_heartbeat(ws::RecordActivityTaskHeartbeatRequest {
            namespace: "default".into(),
            task_token: activity.task_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(beat.cancel_requested);
    client
        .respond_activity_task_canceled(ws::RespondActivityTaskCanceledRequest {
            namespace: "default".into(),
            task_token: activity.task_token,
            ..Default::default()
        })
        .await
        .unwrap();
    let events = history(&mut client, "wf-hb", &run_id).await;
    let seen = types(&events);
    let tail = &seen[seen.len() - 4..];
    assert_eq!(
        tail,
        &[
            E::ActivityTaskCancelRequested,
            E::ActivityTaskStarted,
            E::ActivityTaskCanceled,
            E::WorkflowTaskScheduled
        ]
    );
}

#[tokio::test]
async fn start_to_close_timeout_retries_then_times_out() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-timeout", "q-timeout").await;
    let task = poll_workflow_task(&mut client, "q-timeout").await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-timeout", 1, fast_retry(2))],
    )
    .await
    .unwrap();
    let first = poll_activity_task(&mut client, "q-timeout").await;
    assert_eq!(first.attempt, 1);
    // Let both attempts time out.
    let second = poll_activity_task(&mut client, "q-timeout").await;
    assert_eq!(second.attempt, 2);
    let task = poll_workflow_task(&mut client, "q-timeout").await;
    let events = task.history.unwrap().events;
    let timed_out = events
        .iter()
        .find(|e| e.event_type() == E::ActivityTaskTimedOut)
        .expect("timed out event");
    match timed_out.attributes.as_ref() {
        Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
            assert_eq!(a.retry_state, RetryState::MaximumAttemptsReached as i32);
            assert!(a.failure.as_ref().unwrap().message.contains("StartToClose"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let _ = run_id;
}

fn eager(
    mut command: sundial_proto::api::command::v1::Command,
) -> sundial_proto::api::command::v1::Command {
    use sundial_proto::api::command::v1::command::Attributes as C;
    if let Some(C::ScheduleActivityTaskCommandAttributes(attributes)) = command.attributes.as_mut()
    {
        attributes.request_eager_execution = true;
    }
    command
}

#[tokio::test]
async fn eager_activity_comes_back_in_the_completion() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-eager", "q-eager").await;
    let task = poll_workflow_task(&mut client, "q-eager").await;
    let response = complete(
        &mut client,
        &task.task_token,
        vec![
            eager(schedule_activity("fast", "q-eager", 10, None)),
            schedule_activity("polled", "q-eager", 10, None),
        ],
    )
    .await
    .unwrap();
    // Only the activity asked for eagerly is started and handed back.
    assert_eq!(response.activity_tasks.len(), 1);
    let eager_task = &response.activity_tasks[0];
    assert_eq!(eager_task.activity_id, "fast");
    assert_eq!(eager_task.attempt, 1);
    assert_eq!(eager_task.input, payloads("activity-input"));
    assert_eq!(eager_task.workflow_namespace, "default");
    assert_eq!(
        eager_task.workflow_execution.as_ref().unwrap().run_id,
        run_id
    );
    assert!(eager_task.started_time.is_some());
    // The other one goes through matching; the eager one is not dispatched a second time.
    let polled = poll_activity_task(&mut client, "q-eager").await;
    assert_eq!(polled.activity_id, "polled");
    let nothing = client
        .poll_activity_task_queue(with_timeout(
            ws::PollActivityTaskQueueRequest {
                namespace: "default".into(),
                task_queue: task_queue("q-eager"),
                identity: "w".into(),
                ..Default::default()
            },
            4,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(nothing.task_token.is_empty(), "{nothing:?}");
    complete_activity(&mut client, &eager_task.task_token, "eager-result")
        .await
        .unwrap();
    let events = history(&mut client, "wf-eager", &run_id).await;
    let started_identity = events.iter().find_map(|event| match &event.attributes {
        Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.identity.clone()),
        _ => None,
    });
    // Started by the worker that completed the workflow task, written with the result.
    assert_eq!(started_identity.as_deref(), Some("test-worker"));
    assert!(types(&events).contains(&E::ActivityTaskCompleted));
}

/// Runs that sit idle are kept encoded in the cache (the sweep runs every 25 ms here, so a run
/// is compacted after 25-50 ms untouched); every step after a pause must find the run as it was:
/// the activity task, its completion, the next workflow task with the whole history, a signal.
#[tokio::test]
async fn runs_carry_on_after_their_cached_state_is_compacted() {
    let server = TestServer::start_with(|options| {
        options.compact_idle_after = std::time::Duration::from_millis(25);
    })
    .await;
    let mut client = server.client.clone();
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(150));
    let run_id = start(&mut client, "wf-compact", "q-compact").await;
    pause().await;
    let task = poll_workflow_task(&mut client, "q-compact").await;
    pause().await;
    complete(
        &mut client,
        &task.task_token,
        vec![schedule_activity("a1", "q-compact", 10, None)],
    )
    .await
    .unwrap();
    pause().await;
    let activity = poll_activity_task(&mut client, "q-compact").await;
    pause().await;
    complete_activity(&mut client, &activity.task_token, "result")
        .await
        .unwrap();
    pause().await;
    let task = poll_workflow_task(&mut client, "q-compact").await;
    assert_eq!(
        types(&task.history.unwrap().events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::ActivityTaskScheduled,
            E::ActivityTaskStarted,
            E::ActivityTaskCompleted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
        ]
    );
    pause().await;
    client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-compact".into(),
                run_id: run_id.clone(),
            }),
            signal_name: "s".into(),
            identity: "w".into(),
            request_id: "signal-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    pause().await;
    complete(&mut client, &task.task_token, vec![])
        .await
        .unwrap();
    pause().await;
    let task = poll_workflow_task(&mut client, "q-compact").await;
    pause().await;
    complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("done")],
    )
    .await
    .unwrap();
    pause().await;
    let events = history(&mut client, "wf-compact", &run_id).await;
    assert_eq!(
        types(&events)[9..],
        [
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionCompleted,
        ]
    );
}
