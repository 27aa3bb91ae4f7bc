//! etcd source against a real etcd on a free loopback port (spec §8, §13 scenarios 12–20, 28).
//! Needs an etcd binary: `scripts/install-etcd.sh` installs one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use parking_lot::Mutex;
use sundial_dynconfig::metrics::{
    OPERATION_DELETE, OPERATION_UPDATE, REASON_COMPACTED, REASON_STREAM_ENDED,
};
use sundial_dynconfig::settings::{FRONTEND_GLOBAL_RPS, FRONTEND_NAMESPACE_RPS, FRONTEND_RPS};
use sundial_dynconfig::{
    ChangeSet, ConstrainedValue, Constraints, DynamicConfig, EtcdConfig, EtcdSource, Metrics,
    Registry, Source, Subscription, Value,
};
use sundial_testkit::etcd::EtcdServer;
use sundial_testkit::wait_until;

const PREFIX: &str = "/sundial/test/";
const WAIT: Duration = Duration::from_secs(5);

fn config(server: &EtcdServer, seed: bool) -> EtcdConfig {
    let mut config = EtcdConfig::new(vec![server.endpoint()], PREFIX);
    config.seed_defaults = seed;
    config
}

async fn start(server: &EtcdServer, seed: bool) -> EtcdSource {
    EtcdSource::connect(
        config(server, seed),
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await
    .expect("connect etcd source")
}

async fn client(server: &EtcdServer) -> Client {
    Client::connect([server.client_url()], None).await.unwrap()
}

fn record(source: &EtcdSource) -> (Arc<Mutex<Vec<ChangeSet>>>, Subscription) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let subscription = source
        .state()
        .subscribe(move |changes| sink.lock().push(changes.clone()));
    (seen, subscription)
}

