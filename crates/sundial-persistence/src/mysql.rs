//! The MySQL store (Temporal's `mysql8` plugin; tested on MariaDB 10.11, which Debian packages).
//!
//! The same rows and the same group commit (`group_commit`) as on PostgreSQL. Sessions run at
//! READ COMMITTED, as Temporal's MySQL plugin does: InnoDB then takes no gap locks for the
//! checks below, so two writers starting different workflows never deadlock on a gap. Updates
//! report matched rows (`CLIENT_FOUND_ROWS`), so an update that changes nothing still counts.
//!
//! Locking rule: a write reads its shard row `LOCK IN SHARE MODE` (shared) and compares the
//! `range_id`; shard acquisition updates that row (exclusive), so it waits for the writes in
//! flight and every later write of the old owner fails. A write then holds the rows it
//! changes; nothing else locks the shard row.
//!
//! MySQL has no row-value comparison that its optimizer turns into an index range on every
//! version, so paging predicates are spelled out column by column (`after_clause`).

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, Value};
use prost::Message;
use sundial_common::{Error, Result};
use sundial_proto::api::history::v1::{History, HistoryEvent};

use crate::Store;
use crate::group_commit::{BatchError, ConnectionSource, GroupConnection, GroupWriter};
use crate::options::SqlOptions;
use crate::records::*;
use crate::schema::{self, SchemaSet};
use crate::visibility::{
    self, INSERT_COLUMNS, Placeholders, SqlParam, UPDATED_COLUMNS, VisibilityCursor, VisibilityRow,
    VisibilityStore, VisibilityWrite,
};

/// MySQL's error numbers that the store tells apart.
const ER_DUP_ENTRY: u16 = 1062;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;

pub(crate) fn mysql_error(error: mysql_async::Error) -> Error {
    Error::Unavailable(format!("database: {}", describe_mysql_error(&error)))
}

/// The server's message with its error number, or the driver's.
pub fn describe_mysql_error(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(server) => {
            format!(
                "ERROR {} ({}): {}",
                server.code, server.state, server.message
            )
        }
        other => other.to_string(),
    }
}

