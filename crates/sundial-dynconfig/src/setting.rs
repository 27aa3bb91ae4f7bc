//! Setting declarations, precedence (spec §4) and the registry of known settings.

use std::collections::HashMap;
use std::fmt;

use crate::constraints::{ConstrainedValue, Constraints};
use crate::convert::SettingValue;
use crate::value::Value;

/// Precedence kind of a setting: which filter fields it is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Global,
    Namespace,
    NamespaceId,
    TaskQueue,
    ShardId,
    TaskType,
    Destination,
    ChasmTaskType,
}

// Field bits of a constraints record, used to describe precedence levels.
const NS: u8 = 1;
const NS_ID: u8 = 1 << 1;
const TQ: u8 = 1 << 2;
const TQ_TYPE: u8 = 1 << 3;
const HISTORY_TASK_TYPE: u8 = 1 << 4;
const SHARD: u8 = 1 << 5;
const DEST: u8 = 1 << 6;
const CHASM: u8 = 1 << 7;

impl Kind {
    /// Precedence levels, most specific first. Each level lists the filter fields an entry
    /// must have (and no others).
    pub fn levels(self) -> &'static [u8] {
        match self {
            Kind::Global => &[0],
            Kind::Namespace => &[NS, 0],
            Kind::NamespaceId => &[NS_ID, 0],
            Kind::TaskQueue => &[NS | TQ | TQ_TYPE, NS | TQ, TQ, NS, 0],
            Kind::ShardId => &[SHARD, 0],
            Kind::TaskType => &[HISTORY_TASK_TYPE, 0],
            Kind::Destination => &[NS | DEST, DEST, NS, 0],
            Kind::ChasmTaskType => &[CHASM, 0],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Global => "global",
            Kind::Namespace => "namespace",
            Kind::NamespaceId => "namespace-id",
            Kind::TaskQueue => "task-queue",
            Kind::ShardId => "shard-id",
            Kind::TaskType => "task-type",
            Kind::Destination => "destination",
            Kind::ChasmTaskType => "chasm-task-type",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Borrowed view of a constraints record; also the lookup filter. Building one allocates
/// nothing, so hot-path lookups stay allocation-free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub namespace: &'a str,
    pub namespace_id: &'a str,
    pub task_queue: &'a str,
    pub task_type: i32,
    pub history_task_type: i32,
    pub shard_id: i32,
    pub destination: &'a str,
    pub chasm_task_type: &'a str,
}

impl<'a> Filter<'a> {
    pub const GLOBAL: Filter<'static> = Filter {
        namespace: "",
        namespace_id: "",
        task_queue: "",
        task_type: 0,
        history_task_type: 0,
        shard_id: 0,
        destination: "",
        chasm_task_type: "",
    };

    pub fn namespace(namespace: &'a str) -> Self {
        Filter {
            namespace,
            ..Filter::default()
        }
    }

    pub fn task_queue(namespace: &'a str, task_queue: &'a str, task_type: i32) -> Self {
        Filter {
            namespace,
            task_queue,
            task_type,
            ..Filter::default()
        }
    }

    pub fn destination(namespace: &'a str, destination: &'a str) -> Self {
        Filter {
            namespace,
            destination,
            ..Filter::default()
        }
    }

    pub fn shard(shard_id: i32) -> Self {
        Filter {
            shard_id,
            ..Filter::default()
        }
    }

    pub fn of(constraints: &'a Constraints) -> Self {
        Filter {
            namespace: &constraints.namespace,
            namespace_id: &constraints.namespace_id,
            task_queue: &constraints.task_queue_name,
            task_type: constraints.task_type,
            history_task_type: constraints.history_task_type,
            shard_id: constraints.shard_id,
            destination: &constraints.destination,
            chasm_task_type: &constraints.chasm_task_type,
        }
    }

    /// Which fields are non-zero.
    pub fn mask(&self) -> u8 {
        let mut mask = 0;
        if !self.namespace.is_empty() {
            mask |= NS;
        }
        if !self.namespace_id.is_empty() {
            mask |= NS_ID;
        }
        if !self.task_queue.is_empty() {
            mask |= TQ;
        }
        if self.task_type != 0 {
            mask |= TQ_TYPE;
        }
        if self.history_task_type != 0 {
            mask |= HISTORY_TASK_TYPE;
        }
        if self.shard_id != 0 {
            mask |= SHARD;
        }
        if !self.destination.is_empty() {
            mask |= DEST;
        }
        if !self.chasm_task_type.is_empty() {
            mask |= CHASM;
        }
        mask
    }

