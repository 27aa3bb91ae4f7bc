use std::time::Duration;

use sundial_proto::api::command::v1::{
    ContinueAsNewWorkflowExecutionCommandAttributes, StartChildWorkflowExecutionCommandAttributes,
    command,
};
use sundial_proto::api::common::v1::{WorkflowExecution, WorkflowType};
use sundial_proto::api::enums::v1::{
    CommandType, EventType as E, QueryResultType, WorkflowTaskFailedCause,
};
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::query::v1::WorkflowQuery;
use sundial_proto::api::workflowservice::v1 as ws;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn timer_fires_and_schedules_a_workflow_task() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-timer", "q-timer").await;
    let task = poll_workflow_task(&mut client, "q-timer").await;
    complete(&mut client, &task.task_token, vec![start_timer("t1", 200)])
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-timer").await;
    assert_eq!(task.previous_started_event_id, 3);
    let events = task.history.unwrap().events;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::TimerStarted,
            E::TimerFired,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted
        ]
    );
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    assert_eq!(history(&mut client, "wf-timer", &run_id).await.len(), 10);
}

#[tokio::test]
async fn signal_during_started_task_is_buffered_and_close_is_unhandled() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-buffer", "q-buffer").await;
    let task = poll_workflow_task(&mut client, "q-buffer").await;
    client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-buffer".into(),
                run_id: run_id.clone(),
            }),
            signal_name: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        history(&mut client, "wf-buffer", &run_id).await.len(),
        3,
        "a buffered signal is not visible"
    );
    let error = complete(&mut client, &task.task_token, vec![complete_workflow("x")])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.message(), "UnhandledCommand");
    let events = history(&mut client, "wf-buffer", &run_id).await;
    assert_eq!(
        &types(&events)[3..],
        &[
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
    match events[3].attributes.as_ref() {
        Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => {
            assert_eq!(a.cause, WorkflowTaskFailedCause::UnhandledCommand as i32)
        }
        other => panic!("unexpected {other:?}"),
    }
    let task = poll_workflow_task(&mut client, "q-buffer").await;
    assert_eq!(task.attempt, 1);
    complete(&mut client, &task.task_token, vec![complete_workflow("x")])
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_tasks_retry_as_transient_attempts() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-transient", "q-transient").await;
    for expected_attempt in 1..=3 {
        let task = poll_workflow_task(&mut client, "q-transient").await;
        assert_eq!(task.attempt, expected_attempt);
        if expected_attempt > 1 {
            // The transient pair is shown to the worker with the same ids every attempt.
            let events = task.history.unwrap().events;
            assert_eq!(events.len(), 6);
            assert_eq!(task.started_event_id, 6);
        }
        client
            .respond_workflow_task_failed(ws::RespondWorkflowTaskFailedRequest {
                namespace: "default".into(),
                task_token: task.task_token.clone(),
                cause: WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure as i32,
                identity: "w".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let durable = history(&mut client, "wf-transient", &run_id).await;
        assert_eq!(
            types(&durable)[..4],
            [
                E::WorkflowExecutionStarted,
                E::WorkflowTaskScheduled,
                E::WorkflowTaskStarted,
                E::WorkflowTaskFailed
            ]
        );
    }
    let task = poll_workflow_task(&mut client, "q-transient").await;
    assert_eq!(task.attempt, 4);
    complete(
        &mut client,
        &task.task_token,
        vec![start_timer("t", 60_000)],
    )
    .await
    .unwrap();
    let events = history(&mut client, "wf-transient", &run_id).await;
    assert_eq!(
        &types(&events)[4..],
        &[
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::TimerStarted
        ]
    );
    match events[4].attributes.as_ref() {
        Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => assert_eq!(a.attempt, 4),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn bad_command_fails_the_task_and_bad_sequence_records_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-bad", "q-bad").await;
    let task = poll_workflow_task(&mut client, "q-bad").await;
    let error = complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("x"), start_timer("t", 1000)],
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().starts_with("invalid command sequence"),
        "{}",
        error.message()
    );
    assert_eq!(history(&mut client, "wf-bad", &run_id).await.len(), 3);
    let error = complete(&mut client, &task.task_token, vec![start_timer("", 1000)])
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "BadStartTimerAttributes: TimerId is not set on StartTimerCommand."
    );
    let events = history(&mut client, "wf-bad", &run_id).await;
    assert_eq!(events[3].event_type(), E::WorkflowTaskFailed);
    // The retry is attempt 2, not yet in durable history.
    let retry = poll_workflow_task(&mut client, "q-bad").await;
    assert_eq!(retry.attempt, 2);
    // A stale token is refused.
    let stale = complete(&mut client, &task.task_token, vec![])
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::NotFound);
}

