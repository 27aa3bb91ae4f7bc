//! The namespace registry: namespaces are few and read on every request, so they are cached in
//! memory and written through to the store.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prost::Message;
use sundial_common::{Error, Result, new_uuid};
use sundial_persistence::{NamespaceRecord, Store};
use sundial_proto::api::enums::v1::{ArchivalState, NamespaceState};
use sundial_proto::api::namespace::v1::{
    NamespaceConfig, NamespaceInfo, namespace_info::Capabilities,
};
use sundial_proto::api::replication::v1::{ClusterReplicationConfig, NamespaceReplicationConfig};
use sundial_proto::api::workflowservice::v1::DescribeNamespaceResponse;
use sundial_proto::prost_types::Duration;
use sundial_rpc::NamespaceRef;
use sundial_visibility::SaType;
use sundial_visibility::custom::{add_custom, custom_attributes};

pub const CLUSTER_NAME: &str = "active";

pub struct Namespaces {
    store: Arc<dyn Store>,
    by_name: RwLock<HashMap<String, DescribeNamespaceResponse>>,
    /// Serializes read-modify-write changes ([`Namespaces::modify`]) so none is lost.
    changes: tokio::sync::Mutex<()>,
}

/// What Sundial supports, as the flags SDKs read from DescribeNamespace.
pub fn capabilities() -> Capabilities {
    Capabilities {
        eager_workflow_start: false,
        sync_update: false,
        async_update: false,
        worker_heartbeats: false,
        ..Default::default()
    }
}

pub fn new_namespace(
    name: &str,
    description: String,
    owner_email: String,
    data: HashMap<String, String>,
    retention: Option<Duration>,
) -> DescribeNamespaceResponse {
    DescribeNamespaceResponse {
        namespace_info: Some(NamespaceInfo {
            name: name.to_string(),
            state: NamespaceState::Registered as i32,
            description,
            owner_email,
            data,
            id: new_uuid(),
            capabilities: Some(capabilities()),
            supports_schedules: false,
            ..Default::default()
        }),
        config: Some(NamespaceConfig {
            workflow_execution_retention_ttl: retention.or(Some(Duration {
                seconds: 86_400,
                nanos: 0,
            })),
            // Sundial has no archival: say so, as Temporal does where archival is off.
            history_archival_state: ArchivalState::Disabled as i32,
            visibility_archival_state: ArchivalState::Disabled as i32,
            bad_binaries: Some(Default::default()),
            ..Default::default()
        }),
        replication_config: Some(NamespaceReplicationConfig {
            active_cluster_name: CLUSTER_NAME.into(),
            clusters: vec![ClusterReplicationConfig {
                cluster_name: CLUSTER_NAME.into(),
                ..Default::default()
            }],
            // Temporal leaves a local namespace's replication state unspecified.
            state: 0,
        }),
        failover_version: 0,
        is_global_namespace: false,
        ..Default::default()
    }
}

