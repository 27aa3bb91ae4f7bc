//! The Kubernetes ConfigMap source (spec §9): one ConfigMap whose data key (`config.yaml`)
//! holds the whole document. Created if missing, missing defaults appended without touching
//! existing text, watched from the last resourceVersion, relisted on 410 or errors with
//! backoff, resynced periodically, written with optimistic concurrency and conflict retry.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::constraints::ConstrainedValue;
use crate::etcd::DEFAULTS_DOCUMENT;
use crate::load::{Parsed, parse_document, render_document};
use crate::metrics::{Metrics, REASON_ERROR, REASON_GONE, REASON_STREAM_ENDED};
use crate::setting::{Registry, normalize_key};
use crate::source::{ConfigEntries, Error, KeyEntry, Source, SourceState, validate_write};

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const WRITE_ATTEMPTS: usize = 5;
/// The API server's limit on a ConfigMap's data.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// ConfigMap source configuration (spec §9.1).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigMapConfig {
    pub namespace: String,
    pub name: String,
    pub data_key: String,
    pub resync_interval: Duration,
    pub watch_timeout_seconds: u32,
    /// Create the ConfigMap with the defaults document when it is missing.
    pub create_if_missing: bool,
    /// Append default keys missing from the document.
    pub seed_defaults: bool,
    /// API server URL; when empty, in-cluster config then kubeconfig are used.
    pub cluster_url: String,
}

impl Default for ConfigMapConfig {
    fn default() -> Self {
        ConfigMapConfig {
            namespace: String::new(),
            name: "sundial-dynamic-config".into(),
            data_key: "config.yaml".into(),
            resync_interval: Duration::from_secs(300),
            watch_timeout_seconds: 290,
            create_if_missing: true,
            seed_defaults: true,
            cluster_url: String::new(),
        }
    }
}

impl ConfigMapConfig {
    /// Fills empty fields from `TEMPORAL_K8S_NAMESPACE`, `DYNCONFIG_CONFIGMAP_NAME` and
    /// `DYNCONFIG_DATA_KEY`, then the pod's service-account namespace, then `default`.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if self.namespace.is_empty() {
            self.namespace = lookup("TEMPORAL_K8S_NAMESPACE")
                .or_else(|| {
                    std::fs::read_to_string(
                        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
                    )
                    .ok()
                    .map(|ns| ns.trim().to_string())
                })
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "default".into());
        }
        if let Some(name) = lookup("DYNCONFIG_CONFIGMAP_NAME").filter(|n| !n.is_empty()) {
            self.name = name;
        }
        if let Some(key) = lookup("DYNCONFIG_DATA_KEY").filter(|k| !k.is_empty()) {
            self.data_key = key;
        }
    }
}

/// What was last applied from the API server.
#[derive(Default)]
struct Applied {
    object: Option<ConfigMap>,
    resource_version: String,
    content_hash: u64,
    /// The parsed document (names as written), for rebuilding on writes.
    document: BTreeMap<String, Vec<ConstrainedValue>>,
}

struct Inner {
    config: ConfigMapConfig,
    api: Api<ConfigMap>,
    state: Arc<SourceState>,
    applied: Mutex<Applied>,
    deleted: AtomicBool,
}

