//! The operator's path on PostgreSQL and on MySQL, through the built binary: `sundial schema`
//! with temporal-sql-tool's command lines, `sundial server start --config-file` with a Temporal
//! config, a workflow that survives `kill -9`, and the refusals (no schema, another shard
//! count, a store Sundial lacks). Needs the servers of `scripts/postgres.sh` (`SUNDIAL_PG_*`)
//! and `scripts/mariadb.sh` (`SUNDIAL_MYSQL_*`).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sundial_proto::api::workflowservice::v1 as ws;
use sundial_proto::operatorservice::operator_service_client::OperatorServiceClient;

use sundial_persistence::{SqlOptions, SqlPlugin};

fn sundial() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sundial"))
}

/// `sundial schema <global flags> <args>` as an operator writes it; returns (ok, output).
fn schema(db: &SqlOptions, database: &str, args: &[&str]) -> (bool, String) {
    let output = sundial()
        .args(["schema", "--plugin", db.plugin.name(), "--ep", &db.host])
        .args(["-p", &db.port.to_string()])
        .args(["-u", &db.user, "--pw", &db.password, "--db", database])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(
    dir: &Path,
    db: &SqlOptions,
    database: &str,
    shards: u32,
    port: u16,
) -> std::path::PathBuf {
    // Temporal's sample configs name these plugins.
    let (main_plugin, visibility_plugin) = match db.plugin {
        SqlPlugin::Postgres => ("postgres12", "postgres12_pgx"),
        SqlPlugin::Mysql => ("mysql8", "mysql8"),
    };
    let text = format!(
        r#"log:
  stdout: true
  level: info
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: {shards}
  datastores:
    default:
      sql:
        pluginName: "{main_plugin}"
        databaseName: "{database}"
        connectAddr: "{host}:{pg_port}"
        connectProtocol: "tcp"
        user: "{user}"
        password: "{password}"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: "1h"
    visibility:
      sql:
        pluginName: "{visibility_plugin}"
        databaseName: "{database}_visibility"
        connectAddr: "{host}:{pg_port}"
        connectProtocol: "tcp"
        user: "{user}"
        password: "{password}"
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  pprof:
    port: 7936
services:
  frontend:
    rpc:
      grpcPort: {port}
      membershipPort: 6933
      bindOnIP: 127.0.0.1
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
      rpcAddress: "127.0.0.1:{port}"
"#,
        host = db.host,
        pg_port = db.port,
        user = db.user,
        password = db.password,
    );
    let path = dir.join(format!("config-{shards}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn_server(config: &Path, log: &Path) -> Child {
    sundial()
        .args(["server", "start", "--config-file"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Runs a server to its exit (it must refuse to start) and returns what it said.
fn refused(config: &Path) -> String {
    let output = sundial()
        .args(["server", "start", "--config-file"])
        .arg(config)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the server started");
    String::from_utf8_lossy(&output.stderr).to_string()
}

async fn connect_when_up(port: u16, child: &mut Child, log: &Path) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(client) = Client::connect(format!("http://127.0.0.1:{port}")).await {
            return client;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn operators_set_up_postgres_with_temporal_commands_and_workflows_survive_kill_9() {
    operators_set_up_with_temporal_commands_and_workflows_survive_kill_9(SqlPlugin::Postgres).await;
}

#[tokio::test]
async fn operators_set_up_mysql_with_temporal_commands_and_workflows_survive_kill_9() {
    operators_set_up_with_temporal_commands_and_workflows_survive_kill_9(SqlPlugin::Mysql).await;
}

async fn operators_set_up_with_temporal_commands_and_workflows_survive_kill_9(plugin: SqlPlugin) {
    let Some(db) = sundial_testkit::databases::server(plugin) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = sundial_testkit::databases::fresh_name("prod");
    let visibility = format!("{database}_visibility");
    let port = free_port();
    let config = write_config(dir.path(), &db, &database, 4, port);

    // Before any schema: the server says what to run.
    let (ok, _) = schema(&db, &database, &["create-database"]);
    assert!(ok);
    let (ok, _) = schema(&db, &visibility, &["create"]);
    assert!(ok);
    let message = refused(&config);
    assert!(message.contains("setup-schema -v 0.0"), "{message}");

    // Temporal's documented sequence, with Temporal's own schema directories named.
    for (name, dir_name) in [(&database, "temporal"), (&visibility, "visibility")] {
        let (ok, out) = schema(&db, name, &["setup-schema", "-v", "0.0"]);
        assert!(ok, "{out}");
        let schema_dir = match plugin {
            SqlPlugin::Postgres => format!("./schema/postgresql/v12/{dir_name}/versioned"),
            SqlPlugin::Mysql => format!("./schema/mysql/v8/{dir_name}/versioned"),
        };
        let (ok, out) = schema(&db, name, &["update-schema", "-d", &schema_dir]);
        let latest = if dir_name == "temporal" { "1.1" } else { "1.0" };
        assert!(ok && out.contains(&format!("now at {latest}")), "{out}");
        // Twice changes nothing.
        let (ok, out) = schema(&db, name, &["update-schema", "-d", &schema_dir]);
        assert!(ok && out.contains("latest"), "{out}");
    }
    let (ok, out) = schema(&db, &database, &["create-database"]);
    assert!(ok && out.contains("exists already"), "{out}");
    let (ok, out) = schema(
        &db,
        &database,
        &["update-schema", "--schema-name", "cassandra/temporal"],
    );
    assert!(!ok && out.contains("no Sundial schema is called"), "{out}");
    let other_dialect = match plugin {
        SqlPlugin::Postgres => "mysql/v8/temporal",
        SqlPlugin::Mysql => "postgresql/v12/temporal",
    };
    let (ok, out) = schema(
        &db,
        &database,
        &["update-schema", "--schema-name", other_dialect],
    );
    assert!(!ok && out.contains("is not for --plugin"), "{out}");

    let log = dir.path().join("server.log");
    let mut child = spawn_server(&config, &log);
    let mut client = connect_when_up(port, &mut child, &log).await;
    // `start` creates no namespace, as Temporal's does not.
    let error = client
        .start_workflow_execution(start_request("wf-prod", "q-prod"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    client
        .register_namespace(ws::RegisterNamespaceRequest {
            namespace: "default".into(),
            workflow_execution_retention_period: Some(sundial_proto::prost_types::Duration {
                seconds: 86_400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let run_id = start(&mut client, "wf-prod", "q-prod").await;
    let task = poll_workflow_task(&mut client, "q-prod").await;
    complete(&mut client, &task.task_token, vec![start_timer("t", 1_000)])
        .await
        .unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("global.pprof"),
        "unused keys are named: {log_text}"
    );

    // kill -9, then the same config again: the acknowledged timer fires after the restart.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = spawn_server(&config, &log);
    let mut client = connect_when_up(port, &mut child, &log).await;
    let task = poll_workflow_task(&mut client, "q-prod").await;
    assert_eq!(task.workflow_execution.as_ref().unwrap().run_id, run_id);
    complete(
        &mut client,
        &task.task_token,
        vec![complete_workflow("done")],
    )
    .await
    .unwrap();
    let events = history(&mut client, "wf-prod", &run_id).await;
    use sundial_proto::api::enums::v1::EventType as E;
    assert!(types(&events).contains(&E::TimerFired));
    assert_eq!(types(&events).last(), Some(&E::WorkflowExecutionCompleted));
    let operator = OperatorServiceClient::connect(format!("http://127.0.0.1:{port}")).await;
    assert!(operator.is_ok());
    child.kill().unwrap();
    child.wait().unwrap();

    // The shard count is fixed at the first start.
    let other_shards = write_config(dir.path(), &db, &database, 8, port);
    let message = refused(&other_shards);
    assert!(
        message.contains("created with 4 history shards"),
        "{message}"
    );

    // Stores Sundial does not have are refused at start with a clear message.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "    visibility:\n      sql:",
        "    visibility:\n      elasticsearch:\n        version: v7\n      unused:",
    );
    let elastic = dir.path().join("elastic.yaml");
    std::fs::write(&elastic, text).unwrap();
    let message = refused(&elastic);
    assert!(
        message.contains("Elasticsearch is not supported"),
        "{message}"
    );
}

#[tokio::test]
async fn operators_reach_postgres_over_tls_with_a_client_certificate() {
    operators_reach_the_database_over_tls(SqlPlugin::Postgres).await;
}

#[tokio::test]
async fn operators_reach_mysql_over_tls_with_a_client_certificate() {
    operators_reach_the_database_over_tls(SqlPlugin::Mysql).await;
}

/// `sundial schema --tls ...` and a config's `sql.tls`, against a server offering TLS with the
/// scripts' throwaway CA: a certificate from another CA is refused, the right one works, and
/// the connections are encrypted and show the client certificate (PostgreSQL: `pg_stat_ssl`;
/// MySQL: the user `sundial_tls` may log in only that way).
async fn operators_reach_the_database_over_tls(plugin: SqlPlugin) {
    let (Some(server), Some(certs)) = (
        sundial_testkit::databases::server(plugin),
        sundial_testkit::databases::tls_dir(plugin),
    ) else {
        return;
    };
    let db = match plugin {
        SqlPlugin::Postgres => server.clone(),
        SqlPlugin::Mysql => SqlOptions {
            user: "sundial_tls".into(),
            ..server.clone()
        },
    };
    let file = |name: &str| certs.join(name).display().to_string();
    let tls_flags = |ca: &str| {
        vec![
            "--tls".to_string(),
            "--tls-ca-file".into(),
            file(ca),
            "--tls-cert-file".into(),
            file("client.pem"),
            "--tls-key-file".into(),
            file("client.key"),
        ]
    };
    let run = |database: &str, flags: &[String], args: &[&str]| {
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        schema(&db, database, &all)
    };
    let database = sundial_testkit::databases::fresh_name("tls");
    let visibility = format!("{database}_visibility");

    // A CA that did not sign the server's certificate: refused, saying why.
    let (ok, out) = run(&database, &tls_flags("other-ca.pem"), &["create-database"]);
    assert!(!ok, "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    // Host verification off: PostgreSQL still checks the chain against a given CA (Temporal's
    // sslmode=require with sslrootcert), MySQL checks nothing (Temporal's InsecureSkipVerify);
    // without a CA, PostgreSQL encrypts without checking.
    let mut lenient = tls_flags("other-ca.pem");
    lenient.push("--tls-disable-host-verification".into());
    let (ok, out) = run(&database, &lenient, &["create-database"]);
    match plugin {
        SqlPlugin::Postgres => assert!(!ok && out.contains("UnknownIssuer"), "{out}"),
        SqlPlugin::Mysql => assert!(ok, "{out}"),
    }
    let unchecked: Vec<String> = ["--tls", "--tls-disable-host-verification"]
        .iter()
        .map(|flag| flag.to_string())
        .chain(tls_flags("ca.pem").into_iter().skip(3))
        .collect();
    let (ok, out) = run(&visibility, &unchecked, &["create-database"]);
    assert!(ok, "{out}");
    // A client certificate without its key is refused before connecting.
    let (ok, out) = run(
        &database,
        &["--tls".into(), "--tls-cert-file".into(), file("client.pem")],
        &["create-database"],
    );
    assert!(!ok && out.contains("no key"), "{out}");

    let flags = tls_flags("ca.pem");
    let (main_set, visibility_set) = match plugin {
        SqlPlugin::Postgres => ("postgresql/v12/temporal", "postgresql/v12/visibility"),
        SqlPlugin::Mysql => ("mysql/v8/temporal", "mysql/v8/visibility"),
    };
    for (name, set) in [(&database, main_set), (&visibility, visibility_set)] {
        for args in [
            vec!["create-database"],
            vec!["setup-schema", "-v", "0.0"],
            vec!["update-schema", "--schema-name", set],
        ] {
            let (ok, out) = run(name, &flags, &args);
            assert!(ok, "{args:?}: {out}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let plain = write_config(dir.path(), &db, &database, 4, port);
    let tls_block = format!(
        "        tls:\n          enabled: true\n          caFile: \"{}\"\n          certFile: \"{}\"\n          keyFile: \"{}\"\n          enableHostVerification: true\n",
        file("ca.pem"),
        file("client.pem"),
        file("client.key"),
    );
    let password_line = format!("        password: \"{}\"\n", db.password);
    let text = std::fs::read_to_string(&plain)
        .unwrap()
        .replace(&password_line, &format!("{password_line}{tls_block}"));
    let config = dir.path().join("tls.yaml");
    std::fs::write(&config, &text).unwrap();
    // The same file trusting the other CA does not start.
    let wrong = dir.path().join("wrong-ca.yaml");
    std::fs::write(&wrong, text.replace("ca.pem", "other-ca.pem")).unwrap();
    let message = refused(&wrong);
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    let log = dir.path().join("server.log");
    let mut child = spawn_server(&config, &log);
    let mut client = connect_when_up(port, &mut child, &log).await;
    client
        .register_namespace(ws::RegisterNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let run_id = start(&mut client, "wf-tls", "q-tls").await;
    let task = poll_workflow_task(&mut client, "q-tls").await;
    complete(&mut client, &task.task_token, vec![complete_workflow("ok")])
        .await
        .unwrap();
    let events = history(&mut client, "wf-tls", &run_id).await;
    use sundial_proto::api::enums::v1::EventType as E;
    assert_eq!(types(&events).last(), Some(&E::WorkflowExecutionCompleted));

    if plugin == SqlPlugin::Postgres {
        // Every connection of the server to its databases is encrypted and shows the client
        // certificate.
        let mut config = tokio_postgres::Config::new();
        config
            .host(&server.host)
            .port(server.port)
            .user(&server.user)
            .password(&server.password)
            .dbname("postgres");
        let (admin, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = admin
            .query(
                "SELECT s.ssl, coalesce(s.client_dn, '') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.datname IN ($1, $2) AND a.application_name = 'sundial'",
                &[&database, &visibility],
            )
            .await
            .unwrap();
        assert!(!rows.is_empty(), "the server holds connections");
        for row in rows {
            let (ssl, client_dn): (bool, String) = (row.get(0), row.get(1));
            assert!(ssl && client_dn.contains("CN=sundial"), "{ssl} {client_dn}");
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
