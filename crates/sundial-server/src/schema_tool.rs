//! `sundial schema`: Temporal's `temporal-sql-tool` for Sundial's databases. The flags, their
//! environment variables and the commands are the tool's, so an operator's setup scripts and
//! Helm schema jobs need only the binary's name changed. The schemas are embedded in the
//! binary; a schema directory given with `--schema-dir` names one by its path (Temporal's
//! layout, `.../postgresql/v12/temporal/versioned`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sundial_persistence::schema::{self, Version};
use sundial_persistence::{SqlOptions, SqlPlugin, SqlTls, SqliteOptions, SqliteStore, admin};

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Hostname or IP address of the database server.
    #[arg(
        long = "endpoint",
        visible_alias = "ep",
        env = "SQL_HOST",
        default_value = "127.0.0.1",
        global = true
    )]
    endpoint: String,
    /// Port of the database server (default: 5432 for PostgreSQL, 3306 for MySQL).
    #[arg(short = 'p', long, env = "SQL_PORT", global = true)]
    port: Option<u16>,
    /// User name.
    #[arg(short = 'u', long, env = "SQL_USER", default_value = "", global = true)]
    user: String,
    /// Password.
    #[arg(
        long = "password",
        visible_alias = "pw",
        env = "SQL_PASSWORD",
        default_value = "",
        global = true
    )]
    password: String,
    /// Database name (for `sqlite`, the database file).
    #[arg(
        long = "database",
        visible_alias = "db",
        env = "SQL_DATABASE",
        default_value = "temporal",
        global = true
    )]
    database: String,
    /// Database plugin: postgres12, postgres12_pgx, mysql8 or sqlite.
    #[arg(
        long = "plugin",
        visible_alias = "pl",
        env = "SQL_PLUGIN",
        default_value = "mysql8",
        global = true
    )]
    plugin: String,
    /// Connection attributes, `key=value` pairs separated by `&` (accepted; Sundial sets what
    /// it needs itself).
    #[arg(
        long = "connect-attributes",
        visible_alias = "ca",
        env = "SQL_CONNECT_ATTRIBUTES",
        global = true
    )]
    connect_attributes: Option<String>,
    /// Connect with TLS (the other --tls-* flags need this one).
    #[arg(long, env = "SQL_TLS", global = true)]
    tls: bool,
    /// Client certificate (PEM) shown to the database.
    #[arg(long = "tls-cert-file", env = "SQL_TLS_CERT_FILE", global = true)]
    tls_cert_file: Option<String>,
    /// The client certificate's private key (PEM).
    #[arg(long = "tls-key-file", env = "SQL_TLS_KEY_FILE", global = true)]
    tls_key_file: Option<String>,
    /// CA certificates (PEM) the database's certificate must lead to.
    #[arg(long = "tls-ca-file", env = "SQL_TLS_CA_FILE", global = true)]
    tls_ca_file: Option<String>,
    /// The name the database's certificate must carry (MySQL; default: the endpoint).
    #[arg(long = "tls-server-name", env = "SQL_TLS_SERVER_NAME", global = true)]
    tls_server_name: Option<String>,
    /// Do not check that the database's certificate names the host.
    #[arg(
        long = "tls-disable-host-verification",
        env = "SQL_TLS_DISABLE_HOST_VERIFICATION",
        global = true
    )]
    tls_disable_host_verification: bool,
    /// Print less.
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand, Debug)]
enum SchemaCommand {
    /// Creates the database (nothing happens when it exists).
    #[command(visible_alias = "create")]
    CreateDatabase {
        /// The database to connect to while creating (PostgreSQL: `postgres`, then `defaultdb`).
        #[arg(long = "defaultdb")]
        default_database: Option<String>,
    },
    /// Creates the schema version tables and records the initial version.
    #[command(visible_alias = "setup")]
    SetupSchema {
        /// Initial version (normally 0.0).
        #[arg(short = 'v', long = "version", default_value = "0.0")]
        version: String,
        /// A schema file to apply: not used, Sundial's schemas are embedded (see --schema-name).
        #[arg(short = 'f', long = "schema-file")]
        schema_file: Option<PathBuf>,
        /// An embedded schema to apply up to --version (e.g. postgresql/v12/temporal).
        #[arg(short = 's', long = "schema-name")]
        schema_name: Option<String>,
        /// Do not create the version tables.
        #[arg(short = 'd', long = "disable-versioning")]
        disable_versioning: bool,
        /// Drop existing tables first (not supported: use drop-database).
        #[arg(short = 'o', long = "overwrite")]
        overwrite: bool,
    },
    /// Applies every schema version newer than the database's.
    #[command(visible_alias = "update")]
    UpdateSchema {
        /// A schema directory in Temporal's layout; it names the embedded schema of the same path.
        #[arg(short = 'd', long = "schema-dir")]
        schema_dir: Option<String>,
        /// An embedded schema: postgresql/v12/temporal, postgresql/v12/visibility, mysql/v8/temporal or mysql/v8/visibility.
        #[arg(short = 's', long = "schema-name")]
        schema_name: Option<String>,
        /// Version to update to (default: the latest).
        #[arg(short = 'v', long = "version")]
        version: Option<String>,
    },
    /// Drops the database.
    #[command(visible_alias = "drop")]
    DropDatabase {
        /// Do not ask for confirmation (always the case here).
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(long = "defaultdb")]
        default_database: Option<String>,
    },
}

enum Plugin {
    Sql(SqlPlugin),
    Sqlite,
}

fn plugin(name: &str) -> anyhow::Result<Plugin> {
    match name {
        "sqlite" => Ok(Plugin::Sqlite),
        other => match SqlPlugin::parse(other) {
            Some(plugin) => Ok(Plugin::Sql(plugin)),
            None => bail!(
                "unknown plugin {other:?}: Sundial supports postgres12, postgres12_pgx, mysql8 and sqlite"
            ),
        },
    }
}

