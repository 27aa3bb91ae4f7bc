//! Checking the search attributes a request or a command sets, and annotating the ones a run
//! shows, with Temporal 1.32's rules and messages:
//! - [`check_names`]: every name must be the namespace's custom attribute, a system or a
//!   predefined one (Temporal's "unalias" step);
//! - [`check_values`]: at most `max_keys` names, none of them a system column or an internal
//!   predefined attribute, each value of its attribute's type;
//! - [`check_size`]: each value within `max_value_size` bytes, the whole map within
//!   `max_total_size`;
//! - [`annotate`]: the outgoing form, with the `type` metadata typed SDK views need, and without
//!   custom names the namespace no longer has.

use std::collections::HashMap;

use prost::Message;
use sundial_proto::api::common::v1::{Payload, SearchAttributes};

use crate::attributes::{SaType, System, system_attribute};
use crate::time::parse_rfc3339;

/// The size limits on a run's search attributes (Temporal's `frontend.searchAttributes*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaLimits {
    pub max_keys: usize,
    pub max_value_size: usize,
    pub max_total_size: usize,
}

impl Default for SaLimits {
    fn default() -> Self {
        SaLimits {
            max_keys: 100,
            max_value_size: 2 * 1024,
            max_total_size: 40 * 1024,
        }
    }
}

/// The predefined attributes a user may set; the others are the server's own.
const SETTABLE_PREDEFINED: [&str; 11] = [
    "TemporalChangeVersion",
    "BinaryChecksums",
    "BuildIds",
    "BatcherNamespace",
    "BatcherUser",
    "TemporalScheduledStartTime",
    "TemporalScheduledById",
    "TemporalSchedulePaused",
    "TemporalNamespaceDivision",
    "TemporalPauseInfo",
    "TemporalReportedProblems",
];

fn sorted(search_attributes: &SearchAttributes) -> Vec<(&String, &Payload)> {
    let mut fields: Vec<_> = search_attributes.indexed_fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    fields
}

/// The type a name has in a run's map: the namespace's custom attribute, or a predefined one.
pub fn map_type(name: &str, custom: &HashMap<String, SaType>) -> Option<SaType> {
    if let Some(ty) = custom.get(name) {
        return Some(*ty);
    }
    match system_attribute(name) {
        Some(System::Predefined(_, ty)) => Some(ty),
        _ => None,
    }
}

/// Every name is known: a custom attribute of the namespace, or a system or predefined one.
pub fn check_names(
    search_attributes: &SearchAttributes,
    namespace: &str,
    custom: &HashMap<String, SaType>,
) -> Result<(), String> {
    for (name, _) in sorted(search_attributes) {
        if !custom.contains_key(name) && system_attribute(name).is_none() {
            return Err(format!(
                "Namespace {namespace} has no mapping defined for search attribute {name}"
            ));
        }
    }
    Ok(())
}

/// The count limit, no system columns or internal attributes, and each value of its type.
pub fn check_values(
    search_attributes: &SearchAttributes,
    custom: &HashMap<String, SaType>,
    limits: &SaLimits,
) -> Result<(), String> {
    let count = search_attributes.indexed_fields.len();
    if count > limits.max_keys {
        return Err(format!(
            "number of search attributes {count} exceeds limit {}",
            limits.max_keys
        ));
    }
    for (name, payload) in sorted(search_attributes) {
        let ty = match (custom.get(name), system_attribute(name)) {
            (Some(ty), _) => *ty,
            (None, Some(System::Predefined(known, ty))) if SETTABLE_PREDEFINED.contains(&known) => {
                ty
            }
            (None, Some(_)) => {
                return Err(format!("{name} attribute can't be set in SearchAttributes"));
            }
            (None, None) => return Err(format!("search attribute {name} is not defined")),
        };
        if !value_fits(payload, ty) {
            return Err(format!(
                "invalid value for search attribute {name} of type {}: {}",
                ty.name(),
                shown(payload)
            ));
        }
    }
    Ok(())
}

/// Each value within the value size limit, and the whole map within the total.
pub fn check_size(search_attributes: &SearchAttributes, limits: &SaLimits) -> Result<(), String> {
    for (name, payload) in sorted(search_attributes) {
        if payload.data.len() > limits.max_value_size {
            return Err(format!(
                "search attribute {name} value size {} exceeds size limit {}",
                payload.data.len(),
                limits.max_value_size
            ));
        }
    }
    let total = search_attributes.encoded_len();
    if total > limits.max_total_size {
        return Err(format!(
            "total size of search attributes {total} exceeds size limit {}",
            limits.max_total_size
        ));
    }
    Ok(())
}