fn server_code(error: &mysql_async::Error) -> Option<u16> {
    match error {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

impl From<mysql_async::Error> for BatchError {
    fn from(error: mysql_async::Error) -> Self {
        match server_code(&error) {
            Some(ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT) => BatchError::Retry(mysql_error(error)),
            _ => BatchError::Database(mysql_error(error)),
        }
    }
}

/// Connection options for `options` (`database: false` connects to no database, for
/// `create-database`).
pub(crate) fn mysql_opts(options: &SqlOptions, database: bool) -> Result<OptsBuilder> {
    let constraints =
        PoolConstraints::new(0, options.max_conns.max(2)).expect("zero is at most the maximum");
    let lifetime = (!options.max_conn_lifetime.is_zero()).then_some(options.max_conn_lifetime);
    let ssl = options
        .tls
        .as_ref()
        .map(crate::tls::mysql_ssl_opts)
        .transpose()?;
    Ok(OptsBuilder::default()
        .ip_or_hostname(options.host.clone())
        .ssl_opts(ssl)
        .tcp_port(options.port)
        .user(Some(options.user.clone()))
        .pass((!options.password.is_empty()).then(|| options.password.clone()))
        .db_name(database.then(|| options.database.clone()))
        .prefer_socket(false)
        .client_found_rows(true)
        .stmt_cache_size(128)
        .init(vec![
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        ])
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                // A reset would drop the session's isolation level and its prepared statements;
                // the store ends every transaction it begins instead.
                .with_reset_connection(false)
                .with_abs_conn_ttl(lifetime),
        ))
}

/// A connection from `pool`, or Unavailable naming the database after `timeout`.
pub(crate) async fn connect(pool: &Pool, options: &SqlOptions, timeout: Duration) -> Result<Conn> {
    match tokio::time::timeout(timeout, pool.get_conn()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(Error::Unavailable(format!(
            "cannot connect to {}: {}",
            options.describe(),
            describe_mysql_error(&error)
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "cannot connect to {}: no answer within {timeout:?}",
            options.describe()
        ))),
    }
}

/// `(c1, c2, ...) > (?, ?, ...)` spelled out so that MySQL uses an index range for it:
/// `c1 > ? OR (c1 = ? AND (c2 > ? OR ...))`. Its parameters come from `after_params`.
fn after_clause(columns: &[&str]) -> String {
    match columns {
        [] => "FALSE".into(),
        [last] => format!("{last} > ?"),
        [first, rest @ ..] => format!("({first} > ? OR ({first} = ? AND {}))", after_clause(rest)),
    }
}

/// The parameters of `after_clause` for the row `values`: each but the last twice.
fn after_params(values: Vec<Value>) -> Vec<Value> {
    let count = values.len();
    let mut params = Vec::with_capacity(count * 2);
    for (index, value) in values.into_iter().enumerate() {
        if index + 1 < count {
            params.push(value.clone());
        }
        params.push(value);
    }
    params
}

pub struct MysqlStore {
    pool: Pool,
    writer: GroupWriter,
    options: SqlOptions,
}

impl MysqlStore {
    /// Connects and checks that the database holds the schema this binary needs.
    pub async fn open(options: SqlOptions) -> Result<MysqlStore> {
        let pool = Pool::new(mysql_opts(&options, true)?);
        {
            let mut conn = connect(&pool, &options, options.connect_timeout).await?;
            check_schema(&mut conn, &schema::MYSQL_MAIN, &options).await?;
        }
        let writers = (options.max_conns / 4).clamp(1, 4);
        let source = MysqlSource {
            pool: pool.clone(),
            options: options.clone(),
        };
        Ok(MysqlStore {
            pool,
            writer: GroupWriter::start(source, writers),
            options,
        })
    }

    pub fn options(&self) -> &SqlOptions {
        &self.options
    }

    async fn conn(&self) -> Result<Conn> {
        connect(&self.pool, &self.options, self.options.connect_timeout).await
    }
}

/// Refuses a database without Sundial's schema at the version this binary needs, saying what to
/// run.
pub(crate) async fn check_schema(
    conn: &mut Conn,
    set: &SchemaSet,
    options: &SqlOptions,
) -> Result<()> {
    let (current, marked) = recorded_schema(conn, &options.database).await?;
    schema::judge(set, options, current.as_deref(), marked)
}

async fn has_table(conn: &mut Conn, table: &str) -> Result<bool> {
    let count: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            (table,),
        )
        .await
        .map_err(mysql_error)?;
    Ok(count.unwrap_or(0) > 0)
}

/// The schema version `setup-schema` recorded (None: no version table or row) and whether the
/// database carries Sundial's mark.
pub(crate) async fn recorded_schema(
    conn: &mut Conn,
    database: &str,
) -> Result<(Option<String>, bool)> {
    let marked = has_table(conn, "sundial_database").await?;
    if !has_table(conn, "schema_version").await? {
        return Ok((None, marked));
    }
    let current: Option<Option<String>> = conn
        .exec_first(
            "SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = ?",
            (database,),
        )
        .await
        .map_err(mysql_error)?;
    Ok((current.flatten(), marked))
}

struct MysqlSource {
    pool: Pool,
    options: SqlOptions,
}

struct MysqlConnection(Conn);

#[async_trait]
impl ConnectionSource for MysqlSource {
    type Connection = MysqlConnection;

    async fn connection(&self) -> Result<MysqlConnection> {
        connect(&self.pool, &self.options, Duration::from_secs(30))
            .await
            .map(MysqlConnection)
    }
}

#[async_trait]
impl GroupConnection for MysqlConnection {
    async fn simple(&mut self, sql: &'static str) -> std::result::Result<(), BatchError> {
        Ok(self.0.query_drop(sql).await?)
    }

    async fn apply(&mut self, batch: &WriteBatch) -> std::result::Result<(), BatchError> {
        apply_batch(&mut self.0, batch).await
    }

    fn discard(self) {
        tokio::spawn(async move {
            let _ = self.0.disconnect().await;
        });
    }
}

fn conflict(message: &str) -> BatchError {
    BatchError::Own(Error::Conflict(message.into()))
}

