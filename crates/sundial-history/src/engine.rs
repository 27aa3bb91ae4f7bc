//! The edge around the pure core: run locks and the state cache, loading, the fenced write of
//! a transition, and handing its tasks to matching, the timer queue and the transfer queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use prost::Message;
use sundial_common::{Clock, Error, Result, WorkflowKey, new_uuid, shard_for};
use sundial_history_core::state::{MutableState, STATE_ENCODING_V1};
use sundial_history_core::tasks::{Task, TaskType};
use sundial_history_core::{Due, Env, Limits, Transition};
use sundial_persistence::{
    CurrentUpdate, DueWork, ExecutionRef, ExecutionWrite, StateBlob, Store, VisibilityFields,
    VisibilityRow, VisibilityWrite, WakeAfter, WriteBatch,
};
use sundial_proto::api::common::v1::WorkflowExecution;
use sundial_proto::api::enums::v1::{TimeoutType, WorkflowExecutionStatus};
use sundial_proto::api::history::v1::HistoryEvent;
use sundial_proto::api::query::v1::WorkflowQuery;
use sundial_rpc::QueryAnswer;
use sundial_rpc::{HistoryApi, MatchingApi, TaskRef};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::shard::{RECOVERY_CONCURRENCY, Shard, ShardOwnership, Shards};
use crate::transfer::{TransferItem, run_transfer_task};

#[derive(Debug, Clone)]
pub struct HistoryConfig {
    pub num_shards: u32,
    /// Runs whose state stays in memory between requests.
    pub cache_capacity: usize,
    pub limits: Limits,
    /// A cached run untouched for between this and twice this long is kept encoded until its
    /// next use (see `Slot`).
    pub compact_idle_after: Duration,
    /// How far ahead timers are kept in memory. Runs whose next timer is further away are left
    /// in the database and found through its due-work index when their time comes near.
    pub timer_horizon: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            num_shards: 4,
            cache_capacity: 10_000,
            limits: Limits::default(),
            compact_idle_after: Duration::from_secs(1),
            timer_horizon: Duration::from_secs(10),
        }
    }
}

/// A run's place in the cache. While the run is in use its state is decoded (`loaded`, boxed so
/// that an idle slot stays small); once it has sat idle through two sweeps of `compact_loop`, the
/// state is kept protobuf-encoded instead (`compact`: well under 1 KB instead of the ~4.4 KB
/// struct and its heap parts) and decoded again on its next use. Runs that stay open without
/// work (waiting on a timer, a signal, or a worker that is not there) are most of a busy
/// server's cache. At most one of the two is set.
#[derive(Default)]
pub(crate) struct Slot {
    pub loaded: Option<Box<Loaded>>,
    compact: Option<Compact>,
    /// Sweeps since the last use; any use resets it.
    idle_sweeps: u8,
    /// The `db_version` whose dispatches this process has handed out (or is handing out): a
    /// shard's recovery that finds the run through the due-work index does not send them again.
    handed_out: Option<i64>,
}

struct Compact {
    state: Vec<u8>,
    db_version: i64,
    due: Due,
    events: Option<Vec<Vec<u8>>>,
}

impl Slot {
    /// One sweep: counts the slot idle, and encodes its state on the second idle sweep.
    fn sweep(&mut self) {
        if self.loaded.is_none() {
            return;
        }
        if self.idle_sweeps == 0 {
            self.idle_sweeps = 1;
            return;
        }
        if let Some(loaded) = self.loaded.take() {
            let Loaded {
                state,
                db_version,
                due,
                events,
            } = *loaded;
            self.compact = Some(Compact {
                state: state.encode_to_vec(),
                db_version,
                due,
                events,
            });
        }
    }

