//! The PostgreSQL store.
//!
//! Writes are group-committed (`group_commit`). Each batch first takes its shard row
//! `FOR SHARE` and compares the `range_id` (fencing: `acquire_shard` updates that row, so it
//! waits for the writes in flight and every later write of the old owner fails), then checks
//! each execution's `db_record_version` and the current-run pointer.
//!
//! Locking rule: a write holds its shard row in share mode and the rows it changes; shard
//! acquisition holds the shard row exclusively. Nothing else locks the shard row, so fenced
//! writes of different shards never wait on each other.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::{MaybeDone, maybe_done};
use prost::Message;
use sundial_common::{Error, Result};
use sundial_proto::api::history::v1::{History, HistoryEvent};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};

use crate::Store;
use crate::group_commit::{BatchError, ConnectionSource, GroupConnection, GroupWriter};
use crate::options::SqlOptions;
use crate::records::*;
use crate::schema::{self, SchemaSet};
use crate::tls::PgTls;
use crate::visibility::{
    self, INSERT_COLUMNS, Placeholders, SqlParam, UPDATED_COLUMNS, VisibilityCursor, VisibilityRow,
    VisibilityStore, VisibilityWrite,
};

pub(crate) fn pg_config(options: &SqlOptions) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&options.host)
        .port(options.port)
        .user(&options.user)
        .dbname(&options.database)
        .connect_timeout(options.connect_timeout)
        .application_name("sundial");
    if !options.password.is_empty() {
        config.password(&options.password);
    }
    if options.tls.is_some() {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    config
}

pub(crate) fn pg_error(error: tokio_postgres::Error) -> Error {
    Error::Unavailable(format!("database: {}", describe_pg_error(&error)))
}

/// The server's message when there is one (tokio-postgres' own `Display` says only "db error").
pub fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> Error {
    match error {
        deadpool_postgres::PoolError::Backend(error) => pg_error(error),
        other => Error::Unavailable(format!("database: {other}")),
    }
}

/// A first connection failed: Unavailable, naming the database and the cause.
pub(crate) fn connect_error(options: &SqlOptions, error: deadpool_postgres::PoolError) -> Error {
    Error::Unavailable(format!(
        "cannot connect to {}: {}",
        options.describe(),
        match &error {
            deadpool_postgres::PoolError::Backend(error) => describe_pg_error(error),
            other => other.to_string(),
        }
    ))
}

/// Opens a connection pool (no connection is made until the first use).
pub(crate) fn pool(options: &SqlOptions) -> Result<Pool> {
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match &options.tls {
        Some(tls) => Manager::from_config(pg_config(options), PgTls::new(tls)?, config),
        None => Manager::from_config(pg_config(options), NoTls, config),
    };
    let mut builder = Pool::builder(manager)
        .max_size(options.max_conns.max(2))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(options.connect_timeout))
        .wait_timeout(Some(Duration::from_secs(30)));
    if !options.max_conn_lifetime.is_zero() {
        let lifetime = options.max_conn_lifetime;
        builder = builder.post_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
            if metrics.age() > lifetime {
                Err(deadpool_postgres::HookError::message(
                    "connection past its lifetime",
                ))
            } else {
                Ok(())
            }
        }));
    }
    builder
        .build()
        .map_err(|error| Error::internal(format!("database pool: {error}")))
}

pub struct PostgresStore {
    pool: Pool,
    writer: GroupWriter,
    options: SqlOptions,
}

impl PostgresStore {
    /// Connects and checks that the database holds the schema this binary needs.
    pub async fn open(options: SqlOptions) -> Result<PostgresStore> {
        let pool = pool(&options)?;
        {
            let client = pool
                .get()
                .await
                .map_err(|error| connect_error(&options, error))?;
            check_schema(&client, &schema::POSTGRES_MAIN, &options).await?;
        }
        let writers = (options.max_conns / 4).clamp(1, 4);
        let writer = GroupWriter::start(PgSource(pool.clone()), writers);
        Ok(PostgresStore {
            pool,
            writer,
            options,
        })
    }

