//! Identifiers and shard hashing.

use std::fmt;

/// One run of a workflow: the unit that history owns and locks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkflowKey {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
}

impl WorkflowKey {
    pub fn new(
        namespace_id: impl Into<String>,
        workflow_id: impl Into<String>,
        run_id: impl Into<String>,
    ) -> Self {
        Self {
            namespace_id: namespace_id.into(),
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
        }
    }
}

impl fmt::Display for WorkflowKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}/{}/{}",
            self.namespace_id, self.workflow_id, self.run_id
        )
    }
}

/// A fresh random (version 4) UUID in its hyphenated text form, as Temporal uses for namespace
/// and request ids.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh run id for a started workflow or child: a time-ordered version 7 UUID in its
/// hyphenated text form, as Temporal 1.32 generates them (its other runs get version 4 ids).
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The history shard that owns a workflow id. Shards are numbered from 1, as in Temporal.
/// FNV-1a is stable across processes and releases, which a persisted shard layout requires.
pub fn shard_for(namespace_id: &str, workflow_id: &str, num_shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in namespace_id
        .as_bytes()
        .iter()
        .chain(b"_")
        .chain(workflow_id.as_bytes())
    {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % num_shards.max(1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        let first = shard_for("ns", "wf-1", 4);
        assert_eq!(first, shard_for("ns", "wf-1", 4));
        for index in 0..1000 {
            let shard = shard_for("ns", &format!("wf-{index}"), 4);
            assert!((1..=4).contains(&shard));
        }
    }

    #[test]
    fn shards_spread_ids() {
        let mut counts = [0u32; 4];
        for index in 0..4000 {
            counts[(shard_for("ns", &format!("wf-{index}"), 4) - 1) as usize] += 1;
        }
        assert!(counts.iter().all(|count| *count > 700), "{counts:?}");
    }

    #[test]
    fn run_ids_are_version_7_and_time_ordered() {
        let first = new_run_id();
        let second = new_run_id();
        for id in [&first, &second] {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 7, "{id}");
        }
        assert!(first < second, "{first} then {second}");
        assert_eq!(
            uuid::Uuid::parse_str(&new_uuid())
                .unwrap()
                .get_version_num(),
            4
        );
    }
}
