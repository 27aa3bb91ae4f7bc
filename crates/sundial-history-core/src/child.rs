//! The child workflow family: initiated by a command, then started, failed to start, or closed
//! as reported by the transfer queue.

use sundial_common::Result;
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::StartChildWorkflowExecutionFailedCause;
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    ChildWorkflowExecutionCanceledEventAttributes, ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes, ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes, ChildWorkflowExecutionTimedOutEventAttributes,
    HistoryEvent, StartChildWorkflowExecutionFailedEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes,
};

use crate::ctx::{Env, Mutation, Transition};
use crate::state::{ChildInfo, MutableState};
use crate::workflow::ensure_workflow_task;

pub(crate) fn apply_initiated(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &StartChildWorkflowExecutionInitiatedEventAttributes,
) {
    state.children.insert(
        event.event_id,
        ChildInfo {
            initiated_event_id: event.event_id,
            workflow_id: attributes.workflow_id.clone(),
            namespace: attributes.namespace.clone(),
            initiated: Some(attributes.clone()),
            user_metadata: event.user_metadata.clone(),
            ..Default::default()
        },
    );
}

pub(crate) fn apply_started(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &ChildWorkflowExecutionStartedEventAttributes,
) {
    if let Some(child) = state.children.get_mut(&attributes.initiated_event_id) {
        child.started_event_id = event.event_id;
        child.run_id = attributes
            .workflow_execution
            .as_ref()
            .map(|execution| execution.run_id.clone())
            .unwrap_or_default();
    }
}

fn pending_child(state: &MutableState, initiated_event_id: i64) -> Option<ChildInfo> {
    if !state.is_running() {
        return None;
    }
    state.children.get(&initiated_event_id).cloned()
}

pub fn child_started(
    state: &mut MutableState,
    env: &Env,
    initiated_event_id: i64,
    run_id: String,
) -> Result<Transition> {
    let Some(child) = pending_child(state, initiated_event_id)
        .filter(|child| child.started_event_id == 0 && child.run_id.is_empty())
    else {
        return Ok(Transition::default());
    };
    let initiated = child.initiated.clone().unwrap_or_default();
    let mut mutation = Mutation::new(state, env);
    mutation.add(Attributes::ChildWorkflowExecutionStartedEventAttributes(
        ChildWorkflowExecutionStartedEventAttributes {
            namespace: initiated.namespace.clone(),
            namespace_id: initiated.namespace_id.clone(),
            initiated_event_id,
            workflow_execution: Some(WorkflowExecution {
                workflow_id: child.workflow_id.clone(),
                run_id: run_id.clone(),
            }),
            workflow_type: initiated.workflow_type.clone(),
            header: initiated.header.clone(),
        },
    ));
    if let Some(current) = mutation.state.children.get_mut(&initiated_event_id) {
        current.run_id = run_id;
    }
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

pub fn child_start_failed(
    state: &mut MutableState,
    env: &Env,
    initiated_event_id: i64,
    cause: StartChildWorkflowExecutionFailedCause,
) -> Result<Transition> {
    let Some(child) =
        pending_child(state, initiated_event_id).filter(|child| child.run_id.is_empty())
    else {
        return Ok(Transition::default());
    };
    let initiated = child.initiated.clone().unwrap_or_default();
    let mut mutation = Mutation::new(state, env);
    mutation.add(
        Attributes::StartChildWorkflowExecutionFailedEventAttributes(
            StartChildWorkflowExecutionFailedEventAttributes {
                namespace: initiated.namespace.clone(),
                namespace_id: initiated.namespace_id.clone(),
                workflow_id: child.workflow_id.clone(),
                workflow_type: initiated.workflow_type.clone(),
                cause: cause as i32,
                control: initiated.control.clone(),
                initiated_event_id,
                workflow_task_completed_event_id: initiated.workflow_task_completed_event_id,
            },
        ),
    );
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// The child's chain closed; `close_event` is its close event.
pub fn child_closed(
    state: &mut MutableState,
    env: &Env,
    initiated_event_id: i64,
    child_run_id: &str,
    close_event: &HistoryEvent,
) -> Result<Transition> {
    let Some(child) = pending_child(state, initiated_event_id) else {
        return Ok(Transition::default());
    };
    if child.run_id.is_empty() {
        // The started report has not arrived yet; record it first so the close refers to it.
        let mut transition =
            child_started(state, env, initiated_event_id, child_run_id.to_string())?;
        let rest = child_closed(state, env, initiated_event_id, child_run_id, close_event)?;
        transition.events.extend(rest.events);
        transition.tasks.extend(rest.tasks);
        return Ok(transition);
    }
    let initiated = child.initiated.clone().unwrap_or_default();
    let namespace = initiated.namespace.clone();
    let namespace_id = initiated.namespace_id.clone();
    let workflow_execution = Some(WorkflowExecution {
        workflow_id: child.workflow_id.clone(),
        run_id: child_run_id.to_string(),
    });
    let workflow_type = initiated.workflow_type.clone();
    let started_event_id = child.started_event_id;
    use Attributes as A;
    let attributes = match close_event.attributes.as_ref() {
        Some(A::WorkflowExecutionCompletedEventAttributes(a)) => {
            A::ChildWorkflowExecutionCompletedEventAttributes(
                ChildWorkflowExecutionCompletedEventAttributes {
                    result: a.result.clone(),
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                },
            )
        }
        Some(A::WorkflowExecutionFailedEventAttributes(a)) => {
            A::ChildWorkflowExecutionFailedEventAttributes(
                ChildWorkflowExecutionFailedEventAttributes {
                    failure: a.failure.clone(),
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: a.retry_state,
                },
            )
        }
        Some(A::WorkflowExecutionCanceledEventAttributes(a)) => {
            A::ChildWorkflowExecutionCanceledEventAttributes(
                ChildWorkflowExecutionCanceledEventAttributes {
                    details: a.details.clone(),
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                },
            )
        }
        Some(A::WorkflowExecutionTimedOutEventAttributes(a)) => {
            A::ChildWorkflowExecutionTimedOutEventAttributes(
                ChildWorkflowExecutionTimedOutEventAttributes {
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: a.retry_state,
                },
            )
        }
        _ => A::ChildWorkflowExecutionTerminatedEventAttributes(
            ChildWorkflowExecutionTerminatedEventAttributes {
                namespace,
                namespace_id,
                workflow_execution,
                workflow_type,
                initiated_event_id,
                started_event_id,
            },
        ),
    };
    let mut mutation = Mutation::new(state, env);
    mutation.add(attributes);
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}
