//! Temporal's YAML formats (spec §3): the whole document (file, ConfigMap) and the
//! per-key entry list (etcd), with errors that reject a load and warnings that do not.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::constraints::{ConstrainedValue, Constraints};
use crate::setting::{Registry, normalize_key};
use crate::value::Value;

/// A successfully parsed document or entry list.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Keys in document order: (name as written, entries).
    pub keys: Vec<(String, Vec<ConstrainedValue>)>,
    pub warnings: Vec<String>,
}

/// A rejected load: every error and warning found.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadFailure {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.errors.join("; "))?;
        write!(
            f,
            " ({} errors, {} warnings)",
            self.errors.len(),
            self.warnings.len()
        )
    }
}

impl std::error::Error for LoadFailure {}

/// Parses a whole document (spec §3.1).
pub fn parse_document(text: &str, registry: &Registry) -> Result<Parsed, LoadFailure> {
    let fail = |error: String| LoadFailure {
        errors: vec![error],
        warnings: Vec::new(),
    };
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| fail(format!("parse yaml: {e}")))?;
    let mapping = match yaml {
        serde_yaml::Value::Null => return Ok(Parsed::default()),
        serde_yaml::Value::Mapping(mapping) => mapping,
        serde_yaml::Value::Tagged(tagged) => match tagged.value {
            serde_yaml::Value::Mapping(mapping) => mapping,
            _ => {
                return Err(fail(
                    "the document's top level must be a mapping".to_string(),
                ));
            }
        },
        _ => {
            return Err(fail(
                "the document's top level must be a mapping".to_string(),
            ));
        }
    };
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (key, list) in &mapping {
        let serde_yaml::Value::String(name) = key else {
            errors.push(format!("top-level key {key:?} is not a string"));
            continue;
        };
        if let Some(previous) = seen.insert(normalize_key(name), name.clone()) {
            errors.push(format!(
                "keys {previous:?} and {name:?} differ only in case"
            ));
            continue;
        }
        match parse_entries(list) {
            Ok(entries) => {
                parsed
                    .warnings
                    .extend(registry.warnings_for(name, &entries));
                parsed.keys.push((name.clone(), entries));
            }
            Err(error) => errors.push(format!("{name}: {error}")),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(LoadFailure {
            errors,
            warnings: parsed.warnings,
        })
    }
}

/// Parses one key's entry list (spec §3.2). An empty text is zero entries.
pub fn parse_entry_list(key: &str, text: &str, registry: &Registry) -> Result<Parsed, LoadFailure> {
    let fail = |error: String| LoadFailure {
        errors: vec![format!("{key}: {error}")],
        warnings: Vec::new(),
    };
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| fail(format!("parse yaml: {e}")))?;
    let entries = parse_entries(&yaml).map_err(fail)?;
    let warnings = registry.warnings_for(key, &entries);
    Ok(Parsed {
        keys: vec![(key.to_string(), entries)],
        warnings,
    })
}

fn parse_entries(list: &serde_yaml::Value) -> Result<Vec<ConstrainedValue>, String> {
    let items = match list {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Sequence(items) => items,
        other => {
            return Err(format!(
                "expected a list of entries, got {}",
                yaml_kind(other)
            ));
        }
    };
    let mut entries = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let serde_yaml::Value::Mapping(fields) = item else {
            return Err(format!("entry {index} is not a mapping"));
        };
        let mut value = Value::Null;
        let mut constraints = Constraints::default();
        for (field_name, field) in fields {
            // Field names match exactly; other fields are ignored, like Temporal does.
            match field_name.as_str() {
                Some("value") => {
                    value = Value::from_yaml(field).map_err(|e| format!("entry {index}: {e}"))?
                }
                Some("constraints") => {
                    let raw = Value::from_yaml(field).map_err(|e| format!("entry {index}: {e}"))?;
                    constraints =
                        Constraints::from_value(&raw).map_err(|e| format!("entry {index}: {e}"))?;
                }
                _ => {}
            }
        }
        entries.push(ConstrainedValue::new(constraints, value));
    }
    Ok(entries)
}

fn yaml_kind(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a bool",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

fn entries_yaml(entries: &[ConstrainedValue]) -> serde_yaml::Value {
    let mut items = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut mapping = serde_yaml::Mapping::new();
        mapping.insert("value".into(), entry.value.to_yaml());
        mapping.insert("constraints".into(), entry.constraints.to_value().to_yaml());
        items.push(serde_yaml::Value::Mapping(mapping));
    }
    serde_yaml::Value::Sequence(items)
}

/// Serialises an entry list in the §3.2 format.
pub fn render_entry_list(entries: &[ConstrainedValue]) -> Result<String, String> {
    serde_yaml::to_string(&entries_yaml(entries)).map_err(|e| format!("serialize entries: {e}"))
}

