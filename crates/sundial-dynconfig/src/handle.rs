//! The typed layer (spec §2.2): a cheap live handle per setting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tracing::warn;

use crate::constraints::Constraints;
use crate::convert::SettingValue;
use crate::setting::{Filter, Origin, Setting, normalize_key};
use crate::source::{Source, SourceState, Subscription};
use crate::value::Value;

/// What the rest of Sundial holds: the source, from which typed handles are made.
#[derive(Clone)]
pub struct DynamicConfig {
    source: Arc<dyn Source>,
}

impl DynamicConfig {
    pub fn new(source: Arc<dyn Source>) -> Self {
        DynamicConfig { source }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// A live handle on `setting`. Make handles once (at wiring time) and keep them.
    pub fn handle<T: SettingValue>(&self, setting: &'static Setting<T>) -> Handle<T> {
        Handle {
            setting,
            key: normalize_key(setting.key).into_boxed_str(),
            state: self.source.state().clone(),
            conversion_failures: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A live, typed view of one setting. `get` takes no lock and allocates nothing for
/// scalar types: it reads the current snapshot through `arc-swap`, matches precedence on
/// borrowed data and converts the matched value.
#[derive(Clone)]
pub struct Handle<T: 'static> {
    setting: &'static Setting<T>,
    key: Box<str>,
    state: Arc<SourceState>,
    conversion_failures: Arc<AtomicU64>,
}

impl<T: SettingValue> Handle<T> {
    pub fn setting(&self) -> &'static Setting<T> {
        self.setting
    }

    /// The value for `filter` now.
    pub fn get(&self, filter: &Filter<'_>) -> T {
        let snapshot = self.state.load();
        if !snapshot.loaded {
            self.state.warn_not_loaded();
        }
        let entries = match snapshot.map.get(&*self.key) {
            Some(entry) => &entry.entries[..],
            None => &[],
        };
        let (value, result) = self.setting.evaluate(entries, filter);
        if let Err(error) = result {
            self.warn_conversion(filter, &error);
        }
        value
    }

    /// Shorthand for a global setting.
    pub fn get_global(&self) -> T {
        self.get(&Filter::GLOBAL)
    }

    /// Shorthand for a namespace setting.
    pub fn get_namespace(&self, namespace: &str) -> T {
        self.get(&Filter::namespace(namespace))
    }

    fn warn_conversion(&self, filter: &Filter<'_>, error: &str) {
        let count = self.conversion_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if count <= 1000 || count.is_multiple_of(1000) {
            warn!(
                key = self.setting.key,
                constraints = %filter.to_constraints(),
                error,
                failures = count,
                "dynamic config value does not convert; using the default"
            );
        }
    }

    /// The raw value that wins for `filter`, or `None` when a default applies.
    fn matched_raw(
        state: &SourceState,
        setting: &Setting<T>,
        key: &str,
        filter: &Filter<'_>,
    ) -> Option<Value> {
        let snapshot = state.load();
        let entries = snapshot
            .map
            .get(key)
            .map(|entry| &entry.entries[..])
            .unwrap_or(&[]);
        match setting.resolve(entries, filter) {
            Origin::Entry(index) => Some(entries[index].value.clone()),
            Origin::ConstrainedDefault(_) | Origin::Default => None,
        }
    }

    /// Returns the current value and calls `callback` with each new value when the matched
    /// raw value changes (not on unrelated edits). Callbacks run on a task of their own, in
    /// order, so a slow one cannot stall the source. Needs a Tokio runtime.
    pub fn subscribe(
        &self,
        constraints: Constraints,
        callback: impl Fn(T) + Send + Sync + 'static,
    ) -> (T, Subscription) {
        let filter_of = constraints.clone();
        let current = self.get(&Filter::of(&filter_of));
        let last = Arc::new(Mutex::new(Self::matched_raw(
            &self.state,
            self.setting,
            &self.key,
            &Filter::of(&constraints),
        )));
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<T>();
        tokio::spawn(async move {
            while let Some(value) = receiver.recv().await {
                callback(value);
            }
        });
        let handle = self.clone();
        let subscription = self.state.subscribe(move |changes| {
            if !changes.contains_key(&*handle.key) {
                return;
            }
            let filter = Filter::of(&constraints);
            let raw = Self::matched_raw(&handle.state, handle.setting, &handle.key, &filter);
            let mut last = last.lock();
            if *last == raw {
                return;
            }
            *last = raw;
            drop(last);
            let _ = sender.send(handle.get(&filter));
        });
        (current, subscription)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySource;
    use crate::settings::FRONTEND_NAMESPACE_RPS;
    use crate::{ConstrainedValue, Registry};

    static INSENSITIVE: Setting<bool> = Setting::new(
        "testCaseInsensitivePropertyKey",
        crate::Kind::Global,
        || false,
        "test",
    );

    static NS_INT: Setting<i64> = Setting::new("test.nsInt", crate::Kind::Namespace, || 7, "test");

    #[test]
    fn case_insensitive_keys() {
        let registry = Arc::new(Registry::new(&[&INSENSITIVE]));
        let source = MemorySource::from_yaml(
            "TestCaseInsensitivePropertykEy: [{value: true}]\n",
            registry,
        )
        .unwrap();
        let config = DynamicConfig::new(Arc::new(source));
        assert!(config.handle(&INSENSITIVE).get_global());
    }

    #[test]
    fn bad_value_does_not_fall_through() {
        let registry = Arc::new(Registry::new(&[&NS_INT]));
        let text = "test.nsInt:\n- value: 1000\n- value: 1000.1\n  constraints: {namespace: X}\n";
        let source = MemorySource::from_yaml(text, registry).unwrap();
        let handle = DynamicConfig::new(Arc::new(source)).handle(&NS_INT);
        assert_eq!(handle.get_namespace("X"), 7);
        assert_eq!(handle.get_namespace("Y"), 1000);
        assert_eq!(handle.conversion_failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn duration_forms_through_handle() {
        static D: Setting<std::time::Duration> = Setting::new(
            "test.d",
            crate::Kind::Global,
            || std::time::Duration::from_secs(3),
            "test",
        );
        let registry = Arc::new(Registry::new(&[&D]));
        let cases = [
            ("1m", 60.0),
            ("2", 2.0),
            ("6d", 144.0 * 3600.0),
            ("1.5d", 36.0 * 3600.0),
            ("90", 90.0),
            ("true", 3.0),
            ("wrong", 3.0),
        ];
        for (text, seconds) in cases {
            let source = MemorySource::from_yaml(
                &format!("test.d: [{{value: {text}}}]\n"),
                registry.clone(),
            )
            .unwrap();
            let handle = DynamicConfig::new(Arc::new(source)).handle(&D);
            assert_eq!(handle.get_global().as_secs_f64(), seconds, "{text}");
        }
    }

    #[tokio::test]
    async fn typed_callback_fires_only_on_matched_value() {
        let source = Arc::new(MemorySource::new(Arc::new(Registry::builtin())));
        source
            .set_yaml("frontend.namespaceRPS: [{value: 10}]\n")
            .unwrap();
        let handle = DynamicConfig::new(source.clone()).handle(&FRONTEND_NAMESPACE_RPS);
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let (current, _subscription) =
            handle.subscribe(Constraints::namespace("A"), move |value| {
                let _ = sender.send(value);
            });
        assert_eq!(current, 10);

        source
            .set_yaml(
                "frontend.namespaceRPS: [{value: 10}, {value: 5, constraints: {namespace: B}}]\n",
            )
            .unwrap();
        source
            .set_yaml(
                "frontend.namespaceRPS: [{value: 20}, {value: 5, constraints: {namespace: B}}]\n",
            )
            .unwrap();
        source.set_yaml("other.key: [{value: 1}]\n").unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), receiver.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(20), "the ns-B change alone must not notify A");
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), receiver.recv())
            .await
            .unwrap();
        assert_eq!(
            second,
            Some(2400),
            "deleting the key reverts to the default"
        );
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn handle_reads_live_values() {
        let source = Arc::new(MemorySource::new(Arc::new(Registry::builtin())));
        let handle = DynamicConfig::new(source.clone()).handle(&FRONTEND_NAMESPACE_RPS);
        assert_eq!(handle.get_namespace("a"), 2400, "before load: default");
        source.set_entries(
            "frontend.namespaceRPS",
            vec![ConstrainedValue::global(Value::Int(3))],
        );
        assert_eq!(handle.get_namespace("a"), 3);
    }
}
