//! Dynamic config wiring: opens the configured source (or an empty one), derives the limits the
//! frontend and history honour, re-derives them on every pushed change, and serves Prometheus
//! metrics and the live map on the metrics port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sundial_dynconfig::setting::Filter;
use sundial_dynconfig::{
    DynamicConfig, Handle, MemorySource, Metrics, OpenOptions, Registry, Source, open_source,
    settings,
};
use sundial_frontend::rate_limit::RateLimits;
use sundial_history_core::Limits;
use tracing::info;

/// The typed handles of every setting Sundial reads.
pub struct Settings {
    source: Arc<dyn Source>,
    frontend_rps: Handle<i64>,
    namespace_rps: Handle<i64>,
    global_namespace_rps: Handle<i64>,
    blob_size_error: Handle<i64>,
    blob_size_warn: Handle<i64>,
    history_count_error: Handle<i64>,
    history_size_error: Handle<i64>,
    history_count_suggest: Handle<i64>,
    history_size_suggest: Handle<i64>,
    max_id_length: Handle<i64>,
    signals_per_execution: Handle<i64>,
    workflow_task_timeout: Handle<std::time::Duration>,
    workflow_task_retry_max_interval: Handle<std::time::Duration>,
    activity_retry: Handle<settings::RetrySettings>,
    cache_size: Handle<i64>,
    read_partitions: Handle<i64>,
    write_partitions: Handle<i64>,
    eager_activities: Handle<bool>,
    sa_keys: Handle<i64>,
    sa_value_size: Handle<i64>,
    sa_total_size: Handle<i64>,
    max_in_flight_updates: Handle<i64>,
    max_in_flight_update_payloads: Handle<i64>,
    max_total_updates: Handle<i64>,
    update_long_poll: Handle<std::time::Duration>,
}

