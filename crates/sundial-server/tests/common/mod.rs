//! A Sundial server on a free port with a fresh database, and a raw gRPC client that plays the
//! worker: it polls, completes workflow tasks with hand-written commands and reads history.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use sundial_proto::api::command::v1::{Command, command};
use sundial_proto::api::common::v1::{
    ActivityType, Payload, Payloads, WorkflowExecution, WorkflowType,
};
use sundial_proto::api::enums::v1::{CommandType, EventType, TaskQueueKind};
use sundial_proto::api::history::v1::HistoryEvent;
use sundial_proto::api::taskqueue::v1::TaskQueue;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use sundial_server::{DevServer, DevServerOptions};
use tonic::transport::Channel;

pub type Client = WorkflowServiceClient<Channel>;

pub struct TestServer {
    pub server: Option<DevServer>,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    /// The server database the server uses, when the suite runs on one.
    pub database: Option<sundial_persistence::SqlOptions>,
}

/// With `SUNDIAL_TEST_STORE=postgres` or `mysql` (and the variables of `scripts/postgres.sh` or
/// `scripts/mariadb.sh`), every test server gets a new database set up as an operator would;
/// otherwise SQLite.
pub async fn test_database() -> Option<sundial_persistence::SqlOptions> {
    let server = sundial_testkit::databases::requested()?;
    Some(sundial_testkit::databases::fresh_database(&server, "api").await)
}

pub fn options(db: PathBuf) -> DevServerOptions {
    DevServerOptions {
        ip: "127.0.0.1".into(),
        port: 0,
        db_filename: db,
        durable: true,
        database: None,
        namespaces: vec!["other".into()],
        search_attributes: Default::default(),
        create_default_namespace: true,
        num_shards: 4,
        limits: sundial_history_core::Limits::default(),
        dynamic_config: None,
        metrics_address: None,
        rate_limits: sundial_frontend::rate_limit::RateLimits {
            rps: 0.0,
            namespace_rps: 0.0,
            global_namespace_rps: 0.0,
        },
        compact_idle_after: std::time::Duration::from_secs(1),
        timer_horizon: std::time::Duration::from_secs(10),
        wrap_matching: None,
        wrap_history: None,
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose options a test adjusts (limits, for instance).
    pub async fn start_with(adjust: impl FnOnce(&mut DevServerOptions)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("sundial.db");
        let mut server_options = options(db.clone());
        server_options.database = test_database().await;
        let database = server_options.database.clone();
        adjust(&mut server_options);
        let server = DevServer::start(server_options)
            .await
            .expect("start server");
        let client = connect(&server).await;
        TestServer {
            server: Some(server),
            client,
            dir,
            db,
            database,
        }
    }

    /// Stops the server and starts a new one on the same database file.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await
    }

    /// `restart` with options a test adjusts.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut DevServerOptions)) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("stop server");
        }
        let mut server_options = options(self.db.clone());
        server_options.database = self.database.clone();
        adjust(&mut server_options);
        let server = DevServer::start(server_options)
            .await
            .expect("restart server");
        self.client = connect(&server).await;
        self.server = Some(server);
    }
}

pub async fn connect(server: &DevServer) -> Client {
    let endpoint = format!("http://{}", server.address);
    WorkflowServiceClient::connect(endpoint)
        .await
        .expect("connect")
}

pub fn payloads(text: &str) -> Option<Payloads> {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("encoding".to_string(), b"json/plain".to_vec());
    Some(Payloads {
        payloads: vec![Payload {
            metadata,
            data: format!("\"{text}\"").into_bytes(),
            ..Default::default()
        }],
    })
}

pub fn task_queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.into(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    })
}

pub fn start_request(workflow_id: &str, queue: &str) -> ws::StartWorkflowExecutionRequest {
    ws::StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "TestWorkflow".into(),
        }),
        task_queue: task_queue(queue),
        input: payloads("input"),
        identity: "test".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

pub async fn start(client: &mut Client, workflow_id: &str, queue: &str) -> String {
    client
        .start_workflow_execution(start_request(workflow_id, queue))
        .await
        .expect("start")
        .into_inner()
        .run_id
}

pub fn with_timeout<T>(message: T, seconds: u64) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(seconds));
    request
}

