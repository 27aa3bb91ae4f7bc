//! The single mapping from Sundial errors to gRPC statuses, with the Temporal error details
//! that SDKs branch on packed into `grpc-status-details-bin`.

use prost::Message;
use sundial_common::{Error, ErrorCode};
use sundial_proto::api::errordetails::v1 as details;
use sundial_proto::google_rpc;
use sundial_proto::prost_types::Any;
use tonic::{Code, Status};

const CLUSTER_NAME: &str = "active";

fn any<M: Message>(type_name: &str, message: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/temporal.api.errordetails.v1.{type_name}"),
        value: message.encode_to_vec(),
    }
}

fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::ResourceExhausted => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorCode::Internal => Code::Internal,
    }
}

pub fn to_status(error: Error) -> Status {
    let code = grpc_code(error.code());
    let message = error.to_string();
    let detail = match &error {
        Error::WorkflowAlreadyStarted {
            start_request_id,
            run_id,
            ..
        } => Some(any(
            "WorkflowExecutionAlreadyStartedFailure",
            &details::WorkflowExecutionAlreadyStartedFailure {
                start_request_id: start_request_id.clone(),
                run_id: run_id.clone(),
                ..Default::default()
            },
        )),
        Error::NamespaceNotFound(namespace) => Some(any(
            "NamespaceNotFoundFailure",
            &details::NamespaceNotFoundFailure {
                namespace: namespace.clone(),
            },
        )),
        Error::NamespaceAlreadyExists(_) => Some(any(
            "NamespaceAlreadyExistsFailure",
            &details::NamespaceAlreadyExistsFailure {},
        )),
        Error::NotFound(_) => Some(any(
            "NotFoundFailure",
            &details::NotFoundFailure {
                current_cluster: CLUSTER_NAME.into(),
                active_cluster: CLUSTER_NAME.into(),
            },
        )),
        Error::QueryFailed { failure, .. } => {
            let failure = failure.as_ref().and_then(|bytes| {
                sundial_proto::api::failure::v1::Failure::decode(bytes.as_slice()).ok()
            });
            Some(any(
                "QueryFailedFailure",
                &details::QueryFailedFailure { failure },
            ))
        }
        Error::PermissionDenied(_) => Some(any(
            "PermissionDeniedFailure",
            &details::PermissionDeniedFailure::default(),
        )),
        Error::WorkflowNotReady(_) => Some(any(
            "WorkflowNotReadyFailure",
            &details::WorkflowNotReadyFailure {},
        )),
        Error::ResourceExhausted { cause, .. } => Some(any(
            "ResourceExhaustedFailure",
            &details::ResourceExhaustedFailure {
                cause: *cause as i32,
                scope: 1,
            },
        )),
        _ => None,
    };
    match detail {
        Some(detail) => {
            let status = google_rpc::Status {
                code: code as i32,
                message: message.clone(),
                details: vec![detail],
            };
            Status::with_details(code, message, status.encode_to_vec().into())
        }
        None => Status::new(code, message),
    }
}

/// The error of an update-with-start that did not succeed: the code of the operation that
/// failed, one status per operation in `MultiOperationExecutionFailure` (the failed one as its
/// own RPC would have answered, the other `ABORTED`), as the SDKs unpack it.
pub fn multi_operation_status(
    start: sundial_rpc::OperationStatus,
    update: sundial_rpc::OperationStatus,
) -> Status {
    use sundial_rpc::OperationStatus as Op;
    let mut code = None;
    let statuses = [start, update]
        .into_iter()
        .map(|operation| match operation {
            Op::Ok => details::multi_operation_execution_failure::OperationStatus::default(),
            Op::Aborted => details::multi_operation_execution_failure::OperationStatus {
                code: Code::Aborted as i32,
                message: "Operation was aborted.".into(),
                details: vec![Any {
                    type_url:
                        "type.googleapis.com/temporal.api.failure.v1.MultiOperationExecutionAborted"
                            .into(),
                    value: Vec::new(),
                }],
            },
            Op::Failed(error) => {
                let status = to_status(error);
                code.get_or_insert(status.code());
                let details = google_rpc::Status::decode(status.details())
                    .map(|decoded| decoded.details)
                    .unwrap_or_default();
                details::multi_operation_execution_failure::OperationStatus {
                    code: status.code() as i32,
                    message: status.message().to_string(),
                    details,
                }
            }
        })
        .collect();
    let code = code.unwrap_or(Code::Internal);
    let message = "Update-with-Start could not be executed.".to_string();
    let status = google_rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![any(
            "MultiOperationExecutionFailure",
            &details::MultiOperationExecutionFailure { statuses },
        )],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_started_carries_detail() {
        let status = to_status(Error::WorkflowAlreadyStarted {
            message: "Workflow execution is already running. WorkflowId: w, RunId: r.".into(),
            start_request_id: "req".into(),
            run_id: "r".into(),
        });
        assert_eq!(status.code(), Code::AlreadyExists);
        let decoded = google_rpc::Status::decode(status.details()).unwrap();
        assert_eq!(decoded.details.len(), 1);
        assert!(
            decoded.details[0]
                .type_url
                .ends_with("WorkflowExecutionAlreadyStartedFailure")
        );
        let failure = details::WorkflowExecutionAlreadyStartedFailure::decode(
            decoded.details[0].value.as_slice(),
        )
        .unwrap();
        assert_eq!(failure.run_id, "r");
        assert_eq!(failure.start_request_id, "req");
    }

    #[test]
    fn plain_errors_have_no_details() {
        let status = to_status(Error::invalid("bad"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.details().is_empty());
    }
}
