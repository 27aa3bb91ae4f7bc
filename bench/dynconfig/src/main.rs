//! Times the hot-path typed read: `Handle::get` with constraints against a live snapshot.
//!
//! Run: `cargo run --release -p sundial-bench-dynconfig`. Prints one line per case with
//! nanoseconds per read; it asserts nothing (numbers go in the docs, not in tests).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sundial_dynconfig::settings::{
    FRONTEND_NAMESPACE_RPS, FRONTEND_RPS, MATCHING_NUM_TASKQUEUE_READ_PARTITIONS,
};
use sundial_dynconfig::{DynamicConfig, Filter, MemorySource, Registry};

const READS: u64 = 20_000_000;

fn document() -> String {
    let mut text = String::from("frontend.rps:\n  - value: 1200\nfrontend.namespaceRPS:\n");
    for index in 0..16 {
        text.push_str(&format!(
            "  - value: {}\n    constraints: {{namespace: ns-{index}}}\n",
            100 + index
        ));
    }
    text.push_str("  - value: 2400\nmatching.numTaskqueueReadPartitions:\n");
    for index in 0..16 {
        text.push_str(&format!(
            "  - value: {}\n    constraints: {{namespace: ns-{index}, taskQueueName: orders, taskType: Workflow}}\n",
            8 + index
        ));
    }
    text.push_str("  - value: 8\n");
    // Unrelated keys make the map a realistic size.
    for index in 0..200 {
        text.push_str(&format!("filler.key{index}:\n  - value: {index}\n"));
    }
    text
}

fn time(name: &str, mut read: impl FnMut() -> i64) {
    // Warm up, then measure.
    for _ in 0..1_000_000 {
        black_box(read());
    }
    let started = Instant::now();
    let mut sum = 0i64;
    for _ in 0..READS {
        sum = sum.wrapping_add(black_box(read()));
    }
    let elapsed: Duration = started.elapsed();
    black_box(sum);
    println!(
        "dynconfig hot path: {name}: {:.1} ns/read ({READS} reads in {:.2?})",
        elapsed.as_nanos() as f64 / READS as f64,
        elapsed
    );
}

fn main() {
    let source = MemorySource::from_yaml(&document(), Arc::new(Registry::builtin()))
        .expect("valid document");
    let config = DynamicConfig::new(Arc::new(source));
    let global = config.handle(&FRONTEND_RPS);
    let namespace = config.handle(&FRONTEND_NAMESPACE_RPS);
    let partitions = config.handle(&MATCHING_NUM_TASKQUEUE_READ_PARTITIONS);
    assert_eq!(namespace.get(&Filter::namespace("ns-15")), 115);
    assert_eq!(
        partitions.get(&Filter::task_queue("ns-15", "orders", 1)),
        23
    );

    time("global int (frontend.rps)", || global.get(&Filter::GLOBAL));
    time("namespace int, hit 16th of 17 entries", || {
        namespace.get(&Filter::namespace("ns-15"))
    });
    time("namespace int, falls to global", || {
        namespace.get(&Filter::namespace("other"))
    });
    time("task-queue int, hit 16th of 17 entries", || {
        partitions.get(&Filter::task_queue("ns-15", "orders", 1))
    });
    time("task-queue int, constrained default", || {
        partitions.get(&Filter::task_queue("x", "temporal-sys-per-ns-tq", 1))
    });
}
