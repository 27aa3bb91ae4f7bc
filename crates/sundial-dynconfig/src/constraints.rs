//! Constraints, constrained values and their YAML forms (spec §1, §3.3).

use std::fmt;

use crate::value::Value;

/// Task-queue type as used in constraints: Workflow=1, Activity=2, Nexus=3.
pub const TASK_QUEUE_TYPES: &[(&str, &str, i32)] = &[
    ("Workflow", "TASK_QUEUE_TYPE_WORKFLOW", 1),
    ("Activity", "TASK_QUEUE_TYPE_ACTIVITY", 2),
    ("Nexus", "TASK_QUEUE_TYPE_NEXUS", 3),
];

/// History task types (Temporal's server-internal task type enum), short name and number.
/// Values 9, 11 and 23 are retired upstream.
pub const HISTORY_TASK_TYPES: &[(&str, i32)] = &[
    ("ReplicationHistory", 1),
    ("ReplicationSyncActivity", 2),
    ("TransferWorkflowTask", 3),
    ("TransferActivityTask", 4),
    ("TransferCloseExecution", 5),
    ("TransferCancelExecution", 6),
    ("TransferStartChildExecution", 7),
    ("TransferSignalExecution", 8),
    ("TransferResetWorkflow", 10),
    ("WorkflowTaskTimeout", 12),
    ("ActivityTimeout", 13),
    ("UserTimer", 14),
    ("WorkflowRunTimeout", 15),
    ("DeleteHistoryEvent", 16),
    ("ActivityRetryTimer", 17),
    ("WorkflowBackoffTimer", 18),
    ("VisibilityStartExecution", 19),
    ("VisibilityUpsertExecution", 20),
    ("VisibilityCloseExecution", 21),
    ("VisibilityDeleteExecution", 22),
    ("TransferDeleteExecution", 24),
    ("ReplicationSyncWorkflowState", 25),
    ("ArchivalArchiveExecution", 26),
    ("StateMachineOutbound", 27),
    ("StateMachineTimer", 28),
    ("WorkflowExecutionTimeout", 29),
    ("ReplicationSyncHsm", 30),
    ("ReplicationSyncVersionedTransition", 31),
    ("ChasmPure", 32),
    ("Chasm", 33),
    ("ReplicationDeleteExecution", 34),
];

/// The eight optional constraint fields. Unset means the zero value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Constraints {
    pub namespace: String,
    pub namespace_id: String,
    pub task_queue_name: String,
    pub task_type: i32,
    pub history_task_type: i32,
    pub shard_id: i32,
    pub destination: String,
    pub chasm_task_type: String,
}

/// Canonical constraint field names, in write order.
pub const CONSTRAINT_NAMES: &[&str] = &[
    "namespace",
    "namespaceId",
    "taskQueueName",
    "taskType",
    "historyTaskType",
    "shardId",
    "destination",
    "chasmTaskType",
];