/// Runs a statement that may hit a unique key; a duplicate is the batch's own conflict.
async fn insert_unique(
    conn: &mut Conn,
    sql: &'static str,
    params: Vec<Value>,
    duplicate: &str,
) -> std::result::Result<(), BatchError> {
    match conn.exec_drop(sql, params).await {
        Ok(()) => Ok(()),
        Err(error) if server_code(&error) == Some(ER_DUP_ENTRY) => Err(conflict(duplicate)),
        Err(error) => Err(error.into()),
    }
}

async fn apply_batch(conn: &mut Conn, batch: &WriteBatch) -> std::result::Result<(), BatchError> {
    let shard_id = batch.shard_id as i64;
    let range_id: Option<i64> = conn
        .exec_first(
            "SELECT range_id FROM shards WHERE shard_id = ? LOCK IN SHARE MODE",
            (shard_id,),
        )
        .await?;
    if range_id != Some(batch.range_id) {
        return Err(BatchError::Own(Error::ShardOwnershipLost));
    }
    for write in &batch.executions {
        apply_execution_write(conn, shard_id, write).await?;
    }
    if !batch.deleted_transfer_tasks.is_empty() {
        // Task ids are integers, so the list is spelled into the statement.
        let ids = batch
            .deleted_transfer_tasks
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        conn.query_drop(format!(
            "DELETE FROM transfer_tasks WHERE shard_id = {shard_id} AND task_id IN ({ids})"
        ))
        .await?;
    }
    Ok(())
}

async fn apply_execution_write(
    conn: &mut Conn,
    shard_id: i64,
    write: &ExecutionWrite,
) -> std::result::Result<(), BatchError> {
    let visibility = &write.visibility;
    let due = &write.due;
    match write.expected_db_version {
        None => {
            insert_unique(
                conn,
                "INSERT INTO executions (namespace_id, workflow_id, run_id, shard_id, db_record_version,
                    next_event_id, state_encoding, state, workflow_type, task_queue, status, start_time,
                    close_time, execution_time, memo, search_attributes, parent_workflow_id, parent_run_id,
                    wake_time, dispatch_pending)
                 VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    write.namespace_id.as_str().into(),
                    write.workflow_id.as_str().into(),
                    write.run_id.as_str().into(),
                    shard_id.into(),
                    write.next_event_id.into(),
                    write.state.encoding.into(),
                    write.state.data.as_slice().into(),
                    visibility.workflow_type.as_str().into(),
                    visibility.task_queue.as_str().into(),
                    visibility.status.into(),
                    visibility.start_time_ms.into(),
                    visibility.close_time_ms.into(),
                    visibility.execution_time_ms.into(),
                    visibility.memo.as_deref().into(),
                    visibility.search_attributes.as_deref().into(),
                    visibility.parent_workflow_id.as_str().into(),
                    visibility.parent_run_id.as_str().into(),
                    due.wake_time_ms.into(),
                    due.dispatch_pending.into(),
                ],
                "execution already exists",
            )
            .await?;
        }
        Some(expected) => {
            conn.exec_drop(
                "UPDATE executions SET db_record_version = db_record_version + 1, next_event_id = ?,
                    state = ?, status = ?, close_time = ?, execution_time = ?, memo = ?,
                    search_attributes = ?, state_encoding = ?, wake_time = ?, dispatch_pending = ?
                 WHERE namespace_id = ? AND workflow_id = ? AND run_id = ? AND db_record_version = ?",
                Params::Positional(vec![
                    write.next_event_id.into(),
                    write.state.data.as_slice().into(),
                    visibility.status.into(),
                    visibility.close_time_ms.into(),
                    visibility.execution_time_ms.into(),
                    visibility.memo.as_deref().into(),
                    visibility.search_attributes.as_deref().into(),
                    write.state.encoding.into(),
                    due.wake_time_ms.into(),
                    due.dispatch_pending.into(),
                    write.namespace_id.as_str().into(),
                    write.workflow_id.as_str().into(),
                    write.run_id.as_str().into(),
                    expected.into(),
                ]),
            )
            .await?;
            if conn.affected_rows() != 1 {
                return Err(conflict("execution version changed"));
            }
        }
    }
    if let Some(listing) = &write.listing {
        write_visibility(conn, write, listing).await?;
    }
    if let (Some(first), Some(last)) = (write.events.first(), write.events.last()) {
        let data = History {
            events: write.events.clone(),
        }
        .encode_to_vec();
        insert_unique(
            conn,
            "INSERT INTO history_node (namespace_id, run_id, first_event_id, last_event_id, data)
             VALUES (?, ?, ?, ?, ?)",
            vec![
                write.namespace_id.as_str().into(),
                write.run_id.as_str().into(),
                first.event_id.into(),
                last.event_id.into(),
                data.into(),
            ],
            "history batch already written",
        )
        .await?;
    }
    match &write.current {
        CurrentUpdate::Keep => {}
        CurrentUpdate::Set {
            expected_run_id: None,
            run_id,
            status,
            start_request_id,
        } => {
            // The first run of a workflow id inserts the pointer; one racing it finds the row.
            insert_unique(
                conn,
                "INSERT INTO current_executions (namespace_id, workflow_id, run_id, status, start_request_id)
                 VALUES (?, ?, ?, ?, ?)",
                vec![
                    write.namespace_id.as_str().into(),
                    write.workflow_id.as_str().into(),
                    run_id.as_str().into(),
                    (*status).into(),
                    start_request_id.as_str().into(),
                ],
                "current run changed",
            )
            .await?;
        }
        CurrentUpdate::Set {
            expected_run_id: Some(expected),
            run_id,
            status,
            start_request_id,
        } => {
            conn.exec_drop(
                "UPDATE current_executions SET run_id = ?, status = ?, start_request_id = ?
                 WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
                Params::Positional(vec![
                    run_id.as_str().into(),
                    (*status).into(),
                    start_request_id.as_str().into(),
                    write.namespace_id.as_str().into(),
                    write.workflow_id.as_str().into(),
                    expected.as_str().into(),
                ]),
            )
            .await?;
            if conn.affected_rows() != 1 {
                return Err(conflict("current run changed"));
            }
        }
        CurrentUpdate::Status { run_id, status } => {
            conn.exec_drop(
                "UPDATE current_executions SET status = ? WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
                (
                    *status,
                    write.namespace_id.as_str(),
                    write.workflow_id.as_str(),
                    run_id.as_str(),
                ),
            )
            .await?;
        }
    }
    for (task_id, task) in &write.new_transfer_tasks {
        conn.exec_drop(
            "INSERT INTO transfer_tasks (shard_id, task_id, namespace_id, workflow_id, run_id, data)
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                shard_id,
                *task_id,
                write.namespace_id.as_str(),
                write.workflow_id.as_str(),
                write.run_id.as_str(),
                task.as_slice(),
            ),
        )
        .await?;
    }
    Ok(())
}

