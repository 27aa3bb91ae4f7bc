//! The untyped value tree a setting's YAML value decodes into (spec §1.1).
//!
//! It mirrors what a YAML 1.2 core-schema decoder gives to a dynamic type: only
//! `true`/`false` are booleans (`yes`, `on` stay strings), map keys are strings.

use std::fmt;

/// An untyped dynamic-config value.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Only for integers above `i64::MAX`.
    UInt(u64),
    Float(f64),
    String(String),
    Seq(Vec<Value>),
    /// Insertion order is kept for display; equality ignores it.
    Map(Vec<(String, Value)>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Seq(a), Value::Seq(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(key, value)| {
                        b.iter()
                            .find(|(other_key, _)| other_key == key)
                            .is_some_and(|(_, other_value)| other_value == value)
                    })
            }
            _ => false,
        }
    }
}

impl Value {
    /// Converts a parsed YAML value. A non-string map key anywhere is an error (spec §1.1).
    pub fn from_yaml(yaml: &serde_yaml::Value) -> Result<Value, String> {
        Ok(match yaml {
            serde_yaml::Value::Null => Value::Null,
            serde_yaml::Value::Bool(b) => Value::Bool(*b),
            serde_yaml::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_yaml::Value::String(s) => Value::String(s.clone()),
            serde_yaml::Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(Value::from_yaml(item)?);
                }
                Value::Seq(out)
            }
            serde_yaml::Value::Mapping(mapping) => {
                let mut out = Vec::with_capacity(mapping.len());
                for (key, value) in mapping {
                    let serde_yaml::Value::String(key) = key else {
                        return Err(format!(
                            "map key {} in a value is not a string",
                            render_yaml_scalar(key)
                        ));
                    };
                    out.push((key.clone(), Value::from_yaml(value)?));
                }
                Value::Map(out)
            }
            serde_yaml::Value::Tagged(tagged) => Value::from_yaml(&tagged.value)?,
        })
    }

    /// The YAML form used when writing values back (etcd, ConfigMap, CLI).
    pub fn to_yaml(&self) -> serde_yaml::Value {
        match self {
            Value::Null => serde_yaml::Value::Null,
            Value::Bool(b) => serde_yaml::Value::Bool(*b),
            Value::Int(i) => serde_yaml::Value::Number((*i).into()),
            Value::UInt(u) => serde_yaml::Value::Number((*u).into()),
            Value::Float(f) => serde_yaml::Value::Number((*f).into()),
            Value::String(s) => serde_yaml::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_yaml::Value::Sequence(items.iter().map(Value::to_yaml).collect())
            }
            Value::Map(entries) => {
                let mut mapping = serde_yaml::Mapping::new();
                for (key, value) in entries {
                    mapping.insert(serde_yaml::Value::String(key.clone()), value.to_yaml());
                }
                serde_yaml::Value::Mapping(mapping)
            }
        }
    }

    /// JSON form, for the debug dump and struct conversion.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The inverse of [`Value::to_json`].
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), Value::from_json(value)))
                    .collect(),
            ),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

fn render_yaml_scalar(value: &serde_yaml::Value) -> String {
    serde_yaml::to_string(value)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Compact one-line rendering (JSON-like flow style) for logs and the CLI.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Seq(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", serde_json::Value::String(key.clone()))?;
                }
                f.write_str("}")
            }
            scalar => write!(f, "{}", scalar.to_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, String> {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        Value::from_yaml(&yaml)
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        assert_eq!(parse("False").unwrap(), Value::Bool(false));
        assert_eq!(parse("TRUE").unwrap(), Value::Bool(true));
        for word in ["yes", "no", "on", "off", "y", "n"] {
            assert_eq!(
                parse(word).unwrap(),
                Value::String(word.to_string()),
                "{word}"
            );
        }
        assert_eq!(parse("1.0").unwrap(), Value::Float(1.0));
        assert_eq!(parse("\"5\"").unwrap(), Value::String("5".into()));
        assert_eq!(parse("1m").unwrap(), Value::String("1m".into()));
        assert_eq!(parse("42").unwrap(), Value::Int(42));
        assert_eq!(
            parse("18446744073709551615").unwrap(),
            Value::UInt(u64::MAX)
        );
        assert_eq!(parse("~").unwrap(), Value::Null);
    }

    #[test]
    fn non_string_key_is_an_error() {
        let err = parse("{a: {1: x}}").unwrap_err();
        assert!(err.contains("not a string"), "{err}");
    }

    #[test]
    fn map_equality_ignores_order() {
        assert_eq!(
            parse("{a: 1, b: 2}").unwrap(),
            parse("{b: 2, a: 1}").unwrap()
        );
        assert_ne!(
            parse("{a: 1, b: 2}").unwrap(),
            parse("{a: 1, b: 3}").unwrap()
        );
        assert_ne!(parse("[1, 2]").unwrap(), parse("[2, 1]").unwrap());
    }
}
