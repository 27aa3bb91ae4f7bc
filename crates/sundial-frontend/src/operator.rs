//! `OperatorService` (custom search attributes and namespace deletion) and `grpc.health.v1.Health`.

use std::collections::HashMap;
use std::sync::Arc;

use sundial_proto::api::enums::v1::NamespaceState;
use sundial_proto::api::operatorservice::v1 as os;
use sundial_proto::health::health_server::Health;
use sundial_proto::health::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use sundial_proto::operatorservice::operator_service_server::OperatorService;
use tonic::{Request, Response, Status};

use sundial_common::Error;
use sundial_visibility::custom::{check_new, remove_custom};

use crate::Frontend;
use crate::errors::to_status;

/// Search attributes every namespace has, as `ListSearchAttributes` reports them.
pub fn system_search_attributes() -> HashMap<String, i32> {
    sundial_visibility::system_attributes()
        .into_iter()
        .map(|(name, ty)| (name.to_string(), ty.indexed() as i32))
        .collect()
}

#[derive(Clone)]
pub struct OperatorHandler {
    pub frontend: Arc<Frontend>,
}

impl OperatorHandler {
    /// The namespace a search-attribute request names, with Temporal's messages: its operator
    /// handler asks the frontend for the namespace and reports a failure as unavailable.
    fn namespace(&self, name: &str) -> Result<String, Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument("Namespace is not set on request."));
        }
        self.frontend
            .namespaces
            .resolve(name)
            .map(|namespace| namespace.name)
            .map_err(|error| {
                Status::unavailable(format!(
                    "Unable to get namespace {name} info with error: {}",
                    to_status(error).message()
                ))
            })
    }
}

#[tonic::async_trait]
impl OperatorService for OperatorHandler {
    async fn add_search_attributes(
        &self,
        request: Request<os::AddSearchAttributesRequest>,
    ) -> Result<Response<os::AddSearchAttributesResponse>, Status> {
        let request = request.into_inner();
        if request.search_attributes.is_empty() {
            return Err(Status::invalid_argument(
                "SearchAttributes are not set on request.",
            ));
        }
        // Checks that need no namespace come first, as in Temporal.
        check_new(&request.search_attributes).map_err(Status::invalid_argument)?;
        let namespace = self.namespace(&request.namespace)?;
        self.frontend
            .namespaces
            .add_search_attributes(&namespace, &request.search_attributes)
            .await
            .map_err(to_status)?;
        Ok(Response::new(os::AddSearchAttributesResponse {}))
    }

    async fn remove_search_attributes(
        &self,
        request: Request<os::RemoveSearchAttributesRequest>,
    ) -> Result<Response<os::RemoveSearchAttributesResponse>, Status> {
        let request = request.into_inner();
        if request.search_attributes.is_empty() {
            return Err(Status::invalid_argument(
                "SearchAttributes are not set on request.",
            ));
        }
        let namespace = self.namespace(&request.namespace)?;
        self.frontend
            .namespaces
            .modify(&namespace, |description| {
                let config = description.config.get_or_insert_with(Default::default);
                let freed = remove_custom(
                    &config.custom_search_attribute_aliases,
                    &request.search_attributes,
                )
                .map_err(Error::invalid)?;
                for slot in &freed {
                    config.custom_search_attribute_aliases.remove(slot);
                }
                Ok(!freed.is_empty())
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(os::RemoveSearchAttributesResponse {}))
    }

    async fn list_search_attributes(
        &self,
        request: Request<os::ListSearchAttributesRequest>,
    ) -> Result<Response<os::ListSearchAttributesResponse>, Status> {
        let request = request.into_inner();
        let namespace = self.namespace(&request.namespace)?;
        let custom_attributes = self
            .frontend
            .namespaces
            .custom_attributes(&namespace)
            .into_iter()
            .map(|(name, ty)| (name, ty.indexed() as i32))
            .collect();
        Ok(Response::new(os::ListSearchAttributesResponse {
            custom_attributes,
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
