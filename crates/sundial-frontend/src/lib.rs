//! The public API: Temporal's `WorkflowService`, `OperatorService` and `grpc.health.v1`. Each
//! handler validates, resolves the namespace, calls history or matching through the
//! `sundial-rpc` traits, and maps errors to gRPC statuses. Stateless apart from the namespace
//! cache; depends on no other service crate.

// Deprecated fields are still sent by SDKs and must be honoured.
#![allow(deprecated)]

mod errors;
mod handed_out;
mod namespaces;
mod operator;
pub mod rate_limit;
mod search_attributes;
mod updates;
mod validate;
mod visibility;
mod workflow_service;

use std::sync::Arc;

use parking_lot::RwLock;
use sundial_history_core::Limits;
use sundial_persistence::Store;
use sundial_rpc::{HistoryApi, MatchingApi};

pub use errors::to_status;
pub use namespaces::Namespaces;
pub use operator::{HealthService, OperatorHandler};

/// The frontend's view of the other services and of configuration.
pub struct Frontend {
    pub history: Arc<dyn HistoryApi>,
    pub matching: Arc<dyn MatchingApi>,
    pub namespaces: Arc<Namespaces>,
    pub limits: RwLock<Arc<Limits>>,
    pub num_shards: u32,
    pub store: Arc<dyn Store>,
    pub rate_limiter: rate_limit::RateLimiter,
}

impl Frontend {
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.read().clone()
    }
}

/// The `WorkflowService` gRPC handler.
#[derive(Clone)]
pub struct WorkflowHandler {
    pub frontend: Arc<Frontend>,
}