pub struct ConfigMapSource {
    inner: Arc<Inner>,
    stop_sender: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn resource_version_number(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

impl ConfigMapSource {
    /// Startup per spec §9.2. Any failure before the watch starts fails construction.
    pub async fn connect(
        config: ConfigMapConfig,
        registry: Arc<Registry>,
        metrics: Metrics,
    ) -> Result<ConfigMapSource, Error> {
        let client = if config.cluster_url.is_empty() {
            let kube_config = kube::Config::infer()
                .await
                .map_err(|e| Error::Config(format!("kubernetes config: {e}")))?;
            Client::try_from(kube_config)
                .map_err(|e| Error::Config(format!("kubernetes client: {e}")))?
        } else {
            let url = config
                .cluster_url
                .parse()
                .map_err(|e| Error::Config(format!("cluster url {}: {e}", config.cluster_url)))?;
            Client::try_from(kube::Config::new(url))
                .map_err(|e| Error::Config(format!("kubernetes client: {e}")))?
        };
        let api = Api::namespaced(client, &config.namespace);
        let state = SourceState::new(registry, metrics);
        let inner = Arc::new(Inner {
            config,
            api,
            state,
            applied: Mutex::new(Applied::default()),
            deleted: AtomicBool::new(false),
        });
        let started = Instant::now();
        let object = inner.startup().await?;
        if let Err(failure) = inner.apply(&object) {
            return Err(Error::Load(failure));
        }
        inner.record_load(started);

        let (stop_sender, stop_receiver) = watch::channel(false);
        let watch_task = tokio::spawn(watch_loop(inner.clone(), stop_receiver.clone()));
        let resync_task = tokio::spawn(resync_loop(inner.clone(), stop_receiver));
        info!(
            namespace = %inner.config.namespace,
            name = %inner.config.name,
            key = %inner.config.data_key,
            "dynamic config ConfigMap source started"
        );
        Ok(ConfigMapSource {
            inner,
            stop_sender,
            tasks: Mutex::new(vec![watch_task, resync_task]),
        })
    }

    pub fn config(&self) -> &ConfigMapConfig {
        &self.inner.config
    }

    /// The resourceVersion of the last applied object.
    pub fn resource_version(&self) -> String {
        self.inner.applied.lock().resource_version.clone()
    }
}

impl Inner {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn text_of<'a>(&self, object: &'a ConfigMap) -> &'a str {
        object
            .data
            .as_ref()
            .and_then(|data| data.get(&self.config.data_key))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// GET, create if missing, seed missing defaults; returns the object to publish.
    async fn startup(&self) -> Result<ConfigMap, Error> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let object = match self.api.get_opt(self.name()).await {
                Ok(Some(object)) => object,
                Ok(None) if self.config.create_if_missing => match self.create().await? {
                    Some(object) => object,
                    None => continue,
                },
                Ok(None) => {
                    return Err(Error::Unavailable(format!(
                        "configmap {}/{} not found",
                        self.config.namespace, self.config.name
                    )));
                }
                Err(e) => return Err(Error::Unavailable(format!("get configmap: {e}"))),
            };
            let text = self.text_of(&object).to_string();
            let parsed = parse_document(&text, self.state.registry())?;
            if !self.config.seed_defaults {
                return Ok(object);
            }
            let Some(seeded) = seeded_text(&text, &parsed, self.state.registry()) else {
                return Ok(object);
            };
            let mut updated = object.clone();
            updated
                .data
                .get_or_insert_with(BTreeMap::new)
                .insert(self.config.data_key.clone(), seeded);
            match self
                .api
                .replace(self.name(), &PostParams::default(), &updated)
                .await
            {
                Ok(object) => {
                    info!(name = %self.config.name, "seeded missing dynamic config defaults into the ConfigMap");
                    return Ok(object);
                }
                Err(e) if api_code(&e) == Some(409) && attempts < WRITE_ATTEMPTS => {
                    info!("ConfigMap changed while seeding; retrying");
                }
                Err(e) => {
                    warn!(error = %e, "seeding the ConfigMap failed; continuing unseeded");
                    return Ok(object);
                }
            }
        }
    }

    /// POSTs the defaults document. `Ok(None)` when another replica created it first.
    async fn create(&self) -> Result<Option<ConfigMap>, Error> {
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                self.config.data_key.clone(),
                DEFAULTS_DOCUMENT.to_string(),
            )])),
            ..ConfigMap::default()
        };
        match self.api.create(&PostParams::default(), &object).await {
            Ok(created) => {
                info!(name = %self.config.name, "created the dynamic config ConfigMap with defaults");
                Ok(Some(created))
            }
            Err(e) if api_code(&e) == Some(409) => Ok(None),
            Err(e) => Err(Error::Unavailable(format!("create configmap: {e}"))),
        }
    }

    /// Parses and publishes an object. Skips objects older than the applied one. An invalid
    /// document keeps the old map (its resourceVersion is still remembered).
    fn apply(&self, object: &ConfigMap) -> Result<(), crate::load::LoadFailure> {
        let resource_version = object.metadata.resource_version.clone().unwrap_or_default();
        let text = self.text_of(object);
        let mut applied = self.applied.lock();
        if let (Some(new), Some(old)) = (
            resource_version_number(&resource_version),
            resource_version_number(&applied.resource_version),
        ) && new < old
        {
            return Ok(());
        }
        applied.resource_version = resource_version;
        let hash = content_hash(text);
        let parsed = match parse_document(text, self.state.registry()) {
            Ok(parsed) => parsed,
            Err(failure) => {
                for message in &failure.errors {
                    error!(name = %self.config.name, error = %message, "invalid dynamic config document in the ConfigMap; keeping the last good values");
                }
                self.state.metrics().load_failure.set(1);
                return Err(failure);
            }
        };
        for message in &parsed.warnings {
            warn!(name = %self.config.name, warning = %message, "dynamic config warning");
        }
        self.state.metrics().load_failure.set(0);
        applied.content_hash = hash;
        applied.object = Some(object.clone());
        applied.document = parsed.keys.iter().cloned().collect();
        let mut map = ConfigEntries::new();
        for (name, entries) in parsed.keys {
            map.insert(normalize_key(&name), KeyEntry::new(name, entries));
        }
        let changes = self.state.swap(map);
        drop(applied);
        self.state.notify(&changes);
        Ok(())
    }

    fn record_load(&self, started: Instant) {
        let metrics = self.state.metrics();
        metrics.keys_loaded.set(self.state.load().map.len() as i64);
        metrics
            .load_duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// GET and apply (relist or resync). Returns the object's resourceVersion.
    async fn relist(&self) -> Result<String, Error> {
        let started = Instant::now();
        match self.api.get_opt(self.name()).await {
            Ok(Some(object)) => {
                self.deleted.store(false, Ordering::Relaxed);
                let unchanged =
                    content_hash(self.text_of(&object)) == self.applied.lock().content_hash;
                if unchanged {
                    let rv = object.metadata.resource_version.clone().unwrap_or_default();
                    self.applied.lock().resource_version = rv.clone();
                } else {
                    let _ = self.apply(&object);
                }
                self.record_load(started);
                Ok(object.metadata.resource_version.unwrap_or_default())
            }
            Ok(None) => {
                error!(name = %self.config.name, "the dynamic config ConfigMap is gone; keeping the last good values");
                self.deleted.store(true, Ordering::Relaxed);
                Ok(self.applied.lock().resource_version.clone())
            }
            Err(e) => Err(Error::Unavailable(format!("get configmap: {e}"))),
        }
    }

    /// Rebuilds the document with `key` set (or removed) and PUTs it, retrying on 409.
    async fn write(&self, key: &str, entries: Option<Vec<ConstrainedValue>>) -> Result<(), Error> {
        let canonical = match &entries {
            Some(entries) => validate_write(self.state.registry(), key, entries)?,
            None => key.to_string(),
        };
        for attempt in 1..=WRITE_ATTEMPTS {
            let (object, mut document) = {
                let applied = self.applied.lock();
                let Some(object) = applied.object.clone() else {
                    return Err(Error::Unavailable("no ConfigMap loaded".into()));
                };
                (object, applied.document.clone())
            };
            let normalized = normalize_key(key);
            document.retain(|name, _| normalize_key(name) != normalized);
            if let Some(entries) = &entries {
                document.insert(canonical.clone(), entries.clone());
            }
            let text = render_document(&document).map_err(Error::Internal)?;
            if text.len() > MAX_DOCUMENT_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "the document would be {} bytes, over the ConfigMap limit of {MAX_DOCUMENT_BYTES}",
                    text.len()
                )));
            }
            let mut updated = object.clone();
            updated
                .data
                .get_or_insert_with(BTreeMap::new)
                .insert(self.config.data_key.clone(), text);
            match self
                .api
                .replace(self.name(), &PostParams::default(), &updated)
                .await
            {
                Ok(stored) => {
                    let _ = self.apply(&stored);
                    info!(key = %canonical, "wrote dynamic config to the ConfigMap");
                    return Ok(());
                }
                Err(e) if api_code(&e) == Some(409) && attempt < WRITE_ATTEMPTS => {
                    info!(attempt, "ConfigMap write conflict; re-reading and retrying");
                    self.relist().await?;
                }
                Err(e) if api_code(&e) == Some(409) => return Err(Error::Conflict(e.to_string())),
                Err(e) => return Err(Error::Unavailable(format!("replace configmap: {e}"))),
            }
        }
        Err(Error::Conflict("too many conflicts".into()))
    }
}

