//! A restart with many open runs: 100,000 workflows each waiting on a timer (a start delay, the
//! first workflow task's backoff). The restarted server answers within 2 s without loading
//! them, holds only the timers due soon in memory, and every timer still fires: in the end each
//! run's first workflow task waits in its queue. `SUNDIAL_SCALE_RUNS` sets the count.
//!
//! And a restart after timers came due while the server was down (20,000 of them,
//! `SUNDIAL_OVERDUE_RUNS`): the restarted server starts a new workflow within 2 s, while it is
//! still firing the backlog, and every overdue timer fires once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sundial_proto::api::enums::v1::TaskQueueType;
use sundial_proto::api::workflowservice::v1 as ws;

/// Concurrent start streams: enough for group commit to batch the writes.
const STREAMS: usize = 64;

/// A count from the environment variable `name`, `default` when it is unset or unreadable.
fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// Starts `runs` workflows `{prefix}-{index}` on `queue`, each delayed so that its first
/// workflow task comes due at `due(index)` (a start's delay counts from its own moment).
async fn start_delayed(
    client: &Client,
    prefix: &str,
    queue: &str,
    runs: usize,
    due: impl Fn(usize) -> Instant + Copy,
) {
    let streams = (0..STREAMS).map(|stream| {
        let mut client = client.clone();
        async move {
            for index in (stream..runs).step_by(STREAMS) {
                let mut request = start_request(&format!("{prefix}-{index}"), queue);
                let delay = due(index).saturating_duration_since(Instant::now());
                request.workflow_start_delay = Some(sundial_proto::prost_types::Duration {
                    seconds: delay.as_secs() as i64,
                    nanos: delay.subsec_nanos() as i32,
                });
                client.start_workflow_execution(request).await.unwrap();
            }
        }
    });
    futures::future::join_all(streams).await;
}

/// The tests here measure a restarted server's answers, so they run one at a time rather
/// than load each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until every one of `runs` timers has fired, each once: every run's first workflow task
/// waits in `queue`. Returns when that was.
async fn wait_until_every_timer_fired(
    client: &mut Client,
    queue: &str,
    runs: usize,
    deadline: Instant,
) -> Instant {
    loop {
        let waiting = backlog(client, queue).await;
        assert!(waiting <= runs as i64, "{waiting} tasks for {runs} runs");
        if waiting == runs as i64 {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} of {runs} timers fired by the deadline"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn backlog(client: &mut Client, queue: &str) -> i64 {
    client
        .describe_task_queue(ws::DescribeTaskQueueRequest {
            namespace: "default".into(),
            task_queue: task_queue(queue),
            task_queue_type: TaskQueueType::Workflow as i32,
            report_stats: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .map_or(0, |stats| stats.approximate_backlog_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_100k_open_runs_answers_at_once_and_every_timer_fires() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let runs = count_from_env("SUNDIAL_SCALE_RUNS", 100_000);
    let mut server = TestServer::start().await;
    let client = server.client.clone();
    // Every timer comes due in one 30 s window (3,300 a second for 100,000 runs) that opens
    // well after the starts and the restart are done: a start's delay is counted from its own
    // moment, so each start aims at the same window.
    let window_opens = Instant::now() + Duration::from_secs(20 + runs as u64 / 2_500);
    let begun = Instant::now();
    start_delayed(&client, "wf-scale", "q-scale", runs, |index| {
        window_opens + Duration::from_micros((index % 100_000) as u64 * 300)
    })
    .await;
    eprintln!("{runs} runs started in {:?}", begun.elapsed());
    assert!(
        Instant::now() + Duration::from_secs(5) < window_opens,
        "the starts took too long for the window; raise its offset"
    );
    let history = server.server.as_ref().unwrap().history();
    assert_eq!(
        history.timers_in_memory(),
        0,
        "far timers are held in memory"
    );

    server
        .server
        .take()
        .unwrap()
        .stop()
        .await
        .expect("stop server");
    let begun = Instant::now();
    server.restart().await;
    let mut client = server.client.clone();
    client
        .get_system_info(ws::GetSystemInfoRequest {})
        .await
        .unwrap();
    client
        .describe_namespace(ws::DescribeNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let answered = begun.elapsed();
    eprintln!("the restarted server answered after {answered:?}");
    assert!(
        answered < Duration::from_secs(2),
        "the restarted server answered after {answered:?}"
    );
    let history = server.server.as_ref().unwrap().history();
    assert!(
        history.timers_in_memory() < runs / 10,
        "a restart armed {} of {runs} far timers",
        history.timers_in_memory()
    );

    // Every timer fires, each once: within the window plus a minute of slack for a slow machine.
    let deadline = window_opens + Duration::from_secs(30 + 60);
    let done = wait_until_every_timer_fired(&mut client, "q-scale", runs, deadline).await;
    eprintln!(
        "every timer fired {:?} after the window opened",
        done.saturating_duration_since(window_opens)
    );
    assert_eq!(history.timers_in_memory(), 0);
    // A few of them are real workflow tasks with their first events.
    for _ in 0..3 {
        let task = poll_workflow_task(&mut client, "q-scale").await;
        assert!(
            task.workflow_execution
                .as_ref()
                .unwrap()
                .workflow_id
                .starts_with("wf-scale-")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_an_overdue_backlog_serves_starts_while_it_fires_the_backlog() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let runs = count_from_env("SUNDIAL_OVERDUE_RUNS", 20_000);
    let mut server = TestServer::start().await;
    let client = server.client.clone();
    // Every delay ends at one moment, after the starts are done and while the server is down.
    let due = Instant::now() + Duration::from_secs(8 + runs as u64 / 2_000);
    let begun = Instant::now();
    start_delayed(&client, "wf-overdue", "q-overdue", runs, |_| due).await;
    eprintln!("{runs} delayed runs started in {:?}", begun.elapsed());
    server
        .server
        .take()
        .unwrap()
        .stop()
        .await
        .expect("stop server");
    assert!(
        Instant::now() + Duration::from_secs(1) < due,
        "the starts took too long for the delays; raise their offset"
    );
    // Down while every delay runs out.
    tokio::time::sleep(due.saturating_duration_since(Instant::now()) + Duration::from_secs(1))
        .await;

    let begun = Instant::now();
    server.restart().await;
    let mut client = server.client.clone();
    client
        .start_workflow_execution(start_request("wf-after-restart", "q-fresh"))
        .await
        .unwrap();
    let started = begun.elapsed();
    let fired = backlog(&mut client, "q-overdue").await;
    eprintln!(
        "a start after the restart took {started:?}; {fired} of {runs} overdue timers had fired"
    );
    assert!(
        started < Duration::from_secs(2),
        "with {runs} timers overdue, a start after the restart took {started:?}"
    );
    let task = poll_workflow_task(&mut client, "q-fresh").await;
    assert_eq!(
        task.workflow_execution.unwrap().workflow_id,
        "wf-after-restart"
    );

    // Every overdue timer fires, each once.
    let deadline = Instant::now() + Duration::from_secs(60 + runs as u64 / 500);
    let done = wait_until_every_timer_fired(&mut client, "q-overdue", runs, deadline).await;
    eprintln!(
        "every overdue timer fired {:?} after the restart",
        done - begun
    );
}
