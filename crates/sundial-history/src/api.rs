//! The history API: one method per RPC that reaches history, in the order of the workflow's
//! life. Each resolves the run, runs the core under the run's lock, and builds the response.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use prost::Message;
use sundial_common::{Error, Result, WorkflowKey, new_run_id, new_uuid};
use sundial_history_core::util::{duration_ms, timestamp};
use sundial_history_core::{self as core, StartRequest};
use sundial_proto::api::common::v1::{Payloads, WorkerVersionStamp, WorkflowExecution};
use sundial_proto::api::deployment::v1::WorkerDeploymentVersion;
use sundial_proto::api::enums::v1::{
    HistoryEventFilterType, QueryRejectCondition, WorkerVersioningMode, WorkflowExecutionStatus,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowTaskFailedCause,
};
use sundial_proto::api::failure::v1::Failure;
use sundial_proto::api::history::v1::{
    History, HistoryEvent, WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
};
use sundial_proto::api::query::v1::{QueryRejected, WorkflowQuery};
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::{
    HistoryApi, NamespaceRef, ParentExecutionInfo, QueryAnswer, TOKEN_ACTIVITY_TASK,
    TOKEN_WORKFLOW_TASK, TaskRef, TaskToken,
};

use crate::engine::{HistoryService, Inner};
use crate::responses::{self, HistoryToken, MAX_PAGE_SIZE, read_page};

const LONG_POLL: Duration = Duration::from_secs(20);

fn already_started(message: String, start_request_id: String, run_id: String) -> Error {
    Error::WorkflowAlreadyStarted {
        message,
        start_request_id,
        run_id,
    }
}

/// Drops a workflow id's start lock from the slot map when its start is done, so finished
/// starts do not each leave an entry behind.
struct IdLockRelease<'a> {
    inner: &'a Inner,
    key: WorkflowKey,
}

impl Drop for IdLockRelease<'_> {
    fn drop(&mut self) {
        self.inner.release_unused_slot(&self.key);
    }
}

/// Called with a run about to be created, before it is written (update-with-start admits its
/// update here, so the run's first workflow task carries it).
pub(crate) type OnCreate<'a> =
    &'a (dyn Fn(&WorkflowKey, &core::state::MutableState) -> Result<()> + Sync);

