//! The SQLite store. One writer thread owns the write connection and group-commits: it takes
//! every write that is waiting, applies them (each alone if one fails), and commits them with a
//! single fsync. Reads use a small pool of connections; WAL mode lets them run beside writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use async_trait::async_trait;
use parking_lot::Mutex;
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use sundial_common::{Error, Result};
use sundial_proto::api::history::v1::{History, HistoryEvent};
use tokio::sync::oneshot;

use crate::Store;
use crate::records::*;
use crate::schema::sqlite::{MIGRATIONS, VISIBILITY_PLANNER_STATS};
use crate::visibility::{
    self, INSERT_COLUMNS, Placeholders, SqlParam, UPDATED_COLUMNS, VisibilityCursor, VisibilityRow,
    VisibilityStore, VisibilityWrite,
};

const READ_CONNECTIONS: usize = 4;
const MAX_GROUP: usize = 512;

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// Sync every commit to disk (`synchronous=FULL`). Off only for throwaway databases.
    pub durable: bool,
}

struct WriteRequest {
    batch: WriteBatch,
    reply: oneshot::Sender<Result<()>>,
}

pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    path: PathBuf,
    durable: bool,
}

fn db_error(error: rusqlite::Error) -> Error {
    Error::Unavailable(format!("database: {error}"))
}

/// Page cache of the writer, which keeps it across its own commits. Small on purpose: at the end
/// of every write transaction SQLite scans the whole page-cache hash table (`pcache1Truncate`),
/// so a large cache costs CPU on every commit (64 MiB cost ~8 % more server CPU per workflow
/// than 1-2 MiB); pages it misses come from the OS page cache.
const WRITER_CACHE_KIB: i64 = 2_048;
/// Page cache of a reader. A reader drops its cache whenever another connection has written,
/// and dropping costs in proportion to the cache size, so readers keep theirs small.
const READER_CACHE_KIB: i64 = 512;

fn open_connection(path: &Path, durable: bool, cache_kib: i64) -> Result<Connection> {
    let connection = Connection::open(path).map_err(db_error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db_error)?;
    let synchronous = if durable { "FULL" } else { "OFF" };
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-{cache_kib};"
        ))
        .map_err(db_error)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<()> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")
        .map_err(db_error)?;
    let current: i64 = connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .map_err(db_error)?;
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let transaction = connection.transaction().map_err(db_error)?;
        transaction.execute_batch(migration).map_err(db_error)?;
        transaction
            .execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                params![version],
            )
            .map_err(db_error)?;
        transaction.commit().map_err(db_error)?;
    }
    Ok(())
}

/// Tells the planner the shape of the visibility tables ([`VISIBILITY_PLANNER_STATS`]);
/// connections opened afterwards plan with it.
fn install_planner_stats(connection: &mut Connection) -> Result<()> {
    // ANALYZE of a one-row table creates `sqlite_stat1` if it is missing.
    connection
        .execute_batch("ANALYZE schema_version")
        .map_err(db_error)?;
    let transaction = connection.transaction().map_err(db_error)?;
    transaction
        .execute(
            "DELETE FROM sqlite_stat1 WHERE tbl IN ('executions_visibility', 'executions_visibility_values')",
            [],
        )
        .map_err(db_error)?;
    for (table, index, stat) in VISIBILITY_PLANNER_STATS {
        transaction
            .execute(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)",
                params![table, index, stat],
            )
            .map_err(db_error)?;
    }
    transaction.commit().map_err(db_error)?;
    // Reloads the statistics into this connection.
    connection
        .execute_batch("ANALYZE sqlite_schema")
        .map_err(db_error)
}

