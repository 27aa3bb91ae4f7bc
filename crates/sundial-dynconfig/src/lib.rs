//! Sundial's dynamic config: Temporal's model and YAML format (keys, constrained values,
//! precedence), a typed settings registry read through cheap live handles, and push sources
//! (watched file, etcd, Kubernetes ConfigMap, memory) with metrics and an operator CLI.
//!
//! This crate depends on no other Sundial crate; services depend on it, never the reverse.
//! Spec: `specs/dynconfig.md` in the shared project notes.

pub mod cli;
pub mod configmap;
pub mod constraints;
pub mod convert;
pub mod duration;
pub mod etcd;
pub mod file;
pub mod handle;
pub mod load;
pub mod memory;
pub mod metrics;
pub mod open;
pub mod setting;
pub mod settings;
pub mod source;
pub mod value;

pub use configmap::{ConfigMapConfig, ConfigMapSource};
pub use constraints::{ConstrainedValue, Constraints};
pub use etcd::{EtcdConfig, EtcdSource};
pub use file::FileSource;
pub use handle::{DynamicConfig, Handle};
pub use memory::MemorySource;
pub use metrics::Metrics;
pub use open::{OpenOptions, SourceUrl, open_source};
pub use setting::{AnySetting, Filter, Kind, Registry, Setting};
pub use source::{ChangeSet, Error, Source, SourceState, Subscription};
pub use value::Value;