/// Existing text plus an appended block with the default keys it lacks; `None` if none lack.
fn seeded_text(text: &str, parsed: &Parsed, registry: &Registry) -> Option<String> {
    let defaults = parse_document(DEFAULTS_DOCUMENT, registry).ok()?;
    let present: Vec<String> = parsed
        .keys
        .iter()
        .map(|(name, _)| normalize_key(name))
        .collect();
    let missing: BTreeMap<String, Vec<ConstrainedValue>> = defaults
        .keys
        .into_iter()
        .filter(|(name, _)| !present.contains(&normalize_key(name)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let block = render_document(&missing).ok()?;
    let mut seeded = text.to_string();
    if !seeded.is_empty() && !seeded.ends_with('\n') {
        seeded.push('\n');
    }
    // A bare `---`-free append keeps one document; the comment marks what Sundial added.
    seeded.push_str("# Added by Sundial: defaults for keys this document did not set.\n");
    seeded.push_str(&block);
    Some(seeded)
}

enum WatchEnd {
    Stopped,
    /// Closed normally: re-watch from the last resourceVersion at once.
    Closed,
    /// 410: relist after backoff.
    Gone,
    /// Transport or HTTP error: relist after backoff.
    Failed,
}

async fn watch_once(
    inner: &Inner,
    resource_version: &str,
    stop: &mut watch::Receiver<bool>,
) -> WatchEnd {
    let metrics = inner.state.metrics();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={}", inner.config.name))
        .timeout(inner.config.watch_timeout_seconds);
    let stream = tokio::select! {
        _ = stop.changed() => return WatchEnd::Stopped,
        result = inner.api.watch(&params, resource_version) => result,
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) if api_code(&e) == Some(410) => return WatchEnd::Gone,
        Err(e) => {
            warn!(error = %e, "open ConfigMap watch");
            return WatchEnd::Failed;
        }
    };
    let mut stream = std::pin::pin!(stream);
    metrics.watch_active.set(1);
    let end = loop {
        let event = tokio::select! {
            _ = stop.changed() => break WatchEnd::Stopped,
            event = stream.next() => event,
        };
        match event {
            None => break WatchEnd::Closed,
            Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                inner.deleted.store(false, Ordering::Relaxed);
                let _ = inner.apply(&object);
            }
            Some(Ok(WatchEvent::Deleted(object))) => {
                error!(name = %inner.config.name, "the dynamic config ConfigMap was deleted; keeping the last good values");
                inner.deleted.store(true, Ordering::Relaxed);
                if let Some(rv) = object.metadata.resource_version {
                    inner.applied.lock().resource_version = rv;
                }
            }
            Some(Ok(WatchEvent::Bookmark(bookmark))) => {
                inner.applied.lock().resource_version = bookmark.metadata.resource_version;
            }
            Some(Ok(WatchEvent::Error(status))) if status.code == 410 => break WatchEnd::Gone,
            Some(Ok(WatchEvent::Error(status))) => {
                warn!(code = status.code, message = %status.message, "ConfigMap watch error event");
                break WatchEnd::Failed;
            }
            Some(Err(e)) => {
                warn!(error = %e, "ConfigMap watch stream failed");
                break WatchEnd::Failed;
            }
        }
    };
    metrics.watch_active.set(0);
    end
}