/// The three checks in Temporal's order, as a start request gets them.
pub fn check(
    search_attributes: &SearchAttributes,
    namespace: &str,
    custom: &HashMap<String, SaType>,
    limits: &SaLimits,
) -> Result<(), String> {
    check_names(search_attributes, namespace, custom)?;
    check_values(search_attributes, custom, limits)?;
    check_size(search_attributes, limits)
}

/// The outgoing form of a run's attributes: each custom or predefined value gains a `type`
/// metadata entry unless the writer gave one, and custom names the namespace no longer has
/// are left out (as Temporal leaves out slots without an alias).
pub fn annotate(search_attributes: &mut SearchAttributes, custom: &HashMap<String, SaType>) {
    search_attributes
        .indexed_fields
        .retain(|name, _| custom.contains_key(name) || system_attribute(name).is_some());
    for (name, payload) in search_attributes.indexed_fields.iter_mut() {
        if payload.metadata.contains_key("type") {
            continue;
        }
        if let Some(ty) = map_type(name, custom) {
            payload
                .metadata
                .insert("type".into(), ty.name().as_bytes().to_vec());
        }
    }
}

/// Whether a payload decodes as a value of `ty`, as Temporal's SDK converter decodes it: JSON
/// `null` and an empty list are "no value"; a scalar type also takes a list of one.
fn value_fits(payload: &Payload, ty: SaType) -> bool {
    let Some(json) = crate::index::payload_json(payload) else {
        return false;
    };
    let scalar = |value: &serde_json::Value| match ty {
        SaType::Keyword | SaType::Text => value.is_string(),
        SaType::Int => value.is_i64(),
        SaType::Double => value.is_number(),
        SaType::Bool => value.is_boolean(),
        SaType::Datetime => value.as_str().is_some_and(|s| parse_rfc3339(s).is_some()),
        SaType::KeywordList => false,
    };
    match (&json, ty) {
        (serde_json::Value::Null, _) => true,
        (serde_json::Value::Array(items), SaType::KeywordList) => {
            items.iter().all(serde_json::Value::is_string)
        }
        (_, SaType::KeywordList) => false,
        (serde_json::Value::Array(items), _) => items.len() <= 1 && items.iter().all(&scalar),
        (value, _) => scalar(value),
    }
}

/// A bad value as Go's `%v` shows the decoded value in Temporal's message: strings bare, lists
/// in brackets with spaces, a non-JSON payload as its bytes.
fn shown(payload: &Payload) -> String {
    match crate::index::payload_json(payload) {
        Some(json) => go_value(&json),
        None if payload.metadata.get("encoding").map(Vec::as_slice) == Some(b"binary/plain") => {
            let bytes: Vec<String> = payload.data.iter().map(u8::to_string).collect();
            format!("[{}]", bytes.join(" "))
        }
        None => format!("value from <{}>", String::from_utf8_lossy(&payload.data)),
    }
}

