//! The one place where events change mutable state. The live path builds an event and applies
//! it here; replay applies the stored events here. Each family's apply functions live in the
//! family's module.

use sundial_proto::api::enums::v1::EventType;
use sundial_proto::api::history::v1::{HistoryEvent, history_event::Attributes};

use crate::state::MutableState;
use crate::{activity, child, external, timer, workflow, workflow_task};

/// Applies one event to mutable state. Buffered events (id 0) change state without moving the
/// event counter; they take their ids when they are written.
pub fn apply_event(state: &mut MutableState, event: &HistoryEvent) {
    use Attributes as A;
    let Some(attributes) = event.attributes.as_ref() else {
        return;
    };
    match attributes {
        A::WorkflowExecutionStartedEventAttributes(a) => workflow::apply_started(state, event, a),
        A::WorkflowExecutionCompletedEventAttributes(a) => {
            workflow::apply_closed(state, event, &a.new_execution_run_id)
        }
        A::WorkflowExecutionFailedEventAttributes(a) => {
            workflow::apply_closed(state, event, &a.new_execution_run_id)
        }
        A::WorkflowExecutionTimedOutEventAttributes(a) => {
            workflow::apply_closed(state, event, &a.new_execution_run_id)
        }
        A::WorkflowExecutionCanceledEventAttributes(_)
        | A::WorkflowExecutionTerminatedEventAttributes(_) => {
            workflow::apply_closed(state, event, "")
        }
        A::WorkflowExecutionContinuedAsNewEventAttributes(a) => {
            workflow::apply_closed(state, event, &a.new_execution_run_id)
        }
        A::WorkflowExecutionSignaledEventAttributes(a) => workflow::apply_signaled(state, a),
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            state.info_mut().cancel_requested = true;
        }
        A::MarkerRecordedEventAttributes(_) => {}
        A::UpsertWorkflowSearchAttributesEventAttributes(a) => {
            workflow::apply_upsert_search_attributes(state, a)
        }
        A::WorkflowPropertiesModifiedEventAttributes(a) => {
            workflow::apply_properties_modified(state, a)
        }
        A::WorkflowTaskScheduledEventAttributes(a) => {
            workflow_task::apply_scheduled(state, event, a)
        }
        A::WorkflowTaskStartedEventAttributes(a) => workflow_task::apply_started(state, event, a),
        A::WorkflowTaskCompletedEventAttributes(a) => workflow_task::apply_completed(state, a),
        A::WorkflowTaskFailedEventAttributes(_) | A::WorkflowTaskTimedOutEventAttributes(_) => {
            state.workflow_task = None;
        }
        A::ActivityTaskScheduledEventAttributes(a) => activity::apply_scheduled(state, event, a),
        A::ActivityTaskStartedEventAttributes(a) => activity::apply_started(state, event, a),
        A::ActivityTaskCompletedEventAttributes(a) => {
            state.activities.remove(&a.scheduled_event_id);
        }
        A::ActivityTaskFailedEventAttributes(a) => {
            state.activities.remove(&a.scheduled_event_id);
        }
        A::ActivityTaskTimedOutEventAttributes(a) => {
            state.activities.remove(&a.scheduled_event_id);
        }
        A::ActivityTaskCanceledEventAttributes(a) => {
            state.activities.remove(&a.scheduled_event_id);
        }
        A::ActivityTaskCancelRequestedEventAttributes(a) => {
            activity::apply_cancel_requested(state, event, a)
        }
        A::TimerStartedEventAttributes(a) => timer::apply_started(state, event, a),
        A::TimerFiredEventAttributes(a) => {
            state.timers.remove(&a.timer_id);
        }
        A::TimerCanceledEventAttributes(a) => {
            state.timers.remove(&a.timer_id);
        }
        A::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
            child::apply_initiated(state, event, a)
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::ChildWorkflowExecutionStartedEventAttributes(a) => child::apply_started(state, event, a),
        A::ChildWorkflowExecutionCompletedEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::ChildWorkflowExecutionFailedEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            state.children.remove(&a.initiated_event_id);
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => {
            external::apply_signal_initiated(state, event, a)
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(a) => {
            state.signals_out.remove(&a.initiated_event_id);
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(a) => {
            state.signals_out.remove(&a.initiated_event_id);
        }
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
            external::apply_cancel_initiated(state, event, a)
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(a) => {
            state.cancels_out.remove(&a.initiated_event_id);
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(a) => {
            state.cancels_out.remove(&a.initiated_event_id);
        }
        A::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
            state.updates.insert(
                a.protocol_instance_id.clone(),
                crate::state::UpdateInfo {
                    accepted_event_id: event.event_id,
                    completed_event_id: 0,
                },
            );
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
            let update_id = a.meta.as_ref().map(|meta| meta.update_id.clone());
            if let Some(update) = update_id.and_then(|id| state.updates.get_mut(&id)) {
                update.completed_event_id = event.event_id;
            }
        }
        _ => {}
    }
    if event.event_id > 0 {
        let info = state.info_mut();
        info.next_event_id = event.event_id + 1;
    }
}

/// The event type that belongs to an attributes variant.
pub fn event_type_of(attributes: &Attributes) -> EventType {
    use Attributes as A;
    use EventType as E;
    match attributes {
        A::WorkflowExecutionStartedEventAttributes(_) => E::WorkflowExecutionStarted,
        A::WorkflowExecutionCompletedEventAttributes(_) => E::WorkflowExecutionCompleted,
        A::WorkflowExecutionFailedEventAttributes(_) => E::WorkflowExecutionFailed,
        A::WorkflowExecutionTimedOutEventAttributes(_) => E::WorkflowExecutionTimedOut,
        A::WorkflowTaskScheduledEventAttributes(_) => E::WorkflowTaskScheduled,
        A::WorkflowTaskStartedEventAttributes(_) => E::WorkflowTaskStarted,
        A::WorkflowTaskCompletedEventAttributes(_) => E::WorkflowTaskCompleted,
        A::WorkflowTaskTimedOutEventAttributes(_) => E::WorkflowTaskTimedOut,
        A::WorkflowTaskFailedEventAttributes(_) => E::WorkflowTaskFailed,
        A::ActivityTaskScheduledEventAttributes(_) => E::ActivityTaskScheduled,
        A::ActivityTaskStartedEventAttributes(_) => E::ActivityTaskStarted,
        A::ActivityTaskCompletedEventAttributes(_) => E::ActivityTaskCompleted,
        A::ActivityTaskFailedEventAttributes(_) => E::ActivityTaskFailed,
        A::ActivityTaskTimedOutEventAttributes(_) => E::ActivityTaskTimedOut,
        A::TimerStartedEventAttributes(_) => E::TimerStarted,
        A::TimerFiredEventAttributes(_) => E::TimerFired,
        A::ActivityTaskCancelRequestedEventAttributes(_) => E::ActivityTaskCancelRequested,
        A::ActivityTaskCanceledEventAttributes(_) => E::ActivityTaskCanceled,
        A::TimerCanceledEventAttributes(_) => E::TimerCanceled,
        A::MarkerRecordedEventAttributes(_) => E::MarkerRecorded,
        A::WorkflowExecutionSignaledEventAttributes(_) => E::WorkflowExecutionSignaled,
        A::WorkflowExecutionTerminatedEventAttributes(_) => E::WorkflowExecutionTerminated,
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            E::WorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionCanceledEventAttributes(_) => E::WorkflowExecutionCanceled,
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            E::RequestCancelExternalWorkflowExecutionInitiated
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
            E::RequestCancelExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(_) => {
            E::ExternalWorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => E::WorkflowExecutionContinuedAsNew,
        A::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
            E::StartChildWorkflowExecutionInitiated
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(_) => {
            E::StartChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionStartedEventAttributes(_) => E::ChildWorkflowExecutionStarted,
        A::ChildWorkflowExecutionCompletedEventAttributes(_) => E::ChildWorkflowExecutionCompleted,
        A::ChildWorkflowExecutionFailedEventAttributes(_) => E::ChildWorkflowExecutionFailed,
        A::ChildWorkflowExecutionCanceledEventAttributes(_) => E::ChildWorkflowExecutionCanceled,
        A::ChildWorkflowExecutionTimedOutEventAttributes(_) => E::ChildWorkflowExecutionTimedOut,
        A::ChildWorkflowExecutionTerminatedEventAttributes(_) => {
            E::ChildWorkflowExecutionTerminated
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            E::SignalExternalWorkflowExecutionInitiated
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(_) => {
            E::SignalExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(_) => {
            E::ExternalWorkflowExecutionSignaled
        }
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => E::UpsertWorkflowSearchAttributes,
        A::WorkflowPropertiesModifiedEventAttributes(_) => E::WorkflowPropertiesModified,
        A::WorkflowExecutionUpdateAcceptedEventAttributes(_) => E::WorkflowExecutionUpdateAccepted,
        A::WorkflowExecutionUpdateCompletedEventAttributes(_) => {
            E::WorkflowExecutionUpdateCompleted
        }
        A::WorkflowExecutionUpdateAdmittedEventAttributes(_) => E::WorkflowExecutionUpdateAdmitted,
        _ => E::Unspecified,
    }
}