impl SqliteStore {
    pub fn open(options: SqliteOptions) -> Result<Self> {
        if let Some(parent) = options.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|error| Error::Unavailable(format!("create data directory: {error}")))?;
        }
        let mut write_connection =
            open_connection(&options.path, options.durable, WRITER_CACHE_KIB)?;
        migrate(&mut write_connection)?;
        install_planner_stats(&mut write_connection)?;
        let mut readers = Vec::new();
        for _ in 0..READ_CONNECTIONS {
            readers.push(open_connection(
                &options.path,
                options.durable,
                READER_CACHE_KIB,
            )?);
        }
        let (sender, receiver) = mpsc::channel::<WriteRequest>();
        let writer_thread = thread::Builder::new()
            .name("sundial-sqlite-writer".into())
            .spawn(move || writer_loop(write_connection, receiver))
            .map_err(|error| Error::internal(format!("spawn writer thread: {error}")))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(sender)),
            readers: Arc::new(Mutex::new(readers)),
            writer_thread: Mutex::new(Some(writer_thread)),
            path: options.path,
            durable: options.durable,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after the writes already queued; later writes fail.
    pub fn shut_down(&self) {
        self.writer.lock().take();
        if let Some(handle) = self.writer_thread.lock().take() {
            let _ = handle.join();
        }
    }

    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let (path, durable) = (self.path.clone(), self.durable);
        tokio::task::spawn_blocking(move || {
            // The pool grows when every connection is busy, instead of making readers wait.
            let pooled = readers.lock().pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&path, durable, READER_CACHE_KIB)?,
            };
            let result = work(&connection);
            readers.lock().push(connection);
            result
        })
        .await
        .map_err(|error| Error::internal(format!("read task: {error}")))?
    }

    async fn submit(&self, batch: WriteBatch) -> Result<()> {
        let (reply, receiver) = oneshot::channel();
        {
            let writer = self.writer.lock();
            let Some(writer) = writer.as_ref() else {
                return Err(Error::Unavailable("store is closed".into()));
            };
            writer
                .send(WriteRequest { batch, reply })
                .map_err(|_| Error::Unavailable("store writer stopped".into()))?;
        }
        receiver
            .await
            .map_err(|_| Error::Unavailable("store writer stopped".into()))?
    }

    /// Runs a small write through the writer thread (namespaces, shards).
    async fn write_other<F>(&self, work: F) -> Result<()>
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        // Metadata writes are rare: run them on a reader connection inside an immediate
        // transaction; SQLite serialises them against the writer with its lock.
        self.read(move |connection| {
            connection
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(db_error)?;
            match work(connection) {
                Ok(()) => connection.execute_batch("COMMIT").map_err(db_error),
                Err(error) => {
                    let _ = connection.execute_batch("ROLLBACK");
                    Err(error)
                }
            }
        })
        .await
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn writer_loop(connection: Connection, receiver: mpsc::Receiver<WriteRequest>) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let results = commit_group(&connection, &group);
        for (request, result) in group.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }
}

/// Commits a group of batches in one transaction; each batch succeeds or fails on its own.
///
/// Batches rarely fail (a fenced shard, a version conflict), so the group is first applied
/// without savepoints: a savepoint makes SQLite copy every page it touches into a statement
/// journal before changing it. Only when some batch fails is the transaction rolled back and
/// the group applied again with one savepoint per batch, which leaves out the failing ones.
fn commit_group(connection: &Connection, group: &[WriteRequest]) -> Vec<Result<()>> {
    let fail_all = |error: rusqlite::Error| {
        let error = db_error(error);
        group.iter().map(|_| Err(error.clone())).collect()
    };
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(error);
    }
    let optimistic = group
        .iter()
        .try_for_each(|request| apply_batch(connection, &request.batch));
    let results = match optimistic {
        Ok(()) => group.iter().map(|_| Ok(())).collect(),
        Err(_) => {
            if let Err(error) = connection.execute_batch("ROLLBACK; BEGIN IMMEDIATE") {
                let _ = connection.execute_batch("ROLLBACK");
                return fail_all(error);
            }
            apply_each_in_savepoint(connection, group)
        }
    };
    if let Err(error) = connection.execute_batch("COMMIT") {
        let _ = connection.execute_batch("ROLLBACK");
        return fail_all(error);
    }
    results
}

fn apply_each_in_savepoint(connection: &Connection, group: &[WriteRequest]) -> Vec<Result<()>> {
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let outcome = connection
            .execute_batch("SAVEPOINT batch")
            .map_err(db_error)
            .and_then(|()| apply_batch(connection, &request.batch));
        match outcome {
            Ok(()) => {
                let released = connection.execute_batch("RELEASE batch").map_err(db_error);
                results.push(released);
            }
            Err(error) => {
                let _ = connection.execute_batch("ROLLBACK TO batch; RELEASE batch");
                results.push(Err(error));
            }
        }
    }
    results
}

