use sundial_proto::api::enums::v1::EventType as E;

use crate::common::*;

/// What was acknowledged survives a restart, and timers and dispatches are re-armed.
#[tokio::test]
async fn workflows_carry_on_after_restart() {
    let mut server = TestServer::start().await;
    let mut client = server.client.clone();
    let timer_run = start(&mut client, "wf-restart-timer", "q-restart").await;
    let task = poll_workflow_task(&mut client, "q-restart").await;
    complete(&mut client, &task.task_token, vec![start_timer("t", 1500)])
        .await
        .unwrap();
    let pending_run = start(&mut client, "wf-restart-pending", "q-restart").await;

    server.restart().await;
    let mut client = server.client.clone();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2 {
        let task = poll_workflow_task(&mut client, "q-restart").await;
        let workflow_id = task
            .workflow_execution
            .as_ref()
            .unwrap()
            .workflow_id
            .clone();
        seen.insert(workflow_id);
        complete(
            &mut client,
            &task.task_token,
            vec![complete_workflow("done")],
        )
        .await
        .unwrap();
    }
    assert!(
        seen.contains("wf-restart-timer") && seen.contains("wf-restart-pending"),
        "{seen:?}"
    );
    let timer_events = history(&mut client, "wf-restart-timer", &timer_run).await;
    assert!(types(&timer_events).contains(&E::TimerFired));
    assert_eq!(
        types(&timer_events).last(),
        Some(&E::WorkflowExecutionCompleted)
    );
    let pending_events = history(&mut client, "wf-restart-pending", &pending_run).await;
    assert_eq!(
        types(&pending_events).last(),
        Some(&E::WorkflowExecutionCompleted)
    );
}

/// Timers beyond the armed horizon wait in the database's due-work index, not in memory; a
/// restart loads none of those runs, and every timer still fires when its time comes.
#[tokio::test]
async fn far_timers_wait_in_the_index_and_fire_after_a_restart() {
    const RUNS: usize = 200;
    let horizon = |options: &mut sundial_server::DevServerOptions| {
        options.timer_horizon = std::time::Duration::from_millis(400);
    };
    let mut server = TestServer::start_with(horizon).await;
    let client = server.client.clone();
    // Started concurrently, so that the starts (group-committed) end well before the first
    // delay comes within the horizon on every backend.
    let starts = (0..RUNS).map(|index| {
        let mut client = client.clone();
        let mut request = start_request(&format!("wf-far-{index}"), "q-far");
        // A start delay is a timer of its own (the first workflow task's backoff).
        request.workflow_start_delay = Some(sundial_proto::prost_types::Duration {
            seconds: 3,
            nanos: (index as i32 % 10) * 50_000_000,
        });
        async move { client.start_workflow_execution(request).await.unwrap() }
    });
    futures::future::join_all(starts).await;
    let in_memory = server.server.as_ref().unwrap().history().timers_in_memory();
    assert_eq!(in_memory, 0, "timers beyond the horizon are held in memory");

    server.restart_with(horizon).await;
    let mut client = server.client.clone();
    let history = server.server.as_ref().unwrap().history();
    assert!(
        history.timers_in_memory() < RUNS,
        "a restart armed every far timer at once"
    );
    let mut seen = std::collections::HashSet::new();
    while seen.len() < RUNS {
        let task = poll_workflow_task(&mut client, "q-far").await;
        let workflow_id = task
            .workflow_execution
            .as_ref()
            .unwrap()
            .workflow_id
            .clone();
        assert!(
            seen.insert(workflow_id.clone()),
            "{workflow_id} dispatched twice"
        );
        complete(
            &mut client,
            &task.task_token,
            vec![complete_workflow("done")],
        )
        .await
        .unwrap();
    }
    assert_eq!(history.timers_in_memory(), 0);
}
