//! Creating, setting up and migrating a PostgreSQL database (see `admin`).

use sundial_common::{Error, Result};
use tokio_postgres::NoTls;
use tracing::info;

use crate::options::SqlOptions;
use crate::postgres::{describe_pg_error, pg_config, pg_error};
use crate::schema::{SchemaSet, Version};
use crate::tls::PgTls;

async fn connect(options: &SqlOptions) -> Result<tokio_postgres::Client> {
    let mut config = pg_config(options);
    config.application_name("sundial-schema");
    let unavailable = |error: tokio_postgres::Error| {
        Error::Unavailable(format!(
            "cannot connect to {}: {}",
            options.describe(),
            describe_pg_error(&error)
        ))
    };
    let client = match &options.tls {
        Some(tls) => {
            let (client, connection) = config
                .connect(PgTls::new(tls)?)
                .await
                .map_err(unavailable)?;
            tokio::spawn(connection);
            client
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(unavailable)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects to the server's maintenance database: `default_database` when given, else
/// `postgres`, else `defaultdb` (as Temporal's tool tries them).
async fn connect_maintenance(
    options: &SqlOptions,
    default_database: Option<&str>,
) -> Result<tokio_postgres::Client> {
    let candidates: Vec<&str> = match default_database {
        Some(database) => vec![database],
        None => vec!["postgres", "defaultdb"],
    };
    let mut last = None;
    for database in candidates {
        match connect(&options.with_database(database)).await {
            Ok(client) => return Ok(client),
            Err(error) => last = Some(error),
        }
    }
    Err(last.expect("at least one candidate"))
}

/// `create-database`: creates the database named in `options` unless it exists.
pub(crate) async fn create_database(
    options: &SqlOptions,
    default_database: Option<&str>,
) -> Result<bool> {
    let client = connect_maintenance(options, default_database).await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&options.database],
        )
        .await
        .map_err(pg_error)?
        .is_some();
    if exists {
        return Ok(false);
    }
    client
        .batch_execute(&format!(
            "CREATE DATABASE {}",
            quote_identifier(&options.database)
        ))
        .await
        .map_err(pg_error)?;
    Ok(true)
}

/// `drop-database`: drops the database named in `options` if it exists.
pub(crate) async fn drop_database(
    options: &SqlOptions,
    default_database: Option<&str>,
) -> Result<()> {
    let client = connect_maintenance(options, default_database).await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_identifier(&options.database)
        ))
        .await
        .map_err(pg_error)
}

/// `setup-schema -v V`: creates the version tables and records version `V` (normally 0.0)
/// unless a version is recorded already.
pub(crate) async fn setup_schema(options: &SqlOptions, initial: Version) -> Result<Version> {
    let client = connect(options).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version_partition INT NOT NULL,
                db_name VARCHAR(255) NOT NULL,
                creation_time TIMESTAMP,
                curr_version VARCHAR(64),
                min_compatible_version VARCHAR(64),
                PRIMARY KEY (version_partition, db_name)
            );
            CREATE TABLE IF NOT EXISTS schema_update_history (
                version_partition INT NOT NULL,
                year INT NOT NULL,
                month INT NOT NULL,
                update_time TIMESTAMP NOT NULL,
                description VARCHAR(255),
                manifest_md5 VARCHAR(64),
                new_version VARCHAR(64),
                old_version VARCHAR(64),
                PRIMARY KEY (version_partition, year, month, update_time)
            );",
        )
        .await
        .map_err(pg_error)?;
    let initial_text = initial.to_string();
    client
        .execute(
            "INSERT INTO schema_version (version_partition, db_name, creation_time, curr_version, min_compatible_version)
             VALUES (0, $1, now() AT TIME ZONE 'utc', $2, $2) ON CONFLICT DO NOTHING",
            &[&options.database, &initial_text],
        )
        .await
        .map_err(pg_error)?;
    current_version(&client, &options.database).await
}

async fn current_version(client: &tokio_postgres::Client, database: &str) -> Result<Version> {
    let row = client
        .query_opt(
            "SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = $1",
            &[&database],
        )
        .await
        .map_err(|error| {
            Error::FailedPrecondition(format!(
                "database {database} has no schema version table ({}): run setup-schema -v 0.0 first",
                describe_pg_error(&error)
            ))
        })?;
    let Some(row) = row else {
        return Err(Error::FailedPrecondition(format!(
            "database {database} has no schema version: run setup-schema -v 0.0 first"
        )));
    };
    let text: Option<String> = row.get(0);
    let text = text.unwrap_or_default();
    Version::parse(&text).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "database {database} records schema version {text:?}, which is not one of Sundial's"
        ))
    })
}

/// `update-schema`: applies every migration of `set` newer than the recorded version, up to
/// `target`, each in its own transaction with its version record.
/// Returns the versions applied (none when the database is current).
pub(crate) async fn update_schema(
    options: &SqlOptions,
    set: &SchemaSet,
    target: Version,
) -> Result<Vec<Version>> {
    let mut client = connect(options).await?;
    let mut current = current_version(&client, &options.database).await?;
    if current > Version(0, 0) {
        let (_, marked) = crate::postgres::recorded_schema(&client, &options.database).await?;
        crate::schema::refuse_foreign(&options.database, &current.to_string(), marked)?;
    }
    let mut applied = Vec::new();
    for migration in set.migrations_between(current, target) {
        let transaction = client.transaction().await.map_err(pg_error)?;
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(|error| {
                Error::internal(format!(
                    "schema {} version {}: {}",
                    set.name,
                    migration.version,
                    describe_pg_error(&error)
                ))
            })?;
        let (old, new) = (current.to_string(), migration.version.to_string());
        transaction
            .execute(
                "UPDATE schema_version SET curr_version = $2, min_compatible_version = $2
                 WHERE version_partition = 0 AND db_name = $1",
                &[&options.database, &new],
            )
            .await
            .map_err(pg_error)?;
        transaction
            .execute(
                "INSERT INTO schema_update_history (version_partition, year, month, update_time, description,
                    manifest_md5, new_version, old_version)
                 SELECT 0, EXTRACT(YEAR FROM t)::int, EXTRACT(MONTH FROM t)::int, t, $1, md5($2), $3, $4
                 FROM (SELECT clock_timestamp() AT TIME ZONE 'utc' AS t) AS now",
                &[&migration.description, &migration.sql, &new, &old],
            )
            .await
            .map_err(pg_error)?;
        transaction.commit().await.map_err(pg_error)?;
        info!(schema = set.name, from = %current, to = %migration.version, "schema updated");
        current = migration.version;
        applied.push(migration.version);
    }
    Ok(applied)
}

/// Checks that a database holds `set` at the version this binary needs (what a server does at
/// start), with the command to run when it does not.
pub(crate) async fn check_database(options: &SqlOptions, set: &SchemaSet) -> Result<()> {
    let pool = crate::postgres::pool(options)?;
    let client = pool
        .get()
        .await
        .map_err(|error| crate::postgres::connect_error(options, error))?;
    crate::postgres::check_schema(&client, set, options).await
}
