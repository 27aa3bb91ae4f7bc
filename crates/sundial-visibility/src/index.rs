//! A run's search attributes as the plain values a store indexes. Storage does not depend on
//! the attributes' registered types: every JSON value is stored in each form a query of some
//! type may compare (a string as text, as a timestamp when it parses as one, and as its Text
//! tokens; a number as a float, and as an integer when it is whole; a bool as 0 or 1), and
//! the query's type picks the form. Re-registering a name with another type needs no rewrite.

use sundial_proto::api::common::v1::{Payload, SearchAttributes};

use crate::time::parse_rfc3339;

/// One stored value of a search attribute. A KeywordList has one per element; a string has
/// one more per distinct Text token (`token: true`, lowercased, in `text`).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedValue {
    pub name: String,
    pub token: bool,
    pub text: Option<String>,
    pub int: Option<i64>,
    pub double: Option<f64>,
}

/// The words of a Text value or query: runs of letters and digits, lowercased, each once.
pub fn tokens(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word = word.to_lowercase();
        if !found.contains(&word) {
            found.push(word);
        }
    }
    found
}

/// The JSON value of a search-attribute payload; `None` unless it is `json/plain`.
pub fn payload_json(payload: &Payload) -> Option<serde_json::Value> {
    let encoding = payload.metadata.get("encoding")?;
    if encoding.as_slice() != b"json/plain" {
        return None;
    }
    serde_json::from_slice(&payload.data).ok()
}

/// Every value to store for a run's search attributes, in name order.
pub fn index(search_attributes: &SearchAttributes) -> Vec<IndexedValue> {
    let mut names: Vec<&String> = search_attributes.indexed_fields.keys().collect();
    names.sort();
    let mut values = Vec::new();
    for name in names {
        let Some(json) = payload_json(&search_attributes.indexed_fields[name]) else {
            continue;
        };
        match json {
            serde_json::Value::Array(items) => {
                for item in items {
                    push_scalar(&mut values, name, &item, false);
                }
            }
            scalar => push_scalar(&mut values, name, &scalar, true),
        }
    }
    values
}

fn push_scalar(
    values: &mut Vec<IndexedValue>,
    name: &str,
    json: &serde_json::Value,
    tokens_too: bool,
) {
    let value = |text: Option<String>, int: Option<i64>, double: Option<f64>| IndexedValue {
        name: name.to_string(),
        token: false,
        text,
        int,
        double,
    };
    match json {
        serde_json::Value::String(text) => {
            values.push(value(Some(text.clone()), parse_rfc3339(text), None));
            if tokens_too {
                values.extend(tokens(text).into_iter().map(|token| IndexedValue {
                    name: name.to_string(),
                    token: true,
                    text: Some(token),
                    int: None,
                    double: None,
                }));
            }
        }
        serde_json::Value::Number(number) => {
            let double = number.as_f64();
            let int = number.as_i64().or_else(|| {
                double
                    .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e18)
                    .map(|float| float as i64)
            });
            values.push(value(None, int, double));
        }
        serde_json::Value::Bool(flag) => values.push(value(None, Some(i64::from(*flag)), None)),
        _ => {}
    }
}
