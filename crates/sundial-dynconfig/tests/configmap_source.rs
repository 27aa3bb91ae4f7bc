//! ConfigMap source against the in-process fake API server (spec §9, §13 scenarios 21–26).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sundial_dynconfig::configmap::MAX_DOCUMENT_BYTES;
use sundial_dynconfig::etcd::DEFAULTS_DOCUMENT;
use sundial_dynconfig::load::parse_document;
use sundial_dynconfig::metrics::{
    OPERATION_UPDATE, REASON_ERROR, REASON_GONE, REASON_STREAM_ENDED,
};
use sundial_dynconfig::{
    ChangeSet, ConfigMapConfig, ConfigMapSource, ConstrainedValue, Constraints, Metrics, Registry,
    Source, Subscription, Value,
};
use sundial_testkit::fake_kube::FakeKube;
use sundial_testkit::wait_until;

const NS: &str = "temporal";
const NAME: &str = "sundial-dynamic-config";
const KEY: &str = "config.yaml";
const WAIT: Duration = Duration::from_secs(5);

fn config(fake: &FakeKube) -> ConfigMapConfig {
    ConfigMapConfig {
        namespace: NS.into(),
        cluster_url: fake.url(),
        ..ConfigMapConfig::default()
    }
}

async fn start(config: ConfigMapConfig) -> ConfigMapSource {
    ConfigMapSource::connect(
        config,
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await
    .expect("start ConfigMap source")
}

fn record(source: &ConfigMapSource) -> (Arc<Mutex<Vec<ChangeSet>>>, Subscription) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let subscription = source
        .state()
        .subscribe(move |changes| sink.lock().push(changes.clone()));
    (seen, subscription)
}

