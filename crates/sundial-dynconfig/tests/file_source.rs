//! File source: inotify-driven reloads, last-good on bad edits (spec §7, §13 scenarios 8–10).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use sundial_dynconfig::settings::FRONTEND_RPS;
use sundial_dynconfig::{ChangeSet, DynamicConfig, FileSource, Metrics, Registry, Source};
use sundial_testkit::wait_until;

const WAIT: Duration = Duration::from_secs(5);

/// Writes `text` and moves the mtime one second past the previous one, so the "strictly
/// newer mtime" rule never depends on the file system's timestamp granularity.
fn write(path: &Path, text: &str) {
    let previous = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    std::fs::write(path, text).unwrap();
    let mtime = previous.map_or_else(SystemTime::now, |p| p + Duration::from_secs(1));
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(mtime).unwrap();
}

async fn open(
    path: &Path,
) -> (
    FileSource,
    Arc<Mutex<Vec<ChangeSet>>>,
    sundial_dynconfig::Subscription,
) {
    let source = FileSource::open(path, Arc::new(Registry::builtin()), Metrics::unregistered())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let subscription = source
        .state()
        .subscribe(move |changes| sink.lock().push(changes.clone()));
    (source, seen, subscription)
}

#[tokio::test]
async fn edit_is_pushed_and_bad_edit_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dc.yaml");
    write(&path, "frontend.rps:\n  - value: 100\n");
    let (source, seen, _subscription) = open(&path).await;
    let config = DynamicConfig::new(Arc::new(source));
    let rps = config.handle(&FRONTEND_RPS);
    assert_eq!(rps.get_global(), 100);
    let metrics = config.source().state().metrics().clone();
    assert_eq!(metrics.keys_loaded.get(), 1);
    assert_eq!(metrics.watch_active.get(), 1);

    // A valid edit with an unknown key: applied (warnings do not block), one callback.
    write(
        &path,
        "frontend.rps:\n  - value: 200\nno.such.setting:\n  - value: 1\n",
    );
    wait_until(WAIT, "edit applied", || rps.get_global() == 200).await;
    wait_until(WAIT, "callback", || seen.lock().len() == 1).await;
    assert!(seen.lock()[0].contains_key("frontend.rps"));
    assert_eq!(metrics.load_failure.get(), 0);

    // A load error: old values stay, failure gauge 1, no callback.
    write(
        &path,
        "frontend.rps:\n  - value: 300\n    constraints: {color: blue}\n",
    );
    wait_until(WAIT, "failure gauge", || metrics.load_failure.get() == 1).await;
    assert_eq!(rps.get_global(), 200);
    assert_eq!(seen.lock().len(), 1);

    // Fixing the file applies it.
    write(&path, "frontend.rps:\n  - value: 400\n");
    wait_until(WAIT, "fixed edit applied", || rps.get_global() == 400).await;
    assert_eq!(metrics.load_failure.get(), 0);

    // Reordering entries is no change: no callback.
    write(
        &path,
        "frontend.rps:\n  - value: 400\n  - value: 1\n    constraints: {namespace: a}\n",
    );
    wait_until(WAIT, "two entries", || {
        config.source().get_value("frontend.rps").len() == 2
    })
    .await;
    let callbacks = seen.lock().len();
    let loads = metrics.load_duration.get_sample_count();
    write(
        &path,
        "frontend.rps:\n  - value: 1\n    constraints: {namespace: a}\n  - value: 400\n",
    );
    wait_until(WAIT, "reordered list loaded", || {
        metrics.load_duration.get_sample_count() > loads
    })
    .await;
    assert_eq!(seen.lock().len(), callbacks, "reordering must not notify");

    config.source().stop().await;
    assert_eq!(metrics.watch_active.get(), 0);
    write(&path, "frontend.rps:\n  - value: 500\n");
    // After stop nothing may change; give the (stopped) watcher a moment it would have used.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rps.get_global(), 400);
}

#[tokio::test]
async fn same_broken_file_is_not_reparsed_until_mtime_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dc.yaml");
    write(&path, "frontend.rps: [{value: 1}]\n");
    let (source, _seen, _subscription) = open(&path).await;
    let metrics = source.state().metrics().clone();
    write(&path, "frontend.rps: [\n");
    wait_until(WAIT, "failure", || metrics.load_failure.get() == 1).await;
    // Touch the file without moving the mtime forward: it must not be re-read.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "frontend.rps: [{value: 2}]\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // Nothing to wait on for an absence; give the watcher time it would have used.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        source.get_value("frontend.rps")[0].value,
        sundial_dynconfig::Value::Int(1)
    );
    write(&path, "frontend.rps: [{value: 3}]\n");
    wait_until(WAIT, "newer mtime applied", || {
        source.get_value("frontend.rps")[0].value == sundial_dynconfig::Value::Int(3)
    })
    .await;
    source.stop().await;
}

#[tokio::test]
async fn replaced_by_rename_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dc.yaml");
    write(&path, "frontend.rps: [{value: 1}]\n");
    let (source, _seen, _subscription) = open(&path).await;
    let staging = dir.path().join("dc.yaml.tmp");
    write(&staging, "frontend.rps: [{value: 7}]\n");
    let later = std::fs::metadata(&path).unwrap().modified().unwrap() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&staging)
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::rename(&staging, &path).unwrap();
    wait_until(WAIT, "renamed file applied", || {
        source.get_value("frontend.rps")[0].value == sundial_dynconfig::Value::Int(7)
    })
    .await;
    source.stop().await;
}

#[tokio::test]
async fn startup_fails_on_missing_or_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = FileSource::open(
        dir.path().join("nope.yaml"),
        Arc::new(Registry::builtin()),
        Metrics::unregistered(),
    )
    .await;
    assert!(missing.is_err());
    let bad = dir.path().join("bad.yaml");
    write(
        &bad,
        "frontend.rps: [{value: 1, constraints: {color: blue}}]\n",
    );
    let error = FileSource::open(&bad, Arc::new(Registry::builtin()), Metrics::unregistered())
        .await
        .err()
        .expect("bad file must fail construction");
    assert!(error.to_string().contains("color"), "{error}");
}

#[tokio::test]
async fn write_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dc.yaml");
    write(&path, "");
    let (source, _seen, _subscription) = open(&path).await;
    assert!(matches!(
        source.write_config("frontend.rps", vec![]).await,
        Err(sundial_dynconfig::Error::Unsupported)
    ));
    assert_eq!(source.state().metrics().write_count("error"), 1);
    source.stop().await;
}