    /// The run's cached events, whichever form its state is in.
    fn cached_events(&self) -> Option<&Vec<Vec<u8>>> {
        match (&self.loaded, &self.compact) {
            (Some(loaded), _) => loaded.events.as_ref(),
            (None, Some(compact)) => compact.events.as_ref(),
            (None, None) => None,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Loaded {
    pub state: MutableState,
    pub db_version: i64,
    /// The due work stored in the run's row.
    pub due: Due,
    /// The run's whole history when it is short and was written by this process, each event
    /// protobuf-encoded (a few hundred bytes instead of a 2 KiB struct); it spares the database
    /// reads that every poll response would otherwise make.
    pub events: Option<Vec<Vec<u8>>>,
}

/// Longest history kept in memory beside a run's state.
const MAX_CACHED_EVENTS: usize = 2000;

/// What one run's write hands out once it is durable.
struct Dispatch {
    key: WorkflowKey,
    /// The transition's new dispatches that are due now: they go to matching.
    to_matching: Vec<Task>,
    /// Every timer, timeout and delayed dispatch the run's new state implies: those within the
    /// armed horizon go to the timer queue (armed ones are kept once).
    timers: Vec<Task>,
    /// Transfer tasks with their ids.
    transfer: Vec<(i64, Task)>,
    /// The due work written with the run.
    due: Due,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub matching: Arc<dyn MatchingApi>,
    pub clock: Arc<dyn Clock>,
    pub limits: RwLock<Arc<Limits>>,
    pub num_shards: u32,
    cache_capacity: std::sync::atomic::AtomicUsize,
    compact_idle_after: Duration,
    /// This service itself, for the loops a shard starts when it is acquired.
    me: std::sync::Weak<Inner>,
    pub(crate) shards: Shards,
    next_task_id: AtomicI64,
    pub(crate) timer_horizon_ms: i64,
    /// The runs in memory, of every shard held (the cache is the host's, as with Temporal's
    /// host-level cache; a shard that closes takes its runs out).
    slots: Mutex<HashMap<WorkflowKey, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Where cross-run work goes (start a child, signal or cancel another run, tell a parent
    /// its child closed): another shard's owner, reached through `HistoryApi`. This service
    /// itself unless set.
    peer: RwLock<Option<Arc<dyn HistoryApi>>>,
    transfer: mpsc::UnboundedSender<TransferItem>,
    transfer_receiver: Mutex<Option<mpsc::UnboundedReceiver<TransferItem>>>,
    /// Runs whose last write may have committed although it failed (the database went away
    /// before answering): `resettle_loop` hands out what their stored state waits for.
    resettle: mpsc::UnboundedSender<Unsettled>,
    resettle_receiver: Mutex<Option<mpsc::UnboundedReceiver<Unsettled>>>,
    watchers: Mutex<HashMap<(String, String), watch::Sender<u64>>>,
    /// Queries waiting to ride on a run's pending workflow task, and their answer channels.
    pub(crate) attached_queries: Mutex<HashMap<WorkflowKey, Vec<(String, WorkflowQuery)>>>,
    pub(crate) query_waiters: Mutex<HashMap<String, oneshot::Sender<QueryAnswer>>>,
    /// Whether a namespace (by name) dispatches activities eagerly.
    pub(crate) eager_activities: RwLock<EagerPolicy>,
    /// A namespace's (by name) custom search attributes, which commands may set.
    pub(crate) custom_search_attributes: RwLock<CustomSearchAttributes>,
    /// Workflow updates in flight, per run.
    pub(crate) updates: crate::updates::Registry,
    pub(crate) update_limits: RwLock<crate::updates::UpdateLimits>,
}

/// Decides per namespace name whether eager activity dispatch is on.
pub type EagerPolicy = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A namespace's custom search attributes (name -> type), by namespace name.
pub type CustomSearchAttributes =
    Arc<dyn Fn(&str) -> HashMap<String, sundial_visibility::SaType> + Send + Sync>;

/// The history service. Cheap to clone; every clone shares the same shards.
#[derive(Clone)]
pub struct HistoryService {
    pub(crate) inner: Arc<Inner>,
}

impl HistoryService {
    pub fn new(
        store: Arc<dyn Store>,
        matching: Arc<dyn MatchingApi>,
        clock: Arc<dyn Clock>,
        config: HistoryConfig,
    ) -> Self {
        let (transfer, receiver) = mpsc::unbounded_channel();
        let (resettle, resettle_receiver) = mpsc::unbounded_channel();
        let num_shards = config.num_shards.max(1);
        let inner = Arc::new_cyclic(|me| Inner {
            store,
            matching,
            clock: clock.clone(),
            limits: RwLock::new(Arc::new(config.limits)),
            num_shards,
            cache_capacity: std::sync::atomic::AtomicUsize::new(config.cache_capacity.max(16)),
            compact_idle_after: config.compact_idle_after,
            me: me.clone(),
            shards: Shards::new(num_shards),
            next_task_id: AtomicI64::new(clock.now_millis() * 1000),
            timer_horizon_ms: (config.timer_horizon.as_millis() as i64).max(100),
            slots: Mutex::new(HashMap::new()),
            peer: RwLock::new(None),
            transfer,
            transfer_receiver: Mutex::new(Some(receiver)),
            resettle,
            resettle_receiver: Mutex::new(Some(resettle_receiver)),
            watchers: Mutex::new(HashMap::new()),
            attached_queries: Mutex::new(HashMap::new()),
            query_waiters: Mutex::new(HashMap::new()),
            eager_activities: RwLock::new(Arc::new(|_: &str| true)),
            custom_search_attributes: RwLock::new(Arc::new(|_: &str| HashMap::new())),
            updates: Default::default(),
            update_limits: RwLock::new(Default::default()),
        });
        HistoryService { inner }
    }

    /// Timers held in memory now: those due within the armed horizon, over every shard held.
    pub fn timers_in_memory(&self) -> usize {
        let shards = self.inner.shards.all();
        shards.iter().map(|shard| shard.timers.len()).sum()
    }

    /// The shards this service holds now, in order.
    pub fn held_shards(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .shards
            .all()
            .iter()
            .filter(|shard| !shard.is_closed())
            .map(|shard| shard.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Sets which shards this service should own (every shard until set; the membership ring
    /// once there is one). A request for a run of a shard it should not own fails with
    /// `ShardOwnershipLost`; one it should own but does not hold acquires it.
    pub fn set_ownership(&self, ownership: ShardOwnership) {
        self.inner.shards.set_ownership(ownership);
    }

    /// Acquires a shard now (it fences the previous owner) and starts serving it.
    pub async fn acquire_shard(&self, shard_id: u32) -> Result<()> {
        self.inner.acquire_shard(shard_id).await.map(|_| ())
    }

    /// Lets a shard go: its loops end and its timers and cached runs are dropped; its rows stay
    /// for the next owner. Nothing happens if the shard is not held.
    pub fn release_shard(&self, shard_id: u32) {
        if let Some(shard) = self.inner.shards.held(shard_id) {
            self.inner.close_shard(&shard, "released");
        }
    }

    /// Lets every shard go (the service is stopping).
    pub fn stop(&self) {
        for shard in self.inner.shards.all() {
            self.inner.close_shard(&shard, "service stopping");
        }
    }

    /// Sends cross-run work (children, external signals and cancels, parent notifications)
    /// through `peer` instead of this service's own `HistoryApi`: where a client of the other
    /// history hosts goes, and where tests inject faults.
    pub fn set_peer(&self, peer: Arc<dyn HistoryApi>) {
        *self.inner.peer.write() = Some(peer);
    }

    /// Changes how many runs stay cached (dynamic config `history.hostLevelCacheMaxSize`).
    pub fn set_cache_capacity(&self, capacity: usize) {
        self.inner
            .cache_capacity
            .store(capacity.max(16), Ordering::Relaxed);
    }

    /// Sets which namespaces dispatch activities eagerly (`system.enableActivityEagerExecution`;
    /// on everywhere until set).
    pub fn set_eager_activities(&self, policy: EagerPolicy) {
        *self.inner.eager_activities.write() = policy;
    }

    /// Sets where the namespaces' custom search attributes are read (none until set).
    pub fn set_custom_search_attributes(&self, lookup: CustomSearchAttributes) {
        *self.inner.custom_search_attributes.write() = lookup;
    }

    /// Replaces the limits used by later transitions (dynamic config).
    /// The update limits and long-poll interval (dynamic config).
    pub fn set_update_limits(&self, limits: crate::UpdateLimits) {
        *self.inner.update_limits.write() = limits;
    }

    pub fn set_limits(&self, limits: Limits) {
        *self.inner.limits.write() = Arc::new(limits);
    }

    /// Acquires every shard it should own and starts the background loops. The shards' due
    /// work (tasks waiting for a worker, timers coming due, transfer tasks left by an earlier
    /// process) is found through the store's indexes in the background, so the service answers
    /// at once however many runs are open, and only runs with work due are loaded.
    pub async fn start(&self) -> Result<()> {
        use futures::StreamExt;
        let inner = self.inner.clone();
        let owned: Vec<u32> = (1..=inner.num_shards)
            .filter(|&id| inner.shards.owns(id))
            .collect();
        let acquired: Vec<Result<Arc<Shard>>> = futures::stream::iter(owned)
            .map(|id| inner.acquire_shard(id))
            .buffer_unordered(RECOVERY_CONCURRENCY)
            .collect()
            .await;
        for outcome in acquired {
            outcome?;
        }
        if let Some(receiver) = inner.transfer_receiver.lock().take() {
            tokio::spawn(transfer_loop(inner.clone(), receiver));
        }
        if let Some(receiver) = inner.resettle_receiver.lock().take() {
            tokio::spawn(resettle_loop(inner.clone(), receiver));
        }
        tokio::spawn(compact_loop(
            Arc::downgrade(&inner),
            inner.compact_idle_after,
        ));
        info!(shards = inner.num_shards, "history service started");
        Ok(())
    }
}

/// Rows read from a due-work index at a time.
const INDEX_PAGE: usize = 1000;

/// Sweeps the cache every `period`: a run untouched for two sweeps is kept encoded (see
/// `Slot`). Slots in use are skipped; the loop yields between small chunks so that encoding
/// many idle runs never holds a worker thread for long, and ends with the service.
async fn compact_loop(inner: std::sync::Weak<Inner>, period: Duration) {
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let slots: Vec<_> = inner.slots.lock().values().cloned().collect();
        drop(inner);
        // Each handle is dropped once swept, so eviction soon sees the slot unused again.
        for (index, slot) in slots.into_iter().enumerate() {
            if let Ok(mut guard) = slot.try_lock() {
                guard.sweep();
            }
            if index % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Attempts at resettling one run before it is left to its shard's next recovery.
const RESETTLE_ATTEMPTS: u32 = 60;

/// A run whose write failed without a definite answer, with the transfer tasks that write
/// carried.
struct Unsettled {
    key: WorkflowKey,
    transfer: Vec<(i64, Task)>,
}

/// Looks at each run whose write failed without a definite answer, once the database answers
/// again: if the write did commit, its dispatches and timers go out now (a duplicate dispatch
/// is harmless, recording it started drops a stale one), and so do its transfer tasks (those
/// still stored: a write that did not commit stored none); if it did not, there is nothing to
/// do.
async fn resettle_loop(inner: Arc<Inner>, mut receiver: mpsc::UnboundedReceiver<Unsettled>) {
    while let Some(Unsettled { key, transfer }) = receiver.recv().await {
        let inner = inner.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=RESETTLE_ATTEMPTS {
                tokio::time::sleep(delay).await;
                let outcome = match inner.owned_shard(inner.shard_of(&key)).await {
                    Ok(shard) => match inner.look_at_run(&shard, &key, true).await {
                        Ok(()) => inner.resettle_transfers(&shard, &key, &transfer).await,
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(()) => return,
                    // Another owner has the shard; its recovery looks at the run.
                    Err(Error::ShardOwnershipLost) => return,
                    Err(error) => {
                        if attempt == 1 || attempt % 10 == 0 {
                            warn!(%error, %key, attempt, "a run whose write failed cannot be read yet");
                        }
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
            warn!(%key, "gave up resettling a run; its shard's next recovery picks it up");
        });
    }
}

async fn transfer_loop(inner: Arc<Inner>, mut receiver: mpsc::UnboundedReceiver<TransferItem>) {
    while let Some(item) = receiver.recv().await {
        tokio::spawn(run_transfer_task(inner.clone(), item));
    }
}

impl Inner {
    pub(crate) fn limits(&self) -> Arc<Limits> {
        self.limits.read().clone()
    }

    pub(crate) fn shard_of(&self, key: &WorkflowKey) -> u32 {
        shard_for(&key.namespace_id, &key.workflow_id, self.num_shards)
    }

    pub(crate) fn me(&self) -> Result<Arc<Inner>> {
        self.me
            .upgrade()
            .ok_or_else(|| Error::Unavailable("history service stopped".into()))
    }

    /// The shard a run belongs to, if this process owns it (acquiring it if need be).
    pub(crate) async fn shard_of_run(&self, key: &WorkflowKey) -> Result<Arc<Shard>> {
        self.owned_shard(self.shard_of(key)).await
    }

    /// Where cross-run work goes (see `peer`).
    pub(crate) fn peer(&self) -> Result<Arc<dyn HistoryApi>> {
        if let Some(peer) = self.peer.read().clone() {
            return Ok(peer);
        }
        Ok(Arc::new(HistoryService { inner: self.me()? }))
    }

    /// Drops the cached runs (and start locks) of a shard no longer held. A request holding one
    /// of them finishes on its own copy; its write is fenced.
    pub(crate) fn forget_runs_of(&self, shard_id: u32) {
        self.updates
            .drop_runs(|key| self.shard_of(key) == shard_id)
            .into_iter()
            .for_each(crate::updates::Notice::send);
        self.slots
            .lock()
            .retain(|key, _| self.shard_of(key) != shard_id);
        self.attached_queries
            .lock()
            .retain(|key, _| self.shard_of(key) != shard_id);
    }

    /// What a failed write means beyond its error: a lost shard is given up; a write that may
    /// have committed has its runs looked at again once the database answers.
    fn write_failed(&self, shard: &Arc<Shard>, written: &[Dispatch], error: &Error) {
        match error {
            Error::ShardOwnershipLost => self.shard_lost(shard),
            Error::Unavailable(_) => {
                for run in written {
                    let _ = self.resettle.send(Unsettled {
                        key: run.key.clone(),
                        transfer: run.transfer.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// The lock that serialises starts of one workflow id (a slot keyed with an empty run id).
    pub(crate) fn id_lock(&self, key: &WorkflowKey) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slot(key)
    }

    fn slot(&self, key: &WorkflowKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock();
        if slots.len() >= self.cache_capacity.load(Ordering::Relaxed) && !slots.contains_key(key) {
            // Evict runs nobody is using; their state is in the database.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots.entry(key.clone()).or_default().clone()
    }

    /// Removes a slot nobody holds (its `Arc` is only in the map). Clones are made under the
    /// same lock, so the count cannot rise while this looks at it.
    pub(crate) fn release_unused_slot(&self, key: &WorkflowKey) {
        let mut slots = self.slots.lock();
        if slots
            .get(key)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            slots.remove(key);
        }
    }

    fn evict(&self, key: &WorkflowKey) {
        self.slots.lock().remove(key);
    }

    async fn ensure_loaded(&self, key: &WorkflowKey, slot: &mut Slot) -> Result<()> {
        slot.idle_sweeps = 0;
        if slot.loaded.is_none()
            && let Some(compact) = slot.compact.take()
        {
            match MutableState::decode(compact.state.as_slice()) {
                Ok(state) => {
                    slot.loaded = Some(Box::new(Loaded {
                        state,
                        db_version: compact.db_version,
                        due: compact.due,
                        events: compact.events,
                    }));
                }
                // Cannot happen for bytes this process encoded; the database has the run.
                Err(error) => warn!(%key, %error, "cached run failed to decode; reloading it"),
            }
        }
        if slot.loaded.is_none() {
            let Some(loaded) = self
                .store
                .load_execution(&key.namespace_id, &key.workflow_id, &key.run_id)
                .await?
            else {
                return Err(Error::not_found("workflow execution not found"));
            };
            slot.loaded = Some(Box::new(Loaded {
                state: decode_state(&loaded.state)?,
                db_version: loaded.db_version,
                due: Due {
                    wake_ms: loaded.due.wake_time_ms,
                    dispatch_pending: loaded.due.dispatch_pending,
                },
                events: None,
            }));
        }
        Ok(())
    }

    /// Events `[from, to)` of a run, at most `max` (more when a stored batch is larger), from
    /// the cache when it holds them, else from the database.
    pub(crate) async fn read_events(
        &self,
        key: &WorkflowKey,
        from: i64,
        to: i64,
        max: usize,
    ) -> Result<Vec<HistoryEvent>> {
        self.shard_of_run(key).await?;
        {
            let slot = self.slot(key);
            let guard = slot.lock().await;
            if let Some(events) = guard.cached_events()
                && events.len() as i64 >= to - 1
                && from >= 1
            {
                let start = (from - 1) as usize;
                let end = ((to - 1) as usize).min(start.saturating_add(max));
                return events[start..end]
                    .iter()
                    .map(|bytes| {
                        HistoryEvent::decode(bytes.as_slice()).map_err(|error| {
                            Error::CorruptState(format!("cached event of {key}: {error}"))
                        })
                    })
                    .collect();
            }
        }
        self.store
            .read_history(&key.namespace_id, &key.run_id, from, to, max)
            .await
    }

    /// A copy of a run's current state.
    pub(crate) async fn read_state(&self, key: &WorkflowKey) -> Result<MutableState> {
        self.shard_of_run(key).await?;
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        self.ensure_loaded(key, &mut guard).await?;
        Ok(guard.loaded.as_ref().expect("loaded above").state.clone())
    }

    pub(crate) fn env_parts(&self) -> (i64, Arc<Limits>) {
        (self.clock.now_millis(), self.limits())
    }

    /// Attaches a query to the run's scheduled (not yet started) workflow task, under the run's
    /// lock so the task cannot start in between. `None` when there is no such task.
    pub(crate) async fn attach_query(
        &self,
        key: &WorkflowKey,
        query: WorkflowQuery,
    ) -> Result<Option<(String, oneshot::Receiver<QueryAnswer>)>> {
        self.shard_of_run(key).await?;
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        self.ensure_loaded(key, &mut guard).await?;
        let state = &guard.loaded.as_ref().expect("loaded above").state;
        if !state.is_running() || state.workflow_task.is_none() {
            return Ok(None);
        }
        let query_id = new_uuid();
        let (sender, receiver) = oneshot::channel();
        self.query_waiters.lock().insert(query_id.clone(), sender);
        self.attached_queries
            .lock()
            .entry(key.clone())
            .or_default()
            .push((query_id.clone(), query));
        Ok(Some((query_id, receiver)))
    }

    /// The queries attached to a run, for the workflow task being started (call under the run's
    /// lock).
    pub(crate) fn take_attached_queries(&self, key: &WorkflowKey) -> Vec<(String, WorkflowQuery)> {
        self.attached_queries.lock().remove(key).unwrap_or_default()
    }

    /// Takes back a query attached to a run that no workflow task will carry any more (the run
    /// closed, or its task finished with none after it). False if a task took it or will.
    pub(crate) async fn take_undeliverable_query(
        &self,
        key: &WorkflowKey,
        query_id: &str,
    ) -> Result<bool> {
        self.shard_of_run(key).await?;
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        self.ensure_loaded(key, &mut guard).await?;
        let state = &guard.loaded.as_ref().expect("loaded above").state;
        if state.is_running() && state.workflow_task.is_some() {
            return Ok(false);
        }
        let mut attached = self.attached_queries.lock();
        let Some(queries) = attached.get_mut(key) else {
            return Ok(false);
        };
        let before = queries.len();
        queries.retain(|(id, _)| id != query_id);
        Ok(queries.len() < before)
    }

    /// Runs one transition on a run under its lock and persists it. The state is changed in
    /// memory only after the write is durable.
    pub(crate) async fn update<T, F>(&self, key: &WorkflowKey, operation: F) -> Result<T>
    where
        F: FnOnce(&mut MutableState, &Env) -> Result<(Transition, T)>,
    {
        let shard = self.shard_of_run(key).await?;
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        self.ensure_loaded(key, &mut guard).await?;
        let loaded = guard.loaded.as_ref().expect("loaded above");
        let mut state = loaded.state.clone();
        let (now_ms, limits) = self.env_parts();
        let new_id = new_uuid;
        let env = Env {
            now_ms,
            limits: &limits,
            new_id: &new_id,
        };
        // Temporal checks the size of history before each update: the update that crosses a
        // limit is kept, the next one terminates the run.
        let (transition, value) = match history_limit_exceeded(&loaded.state, &limits) {
            Some(reason) => {
                let transition = sundial_history_core::terminate(
                    &mut state,
                    &env,
                    reason.to_string(),
                    None,
                    "history-service".into(),
                )?;
                (transition, Err(Error::invalid(reason)))
            }
            None => {
                let (transition, value) = operation(&mut state, &env)?;
                (transition, Ok(value))
            }
        };
        if transition.events.is_empty()
            && transition.tasks.is_empty()
            && transition.new_run.is_none()
            && state == loaded.state
        {
            return value;
        }
        let was_running = loaded.state.is_running();
        let db_version = loaded.db_version;
        // The cached events move out of the slot: on success they come back extended, on a
        // failed write the slot is dropped anyway.
        let cached = guard
            .loaded
            .as_mut()
            .and_then(|loaded| loaded.events.take());
        let events = cached.and_then(|mut cached| {
            cached.extend(transition.events.iter().map(Message::encode_to_vec));
            (cached.len() <= MAX_CACHED_EVENTS).then_some(cached)
        });
        let (batch, dispatch) = self.build_batch(
            &shard,
            key,
            &state,
            Some(db_version),
            was_running,
            transition,
            None,
        );
        if let Err(error) = self.store.write(batch).await {
            guard.loaded = None;
            let notices = self.updates.drop_run(key);
            drop(guard);
            notices.into_iter().for_each(crate::updates::Notice::send);
            self.evict(key);
            self.write_failed(&shard, &dispatch, &error);
            return Err(error);
        }
        let closed = !state.is_running();
        let update_notices = if closed && was_running {
            let new_run_follows = !state.info().new_execution_run_id.is_empty();
            self.updates.close_run(key, new_run_follows)
        } else {
            Vec::new()
        };
        guard.loaded = Some(Box::new(Loaded {
            state,
            db_version: db_version + 1,
            due: dispatch[0].due,
            events,
        }));
        guard.handed_out = Some(db_version + 1);
        drop(guard);
        update_notices
            .into_iter()
            .for_each(crate::updates::Notice::send);
        if closed {
            // Closed runs are rarely read again: keep memory for the open ones.
            self.evict(key);
        }
        self.after_write(&shard, dispatch).await;
        if closed {
            // Its timeouts and timers can no longer do anything.
            shard.timers.cancel_run(key);
        }
        value
    }

    /// Writes a brand-new run (and optionally the transition of the run it replaces).
    pub(crate) async fn create_run(
        &self,
        key: &WorkflowKey,
        state: MutableState,
        transition: Transition,
        expected_current: Option<String>,
        start_request_id: &str,
    ) -> Result<()> {
        let current = CurrentUpdate::Set {
            expected_run_id: expected_current,
            run_id: key.run_id.clone(),
            status: WorkflowExecutionStatus::Running as i32,
            start_request_id: start_request_id.to_string(),
        };
        let events: Vec<Vec<u8>> = transition
            .events
            .iter()
            .map(Message::encode_to_vec)
            .collect();
        let cached_state = state.clone();
        let shard = self.shard_of_run(key).await?;
        let (batch, dispatch) =
            self.build_batch(&shard, key, &state, None, false, transition, Some(current));
        if let Err(error) = self.store.write(batch).await {
            self.write_failed(&shard, &dispatch, &error);
            return Err(error);
        }
        {
            let slot = self.slot(key);
            let mut guard = slot.lock().await;
            if guard.loaded.is_none() {
                guard.loaded = Some(Box::new(Loaded {
                    state: cached_state,
                    db_version: 1,
                    due: dispatch[0].due,
                    events: Some(events),
                }));
                guard.handed_out = Some(1);
            }
        }
        self.after_write(&shard, dispatch).await;
        Ok(())
    }

    /// Builds the write for a run's transition (plus the run it continues into, if any).
    #[allow(clippy::too_many_arguments)]
    fn build_batch(
        &self,
        shard: &Shard,
        key: &WorkflowKey,
        state: &MutableState,
        expected_db_version: Option<i64>,
        was_running: bool,
        transition: Transition,
        current_override: Option<CurrentUpdate>,
    ) -> (WriteBatch, Vec<Dispatch>) {
        let now = self.clock.now_millis();
        let Transition {
            events,
            tasks,
            new_run,
        } = transition;
        let current = match (current_override, &new_run) {
            (Some(current), _) => current,
            (None, Some(_)) => CurrentUpdate::Keep,
            (None, None) if was_running && !state.is_running() => CurrentUpdate::Status {
                run_id: key.run_id.clone(),
                status: state.info().status,
            },
            (None, None) => CurrentUpdate::Keep,
        };
        let mut executions = Vec::new();
        let mut dispatch = Vec::new();
        let (write, item) =
            self.run_write(key, state, expected_db_version, events, current, tasks, now);
        executions.push(write);
        dispatch.push(item);
        if let Some(new_run) = new_run {
            let new_key = WorkflowKey::new(
                key.namespace_id.clone(),
                key.workflow_id.clone(),
                new_run.state.info().run_id.clone(),
            );
            let Transition { events, tasks, .. } = new_run.transition;
            let current = CurrentUpdate::Set {
                expected_run_id: Some(key.run_id.clone()),
                run_id: new_key.run_id.clone(),
                status: WorkflowExecutionStatus::Running as i32,
                start_request_id: String::new(),
            };
            let (write, item) =
                self.run_write(&new_key, &new_run.state, None, events, current, tasks, now);
            executions.push(write);
            dispatch.push(item);
        }
        (
            WriteBatch {
                shard_id: shard.id,
                range_id: shard.range_id,
                executions,
                deleted_transfer_tasks: Vec::new(),
            },
            dispatch,
        )
    }

    /// One run's part of a write: its row (state, visibility fields, due work), its events and
    /// transfer tasks, and what to hand out once the write is durable.
    #[allow(clippy::too_many_arguments)]
    fn run_write(
        &self,
        key: &WorkflowKey,
        state: &MutableState,
        expected_db_version: Option<i64>,
        events: Vec<HistoryEvent>,
        current: CurrentUpdate,
        new_tasks: Vec<Task>,
        now: i64,
    ) -> (ExecutionWrite, Dispatch) {
        let pending = sundial_history_core::rebuild_tasks(state);
        let due = sundial_history_core::due(&pending, now);
        let mut to_matching = Vec::new();
        let mut transfer = Vec::new();
        let mut timers: Vec<Task> = pending
            .into_iter()
            .filter(|task| !task.is_due_dispatch(now))
            .collect();
        for task in new_tasks {
            match task.kind() {
                Some(kind) if kind.is_transfer() => {
                    transfer.push((self.next_task_id.fetch_add(1, Ordering::Relaxed), task))
                }
                Some(_) if task.is_due_dispatch(now) => to_matching.push(task),
                Some(_) => timers.push(task),
                None => {}
            }
        }
        let encoded_transfer = transfer
            .iter()
            .map(|(task_id, task)| (*task_id, task.encode_to_vec()))
            .collect();
        let write = execution_write(
            key,
            state,
            expected_db_version,
            events,
            current,
            encoded_transfer,
            due,
        );
        let item = Dispatch {
            key: key.clone(),
            to_matching,
            timers,
            transfer,
            due,
        };
        (write, item)
    }

    async fn after_write(&self, shard: &Arc<Shard>, dispatch: Vec<Dispatch>) {
        for item in dispatch {
            self.notify(&item.key);
            for task in &item.to_matching {
                self.send_to_matching(shard, &item.key, task).await;
            }
            // Read after the commit: see `Shard::armed_until`.
            let until = shard.armed_until.load(Ordering::SeqCst);
            for task in item.timers {
                if task.fire_time_ms <= until {
                    shard.timers.push(&item.key, task);
                }
            }
            for (task_id, task) in item.transfer {
                let _ = self.transfer.send(TransferItem {
                    shard: shard.clone(),
                    task_id,
                    key: item.key.clone(),
                    task,
                });
            }
        }
    }

    /// Runs the transfer tasks of a write that may have committed, those of them that are
    /// stored. The shard's stored transfer tasks are few (each is deleted once done), so
    /// listing them is cheap; a task that is running already (the shard was recovered since)
    /// runs twice, which transfer tasks allow.
    async fn resettle_transfers(
        &self,
        shard: &Arc<Shard>,
        key: &WorkflowKey,
        transfer: &[(i64, Task)],
    ) -> Result<()> {
        if transfer.is_empty() {
            return Ok(());
        }
        let stored: std::collections::HashSet<i64> = self
            .store
            .list_transfer_tasks(shard.id)
            .await?
            .into_iter()
            .map(|record| record.task_id)
            .collect();
        for (task_id, task) in transfer {
            if stored.contains(task_id) {
                let _ = self.transfer.send(TransferItem {
                    shard: shard.clone(),
                    task_id: *task_id,
                    key: key.clone(),
                    task: task.clone(),
                });
            }
        }
        Ok(())
    }

    /// Picks up one shard's due work (see `recover_shard`); returns how many runs it looked at.
    pub(crate) async fn recover_shard_once(&self, shard: &Arc<Shard>, until: i64) -> Result<usize> {
        let shard_id = shard.id;
        let mut runs = 0;
        let mut after = None;
        loop {
            let page = self
                .store
                .list_dispatch_pending(shard_id, after, INDEX_PAGE)
                .await?;
            runs += page.len();
            self.look_at_runs(shard, page.iter().map(run_key).collect(), true)
                .await?;
            if page.len() < INDEX_PAGE {
                break;
            }
            after = page.last().cloned();
        }
        runs += self.sweep_shard(shard, i64::MIN, until).await?;
        for record in self.store.list_transfer_tasks(shard_id).await? {
            let key = WorkflowKey::new(record.namespace_id, record.workflow_id, record.run_id);
            let task = Task::decode(record.task.as_slice()).map_err(|error| {
                Error::CorruptState(format!("transfer task {}: {error}", record.task_id))
            })?;
            let _ = self.transfer.send(TransferItem {
                shard: shard.clone(),
                task_id: record.task_id,
                key,
                task,
            });
        }
        Ok(runs)
    }

    /// Arms the timers of every run of a shard whose wake time is in `(from, until]`; returns
    /// how many runs that was.
    pub(crate) async fn sweep_shard(
        &self,
        shard: &Arc<Shard>,
        from: i64,
        until: i64,
    ) -> Result<usize> {
        let mut runs = 0;
        let mut after = WakeAfter::Time(from);
        loop {
            let page = self
                .store
                .list_wakeups(shard.id, Some(after), until, INDEX_PAGE)
                .await?;
            runs += page.len();
            let keys = page.iter().map(|wakeup| run_key(&wakeup.run)).collect();
            self.look_at_runs(shard, keys, false).await?;
            match page.last() {
                Some(last) if page.len() == INDEX_PAGE => after = WakeAfter::Row(last.clone()),
                _ => return Ok(runs),
            }
        }
    }

    async fn look_at_runs(
        &self,
        shard: &Arc<Shard>,
        keys: Vec<WorkflowKey>,
        send_dispatches: bool,
    ) -> Result<()> {
        use futures::StreamExt;
        let results: Vec<Result<()>> = futures::stream::iter(keys)
            .map(|key| async move { self.look_at_run(shard, &key, send_dispatches).await })
            .buffer_unordered(RECOVERY_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Hands out what a run found through the due-work index needs: its due dispatches (when
    /// `send_dispatches`) and its timers within the armed horizon. A row whose stored due work
    /// is out of date (a delayed dispatch went out, or the row predates the index) is corrected.
    async fn look_at_run(
        &self,
        shard: &Arc<Shard>,
        key: &WorkflowKey,
        send_dispatches: bool,
    ) -> Result<()> {
        let (pending, stored, send_dispatches) = {
            let slot = self.slot(key);
            let mut guard = slot.lock().await;
            match self.ensure_loaded(key, &mut guard).await {
                Ok(()) => {}
                Err(Error::NotFound(_)) => return Ok(()),
                Err(error) => return Err(error),
            }
            let loaded = guard.loaded.as_ref().expect("loaded above");
            let (pending, due, version) = (
                sundial_history_core::rebuild_tasks(&loaded.state),
                loaded.due,
                loaded.db_version,
            );
            // A write of this process has handed this state's dispatches out already (the
            // index showed a run written after the recovery began).
            let send = send_dispatches && guard.handed_out != Some(version);
            if send {
                guard.handed_out = Some(version);
            }
            (pending, due, send)
        };
        let now = self.clock.now_millis();
        let due = sundial_history_core::due(&pending, now);
        let until = shard.armed_until.load(Ordering::SeqCst);
        for task in pending {
            if task.is_due_dispatch(now) {
                if send_dispatches {
                    self.send_to_matching(shard, key, &task).await;
                }
            } else if task.fire_time_ms <= until {
                shard.timers.push(key, task);
            }
        }
        if due != stored {
            self.refresh_due(shard, key).await?;
        }
        Ok(())
    }

    /// Stores a run's due work again when it no longer matches its state (the state itself is
    /// unchanged). Needed when a delayed dispatch has gone out: no event marks that, and the
    /// run's later timers must not hide behind a wake time that has passed.
    pub(crate) async fn refresh_due(&self, shard: &Arc<Shard>, key: &WorkflowKey) -> Result<()> {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        self.ensure_loaded(key, &mut guard).await?;
        let loaded = guard.loaded.as_ref().expect("loaded above");
        let pending = sundial_history_core::rebuild_tasks(&loaded.state);
        let due = sundial_history_core::due(&pending, self.clock.now_millis());
        if due == loaded.due {
            return Ok(());
        }
        let batch = WriteBatch {
            shard_id: shard.id,
            range_id: shard.range_id,
            executions: vec![execution_write(
                key,
                &loaded.state,
                Some(loaded.db_version),
                Vec::new(),
                CurrentUpdate::Keep,
                Vec::new(),
                due,
            )],
            deleted_transfer_tasks: Vec::new(),
        };
        if let Err(error) = self.store.write(batch).await {
            guard.loaded = None;
            drop(guard);
            self.evict(key);
            // The state is unchanged, so a write that may have committed leaves nothing to
            // resettle: only a lost shard matters.
            self.write_failed(shard, &[], &error);
            return Err(error);
        }
        let loaded = guard.loaded.as_mut().expect("loaded above");
        loaded.db_version += 1;
        loaded.due = due;
        let version = loaded.db_version;
        // The state is the same, so are its dispatches.
        if guard.handed_out == Some(version - 1) {
            guard.handed_out = Some(version);
        }
        Ok(())
    }

    /// Hands a dispatch to matching. When matching cannot take it, the dispatch is tried
    /// again a second later through the timer queue (as a delayed dispatch); the run's row
    /// keeps it pending meanwhile, so a restart finds it too.
    async fn send_to_matching(&self, shard: &Shard, key: &WorkflowKey, task: &Task) {
        if let Err(error) = self.try_send_to_matching(key, task).await {
            warn!(%error, %key, task_queue = %task.task_queue, "matching refused a task; adding it again in 1s");
            let mut retry = task.clone();
            retry.fire_time_ms = self.clock.now_millis() + 1000;
            shard.timers.push(key, retry);
        }
    }

    async fn try_send_to_matching(&self, key: &WorkflowKey, task: &Task) -> Result<()> {
        let task_ref = TaskRef {
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            scheduled_event_id: task.event_id,
            attempt: task.attempt,
        };
        if task.kind() == Some(TaskType::WorkflowTask) {
            let queued = self
                .matching
                .add_workflow_task(&task.task_queue, task_ref.clone(), task.sticky)
                .await?;
            if !queued {
                // The sticky worker is gone: the same task goes to the normal queue, no event.
                self.matching
                    .add_workflow_task(&task.normal_task_queue, task_ref, false)
                    .await?;
            }
        } else {
            self.matching
                .add_activity_task(&task.task_queue, task_ref)
                .await?;
        }
        Ok(())
    }

    /// A timer task is due.
    pub(crate) async fn fire(&self, shard: &Arc<Shard>, key: WorkflowKey, task: Task) {
        use sundial_history_core as core;
        let Some(kind) = task.kind() else {
            return;
        };
        let timeout_type =
            TimeoutType::try_from(task.timeout_type).unwrap_or(TimeoutType::Unspecified);
        let outcome = match kind {
            TaskType::WorkflowTask | TaskType::ActivityTask => {
                // A delayed dispatch (a retry's backoff) is due.
                self.send_to_matching(shard, &key, &task).await;
                self.refresh_due(shard, &key).await
            }
            TaskType::WorkflowTaskTimeout => {
                self.update(&key, |state, env| {
                    Ok((
                        core::workflow_task_timeout(
                            state,
                            env,
                            task.event_id,
                            task.attempt,
                            timeout_type,
                        )?,
                        (),
                    ))
                })
                .await
            }
            TaskType::ActivityTimeout => {
                self.update(&key, |state, env| {
                    Ok((
                        core::activity_timeout(
                            state,
                            env,
                            task.event_id,
                            task.attempt,
                            timeout_type,
                        )?,
                        (),
                    ))
                })
                .await
            }
            TaskType::UserTimer => {
                self.update(&key, |state, env| {
                    Ok((
                        core::fire_timer(state, env, &task.timer_id, task.event_id)?,
                        (),
                    ))
                })
                .await
            }
            TaskType::WorkflowRunTimeout => {
                self.update(&key, |state, env| Ok((core::run_timeout(state, env)?, ())))
                    .await
            }
            TaskType::WorkflowBackoff => {
                self.update(&key, |state, env| {
                    Ok((core::backoff_fired(state, env)?, ()))
                })
                .await
            }
            _ => Ok(()),
        };
        match outcome {
            Ok(()) | Err(Error::NotFound(_)) => {}
            // The shard is gone (or going): its next owner arms the timer from the database.
            Err(_) if shard.is_closed() => {}
            Err(Error::ShardOwnershipLost) => {}
            Err(error) => {
                warn!(error = %error, %key, task_type = task.task_type, "timer task failed, retrying in 1s");
                let mut retry = task.clone();
                retry.fire_time_ms = self.clock.now_millis() + 1000;
                shard.timers.push(&key, retry);
            }
        }
    }

    pub(crate) fn subscribe(&self, key: &WorkflowKey) -> watch::Receiver<u64> {
        let mut watchers = self.watchers.lock();
        watchers
            .entry((key.namespace_id.clone(), key.run_id.clone()))
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn notify(&self, key: &WorkflowKey) {
        let mut watchers = self.watchers.lock();
        let map_key = (key.namespace_id.clone(), key.run_id.clone());
        if let Some(sender) = watchers.get(&map_key) {
            if sender.receiver_count() == 0 {
                watchers.remove(&map_key);
            } else {
                sender.send_modify(|version| *version += 1);
            }
        }
    }

    /// Resolves an execution: an empty run id means the current run of the workflow id.
    pub(crate) async fn resolve(
        &self,
        namespace_id: &str,
        execution: &WorkflowExecution,
    ) -> Result<WorkflowKey> {
        if execution.workflow_id.is_empty() {
            return Err(Error::invalid("WorkflowId is not set on request."));
        }
        if !execution.run_id.is_empty() {
            if uuid_like(&execution.run_id) {
                return Ok(WorkflowKey::new(
                    namespace_id,
                    execution.workflow_id.clone(),
                    execution.run_id.clone(),
                ));
            }
            return Err(Error::invalid("Invalid RunId."));
        }
        match self
            .store
            .get_current_execution(namespace_id, &execution.workflow_id)
            .await?
        {
            Some(current) => Ok(WorkflowKey::new(
                namespace_id,
                execution.workflow_id.clone(),
                current.run_id,
            )),
            None => Err(Error::not_found(format!(
                "workflow not found for ID: {}",
                execution.workflow_id
            ))),
        }
    }
}

fn uuid_like(value: &str) -> bool {
    value.len() == 36 && value.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The reason a running run must be terminated for the size of its history, if it must.
fn history_limit_exceeded(state: &MutableState, limits: &Limits) -> Option<&'static str> {
    if !state.is_running() {
        return None;
    }
    let info = state.info();
    if info.next_event_id > limits.history_count_error {
        return Some("Workflow history count exceeds limit.");
    }
    if info.history_size_bytes >= limits.history_size_error {
        return Some("Workflow history size exceeds limit.");
    }
    None
}

fn run_key(run: &ExecutionRef) -> WorkflowKey {
    WorkflowKey::new(
        run.namespace_id.clone(),
        run.workflow_id.clone(),
        run.run_id.clone(),
    )
}

fn decode_state(blob: &StateBlob) -> Result<MutableState> {
    if blob.encoding != STATE_ENCODING_V1 {
        return Err(Error::CorruptState(format!(
            "unknown state encoding {}",
            blob.encoding
        )));
    }
    MutableState::decode(blob.data.as_slice())
        .map_err(|error| Error::CorruptState(format!("decode stored state: {error}")))
}

/// Whether a write changes the run's visibility: `None` when it does not, else whether its
/// search attributes changed too. A new run writes both; after that only closing, upserting
/// search attributes and modifying properties (the memo) change what lists show.
fn listing_change(new_run: bool, events: &[HistoryEvent]) -> Option<bool> {
    use sundial_proto::api::enums::v1::EventType as E;
    if new_run {
        return Some(true);
    }
    let mut row = false;
    let mut values = false;
    for event in events {
        match E::try_from(event.event_type).unwrap_or(E::Unspecified) {
            E::UpsertWorkflowSearchAttributes => values = true,
            E::WorkflowPropertiesModified
            | E::WorkflowExecutionCompleted
            | E::WorkflowExecutionFailed
            | E::WorkflowExecutionTimedOut
            | E::WorkflowExecutionCanceled
            | E::WorkflowExecutionTerminated
            | E::WorkflowExecutionContinuedAsNew => row = true,
            _ => {}
        }
    }
    (row || values).then_some(values)
}

/// A run's visibility row (and its search attributes' values when `with_values`).
fn listing(key: &WorkflowKey, state: &MutableState, with_values: bool) -> VisibilityWrite {
    const NANOS: i64 = 1_000_000;
    let info = state.info();
    let started = info.started.as_ref();
    let parent = started.and_then(|started| started.parent_workflow_execution.as_ref());
    let root = started.and_then(|started| started.root_workflow_execution.as_ref());
    let closed = info.status != WorkflowExecutionStatus::Running as i32;
    let close_time = closed.then_some(info.close_time_ms * NANOS);
    let row = VisibilityRow {
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
        workflow_type: info.workflow_type.clone(),
        task_queue: info.task_queue.clone(),
        status: i64::from(info.status),
        start_time: info.start_time_ms * NANOS,
        execution_time: info.execution_time_ms * NANOS,
        close_time,
        execution_duration: closed
            .then(|| (info.close_time_ms - info.execution_time_ms).max(0) * NANOS),
        history_length: closed.then_some(info.next_event_id - 1),
        history_size_bytes: closed.then_some(info.history_size_bytes),
        state_transition_count: None,
        parent_workflow_id: parent.map(|parent| parent.workflow_id.clone()),
        parent_run_id: parent.map(|parent| parent.run_id.clone()),
        root_workflow_id: root
            .map_or_else(|| key.workflow_id.clone(), |root| root.workflow_id.clone()),
        root_run_id: root.map_or_else(|| key.run_id.clone(), |root| root.run_id.clone()),
        memo: info
            .memo
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default(),
        search_attributes: info
            .search_attributes
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default(),
    };
    let values = with_values.then(|| {
        info.search_attributes
            .as_ref()
            .map(sundial_visibility::index::index)
            .unwrap_or_default()
    });
    VisibilityWrite { row, values }
}

/// The store's record of a run: its encoded state and the plain fields the store indexes.
fn execution_write(
    key: &WorkflowKey,
    state: &MutableState,
    expected_db_version: Option<i64>,
    events: Vec<HistoryEvent>,
    current: CurrentUpdate,
    new_transfer_tasks: Vec<(i64, Vec<u8>)>,
    due: Due,
) -> ExecutionWrite {
    let info = state.info();
    let parent = info
        .started
        .as_ref()
        .and_then(|started| started.parent_workflow_execution.clone())
        .unwrap_or_default();
    let listing = listing_change(expected_db_version.is_none(), &events)
        .map(|values_changed| listing(key, state, values_changed));
    ExecutionWrite {
        listing,
        namespace_id: key.namespace_id.clone(),
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
        state: StateBlob {
            encoding: STATE_ENCODING_V1,
            data: state.encode_to_vec(),
        },
        next_event_id: info.next_event_id,
        visibility: VisibilityFields {
            workflow_type: info.workflow_type.clone(),
            task_queue: info.task_queue.clone(),
            status: info.status,
            start_time_ms: info.start_time_ms,
            close_time_ms: info.close_time_ms,
            execution_time_ms: info.execution_time_ms,
            memo: info.memo.as_ref().map(Message::encode_to_vec),
            search_attributes: info.search_attributes.as_ref().map(Message::encode_to_vec),
            parent_workflow_id: parent.workflow_id,
            parent_run_id: parent.run_id,
        },
        due: DueWork {
            wake_time_ms: due.wake_ms,
            dispatch_pending: due.dispatch_pending,
        },
        expected_db_version,
        events,
        current,
        new_transfer_tasks,
    }
}