    /// True if `entry` equals this filter projected onto the `level` fields (exact match:
    /// the entry's other fields must be zero).
    pub fn matches_level(&self, entry: &Filter<'_>, level: u8) -> bool {
        fn field<T: PartialEq + Default>(level: u8, bit: u8, entry: T, filter: T) -> bool {
            if level & bit != 0 {
                entry == filter
            } else {
                entry == T::default()
            }
        }
        field(level, NS, entry.namespace, self.namespace)
            && field(level, TQ, entry.task_queue, self.task_queue)
            && field(level, TQ_TYPE, entry.task_type, self.task_type)
            && field(level, NS_ID, entry.namespace_id, self.namespace_id)
            && field(level, SHARD, entry.shard_id, self.shard_id)
            && field(
                level,
                HISTORY_TASK_TYPE,
                entry.history_task_type,
                self.history_task_type,
            )
            && field(level, DEST, entry.destination, self.destination)
            && field(level, CHASM, entry.chasm_task_type, self.chasm_task_type)
    }

    pub fn to_constraints(&self) -> Constraints {
        Constraints {
            namespace: self.namespace.to_string(),
            namespace_id: self.namespace_id.to_string(),
            task_queue_name: self.task_queue.to_string(),
            task_type: self.task_type,
            history_task_type: self.history_task_type,
            shard_id: self.shard_id,
            destination: self.destination.to_string(),
            chasm_task_type: self.chasm_task_type.to_string(),
        }
    }
}

/// A default that applies only under some constraints (spec §4.2).
pub struct ConstrainedDefault<T: 'static> {
    pub constraints: Filter<'static>,
    pub value: T,
}

/// A typed setting, declared once as a `static`.
pub struct Setting<T: 'static> {
    /// Registered spelling; lookups are case-insensitive.
    pub key: &'static str,
    pub kind: Kind,
    pub default: fn() -> T,
    pub constrained_defaults: &'static [ConstrainedDefault<T>],
    pub description: &'static str,
}

/// Where a lookup's value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// The user entry at this index of the key's list matched.
    Entry(usize),
    /// The constrained default at this index matched.
    ConstrainedDefault(usize),
    /// Nothing matched: the plain default.
    Default,
}

impl<T: 'static> Setting<T> {
    /// A setting with a plain default.
    pub const fn new(
        key: &'static str,
        kind: Kind,
        default: fn() -> T,
        description: &'static str,
    ) -> Self {
        Setting {
            key,
            kind,
            default,
            constrained_defaults: &[],
            description,
        }
    }

    /// A setting whose default depends on constraints (spec §4.2); `default` applies where
    /// none of `constrained_defaults` matches.
    pub const fn with_constrained_defaults(
        key: &'static str,
        kind: Kind,
        default: fn() -> T,
        constrained_defaults: &'static [ConstrainedDefault<T>],
        description: &'static str,
    ) -> Self {
        Setting {
            key,
            kind,
            default,
            constrained_defaults,
            description,
        }
    }
}

impl<T: SettingValue> Setting<T> {
    /// Finds the winning entry or default for `filter` (spec §4, §4.2).
    pub fn resolve(&self, entries: &[ConstrainedValue], filter: &Filter<'_>) -> Origin {
        for &level in self.kind.levels() {
            for (index, entry) in entries.iter().enumerate() {
                if filter.matches_level(&Filter::of(&entry.constraints), level) {
                    return Origin::Entry(index);
                }
            }
            for (index, default) in self.constrained_defaults.iter().enumerate() {
                if filter.matches_level(&default.constraints, level) {
                    return Origin::ConstrainedDefault(index);
                }
            }
        }
        Origin::Default
    }

    /// The default for `filter`, ignoring user entries.
    pub fn default_for(&self, filter: &Filter<'_>) -> T {
        match self.resolve(&[], filter) {
            Origin::ConstrainedDefault(index) => self.constrained_defaults[index].value.clone(),
            _ => (self.default)(),
        }
    }

    /// Typed value for `filter`: a matched entry that fails conversion gives the default
    /// (no fall-through to a less specific level).
    pub fn evaluate(
        &self,
        entries: &[ConstrainedValue],
        filter: &Filter<'_>,
    ) -> (T, Result<Origin, String>) {
        match self.resolve(entries, filter) {
            Origin::Entry(index) => {
                let base = if T::USES_DEFAULT {
                    self.default_for(filter)
                } else {
                    (self.default)()
                };
                match T::convert(&entries[index].value, &base) {
                    Ok(value) => (value, Ok(Origin::Entry(index))),
                    Err(error) => (self.default_for(filter), Err(error)),
                }
            }
            Origin::ConstrainedDefault(index) => (
                self.constrained_defaults[index].value.clone(),
                Ok(Origin::ConstrainedDefault(index)),
            ),
            Origin::Default => ((self.default)(), Ok(Origin::Default)),
        }
    }
}

