//! Request validation shared by the handlers, with Temporal's messages.

use std::time::{Duration, Instant};

use sundial_common::{Error, Result};
use sundial_history_core::Limits;
use sundial_proto::api::common::v1::{Payloads, WorkflowExecution};
use sundial_proto::api::enums::v1::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy};
use sundial_proto::api::taskqueue::v1::TaskQueue;

pub fn id(value: &str, what: &str, limits: &Limits) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what} is not set on request.")));
    }
    if value.len() > limits.max_id_length {
        return Err(Error::invalid(format!("{what} exceeds length limit.")));
    }
    Ok(())
}

pub fn task_queue(task_queue: Option<&TaskQueue>, limits: &Limits) -> Result<String> {
    let name = task_queue.map(|q| q.name.as_str()).unwrap_or("");
    if name.is_empty() {
        return Err(Error::invalid("Missing task queue name."));
    }
    if name.len() > limits.max_id_length {
        return Err(Error::invalid("TaskQueue length exceeds limit."));
    }
    if name.starts_with("/_sys/") {
        return Err(Error::invalid(format!(
            "task queue name cannot start with reserved prefix /_sys/: {name}"
        )));
    }
    Ok(name.to_string())
}

pub fn execution(
    execution: Option<&WorkflowExecution>,
    limits: &Limits,
) -> Result<WorkflowExecution> {
    let Some(execution) = execution else {
        return Err(Error::invalid("Execution is not set on request."));
    };
    id(&execution.workflow_id, "WorkflowId", limits)?;
    if !execution.run_id.is_empty()
        && (execution.run_id.len() != 36
            || !execution
                .run_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-'))
    {
        return Err(Error::invalid("Invalid RunId."));
    }
    Ok(execution.clone())
}

pub fn payloads(payloads: Option<&Payloads>, limits: &Limits) -> Result<()> {
    let size = sundial_history_core::util::payloads_size(payloads);
    if size > limits.blob_size_warn && size <= limits.blob_size_error {
        tracing::warn!(
            size,
            warn_limit = limits.blob_size_warn,
            "payload is over the blob size warning limit"
        );
    }
    if size > limits.blob_size_error {
        return Err(Error::invalid("Blob data size exceeds limit."));
    }
    Ok(())
}

pub fn timeouts(values: &[&Option<sundial_proto::prost_types::Duration>]) -> Result<()> {
    for value in values {
        if let Some(duration) = value
            && (duration.seconds < 0 || duration.nanos < 0 || duration.nanos >= 1_000_000_000)
        {
            return Err(Error::invalid(
                "Invalid timeout: durations must be non-negative.",
            ));
        }
    }
    Ok(())
}

/// Checks the combination of id policies. Values this server does not know are treated as
/// unspecified, as Temporal does (it accepts them).
pub fn policies(reuse: i32, conflict: i32) -> Result<()> {
    let reuse_policy =
        WorkflowIdReusePolicy::try_from(reuse).unwrap_or(WorkflowIdReusePolicy::Unspecified);
    let conflict_policy = WorkflowIdConflictPolicy::try_from(conflict)
        .unwrap_or(WorkflowIdConflictPolicy::Unspecified);
    #[allow(deprecated)]
    if reuse_policy == WorkflowIdReusePolicy::TerminateIfRunning
        && conflict_policy != WorkflowIdConflictPolicy::Unspecified
    {
        return Err(Error::invalid(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together with a WorkflowIDConflictPolicy.",
        ));
    }
    if reuse_policy == WorkflowIdReusePolicy::RejectDuplicate
        && conflict_policy == WorkflowIdConflictPolicy::TerminateExisting
    {
        return Err(Error::invalid(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot be used together with WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING.",
        ));
    }
    Ok(())
}

/// The caller's deadline from the `grpc-timeout` header, if any.
pub fn deadline<T>(request: &tonic::Request<T>) -> Option<Instant> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(Instant::now() + timeout)
}

/// Long polls need a deadline of at least 2 s, as Temporal requires.
pub fn long_poll_deadline<T>(request: &tonic::Request<T>) -> Result<Instant> {
    let Some(deadline) = deadline(request) else {
        return Err(Error::invalid("Context timeout is not set."));
    };
    if deadline.saturating_duration_since(Instant::now()) < Duration::from_secs(2) {
        return Err(Error::FailedPrecondition(
            "Context timeout is too short.".into(),
        ));
    }
    Ok(deadline)
}