fn int_of(source: &ConfigMapSource, key: &str) -> Option<i64> {
    match source.get_value(key).first().map(|entry| &entry.value) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

fn default_key_count() -> usize {
    parse_document(DEFAULTS_DOCUMENT, &Registry::builtin())
        .unwrap()
        .keys
        .len()
}

#[tokio::test]
async fn creates_missing_configmap_with_defaults() {
    let fake = FakeKube::start().await;
    let source = start(config(&fake)).await;
    assert_eq!(fake.data(NS, NAME, KEY).as_deref(), Some(DEFAULTS_DOCUMENT));
    assert_eq!(
        source.state().metrics().keys_loaded.get(),
        default_key_count() as i64
    );
    wait_until(WAIT, "watch request", || !fake.watch_requests().is_empty()).await;
    let log = fake.requests();
    assert!(
        log[0].starts_with(&format!("GET /api/v1/namespaces/{NS}/configmaps/{NAME}"))
            && log[0].ends_with("404"),
        "{log:?}"
    );
    assert!(
        log[1].starts_with(&format!("POST /api/v1/namespaces/{NS}/configmaps"))
            && log[1].ends_with("201"),
        "{log:?}"
    );
    let watch = &fake.watch_requests()[0];
    assert!(
        watch.contains("fieldSelector=metadata.name%3D")
            || watch.contains("fieldSelector=metadata.name="),
        "{watch}"
    );
    source.stop().await;
}

#[tokio::test]
async fn seeding_keeps_existing_text_byte_for_byte() {
    let fake = FakeKube::start().await;
    let original = "# owned by ops\nfrontend.globalRPS:\n  - value: 1234 # tuned in March\n";
    fake.set_data(NS, NAME, KEY, original);
    let rv_before = fake.resource_version();
    let source = start(config(&fake)).await;
    let text = fake.data(NS, NAME, KEY).unwrap();
    assert!(text.starts_with(original), "{text}");
    assert!(text.len() > original.len());
    assert_eq!(int_of(&source, "frontend.globalRPS"), Some(1234));
    assert_eq!(int_of(&source, "frontend.rps"), Some(2400));
    let puts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT "))
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(fake.resource_version(), rv_before + 1, "exactly one write");
    source.stop().await;
}

#[tokio::test]
async fn live_edit_410_recovery_and_resync() {
    let fake = FakeKube::start().await;
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 1\nfrontend.globalRPS:\n  - value: 2\n",
    );
    let mut cfg = config(&fake);
    cfg.seed_defaults = false;
    cfg.resync_interval = Duration::from_secs(1);
    let source = start(cfg).await;
    let metrics = source.state().metrics().clone();
    let (seen, _subscription) = record(&source);
    wait_until(WAIT, "watch active", || metrics.watch_active.get() == 1).await;

    // Scenario 23: another client edits one key.
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 10\nfrontend.globalRPS:\n  - value: 2\n",
    );
    wait_until(Duration::from_secs(1), "live edit", || {
        int_of(&source, "frontend.rps") == Some(10)
    })
    .await;
    assert_eq!(seen.lock().len(), 1);
    assert_eq!(
        seen.lock()[0].keys().collect::<Vec<_>>(),
        vec!["frontend.rps"]
    );
    assert_eq!(metrics.key_updates(OPERATION_UPDATE, "frontend.rps"), 1);
    assert_eq!(
        source.resource_version(),
        fake.resource_version().to_string()
    );

    // Scenario 24: compaction, one more edit, and a forced re-watch → 410 → relist.
    fake.compact();
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 11\nfrontend.globalRPS:\n  - value: 2\n",
    );
    wait_until(WAIT, "edit delivered", || {
        int_of(&source, "frontend.rps") == Some(11)
    })
    .await;
    fake.drop_next_events(1);
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 12\nfrontend.globalRPS:\n  - value: 2\n",
    );
    fake.compact();
    fake.close_watches(false);
    wait_until(WAIT, "gone reconnect", || {
        metrics.reconnects(REASON_GONE) == 1
    })
    .await;
    wait_until(WAIT, "relisted edit", || {
        int_of(&source, "frontend.rps") == Some(12)
    })
    .await;
    let updates = metrics.key_updates(OPERATION_UPDATE, "frontend.rps");
    assert_eq!(updates, 3, "each edit delivered once");
    wait_until(WAIT, "re-watch at the relist RV", || {
        fake.watch_requests()
            .last()
            .is_some_and(|w| w.contains(&format!("resourceVersion={}", fake.resource_version())))
    })
    .await;

    // Scenario 25: a dropped MODIFIED event is repaired by the periodic resync.
    let reconnects_before = metrics.reconnects(REASON_GONE) + metrics.reconnects(REASON_ERROR);
    fake.drop_next_events(1);
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 13\nfrontend.globalRPS:\n  - value: 2\n",
    );
    wait_until(Duration::from_secs(3), "resync repaired", || {
        int_of(&source, "frontend.rps") == Some(13)
    })
    .await;
    assert_eq!(
        metrics.reconnects(REASON_GONE) + metrics.reconnects(REASON_ERROR),
        reconnects_before
    );

    // A watch closed normally is re-opened at once from the last RV.
    let stream_ended = metrics.reconnects(REASON_STREAM_ENDED);
    fake.close_watches(true);
    wait_until(WAIT, "stream_ended counted", || {
        metrics.reconnects(REASON_STREAM_ENDED) == stream_ended + 1
    })
    .await;
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 14\nfrontend.globalRPS:\n  - value: 2\n",
    );
    wait_until(WAIT, "edit after re-watch", || {
        int_of(&source, "frontend.rps") == Some(14)
    })
    .await;

    // An invalid document keeps the old map and notifies nothing.
    let callbacks = seen.lock().len();
    fake.set_data(NS, NAME, KEY, "frontend.rps: [\n");
    wait_until(WAIT, "failure gauge", || metrics.load_failure.get() == 1).await;
    assert_eq!(int_of(&source, "frontend.rps"), Some(14));
    assert_eq!(seen.lock().len(), callbacks);

    // Deleting the object keeps the last good map.
    fake.delete(NS, NAME);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(int_of(&source, "frontend.rps"), Some(14));
    source.stop().await;
    assert_eq!(metrics.watch_active.get(), 0);
}

