//! The file source (spec §7), watched with inotify through `notify` instead of polled.
//!
//! The parent directory is watched, so editors that replace the file by rename are seen.
//! A change is loaded only when the file's mtime is strictly after the last recorded one;
//! a bad edit keeps the last good map and records the mtime, so the same broken file is
//! not parsed again until it changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::constraints::ConstrainedValue;
use crate::load::parse_document;
use crate::metrics::Metrics;
use crate::setting::{Registry, normalize_key};
use crate::source::{ConfigEntries, Error, KeyEntry, Source, SourceState};

/// Events closer together than this are handled as one change (an editor's truncate and
/// write, or a rename pair).
const DEBOUNCE: Duration = Duration::from_millis(50);

pub struct FileSource {
    path: PathBuf,
    state: Arc<SourceState>,
    stop_sender: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Loader {
    path: PathBuf,
    state: Arc<SourceState>,
    last_mtime: Option<SystemTime>,
}

impl FileSource {
    /// Loads the file (any error fails construction, like Temporal) and starts watching it.
    /// Needs a Tokio runtime.
    pub async fn open(
        path: impl AsRef<Path>,
        registry: Arc<Registry>,
        metrics: Metrics,
    ) -> Result<FileSource, Error> {
        let path = path.as_ref().to_path_buf();
        let state = SourceState::new(registry, metrics);
        let mut loader = Loader {
            path: path.clone(),
            state: state.clone(),
            last_mtime: None,
        };
        std::fs::metadata(&path)
            .map_err(|e| Error::Config(format!("stat {}: {e}", path.display())))?;
        loader.load(true)?;

        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let (event_sender, event_receiver) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let _ = event_sender.send(event);
            })
            .map_err(|e| Error::Internal(format!("create file watcher: {e}")))?;
        watcher
            .watch(&directory, RecursiveMode::NonRecursive)
            .map_err(|e| Error::Internal(format!("watch {}: {e}", directory.display())))?;
        state.metrics().watch_active.set(1);

        let (stop_sender, stop_receiver) = watch::channel(false);
        let task = tokio::spawn(watch_loop(loader, watcher, event_receiver, stop_receiver));
        info!(path = %path.display(), "dynamic config file source started");
        Ok(FileSource {
            path,
            state,
            stop_sender,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn watch_loop(
    mut loader: Loader,
    // Kept alive for as long as the loop runs; dropping it stops the inotify watch.
    _watcher: notify::RecommendedWatcher,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut stop: watch::Receiver<bool>,
) {
    let file_name = loader.path.file_name().map(|n| n.to_os_string());
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = events.recv() => event,
        };
        let Some(event) = event else { break };
        let relevant = match &event {
            Ok(event) => {
                event.paths.is_empty()
                    || event
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name)
            }
            Err(error) => {
                warn!(%error, "file watcher error; reloading to be safe");
                true
            }
        };
        if !relevant {
            continue;
        }
        // Let a burst of events settle, then load once.
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(DEBOUNCE) => {}
        }
        while events.try_recv().is_ok() {}
        if *stop.borrow() {
            break;
        }
        // The error is already logged and counted; a later edit retries.
        let _ = loader.load(false);
    }
    loader.state.metrics().watch_active.set(0);
}

impl Loader {
    /// Loads the file if its mtime moved forward (always at startup).
    fn load(&mut self, startup: bool) -> Result<(), Error> {
        let metrics = self.state.metrics();
        let mtime = match std::fs::metadata(&self.path).and_then(|m| m.modified()) {
            Ok(mtime) => mtime,
            Err(e) => {
                let message = format!("stat {}: {e}", self.path.display());
                if !startup {
                    error!(error = %message, "dynamic config file");
                }
                return Err(Error::Unavailable(message));
            }
        };
        if !startup && self.last_mtime.is_some_and(|last| mtime <= last) {
            return Ok(());
        }
        let started = Instant::now();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => {
                // The mtime is not recorded, so the next event retries.
                let message = format!("read {}: {e}", self.path.display());
                error!(error = %message, "dynamic config file");
                return Err(Error::Unavailable(message));
            }
        };
        self.last_mtime = Some(mtime);
        let parsed = match parse_document(&text, self.state.registry()) {
            Ok(parsed) => parsed,
            Err(failure) => {
                for message in &failure.errors {
                    error!(path = %self.path.display(), error = %message, "dynamic config load error");
                }
                for message in &failure.warnings {
                    warn!(path = %self.path.display(), warning = %message, "dynamic config load warning");
                }
                error!(
                    path = %self.path.display(),
                    errors = failure.errors.len(),
                    warnings = failure.warnings.len(),
                    "dynamic config file rejected; keeping the last good values"
                );
                metrics.load_failure.set(1);
                return Err(Error::Load(failure));
            }
        };
        for message in &parsed.warnings {
            warn!(path = %self.path.display(), warning = %message, "dynamic config load warning");
        }
        let mut map = ConfigEntries::new();
        for (name, entries) in parsed.keys {
            map.insert(normalize_key(&name), KeyEntry::new(name, entries));
        }
        let keys = map.len();
        self.state.publish(map);
        metrics.load_failure.set(0);
        metrics.keys_loaded.set(keys as i64);
        metrics
            .load_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}

#[async_trait]
impl Source for FileSource {
    fn state(&self) -> &Arc<SourceState> {
        &self.state
    }

    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn write_config(&self, _key: &str, _entries: Vec<ConstrainedValue>) -> Result<(), Error> {
        self.state.metrics().count_write(false);
        Err(Error::Unsupported)
    }

    async fn delete_key(&self, _key: &str) -> Result<(), Error> {
        Err(Error::Unsupported)
    }

    async fn stop(&self) {
        let _ = self.stop_sender.send(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.state.stop();
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        let _ = self.stop_sender.send(true);
    }
}