#[tokio::test]
async fn child_workflow_and_continue_as_new() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let parent_run = start(&mut client, "wf-parent", "q-family").await;
    let task = poll_workflow_task(&mut client, "q-family").await;
    let child = command(
        CommandType::StartChildWorkflowExecution,
        command::Attributes::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                namespace: "default".into(),
                workflow_id: "wf-child".into(),
                workflow_type: Some(WorkflowType {
                    name: "Child".into(),
                }),
                task_queue: task_queue("q-family"),
                ..Default::default()
            },
        ),
    );
    complete(&mut client, &task.task_token, vec![child])
        .await
        .unwrap();
    // Two tasks follow: the child's first and the parent's (child started). Serve both.
    let mut child_done = false;
    let mut parent_saw_completion = false;
    for _ in 0..6 {
        let task = poll_workflow_task(&mut client, "q-family").await;
        let execution = task.workflow_execution.clone().unwrap();
        let events = task.history.unwrap().events;
        if execution.workflow_id == "wf-child" {
            let started = events[0].attributes.as_ref().unwrap();
            match started {
                Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                    assert_eq!(
                        a.parent_workflow_execution.as_ref().unwrap().workflow_id,
                        "wf-parent"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
            // The first run continues as new; the second completes.
            let is_first_run = match started {
                Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                    a.continued_execution_run_id.is_empty()
                }
                _ => false,
            };
            if is_first_run {
                let can = command(
                    CommandType::ContinueAsNewWorkflowExecution,
                    command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
                        ContinueAsNewWorkflowExecutionCommandAttributes {
                            input: payloads("again"),
                            ..Default::default()
                        },
                    ),
                );
                complete(&mut client, &task.task_token, vec![can])
                    .await
                    .unwrap();
                continue;
            }
            complete(
                &mut client,
                &task.task_token,
                vec![complete_workflow("child-result")],
            )
            .await
            .unwrap();
            child_done = true;
        } else {
            let seen = types(&events);
            if seen.contains(&E::ChildWorkflowExecutionCompleted) {
                parent_saw_completion = true;
                complete(
                    &mut client,
                    &task.task_token,
                    vec![complete_workflow("parent-result")],
                )
                .await
                .unwrap();
                break;
            }
            complete(&mut client, &task.task_token, vec![])
                .await
                .unwrap();
        }
    }
    assert!(child_done && parent_saw_completion);
    let events = history(&mut client, "wf-parent", &parent_run).await;
    let seen = types(&events);
    assert!(seen.contains(&E::StartChildWorkflowExecutionInitiated));
    assert!(seen.contains(&E::ChildWorkflowExecutionStarted));
    assert_eq!(seen.last(), Some(&E::WorkflowExecutionCompleted));
}

#[tokio::test]
async fn legacy_query_reaches_a_poller() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-query", "q-query").await;
    let task = poll_workflow_task(&mut client, "q-query").await;
    complete(&mut client, &task.task_token, vec![])
        .await
        .unwrap();
    let mut querier = client.clone();
    let query = tokio::spawn(async move {
        let mut request = tonic::Request::new(ws::QueryWorkflowRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-query".into(),
                run_id,
            }),
            query: Some(WorkflowQuery {
                query_type: "state".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(10));
        querier.query_workflow(request).await
    });
    let task = poll_workflow_task(&mut client, "q-query").await;
    assert_eq!(task.query.as_ref().unwrap().query_type, "state");
    client
        .respond_query_task_completed(ws::RespondQueryTaskCompletedRequest {
            namespace: "default".into(),
            task_token: task.task_token,
            completed_type: QueryResultType::Answered as i32,
            query_result: payloads("answer"),
            ..Default::default()
        })
        .await
        .unwrap();
    let answer = query.await.unwrap().unwrap().into_inner();
    assert_eq!(answer.query_result, payloads("answer"));
}

