//! The `sundial` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sundial_server::{DevServer, DevServerOptions};
use tracing::{info, warn};

// The server allocates many small, short-lived buffers; mimalloc spends far less time on them
// than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sundial",
    version,
    about = "A Temporal-compatible durable-execution server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run servers.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// Create and migrate databases, with the flags of Temporal's temporal-sql-tool.
    Schema(sundial_server::schema_tool::SchemaArgs),
    /// Operate dynamic config in a file, an etcd prefix or a Kubernetes ConfigMap.
    Dynconfig(sundial_dynconfig::cli::DynconfigArgs),
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum ServerCommand {
    /// All services in one process on an embedded SQLite file.
    StartDev(StartDevArgs),
    /// The server configured by a Temporal server config file (PostgreSQL or SQLite). All four
    /// services run in this process.
    Start(StartArgs),
}

#[derive(clap::Args)]
struct StartArgs {
    /// A Temporal server config file (YAML).
    #[arg(long = "config-file", env = "TEMPORAL_SERVER_CONFIG_FILE_PATH")]
    config_file: PathBuf,
    /// Services to run (frontend, history, matching, worker; repeatable). All four by default,
    /// and all four is what this version runs.
    #[arg(
        long = "service",
        visible_alias = "svc",
        env = "TEMPORAL_SERVICES",
        value_delimiter = ','
    )]
    services: Vec<String>,
    /// Accepted for Temporal's command line; authorization is not built yet.
    #[arg(long, env = "TEMPORAL_ALLOW_NO_AUTH")]
    allow_no_auth: bool,
}

#[derive(clap::Args)]
struct StartDevArgs {
    /// gRPC port of the frontend.
    #[arg(short, long, default_value_t = 7233)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: String,
    /// SQLite file for all data (default: sundial/sundial.db under the user's data directory).
    #[arg(short = 'f', long)]
    db_filename: Option<PathBuf>,
    /// Keep nothing: a throwaway database that is deleted at exit and never synced.
    #[arg(long, conflicts_with = "db_filename")]
    in_memory: bool,
    /// More namespaces to create at start (`default` always exists).
    #[arg(short, long = "namespace")]
    namespaces: Vec<String>,
    /// A custom search attribute to register in every namespace created at start, as NAME=TYPE
    /// (Text, Keyword, Int, Double, Bool, Datetime, KeywordList). Repeatable.
    #[arg(long = "search-attribute", value_parser = parse_search_attribute)]
    search_attributes: Vec<(String, i32)>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Number of history shards (fixed when the database is created).
    #[arg(long, default_value_t = 4)]
    num_shards: u32,
    /// Dynamic config source: file:///path.yaml, etcd://host:port[,host:port]/prefix/ or
    /// configmap://namespace/name[?key=config.yaml]. Changes apply without a restart.
    #[arg(long, env = "SUNDIAL_DYNAMIC_CONFIG")]
    dynamic_config: Option<String>,
    /// Port for Prometheus `/metrics` and `/debug/dynconfig` (off unless given).
    #[arg(long)]
    metrics_port: Option<u16>,
}

/// `NAME=TYPE`, the type named as Temporal names it (any letter case).
fn parse_search_attribute(text: &str) -> Result<(String, i32), String> {
    let (name, ty) = text
        .split_once('=')
        .ok_or_else(|| format!("search attribute must be NAME=TYPE: {text:?}"))?;
    let ty = [
        "Text",
        "Keyword",
        "Int",
        "Double",
        "Bool",
        "Datetime",
        "KeywordList",
    ]
    .into_iter()
    .find(|known| known.eq_ignore_ascii_case(ty))
    .and_then(sundial_visibility::SaType::from_name)
    .ok_or_else(|| format!("invalid search attribute value type {ty:?}"))?;
    if name.is_empty() {
        return Err(format!("search attribute must be NAME=TYPE: {text:?}"));
    }
    Ok((name.to_string(), ty.indexed() as i32))
}

fn default_db_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("sundial").join("sundial.db")
}

async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