#[tokio::test]
async fn write_config_retries_on_conflict() {
    let fake = FakeKube::start().await;
    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps:\n  - value: 1\nlimit.blobSize.warn:\n  - value: 5\n",
    );
    let mut cfg = config(&fake);
    cfg.seed_defaults = false;
    let source = start(cfg).await;
    let metrics = source.state().metrics().clone();
    let (seen, _subscription) = record(&source);
    fake.conflict_next_puts(1);
    let entries = vec![
        ConstrainedValue::new(Constraints::namespace("A"), Value::Int(500)),
        ConstrainedValue::global(Value::Int(2400)),
    ];
    source
        .write_config("FRONTEND.NAMESPACERPS", entries.clone())
        .await
        .unwrap();
    assert_eq!(metrics.write_count("success"), 1);
    assert_eq!(source.get_value("frontend.namespaceRPS").to_vec(), entries);
    let puts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT "))
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(
        puts[0].ends_with("409") && puts[1].ends_with("200"),
        "{puts:?}"
    );
    let stored = fake.data(NS, NAME, KEY).unwrap();
    let parsed = parse_document(&stored, &Registry::builtin()).unwrap();
    let names: Vec<&str> = parsed.keys.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "frontend.namespaceRPS",
            "frontend.rps",
            "limit.blobSize.warn"
        ]
    );
    assert_eq!(int_of(&source, "limit.blobSize.warn"), Some(5));
    // The watch echo of our own write publishes nothing more.
    fake.set_data(NS, NAME, "unrelated", "x");
    wait_until(WAIT, "echo processed", || {
        source.resource_version() == fake.resource_version().to_string()
    })
    .await;
    assert_eq!(seen.lock().len(), 1);

    // Too large a document is refused without writing.
    let huge = "x".repeat(MAX_DOCUMENT_BYTES);
    let result = source
        .write_config(
            "frontend.namespaceRPS",
            vec![ConstrainedValue::new(
                Constraints::namespace(huge),
                Value::Int(1),
            )],
        )
        .await;
    assert!(result.is_err());
    assert_eq!(metrics.write_count("error"), 1);
    source.stop().await;
}

#[tokio::test]
async fn startup_failures() {
    let fake = FakeKube::start().await;
    fake.set_forbidden(true);
    let forbidden = ConfigMapSource::connect(
        config(&fake),
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await;
    assert!(forbidden.is_err());
    fake.set_forbidden(false);

    fake.set_data(
        NS,
        NAME,
        KEY,
        "frontend.rps: [{value: 1, constraints: {color: blue}}]\n",
    );
    let invalid = ConfigMapSource::connect(
        config(&fake),
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await;
    let error = invalid.err().expect("an invalid document fails startup");
    assert!(error.to_string().contains("color"), "{error}");

    let mut no_create = config(&fake);
    no_create.name = "absent".into();
    no_create.create_if_missing = false;
    assert!(
        ConfigMapSource::connect(
            no_create,
            Arc::new(Registry::builtin()),
            Metrics::unregistered()
        )
        .await
        .is_err()
    );
    assert!(fake.get(NS, "absent").is_none());
}

#[tokio::test]
async fn api_server_errors_reconnect_with_backoff() {
    let fake = FakeKube::start().await;
    fake.set_data(NS, NAME, KEY, "frontend.rps:\n  - value: 1\n");
    let mut cfg = config(&fake);
    cfg.seed_defaults = false;
    let source = start(cfg).await;
    let metrics = source.state().metrics().clone();
    wait_until(WAIT, "watch active", || metrics.watch_active.get() == 1).await;
    // kube retries 503 and 429 by itself; a 500 reaches the source.
    fake.fail_next(3, 500, None);
    fake.close_watches(false);
    fake.set_data(NS, NAME, KEY, "frontend.rps:\n  - value: 2\n");
    wait_until(WAIT, "recovered", || {
        int_of(&source, "frontend.rps") == Some(2)
    })
    .await;
    wait_until(WAIT, "error reconnect", || {
        metrics.reconnects(REASON_ERROR) >= 1
    })
    .await;
    source.stop().await;
}

/// Callbacks run without source locks: a callback may call back into the source.
#[tokio::test]
async fn callbacks_may_call_into_the_source() {
    let fake = FakeKube::start().await;
    fake.set_data(NS, NAME, KEY, "frontend.rps:\n  - value: 1\n");
    let mut cfg = config(&fake);
    cfg.seed_defaults = false;
    let source = Arc::new(start(cfg).await);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (sink, inner) = (seen.clone(), Arc::downgrade(&source));
    let _subscription = source.state().subscribe(move |_| {
        if let Some(source) = inner.upgrade() {
            sink.lock().push(source.resource_version());
        }
    });
    fake.set_data(NS, NAME, KEY, "frontend.rps:\n  - value: 2\n");
    wait_until(WAIT, "callback ran", || seen.lock().len() == 1).await;
    assert_eq!(seen.lock()[0], fake.resource_version().to_string());
    source.stop().await;
}
