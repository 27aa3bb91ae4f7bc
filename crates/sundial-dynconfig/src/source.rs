//! The `Source` contract (spec §2) and the state every source shares: the published
//! snapshot, change detection (§2.1), subscriptions and metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::constraints::{ConstrainedValue, Constraints, render_entries};
use crate::metrics::{Metrics, OPERATION_DELETE, OPERATION_UPDATE};
use crate::setting::{Registry, normalize_key};

/// Errors callers of a source branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this source does not support writes")]
    Unsupported,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("invalid config: {0}")]
    Config(String),
    #[error("load dynamic config: {0}")]
    Load(#[from] crate::load::LoadFailure),
    #[error("source unavailable: {0}")]
    Unavailable(String),
    #[error("write conflict: {0}")]
    Conflict(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// One key in a snapshot.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The key as stored (file or etcd spelling), for display and metric labels.
    pub name: String,
    pub entries: Arc<[ConstrainedValue]>,
}

impl KeyEntry {
    pub fn new(name: impl Into<String>, entries: Vec<ConstrainedValue>) -> Self {
        KeyEntry {
            name: name.into(),
            entries: entries.into(),
        }
    }
}

/// Normalised key → entries. Immutable once published.
pub type ConfigEntries = HashMap<String, KeyEntry>;

/// A published map. `loaded` is false only before the first load.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub loaded: bool,
    pub map: ConfigEntries,
}

/// Changed keys of one published change-set: the new list, or `None` when deleted.
pub type ChangeSet = BTreeMap<String, Option<Arc<[ConstrainedValue]>>>;

type Callback = Arc<dyn Fn(&ChangeSet) + Send + Sync>;

/// State shared by every source implementation.
pub struct SourceState {
    snapshot: ArcSwap<Snapshot>,
    subscribers: Mutex<Vec<(u64, Callback)>>,
    next_subscriber: AtomicU64,
    publish_lock: Mutex<()>,
    not_loaded_warnings: AtomicU64,
    stopped: AtomicBool,
    metrics: Metrics,
    registry: Arc<Registry>,
}

