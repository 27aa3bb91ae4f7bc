//! Untyped → typed conversions (spec §5).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::duration::{format_duration, nanos_to_duration, parse_duration_nanos, seconds_to_nanos};
use crate::value::Value;

/// A type a setting can have. Conversions never panic; a failure makes the lookup return
/// the setting's default.
pub trait SettingValue: Clone + Send + Sync + 'static {
    /// Name shown by `validate`/`explain`.
    const TYPE_NAME: &'static str;
    /// True when `convert` layers onto `default` (structs). Scalars ignore it, so the hot
    /// path skips resolving the constrained default for them.
    const USES_DEFAULT: bool = false;
    /// Converts a stored value. `default` is the value a struct setting layers onto.
    fn convert(value: &Value, default: &Self) -> Result<Self, String>;
    /// The value as it would be written in YAML (defaults in dumps and seeding).
    fn to_value(&self) -> Value;
}

impl SettingValue for bool {
    const TYPE_NAME: &'static str = "bool";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            // Go's strconv.ParseBool set.
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
                _ => Err(format!("cannot convert string {s:?} to bool")),
            },
            other => Err(format!("cannot convert {} to bool", other.type_name())),
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl SettingValue for i64 {
    const TYPE_NAME: &'static str = "int";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i),
            Value::UInt(u) => i64::try_from(*u).map_err(|_| format!("integer {u} is out of range")),
            other => Err(format!(
                "cannot convert {} {other} to int",
                other.type_name()
            )),
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl SettingValue for f64 {
    const TYPE_NAME: &'static str = "float";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::UInt(u) => Ok(*u as f64),
            other => Err(format!("cannot convert {} to float", other.type_name())),
        }
    }
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
}

impl SettingValue for String {
    const TYPE_NAME: &'static str = "string";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("cannot convert {} to string", other.type_name())),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
}

impl SettingValue for Duration {
    const TYPE_NAME: &'static str = "duration";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        convert_duration_nanos(value).map(nanos_to_duration)
    }
    fn to_value(&self) -> Value {
        Value::String(format_duration(*self))
    }
}

/// Duration in signed nanoseconds: a string per §5.1, an int as seconds, a float as
/// fractional seconds.
pub fn convert_duration_nanos(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(s) => parse_duration_nanos(s),
        Value::Int(i) => i
            .checked_mul(1_000_000_000)
            .ok_or_else(|| format!("duration {i}s is out of range")),
        Value::Float(f) => {
            seconds_to_nanos(*f).ok_or_else(|| format!("duration {f}s is out of range"))
        }
        other => Err(format!("cannot convert {} to duration", other.type_name())),
    }
}

/// A map setting: string keys, values kept untyped.
pub type MapValue = BTreeMap<String, Value>;

impl SettingValue for MapValue {
    const TYPE_NAME: &'static str = "map";
    fn convert(value: &Value, _default: &Self) -> Result<Self, String> {
        match value {
            Value::Map(entries) => Ok(entries.iter().cloned().collect()),
            other => Err(format!("cannot convert {} to map", other.type_name())),
        }
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        )
    }
}

/// Converts a map onto a deep copy of `default` for a serde struct (spec §5.2): field
/// names match case-insensitively (serde `rename` gives the external name), missing fields
/// keep the default, unknown fields are ignored, a float into an integer field truncates,
/// and any failing field fails the whole value.
pub fn convert_struct<T: Serialize + DeserializeOwned>(
    value: &Value,
    default: &T,
) -> Result<T, String> {
    let Value::Map(input) = value else {
        return Err(format!("cannot convert {} to a struct", value.type_name()));
    };
    let mut base = serde_json::to_value(default).map_err(|e| format!("serialize default: {e}"))?;
    merge_object(&mut base, input)?;
    serde_json::from_value(base).map_err(|e| format!("decode struct: {e}"))
}

