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