impl Settings {
    pub async fn open(
        url: Option<&str>,
        prometheus: &prometheus::Registry,
    ) -> anyhow::Result<Settings> {
        let registry = Arc::new(Registry::builtin());
        let metrics = Metrics::register(prometheus, "frontend,history,matching,worker")
            .context("register dynamic config metrics")?;
        let source: Arc<dyn Source> = match url {
            Some(url) => open_source(url, registry, metrics, OpenOptions::SERVER)
                .await
                .with_context(|| format!("open dynamic config {url}"))?,
            None => Arc::new(MemorySource::with_metrics(registry, metrics)),
        };
        source.log_all();
        let config = DynamicConfig::new(source.clone());
        Ok(Settings {
            frontend_rps: config.handle(&settings::FRONTEND_RPS),
            namespace_rps: config.handle(&settings::FRONTEND_NAMESPACE_RPS),
            global_namespace_rps: config.handle(&settings::FRONTEND_GLOBAL_NAMESPACE_RPS),
            blob_size_error: config.handle(&settings::LIMIT_BLOB_SIZE_ERROR),
            blob_size_warn: config.handle(&settings::LIMIT_BLOB_SIZE_WARN),
            history_count_error: config.handle(&settings::LIMIT_HISTORY_COUNT_ERROR),
            history_size_error: config.handle(&settings::LIMIT_HISTORY_SIZE_ERROR),
            history_count_suggest: config
                .handle(&settings::LIMIT_HISTORY_COUNT_SUGGEST_CONTINUE_AS_NEW),
            history_size_suggest: config
                .handle(&settings::LIMIT_HISTORY_SIZE_SUGGEST_CONTINUE_AS_NEW),
            max_id_length: config.handle(&settings::LIMIT_MAX_ID_LENGTH),
            signals_per_execution: config.handle(&settings::HISTORY_MAXIMUM_SIGNALS_PER_EXECUTION),
            workflow_task_timeout: config.handle(&settings::HISTORY_DEFAULT_WORKFLOW_TASK_TIMEOUT),
            workflow_task_retry_max_interval: config
                .handle(&settings::HISTORY_WORKFLOW_TASK_RETRY_MAX_INTERVAL),
            activity_retry: config.handle(&settings::HISTORY_DEFAULT_ACTIVITY_RETRY_POLICY),
            cache_size: config.handle(&settings::HISTORY_HOST_LEVEL_CACHE_MAX_SIZE),
            read_partitions: config.handle(&settings::MATCHING_NUM_TASKQUEUE_READ_PARTITIONS),
            write_partitions: config.handle(&settings::MATCHING_NUM_TASKQUEUE_WRITE_PARTITIONS),
            eager_activities: config.handle(&settings::SYSTEM_ENABLE_ACTIVITY_EAGER_EXECUTION),
            sa_keys: config.handle(&settings::FRONTEND_SEARCH_ATTRIBUTES_NUMBER_OF_KEYS_LIMIT),
            sa_value_size: config.handle(&settings::FRONTEND_SEARCH_ATTRIBUTES_SIZE_OF_VALUE_LIMIT),
            sa_total_size: config.handle(&settings::FRONTEND_SEARCH_ATTRIBUTES_TOTAL_SIZE_LIMIT),
            max_in_flight_updates: config.handle(&settings::HISTORY_MAX_IN_FLIGHT_UPDATES),
            max_in_flight_update_payloads: config
                .handle(&settings::HISTORY_MAX_IN_FLIGHT_UPDATE_PAYLOADS),
            max_total_updates: config.handle(&settings::HISTORY_MAX_TOTAL_UPDATES),
            update_long_poll: config.handle(&settings::HISTORY_LONG_POLL_EXPIRATION_INTERVAL),
            source,
        })
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    fn is_set(&self, key: &str) -> bool {
        self.source
            .dump_all()
            .contains_key(&key.to_ascii_lowercase())
    }

    /// Request rates. `start-dev` enforces them only once they are set in the source, so a
    /// development server without dynamic config is never throttled.
    pub fn rate_limits(&self) -> RateLimits {
        let read = |handle: &Handle<i64>, key: &str| {
            if self.is_set(key) {
                handle.get(&Filter::GLOBAL) as f64
            } else {
                0.0
            }
        };
        RateLimits {
            rps: read(&self.frontend_rps, "frontend.rps"),
            namespace_rps: read(&self.namespace_rps, "frontend.namespaceRPS"),
            global_namespace_rps: read(&self.global_namespace_rps, "frontend.globalNamespaceRPS"),
        }
    }

    /// Namespace rates read per namespace, so entries constrained to one namespace apply to it;
    /// `None` while neither namespace rate key is set (no namespace limit in `start-dev`).
    pub fn namespace_rates(&self) -> Option<sundial_frontend::rate_limit::NamespaceRates> {
        let per_namespace = self.is_set("frontend.namespaceRPS");
        let global = self.is_set("frontend.globalNamespaceRPS");
        if !per_namespace && !global {
            return None;
        }
        let namespace_rps = self.namespace_rps.clone();
        let global_namespace_rps = self.global_namespace_rps.clone();
        Some(Arc::new(move |namespace: &str| {
            let filter = Filter::namespace(namespace);
            let read = |handle: &Handle<i64>, set: bool| {
                if set { handle.get(&filter) as f64 } else { 0.0 }
            };
            (
                read(&namespace_rps, per_namespace),
                read(&global_namespace_rps, global),
            )
        }))
    }

    /// Eager activity dispatch per namespace. As with Temporal's `start-dev`, it is on unless the
    /// source sets `system.enableActivityEagerExecution` (then the source decides, per namespace).
    pub fn eager_activities(&self) -> sundial_history::EagerPolicy {
        if !self.is_set("system.enableActivityEagerExecution") {
            return Arc::new(|_: &str| true);
        }
        let handle = self.eager_activities.clone();
        Arc::new(move |namespace: &str| handle.get(&Filter::namespace(namespace)))
    }

    /// The per-run update limits and the update calls' server-side wait.
    pub fn update_limits(&self) -> sundial_history::UpdateLimits {
        let global = Filter::GLOBAL;
        sundial_history::UpdateLimits {
            max_in_flight: self.max_in_flight_updates.get(&global).max(0) as usize,
            max_in_flight_payload_bytes: self.max_in_flight_update_payloads.get(&global).max(0)
                as usize,
            max_total: self.max_total_updates.get(&global).max(0) as usize,
            long_poll: self.update_long_poll.get(&global),
        }
    }

    pub fn history_limits(&self) -> Limits {
        let global = Filter::GLOBAL;
        let retry = self.activity_retry.get(&global);
        let initial_ms = retry.initial_interval.as_millis() as i64;
        Limits {
            default_workflow_task_timeout_ms: self.workflow_task_timeout.get(&global).as_millis()
                as i64,
            max_id_length: self.max_id_length.get(&global).max(1) as usize,
            blob_size_error: self.blob_size_error.get(&global).max(0) as usize,
            blob_size_warn: self.blob_size_warn.get(&global).max(0) as usize,
            history_count_error: self.history_count_error.get(&global),
            history_size_error: self.history_size_error.get(&global),
            history_count_suggest_continue_as_new: self.history_count_suggest.get(&global),
            history_size_suggest_continue_as_new: self.history_size_suggest.get(&global),
            max_signals_per_execution: self.signals_per_execution.get(&global),
            default_retry_initial_interval_ms: initial_ms.max(1),
            default_retry_backoff_coefficient: retry.backoff_coefficient,
            default_retry_maximum_interval_factor: retry.maximum_interval_coefficient.max(1.0)
                as i64,
            workflow_task_retry_max_interval_ms: self
                .workflow_task_retry_max_interval
                .get(&global)
                .as_millis() as i64,
            search_attributes: sundial_visibility::validate::SaLimits {
                max_keys: self.sa_keys.get(&global).max(0) as usize,
                max_value_size: self.sa_value_size.get(&global).max(0) as usize,
                max_total_size: self.sa_total_size.get(&global).max(0) as usize,
            },
            ..Limits::default()
        }
    }

    pub fn cache_size(&self) -> usize {
        self.cache_size.get(&Filter::GLOBAL).max(16) as usize
    }
}

/// Task-queue partition counts read live from `matching.numTaskqueueReadPartitions` and
/// `matching.numTaskqueueWritePartitions`, constrained by namespace, queue and task type.
pub struct LivePartitions {
    pub settings: Arc<Settings>,
    pub namespaces: Arc<sundial_frontend::Namespaces>,
}

impl sundial_matching::PartitionCounts for LivePartitions {
    fn partitions(&self, namespace_id: &str, task_queue: &str, activity: bool) -> (usize, usize) {
        use sundial_proto::api::enums::v1::TaskQueueType;
        let name = self.namespaces.name_of(namespace_id).unwrap_or_default();
        let task_type = if activity {
            TaskQueueType::Activity
        } else {
            TaskQueueType::Workflow
        } as i32;
        let filter = Filter {
            namespace_id,
            ..Filter::task_queue(&name, task_queue, task_type)
        };
        let read = self.settings.read_partitions.get(&filter);
        let write = self.settings.write_partitions.get(&filter);
        // Bounded so a typo cannot make every add scan thousands of partitions.
        let clamp = |value: i64| value.clamp(1, 1000) as usize;
        (clamp(read), clamp(write))
    }
}

/// Serves `/metrics` (Prometheus text) and `/debug/dynconfig` (the live map as JSON).
pub async fn serve_metrics(
    address: SocketAddr,
    prometheus: prometheus::Registry,
    source: Arc<dyn Source>,
) -> anyhow::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("bind metrics port {address}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let prometheus = prometheus.clone();
                async move { sundial_dynconfig::metrics::render(&prometheus) }
            }),
        )
        .route(
            "/debug/dynconfig",
            get(move || {
                let source = source.clone();
                async move { axum::Json(source.state().debug_json()) }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    info!(address = %bound, "metrics and dynamic config debug endpoint listening");
    Ok(bound)
}