impl SourceState {
    pub fn new(registry: Arc<Registry>, metrics: Metrics) -> Arc<SourceState> {
        Arc::new(SourceState {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            subscribers: Mutex::new(Vec::new()),
            next_subscriber: AtomicU64::new(1),
            publish_lock: Mutex::new(()),
            not_loaded_warnings: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            metrics,
            registry,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The current snapshot, lock-free. Do not hold it across `.await`.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.snapshot.load().loaded
    }

    /// Entries of `key` (any case), or empty. In memory only.
    pub fn get_value(&self, key: &str) -> Arc<[ConstrainedValue]> {
        let snapshot = self.snapshot.load();
        if !snapshot.loaded {
            self.warn_not_loaded();
            return Arc::from(Vec::new());
        }
        match snapshot.map.get(&normalize_key(key)) {
            Some(entry) => entry.entries.clone(),
            None => Arc::from(Vec::new()),
        }
    }

    pub(crate) fn warn_not_loaded(&self) {
        let count = self.not_loaded_warnings.fetch_add(1, Ordering::Relaxed);
        if count.is_multiple_of(1000) {
            warn!(
                lookups = count + 1,
                "dynamic config read before the first load; defaults apply"
            );
        }
    }

    /// Replaces the map with `new_map`, publishing the difference (spec §2.1). Entry lists
    /// equal to the current ones keep their `Arc` identity. Returns the change-set.
    pub fn publish(&self, new_map: ConfigEntries) -> ChangeSet {
        let changes = self.swap(new_map);
        self.notify(&changes);
        changes
    }

    /// Like [`SourceState::publish`] without calling subscribers: a source that holds a
    /// lock of its own swaps under it, releases it, then calls [`SourceState::notify`], so
    /// callbacks never run under a source lock.
    pub fn swap(&self, new_map: ConfigEntries) -> ChangeSet {
        let _guard = self.publish_lock.lock();
        if self.stopped.load(Ordering::Acquire) {
            return ChangeSet::new();
        }
        let old = self.snapshot.load_full();
        let mut merged = ConfigEntries::with_capacity(new_map.len());
        let mut changes = ChangeSet::new();
        let mut labels: Vec<(&'static str, String)> = Vec::new();
        for (key, entry) in new_map {
            match old.map.get(&key) {
                Some(previous) if !entries_differ(&previous.entries, &entry.entries) => {
                    merged.insert(
                        key,
                        KeyEntry {
                            name: entry.name,
                            entries: previous.entries.clone(),
                        },
                    );
                }
                previous => {
                    info!(
                        key = %entry.name,
                        old = %previous.map(|p| render_entries(&p.entries)).unwrap_or_else(|| "absent".into()),
                        new = %render_entries(&entry.entries),
                        "dynamic config changed"
                    );
                    labels.push((OPERATION_UPDATE, entry.name.clone()));
                    changes.insert(key.clone(), Some(entry.entries.clone()));
                    merged.insert(key, entry);
                }
            }
        }
        for (key, previous) in &old.map {
            if !merged.contains_key(key) {
                info!(key = %previous.name, old = %render_entries(&previous.entries), new = "deleted", "dynamic config changed");
                labels.push((OPERATION_DELETE, previous.name.clone()));
                changes.insert(key.clone(), None);
            }
        }
        if changes.is_empty() && old.loaded {
            return changes;
        }
        self.snapshot.store(Arc::new(Snapshot {
            loaded: true,
            map: merged,
        }));
        // The first load is not an update: only later changes are counted.
        if old.loaded {
            for (operation, name) in &labels {
                self.metrics
                    .key_updates
                    .with_label_values(&[*operation, name.as_str()])
                    .inc();
            }
        }
        drop(_guard);
        changes
    }

    /// Calls every subscriber with `changes` (nothing for an empty change-set).
    pub fn notify(&self, changes: &ChangeSet) {
        if changes.is_empty() {
            return;
        }
        let callbacks: Vec<Callback> = self
            .subscribers
            .lock()
            .iter()
            .map(|(_, cb)| cb.clone())
            .collect();
        for callback in callbacks {
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            callback(changes);
        }
    }

    /// Registers `callback` for every change-set. Dropping the handle unsubscribes.
    pub fn subscribe(
        self: &Arc<Self>,
        callback: impl Fn(&ChangeSet) + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.subscribers.lock().push((id, Arc::new(callback)));
        Subscription {
            state: Arc::downgrade(self),
            id,
        }
    }

    /// A deep copy of the current map, keyed by normalised key.
    pub fn dump_all(&self) -> HashMap<String, Vec<ConstrainedValue>> {
        let snapshot = self.snapshot.load();
        snapshot
            .map
            .iter()
            .map(|(key, entry)| (key.clone(), entry.entries.to_vec()))
            .collect()
    }

    /// The live map as JSON, for the debug endpoint on the metrics port:
    /// `{"loaded": true, "keys": {"frontend.rps": [{"value": 1, "constraints": {}}]}}`.
    pub fn debug_json(&self) -> serde_json::Value {
        let snapshot = self.snapshot.load();
        let mut keys = serde_json::Map::new();
        let mut entries: Vec<&KeyEntry> = snapshot.map.values().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            let list: Vec<serde_json::Value> = entry
                .entries
                .iter()
                .map(|cv| serde_json::json!({"value": cv.value.to_json(), "constraints": cv.constraints.to_value().to_json()}))
                .collect();
            keys.insert(entry.name.clone(), serde_json::Value::Array(list));
        }
        serde_json::json!({"loaded": snapshot.loaded, "keys": keys})
    }

    /// Logs the whole map at INFO (spec §2).
    pub fn log_all(&self, source: &str) {
        let snapshot = self.snapshot.load();
        if !snapshot.loaded {
            info!(source, "dynamic config: nothing loaded yet");
            return;
        }
        if snapshot.map.is_empty() {
            info!(
                source,
                total_keys = 0,
                "dynamic config: the map is empty; defaults apply"
            );
            return;
        }
        info!(
            source,
            total_keys = snapshot.map.len(),
            "dynamic config: start of dump"
        );
        let mut keys: Vec<&KeyEntry> = snapshot.map.values().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in keys {
            info!(key = %entry.name, entries = %render_entries(&entry.entries), "dynamic config entry");
        }
        info!(source, "dynamic config: end of dump");
    }

    /// Marks the state stopped: no more publishes or callbacks.
    pub fn stop(&self) {
        let _guard = self.publish_lock.lock();
        self.stopped.store(true, Ordering::Release);
        self.subscribers.lock().clear();
        self.metrics.watch_active.set(0);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// True if two entry lists differ as sets keyed by constraints (first entry per constraints
/// wins; reordering is not a change).
pub fn entries_differ(old: &[ConstrainedValue], new: &[ConstrainedValue]) -> bool {
    fn first_by_constraints(
        entries: &[ConstrainedValue],
    ) -> HashMap<&Constraints, &crate::value::Value> {
        let mut map = HashMap::new();
        for entry in entries {
            map.entry(&entry.constraints).or_insert(&entry.value);
        }
        map
    }
    let old_map = first_by_constraints(old);
    let new_map = first_by_constraints(new);
    old_map.len() != new_map.len()
        || old_map
            .iter()
            .any(|(constraints, value)| new_map.get(constraints).is_none_or(|other| other != value))
}

/// Unsubscribes when dropped or cancelled.
pub struct Subscription {
    state: Weak<SourceState>,
    id: u64,
}

impl Subscription {
    pub fn cancel(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.subscribers.lock().retain(|(id, _)| *id != self.id);
        }
    }
}

/// A dynamic-config source: file, etcd, ConfigMap or memory (spec §2).
#[async_trait]
pub trait Source: Send + Sync {
    /// The shared state the typed layer reads.
    fn state(&self) -> &Arc<SourceState>;

    /// Human-readable description (URL) for logs.
    fn describe(&self) -> String;

    /// Entries of a key; in memory only, never blocks on I/O.
    fn get_value(&self, key: &str) -> Arc<[ConstrainedValue]> {
        self.state().get_value(key)
    }

    fn subscribe(&self, callback: Box<dyn Fn(&ChangeSet) + Send + Sync>) -> Subscription {
        self.state().subscribe(callback)
    }

    /// Writes one key's entries and reloads before returning. `entries` empty keeps the key
    /// with zero entries; use [`Source::delete_key`] to remove it.
    async fn write_config(&self, key: &str, entries: Vec<ConstrainedValue>) -> Result<(), Error>;

    /// Removes a key from the backend and reloads before returning.
    async fn delete_key(&self, key: &str) -> Result<(), Error>;

    fn dump_all(&self) -> HashMap<String, Vec<ConstrainedValue>> {
        self.state().dump_all()
    }

    fn log_all(&self) {
        self.state().log_all(&self.describe())
    }

    /// Cancels background tasks; idempotent.
    async fn stop(&self);
}

/// Validates a write against the registry (spec §8.6): known key, convertible values,
/// constraints the setting's precedence checks.
pub fn validate_write(
    registry: &Registry,
    key: &str,
    entries: &[ConstrainedValue],
) -> Result<String, Error> {
    let Some(setting) = registry.get(key) else {
        return Err(Error::InvalidArgument(format!(
            "{key} is not a registered setting"
        )));
    };
    let warnings = registry.warnings_for(key, entries);
    if !warnings.is_empty() {
        return Err(Error::InvalidArgument(warnings.join("; ")));
    }
    Ok(setting.key().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn state() -> Arc<SourceState> {
        SourceState::new(Arc::new(Registry::builtin()), Metrics::unregistered())
    }

    fn map(items: &[(&str, Vec<ConstrainedValue>)]) -> ConfigEntries {
        items
            .iter()
            .map(|(name, entries)| (normalize_key(name), KeyEntry::new(*name, entries.clone())))
            .collect()
    }

    fn int(v: i64) -> ConstrainedValue {
        ConstrainedValue::global(Value::Int(v))
    }

    fn ns(v: i64, namespace: &str) -> ConstrainedValue {
        ConstrainedValue::new(Constraints::namespace(namespace), Value::Int(v))
    }

    #[test]
    fn change_detection() {
        let state = state();
        let seen = Arc::new(Mutex::new(Vec::<ChangeSet>::new()));
        let sink = seen.clone();
        let _subscription = state.subscribe(move |changes| sink.lock().push(changes.clone()));

        let first = state.publish(map(&[
            ("frontend.rps", vec![int(1), ns(2, "a")]),
            ("Frontend.GlobalRPS", vec![int(3)]),
        ]));
        assert_eq!(first.len(), 2);
        let identity = state.get_value("FRONTEND.RPS");

        // Reordering is not a change, and identity is kept.
        let reordered = state.publish(map(&[
            ("frontend.rps", vec![ns(2, "a"), int(1)]),
            ("Frontend.GlobalRPS", vec![int(3)]),
        ]));
        assert!(reordered.is_empty());
        assert!(Arc::ptr_eq(&identity, &state.get_value("frontend.rps")));

        // One value changes, one key is deleted.
        let changed = state.publish(map(&[("frontend.rps", vec![int(1), ns(5, "a")])]));
        assert_eq!(changed.len(), 2);
        assert!(changed["frontend.globalrps"].is_none());
        assert_eq!(
            state
                .metrics()
                .key_updates(OPERATION_DELETE, "Frontend.GlobalRPS"),
            1
        );
        assert_eq!(
            state
                .metrics()
                .key_updates(OPERATION_UPDATE, "frontend.rps"),
            1,
            "the first load is not counted"
        );
        assert_eq!(seen.lock().len(), 2, "no callback for the empty change-set");
    }

    #[test]
    fn dump_is_a_copy_and_survives_stop() {
        let state = state();
        state.publish(map(&[("frontend.rps", vec![int(1)])]));
        let mut dump = state.dump_all();
        dump.get_mut("frontend.rps").unwrap()[0].value = Value::Int(99);
        assert_eq!(state.get_value("frontend.rps")[0].value, Value::Int(1));
        state.stop();
        assert_eq!(dump["frontend.rps"][0].value, Value::Int(99));
        assert!(state.publish(map(&[])).is_empty(), "no publish after stop");
    }

    #[test]
    fn unsubscribe_on_drop() {
        let state = state();
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let subscription = state.subscribe(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        state.publish(map(&[("a", vec![int(1)])]));
        drop(subscription);
        state.publish(map(&[("a", vec![int(2)])]));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn not_loaded_returns_empty() {
        let state = state();
        assert!(state.get_value("frontend.rps").is_empty());
        assert!(!state.is_loaded());
        state.publish(ConfigEntries::new());
        assert!(
            state.is_loaded(),
            "an empty first load still counts as loaded"
        );
    }
}