impl Inner {
    /// Starts a run, applying the request-id dedupe and the conflict and reuse policies.
    pub(crate) async fn start_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
        parent: Option<ParentExecutionInfo>,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        self.start_workflow_with(namespace, request, signal, parent, None)
            .await
    }

    /// `start_workflow`, calling `on_create` with the new run when one is created.
    pub(crate) async fn start_workflow_with(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
        parent: Option<ParentExecutionInfo>,
        on_create: Option<OnCreate<'_>>,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        let id_lock_key = WorkflowKey::new(
            namespace.id.clone(),
            request.workflow_id.clone(),
            String::new(),
        );
        // Declared first so it runs last: forgets the lock once nobody holds or awaits it.
        let _release = IdLockRelease {
            inner: self,
            key: id_lock_key.clone(),
        };
        let id_lock = self.id_lock(&id_lock_key);
        let _held = id_lock.lock().await;
        let request_id = if request.request_id.is_empty() {
            new_uuid()
        } else {
            request.request_id.clone()
        };
        let mut conflict = WorkflowIdConflictPolicy::try_from(request.workflow_id_conflict_policy)
            .unwrap_or(WorkflowIdConflictPolicy::Unspecified);
        let mut reuse = WorkflowIdReusePolicy::try_from(request.workflow_id_reuse_policy)
            .unwrap_or(WorkflowIdReusePolicy::Unspecified);
        if conflict == WorkflowIdConflictPolicy::Unspecified {
            if reuse == WorkflowIdReusePolicy::TerminateIfRunning {
                conflict = WorkflowIdConflictPolicy::TerminateExisting;
                reuse = WorkflowIdReusePolicy::AllowDuplicate;
            } else {
                conflict = WorkflowIdConflictPolicy::Fail;
            }
        }
        if reuse == WorkflowIdReusePolicy::Unspecified {
            reuse = WorkflowIdReusePolicy::AllowDuplicate;
        }
        let current = self
            .store
            .get_current_execution(&namespace.id, &request.workflow_id)
            .await?;
        let mut expected_current = None;
        if let Some(current) = current {
            expected_current = Some(current.run_id.clone());
            let current_key = WorkflowKey::new(
                namespace.id.clone(),
                request.workflow_id.clone(),
                current.run_id.clone(),
            );
            if current.start_request_id == request_id {
                return Ok(ws::StartWorkflowExecutionResponse {
                    run_id: current.run_id,
                    started: true,
                    status: current.status,
                    ..Default::default()
                });
            }
            if current.status == WorkflowExecutionStatus::Running as i32 {
                match conflict {
                    WorkflowIdConflictPolicy::UseExisting => {
                        return Ok(ws::StartWorkflowExecutionResponse {
                            run_id: current.run_id,
                            started: false,
                            status: WorkflowExecutionStatus::Running as i32,
                            ..Default::default()
                        });
                    }
                    WorkflowIdConflictPolicy::TerminateExisting => {
                        let new_run_hint = fresh_run_id(signal.is_some());
                        let reason = "TerminateIfRunning WorkflowIdReusePolicy".to_string();
                        let details = Payloads {
                            payloads: vec![json_payload(&format!(
                                "terminated by new runID: {new_run_hint}"
                            ))],
                        };
                        self.update(&current_key, |state, env| {
                            Ok((
                                core::terminate(
                                    state,
                                    env,
                                    reason,
                                    Some(details),
                                    "history-service".into(),
                                )?,
                                (),
                            ))
                        })
                        .await
                        .map_err(|error| match error {
                            Error::NotFound(_) => {
                                Error::Unavailable("workflow closed while terminating it".into())
                            }
                            other => other,
                        })?;
                        return self
                            .create(
                                namespace,
                                request,
                                request_id,
                                signal,
                                parent,
                                expected_current,
                                Some(new_run_hint),
                                on_create,
                            )
                            .await;
                    }
                    _ => {
                        return Err(already_started(
                            format!(
                                "Workflow execution is already running. WorkflowId: {}, RunId: {}.",
                                request.workflow_id, current.run_id
                            ),
                            current.start_request_id,
                            current.run_id,
                        ));
                    }
                }
            }
            let completed = current.status == WorkflowExecutionStatus::Completed as i32
                || current.status == WorkflowExecutionStatus::ContinuedAsNew as i32;
            match reuse {
                WorkflowIdReusePolicy::RejectDuplicate => {
                    return Err(already_started(
                        format!(
                            "Workflow execution already finished. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: reject duplicate workflow Id.",
                            request.workflow_id, current.run_id
                        ),
                        current.start_request_id,
                        current.run_id,
                    ));
                }
                WorkflowIdReusePolicy::AllowDuplicateFailedOnly if completed => {
                    return Err(already_started(
                        format!(
                            "Workflow execution already finished successfully. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: allow duplicate workflow Id if last run failed.",
                            request.workflow_id, current.run_id
                        ),
                        current.start_request_id,
                        current.run_id,
                    ));
                }
                _ => {}
            }
        }
        self.create(
            namespace,
            request,
            request_id,
            signal,
            parent,
            expected_current,
            None,
            on_create,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        request_id: String,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
        parent: Option<ParentExecutionInfo>,
        expected_current: Option<String>,
        run_id: Option<String>,
        on_create: Option<OnCreate<'_>>,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        let run_id = run_id.unwrap_or_else(|| fresh_run_id(signal.is_some()));
        let limits = self.limits();
        let retry_policy = match request.retry_policy.clone() {
            Some(policy) => {
                let filled = core::retry::with_defaults(Some(policy), &limits);
                core::retry::validate(&filled).map_err(Error::invalid)?;
                Some(filled)
            }
            None => None,
        };
        let mut attributes = WorkflowExecutionStartedEventAttributes {
            workflow_type: request.workflow_type.clone(),
            task_queue: request.task_queue.clone(),
            input: request.input.clone(),
            workflow_execution_timeout: request.workflow_execution_timeout,
            workflow_run_timeout: request.workflow_run_timeout,
            workflow_task_timeout: request.workflow_task_timeout,
            identity: request.identity.clone(),
            retry_policy,
            cron_schedule: request.cron_schedule.clone(),
            memo: request.memo.clone(),
            search_attributes: request.search_attributes.clone(),
            header: request.header.clone(),
            continued_failure: request.continued_failure.clone(),
            last_completion_result: request.last_completion_result.clone(),
            priority: request.priority.clone(),
            ..Default::default()
        };
        if let Some(parent) = parent {
            attributes.parent_workflow_namespace = parent.namespace;
            attributes.parent_workflow_namespace_id = parent.namespace_id;
            attributes.parent_workflow_execution = Some(parent.execution);
            attributes.parent_initiated_event_id = parent.initiated_event_id;
            attributes.root_workflow_execution = parent.root;
        }
        let start = StartRequest {
            namespace_id: namespace.id.clone(),
            workflow_id: request.workflow_id.clone(),
            run_id: run_id.clone(),
            request_id: request_id.clone(),
            attributes,
            first_task_backoff_ms: duration_ms(request.workflow_start_delay.as_ref()),
            signal,
            user_metadata: request.user_metadata.clone(),
        };
        let (now_ms, limits) = self.env_parts();
        let new_id = new_uuid;
        let env = core::Env {
            now_ms,
            limits: &limits,
            new_id: &new_id,
        };
        let (state, transition) = core::new_execution(&env, start)?;
        let key = WorkflowKey::new(
            namespace.id.clone(),
            request.workflow_id.clone(),
            run_id.clone(),
        );
        if let Some(on_create) = on_create {
            on_create(&key, &state)?;
        }
        if let Err(error) = self
            .create_run(&key, state, transition, expected_current, &request_id)
            .await
        {
            // What `on_create` left for the run (an admitted update) goes with it.
            for notice in self.updates.drop_run(&key) {
                notice.send();
            }
            return Err(error);
        }
        Ok(ws::StartWorkflowExecutionResponse {
            run_id,
            started: true,
            status: WorkflowExecutionStatus::Running as i32,
            ..Default::default()
        })
    }

    pub(crate) async fn signal(
        &self,
        namespace: &NamespaceRef,
        execution: &WorkflowExecution,
        attributes: WorkflowExecutionSignaledEventAttributes,
    ) -> Result<()> {
        let key = self.resolve(&namespace.id, execution).await?;
        self.update(&key, |state, env| {
            Ok((core::signal(state, env, attributes)?, ()))
        })
        .await
    }

    /// A cancel request from another workflow; a target that has closed is `NotFound`.
    pub(crate) async fn request_cancel_from_workflow(
        &self,
        namespace: &NamespaceRef,
        execution: &WorkflowExecution,
        attributes: WorkflowExecutionCancelRequestedEventAttributes,
        request_id: &str,
    ) -> Result<()> {
        let key = self.resolve(&namespace.id, execution).await?;
        self.update(&key, |state, env| {
            if !state.is_running() {
                return Err(Error::not_found("workflow execution already completed"));
            }
            Ok((
                core::request_cancel(state, env, attributes, request_id)?,
                (),
            ))
        })
        .await
    }

    fn token_key(token: &TaskToken) -> WorkflowKey {
        WorkflowKey::new(
            token.namespace_id.clone(),
            token.workflow_id.clone(),
            token.run_id.clone(),
        )
    }

    /// Waits until the run changes or the wait ends; returns false on timeout.
    async fn wait_for_change(
        &self,
        receiver: &mut tokio::sync::watch::Receiver<u64>,
        until: Instant,
    ) -> bool {
        matches!(
            tokio::time::timeout_at(until.into(), receiver.changed()).await,
            Ok(Ok(()))
        )
    }
}

