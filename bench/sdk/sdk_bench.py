#!/usr/bin/env python3
"""`sdk` workload: the activity workflow through the official Python SDK (`temporalio`).

One process runs a Worker (default settings: sticky cache, eager activities) and
`--concurrency` client loops; each loop starts a workflow and waits for its result.
Prints one JSON object (same field names as the Go driver where they mean the same).
"""
import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench_workflows import BenchSdkWorkflow, bench_act  # noqa: E402

EXPECTED = [1, 5, 6, 7, 10, 11, 12, 5, 6, 7, 2]


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    i = max(0, min(len(sorted_ms) - 1, int(p * len(sorted_ms) + 0.999999) - 1))
    return sorted_ms[i]


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:7233")
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--max", type=int, default=100000)
    ap.add_argument("--verify", type=int, default=10)
    ap.add_argument("--wf-timeout", type=float, default=30.0)
    a = ap.parse_args()
    if not (1 <= a.concurrency <= 4096 and 0 < a.duration <= 3600):
        print("bad --concurrency/--duration", file=sys.stderr)
        return 2

    tag = uuid.uuid4().hex[:8]
    tq = f"bench-sdk-{tag}"
    client = await Client.connect(a.addr, namespace=a.namespace)
    errors: dict[str, int] = {}
    samples: list[str] = []

    def err(key: str, e: BaseException) -> None:
        errors[key] = errors.get(key, 0) + 1
        if len(samples) < 20:
            samples.append(f"{key}: {type(e).__name__}: {e}")

    cpu0 = cpu_s()
    async with Worker(client, task_queue=tq, workflows=[BenchSdkWorkflow], activities=[bench_act]):
        t0 = time.monotonic()
        stop_at = t0 + a.warmup + a.duration
        seq = 0
        done_times: list[float] = []
        lat: list[float] = []
        lat_all: list[float] = []
        started_ids: list[str] = []

        async def loop() -> None:
            nonlocal seq
            while time.monotonic() < stop_at:
                seq += 1
                if seq > a.max:
                    return
                wid = f"sdk-{tag}-{seq}"
                begun = time.monotonic()
                try:
                    h = await client.start_workflow(BenchSdkWorkflow.run, "in", id=wid, task_queue=tq)
                except Exception as e:  # noqa: BLE001
                    err("StartWorkflowExecution", e)
                    await asyncio.sleep(0.1)
                    continue
                started_ids.append(wid)
                try:
                    await asyncio.wait_for(h.result(), a.wf_timeout)
                except Exception as e:  # noqa: BLE001
                    err("WorkflowResult", e)
                    continue
                end = time.monotonic()
                done_times.append(end - t0)
                lat_all.append((end - begun) * 1000)
                if begun - t0 >= a.warmup:
                    lat.append((end - begun) * 1000)

        await asyncio.gather(*(loop() for _ in range(a.concurrency)))
        elapsed = time.monotonic() - t0
    cpu = cpu_s() - cpu0

    failed, vsamples = 0, []
    sample = random.sample(started_ids, min(a.verify, len(started_ids)))
    for wid in sample:
        try:
            hist = await client.get_workflow_handle(wid).fetch_history()
            got = [int(e.event_type) for e in hist.events]
            if got != EXPECTED or [e.event_id for e in hist.events] != list(range(1, len(got) + 1)):
                failed += 1
                vsamples.append(f"{wid}: events {got}, want {EXPECTED}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            vsamples.append(f"{wid}: {type(e).__name__}: {e}")

    window = min(a.duration, elapsed - a.warmup)
    in_window = sum(1 for t in done_times if a.warmup <= t <= a.warmup + window)
    lat.sort()
    lat_all.sort()

    def stats(xs):
        return {
            "n": len(xs),
            "mean_ms": sum(xs) / len(xs) if xs else 0.0,
            "p50_ms": pct(xs, 0.50),
            "p95_ms": pct(xs, 0.95),
            "p99_ms": pct(xs, 0.99),
            "max_ms": xs[-1] if xs else 0.0,
        }
    out = {
        "workload": "sdk",
        "concurrency": a.concurrency,
        "task_queue": tq,
        "window_s": window,
        "elapsed_s": elapsed,
        "units_total": len(done_times),
        "units_window": in_window,
        "throughput_per_s": in_window / window if window > 0 else 0.0,
        "throughput_overall_per_s": len(done_times) / elapsed if elapsed > 0 else 0.0,
        "latency": stats(lat),
        "latency_all": stats(lat_all),
        "errors": errors,
        "error_count": sum(errors.values()),
        "error_samples": samples,
        "workflows_started": len(started_ids),
        "verify_sampled": len(sample),
        "verify_failed": failed,
        "verify_failure_samples": vsamples,
        "inline_checked": 0,
        "inline_failed": 0,
        "driver_cpu_s": cpu,
        "driver_cpu_per_unit_ms": cpu * 1000 / len(done_times) if done_times else 0.0,
    }
    print(json.dumps(out, indent=2))
    print(
        f"sdk c={a.concurrency}: {out['throughput_per_s']:.1f}/s p50={out['latency']['p50_ms']:.1f}ms "
        f"p99={out['latency']['p99_ms']:.1f}ms errors={out['error_count']} verify={failed}/{len(sample)} failed "
        f"client_cpu={cpu:.2f}s",
        file=sys.stderr,
    )
    for s in samples + vsamples:
        print("  ", s, file=sys.stderr)
    return 0


if __name__ == "__main__":
    rc = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the SDK's native runtime threads can abort it
    # ("PyGILState_Release ... finalizing"), which would turn a good run into a crash.
    os._exit(rc)