fn go_value(json: &serde_json::Value) -> String {
    match json {
        serde_json::Value::Null => "<nil>".into(),
        serde_json::Value::Bool(flag) => flag.to_string(),
        serde_json::Value::Number(number) => number.to_string(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        serde_json::Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = fields
                .into_iter()
                .map(|(key, value)| format!("{key}:{}", go_value(value)))
                .collect();
            format!("map[{}]", fields.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn map(entries: &[(&str, Payload)]) -> SearchAttributes {
        SearchAttributes {
            indexed_fields: entries
                .iter()
                .map(|(name, payload)| (name.to_string(), payload.clone()))
                .collect(),
        }
    }

    fn custom() -> HashMap<String, SaType> {
        [
            ("CustInt", SaType::Int),
            ("CustKw", SaType::Keyword),
            ("CustKwl", SaType::KeywordList),
            ("CustDbl", SaType::Double),
            ("CustBool", SaType::Bool),
            ("CustTime", SaType::Datetime),
            ("CustText", SaType::Text),
        ]
        .into_iter()
        .map(|(name, ty)| (name.to_string(), ty))
        .collect()
    }

    fn checked(entries: &[(&str, Payload)]) -> Result<(), String> {
        check(&map(entries), "default", &custom(), &SaLimits::default())
    }

    #[test]
    fn values_of_the_registered_type_pass() {
        for (name, value) in [
            ("CustInt", "42"),
            ("CustInt", "[7]"),
            ("CustInt", "null"),
            ("CustKw", "\"a b\""),
            ("CustKwl", "[\"a\",\"b\"]"),
            ("CustKwl", "[]"),
            ("CustDbl", "1.5"),
            ("CustDbl", "3"),
            ("CustBool", "true"),
            ("CustTime", "\"2024-01-02T03:04:05.5+02:00\""),
            ("CustText", "\"some words\""),
            ("TemporalChangeVersion", "[\"v1\"]"),
            ("BuildIds", "[\"unversioned\"]"),
        ] {
            assert_eq!(checked(&[(name, json(value))]), Ok(()), "{name}={value}");
        }
    }

    #[test]
    fn bad_values_get_temporals_messages() {
        let binary = Payload {
            metadata: [("encoding".to_string(), b"binary/plain".to_vec())].into(),
            data: b"3".to_vec(),
            ..Default::default()
        };
        for (entry, message) in [
            (
                ("CustInt", json("\"abc\"")),
                "invalid value for search attribute CustInt of type Int: abc",
            ),
            (
                ("CustInt", json("1.5")),
                "invalid value for search attribute CustInt of type Int: 1.5",
            ),
            (
                ("CustInt", binary),
                "invalid value for search attribute CustInt of type Int: [51]",
            ),
            (
                ("CustKw", json("[\"a\",\"b\"]")),
                "invalid value for search attribute CustKw of type Keyword: [a b]",
            ),
            (
                ("CustKwl", json("\"a\"")),
                "invalid value for search attribute CustKwl of type KeywordList: a",
            ),
            (
                ("CustTime", json("\"yesterday\"")),
                "invalid value for search attribute CustTime of type Datetime: yesterday",
            ),
            (
                ("NoSuchSA", json("1")),
                "Namespace default has no mapping defined for search attribute NoSuchSA",
            ),
            (
                ("WorkflowType", json("\"x\"")),
                "WorkflowType attribute can't be set in SearchAttributes",
            ),
            (
                ("TemporalWorkerDeployment", json("\"x\"")),
                "TemporalWorkerDeployment attribute can't be set in SearchAttributes",
            ),
            (
                ("CustKw", json(&format!("\"{}\"", "x".repeat(3000)))),
                "search attribute CustKw value size 3002 exceeds size limit 2048",
            ),
        ] {
            assert_eq!(checked(&[entry]), Err(message.to_string()));
        }
    }

    #[test]
    fn the_count_and_total_limits_hold() {
        let limits = SaLimits {
            max_keys: 2,
            max_value_size: 2048,
            max_total_size: 60,
        };
        let three = map(&[
            ("CustInt", json("1")),
            ("CustKw", json("\"a\"")),
            ("CustBool", json("true")),
        ]);
        assert_eq!(
            check_values(&three, &custom(), &limits),
            Err("number of search attributes 3 exceeds limit 2".into())
        );
        let big = map(&[("CustKw", json(&format!("\"{}\"", "y".repeat(40))))]);
        let error = check_size(&big, &limits).unwrap_err();
        assert!(
            error.starts_with("total size of search attributes ") && error.ends_with("limit 60"),
            "{error}"
        );
    }

    #[test]
    fn annotation_adds_types_and_drops_removed_names() {
        let mut typed = json("\"x\"");
        typed.metadata.insert("type".into(), b"Bogus".to_vec());
        let mut attributes = map(&[
            ("CustInt", json("1")),
            ("CustKw", typed),
            ("Removed", json("\"gone\"")),
            ("TemporalChangeVersion", json("[\"v1\"]")),
        ]);
        annotate(&mut attributes, &custom());
        let fields = &attributes.indexed_fields;
        assert_eq!(fields.len(), 3);
        assert_eq!(fields["CustInt"].metadata["type"], b"Int");
        assert_eq!(fields["CustKw"].metadata["type"], b"Bogus");
        assert_eq!(
            fields["TemporalChangeVersion"].metadata["type"],
            b"KeywordList"
        );
    }
}