fn apply_batch(connection: &Connection, batch: &WriteBatch) -> Result<()> {
    let range_id: Option<i64> = connection
        .prepare_cached("SELECT range_id FROM shards WHERE shard_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row(params![batch.shard_id], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)?;
    if range_id != Some(batch.range_id) {
        return Err(Error::ShardOwnershipLost);
    }
    for write in &batch.executions {
        apply_execution_write(connection, batch.shard_id, write)?;
    }
    for task_id in &batch.deleted_transfer_tasks {
        connection
            .prepare_cached("DELETE FROM transfer_tasks WHERE shard_id = ?1 AND task_id = ?2")
            .and_then(|mut statement| statement.execute(params![batch.shard_id, task_id]))
            .map_err(db_error)?;
    }
    Ok(())
}

fn apply_execution_write(
    connection: &Connection,
    shard_id: u32,
    write: &ExecutionWrite,
) -> Result<()> {
    let visibility = &write.visibility;
    let due = &write.due;
    match write.expected_db_version {
        None => {
            connection
                .prepare_cached(
                    "INSERT INTO executions (namespace_id, workflow_id, run_id, shard_id, db_version, next_event_id,
                        state_encoding, state, workflow_type, task_queue, status, start_time, close_time, execution_time,
                        memo, search_attributes, parent_workflow_id, parent_run_id, wake_time, dispatch_pending)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        write.namespace_id,
                        write.workflow_id,
                        write.run_id,
                        shard_id,
                        write.next_event_id,
                        write.state.encoding,
                        write.state.data,
                        visibility.workflow_type,
                        visibility.task_queue,
                        visibility.status,
                        visibility.start_time_ms,
                        visibility.close_time_ms,
                        visibility.execution_time_ms,
                        visibility.memo,
                        visibility.search_attributes,
                        visibility.parent_workflow_id,
                        visibility.parent_run_id,
                        due.wake_time_ms,
                        due.dispatch_pending,
                    ])
                })
                .map_err(|error| match error {
                    rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
                        Error::Conflict("execution already exists".into())
                    }
                    other => db_error(other),
                })?;
        }
        Some(expected) => {
            let changed = connection
                .prepare_cached(
                    "UPDATE executions SET db_version = db_version + 1, next_event_id = ?1, state = ?2, status = ?3,
                        close_time = ?4, execution_time = ?5, memo = ?6, search_attributes = ?7, state_encoding = ?8,
                        wake_time = ?9, dispatch_pending = ?10
                     WHERE namespace_id = ?11 AND workflow_id = ?12 AND run_id = ?13 AND db_version = ?14",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        write.next_event_id,
                        write.state.data,
                        visibility.status,
                        visibility.close_time_ms,
                        visibility.execution_time_ms,
                        visibility.memo,
                        visibility.search_attributes,
                        write.state.encoding,
                        due.wake_time_ms,
                        due.dispatch_pending,
                        write.namespace_id,
                        write.workflow_id,
                        write.run_id,
                        expected,
                    ])
                })
                .map_err(db_error)?;
            if changed != 1 {
                return Err(Error::Conflict("execution version changed".into()));
            }
        }
    }
    if let Some(listing) = &write.listing {
        write_visibility(connection, write, listing)?;
    }
    if let (Some(first), Some(last)) = (write.events.first(), write.events.last()) {
        let data = History {
            events: write.events.clone(),
        }
        .encode_to_vec();
        connection
            .prepare_cached(
                "INSERT INTO history_node (namespace_id, run_id, first_event_id, last_event_id, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| statement.execute(params![write.namespace_id, write.run_id, first.event_id, last.event_id, data]))
            .map_err(|error| match error {
                rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Error::Conflict("history batch already written".into())
                }
                other => db_error(other),
            })?;
    }
    match &write.current {
        CurrentUpdate::Keep => {}
        CurrentUpdate::Set {
            expected_run_id,
            run_id,
            status,
            start_request_id,
        } => {
            let existing: Option<String> = connection
                .prepare_cached("SELECT run_id FROM current_executions WHERE namespace_id = ?1 AND workflow_id = ?2")
                .and_then(|mut statement| statement.query_row(params![write.namespace_id, write.workflow_id], |row| row.get(0)).optional())
                .map_err(db_error)?;
            if existing != *expected_run_id {
                return Err(Error::Conflict("current run changed".into()));
            }
            connection
                .prepare_cached(
                    "INSERT INTO current_executions (namespace_id, workflow_id, run_id, status, start_request_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (namespace_id, workflow_id) DO UPDATE SET run_id = excluded.run_id,
                        status = excluded.status, start_request_id = excluded.start_request_id",
                )
                .and_then(|mut statement| statement.execute(params![write.namespace_id, write.workflow_id, run_id, status, start_request_id]))
                .map_err(db_error)?;
        }
        CurrentUpdate::Status { run_id, status } => {
            connection
                .prepare_cached(
                    "UPDATE current_executions SET status = ?1 WHERE namespace_id = ?2 AND workflow_id = ?3 AND run_id = ?4",
                )
                .and_then(|mut statement| statement.execute(params![status, write.namespace_id, write.workflow_id, run_id]))
                .map_err(db_error)?;
        }
    }
    for (task_id, task) in &write.new_transfer_tasks {
        connection
            .prepare_cached(
                "INSERT INTO transfer_tasks (shard_id, task_id, namespace_id, workflow_id, run_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![shard_id, task_id, write.namespace_id, write.workflow_id, write.run_id, task])
            })
            .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64> {
        let (sender, receiver) = std::sync::mpsc::channel();
        self.write_other(move |connection| {
            connection
                .execute(
                    "INSERT INTO shards (shard_id, range_id) VALUES (?1, 1)
                     ON CONFLICT (shard_id) DO UPDATE SET range_id = range_id + 1",
                    params![shard_id],
                )
                .map_err(db_error)?;
            let range_id: i64 = connection
                .query_row(
                    "SELECT range_id FROM shards WHERE shard_id = ?1",
                    params![shard_id],
                    |row| row.get(0),
                )
                .map_err(db_error)?;
            let _ = sender.send(range_id);
            Ok(())
        })
        .await?;
        receiver
            .recv()
            .map_err(|_| Error::internal("shard acquisition lost its result"))
    }

    async fn init_cluster(&self, cluster_name: &str, num_history_shards: u32) -> Result<u32> {
        let key = format!("{cluster_name}/num_history_shards");
        let (sender, receiver) = std::sync::mpsc::channel();
        self.write_other(move |connection| {
            connection
                .execute(
                    "INSERT INTO cluster_metadata (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                    params![key, num_history_shards.to_string()],
                )
                .map_err(db_error)?;
            let value: String = connection
                .query_row(
                    "SELECT value FROM cluster_metadata WHERE key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .map_err(db_error)?;
            let _ = sender.send(value);
            Ok(())
        })
        .await?;
        let value = receiver
            .recv()
            .map_err(|_| Error::internal("cluster metadata lost its result"))?;
        value
            .parse()
            .map_err(|_| Error::CorruptState(format!("stored shard count {value:?}")))
    }

    async fn create_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        self.write_other(move |connection| {
            let exists: Option<String> = connection
                .query_row(
                    "SELECT id FROM namespaces WHERE name = ?1 OR id = ?2",
                    params![namespace.name, namespace.id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            if exists.is_some() {
                return Err(Error::NamespaceAlreadyExists(namespace.name.clone()));
            }
            connection
                .execute(
                    "INSERT INTO namespaces (id, name, data) VALUES (?1, ?2, ?3)",
                    params![namespace.id, namespace.name, namespace.data],
                )
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn update_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        self.write_other(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE namespaces SET name = ?1, data = ?2 WHERE id = ?3",
                    params![namespace.name, namespace.data, namespace.id],
                )
                .map_err(db_error)?;
            if changed == 0 {
                return Err(Error::NamespaceNotFound(namespace.name.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, name, data FROM namespaces ORDER BY name")
                .map_err(db_error)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(NamespaceRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        data: row.get(2)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(db_error)
        })
        .await
    }

    async fn get_current_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentExecution>> {
        let (namespace_id, workflow_id) = (namespace_id.to_string(), workflow_id.to_string());
        self.read(move |connection| {
            connection
                .prepare_cached("SELECT run_id, status, start_request_id FROM current_executions WHERE namespace_id = ?1 AND workflow_id = ?2")
                .and_then(|mut statement| {
                    statement
                        .query_row(params![namespace_id, workflow_id], |row| {
                            Ok(CurrentExecution { run_id: row.get(0)?, status: row.get(1)?, start_request_id: row.get(2)? })
                        })
                        .optional()
                })
                .map_err(db_error)
        })
        .await
    }

    async fn load_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<LoadedExecution>> {
        let (namespace_id, workflow_id, run_id) = (
            namespace_id.to_string(),
            workflow_id.to_string(),
            run_id.to_string(),
        );
        self.read(move |connection| {
            connection
                .prepare_cached(
                    "SELECT db_version, state_encoding, state, wake_time, dispatch_pending FROM executions
                     WHERE namespace_id = ?1 AND workflow_id = ?2 AND run_id = ?3",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(params![namespace_id, workflow_id, run_id], |row| {
                            Ok(LoadedExecution {
                                db_version: row.get(0)?,
                                state: StateBlob { encoding: row.get(1)?, data: row.get(2)? },
                                due: DueWork { wake_time_ms: row.get(3)?, dispatch_pending: row.get(4)? },
                            })
                        })
                        .optional()
                })
                .map_err(db_error)
        })
        .await
    }

    async fn list_dispatch_pending(
        &self,
        shard_id: u32,
        after: Option<ExecutionRef>,
        limit: usize,
    ) -> Result<Vec<ExecutionRef>> {
        self.read(move |connection| {
            let after = after.unwrap_or(ExecutionRef { namespace_id: String::new(), workflow_id: String::new(), run_id: String::new() });
            let mut statement = connection
                .prepare_cached(
                    "SELECT namespace_id, workflow_id, run_id FROM executions
                     WHERE shard_id = ?1 AND dispatch_pending = 1 AND (namespace_id, workflow_id, run_id) > (?2, ?3, ?4)
                     ORDER BY namespace_id, workflow_id, run_id LIMIT ?5",
                )
                .map_err(db_error)?;
            let rows = statement
                .query_map(params![shard_id, after.namespace_id, after.workflow_id, after.run_id, limit as i64], |row| {
                    Ok(ExecutionRef { namespace_id: row.get(0)?, workflow_id: row.get(1)?, run_id: row.get(2)? })
                })
                .map_err(db_error)?;
            rows.collect::<std::result::Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn list_wakeups(
        &self,
        shard_id: u32,
        after: Option<WakeAfter>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>> {
        self.read(move |connection| {
            let map = |row: &rusqlite::Row<'_>| {
                Ok(Wakeup {
                    wake_time_ms: row.get(0)?,
                    run: ExecutionRef { namespace_id: row.get(1)?, workflow_id: row.get(2)?, run_id: row.get(3)? },
                })
            };
            let rows = match after {
                Some(WakeAfter::Row(last)) => {
                    let mut statement = connection
                        .prepare_cached(
                            "SELECT wake_time, namespace_id, workflow_id, run_id FROM executions
                             WHERE shard_id = ?1 AND wake_time IS NOT NULL AND wake_time <= ?2
                               AND (wake_time, namespace_id, workflow_id, run_id) > (?3, ?4, ?5, ?6)
                             ORDER BY wake_time, namespace_id, workflow_id, run_id LIMIT ?7",
                        )
                        .map_err(db_error)?;
                    let rows = statement
                        .query_map(
                            params![shard_id, until_ms, last.wake_time_ms, last.run.namespace_id, last.run.workflow_id, last.run.run_id, limit as i64],
                            map,
                        )
                        .map_err(db_error)?;
                    rows.collect::<std::result::Result<Vec<_>, _>>()
                }
                other => {
                    let after_ms = match other {
                        Some(WakeAfter::Time(time)) => time,
                        _ => i64::MIN,
                    };
                    let mut statement = connection
                        .prepare_cached(
                            "SELECT wake_time, namespace_id, workflow_id, run_id FROM executions
                             WHERE shard_id = ?1 AND wake_time IS NOT NULL AND wake_time > ?2 AND wake_time <= ?3
                             ORDER BY wake_time, namespace_id, workflow_id, run_id LIMIT ?4",
                        )
                        .map_err(db_error)?;
                    let rows = statement
                        .query_map(params![shard_id, after_ms, until_ms, limit as i64], map)
                        .map_err(db_error)?;
                    rows.collect::<std::result::Result<Vec<_>, _>>()
                }
            };
            rows.map_err(db_error)
        })
        .await
    }

    async fn read_history(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        next_event_id: i64,
        max_events: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let (namespace_id, run_id) = (namespace_id.to_string(), run_id.to_string());
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT data FROM history_node WHERE namespace_id = ?1 AND run_id = ?2 AND last_event_id >= ?3
                     AND first_event_id < ?4 ORDER BY first_event_id",
                )
                .map_err(db_error)?;
            let mut rows = statement.query(params![namespace_id, run_id, first_event_id, next_event_id]).map_err(db_error)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                let blob: Vec<u8> = row.get(0).map_err(db_error)?;
                crate::extend_from_batch(&mut events, &blob, first_event_id, next_event_id)?;
                if events.len() >= max_events {
                    break;
                }
            }
            Ok(events)
        })
        .await
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.submit(batch).await
    }

    fn close(&self) {
        self.shut_down();
    }

    async fn list_transfer_tasks(&self, shard_id: u32) -> Result<Vec<TransferTaskRecord>> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT task_id, namespace_id, workflow_id, run_id, data FROM transfer_tasks WHERE shard_id = ?1 ORDER BY task_id",
                )
                .map_err(db_error)?;
            let rows = statement
                .query_map(params![shard_id], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?, row.get::<_, Vec<u8>>(4)?))
                })
                .map_err(db_error)?;
            let mut tasks = Vec::new();
            for row in rows {
                let (task_id, namespace_id, workflow_id, run_id, data) = row.map_err(db_error)?;
                tasks.push(TransferTaskRecord {
                    shard_id,
                    task_id,
                    namespace_id,
                    workflow_id,
                    run_id,
                    task: data,
                });
            }
            Ok(tasks)
        })
        .await
    }

    async fn delete_transfer_task(&self, shard_id: u32, task_id: i64) -> Result<()> {
        self.write_other(move |connection| {
            connection
                .execute(
                    "DELETE FROM transfer_tasks WHERE shard_id = ?1 AND task_id = ?2",
                    params![shard_id, task_id],
                )
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}

fn sqlite_param(param: &SqlParam) -> rusqlite::types::Value {
    match param {
        SqlParam::Int(int) => rusqlite::types::Value::Integer(*int),
        SqlParam::Double(float) => rusqlite::types::Value::Real(*float),
        SqlParam::Text(text) => rusqlite::types::Value::Text(text.clone()),
    }
}

/// Upserts a run's visibility row and, when they changed, replaces its values.
fn write_visibility(
    connection: &Connection,
    write: &ExecutionWrite,
    listing: &VisibilityWrite,
) -> Result<()> {
    let row = &listing.row;
    let placeholders: Vec<String> = (1..=20).map(|n| format!("?{n}")).collect();
    let updates: Vec<String> = UPDATED_COLUMNS
        .iter()
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    let sql = format!(
        "INSERT INTO executions_visibility ({INSERT_COLUMNS}) VALUES ({}) \
         ON CONFLICT (namespace_id, run_id) DO UPDATE SET {}",
        placeholders.join(", "),
        updates.join(", ")
    );
    connection
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement.execute(params![
                write.namespace_id,
                row.sort_time(),
                row.workflow_id,
                row.run_id,
                row.workflow_type,
                row.task_queue,
                row.status,
                row.start_time,
                row.execution_time,
                row.close_time,
                row.execution_duration,
                row.history_length,
                row.history_size_bytes,
                row.state_transition_count,
                row.parent_workflow_id,
                row.parent_run_id,
                row.root_workflow_id,
                row.root_run_id,
                row.memo,
                row.search_attributes,
            ])
        })
        .map_err(db_error)?;
    let Some(values) = &listing.values else {
        return Ok(());
    };
    if write.expected_db_version.is_some() {
        connection
            .prepare_cached(
                "DELETE FROM executions_visibility_values WHERE namespace_id = ?1 AND run_id = ?2",
            )
            .and_then(|mut statement| statement.execute(params![write.namespace_id, write.run_id]))
            .map_err(db_error)?;
    }
    for value in values {
        connection
            .prepare_cached(
                "INSERT INTO executions_visibility_values (namespace_id, run_id, name, token, value_text, value_int, value_double) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    write.namespace_id,
                    write.run_id,
                    value.name,
                    i64::from(value.token),
                    value.text,
                    value.int,
                    value.double,
                ])
            })
            .map_err(db_error)?;
    }
    Ok(())
}

