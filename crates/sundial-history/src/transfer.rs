//! The transfer queue: persisted tasks that act on other runs (start a child, signal or cancel
//! another workflow, report a close to the parent, apply the parent close policy). Each task is
//! idempotent and is deleted once done; after a crash the rows are loaded and run again. The
//! other run may be in a shard of another host, so what is done to it goes through `HistoryApi`
//! (`Inner::peer`); only the task's own run is changed here, under its shard.

use std::sync::Arc;
use std::time::Duration;

use sundial_common::{Error, Result, WorkflowKey};
use sundial_history_core::tasks::{Task, TaskType};
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::{ParentClosePolicy, StartChildWorkflowExecutionFailedCause};
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_rpc::{NamespaceRef, ParentExecutionInfo};
use tracing::warn;

use crate::engine::Inner;
use crate::shard::Shard;

#[derive(Clone)]
pub(crate) struct TransferItem {
    /// The shard of the task's run, as held when the task was handed out: once it closes, the
    /// task is left to the shard's next owner.
    pub shard: Arc<Shard>,
    pub task_id: i64,
    pub key: WorkflowKey,
    pub task: Task,
}

pub(crate) async fn run_transfer_task(inner: Arc<Inner>, item: TransferItem) {
    let mut delay = Duration::from_millis(100);
    loop {
        if item.shard.is_closed() {
            return;
        }
        match execute(&inner, &item).await {
            Ok(()) => break,
            Err(error) => {
                warn!(error = %error, task_type = item.task.task_type, "transfer task failed, will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = item.shard.closed() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    if let Err(error) = inner
        .store
        .delete_transfer_task(item.shard.id, item.task_id)
        .await
    {
        warn!(error = %error, "delete finished transfer task");
    }
}

async fn execute(inner: &Arc<Inner>, item: &TransferItem) -> Result<()> {
    let Some(kind) = item.task.kind() else {
        return Ok(());
    };
    let state = match inner.read_state(&item.key).await {
        Ok(state) => state,
        Err(Error::NotFound(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    let peer = inner.peer()?;
    match kind {
        TaskType::StartChild => {
            let Some(child) = state.children.get(&item.task.event_id).cloned() else {
                return Ok(());
            };
            if !child.run_id.is_empty() || !state.is_running() {
                return Ok(());
            }
            let initiated = child.initiated.clone().unwrap_or_default();
            let namespace = NamespaceRef {
                id: initiated.namespace_id.clone(),
                name: initiated.namespace.clone(),
            };
            let request = ws::StartWorkflowExecutionRequest {
                namespace: initiated.namespace.clone(),
                workflow_id: child.workflow_id.clone(),
                workflow_type: initiated.workflow_type.clone(),
                task_queue: initiated.task_queue.clone(),
                input: initiated.input.clone(),
                workflow_execution_timeout: initiated.workflow_execution_timeout,
                workflow_run_timeout: initiated.workflow_run_timeout,
                workflow_task_timeout: initiated.workflow_task_timeout,
                identity: String::new(),
                request_id: child.create_request_id.clone(),
                workflow_id_reuse_policy: initiated.workflow_id_reuse_policy,
                retry_policy: initiated.retry_policy.clone(),
                cron_schedule: initiated.cron_schedule.clone(),
                memo: initiated.memo.clone(),
                search_attributes: initiated.search_attributes.clone(),
                header: initiated.header.clone(),
                priority: initiated.priority.clone(),
                user_metadata: child.user_metadata.clone(),
                ..Default::default()
            };
            let parent = ParentExecutionInfo {
                namespace_id: state.info().namespace_id.clone(),
                namespace: initiated.namespace.clone(),
                execution: WorkflowExecution {
                    workflow_id: item.key.workflow_id.clone(),
                    run_id: item.key.run_id.clone(),
                },
                initiated_event_id: item.task.event_id,
                root: state
                    .info()
                    .started
                    .as_ref()
                    .and_then(|s| s.root_workflow_execution.clone())
                    .or(Some(WorkflowExecution {
                        workflow_id: item.key.workflow_id.clone(),
                        run_id: item.key.run_id.clone(),
                    })),
            };
            let initiated_id = item.task.event_id;
            match peer
                .start_child_workflow_execution(&namespace, request, parent)
                .await
            {
                Ok(response) => {
                    let run_id = response.run_id;
                    inner
                        .update(&item.key, move |state, env| {
                            Ok((
                                sundial_history_core::child_started(
                                    state,
                                    env,
                                    initiated_id,
                                    run_id,
                                )?,
                                (),
                            ))
                        })
                        .await
                }
                Err(Error::WorkflowAlreadyStarted { .. }) => {
                    inner
                        .update(&item.key, move |state, env| {
                            let transition = sundial_history_core::child_start_failed(
                                state,
                                env,
                                initiated_id,
                                StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                            )?;
                            Ok((transition, ()))
                        })
                        .await
                }
                Err(error) => Err(error),
            }
        }
        TaskType::SignalExternal => {
            let Some(pending) = state.signals_out.get(&item.task.event_id).cloned() else {
                return Ok(());
            };
            let initiated = pending.signal.clone().unwrap_or_default();
            let target = initiated.workflow_execution.clone().unwrap_or_default();
            let namespace = NamespaceRef {
                id: initiated.namespace_id.clone(),
                name: initiated.namespace.clone(),
            };
            let source = WorkflowExecution {
                workflow_id: item.key.workflow_id.clone(),
                run_id: item.key.run_id.clone(),
            };
            let request = ws::SignalWorkflowExecutionRequest {
                namespace: initiated.namespace.clone(),
                workflow_execution: Some(target),
                signal_name: initiated.signal_name.clone(),
                input: initiated.input.clone(),
                header: initiated.header.clone(),
                request_id: pending.request_id.clone(),
                ..Default::default()
            };
            let delivered = match peer.signal_from_workflow(&namespace, request, source).await {
                Ok(()) => true,
                Err(Error::NotFound(_)) => false,
                Err(error) => return Err(error),
            };
            let initiated_id = item.task.event_id;
            inner
                .update(&item.key, move |state, env| {
                    Ok((
                        sundial_history_core::external_signal_result(
                            state,
                            env,
                            initiated_id,
                            delivered,
                        )?,
                        (),
                    ))
                })
                .await
        }
        TaskType::CancelExternal => {
            let Some(pending) = state.cancels_out.get(&item.task.event_id).cloned() else {
                return Ok(());
            };
            let initiated = pending.cancel.clone().unwrap_or_default();
            let target = initiated.workflow_execution.clone().unwrap_or_default();
            let namespace = NamespaceRef {
                id: initiated.namespace_id.clone(),
                name: initiated.namespace.clone(),
            };
            let request = ws::RequestCancelWorkflowExecutionRequest {
                namespace: initiated.namespace.clone(),
                workflow_execution: Some(target),
                request_id: pending.request_id.clone(),
                reason: initiated.reason.clone(),
                ..Default::default()
            };
            let source = WorkflowExecution {
                workflow_id: item.key.workflow_id.clone(),
                run_id: item.key.run_id.clone(),
            };
            let delivered = match peer
                .request_cancel_from_workflow(&namespace, request, source, item.task.event_id)
                .await
            {
                Ok(()) => true,
                Err(Error::NotFound(_)) => false,
                Err(error) => return Err(error),
            };
            let initiated_id = item.task.event_id;
            inner
                .update(&item.key, move |state, env| {
                    Ok((
                        sundial_history_core::external_cancel_result(
                            state,
                            env,
                            initiated_id,
                            delivered,
                        )?,
                        (),
                    ))
                })
                .await
        }
        TaskType::NotifyParent => {
            let info = state.info();
            let Some(started) = info.started.as_ref() else {
                return Ok(());
            };
            let Some(parent) = started.parent_workflow_execution.clone() else {
                return Ok(());
            };
            let Some(close_event) = info.close_event.clone() else {
                return Ok(());
            };
            match peer
                .record_child_execution_completed(
                    &started.parent_workflow_namespace_id,
                    parent,
                    started.parent_initiated_event_id,
                    info.run_id.clone(),
                    close_event,
                )
                .await
            {
                Ok(()) | Err(Error::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        }
        TaskType::ParentClosePolicy => {
            for child in state.children.values() {
                let Some(initiated) = child.initiated.as_ref() else {
                    continue;
                };
                let namespace = NamespaceRef {
                    id: initiated.namespace_id.clone(),
                    name: initiated.namespace.clone(),
                };
                let target = WorkflowExecution {
                    workflow_id: child.workflow_id.clone(),
                    run_id: String::new(),
                };
                let outcome = match ParentClosePolicy::try_from(initiated.parent_close_policy)
                    .unwrap_or(ParentClosePolicy::Terminate)
                {
                    ParentClosePolicy::Abandon => Ok(()),
                    ParentClosePolicy::RequestCancel => {
                        let request = ws::RequestCancelWorkflowExecutionRequest {
                            namespace: initiated.namespace.clone(),
                            workflow_execution: Some(target),
                            reason: "by parent close policy".into(),
                            identity: "history-service".into(),
                            ..Default::default()
                        };
                        peer.request_cancel_workflow_execution(&namespace, request)
                            .await
                    }
                    _ => {
                        let request = ws::TerminateWorkflowExecutionRequest {
                            namespace: initiated.namespace.clone(),
                            workflow_execution: Some(target),
                            reason: "by parent close policy".into(),
                            identity: "history-service".into(),
                            ..Default::default()
                        };
                        peer.terminate_workflow_execution(&namespace, request).await
                    }
                };
                match outcome {
                    Ok(()) | Err(Error::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
