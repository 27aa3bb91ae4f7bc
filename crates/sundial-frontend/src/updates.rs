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
