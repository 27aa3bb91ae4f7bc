//! `temporal.api.workflowservice.v1.WorkflowService`: the RPCs Sundial serves. The others
//! answer `Unimplemented` through the generated default stubs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sundial_common::Error;
use sundial_proto::api::enums::v1::{QueryResultType, TaskQueueKind};
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::api::workflowservice::v1::execute_multi_operation_response as multi_response;
use sundial_proto::workflowservice::workflow_service_server::WorkflowService;
use sundial_rpc::{
    OperationStatus, QueryAnswer, TOKEN_ACTIVITY_TASK, TOKEN_QUERY_TASK, TOKEN_WORKFLOW_TASK,
    TaskToken, UpdateWithStart, WorkflowTaskMatch,
};
use sundial_visibility::validate::annotate;
use tonic::{Request, Response, Status};

use crate::errors::{multi_operation_status, to_status};
use crate::handed_out::{HandedOut, QueueKind};
use crate::namespaces::{self, CLUSTER_NAME};
use crate::{WorkflowHandler, search_attributes, validate, visibility};

type Reply<T> = Result<Response<T>, Status>;

/// Longest a task poll waits in matching before answering empty.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);
/// Time left for the answer to reach the client before its deadline.
const POLL_MARGIN: Duration = Duration::from_millis(1500);

fn ok<T>(value: T) -> Reply<T> {
    Ok(Response::new(value))
}

fn poll_until(deadline: Instant) -> Instant {
    let latest = deadline.checked_sub(POLL_MARGIN).unwrap_or(deadline);
    latest.min(Instant::now() + MAX_POLL_WAIT)
}

fn token(bytes: &[u8], kind: i32) -> Result<TaskToken, Status> {
    let token = TaskToken::decode_token(bytes).map_err(to_status)?;
    if token.kind != kind {
        return Err(to_status(Error::invalid("error deserializing task token")));
    }
    Ok(token)
}

impl WorkflowHandler {
    /// Resolves the namespace of a request and admits the request under the rate limits.
    fn custom_attributes(
        &self,
        namespace: &sundial_rpc::NamespaceRef,
    ) -> HashMap<String, sundial_visibility::SaType> {
        self.frontend.namespaces.custom_attributes(&namespace.name)
    }

    fn scope<'a>(&self, namespace: &'a sundial_rpc::NamespaceRef) -> visibility::Scope<'a> {
        visibility::Scope {
            namespace,
            custom: self.custom_attributes(namespace),
        }
    }

    fn namespace(&self, name: &str) -> Result<sundial_rpc::NamespaceRef, Status> {
        let namespace = self.frontend.namespaces.resolve(name).map_err(to_status)?;
        self.frontend
            .rate_limiter
            .admit(&namespace.name)
            .map_err(to_status)?;
        Ok(namespace)
    }

    /// The task token of an activity's started attempt, for the `...ById` RPCs.
    async fn token_by_id(
        &self,
        namespace: &sundial_rpc::NamespaceRef,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<TaskToken, Status> {
        self.frontend
            .history
            .activity_token_by_id(namespace, workflow_id, run_id, activity_id)
            .await
            .map_err(to_status)
    }

    fn default_deadline<T>(request: &Request<T>) -> Instant {
        validate::deadline(request).unwrap_or_else(|| Instant::now() + Duration::from_secs(30))
    }

    /// The checks of a start request, in Temporal's order.
    fn check_start(
        &self,
        request: &ws::StartWorkflowExecutionRequest,
        namespace: &sundial_rpc::NamespaceRef,
    ) -> Result<(), Error> {
        let limits = self.frontend.limits();
        validate::id(&request.workflow_id, "WorkflowId", &limits)?;
        validate::id(
            request
                .workflow_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or(""),
            "WorkflowType",
            &limits,
        )?;
        validate::task_queue(request.task_queue.as_ref(), &limits)?;
        validate::timeouts(&[
            &request.workflow_execution_timeout,
            &request.workflow_run_timeout,
            &request.workflow_task_timeout,
            &request.workflow_start_delay,
        ])?;
        if request.request_id.len() > limits.max_id_length {
            return Err(Error::invalid("RequestId length exceeds limit."));
        }
        if !request.cron_schedule.is_empty() {
            return Err(Error::invalid(
                "cron schedules are not supported by this server yet",
            ));
        }
        validate::policies(
            request.workflow_id_reuse_policy,
            request.workflow_id_conflict_policy,
        )?;
        validate::payloads(request.input.as_ref(), &limits)?;
        search_attributes::check_start(
            request.search_attributes.as_ref(),
            &namespace.name,
            &self.frontend.namespaces,
            &limits,
        )
    }

    /// The start of an update-with-start: a start's checks, then what update-with-start does
    /// not allow. A missing request id is filled in, so that the SDK's retries of the call
    /// (which send the same request) find the run this one started.
    fn check_update_with_start(
        &self,
        start: &mut ws::StartWorkflowExecutionRequest,
        namespace: &sundial_rpc::NamespaceRef,
    ) -> Result<(), Error> {
        if !start.namespace.is_empty() && start.namespace != namespace.name {
            return Err(Error::invalid(
                "Operation namespace did not match request's namespace.",
            ));
        }
        // Checked before the start's own checks, which refuse any cron schedule with their
        // own message.
        if !start.cron_schedule.is_empty() {
            return Err(Error::invalid("CronSchedule is not allowed."));
        }
        self.check_start(start, namespace)?;
        if start.request_eager_execution {
            return Err(Error::invalid("RequestEagerExecution is not supported."));
        }
        if start
            .workflow_start_delay
            .as_ref()
            .is_some_and(|delay| delay.seconds > 0 || delay.nanos > 0)
        {
            return Err(Error::invalid("WorkflowStartDelay is not supported."));
        }
        if start.request_id.is_empty() {
            start.request_id = sundial_common::new_uuid();
        }
        Ok(())
    }
}

