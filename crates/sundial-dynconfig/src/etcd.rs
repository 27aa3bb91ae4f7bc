//! The etcd source (spec §8): one etcd key per setting under a prefix, each value an entry
//! list (§3.2). Bulk load, watch from the next revision, reload with backoff on compaction
//! or stream end, defaults seeding that never overwrites, validated writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, TlsOptions, Txn, TxnOp, WatchOptions,
};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::constraints::ConstrainedValue;
use crate::load::{parse_document, parse_entry_list, render_entry_list};
use crate::metrics::{Metrics, REASON_COMPACTED, REASON_STREAM_ENDED};
use crate::setting::{Registry, normalize_key};
use crate::source::{ConfigEntries, Error, KeyEntry, Source, SourceState, validate_write};

/// The embedded defaults document seeded into an empty prefix (and a new ConfigMap).
pub const DEFAULTS_DOCUMENT: &str = include_str!("defaults.yaml");

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTIVITY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTIVITY_BACKOFFS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(4)];
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One etcd cluster (`etcdConfigs[]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdCluster {
    pub name: String,
    pub endpoints: Vec<String>,
}

/// etcd source configuration (spec §8.1). Field names match the YAML config of the
/// etcd-backed Temporal client, so existing configs carry over.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct EtcdConfig {
    pub etcd_configs: Vec<EtcdCluster>,
    pub global_key_prefix: String,
    pub client_name: String,
    #[serde(rename = "disableTLS")]
    pub disable_tls: bool,
    pub client_tls_ca_cert_file: String,
    pub client_tls_cert_file: String,
    pub client_tls_key_file: String,
    /// TLS server name; `clientName` when empty.
    pub tls_server_name: String,
    #[serde(with = "humantime_secs")]
    pub dial_timeout: Duration,
    pub max_call_send_msg_size: usize,
    /// Seed missing keys from the embedded defaults document (on by default).
    pub seed_defaults: bool,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            etcd_configs: Vec::new(),
            global_key_prefix: String::new(),
            client_name: String::new(),
            disable_tls: false,
            client_tls_ca_cert_file: String::new(),
            client_tls_cert_file: String::new(),
            client_tls_key_file: String::new(),
            tls_server_name: String::new(),
            dial_timeout: Duration::from_secs(2),
            max_call_send_msg_size: 4 * 1024 * 1024,
            seed_defaults: true,
        }
    }
}

mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    use crate::convert::convert_duration_nanos;
    use crate::duration::nanos_to_duration;
    use crate::value::Value;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        convert_duration_nanos(&Value::from_json(&json))
            .map(nanos_to_duration)
            .map_err(serde::de::Error::custom)
    }
}

impl EtcdConfig {
    /// A plain-text config for `endpoints` and `prefix` (the `etcd://` URL form).
    pub fn new(endpoints: Vec<String>, prefix: impl Into<String>) -> Self {
        EtcdConfig {
            etcd_configs: vec![EtcdCluster {
                name: "default".into(),
                endpoints,
            }],
            global_key_prefix: prefix.into(),
            client_name: "sundial".into(),
            disable_tls: true,
            ..EtcdConfig::default()
        }
    }

    /// Applies `ETCD_ENDPOINTS` (comma-separated), `ETCD_KEY_PREFIX`, `ETCD_CLIENT_NAME` and
    /// `ETCD_DISABLE_TLS` from `lookup` (normally `std::env::var`).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(endpoints) = lookup("ETCD_ENDPOINTS") {
            let endpoints: Vec<String> = endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
            match self.etcd_configs.first_mut() {
                Some(cluster) => cluster.endpoints = endpoints,
                None => self.etcd_configs.push(EtcdCluster {
                    name: "default".into(),
                    endpoints,
                }),
            }
        }
        if let Some(prefix) = lookup("ETCD_KEY_PREFIX") {
            self.global_key_prefix = prefix;
        }
        if let Some(name) = lookup("ETCD_CLIENT_NAME") {
            self.client_name = name;
        }
        if let Some(disable) = lookup("ETCD_DISABLE_TLS") {
            self.disable_tls = matches!(
                disable.to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            );
        }
    }

    /// Checks required fields (spec §8.1); the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let missing = |field: &str| Err(Error::Config(format!("etcd config: {field} is required")));
        let Some(cluster) = self.etcd_configs.first() else {
            return missing("etcdConfigs");
        };
        if cluster.name.is_empty() {
            return missing("etcdConfigs[0].name");
        }
        if cluster.endpoints.is_empty() {
            return missing("etcdConfigs[0].endpoints");
        }
        if self.global_key_prefix.is_empty() {
            return missing("globalKeyPrefix");
        }
        if self.client_name.is_empty() {
            return missing("clientName");
        }
        if !self.disable_tls {
            if self.client_tls_ca_cert_file.is_empty() {
                return missing("clientTlsCaCertFile");
            }
            if self.client_tls_cert_file.is_empty() {
                return missing("clientTlsCertFile");
            }
            if self.client_tls_key_file.is_empty() {
                return missing("clientTlsKeyFile");
            }
        }
        Ok(())
    }

    fn connect_options(&self) -> Result<ConnectOptions, Error> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_require_leader(true);
        if !self.disable_tls {
            let read = |path: &str| {
                std::fs::read(path)
                    .map_err(|e| Error::Config(format!("etcd config: read {path}: {e}")))
            };
            let ca = read(&self.client_tls_ca_cert_file)?;
            let cert = read(&self.client_tls_cert_file)?;
            let key = read(&self.client_tls_key_file)?;
            for (what, pem) in [
                ("CA certificate", &ca),
                ("client certificate", &cert),
                ("client key", &key),
            ] {
                if !String::from_utf8_lossy(pem).contains("-----BEGIN") {
                    return Err(Error::Config(format!("etcd config: {what} is not PEM")));
                }
            }
            let server_name = if self.tls_server_name.is_empty() {
                &self.client_name
            } else {
                &self.tls_server_name
            };
            let tls = TlsOptions::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key))
                .domain_name(server_name.clone());
            options = options.with_tls(tls);
        }
        Ok(options)
    }

    fn endpoints(&self) -> Vec<String> {
        let cluster = self.etcd_configs.first().expect("validated: one cluster");
        cluster
            .endpoints
            .iter()
            .map(|endpoint| {
                if endpoint.contains("://") {
                    endpoint.clone()
                } else if self.disable_tls {
                    format!("http://{endpoint}")
                } else {
                    format!("https://{endpoint}")
                }
            })
            .collect()
    }
}