fn visibility_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VisibilityRow> {
    Ok(VisibilityRow {
        workflow_id: row.get(0)?,
        run_id: row.get(1)?,
        workflow_type: row.get(2)?,
        task_queue: row.get(3)?,
        status: row.get(4)?,
        start_time: row.get(5)?,
        execution_time: row.get(6)?,
        close_time: row.get(7)?,
        execution_duration: row.get(8)?,
        history_length: row.get(9)?,
        history_size_bytes: row.get(10)?,
        state_transition_count: row.get(11)?,
        parent_workflow_id: row.get(12)?,
        parent_run_id: row.get(13)?,
        root_workflow_id: row.get(14)?,
        root_run_id: row.get(15)?,
        memo: row.get(16)?,
        search_attributes: row.get(17)?,
    })
}

#[async_trait]
impl VisibilityStore for SqliteStore {
    async fn list_visibility(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
        after: Option<VisibilityCursor>,
        page_size: usize,
    ) -> Result<Vec<VisibilityRow>> {
        let sql = visibility::list_sql(
            Placeholders::Question,
            namespace_id,
            filter,
            after.as_ref(),
            page_size,
        );
        self.read(move |connection| {
            let mut statement = connection.prepare(&sql.text).map_err(db_error)?;
            let params: Vec<_> = sql.params.iter().map(sqlite_param).collect();
            let rows = statement
                .query_map(rusqlite::params_from_iter(params), visibility_row)
                .map_err(db_error)?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(db_error)
        })
        .await
    }

