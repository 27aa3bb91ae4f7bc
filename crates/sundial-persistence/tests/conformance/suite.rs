//! The tests every store must pass. Each takes a fresh, empty database.

use std::sync::Arc;

use sundial_common::Error;
use sundial_persistence::*;
use sundial_proto::api::history::v1::HistoryEvent;

use crate::Backend;
use sundial_visibility::Filter;

fn blob(run_id: &str, next_event_id: i64) -> StateBlob {
    StateBlob {
        encoding: 1,
        data: format!("{run_id}@{next_event_id}").into_bytes(),
    }
}

fn visibility(status: i32) -> VisibilityFields {
    VisibilityFields {
        workflow_type: "T".into(),
        task_queue: "q".into(),
        status,
        start_time_ms: 1,
        ..Default::default()
    }
}

/// A write of `run_id` of workflow `wf` at `next_event_id` with this status, no events.
fn execution(
    workflow_id: &str,
    run_id: &str,
    next_event_id: i64,
    status: i32,
    expected_db_version: Option<i64>,
) -> ExecutionWrite {
    ExecutionWrite {
        namespace_id: "ns".into(),
        workflow_id: workflow_id.into(),
        run_id: run_id.into(),
        state: blob(run_id, next_event_id),
        next_event_id,
        visibility: visibility(status),
        listing: expected_db_version.is_none().then(|| VisibilityWrite {
            row: VisibilityRow {
                workflow_id: workflow_id.into(),
                run_id: run_id.into(),
                workflow_type: "T".into(),
                task_queue: "q".into(),
                status: i64::from(status),
                start_time: 1_000_000,
                root_workflow_id: workflow_id.into(),
                root_run_id: run_id.into(),
                ..Default::default()
            },
            values: Some(vec![]),
        }),
        due: DueWork::default(),
        expected_db_version,
        events: vec![],
        current: CurrentUpdate::Keep,
        new_transfer_tasks: vec![],
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
    let mut write = execution("wf", run_id, 3, 1, None);
    write.events = events(1, 2);
    write.current = CurrentUpdate::Set {
        expected_run_id: expected_current.map(str::to_string),
        run_id: run_id.into(),
        status: 1,
        start_request_id: format!("req-{run_id}"),
    };
    WriteBatch {
        shard_id: 1,
        range_id,
        executions: vec![write],
        deleted_transfer_tasks: vec![],
    }
}

pub async fn create_load_append_and_read_history(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_id = store.acquire_shard(1).await.unwrap();
    store.write(create("run-1", range_id, None)).await.unwrap();
    let loaded = store
        .load_execution("ns", "wf", "run-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.db_version, 1);
    assert_eq!(loaded.state, blob("run-1", 3));
    let current = store
        .get_current_execution("ns", "wf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.run_id, "run-1");
    assert_eq!(current.start_request_id, "req-run-1");

    let mut write = execution("wf", "run-1", 6, 2, Some(1));
    write.events = events(3, 5);
    write.current = CurrentUpdate::Status {
        run_id: "run-1".into(),
        status: 2,
    };
    write.new_transfer_tasks = vec![(7, vec![7, 7])];
    let update = WriteBatch {
        shard_id: 1,
        range_id,
        executions: vec![write],
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
    let tasks = store.list_transfer_tasks(1).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].task_id, tasks[0].task.clone()), (7, vec![7, 7]));
    assert_eq!(tasks[0].workflow_id, "wf");
    store
        .delete_transfer_task(1, tasks[0].task_id)
        .await
        .unwrap();
    assert!(store.list_transfer_tasks(1).await.unwrap().is_empty());
    assert_eq!(store.count_visibility("ns", &Filter::All).await.unwrap(), 1);
}

pub async fn a_stale_shard_owner_cannot_write(backend: &dyn Backend) {
    let store = backend.open().await;
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

pub async fn current_run_pointer_is_compared_and_swapped(backend: &dyn Backend) {
    let store = backend.open().await;
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

pub async fn concurrent_writes_are_group_committed_and_all_durable(backend: &dyn Backend) {
    let store = backend.open().await;
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
    let reopened = backend.open().await;
    assert_eq!(
        reopened.count_visibility("ns", &Filter::All).await.unwrap(),
        200
    );
    let loaded = reopened
        .load_execution("ns", "wf-199", "run-199")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.state, blob("run-199", 3));
}

pub async fn namespaces_are_unique(backend: &dyn Backend) {
    let store = backend.open().await;
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

pub async fn failing_batches_in_a_group_leave_nothing_and_spare_the_others(backend: &dyn Backend) {
    let store = backend.open().await;
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
    let reopened = backend.open().await;
    // 240 successful writes plus the run they collided with.
    assert_eq!(
        reopened.count_visibility("ns", &Filter::All).await.unwrap(),
        241
    );
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

/// Writes runs `r0..r{count}` (workflow ids `w0...`) in one batch with the due work `due(i)`.
async fn write_runs(
    store: &Arc<dyn Store>,
    shard_id: u32,
    range_id: i64,
    count: usize,
    due: impl Fn(usize) -> DueWork,
) {
    let executions = (0..count)
        .map(|index| {
            let mut write = execution(&format!("w{index:03}"), &format!("r{index:03}"), 3, 1, None);
            write.due = due(index);
            write
        })
        .collect();
    store
        .write(WriteBatch {
            shard_id,
            range_id,
            executions,
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
}

pub async fn dispatch_pending_runs_are_listed_in_pages(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_1 = store.acquire_shard(1).await.unwrap();
    let range_2 = store.acquire_shard(2).await.unwrap();
    write_runs(&store, 1, range_1, 25, |index| DueWork {
        wake_time_ms: None,
        dispatch_pending: index % 2 == 0,
    })
    .await;
    // Another shard's runs are not listed.
    let mut other = execution("other", "other-run", 3, 1, None);
    other.due.dispatch_pending = true;
    store
        .write(WriteBatch {
            shard_id: 2,
            range_id: range_2,
            executions: vec![other],
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_dispatch_pending(1, after, 5).await.unwrap();
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|run| run.run_id.clone()));
        if page.len() < 5 {
            break;
        }
        after = page.last().cloned();
    }
    let expected: Vec<String> = (0..25).step_by(2).map(|i| format!("r{i:03}")).collect();
    assert_eq!(seen, expected);

    // A write that clears the flag takes the run off the list.
    let mut done = execution("w000", "r000", 4, 1, Some(1));
    done.due.wake_time_ms = Some(50);
    store
        .write(WriteBatch {
            shard_id: 1,
            range_id: range_1,
            executions: vec![done],
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
    let first = store.list_dispatch_pending(1, None, 1).await.unwrap();
    assert_eq!(first[0].run_id, "r002");
    let other = store.list_dispatch_pending(2, None, 10).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].workflow_id, "other");
}

pub async fn wakeups_are_found_by_time_window_in_pages(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_id = store.acquire_shard(1).await.unwrap();
    // Wake times 0, 10, 10, 20, 20, 30, ... (pairs share a time), and every fifth run none.
    write_runs(&store, 1, range_id, 30, |index| DueWork {
        wake_time_ms: (index % 5 != 4).then_some((index as i64 / 2) * 10),
        dispatch_pending: false,
    })
    .await;
    let expected = |from: i64, until: i64| -> Vec<(i64, String)> {
        let mut rows: Vec<(i64, String)> = (0..30)
            .filter(|index| index % 5 != 4)
            .map(|index| ((index as i64 / 2) * 10, format!("r{index:03}")))
            .filter(|(time, _)| *time > from && *time <= until)
            .collect();
        rows.sort();
        rows
    };
    let collect = |from: Option<WakeAfter>, until: i64, page_size: usize| {
        let store = store.clone();
        async move {
            let mut rows = Vec::new();
            let mut after = from;
            loop {
                let page = store
                    .list_wakeups(1, after.clone(), until, page_size)
                    .await
                    .unwrap();
                rows.extend(
                    page.iter()
                        .map(|wakeup| (wakeup.wake_time_ms, wakeup.run.run_id.clone())),
                );
                match page.last() {
                    Some(last) if page.len() == page_size => {
                        after = Some(WakeAfter::Row(last.clone()))
                    }
                    _ => return rows,
                }
            }
        }
    };
    // Everything due by 60, from the beginning, in pages that split runs with equal times.
    assert_eq!(collect(None, 60, 3).await, expected(i64::MIN, 60));
    // A window: after 20 (exclusive) up to 100 (inclusive).
    assert_eq!(
        collect(Some(WakeAfter::Time(20)), 100, 4).await,
        expected(20, 100)
    );
    assert_eq!(
        collect(Some(WakeAfter::Time(20)), 100, 1000).await,
        expected(20, 100)
    );
    assert!(
        collect(Some(WakeAfter::Time(500)), 600, 10)
            .await
            .is_empty()
    );
}

pub async fn due_work_and_visibility_fields_round_trip(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_id = store.acquire_shard(1).await.unwrap();
    let mut write = execution("wf", "run-1", 3, 1, None);
    write.due = DueWork {
        wake_time_ms: Some(1_700_000_000_123),
        dispatch_pending: true,
    };
    write.visibility = VisibilityFields {
        workflow_type: "Type".into(),
        task_queue: "queue".into(),
        status: 1,
        start_time_ms: 1_700_000_000_000,
        close_time_ms: 0,
        execution_time_ms: 1_700_000_000_500,
        memo: Some(vec![1, 2, 3]),
        search_attributes: None,
        parent_workflow_id: "parent".into(),
        parent_run_id: "parent-run".into(),
    };
    store
        .write(WriteBatch {
            shard_id: 1,
            range_id,
            executions: vec![write.clone()],
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
    let loaded = store
        .load_execution("ns", "wf", "run-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.due, write.due);
    // Closing clears the due work.
    let mut closed = execution("wf", "run-1", 5, 2, Some(1));
    closed.visibility.close_time_ms = 1_700_000_001_000;
    store
        .write(WriteBatch {
            shard_id: 1,
            range_id,
            executions: vec![closed],
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
    let loaded = store
        .load_execution("ns", "wf", "run-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.due, DueWork::default());
    assert_eq!(loaded.db_version, 2);
    assert!(
        store
            .list_wakeups(1, None, i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_dispatch_pending(1, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn the_shard_count_is_fixed_at_the_first_start(backend: &dyn Backend) {
    let store = backend.open().await;
    assert_eq!(store.init_cluster("active", 16).await.unwrap(), 16);
    assert_eq!(store.init_cluster("active", 512).await.unwrap(), 16);
    store.close();
    drop(store);
    let reopened = backend.open().await;
    assert_eq!(reopened.init_cluster("active", 4).await.unwrap(), 16);
}

/// Workflow ids are compared byte for byte on every backend: case, trailing spaces and
/// non-ASCII letters make different ids (MySQL's default collations would fold them), and an
/// id of 1,000 bytes (Temporal's default `limit.maxIDLength`) is stored whole.
pub async fn ids_are_compared_bytewise(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_id = store.acquire_shard(1).await.unwrap();
    let long = "x".repeat(1000);
    let ids = [
        "Order-1",
        "order-1",
        "order-1 ",
        "ördér-1",
        "order-1\u{301}",
        &long,
    ];
    for (index, workflow_id) in ids.iter().enumerate() {
        let run_id = format!("run-{index}");
        let mut write = execution(workflow_id, &run_id, 3, 1, None);
        write.current = CurrentUpdate::Set {
            expected_run_id: None,
            run_id: run_id.clone(),
            status: 1,
            start_request_id: format!("req-{index}"),
        };
        store
            .write(WriteBatch {
                shard_id: 1,
                range_id,
                executions: vec![write],
                deleted_transfer_tasks: vec![],
            })
            .await
            .unwrap_or_else(|error| panic!("{workflow_id:?}: {error}"));
    }
    for (index, workflow_id) in ids.iter().enumerate() {
        let current = store
            .get_current_execution("ns", workflow_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(current.run_id, format!("run-{index}"), "{workflow_id:?}");
    }
    assert!(
        store
            .get_current_execution("ns", "ORDER-1")
            .await
            .unwrap()
            .is_none()
    );
    store.close();
}

const SECOND: i64 = 1_000_000_000;

/// A `json/plain` search-attribute payload.
fn sa(json: &str) -> sundial_proto::api::common::v1::Payload {
    sundial_proto::api::common::v1::Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: json.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A new run's write with its visibility row and search attributes.
fn listed_run(
    workflow_id: &str,
    workflow_type: &str,
    status: i64,
    start_s: i64,
    close_s: Option<i64>,
    attributes: &[(&str, &str)],
) -> ExecutionWrite {
    let search_attributes = sundial_proto::api::common::v1::SearchAttributes {
        indexed_fields: attributes
            .iter()
            .map(|(name, json)| (name.to_string(), sa(json)))
            .collect(),
    };
    let mut write = execution(
        workflow_id,
        &format!("run-{workflow_id}"),
        3,
        status as i32,
        None,
    );
    write.listing = Some(VisibilityWrite {
        row: VisibilityRow {
            workflow_id: workflow_id.into(),
            run_id: format!("run-{workflow_id}"),
            workflow_type: workflow_type.into(),
            task_queue: "q".into(),
            status,
            start_time: start_s * SECOND,
            execution_time: start_s * SECOND,
            close_time: close_s.map(|close| close * SECOND),
            execution_duration: close_s.map(|close| (close - start_s) * SECOND),
            history_length: close_s.map(|_| 5),
            root_workflow_id: workflow_id.into(),
            root_run_id: format!("run-{workflow_id}"),
            search_attributes: prost::Message::encode_to_vec(&search_attributes),
            ..Default::default()
        },
        values: Some(sundial_visibility::index::index(&search_attributes)),
    });
    write
}

fn custom_attributes() -> std::collections::HashMap<String, sundial_visibility::SaType> {
    use sundial_visibility::SaType;
    [
        ("CustKw", SaType::Keyword),
        ("CustInt", SaType::Int),
        ("CustBool", SaType::Bool),
        ("CustDouble", SaType::Double),
        ("CustDt", SaType::Datetime),
        ("CustText", SaType::Text),
        ("CustKwl", SaType::KeywordList),
    ]
    .into_iter()
    .map(|(name, ty)| (name.to_string(), ty))
    .collect()
}

async fn ids_of(store: &dyn Store, query: &str) -> Vec<String> {
    let parsed = sundial_visibility::parse_query(query, &custom_attributes())
        .unwrap_or_else(|error| panic!("{query}: {error}"));
    store
        .list_visibility("ns", &parsed.filter, None, 100)
        .await
        .unwrap_or_else(|error| panic!("{query}: {error}"))
        .into_iter()
        .map(|row| row.workflow_id)
        .collect()
}

/// Temporal's probe of its SQL visibility (four runs, then queries over them), and more: every
/// backend must give the same rows in the same order.
pub async fn list_queries_filter_order_page_and_count(backend: &dyn Backend) {
    let store = backend.open().await;
    let range_id = store.acquire_shard(1).await.unwrap();
    let runs = vec![
        listed_run(
            "p-a",
            "TypeA",
            2,
            1000,
            Some(5000),
            &[
                ("CustKw", "\"red\""),
                ("CustInt", "5"),
                ("CustBool", "true"),
                ("CustText", "\"hello brave world\""),
                ("CustKwl", "[\"x\", \"y\"]"),
                ("CustDouble", "1.5"),
                ("CustDt", "\"2024-01-02T03:04:05Z\""),
            ],
        ),
        listed_run(
            "p-b",
            "TypeB",
            5,
            2000,
            Some(4000),
            &[
                ("CustKw", "\"blue\""),
                ("CustInt", "1"),
                ("CustKwl", "[\"y\", \"z\"]"),
            ],
        ),
        listed_run("p-c", "TypeA", 1, 3000, None, &[]),
        listed_run(
            "p-d",
            "TypeC",
            1,
            4000,
            None,
            &[("CustKw", "\"green\""), ("CustInt", "9")],
        ),
        // The system's own run (a scheduler's): hidden unless asked for.
        listed_run(
            "p-e",
            "TypeA",
            1,
            4500,
            None,
            &[("TemporalNamespaceDivision", "\"TemporalScheduler\"")],
        ),
    ];
    store
        .write(WriteBatch {
            shard_id: 1,
            range_id,
            executions: runs,
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
    let table: &[(&str, &[&str])] = &[
        ("", &["p-d", "p-c", "p-a", "p-b"]),
        ("WorkflowId STARTS_WITH 'p-'", &["p-d", "p-c", "p-a", "p-b"]),
        ("WorkflowId STARTS_WITH 'p-a'", &["p-a"]),
        ("WorkflowId NOT STARTS_WITH 'p-a'", &["p-d", "p-c", "p-b"]),
        ("ExecutionStatus = 'Running'", &["p-d", "p-c"]),
        ("ExecutionStatus IN ('Completed', 5)", &["p-a", "p-b"]),
        ("ExecutionStatus != 'Running'", &["p-a", "p-b"]),
        ("CustInt BETWEEN 2 AND 9", &["p-d", "p-a"]),
        ("CustInt NOT BETWEEN 2 AND 9", &["p-b"]),
        ("CustInt = 5.0", &["p-a"]),
        ("CustInt > 1", &["p-d", "p-a"]),
        ("CustKwl = 'y'", &["p-a", "p-b"]),
        ("CustKwl IN ('z')", &["p-b"]),
        ("CustKwl != 'x'", &["p-b"]),
        ("CustKwl NOT IN ('x', 'q')", &["p-b"]),
        ("NOT (CustKw = 'red')", &["p-d", "p-b"]),
        ("CustKw != 'red'", &["p-d", "p-b"]),
        ("CustKw IS NULL", &["p-c"]),
        ("CustKw IS NOT NULL", &["p-d", "p-a", "p-b"]),
        ("CustKw IN ('red', 'green')", &["p-d", "p-a"]),
        ("CustKw NOT IN ('red')", &["p-d", "p-b"]),
        ("CustKw STARTS_WITH 'gr'", &["p-d"]),
        ("CustKw > 'blue'", &["p-d", "p-a"]),
        ("CustKw = 'RED'", &[]),
        ("CustText = 'hello world'", &["p-a"]),
        ("CustText = 'HELLO nope'", &["p-a"]),
        ("CustText = 'nope'", &[]),
        ("CustText != 'brave'", &[]),
        ("CustBool = true", &["p-a"]),
        ("CustBool = false", &[]),
        ("CustDouble > 1", &["p-a"]),
        ("CustDouble = 1", &[]),
        ("CustDt > '2024-01-01T00:00:00Z'", &["p-a"]),
        ("CustDt < '2024-01-02T05:04:05+02:00'", &[]),
        ("CustDt = '2024-01-02T05:04:05+02:00'", &["p-a"]),
        ("WorkflowType = 'TypeA'", &["p-c", "p-a"]),
        (
            "WorkflowType = 'TypeA' OR CustInt = 1",
            &["p-c", "p-a", "p-b"],
        ),
        (
            "(WorkflowType = 'TypeA' OR CustInt = 1) AND ExecutionStatus = 'Running'",
            &["p-c"],
        ),
        ("NOT (CustKw = 'red' OR CustInt = 1)", &["p-d"]),
        ("CloseTime IS NULL", &["p-d", "p-c"]),
        ("CloseTime IS NOT NULL", &["p-a", "p-b"]),
        ("HistoryLength > 0", &["p-a", "p-b"]),
        ("StartTime > '1970-01-01T00:50:00Z'", &["p-d"]),
        (
            "StartTime BETWEEN 2000000000000 AND 3000000000000",
            &["p-c", "p-b"],
        ),
        ("ExecutionDuration > '1h'", &["p-a"]),
        ("ParentWorkflowId IS NULL", &["p-d", "p-c", "p-a", "p-b"]),
        ("RootWorkflowId = 'p-b'", &["p-b"]),
        ("TemporalNamespaceDivision = 'TemporalScheduler'", &["p-e"]),
        (
            "TemporalNamespaceDivision IS NULL AND WorkflowType = 'TypeA'",
            &["p-c", "p-a"],
        ),
    ];
    for (query, expected) in table {
        assert_eq!(ids_of(store.as_ref(), query).await, *expected, "{query}");
    }

    // Pages of two, each after the last row of the one before; a full page carries on.
    let everything = sundial_visibility::parse_query("", &custom_attributes()).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..3 {
        let page = store
            .list_visibility("ns", &everything.filter, after.clone(), 2)
            .await
            .unwrap();
        after = page.last().map(VisibilityRow::cursor);
        seen.push(
            page.into_iter()
                .map(|row| row.workflow_id)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(seen, vec![vec!["p-d", "p-c"], vec!["p-a", "p-b"], vec![]]);

    assert_eq!(
        store
            .count_visibility("ns", &everything.filter)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .count_visibility_by_status("ns", &everything.filter)
            .await
            .unwrap(),
        vec![(1, 2), (2, 1), (5, 1)]
    );
    assert_eq!(
        store.count_visibility("other", &Filter::All).await.unwrap(),
        0
    );

    // Closing a run rewrites its row; new search attributes replace the old values.
    let mut update = listed_run(
        "p-d",
        "TypeC",
        2,
        4000,
        Some(6000),
        &[("CustKw", "\"violet\"")],
    );
    update.expected_db_version = Some(1);
    store
        .write(WriteBatch {
            shard_id: 1,
            range_id,
            executions: vec![update],
            deleted_transfer_tasks: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        ids_of(store.as_ref(), "CustKw = 'green'").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(store.as_ref(), "CustKw = 'violet'").await,
        vec!["p-d"]
    );
    assert_eq!(
        ids_of(store.as_ref(), "CustInt IS NULL").await,
        vec!["p-c", "p-d"]
    );
    assert_eq!(
        ids_of(store.as_ref(), "").await,
        vec!["p-c", "p-d", "p-a", "p-b"]
    );
}
