//! Server stubs for Temporal's public gRPC API, generated from the descriptor set of
//! `temporalio-protos`, plus re-exports of its message types. Owns no logic and depends on no
//! other Sundial crate.

pub use prost_types;
pub use temporalio_protos::protos::google::rpc as google_rpc;
pub use temporalio_protos::protos::temporal::api;

/// `temporal.api.workflowservice.v1.WorkflowService` server and client stubs.
pub mod workflowservice {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("temporal.api.workflowservice.v1");
}

/// `temporal.api.operatorservice.v1.OperatorService` server and client stubs.
pub mod operatorservice {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("temporal.api.operatorservice.v1");
}

/// `grpc.health.v1.Health` server and client stubs, over the message types of `temporalio-protos`.
pub mod health {
    #![allow(clippy::all, missing_docs)]
    pub use temporalio_protos::protos::grpc::health::v1::*;
    tonic::include_proto!("grpc.health.v1");
}