impl WorkflowHandler {
    /// The limits a namespace's description reports, as SDKs read them to check payloads before
    /// sending: the live blob size limit (`limit.blobSize.error`).
    fn fill_limits(&self, description: &mut ws::DescribeNamespaceResponse) {
        if let Some(info) = description.namespace_info.as_mut() {
            info.limits = Some(sundial_proto::api::namespace::v1::namespace_info::Limits {
                blob_size_limit_error: self.frontend.limits().blob_size_error as i64,
                ..Default::default()
            });
        }
    }
}

#[tonic::async_trait]
impl WorkflowService for WorkflowHandler {
    async fn get_system_info(
        &self,
        _request: Request<ws::GetSystemInfoRequest>,
    ) -> Reply<ws::GetSystemInfoResponse> {
        use ws::get_system_info_response::Capabilities;
        ok(ws::GetSystemInfoResponse {
            server_version: "1.32.0".into(),
            capabilities: Some(Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                supports_schedules: false,
                encoded_failure_attributes: true,
                build_id_based_versioning: false,
                upsert_memo: true,
                eager_workflow_start: false,
                sdk_metadata: true,
                count_group_by_execution_status: true,
                nexus: false,
                ..Default::default()
            }),
        })
    }

    async fn get_cluster_info(
        &self,
        _request: Request<ws::GetClusterInfoRequest>,
    ) -> Reply<ws::GetClusterInfoResponse> {
        ok(ws::GetClusterInfoResponse {
            supported_clients: HashMap::new(),
            server_version: "1.32.0".into(),
            cluster_id: "sundial".into(),
            cluster_name: CLUSTER_NAME.into(),
            history_shard_count: self.frontend.num_shards as i32,
            persistence_store: "sqlite".into(),
            visibility_store: "sqlite".into(),
            // Temporal's single-cluster defaults.
            failover_version_increment: 10,
            initial_failover_version: 1,
            ..Default::default()
        })
    }

    async fn register_namespace(
        &self,
        request: Request<ws::RegisterNamespaceRequest>,
    ) -> Reply<ws::RegisterNamespaceResponse> {
        let request = request.into_inner();
        let limits = self.frontend.limits();
        validate::id(&request.namespace, "Namespace", &limits).map_err(to_status)?;
        let description = namespaces::new_namespace(
            &request.namespace,
            request.description,
            request.owner_email,
            request.data,
            request.workflow_execution_retention_period,
        );
        self.frontend
            .namespaces
            .register(description)
            .await
            .map_err(to_status)?;
        ok(ws::RegisterNamespaceResponse {})
    }

    async fn describe_namespace(
        &self,
        request: Request<ws::DescribeNamespaceRequest>,
    ) -> Reply<ws::DescribeNamespaceResponse> {
        let request = request.into_inner();
        if request.namespace.is_empty() && request.id.is_empty() {
            return Err(to_status(Error::invalid("Namespace not set on request.")));
        }
        let mut description = self
            .frontend
            .namespaces
            .describe(&request.namespace, &request.id)
            .map_err(to_status)?;
        self.fill_limits(&mut description);
        ok(description)
    }

    async fn list_namespaces(
        &self,
        _request: Request<ws::ListNamespacesRequest>,
    ) -> Reply<ws::ListNamespacesResponse> {
        let mut namespaces = self.frontend.namespaces.list();
        for description in &mut namespaces {
            self.fill_limits(description);
        }
        ok(ws::ListNamespacesResponse {
            namespaces,
            next_page_token: Vec::new(),
        })
    }

    async fn update_namespace(
        &self,
        request: Request<ws::UpdateNamespaceRequest>,
    ) -> Reply<ws::UpdateNamespaceResponse> {
        let request = request.into_inner();
        let description = self
            .frontend
            .namespaces
            .modify(&request.namespace, |description| {
                let info = description
                    .namespace_info
                    .as_mut()
                    .expect("namespaces have info");
                if let Some(update) = request.update_info {
                    if !update.description.is_empty() {
                        info.description = update.description;
                    }
                    if !update.owner_email.is_empty() {
                        info.owner_email = update.owner_email;
                    }
                    info.data.extend(update.data);
                    if update.state != 0 {
                        info.state = update.state;
                    }
                }
                if let Some(config) = request.config {
                    let current = description.config.get_or_insert_with(Default::default);
                    if config.workflow_execution_retention_ttl.is_some() {
                        current.workflow_execution_retention_ttl =
                            config.workflow_execution_retention_ttl;
                    }
                    if config.bad_binaries.is_some() {
                        current.bad_binaries = config.bad_binaries;
                    }
                    // As in Temporal, an empty alias frees its slot.
                    for (slot, alias) in config.custom_search_attribute_aliases {
                        if alias.is_empty() {
                            current.custom_search_attribute_aliases.remove(&slot);
                        } else {
                            current.custom_search_attribute_aliases.insert(slot, alias);
                        }
                    }
                }
                Ok(true)
            })
            .await
            .map_err(to_status)?;
        ok(ws::UpdateNamespaceResponse {
            namespace_info: description.namespace_info,
            config: description.config,
            replication_config: description.replication_config,
            failover_version: 0,
            is_global_namespace: false,
        })
    }

    async fn start_workflow_execution(
        &self,
        request: Request<ws::StartWorkflowExecutionRequest>,
    ) -> Reply<ws::StartWorkflowExecutionResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        self.check_start(&request, &namespace).map_err(to_status)?;
        ok(self
            .frontend
            .history
            .start_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?)
    }

    async fn execute_multi_operation(
        &self,
        request: Request<ws::ExecuteMultiOperationRequest>,
    ) -> Reply<ws::ExecuteMultiOperationResponse> {
        let deadline = Self::default_deadline(&request);
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let (mut start, mut update) =
            crate::updates::start_and_update(request.operations).map_err(to_status)?;
        let start_error = self.check_update_with_start(&mut start, &namespace).err();
        let update_error = match crate::updates::check_update_of_start(
            &mut update,
            &namespace.name,
            &self.frontend.limits(),
        ) {
            Err(error) => Some(error),
            Ok(()) if start_error.is_none() => {
                let update_id = update
                    .workflow_execution
                    .as_ref()
                    .map(|execution| execution.workflow_id.as_str())
                    .unwrap_or("");
                (update_id != start.workflow_id).then(|| {
                    Error::invalid("WorkflowId is not consistent with previous operation(s).")
                })
            }
            Ok(()) => None,
        };
        if start_error.is_some() || update_error.is_some() {
            return Err(multi_operation_status(
                start_error.map_or(OperationStatus::Aborted, OperationStatus::Failed),
                update_error.map_or(OperationStatus::Aborted, OperationStatus::Failed),
            ));
        }
        match self
            .frontend
            .history
            .update_with_start(&namespace, start, update, deadline)
            .await
            .map_err(to_status)?
        {
            UpdateWithStart::Done { start, update } => ok(ws::ExecuteMultiOperationResponse {
                responses: vec![
                    multi_response::Response {
                        response: Some(multi_response::response::Response::StartWorkflow(*start)),
                    },
                    multi_response::Response {
                        response: Some(multi_response::response::Response::UpdateWorkflow(*update)),
                    },
                ],
            }),
            UpdateWithStart::Failed { start, update } => Err(multi_operation_status(start, update)),
        }
    }

    async fn signal_with_start_workflow_execution(
        &self,
        request: Request<ws::SignalWithStartWorkflowExecutionRequest>,
    ) -> Reply<ws::SignalWithStartWorkflowExecutionResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let limits = self.frontend.limits();
        (|| {
            validate::id(&request.workflow_id, "WorkflowId", &limits)?;
            validate::id(&request.signal_name, "SignalName", &limits)?;
            validate::id(request.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or(""), "WorkflowType", &limits)?;
            validate::task_queue(request.task_queue.as_ref(), &limits)?;
            validate::timeouts(&[&request.workflow_execution_timeout, &request.workflow_run_timeout, &request.workflow_task_timeout])?;
            if !request.cron_schedule.is_empty() {
                return Err(Error::invalid("cron schedules are not supported by this server yet"));
            }
            validate::policies(request.workflow_id_reuse_policy, request.workflow_id_conflict_policy)?;
            if request.workflow_id_conflict_policy == sundial_proto::api::enums::v1::WorkflowIdConflictPolicy::Fail as i32 {
                return Err(Error::invalid("SignalWithStartWorkflowExecution does not support WorkflowIdConflictPolicy FAIL."));
            }
            validate::payloads(request.input.as_ref(), &limits)?;
            validate::payloads(request.signal_input.as_ref(), &limits)?;
            search_attributes::check_start(request.search_attributes.as_ref(), &namespace.name, &self.frontend.namespaces, &limits)
        })()
        .map_err(to_status)?;
        ok(self
            .frontend
            .history
            .signal_with_start_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?)
    }

    async fn signal_workflow_execution(
        &self,
        request: Request<ws::SignalWorkflowExecutionRequest>,
    ) -> Reply<ws::SignalWorkflowExecutionResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let limits = self.frontend.limits();
        (|| {
            validate::execution(request.workflow_execution.as_ref(), &limits)?;
            validate::id(&request.signal_name, "SignalName", &limits)?;
            validate::payloads(request.input.as_ref(), &limits)
        })()
        .map_err(to_status)?;
        self.frontend
            .history
            .signal_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?;
        ok(ws::SignalWorkflowExecutionResponse::default())
    }

    async fn request_cancel_workflow_execution(
        &self,
        request: Request<ws::RequestCancelWorkflowExecutionRequest>,
    ) -> Reply<ws::RequestCancelWorkflowExecutionResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        validate::execution(request.workflow_execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        self.frontend
            .history
            .request_cancel_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?;
        ok(ws::RequestCancelWorkflowExecutionResponse::default())
    }

    async fn terminate_workflow_execution(
        &self,
        request: Request<ws::TerminateWorkflowExecutionRequest>,
    ) -> Reply<ws::TerminateWorkflowExecutionResponse> {
        let mut request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        validate::execution(request.workflow_execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        // What Temporal's frontend writes into the terminated event when the caller leaves these
        // empty (each on its own; differential scenario s33).
        if request.reason.is_empty() {
            request.reason = "terminated by user via frontend".into();
        }
        if request.identity.is_empty() {
            request.identity = "frontend-service".into();
        }
        self.frontend
            .history
            .terminate_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?;
        ok(ws::TerminateWorkflowExecutionResponse::default())
    }

    async fn describe_workflow_execution(
        &self,
        request: Request<ws::DescribeWorkflowExecutionRequest>,
    ) -> Reply<ws::DescribeWorkflowExecutionResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        validate::execution(request.execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        let mut response = self
            .frontend
            .history
            .describe_workflow_execution(&namespace, request)
            .await
            .map_err(to_status)?;
        if let Some(attributes) = response
            .workflow_execution_info
            .as_mut()
            .and_then(|info| info.search_attributes.as_mut())
        {
            annotate(attributes, &self.custom_attributes(&namespace));
        }
        ok(response)
    }

    async fn get_workflow_execution_history(
        &self,
        request: Request<ws::GetWorkflowExecutionHistoryRequest>,
    ) -> Reply<ws::GetWorkflowExecutionHistoryResponse> {
        let deadline = Self::default_deadline(&request);
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        validate::execution(request.execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        let mut response = self
            .frontend
            .history
            .get_workflow_execution_history(&namespace, request, deadline)
            .await
            .map_err(to_status)?;
        search_attributes::annotate_history(
            response.history.as_mut(),
            &self.custom_attributes(&namespace),
        );
        ok(response)
    }

    async fn query_workflow(
        &self,
        request: Request<ws::QueryWorkflowRequest>,
    ) -> Reply<ws::QueryWorkflowResponse> {
        let deadline = Self::default_deadline(&request);
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        validate::execution(request.execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        if request.query.is_none() {
            return Err(to_status(Error::invalid("Query is not set on request.")));
        }
        ok(self
            .frontend
            .history
            .query_workflow(&namespace, request, deadline)
            .await
            .map_err(to_status)?)
    }

    async fn update_workflow_execution(
        &self,
        request: Request<ws::UpdateWorkflowExecutionRequest>,
    ) -> Reply<ws::UpdateWorkflowExecutionResponse> {
        let deadline = Self::default_deadline(&request);
        let mut request = request.into_inner();
        crate::updates::check_update(&mut request, &self.frontend.limits()).map_err(to_status)?;
        let namespace = self.namespace(&request.namespace)?;
        ok(self
            .frontend
            .history
            .update_workflow_execution(&namespace, request, deadline)
            .await
            .map_err(to_status)?)
    }

    async fn poll_workflow_execution_update(
        &self,
        request: Request<ws::PollWorkflowExecutionUpdateRequest>,
    ) -> Reply<ws::PollWorkflowExecutionUpdateResponse> {
        let deadline = Self::default_deadline(&request);
        let request = request.into_inner();
        crate::updates::check_poll(&request, &self.frontend.limits()).map_err(to_status)?;
        let namespace = self.namespace(&request.namespace)?;
        ok(self
            .frontend
            .history
            .poll_workflow_execution_update(&namespace, request, deadline)
            .await
            .map_err(to_status)?)
    }

    async fn poll_workflow_task_queue(
        &self,
        request: Request<ws::PollWorkflowTaskQueueRequest>,
    ) -> Reply<ws::PollWorkflowTaskQueueResponse> {
        let deadline = validate::long_poll_deadline(&request).map_err(to_status)?;
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let task_queue = validate::task_queue(request.task_queue.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        let sticky = request
            .task_queue
            .as_ref()
            .is_some_and(|q| q.kind == TaskQueueKind::Sticky as i32);
        let until = poll_until(deadline);
        loop {
            let Some(found) = self
                .frontend
                .matching
                .poll_workflow_task(&namespace.id, &task_queue, sticky, &request.identity, until)
                .await
                .map_err(to_status)?
            else {
                return ok(ws::PollWorkflowTaskQueueResponse::default());
            };
            match found {
                WorkflowTaskMatch::Task(task) => {
                    let handed = HandedOut::new(
                        &self.frontend.matching,
                        &task_queue,
                        QueueKind::Workflow { sticky },
                        &task,
                    );
                    let recorded = self
                        .frontend
                        .history
                        .record_workflow_task_started(&namespace, &task, &request)
                        .await;
                    if let Some(mut response) = handed.settle(recorded) {
                        search_attributes::annotate_history(
                            response.history.as_mut(),
                            &self.custom_attributes(&namespace),
                        );
                        return ok(response);
                    }
                }
                WorkflowTaskMatch::Query {
                    query_id,
                    mut response,
                } => {
                    let execution = response.workflow_execution.clone().unwrap_or_default();
                    response.task_token = TaskToken {
                        kind: TOKEN_QUERY_TASK,
                        namespace_id: namespace.id.clone(),
                        workflow_id: execution.workflow_id,
                        run_id: execution.run_id,
                        query_id,
                        ..Default::default()
                    }
                    .encode();
                    return ok(*response);
                }
            }
        }
    }

    async fn respond_workflow_task_completed(
        &self,
        request: Request<ws::RespondWorkflowTaskCompletedRequest>,
    ) -> Reply<ws::RespondWorkflowTaskCompletedResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_WORKFLOW_TASK)?;
        let namespace = self.namespace(&request.namespace)?;
        let limits = self.frontend.limits();
        for (query_id, result) in &request.query_results {
            let answer = if result.result_type == QueryResultType::Answered as i32 {
                match validate::payloads(result.answer.as_ref(), &limits) {
                    Ok(()) => QueryAnswer::Answered(result.answer.clone()),
                    Err(error) => QueryAnswer::Refused(error.to_string()),
                }
            } else {
                QueryAnswer::Failed {
                    message: result.error_message.clone(),
                    failure: result.failure.clone().map(Box::new),
                }
            };
            let _ = self.frontend.matching.respond_query(query_id, answer).await;
        }
        let mut response = self
            .frontend
            .history
            .respond_workflow_task_completed(&namespace, token, request)
            .await
            .map_err(to_status)?;
        if let Some(task) = response.workflow_task.as_mut() {
            search_attributes::annotate_history(
                task.history.as_mut(),
                &self.custom_attributes(&namespace),
            );
        }
        ok(response)
    }

    async fn respond_workflow_task_failed(
        &self,
        request: Request<ws::RespondWorkflowTaskFailedRequest>,
    ) -> Reply<ws::RespondWorkflowTaskFailedResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_WORKFLOW_TASK)?;
        let namespace = self.namespace(&request.namespace)?;
        self.frontend
            .history
            .respond_workflow_task_failed(&namespace, token, request)
            .await
            .map_err(to_status)?;
        ok(ws::RespondWorkflowTaskFailedResponse::default())
    }

    async fn respond_query_task_completed(
        &self,
        request: Request<ws::RespondQueryTaskCompletedRequest>,
    ) -> Reply<ws::RespondQueryTaskCompletedResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_QUERY_TASK)?;
        self.namespace(&request.namespace)?;
        let answer = if request.completed_type == QueryResultType::Answered as i32 {
            // An answer over the blob limit is accepted from the worker and fails the query, as
            // Temporal does.
            match validate::payloads(request.query_result.as_ref(), &self.frontend.limits()) {
                Ok(()) => QueryAnswer::Answered(request.query_result),
                Err(error) => QueryAnswer::Failed {
                    message: error.to_string(),
                    failure: None,
                },
            }
        } else {
            QueryAnswer::Failed {
                message: request.error_message,
                failure: request.failure.map(Box::new),
            }
        };
        self.frontend
            .matching
            .respond_query(&token.query_id, answer)
            .await
            .map_err(to_status)?;
        ok(ws::RespondQueryTaskCompletedResponse::default())
    }

    async fn shutdown_worker(
        &self,
        request: Request<ws::ShutdownWorkerRequest>,
    ) -> Reply<ws::ShutdownWorkerResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        if !request.sticky_task_queue.is_empty() {
            self.frontend
                .matching
                .shutdown_worker(&namespace.id, &request.sticky_task_queue)
                .await
                .map_err(to_status)?;
        }
        ok(ws::ShutdownWorkerResponse::default())
    }

    async fn reset_sticky_task_queue(
        &self,
        request: Request<ws::ResetStickyTaskQueueRequest>,
    ) -> Reply<ws::ResetStickyTaskQueueResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let execution = validate::execution(request.execution.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        self.frontend
            .history
            .reset_sticky_task_queue(&namespace, execution)
            .await
            .map_err(to_status)?;
        ok(ws::ResetStickyTaskQueueResponse::default())
    }

    async fn record_worker_heartbeat(
        &self,
        request: Request<ws::RecordWorkerHeartbeatRequest>,
    ) -> Reply<ws::RecordWorkerHeartbeatResponse> {
        self.namespace(&request.into_inner().namespace)?;
        ok(ws::RecordWorkerHeartbeatResponse::default())
    }

    async fn poll_activity_task_queue(
        &self,
        request: Request<ws::PollActivityTaskQueueRequest>,
    ) -> Reply<ws::PollActivityTaskQueueResponse> {
        let deadline = validate::long_poll_deadline(&request).map_err(to_status)?;
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let task_queue = validate::task_queue(request.task_queue.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        let until = poll_until(deadline);
        loop {
            let Some(task) = self
                .frontend
                .matching
                .poll_activity_task(&namespace.id, &task_queue, &request.identity, until)
                .await
                .map_err(to_status)?
            else {
                return ok(ws::PollActivityTaskQueueResponse::default());
            };
            let handed = HandedOut::new(
                &self.frontend.matching,
                &task_queue,
                QueueKind::Activity,
                &task,
            );
            let recorded = self
                .frontend
                .history
                .record_activity_task_started(&namespace, &task, &request)
                .await;
            if let Some(response) = handed.settle(recorded) {
                return ok(response);
            }
        }
    }

    async fn record_activity_task_heartbeat(
        &self,
        request: Request<ws::RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<ws::RecordActivityTaskHeartbeatResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_ACTIVITY_TASK)?;
        validate::payloads(request.details.as_ref(), &self.frontend.limits()).map_err(to_status)?;
        ok(self
            .frontend
            .history
            .record_activity_task_heartbeat(token, request.details)
            .await
            .map_err(to_status)?)
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        request: Request<ws::RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<ws::RecordActivityTaskHeartbeatByIdResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let token = self
            .token_by_id(
                &namespace,
                &request.workflow_id,
                &request.run_id,
                &request.activity_id,
            )
            .await?;
        validate::payloads(request.details.as_ref(), &self.frontend.limits()).map_err(to_status)?;
        let response = self
            .frontend
            .history
            .record_activity_task_heartbeat(token, request.details)
            .await
            .map_err(to_status)?;
        ok(ws::RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: response.cancel_requested,
            activity_paused: response.activity_paused,
            activity_reset: response.activity_reset,
        })
    }

    async fn respond_activity_task_completed(
        &self,
        request: Request<ws::RespondActivityTaskCompletedRequest>,
    ) -> Reply<ws::RespondActivityTaskCompletedResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_ACTIVITY_TASK)?;
        validate::payloads(request.result.as_ref(), &self.frontend.limits()).map_err(to_status)?;
        self.frontend
            .history
            .respond_activity_task_completed(token, request.result, request.identity)
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskCompletedResponse::default())
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        request: Request<ws::RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskCompletedByIdResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let token = self
            .token_by_id(
                &namespace,
                &request.workflow_id,
                &request.run_id,
                &request.activity_id,
            )
            .await?;
        validate::payloads(request.result.as_ref(), &self.frontend.limits()).map_err(to_status)?;
        self.frontend
            .history
            .respond_activity_task_completed(token, request.result, request.identity)
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskCompletedByIdResponse::default())
    }

    async fn respond_activity_task_failed(
        &self,
        request: Request<ws::RespondActivityTaskFailedRequest>,
    ) -> Reply<ws::RespondActivityTaskFailedResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_ACTIVITY_TASK)?;
        let Some(failure) = request.failure else {
            return Err(to_status(Error::invalid("Failure is not set on request.")));
        };
        self.frontend
            .history
            .respond_activity_task_failed(
                token,
                failure,
                request.last_heartbeat_details,
                request.identity,
            )
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskFailedResponse::default())
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        request: Request<ws::RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskFailedByIdResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let Some(failure) = request.failure else {
            return Err(to_status(Error::invalid("Failure is not set on request.")));
        };
        let token = self
            .token_by_id(
                &namespace,
                &request.workflow_id,
                &request.run_id,
                &request.activity_id,
            )
            .await?;
        self.frontend
            .history
            .respond_activity_task_failed(
                token,
                failure,
                request.last_heartbeat_details,
                request.identity,
            )
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskFailedByIdResponse::default())
    }

    async fn respond_activity_task_canceled(
        &self,
        request: Request<ws::RespondActivityTaskCanceledRequest>,
    ) -> Reply<ws::RespondActivityTaskCanceledResponse> {
        let request = request.into_inner();
        let token = token(&request.task_token, TOKEN_ACTIVITY_TASK)?;
        self.frontend
            .history
            .respond_activity_task_canceled(token, request.details, request.identity)
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskCanceledResponse::default())
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        request: Request<ws::RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskCanceledByIdResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let token = self
            .token_by_id(
                &namespace,
                &request.workflow_id,
                &request.run_id,
                &request.activity_id,
            )
            .await?;
        self.frontend
            .history
            .respond_activity_task_canceled(token, request.details, request.identity)
            .await
            .map_err(to_status)?;
        ok(ws::RespondActivityTaskCanceledByIdResponse::default())
    }

    async fn list_workflow_executions(
        &self,
        request: Request<ws::ListWorkflowExecutionsRequest>,
    ) -> Reply<ws::ListWorkflowExecutionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let store = self.frontend.store.as_ref();
        ok(visibility::list(store, &self.scope(&namespace), &request)
            .await
            .map_err(to_status)?)
    }

    async fn scan_workflow_executions(
        &self,
        request: Request<ws::ScanWorkflowExecutionsRequest>,
    ) -> Reply<ws::ScanWorkflowExecutionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let list = ws::ListWorkflowExecutionsRequest {
            namespace: request.namespace,
            page_size: request.page_size,
            next_page_token: request.next_page_token,
            query: request.query,
        };
        let store = self.frontend.store.as_ref();
        let page = visibility::list(store, &self.scope(&namespace), &list)
            .await
            .map_err(to_status)?;
        ok(ws::ScanWorkflowExecutionsResponse {
            executions: page.executions,
            next_page_token: page.next_page_token,
        })
    }

    async fn count_workflow_executions(
        &self,
        request: Request<ws::CountWorkflowExecutionsRequest>,
    ) -> Reply<ws::CountWorkflowExecutionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let store = self.frontend.store.as_ref();
        ok(visibility::count(store, &self.scope(&namespace), &request)
            .await
            .map_err(to_status)?)
    }

    async fn list_open_workflow_executions(
        &self,
        request: Request<ws::ListOpenWorkflowExecutionsRequest>,
    ) -> Reply<ws::ListOpenWorkflowExecutionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let store = self.frontend.store.as_ref();
        ok(
            visibility::list_open(store, &self.scope(&namespace), &request)
                .await
                .map_err(to_status)?,
        )
    }

    async fn list_closed_workflow_executions(
        &self,
        request: Request<ws::ListClosedWorkflowExecutionsRequest>,
    ) -> Reply<ws::ListClosedWorkflowExecutionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let store = self.frontend.store.as_ref();
        ok(
            visibility::list_closed(store, &self.scope(&namespace), &request)
                .await
                .map_err(to_status)?,
        )
    }

    async fn describe_task_queue(
        &self,
        request: Request<ws::DescribeTaskQueueRequest>,
    ) -> Reply<ws::DescribeTaskQueueResponse> {
        use sundial_proto::api::enums::v1::{DescribeTaskQueueMode, TaskQueueType};
        use sundial_proto::api::taskqueue::v1::{
            TaskQueue, TaskQueueStatus, TaskQueueTypeInfo, TaskQueueVersionInfo,
        };
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        // A partition may be named directly (`/_sys/<queue>/<n>`, as the CLI's legacy mode does).
        let requested = request.task_queue.as_ref().map_or("", |q| q.name.as_str());
        let (queue, partition) = sundial_rpc::parse_partition_name(requested);
        let one_partition = requested.starts_with("/_sys/").then_some(partition);
        let base = TaskQueue {
            name: queue.to_string(),
            ..request.task_queue.clone().unwrap_or_default()
        };
        let task_queue =
            validate::task_queue(Some(&base), &self.frontend.limits()).map_err(to_status)?;
        let matching = &self.frontend.matching;
        let is_activity = |task_type: i32| task_type == TaskQueueType::Activity as i32;
        #[allow(deprecated)]
        if request.api_mode == DescribeTaskQueueMode::Enhanced as i32 {
            // Aggregated over all partitions, per task type, under the unversioned build id.
            let mut types = request.task_queue_types.clone();
            if types.is_empty() {
                types = vec![
                    TaskQueueType::Workflow as i32,
                    TaskQueueType::Activity as i32,
                ];
            }
            let mut types_info = HashMap::new();
            for task_type in types {
                let partitions = matching
                    .describe_task_queue(&namespace.id, &task_queue, is_activity(task_type))
                    .await
                    .map_err(to_status)?;
                let summary = summarize_partitions(&partitions, None);
                types_info.insert(
                    task_type,
                    TaskQueueTypeInfo {
                        pollers: if request.report_pollers {
                            summary.0
                        } else {
                            Vec::new()
                        },
                        stats: request.report_stats.then_some(summary.1),
                    },
                );
            }
            let info = TaskQueueVersionInfo {
                types_info,
                task_reachability: 0,
            };
            return ok(ws::DescribeTaskQueueResponse {
                versions_info: HashMap::from([(String::new(), info)]),
                ..Default::default()
            });
        }
        let partitions = matching
            .describe_task_queue(
                &namespace.id,
                &task_queue,
                is_activity(request.task_queue_type),
            )
            .await
            .map_err(to_status)?;
        let (pollers, stats) = summarize_partitions(&partitions, one_partition);
        #[allow(deprecated)]
        let task_queue_status = request.include_task_queue_status.then(|| {
            // Legacy status describes one partition: the root unless another is named.
            let one = partitions.iter().find(|p| p.index == partition);
            let added = one.map_or(0, |p| p.added);
            let backlog = one.map_or(0, |p| p.backlog);
            TaskQueueStatus {
                backlog_count_hint: backlog,
                read_level: added,
                ack_level: added - backlog,
                // Sundial does not throttle dispatch; Temporal reports this rate when unlimited.
                rate_per_second: 100_000.0,
                task_id_block: None,
            }
        });
        #[allow(deprecated)]
        ok(ws::DescribeTaskQueueResponse {
            pollers,
            stats: request.report_stats.then_some(stats),
            task_queue_status,
            ..Default::default()
        })
    }

    async fn list_task_queue_partitions(
        &self,
        request: Request<ws::ListTaskQueuePartitionsRequest>,
    ) -> Reply<ws::ListTaskQueuePartitionsResponse> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let task_queue = validate::task_queue(request.task_queue.as_ref(), &self.frontend.limits())
            .map_err(to_status)?;
        let mut counts = [0; 2];
        for (count, activity) in counts.iter_mut().zip([true, false]) {
            *count = self
                .frontend
                .matching
                .read_partitions(&namespace.id, &task_queue, activity)
                .await
                .map_err(to_status)?;
        }
        let list = |count: usize| {
            (0..count)
                .map(
                    |index| sundial_proto::api::taskqueue::v1::TaskQueuePartitionMetadata {
                        key: sundial_rpc::partition_name(&task_queue, index),
                        // Matching runs inside this process.
                        owner_host_name: "in-process".into(),
                    },
                )
                .collect()
        };
        ok(ws::ListTaskQueuePartitionsResponse {
            activity_task_queue_partitions: list(counts[0]),
            workflow_task_queue_partitions: list(counts[1]),
        })
    }

    async fn get_search_attributes(
        &self,
        _request: Request<ws::GetSearchAttributesRequest>,
    ) -> Reply<ws::GetSearchAttributesResponse> {
        ok(ws::GetSearchAttributesResponse {
            keys: crate::operator::system_search_attributes(),
        })
    }
}

