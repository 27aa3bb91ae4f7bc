//! Dynamic config changes the running server's behaviour within a second, from each source:
//! a watched file, a real etcd (changed with `etcdctl`), and a ConfigMap on the in-process fake
//! Kubernetes API server (no real API server can run here). Deleting the key reverts it.

use std::time::{Duration, Instant};

use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_server::DevServer;
use sundial_testkit::eventually;
use tonic::Code;

use crate::common::*;

const LIVE: Duration = Duration::from_secs(1);

async fn server_with(dynamic_config: String) -> (TestServer, Client) {
    let server = TestServer::start_with(|options| {
        options.dynamic_config = Some(dynamic_config);
        options.metrics_address = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let client = server.client.clone();
    (server, client)
}

/// A signal whose input is about 500 bytes: accepted under Temporal's default blob limit.
async fn big_signal(client: &mut Client, workflow_id: &str) -> Result<(), tonic::Status> {
    client
        .signal_workflow_execution(ws::SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            }),
            signal_name: "s".into(),
            input: payloads(&"z".repeat(500)),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn expect_blob_limit(client: &mut Client, workflow_id: &str, limited: bool) {
    let started = Instant::now();
    eventually(LIVE, "the blob limit to follow dynamic config", || {
        let mut client = client.clone();
        async move {
            let outcome = big_signal(&mut client, workflow_id).await;
            match (limited, outcome) {
                (true, Err(status)) if status.code() == Code::InvalidArgument => Some(()),
                (false, Ok(())) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert!(
        started.elapsed() <= LIVE,
        "the change took {:?}",
        started.elapsed()
    );
}

fn metrics_text(server: &DevServer) -> String {
    let address = server.metrics_address.expect("metrics are served");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    use std::io::{Read, Write};
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_edits_apply_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.yaml");
    std::fs::write(&path, "frontend.rps:\n  - value: 0\n").unwrap();
    let (server, mut client) = server_with(format!("file://{}", path.display())).await;
    start(&mut client, "wf-dyn-file", "q-dyn").await;
    big_signal(&mut client, "wf-dyn-file").await.unwrap();
    std::fs::write(&path, "limit.blobSize.error:\n  - value: 200\n").unwrap();
    expect_blob_limit(&mut client, "wf-dyn-file", true).await;
    std::fs::write(&path, "frontend.rps:\n  - value: 0\n").unwrap();
    expect_blob_limit(&mut client, "wf-dyn-file", false).await;
    let metrics = metrics_text(server.server.as_ref().unwrap());
    assert!(metrics.contains("dynconfig_key_updates_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_changes_apply_live() {
    let etcd = sundial_testkit::etcd::EtcdServer::start();
    let (_server, mut client) =
        server_with(format!("etcd://{}/sundial-e2e/", etcd.endpoint())).await;
    start(&mut client, "wf-dyn-etcd", "q-dyn").await;
    big_signal(&mut client, "wf-dyn-etcd").await.unwrap();
    etcd.etcdctl(&[
        "put",
        "--",
        "/sundial-e2e/limit.blobSize.error",
        "- value: 200",
    ]);
    expect_blob_limit(&mut client, "wf-dyn-etcd", true).await;
    etcd.etcdctl(&["del", "/sundial-e2e/limit.blobSize.error"]);
    expect_blob_limit(&mut client, "wf-dyn-etcd", false).await;
    // A namespace rate limit set with etcdctl throttles requests at once.
    etcd.etcdctl(&[
        "put",
        "--",
        "/sundial-e2e/frontend.namespaceRPS",
        "- value: 2",
    ]);
    eventually(LIVE, "namespace rate limit", || {
        let mut client = client.clone();
        async move {
            for _ in 0..10 {
                if let Err(status) = client.get_system_info(ws::GetSystemInfoRequest {}).await {
                    panic!("system info is not rate limited: {status}");
                }
                let describe = client
                    .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
                        namespace: "default".into(),
                        execution: Some(WorkflowExecution {
                            workflow_id: "wf-dyn-etcd".into(),
                            run_id: String::new(),
                        }),
                    })
                    .await;
                if let Err(status) = describe
                    && status.code() == Code::ResourceExhausted
                {
                    return Some(());
                }
            }
            None
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_edits_apply_live() {
    let fake = sundial_testkit::fake_kube::FakeKube::start().await;
    let url = format!(
        "configmap://sundial/dynamic-config?key=config.yaml&server={}",
        fake.url()
    );
    let (_server, mut client) = server_with(url).await;
    start(&mut client, "wf-dyn-cm", "q-dyn").await;
    big_signal(&mut client, "wf-dyn-cm").await.unwrap();
    let original = fake
        .data("sundial", "dynamic-config", "config.yaml")
        .unwrap_or_default();
    fake.set_data(
        "sundial",
        "dynamic-config",
        "config.yaml",
        "limit.blobSize.error:\n  - value: 200\n",
    );
    expect_blob_limit(&mut client, "wf-dyn-cm", true).await;
    fake.set_data("sundial", "dynamic-config", "config.yaml", &original);
    expect_blob_limit(&mut client, "wf-dyn-cm", false).await;
}

/// Three `sundial` processes (the real binary) against one etcd: one `etcdctl put` changes all
/// three within a second, and deleting the key reverts all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_follow_one_etcd() {
    let etcd = sundial_testkit::etcd::EtcdServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("etcd://{}/sundial-three/", etcd.endpoint());
    let mut processes = Vec::new();
    let mut clients = Vec::new();
    for index in 0..3 {
        let port = sundial_testkit::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sundial"))
            .args([
                "server",
                "start-dev",
                "--port",
                &port.to_string(),
                "--log-level",
                "warn",
            ])
            .arg("--db-filename")
            .arg(dir.path().join(format!("node-{index}.db")))
            .args(["--dynamic-config", &url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn sundial");
        processes.push(KillOnDrop(child));
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = eventually(Duration::from_secs(20), "sundial to accept connections", || {
            let endpoint = endpoint.clone();
            async move { sundial_proto::workflowservice::workflow_service_client::WorkflowServiceClient::connect(endpoint).await.ok() }
        })
        .await;
        clients.push(client);
    }
    for (index, client) in clients.iter_mut().enumerate() {
        start(client, &format!("wf-three-{index}"), "q-three").await;
        big_signal(client, &format!("wf-three-{index}"))
            .await
            .unwrap();
    }
    etcd.etcdctl(&[
        "put",
        "--",
        "/sundial-three/limit.blobSize.error",
        "- value: 200",
    ]);
    for (index, client) in clients.iter_mut().enumerate() {
        expect_blob_limit(client, &format!("wf-three-{index}"), true).await;
    }
    etcd.etcdctl(&["del", "/sundial-three/limit.blobSize.error"]);
    for (index, client) in clients.iter_mut().enumerate() {
        expect_blob_limit(client, &format!("wf-three-{index}"), false).await;
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn partition_count(client: &mut Client, queue: &str) -> (usize, usize) {
    let response = client
        .list_task_queue_partitions(ws::ListTaskQueuePartitionsRequest {
            namespace: "default".into(),
            task_queue: task_queue(queue),
        })
        .await
        .expect("list partitions")
        .into_inner();
    (
        response.workflow_task_queue_partitions.len(),
        response.activity_task_queue_partitions.len(),
    )
}

/// Workflow tasks waiting in one partition, through the legacy status the CLI reads.
async fn partition_backlog(client: &mut Client, queue: &str, partition: usize) -> i64 {
    let name = if partition == 0 {
        queue.to_string()
    } else {
        format!("/_sys/{queue}/{partition}")
    };
    #[allow(deprecated)]
    let request = ws::DescribeTaskQueueRequest {
        namespace: "default".into(),
        task_queue: task_queue(&name),
        include_task_queue_status: true,
        ..Default::default()
    };
    #[allow(deprecated)]
    let status = client
        .describe_task_queue(request)
        .await
        .expect("describe partition")
        .into_inner()
        .task_queue_status
        .expect("status was asked for");
    status.backlog_count_hint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_counts_apply_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.yaml");
    let one = "matching.numTaskqueueReadPartitions:\n  - value: 1\n\
               matching.numTaskqueueWritePartitions:\n  - value: 1\n";
    std::fs::write(&path, one).unwrap();
    let (_server, mut client) = server_with(format!("file://{}", path.display())).await;
    let queue = "q-parts";
    assert_eq!(partition_count(&mut client, queue).await, (1, 1));
    for i in 0..8 {
        start(&mut client, &format!("wf-part-a{i}"), queue).await;
    }
    assert_eq!(partition_backlog(&mut client, queue, 0).await, 8);
    assert_eq!(partition_backlog(&mut client, queue, 1).await, 0);

    // Deleting the keys reverts to Temporal's default of four partitions, within a second.
    std::fs::write(&path, "frontend.rps:\n  - value: 0\n").unwrap();
    let started = Instant::now();
    eventually(LIVE, "four partitions", || {
        let mut client = client.clone();
        async move { (partition_count(&mut client, queue).await == (4, 4)).then_some(()) }
    })
    .await;
    assert!(started.elapsed() <= LIVE, "took {:?}", started.elapsed());
    for i in 0..8 {
        start(&mut client, &format!("wf-part-b{i}"), queue).await;
    }
    let mut backlogs = Vec::new();
    for partition in 0..4 {
        backlogs.push(partition_backlog(&mut client, queue, partition).await);
    }
    assert_eq!(backlogs, vec![10, 2, 2, 2]);

    // Read lowered below write: every partition is still drained by polls.
    let skewed = "matching.numTaskqueueReadPartitions:\n  - value: 1\n";
    std::fs::write(&path, skewed).unwrap();
    eventually(LIVE, "one read partition", || {
        let mut client = client.clone();
        async move { (partition_count(&mut client, queue).await == (1, 1)).then_some(()) }
    })
    .await;
    let mut polled = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let task = poll_workflow_task(&mut client, queue).await;
        polled.insert(task.workflow_execution.unwrap().workflow_id);
    }
    assert_eq!(polled.len(), 16);
    for partition in 0..4 {
        assert_eq!(partition_backlog(&mut client, queue, partition).await, 0);
    }
}

/// Sends `count` describes to a namespace; how many were refused with ResourceExhausted.
async fn throttled(client: &mut Client, namespace: &str, count: usize) -> usize {
    let mut refused = 0;
    for _ in 0..count {
        let outcome = client
            .describe_workflow_execution(ws::DescribeWorkflowExecutionRequest {
                namespace: namespace.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: "no-such-workflow".into(),
                    run_id: String::new(),
                }),
            })
            .await;
        match outcome {
            Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{status}"),
            Ok(_) => panic!("the workflow does not exist"),
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_rate_constrained_to_one_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.yaml");
    std::fs::write(&path, "frontend.rps:\n  - value: 0\n").unwrap();
    let server = TestServer::start_with(|options| {
        options.dynamic_config = Some(format!("file://{}", path.display()));
        options.namespaces = vec!["slow".into()];
    })
    .await;
    let mut client = server.client.clone();
    assert_eq!(throttled(&mut client, "slow", 20).await, 0);
    std::fs::write(
        &path,
        "frontend.namespaceRPS:\n  - value: 2\n    constraints: {namespace: slow}\n",
    )
    .unwrap();
    eventually(LIVE, "the rate of namespace slow", || {
        let mut client = client.clone();
        async move { (throttled(&mut client, "slow", 10).await > 0).then_some(()) }
    })
    .await;
    // The value is constrained to `slow`; `default` keeps no limit.
    assert_eq!(throttled(&mut client, "default", 50).await, 0);
}