    pub fn options(&self) -> &SqlOptions {
        &self.options
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

struct PgSource(Pool);

struct PgConnection(deadpool_postgres::Object);

#[async_trait]
impl ConnectionSource for PgSource {
    type Connection = PgConnection;

    async fn connection(&self) -> Result<PgConnection> {
        self.0.get().await.map(PgConnection).map_err(pool_error)
    }
}

#[async_trait]
impl GroupConnection for PgConnection {
    async fn simple(&mut self, sql: &'static str) -> std::result::Result<(), BatchError> {
        Ok(self.0.batch_execute(sql).await?)
    }

    async fn apply(&mut self, batch: &WriteBatch) -> std::result::Result<(), BatchError> {
        apply_pipelined(&self.0, false, &[batch]).await
    }

    async fn apply_and_commit(
        &mut self,
        batches: &[&WriteBatch],
    ) -> std::result::Result<(), BatchError> {
        apply_pipelined(&self.0, true, batches).await
    }

    fn discard(self) {
        drop(deadpool_postgres::Object::take(self.0));
    }
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(error: tokio_postgres::Error) -> Self {
        let code = error.code();
        if code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
            || code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        {
            BatchError::Retry(pg_error(error))
        } else {
            BatchError::Database(pg_error(error))
        }
    }
}

/// Refuses a database without Sundial's schema at the version this binary needs, saying what to
/// run.
pub(crate) async fn check_schema(
    client: &tokio_postgres::Client,
    set: &SchemaSet,
    options: &SqlOptions,
) -> Result<()> {
    let (current, marked) = recorded_schema(client, &options.database).await?;
    schema::judge(set, options, current.as_deref(), marked)
}

/// The schema version `setup-schema` recorded (None: no version table or row) and whether the
/// database carries Sundial's mark.
pub(crate) async fn recorded_schema(
    client: &tokio_postgres::Client,
    database: &str,
) -> Result<(Option<String>, bool)> {
    let version_table = client
        .query_opt("SELECT to_regclass('schema_version')::text", &[])
        .await
        .map_err(pg_error)?
        .and_then(|row| row.get::<_, Option<String>>(0));
    let marked = client
        .query_opt("SELECT to_regclass('sundial_database')::text", &[])
        .await
        .map_err(pg_error)?
        .and_then(|row| row.get::<_, Option<String>>(0))
        .is_some();
    let current = match version_table {
        None => None,
        Some(_) => client
            .query_opt(
                "SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = $1",
                &[&database],
            )
            .await
            .map_err(pg_error)?
            .and_then(|row| row.get::<_, Option<String>>(0)),
    };
    Ok((current, marked))
}

/// The statements a write uses, prepared once per connection.
struct WriteStatements {
    fence: Statement,
    insert_execution: Statement,
    update_execution: Statement,
    insert_history: Statement,
    insert_current: Statement,
    move_current: Statement,
    current_status: Statement,
    insert_transfer: Statement,
    delete_transfers: Statement,
    upsert_visibility: Statement,
    delete_visibility_values: Statement,
    insert_visibility_values: Statement,
}

impl WriteStatements {
    async fn prepare(client: &deadpool_postgres::Object) -> std::result::Result<Self, BatchError> {
        Ok(WriteStatements {
            fence: client
                .prepare_cached(&checked(
                    "SELECT 1 FROM shards WHERE shard_id = $1 AND range_id = $2 FOR SHARE",
                ))
                .await?,
            insert_execution: client
                .prepare_cached(&checked(
                    "INSERT INTO executions (namespace_id, workflow_id, run_id, shard_id, db_record_version,
                        next_event_id, state_encoding, state, workflow_type, task_queue, status, start_time,
                        close_time, execution_time, memo, search_attributes, parent_workflow_id, parent_run_id,
                        wake_time, dispatch_pending)
                     VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                     ON CONFLICT DO NOTHING RETURNING 1",
                ))
                .await?,
            update_execution: client
                .prepare_cached(&checked(
                    "UPDATE executions SET db_record_version = db_record_version + 1, next_event_id = $1,
                        state = $2, status = $3, close_time = $4, execution_time = $5, memo = $6,
                        search_attributes = $7, state_encoding = $8, wake_time = $9, dispatch_pending = $10
                     WHERE namespace_id = $11 AND workflow_id = $12 AND run_id = $13 AND db_record_version = $14
                     RETURNING 1",
                ))
                .await?,
            insert_history: client
                .prepare_cached(&checked(
                    "INSERT INTO history_node (namespace_id, run_id, first_event_id, last_event_id, data)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                ))
                .await?,
            insert_current: client
                .prepare_cached(&checked(
                    "INSERT INTO current_executions (namespace_id, workflow_id, run_id, status, start_request_id)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                ))
                .await?,
            move_current: client
                .prepare_cached(&checked(
                    "UPDATE current_executions SET run_id = $1, status = $2, start_request_id = $3
                     WHERE namespace_id = $4 AND workflow_id = $5 AND run_id = $6 RETURNING 1",
                ))
                .await?,
            current_status: client
                .prepare_cached(
                    "UPDATE current_executions SET status = $1 WHERE namespace_id = $2 AND workflow_id = $3 AND run_id = $4",
                )
                .await?,
            insert_transfer: client
                .prepare_cached(
                    "INSERT INTO transfer_tasks (shard_id, task_id, namespace_id, workflow_id, run_id, data)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await?,
            delete_transfers: client
                .prepare_cached("DELETE FROM transfer_tasks WHERE shard_id = $1 AND task_id = ANY($2)")
                .await?,
            upsert_visibility: client.prepare_cached(&upsert_visibility_sql()).await?,
            delete_visibility_values: client
                .prepare_cached(
                    "DELETE FROM executions_visibility_values WHERE namespace_id = $1 AND run_id = $2",
                )
                .await?,
            // One statement for all of a run's values, whatever their number.
            insert_visibility_values: client
                .prepare_cached(
                    "INSERT INTO executions_visibility_values (namespace_id, run_id, name, token, value_text, value_int, value_double)
                     SELECT $1, $2, * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::float8[])",
                )
                .await?,
        })
    }
}

/// The SQLSTATE of a failed check: `checked` divides by the number of rows its statement
/// touched, so none is a division by zero. Nothing else in a write divides.
const CHECK_FAILED: SqlState = SqlState::DIVISION_BY_ZERO;

/// `statement` (one returning a row per row it touched) made to fail in the database when it
/// touched none, so the check aborts the transaction even when `COMMIT` was sent with it.
fn checked(statement: &str) -> String {
    format!("WITH touched AS ({statement}) SELECT 1 / (SELECT count(*)::int FROM touched)")
}

/// The outcome of a `checked` statement: a failed check is the batch's own `failure`.
fn check(
    outcome: std::result::Result<u64, tokio_postgres::Error>,
    failure: impl FnOnce() -> Error,
) -> std::result::Result<(), BatchError> {
    match outcome {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some(&CHECK_FAILED) => Err(BatchError::Own(failure())),
        Err(error) => Err(error.into()),
    }
}

/// A batch's conflict with what is stored.
fn conflict(message: &'static str) -> impl FnOnce() -> Error {
    move || Error::Conflict(message.into())
}

/// One statement of a write, with the check of its outcome.
type Step<'a> = Pin<Box<dyn Future<Output = std::result::Result<(), BatchError>> + Send + 'a>>;

/// Applies batches (in a transaction of their own when `transaction`: `BEGIN` first, `COMMIT`
/// last), every statement of every batch sent before the first answer is awaited
/// (tokio-postgres pipelines requests polled together), so a group costs one round trip
/// instead of one per statement. The statements run in the order they were sent; the first
/// failure in that order is the outcome, as if they had run one by one. Every check of a batch
/// (fence, versions, keys) is an error in the database (`CHECK_FAILED`), so a failed check
/// aborts the transaction and its `COMMIT` rolls back.
async fn apply_pipelined(
    client: &deadpool_postgres::Object,
    transaction: bool,
    batches: &[&WriteBatch],
) -> std::result::Result<(), BatchError> {
    let statements = WriteStatements::prepare(client).await?;
    let client: &tokio_postgres::Client = client;
    let mut steps: Vec<Step<'_>> = Vec::new();
    if transaction {
        steps.push(Box::pin(
            async move { Ok(client.batch_execute("BEGIN").await?) },
        ));
    }
    // A shard's row, once read `FOR SHARE`, cannot change until the transaction ends: the
    // fence of a later batch with the same shard and range would read the same, so it is sent
    // once.
    let mut fenced = std::collections::HashSet::new();
    for batch in batches {
        let fence = fenced.insert((batch.shard_id, batch.range_id));
        batch_steps(client, &statements, batch, fence, &mut steps);
    }
    if transaction {
        steps.push(Box::pin(async move {
            Ok(client.batch_execute("COMMIT").await?)
        }));
    }
    let mut steps: Vec<MaybeDone<Step<'_>>> = steps.into_iter().map(maybe_done).collect();
    // Polling in order on the first pass sends the statements in order.
    poll_fn(|cx| {
        let mut done = true;
        for step in steps.iter_mut() {
            done &= Pin::new(step).poll(cx).is_ready();
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    for step in steps.iter_mut() {
        Pin::new(step).take_output().unwrap_or(Ok(()))?;
    }
    Ok(())
}

fn batch_steps<'a>(
    client: &'a tokio_postgres::Client,
    statements: &'a WriteStatements,
    batch: &'a WriteBatch,
    fence: bool,
    steps: &mut Vec<Step<'a>>,
) {
    let shard_id = batch.shard_id as i32;
    if fence {
        steps.push(Box::pin(async move {
            let outcome = client
                .execute(&statements.fence, &[&shard_id, &batch.range_id])
                .await;
            check(outcome, || Error::ShardOwnershipLost)
        }));
    }
    for write in &batch.executions {
        execution_steps(client, statements, shard_id, write, steps);
    }
    if !batch.deleted_transfer_tasks.is_empty() {
        steps.push(Box::pin(async move {
            client
                .execute(
                    &statements.delete_transfers,
                    &[&shard_id, &batch.deleted_transfer_tasks],
                )
                .await?;
            Ok(())
        }));
    }
}

fn execution_steps<'a>(
    client: &'a tokio_postgres::Client,
    statements: &'a WriteStatements,
    shard_id: i32,
    write: &'a ExecutionWrite,
    steps: &mut Vec<Step<'a>>,
) {
    let visibility = &write.visibility;
    let due = &write.due;
    match write.expected_db_version {
        // ON CONFLICT DO NOTHING: a duplicate is a conflict of this batch, not an error that
        // aborts the whole group's transaction.
        None => steps.push(Box::pin(async move {
            let params: [&(dyn ToSql + Sync); 19] = [
                &write.namespace_id,
                &write.workflow_id,
                &write.run_id,
                &shard_id,
                &write.next_event_id,
                &write.state.encoding,
                &write.state.data,
                &visibility.workflow_type,
                &visibility.task_queue,
                &visibility.status,
                &visibility.start_time_ms,
                &visibility.close_time_ms,
                &visibility.execution_time_ms,
                &visibility.memo,
                &visibility.search_attributes,
                &visibility.parent_workflow_id,
                &visibility.parent_run_id,
                &due.wake_time_ms,
                &due.dispatch_pending,
            ];
            let outcome = client.execute(&statements.insert_execution, &params).await;
            check(outcome, conflict("execution already exists"))
        })),
        Some(expected) => steps.push(Box::pin(async move {
            let params: [&(dyn ToSql + Sync); 14] = [
                &write.next_event_id,
                &write.state.data,
                &visibility.status,
                &visibility.close_time_ms,
                &visibility.execution_time_ms,
                &visibility.memo,
                &visibility.search_attributes,
                &write.state.encoding,
                &due.wake_time_ms,
                &due.dispatch_pending,
                &write.namespace_id,
                &write.workflow_id,
                &write.run_id,
                &expected,
            ];
            let outcome = client.execute(&statements.update_execution, &params).await;
            check(outcome, conflict("execution version changed"))
        })),
    }
    if let (Some(first), Some(last)) = (write.events.first(), write.events.last()) {
        let data = History {
            events: write.events.clone(),
        }
        .encode_to_vec();
        steps.push(Box::pin(async move {
            let outcome = client
                .execute(
                    &statements.insert_history,
                    &[
                        &write.namespace_id,
                        &write.run_id,
                        &first.event_id,
                        &last.event_id,
                        &data,
                    ],
                )
                .await;
            check(outcome, conflict("history batch already written"))
        }));
    }
    match &write.current {
        CurrentUpdate::Keep => {}
        // The first run of a workflow id inserts the pointer (a second one racing it finds the
        // row); a later run moves it only from the run it expects.
        CurrentUpdate::Set {
            expected_run_id: None,
            run_id,
            status,
            start_request_id,
        } => steps.push(Box::pin(async move {
            let outcome = client
                .execute(
                    &statements.insert_current,
                    &[
                        &write.namespace_id,
                        &write.workflow_id,
                        run_id,
                        status,
                        start_request_id,
                    ],
                )
                .await;
            check(outcome, conflict("current run changed"))
        })),
        CurrentUpdate::Set {
            expected_run_id: Some(expected),
            run_id,
            status,
            start_request_id,
        } => steps.push(Box::pin(async move {
            let outcome = client
                .execute(
                    &statements.move_current,
                    &[
                        run_id,
                        status,
                        start_request_id,
                        &write.namespace_id,
                        &write.workflow_id,
                        expected,
                    ],
                )
                .await;
            check(outcome, conflict("current run changed"))
        })),
        CurrentUpdate::Status { run_id, status } => steps.push(Box::pin(async move {
            client
                .execute(
                    &statements.current_status,
                    &[status, &write.namespace_id, &write.workflow_id, run_id],
                )
                .await?;
            Ok(())
        })),
    }
    if let Some(listing) = &write.listing {
        visibility_steps(client, statements, write, listing, steps);
    }
    for (task_id, task) in &write.new_transfer_tasks {
        steps.push(Box::pin(async move {
            client
                .execute(
                    &statements.insert_transfer,
                    &[
                        &shard_id,
                        task_id,
                        &write.namespace_id,
                        &write.workflow_id,
                        &write.run_id,
                        task,
                    ],
                )
                .await?;
            Ok(())
        }));
    }
}

fn upsert_visibility_sql() -> String {
    let placeholders: Vec<String> = (1..=20).map(|n| format!("${n}")).collect();
    let updates: Vec<String> = UPDATED_COLUMNS
        .iter()
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    format!(
        "INSERT INTO executions_visibility ({INSERT_COLUMNS}) VALUES ({}) \
         ON CONFLICT (namespace_id, run_id) DO UPDATE SET {}",
        placeholders.join(", "),
        updates.join(", ")
    )
}

/// The steps that upsert a run's visibility row and, when they changed, replace its values.
fn visibility_steps<'a>(
    client: &'a tokio_postgres::Client,
    statements: &'a WriteStatements,
    write: &'a ExecutionWrite,
    listing: &'a VisibilityWrite,
    steps: &mut Vec<Step<'a>>,
) {
    steps.push(Box::pin(async move {
        let row = &listing.row;
        let sort_time = row.sort_time();
        let params: [&(dyn ToSql + Sync); 20] = [
            &write.namespace_id,
            &sort_time,
            &row.workflow_id,
            &row.run_id,
            &row.workflow_type,
            &row.task_queue,
            &row.status,
            &row.start_time,
            &row.execution_time,
            &row.close_time,
            &row.execution_duration,
            &row.history_length,
            &row.history_size_bytes,
            &row.state_transition_count,
            &row.parent_workflow_id,
            &row.parent_run_id,
            &row.root_workflow_id,
            &row.root_run_id,
            &row.memo,
            &row.search_attributes,
        ];
        client
            .execute(&statements.upsert_visibility, &params)
            .await?;
        Ok(())
    }));
    let Some(values) = &listing.values else {
        return;
    };
    if write.expected_db_version.is_some() {
        steps.push(Box::pin(async move {
            client
                .execute(
                    &statements.delete_visibility_values,
                    &[&write.namespace_id, &write.run_id],
                )
                .await?;
            Ok(())
        }));
    }
    if values.is_empty() {
        return;
    }
    steps.push(Box::pin(async move {
        let names: Vec<&str> = values.iter().map(|value| value.name.as_str()).collect();
        let tokens: Vec<i64> = values.iter().map(|value| i64::from(value.token)).collect();
        let texts: Vec<Option<&str>> = values.iter().map(|value| value.text.as_deref()).collect();
        let ints: Vec<Option<i64>> = values.iter().map(|value| value.int).collect();
        let doubles: Vec<Option<f64>> = values.iter().map(|value| value.double).collect();
        client
            .execute(
                &statements.insert_visibility_values,
                &[
                    &write.namespace_id,
                    &write.run_id,
                    &names,
                    &tokens,
                    &texts,
                    &ints,
                    &doubles,
                ],
            )
            .await?;
        Ok(())
    }));
}

fn pg_params(params: &[SqlParam]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|param| -> Box<dyn ToSql + Sync + Send> {
            match param {
                SqlParam::Int(int) => Box::new(*int),
                SqlParam::Double(float) => Box::new(*float),
                SqlParam::Text(text) => Box::new(text.clone()),
            }
        })
        .collect()
}

fn pg_visibility_row(row: &tokio_postgres::Row) -> VisibilityRow {
    VisibilityRow {
        workflow_id: row.get(0),
        run_id: row.get(1),
        workflow_type: row.get(2),
        task_queue: row.get(3),
        status: row.get(4),
        start_time: row.get(5),
        execution_time: row.get(6),
        close_time: row.get(7),
        execution_duration: row.get(8),
        history_length: row.get(9),
        history_size_bytes: row.get(10),
        state_transition_count: row.get(11),
        parent_workflow_id: row.get(12),
        parent_run_id: row.get(13),
        root_workflow_id: row.get(14),
        root_run_id: row.get(15),
        memo: row.get(16),
        search_attributes: row.get(17),
    }
}

impl PostgresStore {
    async fn visibility_query(&self, sql: visibility::Sql) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let params = pg_params(&sql.params);
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.query(&sql.text, &refs).await.map_err(pg_error)
    }
}

#[async_trait]
impl VisibilityStore for PostgresStore {
    async fn list_visibility(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
        after: Option<VisibilityCursor>,
        page_size: usize,
    ) -> Result<Vec<VisibilityRow>> {
        let sql = visibility::list_sql(
            Placeholders::Dollar,
            namespace_id,
            filter,
            after.as_ref(),
            page_size,
        );
        Ok(self
            .visibility_query(sql)
            .await?
            .iter()
            .map(pg_visibility_row)
            .collect())
    }

    async fn count_visibility(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<i64> {
        let sql = visibility::count_sql(Placeholders::Dollar, namespace_id, filter, false);
        let rows = self.visibility_query(sql).await?;
        Ok(rows.first().map_or(0, |row| row.get(0)))
    }

    async fn count_visibility_by_status(
        &self,
        namespace_id: &str,
        filter: &sundial_visibility::Filter,
    ) -> Result<Vec<(i64, i64)>> {
        let sql = visibility::count_sql(Placeholders::Dollar, namespace_id, filter, true);
        let rows = self.visibility_query(sql).await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}

fn wakeup(row: &tokio_postgres::Row) -> Wakeup {
    Wakeup {
        wake_time_ms: row.get(0),
        run: ExecutionRef {
            namespace_id: row.get(1),
            workflow_id: row.get(2),
            run_id: row.get(3),
        },
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO shards (shard_id, range_id) VALUES ($1, 1)
                 ON CONFLICT (shard_id) DO UPDATE SET range_id = shards.range_id + 1
                 RETURNING range_id",
                &[&(shard_id as i32)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn init_cluster(&self, cluster_name: &str, num_history_shards: u32) -> Result<u32> {
        let client = self.client().await?;
        let data = crate::cluster_metadata(num_history_shards);
        client
            .execute(
                "INSERT INTO cluster_metadata_info (metadata_partition, cluster_name, data, data_encoding, version)
                 VALUES (0, $1, $2, 'json', 1) ON CONFLICT DO NOTHING",
                &[&cluster_name, &data],
            )
            .await
            .map_err(pg_error)?;
        let row = client
            .query_one(
                "SELECT data FROM cluster_metadata_info WHERE metadata_partition = 0 AND cluster_name = $1",
                &[&cluster_name],
            )
            .await
            .map_err(pg_error)?;
        let data: Vec<u8> = row.get(0);
        crate::shards_of_cluster_metadata(&data)
    }

    async fn create_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO namespaces (id, name, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&namespace.id, &namespace.name, &namespace.data],
            )
            .await
            .map_err(pg_error)?;
        if inserted != 1 {
            return Err(Error::NamespaceAlreadyExists(namespace.name));
        }
        Ok(())
    }

    async fn update_namespace(&self, namespace: NamespaceRecord) -> Result<()> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE namespaces SET name = $1, data = $2 WHERE id = $3",
                &[&namespace.name, &namespace.data, &namespace.id],
            )
            .await
            .map_err(pg_error)?;
        if changed == 0 {
            return Err(Error::NamespaceNotFound(namespace.name));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, name, data FROM namespaces ORDER BY name", &[])
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|row| NamespaceRecord {
                id: row.get(0),
                name: row.get(1),
                data: row.get(2),
            })
            .collect())
    }

    async fn get_current_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentExecution>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT run_id, status, start_request_id FROM current_executions WHERE namespace_id = $1 AND workflow_id = $2",
            )
            .await
            .map_err(pg_error)?;
        let row = client
            .query_opt(&statement, &[&namespace_id, &workflow_id])
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| CurrentExecution {
            run_id: row.get(0),
            status: row.get(1),
            start_request_id: row.get(2),
        }))
    }

    async fn load_execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<LoadedExecution>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT db_record_version, state_encoding, state, wake_time, dispatch_pending FROM executions
                 WHERE namespace_id = $1 AND workflow_id = $2 AND run_id = $3",
            )
            .await
            .map_err(pg_error)?;
        let row = client
            .query_opt(&statement, &[&namespace_id, &workflow_id, &run_id])
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| LoadedExecution {
            db_version: row.get(0),
            state: StateBlob {
                encoding: row.get(1),
                data: row.get(2),
            },
            due: DueWork {
                wake_time_ms: row.get(3),
                dispatch_pending: row.get(4),
            },
        }))
    }

    async fn list_dispatch_pending(
        &self,
        shard_id: u32,
        after: Option<ExecutionRef>,
        limit: usize,
    ) -> Result<Vec<ExecutionRef>> {
        let client = self.client().await?;
        let after = after.unwrap_or(ExecutionRef {
            namespace_id: String::new(),
            workflow_id: String::new(),
            run_id: String::new(),
        });
        let statement = client
            .prepare_cached(
                "SELECT namespace_id, workflow_id, run_id FROM executions
                 WHERE shard_id = $1 AND dispatch_pending AND (namespace_id, workflow_id, run_id) > ($2, $3, $4)
                 ORDER BY namespace_id, workflow_id, run_id LIMIT $5",
            )
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[
                    &(shard_id as i32),
                    &after.namespace_id,
                    &after.workflow_id,
                    &after.run_id,
                    &(limit as i64),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|row| ExecutionRef {
                namespace_id: row.get(0),
                workflow_id: row.get(1),
                run_id: row.get(2),
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
        let client = self.client().await?;
        let shard_id = shard_id as i32;
        let limit = limit as i64;
        let rows = match after {
            Some(WakeAfter::Row(last)) => {
                let statement = client
                    .prepare_cached(
                        "SELECT wake_time, namespace_id, workflow_id, run_id FROM executions
                         WHERE shard_id = $1 AND wake_time IS NOT NULL AND wake_time <= $2
                           AND (wake_time, namespace_id, workflow_id, run_id) > ($3, $4, $5, $6)
                         ORDER BY wake_time, namespace_id, workflow_id, run_id LIMIT $7",
                    )
                    .await
                    .map_err(pg_error)?;
                client
                    .query(
                        &statement,
                        &[
                            &shard_id,
                            &until_ms,
                            &last.wake_time_ms,
                            &last.run.namespace_id,
                            &last.run.workflow_id,
                            &last.run.run_id,
                            &limit,
                        ],
                    )
                    .await
            }
            other => {
                let after_ms = match other {
                    Some(WakeAfter::Time(time)) => time,
                    _ => i64::MIN,
                };
                let statement = client
                    .prepare_cached(
                        "SELECT wake_time, namespace_id, workflow_id, run_id FROM executions
                         WHERE shard_id = $1 AND wake_time IS NOT NULL AND wake_time > $2 AND wake_time <= $3
                         ORDER BY wake_time, namespace_id, workflow_id, run_id LIMIT $4",
                    )
                    .await
                    .map_err(pg_error)?;
                client
                    .query(&statement, &[&shard_id, &after_ms, &until_ms, &limit])
                    .await
            }
        }
        .map_err(pg_error)?;
        Ok(rows.iter().map(wakeup).collect())
    }

    async fn read_history(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        next_event_id: i64,
        max_events: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT data FROM history_node WHERE namespace_id = $1 AND run_id = $2 AND last_event_id >= $3
                 AND first_event_id < $4 ORDER BY first_event_id",
            )
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[&namespace_id, &run_id, &first_event_id, &next_event_id],
            )
            .await
            .map_err(pg_error)?;
        let mut events = Vec::new();
        for row in rows {
            let blob: Vec<u8> = row.get(0);
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
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT task_id, namespace_id, workflow_id, run_id, data FROM transfer_tasks
                 WHERE shard_id = $1 ORDER BY task_id",
                &[&(shard_id as i32)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|row| TransferTaskRecord {
                shard_id,
                task_id: row.get(0),
                namespace_id: row.get(1),
                workflow_id: row.get(2),
                run_id: row.get(3),
                task: row.get(4),
            })
            .collect())
    }

    async fn delete_transfer_task(&self, shard_id: u32, task_id: i64) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM transfer_tasks WHERE shard_id = $1 AND task_id = $2",
                &[&(shard_id as i32), &task_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    fn close(&self) {
        self.writer.close();
    }
}
