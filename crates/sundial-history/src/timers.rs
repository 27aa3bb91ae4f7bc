//! In-memory timer queue. Timers are not persisted as rows: every one of them is implied by a
//! run's mutable state, and the store's due-work index says which runs have one coming due.
//! The queue holds only the timers due within the armed horizon (see `Inner::armed_until`);
//! the same timer armed twice (by a write and by a sweep of the index) is kept once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sundial_common::WorkflowKey;
use sundial_history_core::tasks::Task;
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct TimerQueue {
    state: Mutex<Timers>,
    sequence: AtomicU64,
    pub(crate) wake: Notify,
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    entries: HashMap<u64, (WorkflowKey, Task)>,
    /// The timers of each run, so a run that closes drops them at once instead of holding
    /// memory (and costing a load) until each would have fired.
    by_run: HashMap<WorkflowKey, Vec<u64>>,
}

impl TimerQueue {
    /// Arms a timer; false when the same one is armed already.
    pub(crate) fn push(&self, key: &WorkflowKey, task: Task) -> bool {
        let fire_time = task.fire_time_ms;
        let mut timers = self.state.lock();
        if let Some(sequences) = timers.by_run.get(key)
            && sequences.iter().any(|sequence| {
                timers
                    .entries
                    .get(sequence)
                    .is_some_and(|(_, armed)| *armed == task)
            })
        {
            return false;
        }
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let earliest = timers.heap.peek().map(|Reverse((time, _))| *time);
        timers.heap.push(Reverse((fire_time, sequence)));
        timers.by_run.entry(key.clone()).or_default().push(sequence);
        timers.entries.insert(sequence, (key.clone(), task));
        drop(timers);
        if earliest.is_none_or(|earliest| fire_time < earliest) {
            self.wake.notify_one();
        }
        true
    }

    /// Forgets every timer of a run (it closed).
    pub(crate) fn cancel_run(&self, key: &WorkflowKey) {
        let mut timers = self.state.lock();
        if let Some(sequences) = timers.by_run.remove(key) {
            for sequence in sequences {
                timers.entries.remove(&sequence);
            }
        }
        // Heap slots of removed timers are skipped when they come due; drop them early if they
        // have become most of the heap.
        if timers.heap.len() > 1024 && timers.heap.len() > 4 * timers.entries.len() {
            let Timers { heap, entries, .. } = &mut *timers;
            heap.retain(|Reverse((_, sequence))| entries.contains_key(sequence));
        }
    }

    /// Removes and returns the timers due at `now_ms`, the earliest first and at most `limit`
    /// of them, and the time of the next one left (at or before `now_ms` when the limit cut
    /// the due ones short).
    pub(crate) fn take_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> (Vec<(WorkflowKey, Task)>, Option<i64>) {
        let mut due = Vec::new();
        let mut timers = self.state.lock();
        while let Some(Reverse((time, sequence))) = timers.heap.peek().copied() {
            if time > now_ms || due.len() == limit {
                return (due, Some(time));
            }
            timers.heap.pop();
            if let Some((key, task)) = timers.entries.remove(&sequence) {
                if let Some(sequences) = timers.by_run.get_mut(&key) {
                    sequences.retain(|&s| s != sequence);
                    if sequences.is_empty() {
                        timers.by_run.remove(&key);
                    }
                }
                due.push((key, task));
            }
        }
        (due, None)
    }

    /// Forgets every timer (the shard closed).
    pub(crate) fn clear(&self) {
        *self.state.lock() = Timers::default();
    }

    /// Timers held in memory.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(fire_time_ms: i64) -> Task {
        Task {
            fire_time_ms,
            ..Default::default()
        }
    }

    #[test]
    fn a_closed_run_drops_its_timers() {
        let queue = TimerQueue::default();
        let closed = WorkflowKey::new("ns".to_string(), "a".to_string(), "r1".to_string());
        let open = WorkflowKey::new("ns".to_string(), "b".to_string(), "r2".to_string());
        queue.push(&closed, timer(10));
        queue.push(&closed, timer(20));
        queue.push(&open, timer(15));
        queue.cancel_run(&closed);
        assert_eq!(queue.len(), 1);
        let (due, next) = queue.take_due(100, usize::MAX);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, open);
        assert_eq!(next, None);
        assert!(queue.state.lock().by_run.is_empty());
    }

    #[test]
    fn the_same_timer_is_armed_once() {
        let queue = TimerQueue::default();
        let key = WorkflowKey::new("ns".to_string(), "a".to_string(), "r".to_string());
        assert!(queue.push(&key, timer(10)));
        assert!(!queue.push(&key, timer(10)));
        assert!(queue.push(&key, timer(11)));
        assert_eq!(queue.len(), 2);
        let (due, _) = queue.take_due(10, usize::MAX);
        assert_eq!(due.len(), 1);
        // Once fired, it can be armed again.
        assert!(queue.push(&key, timer(10)));
    }

    #[test]
    fn at_most_the_limit_is_taken_the_earliest_first() {
        let queue = TimerQueue::default();
        let key = WorkflowKey::new("ns".to_string(), "a".to_string(), "r".to_string());
        for time in [40, 10, 30, 20] {
            queue.push(&key, timer(time));
        }
        let (due, next) = queue.take_due(35, 2);
        let times: Vec<i64> = due.iter().map(|(_, task)| task.fire_time_ms).collect();
        assert_eq!(times, [10, 20]);
        // The next one is due already: the limit cut the due ones short.
        assert_eq!(next, Some(30));
        let (due, next) = queue.take_due(35, 2);
        assert_eq!(due.len(), 1);
        assert_eq!(next, Some(40));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn timers_come_due_in_order() {
        let queue = TimerQueue::default();
        let key = WorkflowKey::new("ns".to_string(), "a".to_string(), "r".to_string());
        queue.push(&key, timer(30));
        queue.push(&key, timer(10));
        let (due, next) = queue.take_due(10, usize::MAX);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.fire_time_ms, 10);
        assert_eq!(next, Some(30));
    }
}
