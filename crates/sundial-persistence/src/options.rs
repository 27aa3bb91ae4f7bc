//! How to reach a server database (PostgreSQL or MySQL), as Temporal's `sql` datastore config
//! and `temporal-sql-tool`'s flags describe it.

use std::time::Duration;

/// The SQL dialect of a server database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlPlugin {
    /// PostgreSQL 12 or later (Temporal's `postgres12` and `postgres12_pgx`).
    Postgres,
    /// MySQL 8 (Temporal's `mysql8`), also served by MariaDB 10.11.
    Mysql,
}

impl SqlPlugin {
    /// Temporal's plugin names, as config files and `--plugin` give them.
    pub fn parse(name: &str) -> Option<SqlPlugin> {
        match name {
            "postgres12" | "postgres12_pgx" | "postgres" | "postgresql" => {
                Some(SqlPlugin::Postgres)
            }
            "mysql8" | "mysql" => Some(SqlPlugin::Mysql),
            _ => None,
        }
    }

    /// The name `--plugin` takes.
    pub fn name(self) -> &'static str {
        match self {
            SqlPlugin::Postgres => "postgres12",
            SqlPlugin::Mysql => "mysql8",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            SqlPlugin::Postgres => 5432,
            SqlPlugin::Mysql => 3306,
        }
    }

    /// The schema sets of this dialect: the main database's and the visibility database's.
    pub fn schemas(
        self,
    ) -> (
        &'static crate::schema::SchemaSet,
        &'static crate::schema::SchemaSet,
    ) {
        use crate::schema::*;
        match self {
            SqlPlugin::Postgres => (&POSTGRES_MAIN, &POSTGRES_VISIBILITY),
            SqlPlugin::Mysql => (&MYSQL_MAIN, &MYSQL_VISIBILITY),
        }
    }
}

/// A server database and how to connect to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlOptions {
    pub plugin: SqlPlugin,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    /// Connections at most (Temporal's `maxConns`).
    pub max_conns: usize,
    /// Connections older than this are replaced (Temporal's `maxConnLifetime`; zero: never).
    pub max_conn_lifetime: Duration,
    /// How long connecting may take before the attempt fails.
    pub connect_timeout: Duration,
    /// TLS to the database (None: plain TCP).
    pub tls: Option<crate::tls::SqlTls>,
}

impl SqlOptions {
    /// Defaults for a dialect: 127.0.0.1 on its usual port, database `temporal`.
    pub fn new(plugin: SqlPlugin) -> SqlOptions {
        SqlOptions {
            plugin,
            host: "127.0.0.1".into(),
            port: plugin.default_port(),
            user: match plugin {
                SqlPlugin::Postgres => "postgres".into(),
                SqlPlugin::Mysql => "root".into(),
            },
            password: String::new(),
            database: "temporal".into(),
            max_conns: 20,
            max_conn_lifetime: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// Options for another database on the same server.
    pub fn with_database(&self, database: &str) -> SqlOptions {
        SqlOptions {
            database: database.to_string(),
            ..self.clone()
        }
    }

    /// Where the options point, for messages (no password).
    pub fn describe(&self) -> String {
        let scheme = match self.plugin {
            SqlPlugin::Postgres => "postgres",
            SqlPlugin::Mysql => "mysql",
        };
        format!(
            "{scheme}://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The `sundial schema` command line that runs `command` on this database.
    pub fn schema_command(&self, command: &str) -> String {
        format!(
            "sundial schema --plugin {} --ep {} -p {} -u {} --db {} {command}",
            self.plugin.name(),
            self.host,
            self.port,
            self.user,
            self.database
        )
    }
}
