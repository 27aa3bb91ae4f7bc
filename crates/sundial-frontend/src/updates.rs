//! The frontend's checks of UpdateWorkflowExecution and PollWorkflowExecutionUpdate, in
//! Temporal's order and with its messages.

use sundial_common::{Error, Result, new_uuid};
use sundial_proto::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use sundial_proto::api::workflowservice::v1 as ws;

use crate::validate;

fn check_execution(
    execution: Option<&sundial_proto::api::common::v1::WorkflowExecution>,
    limits: &sundial_history_core::Limits,
) -> Result<()> {
    match execution {
        Some(execution) => validate::execution(Some(execution), limits).map(|_| ()),
        None => Err(Error::invalid("WorkflowId is not set on request.")),
    }
}

/// Checks an update request and fills in what the server chooses (a missing update id).
pub fn check_update(
    request: &mut ws::UpdateWorkflowExecutionRequest,
    limits: &sundial_history_core::Limits,
) -> Result<()> {
    check_execution(request.workflow_execution.as_ref(), limits)?;
    let update = request.request.get_or_insert_with(Default::default);
    let Some(meta) = update.meta.as_mut() else {
        return Err(Error::invalid("Update meta is not set on request."));
    };
    if meta.update_id.len() > limits.max_id_length {
        return Err(Error::invalid("UpdateId length exceeds limit."));
    }
    if meta.update_id.is_empty() {
        meta.update_id = new_uuid();
    }
    let Some(input) = update.input.as_ref() else {
        return Err(Error::invalid("Update input is not set on request."));
    };
    if input.name.is_empty() {
        return Err(Error::invalid("Update name is not set on request."));
    }
    let stage = request
        .wait_policy
        .as_ref()
        .map(|policy| policy.lifecycle_stage)
        .unwrap_or(0);
    if stage == Stage::Admitted as i32 {
        return Err(Error::PermissionDenied(
            "UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not supported."
                .into(),
        ));
    }
    Ok(())
}

pub fn check_poll(
    request: &ws::PollWorkflowExecutionUpdateRequest,
    limits: &sundial_history_core::Limits,
) -> Result<()> {
    let Some(update_ref) = request.update_ref.as_ref() else {
        return Err(Error::invalid("UpdateRef is not set on request."));
    };
    check_execution(update_ref.workflow_execution.as_ref(), limits)?;
    if update_ref.update_id.is_empty() {
        return Err(Error::invalid("UpdateId is not set on request."));
    }
    Ok(())
}

/// The two operations of an update-with-start, which must be exactly a start then an update.
pub fn start_and_update(
    operations: Vec<ws::execute_multi_operation_request::Operation>,
) -> Result<(
    ws::StartWorkflowExecutionRequest,
    ws::UpdateWorkflowExecutionRequest,
)> {
    use ws::execute_multi_operation_request::operation::Operation;
    let mut operations = operations.into_iter().map(|operation| operation.operation);
    match (operations.next(), operations.next(), operations.next()) {
        (
            Some(Some(Operation::StartWorkflow(start))),
            Some(Some(Operation::UpdateWorkflow(update))),
            None,
        ) => Ok((start, update)),
        _ => Err(Error::invalid(
            "Operations have to be exactly [Start, Update].",
        )),
    }
}

/// The update of an update-with-start: an update's checks, then what it may not name (the
/// start decides the run).
pub fn check_update_of_start(
    request: &mut ws::UpdateWorkflowExecutionRequest,
    namespace: &str,
    limits: &sundial_history_core::Limits,
) -> Result<()> {
    if !request.namespace.is_empty() && request.namespace != namespace {
        return Err(Error::invalid(
            "Operation namespace did not match request's namespace.",
        ));
    }
    check_update(request, limits)?;
    if !request.first_execution_run_id.is_empty() {
        return Err(Error::invalid("FirstExecutionRunId is not allowed."));
    }
    if request
        .workflow_execution
        .as_ref()
        .is_some_and(|execution| !execution.run_id.is_empty())
    {
        return Err(Error::invalid("RunId is not allowed."));
    }
    Ok(())
}
