//! Temporal's static server config (the YAML of `temporal-server start --config-file`), read
//! into what Sundial runs: the keys Sundial uses are read, the ones it does not are named in
//! warnings, and stores it does not have (Cassandra, Elasticsearch) are refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_yaml::Value;
use sundial_persistence::{SqlOptions, SqlPlugin};

type Extra = BTreeMap<String, Value>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct File {
    log: Log,
    persistence: Option<Persistence>,
    global: Global,
    services: BTreeMap<String, ServiceConfig>,
    cluster_metadata: Option<ClusterMetadata>,
    dynamic_config_client: Option<DynamicConfigClient>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Log {
    stdout: Option<bool>,
    level: Option<String>,
    output_file: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Persistence {
    default_store: String,
    visibility_store: Option<String>,
    num_history_shards: Option<u32>,
    datastores: BTreeMap<String, Datastore>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Datastore {
    sql: Option<Sql>,
    cassandra: Option<Value>,
    elasticsearch: Option<Value>,
    custom_datastore: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Sql {
    plugin_name: String,
    database_name: String,
    connect_addr: String,
    connect_protocol: Option<String>,
    user: String,
    password: String,
    max_conns: Option<usize>,
    max_idle_conns: Option<usize>,
    max_conn_lifetime: Option<String>,
    connect_attributes: Option<BTreeMap<String, Value>>,
    tls: Option<SqlTls>,
    task_scan_partitions: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SqlTls {
    enabled: bool,
    cert_file: String,
    key_file: String,
    ca_file: String,
    server_name: String,
    enable_host_verification: bool,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Global {
    membership: Option<Membership>,
    metrics: Option<Metrics>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Membership {
    max_join_duration: Option<String>,
    broadcast_address: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Metrics {
    prometheus: Option<Prometheus>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Prometheus {
    listen_address: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceConfig {
    rpc: Rpc,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Rpc {
    grpc_port: Option<u16>,
    membership_port: Option<u16>,
    http_port: Option<u16>,
    #[serde(rename = "bindOnIP")]
    bind_on_ip: Option<String>,
    bind_on_local_host: Option<bool>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ClusterMetadata {
    enable_global_namespace: Option<bool>,
    failover_version_increment: Option<i64>,
    master_cluster_name: Option<String>,
    current_cluster_name: Option<String>,
    cluster_information: BTreeMap<String, Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DynamicConfigClient {
    filepath: Option<String>,
    poll_interval: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

/// Where a server keeps its data.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    Sqlite(PathBuf),
    /// PostgreSQL or MySQL.
    Sql(Box<SqlOptions>),
}

/// What a Temporal config file asks Sundial to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    pub store: StoreConfig,
    /// The visibility database, when it is another server database (checked at start).
    pub visibility: Option<SqlOptions>,
    pub num_history_shards: u32,
    pub frontend_ip: String,
    pub frontend_port: u16,
    pub metrics_address: Option<SocketAddr>,
    /// A dynamic config source URL (`file://...`).
    pub dynamic_config: Option<String>,
    /// Keys of the file that Sundial does not use, for warnings.
    pub ignored: Vec<String>,
}

fn note_extra(prefix: &str, extra: &Extra, ignored: &mut Vec<String>) {
    for key in extra.keys() {
        ignored.push(if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        });
    }
}

fn duration(text: &str, key: &str) -> anyhow::Result<Duration> {
    let nanos = sundial_dynconfig::duration::parse_duration_nanos(text)
        .map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
    Ok(Duration::from_nanos(nanos.max(0) as u64))
}

impl ServerConfig {
    pub fn load(path: &Path) -> anyhow::Result<ServerConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read config file {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("config file {}", path.display()))
    }

    /// Reads a config; relative paths in it are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<ServerConfig> {
        if text.trim_start().starts_with("# enable-template") {
            bail!(
                "templated configs (`# enable-template`) are not supported yet: render the template first"
            );
        }
        let file: File = serde_yaml::from_str(text).context("parse YAML")?;
        let mut ignored = Vec::new();
        note_extra("", &file.extra, &mut ignored);
        note_extra("log", &file.log.extra, &mut ignored);
        note_extra("global", &file.global.extra, &mut ignored);

        let persistence = file
            .persistence
            .context("persistence is required (defaultStore, numHistoryShards, datastores)")?;
        note_extra("persistence", &persistence.extra, &mut ignored);
        let num_history_shards = persistence
            .num_history_shards
            .context("persistence.numHistoryShards is required")?;
        if num_history_shards == 0 {
            bail!("persistence.numHistoryShards must be at least 1");
        }
        let datastore = |name: &str, role: &str| -> anyhow::Result<&Datastore> {
            persistence.datastores.get(name).with_context(|| {
                format!("persistence.{role} names datastore {name:?}, which persistence.datastores does not define")
            })
        };
        if persistence.default_store.is_empty() {
            bail!("persistence.defaultStore is required");
        }
        let default = datastore(&persistence.default_store, "defaultStore")?;
        let store = sql_store(&persistence.default_store, default, base, &mut ignored)?;
        let visibility = match &persistence.visibility_store {
            None => None,
            Some(name) => {
                let datastore = datastore(name, "visibilityStore")?;
                match sql_store(name, datastore, base, &mut ignored)? {
                    StoreConfig::Sql(options) => Some(*options),
                    StoreConfig::Sqlite(_) => None,
                }
            }
        };
        for (name, datastore) in &persistence.datastores {
            if Some(name) != persistence.visibility_store.as_ref()
                && *name != persistence.default_store
            {
                ignored.push(format!("persistence.datastores.{name}"));
            }
            note_extra(
                &format!("persistence.datastores.{name}"),
                &datastore.extra,
                &mut ignored,
            );
        }

        let mut frontend_ip = "127.0.0.1".to_string();
        let mut frontend_port = 7233;
        for (role, service) in &file.services {
            note_extra(&format!("services.{role}"), &service.extra, &mut ignored);
            note_extra(
                &format!("services.{role}.rpc"),
                &service.rpc.extra,
                &mut ignored,
            );
            match role.as_str() {
                "frontend" => {
                    if let Some(port) = service.rpc.grpc_port {
                        frontend_port = port;
                    }
                    match (&service.rpc.bind_on_ip, service.rpc.bind_on_local_host) {
                        (Some(_), Some(true)) => {
                            bail!(
                                "services.frontend.rpc: bindOnIP and bindOnLocalHost exclude each other"
                            )
                        }
                        (Some(ip), _) => frontend_ip = ip.clone(),
                        (None, _) => {}
                    }
                }
                "history" | "matching" | "worker" | "internal-frontend" => {}
                other => {
                    bail!("services.{other}: unknown service (frontend, history, matching, worker)")
                }
            }
        }

        if let Some(cluster) = &file.cluster_metadata {
            note_extra("clusterMetadata", &cluster.extra, &mut ignored);
            let _ = (
                cluster.enable_global_namespace,
                cluster.failover_version_increment,
                &cluster.master_cluster_name,
            );
            let enabled: Vec<&String> = cluster
                .cluster_information
                .iter()
                .filter(|(_, info)| info.get("enabled").and_then(Value::as_bool).unwrap_or(true))
                .map(|(name, _)| name)
                .collect();
            if enabled.len() > 1 {
                bail!(
                    "clusterMetadata.clusterInformation enables {} clusters; Sundial runs a single cluster",
                    enabled.len()
                );
            }
            if let Some(current) = &cluster.current_cluster_name
                && current != crate::CLUSTER_NAME
            {
                ignored.push(format!(
                    "clusterMetadata.currentClusterName ({current:?}: Sundial's cluster is named \"{}\")",
                    crate::CLUSTER_NAME
                ));
            }
        }

        let dynamic_config = match &file.dynamic_config_client {
            None => None,
            Some(client) => {
                note_extra("dynamicConfigClient", &client.extra, &mut ignored);
                if let Some(interval) = &client.poll_interval {
                    // Validated for the operator; Sundial watches the file instead of polling.
                    duration(interval, "dynamicConfigClient.pollInterval")?;
                }
                client.filepath.as_ref().map(|path| {
                    let path = base.join(path);
                    format!("file://{}", path.display())
                })
            }
        };

        let mut metrics_address = None;
        if let Some(metrics) = &file.global.metrics {
            note_extra("global.metrics", &metrics.extra, &mut ignored);
            if let Some(prometheus) = &metrics.prometheus {
                note_extra("global.metrics.prometheus", &prometheus.extra, &mut ignored);
                if let Some(address) = &prometheus.listen_address {
                    metrics_address = Some(address.parse().with_context(|| {
                        format!("global.metrics.prometheus.listenAddress {address:?}")
                    })?);
                }
            }
        }
        if let Some(membership) = &file.global.membership {
            note_extra("global.membership", &membership.extra, &mut ignored);
            if let Some(join) = &membership.max_join_duration {
                duration(join, "global.membership.maxJoinDuration")?;
            }
            let _ = &membership.broadcast_address;
        }

        let log_level = file.log.level.clone().unwrap_or_else(|| "info".into());
        let _ = file.log.stdout;
        Ok(ServerConfig {
            log_level,
            log_file: file.log.output_file.as_ref().map(|file| base.join(file)),
            store,
            visibility,
            num_history_shards,
            frontend_ip,
            frontend_port,
            metrics_address,
            dynamic_config,
            ignored,
        })
    }
}

fn sql_store(
    name: &str,
    datastore: &Datastore,
    base: &Path,
    ignored: &mut Vec<String>,
) -> anyhow::Result<StoreConfig> {
    if datastore.cassandra.is_some() {
        bail!(
            "persistence.datastores.{name}: Cassandra is not supported by Sundial; use sql with postgres12, mysql8 or sqlite"
        );
    }
    if datastore.elasticsearch.is_some() {
        bail!(
            "persistence.datastores.{name}: Elasticsearch is not supported by Sundial; use an sql visibility store"
        );
    }
    if datastore.custom_datastore.is_some() {
        bail!("persistence.datastores.{name}: custom datastores are not supported by Sundial");
    }
    let sql = datastore
        .sql
        .as_ref()
        .with_context(|| format!("persistence.datastores.{name} has no sql section"))?;
    let prefix = format!("persistence.datastores.{name}.sql");
    note_extra(&prefix, &sql.extra, ignored);
    if sql.task_scan_partitions.is_some() {
        ignored.push(format!("{prefix}.taskScanPartitions"));
    }
    if sql.connect_attributes.is_some() {
        ignored.push(format!("{prefix}.connectAttributes"));
    }
    if sql.max_idle_conns.is_some() {
        ignored.push(format!("{prefix}.maxIdleConns"));
    }
    let tls = match &sql.tls {
        Some(tls) => {
            // Temporal's SQL stores read only the file settings (certData and the like are
            // ignored there too), and take relative paths from the working directory.
            note_extra(&format!("{prefix}.tls"), &tls.extra, ignored);
            let path = |text: &str| (!text.is_empty()).then(|| PathBuf::from(text));
            let settings = sundial_persistence::SqlTls {
                ca_file: path(&tls.ca_file),
                cert_file: path(&tls.cert_file),
                key_file: path(&tls.key_file),
                server_name: (!tls.server_name.is_empty()).then(|| tls.server_name.clone()),
                enable_host_verification: tls.enable_host_verification,
            };
            if tls.enabled {
                settings
                    .check()
                    .map_err(|error| anyhow::anyhow!("{prefix}.tls: {error}"))?;
            }
            tls.enabled.then_some(settings)
        }
        None => None,
    };
    if sql.database_name.is_empty() {
        bail!("{prefix}.databaseName is required");
    }
    match sql.plugin_name.as_str() {
        "sqlite" => Ok(StoreConfig::Sqlite(base.join(&sql.database_name))),
        name if SqlPlugin::parse(name).is_some() => {
            let plugin = SqlPlugin::parse(name).expect("checked by the guard");
            if let Some(protocol) = &sql.connect_protocol
                && protocol != "tcp"
            {
                bail!("{prefix}.connectProtocol {protocol:?}: only tcp is supported");
            }
            let (host, port) = match sql.connect_addr.rsplit_once(':') {
                Some((host, port)) => (
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                    port.parse::<u16>()
                        .with_context(|| format!("{prefix}.connectAddr {:?}", sql.connect_addr))?,
                ),
                None if sql.connect_addr.is_empty() => bail!("{prefix}.connectAddr is required"),
                None => (sql.connect_addr.clone(), plugin.default_port()),
            };
            let defaults = SqlOptions::new(plugin);
            Ok(StoreConfig::Sql(Box::new(SqlOptions {
                host,
                port,
                user: sql.user.clone(),
                password: sql.password.clone(),
                database: sql.database_name.clone(),
                max_conns: sql.max_conns.unwrap_or(defaults.max_conns),
                max_conn_lifetime: match &sql.max_conn_lifetime {
                    Some(text) => duration(text, &format!("{prefix}.maxConnLifetime"))?,
                    None => defaults.max_conn_lifetime,
                },
                tls,
                ..defaults
            })))
        }
        "" => bail!("{prefix}.pluginName is required"),
        other => bail!(
            "{prefix}.pluginName {other:?}: Sundial supports postgres12, postgres12_pgx, mysql8 and sqlite"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTGRES: &str = r#"
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 8
  datastores:
    postgres-default:
      sql:
        pluginName: "postgres12"
        databaseName: "temporal"
        connectAddr: "127.0.0.1:5432"
        connectProtocol: "tcp"
        user: "temporal"
        password: "temporal"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: "1h"
    postgres-visibility:
      sql:
        pluginName: "postgres12_pgx"
        databaseName: "temporal_visibility"
        connectAddr: "127.0.0.1:5432"
        connectProtocol: "tcp"
        user: "temporal"
        password: "temporal"
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  pprof:
    port: 7936
  metrics:
    prometheus:
      framework: "tally"
      listenAddress: "127.0.0.1:8000"
services:
  frontend:
    rpc:
      grpcPort: 7300
      membershipPort: 6933
      bindOnLocalHost: true
      httpPort: 7243
  history:
    rpc:
      grpcPort: 7234
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "localhost:7233"
      httpAddress: "localhost:7243"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "dynamicconfig/development.yaml"
  pollInterval: "10s"
"#;

    #[test]
    fn sql_tls_settings_are_read_as_temporal_names_them() {
        let with_tls = |block: &str| {
            POSTGRES.replacen(
                "        maxConnLifetime: \"1h\"\n",
                &format!("        maxConnLifetime: \"1h\"\n        tls:\n{block}"),
                1,
            )
        };
        let text = with_tls(
            "          enabled: true\n          caFile: certs/ca.pem\n          certFile: /c.pem\n          keyFile: /c.key\n          serverName: db.internal\n          enableHostVerification: true\n          certData: ignored\n",
        );
        let config = ServerConfig::parse(&text, Path::new("/etc/temporal")).unwrap();
        let StoreConfig::Sql(store) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(
            store.tls,
            Some(sundial_persistence::SqlTls {
                // Relative to the working directory, as Temporal reads them.
                ca_file: Some(PathBuf::from("certs/ca.pem")),
                cert_file: Some(PathBuf::from("/c.pem")),
                key_file: Some(PathBuf::from("/c.key")),
                server_name: Some("db.internal".into()),
                enable_host_verification: true,
            })
        );
        assert!(
            config
                .ignored
                .contains(&"persistence.datastores.postgres-default.sql.tls.certData".to_string()),
            "{:?}",
            config.ignored
        );
        assert!(config.visibility.as_ref().unwrap().tls.is_none());

        let disabled = with_tls("          enabled: false\n          caFile: ca.pem\n");
        let config = ServerConfig::parse(&disabled, Path::new(".")).unwrap();
        let StoreConfig::Sql(store) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert!(store.tls.is_none());

        let half = with_tls("          enabled: true\n          certFile: c.pem\n");
        let error = ServerConfig::parse(&half, Path::new(".")).unwrap_err();
        assert!(
            format!("{error:#}").contains("no key (keyFile)"),
            "{error:#}"
        );
    }

    #[test]
    fn temporals_postgres_config_is_read() {
        let config = ServerConfig::parse(POSTGRES, Path::new("/etc/temporal")).unwrap();
        assert_eq!(config.num_history_shards, 8);
        assert_eq!(config.log_level, "warn");
        assert_eq!(
            (config.frontend_ip.as_str(), config.frontend_port),
            ("127.0.0.1", 7300)
        );
        let StoreConfig::Sql(store) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(
            (
                store.host.as_str(),
                store.port,
                store.database.as_str(),
                store.user.as_str()
            ),
            ("127.0.0.1", 5432, "temporal", "temporal")
        );
        assert_eq!(store.max_conns, 20);
        assert_eq!(store.max_conn_lifetime, Duration::from_secs(3600));
        assert_eq!(
            config.visibility.as_ref().unwrap().database,
            "temporal_visibility"
        );
        assert_eq!(
            config.metrics_address,
            Some("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            config.dynamic_config.as_deref(),
            Some("file:///etc/temporal/dynamicconfig/development.yaml")
        );
        for key in [
            "global.pprof",
            "global.metrics.prometheus.framework",
            "dcRedirectionPolicy",
            "persistence.datastores.postgres-default.sql.maxIdleConns",
        ] {
            assert!(
                config.ignored.iter().any(|k| k == key),
                "{key}: {:?}",
                config.ignored
            );
        }
    }

    #[test]
    fn temporals_mysql_config_is_read() {
        let text = POSTGRES
            .replace("pluginName: \"postgres12\"", "pluginName: \"mysql8\"")
            .replace("pluginName: \"postgres12_pgx\"", "pluginName: \"mysql8\"")
            .replace(
                "connectAddr: \"127.0.0.1:5432\"",
                "connectAddr: \"db.internal\"",
            )
            .replace("bindOnLocalHost: true", "bindOnIP: 10.1.2.3");
        let config = ServerConfig::parse(&text, Path::new(".")).unwrap();
        // Temporal's key is spelled bindOnIP, not bindOnIp.
        assert_eq!(config.frontend_ip, "10.1.2.3");
        assert!(
            !config.ignored.iter().any(|key| key.contains("bindOnIP")),
            "{:?}",
            config.ignored
        );
        let StoreConfig::Sql(store) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(store.plugin, SqlPlugin::Mysql);
        assert_eq!((store.host.as_str(), store.port), ("db.internal", 3306));
        assert_eq!(
            config.visibility.as_ref().map(|options| options.plugin),
            Some(SqlPlugin::Mysql)
        );
    }

    #[test]
    fn stores_sundial_lacks_and_bad_values_are_refused_clearly() {
        let cases = [
            (
                POSTGRES.replace(
                    "      sql:\n        pluginName: \"postgres12\"",
                    "      cassandra:\n        hosts: x\n      sqlx:\n        pluginName: \"postgres12\"",
                ),
                "Cassandra is not supported",
            ),
            (
                POSTGRES.replace("visibilityStore: postgres-visibility", "visibilityStore: es"),
                "names datastore \"es\"",
            ),
            (
                POSTGRES.replace("numHistoryShards: 8", "numHistoryShards: 0"),
                "at least 1",
            ),
            (
                POSTGRES.replace("pluginName: \"postgres12\"", "pluginName: \"oracle\""),
                "pluginName \"oracle\"",
            ),
            (
                POSTGRES.replace("maxConnLifetime: \"1h\"", "maxConnLifetime: \"soon\""),
                "maxConnLifetime",
            ),
            (format!("# enable-template\n{POSTGRES}"), "templated configs"),
        ];
        for (text, expected) in cases {
            let error = ServerConfig::parse(&text, Path::new(".")).unwrap_err();
            let message = format!("{error:#}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
        let elastic = POSTGRES.replace(
            "    postgres-visibility:\n      sql:",
            "    postgres-visibility:\n      elasticsearch:\n        version: v7\n      sqlx:",
        );
        let error = ServerConfig::parse(&elastic, Path::new(".")).unwrap_err();
        assert!(format!("{error:#}").contains("Elasticsearch is not supported"));
    }
}
