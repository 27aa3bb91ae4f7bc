//! Persisted blobs must stay readable: each format version has a fixture written by an earlier
//! build, and this test decodes it. Regenerate only for a new version
//! (`SUNDIAL_WRITE_FIXTURES=1 cargo test -p sundial-history-core --test blob_fixtures`).

use prost::Message;
use sundial_history_core::state::{
    ActivityInfo, ExecutionInfo, MutableState, TimerInfo, WorkflowTaskInfo,
};
use sundial_history_core::tasks::{Task, TaskType};

fn sample_state() -> MutableState {
    let mut state = MutableState {
        info: Some(ExecutionInfo {
            namespace_id: "ns-id".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            workflow_type: "Type".into(),
            task_queue: "queue".into(),
            status: 1,
            next_event_id: 9,
            sticky_task_queue: "sticky".into(),
            ..Default::default()
        }),
        workflow_task: Some(WorkflowTaskInfo {
            scheduled_event_id: 8,
            attempt: 2,
            transient: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    state.activities.insert(
        5,
        ActivityInfo {
            scheduled_event_id: 5,
            activity_id: "a".into(),
            attempt: 3,
            ..Default::default()
        },
    );
    state.timers.insert(
        "t".into(),
        TimerInfo {
            timer_id: "t".into(),
            started_event_id: 6,
            expiry_ms: 42,
        },
    );
    state
}

fn sample_task() -> Task {
    let mut task = Task::new(TaskType::StartChild, 7, 11);
    task.attempt = 1;
    task
}

fn check(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("SUNDIAL_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|error| panic!("read fixture {path}: {error}"))
}

#[test]
fn mutable_state_v1_fixture_decodes() {
    let stored = check("mutable_state_v1.bin", sample_state().encode_to_vec());
    let decoded = MutableState::decode(stored.as_slice()).unwrap();
    assert_eq!(decoded, sample_state());
}

#[test]
fn transfer_task_v1_fixture_decodes() {
    let stored = check("transfer_task_v1.bin", sample_task().encode_to_vec());
    let decoded = Task::decode(stored.as_slice()).unwrap();
    assert_eq!(decoded, sample_task());
    assert_eq!(decoded.kind(), Some(TaskType::StartChild));
}
