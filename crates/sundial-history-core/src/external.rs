//! Signals and cancel requests sent to other workflows: initiated by a command, resolved by the
//! transfer queue.

use sundial_common::Result;
use sundial_proto::api::enums::v1::{
    CancelExternalWorkflowExecutionFailedCause, SignalExternalWorkflowExecutionFailedCause,
};
use sundial_proto::api::history::v1::history_event::Attributes;
use sundial_proto::api::history::v1::{
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes, HistoryEvent,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
};

use crate::ctx::{Env, Mutation, Transition};
use crate::state::{ExternalInfo, MutableState};
use crate::workflow::ensure_workflow_task;

pub(crate) fn apply_signal_initiated(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &SignalExternalWorkflowExecutionInitiatedEventAttributes,
) {
    let request_id = format!("{}-signal-{}", state.info().run_id, event.event_id);
    state.signals_out.insert(
        event.event_id,
        ExternalInfo {
            initiated_event_id: event.event_id,
            request_id,
            signal: Some(attributes.clone()),
            cancel: None,
        },
    );
}

pub(crate) fn apply_cancel_initiated(
    state: &mut MutableState,
    event: &HistoryEvent,
    attributes: &RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
) {
    let request_id = format!("{}-cancel-{}", state.info().run_id, event.event_id);
    state.cancels_out.insert(
        event.event_id,
        ExternalInfo {
            initiated_event_id: event.event_id,
            request_id,
            signal: None,
            cancel: Some(attributes.clone()),
        },
    );
}

/// The signal reached its target (`delivered`) or the target was not found.
pub fn external_signal_result(
    state: &mut MutableState,
    env: &Env,
    initiated_event_id: i64,
    delivered: bool,
) -> Result<Transition> {
    if !state.is_running() {
        return Ok(Transition::default());
    }
    let Some(pending) = state.signals_out.get(&initiated_event_id).cloned() else {
        return Ok(Transition::default());
    };
    let initiated = pending.signal.unwrap_or_default();
    let mut mutation = Mutation::new(state, env);
    if delivered {
        mutation.add(
            Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
                ExternalWorkflowExecutionSignaledEventAttributes {
                    initiated_event_id,
                    namespace: initiated.namespace,
                    namespace_id: initiated.namespace_id,
                    workflow_execution: initiated.workflow_execution,
                    control: initiated.control,
                },
            ),
        );
    } else {
        mutation.add(Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
            SignalExternalWorkflowExecutionFailedEventAttributes {
                cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                workflow_task_completed_event_id: initiated.workflow_task_completed_event_id,
                namespace: initiated.namespace,
                namespace_id: initiated.namespace_id,
                workflow_execution: initiated.workflow_execution,
                initiated_event_id,
                control: initiated.control,
            },
        ));
    }
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}

/// The cancel request reached its target (`delivered`) or the target was not found.
pub fn external_cancel_result(
    state: &mut MutableState,
    env: &Env,
    initiated_event_id: i64,
    delivered: bool,
) -> Result<Transition> {
    if !state.is_running() {
        return Ok(Transition::default());
    }
    let Some(pending) = state.cancels_out.get(&initiated_event_id).cloned() else {
        return Ok(Transition::default());
    };
    let initiated = pending.cancel.unwrap_or_default();
    let mut mutation = Mutation::new(state, env);
    if delivered {
        mutation.add(
            Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                ExternalWorkflowExecutionCancelRequestedEventAttributes {
                    initiated_event_id,
                    namespace: initiated.namespace,
                    namespace_id: initiated.namespace_id,
                    workflow_execution: initiated.workflow_execution,
                },
            ),
        );
    } else {
        mutation.add(Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
            RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                workflow_task_completed_event_id: initiated.workflow_task_completed_event_id,
                namespace: initiated.namespace,
                namespace_id: initiated.namespace_id,
                workflow_execution: initiated.workflow_execution,
                initiated_event_id,
                control: initiated.control,
            },
        ));
    }
    ensure_workflow_task(&mut mutation);
    Ok(mutation.finish())
}
