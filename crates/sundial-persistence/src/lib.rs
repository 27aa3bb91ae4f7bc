//! Storage for Sundial: the store trait that history and the frontend use, and its three
//! implementations: SQLite (`start-dev`), PostgreSQL and MySQL (the server databases, set up by
//! `admin`). Depends on `sundial-common` and the proto types only: history hands it plain
//! records (an opaque state blob, the visibility fields, the due-work columns), so nothing here
//! decodes the core's state.

pub mod admin;
mod group_commit;
mod mysql;
mod mysql_admin;
mod options;
mod postgres;
mod postgres_admin;
mod records;
pub mod schema;
mod sqlite;
mod tls;
mod visibility;

pub use mysql::{MysqlStore, describe_mysql_error};
pub use options::{SqlOptions, SqlPlugin};
pub use postgres::{PostgresStore, describe_pg_error};
pub use records::*;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use tls::SqlTls;
pub use visibility::{VisibilityCursor, VisibilityRow, VisibilityStore, VisibilityWrite};

/// Opens the store on a server database, checking its schema.
pub async fn open_server_store(options: SqlOptions) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match options.plugin {
        SqlPlugin::Postgres => std::sync::Arc::new(PostgresStore::open(options).await?),
        SqlPlugin::Mysql => std::sync::Arc::new(MysqlStore::open(options).await?),
    })
}

use async_trait::async_trait;
use prost::Message;
use sundial_common::{Error, Result};
use sundial_proto::api::history::v1::{History, HistoryEvent};

/// The `cluster_metadata_info.data` the server databases keep: the cluster's shard count, as
/// JSON.
pub(crate) fn cluster_metadata(num_history_shards: u32) -> Vec<u8> {
    format!("{{\"numHistoryShards\":{num_history_shards}}}").into_bytes()
}

/// The shard count in a stored `cluster_metadata`.
pub(crate) fn shards_of_cluster_metadata(data: &[u8]) -> Result<u32> {
    let text = String::from_utf8_lossy(data);
    text.trim()
        .strip_prefix("{\"numHistoryShards\":")
        .and_then(|rest| rest.strip_suffix('}'))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| Error::CorruptState(format!("stored cluster metadata {text}")))
}

/// Adds the events of one stored `history_node` batch with ids in `[first, next)`.
pub(crate) fn extend_from_batch(
    events: &mut Vec<HistoryEvent>,
    blob: &[u8],
    first: i64,
    next: i64,
) -> Result<()> {
    let batch = History::decode(blob)
        .map_err(|error| Error::CorruptState(format!("decode stored history batch: {error}")))?;
    events.extend(
        batch
            .events
            .into_iter()
            .filter(|event| event.event_id >= first && event.event_id < next),
    );
    Ok(())
}

/// Everything Sundial persists. Every write is one atomic, durable transaction: when a write
/// returns `Ok`, its effect is synced to disk.
#[async_trait]
pub trait Store: VisibilityStore {
    /// Takes ownership of a shard: bumps and returns its `range_id`, which fences every later
    /// write of the previous owner.
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64>;

    /// Records the cluster's shard count the first time, and returns the recorded one: it is
    /// fixed when the cluster is created.
    async fn init_cluster(&self, cluster_name: &str, num_history_shards: u32) -> Result<u32>;

    async fn create_namespace(&self, namespace: NamespaceRecord) -> Result<()>;
    async fn update_namespace(&self, namespace: NamespaceRecord) -> Result<()>;
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>>;

    async fn get_current_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentExecution>>;
    async fn load_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<LoadedExecution>>;
    /// Runs of a shard with a task waiting for a worker, in key order after `after`, at most
    /// `limit`: what a new owner of the shard must dispatch again.
    async fn list_dispatch_pending(
        &self,
        shard_id: u32,
        after: Option<ExecutionRef>,
        limit: usize,
    ) -> Result<Vec<ExecutionRef>>;
    /// Runs of a shard whose wake time is in `(after, until_ms]`, in wake-time order, at most
    /// `limit`. `after` is the wake time to start after, or the last row of the previous page;
    /// `None` starts at the beginning.
    async fn list_wakeups(
        &self,
        shard_id: u32,
        after: Option<WakeAfter>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>>;

    /// Events with ids in `[first_event_id, next_event_id)`, whole batches at a time, stopping
    /// after the batch that reaches `max_events`.
    async fn read_history(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        next_event_id: i64,
        max_events: usize,
    ) -> Result<Vec<HistoryEvent>>;

    /// Applies a batch atomically. Fails with `Conflict` when an execution's version or the
    /// current run changed underneath, and `ShardOwnershipLost` when the shard was taken over.
    async fn write(&self, batch: WriteBatch) -> Result<()>;

    async fn list_transfer_tasks(&self, shard_id: u32) -> Result<Vec<TransferTaskRecord>>;
    async fn delete_transfer_task(&self, shard_id: u32, task_id: i64) -> Result<()>;

    /// Finishes the writes already queued and refuses later ones.
    fn close(&self) {}
}
