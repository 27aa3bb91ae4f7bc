//! The throwaway server databases that the test scripts start: PostgreSQL from
//! `scripts/postgres.sh` (`SUNDIAL_PG_*`) and MariaDB from `scripts/mariadb.sh`
//! (`SUNDIAL_MYSQL_*`). Without their variables a test of that backend passes vacuously,
//! unless `SUNDIAL_REQUIRE_SERVER_DBS` is set (as `scripts/test.sh` sets it), which turns the
//! silent skip into a failure.

use sundial_persistence::schema::Version;
use sundial_persistence::{SqlOptions, SqlPlugin, admin};

/// The environment variables' prefix for a dialect.
fn prefix(plugin: SqlPlugin) -> &'static str {
    match plugin {
        SqlPlugin::Postgres => "SUNDIAL_PG",
        SqlPlugin::Mysql => "SUNDIAL_MYSQL",
    }
}

/// The server of `plugin` that the test scripts started, connected to its maintenance
/// database (`postgres`; none on MySQL), or `None` when there is none.
pub fn server(plugin: SqlPlugin) -> Option<SqlOptions> {
    let prefix = prefix(plugin);
    let var = |name: &str| std::env::var(format!("{prefix}_{name}")).ok();
    let Some(host) = var("HOST") else {
        assert!(
            std::env::var_os("SUNDIAL_REQUIRE_SERVER_DBS").is_none(),
            "SUNDIAL_REQUIRE_SERVER_DBS is set but {prefix}_HOST is not"
        );
        return None;
    };
    let defaults = SqlOptions::new(plugin);
    Some(SqlOptions {
        host,
        port: var("PORT")
            .map(|port| port.parse().expect("a port number"))
            .unwrap_or(defaults.port),
        user: var("USER").unwrap_or_else(|| defaults.user.clone()),
        password: var("PASSWORD").unwrap_or_default(),
        database: match plugin {
            SqlPlugin::Postgres => "postgres".into(),
            SqlPlugin::Mysql => "mysql".into(),
        },
        max_conns: 8,
        ..defaults
    })
}

/// The directory of the throwaway CA and certificates the script made for the server of
/// `plugin` (`scripts/test-certs.sh`), when there is that server.
pub fn tls_dir(plugin: SqlPlugin) -> Option<std::path::PathBuf> {
    server(plugin)?;
    let name = format!("{}_TLS_DIR", prefix(plugin));
    let dir = std::env::var_os(&name);
    assert!(
        dir.is_some() || std::env::var_os("SUNDIAL_REQUIRE_SERVER_DBS").is_none(),
        "SUNDIAL_REQUIRE_SERVER_DBS is set but {name} is not"
    );
    dir.map(Into::into)
}

/// The store a test run asks for with `SUNDIAL_TEST_STORE` (`postgres` or `mysql`; anything
/// else, or nothing, is SQLite). A named server database must be there.
pub fn requested() -> Option<SqlOptions> {
    let plugin = match std::env::var("SUNDIAL_TEST_STORE").as_deref() {
        Ok("postgres") => SqlPlugin::Postgres,
        Ok("mysql") => SqlPlugin::Mysql,
        _ => return None,
    };
    let options = server(plugin);
    assert!(
        options.is_some(),
        "SUNDIAL_TEST_STORE names {} but {}_HOST is not set",
        plugin.name(),
        prefix(plugin)
    );
    options
}

/// A database name no other test uses.
pub fn fresh_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new database on `server` with Sundial's main schema, set up the way an operator does it
/// (`create-database`, `setup-schema -v 0.0`, `update-schema`).
pub async fn fresh_database(server: &SqlOptions, prefix: &str) -> SqlOptions {
    let options = server.with_database(&fresh_name(prefix));
    assert!(
        admin::create_database(&options, None)
            .await
            .expect("create-database"),
        "{} existed already",
        options.database
    );
    admin::setup_schema(&options, Version(0, 0))
        .await
        .expect("setup-schema");
    admin::update_schema(&options, options.plugin.schemas().0, None)
        .await
        .expect("update-schema");
    options
}
