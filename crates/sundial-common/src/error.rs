//! Errors that can reach a client, with the code that decides their gRPC status and the
//! Temporal error detail attached to it. The mapping to gRPC itself lives in the frontend.

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a client sees: one code per gRPC status family that Temporal uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Internal,
}

/// Causes of `ResourceExhausted`, numbered as Temporal's `ResourceExhaustedCause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExhaustedCause {
    RpsLimit = 1,
    ConcurrentLimit = 2,
    BusyWorkflow = 4,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    /// An execution, task or other object is unknown or already gone.
    #[error("{0}")]
    NotFound(String),
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("Namespace {0} already exists.")]
    NamespaceAlreadyExists(String),
    #[error("{message}")]
    WorkflowAlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
    },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    WorkflowNotReady(String),
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        cause: ExhaustedCause,
    },
    /// The worker answered a query with a failure; `failure` is an encoded
    /// `temporal.api.failure.v1.Failure`.
    #[error("{message}")]
    QueryFailed {
        message: String,
        failure: Option<Vec<u8>>,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// An operation the server's configuration does not allow.
    #[error("{0}")]
    PermissionDenied(String),
    /// Another writer changed the execution or the shard first; the caller may retry.
    #[error("conditional write failed: {0}")]
    Conflict(String),
    #[error("shard ownership lost")]
    ShardOwnershipLost,
    #[error("{0}")]
    Unavailable(String),
    /// Persisted state that breaks an invariant.
    #[error("corrupt state: {0}")]
    CorruptState(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) | Error::QueryFailed { .. } => ErrorCode::InvalidArgument,
            Error::NotFound(_) | Error::NamespaceNotFound(_) => ErrorCode::NotFound,
            Error::NamespaceAlreadyExists(_) | Error::WorkflowAlreadyStarted { .. } => {
                ErrorCode::AlreadyExists
            }
            Error::FailedPrecondition(_) | Error::WorkflowNotReady(_) => {
                ErrorCode::FailedPrecondition
            }
            Error::ResourceExhausted { .. } => ErrorCode::ResourceExhausted,
            Error::DeadlineExceeded(_) => ErrorCode::DeadlineExceeded,
            Error::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Error::Conflict(_) | Error::ShardOwnershipLost | Error::Unavailable(_) => {
                ErrorCode::Unavailable
            }
            Error::CorruptState(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }
}