/// One etcd key (prefix removed, spelling as stored).
#[derive(Debug, Clone)]
struct RawKey {
    mod_revision: i64,
    /// The last entries that parsed, or `None` if this key never parsed.
    entries: Option<Vec<ConstrainedValue>>,
}

/// What the source knows of etcd: raw keys and the revision they reflect.
#[derive(Default)]
struct Known {
    keys: HashMap<String, RawKey>,
    revision: i64,
}

impl Known {
    /// The published view: per normalised key, the spelling with the highest mod revision
    /// that has parsed entries (spec §8.4 case collisions).
    fn entries(&self) -> ConfigEntries {
        let mut winners: HashMap<String, (&str, &RawKey)> = HashMap::new();
        for (name, raw) in &self.keys {
            if raw.entries.is_none() {
                continue;
            }
            let normalized = normalize_key(name);
            match winners.get(&normalized) {
                Some((_, current)) if current.mod_revision >= raw.mod_revision => {}
                _ => {
                    winners.insert(normalized, (name, raw));
                }
            }
        }
        winners
            .into_iter()
            .map(|(normalized, (name, raw))| {
                let entries = raw.entries.clone().expect("filtered to parsed keys");
                (normalized, KeyEntry::new(name, entries))
            })
            .collect()
    }

    fn spellings_of(&self, key: &str) -> Vec<String> {
        let normalized = normalize_key(key);
        self.keys
            .keys()
            .filter(|name| normalize_key(name) == normalized)
            .cloned()
            .collect()
    }
}

struct Inner {
    config: EtcdConfig,
    client: Client,
    state: Arc<SourceState>,
    known: Mutex<Known>,
    paused: watch::Sender<bool>,
}