async fn start_dev(args: StartDevArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let (db_filename, durable, temporary) = match (args.in_memory, args.db_filename) {
        (true, _) => {
            let path = std::env::temp_dir().join(format!("sundial-{}.db", std::process::id()));
            (path, false, true)
        }
        (false, Some(path)) => (path, true, false),
        (false, None) => (default_db_path(), true, false),
    };
    let server = DevServer::start(DevServerOptions {
        ip: args.ip,
        port: args.port,
        db_filename: db_filename.clone(),
        durable,
        database: None,
        namespaces: args.namespaces,
        search_attributes: args.search_attributes.into_iter().collect(),
        create_default_namespace: true,
        num_shards: args.num_shards,
        limits: sundial_history_core::Limits::default(),
        dynamic_config: args.dynamic_config,
        metrics_address: args
            .metrics_port
            .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        rate_limits: sundial_frontend::rate_limit::RateLimits {
            rps: 0.0,
            namespace_rps: 0.0,
            global_namespace_rps: 0.0,
        },
        compact_idle_after: std::time::Duration::from_secs(1),
        timer_horizon: std::time::Duration::from_secs(10),
        wrap_matching: None,
        wrap_history: None,
    })
    .await?;
    eprintln!("Sundial gRPC API listening on {}", server.address);
    if let Some(metrics) = server.metrics_address {
        eprintln!("Metrics on http://{metrics}/metrics");
    }
    wait_for_signal().await;
    info!("shutting down; press Ctrl+C again to exit at once");
    tokio::spawn(async {
        wait_for_signal().await;
        warn!("second signal: exiting now");
        std::process::exit(130);
    });
    server.stop().await?;
    if temporary {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db_filename.display()));
        }
    }
    Ok(())
}

fn init_logging(level: &str, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)?;
    match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| anyhow::anyhow!("open log file {}: {error}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

async fn start(args: StartArgs) -> anyhow::Result<()> {
    use sundial_server::config::{ServerConfig, StoreConfig};
    let config = ServerConfig::load(&args.config_file)?;
    init_logging(&config.log_level, config.log_file.as_deref())?;
    let _ = args.allow_no_auth;
    let all = ["frontend", "history", "matching", "worker"];
    for service in &args.services {
        if !all.contains(&service.as_str()) && service != "internal-frontend" {
            anyhow::bail!("unknown service {service:?} (frontend, history, matching, worker)");
        }
    }
    if !args.services.is_empty()
        && !all
            .iter()
            .all(|role| args.services.iter().any(|s| s == role))
    {
        anyhow::bail!(
            "this Sundial runs frontend, history, matching and worker together in one process; \
             name all four with --service, or none"
        );
    }
    if !config.ignored.is_empty() {
        warn!(keys = %config.ignored.join(", "), "config keys not used by Sundial");
    }
    if let Some(visibility) = &config.visibility {
        sundial_persistence::admin::check_database(visibility, visibility.plugin.schemas().1)
            .await
            .map_err(|error| anyhow::anyhow!("visibility store: {error}"))?;
    }
    let (db_filename, database) = match &config.store {
        StoreConfig::Sqlite(path) => (path.clone(), None),
        StoreConfig::Sql(options) => (PathBuf::new(), Some((**options).clone())),
    };
    let server = DevServer::start(DevServerOptions {
        ip: config.frontend_ip.clone(),
        port: config.frontend_port,
        db_filename,
        durable: true,
        database,
        namespaces: Vec::new(),
        search_attributes: Default::default(),
        create_default_namespace: false,
        num_shards: config.num_history_shards,
        limits: sundial_history_core::Limits::default(),
        dynamic_config: config.dynamic_config.clone(),
        metrics_address: config.metrics_address,
        rate_limits: sundial_frontend::rate_limit::RateLimits::default(),
        compact_idle_after: std::time::Duration::from_secs(1),
        timer_horizon: std::time::Duration::from_secs(10),
        wrap_matching: None,
        wrap_history: None,
    })
    .await?;
    eprintln!("Sundial gRPC API listening on {}", server.address);
    wait_for_signal().await;
    info!("shutting down");
    server.stop().await
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("sundial {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Dynconfig(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let code = runtime.block_on(sundial_dynconfig::cli::run(args))?;
            std::process::exit(code);
        }
        Command::Schema(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if let Err(error) = runtime.block_on(sundial_server::schema_tool::run(args)) {
                eprintln!("sundial schema: {error:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Server {
            command: ServerCommand::StartDev(args),
        } => {
            // Blocking work is SQLite reads on a handful of connections; a small pool keeps
            // memory (stacks and per-thread allocator heaps) bounded under load.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(16)
                .build()?;
            runtime.block_on(start_dev(args))
        }
        Command::Server {
            command: ServerCommand::Start(args),
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(16)
                .build()?;
            let outcome = runtime.block_on(start(args));
            if let Err(error) = &outcome {
                eprintln!("sundial server start: {error:#}");
                std::process::exit(1);
            }
            outcome
        }
    }
}

/// Asks Linux not to back this process's memory with transparent huge pages. The allocator
/// marks its arena for them, so each small heap would otherwise occupy whole 2 MiB pages: an
/// idle server would hold 8 MiB more, and a busy one could not give freed memory back. It runs
/// as an early constructor, before the allocator touches its first page.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00101")]
static OPT_OUT_OF_HUGE_PAGES: extern "C" fn() = {
    extern "C" fn opt_out() {
        // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    opt_out
};