/// Type-erased view of a setting, for loaders, the CLI and seeding.
pub trait AnySetting: Send + Sync {
    fn key(&self) -> &'static str;
    fn kind(&self) -> Kind;
    fn type_name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Checks that a stored value converts to the setting's type.
    fn validate(&self, value: &Value) -> Result<(), String>;
    /// The default as entries: constrained defaults first, then the plain one.
    fn default_entries(&self) -> Vec<ConstrainedValue>;
    /// Resolves `filter` and renders the typed result (for `explain`).
    fn explain(&self, entries: &[ConstrainedValue], filter: &Filter<'_>) -> Explanation;
}

/// Outcome of a lookup, rendered for people.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub value: Value,
    pub origin: Origin,
    pub conversion_error: Option<String>,
}

impl<T: SettingValue> AnySetting for Setting<T> {
    fn key(&self) -> &'static str {
        self.key
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn type_name(&self) -> &'static str {
        T::TYPE_NAME
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn validate(&self, value: &Value) -> Result<(), String> {
        T::convert(value, &(self.default)()).map(|_| ())
    }
    fn default_entries(&self) -> Vec<ConstrainedValue> {
        let mut entries: Vec<ConstrainedValue> = self
            .constrained_defaults
            .iter()
            .map(|default| {
                ConstrainedValue::new(
                    default.constraints.to_constraints(),
                    default.value.to_value(),
                )
            })
            .collect();
        entries.push(ConstrainedValue::global((self.default)().to_value()));
        entries
    }
    fn explain(&self, entries: &[ConstrainedValue], filter: &Filter<'_>) -> Explanation {
        let origin = self.resolve(entries, filter);
        let (value, result) = self.evaluate(entries, filter);
        Explanation {
            value: value.to_value(),
            origin,
            conversion_error: result.err(),
        }
    }
}

/// The set of settings a process knows. Loaders use it for warnings; the CLI for
/// validation and explain.
pub struct Registry {
    by_key: HashMap<String, &'static dyn AnySetting>,
    ordered: Vec<&'static dyn AnySetting>,
}

impl Registry {
    /// Builds a registry. Two settings whose keys differ only in case are a bug.
    pub fn new(settings: &[&'static dyn AnySetting]) -> Registry {
        let mut by_key = HashMap::with_capacity(settings.len());
        for setting in settings {
            let previous = by_key.insert(normalize_key(setting.key()), *setting);
            assert!(
                previous.is_none(),
                "setting {} is declared twice",
                setting.key()
            );
        }
        let mut ordered = settings.to_vec();
        ordered.sort_by_key(|setting| normalize_key(setting.key()));
        Registry { by_key, ordered }
    }

    /// Every setting Sundial declares.
    pub fn builtin() -> Registry {
        Registry::new(crate::settings::ALL)
    }

    /// An empty registry: nothing is known, every key warns.
    pub fn empty() -> Registry {
        Registry::new(&[])
    }

    pub fn get(&self, key: &str) -> Option<&'static dyn AnySetting> {
        self.by_key.get(&normalize_key(key)).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static dyn AnySetting> + '_ {
        self.ordered.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// Load-time warnings for one key's entries (spec §3.4): unknown key, a value the
    /// setting cannot convert, constraints the precedence never checks.
    pub fn warnings_for(&self, key: &str, entries: &[ConstrainedValue]) -> Vec<String> {
        let Some(setting) = self.get(key) else {
            return vec![format!(
                "{key}: key is not a registered setting; it will be ignored"
            )];
        };
        let mut warnings = Vec::new();
        for entry in entries {
            if let Err(error) = setting.validate(&entry.value) {
                warnings.push(format!(
                    "{key}: value {} does not convert to {}: {error}; the default applies where it matches",
                    entry.value,
                    setting.type_name()
                ));
            }
            let mask = Filter::of(&entry.constraints).mask();
            if !setting.kind().levels().contains(&mask) {
                warnings.push(format!(
                    "{key}: constraints {} are not valid for a {} setting; the entry can never match",
                    entry.constraints,
                    setting.kind()
                ));
            }
        }
        warnings
    }
}

/// Keys are case-insensitive: the normalised form is lower case.
pub fn normalize_key(key: &str) -> String {
    key.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: i64, constraints: Constraints) -> ConstrainedValue {
        ConstrainedValue::new(constraints, Value::Int(value))
    }