type WakeupRow = (i64, String, String, String);

fn wakeup((wake_time_ms, namespace_id, workflow_id, run_id): WakeupRow) -> Wakeup {
    Wakeup {
        wake_time_ms,
        run: ExecutionRef {
            namespace_id,
            workflow_id,
            run_id,
        },
    }
}

/// Column `index` of a row, converted.
/// Upserts a run's visibility row and, when they changed, replaces its values.
async fn write_visibility(
    conn: &mut Conn,
    write: &ExecutionWrite,
    listing: &VisibilityWrite,
) -> std::result::Result<(), BatchError> {
    let row = &listing.row;
    let updates: Vec<String> = UPDATED_COLUMNS
        .iter()
        .map(|column| format!("{column} = VALUES({column})"))
        .collect();
    let sql = format!(
        "INSERT INTO executions_visibility ({INSERT_COLUMNS}) VALUES ({}) ON DUPLICATE KEY UPDATE {}",
        vec!["?"; 20].join(", "),
        updates.join(", ")
    );
    conn.exec_drop(
        sql,
        Params::Positional(vec![
            write.namespace_id.as_str().into(),
            row.sort_time().into(),
            row.workflow_id.as_str().into(),
            row.run_id.as_str().into(),
            row.workflow_type.as_str().into(),
            row.task_queue.as_str().into(),
            row.status.into(),
            row.start_time.into(),
            row.execution_time.into(),
            row.close_time.into(),
            row.execution_duration.into(),
            row.history_length.into(),
            row.history_size_bytes.into(),
            row.state_transition_count.into(),
            row.parent_workflow_id.as_deref().into(),
            row.parent_run_id.as_deref().into(),
            row.root_workflow_id.as_str().into(),
            row.root_run_id.as_str().into(),
            row.memo.as_slice().into(),
            row.search_attributes.as_slice().into(),
        ]),
    )
    .await?;
    let Some(values) = &listing.values else {
        return Ok(());
    };
    if write.expected_db_version.is_some() {
        conn.exec_drop(
            "DELETE FROM executions_visibility_values WHERE namespace_id = ? AND run_id = ?",
            (write.namespace_id.as_str(), write.run_id.as_str()),
        )
        .await?;
    }
    if values.is_empty() {
        return Ok(());
    }
    let mut params: Vec<Value> = Vec::with_capacity(values.len() * 7);
    for value in values {
        params.extend([
            write.namespace_id.as_str().into(),
            write.run_id.as_str().into(),
            value.name.as_str().into(),
            i64::from(value.token).into(),
            value.text.as_deref().into(),
            value.int.into(),
            value.double.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO executions_visibility_values (namespace_id, run_id, name, token, value_text, value_int, value_double) VALUES {}",
        vec!["(?, ?, ?, ?, ?, ?, ?)"; values.len()].join(", ")
    );
    conn.exec_drop(sql, Params::Positional(params)).await?;
    Ok(())
}

fn mysql_params(params: &[SqlParam]) -> Params {
    Params::Positional(
        params
            .iter()
            .map(|param| match param {
                SqlParam::Int(int) => Value::from(*int),
                SqlParam::Double(float) => Value::from(*float),
                SqlParam::Text(text) => Value::from(text.as_str()),
            })
            .collect(),
    )
}

fn mysql_visibility_row(mut row: mysql_async::Row) -> Result<VisibilityRow> {
    let row = &mut row;
    Ok(VisibilityRow {
        workflow_id: column(row, 0)?,
        run_id: column(row, 1)?,
        workflow_type: column(row, 2)?,
        task_queue: column(row, 3)?,
        status: column(row, 4)?,
        start_time: column(row, 5)?,
        execution_time: column(row, 6)?,
        close_time: column(row, 7)?,
        execution_duration: column(row, 8)?,
        history_length: column(row, 9)?,
        history_size_bytes: column(row, 10)?,
        state_transition_count: column(row, 11)?,
        parent_workflow_id: column(row, 12)?,
        parent_run_id: column(row, 13)?,
        root_workflow_id: column(row, 14)?,
        root_run_id: column(row, 15)?,
        memo: column(row, 16)?,
        search_attributes: column(row, 17)?,
    })
}

#[async_trait]
impl VisibilityStore for MysqlStore {
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
        let mut conn = self.conn().await?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(sql.text, mysql_params(&sql.params))
            .await
            .map_err(mysql_error)?;
        rows.into_iter().map(mysql_visibility_row).collect()
    }

    async fn count_visibility(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<i64> {
        let sql = visibility::count_sql(Placeholders::Question, namespace_id, filter, false);
        let mut conn = self.conn().await?;
        let count: Option<i64> = conn
            .exec_first(sql.text, mysql_params(&sql.params))
            .await
            .map_err(mysql_error)?;
        Ok(count.unwrap_or(0))
    }

    async fn count_visibility_by_status(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<Vec<(i64, i64)>> {
        let sql = visibility::count_sql(Placeholders::Question, namespace_id, filter, true);
        let mut conn = self.conn().await?;
        conn.exec(sql.text, mysql_params(&sql.params))
            .await
            .map_err(mysql_error)
    }
}

fn column<T: mysql_async::prelude::FromValue>(
    row: &mut mysql_async::Row,
    index: usize,
) -> Result<T> {
    row.take_opt(index)
        .and_then(|value| value.ok())
        .ok_or_else(|| Error::CorruptState(format!("unreadable column {index} of a stored row")))
}

#[async_trait]
impl Store for MysqlStore {
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64> {
        let mut conn = self.conn().await?;
        let mut transaction = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .map_err(mysql_error)?;
        transaction
            .exec_drop(
                "INSERT INTO shards (shard_id, range_id) VALUES (?, 1)
                 ON DUPLICATE KEY UPDATE range_id = range_id + 1",
                (shard_id,),
            )
            .await
            .map_err(mysql_error)?;
        let range_id: Option<i64> = transaction
            .exec_first(
                "SELECT range_id FROM shards WHERE shard_id = ?",
                (shard_id,),
            )
            .await
            .map_err(mysql_error)?;
        transaction.commit().await.map_err(mysql_error)?;
        range_id.ok_or_else(|| Error::internal("shard row vanished while acquired"))
    }

    async fn init_cluster(&self, cluster_name: &str, num_history_shards: u32) -> Result<u32> {
        let mut conn = self.conn().await?;
        let data = crate::cluster_metadata(num_history_shards);
        conn.exec_drop(
            "INSERT INTO cluster_metadata_info (metadata_partition, cluster_name, data, data_encoding, version)
             VALUES (0, ?, ?, 'json', 1) ON DUPLICATE KEY UPDATE version = version",
            (cluster_name, data),
        )
        .await
        .map_err(mysql_error)?;
        let data: Option<Vec<u8>> = conn
            .exec_first(
                "SELECT data FROM cluster_metadata_info WHERE metadata_partition = 0 AND cluster_name = ?",
                (cluster_name,),
            )
            .await
            .map_err(mysql_error)?;
        let data = data.unwrap_or_default();
        crate::shards_of_cluster_metadata(&data)
    }

    async fn create_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        let mut conn = self.conn().await?;
        match conn
            .exec_drop(
                "INSERT INTO namespaces (id, name, data) VALUES (?, ?, ?)",
                (&namespace.id, &namespace.name, &namespace.data),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if server_code(&error) == Some(ER_DUP_ENTRY) => {
                Err(Error::NamespaceAlreadyExists(namespace.name))
            }
            Err(error) => Err(mysql_error(error)),
        }
    }

    async fn update_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE namespaces SET name = ?, data = ? WHERE id = ?",
            (&namespace.name, &namespace.data, &namespace.id),
        )
        .await
        .map_err(mysql_error)?;
        if conn.affected_rows() == 0 {
            return Err(Error::NamespaceNotFound(namespace.name));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(String, String, Vec<u8>)> = conn
            .query("SELECT id, name, data FROM namespaces ORDER BY name")
            .await
            .map_err(mysql_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, data)| NamespaceRecord { id, name, data })
            .collect())
    }

    async fn get_current_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentExecution>> {
        let mut conn = self.conn().await?;
        let row: Option<(String, i32, String)> = conn
            .exec_first(
                "SELECT run_id, status, start_request_id FROM current_executions WHERE namespace_id = ? AND workflow_id = ?",
                (namespace_id, workflow_id),
            )
            .await
            .map_err(mysql_error)?;
        Ok(
            row.map(|(run_id, status, start_request_id)| CurrentExecution {
                run_id,
                status,
                start_request_id,
            }),
        )
    }

    async fn load_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<LoadedExecution>> {
        let mut conn = self.conn().await?;
        let row: Option<(i64, i32, Vec<u8>, Option<i64>, bool)> = conn
            .exec_first(
                "SELECT db_record_version, state_encoding, state, wake_time, dispatch_pending FROM executions
                 WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
                (namespace_id, workflow_id, run_id),
            )
            .await
            .map_err(mysql_error)?;
        Ok(row.map(
            |(db_version, encoding, data, wake_time_ms, dispatch_pending)| LoadedExecution {
                db_version,
                state: StateBlob { encoding, data },
                due: DueWork {
                    wake_time_ms,
                    dispatch_pending,
                },
            },
        ))
    }

    async fn list_dispatch_pending(
        &self,
        shard_id: u32,
        after: Option<ExecutionRef>,
        limit: usize,
    ) -> Result<Vec<ExecutionRef>> {
        let mut conn = self.conn().await?;
        let (clause, mut params) = match after {
            None => ("TRUE".to_string(), Vec::new()),
            Some(after) => (
                after_clause(&["namespace_id", "workflow_id", "run_id"]),
                after_params(vec![
                    after.namespace_id.into(),
                    after.workflow_id.into(),
                    after.run_id.into(),
                ]),
            ),
        };
        params.insert(0, shard_id.into());
        params.push((limit as u64).into());
        let rows: Vec<(String, String, String)> = conn
            .exec(
                format!(
                    "SELECT namespace_id, workflow_id, run_id FROM executions
                     WHERE shard_id = ? AND dispatch_pending AND {clause}
                     ORDER BY namespace_id, workflow_id, run_id LIMIT ?"
                ),
                Params::Positional(params),
            )
            .await
            .map_err(mysql_error)?;
        Ok(rows
            .into_iter()
            .map(|(namespace_id, workflow_id, run_id)| ExecutionRef {
                namespace_id,
                workflow_id,
                run_id,
            })
            .collect())
    }

    async fn list_wakeups(
        &self,
        shard_id: u32,
        after: Option<WakeAfter>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>> {
        let mut conn = self.conn().await?;
        let (clause, after_values) = match after {
            Some(WakeAfter::Row(last)) => (
                after_clause(&["wake_time", "namespace_id", "workflow_id", "run_id"]),
                after_params(vec![
                    last.wake_time_ms.into(),
                    last.run.namespace_id.into(),
                    last.run.workflow_id.into(),
                    last.run.run_id.into(),
                ]),
            ),
            Some(WakeAfter::Time(time)) => ("wake_time > ?".to_string(), vec![time.into()]),
            None => ("TRUE".to_string(), Vec::new()),
        };
        let mut params: Vec<Value> = vec![shard_id.into(), until_ms.into()];
        params.extend(after_values);
        params.push((limit as u64).into());
        let rows: Vec<WakeupRow> = conn
            .exec(
                format!(
                    "SELECT wake_time, namespace_id, workflow_id, run_id FROM executions
                     WHERE shard_id = ? AND wake_time IS NOT NULL AND wake_time <= ? AND {clause}
                     ORDER BY wake_time, namespace_id, workflow_id, run_id LIMIT ?"
                ),
                Params::Positional(params),
            )
            .await
            .map_err(mysql_error)?;
        Ok(rows.into_iter().map(wakeup).collect())
    }

    async fn read_history(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        next_event_id: i64,
        max_events: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let mut conn = self.conn().await?;
        let blobs: Vec<Vec<u8>> = conn
            .exec(
                "SELECT data FROM history_node WHERE namespace_id = ? AND run_id = ? AND last_event_id >= ?
                 AND first_event_id < ? ORDER BY first_event_id",
                (namespace_id, run_id, first_event_id, next_event_id),
            )
            .await
            .map_err(mysql_error)?;
        let mut events = Vec::new();
        for blob in blobs {
            crate::extend_from_batch(&mut events, &blob, first_event_id, next_event_id)?;
            if events.len() >= max_events {
                break;
            }
        }
        Ok(events)
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.writer.write(batch).await
    }

    async fn list_transfer_tasks(&self, shard_id: u32) -> Result<Vec<TransferTaskRecord>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(i64, String, String, String, Vec<u8>)> = conn
            .exec(
                "SELECT task_id, namespace_id, workflow_id, run_id, data FROM transfer_tasks
                 WHERE shard_id = ? ORDER BY task_id",
                (shard_id,),
            )
            .await
            .map_err(mysql_error)?;
        Ok(rows
            .into_iter()
            .map(
                |(task_id, namespace_id, workflow_id, run_id, task)| TransferTaskRecord {
                    shard_id,
                    task_id,
                    namespace_id,
                    workflow_id,
                    run_id,
                    task,
                },
            )
            .collect())
    }

    async fn delete_transfer_task(&self, shard_id: u32, task_id: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "DELETE FROM transfer_tasks WHERE shard_id = ? AND task_id = ?",
            (shard_id, task_id),
        )
        .await
        .map_err(mysql_error)
    }

    fn close(&self) {
        self.writer.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_predicates_are_spelled_out_per_column() {
        assert_eq!(after_clause(&["a"]), "a > ?");
        assert_eq!(
            after_clause(&["a", "b", "c"]),
            "(a > ? OR (a = ? AND (b > ? OR (b = ? AND c > ?))))"
        );
        let params = after_params(vec![1.into(), 2.into(), 3.into()]);
        assert_eq!(
            params,
            vec![
                Value::from(1),
                Value::from(1),
                Value::from(2),
                Value::from(2),
                Value::from(3)
            ]
        );
    }
}