/// The etcd source. Construct with [`EtcdSource::connect`].
pub struct EtcdSource {
    inner: Arc<Inner>,
    stop_sender: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl EtcdSource {
    /// Validates, connects (3 attempts), bulk-loads, seeds defaults and starts the watch
    /// (spec §8.2). Any failure before the watch fails construction.
    pub async fn connect(
        config: EtcdConfig,
        registry: Arc<Registry>,
        metrics: Metrics,
    ) -> Result<EtcdSource, Error> {
        config.validate()?;
        let options = config.connect_options()?;
        let client = Client::connect(config.endpoints(), Some(options))
            .await
            .map_err(|e| Error::Unavailable(format!("connect to etcd: {e}")))?;
        check_connectivity(&client, &config).await?;

        let state = SourceState::new(registry, metrics);
        let (paused, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            client,
            state,
            known: Mutex::new(Known::default()),
            paused,
        });
        inner.reload().await?;
        if inner.config.seed_defaults && inner.seed_defaults().await > 0 {
            inner.reload().await?;
        }
        let start_revision = inner.known.lock().revision + 1;
        let (stop_sender, stop_receiver) = watch::channel(false);
        let task = tokio::spawn(supervise(inner.clone(), start_revision, stop_receiver));
        info!(
            client = %inner.config.client_name,
            prefix = %inner.config.global_key_prefix,
            revision = start_revision - 1,
            "dynamic config etcd source started"
        );
        Ok(EtcdSource {
            inner,
            stop_sender,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }

    /// The etcd revision the published map reflects.
    pub fn revision(&self) -> i64 {
        self.inner.known.lock().revision
    }

    /// Test hook: while paused, the supervisor closes its watch and opens none; on resume
    /// it re-watches from the last revision it saw (no reload), as after a network gap.
    #[doc(hidden)]
    pub fn pause_watch(&self, paused: bool) {
        self.inner.paused.send_replace(paused);
    }
}

async fn check_connectivity(client: &Client, config: &EtcdConfig) -> Result<(), Error> {
    let probe_key = format!("{}__sundial_connectivity_check", config.global_key_prefix);
    let mut last_error = String::new();
    for attempt in 0..=CONNECTIVITY_BACKOFFS.len() {
        if attempt > 0 {
            tokio::time::sleep(CONNECTIVITY_BACKOFFS[attempt - 1]).await;
        }
        let mut kv = client.kv_client();
        let request = kv.get(
            probe_key.clone(),
            Some(GetOptions::new().with_serializable()),
        );
        match tokio::time::timeout(CONNECTIVITY_TIMEOUT, request).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = "timed out".to_string(),
        }
        warn!(attempt = attempt + 1, error = %last_error, "etcd connectivity check failed");
    }
    Err(Error::Unavailable(format!(
        "etcd unreachable after {} attempts: {last_error}",
        CONNECTIVITY_BACKOFFS.len() + 1
    )))
}

impl Inner {
    fn prefix(&self) -> &str {
        &self.config.global_key_prefix
    }

    fn kv(&self) -> etcd_client::KvClient {
        let size = self.config.max_call_send_msg_size;
        self.client
            .kv_client()
            .max_encoding_message_size(size)
            .max_decoding_message_size(size)
    }

    /// Full load off to the side, then one diff-and-publish (spec §8.3 "no lost updates").
    /// A key whose value does not parse keeps its previous entries.
    async fn reload(&self) -> Result<(), Error> {
        let started = Instant::now();
        let response = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.kv()
                .get(self.prefix(), Some(GetOptions::new().with_prefix())),
        )
        .await
        .map_err(|_| Error::Unavailable("etcd get timed out".into()))?
        .map_err(|e| Error::Unavailable(format!("etcd get: {e}")))?;
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let mut known = self.known.lock();
        let mut keys = HashMap::with_capacity(response.kvs().len());
        for kv in response.kvs() {
            let Some(name) = self.key_name(kv.key()) else {
                continue;
            };
            let previous = known.keys.get(&name).and_then(|raw| raw.entries.clone());
            let entries = self.parse_value(&name, kv.value()).or(previous);
            keys.insert(
                name,
                RawKey {
                    mod_revision: kv.mod_revision(),
                    entries,
                },
            );
        }
        warn_collisions(&keys);
        *known = Known { keys, revision };
        let entries = known.entries();
        let count = entries.len();
        let changes = self.state.swap(entries);
        drop(known);
        self.state.notify(&changes);
        let metrics = self.state.metrics();
        metrics.keys_loaded.set(count as i64);
        metrics
            .load_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The key name with the prefix removed; `None` (with a warning) for the bare prefix.
    fn key_name(&self, key: &[u8]) -> Option<String> {
        let key = String::from_utf8_lossy(key);
        let name = key.strip_prefix(self.prefix()).unwrap_or(&key);
        if name.is_empty() {
            warn!(key = %key, "etcd key equal to the prefix is ignored");
            return None;
        }
        Some(name.to_string())
    }

