//! The shards this process holds. A shard is acquired (its `range_id` bumped in the store, which
//! fences every earlier owner's writes), then serves: its own timer queue and timer loop, its
//! sweep of the due-work index and, once, the recovery of its due work. It is closed when this
//! process lets it go (`release`), when the service stops, or when a write finds that another
//! owner acquired it since (`ShardOwnershipLost`): a closed shard's loops end, its timers and
//! cached runs are dropped, its unfinished transfer tasks stop retrying (their rows stay for the
//! next owner), and nothing retries the lost shard. Whether this process should hold a shard at
//! all is asked of the ownership policy (today: every shard; with membership, the ring).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use sundial_common::{Error, Result};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::Inner;
use crate::timers::TimerQueue;

/// Decides whether this process should own a shard (by id).
pub type ShardOwnership = Arc<dyn Fn(u32) -> bool + Send + Sync>;

pub(crate) struct Shard {
    pub id: u32,
    /// What this process acquired the shard with; every write of the shard is fenced by it.
    pub range_id: i64,
    /// Timers of the shard's runs due by `armed_until`.
    pub timers: TimerQueue,
    /// Timers due up to this time (Unix ms) are in `timers` or will be put there by the write
    /// that makes them; later ones are left to the sweep of the due-work index, which moves
    /// this forward before it reads the index.
    pub armed_until: AtomicI64,
    closed: watch::Sender<bool>,
}

impl Shard {
    fn new(id: u32, range_id: i64, armed_until: i64) -> Shard {
        Shard {
            id,
            range_id,
            timers: TimerQueue::default(),
            armed_until: AtomicI64::new(armed_until),
            closed: watch::channel(false).0,
        }
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the shard is closed.
    pub async fn closed(&self) {
        let mut receiver = self.closed.subscribe();
        let _ = receiver.wait_for(|closed| *closed).await;
    }

    /// Marks the shard closed; false if it was already.
    fn close(&self) -> bool {
        self.closed
            .send_if_modified(|closed| !std::mem::replace(closed, true))
    }
}

/// The shard table of a history service.
pub(crate) struct Shards {
    held: parking_lot::RwLock<HashMap<u32, Arc<Shard>>>,
    /// One lock per shard id (index 0 unused), so that a shard is acquired once however many
    /// requests ask for it, and different shards are acquired in parallel.
    acquiring: Vec<tokio::sync::Mutex<()>>,
    ownership: parking_lot::RwLock<ShardOwnership>,
}

impl Shards {
    pub fn new(num_shards: u32) -> Shards {
        Shards {
            held: Default::default(),
            acquiring: (0..=num_shards).map(|_| Default::default()).collect(),
            ownership: parking_lot::RwLock::new(Arc::new(|_| true)),
        }
    }

    pub fn held(&self, id: u32) -> Option<Arc<Shard>> {
        self.held
            .read()
            .get(&id)
            .filter(|shard| !shard.is_closed())
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Shard>> {
        self.held.read().values().cloned().collect()
    }

    pub fn owns(&self, id: u32) -> bool {
        (self.ownership.read())(id)
    }

    pub fn set_ownership(&self, ownership: ShardOwnership) {
        *self.ownership.write() = ownership;
    }
}

impl Inner {
    /// The shard of this id, acquired now if this process should own it and does not hold it
    /// (the first request after a loss, or a shard the ownership policy has just given it).
    pub(crate) async fn owned_shard(&self, id: u32) -> Result<Arc<Shard>> {
        if let Some(shard) = self.shards.held(id) {
            return Ok(shard);
        }
        if !self.shards.owns(id) {
            return Err(Error::ShardOwnershipLost);
        }
        self.acquire_shard(id).await
    }

    /// Acquires a shard: bumps its `range_id` (from here on the previous owner's writes fail),
    /// then starts its timer loop, its sweep and the recovery of its due work in the background.
    /// (Boxed: the loops it starts call back into it, and a boxed future ends that cycle of
    /// types.)
    pub(crate) fn acquire_shard(&self, id: u32) -> BoxFuture<'_, Result<Arc<Shard>>> {
        Box::pin(async move {
            let me = self.me()?;
            let lock = self
                .shards
                .acquiring
                .get(id as usize)
                .filter(|_| id >= 1)
                .ok_or_else(|| Error::internal(format!("shard {id} does not exist")))?;
            let _acquiring = lock.lock().await;
            if let Some(shard) = self.shards.held(id) {
                return Ok(shard);
            }
            let range_id = self.store.acquire_shard(id).await?;
            let armed_until = self.clock.now_millis() + self.timer_horizon_ms;
            let shard = Arc::new(Shard::new(id, range_id, armed_until));
            self.shards.held.write().insert(id, shard.clone());
            tokio::spawn(timer_loop(me.clone(), shard.clone()));
            tokio::spawn(sweep_loop(me.clone(), shard.clone()));
            tokio::spawn(recover_shard(me, shard.clone()));
            info!(shard_id = id, range_id, "shard acquired");
            Ok(shard)
        })
    }