/// Pollers (each identity once, latest poll) and backlog statistics of a queue's partitions,
/// or of one partition. Describing the whole queue lists every worker: idle polls wait at the
/// root in Temporal too.
fn summarize_partitions(
    partitions: &[sundial_rpc::PartitionDescription],
    only: Option<usize>,
) -> (
    Vec<sundial_proto::api::taskqueue::v1::PollerInfo>,
    sundial_proto::api::taskqueue::v1::TaskQueueStats,
) {
    use sundial_proto::api::taskqueue::v1::{PollerInfo, TaskQueueStats};
    let chosen: Vec<_> = partitions
        .iter()
        .filter(|p| only.is_none_or(|index| p.index == index))
        .collect();
    let seen_at = |info: &PollerInfo| info.last_access_time.as_ref().map(|t| (t.seconds, t.nanos));
    let mut pollers: Vec<PollerInfo> = Vec::new();
    for poller in chosen.iter().flat_map(|p| p.pollers.iter()) {
        match pollers.iter_mut().find(|p| p.identity == poller.identity) {
            Some(known) if seen_at(poller) > seen_at(known) => *known = poller.clone(),
            Some(_) => {}
            None => pollers.push(poller.clone()),
        }
    }
    let age = chosen
        .iter()
        .filter_map(|p| p.oldest_backlog)
        .min()
        .and_then(|at| at.elapsed().ok())
        .unwrap_or_default();
    let stats = TaskQueueStats {
        approximate_backlog_count: chosen.iter().map(|p| p.backlog).sum(),
        approximate_backlog_age: Some(sundial_proto::prost_types::Duration {
            seconds: age.as_secs() as i64,
            nanos: age.subsec_nanos() as i32,
        }),
        ..Default::default()
    };
    (pollers, stats)
}