    async fn count_visibility(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<i64> {
        let sql = visibility::count_sql(Placeholders::Question, namespace_id, filter, false);
        self.read(move |connection| {
            let params: Vec<_> = sql.params.iter().map(sqlite_param).collect();
            connection
                .query_row(&sql.text, rusqlite::params_from_iter(params), |row| {
                    row.get(0)
                })
                .map_err(db_error)
        })
        .await
    }

    async fn count_visibility_by_status(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<Vec<(i64, i64)>> {
        let sql = visibility::count_sql(Placeholders::Question, namespace_id, filter, true);
        self.read(move |connection| {
            let mut statement = connection.prepare(&sql.text).map_err(db_error)?;
            let params: Vec<_> = sql.params.iter().map(sqlite_param).collect();
            let rows = statement
                .query_map(rusqlite::params_from_iter(params), |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(db_error)?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(db_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use sundial_visibility::SaType;

    /// The plan SQLite picks for a list query, one step per line.
    async fn plan(store: &SqliteStore, query: &str) -> String {
        let custom = HashMap::from([
            ("Customer".to_string(), SaType::Keyword),
            ("Score".to_string(), SaType::Int),
        ]);
        let filter = sundial_visibility::parse_query(query, &custom)
            .unwrap()
            .filter;
        let sql = visibility::list_sql(Placeholders::Question, "ns", &filter, None, 100);
        store
            .read(move |connection| {
                let mut statement = connection
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
                    .map_err(db_error)?;
                let params: Vec<_> = sql.params.iter().map(sqlite_param).collect();
                let steps = statement
                    .query_map(rusqlite::params_from_iter(params), |row| {
                        row.get::<_, String>(3)
                    })
                    .map_err(db_error)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(db_error)?;
                Ok(steps.join("\n"))
            })
            .await
            .unwrap()
    }

    // Selective list queries must be answered through the index of what they select, not by
    // walking every run in list order (which is what SQLite does without statistics).
    #[tokio::test]
    async fn selective_list_queries_are_planned_through_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteOptions {
            path: dir.path().join("plan.db"),
            durable: false,
        })
        .unwrap();
        for (query, index) in [
            ("WorkflowId = 'w'", "executions_visibility_by_workflow_id"),
            (
                "Customer = 'c'",
                "sqlite_autoindex_executions_visibility_1 (namespace_id=? AND run_id=?)",
            ),
            (
                "Score = 7",
                "sqlite_autoindex_executions_visibility_1 (namespace_id=? AND run_id=?)",
            ),
            (
                "StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-01T00:01:00Z'",
                "executions_visibility_by_start",
            ),
            ("", "executions_visibility_by_order"),
        ] {
            let plan = plan(&store, query).await;
            let first = plan.lines().next().unwrap();
            assert!(first.contains(index), "{query}: {plan}");
            assert!(!plan.contains("SCAN"), "{query}: {plan}");
        }
        store.close();
    }
}