async fn watch_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let metrics = inner.state.metrics().clone();
    loop {
        let resource_version = inner.applied.lock().resource_version.clone();
        let reason = match watch_once(&inner, &resource_version, &mut stop).await {
            WatchEnd::Stopped => break,
            WatchEnd::Closed => {
                metrics
                    .watch_reconnects
                    .with_label_values(&[REASON_STREAM_ENDED])
                    .inc();
                continue;
            }
            WatchEnd::Gone => REASON_GONE,
            WatchEnd::Failed => REASON_ERROR,
        };
        metrics.watch_reconnects.with_label_values(&[reason]).inc();
        let mut backoff = INITIAL_BACKOFF;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    metrics.watch_active.set(0);
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            match inner.relist().await {
                Ok(_) => break,
                Err(e) => {
                    error!(error = %e, backoff_ms = backoff.as_millis() as u64, "ConfigMap relist failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    metrics.watch_active.set(0);
}

async fn resync_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(inner.config.resync_interval) => {}
        }
        if let Err(e) = inner.relist().await {
            warn!(error = %e, "ConfigMap resync failed; retrying at the next tick");
        }
    }
}

#[async_trait]
impl Source for ConfigMapSource {
    fn state(&self) -> &Arc<SourceState> {
        &self.inner.state
    }

