//! An in-memory source for tests and for servers without a dynamic-config backend.

use std::sync::Arc;

use async_trait::async_trait;

use crate::constraints::ConstrainedValue;
use crate::load::{LoadFailure, parse_document};
use crate::metrics::Metrics;
use crate::setting::{Registry, normalize_key};
use crate::source::{ConfigEntries, Error, KeyEntry, Source, SourceState, validate_write};

pub struct MemorySource {
    state: Arc<SourceState>,
}

impl MemorySource {
    /// An empty, already loaded source: every setting reads its default.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self::with_metrics(registry, Metrics::unregistered())
    }

    pub fn with_metrics(registry: Arc<Registry>, metrics: Metrics) -> Self {
        let state = SourceState::new(registry, metrics);
        state.publish(ConfigEntries::new());
        MemorySource { state }
    }

    /// A source holding the given document.
    pub fn from_yaml(text: &str, registry: Arc<Registry>) -> Result<Self, LoadFailure> {
        let source = MemorySource::new(registry);
        source.set_yaml(text)?;
        Ok(source)
    }

    /// Replaces the whole map with a document (spec §3.1 rules).
    pub fn set_yaml(&self, text: &str) -> Result<(), LoadFailure> {
        let parsed = parse_document(text, self.state.registry())?;
        let mut map = ConfigEntries::new();
        for (name, entries) in parsed.keys {
            map.insert(normalize_key(&name), KeyEntry::new(name, entries));
        }
        self.state.publish(map);
        Ok(())
    }

    /// Sets one key, unvalidated (tests use it to store bad values too).
    pub fn set_entries(&self, key: &str, entries: Vec<ConstrainedValue>) {
        let mut map: ConfigEntries = self.state.snapshot().map.clone();
        map.insert(normalize_key(key), KeyEntry::new(key, entries));
        self.state.publish(map);
    }

    pub fn remove(&self, key: &str) {
        let mut map: ConfigEntries = self.state.snapshot().map.clone();
        map.remove(&normalize_key(key));
        self.state.publish(map);
    }
}

#[async_trait]
impl Source for MemorySource {
    fn state(&self) -> &Arc<SourceState> {
        &self.state
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }

    async fn write_config(&self, key: &str, entries: Vec<ConstrainedValue>) -> Result<(), Error> {
        let result = validate_write(self.state.registry(), key, &entries);
        self.state.metrics().count_write(result.is_ok());
        let canonical = result?;
        self.set_entries(&canonical, entries);
        Ok(())
    }

    async fn delete_key(&self, key: &str) -> Result<(), Error> {
        self.remove(key);
        Ok(())
    }

    async fn stop(&self) {
        self.state.stop();
    }
}