pub async fn poll_workflow_task(
    client: &mut Client,
    queue: &str,
) -> ws::PollWorkflowTaskQueueResponse {
    let request = ws::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: task_queue(queue),
        identity: "test-worker".into(),
        ..Default::default()
    };
    let response = client
        .poll_workflow_task_queue(with_timeout(request, 10))
        .await
        .expect("poll workflow task")
        .into_inner();
    assert!(
        !response.task_token.is_empty(),
        "expected a workflow task on {queue}"
    );
    response
}

pub async fn poll_activity_task(
    client: &mut Client,
    queue: &str,
) -> ws::PollActivityTaskQueueResponse {
    let request = ws::PollActivityTaskQueueRequest {
        namespace: "default".into(),
        task_queue: task_queue(queue),
        identity: "test-worker".into(),
        ..Default::default()
    };
    let response = client
        .poll_activity_task_queue(with_timeout(request, 10))
        .await
        .expect("poll activity task")
        .into_inner();
    assert!(
        !response.task_token.is_empty(),
        "expected an activity task on {queue}"
    );
    response
}

pub async fn complete(
    client: &mut Client,
    token: &[u8],
    commands: Vec<Command>,
) -> Result<ws::RespondWorkflowTaskCompletedResponse, tonic::Status> {
    client
        .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: token.to_vec(),
            commands,
            identity: "test-worker".into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner())
}

/// Completes an activity task with `result` as a worker named `w` would.
pub async fn complete_activity(
    client: &mut Client,
    token: &[u8],
    result: &str,
) -> Result<ws::RespondActivityTaskCompletedResponse, tonic::Status> {
    client
        .respond_activity_task_completed(ws::RespondActivityTaskCompletedRequest {
            namespace: "default".into(),
            task_token: token.to_vec(),
            result: payloads(result),
            identity: "w".into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner())
}

pub fn command(command_type: CommandType, attributes: command::Attributes) -> Command {
    Command {
        command_type: command_type as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

pub fn complete_workflow(result: &str) -> Command {
    command(
        CommandType::CompleteWorkflowExecution,
        command::Attributes::CompleteWorkflowExecutionCommandAttributes(
            sundial_proto::api::command::v1::CompleteWorkflowExecutionCommandAttributes {
                result: payloads(result),
            },
        ),
    )
}

pub fn start_timer(timer_id: &str, millis: i64) -> Command {
    command(
        CommandType::StartTimer,
        command::Attributes::StartTimerCommandAttributes(
            sundial_proto::api::command::v1::StartTimerCommandAttributes {
                timer_id: timer_id.into(),
                start_to_fire_timeout: Some(sundial_proto::prost_types::Duration {
                    seconds: millis / 1000,
                    nanos: ((millis % 1000) * 1_000_000) as i32,
                }),
            },
        ),
    )
}

pub fn schedule_activity(
    activity_id: &str,
    queue: &str,
    start_to_close_seconds: i64,
    retry: Option<sundial_proto::api::common::v1::RetryPolicy>,
) -> Command {
    command(
        CommandType::ScheduleActivityTask,
        command::Attributes::ScheduleActivityTaskCommandAttributes(
            sundial_proto::api::command::v1::ScheduleActivityTaskCommandAttributes {
                activity_id: activity_id.into(),
                activity_type: Some(ActivityType {
                    name: "TestActivity".into(),
                }),
                task_queue: task_queue(queue),
                input: payloads("activity-input"),
                start_to_close_timeout: Some(sundial_proto::prost_types::Duration {
                    seconds: start_to_close_seconds,
                    nanos: 0,
                }),
                retry_policy: retry,
                ..Default::default()
            },
        ),
    )
}

pub async fn history(client: &mut Client, workflow_id: &str, run_id: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut token = Vec::new();
    loop {
        let response = client
            .get_workflow_execution_history(ws::GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: workflow_id.into(),
                    run_id: run_id.into(),
                }),
                next_page_token: token,
                ..Default::default()
            })
            .await
            .expect("get history")
            .into_inner();
        events.extend(response.history.unwrap_or_default().events);
        if response.next_page_token.is_empty() {
            return events;
        }
        token = response.next_page_token;
    }
}

pub fn types(events: &[HistoryEvent]) -> Vec<EventType> {
    events.iter().map(|event| event.event_type()).collect()
}

/// Decodes the Temporal error detail of a status, if it has one.
pub fn detail_type(status: &tonic::Status) -> Option<String> {
    let decoded = sundial_proto::google_rpc::Status::decode(status.details()).ok()?;
    decoded.details.first().map(|any| {
        any.type_url
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string()
    })
}