/// A workflow task token names the task that is started now: a speculative task that vanished
/// has the same ids as the one made after it, but not the same started time.
fn check_started_time(state: &core::state::MutableState, token: &TaskToken) -> Result<()> {
    let stale = token.started_time_ms != 0
        && state
            .started_workflow_task()
            .is_some_and(|task| task.started_time_ms != token.started_time_ms);
    if stale {
        return Err(Error::not_found("Workflow task not found."));
    }
    Ok(())
}

fn json_payload(text: &str) -> sundial_proto::api::common::v1::Payload {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("encoding".to_string(), b"json/plain".to_vec());
    sundial_proto::api::common::v1::Payload {
        metadata,
        data: format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")).into_bytes(),
        ..Default::default()
    }
}

#[async_trait]
impl HistoryApi for HistoryService {
    async fn start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        self.inner
            .start_workflow(namespace, request, None, None)
            .await
    }

    async fn signal_with_start_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWithStartWorkflowExecutionRequest,
    ) -> Result<ws::SignalWithStartWorkflowExecutionResponse> {
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: request.signal_name.clone(),
            input: request.signal_input.clone(),
            identity: request.identity.clone(),
            header: request.header.clone(),
            ..Default::default()
        };
        let conflict = WorkflowIdConflictPolicy::try_from(request.workflow_id_conflict_policy)
            .unwrap_or(WorkflowIdConflictPolicy::Unspecified);
        if conflict != WorkflowIdConflictPolicy::TerminateExisting
            && let Some(current) = self
                .inner
                .store
                .get_current_execution(&namespace.id, &request.workflow_id)
                .await?
            && current.status == WorkflowExecutionStatus::Running as i32
        {
            let execution = WorkflowExecution {
                workflow_id: request.workflow_id.clone(),
                run_id: current.run_id.clone(),
            };
            match self
                .inner
                .signal(namespace, &execution, signal.clone())
                .await
            {
                Ok(()) => {
                    return Ok(ws::SignalWithStartWorkflowExecutionResponse {
                        run_id: current.run_id,
                        started: false,
                        ..Default::default()
                    });
                }
                Err(Error::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let start = ws::StartWorkflowExecutionRequest {
            namespace: request.namespace.clone(),
            workflow_id: request.workflow_id.clone(),
            workflow_type: request.workflow_type.clone(),
            task_queue: request.task_queue.clone(),
            input: request.input.clone(),
            workflow_execution_timeout: request.workflow_execution_timeout,
            workflow_run_timeout: request.workflow_run_timeout,
            workflow_task_timeout: request.workflow_task_timeout,
            identity: request.identity.clone(),
            request_id: request.request_id.clone(),
            workflow_id_reuse_policy: request.workflow_id_reuse_policy,
            workflow_id_conflict_policy: if conflict == WorkflowIdConflictPolicy::Unspecified {
                WorkflowIdConflictPolicy::UseExisting as i32
            } else {
                conflict as i32
            },
            retry_policy: request.retry_policy.clone(),
            cron_schedule: request.cron_schedule.clone(),
            memo: request.memo.clone(),
            search_attributes: request.search_attributes.clone(),
            header: request.header.clone(),
            workflow_start_delay: request.workflow_start_delay,
            user_metadata: request.user_metadata.clone(),
            priority: request.priority.clone(),
            ..Default::default()
        };
        let response = self
            .inner
            .start_workflow(namespace, start, Some(signal.clone()), None)
            .await?;
        if !response.started {
            // Another start won the race and is running: signal it.
            let execution = WorkflowExecution {
                workflow_id: request.workflow_id.clone(),
                run_id: response.run_id.clone(),
            };
            self.inner.signal(namespace, &execution, signal).await?;
        }
        Ok(ws::SignalWithStartWorkflowExecutionResponse {
            run_id: response.run_id,
            started: response.started,
            ..Default::default()
        })
    }

    async fn signal_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let attributes = WorkflowExecutionSignaledEventAttributes {
            signal_name: request.signal_name,
            input: request.input,
            identity: request.identity,
            header: request.header,
            request_id: request.request_id,
            ..Default::default()
        };
        self.inner.signal(namespace, &execution, attributes).await
    }

    async fn request_cancel_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        if !request.first_execution_run_id.is_empty() {
            let state = self.inner.read_state(&key).await?;
            if state.info().first_execution_run_id != request.first_execution_run_id {
                return Err(Error::not_found("workflow execution not found"));
            }
        }
        let attributes = WorkflowExecutionCancelRequestedEventAttributes {
            cause: request.reason.clone(),
            identity: request.identity.clone(),
            ..Default::default()
        };
        let request_id = request.request_id.clone();
        self.inner
            .update(&key, |state, env| {
                Ok((
                    core::request_cancel(state, env, attributes, &request_id)?,
                    (),
                ))
            })
            .await
    }

    async fn terminate_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::TerminateWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        if !request.first_execution_run_id.is_empty() {
            let state = self.inner.read_state(&key).await?;
            if state.info().first_execution_run_id != request.first_execution_run_id {
                return Err(Error::not_found("workflow execution not found"));
            }
        }
        let (reason, details, identity) = (request.reason, request.details, request.identity);
        self.inner
            .update(&key, |state, env| {
                Ok((core::terminate(state, env, reason, details, identity)?, ()))
            })
            .await
    }

    async fn describe_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::DescribeWorkflowExecutionRequest,
    ) -> Result<ws::DescribeWorkflowExecutionResponse> {
        let execution = request.execution.clone().unwrap_or_default();
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        let state = self.inner.read_state(&key).await?;
        Ok(responses::describe(&state))
    }

    async fn get_workflow_execution_history(
        &self,
        namespace: &NamespaceRef,
        request: ws::GetWorkflowExecutionHistoryRequest,
        deadline: Instant,
    ) -> Result<ws::GetWorkflowExecutionHistoryResponse> {
        let execution = request.execution.clone().unwrap_or_default();
        // A token that does not decode is refused before the workflow is looked up, as in
        // Temporal.
        let given = if request.next_page_token.is_empty() {
            None
        } else {
            Some(
                HistoryToken::decode(request.next_page_token.as_slice())
                    .map_err(|_| Error::invalid("Invalid NextPageToken."))?,
            )
        };
        let key = match given {
            Some(token) if execution.run_id.is_empty() && !token.run_id.is_empty() => {
                WorkflowKey::new(
                    namespace.id.clone(),
                    execution.workflow_id.clone(),
                    token.run_id,
                )
            }
            _ => self.inner.resolve(&namespace.id, &execution).await?,
        };
        let token = HistoryToken::parse(&request.next_page_token, &key.run_id)?;
        let page_size = match request.maximum_page_size {
            size if size <= 0 => MAX_PAGE_SIZE,
            size => (size as usize).min(MAX_PAGE_SIZE),
        };
        let filter = HistoryEventFilterType::try_from(request.history_event_filter_type)
            .unwrap_or(HistoryEventFilterType::AllEvent);
        let wait_until = (Instant::now() + LONG_POLL).min(
            deadline
                .checked_sub(Duration::from_millis(500))
                .unwrap_or(deadline),
        );
        let mut receiver = self.inner.subscribe(&key);
        if filter == HistoryEventFilterType::CloseEvent {
            loop {
                let state = self.inner.read_state(&key).await?;
                if !state.is_running() {
                    let events = state.info().close_event.clone().into_iter().collect();
                    return Ok(ws::GetWorkflowExecutionHistoryResponse {
                        history: Some(History { events }),
                        ..Default::default()
                    });
                }
                let next_token = HistoryToken {
                    run_id: key.run_id.clone(),
                    next_event_id: state.info().next_event_id,
                }
                .encode_to_vec();
                if !request.wait_new_event {
                    // Temporal answers a plain read of a running run's close event with nothing.
                    return Ok(ws::GetWorkflowExecutionHistoryResponse {
                        history: Some(History::default()),
                        ..Default::default()
                    });
                }
                if !self.inner.wait_for_change(&mut receiver, wait_until).await {
                    return Ok(ws::GetWorkflowExecutionHistoryResponse {
                        history: Some(History::default()),
                        next_page_token: next_token,
                        ..Default::default()
                    });
                }
            }
        }
        let from = token.as_ref().map(|token| token.next_event_id).unwrap_or(1);
        loop {
            let state = self.inner.read_state(&key).await?;
            let next_event_id = state.info().next_event_id;
            let running = state.is_running();
            if from < next_event_id || !running || !request.wait_new_event {
                let (mut events, mut next_token) =
                    read_page(&self.inner, &key, from, next_event_id, page_size).await?;
                if next_token.is_empty() && running {
                    if request.wait_new_event {
                        let last = events
                            .last()
                            .map(|event| event.event_id + 1)
                            .unwrap_or(from);
                        next_token = HistoryToken {
                            run_id: key.run_id.clone(),
                            next_event_id: last,
                        }
                        .encode_to_vec();
                    } else {
                        events.extend(core::history_suffix_for_transient(&state));
                    }
                }
                return Ok(ws::GetWorkflowExecutionHistoryResponse {
                    history: Some(History { events }),
                    next_page_token: next_token,
                    ..Default::default()
                });
            }
            if !self.inner.wait_for_change(&mut receiver, wait_until).await {
                let next_token = HistoryToken {
                    run_id: key.run_id.clone(),
                    next_event_id: from,
                }
                .encode_to_vec();
                return Ok(ws::GetWorkflowExecutionHistoryResponse {
                    history: Some(History::default()),
                    next_page_token: next_token,
                    ..Default::default()
                });
            }
        }
    }

    async fn query_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<ws::QueryWorkflowResponse> {
        let execution = request.execution.clone().unwrap_or_default();
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        let query = request.query.clone().unwrap_or_default();
        if query.query_type.is_empty() {
            return Err(Error::invalid("QueryType is not set on request."));
        }
        let mut receiver = self.inner.subscribe(&key);
        let state = loop {
            let state = self.inner.read_state(&key).await?;
            let status = state.info().status;
            if !state.is_running() {
                let condition = QueryRejectCondition::try_from(request.query_reject_condition)
                    .unwrap_or(QueryRejectCondition::None);
                let rejected = match condition {
                    QueryRejectCondition::NotOpen => true,
                    QueryRejectCondition::NotCompletedCleanly => {
                        status != WorkflowExecutionStatus::Completed as i32
                    }
                    _ => false,
                };
                if rejected {
                    return Ok(ws::QueryWorkflowResponse {
                        query_rejected: Some(QueryRejected { status }),
                        ..Default::default()
                    });
                }
                if state.info().last_completed_wft_started_id == 0 {
                    return Err(Error::WorkflowNotReady(
                        "Workflow execution closed before WorkflowTaskStarted event".into(),
                    ));
                }
                break state;
            }
            if state
                .workflow_task
                .as_ref()
                .is_some_and(|task| task.attempt >= 3)
            {
                return Err(Error::WorkflowNotReady(
                    "Unable to query workflow due to Workflow Task in failed state.".into(),
                ));
            }
            // A query for a run with a workflow task rides on the next task a worker gets: this
            // one if it is not started yet, else the one that follows it (returned inline to the
            // worker that heartbeats its task while a local activity runs). If the started task
            // ends with no task after it, the query goes to a worker as a query task instead.
            if state.workflow_task.is_some()
                && let Some((query_id, mut answer)) =
                    self.inner.attach_query(&key, query.clone()).await?
            {
                let until = deadline
                    .checked_sub(Duration::from_millis(500))
                    .unwrap_or(deadline);
                // `None`: no answer in time; `Some(None)`: no task will carry it.
                let outcome = loop {
                    tokio::select! {
                        outcome = &mut answer => break outcome.ok().map(Some),
                        changed = self.inner.wait_for_change(&mut receiver, until) => {
                            if !changed {
                                break None;
                            }
                            if self.inner.take_undeliverable_query(&key, &query_id).await? {
                                break Some(None);
                            }
                        }
                    }
                };
                self.inner.query_waiters.lock().remove(&query_id);
                if let Some(queries) = self.inner.attached_queries.lock().get_mut(&key) {
                    queries.retain(|(id, _)| *id != query_id);
                }
                let outcome = match outcome {
                    Some(None) => continue,
                    Some(Some(answer)) => Some(answer),
                    None => None,
                };
                return match outcome {
                    Some(QueryAnswer::Answered(result)) => Ok(ws::QueryWorkflowResponse {
                        query_result: result,
                        ..Default::default()
                    }),
                    Some(QueryAnswer::Failed { message, failure }) => Err(Error::QueryFailed {
                        message,
                        failure: failure.map(|f| f.encode_to_vec()),
                    }),
                    Some(QueryAnswer::Refused(message)) => Err(Error::invalid(message)),
                    _ => Err(Error::DeadlineExceeded(
                        "query timed out before a worker answered".into(),
                    )),
                };
            }
            let task_started = state
                .workflow_task
                .as_ref()
                .is_some_and(|task| task.started_event_id > 0);
            if state.info().last_completed_wft_started_id > 0 && !task_started {
                break state;
            }
            let until = deadline
                .checked_sub(Duration::from_secs(1))
                .unwrap_or(deadline);
            if !self.inner.wait_for_change(&mut receiver, until).await {
                return Err(Error::WorkflowNotReady(
                    "Workflow task is not scheduled yet.".into(),
                ));
            }
        };
        let info = state.info();
        let events = self
            .inner
            .store
            .read_history(
                &key.namespace_id,
                &key.run_id,
                1,
                info.next_event_id,
                usize::MAX,
            )
            .await?;
        let response = ws::PollWorkflowTaskQueueResponse {
            workflow_execution: Some(responses::execution(&state)),
            workflow_type: Some(responses::workflow_type(&state)),
            // A query task is no workflow task: Temporal sends attempt 1 and no started event.
            previous_started_event_id: info.last_completed_wft_started_id,
            attempt: 1,
            history: Some(History { events }),
            query: Some(WorkflowQuery {
                query_type: query.query_type,
                query_args: query.query_args,
                header: query.header,
            }),
            workflow_execution_task_queue: Some(responses::normal_task_queue(&state)),
            ..Default::default()
        };
        let answer_deadline = deadline
            .checked_sub(Duration::from_millis(500))
            .unwrap_or(deadline);
        match self
            .inner
            .matching
            .query(&namespace.id, &info.task_queue, response, answer_deadline)
            .await?
        {
            QueryAnswer::Answered(result) => Ok(ws::QueryWorkflowResponse {
                query_result: result,
                ..Default::default()
            }),
            QueryAnswer::Failed { message, failure } => Err(Error::QueryFailed {
                message,
                failure: failure.map(|f| f.encode_to_vec()),
            }),
            QueryAnswer::Refused(message) => Err(Error::invalid(message)),
        }
    }

    async fn update_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<ws::UpdateWorkflowExecutionResponse> {
        let request_id = request
            .request
            .as_ref()
            .map(|update| update.request_id.clone())
            .unwrap_or_default();
        let answer = self
            .inner
            .update_workflow(&namespace.id, request, deadline)
            .await?;
        Ok(answer.response(&namespace.name, &request_id))
    }

    async fn update_with_start(
        &self,
        namespace: &NamespaceRef,
        start: ws::StartWorkflowExecutionRequest,
        update: ws::UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<sundial_rpc::UpdateWithStart> {
        self.inner
            .update_with_start(namespace, start, update, deadline)
            .await
    }

    async fn poll_workflow_execution_update(
        &self,
        namespace: &NamespaceRef,
        request: ws::PollWorkflowExecutionUpdateRequest,
        deadline: Instant,
    ) -> Result<ws::PollWorkflowExecutionUpdateResponse> {
        let answer = self
            .inner
            .poll_update(&namespace.id, request, deadline)
            .await?;
        Ok(ws::PollWorkflowExecutionUpdateResponse {
            update_ref: Some(answer.update_ref()),
            outcome: answer.outcome,
            stage: answer.stage as i32,
        })
    }

    async fn record_workflow_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollWorkflowTaskQueueRequest,
    ) -> Result<ws::PollWorkflowTaskQueueResponse> {
        let key = WorkflowKey::new(
            task.namespace_id.clone(),
            task.workflow_id.clone(),
            task.run_id.clone(),
        );
        let request_id = new_uuid();
        let identity = request.identity.clone();
        let (scheduled, attempt) = (task.scheduled_event_id, task.attempt);
        let sticky_poll = request.task_queue.as_ref().is_some_and(|queue| {
            queue.kind == sundial_proto::api::enums::v1::TaskQueueKind::Sticky as i32
        });
        let worker_version = poller_version_stamp(request);
        let recorded = self
            .inner
            .update(&key, |state, env| {
                let mut recorded = core::record_workflow_task_started(
                    state,
                    env,
                    scheduled,
                    attempt,
                    core::Poller {
                        request_id: &request_id,
                        identity: &identity,
                        sticky: sticky_poll,
                        worker_version: worker_version.as_ref(),
                    },
                )?;
                let transition = std::mem::take(&mut recorded.transition);
                // Queries and updates waiting for this task ride on it (taken under the run's
                // lock).
                let queries = self.inner.take_attached_queries(&key);
                let messages = self.inner.updates.deliver(
                    &key,
                    recorded.scheduled_event_id,
                    recorded.attempt,
                    recorded.started_event_id,
                );
                Ok((transition, (recorded, state.clone(), queries, messages)))
            })
            .await?;
        let (recorded, state, queries, messages) = recorded;
        let _ = namespace;
        let mut response = self
            .inner
            .workflow_task_response(&key, &recorded, &state, queries)
            .await?;
        response.messages = messages;
        Ok(response)
    }

    async fn respond_workflow_task_completed(
        &self,
        namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskCompletedRequest,
    ) -> Result<ws::RespondWorkflowTaskCompletedResponse> {
        let key = Inner::token_key(&token);
        for (query_id, result) in &request.query_results {
            if let Some(waiter) = self.inner.query_waiters.lock().remove(query_id) {
                let answer = if result.result_type
                    == sundial_proto::api::enums::v1::QueryResultType::Answered as i32
                {
                    // An answer over the blob limit is dropped; the caller is told why.
                    if core::util::payloads_size(result.answer.as_ref())
                        > self.inner.limits().blob_size_error
                    {
                        QueryAnswer::Refused("Blob data size exceeds limit.".into())
                    } else {
                        QueryAnswer::Answered(result.answer.clone())
                    }
                } else {
                    QueryAnswer::Failed {
                        message: result.error_message.clone(),
                        failure: result.failure.clone().map(Box::new),
                    }
                };
                let _ = waiter.send(answer);
            }
        }
        let sticky = request.sticky_attributes.as_ref().and_then(|attributes| {
            let queue = attributes.worker_task_queue.as_ref()?;
            if queue.name.is_empty() {
                return None;
            }
            Some((
                queue.name.clone(),
                sundial_history_core::util::duration_ms(
                    attributes.schedule_to_start_timeout.as_ref(),
                ),
            ))
        });
        let (deployment_name, deployment_version, versioning_behavior) =
            completion_deployment(&request);
        let discard_speculative_with_events = request
            .capabilities
            .as_ref()
            .is_some_and(|capabilities| capabilities.discard_speculative_workflow_task_with_events);
        let mut completion = core::CompleteWorkflowTask {
            scheduled_event_id: token.scheduled_event_id,
            attempt: token.attempt,
            commands: request.commands,
            identity: request.identity,
            binary_checksum: request.binary_checksum,
            sdk_metadata: request.sdk_metadata,
            force_create_new_workflow_task: request.force_create_new_workflow_task,
            namespace: namespace.name.clone(),
            custom_search_attributes: (self.inner.custom_search_attributes.read())(&namespace.name),
            sticky,
            eager_activities: (self.inner.eager_activities.read())(&namespace.name),
            worker_version: request.worker_version_stamp,
            metering_metadata: request.metering_metadata,
            deployment_name,
            deployment_version,
            versioning_behavior,
            return_new_workflow_task: request.return_new_workflow_task,
            messages: request.messages,
            updates: Vec::new(),
            discard_speculative_with_events,
        };
        let (error, eager, inline, notices, reset_history_event_id) = self
            .inner
            .update(&key, |state, env| {
                check_started_time(state, &token)?;
                completion.updates =
                    self.inner
                        .updates
                        .pending(&key, token.scheduled_event_id, token.attempt);
                let mut outcome = core::complete_workflow_task(state, env, completion)?;
                let notices = if outcome.abort_sent_updates {
                    self.inner
                        .updates
                        .abort_sent(&key, token.scheduled_event_id, token.attempt)
                } else {
                    self.inner.updates.apply(&key, &outcome.updates)
                };
                // The next task, started for this worker, with the queries and updates waiting
                // for it.
                let inline = outcome.new_workflow_task.take().map(|recorded| {
                    let queries = self.inner.take_attached_queries(&key);
                    let messages = self.inner.updates.deliver(
                        &key,
                        recorded.scheduled_event_id,
                        recorded.attempt,
                        recorded.started_event_id,
                    );
                    (recorded, state.clone(), queries, messages)
                });
                let eager = if outcome.eager_activities.is_empty() {
                    None
                } else {
                    Some((
                        outcome.eager_activities,
                        responses::workflow_type(state),
                        responses::execution(state),
                    ))
                };
                Ok((
                    outcome.transition,
                    (
                        outcome.error,
                        eager,
                        inline,
                        notices,
                        outcome.reset_history_event_id,
                    ),
                ))
            })
            .await?;
        notices.into_iter().for_each(crate::updates::Notice::send);
        if let Some(error) = error {
            return Err(error);
        }
        let workflow_task = match inline {
            Some((recorded, state, queries, messages)) => {
                let mut response = self
                    .inner
                    .workflow_task_response(&key, &recorded, &state, queries)
                    .await?;
                response.messages = messages;
                Some(response)
            }
            None => None,
        };
        let activity_tasks = match eager {
            Some((activities, workflow_type, execution)) => activities
                .iter()
                .map(|activity| {
                    responses::activity_task(
                        &key,
                        &namespace.name,
                        &workflow_type,
                        &execution,
                        activity,
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(ws::RespondWorkflowTaskCompletedResponse {
            activity_tasks,
            workflow_task,
            reset_history_event_id,
        })
    }

    async fn reset_sticky_task_queue(
        &self,
        namespace: &NamespaceRef,
        execution: WorkflowExecution,
    ) -> Result<()> {
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        self.inner
            .update(&key, |state, _env| {
                if !state.is_running() {
                    return Err(Error::not_found("workflow execution already completed"));
                }
                let info = state.info_mut();
                info.sticky_task_queue.clear();
                info.sticky_schedule_to_start_ms = 0;
                Ok((core::Transition::default(), ()))
            })
            .await
    }

    async fn respond_workflow_task_failed(
        &self,
        _namespace: &NamespaceRef,
        token: TaskToken,
        request: ws::RespondWorkflowTaskFailedRequest,
    ) -> Result<()> {
        let key = Inner::token_key(&token);
        let cause = WorkflowTaskFailedCause::try_from(request.cause)
            .unwrap_or(WorkflowTaskFailedCause::Unspecified);
        let (failure, identity) = (request.failure, request.identity);
        self.inner
            .update(&key, |state, env| {
                check_started_time(state, &token)?;
                Ok((
                    core::fail_workflow_task(
                        state,
                        env,
                        token.scheduled_event_id,
                        token.attempt,
                        cause,
                        failure,
                        identity,
                    )?,
                    (),
                ))
            })
            .await
    }

    async fn record_activity_task_started(
        &self,
        namespace: &NamespaceRef,
        task: &TaskRef,
        request: &ws::PollActivityTaskQueueRequest,
    ) -> Result<ws::PollActivityTaskQueueResponse> {
        let key = WorkflowKey::new(
            task.namespace_id.clone(),
            task.workflow_id.clone(),
            task.run_id.clone(),
        );
        let request_id = new_uuid();
        let identity = request.identity.clone();
        let (scheduled, attempt) = (task.scheduled_event_id, task.attempt);
        let (activity, workflow_type, execution) = self
            .inner
            .update(&key, |state, env| {
                let mut started = core::record_activity_started(
                    state,
                    env,
                    scheduled,
                    attempt,
                    &request_id,
                    &identity,
                )?;
                let transition = std::mem::take(&mut started.transition);
                let found = (
                    started.activity,
                    responses::workflow_type(state),
                    responses::execution(state),
                );
                Ok((transition, found))
            })
            .await?;
        Ok(responses::activity_task(
            &key,
            &namespace.name,
            &workflow_type,
            &execution,
            &activity,
        ))
    }

    async fn record_activity_task_heartbeat(
        &self,
        token: TaskToken,
        details: Option<Payloads>,
    ) -> Result<ws::RecordActivityTaskHeartbeatResponse> {
        let key = Inner::token_key(&token);
        let cancel_requested = self
            .inner
            .update(&key, |state, env| {
                core::heartbeat_activity(
                    state,
                    env,
                    token.scheduled_event_id,
                    token.attempt,
                    details,
                )
            })
            .await?;
        Ok(ws::RecordActivityTaskHeartbeatResponse {
            cancel_requested,
            ..Default::default()
        })
    }

    async fn respond_activity_task_completed(
        &self,
        token: TaskToken,
        result: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let key = Inner::token_key(&token);
        self.inner
            .update(&key, |state, env| {
                Ok((
                    core::complete_activity(
                        state,
                        env,
                        token.scheduled_event_id,
                        token.attempt,
                        result,
                        identity,
                    )?,
                    (),
                ))
            })
            .await
    }

    async fn respond_activity_task_failed(
        &self,
        token: TaskToken,
        failure: Failure,
        last_heartbeat_details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let key = Inner::token_key(&token);
        self.inner
            .update(&key, |state, env| {
                Ok((
                    core::fail_activity(
                        state,
                        env,
                        token.scheduled_event_id,
                        token.attempt,
                        failure,
                        last_heartbeat_details,
                        identity,
                    )?,
                    (),
                ))
            })
            .await
    }

    async fn respond_activity_task_canceled(
        &self,
        token: TaskToken,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let key = Inner::token_key(&token);
        self.inner
            .update(&key, |state, env| {
                Ok((
                    core::cancel_activity(
                        state,
                        env,
                        token.scheduled_event_id,
                        token.attempt,
                        details,
                        identity,
                    )?,
                    (),
                ))
            })
            .await
    }

    async fn activity_token_by_id(
        &self,
        namespace: &NamespaceRef,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<TaskToken> {
        let execution = WorkflowExecution {
            workflow_id: workflow_id.to_string(),
            run_id: run_id.to_string(),
        };
        let key = self.inner.resolve(&namespace.id, &execution).await?;
        let state = self.inner.read_state(&key).await?;
        if !state.is_running() {
            return Err(Error::not_found("workflow execution already completed"));
        }
        let Some(activity) = state
            .activities
            .values()
            .find(|activity| activity.activity_id == activity_id)
        else {
            return Err(Error::not_found(
                "invalid activityID or activity already timed out or invoking workflow is completed",
            ));
        };
        Ok(TaskToken {
            kind: TOKEN_ACTIVITY_TASK,
            namespace_id: key.namespace_id,
            workflow_id: key.workflow_id,
            run_id: key.run_id,
            scheduled_event_id: activity.scheduled_event_id,
            attempt: activity.attempt,
            activity_id: activity.activity_id.clone(),
            ..Default::default()
        })
    }

    async fn start_child_workflow_execution(
        &self,
        namespace: &NamespaceRef,
        request: ws::StartWorkflowExecutionRequest,
        parent: ParentExecutionInfo,
    ) -> Result<ws::StartWorkflowExecutionResponse> {
        self.inner
            .start_workflow(namespace, request, None, Some(parent))
            .await
    }

    async fn signal_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::SignalWorkflowExecutionRequest,
        source: WorkflowExecution,
    ) -> Result<()> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let attributes = WorkflowExecutionSignaledEventAttributes {
            signal_name: request.signal_name,
            input: request.input,
            identity: request.identity,
            header: request.header,
            external_workflow_execution: Some(source),
            request_id: request.request_id,
            ..Default::default()
        };
        self.inner.signal(namespace, &execution, attributes).await
    }

    async fn request_cancel_from_workflow(
        &self,
        namespace: &NamespaceRef,
        request: ws::RequestCancelWorkflowExecutionRequest,
        source: WorkflowExecution,
        initiated_event_id: i64,
    ) -> Result<()> {
        let execution = request.workflow_execution.clone().unwrap_or_default();
        let attributes = WorkflowExecutionCancelRequestedEventAttributes {
            cause: request.reason,
            external_initiated_event_id: initiated_event_id,
            external_workflow_execution: Some(source),
            identity: request.identity,
        };
        self.inner
            .request_cancel_from_workflow(namespace, &execution, attributes, &request.request_id)
            .await
    }

    async fn record_child_execution_completed(
        &self,
        parent_namespace_id: &str,
        parent: WorkflowExecution,
        initiated_event_id: i64,
        child_run_id: String,
        close_event: HistoryEvent,
    ) -> Result<()> {
        let key = WorkflowKey::new(
            parent_namespace_id.to_string(),
            parent.workflow_id,
            parent.run_id,
        );
        self.inner
            .update(&key, move |state, env| {
                Ok((
                    core::child_closed(
                        state,
                        env,
                        initiated_event_id,
                        &child_run_id,
                        &close_event,
                    )?,
                    (),
                ))
            })
            .await
    }
}

/// The id of a new run. Temporal 1.32 gives a started workflow or child a time-ordered version 7
/// UUID, and a run made by signal-with-start (like continue-as-new and retry runs) a random
/// version 4 one.
fn fresh_run_id(signal_with_start: bool) -> String {
    if signal_with_start {
        new_uuid()
    } else {
        new_run_id()
    }
}

/// The build id stamp a poll puts into the workflow task started event: the worker's
/// `worker_version_capabilities` when it names a build id, unless the worker is on deployment
/// versioning (which Temporal records elsewhere).
fn poller_version_stamp(request: &ws::PollWorkflowTaskQueueRequest) -> Option<WorkerVersionStamp> {
    let versioned = request.deployment_options.as_ref().is_some_and(|options| {
        options.worker_versioning_mode == WorkerVersioningMode::Versioned as i32
            && !options.deployment_name.is_empty()
    });
    #[allow(deprecated)]
    let capabilities = request.worker_version_capabilities.as_ref()?;
    #[allow(deprecated)]
    if versioned
        || (capabilities.use_versioning && !capabilities.deployment_series_name.is_empty())
        || capabilities.build_id.is_empty()
    {
        return None;
    }
    Some(WorkerVersionStamp {
        use_versioning: capabilities.use_versioning,
        build_id: capabilities.build_id.clone(),
    })
}

/// The deployment fields of the workflow task completed event: the deployment name as the worker
/// gives it, and a version and versioning behaviour only from a worker on deployment versioning.
fn completion_deployment(
    request: &ws::RespondWorkflowTaskCompletedRequest,
) -> (String, Option<WorkerDeploymentVersion>, i32) {
    let options = request.deployment_options.as_ref();
    #[allow(deprecated)]
    let name = match options.map(|o| o.deployment_name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => request
            .deployment
            .as_ref()
            .map(|d| d.series_name.clone())
            .unwrap_or_default(),
    };
    let versioned =
        options.filter(|o| o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32);
    #[allow(deprecated)]
    let (deployment_name, build_id) = match (versioned, request.deployment.as_ref()) {
        (Some(o), _) => (o.deployment_name.clone(), o.build_id.clone()),
        (None, Some(d)) => (d.series_name.clone(), d.build_id.clone()),
        (None, None) => (String::new(), String::new()),
    };
    // Only a complete deployment (both names) is recorded.
    let version =
        (!deployment_name.is_empty() && !build_id.is_empty()).then_some(WorkerDeploymentVersion {
            deployment_name,
            build_id,
        });
    let behavior = if options.is_some() && versioned.is_none() {
        0
    } else {
        request.versioning_behavior
    };
    (name, version, behavior)
}

impl Inner {
    /// The poll response for a workflow task just started: its history (from event 1, or after
    /// the worker's previous task when it has the run cached) and its token.
    pub(crate) async fn workflow_task_response(
        &self,
        key: &WorkflowKey,
        recorded: &core::RecordedWorkflowTask,
        state: &core::state::MutableState,
        queries: Vec<(String, WorkflowQuery)>,
    ) -> Result<ws::PollWorkflowTaskQueueResponse> {
        let durable_end = if state
            .workflow_task
            .as_ref()
            .is_some_and(|task| task.transient)
        {
            recorded.scheduled_event_id
        } else {
            recorded.started_event_id + 1
        };
        // A sticky worker has the run cached: it gets only what happened since its last task.
        let first_event_id = if recorded.partial_history {
            recorded.previous_started_event_id + 1
        } else {
            1
        };
        let (mut events, next_page_token) =
            read_page(self, key, first_event_id, durable_end, MAX_PAGE_SIZE).await?;
        if next_page_token.is_empty() {
            events.extend(core::history_suffix_for_transient(state));
        }
        let token = TaskToken {
            kind: TOKEN_WORKFLOW_TASK,
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            scheduled_event_id: recorded.scheduled_event_id,
            attempt: recorded.attempt,
            started_event_id: recorded.started_event_id,
            started_time_ms: recorded.started_time_ms,
            ..Default::default()
        };
        Ok(ws::PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(responses::execution(state)),
            workflow_type: Some(responses::workflow_type(state)),
            previous_started_event_id: recorded.previous_started_event_id,
            started_event_id: recorded.started_event_id,
            attempt: recorded.attempt,
            history: Some(History { events }),
            next_page_token,
            workflow_execution_task_queue: Some(responses::normal_task_queue(state)),
            scheduled_time: timestamp(recorded.scheduled_time_ms),
            started_time: timestamp(recorded.started_time_ms),
            queries: queries.into_iter().collect(),
            ..Default::default()
        })
    }
}