    /// Closes a shard this process held: its loops end, its timers and cached runs go. Its
    /// stored rows are untouched; the next owner picks them up.
    pub(crate) fn close_shard(&self, shard: &Arc<Shard>, reason: &str) {
        if !shard.close() {
            return;
        }
        {
            let mut held = self.shards.held.write();
            if held
                .get(&shard.id)
                .is_some_and(|current| Arc::ptr_eq(current, shard))
            {
                held.remove(&shard.id);
            }
        }
        self.forget_runs_of(shard.id);
        shard.timers.clear();
        info!(
            shard_id = shard.id,
            range_id = shard.range_id,
            reason,
            "shard closed"
        );
    }

    /// A write found the shard acquired by another owner: give it up.
    pub(crate) fn shard_lost(&self, shard: &Arc<Shard>) {
        if !shard.is_closed() {
            warn!(
                shard_id = shard.id,
                range_id = shard.range_id,
                "shard ownership lost: another owner acquired it"
            );
        }
        self.close_shard(shard, "ownership lost");
    }
}

/// Runs looked at in parallel while a shard's due work is picked up.
pub(crate) const RECOVERY_CONCURRENCY: usize = 16;

/// Picks up the due work of a newly acquired shard: dispatches every task that waits for a
/// worker, arms the timers due by the shard's first armed horizon and resumes the transfer
/// tasks. Retried until it succeeds (the database may be down) or the shard closes; everything
/// it does is idempotent.
async fn recover_shard(inner: Arc<Inner>, shard: Arc<Shard>) {
    let until = shard.armed_until.load(Ordering::SeqCst);
    let mut delay = Duration::from_millis(200);
    loop {
        let outcome = tokio::select! {
            outcome = inner.recover_shard_once(&shard, until) => outcome,
            _ = shard.closed() => return,
        };
        match outcome {
            Ok(runs) => {
                if runs > 0 {
                    info!(shard_id = shard.id, runs, "shard due work picked up");
                }
                return;
            }
            Err(Error::ShardOwnershipLost) => {
                inner.shard_lost(&shard);
                return;
            }
            Err(error) => {
                warn!(shard_id = shard.id, %error, "picking up shard due work failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shard.closed() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Every quarter of the timer horizon, moves the shard's `armed_until` forward and arms the
/// timers of the runs whose wake time the index puts in the new window. A read that fails keeps
/// its window and tries it again on the next round.
async fn sweep_loop(inner: Arc<Inner>, shard: Arc<Shard>) {
    let period = Duration::from_millis((inner.timer_horizon_ms / 4).max(25) as u64);
    let mut swept = shard.armed_until.load(Ordering::SeqCst);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shard.closed() => return,
        }
        let until = inner.clock.now_millis() + inner.timer_horizon_ms;
        // Forward first: a write that commits after the index is read sees the new bound and
        // arms its own timers.
        let until = shard
            .armed_until
            .fetch_max(until, Ordering::SeqCst)
            .max(until);
        if swept >= until {
            continue;
        }
        match inner.sweep_shard(&shard, swept, until).await {
            Ok(_) => swept = until,
            Err(Error::ShardOwnershipLost) => {
                inner.shard_lost(&shard);
                return;
            }
            Err(error) => warn!(shard_id = shard.id, %error, "reading the due-work index failed"),
        }
    }
}

/// Timers of one shard being fired at once. A backlog of due timers (a node that was down
/// while they came due) is fired this many at a time, so the writes of requests are not queued
/// behind all of it: each waits for at most a few groups of firings. A steady 1,000 timers a
/// second needs a handful in flight.
pub(crate) const FIRES_IN_FLIGHT: usize = 64;

/// Fires the shard's timers as they come due, at most `FIRES_IN_FLIGHT` at a time; ends when
/// the shard closes.
async fn timer_loop(inner: Arc<Inner>, shard: Arc<Shard>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(FIRES_IN_FLIGHT));
    loop {
        if shard.is_closed() {
            return;
        }
        // Wait for a free permit. Only this loop takes permits, so those free now stay free.
        tokio::select! {
            permit = permits.acquire() => drop(permit.expect("the semaphore is never closed")),
            _ = shard.closed() => return,
        }
        let limit = permits.available_permits();
        let now = inner.clock.now_millis();
        let (due, next) = shard.timers.take_due(now, limit);
        let cut_short = due.len() == limit;
        for (key, task) in due {
            let permit = permits
                .clone()
                .try_acquire_owned()
                .expect("counted as free above");
            let inner = inner.clone();
            let shard = shard.clone();
            tokio::spawn(async move {
                inner.fire(&shard, key, task).await;
                drop(permit);
            });
        }
        if cut_short {
            // More are due: take them as firings finish.
            continue;
        }
        let wait = match next {
            Some(next) => Duration::from_millis((next - now).clamp(1, 1000) as u64),
            None => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shard.timers.wake.notified() => {}
            _ = shard.closed() => return,
        }
    }
}