impl Constraints {
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }

    pub fn namespace(namespace: impl Into<String>) -> Self {
        Constraints {
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    /// Parses the `constraints` field of an entry. `Null` means none.
    pub fn from_value(value: &Value) -> Result<Constraints, String> {
        let mut constraints = Constraints::default();
        let entries = match value {
            Value::Null => return Ok(constraints),
            Value::Map(entries) => entries,
            other => {
                return Err(format!(
                    "constraints must be a map, got {}",
                    other.type_name()
                ));
            }
        };
        for (name, field) in entries {
            constraints.set_field(name, field)?;
        }
        Ok(constraints)
    }

    /// Sets one field by (case-insensitive) constraint name.
    pub fn set_field(&mut self, name: &str, field: &Value) -> Result<(), String> {
        let string_field = |field: &Value| match field {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "constraint {name} must be a string, got {}",
                other.type_name()
            )),
        };
        match name.to_lowercase().as_str() {
            "namespace" => self.namespace = string_field(field)?,
            "namespaceid" => self.namespace_id = string_field(field)?,
            "taskqueuename" => self.task_queue_name = string_field(field)?,
            "destination" => self.destination = string_field(field)?,
            "chasmtasktype" => self.chasm_task_type = string_field(field)?,
            "tasktype" => self.task_type = parse_task_queue_type(field)?,
            "historytasktype" => self.history_task_type = parse_history_task_type(field)?,
            "shardid" => {
                self.shard_id = match field {
                    Value::Int(i) => i32::try_from(*i)
                        .map_err(|_| format!("constraint shardId {i} is out of range"))?,
                    other => {
                        return Err(format!(
                            "constraint shardId must be an integer, got {}",
                            other.type_name()
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown constraint type {name:?}")),
        }
        Ok(())
    }

    /// The canonical map form: only non-zero fields, canonical names (spec §8.6).
    pub fn to_value(&self) -> Value {
        let mut entries = Vec::new();
        let mut push_str = |name: &str, field: &str| {
            if !field.is_empty() {
                entries.push((name.to_string(), Value::String(field.to_string())));
            }
        };
        push_str("namespace", &self.namespace);
        push_str("namespaceId", &self.namespace_id);
        push_str("taskQueueName", &self.task_queue_name);
        if self.task_type != 0 {
            entries.push((
                "taskType".into(),
                enum_value(task_queue_type_name(self.task_type), self.task_type),
            ));
        }
        if self.history_task_type != 0 {
            entries.push((
                "historyTaskType".into(),
                enum_value(
                    history_task_type_name(self.history_task_type),
                    self.history_task_type,
                ),
            ));
        }
        if self.shard_id != 0 {
            entries.push(("shardId".into(), Value::Int(i64::from(self.shard_id))));
        }
        if !self.destination.is_empty() {
            entries.push((
                "destination".into(),
                Value::String(self.destination.clone()),
            ));
        }
        if !self.chasm_task_type.is_empty() {
            entries.push((
                "chasmTaskType".into(),
                Value::String(self.chasm_task_type.clone()),
            ));
        }
        Value::Map(entries)
    }
}

fn enum_value(name: Option<&str>, number: i32) -> Value {
    match name {
        Some(name) => Value::String(name.to_string()),
        None => Value::Int(i64::from(number)),
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

pub fn task_queue_type_name(number: i32) -> Option<&'static str> {
    TASK_QUEUE_TYPES
        .iter()
        .find(|(_, _, n)| *n == number)
        .map(|(short, _, _)| *short)
}

pub fn history_task_type_name(number: i32) -> Option<&'static str> {
    HISTORY_TASK_TYPES
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(short, _)| *short)
}

/// `Workflow`/`TASK_QUEUE_TYPE_WORKFLOW` (exact case) or an integer > 0.
pub fn parse_task_queue_type(field: &Value) -> Result<i32, String> {
    match field {
        Value::String(name) => TASK_QUEUE_TYPES
            .iter()
            .find(|(short, full, _)| short == name || full == name)
            .map(|(_, _, number)| *number)
            .ok_or_else(|| format!("unknown task queue type {name:?}")),
        Value::Int(i) if *i > 0 => {
            i32::try_from(*i).map_err(|_| format!("task queue type {i} is out of range"))
        }
        Value::Int(i) => Err(format!("invalid task queue type {i}")),
        other => Err(format!(
            "constraint taskType must be a string or integer, got {}",
            other.type_name()
        )),
    }
}

/// Short PascalCase name, `TASK_TYPE_…` full name, or any integer.
pub fn parse_history_task_type(field: &Value) -> Result<i32, String> {
    match field {
        Value::String(name) => {
            for (short, number) in HISTORY_TASK_TYPES {
                if short == name || screaming_name(short) == *name {
                    return Ok(*number);
                }
            }
            Err(format!("unknown history task type {name:?}"))
        }
        Value::Int(i) => {
            i32::try_from(*i).map_err(|_| format!("history task type {i} is out of range"))
        }
        other => Err(format!(
            "constraint historyTaskType must be a string or integer, got {}",
            other.type_name()
        )),
    }
}

/// `TransferActivityTask` → `TASK_TYPE_TRANSFER_ACTIVITY_TASK`.
fn screaming_name(short: &str) -> String {
    let mut out = String::from("TASK_TYPE");
    for c in short.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// One entry of a key's list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstrainedValue {
    pub constraints: Constraints,
    pub value: Value,
}

impl ConstrainedValue {
    pub fn new(constraints: Constraints, value: Value) -> Self {
        ConstrainedValue { constraints, value }
    }

    pub fn global(value: Value) -> Self {
        ConstrainedValue {
            constraints: Constraints::default(),
            value,
        }
    }
}

impl fmt::Display for ConstrainedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.constraints.is_empty() {
            write!(f, "{}", self.value)
        } else {
            write!(f, "{} {}", self.value, self.constraints)
        }
    }
}

/// Renders an entry list on one line for logs.
pub fn render_entries(entries: &[ConstrainedValue]) -> String {
    let parts: Vec<String> = entries.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_task_type_names() {
        assert_eq!(
            parse_history_task_type(&Value::String("TransferActivityTask".into())),
            Ok(4)
        );
        assert_eq!(
            parse_history_task_type(&Value::String("TASK_TYPE_ACTIVITY_RETRY_TIMER".into())),
            Ok(17)
        );
        assert_eq!(parse_history_task_type(&Value::Int(999)), Ok(999));
        assert!(parse_history_task_type(&Value::String("Nope".into())).is_err());
        assert!(parse_history_task_type(&Value::Bool(true)).is_err());
    }

    #[test]
    fn task_queue_type_rules() {
        assert_eq!(
            parse_task_queue_type(&Value::String("Workflow".into())),
            Ok(1)
        );
        assert_eq!(
            parse_task_queue_type(&Value::String("TASK_QUEUE_TYPE_NEXUS".into())),
            Ok(3)
        );
        assert!(parse_task_queue_type(&Value::String("workflow".into())).is_err());
        assert!(
            parse_task_queue_type(&Value::String("TASK_QUEUE_TYPE_UNSPECIFIED".into())).is_err()
        );
        assert!(parse_task_queue_type(&Value::Int(0)).is_err());
        assert_eq!(parse_task_queue_type(&Value::Int(7)), Ok(7));
    }

    #[test]
    fn constraint_names_are_case_insensitive_and_checked() {
        let value = Value::Map(vec![
            ("TASKQUEUENAME".into(), Value::String("q".into())),
            ("shardid".into(), Value::Int(5)),
        ]);
        let constraints = Constraints::from_value(&value).unwrap();
        assert_eq!(constraints.task_queue_name, "q");
        assert_eq!(constraints.shard_id, 5);
        let bad = Value::Map(vec![("color".into(), Value::String("blue".into()))]);
        assert!(Constraints::from_value(&bad).unwrap_err().contains("color"));
        let quoted = Value::Map(vec![("shardId".into(), Value::String("5".into()))]);
        assert!(Constraints::from_value(&quoted).is_err());
    }

    #[test]
    fn canonical_form_round_trips() {
        let constraints = Constraints {
            namespace: "a".into(),
            task_type: 2,
            history_task_type: 14,
            chasm_task_type: "x".into(),
            ..Default::default()
        };
        let value = constraints.to_value();
        assert_eq!(Constraints::from_value(&value).unwrap(), constraints);
        assert_eq!(
            value.to_string(),
            r#"{"namespace":"a","taskType":"Activity","historyTaskType":"UserTimer","chasmTaskType":"x"}"#
        );
    }
}