fn int_of(source: &EtcdSource, key: &str) -> Option<i64> {
    match source.get_value(key).first().map(|entry| &entry.value) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

#[tokio::test]
async fn bulk_load_live_update_delete_and_bad_value() {
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    for (key, value) in [
        ("frontend.rps", 100),
        ("frontend.globalRPS", 200),
        ("limit.blobSize.error", 300),
    ] {
        etcd.put(
            format!("{PREFIX}{key}"),
            format!("- value: {value}\n"),
            None,
        )
        .await
        .unwrap();
    }
    let source = Arc::new(start(&server, false).await);
    let metrics = source.state().metrics().clone();
    // Scenario 12: bulk load.
    assert_eq!(int_of(&source, "frontend.rps"), Some(100));
    assert_eq!(int_of(&source, "frontend.globalrps"), Some(200));
    assert_eq!(int_of(&source, "limit.blobSize.error"), Some(300));
    assert_eq!(metrics.keys_loaded.get(), 3);
    assert_eq!(metrics.load_duration.get_sample_count(), 1);
    wait_until(WAIT, "watch active", || metrics.watch_active.get() == 1).await;

    let (seen, _subscription) = record(&source);
    let rps = DynamicConfig::new(source.clone()).handle(&FRONTEND_RPS);

    // Scenario 13: a put with etcdctl reaches subscribers within a second.
    let started = Instant::now();
    server.etcdctl(&[
        "put",
        "--",
        &format!("{PREFIX}frontend.rps"),
        "- value: 999",
    ]);
    wait_until(Duration::from_secs(1), "live update", || {
        rps.get_global() == 999
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    wait_until(WAIT, "callback", || seen.lock().len() == 1).await;
    assert_eq!(
        seen.lock()[0].keys().collect::<Vec<_>>(),
        vec!["frontend.rps"]
    );
    assert_eq!(metrics.key_updates(OPERATION_UPDATE, "frontend.rps"), 1);

    // Scenario 15: a malformed value keeps the last good entries, no callback, no count.
    server.etcdctl(&[
        "put",
        "--",
        &format!("{PREFIX}frontend.rps"),
        "- value: [unclosed",
    ]);
    server.etcdctl(&[
        "put",
        "--",
        &format!("{PREFIX}limit.blobSize.error"),
        "- value: 301",
    ]);
    wait_until(WAIT, "later put applied", || {
        int_of(&source, "limit.blobSize.error") == Some(301)
    })
    .await;
    assert_eq!(rps.get_global(), 999);
    assert_eq!(seen.lock().len(), 2);
    assert!(!seen.lock()[1].contains_key("frontend.rps"));
    assert_eq!(metrics.key_updates(OPERATION_UPDATE, "frontend.rps"), 1);

    // Scenario 14: a delete reverts to the compiled default and notifies `None`.
    server.etcdctl(&["del", &format!("{PREFIX}frontend.rps")]);
    wait_until(WAIT, "delete applied", || rps.get_global() == 2400).await;
    wait_until(WAIT, "delete callback", || seen.lock().len() == 3).await;
    assert_eq!(seen.lock()[2].get("frontend.rps"), Some(&None));
    assert_eq!(metrics.key_updates(OPERATION_DELETE, "frontend.rps"), 1);

    source.stop().await;
    assert_eq!(metrics.watch_active.get(), 0);
}

#[tokio::test]
async fn compaction_recovery_publishes_the_net_change() {
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    for key in ["frontend.rps", "frontend.globalRPS", "limit.blobSize.warn"] {
        etcd.put(format!("{PREFIX}{key}"), "- value: 1\n", None)
            .await
            .unwrap();
    }
    let source = start(&server, false).await;
    let metrics = source.state().metrics().clone();
    wait_until(WAIT, "watch active", || metrics.watch_active.get() == 1).await;
    let (seen, _subscription) = record(&source);

    source.pause_watch(true);
    wait_until(WAIT, "watch closed", || metrics.watch_active.get() == 0).await;
    for value in 2..=6 {
        etcd.put(
            format!("{PREFIX}frontend.rps"),
            format!("- value: {value}\n"),
            None,
        )
        .await
        .unwrap();
    }
    etcd.delete(format!("{PREFIX}limit.blobSize.warn"), None)
        .await
        .unwrap();
    let current = etcd
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    etcd.compact(
        current,
        Some(etcd_client::CompactionOptions::new().with_physical()),
    )
    .await
    .unwrap();
    source.pause_watch(false);

    wait_until(WAIT, "compacted reconnect", || {
        metrics.reconnects(REASON_COMPACTED) == 1
    })
    .await;
    wait_until(WAIT, "watch active again", || {
        metrics.watch_active.get() == 1
    })
    .await;
    wait_until(WAIT, "net change published", || !seen.lock().is_empty()).await;
    let changes = seen.lock().clone();
    assert_eq!(changes.len(), 1, "one reload, one change-set: {changes:?}");
    assert_eq!(changes[0].len(), 2);
    assert_eq!(changes[0].get("limit.blobsize.warn"), Some(&None));
    assert_eq!(int_of(&source, "frontend.rps"), Some(6));
    assert_eq!(metrics.reconnects(REASON_STREAM_ENDED), 0);

    // The map equals etcd exactly.
    let all = etcd
        .get(PREFIX, Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let mut in_etcd: Vec<String> = all
        .kvs()
        .iter()
        .map(|kv| {
            kv.key_str()
                .unwrap()
                .trim_start_matches(PREFIX)
                .to_lowercase()
        })
        .collect();
    in_etcd.sort();
    let mut in_source: Vec<String> = source.dump_all().into_keys().collect();
    in_source.sort();
    assert_eq!(in_source, in_etcd);
    source.stop().await;
}

#[tokio::test]
async fn seeding_never_overwrites() {
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    etcd.put(
        format!("{PREFIX}frontend.globalRPS"),
        "- value: 1234\n",
        None,
    )
    .await
    .unwrap();
    etcd.put(
        format!("{PREFIX}limit.blobSize.warn"),
        "- value: [broken",
        None,
    )
    .await
    .unwrap();
    let source = start(&server, true).await;
    let config = DynamicConfig::new(Arc::new(source));
    assert_eq!(config.handle(&FRONTEND_GLOBAL_RPS).get_global(), 1234);
    assert_eq!(
        int_of_dyn(&config, "frontend.rps"),
        Some(2400),
        "missing default seeded"
    );
    let stored = etcd
        .get(format!("{PREFIX}limit.blobSize.warn"), None)
        .await
        .unwrap();
    assert_eq!(
        stored.kvs()[0].value_str().unwrap(),
        "- value: [broken",
        "unparsable key counts as present"
    );
    config.source().stop().await;

    let before = etcd
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let again = start(&server, true).await;
    let after = etcd
        .get("x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    assert_eq!(before, after, "a second start writes nothing");
    again.stop().await;
}

fn int_of_dyn(config: &DynamicConfig, key: &str) -> Option<i64> {
    match config
        .source()
        .get_value(key)
        .first()
        .map(|entry| &entry.value)
    {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

#[tokio::test]
async fn write_config_round_trip_and_failure() {
    let mut server = EtcdServer::start();
    let mut etcd = client(&server).await;
    etcd.put(
        format!("{PREFIX}FRONTEND.NAMESPACERPS"),
        "- value: 1\n",
        None,
    )
    .await
    .unwrap();
    let source = Arc::new(start(&server, false).await);
    let metrics = source.state().metrics().clone();
    let (seen, _subscription) = record(&source);
    let entries = vec![
        ConstrainedValue::new(Constraints::namespace("A"), Value::Int(500)),
        ConstrainedValue::global(Value::Int(2400)),
    ];
    source
        .write_config("frontend.namespacerps", entries.clone())
        .await
        .unwrap();
    // Visible at once, in the canonical spelling; the other spelling is gone.
    assert_eq!(source.get_value("frontend.namespaceRPS").to_vec(), entries);
    let stored = etcd
        .get(format!("{PREFIX}frontend.namespaceRPS"), None)
        .await
        .unwrap();
    let text = stored.kvs()[0].value_str().unwrap().to_string();
    assert!(text.contains("namespace: A"), "{text}");
    assert!(
        etcd.get(format!("{PREFIX}FRONTEND.NAMESPACERPS"), None)
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    assert_eq!(metrics.write_count("success"), 1);
    let handle = DynamicConfig::new(source.clone()).handle(&FRONTEND_NAMESPACE_RPS);
    assert_eq!(handle.get_namespace("A"), 500);
    assert_eq!(seen.lock().len(), 1);
    // The watch echo of our own write gives no second callback: prove the echo arrived by
    // writing another key afterwards and waiting for that.
    server.etcdctl(&["put", "--", &format!("{PREFIX}frontend.rps"), "- value: 7"]);
    wait_until(WAIT, "later key", || {
        int_of(&source, "frontend.rps") == Some(7)
    })
    .await;
    assert_eq!(seen.lock().len(), 2);

    // Invalid writes are refused before anything is written.
    let bad = source
        .write_config(
            "frontend.rps",
            vec![ConstrainedValue::global(Value::String("x".into()))],
        )
        .await;
    assert!(
        matches!(bad, Err(sundial_dynconfig::Error::InvalidArgument(_))),
        "{bad:?}"
    );
    assert_eq!(metrics.write_count("error"), 1);

    // Scenario 19: etcd down → error within 5s, map unchanged.
    server.kill();
    let started = Instant::now();
    let result = source
        .write_config(
            "frontend.rps",
            vec![ConstrainedValue::global(Value::Int(8))],
        )
        .await;
    assert!(result.is_err());
    assert!(
        started.elapsed() <= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(metrics.write_count("error"), 2);
    assert_eq!(int_of(&source, "frontend.rps"), Some(7));
    source.stop().await;
}

#[tokio::test]
async fn kill_and_restart_under_a_live_watch() {
    let mut server = EtcdServer::start();
    let source = start(&server, false).await;
    let metrics = source.state().metrics().clone();
    wait_until(WAIT, "watch active", || metrics.watch_active.get() == 1).await;

    server.kill();
    wait_until(Duration::from_secs(10), "stream ended", || {
        metrics.reconnects(REASON_STREAM_ENDED) >= 1
    })
    .await;
    assert_eq!(metrics.watch_active.get(), 0);
    server.restart();
    client(&server)
        .await
        .put(format!("{PREFIX}frontend.rps"), "- value: 77\n", None)
        .await
        .unwrap();
    wait_until(Duration::from_secs(40), "update after restart", || {
        int_of(&source, "frontend.rps") == Some(77)
    })
    .await;
    wait_until(WAIT, "watch active again", || {
        metrics.watch_active.get() == 1
    })
    .await;

    // Scenario 28: stop during a reconnect backoff returns promptly.
    server.kill();
    wait_until(Duration::from_secs(10), "watch down", || {
        metrics.watch_active.get() == 0
    })
    .await;
    let started = Instant::now();
    source.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(metrics.watch_active.get(), 0);
}

#[tokio::test]
async fn startup_fails_fast_without_etcd() {
    let port = sundial_testkit::free_port();
    let config = EtcdConfig::new(vec![format!("127.0.0.1:{port}")], PREFIX);
    let started = Instant::now();
    let result = EtcdSource::connect(
        config,
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await;
    let error = result.err().expect("no etcd: construction must fail");
    assert!(error.to_string().contains("3 attempts"), "{error}");
    // Two backoffs (2s, 4s) separate the three attempts.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// The deployment example's mutual TLS: certificates from deploy/etcd/gen-certs.sh, an etcd
/// that requires client certificates, and a source configured with CA, cert and key.
#[tokio::test]
async fn mutual_tls_with_the_deploy_example_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/etcd/gen-certs.sh"
    );
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(certs.path())
        .status()
        .expect("run gen-certs.sh (needs openssl)");
    assert!(status.success());
    let server = EtcdServer::start_with_tls(Some(certs.path().to_path_buf()));
    server.etcdctl(&[
        "put",
        "--",
        &format!("{PREFIX}frontend.rps"),
        "- value: 321",
    ]);

    let file = |name: &str| certs.path().join(name).to_string_lossy().to_string();
    let mut config = EtcdConfig::new(vec![server.endpoint()], PREFIX);
    config.seed_defaults = false;
    config.disable_tls = false;
    config.client_tls_ca_cert_file = file("ca.crt");
    config.client_tls_cert_file = file("client.crt");
    config.client_tls_key_file = file("client.key");
    config.tls_server_name = "localhost".into();
    let source = EtcdSource::connect(
        config.clone(),
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await
    .expect("connect over mutual TLS");
    assert_eq!(int_of(&source, "frontend.rps"), Some(321));
    server.etcdctl(&[
        "put",
        "--",
        &format!("{PREFIX}frontend.rps"),
        "- value: 322",
    ]);
    wait_until(WAIT, "update over TLS", || {
        int_of(&source, "frontend.rps") == Some(322)
    })
    .await;
    source.stop().await;

    // A client certificate from another CA is refused: construction fails.
    let strangers = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(strangers.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut stranger = config;
    stranger.client_tls_cert_file = strangers
        .path()
        .join("client.crt")
        .to_string_lossy()
        .to_string();
    stranger.client_tls_key_file = strangers
        .path()
        .join("client.key")
        .to_string_lossy()
        .to_string();
    let refused = EtcdSource::connect(
        stranger,
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await;
    assert!(refused.is_err());
}