#[tokio::test]
async fn history_long_poll_wakes_on_new_events() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-longpoll", "q-longpoll").await;
    let mut waiter = client.clone();
    let wait_run = run_id.clone();
    let waiting = tokio::spawn(async move {
        let mut request = tonic::Request::new(ws::GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-longpoll".into(),
                run_id: wait_run,
            }),
            wait_new_event: true,
            history_event_filter_type:
                sundial_proto::api::enums::v1::HistoryEventFilterType::CloseEvent as i32,
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(30));
        waiter.get_workflow_execution_history(request).await
    });
    let task = poll_workflow_task(&mut client, "q-longpoll").await;
    complete(&mut client, &task.task_token, vec![complete_workflow("r")])
        .await
        .unwrap();
    let mut response = waiting.await.unwrap().unwrap().into_inner();
    // A wait may end without the close event; keep waiting like an SDK does.
    while response
        .history
        .as_ref()
        .is_none_or(|h| h.events.is_empty())
    {
        let mut request = tonic::Request::new(ws::GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-longpoll".into(),
                run_id: run_id.clone(),
            }),
            wait_new_event: true,
            history_event_filter_type:
                sundial_proto::api::enums::v1::HistoryEventFilterType::CloseEvent as i32,
            next_page_token: response.next_page_token.clone(),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(30));
        response = client
            .get_workflow_execution_history(request)
            .await
            .unwrap()
            .into_inner();
    }
    let events = response.history.unwrap().events;
    assert_eq!(types(&events), vec![E::WorkflowExecutionCompleted]);
    assert!(response.next_page_token.is_empty());
}

#[tokio::test]
async fn history_pages_by_page_size() {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-pages", "q-pages").await;
    for index in 0..5 {
        client
            .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: "wf-pages".into(),
                    run_id: run_id.clone(),
                }),
                signal_name: format!("s{index}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut token = Vec::new();
    let mut pages = 0;
    let mut all = Vec::new();
    loop {
        let response = client
            .get_workflow_execution_history(ws::GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: "wf-pages".into(),
                    run_id: run_id.clone(),
                }),
                maximum_page_size: 2,
                next_page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        all.extend(response.history.unwrap().events);
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    assert_eq!(all.len(), 7);
    assert!(pages >= 3, "pages: {pages}");
    let ids: Vec<i64> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>());
}

#[tokio::test]
async fn sticky_queue_gets_partial_history_and_falls_back_without_a_worker() {
    use sundial_proto::api::enums::v1::TaskQueueKind;
    use sundial_proto::api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let run_id = start(&mut client, "wf-sticky", "q-sticky").await;
    let sticky_queue = TaskQueue {
        name: "worker-1-sticky".into(),
        kind: TaskQueueKind::Sticky as i32,
        normal_name: "q-sticky".into(),
    };
    // A sticky poller is waiting before the first task completes.
    let mut sticky_client = client.clone();
    let sticky_poll_queue = sticky_queue.clone();
    let sticky_poll = tokio::spawn(async move {
        let mut request = tonic::Request::new(ws::PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(sticky_poll_queue),
            identity: "worker-1".into(),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(10));
        sticky_client.poll_workflow_task_queue(request).await
    });
    let task = poll_workflow_task(&mut client, "q-sticky").await;
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: task.task_token,
            commands: vec![start_timer("t", 10)],
            sticky_attributes: Some(StickyExecutionAttributes {
                worker_task_queue: Some(sticky_queue.clone()),
                schedule_to_start_timeout: Some(sundial_proto::prost_types::Duration {
                    seconds: 5,
                    nanos: 0,
                }),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let sticky_task = sticky_poll.await.unwrap().unwrap().into_inner();
    assert_eq!(sticky_task.previous_started_event_id, 3);
    let events = sticky_task.history.unwrap().events;
    assert_eq!(
        events.first().map(|e| e.event_id),
        Some(4),
        "a sticky worker gets history after its last task"
    );
    assert_eq!(
        sticky_task.workflow_execution_task_queue.unwrap().name,
        "q-sticky"
    );
    // Completing sticky again, with no sticky poller around: the next task falls back to the
    // normal queue after the sticky worker has been gone for a while, or on schedule-to-start.
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: sticky_task.task_token,
            commands: vec![],
            sticky_attributes: None,
            force_create_new_workflow_task: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let task = poll_workflow_task(&mut client, "q-sticky").await;
    assert_eq!(
        task.history.unwrap().events.first().map(|e| e.event_id),
        Some(1),
        "the normal queue gets full history"
    );
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    let events = history(&mut client, "wf-sticky", &run_id).await;
    match events[6].attributes.as_ref() {
        Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => {
            assert_eq!(
                a.task_queue.as_ref().unwrap().kind,
                TaskQueueKind::Sticky as i32
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}