    /// Parses one value; logs and returns `None` when it is not a valid entry list.
    fn parse_value(&self, name: &str, value: &[u8]) -> Option<Vec<ConstrainedValue>> {
        let text = String::from_utf8_lossy(value);
        match parse_entry_list(name, &text, self.state.registry()) {
            Ok(mut parsed) => {
                for warning in &parsed.warnings {
                    warn!(key = name, warning = %warning, "dynamic config warning");
                }
                parsed.keys.pop().map(|(_, entries)| entries)
            }
            Err(failure) => {
                for message in &failure.errors {
                    error!(key = name, raw = %text, error = %message, "invalid dynamic config value in etcd; keeping the last good entries");
                }
                None
            }
        }
    }

    /// Applies one watch batch to a copy of the known keys and publishes the difference.
    fn apply_events(&self, events: &[etcd_client::Event]) {
        let mut known = self.known.lock();
        let mut changed = false;
        let mut newest = known.revision;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            // Events at or below the loaded revision are already in the map (a reload
            // after a write can overtake the watch).
            if kv.mod_revision() <= known.revision {
                continue;
            }
            newest = newest.max(kv.mod_revision());
            let Some(name) = self.key_name(kv.key()) else {
                continue;
            };
            match event.event_type() {
                EventType::Put => {
                    let previous = known.keys.get(&name).and_then(|raw| raw.entries.clone());
                    let entries = self.parse_value(&name, kv.value()).or(previous);
                    known.keys.insert(
                        name,
                        RawKey {
                            mod_revision: kv.mod_revision(),
                            entries,
                        },
                    );
                }
                EventType::Delete => {
                    known.keys.remove(&name);
                }
            }
            changed = true;
        }
        known.revision = newest;
        if changed {
            let entries = known.entries();
            let changes = self.state.swap(entries);
            drop(known);
            self.state.notify(&changes);
        }
    }

