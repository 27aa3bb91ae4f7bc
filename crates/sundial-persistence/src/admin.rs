//! Creating, setting up and migrating a server database: what `sundial schema` runs, with the
//! commands and version tables (`schema_version`, `schema_update_history`) of Temporal's
//! `temporal-sql-tool`. Every command can run again without changing anything.

use sundial_common::Result;

use crate::options::{SqlOptions, SqlPlugin};
use crate::schema::{SchemaSet, Version};
use crate::{mysql_admin, postgres_admin};

/// `create-database`: creates the database named in `options` unless it exists; `true` when it
/// created it. PostgreSQL connects to `default_database` (else `postgres`, then `defaultdb`)
/// to do so; MySQL connects to no database.
pub async fn create_database(options: &SqlOptions, default_database: Option<&str>) -> Result<bool> {
    match options.plugin {
        SqlPlugin::Postgres => postgres_admin::create_database(options, default_database).await,
        SqlPlugin::Mysql => mysql_admin::create_database(options).await,
    }
}

/// `drop-database`: drops the database named in `options` if it exists.
pub async fn drop_database(options: &SqlOptions, default_database: Option<&str>) -> Result<()> {
    match options.plugin {
        SqlPlugin::Postgres => postgres_admin::drop_database(options, default_database).await,
        SqlPlugin::Mysql => mysql_admin::drop_database(options).await,
    }
}

/// `setup-schema -v V`: creates the version tables and records `V` unless a version is
/// recorded already; returns the recorded version.
pub async fn setup_schema(options: &SqlOptions, initial: Version) -> Result<Version> {
    match options.plugin {
        SqlPlugin::Postgres => postgres_admin::setup_schema(options, initial).await,
        SqlPlugin::Mysql => mysql_admin::setup_schema(options, initial).await,
    }
}

/// `update-schema`: applies the migrations of `set` newer than the recorded version, up to
/// `target` (the latest when `None`); returns the versions applied.
pub async fn update_schema(
    options: &SqlOptions,
    set: &SchemaSet,
    target: Option<Version>,
) -> Result<Vec<Version>> {
    let target = set.target(target)?;
    match options.plugin {
        SqlPlugin::Postgres => postgres_admin::update_schema(options, set, target).await,
        SqlPlugin::Mysql => mysql_admin::update_schema(options, set, target).await,
    }
}

/// Checks that a database holds `set` at the version this binary needs (what a server does at
/// start), with the command to run when it does not.
pub async fn check_database(options: &SqlOptions, set: &SchemaSet) -> Result<()> {
    match options.plugin {
        SqlPlugin::Postgres => postgres_admin::check_database(options, set).await,
        SqlPlugin::Mysql => mysql_admin::check_database(options, set).await,
    }
}
