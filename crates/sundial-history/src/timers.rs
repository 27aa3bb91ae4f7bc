//! In-memory timer queue. Timers are not persisted: every one of them is implied by a run's
//! mutable state and is re-armed when the run is loaded after a restart.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sundial_common::WorkflowKey;
use sundial_history_core::tasks::Task;
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: Mutex<BinaryHeap<Reverse<(i64, u64)>>>,
    entries: Mutex<HashMap<u64, (WorkflowKey, Task)>>,
    sequence: AtomicU64,
    pub(crate) wake: Notify,
}

impl TimerQueue {
    pub(crate) fn push(&self, key: WorkflowKey, task: Task) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let fire_time = task.fire_time_ms;
        self.entries.lock().insert(sequence, (key, task));
        let mut heap = self.heap.lock();
        let earliest = heap.peek().map(|Reverse((time, _))| *time);
        heap.push(Reverse((fire_time, sequence)));
        drop(heap);
        if earliest.is_none_or(|earliest| fire_time < earliest) {
            self.wake.notify_one();
        }
    }

    /// Removes and returns every timer due at `now_ms`, and the time of the next one.
    pub(crate) fn take_due(&self, now_ms: i64) -> (Vec<(WorkflowKey, Task)>, Option<i64>) {
        let mut due = Vec::new();
        let mut heap = self.heap.lock();
        let mut entries = self.entries.lock();
        while let Some(Reverse((time, sequence))) = heap.peek().copied() {
            if time > now_ms {
                return (due, Some(time));
            }
            heap.pop();
            if let Some(entry) = entries.remove(&sequence) {
                due.push(entry);
            }
        }
        (due, None)
    }
}