impl Namespaces {
    pub async fn load(store: Arc<dyn Store>) -> Result<Self> {
        let mut by_name = HashMap::new();
        for record in store.list_namespaces().await? {
            let mut description = DescribeNamespaceResponse::decode(record.data.as_slice())
                .map_err(|error| {
                    Error::CorruptState(format!("decode namespace {}: {error}", record.name))
                })?;
            if let Some(info) = description.namespace_info.as_mut() {
                info.capabilities = Some(capabilities());
            }
            // Namespaces stored by earlier releases said archival was enabled.
            if let Some(config) = description.config.as_mut() {
                config.history_archival_state = ArchivalState::Disabled as i32;
                config.visibility_archival_state = ArchivalState::Disabled as i32;
                config.bad_binaries.get_or_insert_with(Default::default);
            }
            if let Some(replication) = description.replication_config.as_mut() {
                replication.state = 0;
            }
            by_name.insert(record.name, description);
        }
        Ok(Namespaces {
            store,
            by_name: RwLock::new(by_name),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The name of the namespace with this id, if there is one.
    pub fn name_of(&self, id: &str) -> Option<String> {
        self.by_name
            .read()
            .iter()
            .find(|(_, description)| {
                description
                    .namespace_info
                    .as_ref()
                    .is_some_and(|i| i.id == id)
            })
            .map(|(name, _)| name.clone())
    }

    pub fn resolve(&self, name: &str) -> Result<NamespaceRef> {
        if name.is_empty() {
            return Err(Error::invalid("Namespace not set on request."));
        }
        let by_name = self.by_name.read();
        let Some(description) = by_name.get(name) else {
            return Err(Error::NamespaceNotFound(name.to_string()));
        };
        let info = description
            .namespace_info
            .as_ref()
            .expect("namespaces always have info");
        if info.state == NamespaceState::Deleted as i32 {
            return Err(Error::NamespaceNotFound(name.to_string()));
        }
        Ok(NamespaceRef {
            id: info.id.clone(),
            name: name.to_string(),
        })
    }

    /// The namespace's custom search attributes (name -> type); empty for an unknown namespace.
    pub fn custom_attributes(&self, name: &str) -> HashMap<String, SaType> {
        self.by_name
            .read()
            .get(name)
            .and_then(|description| description.config.as_ref())
            .map(|config| custom_attributes(&config.custom_search_attribute_aliases))
            .unwrap_or_default()
    }

    /// Changes a namespace with `change`, which sees its current description and says whether
    /// it changed anything; changes to namespaces are applied one at a time.
    pub async fn modify(
        &self,
        name: &str,
        change: impl FnOnce(&mut DescribeNamespaceResponse) -> Result<bool>,
    ) -> Result<DescribeNamespaceResponse> {
        let _one_at_a_time = self.changes.lock().await;
        let mut description = self.describe(name, "")?;
        if change(&mut description)? {
            self.update(description.clone()).await?;
        }
        Ok(description)
    }

    /// Registers custom search attributes (name -> `IndexedValueType`) in a namespace, as
    /// `AddSearchAttributes` does: names it has are skipped, and a type without a free slot
    /// fails the whole request.
    pub async fn add_search_attributes(
        &self,
        name: &str,
        requested: &HashMap<String, i32>,
    ) -> Result<()> {
        self.modify(name, |description| {
            let config = description.config.get_or_insert_with(Default::default);
            let added = add_custom(&config.custom_search_attribute_aliases, requested)
                .map_err(Error::invalid)?;
            let changed = !added.is_empty();
            config.custom_search_attribute_aliases.extend(added);
            Ok(changed)
        })
        .await
        .map(|_| ())
    }

    pub fn describe(&self, name: &str, id: &str) -> Result<DescribeNamespaceResponse> {
        let by_name = self.by_name.read();
        let found = if name.is_empty() {
            by_name
                .values()
                .find(|d| d.namespace_info.as_ref().is_some_and(|info| info.id == id))
        } else {
            by_name.get(name)
        };
        found.cloned().ok_or_else(|| {
            Error::NamespaceNotFound(if name.is_empty() {
                id.to_string()
            } else {
                name.to_string()
            })
        })
    }

    pub fn list(&self) -> Vec<DescribeNamespaceResponse> {
        let by_name = self.by_name.read();
        let mut all: Vec<_> = by_name.values().cloned().collect();
        all.sort_by(|a, b| {
            let name = |d: &DescribeNamespaceResponse| {
                d.namespace_info
                    .as_ref()
                    .map(|i| i.name.clone())
                    .unwrap_or_default()
            };
            name(a).cmp(&name(b))
        });
        all
    }

    pub async fn register(&self, description: DescribeNamespaceResponse) -> Result<()> {
        let info = description
            .namespace_info
            .clone()
            .expect("registered namespaces have info");
        if self.by_name.read().contains_key(&info.name) {
            return Err(Error::NamespaceAlreadyExists(info.name));
        }
        self.store
            .create_namespace(NamespaceRecord {
                id: info.id.clone(),
                name: info.name.clone(),
                data: description.encode_to_vec(),
            })
            .await?;
        self.by_name.write().insert(info.name, description);
        Ok(())
    }

    pub async fn update(&self, description: DescribeNamespaceResponse) -> Result<()> {
        let info = description
            .namespace_info
            .clone()
            .expect("namespaces have info");
        self.store
            .update_namespace(NamespaceRecord {
                id: info.id.clone(),
                name: info.name.clone(),
                data: description.encode_to_vec(),
            })
            .await?;
        self.by_name.write().insert(info.name, description);
        Ok(())
    }

    /// Creates a namespace at startup unless it exists.
    pub async fn ensure(&self, name: &str) -> Result<()> {
        if self.by_name.read().contains_key(name) {
            return Ok(());
        }
        let description = new_namespace(name, String::new(), String::new(), HashMap::new(), None);
        match self.register(description).await {
            Ok(()) | Err(Error::NamespaceAlreadyExists(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