/// Serialises a whole document, keys ordered by name for stable diffs.
pub fn render_document(keys: &BTreeMap<String, Vec<ConstrainedValue>>) -> Result<String, String> {
    if keys.is_empty() {
        return Ok(String::new());
    }
    let mut mapping = serde_yaml::Mapping::new();
    for (name, entries) in keys {
        mapping.insert(name.clone().into(), entries_yaml(entries));
    }
    serde_yaml::to_string(&serde_yaml::Value::Mapping(mapping))
        .map_err(|e| format!("serialize document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::builtin()
    }

    #[test]
    fn example_document_loads() {
        let text = r#"
frontend.namespaceRPS:
  - value: 500
    constraints: { namespace: busy-ns }
  - value: 2400
matching.numTaskqueueReadPartitions:
  - value: 16
    constraints: { namespace: busy-ns, taskQueueName: orders, taskType: Workflow }
history.defaultActivityRetryPolicy:
  - value: { InitialIntervalInSeconds: 2, MaximumIntervalCoefficient: 50, BackoffCoefficient: 2.0, MaximumAttempts: 0 }
"#;
        let parsed = parse_document(text, &registry()).unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        assert_eq!(parsed.keys.len(), 3);
        assert_eq!(parsed.keys[0].1[0].constraints.namespace, "busy-ns");
        assert_eq!(parsed.keys[1].1[0].constraints.task_type, 1);
    }

    #[test]
    fn empty_and_comment_only_documents() {
        assert!(parse_document("", &registry()).unwrap().keys.is_empty());
        assert!(
            parse_document("# nothing\n", &registry())
                .unwrap()
                .keys
                .is_empty()
        );
        let parsed =
            parse_document("frontend.rps: []\nfrontend.globalRPS:\n", &registry()).unwrap();
        assert_eq!(parsed.keys.len(), 2);
        assert!(parsed.keys.iter().all(|(_, entries)| entries.is_empty()));
    }

    #[test]
    fn errors_reject_the_whole_load() {
        for (text, needle) in [
            ("- a\n- b\n", "top level"),
            ("42\n", "top level"),
            ("a: [\n", "parse yaml"),
            (
                "frontend.rps: [{value: 1}]\nfrontend.rps: [{value: 2}]\n",
                "duplicate",
            ),
            (
                "frontend.rps: [{value: 1}]\nFrontend.RPS: [{value: 2}]\n",
                "differ only in case",
            ),
            (
                "frontend.rps: [{value: 1, constraints: {color: blue}}]\n",
                "color",
            ),
            ("frontend.rps: [{value: {1: x}}]\n", "not a string"),
            (
                "frontend.rps: [{value: 1, constraints: {shardId: \"5\"}}]\n",
                "shardId",
            ),
            (
                "frontend.rps: [{value: 1, constraints: {taskType: Bogus}}]\n",
                "Bogus",
            ),
            ("frontend.rps: 5\n", "list"),
        ] {
            let failure = parse_document(text, &registry()).unwrap_err();
            assert!(
                failure.errors.iter().any(|e| e.contains(needle)),
                "{text:?}: {:?} lacks {needle}",
                failure.errors
            );
        }
    }

    #[test]
    fn warnings_do_not_block() {
        let text = "no.such.key: [{value: 1}]\nfrontend.rps: [{value: abc}]\nfrontend.rps.x: []\n\
                    frontend.globalRPS: [{value: 1, constraints: {namespace: a}}]\n";
        let parsed = parse_document(text, &registry()).unwrap();
        assert_eq!(parsed.keys.len(), 4);
        assert_eq!(parsed.warnings.len(), 4, "{:?}", parsed.warnings);
    }

    #[test]
    fn mistyped_field_gives_null_value() {
        let parsed = parse_document("frontend.rps: [{valu: 5}]\n", &registry()).unwrap();
        assert_eq!(parsed.keys[0].1[0].value, Value::Null);
        assert_eq!(parsed.warnings.len(), 1);
    }

    #[test]
    fn entry_list_round_trip() {
        let entries = vec![
            ConstrainedValue::new(Constraints::namespace("A"), Value::Int(500)),
            ConstrainedValue::global(Value::Int(2400)),
        ];
        let text = render_entry_list(&entries).unwrap();
        assert!(text.contains("namespace: A"), "{text}");
        let parsed = parse_entry_list("frontend.namespaceRPS", &text, &registry()).unwrap();
        assert_eq!(parsed.keys[0].1, entries);
        assert!(
            parse_entry_list("k", "", &registry()).unwrap().keys[0]
                .1
                .is_empty()
        );
        assert!(parse_entry_list("k", "- value: [unclosed", &registry()).is_err());
    }

    #[test]
    fn document_round_trip() {
        let mut keys = BTreeMap::new();
        keys.insert(
            "frontend.rps".to_string(),
            vec![ConstrainedValue::global(Value::Int(5))],
        );
        keys.insert(
            "history.cacheTTL".to_string(),
            vec![ConstrainedValue::global(Value::String("1h".into()))],
        );
        let text = render_document(&keys).unwrap();
        let parsed = parse_document(&text, &registry()).unwrap();
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.keys[0].0, "frontend.rps");
    }
}
