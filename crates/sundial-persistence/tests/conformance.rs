//! The store contract, run against SQLite on a temporary file. Every backend must pass it.

use std::sync::Arc;

use sundial_common::Error;
use sundial_history_core::state::{ExecutionInfo, MutableState};
use sundial_persistence::*;
use sundial_proto::api::history::v1::HistoryEvent;

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    (dir, Arc::new(store))
}

/// Opens (or reopens) the test database in `dir`.
fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteOptions {
        path: dir.path().join("test.db"),
        durable: true,
    })
    .unwrap()
}

fn state(run_id: &str, next_event_id: i64, status: i32) -> MutableState {
    MutableState {
        info: Some(ExecutionInfo {
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: run_id.into(),
            workflow_type: "T".into(),
            task_queue: "q".into(),
            status,
            next_event_id,
            start_time_ms: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn events(first: i64, last: i64) -> Vec<HistoryEvent> {
    (first..=last)
        .map(|event_id| HistoryEvent {
            event_id,
            event_type: 1,
            ..Default::default()
        })
        .collect()
}

fn create(run_id: &str, range_id: i64, expected_current: Option<&str>) -> WriteBatch {
    WriteBatch {
        shard_id: 1,
        range_id,
        executions: vec![ExecutionWrite {
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: run_id.into(),
            state: state(run_id, 3, 1),
            expected_db_version: None,
            events: events(1, 2),
            current: CurrentUpdate::Set {
                expected_run_id: expected_current.map(str::to_string),
                run_id: run_id.into(),
                status: 1,
                start_request_id: format!("req-{run_id}"),
            },
            new_transfer_tasks: vec![],
        }],
        deleted_transfer_tasks: vec![],
    }
}

#[tokio::test]
async fn create_load_append_and_read_history() {
    let (_dir, store) = store();
    let range_id = store.acquire_shard(1).await.unwrap();
    store.write(create("run-1", range_id, None)).await.unwrap();
    let loaded = store
        .load_execution("ns", "wf", "run-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.db_version, 1);
    assert_eq!(loaded.state.info().next_event_id, 3);
    let current = store
        .get_current_execution("ns", "wf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.run_id, "run-1");
    assert_eq!(current.start_request_id, "req-run-1");

    let update = WriteBatch {
        shard_id: 1,
        range_id,
        executions: vec![ExecutionWrite {
            namespace_id: "ns".into(),
            workflow_id: "wf".into(),
            run_id: "run-1".into(),
            state: state("run-1", 6, 2),
            expected_db_version: Some(1),
            events: events(3, 5),
            current: CurrentUpdate::Status {
                run_id: "run-1".into(),
                status: 2,
            },
            new_transfer_tasks: vec![(
                7,
                sundial_history_core::tasks::Task::new(
                    sundial_history_core::tasks::TaskType::NotifyParent,
                    0,
                    0,
                ),
            )],
        }],
        deleted_transfer_tasks: vec![],
    };
    store.write(update.clone()).await.unwrap();
    // The same version again is a conflict, and nothing of it is applied.
    let error = store.write(update).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");

    let history = store.read_history("ns", "run-1", 1, 6, 100).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    // Reads start inside a batch and stop after the batch that fills the page.
    let page = store.read_history("ns", "run-1", 2, 6, 1).await.unwrap();
    assert_eq!(page.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![2]);
    let page = store.read_history("ns", "run-1", 3, 6, 1).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );

    assert_eq!(
        store
            .get_current_execution("ns", "wf")
            .await
            .unwrap()
            .unwrap()
            .status,
        2
    );
    assert!(store.list_open_executions(1).await.unwrap().is_empty());
    let tasks = store.list_transfer_tasks(1).await.unwrap();
    assert_eq!(tasks.len(), 1);
    store
        .delete_transfer_task(1, tasks[0].task_id)
        .await
        .unwrap();
    assert!(store.list_transfer_tasks(1).await.unwrap().is_empty());
    assert_eq!(store.count_executions("ns").await.unwrap(), 1);
}

#[tokio::test]
async fn a_stale_shard_owner_cannot_write() {
    let (_dir, store) = store();
    let old_range = store.acquire_shard(1).await.unwrap();
    let new_range = store.acquire_shard(1).await.unwrap();
    assert!(new_range > old_range);
    let error = store
        .write(create("run-1", old_range, None))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ShardOwnershipLost));
    assert!(
        store
            .load_execution("ns", "wf", "run-1")
            .await
            .unwrap()
            .is_none()
    );
    store.write(create("run-1", new_range, None)).await.unwrap();
}

#[tokio::test]
async fn current_run_pointer_is_compared_and_swapped() {
    let (_dir, store) = store();
    let range_id = store.acquire_shard(1).await.unwrap();
    store.write(create("run-1", range_id, None)).await.unwrap();
    // A second "first" run loses.
    let error = store
        .write(create("run-2", range_id, None))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)));
    assert!(
        store
            .load_execution("ns", "wf", "run-2")
            .await
            .unwrap()
            .is_none(),
        "a failed batch leaves nothing behind"
    );
    store
        .write(create("run-2", range_id, Some("run-1")))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_current_execution("ns", "wf")
            .await
            .unwrap()
            .unwrap()
            .run_id,
        "run-2"
    );
}