    fn tq(ns: &str, tq: &str, task_type: i32) -> Constraints {
        Constraints {
            namespace: ns.into(),
            task_queue_name: tq.into(),
            task_type,
            ..Default::default()
        }
    }

    static TQ_SETTING: Setting<i64> = Setting {
        key: "test.taskQueueInt",
        kind: Kind::TaskQueue,
        default: || 7,
        constrained_defaults: &[],
        description: "test",
    };

    #[test]
    fn task_queue_ladder() {
        let entries = vec![
            entry(1000, Constraints::default()),
            entry(1001, tq("A", "T", 1)),
            entry(1002, tq("A", "T", 2)),
            entry(1003, tq("A", "T", 0)),
            entry(1004, Constraints::namespace("B")),
            entry(1005, tq("", "U", 0)),
        ];
        let get = |filter: Filter<'_>| TQ_SETTING.evaluate(&entries, &filter).0;
        assert_eq!(get(Filter::task_queue("A", "T", 1)), 1001);
        assert_eq!(get(Filter::task_queue("A", "T", 2)), 1002);
        assert_eq!(get(Filter::task_queue("A", "T", 3)), 1003);
        assert_eq!(get(Filter::task_queue("B", "T", 1)), 1004);
        assert_eq!(get(Filter::task_queue("B", "U", 1)), 1005);
        assert_eq!(get(Filter::task_queue("C", "V", 1)), 1000);
        assert_eq!(
            TQ_SETTING.evaluate(&[], &Filter::task_queue("C", "V", 1)).0,
            7
        );
    }

    static DEST_SETTING: Setting<i64> = Setting {
        key: "test.destinationInt",
        kind: Kind::Destination,
        default: || 0,
        constrained_defaults: &[],
        description: "test",
    };

    #[test]
    fn destination_ladder() {
        let dest = |ns: &str, d: &str| Constraints {
            namespace: ns.into(),
            destination: d.into(),
            ..Default::default()
        };
        let entries = vec![
            entry(10, Constraints::default()),
            entry(20, dest("N", "D1")),
            entry(30, Constraints::namespace("N")),
            entry(40, dest("", "D1")),
            entry(50, dest("", "D2")),
        ];
        let get = |ns: &str, d: &str| {
            DEST_SETTING
                .evaluate(&entries, &Filter::destination(ns, d))
                .0
        };
        assert_eq!(get("foo", "bar"), 10);
        assert_eq!(get("N", "D1"), 20);
        assert_eq!(get("N", "other"), 30);
        assert_eq!(get("x", "D1"), 40);
        assert_eq!(get("N", "D2"), 50);
    }

    #[test]
    fn superset_entries_never_match() {
        static NS_SETTING: Setting<i64> = Setting {
            key: "test.nsInt",
            kind: Kind::Namespace,
            default: || 1,
            constrained_defaults: &[],
            description: "test",
        };
        let entries = vec![entry(
            5,
            Constraints {
                namespace: "A".into(),
                shard_id: 3,
                ..Default::default()
            },
        )];
        assert_eq!(NS_SETTING.evaluate(&entries, &Filter::namespace("A")).0, 1);
    }

    #[test]
    fn first_entry_wins_among_identical_constraints() {
        let entries = vec![
            entry(1, Constraints::default()),
            entry(2, Constraints::default()),
        ];
        assert_eq!(TQ_SETTING.evaluate(&entries, &Filter::GLOBAL).0, 1);
    }

    #[test]
    fn warnings() {
        static GLOBAL: Setting<i64> = Setting {
            key: "test.Global",
            kind: Kind::Global,
            default: || 1,
            constrained_defaults: &[],
            description: "test",
        };
        let registry = Registry::new(&[&GLOBAL]);
        assert!(registry.get("TEST.GLOBAL").is_some());
        assert_eq!(registry.warnings_for("unknown.key", &[]).len(), 1);
        let entries = vec![
            entry(1, Constraints::namespace("x")),
            ConstrainedValue::global(Value::String("s".into())),
        ];
        let warnings = registry.warnings_for("test.global", &entries);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("not valid for a global setting"));
        assert!(warnings[1].contains("does not convert"));
    }
}
