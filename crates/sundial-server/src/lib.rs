//! Wiring: builds the store, matching, history and frontend, and serves them on one gRPC port.
//! The binary (`main.rs`) and the integration tests both start servers through `DevServer`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::RwLock;
use sundial_common::SystemClock;
use sundial_frontend::{Frontend, HealthService, Namespaces, OperatorHandler, WorkflowHandler};
use sundial_history::{HistoryConfig, HistoryService};
use sundial_matching::Matching;
use sundial_persistence::{SqlOptions, SqliteOptions, SqliteStore, Store};
use sundial_proto::health::health_server::HealthServer;
use sundial_proto::operatorservice::operator_service_server::OperatorServiceServer;
use sundial_proto::workflowservice::workflow_service_server::WorkflowServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tracing::info;

pub mod config;
pub mod dynamic;
pub mod schema_tool;

/// The cluster's name, as in Temporal's single-cluster `clusterMetadata`.
pub const CLUSTER_NAME: &str = "active";

/// Temporal accepts messages far above gRPC's 4 MiB default (payload limits are enforced per blob).
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DevServerOptions {
    pub ip: String,
    /// 0 picks a free port.
    pub port: u16,
    pub db_filename: PathBuf,
    /// Nothing is synced to disk: for throwaway servers only.
    pub durable: bool,
    /// Keep everything in this PostgreSQL or MySQL database instead of the SQLite file.
    pub database: Option<SqlOptions>,
    pub namespaces: Vec<String>,
    /// Custom search attributes (name -> `IndexedValueType`) registered at start in every
    /// namespace created at start (`start-dev --search-attribute`).
    pub search_attributes: std::collections::HashMap<String, i32>,
    /// Create namespace `default` at start (`start-dev` does; Temporal's `start` does not).
    pub create_default_namespace: bool,
    pub num_shards: u32,
    /// Limits and defaults for history (Temporal's defaults unless overridden).
    pub limits: sundial_history_core::Limits,
    /// Frontend request rates; `start-dev` runs without limits unless configured.
    pub rate_limits: sundial_frontend::rate_limit::RateLimits,
    /// Dynamic config source URL (`file://`, `etcd://`, `configmap://`). When set, limits and
    /// rates come from it and follow its changes; `limits` and `rate_limits` are ignored.
    pub dynamic_config: Option<String>,
    /// Where to serve `/metrics` and `/debug/dynconfig` (port 0 picks one); `None` serves nothing.
    pub metrics_address: Option<SocketAddr>,
    /// How long a cached run sits idle before its state is kept encoded (1 s in `start-dev`).
    pub compact_idle_after: std::time::Duration,
    /// How far ahead timers are held in memory (10 s in `start-dev`); later ones wait in the
    /// database's due-work index.
    pub timer_horizon: std::time::Duration,
    /// Puts something between matching and its callers (history and the frontend): the place
    /// where a remote matching client goes, and where tests inject matching's faults.
    pub wrap_matching: Option<WrapMatching>,
    /// Puts something between history and its callers (the frontend, and history's own
    /// cross-run work: children, external signals and cancels, parent notifications): where a
    /// remote history client goes, and where tests inject history's faults.
    pub wrap_history: Option<WrapHistory>,
}

/// A function from the in-process history to what the frontend and history's cross-run work
/// call instead.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct WrapHistory(
    pub  Arc<
        dyn Fn(Arc<dyn sundial_rpc::HistoryApi>) -> Arc<dyn sundial_rpc::HistoryApi> + Send + Sync,
    >,
);

impl std::fmt::Debug for WrapHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrapHistory(..)")
    }
}

/// A function from the in-process matching to what history and the frontend call instead.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct WrapMatching(
    pub  Arc<
        dyn Fn(Arc<dyn sundial_rpc::MatchingApi>) -> Arc<dyn sundial_rpc::MatchingApi>
            + Send
            + Sync,
    >,
);

impl std::fmt::Debug for WrapMatching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrapMatching(..)")
    }
}

/// A running all-in-one server.
pub struct DevServer {
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    store: Arc<dyn Store>,
    /// Where metrics are served, when they are.
    pub metrics_address: Option<SocketAddr>,
    settings: Arc<dynamic::Settings>,
    history: HistoryService,
    _config_subscription: sundial_dynconfig::Subscription,
}