    fn describe(&self) -> String {
        let config = &self.inner.config;
        format!(
            "configmap://{}/{}?key={}",
            config.namespace, config.name, config.data_key
        )
    }

    async fn write_config(&self, key: &str, entries: Vec<ConstrainedValue>) -> Result<(), Error> {
        let result = self.inner.write(key, Some(entries)).await;
        self.inner.state.metrics().count_write(result.is_ok());
        result
    }

    async fn delete_key(&self, key: &str) -> Result<(), Error> {
        self.inner.write(key, None).await
    }

    async fn stop(&self) {
        let _ = self.stop_sender.send(true);
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
        self.inner.state.stop();
    }
}

impl Drop for ConfigMapSource {
    fn drop(&mut self) {
        let _ = self.stop_sender.send(true);
    }
}

/// Environment-variable names the ConfigMap source reads.
pub const ENV_NAMES: [&str; 3] = [
    "TEMPORAL_K8S_NAMESPACE",
    "DYNCONFIG_CONFIGMAP_NAME",
    "DYNCONFIG_DATA_KEY",
];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn seeding_appends_only_missing_keys() {
        let registry = Registry::builtin();
        let text = "# ops-owned\nfrontend.globalRPS:\n  - value: 1234 # tuned\n";
        let parsed = parse_document(text, &registry).unwrap();
        let seeded = seeded_text(text, &parsed, &registry).unwrap();
        assert!(seeded.starts_with(text));
        let reparsed = parse_document(&seeded, &registry).unwrap();
        let map: HashMap<String, Vec<ConstrainedValue>> = reparsed
            .keys
            .into_iter()
            .map(|(k, v)| (normalize_key(&k), v))
            .collect();
        assert_eq!(map["frontend.globalrps"][0].value, crate::Value::Int(1234));
        assert!(map.contains_key("frontend.rps"));
        // Fully seeded text needs nothing more.
        let again = parse_document(&seeded, &registry).unwrap();
        assert!(seeded_text(&seeded, &again, &registry).is_none());
    }

    #[test]
    fn env_fills_empty_fields() {
        let mut config = ConfigMapConfig::default();
        let env: HashMap<&str, &str> = [
            ("TEMPORAL_K8S_NAMESPACE", "temporal"),
            ("DYNCONFIG_CONFIGMAP_NAME", "dc"),
            ("DYNCONFIG_DATA_KEY", "x.yaml"),
        ]
        .into_iter()
        .collect();
        config.apply_env(|name| env.get(name).map(|v| v.to_string()));
        assert_eq!(
            (
                config.namespace.as_str(),
                config.name.as_str(),
                config.data_key.as_str()
            ),
            ("temporal", "dc", "x.yaml")
        );
    }
}
