//! Creating, setting up and migrating a MySQL database (see `admin`). MySQL commits every DDL
//! statement on its own, so a migration is applied statement by statement and its version
//! recorded after the last one, as Temporal's tool does on MySQL.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use sundial_common::{Error, Result};
use tracing::info;

use crate::mysql::{connect, describe_mysql_error, mysql_error, mysql_opts, recorded_schema};
use crate::options::SqlOptions;
use crate::schema::{SchemaSet, Version};

/// One connection for an admin command, to the database or (`database: false`) to none.
async fn admin_connection(options: &SqlOptions, database: bool) -> Result<Conn> {
    let pool = Pool::new(mysql_opts(options, database)?);
    connect(&pool, options, options.connect_timeout).await
}

fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The statements of a migration file: `--` comment lines dropped, split at each `;` that ends
/// a line.
fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
}

/// `create-database`: creates the database named in `options` unless it exists.
pub(crate) async fn create_database(options: &SqlOptions) -> Result<bool> {
    let mut conn = admin_connection(options, false).await?;
    let exists: Option<String> = conn
        .exec_first(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            (&options.database,),
        )
        .await
        .map_err(mysql_error)?;
    if exists.is_some() {
        return Ok(false);
    }
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        quote_identifier(&options.database)
    ))
    .await
    .map_err(mysql_error)?;
    Ok(true)
}

/// `drop-database`: drops the database named in `options` if it exists.
pub(crate) async fn drop_database(options: &SqlOptions) -> Result<()> {
    let mut conn = admin_connection(options, false).await?;
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {}",
        quote_identifier(&options.database)
    ))
    .await
    .map_err(mysql_error)
}

/// `setup-schema -v V`: creates the version tables and records version `V` (normally 0.0)
/// unless a version is recorded already.
pub(crate) async fn setup_schema(options: &SqlOptions, initial: Version) -> Result<Version> {
    let mut conn = admin_connection(options, true).await?;
    for statement in [
        "CREATE TABLE IF NOT EXISTS schema_version (
            version_partition INT NOT NULL,
            db_name VARCHAR(255) NOT NULL,
            creation_time DATETIME(6),
            curr_version VARCHAR(64),
            min_compatible_version VARCHAR(64),
            PRIMARY KEY (version_partition, db_name)
        )",
        "CREATE TABLE IF NOT EXISTS schema_update_history (
            version_partition INT NOT NULL,
            year INT NOT NULL,
            month INT NOT NULL,
            update_time DATETIME(6) NOT NULL,
            description VARCHAR(255),
            manifest_md5 VARCHAR(64),
            new_version VARCHAR(64),
            old_version VARCHAR(64),
            PRIMARY KEY (version_partition, year, month, update_time)
        )",
    ] {
        conn.query_drop(statement).await.map_err(mysql_error)?;
    }
    let initial_text = initial.to_string();
    conn.exec_drop(
        "INSERT INTO schema_version (version_partition, db_name, creation_time, curr_version, min_compatible_version)
         VALUES (0, ?, UTC_TIMESTAMP(6), ?, ?) ON DUPLICATE KEY UPDATE version_partition = version_partition",
        (&options.database, &initial_text, &initial_text),
    )
    .await
    .map_err(mysql_error)?;
    Ok(current_version(&mut conn, &options.database).await?.0)
}

/// The recorded schema version and whether the database carries Sundial's mark.
async fn current_version(conn: &mut Conn, database: &str) -> Result<(Version, bool)> {
    let (text, marked) = recorded_schema(conn, database).await?;
    let Some(text) = text else {
        return Err(Error::FailedPrecondition(format!(
            "database {database} has no schema version: run setup-schema -v 0.0 first"
        )));
    };
    let version = Version::parse(&text).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "database {database} records schema version {text:?}, which is not one of Sundial's"
        ))
    })?;
    Ok((version, marked))
}

/// `update-schema`: applies every migration of `set` newer than the recorded version, up to
/// `target`. Returns the versions applied.
pub(crate) async fn update_schema(
    options: &SqlOptions,
    set: &SchemaSet,
    target: Version,
) -> Result<Vec<Version>> {
    let mut conn = admin_connection(options, true).await?;
    let (mut current, marked) = current_version(&mut conn, &options.database).await?;
    crate::schema::refuse_foreign(&options.database, &current.to_string(), marked)?;
    let mut applied = Vec::new();
    for migration in set.migrations_between(current, target) {
        for statement in statements(migration.sql) {
            conn.query_drop(&statement).await.map_err(|error| {
                Error::internal(format!(
                    "schema {} version {}: {}",
                    set.name,
                    migration.version,
                    describe_mysql_error(&error)
                ))
            })?;
        }
        let (old, new) = (current.to_string(), migration.version.to_string());
        conn.exec_drop(
            "UPDATE schema_version SET curr_version = ?, min_compatible_version = ?
             WHERE version_partition = 0 AND db_name = ?",
            (&new, &new, &options.database),
        )
        .await
        .map_err(mysql_error)?;
        conn.exec_drop(
            "INSERT INTO schema_update_history (version_partition, year, month, update_time, description,
                manifest_md5, new_version, old_version)
             SELECT 0, YEAR(t), MONTH(t), t, ?, MD5(?), ?, ? FROM (SELECT UTC_TIMESTAMP(6) AS t) AS now",
            (migration.description, migration.sql, &new, &old),
        )
        .await
        .map_err(mysql_error)?;
        info!(schema = set.name, from = %current, to = %migration.version, "schema updated");
        current = migration.version;
        applied.push(migration.version);
    }
    Ok(applied)
}

/// Checks that a database holds `set` at the version this binary needs.
pub(crate) async fn check_database(options: &SqlOptions, set: &SchemaSet) -> Result<()> {
    let mut conn = admin_connection(options, true).await?;
    crate::mysql::check_schema(&mut conn, set, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (\n  x INT\n);\nINSERT INTO a VALUES (1);\n";
        assert_eq!(
            statements(sql),
            vec!["CREATE TABLE a (\n  x INT\n)", "INSERT INTO a VALUES (1)"]
        );
        for set in [&crate::schema::MYSQL_MAIN, &crate::schema::MYSQL_VISIBILITY] {
            for migration in set.migrations {
                assert!(
                    statements(migration.sql)
                        .iter()
                        .all(|statement| !statement.contains(';')),
                    "{} {}",
                    set.name,
                    migration.version
                );
            }
        }
    }
}