fn merge_object(base: &mut serde_json::Value, input: &[(String, Value)]) -> Result<(), String> {
    let serde_json::Value::Object(fields) = base else {
        return Err("default is not a struct".to_string());
    };
    for (input_name, input_value) in input {
        let Some(field_name) = fields
            .keys()
            .find(|name| name.eq_ignore_ascii_case(input_name))
            .cloned()
        else {
            continue;
        };
        let slot = fields
            .get_mut(&field_name)
            .expect("field name was just found");
        match (&*slot, input_value) {
            (serde_json::Value::Object(_), Value::Map(nested)) => merge_object(slot, nested)?,
            (serde_json::Value::Number(number), Value::Float(f)) if !number.is_f64() => {
                if !f.is_finite() {
                    return Err(format!("field {field_name}: {f} is not a number"));
                }
                *slot = serde_json::Value::from(f.trunc() as i64);
            }
            _ => *slot = input_value.to_json(),
        }
    }
    Ok(())
}

/// Serde helpers for `Duration` fields inside struct settings: written as a Go-style
/// string, read from a string (§5.1), int seconds or float seconds.
pub mod duration_field {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::convert_duration_nanos;
    use crate::duration::{format_duration, nanos_to_duration};
    use crate::value::Value;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        convert_duration_nanos(&Value::from_json(&json))
            .map(nanos_to_duration)
            .map_err(serde::de::Error::custom)
    }
}

/// Like [`duration_field`], but written as (fractional) seconds, for fields Temporal names
/// `...InSeconds`.
pub mod seconds_field {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        if duration.subsec_nanos() == 0 {
            serializer.serialize_u64(duration.as_secs())
        } else {
            serializer.serialize_f64(duration.as_secs_f64())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        super::duration_field::deserialize(deserializer)
    }
}

/// Implements [`SettingValue`] for a serde struct through [`convert_struct`].
#[macro_export]
macro_rules! struct_setting_value {
    ($ty:ty, $name:literal) => {
        impl $crate::convert::SettingValue for $ty {
            const TYPE_NAME: &'static str = $name;
            const USES_DEFAULT: bool = true;
            fn convert(value: &$crate::Value, default: &Self) -> Result<Self, String> {
                $crate::convert::convert_struct(value, default)
            }
            fn to_value(&self) -> $crate::Value {
                serde_json::to_value(self)
                    .map(|json| $crate::Value::from_json(&json))
                    .unwrap_or($crate::Value::Null)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    #[test]
    fn bool_rules() {
        assert_eq!(bool::convert(&Value::Bool(true), &false), Ok(true));
        assert_eq!(bool::convert(&s("T"), &false), Ok(true));
        assert_eq!(bool::convert(&s("0"), &true), Ok(false));
        assert!(bool::convert(&Value::Int(1), &false).is_err());
        assert!(bool::convert(&s("yes"), &false).is_err());
        assert!(bool::convert(&s("on"), &false).is_err());
    }

    #[test]
    fn int_float_string_rules() {
        assert_eq!(i64::convert(&Value::Int(5), &0), Ok(5));
        assert!(i64::convert(&Value::Float(1000.0), &0).is_err());
        assert!(i64::convert(&s("1000"), &0).is_err());
        assert!(i64::convert(&Value::UInt(u64::MAX), &0).is_err());
        assert_eq!(f64::convert(&Value::Int(2), &0.0), Ok(2.0));
        assert!(f64::convert(&s("2"), &0.0).is_err());
        assert_eq!(
            String::convert(&s("x"), &String::new()),
            Ok("x".to_string())
        );
        assert!(String::convert(&Value::Int(1), &String::new()).is_err());
    }

    #[test]
    fn duration_rules() {
        let zero = Duration::ZERO;
        assert_eq!(
            Duration::convert(&s("1m"), &zero),
            Ok(Duration::from_secs(60))
        );
        assert_eq!(
            Duration::convert(&Value::Int(90), &zero),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            Duration::convert(&Value::Float(1.5), &zero),
            Ok(Duration::from_millis(1500))
        );
        assert!(Duration::convert(&Value::Bool(true), &zero).is_err());
        assert!(Duration::convert(&s("wrong"), &zero).is_err());
    }

    #[test]
    fn map_rules() {
        let map = Value::Map(vec![("a".into(), Value::Int(1))]);
        assert_eq!(
            MapValue::convert(&map, &MapValue::new()).unwrap().get("a"),
            Some(&Value::Int(1))
        );
        assert!(MapValue::convert(&s("a: 1"), &MapValue::new()).is_err());
    }
}