    /// Seeds default keys missing under the prefix, each with a create-only Txn (§8.5).
    /// Best effort; returns how many keys were written.
    async fn seed_defaults(&self) -> usize {
        let defaults = match parse_document(DEFAULTS_DOCUMENT, self.state.registry()) {
            Ok(parsed) => parsed,
            Err(failure) => {
                error!(error = %failure, "embedded defaults do not parse; seeding skipped");
                return 0;
            }
        };
        let present: Vec<String> = self
            .known
            .lock()
            .keys
            .keys()
            .map(|name| normalize_key(name))
            .collect();
        let mut written = 0;
        for (name, entries) in defaults.keys {
            if present.contains(&normalize_key(&name)) {
                continue;
            }
            let text = match render_entry_list(&entries) {
                Ok(text) => text,
                Err(e) => {
                    error!(key = %name, error = %e, "render default");
                    continue;
                }
            };
            let key = format!("{}{name}", self.prefix());
            let txn = Txn::new()
                .when(vec![Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then(vec![TxnOp::put(key, text, None)]);
            match tokio::time::timeout(REQUEST_TIMEOUT, self.kv().txn(txn)).await {
                Ok(Ok(response)) if response.succeeded() => {
                    info!(key = %name, "seeded dynamic config default");
                    written += 1;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(key = %name, error = %e, "seed default"),
                Err(_) => warn!(key = %name, "seed default timed out"),
            }
        }
        written
    }

    /// Runs one watch stream until it ends. Returns the reason it ended, or `None` when
    /// stopped or paused.
    async fn watch_once(
        &self,
        start_revision: i64,
        stop: &mut watch::Receiver<bool>,
        paused: &mut watch::Receiver<bool>,
        last_seen: &mut i64,
    ) -> WatchEnd {
        let metrics = self.state.metrics();
        let size = self.config.max_call_send_msg_size;
        let mut client = self.client.watch_client().max_decoding_message_size(size);
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start_revision);
        let mut stream = tokio::select! {
            _ = stop.changed() => return WatchEnd::Stopped,
            result = client.watch(self.prefix(), Some(options)) => match result {
                Ok(stream) => stream,
                Err(e) => {
                    warn!(error = %e, "open etcd watch");
                    return WatchEnd::Failed;
                }
            },
        };
        loop {
            let message = tokio::select! {
                _ = stop.changed() => {
                    metrics.watch_active.set(0);
                    return WatchEnd::Stopped;
                }
                _ = paused.wait_for(|p| *p) => {
                    metrics.watch_active.set(0);
                    return WatchEnd::Paused;
                }
                message = stream.message() => message,
            };
            match message {
                Ok(Some(response)) => {
                    if response.created() {
                        metrics.watch_active.set(1);
                    }
                    if response.canceled() {
                        metrics.watch_active.set(0);
                        let compacted = response.compact_revision() > 0;
                        warn!(
                            compact_revision = response.compact_revision(),
                            reason = response.cancel_reason(),
                            "etcd watch canceled"
                        );
                        return WatchEnd::Ended(if compacted {
                            REASON_COMPACTED
                        } else {
                            REASON_STREAM_ENDED
                        });
                    }
                    if !response.events().is_empty() {
                        self.apply_events(response.events());
                        for event in response.events() {
                            if let Some(kv) = event.kv() {
                                *last_seen = (*last_seen).max(kv.mod_revision());
                            }
                        }
                    }
                }
                Ok(None) => {
                    metrics.watch_active.set(0);
                    return WatchEnd::Ended(REASON_STREAM_ENDED);
                }
                Err(e) => {
                    metrics.watch_active.set(0);
                    warn!(error = %e, "etcd watch stream failed");
                    return WatchEnd::Ended(REASON_STREAM_ENDED);
                }
            }
        }
    }
}

fn warn_collisions(keys: &HashMap<String, RawKey>) {
    let mut by_normalized: HashMap<String, Vec<&str>> = HashMap::new();
    for name in keys.keys() {
        by_normalized
            .entry(normalize_key(name))
            .or_default()
            .push(name);
    }
    for (normalized, names) in by_normalized {
        if names.len() > 1 {
            warn!(key = %normalized, spellings = ?names, "etcd keys differ only in case; the most recently modified wins");
        }
    }
}

enum WatchEnd {
    Stopped,
    Paused,
    /// A stream that was open ended (counted as a reconnect).
    Ended(&'static str),
    /// The watch could not be opened.
    Failed,
}

/// The watch supervisor (spec §8.3).
async fn supervise(inner: Arc<Inner>, start_revision: i64, mut stop: watch::Receiver<bool>) {
    let metrics = inner.state.metrics().clone();
    let mut paused = inner.paused.subscribe();
    let mut next_revision = start_revision;
    loop {
        let mut last_seen = next_revision - 1;
        match inner
            .watch_once(next_revision, &mut stop, &mut paused, &mut last_seen)
            .await
        {
            WatchEnd::Stopped => break,
            WatchEnd::Paused => {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = paused.wait_for(|p| !*p) => {}
                }
                next_revision = last_seen.max(inner.known.lock().revision) + 1;
                continue;
            }
            WatchEnd::Ended(reason) => {
                metrics.watch_reconnects.with_label_values(&[reason]).inc();
            }
            WatchEnd::Failed => {}
        }
        // Backoff, then reload until it works.
        let mut backoff = INITIAL_BACKOFF;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    metrics.watch_active.set(0);
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            match inner.reload().await {
                Ok(()) => break,
                Err(e) => {
                    error!(error = %e, backoff_ms = backoff.as_millis() as u64, "etcd reload failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        next_revision = inner.known.lock().revision + 1;
    }
    metrics.watch_active.set(0);
}

#[async_trait]
impl Source for EtcdSource {
    fn state(&self) -> &Arc<SourceState> {
        &self.inner.state
    }

    fn describe(&self) -> String {
        let endpoints = self
            .inner
            .config
            .etcd_configs
            .first()
            .map(|c| c.endpoints.join(","))
            .unwrap_or_default();
        format!(
            "etcd://{endpoints}/{}",
            self.inner.config.global_key_prefix.trim_start_matches('/')
        )
    }

    async fn write_config(&self, key: &str, entries: Vec<ConstrainedValue>) -> Result<(), Error> {
        let result = self.write(key, Some(entries)).await;
        self.inner.state.metrics().count_write(result.is_ok());
        result
    }

    async fn delete_key(&self, key: &str) -> Result<(), Error> {
        self.write(key, None).await
    }

    async fn stop(&self) {
        let _ = self.stop_sender.send(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.state.stop();
    }
}

impl EtcdSource {
    async fn write(&self, key: &str, entries: Option<Vec<ConstrainedValue>>) -> Result<(), Error> {
        let inner = &self.inner;
        let prefix = inner.prefix().to_string();
        let other_spellings = inner.known.lock().spellings_of(key);
        let mut operations = Vec::new();
        let canonical = match &entries {
            Some(entries) => {
                let canonical = validate_write(inner.state.registry(), key, entries)?;
                let text = render_entry_list(entries).map_err(Error::Internal)?;
                operations.push(TxnOp::put(
                    format!("{prefix}{canonical}"),
                    text.clone(),
                    None,
                ));
                info!(key = %canonical, value = %text, "writing dynamic config to etcd");
                Some(canonical)
            }
            None => {
                let registered = inner.state.registry().get(key).map(|s| s.key().to_string());
                operations.push(TxnOp::delete(
                    format!("{prefix}{}", registered.as_deref().unwrap_or(key)),
                    None::<DeleteOptions>,
                ));
                operations.push(TxnOp::delete(
                    format!("{prefix}{key}"),
                    None::<DeleteOptions>,
                ));
                None
            }
        };
        for spelling in other_spellings {
            if Some(&spelling) != canonical.as_ref() {
                operations.push(TxnOp::delete(
                    format!("{prefix}{spelling}"),
                    None::<DeleteOptions>,
                ));
            }
        }
        let txn = Txn::new().and_then(operations);
        tokio::time::timeout(REQUEST_TIMEOUT, inner.kv().txn(txn))
            .await
            .map_err(|_| Error::Unavailable("etcd write timed out".into()))?
            .map_err(|e| Error::Unavailable(format!("etcd write: {e}")))?;
        inner.reload().await
    }
}

impl Drop for EtcdSource {
    fn drop(&mut self) {
        let _ = self.stop_sender.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_field() {
        let mut config = EtcdConfig::new(vec!["127.0.0.1:2379".into()], "/sundial/");
        assert!(config.validate().is_ok());
        config.disable_tls = false;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("clientTlsCaCertFile")
        );
        config.global_key_prefix.clear();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("globalKeyPrefix")
        );
        assert!(
            EtcdConfig::default()
                .validate()
                .unwrap_err()
                .to_string()
                .contains("etcdConfigs")
        );
    }

    #[test]
    fn config_from_yaml_and_env() {
        let yaml = "etcdConfigs: [{name: main, endpoints: ['a:1']}]\nglobalKeyPrefix: /p/\nclientName: c\n\
                    disableTLS: true\ndialTimeout: 3s\n";
        let mut config: EtcdConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.dial_timeout, Duration::from_secs(3));
        assert!(config.validate().is_ok());
        let env: HashMap<&str, &str> = [
            ("ETCD_ENDPOINTS", "x:1, y:2"),
            ("ETCD_KEY_PREFIX", "/q/"),
            ("ETCD_CLIENT_NAME", "n"),
            ("ETCD_DISABLE_TLS", "false"),
        ]
        .into_iter()
        .collect();
        config.apply_env(|name| env.get(name).map(|v| v.to_string()));
        assert_eq!(config.etcd_configs[0].endpoints, vec!["x:1", "y:2"]);
        assert_eq!(config.global_key_prefix, "/q/");
        assert!(!config.disable_tls);
    }

    #[test]
    fn bad_pem_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.pem");
        std::fs::write(&file, "not a pem").unwrap();
        let mut config = EtcdConfig::new(vec!["a:1".into()], "/p/");
        config.disable_tls = false;
        let path = file.to_string_lossy().to_string();
        config.client_tls_ca_cert_file = path.clone();
        config.client_tls_cert_file = path.clone();
        config.client_tls_key_file = path;
        assert!(
            config
                .connect_options()
                .err()
                .unwrap()
                .to_string()
                .contains("not PEM")
        );
    }

    #[test]
    fn collisions_pick_the_newest() {
        let mut known = Known::default();
        let entries = |v: i64| Some(vec![ConstrainedValue::global(crate::Value::Int(v))]);
        known.keys.insert(
            "frontend.globalRPS".into(),
            RawKey {
                mod_revision: 5,
                entries: entries(1),
            },
        );
        known.keys.insert(
            "frontend.globalrps".into(),
            RawKey {
                mod_revision: 9,
                entries: entries(2),
            },
        );
        let map = known.entries();
        assert_eq!(map["frontend.globalrps"].name, "frontend.globalrps");
        assert_eq!(known.spellings_of("FRONTEND.GLOBALRPS").len(), 2);
    }

    #[test]
    fn embedded_defaults_parse_without_warnings() {
        let parsed = parse_document(DEFAULTS_DOCUMENT, &Registry::builtin()).unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        assert!(parsed.keys.len() >= 10);
    }
}