impl DevServer {
    pub async fn start(options: DevServerOptions) -> anyhow::Result<DevServer> {
        let store: Arc<dyn Store> = match &options.database {
            Some(database) => sundial_persistence::open_server_store(database.clone())
                .await
                .with_context(|| format!("open database {}", database.describe()))?,
            None => Arc::new(
                SqliteStore::open(SqliteOptions {
                    path: options.db_filename.clone(),
                    durable: options.durable,
                })
                .with_context(|| format!("open database {}", options.db_filename.display()))?,
            ),
        };
        let stored_shards = store
            .init_cluster(CLUSTER_NAME, options.num_shards)
            .await
            .context("read cluster metadata")?;
        if stored_shards != options.num_shards {
            anyhow::bail!(
                "numHistoryShards is {} here, but this database was created with {stored_shards} \
                 history shards; the shard count is fixed when a cluster is created, so set it \
                 back to {stored_shards}",
                options.num_shards
            );
        }
        let dyn_store = store.clone();
        let namespaces = Arc::new(
            Namespaces::load(dyn_store.clone())
                .await
                .context("load namespaces")?,
        );
        let prometheus = prometheus::Registry::new();
        let settings = Arc::new(
            dynamic::Settings::open(options.dynamic_config.as_deref(), &prometheus).await?,
        );
        let (history_limits, rate_limits) = match options.dynamic_config {
            Some(_) => (settings.history_limits(), settings.rate_limits()),
            None => (options.limits.clone(), options.rate_limits),
        };
        let mut matching: Arc<dyn sundial_rpc::MatchingApi> = Arc::new(Matching::with_partitions(
            Box::new(dynamic::LivePartitions {
                settings: settings.clone(),
                namespaces: namespaces.clone(),
            }),
        ));
        if let Some(wrap) = &options.wrap_matching {
            matching = (wrap.0)(matching);
        }
        let config = HistoryConfig {
            num_shards: options.num_shards,
            limits: history_limits,
            cache_capacity: settings.cache_size(),
            compact_idle_after: options.compact_idle_after,
            timer_horizon: options.timer_horizon,
        };
        let limits = config.limits.clone();
        let history = HistoryService::new(
            dyn_store.clone(),
            matching.clone(),
            Arc::new(SystemClock),
            config,
        );
        if options.create_default_namespace {
            namespaces
                .ensure("default")
                .await
                .context("create namespace default")?;
        }
        for namespace in &options.namespaces {
            namespaces
                .ensure(namespace)
                .await
                .with_context(|| format!("create namespace {namespace}"))?;
        }
        if !options.search_attributes.is_empty() {
            let created = options
                .create_default_namespace
                .then_some("default")
                .into_iter()
                .chain(options.namespaces.iter().map(String::as_str));
            for namespace in created {
                namespaces
                    .add_search_attributes(namespace, &options.search_attributes)
                    .await
                    .with_context(|| format!("register search attributes in {namespace}"))?;
            }
        }
        history.set_eager_activities(settings.eager_activities());
        history.set_update_limits(settings.update_limits());
        let registry = namespaces.clone();
        history.set_custom_search_attributes(Arc::new(move |namespace: &str| {
            registry.custom_attributes(namespace)
        }));
        let mut history_client: Arc<dyn sundial_rpc::HistoryApi> = Arc::new(history.clone());
        if let Some(wrap) = &options.wrap_history {
            history_client = (wrap.0)(history_client);
            history.set_peer(history_client.clone());
        }
        history.start().await.context("start history service")?;
        let history_handle = history.clone();
        let frontend = Arc::new(Frontend {
            history: history_client,
            matching,
            namespaces,
            limits: RwLock::new(Arc::new(limits)),
            num_shards: options.num_shards,
            store: dyn_store,
            rate_limiter: sundial_frontend::rate_limit::RateLimiter::new(rate_limits),
        });
        if options.dynamic_config.is_some() {
            frontend
                .rate_limiter
                .set_namespace_rates(settings.namespace_rates());
        }
        let config_subscription = {
            let settings_for_changes = settings.clone();
            let frontend = frontend.clone();
            let history = history_handle.clone();
            let follow = options.dynamic_config.is_some();
            settings.source().subscribe(Box::new(move |changes| {
                if !follow {
                    return;
                }
                let limits = settings_for_changes.history_limits();
                history.set_limits(limits.clone());
                history.set_cache_capacity(settings_for_changes.cache_size());
                history.set_eager_activities(settings_for_changes.eager_activities());
                history.set_update_limits(settings_for_changes.update_limits());
                *frontend.limits.write() = Arc::new(limits);
                frontend
                    .rate_limiter
                    .set_limits(settings_for_changes.rate_limits());
                frontend
                    .rate_limiter
                    .set_namespace_rates(settings_for_changes.namespace_rates());
                info!(
                    changed_keys = changes.len(),
                    "applied dynamic config change"
                );
            }))
        };
        let metrics_address = match options.metrics_address {
            Some(address) => {
                Some(dynamic::serve_metrics(address, prometheus, settings.source().clone()).await?)
            }
            None => None,
        };
        let listener = TcpListener::bind((options.ip.as_str(), options.port))
            .await
            .with_context(|| format!("bind {}:{}", options.ip, options.port))?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_receiver) = oneshot::channel::<()>();
        let workflow = WorkflowServiceServer::new(WorkflowHandler {
            frontend: frontend.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let operator = OperatorServiceServer::new(OperatorHandler {
            frontend: frontend.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(workflow)
                .add_service(operator)
                .add_service(
                    HealthServer::new(HealthService)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .send_compressed(CompressionEncoding::Gzip),
                )
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = shutdown_receiver.await;
                    },
                )
                .await
                .context("serve gRPC")
        });
        let db = match &options.database {
            Some(database) => database.describe(),
            None => options.db_filename.display().to_string(),
        };
        info!(%address, %db, "sundial is serving");
        Ok(DevServer {
            address,
            shutdown: Some(shutdown),
            task,
            metrics_address,
            settings,
            history: history_handle,
            _config_subscription: config_subscription,
            store,
        })
    }

    /// The history service (for tests that look at its state).
    pub fn history(&self) -> &HistoryService {
        &self.history
    }

    /// The database (for tests that act as another owner of its shards).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stops accepting requests, lets running ones finish, lets the shards go and closes the
    /// database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let outcome = (&mut self.task).await;
        self.history.stop();
        self.settings.source().stop().await;
        self.store.close();
        outcome.context("server task")?
    }
}