#[tokio::test]
async fn concurrent_writes_are_group_committed_and_all_durable() {
    let (dir, store) = store();
    let range_id = store.acquire_shard(1).await.unwrap();
    let mut handles = Vec::new();
    for index in 0..200 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut batch = create(&format!("run-{index}"), range_id, None);
            batch.executions[0].workflow_id = format!("wf-{index}");
            store.write(batch).await
        }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    store.close();
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.count_executions("ns").await.unwrap(), 200);
    assert_eq!(reopened.list_open_executions(1).await.unwrap().len(), 200);
}

#[tokio::test]
async fn namespaces_are_unique() {
    let (_dir, store) = store();
    let record = NamespaceRecord {
        id: "id-1".into(),
        name: "default".into(),
        data: vec![1],
    };
    store.create_namespace(record.clone()).await.unwrap();
    let error = store
        .create_namespace(NamespaceRecord {
            id: "id-2".into(),
            ..record.clone()
        })
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NamespaceAlreadyExists(_)));
    store
        .update_namespace(NamespaceRecord {
            data: vec![2],
            ..record
        })
        .await
        .unwrap();
    assert_eq!(store.list_namespaces().await.unwrap()[0].data, vec![2]);
}

#[tokio::test]
async fn failing_batches_in_a_group_leave_nothing_and_spare_the_others() {
    let (dir, store) = store();
    let range_id = store.acquire_shard(1).await.unwrap();
    // A run that the failing batches collide with.
    let mut existing = create("dup-run", range_id, None);
    existing.executions[0].workflow_id = "dup".into();
    store.write(existing).await.unwrap();

    let mut handles = Vec::new();
    for index in 0..300 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut batch = create(&format!("run-{index}"), range_id, None);
            batch.executions[0].workflow_id = format!("wf-{index}");
            match index % 10 {
                // A stale shard owner: refused before anything is written.
                3 => batch.range_id = range_id - 1,
                // Two executions, the second conflicting: the first must not land either.
                7 => {
                    let mut conflicting = create(&format!("dup-{index}"), range_id, None);
                    conflicting.executions[0].workflow_id = "dup".into();
                    batch.executions.push(conflicting.executions.remove(0));
                }
                _ => {}
            }
            (index, store.write(batch).await)
        }));
    }
    for handle in handles {
        let (index, result) = handle.await.unwrap();
        match index % 10 {
            3 => assert!(
                matches!(result, Err(Error::ShardOwnershipLost)),
                "{result:?}"
            ),
            7 => assert!(matches!(result, Err(Error::Conflict(_))), "{result:?}"),
            _ => result.unwrap(),
        }
    }
    store.close();
    drop(store);
    let reopened = open(&dir);
    // 240 successful writes plus the run they collided with.
    assert_eq!(reopened.count_executions("ns").await.unwrap(), 241);
    for index in 0..300 {
        let found = reopened
            .get_current_execution("ns", &format!("wf-{index}"))
            .await
            .unwrap();
        assert_eq!(
            found.is_some(),
            index % 10 != 3 && index % 10 != 7,
            "wf-{index}"
        );
    }
    let dup = reopened.get_current_execution("ns", "dup").await.unwrap();
    assert_eq!(dup.unwrap().run_id, "dup-run");
}
