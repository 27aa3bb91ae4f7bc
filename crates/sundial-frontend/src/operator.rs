//! `OperatorService` (search attributes and namespace deletion) and `grpc.health.v1.Health`.

use std::collections::HashMap;
use std::sync::Arc;

use sundial_proto::api::enums::v1::{IndexedValueType, NamespaceState};
use sundial_proto::api::operatorservice::v1 as os;
use sundial_proto::health::health_server::Health;
use sundial_proto::health::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use sundial_proto::operatorservice::operator_service_server::OperatorService;
use tonic::{Request, Response, Status};

use crate::Frontend;
use crate::errors::to_status;

/// Search attributes every namespace has. Custom attributes are not supported yet.
pub fn system_search_attributes() -> HashMap<String, i32> {
    let keyword = IndexedValueType::Keyword as i32;
    let datetime = IndexedValueType::Datetime as i32;
    let int = IndexedValueType::Int as i32;
    [
        ("WorkflowId", keyword),
        ("RunId", keyword),
        ("WorkflowType", keyword),
        ("ExecutionStatus", keyword),
        ("TaskQueue", keyword),
        ("StartTime", datetime),
        ("CloseTime", datetime),
        ("ExecutionTime", datetime),
        ("HistoryLength", int),
        (
            "TemporalChangeVersion",
            IndexedValueType::KeywordList as i32,
        ),
        ("BinaryChecksums", IndexedValueType::KeywordList as i32),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_string(), kind))
    .collect()
}

#[derive(Clone)]
pub struct OperatorHandler {
    pub frontend: Arc<Frontend>,
}

#[tonic::async_trait]
impl OperatorService for OperatorHandler {
    async fn list_search_attributes(
        &self,
        request: Request<os::ListSearchAttributesRequest>,
    ) -> Result<Response<os::ListSearchAttributesResponse>, Status> {
        let request = request.into_inner();
        if !request.namespace.is_empty() {
            self.frontend
                .namespaces
                .resolve(&request.namespace)
                .map_err(to_status)?;
        }
        Ok(Response::new(os::ListSearchAttributesResponse {
            custom_attributes: HashMap::new(),
            system_attributes: system_search_attributes(),
            storage_schema: HashMap::new(),
        }))
    }

    async fn delete_namespace(
        &self,
        request: Request<os::DeleteNamespaceRequest>,
    ) -> Result<Response<os::DeleteNamespaceResponse>, Status> {
        let request = request.into_inner();
        let mut description = self
            .frontend
            .namespaces
            .describe(&request.namespace, &request.namespace_id)
            .map_err(to_status)?;
        let info = description
            .namespace_info
            .as_mut()
            .expect("namespaces have info");
        info.state = NamespaceState::Deleted as i32;
        let name = info.name.clone();
        self.frontend
            .namespaces
            .update(description)
            .await
            .map_err(to_status)?;
        Ok(Response::new(os::DeleteNamespaceResponse {
            deleted_namespace: name,
        }))
    }
}

/// The service names the frontend reports as serving: the server as a whole (the empty name, as
/// the gRPC health protocol has it) and each Temporal service it serves.
pub const HEALTH_SERVICES: [&str; 3] = [
    "",
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
];

#[derive(Clone, Default)]
pub struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !HEALTH_SERVICES.contains(&service.as_str()) {
            // The gRPC health protocol: a service the server does not know is NOT_FOUND.
            return Err(Status::not_found("unknown service"));
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }
}