fn parse_version(text: &str) -> anyhow::Result<Version> {
    Version::parse(text).with_context(|| format!("invalid schema version {text:?}"))
}

fn schema_set(
    name_or_dir: &str,
    options: &SqlOptions,
) -> anyhow::Result<&'static schema::SchemaSet> {
    let set = schema::find_set(name_or_dir).with_context(|| {
        let names: Vec<&str> = schema::SETS.iter().map(|set| set.name).collect();
        format!(
            "no Sundial schema is called {name_or_dir:?}; the embedded ones are {}",
            names.join(", ")
        )
    })?;
    if set.plugin != options.plugin {
        let (main, visibility) = options.plugin.schemas();
        bail!(
            "schema {} is not for --plugin {}; its schemas are {} and {}",
            set.name,
            options.plugin.name(),
            main.name,
            visibility.name
        );
    }
    Ok(set)
}

pub async fn run(args: SchemaArgs) -> anyhow::Result<()> {
    let _ = &args.connect_attributes;
    // As temporal-sql-tool: the --tls-* flags count only with --tls, and host verification is
    // on unless turned off.
    let tls = args.tls.then(|| SqlTls {
        ca_file: args.tls_ca_file.as_ref().map(PathBuf::from),
        cert_file: args.tls_cert_file.as_ref().map(PathBuf::from),
        key_file: args.tls_key_file.as_ref().map(PathBuf::from),
        server_name: args.tls_server_name.clone(),
        enable_host_verification: !args.tls_disable_host_verification,
    });
    if let Some(tls) = &tls {
        tls.check().map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    let say = |message: String| {
        if !args.quiet {
            println!("{message}");
        }
    };
    match plugin(&args.plugin)? {
        Plugin::Sqlite => run_sqlite(&args, say),
        Plugin::Sql(plugin) => {
            let options = SqlOptions {
                host: args.endpoint.clone(),
                port: args.port.unwrap_or(plugin.default_port()),
                user: args.user.clone(),
                password: args.password.clone(),
                database: args.database.clone(),
                max_conns: 2,
                tls,
                ..SqlOptions::new(plugin)
            };
            run_sql(&args.command, &options, say).await
        }
    }
}

async fn run_sql(
    command: &SchemaCommand,
    options: &SqlOptions,
    say: impl Fn(String),
) -> anyhow::Result<()> {
    match command {
        SchemaCommand::CreateDatabase { default_database } => {
            if admin::create_database(options, default_database.as_deref()).await? {
                say(format!("created database {}", options.database));
            } else {
                say(format!("database {} exists already", options.database));
            }
        }
        SchemaCommand::SetupSchema {
            version,
            schema_file,
            schema_name,
            disable_versioning,
            overwrite,
        } => {
            if schema_file.is_some() {
                bail!(
                    "Sundial's schemas are embedded in the binary: use --schema-name (e.g. postgresql/v12/temporal) instead of --schema-file"
                );
            }
            if *overwrite {
                bail!("--overwrite is not supported: drop the database with drop-database instead");
            }
            if *disable_versioning {
                bail!("Sundial needs the schema version tables: leave out --disable-versioning");
            }
            let version = parse_version(version)?;
            match schema_name {
                None => {
                    let recorded = admin::setup_schema(options, version).await?;
                    say(format!(
                        "database {} is at schema version {recorded}",
                        options.database
                    ));
                }
                Some(name) => {
                    let set = schema_set(name, options)?;
                    admin::setup_schema(options, Version(0, 0)).await?;
                    let target = if version == Version(0, 0) {
                        None
                    } else {
                        Some(version)
                    };
                    report_update(
                        options,
                        set,
                        admin::update_schema(options, set, target).await?,
                        &say,
                    );
                }
            }
        }
        SchemaCommand::UpdateSchema {
            schema_dir,
            schema_name,
            version,
        } => {
            let Some(name) = schema_name.as_deref().or(schema_dir.as_deref()) else {
                bail!("update-schema needs --schema-name or --schema-dir");
            };
            let set = schema_set(name, options)?;
            let target = version.as_deref().map(parse_version).transpose()?;
            let applied = admin::update_schema(options, set, target).await?;
            report_update(options, set, applied, &say);
        }
        SchemaCommand::DropDatabase {
            default_database, ..
        } => {
            admin::drop_database(options, default_database.as_deref()).await?;
            say(format!("dropped database {}", options.database));
        }
    }
    Ok(())
}

fn report_update(
    options: &SqlOptions,
    set: &schema::SchemaSet,
    applied: Vec<Version>,
    say: &impl Fn(String),
) {
    match applied.last() {
        None => say(format!(
            "database {} is at the latest {} schema version, {}",
            options.database,
            set.name,
            set.latest()
        )),
        Some(last) => say(format!(
            "database {}: applied {} version(s) of {}, now at {last}",
            options.database,
            applied.len(),
            set.name
        )),
    }
}

/// SQLite migrates itself when opened; the commands create and migrate the file.
fn run_sqlite(args: &SchemaArgs, say: impl Fn(String)) -> anyhow::Result<()> {
    let path = PathBuf::from(&args.database);
    match &args.command {
        SchemaCommand::DropDatabase { .. } => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            say(format!("removed {}", path.display()));
        }
        _ => {
            let store = SqliteStore::open(SqliteOptions {
                path: path.clone(),
                durable: true,
            })
            .with_context(|| format!("open {}", path.display()))?;
            store.shut_down();
            say(format!("{} has Sundial's current schema", path.display()));
        }
    }
    Ok(())
}
